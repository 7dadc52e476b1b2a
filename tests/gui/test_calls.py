"""Calls through the GUI on a real phone (enrolled overlay, real sockets, aiortc audio
with no sound device): dialling a buddy with one key, the echo test, the call window's
state and timer, hold, hang up, and the history entry with call back."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.gui.call_widget import CallWidget
from app.phone.calls import CallState, EndCause
from app.phone.events import CallMedia, DtmfReceived
from app.phone.store import CallDirection as HistoryDirection
from tests.gui.helpers import until
from tests.gui.phones import MEDIA, GuiPhone
from tests.phone.phone_lab import OVERLAY, WAIT, Events, PhoneLab


def _only_call(gui: GuiPhone) -> CallWidget:
    (widget,) = gui.window.call_widgets.values()
    assert isinstance(widget, CallWidget)
    return widget


async def test_call_a_buddy_with_one_key_hold_hang_up_and_call_back(
    qtbot: QtBot, lab: PhoneLab, gui: GuiPhone
) -> None:
    bob = await lab.open("bob", **MEDIA)
    window = gui.window
    media: list[CallMedia] = []
    window.bridge.callMedia.connect(media.append)
    await gui.phone.add_buddy("bob", "Bob")
    await until(lambda: window.buddy_filter.rowCount() == 1, window.bridge.buddies)
    # One key: select the buddy, Return calls.
    window.buddy_list.setFocus()
    window.buddy_list.setCurrentIndex(window.buddy_filter.index(0, 0))
    qtbot.keyClick(window.buddy_list, Qt.Key.Key_Return)
    await until(lambda: window.call_widgets, window.bridge.callState, what="a call on screen")
    widget = _only_call(gui)
    assert widget.name.text() == "Bob" and widget.status.text() in ("Calling…", "Ringing…")
    incoming = await bob.next_incoming_call(WAIT)
    assert incoming.peer == f"sip:alice@{OVERLAY}" and incoming.verified
    await until(lambda: widget.status.text() == "Ringing…", window.bridge.callState)
    await incoming.answer()
    await until(lambda: widget.call.state is CallState.CONNECTED, window.bridge.callState)
    assert widget.status.text() == "0:00" and widget.clock.isActive()
    assert widget.hangup_button.isEnabled() and widget.hold_button.isEnabled()
    assert widget.audio is not None and widget.mute_button.isEnabled()  # the phone's aiortc audio
    # The keypad sends tones bob's phone hears (RFC 4733, or SIP INFO), once the call's
    # media is up (ICE and DTLS-SRTP take a moment after the 200 OK).
    await until(lambda: any(e.what == "first-audio" for e in media), window.bridge.callMedia, what="audio")
    bob_events = Events(bob)
    qtbot.mouseClick(widget.keypad_button, Qt.MouseButton.LeftButton)
    assert widget.keypad.isVisible()
    for key in "5#":
        qtbot.mouseClick(widget.keypad.buttons[key], Qt.MouseButton.LeftButton)
        await bob_events.wait(DtmfReceived, lambda e, key=key: e.digit == key)
    assert [e.digit for e in bob_events.of(DtmfReceived)] == ["5", "#"]
    assert widget.sent_tones.text() == "Sent: 5#"
    qtbot.mouseClick(widget.mute_button, Qt.MouseButton.LeftButton)
    assert widget.call.muted and widget.mute_button.text() == "Unmute"
    # Quality samples come as events: the bars light up.
    await until(lambda: widget.quality.mos is not None, window.bridge.callQuality, what="a quality sample")
    assert 1.0 <= widget.quality.mos <= 5.0 and widget.quality.bars >= 1
    # Hold: a re-INVITE with sendonly; the button says Resume.
    qtbot.mouseClick(widget.hold_button, Qt.MouseButton.LeftButton)
    await until(lambda: widget.call.state is CallState.HELD, window.bridge.callState, what="held")
    assert widget.hold_button.text() == "Resume" and widget.status.text().startswith("On hold")
    qtbot.mouseClick(widget.hold_button, Qt.MouseButton.LeftButton)
    await until(lambda: widget.call.state is CallState.CONNECTED, window.bridge.callState, what="resumed")
    # Hang up with the keyboard.
    qtbot.keyClick(
        window, Qt.Key.Key_H, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert await incoming.wait_ended(WAIT) is EndCause.REMOTE_HUNG_UP
    await until(lambda: widget.status.text() == "Ended: you hung up", window.bridge.callState)
    # The history: one outgoing call, answered, with call back.
    await until(
        lambda: window.history_model.rowCount() == 1 and not window.history_model.calls[0].in_progress,
        window.history_model.modelReset,
    )
    (record,) = window.history_model.calls
    assert (record.direction, record.peer_aor, record.outcome) == (
        HistoryDirection.OUTGOING,
        f"sip:bob@{OVERLAY}",
        "you hung up",
    )
    assert record.answered is not None
    window.history_list.setCurrentIndex(window.history_model.index(0))
    qtbot.mouseClick(window.call_back_button, Qt.MouseButton.LeftButton)
    again = await bob.next_incoming_call(WAIT)
    assert again.peer == f"sip:alice@{OVERLAY}"
    await again.reject()
    await until(
        lambda: any(w.status.text() == "Ended: Bob declined" for w in window.call_widgets.values()),
        window.bridge.callState,
    )


async def test_echo_test_is_one_click_away(qtbot: QtBot, lab: PhoneLab, gui: GuiPhone) -> None:
    # The overlay's echo service: a phone of user "echo" that answers every call.
    echo = await lab.open("echo", echo=True, **MEDIA)  # p2psip phone --echo, as its operator runs it
    window = gui.window
    qtbot.mouseClick(window.echo_button, Qt.MouseButton.LeftButton)
    await until(lambda: window.call_widgets, window.bridge.callState)
    widget = _only_call(gui)
    assert widget.call.peer == f"sip:echo@{OVERLAY}"
    await until(
        lambda: widget.call.state is CallState.CONNECTED, window.bridge.callState, what="echo answers"
    )
    (answered,) = echo.calls
    assert answered.state is CallState.CONNECTED
    qtbot.mouseClick(widget.hangup_button, Qt.MouseButton.LeftButton)
    await until(lambda: not widget.call.live, window.bridge.callState)
    assert widget.call.cause is EndCause.HUNG_UP


async def test_two_calls_one_active_the_other_held(qtbot: QtBot, lab: PhoneLab, gui: GuiPhone) -> None:
    await lab.open("bob", auto_answer=True, **MEDIA)
    await lab.open("carol", auto_answer=True, **MEDIA)
    window = gui.window
    window.place_call("bob")
    await until(lambda: len(window.call_widgets) == 1, window.bridge.callState)
    (first,) = window.call_widgets.values()
    await until(lambda: first.call.state is CallState.CONNECTED, window.bridge.callState, what="bob answers")
    # A second call puts the first on hold: one call is active at a time.
    window.place_call("carol")
    await until(lambda: len(window.call_widgets) == 2, window.bridge.callState)
    second = next(w for w in window.call_widgets.values() if w is not first)
    await until(
        lambda: second.call.state is CallState.CONNECTED and first.call.state is CallState.HELD,
        window.bridge.callState,
        what="carol answers, bob held",
    )
    assert first.hold_button.text() == "Resume" and first.status.text().startswith("On hold")
    assert window.active_call_widget() is second
    # Resuming bob holds carol.
    qtbot.mouseClick(first.hold_button, Qt.MouseButton.LeftButton)
    await until(
        lambda: first.call.state is CallState.CONNECTED and second.call.state is CallState.HELD,
        window.bridge.callState,
        what="bob back, carol held",
    )
    assert window.active_call_widget() is first
    for widget in (first, second):
        qtbot.mouseClick(widget.hangup_button, Qt.MouseButton.LeftButton)
    await until(lambda: not first.call.live and not second.call.live, window.bridge.callState)

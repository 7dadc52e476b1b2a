"""A call on screen: :class:`CallWidget` (outgoing, incoming, in call, ended) and the
window of an incoming call, :class:`IncomingCallWindow`.

The widget follows the phone's :class:`~app.phone.events.CallStateChanged` events for its
call (:meth:`CallWidget.on_state`); what the user does goes to the
:class:`~app.phone.phone_call.PhoneCall` as async work (:func:`app.gui.tasks.spawn`), and
a refusal (:class:`~app.phone.phone_call.CallActionError`) is shown in words under the
buttons. Mute, DTMF, levels and quality come from the call's
:class:`~app.gui.call_media.CallAudio` when it has one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.call_media import CallAudio, MediaKit
from app.gui.dialpad import DialPad
from app.gui.formatting import format_duration
from app.gui.icons import icon
from app.gui.meters import LevelMeter, QualityBars
from app.gui.tasks import spawn
from app.phone.calls import ANSWERED_STATES, CallDirection, CallState
from app.phone.events import CallRemoteHold, CallStateChanged
from app.phone.phone_call import CallActionError, PhoneCall

if TYPE_CHECKING:
    from app.phone.events import CallMedia, CallQuality, DtmfReceived

LEVEL_MS = 100

STATE_WORDS = {
    (CallDirection.OUTGOING, CallState.DIALING): "Calling…",
    (CallDirection.OUTGOING, CallState.RINGING): "Ringing…",
    (CallDirection.OUTGOING, CallState.EARLY_MEDIA): "Ringing…",
    (CallDirection.INCOMING, CallState.RINGING): "Incoming call",
    (CallDirection.INCOMING, CallState.DIALING): "Incoming call",
}


def state_words(call: PhoneCall, now: float | None = None) -> str:
    """What the call's line says: calling, ringing, the talk time, on hold, or how it ended."""
    state = call.state
    if state is CallState.ENDED:
        return f"Ended: {call.words}" if call.words else "Ended"
    if state in ANSWERED_STATES:
        talk = format_duration(call.machine.duration(time.time() if now is None else now))
        if state is CallState.HELD:
            return f"On hold · {talk}"
        return f"On hold by the other side · {talk}" if call.remote_held else talk
    return STATE_WORDS.get((call.direction, state), state.value)


def _tool(text: str, icon_name: str, name: str, *, checkable: bool = False) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setIcon(icon(icon_name))
    button.setAccessibleName(name)
    button.setToolTip(name)
    button.setCheckable(checkable)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
    button.setAutoRaise(True)
    button.setMinimumWidth(64)
    return button


class CallWidget(QFrame):
    """One call (see the module docstring). :attr:`ended` fires once the call ended."""

    ended = Signal(int)

    def __init__(self, call: PhoneCall, kit: MediaKit | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.call = call
        self.kit = kit
        self.audio: CallAudio | None = None
        self.tones_sent = ""
        self.tones_heard = ""
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(f"Call with {call.name}")
        self.name = QLabel(call.name)
        font = QFont(self.name.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.name.setFont(font)
        self.name.setAccessibleName("Caller" if call.direction is CallDirection.INCOMING else "Callee")
        self.peer = QLabel(
            call.peer
            + ("" if call.verified or call.direction is CallDirection.OUTGOING else " (not verified)")
        )
        self.peer.setAccessibleName("Address")
        self.status = QLabel()
        self.status.setAccessibleName("Call state")
        self.quality = QualityBars()
        self.mic = LevelMeter("Microphone level")
        self.speaker = LevelMeter("Speaker level")
        self.media_note = QLabel()
        self.media_note.setAccessibleName("Call audio")
        self.media_note.setWordWrap(True)
        self.media_note.hide()
        self.error = QLabel()
        self.error.setAccessibleName("Call problem")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("QLabel { color: #cf222e; }")
        self.error.hide()

        self.answer_button = _tool("Answer", "call-answer", "Answer")
        self.answer_button.clicked.connect(self.answer)
        self.mute_button = _tool("Mute", "mic-off", "Mute", checkable=True)
        self.mute_button.toggled.connect(self.set_muted)
        self.hold_button = _tool("Hold", "hold", "Hold", checkable=True)
        self.hold_button.clicked.connect(self.toggle_hold)
        self.keypad_button = _tool("Keypad", "dialpad", "Keypad", checkable=True)
        self.transfer_button = _tool("Transfer", "transfer", "Transfer", checkable=True)
        self.hangup_button = _tool("Hang up", "call-hangup", "Hang up")
        self.hangup_button.clicked.connect(self.hangup)

        self.keypad = DialPad("Keypad: send tones", compact=True)
        self.keypad.setFixedWidth(200)
        self.keypad.pressed.connect(self.send_dtmf)
        self.keypad.hide()
        self.sent_tones = QLabel()
        self.sent_tones.setAccessibleName("Tones sent")
        self.sent_tones.hide()
        self.keypad_button.toggled.connect(self.keypad.setVisible)
        self.keypad_button.toggled.connect(self.sent_tones.setVisible)

        self.transfer_row = QWidget()
        row = QHBoxLayout(self.transfer_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.transfer_target = QLineEdit()
        self.transfer_target.setPlaceholderText("transfer to: name or sip:user@host")
        self.transfer_target.setAccessibleName("Transfer to")
        self.transfer_target.returnPressed.connect(self.transfer)
        self.transfer_go = QPushButton("Transfer")
        self.transfer_go.setAccessibleName("Transfer now")
        self.transfer_go.clicked.connect(self.transfer)
        row.addWidget(self.transfer_target, 1)
        row.addWidget(self.transfer_go)
        self.transfer_row.hide()
        self.transfer_button.toggled.connect(self._show_transfer)

        header = QGridLayout()
        header.addWidget(self.name, 0, 0)
        header.addWidget(self.quality, 0, 1, Qt.AlignmentFlag.AlignRight)
        header.addWidget(self.peer, 1, 0, 1, 2)
        header.addWidget(self.status, 2, 0, 1, 2)
        meters = QGridLayout()
        meters.addWidget(QLabel("Mic"), 0, 0)
        meters.addWidget(self.mic, 0, 1)
        meters.addWidget(QLabel("Speaker"), 1, 0)
        meters.addWidget(self.speaker, 1, 1)
        buttons = QHBoxLayout()
        for button in (
            self.answer_button,
            self.mute_button,
            self.hold_button,
            self.keypad_button,
            self.transfer_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.hangup_button)
        main = QVBoxLayout()
        main.addLayout(header)
        main.addLayout(meters)
        main.addLayout(buttons)
        main.addWidget(self.transfer_row)
        main.addWidget(self.media_note)
        main.addWidget(self.error)
        main.addStretch(1)
        # The keypad opens beside the call, so the call's controls stay in view.
        pad = QVBoxLayout()
        pad.addWidget(self.keypad)
        pad.addWidget(self.sent_tones)
        pad.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addLayout(main, 1)
        layout.addLayout(pad)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

        self.clock = QTimer(self)
        self.clock.setInterval(1000)
        self.clock.timeout.connect(self.refresh)
        self.meter_timer = QTimer(self)
        self.meter_timer.setInterval(LEVEL_MS)
        self.meter_timer.timeout.connect(self._levels)
        self.refresh()

    # ---------------------------------------------------------------- showing

    def refresh(self) -> None:
        call = self.call
        state = call.state
        self.status.setText(state_words(call))
        answered = state in ANSWERED_STATES
        live = call.live
        ringing_in = call.direction is CallDirection.INCOMING and state is CallState.RINGING
        self.answer_button.setVisible(ringing_in)
        for button in (self.mute_button, self.keypad_button, self.transfer_button, self.hold_button):
            button.setEnabled(answered)
        self.hangup_button.setEnabled(live)
        self.hangup_button.setText("Decline" if ringing_in else "Hang up")
        self.hangup_button.setAccessibleName("Decline" if ringing_in else "Hang up")
        held = state is CallState.HELD
        self.hold_button.setChecked(held)
        self.hold_button.setText("Resume" if held else "Hold")
        self.hold_button.setIcon(icon("resume" if held else "hold"))
        self.hold_button.setAccessibleName("Resume" if held else "Hold")
        if self.audio is None and self.kit is not None:
            self.audio = self.kit.audio_of(call)
        has_audio = self.audio is not None
        self.mute_button.setEnabled(answered and has_audio)
        self.keypad_button.setEnabled(answered)  # RFC 4733 with audio, SIP INFO without
        if not has_audio:
            self.mute_button.setToolTip("Mute: this call carries no audio controls")
        if answered and not self.clock.isActive():
            self.clock.start()
            if self.audio is not None:
                self.meter_timer.start()
        if not live:
            self.clock.stop()
            self.meter_timer.stop()
            for button in (self.mute_button, self.hold_button, self.keypad_button, self.transfer_button):
                button.setChecked(False)
                button.setEnabled(False)
            self.keypad.hide()
            self.sent_tones.hide()
            self.transfer_row.hide()

    def on_state(self, event: CallStateChanged) -> None:
        if event.call != self.call.id:
            return
        self.refresh()
        if event.state is CallState.ENDED:
            self.ended.emit(self.call.id)

    def on_remote_hold(self, event: CallRemoteHold) -> None:
        if event.call == self.call.id:
            self.refresh()

    def _levels(self) -> None:
        if self.audio is not None:
            self.mic.set_dbfs(self.audio.levels.input_db)
            self.speaker.set_dbfs(self.audio.levels.output_db)

    def on_quality(self, event: CallQuality) -> None:
        """A quality sample of the call (every few seconds while answered)."""
        if event.call == self.call.id:
            self.quality.set_mos(event.mos)
            rtt = "" if event.rtt_ms is None else f", round trip {event.rtt_ms:.0f} ms"
            self.quality.setToolTip(
                f"{self.quality.toolTip()}: {event.codec or 'audio'}, loss {event.loss_percent:.1f} %{rtt}"
            )

    def on_media(self, event: CallMedia) -> None:
        """Something about the call's audio: a device that cannot be used is said."""
        if event.call != self.call.id:
            return
        if event.what == "device-unavailable":
            self.media_note.setText(f"No sound device ({event.detail}): the call goes on, silence is sent.")
            self.media_note.show()
        elif event.what == "media-failed":
            self.show_problem(f"The audio failed: {event.detail}")

    def on_dtmf(self, event: DtmfReceived) -> None:
        if event.call == self.call.id:
            self.tones_heard += event.digit
            self.media_note.setText(f"Keys pressed by {self.call.name}: {self.tones_heard}")
            self.media_note.show()

    def show_problem(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    # ---------------------------------------------------------------- acting

    def _run(self, action: Callable[[], Coroutine[Any, Any, object]]) -> None:
        async def attempt() -> None:
            self.show_problem("")
            try:
                await action()
            except CallActionError as exc:
                self.show_problem(str(exc))
            self.refresh()

        spawn(attempt())

    def answer(self) -> None:
        self._run(self.call.answer)

    def hangup(self) -> None:
        self._run(self.call.hangup)

    def toggle_hold(self) -> None:
        self._run(self.call.resume if self.call.state is CallState.HELD else self.call.hold)

    def set_muted(self, muted: bool) -> None:
        if self.call.muted == muted:
            pass
        elif self.call.live:
            try:
                self.call.set_muted(muted)
            except CallActionError as exc:
                self.show_problem(str(exc))
                return
        self.mute_button.setText("Unmute" if muted else "Mute")
        self.mute_button.setAccessibleName("Unmute" if muted else "Mute")

    def send_dtmf(self, digit: str) -> None:
        self.sent_tones.setText(f"Sent: {self.tones_sent + digit}")
        self.tones_sent += digit

        async def send() -> object:
            return await self.call.send_dtmf(digit)

        self._run(send)

    def _show_transfer(self, shown: bool) -> None:
        self.transfer_row.setVisible(shown)
        if shown:
            self.transfer_target.setFocus()

    def transfer(self) -> None:
        target = self.transfer_target.text().strip()
        if not target:
            return

        async def go() -> object:
            return await self.call.transfer(target)

        self._run(go)

    def keyPressEvent(self, event: Any) -> None:
        # Digits typed while the keypad is open are tones.
        text = event.text()
        if self.keypad.isVisible() and text and text in self.keypad.buttons:
            self.keypad.press(text)
            return
        super().keyPressEvent(event)


class IncomingCallWindow(QWidget):
    """A window of its own for a ringing incoming call: who it is, Answer and Decline.
    It closes itself once the call stops ringing (answered here or elsewhere, given up);
    the main window, which made it, deletes it then."""

    def __init__(self, call: PhoneCall, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.call = call
        self.setWindowTitle(f"Call from {call.name}")
        self.setWindowIcon(icon("call-incoming"))
        self.setAccessibleName("Incoming call")
        title = QLabel(f"{call.name} is calling")
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        title.setFont(font)
        title.setAccessibleName("Caller")
        who = QLabel(call.peer if call.verified else f"{call.peer}: identity not verified")
        who.setAccessibleName("Caller address")
        self.answer_button = QPushButton(icon("call-answer"), "&Answer")
        self.answer_button.setAccessibleName("Answer")
        self.answer_button.setDefault(True)
        self.decline_button = QPushButton(icon("call-hangup"), "&Decline")
        self.decline_button.setAccessibleName("Decline")
        self.answer_button.clicked.connect(self.answer)
        self.decline_button.clicked.connect(self.decline)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.decline)
        buttons = QHBoxLayout()
        buttons.addWidget(self.decline_button)
        buttons.addStretch(1)
        buttons.addWidget(self.answer_button)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(who)
        layout.addLayout(buttons)
        self.error = QLabel()
        self.error.hide()
        layout.addWidget(self.error)

    def answer(self) -> None:
        spawn(self._act(self.call.answer))

    def decline(self) -> None:
        spawn(self._act(self.call.reject))

    async def _act(self, action: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await action()
        except CallActionError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.close()

    def on_state(self, event: CallStateChanged) -> None:
        if event.call == self.call.id and event.state is not CallState.RINGING:
            self.close()


__all__ = ["CallWidget", "IncomingCallWindow", "state_words"]

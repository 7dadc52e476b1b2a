"""A second phone in another process calls and messages the GUI's phone: the incoming
call window and the tray notification, answering, hanging up, the history entry; a
message arriving in the chat pane, and the delivery state of the answer."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.gui.call_widget import IncomingCallWindow
from app.phone.calls import CallState, EndCause
from app.phone.store import CallDirection as HistoryDirection
from app.phone.store import Delivery, MessageDirection
from tests.gui.helpers import until
from tests.gui.phones import GuiPhone
from tests.phone.lan import Phone as PhoneProcess
from tests.phone.phone_lab import OVERLAY, PhoneLab

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.multinode


@pytest.fixture
async def carol(lab: PhoneLab) -> AsyncIterator[PhoneProcess]:
    """carol's phone, a process of its own on the lab's overlay."""
    python = REPO / ".venv" / "bin" / "python"
    proc = await asyncio.create_subprocess_exec(
        str(python if python.exists() else sys.executable),
        "-m",
        "tests.gui.remote_phone",
        "--profile",
        str(lab.profile("carol")),
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    phone = PhoneProcess(proc, "carol")
    try:
        await phone.expect("ready", lambda f: f["state"] == "registered", timeout=60)
        yield phone
    finally:
        with contextlib.suppress(Exception):
            await phone.send("quit")
            await phone.wait(20)
        await phone.stop()


async def test_a_call_from_another_process_rings_is_answered_and_hung_up(
    qtbot: QtBot, gui: GuiPhone, carol: PhoneProcess
) -> None:
    window = gui.window
    tray = gui.windows.tray
    assert tray is not None
    await carol.send("call alice")
    await until(lambda: window.incoming_windows, window.bridge.callState, what="the incoming call window")
    (incoming,) = window.incoming_windows.values()
    assert isinstance(incoming, IncomingCallWindow)
    assert incoming.isVisible() and incoming.windowTitle() == "Call from carol"
    assert tray.notifications[-1] == ("Incoming call", "carol is calling")
    await carol.expect("call", lambda f: f["state"] == "ringing")
    qtbot.mouseClick(incoming.answer_button, Qt.MouseButton.LeftButton)
    await carol.expect("call", lambda f: f["state"] == "connected")
    (widget,) = window.call_widgets.values()
    await until(lambda: widget.call.state is CallState.CONNECTED, window.bridge.callState)
    # The call window closes (and goes) once the answer is told.
    await until(lambda: window.incoming_windows == {}, window.bridge.callState)
    assert widget.call.verified and widget.peer.text() == f"sip:carol@{OVERLAY}"
    qtbot.mouseClick(widget.hangup_button, Qt.MouseButton.LeftButton)
    ended = await carol.expect("call", lambda f: f["state"] == "ended")
    assert ended["words"] == "alice_hung_up"
    await until(lambda: widget.call.cause is EndCause.HUNG_UP, window.bridge.callState)
    await until(
        lambda: window.history_model.rowCount() == 1 and not window.history_model.calls[0].in_progress,
        window.history_model.modelReset,
    )
    (record,) = window.history_model.calls
    assert (record.direction, record.peer_aor, record.outcome) == (
        HistoryDirection.INCOMING,
        f"sip:carol@{OVERLAY}",
        "you hung up",
    )


async def test_a_missed_call_shows_in_the_tray(gui: GuiPhone, carol: PhoneProcess) -> None:
    window = gui.window
    tray = gui.windows.tray
    assert tray is not None
    await carol.send("call alice")
    await carol.expect("call", lambda f: f["state"] == "ringing")
    await carol.send("hangup")
    await until(lambda: window.missed == 1, window.history_model.modelReset, what="one missed call")
    assert tray.icon_name == "tray-missed"
    assert tray.notifications[-1] == ("Missed call", f"carol called (sip:carol@{OVERLAY})")
    assert window.history_model.calls[0].direction is HistoryDirection.MISSED


async def test_a_message_arrives_and_the_answer_is_delivered(
    qtbot: QtBot, gui: GuiPhone, carol: PhoneProcess
) -> None:
    window = gui.window
    tray = gui.windows.tray
    assert tray is not None
    await carol.send("message alice hello from carol")
    await until(lambda: window.unread.get(f"sip:carol@{OVERLAY}"), window.bridge.messageReceived)
    assert tray.notifications[-1] == ("Message from carol", "hello from carol")
    window.open_chat(f"sip:carol@{OVERLAY}")
    await until(lambda: window.chat.model.rowCount() == 1, window.chat.model.modelReset)
    (first,) = window.chat.model.messages
    assert (first.direction, first.text) == (MessageDirection.INCOMING, "hello from carol")
    assert window.tabs.currentWidget() is window.chat
    qtbot.keyClicks(window.chat.input, "hi carol")
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    await until(
        lambda: (
            len(window.chat.model.messages) == 2 and window.chat.model.messages[1].state is Delivery.DELIVERED
        ),
        window.bridge.messageState,
        what="the answer delivered",
    )
    answer = window.chat.model.messages[1]
    assert (answer.direction, answer.text) == (MessageDirection.OUTGOING, "hi carol")
    got = await carol.expect("message", lambda f: f["direction"] == "incoming")
    assert got["text"] == "hi_carol"
    # Each state it went through was shown: sending, sent, delivered.
    tooltip = window.chat.model.data(window.chat.model.index(1), Qt.ItemDataRole.ToolTipRole)
    assert tooltip.endswith("delivered")

"""The whole GUI on the local overlay, driven through its widgets in a process of its own.

``python -m tests.gui.local_gui --profile DIR --name NAME --peer PEER`` runs inside the
network namespace of :class:`tests.phone.lan.Lan` (``ip netns exec``): its phone's
multicast DNS stays on that LAN. It is the real application (:class:`~app.gui.app.GuiApp`
on a :class:`qasync.QEventLoop`, Qt offscreen): the first-run wizard ("Use the local
network, no set-up", a name), then the main window on the phone the wizard's profile
opened, started on the local overlay (DNS-SD discovery, join or start alone). Clicks and
keys go to the widgets with :class:`~PySide6.QtTest.QTest`, as a user's would.

What it sees it prints as JSON lines on stdout, ``{"event": STEP, ...values}``, for the
test that started it (:mod:`tests.gui.test_local_overlay`) to judge; the steps that need
the second phone (``PEER``, a ``p2psip phone`` process the test drives) say so and wait
for what that phone does:

1. ``Registered``: the wizard made the profile, the phone registered;
2. ``BuddyOffline``: PEER added as a buddy with the editor, checked and not found
   (the test then starts PEER's phone), ``BuddyOnline``: the list shows them online;
3. ``EchoConnected``, ``EchoEnded``: the echo test button, the call up with audio heard,
   hung up with the call's button;
4. ``WaitingForCall`` (the test has PEER call), ``CallAnswered`` (the incoming call
   window's Answer), ``CallEnded`` (Hang up), ``History``: the call list;
5. ``WaitingForMessage`` (the test has PEER send one), ``MessageShown`` (opened with the
   Chat button), ``MessageSent``: the answer typed in the chat line and its delivery;
6. ``Quit``: signed out through the app's quit. ``Failed`` (with the step and the error)
   ends the run early; the exit status is 0 only when every step was seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from PySide6.QtCore import Qt, SignalInstance
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from app.gui.app import GuiApp
from app.gui.formatting import Presence
from app.gui.main_window import MainWindow
from app.gui.tasks import cancel_all
from app.phone.calls import CallDirection, CallState
from app.phone.events import CallMedia, PhoneState
from app.phone.presence import PresencePolicy
from app.phone.store import Delivery
from tests.gui.helpers import until

WAIT = 40.0
LEFT = Qt.MouseButton.LeftButton


def report(event: str, **values: Any) -> None:
    print(json.dumps({"event": event, "time": time.time(), **values}), flush=True)


def click(widget: QWidget) -> None:
    assert widget.isVisible() and widget.isEnabled(), f"{widget.accessibleName()} is not clickable"
    QTest.mouseClick(widget, LEFT)


async def wait(condition: Callable[[], Any], *signals: SignalInstance, what: str) -> Any:
    return await until(condition, *signals, timeout=WAIT, what=what)


class Driver:
    def __init__(self, gui: GuiApp, name: str, peer: str) -> None:
        self.gui = gui
        self.name = name
        self.peer = peer
        self.step = "start"
        self.media: list[CallMedia] = []

    @property
    def window(self) -> MainWindow:
        assert self.gui.windows is not None
        return self.gui.windows.window

    async def run(self) -> None:
        await self.first_run()
        await self.buddy()
        await self.echo_test()
        await self.incoming_call()
        await self.chat()

    async def first_run(self) -> None:
        self.step = "wizard"
        self.gui.start()
        wizard = self.gui.wizard
        assert wizard is not None, "no first-run wizard for an empty profile folder"
        click(wizard.local_choice)
        QTest.keyClicks(wizard.local_name, self.name)
        preview = wizard.local_preview.text()
        click(wizard.local_create)
        await wait(lambda: self.gui.phone is not None, self.gui.phoneReady, what="the phone opened")
        window = self.window
        window.bridge.callMedia.connect(self.media.append)
        self.step = "registered"
        await wait(
            lambda: window.last_state.state is PhoneState.REGISTERED,
            window.bridge.phoneState,
            what="registered",
        )
        assert self.gui.phone is not None
        report(
            "Registered",
            preview=preview,
            aor=window.my_aor.text(),
            overlay=window.overlay_label.text(),
            connection=window.connection.accessibleDescription(),
            node_id=self.gui.phone.node_id.hex(),
            wizard_gone=self.gui.wizard is None,
        )

    def presence(self) -> Presence | None:
        buddies = self.window.buddy_model.buddies
        return buddies[0].presence if buddies else None

    async def buddy(self) -> None:
        self.step = "buddy"
        window = self.window
        click(window.add_button)
        QTest.keyClicks(window.buddy_editor.aor, self.peer)
        QTest.keyClicks(window.buddy_editor.name, self.peer.capitalize())
        QTest.keyClick(window.buddy_editor.name, Qt.Key.Key_Return)
        await wait(
            lambda: self.presence() is Presence.OFFLINE, window.bridge.presence, what="the buddy offline"
        )
        (buddy,) = window.buddy_model.buddies
        report("BuddyOffline", aor=buddy.aor, name=buddy.display_name, presence=buddy.presence.value)
        await wait(
            lambda: self.presence() is Presence.ONLINE, window.bridge.presence, what="the buddy online"
        )
        # The two phones are one ring: the buddy's phone found ours by DNS-SD and joined.
        assert self.gui.phone is not None
        ring = self.gui.phone.overlay_snapshot()
        report(
            "BuddyOnline",
            aor=window.buddy_model.buddies[0].aor,
            presence=Presence.ONLINE.value,
            shown=window.buddy_filter.data(window.buddy_filter.index(0, 0)),
            address=ring.address if ring else None,
            successors=[n.hex() for n in ring.successors] if ring else [],
            predecessors=[n.hex() for n in ring.predecessors] if ring else [],
        )

    def audio_heard(self, call: int) -> str | None:
        """The first-audio notice's detail (ms from the media session's start) once heard."""
        return next((e.detail for e in self.media if e.call == call and e.what == "first-audio"), None)

    async def echo_test(self) -> None:
        self.step = "echo test"
        window = self.window
        click(window.echo_button)
        await wait(lambda: window.call_widgets, window.bridge.callState, what="the echo call on screen")
        (widget,) = window.call_widgets.values()
        await wait(
            lambda: widget.call.state is CallState.CONNECTED, window.bridge.callState, what="echo answers"
        )
        await wait(lambda: self.audio_heard(widget.call.id), window.bridge.callMedia, what="echo audio heard")
        report(
            "EchoConnected",
            peer=widget.call.peer,
            state=widget.call.state.value,
            first_audio=self.audio_heard(widget.call.id),
            status=widget.status.text(),
        )
        click(widget.hangup_button)
        await wait(lambda: not widget.call.live, window.bridge.callState, what="the echo call ended")
        cause = widget.call.cause
        report("EchoEnded", cause=cause.value if cause else None, status=widget.status.text())

    async def incoming_call(self) -> None:
        self.step = "incoming call"
        window = self.window
        report("WaitingForCall")
        await wait(lambda: window.incoming_windows, window.bridge.callState, what="the incoming call window")
        (incoming,) = window.incoming_windows.values()
        title = incoming.windowTitle()
        click(incoming.answer_button)
        # The echo call's card may still linger (ENDED_LINGER_MS) beside this one.
        (widget,) = [w for w in window.call_widgets.values() if w.call.direction is CallDirection.INCOMING]
        await wait(lambda: widget.call.state is CallState.CONNECTED, window.bridge.callState, what="answered")
        await wait(lambda: self.audio_heard(widget.call.id), window.bridge.callMedia, what="caller heard")
        report(
            "CallAnswered",
            title=title,
            peer=widget.call.peer,
            verified=widget.call.verified,
            direction=widget.call.direction.value,
            first_audio=self.audio_heard(widget.call.id),
            incoming_window_gone=not window.incoming_windows,
        )
        click(widget.hangup_button)
        await wait(lambda: not widget.call.live, window.bridge.callState, what="hung up")
        cause = widget.call.cause
        report("CallEnded", cause=cause.value if cause else None, status=widget.status.text())
        await wait(
            lambda: (
                window.history_model.rowCount() >= 2
                and not any(c.in_progress for c in window.history_model.calls)
            ),
            window.history_model.modelReset,
            what="both calls in the history",
        )
        report(
            "History",
            calls=[
                {
                    "direction": c.direction.value,
                    "peer": c.peer_aor,
                    "outcome": c.outcome,
                    "answered": c.answered is not None,
                }
                for c in window.history_model.calls
            ],
            shown=[
                window.history_model.data(window.history_model.index(row))
                for row in range(window.history_model.rowCount())
            ],
        )

    async def chat(self) -> None:
        self.step = "chat"
        window = self.window
        buddy = window.buddy_model.buddies[0].aor
        report("WaitingForMessage")
        await wait(lambda: window.unread.get(buddy), window.bridge.messageReceived, what="a message")
        window.buddy_list.setCurrentIndex(window.buddy_filter.index(0, 0))
        click(window.chat_button)
        await wait(
            lambda: window.chat.peer == buddy and window.chat.model.rowCount() == 1,
            window.bridge.anyEvent,
            window.chat.model.modelReset,
            what="the conversation open",
        )
        (first,) = window.chat.model.messages
        report(
            "MessageShown",
            peer=window.chat.peer,
            direction=first.direction.value,
            text=first.text,
            chat_tab=window.tabs.currentWidget() is window.chat,
            unread=window.unread.get(buddy, 0),
        )
        states: list[str] = []
        window.bridge.messageState.connect(lambda e: states.append(e.record.state.value))
        QTest.keyClicks(window.chat.input, f"hi {self.peer}")
        QTest.keyClick(window.chat.input, Qt.Key.Key_Return)
        await wait(
            lambda: (
                len(window.chat.model.messages) == 2
                and window.chat.model.messages[1].state is Delivery.DELIVERED
            ),
            window.bridge.messageState,
            what="the answer delivered",
        )
        answer = window.chat.model.messages[1]
        model = window.chat.model
        report(
            "MessageSent",
            text=answer.text,
            direction=answer.direction.value,
            state=answer.state.value,
            states=states,
            tooltip=model.data(model.index(1), Qt.ItemDataRole.ToolTipRole),
        )


async def main(profile: Path, name: str, peer: str) -> int:
    # Buddies checked at once, and an offline one again every second or two (the
    # defaults wait up to a minute): the test sees the buddy come online.
    from app.phone.service import PhoneOptions

    presence = PresencePolicy(initial_spread=0.2, offline_first=1.0, offline_max=2.0, jitter=0.0)
    gui = GuiApp(profile, minimised=False, use_devices=False, options=PhoneOptions(presence=presence))
    driver = Driver(gui, name, peer)
    code = 0
    try:
        await driver.run()
    except BaseException as exc:  # told to the test, which judges
        report("Failed", step=driver.step, error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())
        code = 1
    try:
        await asyncio.wait_for(gui.quit(), 30)
        report("Quit", state=gui.phone.state.value if gui.phone is not None else None)
    except BaseException as exc:
        report("Failed", step="quit", error=f"{type(exc).__name__}: {exc}")
        code = 1
    await cancel_all()
    return code


def run() -> int:
    import qasync

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--peer", required=True)
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        code: int = loop.run_until_complete(main(args.profile, args.name, args.peer))
    return code


if __name__ == "__main__":
    sys.exit(run())

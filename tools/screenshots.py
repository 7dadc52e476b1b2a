"""Screenshots of the GUI's main screens, from a real run, into ``docs/screenshots/``.

    .venv/bin/python tools/screenshots.py [--out docs/screenshots]

Qt draws offscreen (``QT_QPA_PLATFORM=offscreen``) and each window is captured with
``QWidget.grab()``: no display, no window manager, the same pixels on every machine with
the same fonts. What is shown is real: a sample overlay (:mod:`app.gui.sample_overlay`:
its CA, its bootstrap peer on 127.0.0.1) with phones for bob, carol and dave; alice's
phone runs under the GUI; the presence, the calls, the messages and the ring are what
those phones did. Screens:

- ``wizard.png``, ``wizard-local.png``: the first-run wizard (choice, local network);
- ``main.png``: the main window with buddies (online, offline), recent calls;
- ``chat.png``: a conversation with its delivery states;
- ``in-call.png``: a connected call (timer, meters, quality, keypad);
- ``incoming.png``: the window of an incoming call;
- ``settings.png``, ``settings-calls.png``: the settings window;
- ``overlay.png``: the overlay panel (the ring, links and RTTs, stored data);
- ``main-dark.png``: the main window in the dark palette.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QSize, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from app.gui.app import PhoneWindows  # noqa: E402
from app.gui.main_window import ENDED_LINGER_MS  # noqa: E402
from app.gui.sample_overlay import SampleOverlay  # noqa: E402
from app.gui.theme import Scheme, apply_scheme  # noqa: E402
from app.gui.wizard import FirstRunWizard  # noqa: E402
from app.phone.calls import CallState  # noqa: E402
from app.phone.events import PhoneEvent, PresenceChanged  # noqa: E402
from app.phone.presence import PresencePolicy  # noqa: E402
from app.phone.service import Phone  # noqa: E402
from app.phone.store import Delivery  # noqa: E402

WAIT = 30.0


async def save(widget: QWidget, path: Path, size: QSize | None = None) -> None:
    if size is not None:
        widget.resize(size)
    widget.show()
    await settle()
    image = widget.grab()
    if not image.save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(f"{path} ({image.width()}x{image.height()})")


async def settle(seconds: float = 0.3) -> None:
    """Let the loop (Qt's, through qasync) lay out and repaint what just changed: a
    screenshot is of a settled window. Never ``processEvents()`` inside a coroutine: it
    would run other tasks inside this one."""
    await asyncio.sleep(seconds)


async def until(phone: Phone, condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait on the phone's events until ``condition()`` holds."""
    changed = asyncio.Event()

    def heard(_event: PhoneEvent) -> None:
        changed.set()

    remove = phone.add_listener(heard)
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                changed.clear()
                await changed.wait()
    finally:
        remove()


async def wizard_shots(out: Path, work: Path) -> None:
    wizard = FirstRunWizard(work / "wizard-profile")
    await save(wizard, out / "wizard.png", QSize(620, 400))
    wizard.show_page(1)
    wizard.local_name.setText("alice")
    wizard.local_display.setText("Alice Liddell")
    await settle()
    await save(wizard, out / "wizard-local.png", QSize(620, 400))
    wizard.close()


async def phone_shots(out: Path, work: Path) -> None:
    sample = SampleOverlay(work)
    await sample.start(peers=6)  # a ring of a dozen nodes with the phones
    try:
        bob = await sample.phone("bob", auto_answer=True)
        carol = await sample.phone("carol")
        await sample.phone("dave", start=False)  # has a name on the overlay, never online
        # Presence checked at once (the default spreads first checks over 30 s).
        quick = PresencePolicy(initial_spread=0.2)
        alice = await Phone.open(sample.profile("alice"), options=sample.options(presence=quick))
        sample.phones.append(alice)
        await alice.update_settings(display_name="Alice Liddell")
        windows = await PhoneWindows.for_phone(alice, alice.media)
        window = windows.window
        windows.show(minimised=False)
        window.resize(1060, 700)
        await alice.start()

        # Buddies: two online, two not.
        for aor, name in (("bob", "Bob Builder"), ("carol", "Carol"), ("dave", "Dave"), ("erin", "Erin")):
            await alice.add_buddy(aor, name)
        seen: dict[str, bool] = {}
        alice.add_listener(
            lambda e: seen.__setitem__(e.aor, e.online) if isinstance(e, PresenceChanged) else None
        )
        await until(alice, lambda: len(seen) == 4)

        # History: an answered call, a declined one, a missed one.
        call = await alice.call("bob")
        await call.wait_state(CallState.CONNECTED, timeout=WAIT)
        await call.hangup()
        await call.wait_ended(WAIT)
        call = await alice.call("carol")
        incoming = await carol.next_incoming_call(WAIT)
        await incoming.reject()
        await call.wait_ended(WAIT)
        missed = await carol.call("alice")
        await until(alice, lambda: any(c.state is CallState.RINGING for c in alice.calls))
        await missed.hangup()
        await until(alice, lambda: not alice.calls)
        await window.reload_history()

        # A conversation with bob.
        await bob.send_message("alice", "Are we still on for tomorrow?")
        await until(alice, lambda: bool(window.unread))
        record = await alice.send_message("bob", "Yes! 10:00 at the café by the station.")
        assert record.state is Delivery.DELIVERED, record.reason
        await bob.send_message("alice", "Great, see you there!")
        window.select_buddy("sip:bob@" + alice.domain)
        await settle(ENDED_LINGER_MS / 1000 + 0.5)  # the ended calls' cards go
        window.tabs.setCurrentIndex(0)
        window.history_list.setCurrentIndex(window.history_model.index(0))
        await settle()
        await save(window, out / "main.png")

        await window._open_chat("sip:bob@" + alice.domain)
        await settle()
        await save(window, out / "chat.png")

        # In a call with bob (he answers at once); the keypad open, a few tones sent.
        window.tabs.setCurrentIndex(0)
        call = await alice.call("bob")
        await call.wait_state(CallState.CONNECTED, timeout=WAIT)
        await settle(0.5)
        widget = window.call_widgets[call.id]
        widget.keypad_button.setChecked(True)
        for digit in "42#":
            widget.send_dtmf(digit)
        await settle(4.5)  # the talk timer runs, the first quality estimates come
        await save(window, out / "in-call.png")
        await call.hangup()
        await call.wait_ended(WAIT)

        # carol calls: the incoming call window.
        ring = await carol.call("alice")
        await until(alice, lambda: bool(window.incoming_windows))
        (incoming_window,) = window.incoming_windows.values()
        await settle()
        await save(incoming_window, out / "incoming.png", QSize(420, 150))
        await ring.hangup()
        await until(alice, lambda: not alice.calls)

        windows.show_settings()
        settings = windows.settings_window
        assert settings is not None
        await settle()
        await save(settings, out / "settings.png", QSize(620, 520))
        settings.tabs.setCurrentIndex(1)
        settings.forward_no_answer.setText("bob")
        await settle()
        await save(settings, out / "settings-calls.png", QSize(620, 520))
        settings.close()

        windows.show_overlay()
        panel = windows.overlay_window
        assert panel is not None
        await settle(0.5)
        await save(panel, out / "overlay.png", QSize(1100, 640))
        panel.close()

        app = QApplication.instance()
        assert isinstance(app, QApplication)
        apply_scheme(app, Scheme.DARK)
        window.tabs.setCurrentIndex(0)
        await settle(ENDED_LINGER_MS / 1000 + 0.5)
        await save(window, out / "main-dark.png")
        apply_scheme(app, Scheme.LIGHT)
        windows.close_windows()
    finally:
        await sample.close()


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    apply_scheme(app, Scheme.LIGHT)
    with tempfile.TemporaryDirectory(prefix="p2psip-shots-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        await wizard_shots(out, work)
        await phone_shots(out, work)
        print(f"done in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    import qasync

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    qt = QApplication(sys.argv[:1])
    qt.setQuitOnLastWindowClosed(False)
    qt.setAttribute(Qt.ApplicationAttribute.AA_DontUseNativeDialogs)
    qasync.run(main(args.out))

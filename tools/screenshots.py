"""Screenshots of the GUI's main screens, from a real run under Xvfb, into ``docs/screenshots/``.

    .venv/bin/python tools/screenshots.py [--out docs/screenshots] [--manifest FILE]

(``make screenshots``.) The script starts an Xvfb X server of its own on a free display
number (``Xvfb -displayfd``: the server picks the number and says it once it accepts
connections), runs itself again as a child with ``QT_QPA_PLATFORM=xcb`` on that display
(``--render``), and stops the server when the child is done, also when it fails or is
interrupted. Each window is shown on the X screen at its top-left corner and captured from
the server (``QScreen.grabWindow`` of its X window: the pixels Xvfb holds, as a screen
capture would). Needs Debian's ``xvfb`` and the libraries of Qt's xcb platform
(``tools/bootstrap.sh`` installs them).

What is shown is real: a sample overlay (:mod:`app.gui.sample_overlay`: its CA, its
bootstrap peer on 127.0.0.1) with phones for bob, carol and dave; alice's phone runs under
the GUI; the presence, the calls, the messages and the ring are what those phones did.
Screens:

- ``wizard.png``, ``wizard-local.png``: the first-run wizard (choice, local network);
- ``main.png``: the main window with buddies (online, offline), recent calls;
- ``chat.png``: a conversation with its delivery states;
- ``in-call.png``: a connected call (timer, meters, quality, keypad);
- ``incoming.png``: the window of an incoming call;
- ``settings.png``, ``settings-calls.png``: the settings window;
- ``overlay.png``: the overlay panel (the ring, links and RTTs, stored data);
- ``main-dark.png``: the main window in the dark palette.

``--manifest FILE`` writes what was captured as JSON (each file's window size and the
platform it was drawn on), for the test that checks the images
(``tests/gui/test_screenshots.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QSize, Qt  # noqa: E402
from PySide6.QtGui import QWindow  # noqa: E402
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
SCREEN = (1600, 1200, 24)  # Xvfb's screen: every window fits at the top-left corner
XVFB_START = 20.0  # seconds for Xvfb to accept connections
MANIFEST: dict[str, dict[str, object]] = {}


async def save(widget: QWidget, path: Path, size: QSize | None = None) -> None:
    """Show ``widget`` alone at the screen's corner and capture its X window from the server."""
    if size is not None:
        widget.resize(size)
    widget.move(0, 0)
    widget.show()
    widget.raise_()
    await settle()
    handle = widget.windowHandle()
    await exposed(handle)
    # Painted now and put to the server; the capture reads it back on the same connection,
    # after the paint (Xvfb keeps no copy of what a window showed before it was exposed).
    widget.repaint()
    image = handle.screen().grabWindow(widget.winId())
    if image.isNull() or not image.save(str(path)):
        raise SystemExit(f"could not capture or write {path}")
    MANIFEST[path.name] = {
        "width": widget.width(),
        "height": widget.height(),
        "image": [image.width(), image.height()],
        "device_pixel_ratio": image.devicePixelRatio(),
        "platform": QApplication.platformName(),
        "title": widget.windowTitle(),
    }
    print(f"{path} ({image.width()}x{image.height()})", flush=True)


async def exposed(handle: QWindow | None, timeout: float = 10.0) -> None:
    """Wait until the X server has mapped the window and told Qt it is visible (Expose)."""
    deadline = time.monotonic() + timeout
    while handle is None or not handle.isExposed():
        if time.monotonic() > deadline:
            raise SystemExit("screenshots: a window was never exposed on the X server")
        await asyncio.sleep(0.05)


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
        # Presence checked at once (the default spreads first checks over 30 s), and a
        # check that could not run (the young overlay still settling) tried again within
        # 2 s, not the default minute.
        quick = PresencePolicy(initial_spread=0.2, offline_first=2.0, offline_max=4.0)
        alice = await Phone.open(sample.profile("alice"), options=sample.options(presence=quick))
        sample.phones.append(alice)
        await alice.update_settings(display_name="Alice Liddell")
        windows = await PhoneWindows.for_phone(alice, alice.media)
        window = windows.window
        windows.show(minimised=False)
        window.resize(1060, 700)
        await alice.start()

        # Buddies: two online, two not. Listening first: a buddy's first check starts at
        # once and may be done before the next one is added.
        seen: dict[str, bool] = {}
        alice.add_listener(
            lambda e: seen.__setitem__(e.aor, e.online) if isinstance(e, PresenceChanged) else None
        )
        for aor, name in (("bob", "Bob Builder"), ("carol", "Carol"), ("dave", "Dave"), ("erin", "Erin")):
            await alice.add_buddy(aor, name)
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
        print(f"done in {time.monotonic() - started:.1f} s", flush=True)


def render(out: Path, manifest: Path | None) -> int:
    """The child: the screens on the X display in ``$DISPLAY`` (Qt's xcb platform)."""
    import qasync

    qt = QApplication(sys.argv[:1])
    qt.setQuitOnLastWindowClosed(False)
    qt.setAttribute(Qt.ApplicationAttribute.AA_DontUseNativeDialogs)
    qasync.run(main(out))
    if manifest is not None:
        manifest.write_text(json.dumps(MANIFEST, indent=2) + "\n")
    return 0


@contextlib.contextmanager
def xvfb() -> Iterator[tuple[str, int]]:
    """An Xvfb server on a display number of its own choosing (``-displayfd``): yields
    (``:N``, its pid) once it accepts connections; stopped (SIGTERM, then SIGKILL) after."""
    server = shutil.which("Xvfb")
    if server is None:
        raise SystemExit("screenshots: Xvfb is not installed (Debian: apt-get install xvfb)")
    width, height, depth = SCREEN
    read, write = os.pipe()
    proc = subprocess.Popen(
        [server, "-displayfd", str(write), "-screen", "0", f"{width}x{height}x{depth}", "-nolisten", "tcp"],
        pass_fds=[write],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a Ctrl-C reaches us, and we stop it in order
    )
    os.close(write)
    try:
        number = b""
        deadline = time.monotonic() + XVFB_START
        while not number.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read], [], [], left)[0]:
                raise SystemExit(f"screenshots: Xvfb did not start in {XVFB_START:.0f} s")
            chunk = os.read(read, 16)
            if not chunk:  # it exited
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise SystemExit(f"screenshots: Xvfb exited ({proc.wait()}): {err.strip()[-800:]}")
            number += chunk
        display = f":{int(number)}"
        print(f"Xvfb {display} started (pid {proc.pid}, {width}x{height}x{depth})", flush=True)
        yield display, proc.pid
    finally:
        os.close(read)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        print(f"Xvfb stopped (pid {proc.pid})", flush=True)


def run_under_xvfb(out: Path, manifest: Path | None) -> int:
    """The parent: Xvfb, this script with ``--render`` on it, Xvfb stopped."""
    with xvfb() as (display, _pid):
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONUNBUFFERED="1")
        env.pop("WAYLAND_DISPLAY", None)
        argv = [sys.executable, str(Path(__file__).resolve()), "--render", "--out", str(out)]
        if manifest is not None:
            argv += ["--manifest", str(manifest)]
        child = subprocess.Popen(argv, env=env, cwd=str(REPO))
        try:
            code = child.wait()
        except BaseException:
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            raise
    if code != 0:
        print(f"screenshots: the renderer failed ({code})", file=sys.stderr)
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--manifest", type=Path, help="write the captured files' sizes here (JSON)")
    parser.add_argument("--render", action="store_true", help="(internal) draw on $DISPLAY")
    args = parser.parse_args()
    out = args.out.resolve()
    manifest = args.manifest.resolve() if args.manifest else None
    sys.exit(render(out, manifest) if args.render else run_under_xvfb(out, manifest))

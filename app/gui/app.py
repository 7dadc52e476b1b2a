"""The GUI application: the first-run wizard or the phone's windows, on qasync's loop.

Start-up shows the main window first, from the profile and its store, and loads the
phone service (the overlay, SIP and media stacks: most of the import time) in a worker
thread meanwhile; the phone is then opened on the loop and attached to the window.

:class:`PhoneWindows` are the windows of one :class:`~app.phone.service.Phone`:
the bridge that turns its events into signals, the main window, the tray icon, and the
settings and overlay windows opened on demand. :class:`GuiApp` decides what to show for
a profile folder (the wizard when it holds no profile), opens the phone, and shuts
everything down in order on quit (calls hung up, registration removed, overlay left).
:func:`run` is ``p2psip gui``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QWidget

from app.gui.bridge import EventBridge
from app.gui.icons import icon
from app.gui.main_window import Identity, MainWindow
from app.gui.tasks import cancel_all, spawn
from app.gui.theme import Scheme, apply_scheme, follow_desktop
from app.gui.tray import TrayIcon

if TYPE_CHECKING:
    # Imported when first needed: the main window comes up without them (the phone's
    # modules load in a worker thread meanwhile, :func:`_load_phone_modules`).
    from app.gui.call_media import MediaKit
    from app.gui.overlay_panel import OverlayPanel
    from app.gui.settings import SettingsWindow
    from app.gui.wizard import FirstRunWizard
    from app.phone.service import Phone, PhoneOptions
    from app.phone.store import Settings

log = logging.getLogger("p2psip.gui")

START_MINIMISED = "gui.start_minimised"
"""Store key (the phone's free-form settings) of the "start minimised" choice."""


class ErrorLog(logging.Handler):
    """The last warnings and errors of the phone and the overlay, for the overlay panel."""

    def __init__(self, size: int = 40) -> None:
        super().__init__(logging.WARNING)
        self.lines: collections.deque[str] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            when = time.strftime("%H:%M:%S", time.localtime(record.created))
            self.lines.append(f"{when} {record.getMessage()}")
        except Exception:
            self.handleError(record)

    def install(self) -> None:
        logging.getLogger().addHandler(self)

    def remove(self) -> None:
        logging.getLogger().removeHandler(self)


class PhoneWindows(QObject):
    """The windows of one phone (see the module docstring): built from the profile's
    :class:`~app.gui.main_window.Identity` at once, given the phone by :meth:`attach`."""

    quitRequested = Signal()

    def __init__(self, identity: Identity, *, errors: ErrorLog | None = None, tray: bool = True) -> None:
        super().__init__()
        self.phone: Phone | None = None
        self.kit: MediaKit | None = None
        self.errors = errors or ErrorLog()
        self.bridge = EventBridge(self)
        self.tray = TrayIcon(self) if tray else None
        self.window = MainWindow(identity, self.bridge, self.tray)
        self.window.settingsRequested.connect(self.show_settings)
        self.window.overlayRequested.connect(self.show_overlay)
        self.window.quitRequested.connect(self.quitRequested)
        self.settings_window: SettingsWindow | None = None
        self.overlay_window: OverlayPanel | None = None
        self.start_minimised = False
        self.saving: asyncio.Future[None] | None = None  # the last choice being stored

    @classmethod
    async def for_phone(
        cls, phone: Phone, kit: MediaKit | None, *, errors: ErrorLog | None = None, tray: bool = True
    ) -> PhoneWindows:
        """The windows of an open phone, attached and loaded."""
        windows = cls(Identity.of_phone(phone), errors=errors, tray=tray)
        await windows.attach(phone, kit)
        return windows

    def show_stored(self, profile_dir: Path) -> None:
        """The buddies and recent calls the profile's store holds, before the phone runs
        (read-only, in this thread: a few rows of SQLite)."""
        from app.phone.store import PhoneStore, StoreError, store_path

        if not store_path(profile_dir).exists():
            return
        try:
            with PhoneStore.in_profile(profile_dir) as store:
                contacts, calls, missed = (
                    store.list_contacts(),
                    store.list_calls(limit=200),
                    store.missed_count(),
                )
                start_minimised = store.get_setting(START_MINIMISED, False)
        except (StoreError, OSError) as exc:
            log.info("the store is not readable yet: %s", exc)
            return
        self.start_minimised = start_minimised is True
        self.window.show_stored(contacts, calls, missed)

    async def attach(self, phone: Phone, kit: MediaKit | None) -> None:
        self.phone = phone
        self.kit = kit
        self.bridge.attach(phone)
        await self.window.attach(phone, kit)
        value = await phone.store.get_setting(START_MINIMISED, False)
        self.start_minimised = value is True

    def show(self, *, minimised: bool | None = None) -> None:
        hidden = self.start_minimised if minimised is None else minimised
        if hidden and self.tray is not None and self.tray.available:
            return  # in the tray only; its menu brings the window up
        if hidden:
            self.window.showMinimized()
        else:
            self.window.show()

    def show_settings(self) -> None:
        from app.gui.settings import SettingsWindow

        if self.phone is None:
            return
        if self.settings_window is None:
            profile = self.phone.profile
            lines = [
                ("Address (AoR)", self.phone.aor),
                ("Overlay", self.phone.overlay),
                ("Node-ID", self.phone.node_id.hex()),
                (
                    "Certificate",
                    "self-signed"
                    if profile.descriptor.self_signed
                    else "from the overlay's enrollment server",
                ),
                ("Profile folder", str(profile.directory)),
            ]
            window = SettingsWindow(
                self.phone.settings,
                self._save_settings,
                self.kit,
                lines,
                start_minimised=self.start_minimised,
            )
            window.startMinimisedChanged.connect(self._start_minimised_changed)
            window.setWindowFlag(Qt.WindowType.Window)
            window.echoTestRequested.connect(self.window.echo_test)
            self.settings_window = window
        else:
            self.settings_window.load(self.phone.settings)
        self.settings_window.show()
        self.settings_window.raise_()

    async def _save_settings(self, changes: dict[str, object]) -> Settings:
        from app.phone.service import PhoneError

        assert self.phone is not None
        try:
            return await self.phone.update_settings(**changes)
        except PhoneError as exc:
            raise ValueError(str(exc)) from None

    def show_overlay(self) -> None:
        from app.gui.overlay_panel import OverlayPanel

        phone = self.phone
        if phone is None:
            return
        if self.overlay_window is None:
            panel = OverlayPanel(lambda: phone.overlay_snapshot(errors=list(self.errors.lines)))
            panel.setWindowTitle(f"P2PSIP Phone: overlay {phone.overlay}")
            panel.setWindowIcon(icon("overlay"))
            panel.resize(1000, 600)
            self.overlay_window = panel
        self.overlay_window.show()
        self.overlay_window.raise_()

    def _start_minimised_changed(self, on: bool) -> None:
        self.saving = spawn(self.set_start_minimised(on))

    async def set_start_minimised(self, on: bool) -> None:
        self.start_minimised = on
        if self.phone is not None:
            await self.phone.store.set_setting(START_MINIMISED, on)

    def close_windows(self) -> None:
        self.window.quitting = True
        for w in (self.settings_window, self.overlay_window):
            if w is not None:
                w.close()
        self.window.close()
        if self.tray is not None:
            self.tray.hide()
        self.bridge.detach()


def _load_phone_modules() -> None:
    """The phone service and the call windows: the overlay, SIP and media stacks, most of
    the start-up's import time. Run in a worker thread while the window is already up."""
    import app.gui.call_media
    import app.gui.call_widget
    import app.phone.service  # noqa: F401


class GuiApp(QObject):
    """One profile folder's GUI: :meth:`start` shows the wizard or opens the phone.
    :attr:`windowShown`: the main window is up (the phone may still be loading);
    :attr:`phoneReady`: the phone is open and attached to it."""

    finished = Signal()
    windowShown = Signal()
    phoneReady = Signal()

    def __init__(
        self,
        profile_dir: Path,
        *,
        minimised: bool | None = None,
        use_devices: bool = True,
        options: PhoneOptions | None = None,
    ) -> None:
        super().__init__()
        self.profile_dir = profile_dir
        self.minimised = minimised
        self.use_devices = use_devices
        self.options = options
        self.wizard: FirstRunWizard | None = None
        self.windows: PhoneWindows | None = None
        self.phone: Phone | None = None
        self.errors = ErrorLog()
        self.errors.install()
        self.problem = ""
        self._quitting = False

    def start(self) -> None:
        from app.profile import ProfileError, existing_descriptor

        try:
            descriptor = existing_descriptor(self.profile_dir)
        except ProfileError as exc:
            self.problem = str(exc)
            log.error("%s", exc)
            self.finished.emit()
            return
        if descriptor is None:
            from app.gui.wizard import FirstRunWizard

            self.wizard = FirstRunWizard(self.profile_dir)
            self.wizard.profileReady.connect(self._profile_made)
            self.wizard.show()
            return
        identity = Identity(descriptor.user_name, descriptor.overlay, descriptor.display_name or "")
        windows = PhoneWindows(identity, errors=self.errors)
        windows.quitRequested.connect(lambda: spawn(self.quit()))
        self.windows = windows
        windows.show_stored(self.profile_dir)
        windows.show(minimised=self.minimised)
        self.windowShown.emit()
        spawn(self.open_phone())

    def _profile_made(self, _folder: str) -> None:
        if self.wizard is not None:
            self.wizard.close()
            self.wizard.deleteLater()
            self.wizard = None
        self.start()

    async def open_phone(self) -> None:
        """Load the phone's modules off the loop, open the phone, attach it, start it."""
        await asyncio.to_thread(_load_phone_modules)
        from app.phone.service import Phone, PhoneError, PhoneOptions

        # Calls carry the phone's own audio (app.phone.media): the GUI reads its levels.
        options = dataclasses.replace(
            self.options or PhoneOptions(), media=True, use_devices=self.use_devices
        )
        try:
            phone = await Phone.open(self.profile_dir, options=options)
        except PhoneError as exc:
            self.problem = str(exc)
            log.error("the phone cannot start: %s", exc)
            self.finished.emit()
            return
        self.phone = phone
        assert self.windows is not None
        await self.windows.attach(phone, phone.media)
        self.phoneReady.emit()
        try:
            await phone.start()
        except PhoneError as exc:
            log.error("the phone cannot start: %s", exc)
        if phone.media is not None:
            # The window's user calls soon: the media stack loads now, in its worker
            # thread, so that no call waits for it (the headless phone loads it with its
            # first call, to stay small while idle).
            phone.media.stack.load()

    async def quit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        if self.windows is not None:
            self.windows.close_windows()
        if self.wizard is not None:
            self.wizard.close()
        if self.phone is not None:
            try:
                await asyncio.wait_for(self.phone.close(), 15)
            except TimeoutError:
                log.warning("the phone took too long to sign out")
        self.errors.remove()
        self.finished.emit()


def run(
    profile_dir: Path,
    *,
    minimised: bool | None = None,
    scheme: Scheme = Scheme.SYSTEM,
    smoke: bool = False,
    hook: Callable[[GuiApp], None] | None = None,
) -> int:
    """``p2psip gui``: the whole application until it quits; the exit status.

    ``smoke`` (``p2psip gui --smoke``, the installers' test): once the first window is on
    screen (the wizard, or the main window with the phone opened), say so on stdout and
    quit the normal way (sign-out included). ``hook`` sees the :class:`GuiApp` before it
    starts (``p2psip bench gui`` instruments it so)."""
    import qasync

    QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("P2PSIP Phone")
    app.setApplicationDisplayName("P2PSIP Phone")
    app.setDesktopFileName("p2psip-phone")
    app.setWindowIcon(icon("app"))
    app.setQuitOnLastWindowClosed(False)  # the tray keeps the phone; quitting is explicit
    if scheme is Scheme.SYSTEM:
        follow_desktop(app)
    else:
        apply_scheme(app, scheme)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    gui = GuiApp(profile_dir, minimised=minimised)
    done = asyncio.Event()
    gui.finished.connect(done.set)

    def last_window_closed() -> None:
        # Without a tray, closing the window (or the wizard) is quitting.
        windows = gui.windows
        if windows is None or windows.tray is None or not windows.tray.available:
            spawn(gui.quit())

    app.lastWindowClosed.connect(last_window_closed)

    def shown(window: QWidget) -> None:
        print(f"p2psip gui: {window.windowTitle() or 'window'} shown", flush=True)
        spawn(gui.quit())

    def phone_shown() -> None:
        if gui.windows is not None:
            shown(gui.windows.window)

    if smoke:
        gui.phoneReady.connect(phone_shown)
    if hook is not None:
        hook(gui)

    async def main() -> None:
        gui.start()
        if smoke and gui.wizard is not None and gui.wizard.isVisible():
            shown(gui.wizard)
        await done.wait()
        await cancel_all()

    with loop:
        loop.run_until_complete(main())
    if gui.problem:
        print(f"p2psip: error: {gui.problem}", file=sys.stderr)
        return 1
    return 0


__all__ = ["START_MINIMISED", "ErrorLog", "GuiApp", "PhoneWindows", "run"]

"""The tray icon: the phone's state at a glance (registered, offline, missed calls), a
menu (show the window, do not disturb, quit) and desktop notifications for calls and
messages (``QSystemTrayIcon.showMessage``).

Desktops without a tray (and the offscreen platform) still get a working object: the
icon is simply not shown, and :attr:`TrayIcon.notifications` keeps what would have been
said, newest last.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app.gui.icons import icon
from app.phone.events import PhoneState

NOTIFY_MS = 8000


def tray_icon_name(state: PhoneState, missed: int) -> str:
    if missed:
        return "tray-missed"
    return "tray-online" if state is PhoneState.REGISTERED else "tray-offline"


def tray_tooltip(aor: str, state: PhoneState, reason: str, missed: int) -> str:
    line = f"P2PSIP Phone: {aor}\n{state.value}"
    if state is PhoneState.OFFLINE and reason:
        line += f" ({reason})"
    if missed:
        line += f"\n{missed} missed call{'s' if missed != 1 else ''}"
    return line


class TrayIcon(QObject):
    """See the module docstring. Signals: :attr:`showRequested`, :attr:`dndToggled`,
    :attr:`quitRequested`, :attr:`activated` (a click on a notification or the icon)."""

    showRequested = Signal()
    dndToggled = Signal(bool)
    quitRequested = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tray = QSystemTrayIcon(icon("tray-offline"), self)
        self.menu = QMenu()
        self.show_action = QAction(icon("app"), "Show P2PSIP Phone", self.menu)
        self.show_action.triggered.connect(self.showRequested)
        self.dnd_action = QAction(icon("dnd"), "Do not disturb", self.menu)
        self.dnd_action.setCheckable(True)
        self.dnd_action.toggled.connect(self.dndToggled)
        self.status_action = QAction("", self.menu)
        self.status_action.setEnabled(False)
        self.quit_action = QAction(icon("close"), "Quit", self.menu)
        self.quit_action.triggered.connect(self.quitRequested)
        self.menu.addAction(self.status_action)
        self.menu.addSeparator()
        self.menu.addAction(self.show_action)
        self.menu.addAction(self.dnd_action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.tray.setContextMenu(self.menu)
        self.tray.activated.connect(self._activated)
        self.tray.messageClicked.connect(self.showRequested)
        self.notifications: list[tuple[str, str]] = []
        self.icon_name = "tray-offline"
        self.available = QSystemTrayIcon.isSystemTrayAvailable()
        if self.available:
            self.tray.show()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.showRequested.emit()

    def set_status(self, aor: str, state: PhoneState, reason: str, missed: int) -> None:
        self.icon_name = tray_icon_name(state, missed)
        self.tray.setIcon(icon(self.icon_name))
        tip = tray_tooltip(aor, state, reason, missed)
        self.tray.setToolTip(tip)
        self.status_action.setText(tip.split("\n", 1)[1].replace("\n", ", "))

    def set_dnd(self, on: bool) -> None:
        self.dnd_action.blockSignals(True)
        self.dnd_action.setChecked(on)
        self.dnd_action.blockSignals(False)

    def notify(self, title: str, text: str) -> None:
        self.notifications.append((title, text))
        del self.notifications[:-50]
        if self.available and QSystemTrayIcon.supportsMessages():
            self.tray.showMessage(title, text, icon("app"), NOTIFY_MS)

    def hide(self) -> None:
        self.tray.hide()


__all__ = ["TrayIcon", "tray_icon_name", "tray_tooltip"]

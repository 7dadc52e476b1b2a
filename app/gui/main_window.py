"""The main window: who I am and how I am connected; buddies with presence; the dial
field and pad; the calls going on; recent calls; a chat per buddy.

It talks to the phone through its async API only (every action is spawned, never
awaited in a slot) and hears from it only through the :class:`~app.gui.bridge.EventBridge`.
The window comes up before the phone: it is built from the profile's :class:`Identity`
and what the store holds, while the phone service (the overlay, SIP and media stacks)
is still loading; :meth:`MainWindow.attach` hands it the phone, and the actions wait
for that (the dial field and the buddy list take input meanwhile).
Keyboard: Ctrl+L dial field, Ctrl+F search buddies, Return on a buddy calls them,
Ctrl+Return calls the selected buddy from anywhere, Ctrl+T chats with them, Ctrl+N adds
a buddy, Ctrl+Shift+A answers, Ctrl+Shift+H hangs up, Ctrl+M mutes, Ctrl+E the echo test,
Ctrl+, settings, Ctrl+O the overlay panel, Ctrl+Q quits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.bridge import EventBridge
from app.gui.chat import ChatPane
from app.gui.dialpad import DialPad
from app.gui.formatting import Presence, short_name
from app.gui.icons import icon
from app.gui.models import BuddyFilter, BuddyListModel, HistoryModel
from app.gui.tasks import spawn
from app.gui.tray import TrayIcon
from app.phone.calls import CallDirection, CallState, EndCause
from app.phone.events import (
    BuddiesChanged,
    CallMedia,
    CallQuality,
    CallRemoteHold,
    CallStateChanged,
    DtmfReceived,
    KeyChanged,
    MessageReceived,
    MessageStateChanged,
    PhoneState,
    PhoneStateChanged,
    PresenceChanged,
    SettingsChanged,
)
from app.phone.store import CallRecord, Contact

if TYPE_CHECKING:
    # The phone's modules load after the window is up (see the module docstring).
    from app.gui.call_media import MediaKit
    from app.gui.call_widget import CallWidget, IncomingCallWindow
    from app.phone.phone_call import PhoneCall
    from app.phone.service import Phone

ENDED_LINGER_MS = 4000
"""An ended call stays on screen this long, so its last words ("bob is busy") are read."""

STATE_COLOURS = {
    PhoneState.REGISTERED: "#2da44e",
    PhoneState.JOINING: "#bf8700",
    PhoneState.REGISTERING: "#bf8700",
    PhoneState.OFFLINE: "#cf222e",
    PhoneState.STOPPED: "#8c959f",
    PhoneState.CLOSED: "#8c959f",
}


def connection_words(state: PhoneState, reason: str, role: str | None, retry_in: float | None) -> str:
    """The header's connection line: registered (as a peer or client), joining, offline and why."""
    if state is PhoneState.REGISTERED:
        return f"Registered as a {role}" if role else "Registered"
    if state is PhoneState.JOINING:
        return "Joining the overlay…"
    if state is PhoneState.REGISTERING:
        return "Registering…"
    if state is PhoneState.OFFLINE:
        text = f"Offline: {reason}" if reason else "Offline"
        if retry_in is not None:
            text += f" (trying again in {retry_in:.0f} s)"
        return text
    if state is PhoneState.CLOSED:
        return "Signed out"
    return "Not started"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the window belongs to, known from the profile before the phone runs."""

    user: str  # alice@example.org (the certificate's user name, RFC 7904 §2)
    overlay: str
    display_name: str = ""

    @property
    def aor(self) -> str:
        return f"sip:{self.user}"

    @property
    def domain(self) -> str:
        return self.user.split("@", 1)[1]

    @classmethod
    def of_phone(cls, phone: Phone) -> Identity:
        return cls(phone.user, phone.overlay, phone.display_name)


def echo_aor(domain: str) -> str:
    """The overlay's echo test contact (``echo@`` of our domain)."""
    return f"sip:echo@{domain}"


class BuddyEditor(QFrame):
    """Add or edit a buddy in place (no modal dialog): AoR and display name."""

    submitted = Signal(str, str, str)  # original AoR ("" when adding), AoR, display name

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Buddy editor")
        self.original = ""
        self.aor = QLineEdit()
        self.aor.setPlaceholderText("name, or user@domain")
        self.aor.setAccessibleName("Buddy address")
        self.name = QLineEdit()
        self.name.setPlaceholderText("optional")
        self.name.setAccessibleName("Buddy display name")
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("QLabel { color: #cf222e; }")
        self.error.setAccessibleName("Buddy problem")
        self.error.hide()
        self.save = QPushButton("Save")
        self.save.setAccessibleName("Save buddy")
        cancel = QPushButton("Cancel")
        cancel.setAccessibleName("Cancel buddy editing")
        form = QFormLayout()
        form.addRow("&Address:", self.aor)
        form.addRow("&Name:", self.name)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.save)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        self.save.clicked.connect(self._submit)
        self.aor.returnPressed.connect(self._submit)
        self.name.returnPressed.connect(self._submit)
        cancel.clicked.connect(self.hide)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.hide)
        self.hide()

    def start(self, aor: str = "", name: str = "") -> None:
        self.original = aor
        self.aor.setText(aor)
        self.aor.setReadOnly(bool(aor))  # the AoR is the buddy's key: a new AoR is a new buddy
        self.name.setText(name)
        self.error.hide()
        self.show()
        (self.name if aor else self.aor).setFocus()

    def _submit(self) -> None:
        if self.aor.text().strip():
            self.submitted.emit(self.original, self.aor.text().strip(), self.name.text().strip())

    def fail(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()


class MainWindow(QMainWindow):
    """See the module docstring."""

    settingsRequested = Signal()
    overlayRequested = Signal()
    quitRequested = Signal()

    def __init__(
        self,
        identity: Identity,
        bridge: EventBridge,
        tray: TrayIcon | None = None,
    ) -> None:
        super().__init__()
        self.identity = identity
        self.phone: Phone | None = None
        self.bridge = bridge
        self.kit: MediaKit | None = None
        self.tray = tray
        self.setWindowTitle(f"P2PSIP Phone: {identity.user}")
        self.setWindowIcon(icon("app"))
        self.setAccessibleName("P2PSIP Phone")
        self.call_widgets: dict[int, CallWidget] = {}
        self.incoming_windows: dict[int, IncomingCallWindow] = {}
        self.missed = 0
        self.unread: dict[str, int] = {}
        self.quitting = False
        self.close_to_tray = tray is not None and tray.available
        self.last_state = PhoneStateChanged(PhoneState.STOPPED, "starting", None, time.time())

        self.buddy_model = BuddyListModel(self)
        self.buddy_filter = BuddyFilter(self.buddy_model, self)
        self.history_model = HistoryModel(self)

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.addWidget(self._header())
        outer.addWidget(self._key_banner())
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._buddy_panel())
        splitter.addWidget(self._phone_panel())
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        outer.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self.statusBar().setAccessibleName("Status")
        self._shortcuts()
        self._connect()
        self.show_state(self.last_state)
        self._enable_actions()
        self.resize(1000, 680)

    def show_stored(self, contacts: list[Contact], calls: list[CallRecord], missed: int) -> None:
        """What the store holds, shown before the phone runs (presence: checking)."""
        self.buddy_model.set_contacts(contacts)
        self.history_model.set_calls(calls)
        self.missed = missed
        self._update_tray()

    async def attach(self, phone: Phone, kit: MediaKit | None = None) -> None:
        """The phone is open: act through it, and fill the lists from it."""
        self.phone = phone
        self.kit = kit
        self.identity = Identity.of_phone(phone)
        self.last_state = PhoneStateChanged(phone.state, phone.state_reason, phone.role, time.time())
        self.show_state(self.last_state)
        self._enable_actions()
        await self.load()

    def _enable_actions(self) -> None:
        ready = self.phone is not None
        for widget in (
            self.dial_button,
            self.call_back_button,
            self.add_button,
            self.dnd_button,
            self.chat.send_button,
        ):
            widget.setEnabled(ready)
        self._buddy_buttons()

    # ================================================================ building

    def _key_banner(self) -> QWidget:
        self.key_banner = QFrame()
        self.key_banner.setFrameShape(QFrame.Shape.StyledPanel)
        self.key_banner.setAccessibleName("Key warning")
        self.key_banner.setStyleSheet("QFrame { border: 1px solid #cf222e; }")
        self.key_warning = QLabel()
        self.key_warning.setWordWrap(True)
        self.key_warning.setAccessibleName("Key changed")
        self.key_warning_aor = ""
        accept = QPushButton("Accept the new key")
        accept.setAccessibleName("Accept the new key")
        accept.clicked.connect(self.accept_key)
        dismiss = QPushButton("Keep the old one")
        dismiss.setAccessibleName("Keep the old key")
        dismiss.clicked.connect(lambda: self.key_banner.hide())
        row = QHBoxLayout(self.key_banner)
        row.addWidget(self.key_warning, 1)
        row.addWidget(dismiss)
        row.addWidget(accept)
        self.key_banner.hide()
        return self.key_banner

    def _header(self) -> QWidget:
        header = QFrame()
        header.setFrameShape(QFrame.Shape.StyledPanel)
        header.setAccessibleName("Who I am")
        self.me = QLabel()
        font = QFont(self.me.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.me.setFont(font)
        self.me.setAccessibleName("My name")
        self.my_aor = QLabel(self.identity.aor)
        self.my_aor.setAccessibleName("My address")
        self.my_aor.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.overlay_label = QLabel(f"Overlay {self.identity.overlay}")
        self.overlay_label.setAccessibleName("Overlay")
        self.connection = QLabel()
        self.connection.setAccessibleName("Connection")
        self.connection.setTextFormat(Qt.TextFormat.RichText)
        self.connection.setWordWrap(True)
        who = QVBoxLayout()
        who.addWidget(self.me)
        who.addWidget(self.my_aor)
        where = QVBoxLayout()
        where.addWidget(self.overlay_label)
        where.addWidget(self.connection)
        self.retry_button = QPushButton("Retry now")
        self.retry_button.setAccessibleName("Reconnect now")
        self.retry_button.clicked.connect(self.retry_now)
        self.retry_button.hide()

        def tool(text: str, name: str, icon_name: str) -> QToolButton:
            button = QToolButton()
            button.setText(text)
            button.setIcon(icon(icon_name))
            button.setAccessibleName(name)
            button.setToolTip(name)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setAutoRaise(True)
            return button

        self.dnd_button = tool("Do not disturb", "Do not disturb", "dnd")
        self.dnd_button.setCheckable(True)
        self.dnd_button.clicked.connect(self.toggle_dnd)
        self.echo_button = tool("Echo test", "Call the echo test", "echo")
        self.echo_button.clicked.connect(self.echo_test)
        self.overlay_button = tool("Overlay", "Show the overlay panel", "overlay")
        self.overlay_button.clicked.connect(self.overlayRequested)
        self.settings_button = tool("Settings", "Open the settings", "settings")
        self.settings_button.clicked.connect(self.settingsRequested)
        row = QHBoxLayout(header)
        logo = QLabel()
        logo.setPixmap(icon("app").pixmap(40, 40))
        logo.setAccessibleName("P2PSIP Phone")
        row.addWidget(logo)
        row.addLayout(who, 2)
        row.addLayout(where, 3)
        row.addWidget(self.retry_button)
        for button in (self.dnd_button, self.echo_button, self.overlay_button, self.settings_button):
            row.addWidget(button)
        return header

    def _buddy_panel(self) -> QWidget:
        panel = QWidget()
        panel.setAccessibleName("Buddies")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search buddies (Ctrl+F)")
        self.search.setAccessibleName("Search buddies")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.search.textChanged.connect(self.buddy_filter.search)
        self.buddy_list = QListView()
        self.buddy_list.setAccessibleName("Buddy list")
        self.buddy_list.setModel(self.buddy_filter)
        self.buddy_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.buddy_list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.buddy_list.setSpacing(2)
        self.buddy_list.activated.connect(self._buddy_activated)
        self.buddy_editor = BuddyEditor()
        self.buddy_editor.submitted.connect(self._save_buddy)

        def button(text: str, name: str, icon_name: str) -> QToolButton:
            b = QToolButton()
            b.setIcon(icon(icon_name))
            b.setText(text)
            b.setToolTip(name)
            b.setAccessibleName(name)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            return b

        self.add_button = button("Add", "Add a buddy", "buddy-add")
        self.add_button.clicked.connect(lambda: self.buddy_editor.start())
        self.edit_button = button("Edit", "Edit the buddy", "edit")
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button = button("Remove", "Remove the buddy", "remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.call_button = button("Call", "Call the buddy", "call")
        self.call_button.clicked.connect(self.call_selected)
        self.chat_button = button("Chat", "Chat with the buddy", "chat")
        self.chat_button.clicked.connect(self.chat_selected)
        manage = QHBoxLayout()
        for b in (self.add_button, self.edit_button, self.remove_button):
            manage.addWidget(b)
        manage.addStretch(1)
        talk = QHBoxLayout()
        talk.addWidget(self.call_button)
        talk.addWidget(self.chat_button)
        talk.addStretch(1)
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.buddy_list, 1)
        layout.addWidget(self.buddy_editor)
        layout.addLayout(manage)
        layout.addLayout(talk)
        self.buddy_list.selectionModel().selectionChanged.connect(lambda *_: self._buddy_buttons())
        self.buddy_list.selectionModel().selectionChanged.connect(self._expect_call)
        self.buddy_filter.modelReset.connect(self._buddy_buttons)
        self.buddy_filter.rowsRemoved.connect(lambda *_: self._buddy_buttons())
        self._buddy_buttons()
        return panel

    def _phone_panel(self) -> QWidget:
        panel = QWidget()
        self.dial = QLineEdit()
        self.dial.setPlaceholderText("Name or sip: address to call (Ctrl+L)")
        self.dial.setAccessibleName("Number or address to call")
        self.dial.returnPressed.connect(self.dial_now)
        self.dial.textEdited.connect(self._expect_call)
        self.dial_button = QPushButton(icon("call-answer"), "Call")
        self.dial_button.setAccessibleName("Call the address")
        self.dial_button.clicked.connect(self.dial_now)
        self.dial_error = QLabel()
        self.dial_error.setAccessibleName("Dial problem")
        self.dial_error.setWordWrap(True)
        self.dial_error.setStyleSheet("QLabel { color: #cf222e; }")
        self.dial_error.hide()
        dial_row = QHBoxLayout()
        dial_row.addWidget(self.dial, 1)
        dial_row.addWidget(self.dial_button)

        self.calls_box = QWidget()
        self.calls_layout = QVBoxLayout(self.calls_box)
        self.calls_layout.setContentsMargins(0, 0, 0, 0)
        self.calls_layout.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.calls_area = QScrollArea()
        self.calls_area.setWidgetResizable(True)
        self.calls_area.setWidget(self.calls_box)
        self.calls_area.setAccessibleName("Calls")
        self.calls_area.setFrameShape(QFrame.Shape.NoFrame)
        self.calls_area.hide()

        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Phone pages")
        self.history_list = QListView()
        self.history_list.setAccessibleName("Recent calls")
        self.history_list.setModel(self.history_model)
        self.history_list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history_list.activated.connect(self._history_activated)
        self.call_back_button = QPushButton(icon("call"), "Call back")
        self.call_back_button.setAccessibleName("Call back")
        self.call_back_button.clicked.connect(self.call_back)
        recent = QWidget()
        recent_layout = QVBoxLayout(recent)
        recent_layout.addWidget(self.history_list, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.call_back_button)
        recent_layout.addLayout(row)
        self.tabs.addTab(recent, icon("history"), "&Recent")
        self.pad = DialPad()
        self.pad.pressed.connect(self._pad_pressed)
        pad_page = QWidget()
        pad_layout = QHBoxLayout(pad_page)
        pad_layout.addStretch(1)
        pad_layout.addWidget(self.pad, 3)
        pad_layout.addStretch(1)
        self.tabs.addTab(pad_page, icon("dialpad"), "&Keypad")
        self.chat = ChatPane()
        self.chat.send.connect(self.send_message)
        self.tabs.addTab(self.chat, icon("chat"), "C&hat")

        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(dial_row)
        layout.addWidget(self.dial_error)
        layout.addWidget(self.calls_area)
        layout.addWidget(self.tabs, 1)
        self.phone_layout = layout
        return panel

    def _calls_shown(self) -> None:
        """While calls go on they get the room; the pages below shrink."""
        shown = bool(self.call_widgets)
        self.calls_area.setVisible(shown)
        self.phone_layout.setStretchFactor(self.calls_area, 1 if shown else 0)

    def _shortcuts(self) -> None:
        def key(sequence: QKeySequence | QKeySequence.StandardKey | str, slot: object, name: str) -> None:
            shortcut = QShortcut(QKeySequence(sequence), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)
            shortcut.setObjectName(name)

        key("Ctrl+L", self.focus_dial, "dial")
        key(QKeySequence.StandardKey.Find, self.focus_search, "search")
        key("Ctrl+Return", self.call_selected, "call buddy")
        key("Ctrl+T", self.chat_selected, "chat")
        key("Ctrl+N", lambda: self.buddy_editor.start(), "add buddy")
        key("Ctrl+Shift+A", self.answer_ringing, "answer")
        key("Ctrl+Shift+H", self.hangup_current, "hang up")
        key("Ctrl+M", self.toggle_mute, "mute")
        key("Ctrl+E", self.echo_test, "echo test")
        key("Ctrl+,", self.settingsRequested.emit, "settings")
        key("Ctrl+O", self.overlayRequested.emit, "overlay")
        key(QKeySequence.StandardKey.Quit, self.quitRequested.emit, "quit")

    def _connect(self) -> None:
        b = self.bridge
        b.phoneState.connect(self.show_state)
        b.buddies.connect(self._on_buddies)
        b.presence.connect(self._on_presence)
        b.callState.connect(self._on_call_state)
        b.callRemoteHold.connect(self._on_remote_hold)
        b.callQuality.connect(self._on_quality)
        b.callMedia.connect(self._on_media)
        b.dtmf.connect(self._on_dtmf)
        b.keyChanged.connect(self._on_key_changed)
        b.messageReceived.connect(self._on_message)
        b.messageState.connect(self._on_message_state)
        b.settings.connect(self._on_settings)
        if self.tray is not None:
            self.tray.showRequested.connect(self.bring_up)
            self.tray.dndToggled.connect(lambda on: self.set_dnd(on))
            self.tray.quitRequested.connect(self.quitRequested)

    # ================================================================ loading

    def retry_now(self) -> None:
        if self.phone is not None:
            self.phone.retry_now()

    async def load(self) -> None:
        """Fill the lists from the phone (at start-up; events keep them current after)."""
        if self.phone is None:
            return
        buddies = await self.phone.buddies()
        presence = {
            b.aor: (
                Presence.CHECKING if b.online is None else Presence.ONLINE if b.online else Presence.OFFLINE
            )
            for b in buddies
        }
        self.buddy_model.set_contacts(
            [Contact(b.aor, b.display_name, b.added, b.last_seen) for b in buddies], presence
        )
        await self.reload_history()
        self._show_settings_state()

    async def reload_history(self) -> None:
        if self.phone is None:
            return
        self.history_model.set_calls(await self.phone.history(limit=200))
        self.missed = await self.phone.store.missed_count()
        self._update_tray()

    # ================================================================ the header

    def show_state(self, event: PhoneStateChanged) -> None:
        self.last_state = event
        self.me.setText(short_name(self.identity.aor, self.identity.display_name))
        colour = STATE_COLOURS.get(event.state, "#8c959f")
        words = connection_words(
            event.state, event.reason, event.role.value if event.role else None, event.retry_in
        )
        self.connection.setText(f'<span style="color:{colour}">●</span> {escape(words, quote=False)}')
        self.connection.setAccessibleDescription(words)
        self.retry_button.setVisible(event.state is PhoneState.OFFLINE)
        self.echo_button.setEnabled(event.state is PhoneState.REGISTERED)
        self.statusBar().showMessage(words)
        self._update_tray()

    def _update_tray(self) -> None:
        if self.tray is not None:
            s = self.last_state
            self.tray.set_status(self.identity.aor, s.state, s.reason, self.missed)

    def _show_settings_state(self) -> None:
        if self.phone is None:
            return
        dnd = self.phone.settings.do_not_disturb
        self.dnd_button.setChecked(dnd)
        if self.tray is not None:
            self.tray.set_dnd(dnd)
        self.identity = Identity.of_phone(self.phone)
        self.me.setText(short_name(self.identity.aor, self.identity.display_name))

    def _on_settings(self, event: SettingsChanged) -> None:
        self._show_settings_state()

    def toggle_dnd(self) -> None:
        self.set_dnd(self.dnd_button.isChecked())

    def set_dnd(self, on: bool) -> None:
        spawn(self._update_settings(do_not_disturb=on))

    async def _update_settings(self, **changes: object) -> None:
        from app.phone.service import PhoneError

        if self.phone is None:
            return
        try:
            await self.phone.update_settings(**changes)
        except PhoneError as exc:
            self.statusBar().showMessage(f"Not changed: {exc}")
            self._show_settings_state()

    # ================================================================ buddies

    def selected_buddy(self) -> str | None:
        index = self.buddy_list.currentIndex()
        selected = self.buddy_list.selectionModel().selectedIndexes()
        if selected:
            index = selected[0]
        return self.buddy_filter.aor_at(index.row()) if index.isValid() else None

    def select_buddy(self, aor: str) -> bool:
        for row in range(self.buddy_filter.rowCount()):
            if self.buddy_filter.aor_at(row) == aor:
                self.buddy_list.setCurrentIndex(self.buddy_filter.index(row, 0))
                return True
        return False

    def _buddy_buttons(self) -> None:
        chosen = self.selected_buddy() is not None and self.phone is not None
        for b in (self.edit_button, self.remove_button, self.call_button, self.chat_button):
            b.setEnabled(chosen)

    def _buddy_activated(self, index: QModelIndex) -> None:
        aor = self.buddy_filter.aor_at(index.row())
        if aor is not None:
            self.place_call(aor)

    def _save_buddy(self, original: str, aor: str, name: str) -> None:
        spawn(self._save_buddy_now(original, aor, name))

    async def _save_buddy_now(self, original: str, aor: str, name: str) -> None:
        from app.phone.service import PhoneError

        if self.phone is None:
            return
        try:
            if original:
                await self.phone.rename_buddy(original, name)
            else:
                buddy = await self.phone.add_buddy(aor, name)
                self.select_buddy(buddy.aor)
        except PhoneError as exc:
            self.buddy_editor.fail(str(exc))
            return
        self.buddy_editor.hide()

    def edit_selected(self) -> None:
        aor = self.selected_buddy()
        buddy = self.buddy_model.buddy_of(aor) if aor else None
        if buddy is not None:
            self.buddy_editor.start(buddy.aor, buddy.display_name)

    def remove_selected(self) -> None:
        aor = self.selected_buddy()
        if aor is not None and self.phone is not None:
            spawn(self.phone.remove_buddy(aor))

    def _on_buddies(self, event: BuddiesChanged) -> None:
        self.buddy_model.on_buddies(event)
        self._buddy_buttons()

    def _on_presence(self, event: PresenceChanged) -> None:
        self.buddy_model.on_presence(event)

    # ================================================================ calls

    def focus_dial(self) -> None:
        self.dial.setFocus()
        self.dial.selectAll()

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def _expect_call(self, *_: object) -> None:
        """A call may come soon (typing an address, picking a buddy): load the media
        stack now (once, in a worker thread), so the first call does not wait for it."""
        if self.kit is not None:
            self.kit.stack.load()

    def dial_now(self) -> None:
        target = self.dial.text().strip()
        if target:
            self.place_call(target)

    def call_selected(self) -> None:
        aor = self.selected_buddy()
        if aor is not None:
            self.place_call(aor)

    def echo_test(self) -> None:
        self.place_call(echo_aor(self.identity.domain))

    def call_back(self) -> None:
        record = self.history_model.record_at(self.history_list.currentIndex().row())
        if record is not None:
            self.place_call(record.peer_aor)

    def _history_activated(self, index: QModelIndex) -> None:
        record = self.history_model.record_at(index.row())
        if record is not None:
            self.place_call(record.peer_aor)

    def _pad_pressed(self, key: str) -> None:
        active = self.active_call_widget()
        if active is not None and active.call.state is CallState.CONNECTED:
            active.send_dtmf(key)
            return
        self.dial.insert(key)

    def place_call(self, target: str) -> None:
        self.dial_error.hide()
        if self.phone is None:
            self.statusBar().showMessage("The phone is still starting…")
            return
        spawn(self._place(target))

    async def _place(self, target: str) -> None:
        from app.phone.service import PhoneError

        assert self.phone is not None
        try:
            await self.phone.call(target)
        except PhoneError as exc:
            self.dial_error.setText(str(exc))
            self.dial_error.show()

    def active_call_widget(self) -> CallWidget | None:
        live = [w for w in self.call_widgets.values() if w.call.live]
        for state in (
            CallState.CONNECTED,
            CallState.RINGING,
            CallState.EARLY_MEDIA,
            CallState.DIALING,
            CallState.HELD,
        ):
            for widget in live:
                if widget.call.state is state:
                    return widget
        return None

    def answer_ringing(self) -> None:
        for widget in self.call_widgets.values():
            call = widget.call
            if call.direction is CallDirection.INCOMING and call.state is CallState.RINGING:
                widget.answer()
                return

    def hangup_current(self) -> None:
        widget = self.active_call_widget()
        if widget is not None:
            widget.hangup()

    def toggle_mute(self) -> None:
        widget = self.active_call_widget()
        if widget is not None and widget.mute_button.isEnabled():
            widget.mute_button.toggle()

    def _on_call_state(self, event: CallStateChanged) -> None:
        widget = self.call_widgets.get(event.call)
        call = self.phone.get_call(event.call) if self.phone is not None else None
        if widget is None and call is not None and event.state is not CallState.ENDED:
            widget = self._add_call(call)
        if widget is not None:
            widget.on_state(event)
        window = self.incoming_windows.get(event.call)
        if window is not None:
            window.on_state(event)
            if event.state is not CallState.RINGING:
                del self.incoming_windows[event.call]
                window.deleteLater()
        if (
            event.previous is None
            and event.direction is CallDirection.INCOMING
            and event.state is CallState.RINGING
            and call is not None
        ):
            self._incoming(call)
        if event.state is CallState.ENDED:
            if event.cause is EndCause.MISSED and self.tray is not None:
                self.tray.notify("Missed call", f"{event.name} called ({event.peer})")
            spawn(self.reload_history())
            # With the window as context: a window gone before the timer fires cancels it.
            QTimer.singleShot(ENDED_LINGER_MS, self, lambda: self._drop_call(event.call))

    def _add_call(self, call: PhoneCall) -> CallWidget:
        from app.gui.call_widget import CallWidget

        widget = CallWidget(call, self.kit)
        self.call_widgets[call.id] = widget
        self.calls_layout.addWidget(widget)
        self._calls_shown()
        return widget

    def _drop_call(self, call_id: int) -> None:
        widget = self.call_widgets.get(call_id)
        if widget is None or widget.call.live:
            return
        del self.call_widgets[call_id]
        self.calls_layout.removeWidget(widget)
        widget.deleteLater()
        self._calls_shown()

    def _incoming(self, call: PhoneCall) -> None:
        from app.gui.call_widget import IncomingCallWindow

        window = IncomingCallWindow(call)
        self.incoming_windows[call.id] = window
        window.show()
        window.raise_()
        if self.tray is not None:
            who = call.name if call.verified else f"{call.name} (not verified)"
            self.tray.notify("Incoming call", f"{who} is calling")

    def _on_remote_hold(self, event: CallRemoteHold) -> None:
        widget = self.call_widgets.get(event.call)
        if widget is not None:
            widget.on_remote_hold(event)

    def _on_quality(self, event: CallQuality) -> None:
        widget = self.call_widgets.get(event.call)
        if widget is not None:
            widget.on_quality(event)

    def _on_media(self, event: CallMedia) -> None:
        widget = self.call_widgets.get(event.call)
        if widget is not None:
            widget.on_media(event)

    def _on_dtmf(self, event: DtmfReceived) -> None:
        widget = self.call_widgets.get(event.call)
        if widget is not None:
            widget.on_dtmf(event)

    def _on_key_changed(self, event: KeyChanged) -> None:
        """Someone came with another key than the one pinned for them: not the person
        first seen under that name, or the same person on a new device. The user decides."""
        name = short_name(event.aor, self.phone.display_name_of(event.aor) if self.phone else "")
        self.key_warning.setText(
            f"{name}'s key has changed ({event.node_id.hex()[:8]}, was {event.pinned_node_id.hex()[:8]}): "
            "it may be someone else using the name. Accept the new key only if you know why it changed."
        )
        self.key_warning_aor = event.aor
        self.key_banner.show()
        if self.tray is not None:
            self.tray.notify("Key changed", f"{name}'s key is not the one first seen")

    def accept_key(self) -> None:
        if self.phone is not None and self.key_warning_aor:
            self.phone.accept_key(self.key_warning_aor)
        self.key_banner.hide()

    # ================================================================ messages

    def chat_selected(self) -> None:
        aor = self.selected_buddy()
        if aor is not None:
            self.open_chat(aor)

    def open_chat(self, peer: str) -> None:
        if self.phone is not None:
            spawn(self._open_chat(peer))

    async def _open_chat(self, peer: str) -> None:
        assert self.phone is not None
        records = await self.phone.messages(peer)
        name = self.phone.display_name_of(peer) or short_name(peer)
        self.chat.open(peer, name, records)
        self.tabs.setCurrentWidget(self.chat)
        self.chat.input.setFocus()
        if self.unread.pop(peer, 0):
            await self.phone.mark_read(peer)

    def send_message(self, peer: str, text: str) -> None:
        if self.phone is not None:
            spawn(self.phone.send_message(peer, text))

    def _on_message(self, event: MessageReceived) -> None:
        record = event.record
        if record.peer_aor == self.chat.peer:
            self.chat.upsert(record)
        if record.peer_aor != self.chat.peer or not self.isActiveWindow():
            self.unread[record.peer_aor] = self.unread.get(record.peer_aor, 0) + 1
            name = short_name(
                record.peer_aor, self.phone.display_name_of(record.peer_aor) if self.phone else ""
            )
            if self.tray is not None:
                self.tray.notify(f"Message from {name}", record.text)
            self.statusBar().showMessage(f"New message from {name}")

    def _on_message_state(self, event: MessageStateChanged) -> None:
        self.chat.upsert(event.record)

    # ================================================================ window

    def bring_up(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.close_to_tray and not self.quitting:
            # The phone keeps running (calls can come in); the tray brings it back.
            event.ignore()
            self.hide()
            return
        for window in list(self.incoming_windows.values()):
            window.close()
        super().closeEvent(event)


__all__ = ["BuddyEditor", "Identity", "MainWindow", "connection_words", "echo_aor"]

"""The first-run wizard: the local network with no set-up, or joining an overlay.

A plain window with three pages, never modal (no ``exec()``): the loop keeps running
while the user types, and while enrollment fetches, generates and asks in a worker
thread (:mod:`app.gui.enroll`). :attr:`FirstRunWizard.profileReady` carries the profile
folder once it holds a profile.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCommandLinkButton,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui.enroll import STEP_WORDS, EnrollFailure, create_local_profile, join_overlay
from app.gui.icons import icon
from app.gui.tasks import spawn
from app.phone.local_config import LOCAL_OVERLAY_NAME
from app.phone.names import BadName, local_name

STEPS = list(STEP_WORDS)


def _title(text: str) -> QLabel:
    label = QLabel(text)
    font = QFont(label.font())
    font.setPointSizeF(font.pointSizeF() * 1.4)
    font.setBold(True)
    label.setFont(font)
    label.setWordWrap(True)
    return label


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


class ErrorBox(QLabel):
    """A problem in words: a bold headline and the detail under it; hidden when clear."""

    def __init__(self) -> None:
        super().__init__()
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setAccessibleName("Error")
        self.setStyleSheet("QLabel { color: #cf222e; }")
        self.hide()

    def show_problem(self, headline: str, detail: str = "") -> None:
        body = f"<b>{escape(headline, quote=False)}</b>"
        if detail:
            body += f"<br>{escape(detail, quote=False)}"
        self.setText(body)
        self.setAccessibleDescription(f"{headline} {detail}".strip())
        self.show()

    def clear_problem(self) -> None:
        self.clear()
        self.hide()


class FirstRunWizard(QWidget):
    """See the module docstring. ``profile_dir``: where the new profile goes."""

    profileReady = Signal(str)
    failed = Signal(str, str)
    """A profile could not be made: the :class:`~app.gui.enroll.Problem` and the detail."""

    def __init__(self, profile_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.profile_dir = profile_dir
        self.setWindowTitle("P2PSIP Phone: welcome")
        self.setWindowIcon(icon("app"))
        self.setAccessibleName("First-run wizard")
        self.setMinimumWidth(520)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._choice_page())
        self.pages.addWidget(self._local_page())
        self.pages.addWidget(self._join_page())
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.back)
        self.busy = False

    # ---------------------------------------------------------------- pages

    def _choice_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Welcome to P2PSIP Phone"))
        layout.addWidget(
            _note(
                "Call and message people with no phone company and no server in between. How do you want to start?"
            )
        )
        self.local_choice = QCommandLinkButton(
            "Use the local network, no set-up",
            "Talk to people on this network (home, office). Pick a name; there is nothing else to set up.",
        )
        self.local_choice.setIcon(icon("network-local"))
        self.local_choice.setAccessibleName("Use the local network, no set-up")
        self.local_choice.clicked.connect(lambda: self.show_page(1))
        self.join_choice = QCommandLinkButton(
            "Join an overlay",
            "Sign in to an overlay you have an account on: its configuration address, your user name and password.",
        )
        self.join_choice.setIcon(icon("network-join"))
        self.join_choice.setAccessibleName("Join an overlay")
        self.join_choice.clicked.connect(lambda: self.show_page(2))
        layout.addWidget(self.local_choice)
        layout.addWidget(self.join_choice)
        layout.addStretch(1)
        return page

    def _local_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Your name on this network"))
        layout.addWidget(
            _note(
                "Others on the network call you by this name. It is yours as long as no other device "
                "already uses it (first come, first served)."
            )
        )
        form = QFormLayout()
        self.local_name = QLineEdit()
        self.local_name.setPlaceholderText("e.g. alice")
        self.local_name.setAccessibleName("Name")
        self.local_name.textChanged.connect(self._local_changed)
        self.local_name.returnPressed.connect(self.create_local)
        self.local_display = QLineEdit()
        self.local_display.setPlaceholderText("optional, e.g. Alice Liddell")
        self.local_display.setAccessibleName("Display name")
        self.local_display.returnPressed.connect(self.create_local)
        form.addRow("&Name:", self.local_name)
        form.addRow("&Display name:", self.local_display)
        layout.addLayout(form)
        self.local_preview = QLabel()
        self.local_preview.setAccessibleName("Your address")
        self.local_preview.setWordWrap(True)
        layout.addWidget(self.local_preview)
        self.local_error = ErrorBox()
        layout.addWidget(self.local_error)
        layout.addStretch(1)
        buttons = QHBoxLayout()
        back = QPushButton("&Back")
        back.setAccessibleName("Back")
        back.clicked.connect(self.back)
        self.local_create = QPushButton("&Start")
        self.local_create.setAccessibleName("Start on the local network")
        self.local_create.setDefault(True)
        self.local_create.setEnabled(False)
        self.local_create.clicked.connect(self.create_local)
        buttons.addWidget(back)
        buttons.addStretch(1)
        buttons.addWidget(self.local_create)
        layout.addLayout(buttons)
        return page

    def _join_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Join an overlay"))
        layout.addWidget(
            _note(
                "Your overlay's operator gave you its configuration address (https://…/.well-known/reload-config), "
                "a user name and a password."
            )
        )
        form = QFormLayout()
        self.join_url = QLineEdit()
        self.join_url.setPlaceholderText("https://example.org/.well-known/reload-config")
        self.join_url.setAccessibleName("Configuration URL")
        self.join_user = QLineEdit()
        self.join_user.setPlaceholderText("alice")
        self.join_user.setAccessibleName("User name")
        self.join_password = QLineEdit()
        self.join_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.join_password.setAccessibleName("Password")
        cafile_row = QHBoxLayout()
        self.join_cafile = QLineEdit()
        self.join_cafile.setPlaceholderText("optional: the overlay's CA certificate (PEM)")
        self.join_cafile.setAccessibleName("CA certificate file")
        browse = QPushButton("Bro&wse…")
        browse.setAccessibleName("Choose the CA certificate file")
        browse.clicked.connect(self._browse_cafile)
        cafile_row.addWidget(self.join_cafile, 1)
        cafile_row.addWidget(browse)
        for field in (self.join_url, self.join_user, self.join_password):
            field.textChanged.connect(self._join_changed)
            field.returnPressed.connect(self.join)
        form.addRow("Configuration &URL:", self.join_url)
        form.addRow("&User name:", self.join_user)
        form.addRow("&Password:", self.join_password)
        form.addRow("CA &file:", cafile_row)
        layout.addLayout(form)
        self.join_progress = QProgressBar()
        self.join_progress.setRange(0, len(STEPS))
        self.join_progress.setAccessibleName("Progress")
        self.join_progress.hide()
        self.join_status = QLabel()
        self.join_status.setAccessibleName("Status")
        self.join_status.setWordWrap(True)
        layout.addWidget(self.join_progress)
        layout.addWidget(self.join_status)
        self.join_error = ErrorBox()
        layout.addWidget(self.join_error)
        layout.addStretch(1)
        buttons = QHBoxLayout()
        back = QPushButton("&Back")
        back.setAccessibleName("Back")
        back.clicked.connect(self.back)
        self.join_button = QPushButton("&Join")
        self.join_button.setAccessibleName("Join the overlay")
        self.join_button.setDefault(True)
        self.join_button.setEnabled(False)
        self.join_button.clicked.connect(self.join)
        buttons.addWidget(back)
        buttons.addStretch(1)
        buttons.addWidget(self.join_button)
        layout.addLayout(buttons)
        return page

    # ---------------------------------------------------------------- navigation

    def show_page(self, index: int) -> None:
        self.pages.setCurrentIndex(index)
        focus = {1: self.local_name, 2: self.join_url}.get(index)
        if focus is not None:
            focus.setFocus()

    def back(self) -> None:
        if not self.busy and self.pages.currentIndex() != 0:
            self.show_page(0)

    def _browse_cafile(self) -> None:
        # Non-modal: open() returns at once, the choice arrives by signal.
        dialog = QFileDialog(
            self, "The overlay's CA certificate", "", "PEM certificates (*.pem *.crt);;All files (*)"
        )
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.join_cafile.setText)
        dialog.open()

    # ---------------------------------------------------------------- local overlay

    def _local_changed(self, text: str) -> None:
        self.local_error.clear_problem()
        if not text.strip():
            self.local_preview.setText("")
            self.local_create.setEnabled(False)
            return
        try:
            name = local_name(text)
        except BadName as exc:
            self.local_preview.setText(str(exc))
            self.local_create.setEnabled(False)
            return
        self.local_preview.setText(f"You will be sip:{name}@{LOCAL_OVERLAY_NAME}")
        self.local_create.setEnabled(not self.busy)

    def create_local(self) -> None:
        if self.busy or not self.local_create.isEnabled():
            return
        self._set_busy(True)  # at once: a second click must not start a second attempt
        spawn(self._create_local())

    async def _create_local(self) -> None:
        try:
            profile = await create_local_profile(
                self.local_name.text(),
                self.profile_dir,
                display_name=self.local_display.text().strip() or None,
            )
        except EnrollFailure as exc:
            self.local_error.show_problem(exc.headline, exc.detail)
            self.failed.emit(exc.problem.value, exc.detail)
            return
        finally:
            self._set_busy(False)
        self.profileReady.emit(str(profile.directory))

    # ---------------------------------------------------------------- joining

    def _join_changed(self, _text: str) -> None:
        ready = all(f.text().strip() for f in (self.join_url, self.join_user, self.join_password))
        self.join_button.setEnabled(ready and not self.busy)

    def _on_step(self, step: str) -> None:
        if step in STEPS:
            self.join_progress.setValue(STEPS.index(step))
        self.join_status.setText(STEP_WORDS.get(step, step))

    def join(self) -> None:
        if self.busy or not self.join_button.isEnabled():
            return
        self._set_busy(True)
        spawn(self._join())

    async def _join(self) -> None:
        self.join_error.clear_problem()
        self.join_progress.setValue(0)
        self.join_progress.show()
        try:
            profile = await join_overlay(
                self.join_url.text(),
                self.join_user.text(),
                self.join_password.text(),
                self.profile_dir,
                cafile=self.join_cafile.text().strip() or None,
                progress=self._on_step,
            )
        except EnrollFailure as exc:
            self.join_progress.hide()
            self.join_status.setText("")
            self.join_error.show_problem(exc.headline, exc.detail)
            self.failed.emit(exc.problem.value, exc.detail)
            return
        finally:
            self._set_busy(False)
        self.join_progress.setValue(len(STEPS))
        self.join_status.setText(f"Joined as {profile.descriptor.user_name}.")
        self.profileReady.emit(str(profile.directory))

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        for widget in (
            self.local_name,
            self.local_display,
            self.join_url,
            self.join_user,
            self.join_password,
        ):
            widget.setReadOnly(busy)
        if busy:
            self.local_create.setEnabled(False)
            self.join_button.setEnabled(False)
        else:
            self._local_changed(self.local_name.text())
            self._join_changed("")


__all__ = ["ErrorBox", "FirstRunWizard"]

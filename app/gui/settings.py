"""The settings window (non-modal): audio devices with a test tone and a live microphone
level, echo cancellation, the codec order; answering and forwarding; do not disturb;
the profile and its overlay; the echo test one click away.

The form starts from the phone's :class:`~app.phone.store.Settings` and
:meth:`SettingsWindow.changes` says what differs; *Save* hands those to
``phone.update_settings`` (which checks them: a forward target that is not an address,
forwarding to oneself) and shows its refusal in words.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QHideEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui.call_media import MediaKit, dbfs
from app.gui.icons import icon
from app.gui.meters import LevelMeter
from app.gui.tasks import spawn
from app.media.audio import Samples
from app.media.devices import AudioDevice, AudioDeviceError, CaptureStream, find_device
from app.phone.store import Settings

DEFAULT_DEVICE = "System default"
KNOWN_CODECS = ("opus", "G722", "PCMU", "PCMA")

Saver = Callable[[dict[str, Any]], Awaitable[Settings]]


def _target_text(value: str | None) -> str:
    return value or ""


class SettingsWindow(QWidget):
    """See the module docstring. ``save`` is ``phone.update_settings`` taking a dict;
    ``profile``: (label, value) lines shown on the Profile tab."""

    echoTestRequested = Signal()
    saved = Signal(object)  # Settings
    startMinimisedChanged = Signal(bool)
    refused = Signal(str)  # the phone's reason

    def __init__(
        self,
        settings: Settings,
        save: Saver,
        kit: MediaKit | None,
        profile: list[tuple[str, str]],
        parent: QWidget | None = None,
        *,
        start_minimised: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("P2PSIP Phone: settings")
        self.setWindowIcon(icon("settings"))
        self.setAccessibleName("Settings")
        self.settings = settings
        self._save = save
        self.kit = kit
        self._capture: CaptureStream | None = None
        self._level_task: asyncio.Future[None] | None = None
        self._start_minimised = start_minimised
        tabs = QTabWidget()
        tabs.setAccessibleName("Settings pages")
        tabs.addTab(self._audio_tab(), icon("speaker"), "&Audio")
        tabs.addTab(self._calls_tab(), icon("call"), "&Calls")
        tabs.addTab(self._profile_tab(profile), icon("buddy"), "&Profile")
        self.tabs = tabs
        self.error = QLabel()
        self.error.setAccessibleName("Settings problem")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("QLabel { color: #cf222e; }")
        self.error.hide()
        self.echo_button = QPushButton(icon("echo"), "&Echo test")
        self.echo_button.setAccessibleName("Call the echo test")
        self.echo_button.setToolTip("Call the overlay's echo service: you hear yourself back")
        self.echo_button.clicked.connect(self.echoTestRequested)
        self.save_button = QPushButton("&Save")
        self.save_button.setAccessibleName("Save settings")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save)
        close = QPushButton("Close")
        close.setAccessibleName("Close settings")
        close.clicked.connect(self.close)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Close), self, self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.echo_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        self.load(settings)

    # ---------------------------------------------------------------- pages

    def _audio_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        devices = QGroupBox("Devices")
        form = QFormLayout(devices)
        self.input_device = QComboBox()
        self.input_device.setAccessibleName("Microphone")
        self.output_device = QComboBox()
        self.output_device.setAccessibleName("Speaker")
        self.ringer_device = QComboBox()
        self.ringer_device.setAccessibleName("Ringing device")
        self.mic_level = LevelMeter("Microphone level now")
        self.mic_note = QLabel()
        self.mic_note.setAccessibleName("Microphone state")
        self.mic_note.setWordWrap(True)
        self.tone_button = QPushButton(icon("speaker"), "&Test tone")
        self.tone_button.setAccessibleName("Play a test tone")
        self.tone_button.clicked.connect(self.test_tone)
        form.addRow("&Microphone:", self.input_device)
        form.addRow("Level:", self.mic_level)
        form.addRow("", self.mic_note)
        form.addRow("&Speaker:", self.output_device)
        form.addRow("&Ringing on:", self.ringer_device)
        form.addRow("", self.tone_button)
        self.input_device.currentIndexChanged.connect(lambda _i: self._restart_level())
        layout.addWidget(devices)
        processing = QGroupBox("Sound")
        form2 = QFormLayout(processing)
        self.echo_cancellation = QCheckBox("Cancel the echo of the speaker in the microphone")
        self.echo_cancellation.setAccessibleName("Echo cancellation")
        why = self.kit.echo_cancellation_available if self.kit is not None else None
        if why is not None:
            self.echo_cancellation.setToolTip(f"not available here: {why}")
        form2.addRow(self.echo_cancellation)
        codecs_row = QHBoxLayout()
        self.codecs = QListWidget()
        self.codecs.setAccessibleName("Codec order")
        self.codecs.setMaximumHeight(110)
        up = QPushButton("Up")
        up.setAccessibleName("Move codec up")
        up.clicked.connect(lambda: self._move_codec(-1))
        down = QPushButton("Down")
        down.setAccessibleName("Move codec down")
        down.clicked.connect(lambda: self._move_codec(1))
        moves = QVBoxLayout()
        moves.addWidget(up)
        moves.addWidget(down)
        moves.addStretch(1)
        codecs_row.addWidget(self.codecs, 1)
        codecs_row.addLayout(moves)
        form2.addRow("Codec order:", codecs_row)
        layout.addWidget(processing)
        layout.addStretch(1)
        return page

    def _calls_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        answering = QGroupBox("Answering")
        form = QFormLayout(answering)
        self.do_not_disturb = QCheckBox("Do not disturb: callers hear that you do not want calls")
        self.do_not_disturb.setAccessibleName("Do not disturb")
        self.auto_answer = QCheckBox("Answer every call at once")
        self.auto_answer.setAccessibleName("Auto-answer")
        form.addRow(self.do_not_disturb)
        form.addRow(self.auto_answer)
        self.start_minimised = QCheckBox("Start minimised, in the tray (the phone still takes calls)")
        self.start_minimised.setAccessibleName("Start minimised")
        self.start_minimised.setChecked(self._start_minimised)
        self.start_minimised.toggled.connect(self.startMinimisedChanged)
        form.addRow(self.start_minimised)
        layout.addWidget(answering)
        forwarding = QGroupBox("Forwarding")
        form2 = QFormLayout(forwarding)
        self.forward_always = QLineEdit()
        self.forward_always.setAccessibleName("Forward every call to")
        self.forward_busy = QLineEdit()
        self.forward_busy.setAccessibleName("Forward when busy to")
        self.forward_no_answer = QLineEdit()
        self.forward_no_answer.setAccessibleName("Forward when not answered to")
        for field in (self.forward_always, self.forward_busy, self.forward_no_answer):
            field.setPlaceholderText("nobody (name or sip: address)")
        self.no_answer_seconds = QSpinBox()
        self.no_answer_seconds.setRange(1, 600)
        self.no_answer_seconds.setSuffix(" s")
        self.no_answer_seconds.setAccessibleName("Seconds before forwarding an unanswered call")
        form2.addRow("&Always to:", self.forward_always)
        form2.addRow("When &busy to:", self.forward_busy)
        form2.addRow("When &not answered to:", self.forward_no_answer)
        form2.addRow("…after:", self.no_answer_seconds)
        layout.addWidget(forwarding)
        layout.addStretch(1)
        return page

    def _profile_tab(self, profile: list[tuple[str, str]]) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.display_name = QLineEdit()
        self.display_name.setAccessibleName("Display name")
        self.display_name.setPlaceholderText("the name the people you call see")
        form.addRow("&Display name:", self.display_name)
        for label, value in profile:
            shown = QLabel(value)
            shown.setAccessibleName(label)
            shown.setWordWrap(True)
            form.addRow(f"{label}:", shown)
        return page

    # ---------------------------------------------------------------- the form

    def _fill_devices(self, combo: QComboBox, devices: list[AudioDevice], chosen: str | None) -> None:
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(DEFAULT_DEVICE, None)
        for device in devices:
            combo.addItem(f"{device.name} ({device.hostapi})", device.name)
        if chosen is not None and combo.findData(chosen) < 0:
            combo.addItem(f"{chosen} (not connected)", chosen)
        combo.setCurrentIndex(max(0, combo.findData(chosen)) if chosen is not None else 0)
        combo.blockSignals(False)

    def load(self, settings: Settings) -> None:
        """Show ``settings`` in the form."""
        self.settings = settings
        devices = self.kit.devices() if self.kit is not None else []
        inputs = [d for d in devices if d.is_input]
        outputs = [d for d in devices if d.is_output]
        self._fill_devices(self.input_device, inputs, settings.input_device)
        self._fill_devices(self.output_device, outputs, settings.output_device)
        self._fill_devices(self.ringer_device, outputs, settings.ringer_device)
        if not inputs:
            self.mic_note.setText("No microphone found: calls send silence.")
        if not outputs:
            self.tone_button.setEnabled(False)
            self.tone_button.setToolTip("No speaker found")
        self.echo_cancellation.setChecked(settings.echo_cancellation)
        self.codecs.clear()
        order = list(settings.codec_order) + [c for c in KNOWN_CODECS if c not in settings.codec_order]
        for name in order:
            item_checked = name in settings.codec_order
            self.codecs.addItem(name)
            item = self.codecs.item(self.codecs.count() - 1)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if item_checked else Qt.CheckState.Unchecked)
        self.do_not_disturb.setChecked(settings.do_not_disturb)
        self.auto_answer.setChecked(settings.auto_answer)
        self.forward_always.setText(_target_text(settings.forward_always))
        self.forward_busy.setText(_target_text(settings.forward_busy))
        self.forward_no_answer.setText(_target_text(settings.forward_no_answer))
        self.no_answer_seconds.setValue(settings.no_answer_seconds)
        self.display_name.setText(settings.display_name)

    def _move_codec(self, step: int) -> None:
        row = self.codecs.currentRow()
        new = row + step
        if row < 0 or not 0 <= new < self.codecs.count():
            return
        item = self.codecs.takeItem(row)
        self.codecs.insertItem(new, item)
        self.codecs.setCurrentRow(new)

    def codec_order(self) -> tuple[str, ...]:
        return tuple(
            self.codecs.item(i).text()
            for i in range(self.codecs.count())
            if self.codecs.item(i).checkState() is Qt.CheckState.Checked
        )

    def changes(self) -> dict[str, Any]:
        """The settings the form changes, as ``update_settings`` keywords."""
        s = self.settings

        def target(field: QLineEdit) -> str | None:
            return field.text().strip() or None

        wanted: dict[str, Any] = {
            "input_device": self.input_device.currentData(),
            "output_device": self.output_device.currentData(),
            "ringer_device": self.ringer_device.currentData(),
            "echo_cancellation": self.echo_cancellation.isChecked(),
            "codec_order": self.codec_order(),
            "do_not_disturb": self.do_not_disturb.isChecked(),
            "auto_answer": self.auto_answer.isChecked(),
            "forward_always": target(self.forward_always),
            "forward_busy": target(self.forward_busy),
            "forward_no_answer": target(self.forward_no_answer),
            "no_answer_seconds": self.no_answer_seconds.value(),
            "display_name": self.display_name.text().strip(),
        }
        return {key: value for key, value in wanted.items() if getattr(s, key) != value}

    def save(self) -> None:
        changes = self.changes()
        if not changes:
            self.error.hide()
            return
        self.save_button.setEnabled(False)
        spawn(self._save_now(changes))

    async def _save_now(self, changes: dict[str, Any]) -> None:
        try:
            settings = await self._save(changes)
        except Exception as exc:  # the phone's PhoneError: one line for the user
            self.error.setText(f"Not saved: {exc}")
            self.error.show()
            self.refused.emit(str(exc))
            return
        finally:
            self.save_button.setEnabled(True)
        self.error.hide()
        self.load(settings)
        self.saved.emit(settings)

    # ---------------------------------------------------------------- sound checks

    def test_tone(self) -> None:
        if self.kit is not None:
            self.kit.tester.device = self.output_device.currentData()
            if not self.kit.tester.play("ringback-eu", loop=False):
                self.mic_note.setText("The test tone could not be played: no usable speaker.")

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._restart_level()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._stop_level()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._stop_level()
        super().closeEvent(event)

    def _stop_level(self) -> None:
        if self._level_task is not None:
            self._level_task.cancel()
            self._level_task = None
        if self._capture is not None:
            self._capture.close()
            self._capture = None
        self.mic_level.set_dbfs(-60.0)

    def _restart_level(self) -> None:
        self._stop_level()
        if not self.isVisible() or self.kit is None or not self.kit.devices():
            return
        self._level_task = spawn(self._watch_level(self.input_device.currentData()))

    async def _watch_level(self, device_name: str | None) -> None:
        try:
            self._capture = CaptureStream(find_device(device_name, "input"))
        except AudioDeviceError as exc:
            self.mic_note.setText(f"The microphone cannot be opened: {exc}")
            return
        self.mic_note.setText("Speak: the bar shows what the microphone hears.")
        capture = self._capture
        with contextlib.suppress(asyncio.CancelledError):
            while not capture.closed:
                block: Samples | None = await capture.get()
                if block is None:
                    self.mic_note.setText("The microphone stopped delivering sound.")
                    return
                self.mic_level.set_dbfs(dbfs(block))


__all__ = ["DEFAULT_DEVICE", "SettingsWindow"]

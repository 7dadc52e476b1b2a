"""The dial pad: twelve keys (0-9, * and #, the DTMF events 0-11 of RFC 4733 §3.2) that
type into the dial field before a call and send tones during one."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QGridLayout, QPushButton, QSizePolicy, QWidget

KEYS: tuple[tuple[str, str], ...] = (
    ("1", ""),
    ("2", "ABC"),
    ("3", "DEF"),
    ("4", "GHI"),
    ("5", "JKL"),
    ("6", "MNO"),
    ("7", "PQRS"),
    ("8", "TUV"),
    ("9", "WXYZ"),
    ("*", ""),
    ("0", "+"),
    ("#", ""),
)

SPOKEN = {"*": "star", "#": "pound"}


class DialPad(QWidget):
    """Emits :attr:`pressed` with the key's character."""

    pressed = Signal(str)

    def __init__(
        self, name: str = "Dial pad", parent: QWidget | None = None, *, compact: bool = False
    ) -> None:
        super().__init__(parent)
        self.setAccessibleName(name)
        grid = QGridLayout(self)
        grid.setSpacing(4)
        grid.setContentsMargins(0, 0, 0, 0)
        self.buttons: dict[str, QPushButton] = {}
        for index, (key, letters) in enumerate(KEYS):
            button = QPushButton(f"{key}\n{letters}" if letters and not compact else key)
            button.setAccessibleName(f"Key {SPOKEN.get(key, key)}")
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            button.setMinimumSize(QSize(44, 26 if compact else 36))
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            button.clicked.connect(lambda _checked=False, k=key: self.pressed.emit(k))
            self.buttons[key] = button
            grid.addWidget(button, index // 3, index % 3)

    def press(self, key: str) -> None:
        """Press ``key`` as a click would (keyboard input in the owning window)."""
        button = self.buttons.get(key)
        if button is not None:
            button.animateClick()


__all__ = ["KEYS", "DialPad"]

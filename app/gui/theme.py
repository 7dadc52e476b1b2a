"""Light and dark palettes that follow the desktop (Qt 6.5+ ``QStyleHints.colorScheme``).

The Fusion style draws the same on every platform and takes a palette whole, so the
window looks as designed in both schemes; :func:`follow_desktop` re-applies the palette
when the desktop switches. Colours with meaning (online green, missed red) are chosen to
read on both backgrounds.
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory


class Scheme(StrEnum):
    LIGHT = "light"
    DARK = "dark"
    SYSTEM = "system"


ONLINE = QColor("#2da44e")
OFFLINE = QColor("#8c959f")
CHECKING = QColor("#bf8700")
DANGER = QColor("#cf222e")
ACCENT = QColor("#0969da")


def _dark_palette() -> QPalette:
    p = QPalette()
    window, base, text = QColor("#1f2328"), QColor("#161b22"), QColor("#e6edf3")
    button, mid, disabled = QColor("#2d333b"), QColor("#444c56"), QColor("#7d8590")
    R, G = QPalette.ColorRole, QPalette.ColorGroup
    for group in (G.Active, G.Inactive):
        p.setColor(group, R.Window, window)
        p.setColor(group, R.WindowText, text)
        p.setColor(group, R.Base, base)
        p.setColor(group, R.AlternateBase, QColor("#22272e"))
        p.setColor(group, R.ToolTipBase, button)
        p.setColor(group, R.ToolTipText, text)
        p.setColor(group, R.PlaceholderText, disabled)
        p.setColor(group, R.Text, text)
        p.setColor(group, R.Button, button)
        p.setColor(group, R.ButtonText, text)
        p.setColor(group, R.BrightText, QColor("#ff7b72"))
        p.setColor(group, R.Light, QColor("#545d68"))
        p.setColor(group, R.Midlight, QColor("#3b434d"))
        p.setColor(group, R.Mid, mid)
        p.setColor(group, R.Dark, QColor("#0d1117"))
        p.setColor(group, R.Shadow, QColor("#010409"))
        p.setColor(group, R.Highlight, QColor("#1f6feb"))
        p.setColor(group, R.HighlightedText, QColor("#ffffff"))
        p.setColor(group, R.Link, QColor("#4493f8"))
        p.setColor(group, R.LinkVisited, QColor("#a371f7"))
    p.setColor(G.Disabled, R.Window, window)
    p.setColor(G.Disabled, R.Base, base)
    p.setColor(G.Disabled, R.Button, button)
    for role in (R.WindowText, R.Text, R.ButtonText, R.PlaceholderText):
        p.setColor(G.Disabled, role, disabled)
    p.setColor(G.Disabled, R.Highlight, mid)
    p.setColor(G.Disabled, R.HighlightedText, disabled)
    return p


def desktop_scheme() -> Scheme:
    """What the desktop asks for: DARK or LIGHT (unknown counts as light)."""
    scheme = QGuiApplication.styleHints().colorScheme()
    return Scheme.DARK if scheme is Qt.ColorScheme.Dark else Scheme.LIGHT


def apply_scheme(app: QApplication, scheme: Scheme) -> Scheme:
    """Set the Fusion style and the palette of ``scheme`` (SYSTEM: the desktop's); the
    scheme applied."""
    if app.style().name().lower() != "fusion":
        style = QStyleFactory.create("Fusion")
        if style is not None:
            app.setStyle(style)
    resolved = desktop_scheme() if scheme is Scheme.SYSTEM else scheme
    app.setPalette(_dark_palette() if resolved is Scheme.DARK else app.style().standardPalette())
    return resolved


def follow_desktop(app: QApplication) -> None:
    """Apply the desktop's scheme now and whenever it changes."""
    apply_scheme(app, Scheme.SYSTEM)
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_scheme(app, Scheme.SYSTEM))


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


__all__ = [
    "ACCENT",
    "CHECKING",
    "DANGER",
    "OFFLINE",
    "ONLINE",
    "Scheme",
    "apply_scheme",
    "desktop_scheme",
    "follow_desktop",
    "is_dark",
]

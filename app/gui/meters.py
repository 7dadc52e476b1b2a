"""Small painted gauges: an audio level meter and call-quality bars.

Levels arrive as RMS of 16-bit samples or as dBFS; the meter shows dBFS from -60 to 0,
the range where speech lives (quiet speech near -40, loud near -10). Quality bars turn
the MOS estimate (ITU-T P.800 scale, 1 bad to 5 excellent; the E-model of G.107 gives at
most about 4.4 for narrowband) into 0-4 bars, as phones show signal strength.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.gui.theme import CHECKING, DANGER, ONLINE

FLOOR_DB = -60.0
FULL_SCALE = 32768.0

#: MOS at or above each threshold earns one more bar (0 bars below 2.6).
MOS_STEPS: tuple[float, ...] = (2.6, 3.1, 3.6, 4.0)
MOS_WORDS: tuple[str, ...] = ("bad", "poor", "fair", "good", "excellent")


def rms_to_dbfs(rms: float) -> float:
    """RMS of int16 samples as dBFS (full-scale sine ≈ -3 dBFS), floored at -60."""
    if rms <= 0:
        return FLOOR_DB
    return max(FLOOR_DB, min(0.0, 20 * math.log10(rms / FULL_SCALE)))


def level_fraction(dbfs: float) -> float:
    """dBFS as the filled fraction of the meter."""
    return max(0.0, min(1.0, (dbfs - FLOOR_DB) / -FLOOR_DB))


def mos_bars(mos: float | None) -> int:
    """Bars (0-4) for a MOS estimate; 0 when there is none yet."""
    if mos is None or math.isnan(mos):
        return 0
    return sum(1 for step in MOS_STEPS if mos >= step)


def mos_words(mos: float | None) -> str:
    if mos is None or math.isnan(mos):
        return "no estimate yet"
    return f"{MOS_WORDS[mos_bars(mos)]} (MOS {mos:.1f})"


class LevelMeter(QWidget):
    """A horizontal bar: the level in dBFS (:meth:`set_dbfs`) with a falling peak mark."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName(name)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.dbfs = FLOOR_DB
        self.peak = FLOOR_DB

    def sizeHint(self) -> QSize:
        return QSize(160, 12)

    def set_dbfs(self, dbfs: float) -> None:
        self.dbfs = max(FLOOR_DB, min(0.0, dbfs))
        # The peak mark falls 1.5 dB per update, so a shout shows for a moment.
        self.peak = max(self.dbfs, self.peak - 1.5)
        self.setAccessibleDescription(f"{self.dbfs:.0f} dBFS")
        self.update()

    def set_rms(self, rms: float) -> None:
        self.set_dbfs(rms_to_dbfs(rms))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
            painter.setPen(self.palette().color(QPalette.ColorRole.Mid))
            painter.setBrush(self.palette().color(QPalette.ColorRole.Base))
            painter.drawRoundedRect(rect, 3, 3)
            fill = level_fraction(self.dbfs)
            colour = DANGER if self.dbfs > -3 else CHECKING if self.dbfs > -12 else ONLINE
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            inner = rect.adjusted(2, 2, -2, -2)
            painter.drawRect(QRectF(inner.left(), inner.top(), inner.width() * fill, inner.height()))
            peak_x = inner.left() + inner.width() * level_fraction(self.peak)
            painter.setBrush(self.palette().color(QPalette.ColorRole.WindowText))
            painter.drawRect(QRectF(peak_x - 1, inner.top(), 2, inner.height()))
        finally:
            painter.end()


class QualityBars(QWidget):
    """Four rising bars lit by the MOS estimate (:func:`mos_bars`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Call quality")
        self.mos: float | None = None
        self.setToolTip(mos_words(None))
        self.setFixedSize(QSize(30, 20))

    @property
    def bars(self) -> int:
        return mos_bars(self.mos)

    def set_mos(self, mos: float | None) -> None:
        self.mos = mos
        words = mos_words(mos)
        self.setToolTip(words)
        self.setAccessibleDescription(words)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            lit = self.bars
            colour = ONLINE if lit >= 3 else CHECKING if lit == 2 else DANGER
            off = QColor(self.palette().color(QPalette.ColorRole.Mid))
            width = self.width() / 4
            painter.setPen(Qt.PenStyle.NoPen)
            for i in range(4):
                height = self.height() * (i + 1) / 4
                painter.setBrush(colour if i < lit else off)
                painter.drawRect(QRectF(i * width + 1, self.height() - height, width - 2, height))
        finally:
            painter.end()


__all__ = [
    "MOS_STEPS",
    "LevelMeter",
    "QualityBars",
    "level_fraction",
    "mos_bars",
    "mos_words",
    "rms_to_dbfs",
]

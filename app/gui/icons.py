"""The GUI's icons: small SVG files in ``app/gui/resources``, read through
:mod:`importlib.resources` (so they work from a wheel, a zip or a frozen bundle).

Line icons draw with ``currentColor``; :class:`SvgIconEngine` puts the palette's text
colour in its place when it paints, at the size asked for and the screen's device pixel
ratio, so one file serves light and dark palettes and every DPI. Icons with meaning in
their colour (presence, delivery, answer, hang up, the tray) carry their own colours.
"""

from __future__ import annotations

import functools
from importlib import resources

from PySide6.QtCore import QByteArray, QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QIconEngine, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

RESOURCE_PACKAGE = "app.gui"
RESOURCE_DIR = "resources"


class IconMissing(LookupError):
    """No icon file of that name ships with the app (a bug, not a user's problem)."""


@functools.cache
def svg_text(name: str) -> str:
    """The SVG source of icon ``name`` (file ``resources/NAME.svg``)."""
    path = resources.files(RESOURCE_PACKAGE).joinpath(RESOURCE_DIR, f"{name}.svg")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IconMissing(name) from None


def icon_names() -> list[str]:
    """Every icon that ships, sorted."""
    folder = resources.files(RESOURCE_PACKAGE).joinpath(RESOURCE_DIR)
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".svg"))


def _colour_for(mode: QIcon.Mode) -> QColor:
    palette = QGuiApplication.palette()
    if mode is QIcon.Mode.Disabled:
        return palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    if mode is QIcon.Mode.Selected:
        return palette.color(QPalette.ColorRole.HighlightedText)
    return palette.color(QPalette.ColorRole.WindowText)


def render_svg(source: str, painter: QPainter, rect: QRect | QRectF, colour: QColor) -> None:
    data = source.replace("currentColor", colour.name())
    renderer = QSvgRenderer(QByteArray(data.encode("utf-8")))
    renderer.setAspectRatioMode(Qt.AspectRatioMode.KeepAspectRatio)
    renderer.render(painter, QRectF(rect))


class SvgIconEngine(QIconEngine):
    """Paints one SVG icon in the current palette's colour, sharp at any size."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name
        self._source = svg_text(name)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        render_svg(self._source, painter, rect, _colour_for(mode))

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self.scaledPixmap(size, mode, state, 1.0)

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float) -> QPixmap:
        pixmap = QPixmap(QSize(max(1, round(size.width() * scale)), max(1, round(size.height() * scale))))
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        try:
            self.paint(painter, QRect(QPoint(0, 0), pixmap.size()), mode, state)
        finally:
            painter.end()
        pixmap.setDevicePixelRatio(scale)
        return pixmap

    def clone(self) -> QIconEngine:
        return SvgIconEngine(self._name)

    def key(self) -> str:
        return "p2psip-svg"

    def iconName(self) -> str:
        return self._name


def icon(name: str) -> QIcon:
    """The icon ``name`` (see :func:`icon_names`); raises :class:`IconMissing`."""
    return QIcon(SvgIconEngine(name))


__all__ = ["IconMissing", "SvgIconEngine", "icon", "icon_names", "render_svg", "svg_text"]

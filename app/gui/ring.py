"""A picture of the overlay ring (RFC 6940 §10): this node, its predecessors, successors
and fingers placed by Node-ID, and its links with their round-trip times.

A Node-ID is a point on a circle of 2^bits positions (CHORD-RELOAD's identifier space,
§10.1): :func:`ring_fraction` maps it to a fraction of a turn, 0 at the top and
clockwise, as the ring is usually drawn. Geometry is pure (testable without a screen);
:class:`RingView` only paints it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.gui.theme import ACCENT, CHECKING, OFFLINE, ONLINE
from app.phone.snapshot import OverlaySnapshot


class Role(StrEnum):
    SELF = "this node"
    PREDECESSOR = "predecessor"
    SUCCESSOR = "successor"
    FINGER = "finger"
    LINKED = "other link"


ROLE_COLOURS: dict[Role, QColor] = {
    Role.SELF: ACCENT,
    Role.PREDECESSOR: QColor("#8250df"),
    Role.SUCCESSOR: ONLINE,
    Role.FINGER: CHECKING,
    Role.LINKED: OFFLINE,
}


def ring_fraction(node_id: bytes) -> float:
    """Where ``node_id`` sits on the ring, as a fraction of a turn in [0, 1)."""
    if not node_id:
        return 0.0
    return int.from_bytes(node_id, "big") / float(1 << (8 * len(node_id)))


def ring_point(node_id: bytes, centre: QPointF, radius: float) -> QPointF:
    """The point of ``node_id`` on a circle: 0 at the top, clockwise."""
    angle = 2 * math.pi * ring_fraction(node_id)
    return QPointF(centre.x() + radius * math.sin(angle), centre.y() - radius * math.cos(angle))


def short_id(node_id: bytes) -> str:
    """The first 8 hex digits of a Node-ID: enough to tell a ring's nodes apart."""
    return node_id.hex()[:8]


@dataclass(frozen=True, slots=True)
class RingNode:
    node_id: bytes
    roles: tuple[Role, ...]
    rtt: float | None
    linked: bool

    @property
    def role(self) -> Role:
        """The role the node is drawn as (the first that applies, SELF first)."""
        return self.roles[0]


def ring_nodes(snapshot: OverlaySnapshot) -> list[RingNode]:
    """Every node the snapshot names, once each, with all the roles it plays."""
    roles: dict[bytes, list[Role]] = {snapshot.node_id: [Role.SELF]}
    for role, ids in (
        (Role.PREDECESSOR, snapshot.predecessors),
        (Role.SUCCESSOR, snapshot.successors),
        (Role.FINGER, snapshot.fingers),
    ):
        for node_id in ids:
            if role not in roles.setdefault(node_id, []):
                roles[node_id].append(role)
    rtts = {link.node_id: link.rtt for link in snapshot.links}
    for node_id in rtts:
        roles.setdefault(node_id, [Role.LINKED])
    return [
        RingNode(node_id, tuple(r), rtts.get(node_id), node_id in rtts)
        for node_id, r in sorted(roles.items(), key=lambda item: ring_fraction(item[0]))
    ]


def format_rtt(rtt: float | None) -> str:
    if rtt is None:
        return "–"
    return f"{rtt * 1000:.1f} ms" if rtt < 0.1 else f"{rtt * 1000:.0f} ms"


class RingView(QWidget):
    """Paints an :class:`~app.phone.snapshot.OverlaySnapshot` as a ring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.snapshot: OverlaySnapshot | None = None
        self.setAccessibleName("Overlay ring")
        self.setMinimumSize(320, 320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(440, 440)

    def set_snapshot(self, snapshot: OverlaySnapshot | None) -> None:
        self.snapshot = snapshot
        if snapshot is None:
            self.setAccessibleDescription("not in an overlay")
        else:
            nodes = ring_nodes(snapshot)
            self.setAccessibleDescription(
                f"{len(nodes)} nodes known; {len(snapshot.successors)} successors, "
                f"{len(snapshot.predecessors)} predecessors, {len(snapshot.fingers)} fingers, "
                f"{len(snapshot.links)} links"
            )
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        faint = palette.color(QPalette.ColorRole.Mid)
        rect = QRectF(self.rect())
        legend_height = 22.0
        area = rect.adjusted(8, 8, -8, -8 - legend_height)
        side = min(area.width(), area.height())
        centre = QPointF(area.center().x(), area.top() + side / 2 + (area.height() - side) / 2)
        radius = side / 2 - 46
        if radius < 20 or self.snapshot is None:
            painter.setPen(text)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "Not in an overlay yet")
            return
        snapshot = self.snapshot
        painter.setPen(QPen(faint, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(centre, radius, radius)
        # 0 at the top, a tick each quarter turn.
        for quarter in range(4):
            angle = quarter * math.pi / 2
            inner = QPointF(
                centre.x() + (radius - 6) * math.sin(angle), centre.y() - (radius - 6) * math.cos(angle)
            )
            outer = QPointF(
                centre.x() + (radius + 6) * math.sin(angle), centre.y() - (radius + 6) * math.cos(angle)
            )
            painter.drawLine(inner, outer)
        nodes = ring_nodes(snapshot)
        me = ring_point(snapshot.node_id, centre, radius)
        small = QFont(self.font())
        small.setPointSizeF(max(6.5, small.pointSizeF() * 0.85))
        painter.setFont(small)
        metrics = QFontMetricsF(small)
        # Links first, so the nodes sit on top of them.
        linked = [n for n in nodes if n.linked and n.node_id != snapshot.node_id]
        for node in linked:
            there = ring_point(node.node_id, centre, radius)
            colour = QColor(ROLE_COLOURS[node.role])
            colour.setAlpha(150)
            style = Qt.PenStyle.DashLine if node.role is Role.LINKED else Qt.PenStyle.SolidLine
            painter.setPen(QPen(colour, 1.5, style))
            painter.drawLine(me, there)
        taken: list[QRectF] = []
        for node in nodes:
            point = ring_point(node.node_id, centre, radius)
            size = 9.0 if node.role is Role.SELF else 6.5
            box = QRectF(point.x() - size, point.y() - size, 2 * size, 2 * size)
            taken.append(box)
            # A node playing several roles (predecessor and successor of a small ring,
            # a successor that is also a finger) is a pie of their colours.
            span = 360 * 16 // len(node.roles)
            painter.setPen(Qt.PenStyle.NoPen)
            for i, role in enumerate(node.roles):
                painter.setBrush(QBrush(ROLE_COLOURS[role]))
                painter.drawPie(box, 90 * 16 - i * span, -span)
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Window), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(point, size, size)
        painter.setPen(text)
        for node in nodes:
            # Outside the circle, along the radius; pushed further out while it would
            # cover a label already placed (nodes close on the ring).
            angle = 2 * math.pi * ring_fraction(node.node_id)
            label = short_id(node.node_id) + (" (me)" if node.role is Role.SELF else "")
            width = metrics.horizontalAdvance(label)
            sin, cos = math.sin(angle), math.cos(angle)
            for step in range(8):
                distance = radius + 16 + step * metrics.height()
                out = QPointF(centre.x() + distance * sin, centre.y() - distance * cos)
                left = out.x() - (0 if sin > 0.2 else width if sin < -0.2 else width / 2)
                top = out.y() - (0 if cos < -0.2 else metrics.height() if cos > 0.2 else metrics.height() / 2)
                box = QRectF(left, top, width, metrics.height())
                if not any(box.intersects(other) for other in taken):
                    break
            taken.append(box)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        for node in linked:
            # Links meet at this node: their RTTs go near the far ends, where the lines
            # are furthest apart, at the first spot that covers no other label.
            there = ring_point(node.node_id, centre, radius)
            label = format_rtt(node.rtt)
            width = metrics.horizontalAdvance(label) + 6
            for share in (0.7, 0.55, 0.82, 0.45, 0.6, 0.35):
                middle = QPointF(me.x() + share * (there.x() - me.x()), me.y() + share * (there.y() - me.y()))
                box = QRectF(
                    middle.x() - width / 2, middle.y() - metrics.height() / 2, width, metrics.height()
                )
                if not any(box.intersects(other) for other in taken):
                    break
            taken.append(box)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Window))
            painter.drawRoundedRect(box, 3, 3)
            painter.setPen(text)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        # Legend under the ring.
        x = rect.left() + 10
        y = rect.bottom() - legend_height / 2
        for role in Role:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(ROLE_COLOURS[role])
            painter.drawEllipse(QPointF(x + 5, y), 5, 5)
            painter.setPen(text)
            painter.drawText(QPointF(x + 14, y + metrics.ascent() / 2 - 1), role.value)
            x += 14 + metrics.horizontalAdvance(role.value) + 16


__all__ = [
    "ROLE_COLOURS",
    "RingNode",
    "RingView",
    "Role",
    "format_rtt",
    "ring_fraction",
    "ring_nodes",
    "ring_point",
    "short_id",
]

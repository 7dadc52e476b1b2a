"""The overlay panel: the ring picture (:class:`~app.gui.ring.RingView`) beside what this
node knows: its place, its links and their round-trip times, what it stores for the
overlay (RFC 6940 §7) and its recent errors.

It reads a fresh :class:`~app.phone.snapshot.OverlaySnapshot` from ``source`` every
:data:`REFRESH_MS` while it is shown (the snapshot only reads properties, so this costs
the loop next to nothing) and stops reading when hidden.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.ring import RingView, format_rtt, ring_nodes, short_id
from app.phone.snapshot import OverlaySnapshot

REFRESH_MS = 2000

SnapshotSource = Callable[[], OverlaySnapshot | None]


def format_uptime(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def format_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024 / 1024:.1f} MiB"


def _table(headers: list[str], name: str) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setAccessibleName(name)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


class OverlayPanel(QWidget):
    """See the module docstring."""

    def __init__(self, source: SnapshotSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.setAccessibleName("Overlay panel")
        self.ring = RingView()
        self.overlay = QLabel()
        self.node_id = QLabel()
        self.node_id.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.address = QLabel()
        self.state = QLabel()
        self.storage_summary = QLabel()
        for label, name in (
            (self.overlay, "Overlay"),
            (self.node_id, "Node-ID"),
            (self.address, "Listening address"),
            (self.state, "Node state"),
            (self.storage_summary, "Stored data summary"),
        ):
            label.setAccessibleName(name)
        about = QGroupBox("This node")
        form = QFormLayout(about)
        form.addRow("Overlay:", self.overlay)
        form.addRow("Node-ID:", self.node_id)
        form.addRow("Address:", self.address)
        form.addRow("State:", self.state)
        self.links = _table(["Node-ID", "RTT", "Address", "Role"], "Links")
        links_box = QGroupBox("Links")
        QVBoxLayout(links_box).addWidget(self.links)
        self.stored = _table(["Resource-ID", "Kinds"], "Stored data")
        stored_box = QGroupBox("Stored for the overlay")
        stored_layout = QVBoxLayout(stored_box)
        stored_layout.addWidget(self.storage_summary)
        stored_layout.addWidget(self.stored)
        self.errors = QListWidget()
        self.errors.setAccessibleName("Recent errors")
        errors_box = QGroupBox("Recent errors")
        QVBoxLayout(errors_box).addWidget(self.errors)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(about)
        side_layout.addWidget(links_box, 3)
        side_layout.addWidget(stored_box, 3)
        side_layout.addWidget(errors_box, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.ring)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(splitter)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.snapshot: OverlaySnapshot | None = None

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh()
        self.timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.timer.stop()

    def refresh(self) -> None:
        self.show_snapshot(self.source())

    def show_snapshot(self, snapshot: OverlaySnapshot | None) -> None:
        self.snapshot = snapshot
        self.ring.set_snapshot(snapshot)
        if snapshot is None:
            for label in (self.overlay, self.node_id, self.address, self.state, self.storage_summary):
                label.setText("–")
            self.state.setText("not running")
            self.links.setRowCount(0)
            self.stored.setRowCount(0)
            self.errors.clear()
            return
        self.overlay.setText(snapshot.overlay)
        self.node_id.setText(snapshot.node_id.hex())
        self.address.setText(snapshot.address or "–")
        self.state.setText(f"{snapshot.state}, up {format_uptime(snapshot.uptime)}")
        roles = {node.node_id: ", ".join(r.value for r in node.roles) for node in ring_nodes(snapshot)}
        self.links.setRowCount(len(snapshot.links))
        for row, link in enumerate(snapshot.links):
            values = [
                short_id(link.node_id),
                format_rtt(link.rtt),
                link.remote_address,
                roles.get(link.node_id, ""),
            ]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column == 0:
                    item.setToolTip(link.node_id.hex())
                self.links.setItem(row, column, item)
        self.storage_summary.setText(
            f"{len(snapshot.stored)} resources, {snapshot.stored_entries} entries, "
            f"{format_bytes(snapshot.stored_bytes)}"
        )
        self.stored.setRowCount(len(snapshot.stored))
        for row, resource in enumerate(snapshot.stored):
            item = QTableWidgetItem(short_id(resource.resource_id))
            item.setToolTip(resource.resource_id.hex())
            self.stored.setItem(row, 0, item)
            self.stored.setItem(row, 1, QTableWidgetItem(", ".join(resource.kinds)))
        self.errors.clear()
        self.errors.addItems(list(reversed(snapshot.errors)) or ["none"])


__all__ = ["REFRESH_MS", "OverlayPanel", "SnapshotSource", "format_bytes", "format_uptime"]

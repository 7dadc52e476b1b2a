"""The chat pane: one conversation (RFC 3428 MESSAGE) as bubbles with their delivery
state, and a line to write in. Sending goes through the phone (stored at once as
"sending", then sent, delivered or failed with the reason); the states come back as
events into the :class:`~app.gui.models.ChatModel`."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.formatting import format_when
from app.gui.icons import icon
from app.gui.models import DELIVERY_ICONS, ChatModel, Roles, delivery_words
from app.gui.theme import ACCENT, DANGER, is_dark
from app.phone.store import Delivery, MessageDirection, MessageRecord

PAD = 8
MARGIN = 6
META_ICON = 14


class BubbleDelegate(QStyledItemDelegate):
    """Incoming messages on the left, ours on the right in the accent colour; under each
    the time and, for ours, the delivery state."""

    def _bubble_width(self, option: QStyleOptionViewItem) -> int:
        return max(120, int(option.rect.width() * 0.72))

    def _layout(self, option: QStyleOptionViewItem, record: MessageRecord) -> tuple[QRect, QRect, str]:
        width = self._bubble_width(option)
        metrics = QFontMetrics(option.font)
        text_rect = metrics.boundingRect(
            QRect(0, 0, width - 2 * PAD, 10_000), Qt.TextFlag.TextWordWrap, record.text
        )
        meta = format_when(record.time)
        if record.direction is MessageDirection.OUTGOING:
            meta += f" · {delivery_words(record)}"
        small = QFont(option.font)
        small.setPointSizeF(small.pointSizeF() * 0.85)
        meta_metrics = QFontMetrics(small)
        meta_width = meta_metrics.horizontalAdvance(meta) + META_ICON + 6
        bubble_w = min(width, max(text_rect.width(), meta_width) + 2 * PAD)
        bubble_h = text_rect.height() + meta_metrics.height() + 2 * PAD + 2
        outgoing = record.direction is MessageDirection.OUTGOING
        x = option.rect.right() - MARGIN - bubble_w if outgoing else option.rect.left() + MARGIN
        bubble = QRect(x, option.rect.top() + MARGIN // 2, bubble_w, bubble_h)
        text = QRect(bubble.left() + PAD, bubble.top() + PAD, bubble_w - 2 * PAD, text_rect.height())
        return bubble, text, meta

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        record = index.data(Roles.RECORD)
        if not isinstance(record, MessageRecord):
            return super().sizeHint(option, index)
        bubble, _text, _meta = self._layout(option, record)
        return QSize(option.rect.width(), bubble.height() + MARGIN)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        record = index.data(Roles.RECORD)
        if not isinstance(record, MessageRecord):
            super().paint(painter, option, index)
            return
        palette = option.palette
        bubble, text_rect, meta = self._layout(option, record)
        outgoing = record.direction is MessageDirection.OUTGOING
        painter.save()
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            if outgoing:
                fill = QColor(DANGER if record.state is Delivery.FAILED else ACCENT)
                fill.setAlpha(60 if is_dark(palette) else 40)
            else:
                fill = palette.color(QPalette.ColorRole.AlternateBase)
            painter.setPen(palette.color(QPalette.ColorRole.Mid))
            painter.setBrush(fill)
            painter.drawRoundedRect(bubble, 8, 8)
            if option.state & QStyle.StateFlag.State_Selected:
                painter.setPen(palette.color(QPalette.ColorRole.Highlight))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(bubble, 8, 8)
            painter.setPen(palette.color(QPalette.ColorRole.Text))
            painter.setFont(option.font)
            painter.drawText(text_rect, Qt.TextFlag.TextWordWrap, record.text)
            small = QFont(option.font)
            small.setPointSizeF(small.pointSizeF() * 0.85)
            painter.setFont(small)
            meta_rect = QRect(
                text_rect.left(),
                text_rect.bottom() + 2,
                bubble.width() - 2 * PAD - META_ICON - 4,
                QFontMetrics(small).height(),
            )
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(meta_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, meta)
            if outgoing:
                icon_rect = QRect(bubble.right() - PAD - META_ICON, meta_rect.top(), META_ICON, META_ICON)
                icon(DELIVERY_ICONS[record.state]).paint(painter, icon_rect)
        finally:
            painter.restore()


class ChatPane(QWidget):
    """The conversation with :attr:`peer` (see the module docstring). :attr:`send`
    carries (peer, text) for the window to hand to the phone."""

    send = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Chat")
        self.peer = ""
        self.title = QLabel("Pick a buddy to chat with")
        self.title.setAccessibleName("Chatting with")
        font = QFont(self.title.font())
        font.setBold(True)
        self.title.setFont(font)
        self.model = ChatModel("")
        self.view = QListView()
        self.view.setAccessibleName("Messages")
        self.view.setModel(self.model)
        self.view.setItemDelegate(BubbleDelegate(self.view))
        self.view.setWordWrap(True)
        self.view.setUniformItemSizes(False)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.input = QLineEdit()
        self.input.setPlaceholderText("Write a message…")
        self.input.setAccessibleName("Message")
        self.input.returnPressed.connect(self._send)
        self.send_button = QPushButton(icon("send"), "Send")
        self.send_button.setAccessibleName("Send message")
        self.send_button.clicked.connect(self._send)
        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)
        layout.addLayout(row)
        self.model.rowsInserted.connect(lambda *_: self.view.scrollToBottom())
        self._enable()

    def open(self, peer: str, name: str, records: list[MessageRecord]) -> None:
        """Show the conversation with ``peer`` (its records, any order)."""
        self.peer = peer
        self.title.setText(f"Chat with {name}")
        self.model.peer = peer
        self.model.set_messages(records)
        self.view.scrollToBottom()
        self._enable()

    def _enable(self) -> None:
        self.input.setEnabled(bool(self.peer))
        self.send_button.setEnabled(bool(self.peer))

    def upsert(self, record: MessageRecord) -> None:
        self.model.upsert(record)

    def _send(self) -> None:
        text = self.input.text().strip()
        if not text or not self.peer:
            return
        self.input.clear()
        self.send.emit(self.peer, text)


__all__ = ["BubbleDelegate", "ChatPane"]

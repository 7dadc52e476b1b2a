"""View models: the buddy list, the recent calls and a conversation, as Qt item models
fed from the phone's records (:mod:`app.phone.store`) and events (:mod:`app.phone.events`).
No widgets here and no phone calls: the main window loads them and the bridge's signals
update them, so each is tested with plain records.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QIcon

from app.gui.formatting import Presence, format_duration, format_when, presence_words, short_name
from app.gui.icons import icon
from app.phone.events import BuddiesChanged, PresenceChanged
from app.phone.store import CallDirection, CallRecord, Contact, Delivery, MessageDirection, MessageRecord

AnyIndex = QModelIndex | QPersistentModelIndex


class Roles(IntEnum):
    AOR = Qt.ItemDataRole.UserRole + 1
    PRESENCE = Qt.ItemDataRole.UserRole + 2
    SORT = Qt.ItemDataRole.UserRole + 3
    RECORD = Qt.ItemDataRole.UserRole + 4
    SEARCH = Qt.ItemDataRole.UserRole + 5


PRESENCE_ICONS = {
    Presence.ONLINE: "presence-online",
    Presence.OFFLINE: "presence-offline",
    Presence.CHECKING: "presence-checking",
}


@dataclass(frozen=True, slots=True)
class Buddy:
    aor: str
    display_name: str
    presence: Presence = Presence.CHECKING
    last_seen: float | None = None

    @property
    def name(self) -> str:
        return short_name(self.aor, self.display_name)


class BuddyListModel(QAbstractListModel):
    """Buddies with their presence. Until the phone has checked a buddy, they are
    CHECKING (the list never claims "offline" it has not seen)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Buddy] = []
        self._icons = {p: icon(name) for p, name in PRESENCE_ICONS.items()}
        self.now = time.time

    # ---------------------------------------------------------------- Qt

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        buddy = self._rows[index.row()]
        words = presence_words(buddy.presence, buddy.last_seen, self.now())
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{buddy.name}\n{words}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icons[buddy.presence]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{buddy.aor}: {words}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{buddy.name}, {words}"
        if role == Roles.AOR:
            return buddy.aor
        if role == Roles.PRESENCE:
            return buddy.presence.value
        if role == Roles.SORT:
            order = {Presence.ONLINE: 0, Presence.CHECKING: 1, Presence.OFFLINE: 2}[buddy.presence]
            return f"{order}{buddy.name.lower()}"
        if role == Roles.SEARCH:
            return f"{buddy.name} {buddy.aor}".lower()
        if role == Roles.RECORD:
            return buddy
        return None

    # ---------------------------------------------------------------- contents

    @property
    def buddies(self) -> list[Buddy]:
        return list(self._rows)

    def row_of(self, aor: str) -> int | None:
        return next((i for i, b in enumerate(self._rows) if b.aor == aor), None)

    def buddy_of(self, aor: str) -> Buddy | None:
        row = self.row_of(aor)
        return None if row is None else self._rows[row]

    def set_contacts(self, contacts: Iterable[Contact], presence: dict[str, Presence] | None = None) -> None:
        """The whole list (at start-up); ``presence``: what is known already."""
        known = presence or {}
        self.beginResetModel()
        self._rows = [
            Buddy(c.aor, c.display_name, known.get(c.aor, Presence.CHECKING), c.last_seen) for c in contacts
        ]
        self.endResetModel()

    def upsert(self, aor: str, display_name: str) -> None:
        row = self.row_of(aor)
        if row is None:
            self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
            self._rows.append(Buddy(aor, display_name))
            self.endInsertRows()
        else:
            self._rows[row] = replace(self._rows[row], display_name=display_name)
            self.dataChanged.emit(self.index(row), self.index(row))

    def remove(self, aor: str) -> None:
        row = self.row_of(aor)
        if row is not None:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()

    def set_presence(self, aor: str, presence: Presence, last_seen: float | None = None) -> None:
        row = self.row_of(aor)
        if row is None:
            return
        old = self._rows[row]
        self._rows[row] = replace(
            old, presence=presence, last_seen=last_seen if last_seen is not None else old.last_seen
        )
        self.dataChanged.emit(self.index(row), self.index(row))

    # ---------------------------------------------------------------- events

    def on_buddies(self, event: BuddiesChanged) -> None:
        if event.removed:
            self.remove(event.aor)
        else:
            self.upsert(event.aor, event.display_name)

    def on_presence(self, event: PresenceChanged) -> None:
        self.set_presence(event.aor, Presence.ONLINE if event.online else Presence.OFFLINE, event.last_seen)


class BuddyFilter(QSortFilterProxyModel):
    """The buddy list as shown: online first, then by name; the search box filters on
    name and AoR (any part, any case)."""

    def __init__(self, source: BuddyListModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSourceModel(source)
        self.setSortRole(Roles.SORT)
        self.setFilterRole(Roles.SEARCH)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setDynamicSortFilter(True)
        self.sort(0)

    def search(self, text: str) -> None:
        self.setFilterFixedString(text.strip().lower())

    def aor_at(self, row: int) -> str | None:
        index = self.index(row, 0)
        value = self.data(index, Roles.AOR) if index.isValid() else None
        return value if isinstance(value, str) else None


# --------------------------------------------------------------------------- history

HISTORY_ICONS = {
    CallDirection.INCOMING: "call-incoming",
    CallDirection.OUTGOING: "call-outgoing",
    CallDirection.MISSED: "call-missed",
}


def call_summary(record: CallRecord) -> str:
    """What the history says of a call: its duration if answered, else its outcome."""
    if record.in_progress:
        return "in progress"
    if record.answered is not None and record.duration is not None:
        return format_duration(record.duration)
    return record.outcome or record.direction.value


class HistoryModel(QAbstractListModel):
    """Recent calls, newest first."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[CallRecord] = []
        self._icons: dict[CallDirection, QIcon] = {d: icon(n) for d, n in HISTORY_ICONS.items()}
        self.now = time.time

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        record = self._rows[index.row()]
        name = short_name(record.peer_aor, record.display_name)
        when = format_when(record.started, self.now())
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{name}\n{when} · {call_summary(record)}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icons[record.direction]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{record.direction.value} call, {record.peer_aor}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{record.direction.value} call, {name}, {when}, {call_summary(record)}"
        if role == Roles.AOR:
            return record.peer_aor
        if role == Roles.RECORD:
            return record
        return None

    def set_calls(self, records: Sequence[CallRecord]) -> None:
        self.beginResetModel()
        self._rows = sorted(records, key=lambda r: r.started, reverse=True)
        self.endResetModel()

    @property
    def calls(self) -> list[CallRecord]:
        return list(self._rows)

    def record_at(self, row: int) -> CallRecord | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None


# --------------------------------------------------------------------------- messages

DELIVERY_ICONS = {
    Delivery.SENDING: "delivery-sending",
    Delivery.SENT: "delivery-sent",
    Delivery.DELIVERED: "delivery-delivered",
    Delivery.FAILED: "delivery-failed",
}


def delivery_words(record: MessageRecord) -> str:
    if record.direction is MessageDirection.INCOMING:
        return "received"
    if record.state is Delivery.FAILED:
        return f"not delivered: {record.reason}" if record.reason else "not delivered"
    return record.state.value


class ChatModel(QAbstractListModel):
    """The messages with one peer, oldest first (a conversation reads downwards)."""

    def __init__(self, peer: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.peer = peer
        self._rows: list[MessageRecord] = []
        self._icons = {d: icon(n) for d, n in DELIVERY_ICONS.items()}
        self.now = time.time

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        record = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return record.text
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icons[record.state] if record.direction is MessageDirection.OUTGOING else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{format_when(record.time, self.now())}, {delivery_words(record)}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            who = "you" if record.direction is MessageDirection.OUTGOING else short_name(record.peer_aor)
            return f"{who}: {record.text} ({delivery_words(record)})"
        if role == Roles.RECORD:
            return record
        return None

    def set_messages(self, records: Sequence[MessageRecord]) -> None:
        self.beginResetModel()
        self._rows = sorted((r for r in records if r.peer_aor == self.peer), key=lambda r: (r.time, r.id))
        self.endResetModel()

    @property
    def messages(self) -> list[MessageRecord]:
        return list(self._rows)

    def upsert(self, record: MessageRecord) -> None:
        """A new message, or a new state of one shown."""
        if record.peer_aor != self.peer:
            return
        row = next((i for i, r in enumerate(self._rows) if r.id == record.id), None)
        if row is not None:
            self._rows[row] = record
            self.dataChanged.emit(self.index(row), self.index(row))
            return
        self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
        self._rows.append(record)
        self.endInsertRows()


__all__ = [
    "Buddy",
    "BuddyFilter",
    "BuddyListModel",
    "ChatModel",
    "HistoryModel",
    "Roles",
    "call_summary",
    "delivery_words",
]

"""The phone's persistent store: contacts, call history, messages, settings, pins, presence.

One SQLite file, ``phone.db``, in the profile folder (:mod:`app.profile`), mode 0600 like
the private key beside it; SQLite gives its ``-wal`` and ``-shm`` companions the main
file's mode, and we check that they have it.

Durability. Whatever a write method returned may already be on the user's screen, so it
must survive a kill -9 at any moment and a power cut. Every write is one transaction
(``BEGIN IMMEDIATE`` ... ``COMMIT``) that has committed before the method returns. The
journal is WAL with ``synchronous=FULL``: each commit fsyncs the WAL. (``NORMAL`` would
survive a killed process, the committed frames being in the kernel's page cache, but not
a power cut or a kernel crash.) The fsync is what a write costs: about 1 ms a commit on
this project's ext4 test machine, median, with a tail of several ms and the odd
checkpoint far above; hence :class:`AsyncPhoneStore`, which keeps the disk off the
event loop.

Opening. The file is looked at before anything is written to it: a file that is not a
SQLite database or fails ``PRAGMA quick_check`` raises :class:`StoreCorrupt`; another
program's database likewise; one written by a newer version of the phone
(``user_version`` above ours) raises :class:`StoreTooNew`. Such a file is left as it
was: never replaced, never migrated down. Otherwise the migration steps from the file's
``user_version`` up to ours run, each in one transaction with its new version number.

Threads. One connection, shared by whichever threads call in, guarded by a lock
(``check_same_thread=False``). The asyncio service uses :class:`AsyncPhoneStore`, which
runs every call on one worker thread in the order the calls were made.

Times are seconds since the epoch (``time.time()``), passed in as ``now`` where the
caller knows them (events that carry a time, tests) and read from the clock otherwise.
AoRs are stored as given: the caller normalises them (RFC 3261 §19.1.4) first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sqlite3
import stat
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Concatenate, Final, ParamSpec, TypeAlias, TypeVar

STORE_FILE: Final = "phone.db"
# In the file header (offset 68): marks the file as a phone store, not some other
# program's SQLite database that happens to lie at our path.
APPLICATION_ID: Final = 0x50325350

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None

_P = ParamSpec("_P")
_T = TypeVar("_T")


# --------------------------------------------------------------------------- errors


class StoreError(Exception):
    """The store cannot do what was asked; the message is meant for the user."""


class StoreCorrupt(StoreError):
    """The file is damaged, or is not a phone store. It is kept exactly as it was."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"{path} is damaged or is not a phone store ({detail}). It has been left as it is: "
            f"move it away (or put a backup in its place) and the phone starts with an empty store."
        )
        self.path = path
        self.detail = detail


class StoreTooNew(StoreError):
    """The file was written by a newer version of the phone. It is kept exactly as it was."""

    def __init__(self, path: Path, version: int, supported: int) -> None:
        super().__init__(
            f"{path} was written by a newer version of the phone (store version {version}; "
            f"this version reads up to {supported}). It has been left as it is: run the newer "
            f"version, or move the file away to start this one with an empty store."
        )
        self.path = path
        self.version = version
        self.supported = supported


class NotFound(StoreError):
    """No contact, call or message with that key."""


class ContactExists(StoreError):
    """The AoR is already in the contacts."""


# sqlite3's primary result codes (the low byte of an extended code).
_CORRUPT_CODES: Final = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def _store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in _CORRUPT_CODES:
        return StoreCorrupt(path, str(exc))
    if primary in _BUSY_CODES:
        return StoreError(f"{path} is in use by another program (is the phone already running?): {exc}")
    if primary == sqlite3.SQLITE_FULL:
        return StoreError(f"cannot write {path}: the disk is full")
    return StoreError(f"{path}: {exc}")


# --------------------------------------------------------------------------- rows


class CallDirection(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"
    MISSED = "missed"  # an incoming call nobody answered


class MessageDirection(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class Delivery(StrEnum):
    """Where an outgoing message is; incoming ones are ``DELIVERED`` (to us)."""

    SENDING = "sending"  # stored, not yet handed to the overlay
    SENT = "sent"  # the MESSAGE request is on its way
    DELIVERED = "delivered"  # the far end answered 2xx: final
    FAILED = "failed"  # ``reason`` says why; may be sent again


@dataclass(frozen=True, slots=True)
class Contact:
    """A buddy. ``last_seen``: the last time their registration was found (presence)."""

    aor: str
    display_name: str
    added: float
    last_seen: float | None = None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call in the history. ``ended`` is None while the call goes on."""

    id: int
    direction: CallDirection
    peer_aor: str
    display_name: str
    started: float
    answered: float | None
    ended: float | None
    outcome: str
    sip_status: int | None
    verified: bool  # the far end proved the AoR's identity (certificate user name / Node-ID)
    seen: bool  # for missed calls: the user has looked at them

    @property
    def in_progress(self) -> bool:
        return self.ended is None

    @property
    def duration(self) -> float | None:
        """Seconds talked: end minus answer, 0 for a call never answered, None while in progress."""
        if self.ended is None:
            return None
        if self.answered is None:
            return 0.0
        return max(0.0, self.ended - self.answered)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One instant message (SIP MESSAGE). ``updated``: when ``state`` last changed."""

    id: int
    direction: MessageDirection
    peer_aor: str
    text: str
    time: float
    state: Delivery
    reason: str
    updated: float
    read: bool


@dataclass(frozen=True, slots=True)
class Conversation:
    """The messages with one peer, summarised: the newest one and how many are unread."""

    peer_aor: str
    last: MessageRecord
    unread: int


@dataclass(frozen=True, slots=True)
class Pin:
    """Trust on first use: the identity first seen for an AoR (kept by app.phone.pinning)."""

    aor: str
    node_id: bytes
    cert_fingerprint: bytes
    first_seen: float


# --------------------------------------------------------------------------- settings


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not true or false")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _target(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError("not an AoR (or none)")
    return value


def _device(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("not a device name (or none for the system's default)")
    return value


MAX_NO_ANSWER_SECONDS: Final = 600


def _seconds(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_NO_ANSWER_SECONDS:
        raise ValueError(f"not a whole number of seconds from 1 to {MAX_NO_ANSWER_SECONDS}")
    return value


def parse_no_answer_seconds(text: str) -> int:
    """``no_answer_seconds`` as typed (a command, a CLI flag); ValueError saying why not."""
    return _seconds(int(text) if text.isdigit() else None)


def _codecs(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(c, str) and c for c in value):
        raise ValueError("not a list of codec names")
    if len(set(value)) != len(value):
        raise ValueError("a codec is named twice")
    return tuple(value)


_SETTING_PARSERS: Final[dict[str, Callable[[object], Any]]] = {
    "auto_answer": _bool,
    "do_not_disturb": _bool,
    "forward_always": _target,
    "forward_busy": _target,
    "forward_no_answer": _target,
    "no_answer_seconds": _seconds,
    "display_name": _text,
    "codec_order": _codecs,
    "echo_cancellation": _bool,
    "input_device": _device,
    "output_device": _device,
    "ringer_device": _device,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """The phone's settings, each with its default. Stored one key per field (JSON)."""

    auto_answer: bool = False
    do_not_disturb: bool = False
    forward_always: str | None = None  # AoR every call is forwarded to
    forward_busy: str | None = None  # ... when we are in a call
    forward_no_answer: str | None = None  # ... when nobody answers in no_answer_seconds
    no_answer_seconds: int = 20
    display_name: str = ""
    codec_order: tuple[str, ...] = ("opus", "PCMU", "PCMA")
    echo_cancellation: bool = True
    input_device: str | None = None  # None: the system's default device
    output_device: str | None = None
    ringer_device: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            try:
                # codec_order may come in as a list; the frozen record holds a tuple.
                object.__setattr__(self, f.name, _SETTING_PARSERS[f.name](getattr(self, f.name)))
            except ValueError as exc:
                raise ValueError(f"setting {f.name}: {exc}") from None


def _to_json(value: JSONValue | tuple[str, ...]) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value, separators=(",", ":"))


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: run in one transaction that also sets ``user_version``."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "contacts, pins, calls, messages, settings",
        (
            f"PRAGMA application_id = {APPLICATION_ID}",
            """CREATE TABLE contacts (
                id INTEGER PRIMARY KEY,
                aor TEXT NOT NULL UNIQUE,
                display_name TEXT NOT NULL,
                added REAL NOT NULL,
                last_seen REAL
            )""",
            """CREATE TABLE pins (
                aor TEXT PRIMARY KEY,
                node_id BLOB NOT NULL,
                cert_fingerprint BLOB NOT NULL,
                first_seen REAL NOT NULL
            )""",
            """CREATE TABLE calls (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                direction TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing', 'missed')),
                peer_aor TEXT NOT NULL,
                display_name TEXT NOT NULL,
                started REAL NOT NULL,
                answered REAL,
                ended REAL,
                outcome TEXT NOT NULL,
                sip_status INTEGER,
                verified INTEGER NOT NULL CHECK (verified IN (0, 1)),
                seen INTEGER NOT NULL CHECK (seen IN (0, 1))
            )""",
            "CREATE INDEX calls_by_start ON calls (started, id)",
            "CREATE INDEX calls_missed ON calls (direction, seen)",
            """CREATE TABLE messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                direction TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing')),
                peer_aor TEXT NOT NULL,
                body TEXT NOT NULL,
                time REAL NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'delivered', 'failed')),
                reason TEXT NOT NULL,
                updated REAL NOT NULL,
                read INTEGER NOT NULL CHECK (read IN (0, 1))
            )""",
            "CREATE INDEX messages_by_peer ON messages (peer_aor, id)",
            "CREATE INDEX messages_unread ON messages (read, peer_aor)",
            """CREATE TABLE settings (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )""",
        ),
    ),
)


def _user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(conn: sqlite3.Connection, path: Path, steps: Sequence[Migration] = MIGRATIONS) -> int:
    """Run the steps above the file's ``user_version``; return the version reached.

    Each step is one transaction, so a failed step leaves the file at the version before
    it. ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    for index, step in enumerate(steps):
        if step.version != index + 1:
            raise ValueError(f"migration {index} has version {step.version}, not {index + 1}")
    try:
        for step in steps[_user_version(conn) :]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Read again under the write lock: another process may have got here first.
                if _user_version(conn) < step.version:
                    for sql in step.statements:
                        conn.execute(sql)
                    conn.execute(f"PRAGMA user_version = {step.version}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return _user_version(conn)
    except sqlite3.Error as exc:
        raise _store_error(path, exc) from None


# --------------------------------------------------------------------------- opening


def store_path(profile_dir: str | os.PathLike[str]) -> Path:
    """Where the store lives in a profile folder."""
    return Path(profile_dir) / STORE_FILE


def _companions(path: Path) -> tuple[Path, Path, Path]:
    return path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _restrict(path: Path) -> None:
    """Take every permission but the owner's off the file and its WAL companions."""
    if os.name != "posix":
        return
    for p in _companions(path):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(p.stat().st_mode) & 0o077:
                os.chmod(p, 0o600)


def _create_private(path: Path) -> None:
    # Made here rather than by SQLite so that it is 0600 from the first byte (an empty
    # file is an empty database); SQLite then gives -wal and -shm the same mode.
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        _restrict(path)
    except OSError as exc:
        raise StoreError(f"cannot open {path}: {exc.strerror or exc}") from None


def _inspect(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file we must not write to; reads only, so a refused file is left unchanged."""
    supported = len(MIGRATIONS)
    try:
        version = _user_version(conn)
        application_id: int = conn.execute("PRAGMA application_id").fetchone()[0]
        objects: int = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if application_id != APPLICATION_ID and (application_id != 0 or version != 0 or objects != 0):
            raise StoreCorrupt(path, "another program's database")
        if version > supported:
            raise StoreTooNew(path, version, supported)
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.Error as exc:
        raise _store_error(path, exc) from None
    if problems != ["ok"]:
        raise StoreCorrupt(path, "; ".join(problems))


def _open(path: Path, busy_timeout: float) -> sqlite3.Connection:
    _create_private(path)
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _store_error(path, exc) from None
    try:
        _inspect(conn, path)
        try:
            # WAL is kept if the file system allows it; in a rollback journal FULL is
            # just as durable, only slower, so a file system without WAL is no reason
            # to refuse to start.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA trusted_schema = OFF")
        except sqlite3.Error as exc:
            raise _store_error(path, exc) from None
        migrate(conn, path)
        _restrict(path)
    except BaseException:
        conn.close()
        raise
    return conn


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _need_text(name: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")


# --------------------------------------------------------------------------- the store

_CALL_COLUMNS: Final = (
    "id, direction, peer_aor, display_name, started, answered, ended, outcome, sip_status, verified, seen"
)
_MESSAGE_COLUMNS: Final = "id, direction, peer_aor, body, time, state, reason, updated, read"


def _call(row: sqlite3.Row | tuple[Any, ...]) -> CallRecord:
    return CallRecord(
        id=row[0],
        direction=CallDirection(row[1]),
        peer_aor=row[2],
        display_name=row[3],
        started=row[4],
        answered=row[5],
        ended=row[6],
        outcome=row[7],
        sip_status=row[8],
        verified=bool(row[9]),
        seen=bool(row[10]),
    )


def _message(row: sqlite3.Row | tuple[Any, ...]) -> MessageRecord:
    return MessageRecord(
        id=row[0],
        direction=MessageDirection(row[1]),
        peer_aor=row[2],
        text=row[3],
        time=row[4],
        state=Delivery(row[5]),
        reason=row[6],
        updated=row[7],
        read=bool(row[8]),
    )


def _contact(row: tuple[Any, ...]) -> Contact:
    return Contact(aor=row[0], display_name=row[1], added=row[2], last_seen=row[3])


def _contact_order(contact: Contact) -> tuple[str, str, str]:
    # Near enough to a collation for a buddy list without a locale: accents sort with
    # their letters ("Änne" beside "Anne"), and a buddy without a name by the AoR
    # without its scheme ("bob@..." among the Bs).
    name = (contact.display_name or contact.aor.partition(":")[2] or contact.aor).casefold()
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return (plain, name, contact.aor)


class PhoneStore:
    """The store, synchronous. Every write has committed (and been fsynced) when it returns.

    Raises :class:`StoreCorrupt` or :class:`StoreTooNew` on opening a file it must not
    use, :class:`StoreError` when the file cannot be read or written; ``ValueError`` for
    arguments that make no sense (an empty AoR, a SIP status of 42).
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = _open(self.path, busy_timeout)

    @classmethod
    def in_profile(cls, profile_dir: str | os.PathLike[str]) -> PhoneStore:
        """Open (or create) ``phone.db`` in a profile folder, creating the folder 0700."""
        # Imported here: app.profile pulls in the certificate code, which the store
        # itself does not need (and a process that only keeps records starts faster).
        from app.profile import ProfileError, prepare_directory

        try:
            folder = prepare_directory(profile_dir)
        except ProfileError as exc:
            raise StoreError(str(exc)) from None
        return cls(folder / STORE_FILE)

    # ---- lifecycle

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL into the file). Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> PhoneStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._read() as conn:
            return _user_version(conn)

    @property
    def journal_mode(self) -> str:
        with self._read() as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    def integrity_check(self) -> list[str]:
        """The full ``PRAGMA integrity_check``: ``["ok"]`` or what is wrong."""
        with self._read() as conn:
            return [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StoreError(f"{self.path} is closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"{self.path} is closed")
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _store_error(self.path, exc) from None
                raise

    # ---- contacts

    def add_contact(self, aor: str, display_name: str = "", *, now: float | None = None) -> Contact:
        """Add a buddy; :class:`ContactExists` if the AoR is one already."""
        _need_text("aor", aor)
        contact = Contact(aor, display_name, _now(now))
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO contacts (aor, display_name, added) VALUES (?, ?, ?)",
                    (aor, display_name, contact.added),
                )
            except sqlite3.IntegrityError:
                raise ContactExists(f"{aor} is already in the contacts") from None
        return contact

    def update_contact(self, aor: str, *, display_name: str) -> Contact:
        with self._write() as conn:
            if (
                conn.execute(
                    "UPDATE contacts SET display_name = ? WHERE aor = ?", (display_name, aor)
                ).rowcount
                == 0
            ):
                raise NotFound(f"{aor} is not in the contacts")
            return _contact(
                conn.execute(
                    "SELECT aor, display_name, added, last_seen FROM contacts WHERE aor = ?", (aor,)
                ).fetchone()
            )

    def remove_contact(self, aor: str) -> bool:
        """Remove a buddy (their pin stays: re-adding them must not reset trust)."""
        with self._write() as conn:
            return conn.execute("DELETE FROM contacts WHERE aor = ?", (aor,)).rowcount > 0

    def get_contact(self, aor: str) -> Contact | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT aor, display_name, added, last_seen FROM contacts WHERE aor = ?", (aor,)
            ).fetchone()
        return None if row is None else _contact(row)

    def list_contacts(self) -> list[Contact]:
        """All buddies by name, ignoring case and accents (the AoR for those without one)."""
        with self._read() as conn:
            rows = conn.execute("SELECT aor, display_name, added, last_seen FROM contacts").fetchall()
        return sorted((_contact(row) for row in rows), key=_contact_order)

    def search_contacts(self, text: str, *, limit: int = 50) -> list[Contact]:
        """Buddies whose AoR or name contains ``text``, ignoring case (Unicode casefold)."""
        needle = text.casefold()
        found = [
            c
            for c in self.list_contacts()
            if needle in c.aor.casefold() or needle in c.display_name.casefold()
        ]
        return found[:limit]

    def set_last_seen(self, aor: str, when: float) -> bool:
        """Record that the buddy was seen registered at ``when``; only ever moves forward.

        False if the AoR is not a contact or ``when`` is not newer than what is stored.
        """
        with self._write() as conn:
            return (
                conn.execute(
                    "UPDATE contacts SET last_seen = ? WHERE aor = ? AND (last_seen IS NULL OR last_seen < ?)",
                    (when, aor, when),
                ).rowcount
                > 0
            )

    # ---- pins (trust on first use; the policy is app.phone.pinning's)

    def pin_get(self, aor: str) -> Pin | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT aor, node_id, cert_fingerprint, first_seen FROM pins WHERE aor = ?", (aor,)
            ).fetchone()
        return None if row is None else Pin(row[0], bytes(row[1]), bytes(row[2]), row[3])

    def pin_set(self, aor: str, node_id: bytes, cert_fingerprint: bytes, first_seen: float) -> Pin:
        """Store (or replace) the pin for ``aor``."""
        _need_text("aor", aor)
        if (
            not isinstance(node_id, bytes)
            or not node_id
            or not isinstance(cert_fingerprint, bytes)
            or not cert_fingerprint
        ):
            raise ValueError("node_id and cert_fingerprint must be non-empty bytes")
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO pins (aor, node_id, cert_fingerprint, first_seen) VALUES (?, ?, ?, ?)",
                (aor, node_id, cert_fingerprint, first_seen),
            )
        return Pin(aor, node_id, cert_fingerprint, first_seen)

    def pin_remove(self, aor: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM pins WHERE aor = ?", (aor,)).rowcount > 0

    def pins(self) -> list[Pin]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT aor, node_id, cert_fingerprint, first_seen FROM pins ORDER BY aor"
            ).fetchall()
        return [Pin(r[0], bytes(r[1]), bytes(r[2]), r[3]) for r in rows]

    # ---- call history

    def _get_call(self, conn: sqlite3.Connection, call_id: int) -> CallRecord:
        row = conn.execute(f"SELECT {_CALL_COLUMNS} FROM calls WHERE id = ?", (call_id,)).fetchone()
        if row is None:
            raise NotFound(f"no call {call_id} in the history")
        return _call(row)

    def start_call(
        self,
        direction: CallDirection,
        peer_aor: str,
        display_name: str = "",
        *,
        verified: bool = False,
        now: float | None = None,
    ) -> CallRecord:
        """A call begins (dialled, or an INVITE came in): its history entry, in progress."""
        if direction not in (CallDirection.INCOMING, CallDirection.OUTGOING):
            raise ValueError("a call starts incoming or outgoing (missed is how an incoming one ends)")
        _need_text("peer_aor", peer_aor)
        started = _now(now)
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO calls (direction, peer_aor, display_name, started, outcome, verified, seen)"
                " VALUES (?, ?, ?, ?, '', ?, 1)",
                (direction.value, peer_aor, display_name, started, int(verified)),
            )
            assert cursor.lastrowid is not None
            return CallRecord(
                cursor.lastrowid,
                direction,
                peer_aor,
                display_name,
                started,
                None,
                None,
                "",
                None,
                verified,
                True,
            )

    def answer_call(
        self, call_id: int, *, verified: bool | None = None, now: float | None = None
    ) -> CallRecord:
        """The call was answered (200 OK sent or received).

        The first answer time stands; a call that has ended is left as it is (a late
        answer racing a hang-up). ``verified``, if given, replaces the stored flag.
        """
        answered = _now(now)
        with self._write() as conn:
            call = self._get_call(conn, call_id)
            if call.ended is None:
                conn.execute(
                    "UPDATE calls SET answered = COALESCE(answered, ?), verified = COALESCE(?, verified) WHERE id = ?",
                    (answered, None if verified is None else int(verified), call_id),
                )
                call = self._get_call(conn, call_id)
            return call

    def end_call(
        self,
        call_id: int,
        *,
        outcome: str,
        sip_status: int | None = None,
        missed: bool | None = None,
        now: float | None = None,
    ) -> CallRecord:
        """The call is over: ``outcome`` for the user ("hung up", "busy", "no answer") and
        the SIP status that ended it, if one did.

        An incoming call never answered becomes missed, unless ``missed=False`` (the user
        declined it). Ending a call that has ended changes nothing.
        """
        if sip_status is not None and not (isinstance(sip_status, int) and 100 <= sip_status <= 699):
            raise ValueError(f"SIP status {sip_status!r} is not 100-699")
        ended = _now(now)
        with self._write() as conn:
            call = self._get_call(conn, call_id)
            if call.ended is not None:
                return call
            unanswered_incoming = call.direction is CallDirection.INCOMING and call.answered is None
            if missed and not unanswered_incoming:
                raise ValueError(f"call {call_id} cannot be missed: it was answered or outgoing")
            is_missed = unanswered_incoming if missed is None else missed
            direction = CallDirection.MISSED if is_missed else call.direction
            conn.execute(
                "UPDATE calls SET ended = ?, outcome = ?, sip_status = ?, direction = ?, seen = ? WHERE id = ?",
                (ended, outcome, sip_status, direction.value, int(not is_missed), call_id),
            )
            return self._get_call(conn, call_id)

    def end_interrupted_calls(
        self, *, outcome: str = "interrupted: the phone stopped during the call"
    ) -> int:
        """At start-up: close the calls the last run left in progress (it was killed).

        Their end time is unknown; they get their answer (or start) time, so the history
        shows no talk time we cannot vouch for. Unanswered incoming ones become missed.
        """
        with self._write() as conn:
            conn.execute(
                "UPDATE calls SET direction = 'missed', seen = 0"
                " WHERE ended IS NULL AND answered IS NULL AND direction = 'incoming'"
            )
            return conn.execute(
                "UPDATE calls SET ended = COALESCE(answered, started), outcome = ? WHERE ended IS NULL",
                (outcome,),
            ).rowcount

    def get_call(self, call_id: int) -> CallRecord | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_CALL_COLUMNS} FROM calls WHERE id = ?", (call_id,)).fetchone()
        return None if row is None else _call(row)

    def list_calls(
        self, *, limit: int = 100, offset: int = 0, missed_only: bool = False, peer_aor: str | None = None
    ) -> list[CallRecord]:
        """The history, newest first."""
        where: list[str] = []
        args: list[Any] = []
        if missed_only:
            where.append("direction = 'missed'")
        if peer_aor is not None:
            where.append("peer_aor = ?")
            args.append(peer_aor)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_CALL_COLUMNS} FROM calls{clause} ORDER BY started DESC, id DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [_call(row) for row in rows]

    def missed_count(self, *, unseen_only: bool = True) -> int:
        """Missed calls (by default only those the user has not looked at yet)."""
        sql = "SELECT count(*) FROM calls WHERE direction = 'missed'" + (
            " AND seen = 0" if unseen_only else ""
        )
        with self._read() as conn:
            count: int = conn.execute(sql).fetchone()[0]
        return count

    def mark_missed_seen(self) -> int:
        """The user has looked at the missed calls; returns how many were unseen."""
        with self._write() as conn:
            return conn.execute("UPDATE calls SET seen = 1 WHERE direction = 'missed' AND seen = 0").rowcount

    def delete_call(self, call_id: int) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM calls WHERE id = ?", (call_id,)).rowcount > 0

    def clear_history(self) -> int:
        """Delete every call that has ended (calls in progress stay); returns how many."""
        with self._write() as conn:
            return conn.execute("DELETE FROM calls WHERE ended IS NOT NULL").rowcount

    # ---- messages

    def _get_message(self, conn: sqlite3.Connection, message_id: int) -> MessageRecord:
        row = conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFound(f"no message {message_id}")
        return _message(row)

    def add_message(
        self,
        direction: MessageDirection,
        peer_aor: str,
        text: str,
        *,
        state: Delivery | None = None,
        reason: str = "",
        now: float | None = None,
    ) -> MessageRecord:
        """Store a message: an outgoing one before it is sent (``SENDING``), an incoming one
        (``DELIVERED``, unread) before it is shown or acknowledged."""
        _need_text("peer_aor", peer_aor)
        if not isinstance(text, str):
            raise ValueError("text must be a string")
        incoming = direction is MessageDirection.INCOMING
        if state is None:
            state = Delivery.DELIVERED if incoming else Delivery.SENDING
        elif incoming and state is not Delivery.DELIVERED:
            raise ValueError("an incoming message is delivered (to us)")
        when = _now(now)
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO messages (direction, peer_aor, body, time, state, reason, updated, read)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (direction.value, peer_aor, text, when, state.value, reason, when, int(not incoming)),
            )
            assert cursor.lastrowid is not None
            return MessageRecord(
                cursor.lastrowid, direction, peer_aor, text, when, state, reason, when, not incoming
            )

    def update_message_state(
        self, message_id: int, state: Delivery, *, reason: str = "", now: float | None = None
    ) -> MessageRecord:
        """Move an outgoing message to ``state`` (with ``reason``, for a failure).

        ``DELIVERED`` is final: a later update (a stale timeout after the 200 OK) changes
        nothing. Returns the record as stored.
        """
        updated = _now(now)
        with self._write() as conn:
            message = self._get_message(conn, message_id)
            if message.direction is not MessageDirection.OUTGOING:
                raise ValueError(f"message {message_id} is incoming: its state does not change")
            if message.state is Delivery.DELIVERED:
                return message
            conn.execute(
                "UPDATE messages SET state = ?, reason = ?, updated = ? WHERE id = ?",
                (Delivery(state).value, reason, updated, message_id),
            )
            return self._get_message(conn, message_id)

    def get_message(self, message_id: int) -> MessageRecord | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
        return None if row is None else _message(row)

    def list_messages(
        self, peer_aor: str, *, limit: int = 100, before_id: int | None = None
    ) -> list[MessageRecord]:
        """The newest ``limit`` messages with a peer (older than ``before_id``, to page
        back), in the order they were stored."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE peer_aor = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (peer_aor, before_id if before_id is not None else 2**63 - 1, limit),
            ).fetchall()
        return [_message(row) for row in reversed(rows)]

    def conversations(self) -> list[Conversation]:
        """One entry per peer, the most recent conversation first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join('m.' + c.strip() for c in _MESSAGE_COLUMNS.split(','))},"
                " (SELECT count(*) FROM messages u WHERE u.peer_aor = m.peer_aor AND u.read = 0)"
                " FROM messages m JOIN (SELECT max(id) AS last_id FROM messages GROUP BY peer_aor) l"
                " ON m.id = l.last_id ORDER BY m.id DESC"
            ).fetchall()
        return [Conversation(row[2], _message(row), row[9]) for row in rows]

    def mark_read(self, peer_aor: str) -> int:
        """The user has read the conversation; returns how many messages were unread."""
        with self._write() as conn:
            return conn.execute(
                "UPDATE messages SET read = 1 WHERE peer_aor = ? AND read = 0", (peer_aor,)
            ).rowcount

    def unread_count(self) -> int:
        with self._read() as conn:
            count: int = conn.execute("SELECT count(*) FROM messages WHERE read = 0").fetchone()[0]
        return count

    def pending_messages(self) -> list[MessageRecord]:
        """Outgoing messages still ``SENDING`` (e.g. the last run was killed), oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE state = 'sending' ORDER BY id"
            ).fetchall()
        return [_message(row) for row in rows]

    def delete_conversation(self, peer_aor: str) -> int:
        with self._write() as conn:
            return conn.execute("DELETE FROM messages WHERE peer_aor = ?", (peer_aor,)).rowcount

    # ---- settings

    def settings(self) -> Settings:
        """The typed settings; a stored value that is missing or not valid gives the default."""
        with self._read() as conn:
            stored = dict(
                conn.execute(
                    f"SELECT key, value FROM settings WHERE key IN ({', '.join('?' * len(_SETTING_PARSERS))})",
                    tuple(_SETTING_PARSERS),
                ).fetchall()
            )
        values: dict[str, Any] = {}
        for name, parse in _SETTING_PARSERS.items():
            if name in stored:
                with contextlib.suppress(ValueError):
                    values[name] = parse(json.loads(stored[name]))
        return Settings(**values)

    def save_settings(self, settings: Settings) -> None:
        """Store every typed setting (one transaction)."""
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                [(f.name, _to_json(getattr(settings, f.name))) for f in fields(settings)],
            )

    def get_setting(self, key: str, default: JSONValue = None) -> JSONValue:
        """Any setting by key, as JSON (for the modules' own settings beside the typed ones)."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            value: JSONValue = json.loads(row[0])
        except ValueError:
            return default
        return value

    def set_setting(self, key: str, value: JSONValue) -> None:
        """Store one setting; a typed setting's key only takes a value of its type."""
        _need_text("key", key)
        if key in _SETTING_PARSERS:
            try:
                _SETTING_PARSERS[key](value)
            except ValueError as exc:
                raise ValueError(f"setting {key}: {exc}") from None
        encoded = _to_json(value)
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, encoded))

    def delete_setting(self, key: str) -> bool:
        """Forget a setting (a typed one goes back to its default)."""
        with self._write() as conn:
            return conn.execute("DELETE FROM settings WHERE key = ?", (key,)).rowcount > 0


# --------------------------------------------------------------------------- asyncio


class AsyncPhoneStore:
    """The store for the event loop: each call runs on one worker thread, in call order.

    A write's fsync then never holds up the loop (the GUI's included), and a read made
    after a write sees it. Cancelling the awaiting task does not undo a write: one that
    has started finishes; one still queued may or may not run. Either way its result
    was never shown to anyone, which is all the durability promise is about.
    """

    def __init__(self, store: PhoneStore, *, _executor: ThreadPoolExecutor | None = None) -> None:
        self.store = store
        self._executor = _executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="phone-store")

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> AsyncPhoneStore:
        """Open on the worker thread: the integrity check and migrations read the file."""
        return await cls._open_with(functools.partial(PhoneStore, path, busy_timeout=busy_timeout))

    @classmethod
    async def in_profile(cls, profile_dir: str | os.PathLike[str]) -> AsyncPhoneStore:
        return await cls._open_with(functools.partial(PhoneStore.in_profile, profile_dir))

    @classmethod
    async def _open_with(cls, opener: Callable[[], PhoneStore]) -> AsyncPhoneStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phone-store")
        try:
            store = await asyncio.get_running_loop().run_in_executor(executor, opener)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(store, _executor=executor)

    async def run(
        self, fn: Callable[Concatenate[PhoneStore, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run ``fn(store, ...)`` on the worker thread (for several calls in one go)."""
        call = functools.partial(fn, self.store, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def aclose(self) -> None:
        """Close the store after the calls already queued, then stop the worker."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.store.close)
        finally:
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> AsyncPhoneStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # The methods of PhoneStore, one for one (tests/phone/test_store.py checks that the
    # signatures match).

    async def integrity_check(self) -> list[str]:
        return await self.run(PhoneStore.integrity_check)

    async def add_contact(self, aor: str, display_name: str = "", *, now: float | None = None) -> Contact:
        return await self.run(PhoneStore.add_contact, aor, display_name, now=now)

    async def update_contact(self, aor: str, *, display_name: str) -> Contact:
        return await self.run(PhoneStore.update_contact, aor, display_name=display_name)

    async def remove_contact(self, aor: str) -> bool:
        return await self.run(PhoneStore.remove_contact, aor)

    async def get_contact(self, aor: str) -> Contact | None:
        return await self.run(PhoneStore.get_contact, aor)

    async def list_contacts(self) -> list[Contact]:
        return await self.run(PhoneStore.list_contacts)

    async def search_contacts(self, text: str, *, limit: int = 50) -> list[Contact]:
        return await self.run(PhoneStore.search_contacts, text, limit=limit)

    async def set_last_seen(self, aor: str, when: float) -> bool:
        return await self.run(PhoneStore.set_last_seen, aor, when)

    async def pin_get(self, aor: str) -> Pin | None:
        return await self.run(PhoneStore.pin_get, aor)

    async def pin_set(self, aor: str, node_id: bytes, cert_fingerprint: bytes, first_seen: float) -> Pin:
        return await self.run(PhoneStore.pin_set, aor, node_id, cert_fingerprint, first_seen)

    async def pin_remove(self, aor: str) -> bool:
        return await self.run(PhoneStore.pin_remove, aor)

    async def pins(self) -> list[Pin]:
        return await self.run(PhoneStore.pins)

    async def start_call(
        self,
        direction: CallDirection,
        peer_aor: str,
        display_name: str = "",
        *,
        verified: bool = False,
        now: float | None = None,
    ) -> CallRecord:
        return await self.run(
            PhoneStore.start_call, direction, peer_aor, display_name, verified=verified, now=now
        )

    async def answer_call(
        self, call_id: int, *, verified: bool | None = None, now: float | None = None
    ) -> CallRecord:
        return await self.run(PhoneStore.answer_call, call_id, verified=verified, now=now)

    async def end_call(
        self,
        call_id: int,
        *,
        outcome: str,
        sip_status: int | None = None,
        missed: bool | None = None,
        now: float | None = None,
    ) -> CallRecord:
        return await self.run(
            PhoneStore.end_call, call_id, outcome=outcome, sip_status=sip_status, missed=missed, now=now
        )

    async def end_interrupted_calls(
        self, *, outcome: str = "interrupted: the phone stopped during the call"
    ) -> int:
        return await self.run(PhoneStore.end_interrupted_calls, outcome=outcome)

    async def get_call(self, call_id: int) -> CallRecord | None:
        return await self.run(PhoneStore.get_call, call_id)

    async def list_calls(
        self, *, limit: int = 100, offset: int = 0, missed_only: bool = False, peer_aor: str | None = None
    ) -> list[CallRecord]:
        return await self.run(
            PhoneStore.list_calls, limit=limit, offset=offset, missed_only=missed_only, peer_aor=peer_aor
        )

    async def missed_count(self, *, unseen_only: bool = True) -> int:
        return await self.run(PhoneStore.missed_count, unseen_only=unseen_only)

    async def mark_missed_seen(self) -> int:
        return await self.run(PhoneStore.mark_missed_seen)

    async def delete_call(self, call_id: int) -> bool:
        return await self.run(PhoneStore.delete_call, call_id)

    async def clear_history(self) -> int:
        return await self.run(PhoneStore.clear_history)

    async def add_message(
        self,
        direction: MessageDirection,
        peer_aor: str,
        text: str,
        *,
        state: Delivery | None = None,
        reason: str = "",
        now: float | None = None,
    ) -> MessageRecord:
        return await self.run(
            PhoneStore.add_message, direction, peer_aor, text, state=state, reason=reason, now=now
        )

    async def update_message_state(
        self, message_id: int, state: Delivery, *, reason: str = "", now: float | None = None
    ) -> MessageRecord:
        return await self.run(PhoneStore.update_message_state, message_id, state, reason=reason, now=now)

    async def get_message(self, message_id: int) -> MessageRecord | None:
        return await self.run(PhoneStore.get_message, message_id)

    async def list_messages(
        self, peer_aor: str, *, limit: int = 100, before_id: int | None = None
    ) -> list[MessageRecord]:
        return await self.run(PhoneStore.list_messages, peer_aor, limit=limit, before_id=before_id)

    async def conversations(self) -> list[Conversation]:
        return await self.run(PhoneStore.conversations)

    async def mark_read(self, peer_aor: str) -> int:
        return await self.run(PhoneStore.mark_read, peer_aor)

    async def unread_count(self) -> int:
        return await self.run(PhoneStore.unread_count)

    async def pending_messages(self) -> list[MessageRecord]:
        return await self.run(PhoneStore.pending_messages)

    async def delete_conversation(self, peer_aor: str) -> int:
        return await self.run(PhoneStore.delete_conversation, peer_aor)

    async def settings(self) -> Settings:
        return await self.run(PhoneStore.settings)

    async def save_settings(self, settings: Settings) -> None:
        await self.run(PhoneStore.save_settings, settings)

    async def get_setting(self, key: str, default: JSONValue = None) -> JSONValue:
        return await self.run(PhoneStore.get_setting, key, default)

    async def set_setting(self, key: str, value: JSONValue) -> None:
        await self.run(PhoneStore.set_setting, key, value)

    async def delete_setting(self, key: str) -> bool:
        return await self.run(PhoneStore.delete_setting, key)

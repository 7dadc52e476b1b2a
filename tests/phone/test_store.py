"""The phone's SQLite store (app/phone/store.py): schema and migrations, refusing files it
must not touch (and keeping them byte for byte), the records' rules, 0600 files, the
asyncio wrapper, and that nothing a write returned is lost when the process is SIGKILLed."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.phone.store import (
    APPLICATION_ID,
    MIGRATIONS,
    STORE_FILE,
    AsyncPhoneStore,
    CallDirection,
    ContactExists,
    Delivery,
    MessageDirection,
    Migration,
    NotFound,
    PhoneStore,
    Settings,
    StoreCorrupt,
    StoreError,
    StoreTooNew,
    migrate,
    store_path,
)

ALICE = "sip:alice@example.org"
BOB = "sip:bob@example.org"
CAROL = "sip:carol@example.org"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def companions(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def folder_snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PhoneStore]:
    s = PhoneStore(tmp_path / STORE_FILE)
    try:
        yield s
    finally:
        s.close()


def fill(store: PhoneStore) -> None:
    """One of everything, with fixed times."""
    store.add_contact(ALICE, "Alice", now=1000.0)
    store.add_contact(BOB, "", now=1001.0)
    store.set_last_seen(ALICE, 1500.0)
    store.pin_set(ALICE, bytes(range(16)), b"\xaa" * 32, 1002.0)
    call = store.start_call(CallDirection.OUTGOING, ALICE, "Alice", verified=True, now=1100.0)
    store.answer_call(call.id, now=1102.5)
    store.end_call(call.id, outcome="hung up", sip_status=200, now=1160.0)
    missed = store.start_call(CallDirection.INCOMING, BOB, now=1200.0)
    store.end_call(missed.id, outcome="caller hung up", sip_status=487, now=1210.0)
    sent = store.add_message(MessageDirection.OUTGOING, ALICE, "hello", now=1300.0)
    store.update_message_state(sent.id, Delivery.DELIVERED, now=1301.0)
    store.add_message(MessageDirection.INCOMING, ALICE, "hi there, ünïcödé ✓", now=1302.0)
    store.save_settings(Settings(auto_answer=True, codec_order=("PCMU", "opus"), input_device="USB Headset"))
    store.set_setting("discovery.last_bootstrap", ["192.0.2.7:6084"])


def everything(store: PhoneStore) -> tuple[object, ...]:
    return (
        store.list_contacts(),
        store.pins(),
        store.list_calls(),
        store.conversations(),
        store.list_messages(ALICE),
        store.settings(),
        store.get_setting("discovery.last_bootstrap"),
        store.missed_count(),
    )


# --------------------------------------------------------------------------- opening


def test_a_new_store_is_created_0600_in_the_profile_folder_and_migrated_from_empty(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    with PhoneStore.in_profile(profile) as s:
        path = store_path(profile)
        assert s.path == path and path.name == "phone.db"
        assert mode(profile) == 0o700
        assert s.schema_version == len(MIGRATIONS) == 1
        assert s.journal_mode == "wal"
        s.add_contact(ALICE, "Alice")  # the WAL exists once written to
        files = companions(path)
        assert [p.name for p in files] == ["phone.db", "phone.db-wal", "phone.db-shm"]
        assert all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}
        assert s.integrity_check() == ["ok"]
    raw = sqlite3.connect(path)
    try:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"contacts", "pins", "calls", "messages", "settings"} <= tables
        assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent
    finally:
        raw.close()


def test_a_group_readable_store_is_made_private_again(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    PhoneStore(path).close()
    os.chmod(path, 0o644)
    with PhoneStore(path) as s:
        s.add_contact(ALICE)
        assert all(mode(p) == 0o600 for p in companions(path))


def test_an_empty_file_is_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    path.write_bytes(b"")
    with PhoneStore(path) as s:
        assert s.schema_version == 1
        assert s.list_contacts() == []


def test_reopening_keeps_every_record(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    with PhoneStore(path) as s:
        fill(s)
        before = everything(s)
    assert companions(path) == [path]  # a clean close checkpoints and removes the WAL
    with PhoneStore(path) as s:
        assert everything(s) == before
        assert s.get_contact(ALICE) is not None and s.get_contact(ALICE).last_seen == 1500.0  # type: ignore[union-attr]
        assert s.settings().codec_order == ("PCMU", "opus")


def test_a_store_from_a_newer_version_is_refused_and_left_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    with PhoneStore(path) as s:
        fill(s)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 7")
    raw.close()
    before = folder_snapshot(tmp_path)
    for _ in range(2):
        with pytest.raises(StoreTooNew) as caught:
            PhoneStore(path)
        assert folder_snapshot(tmp_path) == before
    error = caught.value
    assert (error.version, error.supported) == (7, 1)
    assert str(path) in str(error)
    assert "newer version" in str(error) and "move the file away" in str(error)
    assert isinstance(error, StoreError)


def test_migrations_run_step_by_step_and_a_failed_step_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    with PhoneStore(path) as s:
        fill(s)
    v2 = Migration(2, "call notes", ("ALTER TABLE calls ADD COLUMN note TEXT NOT NULL DEFAULT ''",))
    broken = Migration(
        2, "broken", ("ALTER TABLE calls ADD COLUMN x TEXT", "ALTER TABLE no_such_table ADD COLUMN y")
    )
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(StoreError, match="no_such_table"):
            migrate(raw, path, (*MIGRATIONS, broken))
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
        assert "x" not in {row[1] for row in raw.execute("PRAGMA table_info(calls)")}  # rolled back
        assert not raw.in_transaction

        assert migrate(raw, path, (*MIGRATIONS, v2)) == 2
        assert raw.execute("SELECT count(*), min(note) FROM calls").fetchone() == (2, "")
        assert migrate(raw, path, (*MIGRATIONS, v2)) == 2  # nothing left to do

        with pytest.raises(ValueError, match="version 3, not 2"):
            migrate(raw, path, (*MIGRATIONS, replace(v2, version=3)))
    finally:
        raw.close()
    with pytest.raises(StoreTooNew):  # this version knows only step 1
        PhoneStore(path)


def test_a_file_that_is_not_a_database_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    path.write_bytes(random.Random(6940).randbytes(20_000))
    before = folder_snapshot(tmp_path)
    with pytest.raises(StoreCorrupt) as caught:
        PhoneStore(path)
    assert folder_snapshot(tmp_path) == before
    message = str(caught.value)
    assert str(path) in message and "not a database" in message and "move it away" in message


@pytest.mark.parametrize("damage", ["truncated to half", "truncated to one page", "a page overwritten"])
def test_a_damaged_store_is_reported_and_kept(tmp_path: Path, damage: str) -> None:
    path = tmp_path / STORE_FILE
    with PhoneStore(path) as s:
        for i in range(400):
            call = s.start_call(
                CallDirection.INCOMING, f"sip:user{i}@example.org", "A Name " * 8, now=float(i)
            )
            s.end_call(call.id, outcome="hung up", now=i + 1.0)
    data = path.read_bytes()
    page = 4096
    assert len(data) > 20 * page
    if damage == "truncated to half":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "truncated to one page":
        path.write_bytes(data[:page])
    else:
        path.write_bytes(data[: 5 * page] + b"\xa5" * page + data[6 * page :])
    before = folder_snapshot(tmp_path)
    with pytest.raises(StoreCorrupt) as caught:
        PhoneStore(path)
    assert folder_snapshot(tmp_path) == before
    assert str(path) in str(caught.value) and caught.value.detail


def test_another_programs_database_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE contacts (name TEXT)")
    raw.execute("INSERT INTO contacts VALUES ('someone')")
    raw.commit()
    raw.close()
    before = folder_snapshot(tmp_path)
    with pytest.raises(StoreCorrupt, match="another program's database"):
        PhoneStore(path)
    assert folder_snapshot(tmp_path) == before


def test_a_store_locked_by_another_process_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    with PhoneStore(path, busy_timeout=0.1) as s:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match="in use by another program"):
                s.add_contact(ALICE)
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert s.add_contact(ALICE).aor == ALICE  # and fine once the lock is gone


def test_a_closed_store_says_so(store: PhoneStore) -> None:
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(StoreError, match="is closed"):
        store.list_contacts()
    with pytest.raises(StoreError, match="is closed"):
        store.add_contact(ALICE)


# --------------------------------------------------------------------------- records


def test_contacts(store: PhoneStore) -> None:
    alice = store.add_contact(ALICE, "Alice", now=10.0)
    assert alice.aor == ALICE and alice.added == 10.0 and alice.last_seen is None
    with pytest.raises(ContactExists, match="already"):
        store.add_contact(ALICE, "Other Alice")
    store.add_contact(BOB, "", now=11.0)
    store.add_contact(CAROL, "Zoë Carol", now=12.0)
    store.add_contact("sip:dave@example.org", "ÄNNE", now=13.0)
    assert [c.aor for c in store.list_contacts()] == [ALICE, "sip:dave@example.org", BOB, CAROL]
    assert [c.aor for c in store.search_contacts("ZOË")] == [CAROL]
    assert [c.aor for c in store.search_contacts("änne")] == ["sip:dave@example.org"]
    assert [c.aor for c in store.search_contacts("EXAMPLE.org", limit=2)] == [ALICE, "sip:dave@example.org"]
    assert store.search_contacts("nobody") == []

    assert store.update_contact(BOB, display_name="Bob") == replace(
        store.get_contact(BOB), display_name="Bob"
    )  # type: ignore[type-var]
    assert store.get_contact(BOB) is not None and store.get_contact(BOB).display_name == "Bob"  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        store.update_contact("sip:nobody@example.org", display_name="x")
    with pytest.raises(ValueError):
        store.add_contact("")

    assert store.set_last_seen(ALICE, 100.0)
    assert not store.set_last_seen(ALICE, 90.0)  # presence only moves forward
    assert store.set_last_seen(ALICE, 120.0)
    assert not store.set_last_seen("sip:stranger@example.org", 130.0)
    assert store.get_contact(ALICE) == replace(alice, last_seen=120.0)

    assert store.remove_contact(ALICE)
    assert not store.remove_contact(ALICE)
    assert store.get_contact(ALICE) is None


def test_pins(store: PhoneStore) -> None:
    assert store.pin_get(ALICE) is None
    node_id = bytes.fromhex("00112233445566778899aabbccddeeff")
    pin = store.pin_set(ALICE, node_id, b"\x01" * 32, 50.0)
    assert store.pin_get(ALICE) == pin and pin.node_id == node_id
    store.add_contact(ALICE)
    store.remove_contact(ALICE)
    assert store.pin_get(ALICE) == pin  # removing a buddy does not reset trust
    replaced = store.pin_set(ALICE, b"\x02" * 16, b"\x03" * 32, 60.0)
    store.pin_set(BOB, b"\x04" * 16, b"\x05" * 32, 61.0)
    assert store.pins() == [replaced, store.pin_get(BOB)]
    assert store.pin_remove(ALICE) and not store.pin_remove(ALICE)
    with pytest.raises(ValueError):
        store.pin_set(CAROL, b"", b"\x05" * 32, 1.0)


def test_call_history(store: PhoneStore) -> None:
    out = store.start_call(CallDirection.OUTGOING, ALICE, "Alice", now=100.0)
    assert out.in_progress and out.duration is None and not out.verified
    assert store.answer_call(out.id, verified=True, now=104.0).answered == 104.0
    assert store.answer_call(out.id, now=105.0).answered == 104.0  # the first answer stands
    done = store.end_call(out.id, outcome="hung up", sip_status=200, now=164.5)
    assert (done.direction, done.ended, done.duration, done.verified, done.sip_status) == (
        CallDirection.OUTGOING,
        164.5,
        60.5,
        True,
        200,
    )
    assert store.end_call(out.id, outcome="again", now=200.0) == done  # a second end changes nothing
    assert store.answer_call(out.id, now=201.0) == done

    missed = store.end_call(
        store.start_call(CallDirection.INCOMING, BOB, now=300.0).id,
        outcome="caller hung up",
        sip_status=487,
        now=310.0,
    )
    assert missed.direction is CallDirection.MISSED and missed.duration == 0.0 and not missed.seen
    declined = store.end_call(
        store.start_call(CallDirection.INCOMING, BOB, now=400.0).id,
        outcome="declined",
        sip_status=603,
        missed=False,
        now=401.0,
    )
    assert declined.direction is CallDirection.INCOMING and declined.seen
    busy = store.end_call(
        store.start_call(CallDirection.OUTGOING, CAROL, now=500.0).id, outcome="busy", sip_status=486
    )
    assert busy.direction is CallDirection.OUTGOING and busy.duration == 0.0
    dialling = store.start_call(CallDirection.OUTGOING, CAROL, now=600.0)
    with pytest.raises(ValueError, match="cannot be missed"):
        store.end_call(dialling.id, outcome="x", missed=True)
    assert store.get_call(dialling.id) == dialling  # the refused end changed nothing
    with pytest.raises(ValueError, match="100-699"):
        store.end_call(out.id, outcome="x", sip_status=42)
    with pytest.raises(ValueError):
        store.start_call(CallDirection.MISSED, BOB)
    with pytest.raises(NotFound):
        store.answer_call(9999)

    assert store.missed_count() == 1
    assert store.missed_count(unseen_only=False) == 1
    assert [c.id for c in store.list_calls(missed_only=True)] == [missed.id]
    history = store.list_calls()
    assert [c.started for c in history][:4] == sorted((c.started for c in history), reverse=True)[:4]
    assert [c.id for c in store.list_calls(peer_aor=BOB)] == [declined.id, missed.id]
    assert [c.id for c in store.list_calls(limit=1, offset=1, peer_aor=BOB)] == [missed.id]
    assert store.mark_missed_seen() == 1
    assert store.missed_count() == 0 and store.missed_count(unseen_only=False) == 1
    assert store.get_call(missed.id) == replace(missed, seen=True)

    assert store.delete_call(busy.id) and not store.delete_call(busy.id)
    ongoing = store.start_call(CallDirection.OUTGOING, ALICE, now=900.0)
    assert store.clear_history() == 3  # everything but the calls in progress
    assert store.list_calls() == [ongoing, dialling]


def test_calls_left_in_progress_by_a_killed_run_are_closed_at_start_up(store: PhoneStore) -> None:
    talking = store.start_call(CallDirection.OUTGOING, ALICE, now=10.0)
    store.answer_call(talking.id, now=12.0)
    ringing = store.start_call(CallDirection.INCOMING, BOB, now=20.0)
    finished = store.end_call(
        store.start_call(CallDirection.OUTGOING, CAROL, now=1.0).id, outcome="ok", now=2.0
    )
    assert store.end_interrupted_calls() == 2
    t = store.get_call(talking.id)
    r = store.get_call(ringing.id)
    assert t is not None and (t.ended, t.duration, t.direction) == (12.0, 0.0, CallDirection.OUTGOING)
    assert r is not None and (r.ended, r.direction, r.seen) == (20.0, CallDirection.MISSED, False)
    assert "interrupted" in t.outcome
    assert store.get_call(finished.id) == finished
    assert store.end_interrupted_calls() == 0


def test_messages(store: PhoneStore) -> None:
    first = store.add_message(MessageDirection.OUTGOING, ALICE, "one", now=1.0)
    assert (first.state, first.read, first.updated) == (Delivery.SENDING, True, 1.0)
    assert store.pending_messages() == [first]
    sent = store.update_message_state(first.id, Delivery.SENT, now=2.0)
    assert (sent.state, sent.updated, sent.time) == (Delivery.SENT, 2.0, 1.0)
    delivered = store.update_message_state(first.id, Delivery.DELIVERED, now=3.0)
    assert (
        store.update_message_state(first.id, Delivery.FAILED, reason="timeout", now=4.0) == delivered
    )  # final

    second = store.add_message(MessageDirection.OUTGOING, ALICE, "two", now=5.0)
    failed = store.update_message_state(second.id, Delivery.FAILED, reason="408 Request Timeout", now=6.0)
    assert (failed.state, failed.reason) == (Delivery.FAILED, "408 Request Timeout")
    again = store.update_message_state(second.id, Delivery.SENDING, now=7.0)  # sent again
    assert (again.state, again.reason) == (Delivery.SENDING, "")

    incoming = store.add_message(MessageDirection.INCOMING, ALICE, "three ✓", now=8.0)
    assert (incoming.state, incoming.read) == (Delivery.DELIVERED, False)
    with pytest.raises(ValueError, match="incoming"):
        store.update_message_state(incoming.id, Delivery.FAILED)
    with pytest.raises(ValueError):
        store.add_message(MessageDirection.INCOMING, BOB, "x", state=Delivery.SENDING)
    with pytest.raises(NotFound):
        store.update_message_state(9999, Delivery.SENT)
    from_bob = store.add_message(MessageDirection.INCOMING, BOB, "hey", now=9.0)
    store.add_message(MessageDirection.INCOMING, BOB, "you there?", now=10.0)

    assert [m.text for m in store.list_messages(ALICE)] == ["one", "two", "three ✓"]
    assert [m.text for m in store.list_messages(ALICE, limit=2)] == ["two", "three ✓"]
    assert [m.text for m in store.list_messages(ALICE, limit=2, before_id=second.id)] == ["one"]
    conversations = store.conversations()
    assert [(c.peer_aor, c.last.text, c.unread) for c in conversations] == [
        (BOB, "you there?", 2),
        (ALICE, "three ✓", 1),
    ]
    assert store.unread_count() == 3
    assert store.mark_read(BOB) == 2 and store.mark_read(BOB) == 0
    assert store.get_message(from_bob.id) == replace(from_bob, read=True)
    assert store.unread_count() == 1
    assert store.pending_messages() == [again]
    assert store.delete_conversation(BOB) == 2
    assert [c.peer_aor for c in store.conversations()] == [ALICE]


def test_settings(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    with PhoneStore(path) as s:
        assert s.settings() == Settings()
        assert Settings().codec_order == ("opus", "PCMU", "PCMA") and Settings().no_answer_seconds == 20
        chosen = replace(
            s.settings(),
            do_not_disturb=True,
            forward_busy=BOB,
            no_answer_seconds=15,
            display_name="Alice A.",
            echo_cancellation=False,
            output_device="Speakers",
        )
        s.save_settings(chosen)
        s.set_setting("no_answer_seconds", 30)
        s.set_setting("local.instance", {"port": 6084, "names": ["a", "b"], "ratio": 0.5, "none": None})
        with pytest.raises(ValueError, match="no_answer_seconds"):
            s.set_setting("no_answer_seconds", "soon")
        with pytest.raises(ValueError, match="codec"):
            Settings(codec_order=("opus", "opus"))
        with pytest.raises(ValueError, match="auto_answer"):
            Settings(auto_answer=1)  # type: ignore[arg-type]
    raw = sqlite3.connect(path)
    raw.execute("UPDATE settings SET value = '\"loud\"' WHERE key = 'echo_cancellation'")  # a hand edit
    raw.execute("INSERT OR REPLACE INTO settings VALUES ('ringer_device', 'not json')")
    raw.commit()
    raw.close()
    with PhoneStore(path) as s:
        assert s.settings() == replace(chosen, no_answer_seconds=30, echo_cancellation=True)
        assert s.get_setting("local.instance") == {
            "port": 6084,
            "names": ["a", "b"],
            "ratio": 0.5,
            "none": None,
        }
        assert s.get_setting("missing", default=[1]) == [1]
        assert s.get_setting("ringer_device", default="fallback") == "fallback"
        assert s.delete_setting("do_not_disturb") and not s.delete_setting("do_not_disturb")
        assert s.settings().do_not_disturb is False


def test_threads_share_one_store(store: PhoneStore) -> None:
    def writer(n: int) -> None:
        for i in range(25):
            store.add_message(MessageDirection.OUTGOING, f"sip:t{n}@example.org", f"{n}.{i}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    for n in range(4):
        assert [m.text for m in store.list_messages(f"sip:t{n}@example.org")] == [
            f"{n}.{i}" for i in range(25)
        ]
    assert store.integrity_check() == ["ok"]


# --------------------------------------------------------------------------- asyncio


@pytest.fixture
async def async_store(tmp_path: Path) -> AsyncIterator[AsyncPhoneStore]:
    s = await AsyncPhoneStore.in_profile(tmp_path / "profile")
    try:
        yield s
    finally:
        await s.aclose()


async def test_async_store_runs_every_call_on_its_worker_thread_in_order(
    async_store: AsyncPhoneStore,
) -> None:
    loop_thread = threading.get_ident()
    worker = await async_store.run(lambda store: threading.get_ident())
    assert worker != loop_thread
    call = await async_store.start_call(CallDirection.INCOMING, ALICE, "Alice", verified=True, now=5.0)
    ended = asyncio.ensure_future(async_store.end_call(call.id, outcome="caller hung up", now=6.0))
    listed = asyncio.ensure_future(async_store.list_calls(missed_only=True))  # queued after the end
    assert [c.id for c in await listed] == [call.id]
    assert (await ended).direction is CallDirection.MISSED
    assert await async_store.missed_count() == 1
    await async_store.add_contact(BOB, "Bob")
    assert [c.display_name for c in await async_store.search_contacts("bob")] == ["Bob"]
    with pytest.raises(ContactExists):
        await async_store.add_contact(BOB)
    await async_store.set_setting("auto_answer", True)
    assert (await async_store.settings()).auto_answer is True
    assert await async_store.integrity_check() == ["ok"]


async def test_async_open_reports_a_refused_file(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    path.write_bytes(b"not a database, at all" * 100)
    with pytest.raises(StoreCorrupt):
        await AsyncPhoneStore.open(path)
    assert path.read_bytes() == b"not a database, at all" * 100


def test_async_store_has_every_store_method_with_the_same_signature() -> None:
    names = [
        name
        for name, fn in inspect.getmembers(PhoneStore, inspect.isfunction)
        if not name.startswith("_") and name != "close"
    ]
    assert len(names) > 30
    for name in names:
        sync_sig = inspect.signature(getattr(PhoneStore, name))
        async_fn = getattr(AsyncPhoneStore, name, None)
        assert async_fn is not None and inspect.iscoroutinefunction(async_fn), name
        async_sig = inspect.signature(async_fn)
        assert async_sig == sync_sig, f"{name}: {async_sig} != {sync_sig}"


# --------------------------------------------------------------------------- kill -9

# Writes forever; each line is printed only after the write it names has returned.
WRITER = r"""
import sys
from app.phone.store import CallDirection, Delivery, MessageDirection, PhoneStore

store = PhoneStore(sys.argv[1])
round_no = int(sys.argv[2])

def shown(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()

shown("ready")
n = 0
while True:
    n += 1
    peer = f"sip:peer{n % 7}@example.org"
    call = store.start_call(CallDirection.OUTGOING if n % 2 else CallDirection.INCOMING, peer, "Peer")
    shown("call", call.id)
    if n % 3:
        store.answer_call(call.id)
        shown("answer", call.id)
    store.end_call(call.id, outcome="hung up", sip_status=200 if n % 3 else 487)
    shown("end", call.id)
    message = store.add_message(MessageDirection.OUTGOING, peer, f"message {round_no}.{n}")
    shown("message", message.id, f"{round_no}.{n}")
    store.update_message_state(message.id, Delivery.SENT)
    shown("state", message.id, "sent")
    store.update_message_state(message.id, Delivery.DELIVERED)
    shown("state", message.id, "delivered")
    aor = f"sip:buddy{round_no}-{n}@example.org"
    store.add_contact(aor, f"Buddy {n}")
    shown("contact", aor)
    store.set_setting("kill_test.counter", round_no * 1_000_000 + n)
    shown("setting", round_no * 1_000_000 + n)
"""

STATE_ORDER = {Delivery.SENDING: 0, Delivery.SENT: 1, Delivery.DELIVERED: 2}


def check_shown(store: PhoneStore, lines: list[str]) -> None:
    """Everything the writer said it had written is in the store."""
    for line in lines:
        kind, *args = line.split()
        if kind == "ready":
            continue
        if kind in ("call", "answer", "end"):
            call = store.get_call(int(args[0]))
            assert call is not None, line
            assert kind != "answer" or call.answered is not None, line
            assert kind != "end" or call.ended is not None, line
        elif kind == "message":
            message = store.get_message(int(args[0]))
            assert message is not None and message.text == f"message {args[1]}", line
        elif kind == "state":
            message = store.get_message(int(args[0]))
            assert message is not None and STATE_ORDER[message.state] >= STATE_ORDER[Delivery(args[1])], line
        elif kind == "contact":
            assert store.get_contact(args[0]) is not None, line
        elif kind == "setting":
            counter = store.get_setting("kill_test.counter")
            assert isinstance(counter, int) and counter >= int(args[0]), line
        else:
            raise AssertionError(f"unexpected line from the writer: {line!r}")


@pytest.fixture
def children() -> Iterator[list[asyncio.subprocess.Process]]:
    procs: list[asyncio.subprocess.Process] = []
    yield procs
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()


@pytest.mark.multinode
async def test_nothing_a_write_returned_is_lost_when_the_process_is_killed(
    tmp_path: Path, children: list[asyncio.subprocess.Process]
) -> None:
    path = tmp_path / STORE_FILE
    rng = random.Random(6940)
    total = 0
    for round_no in range(20):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            str(path),
            str(round_no),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        children.append(proc)
        assert proc.stdout is not None and proc.stderr is not None
        # The kill lands wherever the writer is once it has reported `wait_for` writes:
        # mid-transaction, mid-fsync, mid-checkpoint; round 0 even before it opens the file.
        wait_for = 0 if round_no == 0 else rng.randint(1, 120)
        lines: list[str] = []
        while len(lines) < wait_for:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if not line:
                err = await proc.stderr.read()
                raise AssertionError(f"the writer died by itself: {err.decode()}")
            lines.append(line.decode().rstrip("\n"))
        proc.send_signal(signal.SIGKILL)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        # Lines still in the pipe were printed after their writes returned too; a last
        # line without its newline was cut off by the kill, so it was never shown.
        lines += out.decode().split("\n")[:-1]
        total += len(lines)
        with PhoneStore(path) as s:
            assert s.integrity_check() == ["ok"]
            check_shown(s, lines)
        assert all(mode(p) == 0o600 for p in companions(path))
    assert total > 500  # the writer got far enough, round after round, to mean something

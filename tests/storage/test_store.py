"""The per-peer data store (RFC 6940 §7, §7.2, §7.4): models, ordering, generations,
lifetimes, limits and quota."""

from __future__ import annotations

import pytest

from reload_core.storage.errors import StorageError
from reload_core.storage.store import DataStore, IncomingValue, KindValues, Quota, is_synthesized
from reload_core.wire.codes import ErrorCode, HashAlgorithm
from reload_core.wire.registry import decode_struct
from reload_core.wire.storage import (
    LAST_INDEX,
    ArrayEntry,
    ArrayRange,
    DataValue,
    DictionaryEntry,
    MetaData,
    StoreAns,
    StoredDataSpecifier,
    UnknownKinds,
)

from .support import ARRAY_USER, DICT_USER, SINGLE_NODE, SINGLE_USER, Identity, make_kinds, write

T0 = 1_700_000_000_000  # storage_time, ms since the epoch


def values_of(store: DataStore, resource: bytes, spec: StoredDataSpecifier, now: float = 0.0) -> KindValues:
    (result,) = store.fetch(resource, [spec], now)
    return result


def error_of(exc: pytest.ExceptionInfo[StorageError]) -> ErrorCode | int:
    return exc.value.code


# ---------------------------------------------------------------- single value (§7.2.1)


def test_single_value_store_overwrite_and_remove(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    (res,) = store.store(r, [write(SINGLE_USER, alice.single(r, SINGLE_USER, b"v1", T0))], 0.0)
    assert res.generation_counter == 1 and len(res.written) == 1
    got = values_of(store, r, StoredDataSpecifier.single(SINGLE_USER))
    assert got.generation == 1
    assert [v.data.value for v in got.values] == [DataValue(True, b"v1")]

    store.store(r, [write(SINGLE_USER, alice.single(r, SINGLE_USER, b"v2", T0 + 1))], 1.0)
    got = values_of(store, r, StoredDataSpecifier.single(SINGLE_USER), 1.0)
    assert got.generation == 2 and got.values[0].data.value == DataValue(True, b"v2")

    # §7.4.1.3: removal is a signed nonexistent value, kept with its signature.
    tombstone = alice.sign(r, SINGLE_USER, DataValue.nonexistent(), T0 + 2)
    store.store(r, [write(SINGLE_USER, IncomingValue(tombstone, alice.der))], 2.0)
    got = values_of(store, r, StoredDataSpecifier.single(SINGLE_USER), 2.0)
    assert got.values[0].data.value == DataValue(False, b"")
    assert not is_synthesized(got.values[0].data)
    assert got.generation == 3


def test_absent_single_value_is_synthesized(alice: Identity) -> None:
    store = DataStore(make_kinds())
    got = values_of(store, alice.user_resource, StoredDataSpecifier.single(SINGLE_USER))
    assert got.generation == 0
    (v,) = got.values
    assert v.data.value == DataValue(False, b"") and is_synthesized(v.data)


def test_older_storage_time_is_refused_and_same_value_is_a_no_op(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    first = alice.single(r, SINGLE_USER, b"new", T0 + 10)
    store.store(r, [write(SINGLE_USER, first)], 0.0)
    with pytest.raises(StorageError) as exc:
        store.store(r, [write(SINGLE_USER, alice.single(r, SINGLE_USER, b"old", T0))], 1.0)
    assert error_of(exc) == ErrorCode.Error_Data_Too_Old
    with pytest.raises(StorageError) as exc:  # §13.5.3: equal storage time, other value
        store.store(r, [write(SINGLE_USER, alice.single(r, SINGLE_USER, b"other", T0 + 10))], 1.0)
    assert error_of(exc) == ErrorCode.Error_Data_Too_Old
    (res,) = store.store(r, [write(SINGLE_USER, first)], 2.0)  # a retransmission
    assert res.written == () and res.generation_counter == 1
    assert values_of(store, r, StoredDataSpecifier.single(SINGLE_USER)).values[0].data.value.value == b"new"  # type: ignore[union-attr]


# ---------------------------------------------------------------- array (§7.2.2)


def test_sparse_array_gaps_append_and_ranges(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    store.store(r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 2, b"X", T0))], 0.0)
    got = values_of(store, r, StoredDataSpecifier.array(ARRAY_USER, [ArrayRange(0, LAST_INDEX)]))
    assert [(v.data.value.index, v.data.value.value.exists) for v in got.values] == [  # type: ignore[union-attr]
        (0, False),
        (1, False),
        (2, True),
    ]
    assert [is_synthesized(v.data) for v in got.values] == [True, True, False]

    # Two appends in one request land at 3 and 4 and keep those indices.
    (res,) = store.store(
        r,
        [
            write(
                ARRAY_USER,
                alice.append(r, ARRAY_USER, b"A", T0 + 1),
                alice.append(r, ARRAY_USER, b"B", T0 + 2),
            )
        ],
        1.0,
    )
    assert [v.data.value.index for v in res.written] == [3, 4]  # type: ignore[union-attr]
    got = values_of(store, r, StoredDataSpecifier.array(ARRAY_USER, [ArrayRange(3, 3), ArrayRange(4, 10)]))
    assert [(v.data.value.index, v.data.value.value.value) for v in got.values] == [(3, b"A"), (4, b"B")]  # type: ignore[union-attr]
    assert got.generation == 2

    # The same append again (a retransmitted request) does not append twice.
    (res,) = store.store(r, [write(ARRAY_USER, alice.append(r, ARRAY_USER, b"A", T0 + 1))], 2.0)
    assert res.written == ()

    # Remove index 3: a signed nonexistent entry.
    gone = alice.sign(r, ARRAY_USER, ArrayEntry(3, DataValue.nonexistent()), T0 + 3)
    store.store(r, [write(ARRAY_USER, IncomingValue(gone, alice.der))], 3.0)
    got = values_of(store, r, StoredDataSpecifier.array(ARRAY_USER, [ArrayRange(3, 3)]), 3.0)
    assert got.values[0].data.value == ArrayEntry(3, DataValue(False, b""))
    assert not is_synthesized(got.values[0].data)


def test_array_gap_is_bounded_by_max_count(alice: Identity) -> None:
    store = DataStore(make_kinds(max_count=4))
    r = alice.user_resource
    store.store(r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 4, b"ok", T0))], 0.0)
    with pytest.raises(StorageError) as exc:
        store.store(r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 1000, b"far", T0 + 1))], 0.0)
    assert error_of(exc) == ErrorCode.Error_Data_Too_Large


# ---------------------------------------------------------------- dictionary (§7.2.3)


def test_dictionary_store_fetch_wildcard_and_remove(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    k1, k2 = b"key-1", b"key-2"
    store.store(
        r,
        [
            write(
                DICT_USER,
                alice.dict_entry(r, DICT_USER, k1, b"one", T0),
                alice.dict_entry(r, DICT_USER, k2, b"two", T0),
            )
        ],
        0.0,
    )
    everything = values_of(store, r, StoredDataSpecifier.dictionary(DICT_USER))
    assert {v.data.value.key: v.data.value.value.value for v in everything.values} == {k1: b"one", k2: b"two"}  # type: ignore[union-attr]
    some = values_of(store, r, StoredDataSpecifier.dictionary(DICT_USER, [k2, b"missing"]))
    assert [v.data.value for v in some.values] == [
        DictionaryEntry(k2, DataValue(True, b"two")),
        DictionaryEntry(b"missing", DataValue(False, b"")),
    ]
    assert is_synthesized(some.values[1].data)

    store.store(r, [write(DICT_USER, alice.dict_entry(r, DICT_USER, k1, b"", T0 + 1, exists=False))], 1.0)
    after = values_of(store, r, StoredDataSpecifier.dictionary(DICT_USER, [k1]), 1.0)
    assert after.values[0].data.value == DictionaryEntry(k1, DataValue(False, b""))
    assert after.generation == 2


# ---------------------------------------------------------------- lifetimes (§7, §7.4.1.3)


def test_lifetime_counts_down_and_values_expire(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    store.store(r, [write(SINGLE_USER, alice.single(r, SINGLE_USER, b"v", T0, lifetime=10))], 100.0)
    assert store.entries_used == 1 and store.bytes_used > 0
    answer, certs = store.fetch_answer(r, [StoredDataSpecifier.single(SINGLE_USER)], 104.5)
    assert answer[0].values[0].lifetime == 6  # 5.5 s left, rounded up
    assert certs == (alice.der,)
    assert store.next_expiry() == 110.0
    got = values_of(store, r, StoredDataSpecifier.single(SINGLE_USER), 110.0)
    assert is_synthesized(got.values[0].data)  # gone at the end of its lifetime
    assert store.expire(110.0) == 1
    assert store.entries_used == 0 and store.bytes_used == 0 and r not in store
    # Once expired, an older value may be stored again: the window §7.4.1.3 warns about.
    store.store(r, [write(SINGLE_USER, alice.single(r, SINGLE_USER, b"older", T0 - 5))], 111.0)


def test_array_entry_expiry_leaves_a_synthesized_gap(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    store.store(
        r,
        [
            write(
                ARRAY_USER,
                alice.entry(r, ARRAY_USER, 0, b"short", T0, 5),
                alice.entry(r, ARRAY_USER, 1, b"long", T0, 50),
            )
        ],
        0.0,
    )
    got = values_of(store, r, StoredDataSpecifier.array(ARRAY_USER, [ArrayRange(0, LAST_INDEX)]), 6.0)
    assert [(v.data.value.value.exists, is_synthesized(v.data)) for v in got.values] == [
        (False, True),
        (True, False),
    ]  # type: ignore[union-attr]


# ---------------------------------------------------------------- generation counters


def test_generation_race_between_two_writers(alice: Identity) -> None:
    """Two writers (two devices of one user) both saw generation 1; the second loses
    with Error_Generation_Counter_Too_Low and learns the current counter (§7.4.1.2)."""
    store = DataStore(make_kinds())
    r = alice.user_resource
    store.store(r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 0, b"base", T0))], 0.0)
    seen = values_of(store, r, StoredDataSpecifier.array(ARRAY_USER, [ArrayRange(0, 0)])).generation
    assert seen == 1
    (won,) = store.store(
        r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 1, b"w1", T0 + 1), generation=seen)], 1.0
    )
    assert won.generation_counter == 2
    with pytest.raises(StorageError) as exc:
        store.store(
            r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 2, b"w2", T0 + 2), generation=seen)], 1.0
        )
    assert error_of(exc) == ErrorCode.Error_Generation_Counter_Too_Low
    info = decode_struct(StoreAns, exc.value.error_info)
    assert [(int(k.kind), k.generation_counter, k.replicas) for k in info.kind_responses] == [
        (ARRAY_USER, 2, ())
    ]
    # Nothing of the losing request was written; with the fresh counter it goes through.
    assert (
        len(values_of(store, r, StoredDataSpecifier.array(ARRAY_USER, [ArrayRange(0, LAST_INDEX)])).values)
        == 2
    )
    (res,) = store.store(
        r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 2, b"w2", T0 + 2), generation=2)], 2.0
    )
    assert res.generation_counter == 3


def test_fetch_with_current_generation_returns_no_values(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    store.store(r, [write(SINGLE_USER, alice.single(r, SINGLE_USER, b"v", T0))], 0.0)
    got = values_of(store, r, StoredDataSpecifier.single(SINGLE_USER, generation=1))
    assert got.generation == 1 and got.values == ()


def test_replica_store_takes_the_message_generation(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    (res,) = store.store(
        r, [write(SINGLE_USER, alice.single(r, SINGLE_USER, b"v", T0), generation=41)], 0.0, replica=True
    )
    assert res.generation_counter == 41
    with pytest.raises(StorageError) as exc:
        store.store(
            r,
            [write(SINGLE_USER, alice.single(r, SINGLE_USER, b"w", T0 + 1), generation=0)],
            0.0,
            replica=True,
        )
    assert error_of(exc) == ErrorCode.Error_Invalid_Message


# ---------------------------------------------------------------- limits and quota


def test_max_size_and_max_count(alice: Identity) -> None:
    store = DataStore(make_kinds(max_count=2, max_size=8))
    r = alice.user_resource
    with pytest.raises(StorageError) as exc:
        store.store(r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 0, b"123456789", T0))], 0.0)
    assert error_of(exc) == ErrorCode.Error_Data_Too_Large
    store.store(r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 0, b"12345678", T0))], 0.0)
    store.store(r, [write(ARRAY_USER, alice.append(r, ARRAY_USER, b"two", T0 + 1))], 0.0)
    with pytest.raises(StorageError) as exc:
        store.store(r, [write(ARRAY_USER, alice.append(r, ARRAY_USER, b"three", T0 + 2))], 0.0)
    assert error_of(exc) == ErrorCode.Error_Data_Too_Large
    # Replacing an existing entry does not add to the count.
    store.store(r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 1, b"2bis", T0 + 3))], 0.0)


def test_quota_exhaustion_refuses_and_drops_nothing(alice: Identity, bob: Identity) -> None:
    store = DataStore(make_kinds(), Quota(max_entries=3))
    ra, rb = alice.user_resource, bob.user_resource
    store.store(
        ra, [write(ARRAY_USER, *(alice.entry(ra, ARRAY_USER, i, b"a", T0 + i) for i in range(3)))], 0.0
    )
    with pytest.raises(StorageError) as exc:
        store.store(rb, [write(SINGLE_USER, bob.single(rb, SINGLE_USER, b"b", T0))], 0.0)
    assert error_of(exc) == ErrorCode.Error_Data_Too_Large and "quota" in exc.value.reason
    assert store.entries_used == 3
    assert (
        len(values_of(store, ra, StoredDataSpecifier.array(ARRAY_USER, [ArrayRange(0, LAST_INDEX)])).values)
        == 3
    )
    # Overwriting within the quota still works; so does a Store once values expire.
    store.store(ra, [write(ARRAY_USER, alice.entry(ra, ARRAY_USER, 0, b"a2", T0 + 10))], 1.0)

    by_bytes = DataStore(make_kinds(), Quota(max_bytes=400))
    by_bytes.store(ra, [write(SINGLE_USER, alice.single(ra, SINGLE_USER, b"x" * 100, T0))], 0.0)
    used = by_bytes.bytes_used
    with pytest.raises(StorageError) as exc:
        by_bytes.store(rb, [write(SINGLE_USER, bob.single(rb, SINGLE_USER, b"y" * 250, T0))], 0.0)
    assert error_of(exc) == ErrorCode.Error_Data_Too_Large
    assert by_bytes.bytes_used == used and rb not in by_bytes


def test_store_is_atomic_across_kinds(alice: Identity) -> None:
    store = DataStore(make_kinds(max_size=4))
    r = alice.user_resource
    with pytest.raises(StorageError) as exc:
        store.store(
            r,
            [
                write(SINGLE_USER, alice.single(r, SINGLE_USER, b"ok", T0)),
                write(ARRAY_USER, alice.entry(r, ARRAY_USER, 0, b"far too long", T0)),
            ],
            0.0,
        )
    assert error_of(exc) == ErrorCode.Error_Data_Too_Large
    assert r not in store and store.entries_used == 0


def test_unknown_kinds_are_listed(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    with pytest.raises(StorageError) as exc:
        store.store(
            r,
            [
                write(SINGLE_USER, alice.single(r, SINGLE_USER, b"v", T0)),
                write(0xABCDEF, alice.single(r, 0xABCDEF, b"v", T0)),
            ],
            0.0,
        )
    assert error_of(exc) == ErrorCode.Error_Unknown_Kind
    assert decode_struct(UnknownKinds, exc.value.error_info).unknown_kinds == (0xABCDEF,)
    with pytest.raises(StorageError) as exc:
        store.fetch(r, [StoredDataSpecifier.single(0x1234567)], 0.0)
    assert error_of(exc) == ErrorCode.Error_Unknown_Kind


def test_a_value_of_the_wrong_model_is_refused(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    with pytest.raises(StorageError) as exc:
        store.store(r, [write(SINGLE_USER, alice.entry(r, SINGLE_USER, 0, b"v", T0))], 0.0)
    assert error_of(exc) == ErrorCode.Error_Invalid_Message


# ---------------------------------------------------------------- Stat and Find


def test_stat_reports_metadata(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    store.store(r, [write(SINGLE_USER, alice.single(r, SINGLE_USER, b"hello", T0, 60))], 0.0)
    (kr,) = store.stat(r, [StoredDataSpecifier.single(SINGLE_USER)], 10.0)
    assert kr.generation == 1
    (meta,) = kr.values
    assert meta.storage_time == T0 and meta.lifetime == 50
    assert meta.metadata == MetaData.of(DataValue(True, b"hello"), HashAlgorithm.sha256)
    assert isinstance(meta.metadata, MetaData) and meta.metadata.value_length == 5


def test_find_returns_the_closest_resource_clockwise(alice: Identity) -> None:
    store = DataStore(make_kinds())
    ids = [bytes([x]) + bytes(15) for x in (0x10, 0x50, 0x90)]
    for rid in ids:
        store.store(rid, [write(SINGLE_NODE, alice.single(rid, SINGLE_NODE, b"v", T0))], 0.0)
    ans = store.find(bytes([0x40]) + bytes(15), [SINGLE_NODE, SINGLE_USER, 0x7777], 0.0)
    assert [(int(k.kind), k.closest) for k in ans.results] == [
        (SINGLE_NODE, ids[1]),
        (SINGLE_USER, bytes(16)),  # none of this Kind
        (0x7777, bytes(16)),  # unknown Kind: 0 (§7.4.4.2)
    ]
    wrapped = store.find(bytes([0xA0]) + bytes(15), [SINGLE_NODE], 0.0)
    assert wrapped.results[0].closest == ids[0]
    limited = store.find(bytes([0x40]) + bytes(15), [SINGLE_NODE], 0.0, in_range=lambda rid: rid != ids[1])
    assert limited.results[0].closest == ids[2]


def test_merge_takes_only_newer_values(alice: Identity) -> None:
    store = DataStore(make_kinds())
    r = alice.user_resource
    store.store(r, [write(ARRAY_USER, alice.entry(r, ARRAY_USER, 0, b"mine-new", T0 + 5))], 0.0)
    other = DataStore(make_kinds())
    other.store(
        r,
        [
            write(
                ARRAY_USER,
                alice.entry(r, ARRAY_USER, 0, b"their-old", T0),
                alice.entry(r, ARRAY_USER, 1, b"theirs", T0 + 1),
            )
        ],
        0.0,
    )
    taken = store.merge(r, other.export(r, 1.0), 1.0)
    assert taken == 1
    got = values_of(store, r, StoredDataSpecifier.array(ARRAY_USER, [ArrayRange(0, LAST_INDEX)]), 1.0)
    assert [v.data.value.value.value for v in got.values] == [b"mine-new", b"theirs"]  # type: ignore[union-attr]

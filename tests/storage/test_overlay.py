"""Storage over a ring of real nodes on in-memory links: the methods end to end (§7.4),
signatures checked by the storing peer and the fetching node, replication (§10.4) and
data movement on joins, graceful leaves and abrupt failures (§10.5, §10.7.3, §10.9)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from reload_core.config.document import AccessControl
from reload_core.ids import resource_id
from reload_core.node import RequestError
from reload_core.security.signing import sign_stored_data
from reload_core.storage import Kind, KindRegistry, Quota, Storage, StorageError
from reload_core.storage.placement import everything
from reload_core.storage.store import IncomingValue, KindWrite
from reload_core.wire.codes import DataModel, ErrorCode, MessageCode
from reload_core.wire.registry import decode_struct
from reload_core.wire.storage import (
    LAST_INDEX,
    ArrayEntry,
    ArrayRange,
    DataValue,
    DictionaryEntry,
    StoreAns,
    StoredDataSpecifier,
    StoreKindData,
    StoreReq,
    UnknownKinds,
)

from .ring import StorageRing, replica_set
from .support import ARRAY_USER, DICT_USER, MULTI_NODE, SINGLE_NODE, SINGLE_USER, TestCA, make_kinds


@pytest.fixture
async def ring(ca: TestCA) -> AsyncIterator[StorageRing]:
    r = StorageRing(ca)
    try:
        yield r
    finally:
        await r.close()


async def build(ring: StorageRing, n: int) -> list[Storage]:
    await ring.first()
    for _ in range(n - 1):
        await ring.join()
    await ring.converge()
    return ring.peers


def user_resource(s: Storage) -> bytes:
    return resource_id(s.node.signer.node_certificate.user_name)


async def test_store_fetch_stat_find_remove_through_the_overlay(ring: StorageRing) -> None:
    peers = await build(ring, 5)
    writer = peers[2]
    r = user_resource(writer)
    c = writer.client
    res = await c.store(r, SINGLE_USER, [DataValue(True, b"hello")], lifetime=120)
    assert res.generation == 1
    assert set(res.replicas) == set(replica_set([p.node.node_id for p in peers], r)[1:])
    await c.store(r, ARRAY_USER, [ArrayEntry(0xFFFFFFFF, DataValue(True, b"a0"))])
    await c.store(r, DICT_USER, [DictionaryEntry(writer.node.node_id, DataValue(True, b"mine"))])

    reader = peers[4].client  # any node verifies and reads it
    (single,) = await reader.fetch(r, StoredDataSpecifier.single(SINGLE_USER))
    assert [v.value for v in single.values] == [DataValue(True, b"hello")] and single.discarded == 0
    assert single.signers[0] is not None and single.signers[0].der == writer.node.signer.certificate
    arr, dic = await reader.fetch(
        r,
        [
            StoredDataSpecifier.array(ARRAY_USER, [ArrayRange(0, LAST_INDEX)]),
            StoredDataSpecifier.dictionary(DICT_USER),
        ],
    )
    assert [v.value for v in arr.values] == [ArrayEntry(0, DataValue(True, b"a0"))]
    assert [v.value for v in dic.values] == [DictionaryEntry(writer.node.node_id, DataValue(True, b"mine"))]

    (stat,) = await reader.stat(r, StoredDataSpecifier.single(SINGLE_USER))
    assert stat.generation == 1 and stat.values[0].metadata.value_length == 5  # type: ignore[union-attr]

    (found,) = await reader.find(r, [SINGLE_USER])
    assert found.closest == r

    await c.remove(r, SINGLE_USER)
    (gone,) = await reader.fetch(r, StoredDataSpecifier.single(SINGLE_USER))
    assert gone.values[0].value == DataValue(False, b"") and gone.existing == ()
    assert gone.signers[0] is not None  # a signed removal, not a synthesized gap

    await ring.settle([(r, SINGLE_USER), (r, ARRAY_USER), (r, DICT_USER)])


async def test_a_client_node_stores_and_fetches_through_its_peer(ring: StorageRing) -> None:
    await build(ring, 3)
    client = await ring.client()
    r = user_resource(client)
    await client.client.store(r, SINGLE_USER, [DataValue(True, b"from a client")])
    (got,) = await ring.peers[1].client.fetch(r, StoredDataSpecifier.single(SINGLE_USER))
    assert got.values[0].value == DataValue(True, b"from a client")
    assert client.store is None  # a client stores nothing for others (§4.2)


async def test_a_client_store_is_refused_where_clients_are_not_permitted(ca: TestCA) -> None:
    """§11.1 clients-permitted false: the client's peer answers what only a client does
    (a Store of its own data) with Error_Incompatible_with_Overlay."""
    ring = StorageRing(ca, peer_settings={"clients_permitted": False})
    try:
        await build(ring, 3)
        client = await ring.client()  # its own settings permit clients: it does not heed the overlay's
        r = user_resource(client)
        with pytest.raises(StorageError) as refused:
            await client.client.store(r, SINGLE_USER, [DataValue(True, b"from a client")])
        assert refused.value.code == ErrorCode.Error_Incompatible_with_Overlay
        assert ring.holders(r, SINGLE_USER) == set()
    finally:
        await ring.close()


async def test_policy_violation_and_unknown_kind_over_the_wire(ring: StorageRing) -> None:
    peers = await build(ring, 3)
    alice, bob = peers[0], peers[1]
    with pytest.raises(StorageError) as exc:
        await bob.client.store(user_resource(alice), SINGLE_USER, [DataValue(True, b"hijack")])
    assert exc.value.code == ErrorCode.Error_Forbidden
    await bob.client.store(resource_id(bob.node.node_id), SINGLE_NODE, [DataValue(True, b"node data")])

    unknown = 0xE0000001  # a Kind the client knows and the peers do not
    bob.client.kinds = KindRegistry(
        [*make_kinds(), Kind(unknown, DataModel.SINGLE, AccessControl.USER_MATCH, 1, 10)]
    )
    with pytest.raises(StorageError) as exc:
        await bob.client.store(user_resource(bob), unknown, [DataValue(True, b"x")])
    assert exc.value.code == ErrorCode.Error_Unknown_Kind
    assert decode_struct(UnknownKinds, exc.value.error_info).unknown_kinds == (unknown,)


async def test_forged_signature_is_refused_on_store_and_discarded_on_fetch(ring: StorageRing) -> None:
    peers = await build(ring, 3)
    alice = peers[0]
    r = user_resource(alice)
    genuine = await alice.client.store(r, SINGLE_USER, [DataValue(True, b"genuine")])
    signed = genuine.values[0]
    forged = replace(signed, storage_time=signed.storage_time + 1, value=DataValue(True, b"forged"))
    body = StoreReq(r, 0, (StoreKindData(SINGLE_USER, 0, (forged,)),))
    with pytest.raises(RequestError) as exc:
        await alice.node.request(r, MessageCode.store_req, body)
    assert exc.value.error_code == ErrorCode.Error_Forbidden

    # A peer serving a tampered value: put it straight into every holder's store.
    for s in peers:
        assert s.store is not None
        if r in s.store:
            s.store.store(
                r,
                [KindWrite(SINGLE_USER, 99, (IncomingValue(forged, alice.node.signer.certificate),))],
                s.node.clock.time(),
                replica=True,
            )
    (got,) = await peers[2].client.fetch(r, StoredDataSpecifier.single(SINGLE_USER))
    assert got.existing == ()  # the serving peer's own check left it out
    # A serving peer that does not check: the fetching node discards the value (§7.4.2.2).
    for s in peers:
        assert s.service is not None
        s.service._still_valid = lambda *_: True  # type: ignore[method-assign]
    (got,) = await peers[2].client.fetch(r, StoredDataSpecifier.single(SINGLE_USER))
    assert got.values == () and got.discarded == 1


async def test_generation_race_between_two_devices_of_one_user(ring: StorageRing) -> None:
    """Two nodes of one user both saw generation 1 and store against it; the second gets
    Error_Generation_Counter_Too_Low with the current counter (§7.4.1.2)."""
    await build(ring, 3)
    phone = await ring.join_as("dana@storage.test.example")
    laptop = await ring.join_as("dana@storage.test.example")
    await ring.converge()
    r = resource_id("dana@storage.test.example")
    await phone.client.store(r, ARRAY_USER, [ArrayEntry(0, DataValue(True, b"base"))])
    spec = StoredDataSpecifier.array(ARRAY_USER, [ArrayRange(0, LAST_INDEX)])
    (seen_phone,) = await phone.client.fetch(r, spec)
    (seen_laptop,) = await laptop.client.fetch(r, spec)
    assert seen_phone.generation == seen_laptop.generation == 1
    won = await phone.client.store(r, ARRAY_USER, [ArrayEntry(1, DataValue(True, b"phone"))], generation=1)
    assert won.generation == 2
    with pytest.raises(StorageError) as exc:
        await laptop.client.store(r, ARRAY_USER, [ArrayEntry(1, DataValue(True, b"laptop"))], generation=1)
    assert exc.value.code == ErrorCode.Error_Generation_Counter_Too_Low
    info = decode_struct(StoreAns, exc.value.error_info)
    assert [(int(k.kind), k.generation_counter) for k in info.kind_responses] == [(ARRAY_USER, 2)]
    (now,) = await laptop.client.fetch(r, spec)
    assert [v.value.value.value for v in now.values] == [b"base", b"phone"]  # type: ignore[union-attr]


async def test_quota_exhaustion_over_the_wire(ca: TestCA) -> None:
    ring = StorageRing(ca, quota=Quota(max_entries=2))
    try:
        peers = await build(ring, 1)
        s = peers[0]
        r = user_resource(s)
        await s.client.store(
            r, ARRAY_USER, [ArrayEntry(0, DataValue(True, b"1")), ArrayEntry(1, DataValue(True, b"2"))]
        )
        with pytest.raises(StorageError) as exc:
            await s.client.store(r, ARRAY_USER, [ArrayEntry(2, DataValue(True, b"3"))])
        assert exc.value.code == ErrorCode.Error_Data_Too_Large
        (got,) = await s.client.fetch(r, everything(ARRAY_USER, ring.kinds[ARRAY_USER].data_model))
        assert [v.value.value.value for v in got.values] == [b"1", b"2"]  # type: ignore[union-attr]
    finally:
        await ring.close()


# ---------------------------------------------------------------- replication


async def store_many(ring: StorageRing, count: int) -> list[tuple[bytes, int, bytes]]:
    """``count`` values from the peers in turn, each at a NODE-MULTIPLE resource of its
    writer, H(Node-ID || i) (§7.3.4), so that they spread over the ring."""
    out = []
    n = len(ring.peers)
    for i in range(count):
        s = ring.peers[i % n]
        r = resource_id(s.node.node_id + bytes([i // n + 1]))
        data = secrets.token_bytes(8)
        await s.client.store(r, MULTI_NODE, [DataValue(True, data)])
        out.append((r, MULTI_NODE, data))
    return out


async def fetch_all(reader: Storage, values: list[tuple[bytes, int, bytes]]) -> list[bytes]:
    lost = []
    for r, kind, data in values:
        (got,) = await reader.client.fetch(r, StoredDataSpecifier.single(kind))
        if [v.value for v in got.values] != [DataValue(True, data)]:
            lost.append(r)
    return lost


async def test_replicas_after_stores_and_a_join(ring: StorageRing) -> None:
    await build(ring, 5)
    values = await store_many(ring, 5)
    placements = [(r, k) for r, k, _ in values]
    await ring.settle(placements)
    for _ in range(3):
        await ring.join()
    await ring.settle(placements)
    assert await fetch_all(ring.peers[-1], values) == []


async def test_graceful_leave_keeps_every_value(ring: StorageRing) -> None:
    await build(ring, 6)
    values = await store_many(ring, 6)
    placements = [(r, k) for r, k, _ in values]
    await ring.settle(placements)
    leaving = ring.by_id(replica_set([p.node.node_id for p in ring.peers], values[0][0])[0])
    ring.peers.remove(leaving)
    await leaving.leave()
    await ring.settle(placements)
    assert await fetch_all(ring.peers[0], values) == []


async def test_abrupt_failures_lose_nothing(ring: StorageRing) -> None:
    await build(ring, 7)
    values = await store_many(ring, 7)
    placements = [(r, k) for r, k, _ in values]
    await ring.settle(placements)
    for _ in range(3):
        victim = ring.by_id(replica_set([p.node.node_id for p in ring.peers], values[0][0])[0])
        await ring.kill(victim)
        await ring.settle(placements, timeout=30.0)
    assert await fetch_all(ring.peers[0], values) == []


async def test_two_simultaneous_failures_in_one_replica_set_lose_nothing(ca: TestCA) -> None:
    """Fewer failures than the three copies between two stabilisations (§10.4). Two
    neighbours failing at once can leave a gap that only the periodic Updates of §10.7.4.1
    close, so stabilisation runs every two seconds here."""
    ring = StorageRing(ca, update_interval=2.0)
    try:
        await build(ring, 8)
        values = await store_many(ring, 16)
        placements = [(r, k) for r, k, _ in values]
        await ring.settle(placements)
        holders = replica_set([p.node.node_id for p in ring.peers], values[0][0])
        await ring.kill(ring.by_id(holders[0]))
        await ring.kill(ring.by_id(holders[1]))
        await ring.settle(placements, timeout=30.0)
        assert await fetch_all(ring.peers[0], values) == []
    finally:
        await ring.close()


async def test_a_writer_whose_clock_lags_stores_after_a_retry(ring: StorageRing) -> None:
    """§7: Error_Data_Too_Old for a user's store; the client fetches the stored time and
    stores again just after it."""
    await build(ring, 3)
    ahead = await ring.join_as("erin@storage.test.example")
    behind = await ring.join_as("erin@storage.test.example")
    await ring.converge()
    r = resource_id("erin@storage.test.example")
    ahead.client._last_time = int(ahead.node.wall_clock() * 1000) + 3_600_000  # an hour fast
    first = await ahead.client.store(r, SINGLE_USER, [DataValue(True, b"from the future")])
    second = await behind.client.store(r, SINGLE_USER, [DataValue(True, b"latest")])
    assert second.values[0].storage_time == first.values[0].storage_time + 1
    (got,) = await ring.peers[0].client.fetch(r, StoredDataSpecifier.single(SINGLE_USER))
    assert got.values[0].value == DataValue(True, b"latest") and got.generation == 2


async def test_periodic_refresh_restores_a_lost_replica(ca: TestCA) -> None:
    ring = StorageRing(ca, refresh_interval=0.5)
    try:
        await build(ring, 4)
        values = await store_many(ring, 8)
        placements = [(r, k) for r, k, _ in values]
        await ring.settle(placements)
        holders = replica_set([p.node.node_id for p in ring.peers], values[0][0])
        replica = ring.by_id(holders[2])
        assert replica.store is not None
        replica.store.drop([values[0][0]])
        assert ring.misplaced(placements)
        await ring.settle(placements)
    finally:
        await ring.close()


async def test_a_replica_with_newer_data_is_taken_in_by_the_responsible_peer(ca: TestCA) -> None:
    """§7.4.1.1: a replica Store refused as too old makes the sender fetch the newer data."""
    ring = StorageRing(ca, refresh_interval=0.5)
    try:
        await build(ring, 4)
        writer = ring.peers[1]
        r = resource_id(writer.node.node_id + b"\x01")
        await writer.client.store(r, MULTI_NODE, [DataValue(True, b"old")])
        await ring.settle([(r, MULTI_NODE)])
        owner, _, _ = replica_set([p.node.node_id for p in ring.peers], r)
        newer = await writer.client.store(r, MULTI_NODE, [DataValue(True, b"new")])
        # Pretend the responsible peer missed that Store: put the old value back there.
        responsible = ring.by_id(owner)
        assert responsible.store is not None
        responsible.store.drop([r])
        old = writer.client.storage_time() - 10_000  # older than "new"
        stale = sign_stored_data(r, MULTI_NODE, old, 3600, DataValue(True, b"old"), writer.node.signer)
        responsible.store.store(
            r,
            [KindWrite(MULTI_NODE, 1, (IncomingValue(stale, writer.node.signer.certificate),))],
            responsible.node.clock.time(),
            replica=True,
        )

        def healed() -> bool:
            assert responsible.store is not None
            (kv,) = responsible.store.fetch(
                r, [StoredDataSpecifier.single(MULTI_NODE)], responsible.node.clock.time()
            )
            return [v.data.storage_time for v in kv.values] == [newer.values[0].storage_time]

        await ring.wait_for(healed)
    finally:
        await ring.close()

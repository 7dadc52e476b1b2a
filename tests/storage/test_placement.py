"""Who may send a replica Store (RFC 6940 §7.4.1.1, §10.4) and ring ranges, pure."""

from __future__ import annotations

from reload_core.ids import NodeId
from reload_core.storage.placement import in_range, plausible_replica_source
from reload_core.topology.neighbors import NeighborTable


def nid(x: int) -> NodeId:
    return NodeId(x << 120)


RING = [nid(x) for x in (0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80)]


def table(me: int) -> NeighborTable:
    return NeighborTable.build(nid(me), RING)


def test_replicas_come_from_the_responsible_peer_or_closer() -> None:
    k = nid(0x35)  # responsible 0x40, replicas 0x50 and 0x60
    assert plausible_replica_source(table(0x50), nid(0x40), k)
    assert plausible_replica_source(table(0x60), nid(0x40), k)
    assert plausible_replica_source(table(0x60), nid(0x50), k)  # a replica passing it on
    # A peer we do not know of yet, between the Resource-ID and the replica set's end.
    assert plausible_replica_source(table(0x50), NodeId(0x38 << 120), k)
    # A peer beyond the replica set, or one behind the Resource-ID, is not plausible.
    assert not plausible_replica_source(table(0x50), nid(0x70), k)
    assert not plausible_replica_source(table(0x50), nid(0x20), k)
    # Nor is a Store for data this peer would not hold (three predecessors in between).
    assert not plausible_replica_source(table(0x70), nid(0x40), k)
    assert not plausible_replica_source(table(0x50), nid(0x50), k)


def test_a_joining_peer_takes_the_hand_over_from_its_successor() -> None:
    """§10.5 step 6: the admitting peer (our successor) stores our range on us."""
    joining = NeighborTable.build(NodeId(0x38 << 120), RING)
    assert plausible_replica_source(joining, nid(0x40), NodeId(0x35 << 120))


def test_in_range() -> None:
    a, b = bytes([0x10]) + bytes(15), bytes([0x40]) + bytes(15)
    assert in_range(bytes([0x20]) + bytes(15), a, b)
    assert in_range(b, a, b) and not in_range(a, a, b)
    assert in_range(bytes([0x05]) + bytes(15), b, a)  # wraps around zero
    assert in_range(a, a, a)  # start == end: the whole ring
    assert not in_range(b"\x01", a, b)  # not an ID of this overlay

"""The routing decision (RFC 6940 §6.1.1, §10.3) by hand on an 8-bit ring, then hop counts
on static rings whose tables are complete."""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from reload_core.ids import NodeId
from reload_core.topology import (
    Deliver,
    Drop,
    FingerTable,
    Forward,
    NeighborTable,
    estimate_overlay_size,
    finger_range,
    finger_table_size,
    next_hop,
    route,
)

BITS = 8


def n(v: int) -> NodeId:
    return NodeId(v, BITS)


def ids(*values: int) -> frozenset[NodeId]:
    return frozenset(n(v) for v in values)


# -- §10.3 ----------------------------------------------------------------------------------


def test_largest_node_id_between_self_and_k() -> None:
    table = ids(50, 90, 130, 170, 250)
    assert next_hop(n(10), n(100), table, table) == n(90)
    assert next_hop(n(10), n(169), table, table) == n(130)
    assert next_hop(n(10), n(50), table, table) == n(50)  # (self, k] holds k itself


def test_interval_wraps_past_zero() -> None:
    table = ids(50, 90, 130, 170, 250)
    assert next_hop(n(10), n(5), table, table) == n(250)
    assert next_hop(n(200), n(20), ids(250, 10, 90), ids(250, 10, 90)) == n(10)


def test_otherwise_the_smallest_node_id_greater_than_k() -> None:
    table = ids(50, 90)
    assert next_hop(n(10), n(30), table, table) == n(50)
    assert next_hop(n(60), n(70), ids(90, 10), ids(90, 10)) == n(90)


def test_a_directly_connected_node_with_that_id_wins() -> None:
    table = ids(50, 90)
    assert next_hop(n(10), n(77), table, ids(50, 90, 77)) == n(77)


def test_empty_table_has_no_next_hop() -> None:
    assert next_hop(n(10), n(30), (), ()) is None


# -- §6.1.1 --------------------------------------------------------------------------------


def decide(dest: int, *, resource: bool, connected: frozenset[NodeId] = ids(50, 130)) -> object:
    nt = NeighborTable.build(n(90), ids(10, 50, 130, 170), 3)
    return route(
        n(90),
        n(dest),
        resource=resource,
        is_responsible=nt.is_responsible,
        routing_table=nt.members(),
        connected=connected,
    )


def test_own_node_id_and_wildcard_are_delivered() -> None:
    assert decide(90, resource=False) == Deliver()
    assert decide(255, resource=False) == Deliver()  # the all-ones wildcard Node-ID


def test_resource_id_in_range_is_delivered() -> None:
    assert decide(60, resource=True) == Deliver()
    assert decide(90, resource=True) == Deliver()


def test_node_id_in_range_goes_only_to_a_connected_client() -> None:
    assert decide(60, resource=False, connected=ids(50, 60, 130)) == Forward(n(60))
    assert isinstance(decide(60, resource=False), Drop)


def test_other_ids_are_forwarded() -> None:
    assert decide(150, resource=True) == Forward(n(130))
    assert decide(20, resource=False) == Forward(n(10))
    assert decide(255, resource=True) == Forward(n(170))  # a Resource-ID of all ones is not the wildcard


def test_no_routing_table_drops() -> None:
    decision = route(
        n(90), n(20), resource=True, is_responsible=lambda k: False, routing_table=(), connected=()
    )
    assert isinstance(decision, Drop)


# -- complete static rings -----------------------------------------------------------------


@dataclass
class StaticPeer:
    neighbors: NeighborTable
    routing_table: frozenset[NodeId]


def static_ring(ring: list[NodeId]) -> dict[NodeId, StaticPeer]:
    """Each peer with its true neighbours and complete fingers: entry i holds the first peer
    at or after x + 2^(b-i) when that peer is inside entry i's range."""
    values = [x.value for x in ring]
    count = len(ring)
    peers: dict[NodeId, StaticPeer] = {}
    for idx, x in enumerate(ring):
        k = min(3, count - 1)
        nt = NeighborTable(
            x,
            tuple(ring[(idx - j) % count] for j in range(1, k + 1)),
            tuple(ring[(idx + j) % count] for j in range(1, k + 1)),
            3,
        )
        size = finger_table_size(
            x, nt.successors, estimate_overlay_size(x, nt.predecessors, nt.successors, 3)
        )
        ft = FingerTable(x, size)
        for i in range(1, size + 1):
            low, high = finger_range(x, i)
            candidate = ring[bisect.bisect_left(values, low.value) % count]
            if candidate != x and x.distance(candidate) <= x.distance(high):
                ft.offer(candidate)
        peers[x] = StaticPeer(nt, nt.members() | ft.peers())
    return peers


def walk(peers: dict[NodeId, StaticPeer], start: NodeId, key: NodeId, limit: int) -> tuple[NodeId, int]:
    cur, hops = start, 0
    while True:
        p = peers[cur]
        decision = route(
            cur,
            key,
            resource=True,
            is_responsible=p.neighbors.is_responsible,
            routing_table=p.routing_table,
            connected=p.routing_table,
        )
        if isinstance(decision, Deliver):
            return cur, hops
        assert isinstance(decision, Forward), decision
        cur, hops = decision.next_hop, hops + 1
        assert hops <= limit, f"no delivery within {limit} hops"


def responsible(ring: list[NodeId], key: NodeId) -> NodeId:
    return ring[bisect.bisect_left([x.value for x in ring], key.value) % len(ring)]


def test_mean_hops_on_complete_rings() -> None:
    """§10.1: O(log N) hops; with complete Finger Tables about ½·log2(N) on average."""
    rng = random.Random(2024)
    for count in (100, 1000):
        ring = sorted({NodeId(rng.getrandbits(128)) for _ in range(count)})
        peers = static_ring(ring)
        limit = 2 * math.ceil(math.log2(count))
        hops: list[int] = []
        for start in ring:
            for _ in range(2000 // count + 1):
                key = NodeId(rng.getrandbits(128))
                end, h = walk(peers, start, key, limit)
                assert end == responsible(ring, key)
                hops.append(h)
        mean = sum(hops) / len(hops)
        assert mean <= 0.5 * math.log2(count) + 1, (count, mean)
        assert max(hops) <= limit


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, (1 << 16) - 1), min_size=1, max_size=80), st.integers(0, (1 << 16) - 1))
def test_every_peer_reaches_the_responsible_peer(values: set[int], key_value: int) -> None:
    ring = sorted(NodeId(v, 16) for v in values)
    peers = static_ring(ring)
    key = NodeId(key_value, 16)
    limit = 2 * max(1, math.ceil(math.log2(len(ring)))) + 2
    for start in ring:
        end, _ = walk(peers, start, key, limit)
        assert end == responsible(ring, key)

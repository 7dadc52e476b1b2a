"""Neighbor Table, responsibility, replica sets and Finger Table (RFC 6940 §10.1-§10.4,
§10.7, §10.7.4.2-§10.7.4.3), on 8-bit rings small enough to check by hand, then properties
over random rings."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reload_core.ids import ID_BITS, NodeId
from reload_core.topology import (
    REPLICA_COUNT,
    ChordConfig,
    FingerTable,
    NeighborTable,
    estimate_overlay_size,
    finger_index,
    finger_range,
    finger_table_size,
    finger_target,
)
from reload_core.topology.fingers import random_finger_id

BITS = 8


def n(v: int) -> NodeId:
    return NodeId(v, BITS)


def ids(*values: int) -> tuple[NodeId, ...]:
    return tuple(n(v) for v in values)


RING7 = ids(10, 50, 90, 130, 170, 210, 250)


# -- Neighbor Table (§10.1, §10.7) ---------------------------------------------------------


def test_three_successors_and_predecessors_sorted_by_distance() -> None:
    nt = NeighborTable.build(n(90), RING7, 3)
    assert nt.successors == ids(130, 170, 210)
    assert nt.predecessors == ids(50, 10, 250)


def test_lists_wrap_round_zero() -> None:
    nt = NeighborTable.build(n(250), RING7, 3)
    assert nt.successors == ids(10, 50, 90)
    assert nt.predecessors == ids(210, 170, 130)


def test_small_ring_lists_every_other_peer_both_ways_and_never_itself() -> None:
    nt = NeighborTable.build(n(50), ids(10, 50, 90), 3)
    assert nt.successors == ids(90, 10)
    assert nt.predecessors == ids(10, 90)
    assert n(50) not in nt


def test_larger_configured_size() -> None:
    nt = NeighborTable.build(n(90), RING7, 4)
    assert nt.successors == ids(130, 170, 210, 250)
    assert nt.predecessors == ids(50, 10, 250, 210)


def test_config_refuses_fewer_than_three_neighbours() -> None:
    with pytest.raises(ValueError):
        ChordConfig(neighbor_count=2)


def test_ids_of_another_length_are_refused() -> None:
    with pytest.raises(ValueError):
        NeighborTable.build(n(1), [NodeId(5, 16)])


# -- responsibility (§10.1, §6.1.1) --------------------------------------------------------


def test_responsible_for_predecessor_exclusive_to_self_inclusive() -> None:
    nt = NeighborTable.build(n(90), RING7, 3)
    assert [nt.is_responsible(n(k)) for k in (50, 51, 89, 90, 91)] == [False, True, True, True, False]


def test_responsibility_wraps_modulo_two_to_the_bits() -> None:
    nt = NeighborTable.build(n(10), RING7, 3)
    assert nt.range_start == n(250)
    assert all(nt.is_responsible(n(k)) for k in (251, 255, 0, 10))
    assert not nt.is_responsible(n(250))
    assert not nt.is_responsible(n(11))


def test_alone_is_responsible_for_the_whole_ring() -> None:
    nt = NeighborTable.build(n(90), [], 3)
    assert nt.is_alone and nt.range_start == n(90)
    assert all(nt.is_responsible(n(k)) for k in range(256))


# -- replicas (§10.4, §10.7.3) -------------------------------------------------------------


def test_replicas_go_to_the_next_two_successors() -> None:
    assert REPLICA_COUNT == 2
    nt = NeighborTable.build(n(90), RING7, 3)
    assert nt.replica_targets() == ids(130, 170)
    assert nt.replica_set(n(60)) == ids(90, 130, 170)


def test_replica_set_of_ids_the_predecessors_own() -> None:
    nt = NeighborTable.build(n(90), RING7, 3)
    assert nt.replica_set(n(20)) == ids(50, 90, 130)
    assert nt.replica_set(n(5)) == ids(10, 50, 90)
    # (210, 250] belongs to the farthest predecessor, whose own predecessor is unknown here.
    assert nt.replica_set(n(240)) is None
    # (170, 210] is the farthest successor's: its successors are beyond the table.
    assert nt.replica_set(n(200)) == ids(210)


def test_replica_store_accepted_only_from_the_responsible_predecessor() -> None:
    nt = NeighborTable.build(n(90), RING7, 3)
    assert nt.accepts_replica(n(50), n(20))  # 50 owns (10, 50]; replicas 90, 130
    assert nt.accepts_replica(n(10), n(5))  # 10 owns (250, 10]; replicas 50, 90
    assert not nt.accepts_replica(n(10), n(20))  # 20 is 50's, not 10's
    assert not nt.accepts_replica(n(130), n(100))  # 130's replicas are 170 and 210
    assert not nt.accepts_replica(n(250), n(240))  # 250's replicas are 10 and 50


def test_data_three_predecessors_away_leaves_the_replica_set() -> None:
    nt = NeighborTable.build(n(90), RING7, 3)
    assert nt.replica_range_start == n(250)
    assert nt.in_replica_range(n(251)) and nt.in_replica_range(n(5)) and nt.in_replica_range(n(90))
    assert not nt.in_replica_range(n(240))


def test_in_a_three_peer_ring_everyone_holds_everything() -> None:
    ring = ids(10, 50, 90)
    for x in ring:
        nt = NeighborTable.build(x, ring, 3)
        assert all(nt.in_replica_range(n(k)) for k in range(256))
    assert NeighborTable.build(n(50), ring, 3).replica_set(n(95)) == ids(10, 50, 90)


# -- Finger Table (§10.1, §10.5, §10.7.4.2) -------------------------------------------------


def test_finger_ranges_follow_the_rfc_formula_on_an_8_bit_ring() -> None:
    x = n(0)
    assert finger_range(x, 1) == (n(128), n(255))  # 180 degrees round
    assert finger_range(x, 2) == (n(64), n(127))
    assert finger_range(x, 3) == (n(32), n(63))
    assert finger_range(x, 8) == (n(1), n(1))
    assert finger_target(x, 1) == n(128)
    assert finger_target(x, 2) == n(64)


def test_finger_ranges_wrap() -> None:
    x = n(200)
    assert finger_range(x, 1) == (n(72), n(199))
    assert finger_range(x, 2) == (n(8), n(71))
    assert finger_target(x, 3) == n(232)


def test_finger_target_on_the_128_bit_ring() -> None:
    x = NodeId(5)
    assert finger_target(x, 1) == NodeId(5 + (1 << 127))
    assert finger_target(x, 128) == NodeId(6)
    low, high = finger_range(x, 1)
    assert (low.value, high.value) == (5 + (1 << 127), 4)  # [x + 2^127, x + 2^128 - 1]
    with pytest.raises(ValueError):
        finger_target(x, 0)
    with pytest.raises(ValueError):
        finger_target(x, ID_BITS + 1)


def test_finger_index_is_the_entry_whose_range_holds_the_peer() -> None:
    x = n(0)
    assert [finger_index(x, n(v)) for v in (128, 255, 127, 64, 63, 1)] == [1, 1, 2, 2, 3, 8]
    assert finger_index(x, x) is None
    for i in range(1, 9):
        low, high = finger_range(x, i)
        assert finger_index(x, low) == finger_index(x, high) == i


def test_random_finger_ids_stay_in_range() -> None:
    rng = random.Random(1)
    x = n(200)
    for i in range(1, 9):
        for _ in range(20):
            assert finger_index(x, random_finger_id(x, i, rng)) == i


def test_finger_table_offer_keeps_the_first_valid_entry() -> None:
    ft = FingerTable(n(0), 8)
    assert ft.offer(n(130))
    assert not ft.offer(n(200))  # entry 1 already valid
    assert ft.offer(n(200), replace=True)
    assert ft.entry(1) == n(200)
    assert ft.offer(n(40))
    assert ft.entries() == ids(40, 200)  # numerically ascending, as a full Update lists them


def test_finger_table_missing_entries_skip_the_successor_span() -> None:
    ft = FingerTable(n(0), 8)
    ft.offer(n(130))
    assert ft.missing() == [2, 3, 4, 5, 6, 7, 8]
    # successors reach 40: entries 3..8 ([32, 63] and closer) are what they show
    assert ft.missing(covered_to=n(40)) == [2, 3]
    assert ft.missing(covered_to=n(63)) == [2]


def test_finger_failure_clears_every_reference() -> None:
    ft = FingerTable(n(0), 8)
    ft.offer(n(130))
    ft.offer(n(70))
    assert ft.remove(n(130)) == [1]
    assert ft.entry(1) is None and ft.peers() == frozenset(ids(70))


def test_finger_table_resize_drops_entries_beyond_it() -> None:
    ft = FingerTable(n(0), 8)
    ft.offer(n(130))
    ft.offer(n(3))  # entry 7
    assert ft.resize(4) == [n(3)]
    assert ft.size == 4 and ft.entries() == ids(130)
    assert not ft.offer(n(3))


# -- size estimate and Finger Table size (§10.7.4.3, RFC 7363 §6.1-§6.2) -------------------


def test_overlay_size_exact_when_the_table_holds_the_ring() -> None:
    nt = NeighborTable.build(n(50), ids(10, 50, 90), 3)
    assert estimate_overlay_size(n(50), nt.predecessors, nt.successors, 3) == 3.0


def test_overlay_size_from_neighbour_density() -> None:
    ring = [n(v) for v in range(0, 256, 16)]  # 16 peers, 16 apart
    nt = NeighborTable.build(n(0), ring, 3)
    assert estimate_overlay_size(n(0), nt.predecessors, nt.successors, 3) == 16.0


def test_finger_table_size_rules() -> None:
    x = NodeId(0)
    assert finger_table_size(x, [], 1.0) == 16  # at least 16 entries
    assert finger_table_size(x, [], 2.0**20) == 20  # ceil(log2 N)
    assert finger_table_size(x, [NodeId(1 << 100)], 10.0) == 28  # reach the last successor
    assert finger_table_size(x, [NodeId(1)], 2.0**200) == 128  # at most 128
    assert finger_table_size(n(0), [], 1.0) == 8  # an 8-bit ring has 8 entries at most


# -- properties over random rings ----------------------------------------------------------

rings = st.sets(st.integers(0, 255), min_size=1, max_size=40).map(lambda s: sorted(n(v) for v in s))


@settings(max_examples=150, deadline=None)
@given(rings, st.sampled_from([3, 4, 5]))
def test_lists_equal_the_sorted_ring(ring: list[NodeId], size: int) -> None:
    count = len(ring)
    for i, x in enumerate(ring):
        nt = NeighborTable.build(x, ring, size)
        k = min(size, count - 1)
        assert nt.successors == tuple(ring[(i + j) % count] for j in range(1, k + 1))
        assert nt.predecessors == tuple(ring[(i - j) % count] for j in range(1, k + 1))


@settings(max_examples=150, deadline=None)
@given(rings)
def test_responsibility_partitions_the_ring(ring: list[NodeId]) -> None:
    tables = [NeighborTable.build(x, ring, 3) for x in ring]
    for k in range(256):
        owners = [nt.node_id for nt in tables if nt.is_responsible(n(k))]
        truth = next((x for x in ring if x.value >= k), ring[0])
        assert owners == [truth]


@settings(max_examples=150, deadline=None)
@given(rings)
def test_replica_sets_are_the_owner_and_its_next_two(ring: list[NodeId]) -> None:
    count = len(ring)
    tables = {x: NeighborTable.build(x, ring, 3) for x in ring}
    for k in range(0, 256, 7):
        key = n(k)
        i = next((j for j, x in enumerate(ring) if x.value >= k), 0)
        truth = tuple(ring[(i + j) % count] for j in range(min(REPLICA_COUNT + 1, count)))
        owner = tables[truth[0]]
        assert owner.is_responsible(key)
        assert owner.replica_set(key) == truth
        assert truth[1:] == owner.replica_targets()
        for holder in truth[1:]:
            assert tables[holder].accepts_replica(truth[0], key)
        for x in ring:
            assert tables[x].in_replica_range(key) == (x in truth)

"""Whole rings of ChordTopology instances in one process (tests/topology/chord_sim.py):
50 joins one by one through a bootstrap node (RFC 6940 §10.5), then crashes and leaves
(§10.7.1, §10.9), with reactive and periodic recovery; the ring must converge to the
sorted-ring truth within a bounded number of stabilisation intervals (§10.7.4), and
routed requests must reach the responsible peer. Also two overlays that find each other
through the partition check (§10.7.4.4) and merge."""

from __future__ import annotations

import random

import pytest

from reload_core.ids import NodeId
from reload_core.topology import ChordConfig, ChordState, JoinFailed
from tests.topology.chord_sim import SimNetwork

INTERVAL = 60.0  # chord-update-interval of these runs


def make_config(reactive: bool) -> ChordConfig:
    return ChordConfig(
        update_interval=INTERVAL, ping_interval=300.0, partition_check_interval=600.0, reactive=reactive
    )


def settle(net: SimNetwork, max_intervals: int) -> int:
    """Tick in 10 s steps until every pointer is right; returns the intervals it took."""
    for used in range(max_intervals + 1):
        if not net.ring_errors():
            return used
        net.advance(INTERVAL, 10.0)
    raise AssertionError(f"not converged after {max_intervals} intervals: {net.ring_errors()[:5]}")


def check_links(net: SimNetwork) -> None:
    """Each node's Connection Table is the set of links that really exist."""
    for node_id, topo in net.nodes.items():
        assert topo.connected == {o for link in net.links if node_id in link for o in link if o != node_id}


def check_routing(net: SimNetwork, rng: random.Random, per_node: int = 4) -> None:
    for node_id in net.ring():
        for _ in range(per_node):
            key = NodeId(rng.getrandbits(128))
            assert net.resolve(node_id, key, True) == net.responsible(key)


@pytest.mark.parametrize("reactive", [True, False], ids=["reactive", "periodic"])
def test_fifty_joins_then_failures_and_leaves(reactive: bool) -> None:
    rng = random.Random(42)
    net = SimNetwork(make_config(reactive), seed=42)
    nodes = sorted({NodeId(rng.getrandbits(128)) for _ in range(50)}, key=lambda _: rng.random())
    net.start_first(nodes[0])
    for node_id in nodes[1:]:
        topo = net.join(node_id)
        assert topo.state is ChordState.JOINED, f"{node_id} did not join"
    assert not [a for _, a in net.notices if isinstance(a, JoinFailed)]
    assert settle(net, 3) <= 3
    check_links(net)
    check_routing(net, rng)

    # three consecutive peers fail at once, then four more one by one, then five leave
    ring = net.ring()
    start = ring.index(nodes[0]) + 10
    net.crash(*[ring[(start + k) % len(ring)] for k in range(3)])
    others = [x for x in net.ring() if x != nodes[0]]
    for victim in rng.sample(others, 4):
        net.crash(victim)
    others = [x for x in net.ring() if x != nodes[0]]
    for leaver in rng.sample(others, 5):
        net.leave(leaver)
    assert len(net.nodes) == 38
    assert settle(net, 5) <= 5
    net.advance(2 * INTERVAL, 10.0)  # and it stays so
    assert net.ring_errors() == []
    check_links(net)
    check_routing(net, rng)

    # more joins into the repaired ring
    for _ in range(5):
        assert net.join(NodeId(rng.getrandbits(128))).state is ChordState.JOINED
    assert settle(net, 3) <= 3
    check_routing(net, rng)


def test_steady_ring_sends_only_the_periodic_updates() -> None:
    rng = random.Random(3)
    net = SimNetwork(make_config(True), seed=3)
    nodes = [NodeId(rng.getrandbits(128)) for _ in range(30)]
    net.start_first(nodes[0])
    for node_id in nodes[1:]:
        net.join(node_id)
    net.advance(600.0, 10.0)
    before = net.sent.copy()
    net.advance(1200.0, 10.0)
    updates = net.sent["SendUpdate"] - before["SendUpdate"]
    assert updates == 30 * 6 * 20  # each peer, each of 6 neighbours, once a minute (§10.7.4.1)
    assert net.sent["AttachTo"] - before["AttachTo"] <= 30  # finger searches only
    assert net.ring_errors() == []


@pytest.mark.parametrize("reactive", [True, False], ids=["reactive", "periodic"])
def test_partitioned_overlays_merge(reactive: bool) -> None:
    rng = random.Random(11)
    net = SimNetwork(make_config(reactive), seed=11)
    left = [NodeId(rng.getrandbits(128)) for _ in range(12)]
    right = [NodeId(rng.getrandbits(128)) for _ in range(12)]
    for side in (left, right):
        net.start_first(side[0])
        for node_id in side[1:]:
            net.join(node_id, via=side[0])
    assert net.ring_errors()  # two rings, each wrong about the other
    net.bootstraps = [right[0], left[0]]  # discovery now finds the other side (§10.7.4.4)
    assert settle(net, 15) <= 15
    check_links(net)
    check_routing(net, rng)

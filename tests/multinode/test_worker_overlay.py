"""25 peers over real TLS on loopback, hosted by worker processes (RFC 6940 §6.1, §10):
the ring converges after the joins, after graceful leaves (§10.9), after a process with a
peer in it is SIGKILLed and after a peer's links are dropped abruptly; every peer reaches
every other, and Resource-IDs are answered by the peer responsible for them (§10.1)."""

from __future__ import annotations

import random

import pytest

from app.bench.overlay_harness import OverlayHarness

from .conftest import MakeHarness

pytestmark = pytest.mark.multinode

PEERS = 25
RING_TIMEOUT = 60.0


async def assert_all_pairs_reachable(harness: OverlayHarness) -> None:
    members = sorted(harness.members)
    targets = [(a, harness.view.peers[b].node_id, False) for a in members for b in members if a != b]
    stats = harness.lookup_stats(await harness.lookups(len(targets), targets=targets))
    assert stats.lookups == len(members) * (len(members) - 1)
    assert stats.failed == 0, stats.failures[:5]


async def assert_resources_routed(harness: OverlayHarness, count: int, seed: int) -> None:
    stats = harness.lookup_stats(await harness.lookups(count, rng=random.Random(seed)))
    assert stats.lookups == count
    assert stats.failed == 0, stats.failures[:5]
    assert 0 < stats.hops_mean <= 2 * len(harness.members)


async def test_twenty_five_peers_converge_through_churn(make_harness: MakeHarness) -> None:
    harness = await make_harness(PEERS, workers=2)
    joined = await harness.start_peers(range(PEERS - 1))
    assert joined == list(range(PEERS - 1))
    dedicated = await harness.start_dedicated_peer(PEERS - 1)
    await harness.wait_ring(RING_TIMEOUT)
    assert len(harness.ring()) == PEERS
    await assert_all_pairs_reachable(harness)
    await assert_resources_routed(harness, 200, seed=1)

    for index in (5, 17):
        await harness.leave(index)
    await harness.wait_ring(RING_TIMEOUT)
    assert len(harness.ring()) == PEERS - 2

    harness.kill_worker(dedicated)  # SIGKILL: no Leave, no TLS close_notify
    await harness.wait_ring(RING_TIMEOUT)
    assert len(harness.ring()) == PEERS - 3

    await harness.abort(9)  # its links dropped at once, no Leave
    await harness.wait_ring(RING_TIMEOUT)
    assert len(harness.ring()) == PEERS - 4

    await assert_all_pairs_reachable(harness)
    await assert_resources_routed(harness, 200, seed=2)

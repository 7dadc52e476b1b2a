"""``p2psip peer`` processes on loopback over real TLS (RFC 6940 §10.5, §10.7.1, §10.9):
the ring converges after joins, after a graceful leave (SIGTERM) and after an abrupt kill
(SIGKILL), and a restarted peer gets back in."""

from __future__ import annotations

import asyncio
import random
import signal

import pytest

from app.bench.overlay_harness import OverlayHarness

from .conftest import MakeHarness

pytestmark = pytest.mark.multinode

RING_TIMEOUT = 60.0


async def assert_reachable(harness: OverlayHarness, source: int, resources: int = 20) -> None:
    """Pings from worker-hosted peer ``source`` reach every member by Node-ID, and random
    Resource-IDs are answered by the peer responsible for them (§6.1, §10.1)."""
    ring = harness.ring()
    targets = [(source, harness.view.peers[i].node_id, False) for i in sorted(harness.members) if i != source]
    rng = random.Random(7)
    targets += [(source, rng.randbytes(16), True) for _ in range(resources)]
    results = await harness.lookups(len(targets), targets=targets)
    stats = harness.lookup_stats(results)
    assert stats.failed == 0, stats.failures
    assert stats.lookups == len(ring) - 1 + resources


async def stop_process(harness: OverlayHarness, index: int, signum: int) -> int:
    process = harness.processes[index]
    process.send_signal(signum)
    code = await process.wait_exit(30)
    harness.process_gone(index)
    return code


async def test_two_peers_form_a_ring_and_one_leaves(make_harness: MakeHarness) -> None:
    harness = await make_harness(2)
    first = await harness.start_process(0)
    assert first.ready.result()["listen"] == f"127.0.0.1:{harness.overlay.bootstrap_nodes[0].port}"
    await harness.start_process(1)
    await harness.wait_ring(RING_TIMEOUT)
    a, b = harness.view.peers[0], harness.view.peers[1]
    assert a.successors == a.predecessors == (b.node_id,)
    assert b.successors == b.predecessors == (a.node_id,)

    assert await stop_process(harness, 1, signal.SIGTERM) == 0
    # §10.9: it left (Leave sent, state "left") before it closed.
    states = [line.split("state=")[-1] for line in harness.processes[1].lines if line.startswith("state ")]
    assert states[-3:] == ["left", "closed", "stopped"]
    await harness.wait_ring(RING_TIMEOUT)
    alone = harness.view.peers[0]
    assert alone.successors == alone.predecessors == ()


async def test_five_peers_converge_after_leave_and_kill(make_harness: MakeHarness) -> None:
    harness = await make_harness(6, workers=1)
    await harness.start_process(0)
    await asyncio.gather(*(harness.start_process(i) for i in range(1, 5)))
    await harness.start_peer(5)  # an observer in a worker: it originates the pings
    await harness.wait_ring(RING_TIMEOUT)
    await assert_reachable(harness, 5)

    assert await stop_process(harness, 2, signal.SIGTERM) == 0
    await harness.wait_ring(RING_TIMEOUT)
    assert len(harness.ring()) == 5
    await assert_reachable(harness, 5)

    assert await stop_process(harness, 3, signal.SIGKILL) == -signal.SIGKILL
    await harness.wait_ring(RING_TIMEOUT)
    assert len(harness.ring()) == 4
    await assert_reachable(harness, 5)


async def test_a_new_peer_takes_over_a_dead_bootstrap_address(make_harness: MakeHarness) -> None:
    harness = await make_harness(3, bootstrap_peers=2)
    for index in range(3):
        await harness.start_process(index)
    await harness.wait_ring(RING_TIMEOUT)
    assert await stop_process(harness, 0, signal.SIGKILL) == -signal.SIGKILL
    await harness.wait_ring(RING_TIMEOUT)
    # Started with no address and no handed-over socket, a peer claims the free
    # bootstrap-node address of the configuration (§11.1) and joins the ring the others
    # kept through the other bootstrap peer (§10.5, §11.4) instead of founding a new one.
    newcomer = harness.overlay.add_profile("bootstrap-again")
    process = await harness.start_process(newcomer.index)
    bootstrap = harness.overlay.bootstrap_nodes[0]
    assert process.ready.result()["listen"] == f"{bootstrap.address}:{bootstrap.port}"
    await harness.wait_ring(RING_TIMEOUT)
    assert len(harness.ring()) == 3


async def test_a_killed_peer_restarted_with_its_node_id_rejoins(make_harness: MakeHarness) -> None:
    harness = await make_harness(4)
    for index in range(4):
        await harness.start_process(index)
    await harness.wait_ring(RING_TIMEOUT)
    assert await stop_process(harness, 3, signal.SIGKILL) == -signal.SIGKILL
    await harness.wait_ring(RING_TIMEOUT)
    process = await harness.start_process(3, wait=False)
    await process.wait_ready(15)
    await harness.wait_ring(RING_TIMEOUT)
    assert len(harness.ring()) == 4

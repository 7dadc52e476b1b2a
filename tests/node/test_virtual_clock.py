"""The node on a VirtualClock (for the large simulations): no event loop turns are needed,
everything is driven by link callbacks and clock timers. A ring of ten nodes joins,
converges, answers requests, survives a crash and times requests out, all in virtual time."""

from __future__ import annotations

from collections.abc import Callable

from reload_core.links.base import VirtualClock
from reload_core.node import Answer, Outcome, RequestError
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination

from .support import MemoryRing, OverlayPki, ring_errors


def run(clock: VirtualClock, predicate: Callable[[], bool], limit: float) -> float:
    """Run the clock's callbacks in order until ``predicate`` holds; returns virtual time spent."""
    start = clock.time()
    while not predicate():
        due = clock.next_deadline()
        assert due is not None and due <= start + limit, "the simulation stalled"
        clock.run_until(due)
    return clock.time() - start


async def test_ring_on_a_virtual_clock(pki: OverlayPki) -> None:
    clock = VirtualClock()
    ring = MemoryRing(pki, clock=clock, latency=0.002)
    try:
        first = await ring.first()
        assert first.address is not None
        for _ in range(9):
            node = await ring.new_node()
            node.begin_join(first.address)
            run(clock, lambda node=node: node.is_joined, limit=30.0)  # type: ignore[misc]
            ring.nodes.append(node)
        run(clock, lambda: not ring_errors(ring.nodes), limit=30.0)

        outcomes: list[Outcome] = []
        for a in ring.nodes:
            for b in ring.nodes:
                a.send_request(
                    (NodeDestination(b.node_id),), MessageCode.ping_req, PingReq(), outcomes.append
                )
        spent = run(clock, lambda: len(outcomes) == 100, limit=10.0)
        assert all(isinstance(o, Answer) for o in outcomes)
        assert spent < 0.5  # a few hops of 2 ms each, no retransmission

        victim = ring.nodes.pop(4)
        ring.endpoint(victim).endpoint.crash(fin=True)
        run(clock, lambda: not ring_errors(ring.nodes), limit=30.0)

        lost: list[Outcome] = []
        ring.nodes[0].send_request(
            (NodeDestination(victim.node_id),), MessageCode.ping_req, PingReq(), lost.append
        )
        spent = run(clock, lambda: bool(lost), limit=30.0)
        assert isinstance(lost[0], RequestError) and lost[0].error_code == ErrorCode.Error_Request_Timeout
        assert 5.0 <= spent < 5.1  # five transmissions of overlay-reliability-timer (1 s)
    finally:
        await ring.close()

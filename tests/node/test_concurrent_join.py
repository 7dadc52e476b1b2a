"""A joining node meets a peer that is already Attaching to it (RFC 6940 §6.5.1.2, §10.5).

A peer that heard of a joining node (an Update naming it, §10.7.3) Attaches to its Node-ID.
That node is in the peer's own range and not connected, so the Attach can never be
delivered (§6.1.1) and stays outstanding until its retransmissions run out. The joining
node's Attach to Resource-ID n+1 (§10.5 step 2) reaches that same peer meanwhile: the
§6.5.1.2 tie-breaker must not answer it with Error_In_Progress on the strength of an Attach
that cannot arrive, or every join attempt in that window fails the same way."""

from __future__ import annotations

from collections.abc import Callable

from reload_core.links.base import VirtualClock
from reload_core.node import Node

from .support import MemoryRing, OverlayPki, ring_errors


def run(clock: VirtualClock, predicate: Callable[[], bool], limit: float) -> float:
    start = clock.time()
    while not predicate():
        due = clock.next_deadline()
        assert due is not None and due <= start + limit, "the simulation stalled"
        clock.run_until(due)
    return clock.time() - start


def node_id(first_byte: int) -> bytes:
    return bytes([first_byte]) + bytes(15)


def join_ended(node: Node, failures: list[str]) -> Callable[[], bool]:
    return lambda: node.is_joined or bool(failures)


async def test_join_succeeds_while_the_admitting_peer_attaches_to_the_joiner(pki: OverlayPki) -> None:
    clock = VirtualClock()
    ring = MemoryRing(pki, clock=clock, latency=0.002)
    try:
        first = await ring.new_node(node_id=node_id(0x10))
        first.start_alone()
        ring.nodes.append(first)
        assert first.address is not None
        peer = await ring.new_node(node_id=node_id(0x80))
        peer.begin_join(first.address)
        run(clock, lambda: peer.is_joined, limit=10.0)
        ring.nodes.append(peer)
        run(clock, lambda: not ring_errors(ring.nodes), limit=10.0)

        joiner = await ring.new_node(node_id=node_id(0x40))  # in (0x10.., 0x80..]: peer admits it
        assert peer.is_responsible(joiner.node_id) and peer.node_id > joiner.node_id
        peer_attached: list[bytes | None] = []
        peer.attach.attach(joiner.node_id, peer_attached.append, resource=False)

        failures: list[str] = []
        failed = joiner.join_failed

        def join_failed(reason: str) -> None:
            failures.append(reason)
            failed(reason)

        joiner.join_failed = join_failed  # type: ignore[method-assign]
        joiner.begin_join(first.address)
        spent = run(clock, join_ended(joiner, failures), limit=30.0)
        assert failures == []
        assert joiner.is_joined
        assert spent < 1.0  # no retransmission, no timeout: a few hops of 2 ms
        assert peer_attached == [joiner.node_id]  # the peer's own Attach ends with the link

        ring.nodes.append(joiner)
        run(clock, lambda: not ring_errors(ring.nodes), limit=10.0)
    finally:
        await ring.close()

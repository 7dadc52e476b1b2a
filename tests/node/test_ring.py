"""CHORD-RELOAD rings of real nodes over in-memory links (RFC 6940 §10.5, §10.7, §10.9):
joining through a bootstrap node, convergence to the sorted-ID truth, reachability of
every node and of every Resource-ID's responsible peer, graceful leave and abrupt failure."""

from __future__ import annotations

import asyncio
import random

import pytest

from reload_core.node import Node, RequestError
from reload_core.security.certificates import parse_node_certificate
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.link_methods import PingAns, PingReq
from reload_core.wire.message import Message, NodeDestination, ResourceDestination

from .support import MemoryRing, OverlayPki, node_ids, responsible, ring_errors


def responder(message: Message) -> bytes:
    """The Node-ID of the certificate that signed a response (the node verified it)."""
    return parse_node_certificate(message.security_block.certificates[0].certificate).node_id


async def build(ring: MemoryRing, n: int) -> list[Node]:
    await ring.first()
    for _ in range(n - 1):
        await ring.join()
    await ring.converge(timeout=30.0)
    return ring.nodes


async def ping_all_pairs(nodes: list[Node]) -> None:
    async def ping(a: Node, b: Node) -> None:
        body, message = await a.request(NodeDestination(b.node_id), MessageCode.ping_req, PingReq())
        assert isinstance(body, PingAns)
        assert responder(message) == b.node_id

    await asyncio.gather(*(ping(a, b) for a in nodes for b in nodes if a is not b))


async def resources_answered_by_responsible(nodes: list[Node], per_node: int, seed: int) -> None:
    rng = random.Random(seed)
    ids = node_ids(nodes)

    async def probe(a: Node, key: bytes) -> None:
        _, message = await a.request(ResourceDestination(key), MessageCode.ping_req, PingReq())
        assert responder(message) == responsible(ids, key)

    jobs = [probe(a, rng.randbytes(16)) for a in nodes for _ in range(per_node)]
    # Keys right at and after existing Node-IDs: the edges of each range.
    jobs += [probe(nodes[0], n) for n in ids]
    jobs += [
        probe(nodes[-1], (int.from_bytes(n, "big") + 1).to_bytes(16, "big")) for n in ids if n != b"\xff" * 16
    ]
    await asyncio.gather(*jobs)


@pytest.mark.parametrize("n", [2, 5, 25])
async def test_ring_joins_through_a_bootstrap_and_converges(ring: MemoryRing, n: int) -> None:
    nodes = await build(ring, n)
    assert ring_errors(nodes) == []
    for node in nodes:
        assert node.state == "joined"
        # §10.7: a peer keeps a connection to every member of its Neighbor Table.
        assert set(node.successors) | set(node.predecessors) <= node.connected_nodes
    await ping_all_pairs(nodes)
    await resources_answered_by_responsible(nodes, per_node=4, seed=n)


async def test_graceful_leave_and_the_ring_converges_again(ring: MemoryRing) -> None:
    nodes = await build(ring, 6)
    leaving = nodes[3]
    ring.nodes.remove(leaving)
    await leaving.leave()
    assert leaving.state == "closed"
    await ring.converge(timeout=20.0)
    assert all(leaving.node_id not in n.connected_nodes for n in ring.nodes)
    await ping_all_pairs(ring.nodes)
    await resources_answered_by_responsible(ring.nodes, per_node=3, seed=1)


async def test_abrupt_failure_and_the_ring_converges_again(ring: MemoryRing) -> None:
    nodes = await build(ring, 7)
    victims = [nodes[2], nodes[5]]
    for victim in victims:
        ring.nodes.remove(victim)
        ring.endpoint(victim).endpoint.crash(fin=True)  # a killed process: its sockets close
    await ring.converge(timeout=20.0)
    await ping_all_pairs(ring.nodes)
    await resources_answered_by_responsible(ring.nodes, per_node=3, seed=2)


async def test_silent_failure_is_detected_by_the_link_layer(pki: OverlayPki) -> None:
    """A host that vanishes without closing anything: keepalives go unacknowledged, the
    link is suspected and dropped (§6.6), and the ring repairs (§10.7.1)."""
    quick = MemoryRing(pki, keepalive_interval=0.1, initial_rto=0.1, min_rto=0.1, failure_timeout=1.0)
    try:
        nodes = await build(quick, 5)
        victim = nodes[1]
        quick.nodes.remove(victim)
        quick.endpoint(victim).endpoint.crash(fin=False)
        # On a loaded machine a live link can miss its 1 s failure timeout too; that peer is
        # then held down for §10.7.1's 30 s before the ring takes it back, so allow for it.
        await quick.converge(timeout=45.0)
        await ping_all_pairs(quick.nodes)
    finally:
        await quick.close()


async def test_request_to_a_missing_node_times_out_after_five_transmissions(ring: MemoryRing) -> None:
    first = await ring.first(overlay_reliability_timer=0.2)
    await ring.join(overlay_reliability_timer=0.2)
    await ring.converge()
    loop = asyncio.get_running_loop()
    started = loop.time()
    absent = b"\x00" * 15 + b"\x01"  # in someone's range, connected to nobody: dropped silently
    with pytest.raises(RequestError) as caught:
        await first.request(NodeDestination(absent), MessageCode.ping_req, PingReq())
    assert caught.value.error_code == ErrorCode.Error_Request_Timeout
    # Five transmissions, each waiting overlay-reliability-timer (0.2 s here, §6.2.1).
    assert 0.99 <= loop.time() - started < 2.0


async def test_ping_to_self_and_to_the_wildcard(ring: MemoryRing) -> None:
    nodes = await build(ring, 3)
    _, message = await nodes[0].request(NodeDestination(nodes[0].node_id), MessageCode.ping_req, PingReq())
    assert responder(message) == nodes[0].node_id
    _, message = await nodes[1].request(
        (NodeDestination(nodes[2].node_id), NodeDestination(b"\xff" * 16)), MessageCode.ping_req, PingReq()
    )
    assert responder(message) == nodes[2].node_id


async def test_churn_crash_leave_and_join_at_once(ring: MemoryRing) -> None:
    """Two adjacent peers crash while another leaves and a newcomer joins; the ring heals
    (§10.7.1, §10.7.3, §10.9) and still routes correctly."""
    nodes = await build(ring, 10)
    ordered = sorted(nodes[1:], key=lambda n: n.node_id)
    crashed = ordered[2:4]
    leaving = ordered[6]
    for victim in crashed:
        ring.nodes.remove(victim)
        await victim.close()  # links close without Leaves: an abrupt end
    ring.nodes.remove(leaving)
    await asyncio.gather(leaving.leave(), ring.join(via=ordered[0]))
    await ring.converge(timeout=20.0)
    await ping_all_pairs(ring.nodes)
    await resources_answered_by_responsible(ring.nodes, per_node=2, seed=3)

"""A client (RFC 6940 §4.2): it attaches to the peer responsible for its Node-ID, routes
nothing, stays out of the ring's tables, and is reachable by its Node-ID through that peer."""

from __future__ import annotations

import asyncio

from reload_core.node import Node, wait_until
from reload_core.wire.codes import MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination, ResourceDestination

from .support import MemoryRing, responsible, ring_errors
from .test_ring import build, responder


async def test_client_attaches_to_its_responsible_peer_and_is_reachable(ring: MemoryRing) -> None:
    peers = list(await build(ring, 5))
    ids = [p.node_id for p in peers]
    client = await ring.new_node()
    home = await client.connect_as_client([peers[0].address])  # type: ignore[list-item]
    assert client.state == "client" and client.is_client and not client.is_joined
    assert home == responsible(ids, client.node_id)
    assert client.connected_nodes == {home}
    # The ring is untouched: the client is in nobody's Neighbor or Finger Table.
    assert ring_errors(peers) == []
    assert all(client.node_id not in p.successors + p.predecessors + p.fingers for p in peers)

    async def ping_from_client(peer: Node) -> None:
        _, message = await client.request(NodeDestination(peer.node_id), MessageCode.ping_req, PingReq())
        assert responder(message) == peer.node_id

    async def ping_client(peer: Node) -> None:
        _, message = await peer.request(NodeDestination(client.node_id), MessageCode.ping_req, PingReq())
        assert responder(message) == client.node_id

    await asyncio.gather(*(ping_from_client(p) for p in peers), *(ping_client(p) for p in peers))
    for key in (bytes(16), b"\x80" * 16, ids[2]):
        _, message = await client.request(ResourceDestination(key), MessageCode.ping_req, PingReq())
        assert responder(message) == responsible(ids, key)


async def test_client_follows_a_new_responsible_peer(ring: MemoryRing) -> None:
    """§4.2.1: an Update showing the peer no longer covers the client's Node-ID makes the
    client attach to the new one."""
    peers = list(await build(ring, 3))
    ids = sorted(p.node_id for p in peers)
    # A client in the second-lowest peer's range; a newcomer between the client and that
    # peer takes the client's Node-ID over.
    low, high = int.from_bytes(ids[0], "big"), int.from_bytes(ids[1], "big")
    client_id = (low + (high - low) // 4).to_bytes(16, "big")
    client = await ring.new_node(node_id=client_id)
    home = await client.connect_as_client([peers[0].address])  # type: ignore[list-item]
    assert home == ids[1]
    newcomer_id = (low + (high - low) // 2).to_bytes(16, "big")
    newcomer = await ring.new_node(node_id=newcomer_id)
    await newcomer.join([peers[0].address])  # type: ignore[list-item]
    ring.nodes.append(newcomer)
    await ring.converge()
    await wait_until([client], lambda: client.client.home == newcomer_id, 10.0)
    _, message = await peers[0].request(NodeDestination(client_id), MessageCode.ping_req, PingReq())
    assert responder(message) == client_id

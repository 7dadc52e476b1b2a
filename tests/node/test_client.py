"""A client (RFC 6940 §4.2): it attaches to the peer responsible for its Node-ID, routes
nothing, stays out of the ring's tables, and is reachable by its Node-ID through that peer."""

from __future__ import annotations

import asyncio

import pytest

from reload_core.node import Node, RequestError, wait_until
from reload_core.node.errors import JoinError
from reload_core.node.events import ConnectionChanged
from reload_core.topology.config import ChordConfig
from reload_core.wire.codes import ErrorCode, MessageCode, ProbeInformationType
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination, ResourceDestination
from reload_core.wire.topology import ProbeAns, ProbeReq

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


# ---------------------------------------------------------------- clients-permitted (§11.1)

JOIN_TIME = 1.5
"""The strict peers' chord.join_timeout: how long a node in their range has to join."""


def strict(**overrides: object) -> dict[str, object]:
    """Settings of an overlay whose configuration says clients-permitted false."""
    chord = ChordConfig(update_interval=600.0, ping_interval=3600.0, join_timeout=JOIN_TIME)
    return {"clients_permitted": False, "chord": chord, **overrides}


async def strict_ring(ring: MemoryRing, n: int) -> list[Node]:
    await ring.first(**strict())
    for _ in range(n - 1):
        await ring.join(**strict())
    await ring.converge(timeout=30.0)
    return ring.nodes


async def test_a_node_does_not_become_a_client_of_an_overlay_without_clients(ring: MemoryRing) -> None:
    peers = await strict_ring(ring, 2)
    node = await ring.new_node(**strict())
    with pytest.raises(JoinError, match="clients-permitted is false"):
        await node.connect_as_client([peers[0].address])  # type: ignore[list-item]
    assert node.state == "idle" and node.connected_nodes == frozenset()


async def test_peers_refuse_a_client_and_close_its_links_when_clients_are_not_permitted(
    ring: MemoryRing,
) -> None:
    """A node that ignores the configuration connects as a client (its Attach looks like a
    join's, §10.5 step 2), then acts as one: refused with Error_Incompatible_with_Overlay,
    and dropped when the join time is up. Joining peers are untouched."""
    peers = await strict_ring(ring, 4)
    lost: list[tuple[bytes, bytes]] = []
    for peer in peers:
        peer.add_listener(
            lambda e, me=peer.node_id: (
                lost.append((me, e.node_id)) if isinstance(e, ConnectionChanged) and not e.up else None
            )
        )
    client = await ring.new_node()  # clients_permitted True: it does not heed the overlay's
    home_id = await client.connect_as_client([peers[0].address])  # type: ignore[list-item]
    home = next(p for p in peers if p.node_id == home_id)
    assert client.node_id in home.admission.pending

    # What a join uses is served: a Ping through the home peer (§10.5's alternative procedure).
    far = next(p for p in peers if p is not home)
    _, message = await client.request(NodeDestination(far.node_id), MessageCode.ping_req, PingReq())
    assert responder(message) == far.node_id
    # A client's own business is not: to the home peer, or through it.
    for target in (home, far):
        with pytest.raises(RequestError) as refused:
            await client.request(
                NodeDestination(target.node_id),
                MessageCode.probe_req,
                ProbeReq((ProbeInformationType.uptime,)),
            )
        assert refused.value.error_code == ErrorCode.Error_Incompatible_with_Overlay
        assert b"clients-permitted" in refused.value.error_info

    await wait_until(peers, lambda: (home_id, client.node_id) in lost, JOIN_TIME + 10.0)
    assert home.admission.closed_clients == 1
    assert all(who == client.node_id for _, who in lost)  # no peer lost a peer
    assert ring_errors(peers) == []
    assert all(not (p.admission.pending & {q.node_id for q in peers}) for p in peers)


async def test_a_client_is_served_when_clients_are_permitted(ring: MemoryRing) -> None:
    peers = await build(ring, 3)
    client = await ring.new_node()
    home_id = await client.connect_as_client([peers[0].address])  # type: ignore[list-item]
    home = next(p for p in peers if p.node_id == home_id)
    body, _ = await client.request(
        NodeDestination(home_id), MessageCode.probe_req, ProbeReq((ProbeInformationType.uptime,))
    )
    assert isinstance(body, ProbeAns)
    assert not home.admission.pending  # nothing will close the client's links

"""Nodes that Attach with ICE (§6.5.1, §10.5, §10.6) and AppAttach (§6.5.2), in one
process on this machine's interface address."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from reload_core.config.document import OverlayConfiguration
from reload_core.links.dtls import DtlsAppConnection, DtlsLink
from reload_core.links.tls import TlsLink
from reload_core.node import Node, NodeSettings, RequestError, tls_transport, wait_until
from reload_core.node.attach_ice import AppAttachError, IceAttachManager, install_ice, uses_ice
from reload_core.node.transport import TlsTransport
from reload_core.topology.config import ChordConfig
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.link_methods import AnyIceCandidate, PingReq, UnknownIceCandidate
from reload_core.wire.message import NodeDestination

from .pki import OVERLAY, TestPki


def settings() -> NodeSettings:
    return NodeSettings(
        overlay_name=OVERLAY,
        overlay_reliability_timer=1.0,
        chord=ChordConfig(update_interval=600.0, ping_interval=3600.0),
    )


def ring_errors(nodes: Sequence[Node]) -> list[str]:
    ring = sorted(n.node_id for n in nodes)
    errors = []
    for node in nodes:
        i = ring.index(node.node_id)
        want = tuple(ring[(i + j) % len(ring)] for j in range(1, min(3, len(ring) - 1) + 1))
        if not node.is_joined or node.successors != want:
            errors.append(f"{node.node_id.hex()[:8]}: {node.state}")
    return errors


class IceRing:
    def __init__(self, pki: TestPki, address: str) -> None:
        self.pki = pki
        self.address = address
        self.nodes: list[Node] = []
        self.managers: list[IceAttachManager] = []

    def new(self) -> Node:
        creds = self.pki.node()
        node = Node(creds.signer, self.pki.resolver(), settings(), tls_transport(creds.tls, self.pki.trust()))
        self.managers.append(install_ice(node, creds.tls, self.pki.trust()))
        self.nodes.append(node)
        return node

    async def close(self) -> None:
        for node in self.nodes:
            await node.close()
        for manager in self.managers:
            await manager.wait_closed()


@pytest.fixture
async def ring(pki: TestPki, interface_address: str) -> AsyncIterator[IceRing]:
    r = IceRing(pki, interface_address)
    try:
        yield r
    finally:
        await r.close()


def test_configuration_decides_on_ice() -> None:
    def config(no_ice: bool, *protocols: str) -> OverlayConfiguration:
        return OverlayConfiguration(instance_name=OVERLAY, no_ice=no_ice, overlay_link_protocols=protocols)

    assert uses_ice(config(False, "DTLS-UDP-SR"))
    assert uses_ice(config(False, "TLS", "dtls-udp-sr"))
    assert not uses_ice(config(True, "DTLS-UDP-SR"))
    assert not uses_ice(config(False, "TLS"))  # the default keeps No-ICE TLS/TCP


async def test_ring_of_ice_links(ring: IceRing) -> None:
    first = ring.new()
    bootstrap = await first.start(IpAddressPort(ring.address, 0))
    first.start_alone()
    for _ in range(3):
        node = ring.new()
        await node.start(IpAddressPort(ring.address, 0))
        await node.join([bootstrap], timeout=20.0)
    await wait_until(ring.nodes, lambda: not ring_errors(ring.nodes), 20.0)

    # Links to the bootstrap node are TLS/TCP (dialed directly, §11.4); the others were
    # made by Attach with ICE: DTLS/UDP with SR.
    for node, manager in zip(ring.nodes[1:], ring.managers[1:], strict=True):
        dtls = [link for link in manager.dtls.links if link.is_open]
        assert dtls, f"{node.node_id.hex()[:8]} has no ICE link"
        assert all(isinstance(link, DtlsLink) and link.dtls_version for link in dtls)
        peers = {link.remote_node_id for link in dtls}
        assert first.node_id not in peers
        assert set(node.successors) - {first.node_id} <= node.connected_nodes
    # The bootstrap node answers STUN on its listening port (§6.5.1.4) and the others
    # learned their reflexive address from it.
    assert ring.managers[0].stun_responder is not None
    assert ring.managers[0].stun_responder.address == (bootstrap.addr, bootstrap.port)
    assert ring.managers[0].stun_responder.answered > 0
    assert any(m.stun_servers.groups() for m in ring.managers[1:])

    async def ping(a: Node, b: Node) -> None:
        await a.request(NodeDestination(b.node_id), MessageCode.ping_req, PingReq())

    await asyncio.gather(*(ping(a, b) for a in ring.nodes for b in ring.nodes if a is not b))
    transports = [n.transport for n in ring.nodes]
    assert all(isinstance(t, TlsTransport) for t in transports)
    assert all(
        isinstance(link, TlsLink)
        for t in transports
        if isinstance(t, TlsTransport)
        for link in t.endpoint.links
    )


async def test_app_attach_gives_an_authenticated_connection(ring: IceRing) -> None:
    first = ring.new()
    bootstrap = await first.start(IpAddressPort(ring.address, 0))
    first.start_alone()
    caller, callee = ring.new(), ring.new()
    for node in (caller, callee):
        await node.start(IpAddressPort(ring.address, 0))
        await node.join([bootstrap], timeout=20.0)
    await wait_until(ring.nodes, lambda: not ring_errors(ring.nodes), 20.0)
    caller_ice, callee_ice = ring.managers[1], ring.managers[2]

    accepted: asyncio.Queue[DtlsAppConnection] = asyncio.Queue()
    callee_ice.register_application(5060, accepted.put_nowait)

    # An application nobody registered: Error_Not_Found (§6.5.2.2).
    with pytest.raises(RequestError) as refused:
        await caller_ice.app_attach(callee.node_id, 5061)
    assert refused.value.error_code == ErrorCode.Error_Not_Found

    conn = await caller_ice.app_attach(callee.node_id, 5060)
    far = await asyncio.wait_for(accepted.get(), 10)
    assert conn.remote_node_id == callee.node_id and far.remote_node_id == caller.node_id
    assert conn.application == far.application == 5060
    conn.send(b"INVITE sip:callee@ice.test.example SIP/2.0\r\n\r\n")
    assert await asyncio.wait_for(far.recv(), 5) == b"INVITE sip:callee@ice.test.example SIP/2.0\r\n\r\n"
    far.send(b"SIP/2.0 180 Ringing\r\n\r\n")
    assert await asyncio.wait_for(conn.recv(), 5) == b"SIP/2.0 180 Ringing\r\n\r\n"
    conn.close()
    await asyncio.wait_for(far.wait_closed(), 5)

    # Through a Destination List whose terminal entry is the callee (RFC 7904 §5.1).
    via = NodeDestination(first.node_id)
    conn2 = await caller_ice.app_attach([via, NodeDestination(callee.node_id)], 5060)
    far2 = await asyncio.wait_for(accepted.get(), 10)
    assert far2.remote_node_id == caller.node_id
    conn2.close()

    # A terminal entry that is not a node taking part: the request fails.
    with pytest.raises((RequestError, AppAttachError)):
        await caller_ice.app_attach(bytes(16), 5060, timeout=2)


async def test_simultaneous_attaches_make_one_connection(ring: IceRing) -> None:
    """§6.5.1.2: two nodes Attaching to each other at once both end up connected; the one
    with the larger Node-ID answers the other's request with Error_In_Progress."""
    first = ring.new()
    bootstrap = await first.start(IpAddressPort(ring.address, 0))
    first.start_alone()
    a, b = ring.new(), ring.new()
    for node in (a, b):
        await node.start(IpAddressPort(ring.address, 0))
        await node.connect_as_client([bootstrap], timeout=20.0)
    assert not a.is_connected(b.node_id)
    loop = asyncio.get_running_loop()
    done_a: asyncio.Future[bytes | None] = loop.create_future()
    done_b: asyncio.Future[bytes | None] = loop.create_future()
    a.attach.attach(b.node_id, done_a.set_result, resource=False)
    b.attach.attach(a.node_id, done_b.set_result, resource=False)
    assert await asyncio.wait_for(done_a, 15) == b.node_id
    assert await asyncio.wait_for(done_b, 15) == a.node_id
    assert a.is_connected(b.node_id) and b.is_connected(a.node_id)
    links = [link for m in ring.managers[1:] for link in m.dtls.links if link.is_open]
    assert len(links) == 2  # one DTLS link, seen from both ends


async def test_an_offer_with_a_candidate_of_an_unknown_type_attaches(ring: IceRing) -> None:
    """§6.3.1.1, §6.5.1.1: the answerer skips a candidate whose address type it does not
    know, and ICE runs on the others."""
    first = ring.new()
    bootstrap = await first.start(IpAddressPort(ring.address, 0))
    first.start_alone()
    a, b = ring.new(), ring.new()
    for node in (a, b):
        await node.start(IpAddressPort(ring.address, 0))
        await node.connect_as_client([bootstrap], timeout=20.0)
    manager = ring.managers[1]
    # A DTLS-UDP-SR host candidate at an address of AddressType 7 (not defined by §6.3.1.1).
    unknown = UnknownIceCandidate(
        bytes.fromhex("07050a0b0c0d0e0101") + b"7" + bytes.fromhex("7effffff010000")
    )
    offered: list[tuple[AnyIceCandidate, ...]] = []

    def candidates() -> tuple[AnyIceCandidate, ...]:
        offered.append((unknown, *IceAttachManager.candidates(manager)))
        return offered[-1]

    manager.candidates = candidates  # type: ignore[method-assign,assignment]
    done: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
    a.attach.attach(b.node_id, done.set_result, resource=False)
    assert await asyncio.wait_for(done, 15) == b.node_id
    assert offered and offered[-1][0] is unknown and len(offered[-1]) > 1
    await wait_until([a, b], lambda: a.node_id in b.connected_nodes, 10.0)  # the DTLS client's end
    assert any(link.is_open and link.remote_node_id == a.node_id for link in ring.managers[2].dtls.links)

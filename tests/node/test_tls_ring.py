"""A ring of five nodes over real TLS/TCP links on 127.0.0.1 (RFC 6940 §6.6.5, No-ICE
Attach §6.5.1.11-13), with certificates from a throwaway overlay CA."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from reload_core.links.framing import LinkConfig
from reload_core.links.tls import OverlayTrust, TlsCredentials, TlsLink
from reload_core.node import Node, wait_until
from reload_core.node.transport import TlsTransport, tls_transport
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination, ResourceDestination

from .support import OVERLAY, OverlayPki, responsible, ring_errors, settings
from .test_ring import responder

LOCALHOST = IpAddressPort("127.0.0.1", 0)


@pytest.fixture
async def tls_nodes(pki: OverlayPki) -> AsyncIterator[list[Node]]:
    nodes: list[Node] = []
    trust = OverlayTrust(OVERLAY, root_certs=(pki.root,))
    for _ in range(5):
        signer = pki.signer()
        credentials = TlsCredentials(signer.private_key, signer.certificate)
        node = Node(
            signer, pki.resolver(), settings(), tls_transport(credentials, trust, config=LinkConfig())
        )
        nodes.append(node)
    try:
        yield nodes
    finally:
        for node in nodes:
            await node.close()


async def test_five_node_tls_ring(tls_nodes: list[Node]) -> None:
    first, *others = tls_nodes
    bootstrap = await first.start(LOCALHOST)
    assert bootstrap.port != 0
    first.start_alone()
    for node in others:
        address = await node.start(LOCALHOST)
        assert address.addr == "127.0.0.1"
        await node.join([bootstrap], timeout=30.0)
    await wait_until(tls_nodes, lambda: not ring_errors(tls_nodes), 30.0)

    # Every link is a real, mutually authenticated TLS connection.
    for node in tls_nodes:
        transport = node.transport
        assert isinstance(transport, TlsTransport)
        open_links = [link for link in transport.endpoint.links if link.is_open]
        assert open_links and all(isinstance(link, TlsLink) and link.tls_version for link in open_links)
        assert {link.remote_node_id for link in open_links} >= set(node.successors)

    async def ping(a: Node, b: Node) -> None:
        _, message = await a.request(NodeDestination(b.node_id), MessageCode.ping_req, PingReq())
        assert responder(message) == b.node_id

    await asyncio.gather(*(ping(a, b) for a in tls_nodes for b in tls_nodes if a is not b))
    ids = [n.node_id for n in tls_nodes]
    keys = [bytes([k]) * 16 for k in (0x00, 0x3F, 0x80, 0xC1, 0xFF)]
    for key in keys:
        _, message = await tls_nodes[1].request(ResourceDestination(key), MessageCode.ping_req, PingReq())
        assert responder(message) == responsible(ids, key)

    # A peer that leaves is taken out of everyone's tables over TLS too.
    leaving = tls_nodes[2]
    await leaving.leave()
    rest = [n for n in tls_nodes if n is not leaving]
    await wait_until(rest, lambda: not ring_errors(rest), 30.0)

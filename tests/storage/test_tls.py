"""Storage on a ring of peers over real TLS/TCP links on 127.0.0.1 (RFC 6940 §6.6.5):
stores, replicas, an abrupt failure and a graceful leave, then every value fetched."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reload_core.links.framing import LinkConfig
from reload_core.links.tls import OverlayTrust, TlsCredentials, TlsLink
from reload_core.node.transport import TlsTransport, TransportFactory, tls_transport

from .ring import StorageRing, replica_set
from .support import OVERLAY, Identity, TestCA
from .test_overlay import fetch_all, store_many


def tls(ring: StorageRing, identity: object) -> TransportFactory:
    assert isinstance(identity, Identity) and isinstance(ring.ca, TestCA)
    credentials = TlsCredentials(identity.signer.private_key, identity.signer.certificate)
    return tls_transport(credentials, OverlayTrust(OVERLAY, root_certs=(ring.ca.root,)), config=LinkConfig())


@pytest.fixture
async def ring(ca: TestCA) -> AsyncIterator[StorageRing]:
    r = StorageRing(ca, transport=tls)
    try:
        yield r
    finally:
        await r.close()


async def test_storage_survives_failure_and_leave_over_tls(ring: StorageRing) -> None:
    await ring.first()
    for _ in range(5):
        await ring.join()
    await ring.converge(30.0)
    for s in ring.peers:
        transport = s.node.transport
        assert isinstance(transport, TlsTransport)
        assert any(isinstance(link, TlsLink) and link.is_open for link in transport.endpoint.links)

    values = await store_many(ring, 12)
    placements = [(r, k) for r, k, _ in values]
    await ring.settle(placements, 30.0)

    victim = ring.by_id(replica_set([p.node.node_id for p in ring.peers], values[0][0])[0])
    await ring.kill(victim)
    await ring.settle(placements, 30.0)

    leaving = ring.by_id(replica_set([p.node.node_id for p in ring.peers], values[1][0])[0])
    ring.peers.remove(leaving)
    await leaving.leave()
    await ring.settle(placements, 30.0)

    assert await fetch_all(ring.peers[0], values) == []

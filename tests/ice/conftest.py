"""Fixtures of the ICE tests: the overlay PKI, cleanup of ICE connections and DTLS
endpoints, and (in :mod:`.netns`) network namespaces with NATs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aioice.ice import get_host_addresses

from reload_core.links.dtls import DtlsEndpoint
from reload_core.links.ice import IceConnection

from .pki import TestPki


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return TestPki()


@pytest.fixture(scope="session")
def interface_address() -> str:
    """This machine's own interface address: aioice leaves loopback out of its candidates."""
    addresses = [a for a in get_host_addresses(use_ipv4=True, use_ipv6=False) if not a.startswith("127.")]
    if not addresses:
        pytest.skip("no non-loopback IPv4 interface address: ICE has no host candidate on this machine")
    return addresses[0]


class Closer:
    """Closes, at the end of the test (also when it fails), what the test opened."""

    def __init__(self) -> None:
        self.ice: list[IceConnection] = []
        self.endpoints: list[DtlsEndpoint] = []

    def add(self, *conns: IceConnection) -> None:
        self.ice.extend(conns)

    def endpoint(self, endpoint: DtlsEndpoint) -> DtlsEndpoint:
        self.endpoints.append(endpoint)
        return endpoint


@pytest.fixture
async def closer() -> AsyncIterator[Closer]:
    c = Closer()
    try:
        yield c
    finally:
        for ep in c.endpoints:
            ep.close()
        for conn in c.ice:
            await conn.aclose()

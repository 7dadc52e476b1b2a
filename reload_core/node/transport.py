"""The link layer as the node sees it: dial, listen, and the address to advertise in an
Attach (RFC 6940 §6.5.1, §6.6).

A :class:`LinkTransport` wraps one of :mod:`reload_core.links`' endpoints. The node builds
it through a :data:`TransportFactory`, handing itself in as the
:class:`~reload_core.links.base.LinkHandler`, since endpoints take their handler when
they are made. Two factories are provided: :func:`tls_transport` (TLS/TCP with the
framing header, No-ICE, §6.6.5) and :func:`memory_transport` (in-memory links for tests
and the simulator, addressed by IP address and port like real ones so that Attach
candidates carry them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from reload_core.links.base import Clock, Link, LinkHandler
from reload_core.links.framing import LinkConfig
from reload_core.links.memory import MemoryEndpoint, MemoryNetwork
from reload_core.links.tls import OverlayTrust, TlsCredentials, TlsEndpoint, TlsListener
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import OverlayLinkType


class LinkTransport(Protocol):
    """Dials and accepts overlay links for one node."""

    @property
    def link_type(self) -> OverlayLinkType:
        """The Overlay Link protocol of the links it makes (§6.6), as Attach candidates name it."""
        ...

    @property
    def address(self) -> IpAddressPort | None:
        """Where peers reach this node (its Attach candidate), once listening."""
        ...

    def connect(self, address: IpAddressPort, expected_node_id: bytes | None = None) -> Link:
        """Dial ``address``; the link is refused unless its peer proves ``expected_node_id``."""
        ...

    async def listen(self, address: IpAddressPort | None = None) -> IpAddressPort:
        """Start accepting links (port 0: one the OS picks); returns the address to advertise."""
        ...

    async def close(self) -> None:
        """Stop accepting and close every link."""
        ...


TransportFactory = Callable[[LinkHandler, tuple[bytes, ...]], LinkTransport]
"""Builds a node's transport from the node (its LinkHandler) and its Node-IDs."""


# ---------------------------------------------------------------- TLS/TCP


class TlsTransport:
    """TLS/TCP with framing header, No-ICE (§6.6.5) over a :class:`TlsEndpoint`.
    ``advertise`` overrides the address put in Attach candidates (e.g. when listening on
    0.0.0.0)."""

    link_type = OverlayLinkType.TLS_TCP_FH_NO_ICE

    def __init__(self, endpoint: TlsEndpoint, advertise: IpAddressPort | None = None) -> None:
        self.endpoint = endpoint
        self._advertise = advertise
        self._listener: TlsListener | None = None
        self._address: IpAddressPort | None = advertise

    @property
    def address(self) -> IpAddressPort | None:
        return self._address

    def connect(self, address: IpAddressPort, expected_node_id: bytes | None = None) -> Link:
        return self.endpoint.connect(address, expected_node_id)

    async def listen(self, address: IpAddressPort | None = None) -> IpAddressPort:
        host, port = (address.addr, address.port) if address is not None else ("127.0.0.1", 0)
        self._listener = await self.endpoint.listen(host, port)
        bound_host, bound_port = self._listener.address
        if self._advertise is None:
            self._address = IpAddressPort(bound_host, bound_port)
        return self._address or IpAddressPort(bound_host, bound_port)

    async def close(self) -> None:
        await self.endpoint.close()


def tls_transport(
    credentials: TlsCredentials,
    trust: OverlayTrust,
    *,
    config: LinkConfig | None = None,
    clock: Clock | None = None,
    wall_clock: Callable[[], datetime] | None = None,
    keylog_file: str | os.PathLike[str] | None = None,
    advertise: IpAddressPort | None = None,
) -> TransportFactory:
    """A factory of TLS/TCP transports with these credentials and this trust."""

    def build(handler: LinkHandler, node_ids: tuple[bytes, ...]) -> LinkTransport:
        endpoint = TlsEndpoint(
            credentials,
            trust,
            handler,
            config=config,
            clock=clock,
            wall_clock=wall_clock,
            keylog_file=keylog_file,
        )
        return TlsTransport(endpoint, advertise)

    return build


# ---------------------------------------------------------------- in memory


def memory_address(address: IpAddressPort) -> str:
    """The MemoryNetwork name of an address: ``192.0.2.1:6084`` or ``[2001:db8::1]:6084``."""
    if ":" in address.addr:
        return f"[{address.addr}]:{address.port}"
    return f"{address.addr}:{address.port}"


class MemoryTransport:
    """In-memory links (:class:`MemoryNetwork`) under an IP-style address."""

    def __init__(self, endpoint: MemoryEndpoint, address: IpAddressPort) -> None:
        self.endpoint = endpoint
        self._address = address

    @property
    def link_type(self) -> OverlayLinkType:
        return (
            OverlayLinkType.TLS_TCP_FH_NO_ICE if self.endpoint.network.stream else OverlayLinkType.DTLS_UDP_SR
        )

    @property
    def address(self) -> IpAddressPort | None:
        return self._address

    def connect(self, address: IpAddressPort, expected_node_id: bytes | None = None) -> Link:
        return self.endpoint.connect(memory_address(address), expected_node_id)

    async def listen(self, address: IpAddressPort | None = None) -> IpAddressPort:
        self.endpoint.accepting = True
        return self._address

    async def close(self) -> None:
        self.endpoint.close()
        self.endpoint.close_links()


def memory_transport(
    network: MemoryNetwork, address: IpAddressPort, *, config: LinkConfig | None = None
) -> TransportFactory:
    """A factory of one in-memory transport at ``address`` on ``network``."""

    def build(handler: LinkHandler, node_ids: tuple[bytes, ...]) -> LinkTransport:
        endpoint = network.endpoint(memory_address(address), node_ids, handler, config=config, accept=False)
        return MemoryTransport(endpoint, address)

    return build


__all__ = [
    "LinkTransport",
    "MemoryTransport",
    "TlsTransport",
    "TransportFactory",
    "memory_address",
    "memory_transport",
    "tls_transport",
]

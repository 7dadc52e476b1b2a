"""Bootstrap peers of the local overlay found on the LAN by DNS-SD over multicast DNS.

RFC 6940 has no multicast bootstrap: a node learns bootstrap peers from its configuration
document (§11.1 ``bootstrap-node``) or "by some other mechanism" (RFC 7890 §4.2, which
also notes the P2PSIP working group's "continuing interest" in mDNS and DNS-SD "for the
bootstrapping of P2PSIP overlays", §2.5). The local overlay's document names none
(:mod:`app.phone.local_config`); its peers advertise themselves instead with DNS-SD
(RFC 6763) over multicast DNS (RFC 6762), through ``zeroconf``.

Service type ``_p2psip-phone._tcp.local.``. IANA's only RELOAD service name,
``reload-config`` (RFC 6940 §14.2, TCP 6084), names the configuration server that §11.2
fetches the document from over HTTPS; what is advertised here is a peer accepting TLS/TCP
overlay links (§6.6.5), which no registered service name describes, so a name of this
application's is used (RFC 6763 §7 asks for names registered per RFC 6335; this one
would be if the app is published). One service instance per peer:

- instance name ``p2psip-<Node-ID hex>`` (unique per node, so no renaming on conflict);
- SRV/A: the address and port the peer's overlay links are accepted at (§6.6.5);
- TXT (RFC 6763 §6): ``txtvers=1`` (§6.7), ``overlay=<instance-name>`` (§11.1; a LAN may
  carry several overlays, and only ours count), ``node-id=<hex>`` (the peer's Node-ID, for
  the split rule of :mod:`app.phone.local_overlay` and to leave ourselves out).

A peer that does not speak the TXT format (another version, another overlay, a malformed
record) is ignored, never an error. Multicast goes out on every interface zeroconf picks
(``interfaces``); tests keep it inside a network namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import ifaddr
from zeroconf import (
    BadTypeInNameException,
    InterfaceChoice,
    IPVersion,
    NonUniqueNameException,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from reload_core.wire.addresses import IpAddressPort

log = logging.getLogger("p2psip.discovery")

SERVICE_TYPE = "_p2psip-phone._tcp.local."
TXT_VERSION = "1"
INSTANCE_PREFIX = "p2psip-"
RESOLVE_TIMEOUT = 3.0
"""Seconds to wait for a found instance's SRV, TXT and A records."""


class DiscoveryError(Exception):
    """Multicast DNS cannot run here (no interface, socket refused) or advertising failed."""


@dataclass(frozen=True, slots=True)
class Advertisement:
    """A peer of the overlay found on the LAN: its DNS-SD instance, Node-ID and the
    addresses its TLS/TCP overlay links are accepted at."""

    instance: str
    overlay: str
    node_id: bytes
    addresses: tuple[IpAddressPort, ...]


@dataclass(frozen=True, slots=True)
class PeerFound:
    advertisement: Advertisement


@dataclass(frozen=True, slots=True)
class PeerLost:
    instance: str
    node_id: bytes


DiscoveryEvent = PeerFound | PeerLost
Listener = Callable[[DiscoveryEvent], None]
Interfaces = Sequence[str] | InterfaceChoice
"""Where multicast DNS runs: every interface, or these interface addresses."""


def instance_name(node_id: bytes) -> str:
    return f"{INSTANCE_PREFIX}{node_id.hex()}.{SERVICE_TYPE}"


def host_name(node_id: bytes) -> str:
    return f"{INSTANCE_PREFIX}{node_id.hex()}.local."


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (what zeroconf answers on)."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if ip.is_IPv4 and isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback:
                found.append(ip.ip)
    return list(dict.fromkeys(found))


def parse_advertisement(info: ServiceInfo, overlay: str, node_id_length: int) -> Advertisement | None:
    """The advertisement in a resolved service instance, if it is a peer of ``overlay`` in
    our TXT format; None otherwise (someone else's service, or a malformed record)."""
    props: dict[bytes, bytes | None] = info.properties
    if props.get(b"txtvers") != TXT_VERSION.encode():
        return None
    try:
        their_overlay = (props.get(b"overlay") or b"").decode("utf-8")
        node_id = bytes.fromhex((props.get(b"node-id") or b"").decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if their_overlay != overlay or len(node_id) != node_id_length or info.port is None:
        return None
    addresses: list[IpAddressPort] = []
    for text in info.parsed_addresses(IPVersion.V4Only) + info.parsed_addresses(IPVersion.V6Only):
        try:
            addresses.append(IpAddressPort(str(ipaddress.ip_address(text)), info.port))
        except ValueError:
            continue
    if not addresses:
        return None
    return Advertisement(info.name, their_overlay, node_id, tuple(addresses))


class LocalOverlayDiscovery:
    """Browse for and advertise peers of ``overlay`` on the LAN (see the module docstring).

    ``async with LocalOverlayDiscovery(overlay) as d:`` starts browsing at once and keeps
    at it until the block ends; :meth:`browse` waits for the first answers,
    :attr:`found` is what is known now, :meth:`add_listener` hears of peers coming and
    going. ``own_node_id`` (or the one given to :meth:`advertise`) is left out.
    """

    def __init__(
        self,
        overlay: str,
        *,
        own_node_id: bytes | None = None,
        node_id_length: int = 16,
        interfaces: Interfaces = InterfaceChoice.All,
        resolve_timeout: float = RESOLVE_TIMEOUT,
    ) -> None:
        self.overlay = overlay
        self.own_node_id = own_node_id
        self.node_id_length = node_id_length
        self.interfaces = interfaces
        self.resolve_timeout = resolve_timeout
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._found: dict[str, Advertisement] = {}
        self._changed: asyncio.Event | None = None
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._advertised: ServiceInfo | None = None

    # ---------------------------------------------------------------- life

    async def start(self) -> None:
        if self._azc is not None:
            return
        self._changed = asyncio.Event()
        try:
            self._azc = AsyncZeroconf(interfaces=self.interfaces, ip_version=IPVersion.V4Only)
        except OSError as exc:
            raise DiscoveryError(f"multicast DNS cannot start: {exc.strerror or exc}") from None
        self._browser = AsyncServiceBrowser(self._azc.zeroconf, SERVICE_TYPE, handlers=[self._on_change])

    async def close(self) -> None:
        """Withdraw our advertisement (goodbye packets, RFC 6762 §10.1) and stop."""
        azc, self._azc = self._azc, None
        if azc is None:
            return
        for task in list(self._tasks):
            task.cancel()
        if self._advertised is not None:
            with contextlib.suppress(Exception):
                await azc.async_unregister_service(self._advertised)
            self._advertised = None
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.async_cancel()
            self._browser = None
        await azc.async_close()
        self._found.clear()

    async def __aenter__(self) -> LocalOverlayDiscovery:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _zeroconf(self) -> AsyncZeroconf:
        if self._azc is None:
            raise DiscoveryError("discovery is not started")
        return self._azc

    # ---------------------------------------------------------------- browsing

    @property
    def found(self) -> tuple[Advertisement, ...]:
        """The peers of the overlay known now, smallest Node-ID first."""
        return tuple(sorted(self._found.values(), key=lambda a: a.node_id))

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def _emit(self, event: DiscoveryEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("discovery listener failed on %r", event)

    async def browse(self, timeout: float) -> list[Advertisement]:
        """The peers found within ``timeout`` seconds: as soon as there is one (what is
        known then), or none when the time is up."""
        self._zeroconf()
        assert self._changed is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._found:
            left = deadline - loop.time()
            if left <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return list(self.found)

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        # zeroconf calls this on its loop, which is ours (AsyncZeroconf made in it).
        if state_change is ServiceStateChange.Removed:
            gone = self._found.pop(name, None)
            if gone is not None:
                log.info("peer %s gone from the LAN", gone.node_id.hex())
                self._emit(PeerLost(name, gone.node_id))
            return
        task = asyncio.ensure_future(self._resolve(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, name: str) -> None:
        azc = self._azc
        if azc is None:
            return
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(azc.zeroconf, int(self.resolve_timeout * 1000)):
                log.debug("no answer resolving %s", name)
                return
        except (BadTypeInNameException, OSError) as exc:
            log.debug("cannot resolve %s: %s", name, exc)
            return
        ad = parse_advertisement(info, self.overlay, self.node_id_length)
        if ad is None or ad.node_id == self.own_node_id or self._azc is None:
            return
        known = self._found.get(name)
        self._found[name] = ad
        if known != ad:
            log.info("peer %s of %s at %s", ad.node_id.hex(), ad.overlay, ad.addresses)
            self._emit(PeerFound(ad))
        if self._changed is not None:
            self._changed.set()

    # ---------------------------------------------------------------- advertising

    async def advertise(self, address: IpAddressPort, node_id: bytes) -> None:
        """Advertise a peer of the overlay with Node-ID ``node_id`` accepting links at
        ``address`` (a wildcard address: every LAN address of this machine). Returns when
        the name is probed and announced (RFC 6762 §8), about 1.7 s."""
        azc = self._zeroconf()
        self.own_node_id = node_id
        hosts = lan_addresses() if ipaddress.ip_address(address.addr).is_unspecified else [address.addr]
        if not hosts:
            raise DiscoveryError("no LAN address to advertise")
        properties: dict[str | bytes, Any] = {
            "txtvers": TXT_VERSION,
            "overlay": self.overlay,
            "node-id": node_id.hex(),
        }
        info = ServiceInfo(
            SERVICE_TYPE,
            instance_name(node_id),
            port=address.port,
            properties=properties,
            server=host_name(node_id),
            parsed_addresses=hosts,
        )
        if self._advertised is not None:
            await azc.async_unregister_service(self._advertised)
            self._advertised = None
        try:
            await (await azc.async_register_service(info, allow_name_change=True))
        except (NonUniqueNameException, OSError) as exc:
            raise DiscoveryError(f"cannot advertise on the LAN: {exc}") from None
        self._advertised = info

    async def withdraw(self) -> None:
        """Stop advertising (goodbye packets, so browsers forget us at once)."""
        if self._advertised is not None and self._azc is not None:
            info, self._advertised = self._advertised, None
            await self._azc.async_unregister_service(info)


__all__ = [
    "SERVICE_TYPE",
    "TXT_VERSION",
    "Advertisement",
    "DiscoveryError",
    "DiscoveryEvent",
    "LocalOverlayDiscovery",
    "PeerFound",
    "PeerLost",
    "instance_name",
    "lan_addresses",
    "parse_advertisement",
]

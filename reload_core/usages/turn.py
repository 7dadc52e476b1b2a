"""The TURN Server Usage (RFC 6940 §9): peers that run a TURN server [RFC5766] record it
in the overlay; nodes find one and gather relayed candidates from it (§6.5.1.5).

- Eligibility (§9): a peer whose ICE checks saw a reflexive address other than its own
  address is behind a NAT, and a peer with an RFC 1918 address is private; neither
  SHOULD offer itself (:func:`may_offer_turn`).
- Advertising: for each ``d`` in 1..turn-density the peer stores a
  :class:`~reload_core.wire.usage_data.TurnServer` (``iteration`` = d, its TURN address) as
  the single value of Kind TURN-SERVICE at Resource-ID H(Node-ID || d), which the Kind's
  NODE-MULTIPLE access control (max i 20) lets only that peer write (§7.3.4).
- Finding: "selecting a random Resource-ID and then doing a Find request for the
  appropriate Kind-ID with that Resource-ID"; the peer responsible for it answers with the
  closest Resource-ID holding TURN-SERVICE data, which is then fetched (and its signature
  verified). An empty answer means: try another random Resource-ID.
- Credentials: RELOAD does not carry TURN credentials. They come from the configuration:
  fixed long-term credentials, or a shared secret from which time-limited credentials are
  derived the way coturn's ``use-auth-secret`` mode checks them (the "TURN REST API":
  user name ``expiry:user``, password base64(HMAC-SHA1(secret, user name))) —
  :func:`rest_credentials`. The overlay's ``shared-secret`` (§11.1) can serve as that
  secret in an overlay whose members may all relay through its TURN servers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reload_core.config.document import AccessControl
from reload_core.ids import resource_id
from reload_core.links.ice import TurnRelay
from reload_core.node.attach_ice import IceAttachManager
from reload_core.storage.client import StorageClient, StoreResult
from reload_core.storage.errors import StorageError
from reload_core.storage.kinds import Kind
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.buffer import DecodeError
from reload_core.wire.codes import DataModel, KindId
from reload_core.wire.storage import DataValue, StoredDataSpecifier
from reload_core.wire.usage_data import MAX_TURN_ITERATION, TurnServer, turn_server_resource_name

log = logging.getLogger(__name__)

TURN_SERVICE_MAX_SIZE = 64
"""A TurnServer is at most 1 + 19 bytes (IPv6); room to spare for the Kind's max-size."""

TURN_SERVICE_KIND = Kind(
    kind_id=KindId.TURN_SERVICE,
    data_model=DataModel.SINGLE,
    access_control=AccessControl.NODE_MULTIPLE,
    max_count=1,
    max_size=TURN_SERVICE_MAX_SIZE,
    max_node_multiple=MAX_TURN_ITERATION,
    name="TURN-SERVICE",
)
"""§9: single value, NODE-MULTIPLE "with a maximum iteration of counter 20"."""


def may_offer_turn(address: str, reflexive: Iterable[tuple[str, int]]) -> bool:
    """§9: whether a peer at ``address`` that saw these reflexive addresses in its ICE
    checks should offer to be a TURN server: not behind a NAT, not in RFC 1918 space."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4 and any(
        ip in ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
    ):
        return False
    return all(ipaddress.ip_address(host) == ip for host, _ in reflexive)


def rest_credentials(secret: str, user: str, now: float, ttl: int = 86400) -> tuple[str, str]:
    """Time-limited TURN credentials from a shared secret (coturn ``use-auth-secret``):
    ``(expiry:user, base64(HMAC-SHA1(secret, expiry:user)))``."""
    username = f"{int(now) + ttl}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    """How this node authenticates to the overlay's TURN servers: fixed long-term
    credentials, or a shared secret (:func:`rest_credentials`)."""

    username: str = ""
    password: str = ""
    shared_secret: str | None = None

    def for_server(self, address: tuple[str, int], user: str, now: float) -> TurnRelay:
        if self.shared_secret is not None:
            name, password = rest_credentials(self.shared_secret, user, now)
            return TurnRelay(address, name, password)
        return TurnRelay(address, self.username, self.password)


@dataclass(frozen=True, slots=True)
class FoundTurnServer:
    """A TURN-SERVICE value whose signature verified: the server and the peer that runs it."""

    server: TurnServer
    resource: bytes
    node_id: bytes | None

    @property
    def address(self) -> tuple[str, int]:
        return (self.server.server_address.addr, self.server.server_address.port)


class TurnService:
    """Advertise and find TURN servers through the overlay's storage (§9)."""

    def __init__(self, client: StorageClient, *, turn_density: int, id_bits: int = 128) -> None:
        if not 0 <= turn_density <= 0xFF:
            raise ValueError("turn-density is a uint8 (§11.1)")
        self.client = client
        self.turn_density = turn_density
        self.id_bits = id_bits

    def resources(self, node_id: bytes) -> list[tuple[int, bytes]]:
        """(d, Resource-ID) for d in 1..turn-density (at most the Kind's 20)."""
        count = min(self.turn_density, MAX_TURN_ITERATION)
        return [
            (d, resource_id(turn_server_resource_name(node_id, d), self.id_bits)) for d in range(1, count + 1)
        ]

    async def advertise(self, server: IpAddressPort, *, lifetime: int = 3600) -> list[StoreResult]:
        """Store this node's TURN server at each of its TURN-SERVICE Resource-IDs."""
        results = []
        for d, resource in self.resources(self.client.signer.node_id):
            value = DataValue(True, TurnServer(d, server).to_bytes())
            results.append(await self.client.store(resource, KindId.TURN_SERVICE, [value], lifetime=lifetime))
        return results

    async def keep_advertised(self, server: IpAddressPort, *, lifetime: int = 3600) -> None:
        """Advertise now and again every half ``lifetime``, until cancelled."""
        while True:
            try:
                await self.advertise(server, lifetime=lifetime)
            except StorageError as exc:
                log.info("could not advertise TURN server %s:%d: %s", server.addr, server.port, exc)
            await asyncio.sleep(lifetime / 2)

    async def withdraw(self) -> None:
        for _, resource in self.resources(self.client.signer.node_id):
            await self.client.remove(resource, KindId.TURN_SERVICE, lifetime=60)

    async def fetch(self, resource: bytes) -> list[FoundTurnServer]:
        out = []
        for kind in await self.client.fetch(resource, StoredDataSpecifier.single(KindId.TURN_SERVICE)):
            for data, signer in zip(kind.values, kind.signers, strict=True):
                value = data.value
                if not isinstance(value, DataValue) or not value.exists:
                    continue
                try:
                    server = TurnServer.from_bytes(value.value)
                except DecodeError:
                    continue
                out.append(FoundTurnServer(server, resource, signer.node_id if signer else None))
        return out

    async def find(self, *, attempts: int = 4, rng: random.Random | None = None) -> list[FoundTurnServer]:
        """TURN servers found from random Resource-IDs (§9); empty if none in ``attempts``."""
        rng = rng or random.Random()
        found: dict[tuple[str, int], FoundTurnServer] = {}
        tried: set[bytes] = set()
        for _ in range(attempts):
            target = rng.getrandbits(self.id_bits).to_bytes(self.id_bits // 8, "big")
            try:
                results = await self.client.find(target, [KindId.TURN_SERVICE])
            except StorageError:
                continue
            for result in results:
                closest = result.closest
                if int(result.kind) != KindId.TURN_SERVICE or not closest.strip(b"\0") or closest in tried:
                    continue
                tried.add(closest)
                try:
                    servers = await self.fetch(closest)
                except StorageError:
                    continue
                for s in servers:
                    found.setdefault(s.address, s)
            if found:
                break
        return list(found.values())


async def use_overlay_turn(
    service: TurnService, manager: IceAttachManager, credentials: TurnCredentials, *, attempts: int = 4
) -> FoundTurnServer | None:
    """Find a TURN server through the overlay and gather relayed candidates from it from
    now on (§6.5.1.5: "In the case where a node has not yet found a TURN server, the agent
    would not include a relayed candidate"); None if none was found."""
    found = await service.find(attempts=attempts)
    if not found:
        return None
    chosen = found[0]
    manager.set_turn(credentials.for_server(chosen.address, manager.node.node_id.hex(), time.time()))
    return chosen


def relays(
    found: Sequence[FoundTurnServer], credentials: TurnCredentials, user: str, now: float
) -> list[TurnRelay]:
    """The found servers as ICE relays with this node's credentials."""
    return [credentials.for_server(f.address, user, now) for f in found]


__all__ = [
    "TURN_SERVICE_KIND",
    "FoundTurnServer",
    "TurnCredentials",
    "TurnService",
    "may_offer_turn",
    "relays",
    "rest_credentials",
    "use_overlay_turn",
]

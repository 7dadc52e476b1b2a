"""An in-memory datagram network for the asyncio UA: flows between UserAgents on one
event loop, each datagram delivered after ``delay`` seconds unless the loss pattern drops
it (every Nth, or at random from a seed). A flow can carry a verified identity, as an
AppAttach DTLS connection does."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from app.sip.aio import UserAgent
from app.sip.message import SipRequest, SipResponse, parse_message
from app.sip.ua import Target
from app.sip.uri import SipUri

Address = tuple[str, int]
Loss = Callable[[bytes], bool]


def drop_every(n: int) -> Loss:
    count = 0

    def drop(_: bytes) -> bool:
        nonlocal count
        count += 1
        return count % n == 0

    return drop


def drop_random(rate: float, seed: int) -> Loss:
    rng = random.Random(seed)
    return lambda _: rng.random() < rate


@dataclass(frozen=True)
class Identity:
    user: str
    node_id: bytes


class MemoryFlow:
    """A datagram flow ``local`` -> ``remote`` (the UA's peer handle)."""

    transport = "UDP"
    reliable = False

    def __init__(self, net: MemoryNetwork, local: Address, remote: Address) -> None:
        self._net = net
        self.local_address = local
        self.remote_address: Address | None = remote
        ident = net.identities.get(remote)
        self.verified_user = ident.user if ident else None
        self.verified_node_id = ident.node_id if ident else None

    def send(self, data: bytes) -> None:
        assert self.remote_address is not None
        self._net.send(self.local_address, self.remote_address, data)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MemoryFlow)
            and other.local_address == self.local_address
            and other.remote_address == self.remote_address
        )

    def __hash__(self) -> int:
        return hash((self.local_address, self.remote_address))

    def __repr__(self) -> str:
        return f"<MemoryFlow {self.local_address} -> {self.remote_address}>"


class MemoryNetwork:
    def __init__(self, *, loss: Loss | None = None, delay: float = 0.002) -> None:
        self.loss = loss
        self.delay = delay
        self.endpoints: dict[Address, UserAgent] = {}
        self.identities: dict[Address, Identity] = {}
        self.sent: list[tuple[Address, SipRequest | SipResponse]] = []
        self.dropped = 0
        self._loop = asyncio.get_running_loop()

    def attach(self, ua: UserAgent, address: Address, identity: Identity | None = None) -> None:
        self.endpoints[address] = ua
        if identity is not None:
            self.identities[address] = identity

    def flow(self, local: Address, remote: Address) -> MemoryFlow:
        return MemoryFlow(self, local, remote)

    def target(self, local: Address, remote: Address, user: str) -> Target:
        return Target(self.flow(local, remote), SipUri("sip", user, None, remote[0], remote[1]))

    def resolver(self, local: Address) -> Callable[[SipUri], Awaitable[Sequence[Target]]]:
        """Resolves ``sip:user@host:port`` to the flow to that address."""

        async def resolve(uri: SipUri) -> Sequence[Target]:
            remote = (uri.host, uri.port or 5060)
            return [Target(self.flow(local, remote), uri)] if remote in self.endpoints else []

        return resolve

    def send(self, src: Address, dst: Address, data: bytes) -> None:
        self.sent.append((src, parse_message(data)))
        if self.loss is not None and self.loss(data):
            self.dropped += 1
            return
        self._loop.call_later(self.delay, self._deliver, src, dst, data)

    def _deliver(self, src: Address, dst: Address, data: bytes) -> None:
        ua = self.endpoints.get(dst)
        if ua is not None:
            ua.receive(data, self.flow(dst, src))

"""Helpers for the ICE tests: a recording LinkHandler, RELOAD messages of any size, and
ICE connection pairs on this machine's interface address."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from reload_core.ids import overlay_hash
from reload_core.links.base import CloseReason, Link
from reload_core.links.ice import IceConfig, IceConnection
from reload_core.wire.codes import HashAlgorithm, MessageCode, SignatureAlgorithm, SignerIdentityType
from reload_core.wire.message import (
    LAST_FRAGMENT_BIT,
    ForwardingHeader,
    Message,
    MessageContents,
    NodeDestination,
    SecurityBlock,
    Signature,
    SignatureAndHashAlgorithm,
    SignerIdentity,
)

from .pki import OVERLAY


@dataclass
class Recorder:
    """A LinkHandler that records everything; ``wait`` waits on a condition (no sleeps)."""

    opened: list[Link] = field(default_factory=list)
    messages: list[tuple[Link, bytes]] = field(default_factory=list)
    suspects: list[tuple[Link, bool]] = field(default_factory=list)
    closed: list[tuple[Link, CloseReason]] = field(default_factory=list)
    keepalive: bytes | None = None
    """If set, sent on a link reported idle (``link_idle``), as the node sends a Ping."""
    idle: list[Link] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def link_opened(self, link: Link) -> None:
        self.opened.append(link)
        self._changed.set()

    def message_received(self, link: Link, message: bytes) -> None:
        self.messages.append((link, message))
        self._changed.set()

    def message_too_large(self, link: Link, header: ForwardingHeader, length: int) -> None:
        self._changed.set()

    def link_suspect(self, link: Link, suspect: bool) -> None:
        self.suspects.append((link, suspect))
        self._changed.set()

    def link_idle(self, link: Link) -> None:
        self.idle.append(link)
        if self.keepalive is not None:
            link.send(self.keepalive)
        self._changed.set()

    def link_closed(self, link: Link, reason: CloseReason) -> None:
        self.closed.append((link, reason))
        self._changed.set()

    def payloads(self) -> list[bytes]:
        return [m for _, m in self.messages]

    def reason(self, link: Link) -> CloseReason | None:
        return next((r for lk, r in self.closed if lk is link), None)

    async def wait(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)


def make_message(size: int, transaction_id: int = 1, *, overlay: str = OVERLAY) -> bytes:
    """An unfragmented RELOAD message of exactly ``size`` bytes (padding in a Ping body)."""

    def build(pad: int) -> bytes:
        return Message(
            ForwardingHeader(
                overlay=overlay_hash(overlay),
                configuration_sequence=1,
                ttl=100,
                fragment=LAST_FRAGMENT_BIT,
                transaction_id=transaction_id,
                via_list=(NodeDestination(bytes(range(16))),),
                destination_list=(NodeDestination(bytes(range(16, 32))),),
            ),
            MessageContents(MessageCode.ping_req, bytes(pad)),
            SecurityBlock(
                (),
                Signature(
                    SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa),
                    SignerIdentity(SignerIdentityType.cert_hash, HashAlgorithm.sha256, bytes(32)),
                    b"\x01" * 72,
                ),
            ),
        ).to_bytes()

    base = len(build(0))
    message = build(size - base)
    assert len(message) == size
    return message


async def connected_pair(
    config: IceConfig | None = None, stun_servers: tuple[tuple[str, int], ...] = ()
) -> tuple[IceConnection, IceConnection]:
    """An offerer (controlling) and an answerer ICE connection, connected to each other."""
    offerer = IceConnection(controlling=True, config=config, stun_servers=stun_servers)
    answerer = IceConnection(controlling=False, config=config, stun_servers=stun_servers)
    offer = await offerer.gather()
    answer = await answerer.gather()
    await asyncio.gather(
        offerer.connect(answerer.ufrag, answerer.password, answer),
        answerer.connect(offerer.ufrag, offerer.password, offer),
    )
    return offerer, answerer

"""Helpers for the link tests: a recording LinkHandler and RELOAD messages of any size."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from reload_core.ids import overlay_hash
from reload_core.links.base import CloseReason, Link
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

OVERLAY = "links.test.example"


@dataclass
class Recorder:
    """A LinkHandler that records everything; ``wait`` waits on an event (no sleeps)."""

    opened: list[Link] = field(default_factory=list)
    messages: list[tuple[Link, bytes]] = field(default_factory=list)
    too_large: list[tuple[Link, ForwardingHeader, int]] = field(default_factory=list)
    suspects: list[tuple[Link, bool]] = field(default_factory=list)
    closed: list[tuple[Link, CloseReason]] = field(default_factory=list)
    idle: list[Link] = field(default_factory=list)
    keepalives: list[Link] = field(default_factory=list)
    keepalive: bool = True
    """Answer ``link_idle`` with :data:`KEEPALIVE`, as the node answers it with a Ping."""
    on_message: Callable[[Link, bytes], None] | None = None
    on_too_large: Callable[[Link, ForwardingHeader, int], None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _poke(self) -> None:
        self._changed.set()

    def link_opened(self, link: Link) -> None:
        self.opened.append(link)
        self._poke()

    def message_received(self, link: Link, message: bytes) -> None:
        if message == KEEPALIVE:
            self.keepalives.append(link)
            self._poke()
            return
        self.messages.append((link, message))
        if self.on_message is not None:
            self.on_message(link, message)
        self._poke()

    def message_too_large(self, link: Link, header: ForwardingHeader, length: int) -> None:
        self.too_large.append((link, header, length))
        if self.on_too_large is not None:
            self.on_too_large(link, header, length)
        self._poke()

    def link_suspect(self, link: Link, suspect: bool) -> None:
        self.suspects.append((link, suspect))
        self._poke()

    def link_idle(self, link: Link) -> None:
        self.idle.append(link)
        if self.keepalive:
            link.send(KEEPALIVE)
        self._poke()

    def link_closed(self, link: Link, reason: CloseReason) -> None:
        self.closed.append((link, reason))
        self._poke()

    def payloads(self, link: Link | None = None) -> list[bytes]:
        return [m for lk, m in self.messages if link is None or lk is link]

    def closed_reason(self, link: Link) -> CloseReason | None:
        return next((r for lk, r in self.closed if lk is link), None)

    async def wait(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)


def make_message(size: int, transaction_id: int = 1, *, overlay: str = OVERLAY) -> bytes:
    """An unfragmented RELOAD message of exactly ``size`` bytes (padding in a ping body)."""
    node_a, node_b = bytes(range(16)), bytes(range(16, 32))

    def build(pad: int) -> bytes:
        return Message(
            ForwardingHeader(
                overlay=overlay_hash(overlay),
                configuration_sequence=1,
                ttl=100,
                fragment=LAST_FRAGMENT_BIT,
                transaction_id=transaction_id,
                via_list=(NodeDestination(node_a),),
                destination_list=(NodeDestination(node_b),),
            ),
            MessageContents(MessageCode.ping_req, bytes(pad)),
            SecurityBlock(
                (),
                Signature(
                    SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.rsa),
                    SignerIdentity(SignerIdentityType.cert_hash, HashAlgorithm.sha256, bytes(32)),
                    b"\x01" * 256,
                ),
            ),
        ).to_bytes()

    base = len(build(0))
    if size < base:
        raise ValueError(f"a message is at least {base} bytes")
    message = build(size - base)
    assert len(message) == size
    return message


KEEPALIVE = make_message(400, transaction_id=0x6B65_6570_616C_6976)
"""What a :class:`Recorder` sends on an idle link: a RELOAD message, never an empty frame."""

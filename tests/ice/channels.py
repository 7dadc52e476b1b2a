"""An in-memory datagram channel pair (the DatagramChannel DTLS runs over) with a
deterministic loss pattern per direction, for simple-reliability tests without sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

Drop = Callable[[int, bytes], bool]
"""(index of the datagram in its direction, datagram) -> drop it?"""


class MemoryChannel:
    def __init__(self, name: str, latency: float) -> None:
        self.name = name
        self.latency = latency
        self.peer: MemoryChannel | None = None
        self.drop: Drop = lambda i, d: False
        self.sent = 0
        self.dropped = 0
        self.closed = False
        self._on_datagram: Callable[[bytes], None] | None = None
        self._on_lost: Callable[[str], None] | None = None
        self._early: list[bytes] = []

    # DatagramChannel
    def start(self, on_datagram: Callable[[bytes], None], on_lost: Callable[[str], None]) -> None:
        self._on_datagram, self._on_lost = on_datagram, on_lost
        early, self._early = self._early, []
        for d in early:
            on_datagram(d)

    def send(self, datagram: bytes) -> None:
        if self.closed:
            return
        index = self.sent
        self.sent += 1
        if self.drop(index, datagram):
            self.dropped += 1
            return
        peer = self.peer
        if peer is not None:
            asyncio.get_running_loop().call_later(self.latency, peer._deliver, datagram)

    def _deliver(self, datagram: bytes) -> None:
        if self.closed:
            return
        if self._on_datagram is None:
            self._early.append(datagram)
        else:
            self._on_datagram(datagram)

    def close(self) -> None:
        self.closed = True

    def lose(self, why: str) -> None:
        """The channel fails under its user (as an ICE consent failure would)."""
        on_lost, self._on_lost = self._on_lost, None
        self.closed = True
        if on_lost is not None:
            on_lost(why)

    @property
    def remote_address(self) -> tuple[str, int] | None:
        return ("memory", 0 if self.peer is None else id(self.peer) % 65536)

    @property
    def rtt(self) -> float | None:
        return 2 * self.latency


def channel_pair(latency: float = 0.001) -> tuple[MemoryChannel, MemoryChannel]:
    a, b = MemoryChannel("a", latency), MemoryChannel("b", latency)
    a.peer, b.peer = b, a
    return a, b

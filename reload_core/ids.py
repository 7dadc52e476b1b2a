"""Node-IDs and Resource-IDs on the CHORD-RELOAD ring (RFC 6940 §6.3.1.1, §10.2, §10.3).

IDs travel as bytes (most significant byte first); ring arithmetic is on ints modulo
2^bits. CHORD-RELOAD uses 128 bits for both.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import lru_cache, total_ordering

ID_BITS = 128
ID_BYTES = ID_BITS // 8
RING = 1 << ID_BITS

WILDCARD_NODE_ID = b"\xff" * ID_BYTES
"""The all-ones Node-ID: "any node", e.g. for a Ping or Attach to a neighbour (§6.3.1.1... §6.5.1)."""


@lru_cache(maxsize=64)
def overlay_hash(overlay_name: str) -> int:
    """``overlay`` field: the low 32 bits of SHA-1 of the overlay name (§6.3.2). Cached: every
    message built or checked needs it."""
    return int.from_bytes(hashlib.sha1(overlay_name.encode("ascii")).digest()[-4:], "big")


def resource_id(resource_name: bytes | str, bits: int = ID_BITS) -> bytes:
    """Resource-ID of a resource name: SHA-1, truncated to the top ``bits`` bits (§10.2)."""
    if isinstance(resource_name, str):
        resource_name = resource_name.encode("utf-8")
    return hashlib.sha1(resource_name).digest()[: bits // 8]


@total_ordering
@dataclass(frozen=True, slots=True)
class NodeId:
    """A position on the ring. Ordering is numeric; use :meth:`distance` for ring order."""

    value: int
    bits: int = ID_BITS

    def __post_init__(self) -> None:
        if not 0 <= self.value < (1 << self.bits):
            raise ValueError(f"Node-ID {self.value:#x} does not fit in {self.bits} bits")

    @classmethod
    def from_bytes(cls, data: bytes) -> NodeId:
        return cls(int.from_bytes(data, "big"), len(data) * 8)

    @classmethod
    def random(cls, bits: int = ID_BITS) -> NodeId:
        return cls(secrets.randbits(bits), bits)

    def to_bytes(self) -> bytes:
        return self.value.to_bytes(self.bits // 8, "big")

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    # Written out rather than generated: routing and the topology hash and compare Node-IDs
    # constantly, and the generated methods build a tuple of the fields each time.
    def __eq__(self, other: object) -> bool:
        if other.__class__ is not NodeId:
            return NotImplemented
        return self.value == other.value and self.bits == other.bits

    def __hash__(self) -> int:
        return hash(self.value) ^ self.bits

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, NodeId):
            return NotImplemented
        return self.value < other.value

    def __str__(self) -> str:
        return self.to_bytes().hex()

    def distance(self, other: NodeId) -> int:
        """Clockwise distance from ``self`` to ``other``: (other − self) mod 2^bits."""
        return (other.value - self.value) % (1 << self.bits)

    def add(self, n: int) -> NodeId:
        return NodeId((self.value + n) % (1 << self.bits), self.bits)

    def in_interval(self, start: NodeId, end: NodeId, *, closed_end: bool = True) -> bool:
        """Whether ``self`` lies in the ring interval (start, end] (or (start, end)).

        When ``start == end`` the interval is the whole ring (less ``start`` itself when
        open), as Chord needs for a single-peer ring.
        """
        modulus = 1 << self.bits
        d_end = (end.value - start.value) % modulus
        d_self = (self.value - start.value) % modulus
        if d_end == 0:
            return d_self != 0 or closed_end
        if closed_end:
            return 0 < d_self <= d_end
        return 0 < d_self < d_end

"""The CHORD-RELOAD Finger Table (RFC 6940 §10.1, §10.5, §10.7.2, §10.7.4.2-§10.7.4.3).

Entries are indexed from i = 1, the peer halfway round the ring (§10.1). For a peer x on a
ring of 2^b IDs (b = 128 for CHORD-RELOAD) the i'th entry is valid when it lies in

    [x + 2^(b-i), x + 2^(b-(i-1)) - 1]            (§10.7.4.2)

and a joining node looks for it with an Attach to x + 2^(b-i) (§10.5). A peer at clockwise
distance d from x therefore belongs to entry b - bitlen(d) + 1. Each entry holds one peer
found in its range or nothing; an entry with nothing is invalid and needs a refresh.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence

from reload_core.ids import NodeId
from reload_core.topology.config import MAX_FINGERS, MIN_FINGERS


def finger_target(node_id: NodeId, i: int) -> NodeId:
    """x + 2^(b-i): where the Attach for entry ``i`` goes when joining (§10.5)."""
    _check_index(node_id, i)
    return node_id.add(1 << (node_id.bits - i))


def finger_range(node_id: NodeId, i: int) -> tuple[NodeId, NodeId]:
    """The inclusive range [x + 2^(b-i), x + 2^(b-i+1) - 1] of valid entries ``i`` (§10.7.4.2)."""
    _check_index(node_id, i)
    low = 1 << (node_id.bits - i)
    return node_id.add(low), node_id.add(2 * low - 1)


def finger_index(node_id: NodeId, peer: NodeId) -> int | None:
    """The entry that ``peer`` is valid for, or ``None`` for ``node_id`` itself."""
    d = node_id.distance(peer)
    if d == 0:
        return None
    return node_id.bits - d.bit_length() + 1


def random_finger_id(node_id: NodeId, i: int, rng: random.Random) -> NodeId:
    """A Node-ID drawn uniformly from entry ``i``'s range, for a refresh Ping (§10.7.4.2)."""
    _check_index(node_id, i)
    low = 1 << (node_id.bits - i)
    return node_id.add(low + rng.randrange(low))


def estimate_overlay_size(
    node_id: NodeId, predecessors: Sequence[NodeId], successors: Sequence[NodeId], size: int
) -> float:
    """Overlay size N from the density of the neighbour set (§10.7, RFC 7363 §6.1).

    When either list is shorter than ``size`` the table holds the whole ring and N is the
    exact count. Otherwise d, the mean distance between successive peers from the farthest
    predecessor to the farthest successor, gives N = 2^b / d.
    """
    known = set(predecessors) | set(successors)
    if len(predecessors) < size or len(successors) < size or len(known) < len(predecessors) + len(successors):
        return float(len(known) + 1)
    span = predecessors[-1].distance(successors[-1])
    gaps = len(predecessors) + len(successors)
    return (1 << node_id.bits) * gaps / span


def finger_table_size(
    node_id: NodeId,
    successors: Sequence[NodeId],
    estimated_size: float,
    min_fingers: int = MIN_FINGERS,
    max_fingers: int = MAX_FINGERS,
) -> int:
    """How many entries to keep (§10.7.4.3).

    At least 16 (fewer only on rings shorter than 16 bits), at least ceil(log2 N) as the
    self-tuning extension sizes it (RFC 7363 §6.2), and enough to reach the final
    successor in the Neighbor Table (§10.7.4.3's "simple approach"); at most 128.
    """
    wanted = min_fingers
    if estimated_size > 1:
        wanted = max(wanted, math.ceil(math.log2(estimated_size)))
    if successors:
        last = finger_index(node_id, successors[-1])
        if last is not None:
            wanted = max(wanted, last)
    return min(wanted, max_fingers, node_id.bits)


class FingerTable:
    """Entries 1..size of one peer's Finger Table, each a peer in its range or empty."""

    __slots__ = ("_entries", "_peers", "_size", "_sorted", "node_id", "version")

    def __init__(self, node_id: NodeId, size: int = MIN_FINGERS) -> None:
        self.node_id = node_id
        self._size = min(size, node_id.bits)
        self._entries: dict[int, NodeId] = {}
        self.version = 0
        """Counts changes to the entries (every routed message asks for them: cached)."""
        self._peers: frozenset[NodeId] | None = None
        self._sorted: tuple[NodeId, ...] | None = None

    def _changed(self) -> None:
        self.version += 1
        self._peers = self._sorted = None

    @property
    def size(self) -> int:
        return self._size

    def entry(self, i: int) -> NodeId | None:
        return self._entries.get(i)

    def index_of(self, peer: NodeId) -> int | None:
        return finger_index(self.node_id, peer)

    def offer(self, peer: NodeId, *, replace: bool = False) -> bool:
        """Put ``peer`` in the entry whose range holds it, if that entry is empty (or ``replace``).

        A valid entry is kept rather than swapped for another valid one: which peer in the
        range serves matters little, and stable entries resist churn (§10.7.4.2).
        """
        i = finger_index(self.node_id, peer)
        if i is None or i > self._size:
            return False
        current = self._entries.get(i)
        if current == peer or (current is not None and not replace):
            return False
        self._entries[i] = peer
        self._changed()
        return True

    def remove(self, peer: NodeId) -> list[int]:
        """Drop every reference to ``peer`` (§10.7.2); the entries it held become invalid.

        §10.7.2 fills a failed entry with the closest preceding peer of the Finger or
        Neighbor Table; routing (§10.3) already picks that peer for any ID in the range, so
        the entry is left empty and marked for a search instead.
        """
        cleared = [i for i, p in self._entries.items() if p == peer]
        for i in cleared:
            del self._entries[i]
        if cleared:
            self._changed()
        return cleared

    def resize(self, size: int) -> list[NodeId]:
        """Keep entries 1..size; returns the peers of the entries cut off (§10.7.4.3)."""
        self._size = min(size, self.node_id.bits)
        dropped = [p for i, p in self._entries.items() if i > self._size]
        self._entries = {i: p for i, p in self._entries.items() if i <= self._size}
        self._changed()
        return dropped

    def peers(self) -> frozenset[NodeId]:
        if self._peers is None:
            self._peers = frozenset(self._entries.values())
        return self._peers

    def entries(self) -> tuple[NodeId, ...]:
        """Distinct entries in numerically ascending order, as a ``full`` Update lists them (§10.7)."""
        if self._sorted is None:
            self._sorted = tuple(sorted(self.peers()))
        return self._sorted

    def missing(self, covered_to: NodeId | None = None) -> list[int]:
        """Invalid entries (empty), lowest i first, that a search could fill (§10.7.4.2).

        An entry whose whole range lies within (self, ``covered_to``] (the farthest
        successor) is left out: the successor list already says who is in that range.
        """
        reach = self.node_id.distance(covered_to) if covered_to is not None else 0
        out: list[int] = []
        for i in range(1, self._size + 1):
            if i in self._entries:
                continue
            _, high = finger_range(self.node_id, i)
            if self.node_id.distance(high) <= reach:
                continue
            out.append(i)
        return out

    def fill(self, peers: Iterable[NodeId]) -> None:
        """Offer each peer in turn (without replacing)."""
        for p in peers:
            self.offer(p)


def _check_index(node_id: NodeId, i: int) -> None:
    if not 1 <= i <= node_id.bits:
        raise ValueError(f"finger index {i} outside 1..{node_id.bits}")

"""The CHORD-RELOAD Neighbor Table (RFC 6940 §10.1, §10.4, §10.7).

A value object: the successor and predecessor lists of one peer, each sorted by ring
distance (closest first), rebuilt from a set of candidate peers. It answers who is
responsible for an ID (§10.1, §6.1.1) and which peers make up a replica set (§10.4).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from reload_core.ids import NodeId
from reload_core.topology.config import MIN_NEIGHBORS, REPLICA_COUNT


@dataclass(frozen=True, slots=True)
class NeighborTable:
    """Successors clockwise and predecessors counter-clockwise from ``node_id``, closest first.

    In a ring with fewer than ``2 * size + 1`` peers one peer can be in both lists; a peer
    never lists itself (§10.7.3). With no predecessor the peer is alone and responsible for
    the whole ring.
    """

    node_id: NodeId
    predecessors: tuple[NodeId, ...] = ()
    successors: tuple[NodeId, ...] = ()
    size: int = MIN_NEIGHBORS

    @classmethod
    def build(cls, node_id: NodeId, candidates: Iterable[NodeId], size: int = MIN_NEIGHBORS) -> NeighborTable:
        """The table that the best ``size`` candidates each way make (§10.7.1, §10.7.3)."""
        bits = node_id.bits
        me = node_id.value
        # Keyed by value (Node-IDs are unique by value at one length): cheaper than hashing
        # NodeId objects, and distances are computed on the ints directly.
        others = {c.value: c for c in candidates if c.value != me or c.bits != bits}
        for c in others.values():
            if c.bits != bits:
                raise ValueError(f"Node-ID {c} is not a {bits}-bit ID")
        mask = (1 << bits) - 1
        succ = heapq.nsmallest(size, others, key=lambda v: (v - me) & mask)
        pred = heapq.nsmallest(size, others, key=lambda v: (me - v) & mask)
        return cls(node_id, tuple(others[v] for v in pred), tuple(others[v] for v in succ), size)

    # -- membership ----------------------------------------------------------------------

    def members(self) -> frozenset[NodeId]:
        return frozenset(self.predecessors) | frozenset(self.successors)

    def __contains__(self, node: object) -> bool:
        return node in self.predecessors or node in self.successors

    @property
    def is_alone(self) -> bool:
        return not self.predecessors and not self.successors

    # -- responsibility (§10.1, §6.1.1) ------------------------------------------------

    @property
    def range_start(self) -> NodeId:
        """``p`` of the responsible range (p, self]; ``self`` itself means the whole ring."""
        return self.predecessors[0] if self.predecessors else self.node_id

    def is_responsible(self, k: NodeId) -> bool:
        """Whether ``k`` lies in (first predecessor, self] (§10.1), all math mod 2^bits."""
        return k.in_interval(self.range_start, self.node_id)

    # -- replicas (§10.4, §10.7.3) -------------------------------------------------------

    def replica_targets(self) -> tuple[NodeId, ...]:
        """Where this peer stores replicas of its own data: its next two successors (§10.4)."""
        return self.successors[:REPLICA_COUNT]

    @property
    def replica_range_start(self) -> NodeId:
        """Data in (start, self] is held here as owner or replica; ``self`` means everything.

        A peer leaves a replica set once three predecessors lie between it and the
        Resource-ID (§10.7.3), i.e. outside (predecessors[2], self].
        """
        if len(self.predecessors) > REPLICA_COUNT:
            return self.predecessors[REPLICA_COUNT]
        return self.node_id

    def in_replica_range(self, k: NodeId) -> bool:
        return k.in_interval(self.replica_range_start, self.node_id)

    def ring_view(self) -> tuple[NodeId, ...]:
        """The peers this table knows, in clockwise ring order from the farthest predecessor.

        In a small ring where the lists wrap onto each other, each peer appears once.
        """
        ordered = [*reversed(self.predecessors), self.node_id, *self.successors]
        seen: set[NodeId] = set()
        view: list[NodeId] = []
        for n in ordered:
            if n not in seen:
                seen.add(n)
                view.append(n)
        anchor = view[0]
        return tuple(sorted(view, key=anchor.distance))

    def replica_set(self, k: NodeId) -> tuple[NodeId, ...] | None:
        """Responsible peer for ``k`` then its next successors, as far as this table sees.

        ``None`` when ``k`` falls outside the stretch of ring the table covers (§10.4).
        """
        view = self.ring_view()
        if len(view) == 1:
            return view
        knows_whole_ring = (
            len(self.successors) < self.size
            or len(self.predecessors) < self.size
            or len(view) < len(self.predecessors) + len(self.successors) + 1  # the lists overlap
        )
        for i, node in enumerate(view):
            if i == 0 and not knows_whole_ring:
                continue  # the farthest predecessor's own predecessor is unknown
            if k.in_interval(view[i - 1], node):
                chain = view[i:] + (view[:i] if knows_whole_ring else ())
                return chain[: 1 + REPLICA_COUNT]
        return None

    def accepts_replica(self, sender: NodeId, k: NodeId) -> bool:
        """§10.4: a replica Store must come from the peer responsible for ``k`` whose replica set
        includes this peer, as this peer's predecessors show it."""
        replicas = self.replica_set(k)
        return replicas is not None and replicas[0] == sender and self.node_id in replicas[1:]

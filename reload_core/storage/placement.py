"""Where data belongs on the CHORD-RELOAD ring (RFC 6940 §10.1, §10.4), pure.

Ranges are (start, end] on the ring (start == end: the whole ring); a replica Store is
accepted only from a plausible sender (§7.4.1.1, §10.4).
"""

from __future__ import annotations

from reload_core.ids import NodeId
from reload_core.topology.neighbors import NeighborTable
from reload_core.wire.codes import DataModel
from reload_core.wire.storage import LAST_INDEX, ArrayRange, StoredDataSpecifier


def plausible_replica_source(table: NeighborTable, sender: NodeId, k: NodeId) -> bool:
    """Whether a replica Store for Resource-ID ``k`` from ``sender`` is in order (§7.4.1.1,
    §10.4), as this peer's Neighbor Table sees the ring.

    This peer must be in the replica set of ``k`` (it will keep the data), and the sender
    must be in that set or closer to ``k`` than its last member: "either in the known
    replica set for a given resource or ... closer than some node in the replica set".
    """
    if sender == table.node_id:
        return False
    replicas = table.replica_set(k)
    if replicas is None or table.node_id not in replicas:
        return False
    return sender in replicas or k.distance(sender) < k.distance(replicas[-1])


def in_range(resource: bytes, start: bytes, end: bytes) -> bool:
    """Whether ``resource`` is in (start, end] on the ring; start == end is the whole ring."""
    if len(resource) != len(end):
        return False
    return NodeId.from_bytes(resource).in_interval(NodeId.from_bytes(start), NodeId.from_bytes(end))


def everything(kind: int, model: DataModel) -> StoredDataSpecifier:
    """A specifier for every value of a Kind (§7.4.2.1)."""
    if model is DataModel.ARRAY:
        return StoredDataSpecifier.array(kind, [ArrayRange(0, LAST_INDEX)])
    if model is DataModel.DICTIONARY:
        return StoredDataSpecifier.dictionary(kind)
    return StoredDataSpecifier.single(kind)


__all__ = ["everything", "in_range", "plausible_replica_source"]

"""The CHORD-RELOAD routing decision (RFC 6940 §6.1, §6.1.1, §10.3).

:func:`next_hop` is §10.3's rule over a Routing Table (the union of the Neighbor and Finger
Tables); :func:`route` wraps it in §6.1.1's handling of the first Destination List entry
for which the peer is or is not responsible. Opaque IDs and list compression (§6.1.3)
belong to the message transport, which calls this with plain Node-IDs and Resource-IDs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from reload_core.ids import NodeId


@dataclass(frozen=True, slots=True)
class Deliver:
    """The message is for this node: pass it to the upper layers (§6.1.1)."""


@dataclass(frozen=True, slots=True)
class Forward:
    """Send the message on to ``next_hop``, a directly connected node (§6.1.2)."""

    next_hop: NodeId


@dataclass(frozen=True, slots=True)
class Drop:
    """Drop the message; §6.1.1 says silently when the Node-ID is in our range but unknown."""

    reason: str


RouteDecision = Deliver | Forward | Drop


def next_hop(
    node_id: NodeId, k: NodeId, routing_table: Iterable[NodeId], connected: Collection[NodeId]
) -> NodeId | None:
    """§10.3: where a peer that is not responsible for ``k`` sends a message for it.

    A directly connected node with Node-ID ``k``; otherwise the Routing Table peer with the
    largest Node-ID in the interval (self, k]; otherwise the one with the smallest Node-ID
    greater than ``k``. "Largest" and "smallest" are in ring order from self: the peer
    closest before ``k``, else the first after it. ``None`` if the table is empty.
    """
    if k in connected and k != node_id:
        return k
    best_before: NodeId | None = None
    best_before_d = 0
    best_after: NodeId | None = None
    best_after_d = 0
    for peer in routing_table:
        if peer == node_id:
            continue
        if peer.in_interval(node_id, k):
            d = peer.distance(k)
            if best_before is None or d < best_before_d:
                best_before, best_before_d = peer, d
        else:
            d = k.distance(peer)
            if best_after is None or d < best_after_d:
                best_after, best_after_d = peer, d
    return best_before if best_before is not None else best_after


def route(
    node_id: NodeId,
    destination: NodeId,
    *,
    resource: bool,
    is_responsible: Callable[[NodeId], bool],
    routing_table: Iterable[NodeId],
    connected: Collection[NodeId],
) -> RouteDecision:
    """§6.1/§6.1.1/§10.3 for the first Destination List entry.

    ``resource`` tells a Resource-ID from a Node-ID (the Destination's type on the wire).
    The wildcard Node-ID (all ones) is always consumed here. A Node-ID in this peer's range
    other than its own is forwarded only to a directly connected node (a client, or a
    joining node attached to its responsible peer), else dropped silently.
    """
    if not resource and (destination == node_id or destination.value == (1 << destination.bits) - 1):
        return Deliver()
    if is_responsible(destination):
        if resource:
            return Deliver()
        if destination in connected:
            return Forward(destination)
        return Drop("Node-ID in this peer's range is not connected (RFC 6940 §6.1.1)")
    hop = next_hop(node_id, destination, routing_table, connected)
    if hop is None:
        return Drop("empty Routing Table (RFC 6940 §10.3)")
    return Forward(hop)

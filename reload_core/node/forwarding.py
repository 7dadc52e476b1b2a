"""What to do with a message that arrived, or that this node is about to send (RFC 6940
§6.1, §6.1.1, §6.1.2, §6.1.3, §6.2.2, §6.3.2), as a pure function.

:func:`decide` looks at the forwarding header only (intermediate peers do not verify
signatures and may hold just a fragment, §6.1) and returns one of:

- :class:`Deliver`: the message is for this node (its own Node-ID as the last entry, the
  wildcard Node-ID, or a Resource-ID it is responsible for as the only entry);
- :class:`Forward`: send it on to ``next_hop``, a directly connected node, with the
  rewritten header (TTL decremented, the previous hop appended to the Via List, this
  node's own leading entries removed from the Destination List);
- :class:`Drop`: discard it silently, where §6.1.1 says so (a Node-ID in this node's range
  that is not connected, a Resource-ID that is not the last entry) or when there is no
  route, or a client is asked to route;
- :class:`Reject`: discard it and answer with ``error_code`` (TTL too large or exhausted,
  an unknown FORWARD_CRITICAL option, a malformed list).

The node's view of the overlay comes in through :class:`RoutingView`: its Connection
Table, its responsible range and the Topology Plug-in's next hop (§10.3).
:func:`response_destinations` builds a response's Destination List (§6.1.2, §6.2.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from reload_core.wire.buffer import DecodeError
from reload_core.wire.codes import ErrorCode, ForwardingFlag
from reload_core.wire.message import (
    Destination,
    ForwardingHeader,
    ForwardingOption,
    NodeDestination,
    ResourceDestination,
    check_forwarding_options,
)


class RoutingView(Protocol):
    """The node's state that routing reads (§6.1, §10.3)."""

    @property
    def node_id(self) -> bytes: ...

    @property
    def routes(self) -> bool:
        """Whether this node routes others' messages: a peer does, a client does not (§4.2)."""
        ...

    def is_connected(self, node_id: bytes) -> bool:
        """Whether ``node_id`` is in the Connection Table (an open link)."""
        ...

    def is_responsible(self, id_: bytes) -> bool:
        """Whether ``id_`` lies in this node's range (§6.1.1; §10.1 for CHORD-RELOAD)."""
        ...

    def next_hop(self, id_: bytes, *, resource: bool) -> bytes | None:
        """The connected node the Topology Plug-in routes ``id_`` to (§10.3), or None."""
        ...


@dataclass(frozen=True, slots=True)
class Deliver:
    """Pass the message to the upper layers of this node."""


@dataclass(frozen=True, slots=True)
class Forward:
    """Send the message to ``next_hop`` with ``header``."""

    next_hop: bytes
    header: ForwardingHeader


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str


@dataclass(frozen=True, slots=True)
class Reject:
    error_code: ErrorCode
    reason: str


Decision = Deliver | Forward | Drop | Reject


def is_wildcard(node_id: bytes) -> bool:
    """The wildcard Node-ID is all ones (§6.1.1)."""
    return bool(node_id) and node_id == b"\xff" * len(node_id)


def decide(
    header: ForwardingHeader,
    view: RoutingView,
    *,
    previous_hop: bytes | None,
    initial_ttl: int,
    understood_options: frozenset[int] = frozenset(),
) -> Decision:
    """§6.1 for one message. ``previous_hop`` is the Node-ID of the link it came in on, or
    None for a message this node originates (no TTL decrement, no Via List entry)."""
    if header.ttl > initial_ttl:
        # §6.3.2: "MUST discard the message and send an Error_TTL_Exceeded error".
        return Reject(ErrorCode.Error_TTL_Exceeded, f"TTL {header.ttl} exceeds initial-ttl {initial_ttl}")
    if any(isinstance(d, ResourceDestination) for d in header.via_list):
        return Reject(ErrorCode.Error_Invalid_Message, "a Resource-ID in the Via List (§6.3.2.2)")
    dests = list(header.destination_list)
    if not dests:
        return Reject(ErrorCode.Error_Invalid_Message, "empty Destination List")
    own = view.node_id
    while True:
        first = dests[0]
        if isinstance(first, NodeDestination):
            target = first.node_id
            if target == own:
                if len(dests) == 1:
                    return Deliver()
                dests.pop(0)  # §6.1.1: remove the entry and route on the next one
                continue
            if is_wildcard(target):
                return Deliver()  # §6.1.1: consumed locally, never forwarded
            if view.is_connected(target):
                hop: bytes | None = target  # §6.1.2: a Connection Table entry goes direct
            elif view.is_responsible(target):
                return Drop("Node-ID in this node's range is not connected (§6.1.1)")
            else:
                hop = view.next_hop(target, resource=False)
        elif isinstance(first, ResourceDestination):
            if view.is_responsible(first.resource_id):
                if len(dests) != 1:
                    return Drop("a Resource-ID this node is responsible for is not the last entry (§6.1.1)")
                return Deliver()
            hop = view.next_hop(first.resource_id, resource=True)
        else:
            # This node never compresses lists (§6.1.3), so no opaque ID is one of ours;
            # an unknown DestinationType cannot be routed either.
            return Drop(f"cannot route a {type(first).__name__} (§6.1.3, §6.3.2.2)")
        break
    if previous_hop is not None and not view.routes:
        return Drop("a client does not route messages for other nodes (§4.2)")
    if hop is None:
        return Drop("no route (empty Routing Table)")
    if previous_hop is not None:
        if header.ttl == 0:
            return Reject(ErrorCode.Error_TTL_Exceeded, "TTL exhausted (§6.3.2)")
        try:
            check_forwarding_options(header.options, forwarding=True, understood=understood_options)
        except DecodeError as exc:
            return Reject(exc.error_code, exc.reason)
        header = header.rerouted(
            header.ttl - 1, (*header.via_list, NodeDestination(previous_hop)), tuple(dests)
        )
    elif len(dests) != len(header.destination_list):  # own entries were removed from the front
        header = header.rerouted(header.ttl, header.via_list, tuple(dests))
    return Forward(hop, header)


def response_destinations(request: ForwardingHeader, previous_hop: bytes | None) -> tuple[Destination, ...]:
    """A response's Destination List: the previous hop, then the request's Via List reversed
    (§6.1.2: "equal to the concatenation of the Node-ID of the node from which the request
    was received with the Via List"; §6.2.2: symmetric routing). A request this node sent
    itself has neither, and its response stays here."""
    dests: list[Destination] = [] if previous_hop is None else [NodeDestination(previous_hop)]
    dests += reversed(request.via_list)
    return tuple(dests)


def response_options(request_options: Sequence[ForwardingOption]) -> tuple[ForwardingOption, ...]:
    """§6.3.2.3: options flagged RESPONSE_COPY go into the response with all three flags
    cleared; the flags "MUST NOT be set in a response"."""
    keep = (
        ForwardingFlag.FORWARD_CRITICAL | ForwardingFlag.DESTINATION_CRITICAL | ForwardingFlag.RESPONSE_COPY
    )
    return tuple(replace(o, flags=o.flags & ~keep) for o in request_options if o.response_copy)


def originator(header: ForwardingHeader, previous_hop: bytes | None) -> bytes | None:
    """Who sent the message, as far as the header tells: the first Via List entry, else the
    previous hop (None for this node's own messages). Transaction IDs are only unique per
    sender, so this goes into every key built from one."""
    if header.via_list:
        first = header.via_list[0]
        if isinstance(first, NodeDestination):
            return first.node_id
    return previous_hop


__all__ = [
    "Decision",
    "Deliver",
    "Drop",
    "Forward",
    "Reject",
    "RoutingView",
    "decide",
    "is_wildcard",
    "originator",
    "response_destinations",
    "response_options",
]

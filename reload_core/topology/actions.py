"""What :class:`~reload_core.topology.chord.ChordTopology` asks its caller to do (RFC 6940 §10).

Frozen dataclasses in the style of h11/aioquic events. Requests to send carry everything
the message body needs (Node-IDs as :class:`~reload_core.ids.NodeId`); the caller builds
the wire structures (``ChordUpdate``, ``ChordLeaveData``, ``JoinReq`` ...), sends them and
reports each outcome back through the topology's ``on_*`` methods. The ``*Changed``,
``Join*`` and ``Disconnected`` items are notices for the node and storage layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from reload_core.ids import NodeId
from reload_core.wire.chord import ChordLeaveType as ChordLeaveType
from reload_core.wire.chord import ChordUpdateType as ChordUpdateType
from reload_core.wire.codes import ErrorCode

# -- messages to send -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendUpdate:
    """Send an UpdateReq carrying a ChordUpdate (§6.4.2.3, §10.7) to ``to``.

    ``predecessors``/``successors`` are empty for ``peer_ready``; ``fingers`` (numerically
    ascending) is non-empty only for ``full``. If the request fails, call ``on_peer_failed``.
    """

    to: NodeId
    type: ChordUpdateType
    uptime: int
    predecessors: tuple[NodeId, ...] = ()
    successors: tuple[NodeId, ...] = ()
    fingers: tuple[NodeId, ...] = ()


@dataclass(frozen=True, slots=True)
class AttachTo:
    """Send an AttachReq (§6.5.1) and form a connection with whoever answers.

    ``dest`` is a Resource-ID when ``resource`` (the responsible peer answers: §10.5 steps 2
    and the fingers), else a Node-ID. ``via`` is a source route to put before it: §10.6
    routes an Attach for a new neighbour through the peer that named it; empty means route
    conventionally. ``send_update`` is the AttachReqAns flag (§6.4.2.3). Report the outcome
    with ``on_attach_succeeded(dest, resource, peer)`` or ``on_attach_failed(dest, resource)``.
    """

    dest: NodeId
    resource: bool
    via: tuple[NodeId, ...] = ()
    send_update: bool = False


@dataclass(frozen=True, slots=True)
class SendPing:
    """Send a PingReq to Resource-ID ``dest`` to find who is responsible (§10.7.4.2).

    Report with ``on_ping_answer(dest, responder)`` or ``on_ping_failed(dest)``.
    """

    dest: NodeId


@dataclass(frozen=True, slots=True)
class ProbePartition:
    """§10.7.4.4: locate a bootstrap node B as when joining, Ping Resource-ID ``target``
    (this peer's Node-ID + 1) routed through B and report the answering peer with
    ``on_partition_probe_answer(bootstrap, responder)``.

    The RFC says "a Ping for its own Node-ID" whose answer should come from P's successor;
    the peer that answers for P + 1 is that successor, so P + 1 is what is pinged.
    """

    target: NodeId


@dataclass(frozen=True, slots=True)
class SendJoin:
    """Send a JoinReq (§6.4.2.1) for our Node-ID to the admitting peer ``to`` (§10.5 step 5).

    Report the JoinAns or error with ``on_join_answer(to, ok)``.
    """

    to: NodeId


@dataclass(frozen=True, slots=True)
class AcceptJoin:
    """Answer the JoinReq of ``joining`` with a JoinAns (§10.5 step 5)."""

    joining: NodeId


@dataclass(frozen=True, slots=True)
class RejectJoin:
    """Answer the JoinReq of ``joining`` with an error response."""

    joining: NodeId
    error_code: ErrorCode
    reason: str


@dataclass(frozen=True, slots=True)
class SendLeave:
    """Send a LeaveReq whose ``overlay_specific_data`` is ChordLeaveData (§10.9).

    ``node_ids`` is our predecessor list for ``from_pred`` (sent to a successor) and our
    successor list for ``from_succ`` (sent to a predecessor).
    """

    to: NodeId
    type: ChordLeaveType
    node_ids: tuple[NodeId, ...]


@dataclass(frozen=True, slots=True)
class AnswerRouteQuery:
    """Answer a RouteQueryReq with ChordRouteQueryAns ``next_peer`` (§10.8); ``None``: no route."""

    to: NodeId
    next_peer: NodeId | None


@dataclass(frozen=True, slots=True)
class DropConnection:
    """Close the connection to ``node``; the topology has already forgotten it."""

    node: NodeId


# -- storage work -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandOverData:
    """Store the data with Resource-IDs in (start, end] on ``to``, now responsible for them.

    During a join (§10.5 step 6) call ``on_handover_done(to)`` when the Stores are done: the
    Update labelling ``to`` as our predecessor (step 7) waits for it. Otherwise (a
    predecessor we learnt of by Update, §6.4.2.3) no answer is expected.
    """

    to: NodeId
    start: NodeId
    end: NodeId


@dataclass(frozen=True, slots=True)
class Replicate:
    """Store replicas of the data in (start, end] (ours) on each of ``to`` (§10.4, §10.7.3)."""

    to: tuple[NodeId, ...]
    start: NodeId
    end: NodeId


# -- notices ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopologyChanged:
    """The Neighbor or Finger Table changed; the new contents."""

    predecessors: tuple[NodeId, ...]
    successors: tuple[NodeId, ...]
    fingers: tuple[NodeId, ...]


@dataclass(frozen=True, slots=True)
class ResponsibilityChanged:
    """This peer is now responsible for (start, end] and keeps replicas down to replica_start.

    ``start == end`` means the whole ring. Data outside (replica_start, end] may be deleted
    (§10.7.3); ``replica_start == end`` means keep everything.
    """

    start: NodeId
    end: NodeId
    replica_start: NodeId


@dataclass(frozen=True, slots=True)
class JoinCompleted:
    """§10.5 step 7 reached: this peer is part of the ring."""

    admitting_peer: NodeId


@dataclass(frozen=True, slots=True)
class JoinFailed:
    """The join gave up; the caller may try another bootstrap node later."""

    reason: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Every Routing Table peer is gone (§10.7.1): the peer acts as alone and will look for
    the overlay through the partition check it asks for at the same time."""


Action = (
    SendUpdate
    | AttachTo
    | SendPing
    | ProbePartition
    | SendJoin
    | AcceptJoin
    | RejectJoin
    | SendLeave
    | AnswerRouteQuery
    | DropConnection
    | HandOverData
    | Replicate
    | TopologyChanged
    | ResponsibilityChanged
    | JoinCompleted
    | JoinFailed
    | Disconnected
)

"""CHORD-RELOAD's overlay-specific structures (RFC 6940 §10.7, §10.8, §10.9).

The base protocol leaves the UpdateReq and RouteQueryAns bodies and the
``overlay_specific_data`` of Join/Leave/RouteQuery to the Topology Plug-in (§6.4.2).
CHORD-RELOAD puts on the wire: :class:`ChordUpdate` as the whole UpdateReq body (§10.7),
:class:`ChordRouteQueryAns` as the whole RouteQueryAns body (§10.8) and
:class:`ChordLeaveData` inside LeaveReq's ``overlay_specific_data`` (§10.9). Its
JoinReq, JoinAns and RouteQueryReq carry no overlay-specific data (§10.5, §10.8).

Node-IDs are ``bytes`` of NodeIdLength (§6.3.1.1: ``typedef opaque NodeId[NodeIdLength]``,
16..20 bytes, no length prefix); decoders take the length from the :class:`WireContext`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Self

from reload_core.wire.buffer import DecodeError, EncodeError, Reader, Writer
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext

MIN_NODE_ID_LENGTH = 16
MAX_NODE_ID_LENGTH = 20
"""NodeIdLength is set per overlay within 16..20 bytes (§6.3.1.1)."""


# ---------------------------------------------------------------- NodeId helpers (§6.3.1.1)


def push_node_id(w: Writer, node_id: bytes, field: str) -> None:
    """``NodeId`` is a fixed-length array: its bytes only, no length prefix (§6.3.1.1)."""
    if not MIN_NODE_ID_LENGTH <= len(node_id) <= MAX_NODE_ID_LENGTH:
        raise EncodeError(f"{field}: a NodeId has 16..20 bytes, got {len(node_id)}")
    w.push_bytes(node_id)


def pull_node_id(r: Reader, ctx: WireContext, field: str) -> bytes:
    return r.pull_bytes(ctx.node_id_length, field)


def push_node_id_list(w: Writer, node_ids: Sequence[bytes], field: str) -> None:
    """``NodeId name<0..2^16-1>``: a 2-byte length in bytes, then the Node-IDs back to back."""
    if len({len(n) for n in node_ids}) > 1:
        raise EncodeError(f"{field}: Node-IDs of one overlay all have the same length")
    with w.vector(2, field):
        for n in node_ids:
            push_node_id(w, n, field)


def pull_node_id_list(r: Reader, ctx: WireContext, field: str) -> tuple[bytes, ...]:
    at = r.offset
    sub = r.pull_vector(2, field)
    if sub.remaining() % ctx.node_id_length:
        raise DecodeError(
            f"{sub.remaining()} bytes is not a whole number of {ctx.node_id_length}-byte Node-IDs",
            field=field + ".length",
            offset=at,
        )
    items: list[bytes] = []
    while not sub.eof():
        items.append(sub.pull_bytes(ctx.node_id_length, field))
    return tuple(items)


# ---------------------------------------------------------------- §10.7 Updates


class ChordUpdateType(IntEnum):
    """§10.7."""

    invalidChordUpdateType = 0
    peer_ready = 1
    neighbors = 2
    full = 3


@dataclass(frozen=True, slots=True)
class ChordUpdate:
    """§10.7: the UpdateReq body of CHORD-RELOAD.

    ``uptime`` is in seconds. The ``select (type)`` carries nothing for ``peer_ready``,
    ``predecessors`` and ``successors`` for ``neighbors``, and also ``fingers`` (in
    numerically ascending order) for ``full``; members the type does not carry must
    stay empty. The select is not extensible, so an unknown type is a parsing error
    and the message is dropped (§6.3.1.1).
    """

    uptime: int
    type: ChordUpdateType
    predecessors: tuple[bytes, ...] = ()
    successors: tuple[bytes, ...] = ()
    fingers: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.type == ChordUpdateType.peer_ready:
            if self.predecessors or self.successors or self.fingers:
                raise EncodeError("ChordUpdate: peer_ready carries no Node-IDs")
        elif self.type == ChordUpdateType.neighbors:
            if self.fingers:
                raise EncodeError("ChordUpdate: neighbors carries no fingers")
        elif self.type != ChordUpdateType.full:
            raise EncodeError(f"ChordUpdate: type {self.type!r} has no defined contents")

    def encode(self, w: Writer) -> None:
        w.push_uint32(self.uptime, "ChordUpdate.uptime")
        w.push_uint8(self.type, "ChordUpdate.type")
        if self.type == ChordUpdateType.peer_ready:
            return
        push_node_id_list(w, self.predecessors, "ChordUpdate.predecessors")
        push_node_id_list(w, self.successors, "ChordUpdate.successors")
        if self.type == ChordUpdateType.full:
            push_node_id_list(w, self.fingers, "ChordUpdate.fingers")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        uptime = r.pull_uint32("ChordUpdate.uptime")
        at = r.offset
        t = r.pull_uint8("ChordUpdate.type")
        if t == ChordUpdateType.peer_ready:
            return cls(uptime, ChordUpdateType.peer_ready)
        if t not in (ChordUpdateType.neighbors, ChordUpdateType.full):
            raise DecodeError(f"unknown ChordUpdateType {t}", field="ChordUpdate.type", offset=at, drop=True)
        predecessors = pull_node_id_list(r, ctx, "ChordUpdate.predecessors")
        successors = pull_node_id_list(r, ctx, "ChordUpdate.successors")
        if t == ChordUpdateType.neighbors:
            return cls(uptime, ChordUpdateType.neighbors, predecessors, successors)
        fingers = pull_node_id_list(r, ctx, "ChordUpdate.fingers")
        return cls(uptime, ChordUpdateType.full, predecessors, successors, fingers)


# ---------------------------------------------------------------- §10.8 Route Query


@dataclass(frozen=True, slots=True)
class ChordRouteQueryAns:
    """§10.8: the RouteQueryAns body of CHORD-RELOAD, the Node-ID of the peer the
    responder would route the queried destination to next."""

    next_peer: bytes

    def encode(self, w: Writer) -> None:
        push_node_id(w, self.next_peer, "ChordRouteQueryAns.next_peer")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        return cls(pull_node_id(r, ctx, "ChordRouteQueryAns.next_peer"))


# ---------------------------------------------------------------- §10.9 Leaving


class ChordLeaveType(IntEnum):
    """§10.9: whether the leaving peer is the recipient's successor or predecessor."""

    invalidChordLeaveType = 0
    from_succ = 1
    from_pred = 2


@dataclass(frozen=True, slots=True)
class ChordLeaveData:
    """§10.9: the ``overlay_specific_data`` of a CHORD-RELOAD LeaveReq.

    ``from_succ`` carries the sender's ``successors``, ``from_pred`` its
    ``predecessors``; the other member stays empty. An unknown type is a parsing
    error and the message is dropped (§6.3.1.1).
    """

    type: ChordLeaveType
    successors: tuple[bytes, ...] = ()
    predecessors: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.type == ChordLeaveType.from_succ:
            if self.predecessors:
                raise EncodeError("ChordLeaveData: from_succ carries successors only")
        elif self.type == ChordLeaveType.from_pred:
            if self.successors:
                raise EncodeError("ChordLeaveData: from_pred carries predecessors only")
        else:
            raise EncodeError(f"ChordLeaveData: type {self.type!r} has no defined contents")

    def encode(self, w: Writer) -> None:
        w.push_uint8(self.type, "ChordLeaveData.type")
        if self.type == ChordLeaveType.from_succ:
            push_node_id_list(w, self.successors, "ChordLeaveData.successors")
        else:
            push_node_id_list(w, self.predecessors, "ChordLeaveData.predecessors")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        at = r.offset
        t = r.pull_uint8("ChordLeaveData.type")
        if t == ChordLeaveType.from_succ:
            return cls(
                ChordLeaveType.from_succ, successors=pull_node_id_list(r, ctx, "ChordLeaveData.successors")
            )
        if t == ChordLeaveType.from_pred:
            return cls(
                ChordLeaveType.from_pred,
                predecessors=pull_node_id_list(r, ctx, "ChordLeaveData.predecessors"),
            )
        raise DecodeError(f"unknown ChordLeaveType {t}", field="ChordLeaveData.type", offset=at, drop=True)

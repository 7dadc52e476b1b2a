"""Method bodies for use by Topology Plug-ins (RFC 6940 §6.4.2), with CHORD-RELOAD's (§10).

Join, Leave and RouteQuery requests carry a generic ``overlay_specific_data`` opaque
field, kept here as ``bytes``; CHORD-RELOAD leaves it empty except in LeaveReq, where it
is a :class:`~reload_core.wire.chord.ChordLeaveData` (see :meth:`LeaveReq.chord_leave_data`).
The UpdateReq and RouteQueryAns bodies are "completely overlay specific" (§6.4.2.3,
§6.4.2.4.2): for those codes the registry holds CHORD-RELOAD's structures,
:class:`~reload_core.wire.chord.ChordUpdate` (§10.7) and
:class:`~reload_core.wire.chord.ChordRouteQueryAns` (§10.8), also named
:data:`UpdateReq` and :data:`RouteQueryAns` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self, TypeAlias

from reload_core.wire.buffer import DecodeError, EncodeError, Reader, Writer
from reload_core.wire.chord import (
    ChordLeaveData,
    ChordRouteQueryAns,
    ChordUpdate,
    pull_node_id,
    push_node_id,
)
from reload_core.wire.codes import MessageCode, ProbeInformationType
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.message import Destination, decode_destination, enum_or_int
from reload_core.wire.registry import body, decode_struct, encode_struct

# ---------------------------------------------------------------- §6.4.2.1 Join


@body(MessageCode.join_req)
@dataclass(frozen=True, slots=True)
class JoinReq:
    """§6.4.2.1. The receiver checks ``joining_peer_id`` against the signer's Node-ID.
    CHORD-RELOAD defines no ``overlay_specific_data`` for Join (§10.5)."""

    joining_peer_id: bytes
    overlay_specific_data: bytes = b""

    def encode(self, w: Writer) -> None:
        push_node_id(w, self.joining_peer_id, "JoinReq.joining_peer_id")
        w.push_opaque(self.overlay_specific_data, 2, "JoinReq.overlay_specific_data")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        peer = pull_node_id(r, ctx, "JoinReq.joining_peer_id")
        return cls(peer, r.pull_opaque(2, "JoinReq.overlay_specific_data"))


@body(MessageCode.join_ans)
@dataclass(frozen=True, slots=True)
class JoinAns:
    """§6.4.2.1 (empty ``overlay_specific_data`` in CHORD-RELOAD)."""

    overlay_specific_data: bytes = b""

    def encode(self, w: Writer) -> None:
        w.push_opaque(self.overlay_specific_data, 2, "JoinAns.overlay_specific_data")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        return cls(r.pull_opaque(2, "JoinAns.overlay_specific_data"))


# ---------------------------------------------------------------- §6.4.2.2 Leave


@body(MessageCode.leave_req)
@dataclass(frozen=True, slots=True)
class LeaveReq:
    """§6.4.2.2. In CHORD-RELOAD ``overlay_specific_data`` MUST hold a ChordLeaveData (§10.9):
    build one with :meth:`chord` and read it back with :meth:`chord_leave_data`."""

    leaving_peer_id: bytes
    overlay_specific_data: bytes = b""

    @classmethod
    def chord(cls, leaving_peer_id: bytes, leave_data: ChordLeaveData) -> Self:
        return cls(leaving_peer_id, encode_struct(leave_data))

    def chord_leave_data(self, ctx: WireContext = DEFAULT_CONTEXT) -> ChordLeaveData:
        """Decode ``overlay_specific_data`` as ChordLeaveData; raises DecodeError if it is not one."""
        return decode_struct(ChordLeaveData, self.overlay_specific_data, ctx)

    def encode(self, w: Writer) -> None:
        push_node_id(w, self.leaving_peer_id, "LeaveReq.leaving_peer_id")
        w.push_opaque(self.overlay_specific_data, 2, "LeaveReq.overlay_specific_data")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        peer = pull_node_id(r, ctx, "LeaveReq.leaving_peer_id")
        return cls(peer, r.pull_opaque(2, "LeaveReq.overlay_specific_data"))


@body(MessageCode.leave_ans)
@dataclass(frozen=True, slots=True)
class LeaveAns:
    """§6.4.2.2: "LeaveAns is an empty message" (a zero-length body)."""

    def encode(self, w: Writer) -> None:
        pass

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        return cls()


# ---------------------------------------------------------------- §6.4.2.3 Update

UpdateReq: TypeAlias = ChordUpdate
"""§6.4.2.3: the UpdateReq body is overlay specific; CHORD-RELOAD's is ChordUpdate (§10.7)."""
body(MessageCode.update_req)(ChordUpdate)


@body(MessageCode.update_ans)
@dataclass(frozen=True, slots=True)
class UpdateAns:
    """§6.4.2.3: "either success or an error"; CHORD-RELOAD defines no contents, so a
    successful UpdateAns has a zero-length body."""

    def encode(self, w: Writer) -> None:
        pass

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        return cls()


# ---------------------------------------------------------------- §6.4.2.4 RouteQuery


@body(MessageCode.route_query_req)
@dataclass(frozen=True, slots=True)
class RouteQueryReq:
    """§6.4.2.4.1. ``destination`` is any Destination of §6.3.2.2. CHORD-RELOAD's
    RouteQueryReq "contains no additional information" (§10.8): empty
    ``overlay_specific_data``."""

    send_update: bool
    destination: Destination
    overlay_specific_data: bytes = b""

    def encode(self, w: Writer) -> None:
        w.push_boolean(self.send_update)
        self.destination.encode(w)
        w.push_opaque(self.overlay_specific_data, 2, "RouteQueryReq.overlay_specific_data")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        send_update = r.pull_boolean("RouteQueryReq.send_update")
        destination = decode_destination(r, ctx)
        return cls(send_update, destination, r.pull_opaque(2, "RouteQueryReq.overlay_specific_data"))


RouteQueryAns: TypeAlias = ChordRouteQueryAns
"""§6.4.2.4.2: the RouteQueryAns body is overlay specific; CHORD-RELOAD's is ChordRouteQueryAns (§10.8)."""
body(MessageCode.route_query_ans)(ChordRouteQueryAns)


# ---------------------------------------------------------------- §6.4.2.5 Probe

PROBE_VALUE_LENGTH = 4
"""Every ProbeInformationData defined so far is one uint32 (§6.4.2.5.2)."""

_KNOWN_PROBE_TYPES = (
    ProbeInformationType.responsible_set,
    ProbeInformationType.num_resources,
    ProbeInformationType.uptime,
)


@body(MessageCode.probe_req)
@dataclass(frozen=True, slots=True)
class ProbeReq:
    """§6.4.2.5.1: ``ProbeInformationType requested_info<0..2^8-1>``, one byte each.

    Types this node does not know stay ints: the responder just leaves them out of its
    answer (§6.4.2.5.2)."""

    requested_info: tuple[ProbeInformationType | int, ...] = ()

    def encode(self, w: Writer) -> None:
        with w.vector(1, "ProbeReq.requested_info"):
            for t in self.requested_info:
                w.push_uint8(t, "ProbeReq.requested_info")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        sub = r.pull_vector(1, "ProbeReq.requested_info")
        items: list[ProbeInformationType | int] = []
        while not sub.eof():
            items.append(enum_or_int(ProbeInformationType, sub.pull_uint8("ProbeReq.requested_info")))
        return cls(tuple(items))


def _push_probe_uint32(w: Writer, t: ProbeInformationType, value: int, field: str) -> None:
    w.push_uint8(t, "ProbeInformation.type")
    w.push_uint8(PROBE_VALUE_LENGTH, "ProbeInformation.length")
    w.push_uint32(value, field)


@dataclass(frozen=True, slots=True)
class ResponsibleSetInformation:
    """``case responsible_set: uint32 responsible_ppb`` (§6.4.2.5.2): the fraction of the
    overlay the responder is responsible for, in parts per billion."""

    responsible_ppb: int

    @property
    def type(self) -> ProbeInformationType:
        return ProbeInformationType.responsible_set

    def encode(self, w: Writer) -> None:
        _push_probe_uint32(w, self.type, self.responsible_ppb, "ProbeInformation.responsible_ppb")


@dataclass(frozen=True, slots=True)
class NumResourcesInformation:
    """``case num_resources: uint32 num_resources`` (§6.4.2.5.2): resources stored, each
    Resource-ID counted once."""

    num_resources: int

    @property
    def type(self) -> ProbeInformationType:
        return ProbeInformationType.num_resources

    def encode(self, w: Writer) -> None:
        _push_probe_uint32(w, self.type, self.num_resources, "ProbeInformation.num_resources")


@dataclass(frozen=True, slots=True)
class UptimeInformation:
    """``case uptime: uint32 uptime`` (§6.4.2.5.2): seconds the responder has been up."""

    uptime: int

    @property
    def type(self) -> ProbeInformationType:
        return ProbeInformationType.uptime

    def encode(self, w: Writer) -> None:
        _push_probe_uint32(w, self.type, self.uptime, "ProbeInformation.uptime")


@dataclass(frozen=True, slots=True)
class UnknownProbeInformation:
    """A ProbeInformation of a type without a defined value here (e.g. ``exp_probe``),
    kept whole: its ``length`` lets it be skipped (§6.4.2.5.2 "allows for unknown option
    types")."""

    type: ProbeInformationType | int
    value: bytes

    def __post_init__(self) -> None:
        if self.type in _KNOWN_PROBE_TYPES or self.type == ProbeInformationType.invalidProbeOption:
            raise EncodeError(f"UnknownProbeInformation cannot have type {self.type!r}")

    def encode(self, w: Writer) -> None:
        w.push_uint8(self.type, "ProbeInformation.type")
        w.push_opaque(self.value, 1, "ProbeInformation.value")


ProbeInformation = (
    ResponsibleSetInformation | NumResourcesInformation | UptimeInformation | UnknownProbeInformation
)
"""``struct { ProbeInformationType type; uint8 length; ProbeInformationData value; }``
(§6.4.2.5.2), one class per ``select`` case."""


def decode_probe_information(r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> ProbeInformation:
    at = r.offset
    t = r.pull_uint8("ProbeInformation.type")
    length = r.pull_uint8("ProbeInformation.length")
    sub = r.sub_reader(length, "ProbeInformation.value")
    if t == ProbeInformationType.invalidProbeOption:
        raise DecodeError("invalid ProbeInformationType 0", field="ProbeInformation.type", offset=at)
    if t not in _KNOWN_PROBE_TYPES:
        return UnknownProbeInformation(
            enum_or_int(ProbeInformationType, t), sub.pull_bytes(length, "ProbeInformation.value")
        )
    if length != PROBE_VALUE_LENGTH:
        raise DecodeError(
            f"length {length}, a {ProbeInformationType(t).name} value is a 4-byte uint32",
            field="ProbeInformation.length",
            offset=at + 1,
        )
    if t == ProbeInformationType.responsible_set:
        return ResponsibleSetInformation(sub.pull_uint32("ProbeInformation.responsible_ppb"))
    if t == ProbeInformationType.num_resources:
        return NumResourcesInformation(sub.pull_uint32("ProbeInformation.num_resources"))
    return UptimeInformation(sub.pull_uint32("ProbeInformation.uptime"))


@body(MessageCode.probe_ans)
@dataclass(frozen=True, slots=True)
class ProbeAns:
    """§6.4.2.5.2: ``ProbeInformation probe_info<0..2^16-1>``, in the requested order."""

    probe_info: tuple[ProbeInformation, ...] = ()

    def encode(self, w: Writer) -> None:
        with w.vector(2, "ProbeAns.probe_info"):
            for info in self.probe_info:
                info.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        sub = r.pull_vector(2, "ProbeAns.probe_info")
        items: list[ProbeInformation] = []
        while not sub.eof():
            items.append(decode_probe_information(sub, ctx))
        return cls(tuple(items))

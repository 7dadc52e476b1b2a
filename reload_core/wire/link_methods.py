"""Method bodies of the forwarding and link management layer (RFC 6940 §6.5):
Attach (§6.5.1), AppAttach (§6.5.2), Ping (§6.5.3) and ConfigUpdate (§6.5.4).

ICE parameters (ufrag, password, role, foundation, extension names and values) are
``opaque`` on the wire and stay ``bytes`` here. Candidate lists keep candidates whose
address type we do not know as :class:`UnknownIceCandidate` entries, so that a message
re-encodes byte for byte and its other candidates stay usable (§6.3.1.1, §6.5.1.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Self

from reload_core.wire.addresses import IpAddressPort, UnknownAddressTypeError, skip_ip_address_port
from reload_core.wire.buffer import DecodeError, EncodeError, Reader, Writer
from reload_core.wire.codes import ApplicationId, MessageCode, OverlayLinkType
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.message import enum_or_int
from reload_core.wire.registry import body

# ---------------------------------------------------------------- §6.5.1.1 Attach


class CandType(IntEnum):
    """§6.5.1.1. Value 3 is RESERVED (it was prflx) and is not a valid type."""

    invalidCandType = 0
    host = 1
    srflx = 2
    relay = 4


_CANDIDATE_TYPES_WITH_RELATED_ADDRESS = (CandType.srflx, CandType.relay)


@dataclass(frozen=True, slots=True)
class IceExtension:
    """§6.5.1.1: binary translation of an ICE candidate extension (name and value)."""

    name: bytes
    value: bytes

    def encode(self, w: Writer) -> None:
        w.push_opaque(self.name, 2, "IceExtension.name")
        w.push_opaque(self.value, 2, "IceExtension.value")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        name = r.pull_opaque(2, "IceExtension.name")
        return cls(name, r.pull_opaque(2, "IceExtension.value"))


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """§6.5.1.1: one ICE candidate (component ID is always 1 and not carried).

    ``rel_addr_port`` is present exactly for ``srflx`` and ``relay`` candidates (the
    ``select (type)``); it is ``None`` for ``host``. The select is not extensible, so an
    unknown CandType, including the reserved 3, is a parsing error and the message is
    dropped (§6.3.1.1). ``overlay_link`` is an IANA registry (§14.10): unknown values
    are kept as ints (an Attach skips such candidates); so are extensions, which ICE
    ignores when it does not know them. A candidate with an address of an AddressType we
    do not know decodes, in a candidate list, as an :class:`UnknownIceCandidate`.
    """

    addr_port: IpAddressPort
    overlay_link: OverlayLinkType | int
    foundation: bytes
    priority: int
    type: CandType
    rel_addr_port: IpAddressPort | None = None
    extensions: tuple[IceExtension, ...] = ()

    def __post_init__(self) -> None:
        if self.type == CandType.host:
            if self.rel_addr_port is not None:
                raise EncodeError("IceCandidate: a host candidate has no rel_addr_port")
        elif self.type in _CANDIDATE_TYPES_WITH_RELATED_ADDRESS:
            if self.rel_addr_port is None:
                raise EncodeError(f"IceCandidate: a {self.type.name} candidate needs rel_addr_port")
        else:
            raise EncodeError(f"IceCandidate: invalid CandType {self.type!r}")

    def encode(self, w: Writer) -> None:
        self.addr_port.encode(w)
        w.push_uint8(self.overlay_link, "IceCandidate.overlay_link")
        w.push_opaque(self.foundation, 1, "IceCandidate.foundation")
        w.push_uint32(self.priority, "IceCandidate.priority")
        w.push_uint8(self.type, "IceCandidate.type")
        if self.rel_addr_port is not None:
            self.rel_addr_port.encode(w)
        with w.vector(2, "IceCandidate.extensions"):
            for e in self.extensions:
                e.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        addr_port = IpAddressPort.decode(r, ctx)
        overlay_link = enum_or_int(OverlayLinkType, r.pull_uint8("IceCandidate.overlay_link"))
        foundation = r.pull_opaque(1, "IceCandidate.foundation")
        priority = r.pull_uint32("IceCandidate.priority")
        at = r.offset
        t = r.pull_uint8("IceCandidate.type")
        rel_addr_port: IpAddressPort | None = None
        if t in _CANDIDATE_TYPES_WITH_RELATED_ADDRESS:
            rel_addr_port = IpAddressPort.decode(r, ctx)
        elif t != CandType.host:
            raise DecodeError(f"unknown CandType {t}", field="IceCandidate.type", offset=at, drop=True)
        ext_r = r.pull_vector(2, "IceCandidate.extensions")
        extensions: list[IceExtension] = []
        while not ext_r.eof():
            extensions.append(IceExtension.decode(ext_r, ctx))
        return cls(
            addr_port, overlay_link, foundation, priority, CandType(t), rel_addr_port, tuple(extensions)
        )


def _skip_candidate(r: Reader) -> None:
    """Move past one IceCandidate, reading only what delimits it: every length is known
    even for an AddressType we do not know (§6.3.1.1). The CandType select is not marked
    extensible, and without it the end of the candidate is unknown: a type we do not know
    is a parsing error and the message is dropped (§6.3.1.1)."""
    skip_ip_address_port(r)
    r.pull_uint8("IceCandidate.overlay_link")
    r.pull_opaque(1, "IceCandidate.foundation")
    r.pull_uint32("IceCandidate.priority")
    at = r.offset
    t = r.pull_uint8("IceCandidate.type")
    if t in _CANDIDATE_TYPES_WITH_RELATED_ADDRESS:
        skip_ip_address_port(r)
    elif t != CandType.host:
        raise DecodeError(f"unknown CandType {t}", field="IceCandidate.type", offset=at, drop=True)
    r.pull_vector(2, "IceCandidate.extensions")


@dataclass(frozen=True, slots=True)
class UnknownIceCandidate:
    """An IceCandidate whose address (``addr_port`` or ``rel_addr_port``) is of an
    AddressType we do not know, kept whole as its bytes: IpAddressPort "can be extended"
    (§6.3.1.1), so the candidate can be read past and re-encoded as it came, and an Attach
    uses the others (§6.5.1.1: a list of candidates, of which ICE uses those it can).
    ``overlay_link`` reads its Overlay Link protocol, which still says whether the offer
    is an ICE one (§6.5.1.5)."""

    candidate: bytes

    def __post_init__(self) -> None:
        r = Reader(self.candidate)
        try:
            _skip_candidate(r)
            r.expect_end("IceCandidate")
        except DecodeError as exc:
            raise EncodeError(f"UnknownIceCandidate: not one IceCandidate ({exc.reason})") from None

    @property
    def overlay_link(self) -> OverlayLinkType | int:
        return enum_or_int(OverlayLinkType, self.candidate[2 + self.candidate[1]])

    def encode(self, w: Writer) -> None:
        w.push_bytes(self.candidate)


AnyIceCandidate = IceCandidate | UnknownIceCandidate
"""An entry of a candidate list as decoded: one we can use, or one kept whole."""


def usable_candidates(candidates: Iterable[AnyIceCandidate]) -> tuple[IceCandidate, ...]:
    """The candidates whose every type we know (the others are skipped, §6.3.1.1)."""
    return tuple(c for c in candidates if isinstance(c, IceCandidate))


def decode_candidate(r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> AnyIceCandidate:
    """One IceCandidate, or an :class:`UnknownIceCandidate` when one of its addresses has
    an AddressType we do not know. Other malformations raise :class:`DecodeError`."""
    start = r.offset
    _skip_candidate(r)
    whole = Reader(r.bytes_between(start, r.offset))
    try:
        candidate = IceCandidate.decode(whole, ctx)
    except UnknownAddressTypeError:
        return UnknownIceCandidate(r.bytes_between(start, r.offset))
    whole.expect_end("IceCandidate")
    return candidate


def _encode_candidates(w: Writer, candidates: tuple[AnyIceCandidate, ...], field: str) -> None:
    with w.vector(2, field):
        for c in candidates:
            c.encode(w)


def _decode_candidates(r: Reader, ctx: WireContext, field: str) -> tuple[AnyIceCandidate, ...]:
    sub = r.pull_vector(2, field)
    items: list[AnyIceCandidate] = []
    while not sub.eof():
        items.append(decode_candidate(sub, ctx))
    return tuple(items)


@dataclass(frozen=True, slots=True)
class AttachReqAns:
    """§6.5.1.1: the body of both the Attach request and its response.

    ``role`` is "passive" in the request and "active" in the response (RFC 4145 values).
    ``send_update`` means what it means in RouteQueryReq (§6.4.2.4.1). The registry holds
    the subclasses :class:`AttachReq` and :class:`AttachAns`, which add nothing but tell
    request and answer apart.
    """

    ufrag: bytes
    password: bytes
    role: bytes
    candidates: tuple[AnyIceCandidate, ...]
    send_update: bool = False

    def encode(self, w: Writer) -> None:
        w.push_opaque(self.ufrag, 1, "AttachReqAns.ufrag")
        w.push_opaque(self.password, 1, "AttachReqAns.password")
        w.push_opaque(self.role, 1, "AttachReqAns.role")
        _encode_candidates(w, self.candidates, "AttachReqAns.candidates")
        w.push_boolean(self.send_update)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        ufrag = r.pull_opaque(1, "AttachReqAns.ufrag")
        password = r.pull_opaque(1, "AttachReqAns.password")
        role = r.pull_opaque(1, "AttachReqAns.role")
        candidates = _decode_candidates(r, ctx, "AttachReqAns.candidates")
        return cls(ufrag, password, role, candidates, r.pull_boolean("AttachReqAns.send_update"))


@body(MessageCode.attach_req)
@dataclass(frozen=True, slots=True)
class AttachReq(AttachReqAns):
    """§6.5.1.1: an AttachReqAns sent as the Attach request (the ICE offer)."""


@body(MessageCode.attach_ans)
@dataclass(frozen=True, slots=True)
class AttachAns(AttachReqAns):
    """§6.5.1.2: an AttachReqAns sent as the Attach response (the ICE answer)."""


# ---------------------------------------------------------------- §6.5.2 AppAttach


@dataclass(frozen=True, slots=True)
class AppAttachReqAns:
    """The structure that §6.5.2.1 (AppAttachReq) and §6.5.2.2 (AppAttachAns) define twice
    with the same members. ``application`` is an Application-ID (§14.5); unknown ones
    stay ints (the answer to them is Error_Not_Found, §6.5.2.2)."""

    ufrag: bytes
    password: bytes
    application: ApplicationId | int
    role: bytes
    candidates: tuple[AnyIceCandidate, ...]

    def encode(self, w: Writer) -> None:
        name = type(self).__name__
        w.push_opaque(self.ufrag, 1, f"{name}.ufrag")
        w.push_opaque(self.password, 1, f"{name}.password")
        w.push_uint16(self.application, f"{name}.application")
        w.push_opaque(self.role, 1, f"{name}.role")
        _encode_candidates(w, self.candidates, f"{name}.candidates")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        name = cls.__name__
        ufrag = r.pull_opaque(1, f"{name}.ufrag")
        password = r.pull_opaque(1, f"{name}.password")
        application = enum_or_int(ApplicationId, r.pull_uint16(f"{name}.application"))
        role = r.pull_opaque(1, f"{name}.role")
        return cls(ufrag, password, application, role, _decode_candidates(r, ctx, f"{name}.candidates"))


@body(MessageCode.app_attach_req)
@dataclass(frozen=True, slots=True)
class AppAttachReq(AppAttachReqAns):
    """§6.5.2.1."""


@body(MessageCode.app_attach_ans)
@dataclass(frozen=True, slots=True)
class AppAttachAns(AppAttachReqAns):
    """§6.5.2.2."""


# ---------------------------------------------------------------- §6.5.3 Ping


@body(MessageCode.ping_req)
@dataclass(frozen=True, slots=True)
class PingReq:
    """§6.5.3.1: ``opaque padding<0..2^16-1>``, no meaning beyond probing message sizes."""

    padding: bytes = b""

    def encode(self, w: Writer) -> None:
        w.push_opaque(self.padding, 2, "PingReq.padding")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        return cls(r.pull_opaque(2, "PingReq.padding"))


@body(MessageCode.ping_ans)
@dataclass(frozen=True, slots=True)
class PingAns:
    """§6.5.3.2. ``response_id`` is random; ``time`` is when the answer was made, in
    milliseconds since 1970-01-01 UTC like ``storage_time`` (§7)."""

    response_id: int
    time: int

    def encode(self, w: Writer) -> None:
        w.push_uint64(self.response_id, "PingAns.response_id")
        w.push_uint64(self.time, "PingAns.time")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        response_id = r.pull_uint64("PingAns.response_id")
        return cls(response_id, r.pull_uint64("PingAns.time"))


# ---------------------------------------------------------------- §6.5.4 ConfigUpdate


class ConfigUpdateType(IntEnum):
    """§6.5.4.1."""

    invalidConfigUpdateType = 0
    config = 1
    kind = 2


@body(MessageCode.config_update_req)
@dataclass(frozen=True, slots=True)
class ConfigUpdateReq:
    """§6.5.4.1. ``length`` (uint32, the size of the rest) is derived on encode.

    ``config`` carries ``config_data`` (``opaque<0..2^24-1>``, a configuration document);
    ``kind`` carries ``kinds`` (``KindDescription kinds<0..2^24-1>``, each a UTF-8 XML
    kind-block, ``opaque<0..2^16-1>``). The select "may be extended with new types", so a
    type not known here keeps its bytes after ``length`` in ``unknown_data``. Members
    the type does not carry must stay empty.
    """

    type: ConfigUpdateType | int
    config_data: bytes = b""
    kinds: tuple[bytes, ...] = ()
    unknown_data: bytes = b""

    def __post_init__(self) -> None:
        t = self.type
        if t == ConfigUpdateType.invalidConfigUpdateType:
            raise EncodeError("ConfigUpdateReq: invalid ConfigUpdateType 0")
        if t != ConfigUpdateType.config and self.config_data:
            raise EncodeError("ConfigUpdateReq: config_data only goes with type config")
        if t != ConfigUpdateType.kind and self.kinds:
            raise EncodeError("ConfigUpdateReq: kinds only go with type kind")
        if t in (ConfigUpdateType.config, ConfigUpdateType.kind) and self.unknown_data:
            raise EncodeError("ConfigUpdateReq: unknown_data only goes with an unknown type")

    def encode(self, w: Writer) -> None:
        w.push_uint8(self.type, "ConfigUpdateReq.type")
        with w.vector(4, "ConfigUpdateReq.length"):
            if self.type == ConfigUpdateType.config:
                w.push_opaque(self.config_data, 3, "ConfigUpdateReq.config_data")
            elif self.type == ConfigUpdateType.kind:
                with w.vector(3, "ConfigUpdateReq.kinds"):
                    for k in self.kinds:
                        w.push_opaque(k, 2, "ConfigUpdateReq.kinds")
            else:
                w.push_bytes(self.unknown_data)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        at = r.offset
        t = r.pull_uint8("ConfigUpdateReq.type")
        sub = r.pull_vector(4, "ConfigUpdateReq.length")
        if t == ConfigUpdateType.config:
            obj = cls(ConfigUpdateType.config, config_data=sub.pull_opaque(3, "ConfigUpdateReq.config_data"))
        elif t == ConfigUpdateType.kind:
            kinds_r = sub.pull_vector(3, "ConfigUpdateReq.kinds")
            kinds: list[bytes] = []
            while not kinds_r.eof():
                kinds.append(kinds_r.pull_opaque(2, "ConfigUpdateReq.kinds"))
            obj = cls(ConfigUpdateType.kind, kinds=tuple(kinds))
        elif t == ConfigUpdateType.invalidConfigUpdateType:
            raise DecodeError("invalid ConfigUpdateType 0", field="ConfigUpdateReq.type", offset=at)
        else:
            return cls(t, unknown_data=sub.pull_bytes(sub.remaining(), "ConfigUpdateReq.unknown_data"))
        sub.expect_end("ConfigUpdateReq.length")
        return obj


@body(MessageCode.config_update_ans)
@dataclass(frozen=True, slots=True)
class ConfigUpdateAns:
    """§6.5.4.2: ``struct { } ConfigUpdateAns``, a zero-length body."""

    def encode(self, w: Writer) -> None:
        pass

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        return cls()

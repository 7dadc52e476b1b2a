"""The RELOAD message envelope: forwarding header, message contents, security block
(RFC 6940 §6.3.2, §6.3.3, §6.3.4) and ErrorResponse (§6.3.3.1).

A message on the wire is ``ForwardingHeader || MessageContents || SecurityBlock``.
Intermediate peers only need the header (:func:`decode_forwarding_header`); the
destination decodes the whole :class:`Message` once fragments are reassembled (§6.7).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Self, TypeVar

from reload_core.wire.buffer import DecodeError, EncodeError, Reader, Writer
from reload_core.wire.codes import (
    RELO_TOKEN,
    RELOAD_VERSION,
    CertificateType,
    DestinationType,
    ErrorCode,
    ForwardingFlag,
    ForwardingOptionType,
    HashAlgorithm,
    MessageCode,
    MessageExtensionType,
    SignatureAlgorithm,
    SignerIdentityType,
)
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.jsonmap import NOT_ON_WIRE
from reload_core.wire.registry import body

E = TypeVar("E", bound=IntEnum)


_MEMBERS: dict[type[IntEnum], dict[int, IntEnum]] = {}


def enum_or_int(enum: type[E], value: int) -> E | int:
    """Known code points become enum members (named in JSON); unknown ones stay ints."""
    members = _MEMBERS.get(enum)
    if members is None:
        # What ``enum(value)`` returns, looked up in a dict: decoders call this per field.
        members = _MEMBERS[enum] = {int(m): m for m in enum.__members__.values()}
    return members.get(value, value)


# ---------------------------------------------------------------- §6.3.2.2 Destination

FRAGMENT_HIGH_BIT = 0x80000000
LAST_FRAGMENT_BIT = 0x40000000
FRAGMENT_OFFSET_MASK = 0x00FFFFFF
FORWARDING_HEADER_FIXED_LEN = 38
"""Bytes of the ForwardingHeader before the via list (§6.3.2)."""

# relo_token, overlay, configuration_sequence, version, ttl, fragment, length,
# transaction_id, max_response_length, via_list_length, destination_list_length, options_length
_FIXED_HEADER = struct.Struct("!IIHBBIIQIHHH")


@dataclass(frozen=True, slots=True)
class NodeDestination:
    """``case node: NodeId node_id`` (§6.3.2.2)."""

    node_id: bytes

    def encode(self, w: Writer) -> None:
        w.push_uint8(DestinationType.node)
        w.push_opaque(self.node_id, 1, "Destination.node_id")

    @property
    def type(self) -> DestinationType:
        return DestinationType.node


@dataclass(frozen=True, slots=True)
class ResourceDestination:
    """``case resource: ResourceId resource_id`` (``opaque<0..2^8-1>``, §6.3.2.2)."""

    resource_id: bytes

    def encode(self, w: Writer) -> None:
        w.push_uint8(DestinationType.resource)
        w.push_uint8(len(self.resource_id) + 1, "Destination.length")
        w.push_opaque(self.resource_id, 1, "Destination.resource_id")

    @property
    def type(self) -> DestinationType:
        return DestinationType.resource


@dataclass(frozen=True, slots=True)
class OpaqueDestination:
    """``case opaque_id_type: opaque opaque_id<0..2^8-1>`` (§6.3.2.2)."""

    opaque_id: bytes

    def encode(self, w: Writer) -> None:
        w.push_uint8(DestinationType.opaque_id_type)
        w.push_uint8(len(self.opaque_id) + 1, "Destination.length")
        w.push_opaque(self.opaque_id, 1, "Destination.opaque_id")

    @property
    def type(self) -> DestinationType:
        return DestinationType.opaque_id_type


@dataclass(frozen=True, slots=True)
class CompressedDestination:
    """The 16-bit form ``uint16 opaque_id`` with its top bit set (§6.3.2.2); equivalent to an
    opaque_id_type destination of those two bytes."""

    compressed_id: int

    def encode(self, w: Writer) -> None:
        if not 0x8000 <= self.compressed_id <= 0xFFFF:
            raise EncodeError("compressed Destination needs the top bit set")
        w.push_uint16(self.compressed_id)

    @property
    def type(self) -> DestinationType:
        return DestinationType.opaque_id_type


@dataclass(frozen=True, slots=True)
class UnknownDestination:
    """A DestinationType this node does not know, kept whole so it can be skipped (§6.3.2.2)."""

    destination_type: int
    destination_data: bytes

    def encode(self, w: Writer) -> None:
        # A TLV Destination's first bit MUST be 0 (a set bit marks the 16-bit form) and
        # type 0 is invalidDestinationType (§6.3.2.2).
        if not 0 < self.destination_type < 0x80:
            raise EncodeError(f"DestinationType {self.destination_type} is not allowed in a TLV Destination")
        w.push_uint8(self.destination_type, "Destination.type")
        w.push_opaque(self.destination_data, 1, "Destination.destination_data")


Destination = (
    NodeDestination | ResourceDestination | OpaqueDestination | CompressedDestination | UnknownDestination
)


def decode_destination(r: Reader, ctx: WireContext) -> Destination:
    start = r.offset
    first = r.pull_uint8("Destination.type")
    if first & 0x80:
        return CompressedDestination((first << 8) | r.pull_uint8("Destination.opaque_id"))
    length = r.pull_uint8("Destination.length")
    sub = r.sub_reader(length, "Destination.destination_data")
    dest: Destination
    if first == DestinationType.node:
        if length != ctx.node_id_length:
            raise DecodeError(
                f"node Destination length {length}, NodeIdLength is {ctx.node_id_length}",
                field="Destination.length",
                offset=start + 1,
            )
        return NodeDestination(sub.pull_bytes(length, "Destination.node_id"))
    if first == DestinationType.resource:
        dest = ResourceDestination(sub.pull_opaque(1, "Destination.resource_id"))
    elif first == DestinationType.opaque_id_type:
        dest = OpaqueDestination(sub.pull_opaque(1, "Destination.opaque_id"))
    elif first == DestinationType.invalidDestinationType:
        raise DecodeError("invalid DestinationType 0", field="Destination.type", offset=start)
    else:
        return UnknownDestination(first, sub.pull_bytes(length, "Destination.destination_data"))
    sub.expect_end("Destination.destination_data")
    return dest


def _decode_destination_list(r: Reader, ctx: WireContext, field_name: str) -> tuple[Destination, ...]:
    items: list[Destination] = []
    while not r.eof():
        items.append(decode_destination(r, ctx))
    return tuple(items)


# ---------------------------------------------------------------- §6.3.2.3 ForwardingOption


@dataclass(frozen=True, slots=True)
class ForwardingOption:
    """§6.3.2.3. ``option`` holds the type-specific bytes (``length`` is derived)."""

    type: ForwardingOptionType | int
    flags: int
    option: bytes = b""

    def encode(self, w: Writer) -> None:
        w.push_uint8(self.type, "ForwardingOption.type")
        w.push_uint8(self.flags, "ForwardingOption.flags")
        w.push_opaque(self.option, 2, "ForwardingOption.option")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        t = r.pull_uint8("ForwardingOption.type")
        flags = r.pull_uint8("ForwardingOption.flags")
        return cls(enum_or_int(ForwardingOptionType, t), flags, r.pull_opaque(2, "ForwardingOption.option"))

    @property
    def forward_critical(self) -> bool:
        return bool(self.flags & ForwardingFlag.FORWARD_CRITICAL)

    @property
    def destination_critical(self) -> bool:
        return bool(self.flags & ForwardingFlag.DESTINATION_CRITICAL)

    @property
    def response_copy(self) -> bool:
        return bool(self.flags & ForwardingFlag.RESPONSE_COPY)


# ---------------------------------------------------------------- §6.3.2 ForwardingHeader


def _fixed_part(r: Reader) -> tuple[int, ...]:
    """The header's fixed 38 bytes in one unpack (every hop decodes a header), checked as
    :func:`_checked_fixed_part` checks them; without relo_token."""
    start = r.offset
    total = r.remaining()
    token, overlay, seq, version, ttl, fragment, length, tid, mrl, via_len, dest_len, opt_len = r.pull_struct(
        _FIXED_HEADER, "ForwardingHeader"
    )
    if token != RELO_TOKEN:
        raise _bad_token(token, start)
    if version != RELOAD_VERSION:
        raise _bad_version(version, start + 10)
    if not fragment & FRAGMENT_HIGH_BIT:
        raise _no_high_bit(start + 12)
    if length != total:
        raise _bad_length(length, total, start + 16)
    return overlay, seq, version, ttl, fragment, length, tid, mrl, via_len, dest_len, opt_len


def _checked_fixed_part(r: Reader) -> tuple[int, ...]:
    """The fixed part field by field, so that a short header fails at the field it lacks."""
    start = r.offset
    token = r.pull_uint32("ForwardingHeader.relo_token")
    if token != RELO_TOKEN:
        raise _bad_token(token, start)
    overlay = r.pull_uint32("ForwardingHeader.overlay")
    seq = r.pull_uint16("ForwardingHeader.configuration_sequence")
    at = r.offset
    version = r.pull_uint8("ForwardingHeader.version")
    if version != RELOAD_VERSION:
        raise _bad_version(version, at)
    ttl = r.pull_uint8("ForwardingHeader.ttl")
    at = r.offset
    fragment = r.pull_uint32("ForwardingHeader.fragment")
    if not fragment & FRAGMENT_HIGH_BIT:
        raise _no_high_bit(at)
    at = r.offset
    length = r.pull_uint32("ForwardingHeader.length")
    total = (r.offset - start) + r.remaining()
    if length != total:
        raise _bad_length(length, total, at)
    tid = r.pull_uint64("ForwardingHeader.transaction_id")
    mrl = r.pull_uint32("ForwardingHeader.max_response_length")
    via_len = r.pull_uint16("ForwardingHeader.via_list_length")
    dest_len = r.pull_uint16("ForwardingHeader.destination_list_length")
    opt_len = r.pull_uint16("ForwardingHeader.options_length")
    return overlay, seq, version, ttl, fragment, length, tid, mrl, via_len, dest_len, opt_len


def _bad_token(token: int, offset: int) -> DecodeError:
    # Not a RELOAD message at all: nothing to answer (§6.3.2).
    return DecodeError(
        f"relo_token {token:#010x} is not 0xd2454c4f",
        field="ForwardingHeader.relo_token",
        offset=offset,
        drop=True,
    )


def _bad_version(version: int, offset: int) -> DecodeError:
    return DecodeError(
        f"version {version:#04x}, only 0x0a is supported",
        field="ForwardingHeader.version",
        offset=offset,
        error_code=ErrorCode.Error_Incompatible_with_Overlay,
    )


def _no_high_bit(offset: int) -> DecodeError:
    return DecodeError(
        "fragment high bit (0x80000000) must be set", field="ForwardingHeader.fragment", offset=offset
    )


def _bad_length(length: int, total: int, offset: int) -> DecodeError:
    return DecodeError(
        f"length {length} but the message has {total} bytes", field="ForwardingHeader.length", offset=offset
    )


@dataclass(frozen=True, slots=True)
class ForwardingHeader:
    """§6.3.2. ``relo_token``, the three list lengths and ``length`` are derived on encode;
    ``length`` keeps the decoded value (the size of this, possibly fragmented, message)."""

    overlay: int
    configuration_sequence: int
    ttl: int
    fragment: int
    transaction_id: int
    max_response_length: int = 0
    via_list: tuple[Destination, ...] = ()
    destination_list: tuple[Destination, ...] = ()
    options: tuple[ForwardingOption, ...] = ()
    version: int = RELOAD_VERSION
    length: int = 0

    def rerouted(
        self,
        ttl: int,
        via_list: tuple[Destination, ...],
        destination_list: tuple[Destination, ...],
        length: int | None = None,
    ) -> ForwardingHeader:
        """This header with a new TTL, lists and (optionally) length: what each hop does
        to it (§6.1.2). ``dataclasses.replace`` would do, at three times the cost."""
        return ForwardingHeader(
            self.overlay,
            self.configuration_sequence,
            ttl,
            self.fragment,
            self.transaction_id,
            self.max_response_length,
            via_list,
            destination_list,
            self.options,
            self.version,
            self.length if length is None else length,
        )

    @property
    def is_last_fragment(self) -> bool:
        return bool(self.fragment & LAST_FRAGMENT_BIT)

    @property
    def fragment_offset(self) -> int:
        return self.fragment & FRAGMENT_OFFSET_MASK

    @property
    def is_unfragmented(self) -> bool:
        """Offset 0 and the last-fragment bit: the payload is a whole message (§6.7)."""
        return self.fragment_offset == 0 and self.is_last_fragment

    def encode(self, w: Writer, payload_length: int = 0) -> None:
        """Append the header. ``payload_length`` is the size of what follows the header,
        so that ``length`` counts the whole message including the header (§6.3.2)."""
        start = len(w)
        w.push_uint32(RELO_TOKEN)
        w.push_uint32(self.overlay, "overlay")
        w.push_uint16(self.configuration_sequence, "configuration_sequence")
        w.push_uint8(self.version, "version")
        w.push_uint8(self.ttl, "ttl")
        w.push_uint32(self.fragment | FRAGMENT_HIGH_BIT, "fragment")
        length_at = w.reserve(4)
        w.push_uint64(self.transaction_id, "transaction_id")
        w.push_uint32(self.max_response_length, "max_response_length")
        lengths_at = w.reserve(6)
        mark = len(w)
        for d in self.via_list:
            d.encode(w)
        via_len = len(w) - mark
        mark = len(w)
        for d in self.destination_list:
            d.encode(w)
        dest_len = len(w) - mark
        mark = len(w)
        for o in self.options:
            o.encode(w)
        opt_len = len(w) - mark
        for n, name in ((via_len, "via_list"), (dest_len, "destination_list"), (opt_len, "options")):
            if n > 0xFFFF:
                raise EncodeError(f"{name}: {n} bytes do not fit in a uint16 length")
        w.patch(
            lengths_at, via_len.to_bytes(2, "big") + dest_len.to_bytes(2, "big") + opt_len.to_bytes(2, "big")
        )
        total = len(w) - start + payload_length
        if total > 0xFFFFFFFF:
            raise EncodeError("message length does not fit in uint32")
        w.patch(length_at, total.to_bytes(4, "big"))

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        # A short header goes field by field, to fail at the exact field it lacks.
        fixed = _checked_fixed_part(r) if r.remaining() < FORWARDING_HEADER_FIXED_LEN else _fixed_part(r)
        overlay, seq, version, ttl, fragment, length, tid, mrl, via_len, dest_len, opt_len = fixed
        via = _decode_destination_list(r.sub_reader(via_len, "ForwardingHeader.via_list"), ctx, "via_list")
        dests = _decode_destination_list(
            r.sub_reader(dest_len, "ForwardingHeader.destination_list"), ctx, "destination_list"
        )
        opts_r = r.sub_reader(opt_len, "ForwardingHeader.options")
        opts: list[ForwardingOption] = []
        while not opts_r.eof():
            opts.append(ForwardingOption.decode(opts_r, ctx))
        return cls(
            overlay=overlay,
            configuration_sequence=seq,
            ttl=ttl,
            fragment=fragment & ~FRAGMENT_HIGH_BIT,
            transaction_id=tid,
            max_response_length=mrl,
            via_list=via,
            destination_list=dests,
            options=tuple(opts),
            version=version,
            length=length,
        )


# ---------------------------------------------------------------- §6.3.3 MessageContents


@dataclass(frozen=True, slots=True)
class MessageExtension:
    """§6.3.3."""

    type: MessageExtensionType | int
    critical: bool
    extension_contents: bytes = b""

    def encode(self, w: Writer) -> None:
        w.push_uint16(self.type, "MessageExtension.type")
        w.push_boolean(self.critical)
        w.push_opaque(self.extension_contents, 4, "MessageExtension.extension_contents")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        t = r.pull_uint16("MessageExtension.type")
        critical = r.pull_boolean("MessageExtension.critical")
        contents = r.pull_opaque(4, "MessageExtension.extension_contents")
        return cls(enum_or_int(MessageExtensionType, t), critical, contents)


@dataclass(frozen=True, slots=True)
class MessageContents:
    """§6.3.3. ``message_body`` is the encoded body; see :mod:`reload_core.wire.registry`."""

    message_code: MessageCode | int
    message_body: bytes
    extensions: tuple[MessageExtension, ...] = ()

    def encode(self, w: Writer) -> None:
        w.push_uint16(self.message_code, "MessageContents.message_code")
        w.push_opaque(self.message_body, 4, "MessageContents.message_body")
        with w.vector(4, "MessageContents.extensions"):
            for e in self.extensions:
                e.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        at = r.offset
        code = r.pull_uint16("MessageContents.message_code")
        if code == 0 or 0x8000 <= code < 0xFFFF:
            raise DecodeError(
                f"message_code {code:#06x} is invalid or reserved",
                field="MessageContents.message_code",
                offset=at,
            )
        message_body = r.pull_opaque(4, "MessageContents.message_body")
        ext_r = r.pull_vector(4, "MessageContents.extensions")
        exts: list[MessageExtension] = []
        while not ext_r.eof():
            exts.append(MessageExtension.decode(ext_r, ctx))
        return cls(enum_or_int(MessageCode, code), message_body, tuple(exts))

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.data()


@body(MessageCode.error)
@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """§6.3.3.1: the body of a message with code 0xFFFF."""

    error_code: ErrorCode | int
    error_info: bytes = b""

    def encode(self, w: Writer) -> None:
        w.push_uint16(self.error_code, "ErrorResponse.error_code")
        w.push_opaque(self.error_info, 2, "ErrorResponse.error_info")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        code = r.pull_uint16("ErrorResponse.error_code")
        return cls(enum_or_int(ErrorCode, code), r.pull_opaque(2, "ErrorResponse.error_info"))


# ---------------------------------------------------------------- §6.3.4 SecurityBlock


@dataclass(frozen=True, slots=True)
class GenericCertificate:
    """§6.3.4: a DER X.509 certificate (type from RFC 6091)."""

    type: CertificateType | int
    certificate: bytes

    def encode(self, w: Writer) -> None:
        w.push_uint8(self.type, "GenericCertificate.type")
        w.push_opaque(self.certificate, 2, "GenericCertificate.certificate")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        t = r.pull_uint8("GenericCertificate.type")
        return cls(enum_or_int(CertificateType, t), r.pull_opaque(2, "GenericCertificate.certificate"))


@dataclass(frozen=True, slots=True)
class SignatureAndHashAlgorithm:
    """TLS 1.2's pair (RFC 5246 §7.4.1.4.1): hash first, then signature."""

    hash: HashAlgorithm | int
    signature: SignatureAlgorithm | int

    def encode(self, w: Writer) -> None:
        w.push_uint8(self.hash, "SignatureAndHashAlgorithm.hash")
        w.push_uint8(self.signature, "SignatureAndHashAlgorithm.signature")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        h = r.pull_uint8("SignatureAndHashAlgorithm.hash")
        s = r.pull_uint8("SignatureAndHashAlgorithm.signature")
        return cls(enum_or_int(HashAlgorithm, h), enum_or_int(SignatureAlgorithm, s))


@dataclass(frozen=True, slots=True)
class SignerIdentity:
    """§6.3.4. For ``cert_hash`` ``certificate_hash`` is H(certificate); for
    ``cert_hash_node_id`` it is the RFC's ``certificate_node_id_hash``, H(NodeId ||
    certificate); ``none`` carries neither (only in the special store/fetch cases of §7)."""

    identity_type: SignerIdentityType
    hash_alg: HashAlgorithm | int = HashAlgorithm.none
    certificate_hash: bytes = b""

    def encode(self, w: Writer) -> None:
        w.push_uint8(self.identity_type, "SignerIdentity.identity_type")
        if self.identity_type == SignerIdentityType.none:
            w.push_uint16(0)
            return
        w.push_uint16(2 + len(self.certificate_hash), "SignerIdentity.length")
        w.push_uint8(self.hash_alg, "SignerIdentity.hash_alg")
        w.push_opaque(self.certificate_hash, 1, "SignerIdentity.certificate_hash")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        at = r.offset
        t = r.pull_uint8("SignerIdentity.identity_type")
        sub = r.sub_reader(r.pull_uint16("SignerIdentity.length"), "SignerIdentity.identity")
        if t == SignerIdentityType.none:
            sub.expect_end("SignerIdentity.identity")
            return cls(SignerIdentityType.none)
        if t not in (SignerIdentityType.cert_hash, SignerIdentityType.cert_hash_node_id):
            raise DecodeError(
                f"unknown SignerIdentityType {t}", field="SignerIdentity.identity_type", offset=at
            )
        hash_alg = enum_or_int(HashAlgorithm, sub.pull_uint8("SignerIdentity.hash_alg"))
        digest = sub.pull_opaque(1, "SignerIdentity.certificate_hash")
        sub.expect_end("SignerIdentity.identity")
        return cls(SignerIdentityType(t), hash_alg, digest)

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.data()


@dataclass(frozen=True, slots=True)
class Signature:
    """§6.3.4; also the signature of each StoredData (§7.1)."""

    algorithm: SignatureAndHashAlgorithm
    identity: SignerIdentity
    signature_value: bytes

    def encode(self, w: Writer) -> None:
        self.algorithm.encode(w)
        self.identity.encode(w)
        w.push_opaque(self.signature_value, 2, "Signature.signature_value")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        alg = SignatureAndHashAlgorithm.decode(r, ctx)
        ident = SignerIdentity.decode(r, ctx)
        return cls(alg, ident, r.pull_opaque(2, "Signature.signature_value"))


@dataclass(frozen=True, slots=True)
class SecurityBlock:
    """§6.3.4."""

    certificates: tuple[GenericCertificate, ...]
    signature: Signature

    def encode(self, w: Writer) -> None:
        with w.vector(2, "SecurityBlock.certificates"):
            for c in self.certificates:
                c.encode(w)
        self.signature.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        cr = r.pull_vector(2, "SecurityBlock.certificates")
        certs: list[GenericCertificate] = []
        while not cr.eof():
            certs.append(GenericCertificate.decode(cr, ctx))
        return cls(tuple(certs), Signature.decode(r, ctx))


# ---------------------------------------------------------------- the whole message


@dataclass(frozen=True, slots=True)
class Message:
    """One unfragmented RELOAD message (§6.3).

    ``encoded_contents``, when set, is ``message_contents`` as encoded: what the
    signature covers (§6.3.4). Decoding keeps the received bytes there and signing the
    bytes it signed, so that neither the check nor the sending encodes them again. A
    message built with other contents (``replace``) must leave it unset.
    """

    forwarding_header: ForwardingHeader
    message_contents: MessageContents
    security_block: SecurityBlock
    encoded_contents: bytes | None = field(
        default=None, compare=False, repr=False, metadata={NOT_ON_WIRE: True}
    )

    def contents_bytes(self) -> bytes:
        """``message_contents`` as on the wire."""
        encoded = self.encoded_contents
        return self.message_contents.to_bytes() if encoded is None else encoded

    def _payload(self) -> Writer:
        payload = Writer()
        payload.push_bytes(self.contents_bytes())
        self.security_block.encode(payload)
        return payload

    def encode(self, w: Writer) -> None:
        payload = self._payload()
        self.forwarding_header.encode(w, len(payload))
        w.push_bytes(payload.data())

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.data()

    def to_bytes_with_header(self) -> tuple[bytes, ForwardingHeader, int]:
        """The encoded message, its forwarding header as decoding it would give (``length``
        filled in) and the payload's offset: what a sender routes, without decoding what
        it just encoded."""
        payload = self._payload()
        w = Writer()
        self.forwarding_header.encode(w, len(payload))
        payload_at = len(w)
        w.push_bytes(payload.data())
        data = w.data()
        header = self.forwarding_header
        return (
            data,
            header.rerouted(header.ttl, header.via_list, header.destination_list, len(data)),
            payload_at,
        )

    @classmethod
    def decode_payload(
        cls, header: ForwardingHeader, data: bytes, payload_at: int, ctx: WireContext = DEFAULT_CONTEXT
    ) -> Self:
        """The whole message from ``data`` whose forwarding header, ``header``, was decoded
        already and ends at ``payload_at`` (the receive path decodes it first to route)."""
        if not header.is_unfragmented:
            raise DecodeError(
                "message is a fragment; reassemble it first (§6.7)",
                field="ForwardingHeader.fragment",
                offset=12,
            )
        r = Reader(data, payload_at)
        contents = MessageContents.decode(r, ctx)
        contents_end = r.offset
        security = SecurityBlock.decode(r, ctx)
        r.expect_end("Message")
        return cls(header, contents, security, bytes(data[payload_at:contents_end]))

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        start = r.offset
        header = ForwardingHeader.decode(r, ctx)
        if not header.is_unfragmented:
            raise DecodeError(
                "message is a fragment; reassemble it first (§6.7)",
                field="ForwardingHeader.fragment",
                offset=start + 12,
            )
        contents_at = r.offset
        contents = MessageContents.decode(r, ctx)
        contents_end = r.offset
        security = SecurityBlock.decode(r, ctx)
        r.expect_end("Message")
        return cls(header, contents, security, r.bytes_between(contents_at, contents_end))

    @classmethod
    def from_bytes(cls, data: bytes, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        return cls.decode(Reader(data), ctx)


def decode_forwarding_header(data: bytes, ctx: WireContext = DEFAULT_CONTEXT) -> tuple[ForwardingHeader, int]:
    """Decode only the header, for forwarding; returns it and the payload's offset."""
    r = Reader(data)
    header = ForwardingHeader.decode(r, ctx)
    return header, r.offset


def check_forwarding_options(
    options: Iterable[ForwardingOption], *, forwarding: bool, understood: frozenset[int] = frozenset()
) -> None:
    """Apply §6.3.2.3: an option not understood that is FORWARD_CRITICAL (when forwarding)
    or DESTINATION_CRITICAL (when responding) rejects the request."""
    for o in options:
        if int(o.type) in understood:
            continue
        if (forwarding and o.forward_critical) or (not forwarding and o.destination_critical):
            raise DecodeError(
                f"unsupported critical forwarding option {int(o.type)}",
                field="ForwardingHeader.options",
                error_code=ErrorCode.Error_Unsupported_Forwarding_Option,
            )


def check_extensions(
    extensions: Iterable[MessageExtension], understood: frozenset[int] = frozenset()
) -> None:
    """Apply §6.3.3: an extension not understood that is critical gives Error_Unknown_Extension."""
    for e in extensions:
        if e.critical and int(e.type) not in understood:
            raise DecodeError(
                f"unknown critical extension {int(e.type)}",
                field="MessageContents.extensions",
                error_code=ErrorCode.Error_Unknown_Extension,
            )


__all__ = [
    "CompressedDestination",
    "Destination",
    "ErrorResponse",
    "ForwardingHeader",
    "ForwardingOption",
    "GenericCertificate",
    "Message",
    "MessageContents",
    "MessageExtension",
    "NodeDestination",
    "OpaqueDestination",
    "ResourceDestination",
    "SecurityBlock",
    "Signature",
    "SignatureAndHashAlgorithm",
    "SignerIdentity",
    "UnknownDestination",
    "check_extensions",
    "check_forwarding_options",
    "decode_destination",
    "decode_forwarding_header",
]

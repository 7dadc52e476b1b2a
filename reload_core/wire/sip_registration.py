"""The SipRegistration Resource Record (RFC 7904 §3.2): the value of a SIP-REGISTRATION
dictionary entry, keyed by the storing peer's Node-ID (RFC 7904 §7).

It maps an AOR either to another AOR (forwarding, ``sip_registration_uri``) or to a
destination list that reaches the registering peer, with its contact preferences
(``sip_registration_route``). The select "can be extended": a type this node does not
know is kept whole as :class:`UnknownSipRegistrationData`, which its ``length`` allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Self

from reload_core.wire.buffer import DecodeError, EncodeError, Reader, Writer
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.message import Destination, decode_destination, enum_or_int

MIN_DESTINATION_LIST_BYTES = 3
"""``Destination destination_list<3..2^16-1>``: at least three bytes (RFC 7904 §3.2)."""


class SipRegistrationType(IntEnum):
    """RFC 7904 §3.2."""

    sip_registration_uri = 1
    sip_registration_route = 2


@dataclass(frozen=True, slots=True)
class SipRegistrationUri:
    """``case sip_registration_uri: opaque uri<0..2^16-1>``: another AOR to dereference
    instead, e.g. ``sam@dht.example.org`` to forward calls (RFC 7904 §3.1; an AOR has no
    scheme, §2)."""

    uri: bytes

    def encode(self, w: Writer) -> None:
        w.push_opaque(self.uri, 2, "SipRegistration.uri")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        return cls(r.pull_opaque(2, "SipRegistration.uri"))


@dataclass(frozen=True, slots=True)
class SipRegistrationRoute:
    """``case sip_registration_route: opaque contact_prefs<0..2^16-1>;
    Destination destination_list<3..2^16-1>``.

    ``contact_prefs`` is an RFC 3840 contact predicate such as ``(sip.schemes=SIPS)``
    (RFC 7904 §3.2); ``destination_list`` leads to the registering peer, usually just its
    Node-ID.
    """

    contact_prefs: bytes
    destination_list: tuple[Destination, ...]

    def encode(self, w: Writer) -> None:
        w.push_opaque(self.contact_prefs, 2, "SipRegistration.contact_prefs")
        start = len(w)
        with w.vector(2, "SipRegistration.destination_list"):
            for d in self.destination_list:
                d.encode(w)
        if len(w) - start - 2 < MIN_DESTINATION_LIST_BYTES:
            raise EncodeError("SipRegistration.destination_list: needs at least 3 bytes of Destinations")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        prefs = r.pull_opaque(2, "SipRegistration.contact_prefs")
        at = r.offset
        sub = r.pull_vector(2, "SipRegistration.destination_list")
        if sub.remaining() < MIN_DESTINATION_LIST_BYTES:
            raise DecodeError(
                f"destination_list has {sub.remaining()} bytes, at least 3 are required",
                field="SipRegistration.destination_list.length",
                offset=at,
            )
        dests: list[Destination] = []
        while not sub.eof():
            dests.append(decode_destination(sub, ctx))
        return cls(prefs, tuple(dests))


@dataclass(frozen=True, slots=True)
class UnknownSipRegistrationData:
    """The data of a SipRegistrationType this node does not know, as its bytes."""

    contents: bytes

    def encode(self, w: Writer) -> None:
        w.push_bytes(self.contents)


SipRegistrationData = SipRegistrationUri | SipRegistrationRoute | UnknownSipRegistrationData

_KNOWN_DATA: dict[int, type[SipRegistrationUri] | type[SipRegistrationRoute]] = {
    SipRegistrationType.sip_registration_uri: SipRegistrationUri,
    SipRegistrationType.sip_registration_route: SipRegistrationRoute,
}


@dataclass(frozen=True, slots=True)
class SipRegistration:
    """RFC 7904 §3.2: ``SipRegistrationType type; uint16 length; SipRegistrationData data``.

    ``length`` (the size of ``data``) is derived on encode and checked on decode. ``type``
    must name the arm ``data`` is; build with :meth:`for_uri` / :meth:`for_route`.
    """

    type: SipRegistrationType | int
    data: SipRegistrationData

    def __post_init__(self) -> None:
        expected = _KNOWN_DATA.get(int(self.type))
        if expected is None:
            if not isinstance(self.data, UnknownSipRegistrationData):
                raise EncodeError(f"SipRegistration: type {int(self.type)} is not one this node can build")
        elif not isinstance(self.data, expected):
            raise EncodeError(f"SipRegistration: type {self.type!r} needs {expected.__name__} data")

    @classmethod
    def for_uri(cls, uri: str | bytes) -> SipRegistration:
        """A forward to another URI (``sip_registration_uri``)."""
        raw = uri.encode("utf-8") if isinstance(uri, str) else uri
        return cls(SipRegistrationType.sip_registration_uri, SipRegistrationUri(raw))

    @classmethod
    def for_route(
        cls, destination_list: Iterable[Destination], contact_prefs: str | bytes = b""
    ) -> SipRegistration:
        """A route to the registering peer (``sip_registration_route``)."""
        prefs = contact_prefs.encode("utf-8") if isinstance(contact_prefs, str) else contact_prefs
        return cls(
            SipRegistrationType.sip_registration_route, SipRegistrationRoute(prefs, tuple(destination_list))
        )

    def encode(self, w: Writer) -> None:
        w.push_uint8(self.type, "SipRegistration.type")
        with w.vector(2, "SipRegistration.length"):
            self.data.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        t = r.pull_uint8("SipRegistration.type")
        sub = r.pull_vector(2, "SipRegistration.data")
        data: SipRegistrationData
        if t == SipRegistrationType.sip_registration_uri:
            data = SipRegistrationUri.decode(sub, ctx)
        elif t == SipRegistrationType.sip_registration_route:
            data = SipRegistrationRoute.decode(sub, ctx)
        else:
            data = UnknownSipRegistrationData(sub.pull_bytes(sub.remaining(), "SipRegistration.data"))
        sub.expect_end("SipRegistration.data")
        return cls(enum_or_int(SipRegistrationType, t), data)

    def to_bytes(self) -> bytes:
        """The encoded record, as stored in a DictionaryEntry's DataValue."""
        w = Writer()
        self.encode(w)
        return w.data()

    @classmethod
    def from_bytes(cls, data: bytes, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        """Decode exactly one record; trailing bytes are an error."""
        r = Reader(data)
        out = cls.decode(r, ctx)
        r.expect_end("SipRegistration")
        return out


__all__ = [
    "MIN_DESTINATION_LIST_BYTES",
    "SipRegistration",
    "SipRegistrationData",
    "SipRegistrationRoute",
    "SipRegistrationType",
    "SipRegistrationUri",
    "UnknownSipRegistrationData",
]

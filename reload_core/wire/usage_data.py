"""Stored values of the Certificate Store Usage (RFC 6940 §8) and the TURN Server Usage (§9).

Certificate Store: CERTIFICATE_BY_NODE and CERTIFICATE_BY_USER are arrays (§8) whose
entries each hold one certificate. §8 does not lay the value out beyond "its
certificate"; a certificate's encoded form in RELOAD is its DER (§6.3.4: "For X.509
certificates, it is the Distinguished Encoding Rules (DER) form"), and only X.509 is
defined, so the DataValue's ``value`` is the DER certificate itself with no type or length
in front (Wireshark's RELOAD dissector reads it the same way). New certificates go at the
end of the array (§8), i.e. at index 0xffffffff.

TURN Server: a TURN-SERVICE value is a TurnServer (§9). §9 gives the Kind the single-value
data model ("stores a single value for each Resource-ID"). Its Resource Name is the
peer's Node-ID followed by the iteration d (1..turn-density); d is written as the uint8
that TurnServer.iteration is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.buffer import DecodeError, EncodeError, Reader, Writer
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.storage import APPEND_INDEX, ArrayEntry, DataValue

MAX_TURN_ITERATION = 20
"""NODE-MULTIPLE with "a maximum iteration of counter 20" (§9)."""


# ---------------------------------------------------------------- §8 Certificate Store


def _check_der_certificate(der: bytes, *, offset: int = 0) -> None:
    """A DER certificate is one SEQUENCE TLV that fills the value exactly (X.690 §8.1).

    Only the outer framing is checked here; the certificate itself is parsed and verified
    by the security layer.
    """
    where = "CertificateValue"
    if len(der) < 2 or der[0] != 0x30:
        raise DecodeError("a DER certificate starts with a SEQUENCE tag (0x30)", field=where, offset=offset)
    first = der[1]
    if first < 0x80:
        header, length = 2, first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or len(der) < 2 + n:
            raise DecodeError("bad DER length octets", field=where, offset=offset + 1)
        length = int.from_bytes(der[2 : 2 + n], "big")
        header = 2 + n
        if length < 0x80 or length >> (8 * (n - 1)) == 0:
            raise DecodeError("DER length is not in its shortest form", field=where, offset=offset + 1)
    if header + length != len(der):
        raise DecodeError(
            f"DER SEQUENCE of {length} bytes does not fill the {len(der)}-byte value",
            field=where,
            offset=offset + 1,
        )


def certificate_entry(der_certificate: bytes, index: int = APPEND_INDEX) -> ArrayEntry:
    """The array entry storing one certificate (§8); by default appended at the end."""
    try:
        _check_der_certificate(der_certificate)
    except DecodeError as exc:
        raise EncodeError(f"not a DER certificate: {exc}") from None
    return ArrayEntry(index, DataValue(True, der_certificate))


def certificate_of(value: DataValue) -> bytes | None:
    """The DER certificate a CERTIFICATE_BY_NODE/BY_USER value holds; None if it does not
    exist (removed, or a gap in the array); DecodeError if it is not a DER SEQUENCE."""
    if not value.exists:
        return None
    _check_der_certificate(value.value)
    return value.value


# ---------------------------------------------------------------- §9 TURN Server


@dataclass(frozen=True, slots=True)
class TurnServer:
    """§9: ``uint8 iteration; IpAddressPort server_address``."""

    iteration: int
    server_address: IpAddressPort

    def encode(self, w: Writer) -> None:
        w.push_uint8(self.iteration, "TurnServer.iteration")
        self.server_address.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        iteration = r.pull_uint8("TurnServer.iteration")
        return cls(iteration, IpAddressPort.decode(r, ctx))

    def to_bytes(self) -> bytes:
        """The bytes stored as the TURN-SERVICE DataValue's value."""
        w = Writer()
        self.encode(w)
        return w.data()

    @classmethod
    def from_bytes(cls, data: bytes, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        r = Reader(data)
        out = cls.decode(r, ctx)
        r.expect_end("TurnServer")
        return out


def turn_server_resource_name(node_id: bytes, iteration: int) -> bytes:
    """The Resource Name under which a TURN server records itself for iteration ``d`` (§9):
    its Node-ID concatenated with d; hash it with :func:`reload_core.ids.resource_id`."""
    if not 1 <= iteration <= 0xFF:
        raise EncodeError(f"TURN iteration {iteration} is not in 1..255")
    return node_id + bytes([iteration])


__all__ = [
    "MAX_TURN_ITERATION",
    "TurnServer",
    "certificate_entry",
    "certificate_of",
    "turn_server_resource_name",
]

"""IpAddressPort (RFC 6940 §6.3.1.1)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum
from typing import Self

from reload_core.wire.buffer import DecodeError, Reader, Writer
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext


class UnknownAddressTypeError(DecodeError):
    """An IpAddressPort of an AddressType this node does not know. The structure "can be
    extended" (§6.3.1.1): its type and length still let a reader skip it, so a container
    that allows for unknown addresses (an IceCandidate, §6.5.1.1) keeps it whole; where
    nothing does, it is the parsing error §6.3.1.1 drops the message for."""


class AddressType(IntEnum):
    """§6.3.1.1."""

    invalidAddressType = 0
    ipv4_address = 1
    ipv6_address = 2


@dataclass(frozen=True, slots=True)
class IpAddressPort:
    """An IPv4 or IPv6 address and port. ``addr`` is the textual address (e.g. "192.0.2.1").

    Wire example from §6.3.1.1: ``01 06 c0 00 02 01 17 c4`` is 192.0.2.1:6084.
    """

    addr: str
    port: int

    @property
    def type(self) -> AddressType:
        return AddressType.ipv6_address if ":" in self.addr else AddressType.ipv4_address

    def encode(self, w: Writer) -> None:
        ip = ipaddress.ip_address(self.addr)
        if ip.version == 4:
            w.push_uint8(AddressType.ipv4_address)
            w.push_uint8(6)
        else:
            w.push_uint8(AddressType.ipv6_address)
            w.push_uint8(18)
        w.push_bytes(ip.packed)
        w.push_uint16(self.port, "IpAddressPort.port")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        at = r.offset
        t = r.pull_uint8("IpAddressPort.type")
        length = r.pull_uint8("IpAddressPort.length")
        sub = r.sub_reader(length, "IpAddressPort")
        if t == AddressType.ipv4_address:
            if length != 6:
                raise DecodeError(
                    f"IPv4 length {length} is not 6", field="IpAddressPort.length", offset=at + 1
                )
            addr = str(ipaddress.IPv4Address(sub.pull_bytes(4, "IpAddressPort.v4addr_port.addr")))
        elif t == AddressType.ipv6_address:
            if length != 18:
                raise DecodeError(
                    f"IPv6 length {length} is not 18", field="IpAddressPort.length", offset=at + 1
                )
            addr = str(ipaddress.IPv6Address(sub.pull_bytes(16, "IpAddressPort.v6addr_port.addr")))
        else:
            # §6.3.1.1: an unknown select type is a parsing error (the message is dropped)
            # unless the container allows for it; the length is right, so it can be skipped.
            raise UnknownAddressTypeError(
                f"unknown AddressType {t}", field="IpAddressPort.type", offset=at, drop=True
            )
        port = sub.pull_uint16("IpAddressPort.port")
        return cls(addr, port)


def skip_ip_address_port(r: Reader) -> None:
    """Move past one IpAddressPort of any AddressType, known or not (§6.3.1.1: "an
    implementation which does not understand new address type X can still parse the
    IpAddressPort field and then discard it")."""
    r.pull_uint8("IpAddressPort.type")
    r.sub_reader(r.pull_uint8("IpAddressPort.length"), "IpAddressPort")

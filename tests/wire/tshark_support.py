"""tshark helpers shared by the cross-checks against Wireshark's RELOAD dissectors: a
synthetic TCP capture (:class:`TcpCapture`, one RELOAD framed message per segment, real
checksums) and readers of tshark's PDML."""

from __future__ import annotations

import shutil
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

TSHARK = shutil.which("tshark")
RELOAD_PORT = 6084
CLIENT_PORT = 40312
LOOPBACK = bytes([127, 0, 0, 1])
SEVERITY_WARN = 0x00600000  # Wireshark's PI_WARN; PI_ERROR is 0x00800000


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


TCP_SYN, TCP_ACK, TCP_PSH, TCP_FIN = 0x02, 0x10, 0x08, 0x01


@dataclass
class TcpCapture:
    """One TCP connection between a client and a RELOAD peer, as Ethernet frames."""

    frames: list[bytes] = field(default_factory=list)
    seq: dict[bool, int] = field(default_factory=lambda: {True: 0x1000_0000, False: 0x7000_0000})
    ip_id: int = 1

    def _segment(self, from_client: bool, flags: int, payload: bytes = b"") -> int:
        sport, dport = (CLIENT_PORT, RELOAD_PORT) if from_client else (RELOAD_PORT, CLIENT_PORT)
        ack = self.seq[not from_client] if flags & TCP_ACK else 0
        tcp = struct.pack("!HHIIBBHHH", sport, dport, self.seq[from_client], ack, 5 << 4, flags, 65535, 0, 0)
        pseudo = LOOPBACK + LOOPBACK + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
        tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp + payload)) + tcp[18:]
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(tcp) + len(payload),
            self.ip_id,
            0x4000,
            64,
            6,
            0,
            LOOPBACK,
            LOOPBACK,
        )
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        self.ip_id += 1
        self.seq[from_client] = (
            self.seq[from_client] + len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
        ) % (1 << 32)
        self.frames.append(bytes(12) + b"\x08\x00" + ip + tcp + payload)
        return len(self.frames)  # tshark numbers frames from 1

    def handshake(self) -> None:
        self._segment(True, TCP_SYN)
        self._segment(False, TCP_SYN | TCP_ACK)
        self._segment(True, TCP_ACK)

    def send(self, from_client: bool, payload: bytes) -> int:
        return self._segment(from_client, TCP_PSH | TCP_ACK, payload)

    def close(self) -> None:
        self._segment(True, TCP_FIN | TCP_ACK)
        self._segment(False, TCP_FIN | TCP_ACK)
        self._segment(True, TCP_ACK)

    def write(self, path: Path) -> None:
        with path.open("wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))  # pcap, Ethernet
            for i, frame in enumerate(self.frames):
                f.write(struct.pack("<IIII", 1_700_000_000, i * 1000, len(frame), len(frame)) + frame)


# ---------------------------------------------------------------- reading PDML


def first(elem: ET.Element, name: str, proto: str | None = None) -> ET.Element:
    scope = elem
    if proto is not None:
        found = next((p for p in elem.iter("proto") if p.get("name") == proto), None)
        assert found is not None, f"no {proto} in packet"
        scope = found
    for f in scope.iter("field"):
        if f.get("name") == name:
            return f
    raise AssertionError(f"no field {name}")


def fields_named(elem: ET.Element, name: str) -> list[ET.Element]:
    return [f for f in elem.iter("field") if f.get("name") == name]


def expert_problems(packet: ET.Element) -> list[str]:
    out = [
        f"malformed: {p.get('showname')}" for p in packet.iter("proto") if p.get("name") == "_ws.malformed"
    ]
    for expert in fields_named(packet, "_ws.expert"):
        severity = int(first(expert, "_ws.expert.severity").get("show", "0"))
        if severity >= SEVERITY_WARN:
            kinds = [
                c.get("name") for c in expert if c.tag == "field" and not c.get("name", "").startswith("_ws")
            ]
            out.append(f"{kinds[0] if kinds else '?'}: {expert.get('showname')}")
    return out

"""Cross-check of our encoding against Wireshark's RELOAD dissectors (Debian's tshark).

The test writes a capture of one TCP connection on 127.0.0.1 port 6084 (the RELOAD port,
RFC 6940 §14.2): a three-way handshake, then every example body in a signed message inside
a framing header (§6.6.2) with the receiver's ack frame after each, every error code, a
message fragmented with our fragment_message (§6.7), and a FIN exchange. IPv4 and TCP
checksums and sequence numbers are real, so tshark treats it as any capture.

tshark then dissects it (PDML for fields, ``-V -O reload,reload-framing`` as a person
would read it). No RELOAD packet may be malformed or carry an expert warning or error,
and the fields tshark shows must equal ours: header fields, message code, body fields
(compared as pools of values per field, e.g. every Kind-ID or Node-ID tshark printed
against every one our structure holds), and the security block.

Known tshark 4.0 quirks, checked to be exactly what is described:

* a SignerIdentity of type ``none`` (§6.3.4, used for absent values in a FetchAns,
  §7.4.2.2) is flagged "Unknown identity type";
* an IceCandidate's priority is read from the candidate's first four bytes (its
  IpAddressPort) rather than from after the foundation; the rest decodes right.
"""

from __future__ import annotations

import ipaddress
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from enum import IntEnum
from typing import Any

import pytest

from reload_core.wire.codes import ErrorCode, KindId, MessageCode, SignerIdentityType
from reload_core.wire.fragment import fragment_message
from reload_core.wire.framing import AckFrame, DataFrame
from reload_core.wire.message import ErrorResponse, Message, SecurityBlock
from reload_core.wire.registry import BODY_TYPES, decode_body, decode_struct
from tests.wire.codec_samples import body_examples, build_message, registered_codes
from tests.wire.tshark_support import (
    CLIENT_PORT,
    RELOAD_PORT,
    TSHARK,
    TcpCapture,
)
from tests.wire.tshark_support import expert_problems as _expert_problems
from tests.wire.tshark_support import fields_named as _all
from tests.wire.tshark_support import first as _first

pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (Debian package 'tshark')")

# ---------------------------------------------------------------- the capture


@dataclass
class Sent:
    frame: int
    sequence: int
    code: int
    body: Any
    message: Message
    raw: bytes


@dataclass
class Capture:
    sent: list[Sent]
    acks: dict[int, tuple[int, int]]  # frame -> (ack_sequence, received)
    fragments: list[int]
    whole_fragmented: bytes
    frames: list[bytes]
    packets: dict[int, ET.Element]
    verbose: str


def _is_request(code: int) -> bool:
    return code != MessageCode.error and code % 2 == 1


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    assert TSHARK is not None
    cap = TcpCapture()
    cap.handshake()
    framing_seq = {True: 0, False: 0}  # each side of a link numbers its own frames (§6.6.2)
    sent: list[Sent] = []
    acks: dict[int, tuple[int, int]] = {}

    def send_data(from_client: bool, message_bytes: bytes) -> tuple[int, int]:
        seq = framing_seq[from_client]
        framing_seq[from_client] += 1
        frame = cap.send(from_client, DataFrame(seq, message_bytes).to_bytes())
        # The receiver acks at once; bit 1 of received: seq-1 was received too (§6.6.2).
        ack = AckFrame(seq, 1 if seq else 0)
        acks[cap.send(not from_client, ack.to_bytes())] = (ack.ack_sequence, ack.received)
        return frame, seq

    for i, (code, body) in enumerate(body_examples()):
        message = build_message(code, body, transaction_id=0x5EED_0000_0000 + i, ttl=100 - i % 7)
        raw = message.to_bytes()
        frame, seq = send_data(_is_request(code), raw)
        sent.append(Sent(frame, seq, code, body, message, raw))

    store = next(b for c, b in body_examples() if c == MessageCode.store_req)
    whole = build_message(MessageCode.store_req, store, transaction_id=0xF4A6).to_bytes()
    fragments = [send_data(True, f)[0] for f in fragment_message(whole, len(whole) // 3 + 100)]
    cap.close()

    tmp = tmp_path_factory.mktemp("tshark")
    pcap = tmp / "reload.pcap"
    cap.write(pcap)
    checks = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]
    pdml = subprocess.run(
        [TSHARK, "-r", str(pcap), *checks, "-T", "pdml"], capture_output=True, timeout=120, check=True
    )
    verbose = subprocess.run(
        [TSHARK, "-r", str(pcap), *checks, "-V", "-O", "reload,reload-framing"],
        capture_output=True,
        timeout=120,
        check=True,
        text=True,
    )
    root = ET.fromstring(pdml.stdout)
    packets = {int(_first(p, "num", "geninfo").get("show", "0")): p for p in root.iter("packet")}
    return Capture(sent, acks, fragments, whole, cap.frames, packets, verbose.stdout)


# ---------------------------------------------------------------- reading PDML


def _within(
    elem: ET.Element, names: frozenset[str], inside: str | None = None, outside: str | None = None
) -> Iterator[ET.Element]:
    """Fields named in ``names`` under ``elem``: only below an ``inside`` field if given,
    never below an ``outside`` one."""

    def walk(e: ET.Element, under: bool) -> Iterator[ET.Element]:
        for child in e:
            if child.tag != "field" or (outside is not None and child.get("name") == outside):
                continue
            now = under or inside is None or child.get("name") == inside
            if now and child.get("name") in names:
                yield child
            yield from walk(child, now)

    return walk(elem, False)


def _raw(f: ET.Element, frame: bytes) -> bytes:
    pos, size = int(f.get("pos", "0")), int(f.get("size", "0"))
    return frame[pos : pos + size]


def _as_int(f: ET.Element, frame: bytes) -> object:
    return int.from_bytes(_raw(f, frame), "big")


def _as_bytes(f: ET.Element, frame: bytes) -> object:
    return _raw(f, frame).hex()


def _as_opaque(f: ET.Element, frame: bytes) -> object:
    """An ``opaque x<..>`` container: its bytes less the length prefix tshark shows first."""
    raw = _raw(f, frame)
    children = [c for c in f if c.tag == "field"]
    if children and children[0].get("name", "").startswith("reload.length."):
        raw = raw[int(children[0].get("size", "0")) :]
    return raw.hex()


def _as_ip(f: ET.Element, frame: bytes) -> object:
    return str(ipaddress.ip_address(_raw(f, frame)))


# ---------------------------------------------------------------- our side, as leaves


CONFIG_UPDATE_ARMS = {1: "config_data", 2: "kinds"}  # ConfigUpdateType config(1), kind(2) (§6.5.4.1)


def _leaves(obj: Any, kind: int | None = None) -> Iterator[tuple[str, str, Any]]:
    """(class, field, value) for every leaf of a codec structure. A DataValue of the
    SIP-REGISTRATION Kind is decoded as the SipRegistration tshark shows inside it."""
    cls = type(obj).__name__
    if cls == "SignerIdentity" and obj.identity_type == SignerIdentityType.none:
        yield cls, "identity_type", int(obj.identity_type)
        return
    if cls == "DataValue" and kind == KindId.SIP_REGISTRATION and obj.exists and obj.value:
        from reload_core.wire.sip_registration import SipRegistration

        yield cls, "exists", 1
        yield from _leaves(decode_struct(SipRegistration, obj.value), kind)
        return
    if cls in ("DictionaryEntry", "DictionaryEntryMeta") and kind == KindId.SIP_REGISTRATION:
        yield "SipRegistrationKey", "node_id", obj.key.hex()  # RFC 7904 §3.2: keyed by Node-ID
    if cls == "LeaveReq" and obj.overlay_specific_data:
        from reload_core.wire.chord import ChordLeaveData  # CHORD-RELOAD's LeaveReq data (§10.7.3)

        yield cls, "leaving_peer_id", obj.leaving_peer_id.hex()
        yield from _leaves(decode_struct(ChordLeaveData, obj.overlay_specific_data), kind)
        return
    kind = getattr(obj, "kind", kind) if hasattr(obj, "values") else kind
    for f in fields(obj):
        value = getattr(obj, f.name)
        if cls == "ConfigUpdateReq" and f.name not in ("type", CONFIG_UPDATE_ARMS.get(int(obj.type), "")):
            continue  # only the arm that ``type`` selects is on the wire (§6.5.4)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if item is None:
                continue
            if is_dataclass(item):
                yield from _leaves(item, kind)
            else:
                yield cls, f.name, _norm(item)


def _norm(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (bool, IntEnum)):
        return int(value)
    if isinstance(value, str):
        return str(ipaddress.ip_address(value))  # IpAddressPort.addr is the only str leaf
    return value


@dataclass(frozen=True)
class Pool:
    """Values of one meaning: what tshark shows under ``tshark`` names against what our
    structure holds in ``ours`` ("Class.field", or "*.field" for any class)."""

    tshark: frozenset[str]
    ours: frozenset[str]
    read: Callable[[ET.Element, bytes], object] = _as_int
    inside: str | None = None
    outside: str | None = None

    def matches(self, cls: str, name: str) -> bool:
        return f"{cls}.{name}" in self.ours or f"*.{name}" in self.ours


def P(
    tshark: str,
    ours: str,
    read: Callable[[ET.Element, bytes], object] = _as_int,
    inside: str | None = None,
    outside: str | None = None,
) -> Pool:
    return Pool(frozenset(tshark.split()), frozenset(ours.split()), read, inside, outside)


KEYS = "reload.storeddataspecifier.keys"

SIGNATURE_POOLS = [
    P("reload.hash_algorithm", "SignatureAndHashAlgorithm.hash MetaData.hash_algorithm"),
    P("reload.signature_algorithm", "SignatureAndHashAlgorithm.signature"),
    P("reload.signature.identity.type", "SignerIdentity.identity_type"),
    P("reload.signeridentityvalue.hash_alg", "SignerIdentity.hash_alg"),
    P(
        "reload.signature.identity.value.certificate_hash reload.signature.identity.value.certificate_node_id_hash",
        "SignerIdentity.certificate_hash",
        _as_opaque,
    ),
    P("reload.signature.value", "Signature.signature_value", _as_opaque),
]

SECURITY_POOLS = [
    P("reload.certificate.type", "GenericCertificate.type"),
    P("reload.certificate", "GenericCertificate.certificate", _as_opaque),
    *SIGNATURE_POOLS,
]

NODE_IDS = (
    "JoinReq.joining_peer_id LeaveReq.leaving_peer_id ChordRouteQueryAns.next_peer ChordUpdate.predecessors "
    "ChordUpdate.successors ChordUpdate.fingers ChordLeaveData.predecessors ChordLeaveData.successors "
    "StoreKindResponse.replicas NodeDestination.node_id SipRegistrationKey.node_id"
)

BODY_POOLS = [
    # §7: storage
    P("reload.kinddata.kind reload.kindid", "*.kind FindReq.kinds UnknownKinds.unknown_kinds"),
    P("reload.generation_counter", "*.generation_counter *.generation"),
    P("reload.store.replica_number", "StoreReq.replica_number"),
    P("reload.storeddata.storage_time", "StoredData.storage_time StoredMetaData.storage_time"),
    P("reload.storeddata.lifetime", "StoredData.lifetime StoredMetaData.lifetime"),
    P("reload.datavalue.exists", "DataValue.exists MetaData.exists"),
    P("reload.arrayentry.index", "ArrayEntry.index ArrayEntryMeta.index"),
    # tshark misreads non-empty dictionary key lists in a StoredDataSpecifier: see below.
    P("reload.dictionarykey", "DictionaryEntry.key DictionaryEntryMeta.key", _as_opaque, outside=KEYS),
    P("reload.metadata.value_length", "MetaData.value_length"),
    P("reload.metadata.hash_value", "MetaData.hash_value", _as_opaque),
    P("reload.resource", "*.resource", _as_opaque),
    P("reload.findkindata.closest", "FindKindData.closest", _as_opaque),
    # RFC 7904 §3.2 inside SIP-REGISTRATION values
    P("reload.sipregistration.type", "SipRegistration.type"),
    P("reload.sipregistration.data.uri", "SipRegistrationUri.uri", _as_opaque),
    P("reload.sipregistration.data.contact_prefs", "SipRegistrationRoute.contact_prefs", _as_opaque),
    # Node-IDs and Destinations wherever they occur in a body
    P(
        "reload.nodeid reload.joinreq.joining_peer_id reload.leavereq.leaving_peer_id "
        "reload.chordroutequeryans.nodeid reload.destination.data.nodeid",
        NODE_IDS,
        _as_bytes,
    ),
    P("reload.destination.data.resourceid", "ResourceDestination.resource_id", _as_opaque),
    # §6.5: Attach, AppAttach, Ping, ConfigUpdate
    P("reload.ufrag", "*.ufrag", _as_opaque),
    P("reload.password", "*.password", _as_opaque),
    P("reload.role", "*.role", _as_opaque),
    P("reload.icecandidate.foundation", "IceCandidate.foundation", _as_opaque),
    P("reload.icecandidate.type", "IceCandidate.type"),
    P("reload.overlaylink.type", "IceCandidate.overlay_link"),
    P("reload.ipv4addr reload.ipv6addr", "IpAddressPort.addr", _as_ip),
    P("reload.port", "IpAddressPort.port"),
    P("reload.iceextension.name", "IceExtension.name", _as_opaque),
    P("reload.iceextension.value", "IceExtension.value", _as_opaque),
    P("reload.sendupdate", "*.send_update"),
    P("reload.application", "*.application"),
    P("reload.ping.response_id", "PingAns.response_id"),
    P("reload.ping.time", "PingAns.time"),
    P("reload.configupdatereq.type", "ConfigUpdateReq.type"),
    P("reload.configupdatereq.config_data", "ConfigUpdateReq.config_data", _as_opaque),
    P("reload.configupdatereq.kinddescription", "ConfigUpdateReq.kinds", _as_opaque),
    # §6.4.2, §10: topology plug-in
    P("reload.probe_information.type", "ProbeReq.requested_info", inside="reload.probereq"),
    P("reload.responsible_set", "ResponsibleSetInformation.responsible_ppb"),
    P("reload.num_resources", "NumResourcesInformation.num_resources"),
    P("reload.uptime", "UptimeInformation.uptime ChordUpdate.uptime"),
    P("reload.chordupdate.type", "ChordUpdate.type"),
    P("reload.chordleavedata.type", "ChordLeaveData.type"),
    # §6.3.3.1
    P("reload.error_response.code", "ErrorResponse.error_code"),
    P("reload.error_response_info", "ErrorResponse.error_info", _as_opaque),
    # signatures of StoredData (§7.1)
    *SIGNATURE_POOLS,
]


def _compare(
    pools: list[Pool], tree: ET.Element, frame: bytes, ours: list[tuple[str, str, Any]]
) -> tuple[int, list[str]]:
    compared, problems = 0, []
    for pool in pools:
        theirs = Counter(pool.read(f, frame) for f in _within(tree, pool.tshark, pool.inside, pool.outside))
        mine = Counter(v for cls, name, v in ours if pool.matches(cls, name))
        if theirs != mine:
            problems.append(f"{sorted(pool.tshark)}: tshark {dict(theirs)} != ours {dict(mine)}")
        compared += sum(mine.values())
    return compared, problems


def _body_leaves(s: Sent) -> list[tuple[str, str, Any]]:
    body = decode_body(s.code, s.message.message_contents.message_body)
    leaves = list(_leaves(body))
    if isinstance(body, ErrorResponse):
        structured = {
            int(ErrorCode.Error_Generation_Counter_Too_Low): BODY_TYPES.get(MessageCode.store_ans),
            int(ErrorCode.Error_Unknown_Kind): _unknown_kinds_type(),
        }.get(int(body.error_code))
        if structured is not None:
            # §7.4.1.2 gives these two error_info a structure, which tshark decodes.
            leaves = [x for x in leaves if x[1] != "error_info"]
            leaves += list(_leaves(decode_struct(structured, body.error_info)))
    return leaves


def _unknown_kinds_type() -> type[Any]:
    from reload_core.wire.storage import UnknownKinds

    return UnknownKinds


# ---------------------------------------------------------------- the tests


def test_every_registered_body_code_is_in_the_capture(capture: Capture) -> None:
    assert {s.code for s in capture.sent} >= registered_codes()
    assert {s.body.error_code for s in capture.sent if s.code == MessageCode.error} >= set(ErrorCode)


def test_tcp_stream_is_well_formed(capture: Capture) -> None:
    for num, packet in capture.packets.items():
        assert not _all(packet, "tcp.analysis.flags"), f"frame {num}: TCP analysis flagged it"
        assert _first(packet, "tcp.checksum.status").get("show") == "1", f"frame {num}: bad TCP checksum"
        assert _first(packet, "ip.checksum.status").get("show") == "1", f"frame {num}: bad IP checksum"
        assert int(_first(packet, "tcp.dstport").get("show", "0")) in (RELOAD_PORT, CLIENT_PORT)


def _none_identities(s: Sent) -> int:
    return sum(
        1 for cls, name, v in _body_leaves(s) if (cls, name, v) == ("SignerIdentity", "identity_type", 3)
    )


def test_no_packet_is_malformed_or_flagged(capture: Capture) -> None:
    problems = []
    by_frame = {s.frame: s for s in capture.sent}
    for num, packet in capture.packets.items():
        found = _expert_problems(packet)
        quirk = "reload.signature.identity.type.unknown: Expert Info (Error/Protocol): Unknown identity type"
        allowed = _none_identities(by_frame[num]) if num in by_frame else 0
        if sum(1 for p in found if p == quirk) <= allowed:
            found = [p for p in found if p != quirk]
        problems += [f"frame {num}: {p}" for p in found]
    assert not problems, "\n".join(problems)
    assert "Malformed" not in capture.verbose
    assert capture.verbose.count("REsource LOcation And Discovery Framing") == len(capture.packets) - 6


def test_none_identity_quirk_is_what_we_expect(capture: Capture) -> None:
    """tshark flags SignerIdentityType none; it is legal (§6.3.4, §7.4.2.2)."""
    with_none = [s for s in capture.sent if _none_identities(s)]
    assert with_none, "the examples should contain a FetchAns with a none identity"
    for s in with_none:
        messages = [e.get("showname") for e in _all(capture.packets[s.frame], "_ws.expert")]
        assert messages.count("Expert Info (Error/Protocol): Unknown identity type") == _none_identities(s)


def test_framing_and_forwarding_header_fields(capture: Capture) -> None:
    for s in capture.sent:
        packet = capture.packets[s.frame]
        header = s.message.forwarding_header
        framing = _first(packet, "reload_framing.type")
        assert framing.get("show") == "128"
        assert _first(packet, "reload_framing.sequence").get("show") == str(s.sequence)
        assert _first(packet, "reload_framing.message.length").get("show") == str(len(s.raw))
        fwd = _first(packet, "reload.forwarding")
        assert int(_first(fwd, "reload.forwarding.overlay").get("show", ""), 16) == header.overlay
        assert int(_first(fwd, "reload.forwarding.trans_id").get("show", ""), 16) == header.transaction_id
        assert _first(fwd, "reload.forwarding.ttl").get("show") == str(header.ttl)
        assert _first(fwd, "reload.forwarding.configuration_sequence").get("show") == str(
            header.configuration_sequence
        )
        assert _first(fwd, "reload.forwarding.fragment.last").get("show") == "1"
        assert _first(fwd, "reload.forwarding.fragment.offset").get("show") == "0"
        assert _first(fwd, "reload.length.32").get("show") == str(len(s.raw))
        assert _first(fwd, "reload.forwarding.max_response_length").get("show") == str(
            header.max_response_length
        )
        tshark_dests = [f.get("value") for f in _all(fwd, "reload.destination.data.nodeid")]
        assert tshark_dests == [d.node_id.hex() for d in header.destination_list]  # type: ignore[union-attr]


def test_message_code_and_body_length(capture: Capture) -> None:
    for s in capture.sent:
        packet = capture.packets[s.frame]
        code = _first(packet, "reload.message.code")
        assert int(code.get("show", "")) == s.code
        assert f"({MessageCode(s.code).name})" in (code.get("showname") or "") or s.code == MessageCode.error
        body = _first(packet, "reload.message.body")
        assert _first(body, "reload.length.32").get("show") == str(
            len(s.message.message_contents.message_body)
        )


def test_body_fields_match(capture: Capture) -> None:
    problems, total = [], 0
    for s in capture.sent:
        frame = capture.frames[s.frame - 1]
        body = _first(capture.packets[s.frame], "reload.message.body")
        compared, found = _compare(BODY_POOLS, body, frame, _body_leaves(s))
        total += compared
        problems += [f"frame {s.frame} {MessageCode(s.code).name}: {p}" for p in found]
    assert not problems, "\n".join(problems)
    assert total > 300  # the pools did compare the bodies


def test_ice_candidate_priority_quirk(capture: Capture) -> None:
    """tshark 4.0 prints a candidate's first four bytes as its priority (NOTES.md)."""
    seen = 0
    for s in capture.sent:
        frame = capture.frames[s.frame - 1]
        ours = [v for cls, name, v in _body_leaves(s) if (cls, name) == ("IceCandidate", "priority")]
        theirs = _all(capture.packets[s.frame], "reload.icecandidate")
        assert len(ours) == len(theirs)
        for candidate, priority in zip(theirs, ours, strict=True):
            shown = _first(candidate, "reload.icecandidate.priority")
            assert shown.get("pos") == candidate.get("pos")  # read from the IpAddressPort
            assert int(shown.get("show", "")) == int.from_bytes(_raw(candidate, frame)[:4], "big")
            # Ours sits after addr_port, overlay_link and foundation<0..255> (§6.5.1.1).
            foundation = _first(candidate, "reload.icecandidate.foundation")
            at = int(foundation.get("pos", "")) + int(foundation.get("size", ""))
            assert int.from_bytes(frame[at : at + 4], "big") == priority
            seen += 1
    assert seen >= 4


def test_security_block_fields_match(capture: Capture) -> None:
    problems = []
    for s in capture.sent:
        frame = capture.frames[s.frame - 1]
        block = _first(capture.packets[s.frame], "reload.security_block")
        ours: SecurityBlock = s.message.security_block
        _, found = _compare(SECURITY_POOLS, block, frame, list(_leaves(ours)))
        problems += [f"frame {s.frame}: {p}" for p in found]
    assert not problems, "\n".join(problems)


def test_ack_frames(capture: Capture) -> None:
    assert len(capture.acks) == len(capture.sent) + len(capture.fragments)
    for num, (ack_sequence, received) in capture.acks.items():
        packet = capture.packets[num]
        assert _first(packet, "reload_framing.type").get("show") == "129"
        assert _first(packet, "reload_framing.ack_sequence").get("show") == str(ack_sequence)
        assert int(_first(packet, "reload_framing.received").get("show", ""), 0) == received
        assert not _expert_problems(packet)


def test_tshark_reassembles_our_fragments(capture: Capture) -> None:
    """§6.7 cross-check: tshark puts fragment_message's pieces back together."""
    assert len(capture.fragments) == 3
    for num in capture.fragments[:-1]:
        frag = _first(capture.packets[num], "reload.forwarding.fragment.last")
        assert frag.get("show") == "0"
    last = capture.packets[capture.fragments[-1]]
    header_length = int(_first(last, "reload.forwarding").get("size", ""))
    reassembled = int(_first(last, "reload.reassembled.length").get("show", ""))
    assert header_length + reassembled == len(capture.whole_fragmented)  # tshark counts the payload
    assert int(_first(last, "reload.fragment.count").get("show", "")) == 3
    assert int(_first(last, "reload.message.code").get("show", "")) == MessageCode.store_req
    assert not _expert_problems(last)


def test_dictionary_keys_quirk(capture: Capture) -> None:
    """tshark 4.0 bug: in a StoredDataSpecifier (§7.4.2.1) with dictionary keys, it shows
    keys read from outside the ``keys`` vector (empty, at unrelated offsets), several
    times over. Our bytes are ``DictionaryKey keys<0..2^16-1>`` with each key an
    ``opaque<0..2^16-1>``, as the RFC has them, so we check our layout here directly."""
    seen = 0
    for s in capture.sent:
        frame = capture.frames[s.frame - 1]
        ours = [v for cls, name, v in _body_leaves(s) if (cls, name) == ("DictionarySpecifier", "keys")]
        for keys in _all(capture.packets[s.frame], KEYS):
            start, size = int(keys.get("pos", "")), int(keys.get("size", ""))
            raw = frame[start : start + size]
            shown = _all(keys, "reload.dictionarykey")
            if not ours:
                assert raw == b"\x00\x00" and not shown
                continue
            expected = b"".join(len(k).to_bytes(2, "big") + k for k in map(bytes.fromhex, ours))
            assert raw == len(expected).to_bytes(2, "big") + expected
            assert shown and all(not start <= int(k.get("pos", "")) < start + size for k in shown)
            seen += 1
    assert seen, "the examples should have a StatReq or FetchReq naming dictionary keys"

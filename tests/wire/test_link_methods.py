"""Attach, AppAttach, Ping and ConfigUpdate bodies (RFC 6940 §6.5) and IpAddressPort (§6.3.1.1).

Byte vectors are written field by field from the RFC's presentation language: ``<0..2^8-1>``
vectors carry a 1-byte length, ``<0..2^16-1>`` a 2-byte one, ``<0..2^24-1>`` a 3-byte one.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.buffer import DecodeError, EncodeError, Reader
from reload_core.wire.codes import ApplicationId, MessageCode, OverlayLinkType
from reload_core.wire.context import DEFAULT_CONTEXT
from reload_core.wire.jsonmap import from_json, to_json
from reload_core.wire.link_methods import (
    AppAttachAns,
    AppAttachReq,
    AttachAns,
    AttachReq,
    AttachReqAns,
    CandType,
    ConfigUpdateAns,
    ConfigUpdateReq,
    ConfigUpdateType,
    IceCandidate,
    IceExtension,
    PingAns,
    PingReq,
    UnknownIceCandidate,
    decode_candidate,
    usable_candidates,
)
from reload_core.wire.registry import BODY_TYPES, decode_body, decode_struct, encode_struct


def h(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts))


# ---------------------------------------------------------------- §6.3.1.1 IpAddressPort

IPV4_EXAMPLE = h(
    "01",  # type = ipv4_address
    "06",  # length = 6
    "c0000201",  # addr = 192.0.2.1
    "17c4",  # port = 6084
)
IPV6_EXAMPLE = h(
    "02",  # type = ipv6_address
    "12",  # length = 18
    "20010db8000000000000000000000001",  # addr = 2001:db8::1 (uint128)
    "0d96",  # port = 3478
)


def test_ip_address_port_rfc_example() -> None:
    assert bytes.fromhex("01 06 c0 00 02 01 17 c4") == IPV4_EXAMPLE
    assert decode_struct(IpAddressPort, IPV4_EXAMPLE) == IpAddressPort("192.0.2.1", 6084)
    assert encode_struct(IpAddressPort("192.0.2.1", 6084)) == IPV4_EXAMPLE


def test_ip_address_port_ipv6() -> None:
    assert decode_struct(IpAddressPort, IPV6_EXAMPLE) == IpAddressPort("2001:db8::1", 3478)
    assert encode_struct(IpAddressPort("2001:db8::1", 3478)) == IPV6_EXAMPLE


# ---------------------------------------------------------------- §6.5.1.1 IceCandidate

HOST = IceCandidate(
    IpAddressPort("192.0.2.1", 6084),
    OverlayLinkType.DTLS_UDP_SR,
    b"a1b2",
    0x7EFFFFFF,
    CandType.host,
    None,
    (IceExtension(b"generation", b"0"),),
)
HOST_BYTES = (
    IPV4_EXAMPLE  # addr_port = 192.0.2.1:6084
    + h("01")  # overlay_link = DTLS-UDP-SR
    + h("04")
    + b"a1b2"  # foundation<0..255>
    + h("7effffff")  # priority = 126<<24 | 65535<<8 | 255
    + h("01")  # type = host: no rel_addr_port
    + h("000f")  # extensions<0..2^16-1>: 15 bytes
    + h("000a")
    + b"generation"  # IceExtension.name<0..2^16-1>
    + h("0001")
    + b"0"  # IceExtension.value<0..2^16-1>
)

SRFLX = IceCandidate(
    IpAddressPort("198.51.100.7", 49152),
    OverlayLinkType.DTLS_UDP_SR,
    b"srflx1",
    0x64FFFFFF,
    CandType.srflx,
    IpAddressPort("192.0.2.1", 6084),
)
SRFLX_BYTES = (
    h("01", "06", "c6336407", "c000")  # addr_port = 198.51.100.7:49152
    + h("01")  # overlay_link = DTLS-UDP-SR
    + h("06")
    + b"srflx1"  # foundation
    + h("64ffffff")  # priority = 100<<24 | 65535<<8 | 255
    + h("02")  # type = srflx
    + IPV4_EXAMPLE  # rel_addr_port = 192.0.2.1:6084
    + h("0000")  # extensions: none
)

RELAY = IceCandidate(
    IpAddressPort("2001:db8::1", 3478),
    OverlayLinkType.DTLS_UDP_SR,
    b"relay1",
    0x00FFFFFF,
    CandType.relay,
    IpAddressPort("198.51.100.7", 49152),
    (IceExtension(b"network-id", b"1"), IceExtension(b"network-cost", b"10")),
)
RELAY_BYTES = (
    IPV6_EXAMPLE  # addr_port = [2001:db8::1]:3478
    + h("01")  # overlay_link = DTLS-UDP-SR
    + h("06")
    + b"relay1"  # foundation
    + h("00ffffff")  # priority = 0<<24 | 65535<<8 | 255
    + h("04")  # type = relay
    + h("01", "06", "c6336407", "c000")  # rel_addr_port = 198.51.100.7:49152
    + h("0021")  # extensions: 33 bytes
    + h("000a")
    + b"network-id"
    + h("0001")
    + b"1"  # 15 bytes
    + h("000c")
    + b"network-cost"
    + h("0002")
    + b"10"  # 18 bytes
)


@pytest.mark.parametrize(
    ("cand", "wire"),
    [(HOST, HOST_BYTES), (SRFLX, SRFLX_BYTES), (RELAY, RELAY_BYTES)],
    ids=["host", "srflx", "relay"],
)
def test_ice_candidate_vectors(cand: IceCandidate, wire: bytes) -> None:
    assert encode_struct(cand) == wire
    assert decode_struct(IceCandidate, wire) == cand


def test_ice_candidate_lengths_by_hand() -> None:
    assert (len(HOST_BYTES), len(SRFLX_BYTES), len(RELAY_BYTES)) == (36, 31, 76)


@pytest.mark.parametrize("cand_type", [0, 3, 5, 255])
def test_unknown_cand_type_is_dropped(cand_type: int) -> None:
    """§6.3.1.1: IceCandidate's select is not extensible: parse error, discard, no response.
    3 is RESERVED (prflx) in §6.5.1.1."""
    wire = bytearray(HOST_BYTES)
    wire[18] = cand_type  # the CandType byte: 8 addr_port + 1 + 5 foundation + 4 priority
    with pytest.raises(DecodeError) as exc:
        decode_struct(IceCandidate, bytes(wire))
    assert exc.value.drop
    assert exc.value.field == "IceCandidate.type"
    assert exc.value.offset == 18


def test_unknown_address_type_in_candidate_is_dropped() -> None:
    wire = bytearray(SRFLX_BYTES)
    wire[21] = 9  # rel_addr_port.type: 8 addr_port + 1 + 7 foundation + 4 + 1 type
    with pytest.raises(DecodeError) as exc:
        decode_struct(IceCandidate, bytes(wire))
    assert exc.value.drop and exc.value.field == "IpAddressPort.type"


def test_unknown_overlay_link_type_is_kept() -> None:
    """OverlayLinkType is an IANA registry (§14.10): a new value is not a parse error."""
    wire = bytearray(HOST_BYTES)
    wire[8] = 0x42
    cand = decode_struct(IceCandidate, bytes(wire))
    assert cand.overlay_link == 0x42 and not isinstance(cand.overlay_link, OverlayLinkType)
    assert encode_struct(cand) == bytes(wire)


# An AddressType 7 (not in §6.3.1.1) of 5 bytes: the structure "can be extended".
NEW_ADDRESS = h("07", "05", "0102030405")
UNKNOWN_ADDR_BYTES = (
    NEW_ADDRESS  # addr_port of an AddressType we do not know
    + h("01")  # overlay_link = DTLS-UDP-SR
    + h("02")
    + b"x9"  # foundation
    + h("7effffff")  # priority
    + h("01")  # type = host
    + h("0000")  # extensions: none
)
UNKNOWN_REL_BYTES = (
    IPV4_EXAMPLE  # addr_port = 192.0.2.1:6084
    + h("04")  # overlay_link = TLS-TCP-FH-NO-ICE
    + h("01")
    + b"r"  # foundation
    + h("64ffffff")  # priority
    + h("02")  # type = srflx
    + NEW_ADDRESS  # rel_addr_port of an AddressType we do not know
    + h("0008", "0001", "6b", "0003", "763d31")  # one extension, name "k", value "v=1"
)


@pytest.mark.parametrize("wire", [UNKNOWN_ADDR_BYTES, UNKNOWN_REL_BYTES], ids=["addr_port", "rel_addr_port"])
def test_a_candidate_with_an_unknown_address_type_is_kept_whole(wire: bytes) -> None:
    """§6.3.1.1: an IpAddressPort of a new type can be read past; in a candidate list the
    candidate is kept as its bytes (re-encoded as it came) instead of failing the list."""
    r = Reader(wire + HOST_BYTES)
    unknown = decode_candidate(r)
    assert unknown == UnknownIceCandidate(wire)
    assert decode_candidate(r) == HOST and r.eof()
    assert encode_struct(unknown) == wire
    assert unknown.overlay_link == wire[len(IPV4_EXAMPLE) if wire[0] == 1 else len(NEW_ADDRESS)]


def test_attach_with_an_unknown_candidate_round_trips_byte_for_byte() -> None:
    candidates = UNKNOWN_ADDR_BYTES + HOST_BYTES + UNKNOWN_REL_BYTES + SRFLX_BYTES
    wire = (
        h("04")
        + b"8hhY"
        + h("16")
        + b"asd88fgpdd777uzjYhagZg"
        + h("07")
        + b"passive"
        + len(candidates).to_bytes(2, "big")
        + candidates
        + h("00")
    )
    body = decode_body(MessageCode.attach_req, wire)
    assert isinstance(body, AttachReq)
    assert body.candidates == (
        UnknownIceCandidate(UNKNOWN_ADDR_BYTES),
        HOST,
        UnknownIceCandidate(UNKNOWN_REL_BYTES),
        SRFLX,
    )
    assert usable_candidates(body.candidates) == (HOST, SRFLX)
    assert encode_struct(body) == wire
    # The JSON view (p2psip wire decode) shows the kept candidate as hex, and takes it back.
    as_json = to_json(body)
    assert as_json["candidates"][0] == {"candidate": UNKNOWN_ADDR_BYTES.hex()}
    assert from_json(AttachReq, as_json) == body
    listed = UNKNOWN_ADDR_BYTES + SRFLX_BYTES
    app_wire = APP_ATTACH_REQ_BYTES[: -2 - len(SRFLX_BYTES)] + len(listed).to_bytes(2, "big") + listed
    app = decode_body(MessageCode.app_attach_req, app_wire)
    assert isinstance(app, AppAttachReq) and app.candidates == (
        UnknownIceCandidate(UNKNOWN_ADDR_BYTES),
        SRFLX,
    )


def test_an_unknown_cand_type_in_a_list_still_drops_the_message() -> None:
    """Without the CandType the candidate's end is unknown (the select is not extensible)."""
    bad = bytearray(UNKNOWN_ADDR_BYTES)
    bad[7 + 1 + 3 + 4] = 3  # RESERVED(3)
    with pytest.raises(DecodeError) as exc:
        decode_candidate(Reader(bytes(bad)))
    assert exc.value.drop and exc.value.field == "IceCandidate.type"


def test_a_known_address_type_of_the_wrong_length_is_still_malformed() -> None:
    bad = h("01", "05", "c0000201", "17") + HOST_BYTES[8:]
    with pytest.raises(DecodeError) as exc:
        decode_candidate(Reader(bad))
    assert exc.value.field == "IpAddressPort.length"


def test_unknown_candidate_must_hold_one_candidate() -> None:
    for junk in (b"", UNKNOWN_ADDR_BYTES[:-1], UNKNOWN_ADDR_BYTES + b"\x00", HOST_BYTES[:10]):
        with pytest.raises(EncodeError):
            UnknownIceCandidate(junk)


def test_candidate_select_consistency_enforced() -> None:
    with pytest.raises(EncodeError):
        IceCandidate(IpAddressPort("192.0.2.1", 1), OverlayLinkType.DTLS_UDP_SR, b"1", 1, CandType.srflx)
    with pytest.raises(EncodeError):
        IceCandidate(
            IpAddressPort("192.0.2.1", 1),
            OverlayLinkType.DTLS_UDP_SR,
            b"1",
            1,
            CandType.host,
            IpAddressPort("192.0.2.1", 2),
        )


# ---------------------------------------------------------------- §6.5.1 Attach

ATTACH_REQ = AttachReq(b"8hhY", b"asd88fgpdd777uzjYhagZg", b"passive", (HOST,), True)
ATTACH_REQ_BYTES = (
    h("04")
    + b"8hhY"  # ufrag<0..2^8-1>
    + h("16")
    + b"asd88fgpdd777uzjYhagZg"  # password<0..2^8-1>: 22 bytes
    + h("07")
    + b"passive"  # role<0..2^8-1>
    + h("0024")  # candidates<0..2^16-1>: 36 bytes
    + HOST_BYTES
    + h("01")  # send_update = true
)
ATTACH_ANS = AttachAns(b"Ke9q", b"P5vHl0aZcN3sgbQyX7tRwE1m", b"active", (HOST, SRFLX, RELAY), False)
ATTACH_ANS_BYTES = (
    h("04")
    + b"Ke9q"
    + h("18")
    + b"P5vHl0aZcN3sgbQyX7tRwE1m"  # 24 bytes
    + h("06")
    + b"active"
    + h("008f")  # 36 + 31 + 76 = 143 bytes of candidates
    + HOST_BYTES
    + SRFLX_BYTES
    + RELAY_BYTES
    + h("00")  # send_update = false
)


def test_attach_req_vector() -> None:
    assert encode_struct(ATTACH_REQ) == ATTACH_REQ_BYTES
    decoded = decode_body(MessageCode.attach_req, ATTACH_REQ_BYTES)
    assert decoded == ATTACH_REQ and type(decoded) is AttachReq


def test_attach_ans_vector() -> None:
    assert encode_struct(ATTACH_ANS) == ATTACH_ANS_BYTES
    decoded = decode_body(MessageCode.attach_ans, ATTACH_ANS_BYTES)
    assert decoded == ATTACH_ANS and type(decoded) is AttachAns


def test_attach_req_and_ans_share_the_structure() -> None:
    assert issubclass(AttachReq, AttachReqAns) and issubclass(AttachAns, AttachReqAns)
    assert BODY_TYPES[MessageCode.attach_req] is AttachReq
    assert BODY_TYPES[MessageCode.attach_ans] is AttachAns
    # The same bytes decode as either; request and answer stay distinct values.
    assert decode_struct(AttachAns, ATTACH_REQ_BYTES) != ATTACH_REQ


@pytest.mark.parametrize("value", [2, 0xFF])
def test_attach_send_update_must_be_boolean(value: int) -> None:
    wire = ATTACH_REQ_BYTES[:-1] + bytes([value])
    with pytest.raises(DecodeError) as exc:
        decode_struct(AttachReq, wire)
    assert exc.value.field == "AttachReqAns.send_update"


def test_attach_candidate_overrunning_its_vector() -> None:
    """A candidates length one byte short: the last candidate cannot read past the vector."""
    wire = bytearray(ATTACH_REQ_BYTES)
    at = 1 + 4 + 1 + 22 + 1 + 7
    wire[at : at + 2] = (0x23).to_bytes(2, "big")
    with pytest.raises(DecodeError):
        decode_struct(AttachReq, bytes(wire))


# ---------------------------------------------------------------- §6.5.2 AppAttach

APP_ATTACH_REQ = AppAttachReq(b"r7Wq", b"Zk2mV9xB4nQ8cL1pT6sY3hJ0", ApplicationId.SIP, b"passive", (SRFLX,))
APP_ATTACH_REQ_BYTES = (
    h("04")
    + b"r7Wq"  # ufrag
    + h("18")
    + b"Zk2mV9xB4nQ8cL1pT6sY3hJ0"  # password
    + h("13c4")  # application = 5060 (SIP, §14.5)
    + h("07")
    + b"passive"  # role
    + h("001f")  # candidates: 31 bytes
    + SRFLX_BYTES
)
APP_ATTACH_ANS = AppAttachAns(b"Yq3e", b"fD8sK2lM9nB4vC7xZ1aQ5wE0", 0x9999, b"active", (HOST, RELAY))
APP_ATTACH_ANS_BYTES = (
    h("04")
    + b"Yq3e"
    + h("18")
    + b"fD8sK2lM9nB4vC7xZ1aQ5wE0"
    + h("9999")  # an Application-ID not in §14.5 stays a number
    + h("06")
    + b"active"
    + h("0070")  # 36 + 76 = 112 bytes
    + HOST_BYTES
    + RELAY_BYTES
)


def test_app_attach_vectors() -> None:
    assert encode_struct(APP_ATTACH_REQ) == APP_ATTACH_REQ_BYTES
    assert decode_body(MessageCode.app_attach_req, APP_ATTACH_REQ_BYTES) == APP_ATTACH_REQ
    assert encode_struct(APP_ATTACH_ANS) == APP_ATTACH_ANS_BYTES
    ans = decode_body(MessageCode.app_attach_ans, APP_ATTACH_ANS_BYTES)
    assert ans == APP_ATTACH_ANS and type(ans) is AppAttachAns
    assert isinstance(ans, AppAttachAns) and ans.application == 0x9999


# ---------------------------------------------------------------- §6.5.3 Ping


def test_ping_vectors() -> None:
    assert encode_struct(PingReq()) == h("0000")  # padding<0..2^16-1>: empty
    padded = h("0004", "00000000")
    assert decode_body(MessageCode.ping_req, padded) == PingReq(bytes(4))
    ans = PingAns(0x5A17C0FFEE123456, 1_700_000_000_123)
    wire = h(
        "5a17c0ffee123456",  # response_id (uint64)
        "0000018bcfe5687b",  # time = 1700000000123 ms since 1970 (uint64)
    )
    assert encode_struct(ans) == wire
    assert decode_body(MessageCode.ping_ans, wire) == ans


# ---------------------------------------------------------------- §6.5.4 ConfigUpdate

CONFIG_REQ = ConfigUpdateReq(ConfigUpdateType.config, config_data=b"<overlay/>")
CONFIG_REQ_BYTES = (
    h("01")  # type = config
    + h("0000000d")  # length = 3 + 10
    + h("00000a")
    + b"<overlay/>"  # config_data<0..2^24-1>
)
KIND_REQ = ConfigUpdateReq(ConfigUpdateType.kind, kinds=(b"<kind-block/>", b"<k/>"))
KIND_REQ_BYTES = (
    h("02")  # type = kind
    + h("00000018")  # length = 3 + 15 + 6
    + h("000015")  # kinds<0..2^24-1>: 21 bytes
    + h("000d")
    + b"<kind-block/>"  # KindDescription<0..2^16-1>
    + h("0004")
    + b"<k/>"
)


def test_config_update_vectors() -> None:
    assert encode_struct(CONFIG_REQ) == CONFIG_REQ_BYTES
    assert decode_body(MessageCode.config_update_req, CONFIG_REQ_BYTES) == CONFIG_REQ
    assert encode_struct(KIND_REQ) == KIND_REQ_BYTES
    assert decode_body(MessageCode.config_update_req, KIND_REQ_BYTES) == KIND_REQ
    assert encode_struct(ConfigUpdateAns()) == b""
    assert decode_body(MessageCode.config_update_ans, b"") == ConfigUpdateAns()


def test_config_update_unknown_type_is_kept() -> None:
    """§6.5.4.1: "This structure allows for unknown content types": skip by ``length``."""
    wire = h("07", "00000003", "abcdef")
    req = decode_body(MessageCode.config_update_req, wire)
    assert req == ConfigUpdateReq(7, unknown_data=h("abcdef"))
    assert encode_struct(req) == wire


def test_config_update_length_must_match_contents() -> None:
    wire = bytearray(CONFIG_REQ_BYTES)
    wire[4] = 0x0E  # length one more than the config_data vector
    with pytest.raises(DecodeError):
        decode_struct(ConfigUpdateReq, bytes(wire) + b"x")
    with pytest.raises(DecodeError):
        decode_struct(ConfigUpdateReq, h("00", "00000000"))  # invalidConfigUpdateType


def test_config_update_select_consistency_enforced() -> None:
    with pytest.raises(EncodeError):
        ConfigUpdateReq(ConfigUpdateType.config, kinds=(b"x",))
    with pytest.raises(EncodeError):
        ConfigUpdateReq(ConfigUpdateType.kind, config_data=b"x")
    with pytest.raises(EncodeError):
        ConfigUpdateReq(ConfigUpdateType.invalidConfigUpdateType)


# ---------------------------------------------------------------- hypothesis round trips

opaque8 = st.binary(max_size=40)
opaque16 = st.binary(max_size=300)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
addr_ports = st.builds(IpAddressPort, st.one_of(ipv4, ipv6), st.integers(0, 0xFFFF))
overlay_links = st.one_of(st.sampled_from(OverlayLinkType), st.integers(6, 255))
extensions = st.lists(st.builds(IceExtension, opaque16, opaque16), max_size=3).map(tuple)


@st.composite
def candidates(draw: st.DrawFn) -> IceCandidate:
    t = draw(st.sampled_from(CandType).filter(lambda c: c != CandType.invalidCandType))
    return IceCandidate(
        draw(addr_ports),
        draw(overlay_links),
        draw(st.binary(max_size=255)),
        draw(st.integers(0, 0xFFFFFFFF)),
        t,
        None if t == CandType.host else draw(addr_ports),
        draw(extensions),
    )


unknown_candidates = st.builds(
    lambda t, addr, link, rest: UnknownIceCandidate(
        bytes([t, len(addr)]) + addr + bytes([link]) + h("01") + b"f" + h("7effffff", "01", "0000")
    ),
    st.integers(3, 255),
    st.binary(max_size=20),
    st.integers(0, 255),
    st.none(),
)
candidate_lists = st.lists(st.one_of(candidates(), unknown_candidates), max_size=4).map(tuple)
applications = st.one_of(st.sampled_from(ApplicationId), st.integers(0, 0xFFFF))


def attach_bodies(cls: type[AttachReqAns]) -> st.SearchStrategy[Any]:
    return st.builds(cls, opaque8, opaque8, opaque8, candidate_lists, st.booleans())


def app_attach_bodies(cls: type[AppAttachReq] | type[AppAttachAns]) -> st.SearchStrategy[Any]:
    return st.builds(cls, opaque8, opaque8, applications, opaque8, candidate_lists)


config_updates = st.one_of(
    st.builds(lambda d: ConfigUpdateReq(ConfigUpdateType.config, config_data=d), st.binary(max_size=600)),
    st.builds(
        lambda ks: ConfigUpdateReq(ConfigUpdateType.kind, kinds=tuple(ks)), st.lists(opaque16, max_size=4)
    ),
    st.builds(lambda t, d: ConfigUpdateReq(t, unknown_data=d), st.integers(3, 255), st.binary(max_size=50)),
)

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "IpAddressPort": addr_ports,
    "IceExtension": st.builds(IceExtension, opaque16, opaque16),
    "IceCandidate": candidates(),
    "AttachReq": attach_bodies(AttachReq),
    "AttachAns": attach_bodies(AttachAns),
    "AppAttachReq": app_attach_bodies(AppAttachReq),
    "AppAttachAns": app_attach_bodies(AppAttachAns),
    "PingReq": st.builds(PingReq, st.binary(max_size=2000)),
    "PingAns": st.builds(PingAns, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
    "ConfigUpdateReq": config_updates,
    "ConfigUpdateAns": st.just(ConfigUpdateAns()),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(name: str, data: st.DataObject) -> None:
    obj = data.draw(STRATEGIES[name])
    wire = encode_struct(obj)
    again = decode_struct(type(obj), wire, DEFAULT_CONTEXT)
    assert again == obj
    assert encode_struct(again) == wire


LINK_CLASSES = [
    IpAddressPort,
    IceExtension,
    IceCandidate,
    AttachReq,
    AttachAns,
    AppAttachReq,
    AppAttachAns,
    PingReq,
    PingAns,
    ConfigUpdateReq,
    ConfigUpdateAns,
]


@pytest.mark.parametrize("cls", LINK_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=300)
@given(data=st.binary(max_size=120))
def test_arbitrary_bytes_raise_only_decode_error(cls: Any, data: bytes) -> None:
    """Garbage either decodes to a value that re-encodes to the same bytes, or raises DecodeError."""
    try:
        obj = decode_struct(cls, data)
    except DecodeError:
        return
    assert encode_struct(obj) == data


# ---------------------------------------------------------------- malformed input

VECTORS: list[tuple[type[Any], bytes]] = [
    (IpAddressPort, IPV4_EXAMPLE),
    (IpAddressPort, IPV6_EXAMPLE),
    (IceCandidate, HOST_BYTES),
    (IceCandidate, SRFLX_BYTES),
    (IceCandidate, RELAY_BYTES),
    (AttachReq, ATTACH_REQ_BYTES),
    (AttachAns, ATTACH_ANS_BYTES),
    (AppAttachReq, APP_ATTACH_REQ_BYTES),
    (AppAttachAns, APP_ATTACH_ANS_BYTES),
    (PingReq, h("0004", "00000000")),
    (PingAns, h("5a17c0ffee123456", "0000018bcfe5687b")),
    (ConfigUpdateReq, CONFIG_REQ_BYTES),
    (ConfigUpdateReq, KIND_REQ_BYTES),
    (ConfigUpdateReq, h("07", "00000003", "abcdef")),
]


@pytest.mark.parametrize(("cls", "wire"), VECTORS, ids=lambda v: getattr(v, "__name__", ""))
def test_every_truncation_raises_decode_error(cls: Any, wire: bytes) -> None:
    for cut in range(len(wire)):
        with pytest.raises(DecodeError):
            decode_struct(cls, wire[:cut])


@pytest.mark.parametrize(
    ("cls", "wire"), [*VECTORS, (ConfigUpdateAns, b"")], ids=lambda v: getattr(v, "__name__", "")
)
def test_trailing_bytes_rejected(cls: Any, wire: bytes) -> None:
    with pytest.raises(DecodeError) as exc:
        decode_struct(cls, wire + b"\x00")
    assert exc.value.offset == len(wire)
    # ... while decoding from a Reader leaves them for whatever follows.
    r = Reader(wire + b"\x00")
    cls.decode(r, DEFAULT_CONTEXT)
    assert r.remaining() == 1

"""SIP message parsing, validation, serialization and stream framing (RFC 3261 §7, §8, §18),
with RFC 4475-style torture messages."""

from __future__ import annotations

import pytest

from app.sip.errors import LocalProtocolError, RemoteProtocolError
from app.sip.headers import CSeq, Headers, NameAddr
from app.sip.message import (
    MTU_LIMIT,
    REASON_PHRASES,
    SipRequest,
    SipResponse,
    StreamFramer,
    build_response,
    error_response_for,
    message_size_ok,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
)
from app.sip.uri import AbsoluteUri, SipUri, TelUri
from tests.sip import samples
from tests.sip.samples import INVALID, INVALID_RESPONSES, SDP, VALID


def request(data: bytes) -> SipRequest:
    m = parse_message(data)
    assert isinstance(m, SipRequest)
    return m


def response(data: bytes) -> SipResponse:
    m = parse_message(data)
    assert isinstance(m, SipResponse)
    return m


def test_invite_with_sdp() -> None:
    m = request(samples.INVITE)
    assert m.method == "INVITE" and m.version == "SIP/2.0"
    assert m.uri == SipUri("sip", "bob", None, "biloxi.example.com")
    assert m.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert m.cseq == CSeq(314159, "INVITE")
    assert m.from_.display_name == "Alice" and m.from_.tag == "1928301774"
    assert m.to.tag is None and str(m.to.uri) == "sip:bob@biloxi.example.com"
    assert m.branch == "z9hG4bK776asdhds" and m.top_via.host == "pc33.atlanta.example.com"
    assert m.max_forwards == 70 and m.content_type == "application/sdp"
    assert [str(c.uri) for c in m.contacts] == ["sip:alice@pc33.atlanta.example.com"]
    assert m.body == SDP


def test_compact_forms() -> None:
    m = request(samples.INVITE_COMPACT)
    assert m.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert m.top_via.transport == "TCP" and m.top_via.port == 5060 and m.top_via.has_param("rport")
    assert m.headers.get_all("Supported") == ["timer", "100rel"]
    assert m.contacts[0].expires == 60
    assert m.content_type == "application/sdp" and m.body == SDP


def test_responses() -> None:
    r = response(samples.RESPONSE_180)
    assert (r.status, r.reason) == (180, "Ringing")
    assert [v.received for v in r.vias] == ["192.0.2.3", "192.0.2.2", "192.0.2.1"]
    assert [str(rr.uri) for rr in r.record_routes] == [
        "sip:server10.biloxi.example.com;lr",
        "sip:bigbox3.site3.atlanta.example.com;lr",
    ]
    assert r.to.tag == "a6c85cf" and r.max_forwards is None
    ok = response(samples.OK_200)
    assert ok.top_via.rport == 5060 and ok.body == SDP


def test_wsinv_short_tortuous_invite() -> None:
    m = request(samples.WSINV)  # RFC 4475 §3.1.1.1
    assert m.uri == SipUri("sip", "vivekg", None, "chair-dnrc.example.com", None, (("unknownparam", None),))
    assert m.to.tag == "1918181833n"
    assert m.from_.display_name == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.max_forwards == 68 and m.cseq == CSeq(9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert m.headers.get("Subject") == ""
    contact = m.contacts[0]
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert m.routes[0].uri == SipUri(
        "sip", None, None, "services.example.com", None,
        (("lr", None), ("unknownwith", "value"), ("unknown-no-value", None)),
    )  # fmt: skip
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n")


def test_intmeth_wide_range_of_characters() -> None:
    m = request(samples.INTMETH)  # RFC 4475 §3.1.1.2
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert isinstance(m.uri, SipUri)
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "大停電"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"


def test_escapes_in_messages() -> None:
    m = request(samples.ESC01)  # RFC 4475 §3.1.1.3
    assert isinstance(m.uri, SipUri) and m.uri.user == "sips:user@example.com"
    assert m.to.uri == SipUri("sip", "user", None, "example.com")
    assert m.contacts[0].uri == SipUri(
        "sip", "caller", None, "host5.example.net", None, (("lr", None), ("name", "value%41"))
    )
    assert m.content_type == "application/sdp"
    nul = request(samples.ESCNULL)  # §3.1.1.4
    assert [c.uri.user for c in nul.contacts if isinstance(c.uri, SipUri)] == ["\x00", "\x00\x00"]
    esc02 = request(samples.ESC02)  # §3.1.1.5: not escapes in methods and header names
    assert esc02.method == "RE%47IST%45R" and esc02.to.display_name == "%Z%45"
    assert len(esc02.contacts) == 2 and esc02.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_more_valid_torture_messages() -> None:
    assert request(samples.LWSDISP).from_.display_name == "caller"  # §3.1.1.6
    long = request(samples.LONGREQ)  # §3.1.1.7
    assert len(long.vias) == 34 and long.vias[-1].received == "192.0.2.5"
    assert long.to.uri.port == 6000  # type: ignore[union-attr]
    dbl = request(samples.DBLREQ)  # §3.1.1.8: trailing octets after Content-Length ignored
    assert dbl.method == "REGISTER" and dbl.body == b""
    semi = request(samples.SEMIURI)  # §3.1.1.9
    assert isinstance(semi.uri, SipUri) and semi.uri.user == "user;par=u@example.net"
    assert len(semi.headers.get_all("Accept")) == 6
    transports = request(samples.TRANSPORTS)  # §3.1.1.10
    assert [v.transport for v in transports.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    mpart = request(samples.MPART01)  # §3.1.1.11: the multipart body is untouched bytes
    assert mpart.body == samples.MULTIPART_BODY
    assert mpart.content_type_header is not None and mpart.content_type_header.boundary == "boundary1"
    assert response(samples.UNREASON).reason == "= 2**3 * 5**2 но сто девяносто девять - простое"  # §3.1.1.12
    assert response(samples.NOREASON).reason == ""  # §3.1.1.13
    unk = request(samples.UNKSCM)  # §3.3.2: for the UA to answer 416
    assert unk.uri == AbsoluteUri("nobodyKnowsThisScheme:totallyopaquecontent")
    unk2 = request(samples.UNKSM2)  # §3.3.4
    assert unk2.to.uri == AbsoluteUri("isbn:2983792873") and unk2.contacts[0].uri == AbsoluteUri(
        "name:John_Smith"
    )
    tel = request(samples.TELURI)
    assert isinstance(tel.uri, TelUri) and tel.uri.param("isub") == "1411"
    assert tel.top_via.host == "[2001:db8::9:1]" and tel.top_via.port == 5070
    star = request(samples.STAR)
    assert star.contacts[0].is_star and star.expires == 0
    refer = request(samples.REFER)
    refer_to = NameAddr.parse(refer.headers.get("Refer-To") or "")
    assert isinstance(refer_to.uri, SipUri) and refer_to.uri.headers == (
        ("Replaces", "12345@192.0.2.1;to-tag=12345;from-tag=5FFE-3994"),
    )
    assert refer.headers.get("Event") == "refer;id=93809823" and refer.headers.get("Referred-By") is not None
    msg = request(samples.MESSAGE)
    assert msg.body.decode() == "Watson, come here. Ça va? 大丈夫"


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_requests(name: str) -> None:
    data, status, phrase = INVALID[name]
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert info.value.status == status
    assert phrase in info.value.reason
    assert info.value.raw == data
    assert "\r" not in info.value.reason and "\n" not in info.value.reason


@pytest.mark.parametrize("name", sorted(INVALID_RESPONSES))
def test_invalid_responses_are_dropped(name: str) -> None:
    data, phrase = INVALID_RESPONSES[name]
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert phrase in info.value.reason
    assert error_response_for(data, info.value) is None


# The invalid requests whose Via, From, To, Call-ID and CSeq are readable get an answer.
ANSWERABLE = [
    "clerr", "ncl", "maxforwards300", "ltgtruri", "lwsruri", "lwsstart", "trws", "escruri",
    "regbadct", "badvers", "mismatch01", "mismatch02", "mcl01", "bad_utf8", "folded_first",
    "no_colon", "no_max_forwards", "tel_local_no_context",
]  # fmt: skip


@pytest.mark.parametrize("name", ANSWERABLE)
def test_error_response_built_from_raw_bytes(name: str) -> None:
    data, status, phrase = INVALID[name]
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    raw = error_response_for(data, info.value)
    assert raw is not None
    answer = response(raw)
    assert answer.status == status and phrase in answer.reason
    # The copied headers are the request's, byte for byte, and the To got a tag (§8.2.6.2).
    for header in ("Via", "From", "Call-ID", "CSeq"):
        line = next(v for n, v in _raw_headers(data) if n.lower() == header.lower())
        assert answer.headers.get(header) == line
    assert answer.to.tag is not None
    assert answer.headers.get("Content-Length") == "0"


def _raw_headers(data: bytes) -> list[tuple[str, str]]:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    out = []
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        out.append((name.strip(), value.strip()))
    return out


@pytest.mark.parametrize(
    "name",
    ["badinv01", "scalar02", "quotbal", "badaspec", "baddn", "insuf", "multi01", "bare_lf", "bad_via_port"],
)
def test_unanswerable_requests_are_dropped(name: str) -> None:
    data, _, _ = INVALID[name]
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert error_response_for(data, info.value) is None


def test_no_error_response_to_ack() -> None:
    data = samples.BYE.replace(b"BYE", b"ACK").replace(b"Max-Forwards: 70\r\n", b"")
    with pytest.raises(RemoteProtocolError, match="Missing Max-Forwards") as info:
        parse_message(data)
    assert error_response_for(data, info.value) is None
    # The same with another method is answered.
    data = samples.BYE.replace(b"Max-Forwards: 70\r\n", b"")
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert error_response_for(data, info.value) is not None


def test_existing_to_tag_kept_in_error_response() -> None:
    data = samples.BYE.replace(b"CSeq: 231 BYE", b"CSeq: 231 INVITE")
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    raw = error_response_for(data, info.value)
    assert raw is not None
    assert response(raw).to.tag == "1928301774"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "Empty message"),
        (b"\r\n\r\n", "Empty message"),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n", "No empty line after the headers"),
        (b"SIP/2.0 20 OK\r\n\r\n", "Bad status line"),
        (b"SIP/2.0 099 Low\r\n\r\n", "Status code outside 100-699"),
        (b"SIP/2.0 700 High\r\n\r\n", "Status code outside 100-699"),
        (b"SIP/2.0 200 O\\\x01K\r\n\r\n", "Control character in the reason phrase"),
        (b"SIP/3.0 200 OK\r\n\r\n", "SIP version SIP/3.0 not supported"),
        (b"HTTP/1.1 200 OK\r\n\r\n", "Bad method (line 1)"),
        (b"INV\xc3ITE sip:a@b SIP/2.0\r\n\r\n", "Header bytes are not UTF-8 (byte 3)"),
        (
            b"INVITE sip:a@b SIP/2.0\r\nSubject: a\x01b\r\n\r\n",
            "Control character 0x01 in the headers (line 2)",
        ),
        (b"INV<ITE sip:a@b SIP/2.0\r\n\r\n", "Bad method"),
        (b"INVITE sip:a@b SIP/2\r\n\r\n", "Bad SIP version"),
        (b"INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n", "Bad header name (line 2)"),
    ],
)
def test_malformed_basics(data: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert reason in info.value.reason


def test_leading_crlf_ignored() -> None:
    assert request(b"\r\n\r\n" + samples.BYE) == request(samples.BYE)


def test_content_length_optional_on_datagrams() -> None:
    body = samples.MESSAGE.split(b"\r\n\r\n", 1)[1]
    data = samples.MESSAGE.replace(b"Content-Length: %d\r\n" % len(body), b"")
    assert b"Content-Length" not in data
    assert request(data).body == samples.MESSAGE.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize("name", sorted(VALID))
def test_encode_round_trip(name: str) -> None:
    m = parse_message(VALID[name])
    for compact in (True, False):
        data = m.encode(compact=compact)
        again = parse_message(data)
        assert again == m
        assert again.encode(compact=compact) == data


def test_compact_encoding_keeps_invite_small() -> None:
    m = request(samples.INVITE)
    compact, full = m.encode(), m.encode(compact=False)
    assert b"\r\nv: SIP/2.0/UDP" in compact and b"\r\ni: a84b4c76e66710" in compact and b"\r\nl: " in compact
    assert b"\r\nVia: SIP/2.0/UDP" in full and b"\r\nCall-ID: " in full and b"\r\nContent-Length: " in full
    assert len(compact) < len(full) <= len(samples.INVITE)
    assert len(compact) == len(full) - sum(
        len(n) - 1 for n in ("Via", "To", "From", "Call-ID", "Contact", "Content-Type", "Content-Length")
    )
    assert message_size_ok(compact) and MTU_LIMIT == 1300
    assert not message_size_ok(b"x" * 1301) and message_size_ok(b"x" * 1300)
    # Compact names received are written long when asked.
    c = request(samples.INVITE_COMPACT).encode(compact=False)
    assert b"\r\nSupported: timer, 100rel\r\n" in c and b"\r\nContact: <sip:" in c


def test_encode_sets_content_length_from_body() -> None:
    m = request(samples.INVITE)
    m.body = b"v=0\r\n"
    data = m.encode()
    assert data.endswith(b"\r\nl: 5\r\n\r\nv=0\r\n")
    assert data.count(b"\r\nl: ") == 1
    bare = SipRequest("OPTIONS", SipUri("sip", "bob", None, "example.com"), Headers([("Call-ID", "1@x")]))
    assert bare.encode() == b"OPTIONS sip:bob@example.com SIP/2.0\r\ni: 1@x\r\nl: 0\r\n\r\n"
    with pytest.raises(LocalProtocolError):
        SipRequest("BAD METHOD", SipUri("sip", None, None, "x")).encode()
    with pytest.raises(LocalProtocolError):
        SipResponse(99, "Low").encode()
    with pytest.raises(LocalProtocolError):
        SipResponse(200, "O\r\nK").encode()


def test_build_response() -> None:
    m = request(
        samples.INVITE.replace(b"CSeq: 314159 INVITE\r\n", b"CSeq: 314159 INVITE\r\nTimestamp: 54\r\n")
    )
    tag = new_tag()
    r = build_response(m, 180, to_tag=tag, headers=[("Contact", "<sip:bob@192.0.2.4>")])
    assert (r.status, r.reason) == (180, "Ringing")
    assert r.to.tag == tag and r.to.uri == m.to.uri
    assert r.vias == m.vias and r.from_ == m.from_ and r.call_id == m.call_id and r.cseq == m.cseq
    assert r.headers.get("Timestamp") is None and r.headers.get("Contact") == "<sip:bob@192.0.2.4>"
    trying = build_response(m, 100)
    assert trying.reason == "Trying" and trying.headers.get("Timestamp") == "54" and trying.to.tag is None
    again = response(r.encode())
    r.headers.add("Content-Length", "0")  # what encode() wrote
    assert again == r
    # A To that already has a tag keeps it.
    bye = request(samples.BYE)
    assert build_response(bye, 200, to_tag="other").to.tag == "1928301774"
    assert build_response(bye, 299).reason == "" and build_response(bye, 488, "Not here").reason == "Not here"
    assert REASON_PHRASES[481] == "Call/Transaction Does Not Exist"


def test_identifiers() -> None:
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100 and all(b.startswith("z9hG4bK") and len(b) > 16 for b in branches)
    tags = {new_tag() for _ in range(100)}
    assert len(tags) == 100
    cid = new_call_id("host.example.com")
    assert cid.endswith("@host.example.com")
    m = request(samples.BYE)
    m.headers.set("Call-ID", cid)
    m.headers.set("To", str(m.to.with_tag(new_tag())))
    assert request(m.encode()).call_id == cid


# ---------------------------------------------------------------- StreamFramer


def test_stream_framer_byte_by_byte() -> None:
    stream = b"\r\n\r\n" + samples.INVITE + b"\r\n" + samples.RESPONSE_180 + b"\r\n\r\n" + samples.OK_200
    framer = StreamFramer()
    out = []
    for i in range(len(stream)):
        out += framer.feed(stream[i : i + 1])
    assert out == [
        parse_message(samples.INVITE),
        parse_message(samples.RESPONSE_180),
        parse_message(samples.OK_200),
    ]
    assert not framer.broken
    # All at once gives the same.
    assert StreamFramer().feed(stream) == out


def test_stream_framer_bad_message_with_length_keeps_stream() -> None:
    bad = samples.BYE.replace(b"CSeq: 231 BYE", b"CSeq: 231 INVITE")
    framer = StreamFramer()
    out = framer.feed(bad + samples.BYE)
    assert isinstance(out[0], RemoteProtocolError) and "does not match" in out[0].reason
    assert out[0].raw == bad
    assert out[1] == parse_message(samples.BYE)
    assert not framer.broken


def test_stream_framer_missing_content_length_breaks_framing() -> None:
    no_length = samples.BYE.replace(b"Content-Length: 0\r\n", b"")
    framer = StreamFramer()
    out = framer.feed(no_length + samples.BYE)
    assert len(out) == 1 and isinstance(out[0], RemoteProtocolError)
    assert "Missing Content-Length" in out[0].reason
    assert framer.broken and framer.feed(samples.BYE) == []
    # The transport can still answer it (then close the connection).
    raw = error_response_for(out[0].raw, out[0])
    assert raw is not None and response(raw).status == 400


def test_stream_framer_content_length_forms() -> None:
    folded = samples.BYE.replace(b"Content-Length: 0", b"l:\r\n 0")
    assert StreamFramer().feed(folded) == [parse_message(folded)]
    framer = StreamFramer()
    assert isinstance(
        framer.feed(samples.BYE.replace(b"Content-Length: 0", b"Content-Length: x"))[0], RemoteProtocolError
    )
    assert framer.broken
    twice = samples.BYE.replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 0")
    out = StreamFramer().feed(twice)
    assert isinstance(out[0], RemoteProtocolError) and "More than one Content-Length" in out[0].reason


def test_stream_framer_size_limits() -> None:
    framer = StreamFramer(max_message_size=2000)
    out = framer.feed(samples.BYE.replace(b"Content-Length: 0", b"Content-Length: 5000"))
    assert isinstance(out[0], RemoteProtocolError) and out[0].status == 513 and framer.broken
    endless = StreamFramer(max_message_size=2000)
    out = endless.feed(b"INVITE sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 400)
    assert isinstance(out[0], RemoteProtocolError) and out[0].status == 513


def test_stream_framer_waits_for_body() -> None:
    framer = StreamFramer()
    head, body = samples.INVITE.split(b"\r\n\r\n", 1)
    assert framer.feed(head + b"\r\n\r\n" + body[:10]) == []
    assert framer.feed(body[10:]) == [parse_message(samples.INVITE)]

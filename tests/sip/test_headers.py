"""Headers multi-map and the parsed header values (RFC 3261 §7.3, §20)."""

from __future__ import annotations

import pytest

from app.sip.errors import LocalProtocolError, RemoteProtocolError
from app.sip.headers import (
    ContentType,
    CSeq,
    Event,
    Headers,
    NameAddr,
    RetryAfter,
    SubscriptionState,
    Via,
    Warning,
    canonical_name,
    parse_call_id,
    parse_content_length,
    parse_expires,
    parse_max_forwards,
    parse_token_list,
    split_list,
)
from app.sip.uri import AbsoluteUri, SipUri, TelUri


def test_lookup_is_case_insensitive_and_compact_aware() -> None:
    h = Headers(
        [("v", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("CALL-ID", "x@y"), ("Via", "SIP/2.0/TCP b"), ("l", "0")]
    )
    assert h.get("call-id") == "x@y" and h.get("i") == "x@y"
    assert h.get_all("VIA") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/TCP b"]
    assert "Content-Length" in h and "Contact" not in h and 5 not in h
    assert h.count("v") == 2 and len(h) == 4
    assert list(h) == [
        ("v", "SIP/2.0/UDP a;branch=z9hG4bK1"),
        ("CALL-ID", "x@y"),
        ("Via", "SIP/2.0/TCP b"),
        ("l", "0"),
    ]
    # Equality by header key and value, so a compact and a long name are the same header.
    assert h == Headers(
        [
            ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"),
            ("i", "x@y"),
            ("v", "SIP/2.0/TCP b"),
            ("Content-Length", "0"),
        ]
    )
    assert h != Headers(
        [("Via", "SIP/2.0/TCP b"), ("i", "x@y"), ("v", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("l", "0")]
    )


def test_mutation() -> None:
    h = Headers(
        [("Via", "SIP/2.0/UDP a"), ("To", "<sip:b@c>"), ("Via", "SIP/2.0/UDP b"), ("Supported", "timer")]
    )
    h.prepend("v", "SIP/2.0/UDP new")
    assert h.values("Via") == ["SIP/2.0/UDP new", "SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    h.set("Via", "SIP/2.0/UDP only")
    assert h.items() == [("Via", "SIP/2.0/UDP only"), ("To", "<sip:b@c>"), ("Supported", "timer")]
    h.add("k", "100rel")
    assert h.get_all("Supported") == ["timer", "100rel"]
    copy = h.copy()
    h.remove("supported")
    assert "Supported" not in h and copy.get_all("k") == ["timer", "100rel"]
    with pytest.raises(LocalProtocolError):
        h.add("Subject", "two\r\nlines")
    with pytest.raises(LocalProtocolError):
        h.add("Bad Name", "x")


def test_split_list_respects_quotes_and_angles() -> None:
    assert split_list('"Doe, John" <sip:j@x>;q=0.5, <sip:a@b?x=1,2>, sip:c@d') == [
        '"Doe, John" <sip:j@x>;q=0.5',
        "<sip:a@b?x=1,2>",
        "sip:c@d",
    ]
    assert split_list('"a \\" , b" <sip:x@y>,z') == ['"a \\" , b" <sip:x@y>', "z"]
    assert split_list(" a , ,b,") == ["a", "b"]
    # Folded list headers over several lines (RFC 4475 §3.1.1.9's Accept).
    h = Headers([("Accept", "application/sdp, application/pkcs7-mime"), ("Accept", "message/sip")])
    assert h.get_all("accept") == ["application/sdp", "application/pkcs7-mime", "message/sip"]
    # Not a list header: a comma stays.
    assert Headers([("Subject", "a, b")]).get_all("s") == ["a, b"]


def test_canonical_names() -> None:
    assert [canonical_name(n) for n in ("i", "CSEQ", "www-authenticate", "x-custom-thing", "o", "R")] == [
        "Call-ID", "CSeq", "WWW-Authenticate", "X-Custom-Thing", "Event", "Refer-To",
    ]  # fmt: skip


def test_via() -> None:
    via = Via.parse(
        "SIP / 2.0 / UDP  erlang.bell-telephone.com:5060 ;branch = z9hG4bK87asdks7;rport;received=192.0.2.207"
    )
    assert via.protocol == "SIP/2.0" and via.transport == "UDP"
    assert via.sent_by == ("erlang.bell-telephone.com", 5060)
    assert via.branch == "z9hG4bK87asdks7" and via.received == "192.0.2.207"
    assert via.has_param("rport") and via.rport is None
    filled = via.with_param("rport", "5062")
    assert filled.rport == 5062
    assert (
        str(filled)
        == "SIP/2.0/UDP erlang.bell-telephone.com:5060;branch=z9hG4bK87asdks7;rport=5062;received=192.0.2.207"
    )
    assert Via.parse(str(filled)) == filled
    v6 = Via.parse("SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKx;received=[2001:db8::2]")
    assert v6.host == "[2001:db8::1]" and v6.port == 5061 and v6.received == "[2001:db8::2]"
    assert str(v6.without_param("received")) == "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKx"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("SIP/2.0 host", "bad sent-protocol or sent-by"),
        ("SIP/2.0/UDP", "bad sent-protocol or sent-by"),
        ("SIP/2.0/UDP host:70000", "bad port"),
        ("SIP/2.0/UDP ho$t", "bad host"),
        ("SIP/2.0/UDP host;;branch=x", "bad parameter"),
        ("SIP/2.0/UDP host;rport=abc", "bad rport"),
        ("SIP/2.0/UDP host;ttl=256", "bad ttl"),
        ("SIP/2.0/UDP host;branch", "branch without a value"),
    ],
)
def test_bad_via(text: str, why: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        Via.parse(text)
    assert info.value.reason.startswith(f"Bad Via header: {why}")


def test_name_addr_forms() -> None:
    a = NameAddr.parse('"Bob \\"B\\" Smith" <sips:bob@biloxi.com;transport=tls>;tag=a48s;x=1')
    assert a.display_name == 'Bob "B" Smith'
    assert isinstance(a.uri, SipUri) and a.uri.params == (("transport", "tls"),)
    assert a.tag == "a48s" and a.param("x") == "1"
    assert str(a) == '"Bob \\"B\\" Smith" <sips:bob@biloxi.com;transport=tls>;tag=a48s;x=1'
    assert NameAddr.parse(str(a)) == a
    # addr-spec: the parameters belong to the header, not the URI (§20.10).
    b = NameAddr.parse("sip:alice@atlanta.com;tag=88sja8x")
    assert b.display_name is None and b.tag == "88sja8x"
    assert isinstance(b.uri, SipUri) and b.uri.params == ()
    assert str(b.with_tag("new")) == "<sip:alice@atlanta.com>;tag=new"
    # Token display names, UTF-8 display names, no space before '<'.
    assert NameAddr.parse("Anonymous Caller <sip:c@d>").display_name == "Anonymous Caller"
    assert NameAddr.parse("Ünïcödé <sip:c@d>").display_name == "Ünïcödé"
    assert NameAddr.parse("caller<sip:caller@example.com>").display_name == "caller"
    assert NameAddr.parse('"" <sip:c@d>').display_name == ""
    c = NameAddr.parse("<sip:c@d>;expires=3600;q=0.7")
    assert c.expires == 3600 and c.q == 0.7
    assert NameAddr.parse("<sip:c@d>;expires=99999999999").expires == 2**32 - 1
    tel = NameAddr.parse("<tel:+1-201-555-0123>")
    assert isinstance(tel.uri, TelUri)
    star = NameAddr.parse(" * ")
    assert star.is_star and star.uri == AbsoluteUri("*") and str(star) == "*"
    assert not NameAddr.parse("<sip:a@b>").is_star


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('"unterminated <sip:a@b>', "unterminated quoted display name"),
        ('"name" sip:a@b', "no <URI> after display name"),
        ("<sip:a@b", "no closing '>'"),
        ("Bell, Alexander <sip:a@b>", "bad display name"),
        ("sip:a@b?x=y", "must be in <>"),
        ("< sip:a@b >", "no scheme"),
        ("<sip:a@b>;;tag=1", "bad parameter"),
        ("<sip:a@b>;tag", "tag without a value"),
    ],
)
def test_bad_name_addr(text: str, why: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        NameAddr.parse(text, "To")
    assert info.value.reason.startswith("Bad To header:")
    assert why in info.value.reason


def test_cseq() -> None:
    assert CSeq.parse(" 0009\t INVITE ") == CSeq(9, "INVITE")
    assert str(CSeq(4711, "BYE")) == "4711 BYE"
    assert CSeq.parse("2147483647 ACK").seq == 2**31 - 1
    for bad in ("INVITE", "1", "1 INV ITE", "-1 BYE", "2147483648 BYE", "36893488147419103232 REGISTER"):
        with pytest.raises(RemoteProtocolError, match="Bad CSeq header"):
            CSeq.parse(bad)


def test_small_values() -> None:
    assert (
        parse_call_id(" f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com ")
        == "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com"
    )
    with pytest.raises(RemoteProtocolError, match="Bad Call-ID header"):
        parse_call_id("two words")
    with pytest.raises(RemoteProtocolError, match="Bad Call-ID header"):
        parse_call_id("a@b@c")
    assert parse_max_forwards("0068") == 68
    with pytest.raises(RemoteProtocolError, match="Bad Max-Forwards header"):
        parse_max_forwards("256")
    assert parse_expires("7200") == 7200
    assert parse_expires("99999999999999999999") == 2**32 - 1
    with pytest.raises(RemoteProtocolError, match="Bad Expires header"):
        parse_expires("Thu, 01 Dec 1994 16:00:00 GMT")
    assert parse_content_length(" 349 ") == 349
    with pytest.raises(RemoteProtocolError, match="Bad Content-Length header"):
        parse_content_length("-999")
    assert parse_token_list(["INVITE, ACK,BYE", "MESSAGE"]) == ("INVITE", "ACK", "BYE", "MESSAGE")
    with pytest.raises(RemoteProtocolError, match="Bad Supported header"):
        parse_token_list(["timer, a b"], "Supported")


def test_content_type_event_state_warning_retry() -> None:
    ct = ContentType.parse('Multipart/Mixed; boundary="b 1";charset=utf-8')
    assert ct.mime == "multipart/mixed" and ct.boundary == "b 1" and ct.param("charset") == "utf-8"
    assert str(ct) == 'Multipart/Mixed;boundary="b 1";charset=utf-8'
    with pytest.raises(RemoteProtocolError, match="Bad Content-Type header"):
        ContentType.parse("text")
    ev = Event.parse("refer;id=93809823")
    assert ev.package == "refer" and ev.id == "93809823" and str(ev) == "refer;id=93809823"
    st = SubscriptionState.parse("terminated;reason=noresource;retry-after=30")
    assert (st.state, st.reason, st.retry_after, st.expires) == ("terminated", "noresource", 30, None)
    with pytest.raises(RemoteProtocolError, match="bad expires"):
        SubscriptionState.parse("active;expires=soon")
    w = Warning.parse('307 isi.edu "Session parameter \\"foo\\" not understood"')
    assert (w.code, w.agent, w.text) == (307, "isi.edu", 'Session parameter "foo" not understood')
    assert Warning.parse(str(w)) == w
    with pytest.raises(RemoteProtocolError, match="Bad Warning header"):
        Warning.parse('1812 overture "In Progress"')
    ra = RetryAfter.parse("18000 (in a meeting);duration=3600")
    assert (ra.seconds, ra.comment, ra.duration) == (18000, "in a meeting", 3600)
    assert str(ra) == "18000 (in a meeting);duration=3600"
    assert RetryAfter.parse("949302838503028349304023988").seconds == 2**32 - 1

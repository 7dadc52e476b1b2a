"""SIP/SIPS/tel URIs: parsing, serialization and RFC 3261 §19.1.4 comparison."""

from __future__ import annotations

import pytest

from app.sip.errors import RemoteProtocolError
from app.sip.uri import AbsoluteUri, SipUri, TelUri, is_valid_host, parse_uri, uri_equal


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def test_full_sip_uri() -> None:
    uri = sip(
        "sips:alice:secretword@atlanta.example.com:5061;transport=TCP;lr;maddr=239.255.255.1?subject=project%20x&priority=urgent"
    )
    assert uri.scheme == "sips"
    assert uri.user == "alice"
    assert uri.password == "secretword"
    assert uri.host == "atlanta.example.com"
    assert uri.port == 5061
    assert uri.params == (("transport", "TCP"), ("lr", None), ("maddr", "239.255.255.1"))
    assert uri.headers == (("subject", "project x"), ("priority", "urgent"))
    assert uri.transport == "tcp"
    assert uri.lr and uri.secure and uri.maddr == "239.255.255.1"
    assert uri.param("TRANSPORT") == "TCP" and uri.has_param("Lr") and not uri.has_param("ttl")
    assert uri.aor == "sips:alice@atlanta.example.com"
    assert uri.default_port == 5061
    assert str(uri) == (
        "sips:alice:secretword@atlanta.example.com:5061;transport=TCP;lr;maddr=239.255.255.1"
        "?subject=project%20x&priority=urgent"
    )


@pytest.mark.parametrize(
    ("text", "user", "host", "port"),
    [
        ("sip:atlanta.example.com", None, "atlanta.example.com", None),
        ("sip:192.0.2.4", None, "192.0.2.4", None),
        ("sip:+1-212-555-1212:1234@gateway.com;user=phone", "+1-212-555-1212", "gateway.com", None),
        ("sip:alice@[2001:db8::10]:5070", "alice", "[2001:db8::10]", 5070),
        ("SIP:Bob@Biloxi.Example.COM.", "Bob", "Biloxi.Example.COM.", None),
    ],
)
def test_rfc_examples(text: str, user: str | None, host: str, port: int | None) -> None:
    uri = sip(text)
    assert (uri.user, uri.host, uri.port) == (user, host, port)
    assert parse_uri(str(uri)) == uri


def test_escapes_undone_and_redone() -> None:
    # RFC 4475 §3.1.1.3: %-escapes in user and parameters are the characters they stand for.
    uri = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert uri.user == "caller"
    assert uri.params == (("lr", None), ("name", "value%41"))
    assert uri.lr
    assert str(uri) == "sip:caller@host5.example.net;lr;name=value%2541"
    spaced = sip("sip:I%20have%20spaces@example.net")
    assert spaced.user == "I have spaces"
    assert str(spaced) == "sip:I%20have%20spaces@example.net"
    # The user part may hold ';' and an escaped '@' (RFC 4475 §3.1.1.9).
    semi = sip("sip:user;par=u%40example.net@example.com")
    assert (semi.user, semi.host) == ("user;par=u@example.net", "example.com")
    assert parse_uri(str(semi)) == semi
    # Escaped NULs and bytes that are not UTF-8 survive a round trip (§3.1.1.4).
    nul = sip("sip:null-%00-null@example.com")
    assert nul.user == "null-\x00-null"
    assert str(nul) == "sip:null-%00-null@example.com"
    latin = sip("sip:caf%E9@example.com")
    assert str(latin) == "sip:caf%E9@example.com"


def test_tel_uri() -> None:
    uri = parse_uri("tel:+1-201-555-0123;isub=1411")
    assert isinstance(uri, TelUri)
    assert uri.number == "+1-201-555-0123" and uri.is_global
    assert uri.digits == "+12015550123"
    assert uri.param("isub") == "1411"
    assert str(uri) == "tel:+1-201-555-0123;isub=1411"
    local = parse_uri("tel:7042;phone-context=example.com")
    assert isinstance(local, TelUri) and not local.is_global


def test_other_schemes_are_absolute_uris() -> None:
    assert parse_uri("nobodyKnowsThisScheme:totallyopaquecontent") == AbsoluteUri(
        "nobodyKnowsThisScheme:totallyopaquecontent"
    )
    uri = parse_uri("soap.beep://192.0.2.103:3002")
    assert isinstance(uri, AbsoluteUri) and uri.scheme == "soap.beep"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("<sip:user@example.com>", "no scheme"),
        ("sip:", "no host"),
        ("sip:user@", "no host"),
        ("sip:user@host:99999", "bad port"),
        ("sip:user@host:12a", "bad port"),
        ("sip:user@[2001:db8::10", "unterminated IPv6 reference"),
        ("sip:user@[2001:db8::zz]", "bad IPv6 address"),
        ("sip:user@300.1.1.1", "bad IPv4 address"),
        ("sip:user@exa mple.com", "bad host"),
        ("sip:user@-example.com", "bad host"),
        ("sip:us er@example.com", "bad user"),
        ("sip:user%2@example.com", "bad user"),
        ("sip:user@example.com;;lr", "bad parameter"),
        ("sip:user@example.com;a=b c", "bad value of parameter 'a'"),
        ("sip:user@example.com?nohvalue", "bad header"),
        ("sip:user@example.comjunk>", "bad host"),
        ("tel:7042", "local tel number without phone-context"),
        ("tel:+", "bad telephone number"),
        ("tel:+1;bad name=x", "bad tel parameter"),
        ("mailto:a b", "bad characters"),
    ],
)
def test_malformed(text: str, why: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_uri(text)
    assert info.value.status == 400
    assert why in info.value.reason


def test_with_params_and_replace() -> None:
    uri = sip("sip:alice@example.com;transport=udp")
    changed = uri.with_params(transport="tcp", lr=None)
    assert changed.params == (("transport", "tcp"), ("lr", None))
    assert str(changed.without_param("LR")) == "sip:alice@example.com;transport=tcp"
    assert uri.replace(port=5070).port == 5070
    assert sip("sip:[::1]:5060").host_address == "::1"


# §19.1.4's examples.
EQUAL = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
    ("sip:user@[2001:db8:0:0:0:0:0:1]", "sip:user@[2001:db8::1]"),
    ("tel:+1-201-555-0123", "tel:+1.201.555.0123"),
]  # fmt: skip
NOT_EQUAL = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com"),
    ("sip:alice@atlanta.com", "tel:+1-201-555-0123"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_equal(a: str, b: str) -> None:
    assert uri_equal(parse_uri(a), parse_uri(b))
    assert uri_equal(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize(("a", "b"), NOT_EQUAL)
def test_not_equal(a: str, b: str) -> None:
    assert not uri_equal(parse_uri(a), parse_uri(b))
    assert not uri_equal(parse_uri(b), parse_uri(a))


def test_is_valid_host() -> None:
    assert is_valid_host("example.com") and is_valid_host("[::1]") and is_valid_host("10.0.0.1")
    assert not is_valid_host("a@b") and not is_valid_host("") and not is_valid_host("a_b.com")


def test_sip_uri_parse_classmethod() -> None:
    assert SipUri.parse("sip:a@b").user == "a"
    with pytest.raises(RemoteProtocolError, match="not a SIP or SIPS URI"):
        SipUri.parse("tel:+1")

"""The overlay glue's pure parts: the start-line peek the flows count by, dial strings,
failure wording, and the Via an AoR-domain sent-by gets back over IPv6."""

from __future__ import annotations

import pytest

from app.sip.headers import Via
from app.sip.overlay import NotReachable, message_kind, unreachable_reason
from app.sip.overlay.reach import dial_string
from reload_core.usages.sip import Outcome, Resolution


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"INVITE sip:bob@example.org SIP/2.0\r\nv: x\r\n\r\n", "INVITE"),
        (b"SIP/2.0 180 Ringing\r\n\r\n", "180"),
        (b"ACK sip:x@y SIP/2.0\r\n", "ACK"),
        (b"", ""),
    ],
)
def test_message_kind(data: bytes, kind: str) -> None:
    assert message_kind(data) == kind


def test_dial_strings() -> None:
    assert dial_string("bob@example.org")[0] == "sip:bob@example.org"
    text, uri = dial_string("sips:bob@example.org")
    assert text == "sips:bob@example.org" and uri.scheme == "sips" and uri.user == "bob"
    with pytest.raises(NotReachable, match="is not a SIP or SIPS URI"):
        dial_string("tel:+15551234")
    with pytest.raises(NotReachable, match="is not a SIP URI"):
        dial_string("sip:bob@")


def test_unreachable_reasons() -> None:
    assert unreachable_reason(Resolution("bob@example.org", Outcome.NOT_REGISTERED)) == (
        "bob@example.org is not registered (not online)"
    )
    loop = Resolution("a@x.org", Outcome.LOOP, loop=("a@x.org", "b@x.org", "a@x.org"))
    assert unreachable_reason(loop) == "a@x.org: forwarding loop a@x.org → b@x.org → a@x.org"


def test_a_received_ipv6_address_reads_back() -> None:
    """Our Via's sent-by is the AoR's domain, so a UA that got the request over IPv6 (as
    ICE may pick) stamps an unbracketed IPv6 ``received`` (RFC 3261 §25.1 via-received;
    RFC 5118 §4.5): it must parse, bracketed or not."""
    sent = Via.parse("SIP/2.0/DTLS example.org:5060;branch=z9hG4bKx;rport")
    stamped = sent.with_param("received", "fd00::2").with_param("rport", "59476")
    back = Via.parse(str(stamped))
    assert (back.received, back.rport, back.host) == ("fd00::2", 59476, "example.org")
    assert Via.parse("SIP/2.0/DTLS example.org;branch=z9hG4bKx;received=[fd00::2]").received == "[fd00::2]"

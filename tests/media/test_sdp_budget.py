"""What our SDP gives up over its byte budget (:func:`app.media.sdp.trim_local`): first
what costs no function (long ICE foundations, IPv6 host candidates, optional RTP header
extensions), only then candidates. A phone behind a NAT that knows a TURN server keeps
its server-reflexive and its relayed candidate, so a call through two NATs can still go
straight from NAT to NAT (tests/phone/test_phone_nat.py has the call itself)."""

from __future__ import annotations

from app.media.sdp import FOUNDATION_LENGTH, trim_local

FOUNDATION = "f957a2332b1715da3b0ef8ba684454eb"  # aiortc's: 32 hex digits
HOST = f"a=candidate:{FOUNDATION} 1 udp 2130706431 10.1.0.2 34126 typ host"
HOST6 = f"a=candidate:{FOUNDATION[::-1]} 1 udp 2130706431 fd00::1:2 34127 typ host"
SRFLX = f"a=candidate:{FOUNDATION} 1 udp 1694498815 198.51.100.11 34126 typ srflx raddr 10.1.0.2 rport 34126"
RELAY = (
    f"a=candidate:{FOUNDATION} 1 udp 16777215 198.51.100.3 49196 typ relay raddr 198.51.100.11 rport 34126"
)
EXTMAPS = [
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
]


def offer(*candidates: str) -> str:
    """An offer as aiortc writes it with telephone-event (about 640 bytes without
    candidates), with ``candidates``."""
    lines = [
        "v=0",
        "o=- 3105624152241378078 1 IN IP4 10.1.0.2",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "m=audio 34126 UDP/TLS/RTP/SAVPF 96 9 0 8 110 101",
        "c=IN IP4 10.1.0.2",
        "a=sendrecv",
        *EXTMAPS,
        "a=mid:0",
        "a=rtcp-mux",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=fmtp:110 0-16",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        *candidates,
        "a=end-of-candidates",
        "a=ice-ufrag:L0yk",
        "a=ice-pwd:mjoqlIYvKLArIKRwqx3m1S",
        "a=fingerprint:sha-256 1A:22:E4:6A:A8:3B:B9:D7:D4:EA:D2:C3:D8:44:67:89:17:3B:02:5F:A1:C6:D1:CC:11:12:D9:1A:C7:49:9A:E1",
        "a=setup:actpass",
    ]
    return "\r\n".join(lines) + "\r\n"


def kept(sdp: str) -> list[str]:
    """The candidates left, by type (host6: an IPv6 host candidate)."""
    out = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:"):
            words = line.split()
            out.append(words[7] + ("6" if ":" in words[4] else ""))
    return out


def test_within_the_budget_nothing_changes() -> None:
    sdp = offer(HOST, SRFLX, RELAY)
    trimmed = trim_local(sdp, session_id=1, version=1, budget=10_000)
    assert HOST in trimmed and SRFLX in trimmed and RELAY in trimmed
    assert all(line in trimmed for line in EXTMAPS)


def test_foundations_go_short_first() -> None:
    sdp = offer(HOST, HOST6)
    trimmed = trim_local(sdp, session_id=1, version=1, budget=len(sdp) - 20)
    assert kept(trimmed) == ["host", "host6"]  # 48 bytes saved on foundations were enough
    assert f"a=candidate:{FOUNDATION[:FOUNDATION_LENGTH]} 1 udp 2130706431 10.1.0.2 34126 typ host" in trimmed
    assert all(line in trimmed for line in EXTMAPS)


def test_a_nated_phone_with_a_turn_server_keeps_its_reflexive_and_relayed_candidates() -> None:
    sdp = offer(HOST, HOST6, SRFLX, RELAY)
    assert len(sdp) > 1000
    trimmed = trim_local(sdp, session_id=1, version=1, budget=820)
    assert len(trimmed.encode()) <= 820
    assert kept(trimmed) == ["srflx", "relay"]
    assert "a=extmap:" not in trimmed  # given up before the host candidate
    assert "m=audio 34126 " in trimmed and "c=IN IP4 198.51.100.11" in trimmed  # a default still listed


def test_without_a_turn_server_the_host_candidate_stays() -> None:
    trimmed = trim_local(offer(HOST, HOST6, SRFLX), session_id=1, version=1, budget=820)
    assert kept(trimmed) == ["host", "srflx"]


def test_one_candidate_stays_whatever_the_budget() -> None:
    trimmed = trim_local(offer(HOST, SRFLX, RELAY), session_id=1, version=1, budget=10)
    assert kept(trimmed) == ["relay"]

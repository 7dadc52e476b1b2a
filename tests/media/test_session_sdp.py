"""SDP between the far end and aiortc (app/media/sdp.py): offers refused and why, the
fixes real phones need (linphone- and baresip-style offers written from NOTES.md), the
trimming of our own SDP, and MediaSession answering such offers."""

from __future__ import annotations

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack
from aiortc.sdp import SessionDescription

from app.media.codecs import DEFAULT_CODEC_ORDER
from app.media.sdp import (
    ENCRYPTION_REQUIRED,
    WARN_MEDIA_FORMAT,
    WARN_MISC,
    WARN_TRANSPORT,
    SdpText,
    audio_direction,
    check_offer,
    finish_answer,
    prepare_remote,
    trim_local,
)
from app.media.session import AudioOptions, MediaSession
from app.sip.sdp import RejectWith

from .session_support import interface_address_or_skip

pytestmark = pytest.mark.media

FP = ":".join(f"{i:02X}" for i in range(32))

# linphone 5.1 with media_encryption=dtls, ICE, bundle, rtcp-mux, avpf (NOTES.md): ICE
# credentials and fingerprint at session level, no direction attribute, an extmap with
# "vad=off", fmtp for G.729 (static 18) with no rtpmap, PCMU/PCMA without rtpmap.
LINPHONE_OFFER = f"""v=0
o=alice 2913 1206 IN IP4 192.0.2.10
s=Talk
c=IN IP4 192.0.2.10
t=0 0
a=ice-pwd:4f1e06e1d4cbb3c8d8a7f9a1
a=ice-ufrag:2b1f3a4c
a=fingerprint:SHA-256 {FP}
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=group:BUNDLE as
m=audio 7078 UDP/TLS/RTP/SAVPF 96 97 98 0 8 18 101 99 100
c=IN IP4 192.0.2.10
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-mux
a=mid:as
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=off
a=rtcp:7078
a=candidate:1 1 UDP 2130706303 192.0.2.10 7078 typ host
a=candidate:2 1 TCP 1684797439 192.0.2.10 9 typ host tcptype active
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
a=setup:actpass
a=ssrc:1863391478 cname:alice@192.0.2.10
""".replace("\n", "\r\n")

# baresip 1.0 with DTLS-SRTP and ICE: no a=mid (and no BUNDLE), session-level ICE
# credentials and fingerprint, a video stream we do not do.
BARESIP_OFFER = f"""v=0
o=- 1712344 2345 IN IP4 192.0.2.20
s=-
c=IN IP4 192.0.2.20
t=0 0
a=tool:baresip 1.0.0
a=ice-ufrag:Abcd
a=ice-pwd:efghijklmnopqrstuvwxyz12
a=fingerprint:sha-256 {FP}
m=audio 10000 UDP/TLS/RTP/SAVPF 96 0 8 101
b=AS:200
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-mux
a=setup:actpass
a=sendrecv
a=label:1
a=ssrc:2829153713 cname:baresip
a=candidate:1 1 udp 2113937151 192.0.2.20 10000 typ host
a=end-of-candidates
a=ptime:20
m=video 10002 UDP/TLS/RTP/SAVPF 100
a=rtpmap:100 VP8/90000
a=rtcp-mux
a=setup:actpass
a=sendrecv
""".replace("\n", "\r\n")

PLAIN_RTP_OFFER = b"""v=0\r
o=- 1 1 IN IP4 192.0.2.30\r
s=-\r
c=IN IP4 192.0.2.30\r
t=0 0\r
m=audio 49170 RTP/AVP 0 8 101\r
a=rtpmap:101 telephone-event/8000\r
a=sendrecv\r
"""


def test_plain_rtp_offer_refused_304() -> None:
    refused = check_offer(PLAIN_RTP_OFFER, DEFAULT_CODEC_ORDER)
    assert refused == RejectWith(488, ENCRYPTION_REQUIRED, WARN_TRANSPORT)
    assert (WARN_TRANSPORT, ENCRYPTION_REQUIRED) == (304, "encrypted media (DTLS-SRTP) is required")
    sdes = (
        PLAIN_RTP_OFFER.replace(b"RTP/AVP", b"RTP/SAVP") + b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n"
    )
    assert check_offer(sdes, DEFAULT_CODEC_ORDER) == RejectWith(488, ENCRYPTION_REQUIRED, 304)


@pytest.mark.parametrize(
    ("change", "status", "code", "text"),
    [
        (lambda s: s.replace("m=audio", "m=video"), 488, WARN_MEDIA_FORMAT, "no audio stream"),
        (lambda s: s.replace(f"a=fingerprint:sha-256 {FP}\r\n", ""), 488, WARN_MISC, "fingerprint"),
        (lambda s: s.replace("a=ice-ufrag:Abcd\r\n", ""), 488, WARN_MISC, "ICE"),
        (lambda s: s.replace("a=rtcp-mux\r\n", ""), 488, WARN_MISC, "rtcp-mux"),
        (lambda s: s.replace(" 96 0 8 101", " 18 101").replace("opus", "x"), 488, WARN_MEDIA_FORMAT, "codec"),
        (lambda s: "hello", 488, WARN_MISC, "malformed"),
    ],
)
def test_offers_refused_with_reason(change: object, status: int, code: int, text: str) -> None:
    offer = change(BARESIP_OFFER)  # type: ignore[operator]
    refused = check_offer(offer.encode(), DEFAULT_CODEC_ORDER)
    assert isinstance(refused, RejectWith)
    assert (refused.status, refused.warning_code) == (status, code)
    assert refused.warning is not None and text in refused.warning


def test_usable_offers_pass_the_check() -> None:
    assert check_offer(LINPHONE_OFFER.encode(), DEFAULT_CODEC_ORDER) == 0
    assert check_offer(BARESIP_OFFER.encode(), DEFAULT_CODEC_ORDER) == 0
    assert check_offer(BARESIP_OFFER.encode(), ["PCMA"]) == 0  # static 8, no rtpmap
    refused = check_offer(BARESIP_OFFER.encode(), ["G722"])
    assert isinstance(refused, RejectWith) and refused.warning_code == 305


def test_linphone_offer_fixed_for_aiortc() -> None:
    prepared = prepare_remote(LINPHONE_OFFER.encode(), 0, "0")
    parsed = SessionDescription.parse(prepared.sdp)  # aiortc's own parser: no exception
    (audio,) = parsed.media
    assert audio.ice is not None and audio.dtls is not None
    assert audio.ice.usernameFragment == "2b1f3a4c" and audio.ice.password == "4f1e06e1d4cbb3c8d8a7f9a1"
    assert [f.value for f in audio.dtls.fingerprints] == [FP] and audio.dtls.role == "auto"
    assert audio.direction == "sendrecv" and not prepared.hold
    assert audio.rtp.muxId == "as" and prepared.had_mid and prepared.had_bundle
    assert [(h.id, h.uri) for h in audio.rtp.headerExtensions][1] == (
        2,
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    )
    names = {c.payloadType: c.mimeType for c in audio.rtp.codecs}
    assert names[0] == "audio/PCMU" and names[8] == "audio/PCMA" and 18 not in names
    assert [c.protocol.lower() for c in audio.ice_candidates] == ["udp"]  # aioice is UDP only
    text = SdpText.parse(prepared.sdp)
    assert not [line for line in text.session if line.startswith(("a=ice-", "a=fingerprint"))]
    assert prepared.setup == "actpass"


def test_baresip_offer_fixed_and_answer_fitted() -> None:
    prepared = prepare_remote(BARESIP_OFFER, 0, "0")
    parsed = SessionDescription.parse(prepared.sdp)
    assert [m.kind for m in parsed.media] == ["audio"]
    assert parsed.media[0].rtp.muxId == "0" and not prepared.had_mid and not prepared.had_bundle
    assert prepared.rejected == ((1, "m=video 0 UDP/TLS/RTP/SAVPF 100"),)
    ours = "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendrecv\r\n"
    fitted = SdpText.parse(finish_answer(ours, prepared))
    assert [s[0] for s in fitted.media] == [
        "m=audio 9 UDP/TLS/RTP/SAVPF 96",
        "m=video 0 UDP/TLS/RTP/SAVPF 100",
    ]
    assert not any(line.startswith(("a=mid", "a=group")) for s in fitted.media for line in s + fitted.session)


@pytest.mark.parametrize(
    ("edit", "hold", "direction"),
    [
        (lambda s: s.replace("a=sendrecv", "a=sendonly"), True, "sendonly"),
        (lambda s: s.replace("a=sendrecv", "a=inactive"), True, "inactive"),
        (lambda s: s.replace("c=IN IP4 192.0.2.20", "c=IN IP4 0.0.0.0"), True, "sendonly"),
        (lambda s: s.replace("a=sendrecv\r\n", ""), False, "sendrecv"),
    ],
)
def test_hold_seen_in_offers(edit: object, hold: bool, direction: str) -> None:
    prepared = prepare_remote(edit(BARESIP_OFFER), 0)  # type: ignore[operator]
    assert (prepared.hold, prepared.direction) == (hold, direction)
    assert audio_direction(prepared.sdp) == direction


async def test_our_sdp_trimmed() -> None:
    interface_address_or_skip()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver(AudioStreamTrack(), "sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        full = pc.localDescription.sdp
    finally:
        await pc.close()
    trimmed = trim_local(full, session_id=77, version=3, budget=10_000)
    lines = trimmed.split("\r\n")
    assert len(full) - len(trimmed) > 400  # three fingerprints, msid, ssrc, a=rtcp
    assert [line.split()[0] for line in lines if line.startswith("a=fingerprint")] == [
        "a=fingerprint:sha-256"
    ]
    assert not [line for line in lines if line.startswith(("a=msid", "a=ssrc", "a=rtcp:"))]
    assert lines[1].startswith("o=- 77 3 IN IP")
    parsed = SessionDescription.parse(trimmed)
    assert parsed.media[0].ice is not None and parsed.media[0].dtls is not None
    assert parsed.media[0].rtcp_mux and parsed.media[0].ice.password and parsed.media[0].dtls.fingerprints

    # A budget leaves out host candidates, IPv6 before IPv4, and keeps the default
    # address on a candidate still listed.
    v6 = "a=candidate:2 1 udp 2130706431 fd00::9 40000 typ host"
    v4 = "a=candidate:1 1 udp 2130706431 192.0.2.9 40002 typ host"
    relay = "a=candidate:3 1 udp 16777215 198.51.100.1 50000 typ relay raddr 0.0.0.0 rport 0"
    sdp = f"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 40000 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP6 fd00::9\r\n{v6}\r\n{v4}\r\n{relay}\r\n"
    assert v6 in trim_local(sdp, session_id=1, version=1, budget=10_000)
    cut = trim_local(sdp, session_id=1, version=1, budget=len(sdp) - 20)
    assert v6 not in cut and v4 in cut and relay in cut
    assert "m=audio 40002 " in cut and "c=IN IP4 192.0.2.9" in cut
    cut = trim_local(sdp, session_id=1, version=1, budget=10)
    assert relay in cut and v4 not in cut and "m=audio 50000 " in cut


@pytest.mark.parametrize("offer", [LINPHONE_OFFER, BARESIP_OFFER], ids=["linphone", "baresip"])
async def test_session_answers_phone_offers(offer: str) -> None:
    interface_address_or_skip()
    session = MediaSession(audio=AudioOptions(use_devices=False))
    try:
        answer = await session.answer(offer.encode())
        assert isinstance(answer, bytes), answer
        text = answer.decode()
        parsed = SessionDescription.parse(text)
        audio = parsed.media[0]
        assert audio.ice is not None and audio.dtls is not None
        assert audio.kind == "audio" and audio.profile == "UDP/TLS/RTP/SAVPF"
        assert audio.dtls.role == "server"  # a=setup:passive: aiortc is the DTLS server
        assert [f.algorithm for f in audio.dtls.fingerprints] == ["sha-256"]
        assert audio.ice.usernameFragment and audio.ice.password and audio.ice_candidates
        assert audio.direction == "sendrecv" and audio.rtcp_mux
        assert audio.rtp.codecs[0].mimeType == "audio/opus"  # our first choice, and theirs
        had_mid = "a=mid:" in offer
        assert bool(audio.rtp.muxId) == had_mid
        if offer is BARESIP_OFFER:
            assert [m.kind for m in parsed.media] == ["audio", "video"] and parsed.media[1].port == 0
        assert len(answer) < 900
        assert session.transceiver is not None and session.transceiver.currentDirection == "sendrecv"
    finally:
        await session.close()

"""telephone-event formats added to aiortc's offers and answers (RFC 4733 §7, RFC 7874 §3)."""

from __future__ import annotations

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from app.media.dtmf_sdp import (
    TelephoneEventFormat,
    add_to_answer,
    add_to_offer,
    audio_codecs,
    format_for_rate,
    telephone_events,
)
from app.media.dtmf_session import SessionDtmf
from app.media.session import AudioOptions, MediaSession

pytestmark = pytest.mark.media

ALL = frozenset(range(17))

G711_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
)


def test_offer_gets_one_format_per_audio_clock_rate() -> None:
    offer = add_to_offer(G711_OFFER)
    assert "m=audio 4000 RTP/AVP 0 8 101\r\n" in offer
    assert "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n" in offer
    assert offer.endswith("a=sendrecv\r\n")
    assert telephone_events(offer) == (TelephoneEventFormat(101, 8000, ALL),)
    assert add_to_offer(offer) == offer  # already there: unchanged


def test_answer_takes_the_offers_formats_for_its_codecs() -> None:
    offer = (
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
        "m=audio 4000 RTP/AVP 111 0 126 110\na=rtpmap:111 opus/48000/2\na=rtpmap:0 PCMU/8000\n"
        "a=rtpmap:126 telephone-event/8000\na=fmtp:126 0-15\na=rtpmap:110 telephone-event/48000\n"
    )
    pcmu_answer = G711_OFFER.replace(" 0 8\r\n", " 0\r\n").replace("a=rtpmap:8 PCMA/8000\r\n", "")
    answer = add_to_answer(offer, pcmu_answer)
    # only the 8 kHz format goes with PCMU, on the offer's payload type, for 0-15 (ours ∩ theirs)
    assert telephone_events(answer) == (TelephoneEventFormat(126, 8000, frozenset(range(16))),)
    assert "a=fmtp:126 0-15\r\n" in answer
    # an offer without telephone-event: the answer stays as it was
    assert add_to_answer(G711_OFFER, pcmu_answer) == pcmu_answer


def test_format_for_rate_and_codecs() -> None:
    offer = add_to_offer(G711_OFFER)
    assert [c.name for c in audio_codecs(offer)] == ["PCMU", "PCMA"]
    assert format_for_rate(telephone_events(offer), 8000) == TelephoneEventFormat(101, 8000, ALL)
    assert format_for_rate(telephone_events(offer), 48000) is None
    assert telephone_events("not sdp") == ()


async def test_aiortc_offer_and_answer_carry_telephone_event() -> None:
    """aiortc's own SDP, completed: Opus gets /48000, G.722 and G.711 /8000; aiortc takes
    the completed offer and makes an answer that, completed, keeps what goes with its codec."""
    caller = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    callee = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        caller.addTransceiver("audio", direction="sendrecv")
        await caller.setLocalDescription(await caller.createOffer())
        offer = add_to_offer(caller.localDescription.sdp)
        formats = telephone_events(offer)
        assert {f.clock_rate for f in formats} == {48000, 8000}
        assert all(f.events == ALL for f in formats)
        audio_pts = {c.payload_type for c in audio_codecs(offer)}
        assert not audio_pts & {f.payload_type for f in formats}

        await callee.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        callee.getTransceivers()[0].direction = "sendrecv"
        await callee.setLocalDescription(await callee.createAnswer())
        answer = add_to_answer(offer, callee.localDescription.sdp)
        first = audio_codecs(answer)[0]
        assert first.name == "opus"
        assert format_for_rate(telephone_events(answer), 48000) == format_for_rate(formats, 48000)
        await caller.setRemoteDescription(RTCSessionDescription(answer, "answer"))  # aiortc takes it
    finally:
        await caller.close()
        await callee.close()


async def test_session_offer_with_telephone_event_keeps_the_sdp_budget() -> None:
    """MediaSession trims its SDP to a byte budget (an INVITE in one datagram) before the
    hooks run: with telephone-event added, the SDP is trimmed again, down to leaving out
    the least useful candidates."""
    plain_session = MediaSession(audio=AudioOptions(use_devices=False))
    try:
        plain = (await plain_session.make_offer()).decode()
    finally:
        await plain_session.close()
    candidates = [line for line in plain.splitlines() if line.startswith("a=candidate:")]
    if len(candidates) < 2:
        pytest.skip("one ICE candidate only on this machine: nothing to trim")
    # Less room than the plain offer took: telephone-event (~110 bytes) comes on top, and
    # what trimming gives up before any candidate (~50 bytes of foundations, ~100 of
    # a=extmap) is not enough.
    budget = len(plain.encode()) - 40
    session = MediaSession(audio=AudioOptions(use_devices=False), sdp_budget=budget)
    SessionDtmf(session)
    try:
        offer = (await session.make_offer()).decode()
    finally:
        await session.close()
    assert len(offer.encode()) <= budget
    assert {f.clock_rate for f in telephone_events(offer)} == {48000, 8000}
    kept = [line for line in offer.splitlines() if line.startswith("a=candidate:")]
    assert 1 <= len(kept) < len(candidates)

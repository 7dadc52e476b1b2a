"""StaticSdpSession: a valid minimal offer (RFC 4566), answers by codec intersection
(RFC 3264 §6.1), 488 with a 305 Warning when no audio codec is shared."""

from __future__ import annotations

from app.sip.sdp import PCMA, RejectWith, StaticSdpSession, parse_sdp

SIPP_OFFER = (
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def test_offer_is_minimal_valid_sdp() -> None:
    s = StaticSdpSession("192.0.2.10", 40000)
    text = s.offer_sync().decode()
    assert text.splitlines()[:5] == [
        "v=0",
        f"o=- {s.session_id} 1 IN IP4 192.0.2.10",
        "s=-",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
    ]
    assert "m=audio 40000 RTP/AVP 0 8 101" in text and "a=rtpmap:101 telephone-event/8000" in text
    assert text.endswith("\r\n")
    # A new offer bumps the session version (RFC 3264 §8).
    assert f"o=- {s.session_id} 2 IN IP4" in s.offer_sync().decode()


def test_answer_keeps_common_codecs_in_offer_numbers() -> None:
    answer = StaticSdpSession(port=5000).answer_sync(SIPP_OFFER)
    assert isinstance(answer, bytes)
    sdp = parse_sdp(answer)
    (m,) = sdp.media
    assert (m.port, m.proto, m.formats) == (5000, "RTP/AVP", ["0"])
    assert [c.name for c in m.codecs()] == ["PCMU"]


def test_dynamic_payload_numbers_are_the_offerers() -> None:
    offer = SIPP_OFFER.replace(b"RTP/AVP 0", b"RTP/AVP 8 97").replace(
        b"a=rtpmap:0 PCMU/8000\r\n", b"a=rtpmap:97 telephone-event/8000\r\n"
    )
    answer = StaticSdpSession().answer_sync(offer)
    assert isinstance(answer, bytes)
    (m,) = parse_sdp(answer).media
    assert m.formats == ["8", "97"]


def test_direction_is_reversed() -> None:
    answer = StaticSdpSession().answer_sync(SIPP_OFFER + b"a=sendonly\r\n")
    assert isinstance(answer, bytes) and b"a=recvonly" in answer


def test_no_common_codec_is_488_with_305() -> None:
    offer = SIPP_OFFER.replace(b"RTP/AVP 0", b"RTP/AVP 18").replace(b"rtpmap:0 PCMU", b"rtpmap:18 G729")
    refused = StaticSdpSession().answer_sync(offer)
    assert refused == RejectWith(488, "Incompatible media format: no common audio codec", 305)


def test_secure_profile_offer_is_refused_by_the_static_session() -> None:
    offer = SIPP_OFFER.replace(b"RTP/AVP", b"UDP/TLS/RTP/SAVPF")
    assert isinstance(StaticSdpSession().answer_sync(offer), RejectWith)


def test_video_line_is_answered_with_port_zero() -> None:
    offer = SIPP_OFFER + b"m=video 6002 RTP/AVP 31\r\n"
    answer = StaticSdpSession().answer_sync(offer)
    assert isinstance(answer, bytes)
    media = parse_sdp(answer).media
    assert [(m.media, m.port) for m in media] == [("audio", 49170), ("video", 0)]


def test_accept_answer() -> None:
    s = StaticSdpSession()
    assert s.accept_answer_sync(StaticSdpSession(codecs=[PCMA]).answer_sync(s.offer_sync())) is None  # type: ignore[arg-type]
    assert isinstance(s.accept_answer_sync(b"not sdp"), RejectWith)


def test_hold_offers_sendonly_and_answers_follow() -> None:
    """RFC 3264 §8.4: hold is an offer of sendonly (inactive if the far end holds us too);
    an answer to a hold offer is recvonly; the holder's answers never receive."""
    alice, bob = StaticSdpSession(), StaticSdpSession()
    alice.set_hold(True)
    offer = alice.offer_sync()
    assert parse_sdp(offer).media[0].direction == "sendonly"
    answer = bob.answer_sync(offer)
    assert isinstance(answer, bytes)
    assert parse_sdp(answer).media[0].direction == "recvonly"
    assert bob.remote_hold and not bob.local_hold
    assert alice.accept_answer_sync(answer) is None
    assert alice.local_hold
    # Bob holds too while held: inactive; Alice (holding) answers inactive as well.
    bob.set_hold(True)
    offer2 = bob.offer_sync()
    assert parse_sdp(offer2).media[0].direction == "inactive"
    answer2 = alice.answer_sync(offer2)
    assert isinstance(answer2, bytes)
    assert parse_sdp(answer2).media[0].direction == "inactive"
    # Alice resumes while Bob still holds: she offers to receive only, he answers sendonly.
    alice.set_hold(False)
    answer3 = bob.answer_sync(alice.offer_sync())
    assert isinstance(answer3, bytes)
    assert parse_sdp(answer3).media[0].direction == "sendonly"
    assert not bob.remote_hold
    # Bob resumes: sendrecv both ways again.
    bob.set_hold(False)
    answer4 = alice.answer_sync(bob.offer_sync())
    assert isinstance(answer4, bytes)
    assert parse_sdp(answer4).media[0].direction == "sendrecv"
    assert not alice.remote_hold and not alice.local_hold

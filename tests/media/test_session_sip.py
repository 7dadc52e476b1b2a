"""MediaSession as app/sip's session handler: a full SIP call between two UserAgents
(signalling over UDP on 127.0.0.1, media over ICE on the interface address): the INVITE
fits in 1300 bytes, audio arrives, hold and resume by re-INVITE, BYE. And a classic
phone's plain RTP/AVP offer, sent as raw SIP over UDP, gets 488 with the Warning."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from app.media.events import DtlsConnected, FirstAudio
from app.media.session import AudioOptions, MediaSession
from app.sip.aio import PlainTransports, UserAgent, open_plain_transports
from app.sip.message import MTU_LIMIT, SipRequest, SipResponse, parse_message
from app.sip.ua import Transmit, UaConfig
from app.sip.uri import SipUri

from .session_support import Recording, interface_address_or_skip, tone_file

pytestmark = pytest.mark.media

T = 10.0

Agents = Callable[..., "asyncio.Future[tuple[UserAgent, PlainTransports]]"]


@pytest_asyncio.fixture
async def agents() -> AsyncIterator[Callable[..., object]]:
    made: list[tuple[UserAgent, PlainTransports]] = []

    async def make(user: str, **kw: object) -> tuple[UserAgent, PlainTransports]:
        ua = UserAgent(UaConfig(SipUri("sip", user, None, "example.org")), **kw)  # type: ignore[arg-type]
        net = await open_plain_transports(ua)
        made.append((ua, net))
        return ua, net

    try:
        yield make
    finally:
        for ua, _ in made:
            await ua.close()
        for _, net in made:
            await net.close()


def record_transmits(ua: UserAgent) -> list[Transmit]:
    """What the UA hands its transports (then sent as usual)."""
    sent: list[Transmit] = []
    transmit = ua._transmit

    def spy(out: Transmit) -> None:
        sent.append(out)
        transmit(out)

    ua._transmit = spy  # type: ignore[method-assign]
    return sent


async def test_sip_call_with_audio(agents: Callable[..., object], tmp_path: Path) -> None:
    interface_address_or_skip()
    tone = tone_file(tmp_path / "tone.wav", 440.0)
    record = tmp_path / "bob-heard.wav"
    alice_ua, _ = await agents(  # type: ignore[misc]
        "alice", session_factory=MediaSession.factory(audio=AudioOptions(play=tone, use_devices=False))
    )
    bob_ua, bob_net = await agents(  # type: ignore[misc]
        "bob",
        auto_answer=True,
        session_factory=MediaSession.factory(audio=AudioOptions(record=record, use_devices=False)),
    )
    sent = record_transmits(alice_ua)
    call = await alice_ua.call(bob_net.uri("bob"))
    await call.wait_answered(T)
    incoming = await bob_ua.next_incoming_call(T)
    alice, bob = call.session, incoming.session
    assert isinstance(alice, MediaSession) and isinstance(bob, MediaSession)
    await bob.wait_event(DtlsConnected, T)
    await bob.wait_event(FirstAudio, T)

    invites = [t.data for t in sent if isinstance(t.message, SipRequest) and t.message.method == "INVITE"]
    assert len(invites) == 1
    assert len(invites[0]) < MTU_LIMIT == 1300, len(invites[0])
    assert b"UDP/TLS/RTP/SAVPF" in invites[0] and b"a=fingerprint:sha-256" in invites[0]

    await asyncio.sleep(0.8)
    alice.set_hold(True)
    held = await call.reinvite(timeout=T)
    assert held.status == 200
    await bob.wait_hold(local=False, remote=True, timeout=T)
    await alice.wait_hold(local=True, remote=False, timeout=T)  # the UA hands the answer over in a task
    alice.set_hold(False)
    resumed = await call.reinvite(timeout=T)
    assert resumed.status == 200
    await bob.wait_hold(local=False, remote=False, timeout=T)
    await alice.wait_hold(local=False, remote=False, timeout=T)
    await asyncio.sleep(0.8)
    reinvites = [t.data for t in sent if isinstance(t.message, SipRequest) and t.message.method == "INVITE"][
        1:
    ]
    assert len(reinvites) == 2 and all(len(r) < MTU_LIMIT for r in reinvites)

    call.hangup()
    await call.wait_ended(T)
    await incoming.wait_ended(T)
    await alice.close()
    await bob.close()  # the recording is complete
    heard = Recording.read(record)
    first, last = heard.span()
    assert abs(heard.frequency(first, last) - 440.0) <= 5.0
    assert (last - first) / 100 > 1.4
    print(f"INVITE {len(invites[0])} B, re-INVITEs {[len(r) for r in reinvites]} B; bob {bob.timings}")


PLAIN_OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def raw_invite(target: tuple[str, int], local: tuple[str, int], body: bytes) -> bytes:
    host, port = target
    me = f"{local[0]}:{local[1]}"
    head = (
        f"INVITE sip:bob@{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {me};branch=z9hG4bK-media488\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:carol@example.org>;tag=c488\r\n"
        "To: <sip:bob@example.org>\r\n"
        "Call-ID: media-488@127.0.0.1\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:carol@{me}>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def test_plain_rtp_offer_gets_488_with_warning(agents: Callable[..., object]) -> None:
    _, bob_net = await agents(
        "bob", auto_answer=True, session_factory=MediaSession.factory(audio=AudioOptions(use_devices=False))
    )  # type: ignore[misc]
    target = bob_net.udp.local_address
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        await loop.sock_sendto(sock, raw_invite(target, sock.getsockname(), PLAIN_OFFER), target)
        final: SipResponse | None = None
        while final is None:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), T)
            message = parse_message(data)
            assert isinstance(message, SipResponse)
            if message.status >= 200:
                final = message
        assert final.status == 488
        assert final.headers.get("Warning") == '304 example.org "encrypted media (DTLS-SRTP) is required"'
        to = final.headers.get("To")
        ack = (
            f"ACK sip:bob@{target[0]}:{target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {sock.getsockname()[0]}:{sock.getsockname()[1]};branch=z9hG4bK-media488\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:carol@example.org>;tag=c488\r\nTo: {to}\r\n"
            "Call-ID: media-488@127.0.0.1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        )
        await loop.sock_sendto(sock, ack.encode(), target)
    finally:
        sock.close()

"""DTMF on SIP calls between two of our UserAgents over UDP on 127.0.0.1: by SIP INFO
(RFC 6086 legacy use, application/dtmf-relay); by RFC 4733 on a call with real media
(MediaSessions, ICE on this machine's interface address); and by INFO again when the far
end's media answered without telephone-event."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from app.media.dtmf import DtmfError
from app.media.dtmf_call import DtmfMethod, DtmfReceived, DtmfReceiver, DtmfSender
from app.media.dtmf_session import SessionDtmf
from app.media.events import FirstAudio
from app.media.session import AudioOptions, MediaSession
from app.sip.aio import Call, PlainTransports, UserAgent, open_plain_transports
from app.sip.events import InfoReceived, UaEvent
from app.sip.sdp import SessionHandler, StaticSdpSession
from app.sip.ua import UaConfig
from app.sip.uri import SipUri

from .dtmf_support import T, interface_address_or_skip

pytestmark = pytest.mark.media


class Calls:
    def __init__(self) -> None:
        self.uas: list[tuple[UserAgent, PlainTransports]] = []

    async def agent(
        self,
        user: str,
        *,
        auto_answer: bool = False,
        session_factory: Callable[[], SessionHandler] = StaticSdpSession,
    ) -> tuple[UserAgent, PlainTransports]:
        config = UaConfig(SipUri("sip", user, None, "example.org"))
        ua = UserAgent(config, auto_answer=auto_answer, session_factory=session_factory)
        net = await open_plain_transports(ua)
        self.uas.append((ua, net))
        return ua, net

    async def established(self) -> tuple[Call, Call, UserAgent]:
        """An answered UDP call alice -> bob: (alice's call, bob's call, bob's UA)."""
        alice, _ = await self.agent("alice")
        bob, bob_net = await self.agent("bob", auto_answer=True)
        call = await alice.call(bob_net.uri("bob", "udp"))
        await call.wait_answered(T)
        incoming = await bob.next_incoming_call(T)
        await incoming.wait_answered(T)
        return call, incoming, bob


@pytest_asyncio.fixture
async def calls() -> AsyncIterator[Calls]:
    made = Calls()
    try:
        yield made
    finally:
        for ua, _ in made.uas:
            await ua.close()
        for _, net in made.uas:
            await net.close()


async def digits_of(receiver: DtmfReceiver, count: int) -> list[DtmfReceived]:
    while len(receiver.digits) < count:
        await receiver.next_digit(T)
    return receiver.digits


async def test_digits_by_sip_info(calls: Calls) -> None:
    call, incoming, bob = await calls.established()
    receiver = DtmfReceiver(call_ref=incoming.ref)
    infos: list[UaEvent] = []
    bob.add_listener(receiver.on_sip_event)
    bob.add_listener(lambda e: infos.append(e) if isinstance(e, InfoReceived) else None)
    sender = DtmfSender(call=call, duration=0.16)
    assert sender.method() is DtmfMethod.SIP_INFO
    assert await sender.send("159*#D!") == [DtmfMethod.SIP_INFO] * 7
    got = await digits_of(receiver, 7)
    assert [(d.digit, d.duration_ms, d.method) for d in got] == [
        (c, 160, DtmfMethod.SIP_INFO) for c in "159*#D!"
    ]
    # what went on the wire: the de-facto dtmf-relay body, one INFO per digit
    first = infos[0]
    assert isinstance(first, InfoReceived)
    assert first.content_type == "application/dtmf-relay"
    assert first.body == b"Signal=1\r\nDuration=160\r\n"
    assert first.info_package is None


async def test_other_info_bodies_are_not_digits(calls: Calls) -> None:
    call, incoming, bob = await calls.established()
    receiver = DtmfReceiver(call_ref=incoming.ref)
    bob.add_listener(receiver.on_sip_event)
    assert (await call.send_info(b"<xml/>", "application/xml", timeout=T)).status == 200
    assert (await call.send_info(b"Signal=Q\r\n", "application/dtmf-relay", timeout=T)).status == 200
    assert (await call.send_info(b"3", "application/dtmf", timeout=T)).status == 200
    got = await digits_of(receiver, 1)
    assert [(d.digit, d.duration_ms) for d in got] == [("3", None)]


async def test_bad_digits_send_nothing(calls: Calls) -> None:
    call, _, bob = await calls.established()
    infos: list[UaEvent] = []
    bob.add_listener(lambda e: infos.append(e) if isinstance(e, InfoReceived) else None)
    with pytest.raises(DtmfError):
        await DtmfSender(call=call).send("12x")
    # the next digit's INFO is the first the far end sees (it told its listeners before
    # it sent the 200 that ends send())
    await DtmfSender(call=call).send("4")
    assert len(infos) == 1 and isinstance(infos[0], InfoReceived) and infos[0].body.startswith(b"Signal=4")


class Sessions:
    """A session factory for a UA: MediaSessions without devices, with DTMF or not."""

    def __init__(self, *, dtmf: bool) -> None:
        self.dtmf = dtmf
        self.made: list[tuple[MediaSession, SessionDtmf | None]] = []

    def __call__(self) -> MediaSession:
        session = MediaSession(audio=AudioOptions(use_devices=False))
        self.made.append((session, SessionDtmf(session) if self.dtmf else None))
        return session

    def only(self) -> tuple[MediaSession, SessionDtmf]:
        [(session, dtmf)] = self.made
        assert dtmf is not None
        return session, dtmf


async def media_call(
    calls: Calls, *, callee_dtmf: bool
) -> tuple[SessionDtmf, Call, Call, UserAgent, Sessions]:
    """alice calls bob over UDP with real media (ICE on this machine's interface address)."""
    interface_address_or_skip()
    alice_sessions, bob_sessions = Sessions(dtmf=True), Sessions(dtmf=callee_dtmf)
    alice, _ = await calls.agent("alice", session_factory=alice_sessions)
    bob, bob_net = await calls.agent("bob", auto_answer=True, session_factory=bob_sessions)
    call = await alice.call(bob_net.uri("bob", "udp"))
    await call.wait_answered(T)
    incoming = await bob.next_incoming_call(T)
    await incoming.wait_answered(T)
    session, dtmf = alice_sessions.only()
    dtmf.attach_call(call, alice)
    await session.wait_event(FirstAudio, T)
    return dtmf, call, incoming, bob, bob_sessions


async def test_rfc4733_on_a_sip_call_with_media(calls: Calls) -> None:
    dtmf, _, incoming, bob, bob_sessions = await media_call(calls, callee_dtmf=True)
    _, bob_dtmf = bob_sessions.only()
    bob_dtmf.attach_call(incoming, bob)
    assert await dtmf.send("2580") == [DtmfMethod.RFC4733] * 4
    got = await digits_of(bob_dtmf.receiver, 4)
    assert [(d.digit, d.method) for d in got] == [(c, DtmfMethod.RFC4733) for c in "2580"]


async def test_falls_back_to_info_when_telephone_event_was_not_answered(calls: Calls) -> None:
    """bob's media answers without telephone-event: alice's digits go by INFO."""
    dtmf, _, incoming, bob, _ = await media_call(calls, callee_dtmf=False)
    assert dtmf.channel.send_format is None
    receiver = DtmfReceiver(call_ref=incoming.ref)
    bob.add_listener(receiver.on_sip_event)
    assert dtmf.sender.method("5") is DtmfMethod.SIP_INFO
    assert await dtmf.send("50") == [DtmfMethod.SIP_INFO, DtmfMethod.SIP_INFO]
    got = await digits_of(receiver, 2)
    assert [(d.digit, d.method) for d in got] == [("5", DtmfMethod.SIP_INFO), ("0", DtmfMethod.SIP_INFO)]
    assert dtmf.channel.packets_sent == 0

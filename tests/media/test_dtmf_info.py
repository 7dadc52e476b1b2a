"""DTMF by SIP INFO (RFC 6086 legacy use, application/dtmf-relay) between two of our
UserAgents over UDP on 127.0.0.1, and the sender's choice of path: INFO when the far end
did not negotiate telephone-event."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from app.media.dtmf import DtmfError
from app.media.dtmf_call import DtmfMethod, DtmfReceived, DtmfReceiver, DtmfSender
from app.sip.aio import Call, PlainTransports, UserAgent, open_plain_transports
from app.sip.events import InfoReceived, UaEvent
from app.sip.ua import UaConfig
from app.sip.uri import SipUri

from .rtc_pair import connect_pair

pytestmark = pytest.mark.media

T = 10.0


class Calls:
    def __init__(self) -> None:
        self.uas: list[tuple[UserAgent, PlainTransports]] = []

    async def agent(self, user: str, *, auto_answer: bool = False) -> tuple[UserAgent, PlainTransports]:
        ua = UserAgent(UaConfig(SipUri("sip", user, None, "example.org")), auto_answer=auto_answer)
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


async def test_falls_back_to_info_when_telephone_event_was_not_answered(calls: Calls) -> None:
    """A media channel whose far end answered without telephone-event: the digits go by INFO."""
    pair = await connect_pair(answer_telephone_event=False)
    try:
        call, incoming, bob = await calls.established()
        receiver = DtmfReceiver(call_ref=incoming.ref)
        bob.add_listener(receiver.on_sip_event)
        receiver.attach_rtp(pair.callee.channel)  # nothing will come this way
        sender = DtmfSender(rtp=pair.caller.channel, call=call)
        assert sender.method("5") is DtmfMethod.SIP_INFO
        assert await sender.send("50") == [DtmfMethod.SIP_INFO, DtmfMethod.SIP_INFO]
        got = await digits_of(receiver, 2)
        assert [(d.digit, d.method) for d in got] == [("5", DtmfMethod.SIP_INFO), ("0", DtmfMethod.SIP_INFO)]
        assert pair.caller.channel.packets_sent == 0
    finally:
        await pair.close()

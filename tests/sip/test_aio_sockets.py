"""Our UserAgents over real UDP and TCP sockets on 127.0.0.1 (app/sip/transport.py):
calls, CANCEL (487), 486, MESSAGE, INFO, re-INVITE, 491 glare, REFER blind transfer to a
third UA, and forking to two UAs (first answer wins, the other is CANCELed; a late 2xx is
ACKed then BYEd)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio

from app.sip.aio import Call, CallState, PlainTransports, UserAgent, open_plain_transports
from app.sip.events import (
    CallEnded,
    CallRinging,
    EndReason,
    InfoReceived,
    MessageReceived,
    ReInviteReceived,
    TransferProgress,
    UaEvent,
)
from app.sip.ua import UaConfig
from app.sip.uri import SipUri

T = 10.0  # seconds any single step may take


@dataclass
class Agent:
    ua: UserAgent
    net: PlainTransports
    user: str
    events: list[UaEvent]

    def uri(self, kind: str) -> str:
        return self.net.uri(self.user, kind)


Factory = Callable[..., Awaitable[Agent]]


@pytest_asyncio.fixture
async def agents() -> AsyncIterator[Factory]:
    made: list[Agent] = []

    async def make(user: str, **kw: object) -> Agent:
        ua = UserAgent(UaConfig(SipUri("sip", user, None, "example.org")), **kw)  # type: ignore[arg-type]
        net = await open_plain_transports(ua)
        events: list[UaEvent] = []
        ua.add_listener(events.append)
        agent = Agent(ua, net, user, events)
        made.append(agent)
        return agent

    try:
        yield make
    finally:
        for agent in made:
            await agent.ua.close()
        await asyncio.sleep(0.05)  # let the BYEs/CANCELs of close() leave
        for agent in made:
            await agent.net.close()


KINDS = ["udp", "tcp"]


@pytest.mark.parametrize("kind", KINDS)
async def test_call_and_hangup(agents: Factory, kind: str) -> None:
    alice, bob = await agents("alice"), await agents("bob", auto_answer=True)
    call = await alice.ua.call(bob.uri(kind))
    answered = await call.wait_answered(T)
    assert answered.sdp is not None and b"m=audio" in answered.sdp
    incoming = await bob.ua.next_incoming_call(T)
    await incoming.wait_answered(T)
    assert incoming.identity is not None and incoming.identity.user == "alice@example.org"
    assert not incoming.identity.verified
    call.hangup()
    assert (await incoming.wait_ended(T)).reason is EndReason.REMOTE_HANGUP
    assert (await call.wait_ended(T)).reason is EndReason.LOCAL_HANGUP


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_before_answer(agents: Factory, kind: str) -> None:
    alice, bob = await agents("alice"), await agents("bob")
    call = await alice.ua.call(bob.uri(kind))
    incoming = await bob.ua.next_incoming_call(T)
    await call.wait_event(CallRinging, T)
    call.cancel()
    ended = await call.wait_ended(T)
    assert (ended.reason, ended.status) == (EndReason.LOCAL_CANCEL, 487)
    assert (await incoming.wait_ended(T)).reason is EndReason.REMOTE_CANCEL


@pytest.mark.parametrize("kind", KINDS)
async def test_busy_486(agents: Factory, kind: str) -> None:
    alice, bob = await agents("alice"), await agents("bob")
    call = await alice.ua.call(bob.uri(kind))
    (await bob.ua.next_incoming_call(T)).reject(486)
    ended = await call.wait_ended(T)
    assert (ended.reason, ended.status, ended.phrase) == (EndReason.REJECTED, 486, "Busy Here")


@pytest.mark.parametrize("kind", KINDS)
async def test_message_and_options(agents: Factory, kind: str) -> None:
    alice, bob = await agents("alice"), await agents("bob")
    response = await alice.ua.send_message(bob.uri(kind), "hello bob", timeout=T)
    assert response.status == 200
    received = await event(bob, MessageReceived)
    assert isinstance(received, MessageReceived) and received.text == "hello bob"
    assert received.identity.user == "alice@example.org"
    options = await alice.ua.options(bob.uri(kind), timeout=T)
    assert options.status == 200 and "REFER" in (options.headers.get("Allow") or "")


async def event(agent: Agent, kind: type[UaEvent]) -> UaEvent:
    """The first event of ``kind`` the agent saw, or the next one."""
    seen = next((e for e in agent.events if isinstance(e, kind)), None)
    return seen if seen is not None else await agent.ua.wait_for(lambda e: isinstance(e, kind), T)


async def established(agents: Factory, kind: str, **bob_kw: object) -> tuple[Agent, Agent, Call, Call]:
    alice, bob = await agents("alice", **bob_kw), await agents("bob", auto_answer=True, **bob_kw)
    call = await alice.ua.call(bob.uri(kind))
    await call.wait_answered(T)
    incoming = await bob.ua.next_incoming_call(T)
    await incoming.wait_answered(T)
    return alice, bob, call, incoming


@pytest.mark.parametrize("kind", KINDS)
async def test_info_in_call(agents: Factory, kind: str) -> None:
    _, bob, call, incoming = await established(agents, kind)
    response = await call.send_info(b"Signal=1\r\nDuration=100\r\n", "application/dtmf-relay", timeout=T)
    assert response.status == 200
    info = await event(bob, InfoReceived)
    assert isinstance(info, InfoReceived) and info.call == incoming.ref and info.body.startswith(b"Signal=1")


@pytest.mark.parametrize("kind", KINDS)
async def test_reinvite(agents: Factory, kind: str) -> None:
    _, bob, call, incoming = await established(agents, kind)
    done = await call.reinvite(timeout=T)
    assert done.status == 200 and done.sdp is not None
    received = await event(bob, ReInviteReceived)
    assert isinstance(received, ReInviteReceived) and received.call == incoming.ref
    assert call.state is CallState.ESTABLISHED and incoming.state is CallState.ESTABLISHED


@pytest.mark.parametrize("kind", KINDS)
async def test_glare_491(agents: Factory, kind: str) -> None:
    # §14.1's back-off, shortened: the Call-ID's owner (alice) waits longer than bob.
    backoff = {"glare_backoff": lambda owner: 0.6 if owner else 0.1}
    alice, bob, call, incoming = await established(agents, kind, **backoff)
    first, second = await asyncio.gather(call.reinvite(timeout=T), incoming.reinvite(timeout=T))
    assert first.status == 200 and second.status == 200
    # Each side got one re-INVITE through, after answering the crossing one with 491.
    assert len([e for e in alice.events if isinstance(e, ReInviteReceived)]) == 1
    assert len([e for e in bob.events if isinstance(e, ReInviteReceived)]) == 1
    for agent in (alice, bob):
        invites = [k for k in agent.ua.core.tu_requests if k[0] == "INVITE"]
        assert len(invites) == 2 + (agent is bob)  # the 491'd one, the retried one (+ bob's initial)


@pytest.mark.parametrize("kind", KINDS)
async def test_refer_blind_transfer(agents: Factory, kind: str) -> None:
    alice, _, call, incoming = await established(agents, kind)
    carol = await agents("carol", auto_answer=True)
    final = await call.refer(carol.uri(kind), timeout=T)
    assert (final.status, final.reason, final.final) == (200, "OK", True)
    progress = [(e.status, e.final) for e in alice.events if isinstance(e, TransferProgress)]
    assert progress == [(202, False), (100, False), (200, True)]
    assert incoming.transferred_to is not None
    await incoming.transferred_to.wait_answered(T)
    carols = await carol.ua.next_incoming_call(T)
    await carols.wait_answered(T)
    assert carols.identity is not None and carols.identity.user == "bob@example.org"
    call.hangup()  # the transferor leaves once the transfer is done
    await incoming.wait_ended(T)
    assert carols.state is CallState.ESTABLISHED


@pytest.mark.parametrize("kind", KINDS)
async def test_fork_first_answer_wins(agents: Factory, kind: str) -> None:
    alice, bob1, bob2 = await agents("alice"), await agents("bob"), await agents("bob")
    call = await alice.ua.call([bob1.uri(kind), bob2.uri(kind)], to="sip:bob@example.org")
    in1 = await bob1.ua.next_incoming_call(T)
    in2 = await bob2.ua.next_incoming_call(T)
    while len([e for e in call.events if isinstance(e, CallRinging)]) < 2:
        await alice.ua.wait_for(lambda e: isinstance(e, CallRinging), T)
    await in1.answer()
    await call.wait_answered(T)
    ended = await in2.wait_ended(T)
    assert ended.reason is EndReason.REMOTE_CANCEL
    await in1.wait_answered(T)
    assert call.state is CallState.ESTABLISHED and in1.state is CallState.ESTABLISHED


@pytest.mark.parametrize("kind", KINDS)
async def test_fork_late_2xx_is_acked_then_byed(agents: Factory, kind: str) -> None:
    alice, bob1, bob2 = await agents("alice"), await agents("bob"), await agents("bob")
    call = await alice.ua.call([bob1.uri(kind), bob2.uri(kind)], to="sip:bob@example.org")
    in1 = await bob1.ua.next_incoming_call(T)
    in2 = await bob2.ua.next_incoming_call(T)
    # Both answer before alice hears either: one 2xx wins, the other comes late.
    await asyncio.gather(in1.answer(), in2.answer())
    await call.wait_answered(T)
    loser = in2 if call.identity is not None and _answered_by(call, bob1) else in1
    winner = in1 if loser is in2 else in2
    # The loser's 200 was ACKed (its dialog confirmed) and then BYEd.
    await loser.wait_answered(T)
    assert (await loser.wait_ended(T)).reason is EndReason.REMOTE_HANGUP
    await winner.wait_answered(T)
    await asyncio.sleep(0.3)
    assert winner.state is CallState.ESTABLISHED and call.state is CallState.ESTABLISHED
    assert not any(isinstance(e, CallEnded) for e in alice.events)


def _answered_by(call: Call, agent: Agent) -> bool:
    """Whether the dialog alice kept is the one with ``agent`` (its socket address)."""
    dialog = call._ua.core.call_dialog(call.ref)
    assert dialog is not None
    peer = dialog.peer
    remote = getattr(peer, "remote_address", None)
    return remote is not None and remote[1] in (
        agent.net.udp.local_address[1],
        agent.net.tcp.local_address[1],
    )


async def test_tcp_connection_refused_ends_the_call_503(agents: Factory) -> None:
    alice = await agents("alice")
    bob = await agents("bob")
    uri = bob.uri("tcp")
    await bob.net.tcp.close()  # nobody listens there any more
    call = await alice.ua.call(uri)
    ended = await call.wait_ended(T)
    assert (ended.reason, ended.status) == (EndReason.TRANSPORT_ERROR, 503)

"""The UA over app/sip/transport.py's DatagramConnectionTransport, the wrapper of the
AppAttach DTLS connection (RFC 7904 §5), here on an in-memory datagram connection pair
(with loss): the certificate identity reaches the events, a From that is not the
certificate's user is refused with 403, and SIP's retransmissions carry calls over loss."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from app.sip.aio import UserAgent
from app.sip.events import EndReason
from app.sip.transaction import TimerConfig
from app.sip.transport import DatagramConnectionTransport
from app.sip.ua import Target, UaConfig
from app.sip.uri import SipUri

from .memory import Loss, drop_random

FAST = TimerConfig(t1=0.02, t2=0.16, t4=0.2, timer_d=1.28)
ALICE_ID, BOB_ID = b"\xa1" * 16, b"\xb0" * 16


class MemoryConnection:
    """One end of a connected datagram pair (what DtlsAppConnection offers the SIP layer)."""

    def __init__(self, loss: Loss | None) -> None:
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.other: MemoryConnection | None = None
        self.loss = loss
        self.closed = False

    async def recv(self) -> bytes:
        data = await self.inbox.get()
        if data is None:
            raise ConnectionError("closed")
        return data

    def send(self, message: bytes) -> None:
        if self.closed or self.other is None:
            raise ConnectionError("closed")
        if self.loss is None or not self.loss(message):
            self.other.inbox.put_nowait(message)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.inbox.put_nowait(None)


def ua(user: str) -> UserAgent:
    return UserAgent(
        UaConfig(SipUri("sip", user, None, "example.org"), timers=FAST), auto_answer=user == "bob"
    )


@pytest_asyncio.fixture
async def closing() -> AsyncIterator[list[DatagramConnectionTransport | UserAgent]]:
    things: list[DatagramConnectionTransport | UserAgent] = []
    try:
        yield things
    finally:
        for thing in reversed(things):
            await thing.close()


async def connect(
    alice: UserAgent, bob: UserAgent, things: list[DatagramConnectionTransport | UserAgent], *,
    alice_cert: str = "alice@example.org", loss: Loss | None = None,
) -> DatagramConnectionTransport:  # fmt: skip
    """An AppAttach-like connection between the two; returns alice's end."""
    a, b = MemoryConnection(loss), MemoryConnection(loss)
    a.other, b.other = b, a
    ta = DatagramConnectionTransport(
        a, alice.deliver, on_transport_error=alice.transport_error,
        verified_user="bob@example.org", verified_node_id=BOB_ID,
    )  # fmt: skip
    tb = DatagramConnectionTransport(
        b, bob.deliver, on_transport_error=bob.transport_error,
        verified_user=alice_cert, verified_node_id=ALICE_ID,
    )  # fmt: skip
    ta.start()
    tb.start()
    things += [ta, tb]
    return ta


async def test_call_over_appattach_carries_certificate_identity(
    closing: list[DatagramConnectionTransport | UserAgent],
) -> None:
    alice, bob = ua("alice"), ua("bob")
    closing += [alice, bob]
    conn = await connect(alice, bob, closing)
    call = await alice.call(Target(conn.peer, SipUri("sip", "bob", None, "example.org")))
    answered = await call.wait_answered(5)
    assert (answered.identity.user, answered.identity.node_id, answered.identity.verified) == (
        "bob@example.org",
        BOB_ID,
        True,
    )
    incoming = await bob.next_incoming_call(5)
    assert incoming.identity is not None
    assert (incoming.identity.user, incoming.identity.node_id) == ("alice@example.org", ALICE_ID)
    response = await call.send_message("over the overlay", timeout=5)
    assert response.status == 200
    call.hangup()
    assert (await incoming.wait_ended(5)).reason is EndReason.REMOTE_HANGUP


async def test_from_not_the_certificate_user_is_refused(
    closing: list[DatagramConnectionTransport | UserAgent],
) -> None:
    alice, bob = ua("alice"), ua("bob")
    closing += [alice, bob]
    conn = await connect(alice, bob, closing, alice_cert="mallory@example.org")
    call = await alice.call(Target(conn.peer, SipUri("sip", "bob", None, "example.org")))
    ended = await call.wait_ended(5)
    assert (ended.status, ended.phrase) == (403, "From does not match the certificate's user")
    assert bob.calls == {}


@pytest.mark.parametrize("seed", [5, 6])
async def test_calls_over_a_lossy_appattach_connection(
    closing: list[DatagramConnectionTransport | UserAgent], seed: int
) -> None:
    alice, bob = ua("alice"), ua("bob")
    closing += [alice, bob]
    conn = await connect(alice, bob, closing, loss=drop_random(0.25, seed))
    for _ in range(3):
        call = await alice.call(Target(conn.peer, SipUri("sip", "bob", None, "example.org")))
        await call.wait_answered(20)
        assert (await call.reinvite(timeout=20)).status == 200
        call.hangup()
        incoming = bob.calls[max(bob.calls)]
        assert (await incoming.wait_ended(20)).reason is EndReason.REMOTE_HANGUP
    assert max(bob.core.tu_requests.values()) == 1

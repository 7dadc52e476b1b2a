"""Phones on an enrolled overlay, in this process, over real sockets: registration, calls
(answer, hang up, reject, cancel, busy, unknown AoRs), and the history after each."""

from __future__ import annotations

import asyncio
import time

from app.phone.calls import CallState, EndCause
from app.phone.events import CallStateChanged, OverlayRole, PhoneState, PhoneStateChanged
from app.phone.store import CallDirection as HistoryDirection

from .phone_lab import WAIT, Events, PhoneLab


async def test_register_call_answer_hang_up_and_history(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob")
    alice_events, bob_events = Events(alice), Events(bob)
    assert alice.state is PhoneState.REGISTERED and alice.role is OverlayRole.PEER
    assert alice.gruu is not None and alice.gruu.startswith(f"sip:alice@{alice.domain};gr=")

    call = await alice.call("bob")
    assert call.state is CallState.DIALING
    incoming = await bob.next_incoming_call(WAIT)
    assert incoming.peer == "sip:alice@phones.p2psip.test" and incoming.verified
    assert await call.wait_state(CallState.RINGING, timeout=WAIT) is CallState.RINGING
    await incoming.answer()
    assert await call.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED
    assert await incoming.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED
    assert call.verified  # the far end proved bob's certificate (RFC 7904 §5.1)

    await call.hangup()
    assert await call.wait_ended(WAIT) is EndCause.HUNG_UP
    assert await incoming.wait_ended(WAIT) is EndCause.REMOTE_HUNG_UP
    assert incoming.words == "alice hung up" and call.words == "you hung up"

    # Every change was an event, in order, the first one new (previous None).
    states = [(e.previous, e.state) for e in alice_events.of(CallStateChanged) if e.call == call.id]
    assert states == [
        (None, CallState.DIALING),
        (CallState.DIALING, CallState.RINGING),
        (CallState.RINGING, CallState.CONNECTED),
        (CallState.CONNECTED, CallState.ENDED),
    ]
    assert [e.state for e in bob_events.of(CallStateChanged)] == [
        CallState.RINGING,
        CallState.CONNECTED,
        CallState.ENDED,
    ]

    (out,) = await alice.history()
    assert (out.direction, out.peer_aor, out.outcome) == (
        HistoryDirection.OUTGOING,
        "sip:bob@phones.p2psip.test",
        "you hung up",
    )
    assert out.answered is not None and out.ended is not None and out.verified
    assert out.duration is not None and 0 <= out.duration < WAIT
    (inc,) = await bob.history()
    assert (inc.direction, inc.peer_aor, inc.outcome) == (
        HistoryDirection.INCOMING,
        "sip:alice@phones.p2psip.test",
        "alice hung up",
    )


async def test_reject_cancel_and_unknown_aors(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob")

    # bob declines
    call = await alice.call("bob")
    incoming = await bob.next_incoming_call(WAIT)
    await incoming.reject()
    assert await call.wait_ended(WAIT) is EndCause.DECLINED
    assert call.words == "bob declined" and call.sip_status == 603
    # bob is busy (he says so)
    call = await alice.call("bob")
    incoming = await bob.next_incoming_call(WAIT)
    await incoming.reject(busy=True)
    assert await call.wait_ended(WAIT) is EndCause.BUSY and call.words == "bob is busy"
    # alice gives up while it rings: bob missed it
    call = await alice.call("bob")
    incoming = await bob.next_incoming_call(WAIT)
    await call.wait_state(CallState.RINGING, timeout=WAIT)
    await call.hangup()
    assert await call.wait_ended(WAIT) is EndCause.CANCELLED
    assert await incoming.wait_ended(WAIT) is EndCause.MISSED
    # nobody by that name is registered: said at once
    started = time.monotonic()
    call = await alice.call("nobody")
    assert await call.wait_ended(WAIT) is EndCause.NOT_ONLINE
    assert call.words == "nobody is not online"
    assert time.monotonic() - started < 5.0
    # a domain this overlay does not serve (RFC 7904 §3.4)
    call = await alice.call("sip:bob@elsewhere.example")
    assert await call.wait_ended(WAIT) is EndCause.NOT_ON_OVERLAY
    assert call.words == "bob's name is not on this overlay"

    history = await alice.history()
    assert [h.outcome for h in history] == [
        "bob's name is not on this overlay",
        "nobody is not online",
        "cancelled",
        "bob is busy",
        "bob declined",
    ]
    assert all(h.answered is None and h.duration == 0.0 for h in history)
    bob_history = await bob.history()
    assert [h.direction for h in bob_history] == [
        HistoryDirection.MISSED,
        HistoryDirection.INCOMING,
        HistoryDirection.INCOMING,
    ]
    assert [h.outcome for h in bob_history] == [
        "alice hung up before you answered",
        "you were busy",
        "you declined",
    ]
    assert await bob.store.missed_count() == 1


async def test_busy_when_the_phone_is_full_and_auto_answer(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob", max_calls=1, auto_answer=True)
    carol = await lab.open("carol")
    bob_events = Events(bob)
    first = await alice.call("bob")
    assert await first.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED  # auto-answered
    second = await carol.call("bob")
    assert await second.wait_ended(WAIT) is EndCause.BUSY
    assert second.words == "bob is busy" and second.sip_status == 486
    await bob_events.wait(CallStateChanged, lambda e: e.cause is EndCause.BUSY)  # stored, then told
    (refused, answered) = await bob.history()
    assert refused.peer_aor == "sip:carol@phones.p2psip.test" and refused.outcome == "you were busy"
    assert refused.direction is HistoryDirection.MISSED
    assert answered.answered is not None and answered.ended is None  # still going on
    await first.hangup()
    await first.wait_ended(WAIT)


async def test_sign_out_removes_the_registration(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob")
    bob_events = Events(bob)
    await bob.close()
    closed = await bob_events.wait(PhoneStateChanged, lambda e: e.state is PhoneState.CLOSED)
    assert closed.reason == "signed out"
    started = time.monotonic()
    call = await alice.call("bob")
    assert await call.wait_ended(WAIT) is EndCause.NOT_ONLINE
    assert time.monotonic() - started < 5.0
    await asyncio.sleep(0)

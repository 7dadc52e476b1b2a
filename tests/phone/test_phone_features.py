"""The phone's features between phones on an enrolled overlay (real sockets, in this
process): presence, forwarding (always, on busy, on no answer), blind transfer, do not
disturb, two calls with one held, messages both ways, and the history after each."""

from __future__ import annotations

import time

from app.phone.calls import CallDirection, CallState, EndCause
from app.phone.events import (
    CallRedirected,
    CallRemoteHold,
    CallStateChanged,
    KeyChanged,
    MessageReceived,
    MessageStateChanged,
    PresenceChanged,
    TransferUpdate,
)
from app.phone.network import NetworkOptions
from app.phone.presence import PresencePolicy
from app.phone.store import CallDirection as HistoryDirection
from app.phone.store import Delivery, MessageDirection

from .phone_lab import OVERLAY, WAIT, Events, PhoneLab, connected_call


def aor(name: str) -> str:
    return f"sip:{name}@{OVERLAY}"


async def test_presence_appears_and_goes_away_when_a_phone_is_cut_off(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob")
    events = Events(alice)
    buddy = await alice.add_buddy("bob", "Bob")
    assert (buddy.aor, buddy.display_name, buddy.online) == (aor("bob"), "Bob", None)
    online = await events.wait(PresenceChanged, lambda e: e.aor == aor("bob"))
    assert online.online and online.last_seen is not None
    (listed,) = await alice.buddies()
    assert listed.online is True and listed.last_seen == online.last_seen
    # A buddy nobody registered: offline from the first check.
    await alice.add_buddy("dave")
    dave = await events.wait(PresenceChanged, lambda e: e.aor == aor("dave"))
    assert dave.online is False and dave.last_seen is None

    # bob's phone is cut off: its registration stays in the overlay, its node is gone.
    await bob.close(sign_out=False)
    gone = await events.wait(PresenceChanged, lambda e: e.aor == aor("bob") and not e.online, timeout=30.0)
    assert gone.last_seen is not None and gone.last_seen >= online.last_seen
    stored = await alice.store.get_contact(aor("bob"))
    assert stored is not None and stored.last_seen is not None
    estimated, measured = alice.presence_rate
    assert 0 < estimated <= 5.0 and 0 < measured <= 5.0


async def test_forwarding_always_follows_the_registration(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob")
    carol = await lab.open("carol")
    await bob.update_settings(forward_always="carol")
    assert bob.settings.forward_always == aor("carol")
    call = await alice.call("bob")
    incoming = await carol.next_incoming_call(WAIT)  # bob's AoR now resolves to carol (RFC 7904 §4.2)
    assert incoming.peer == aor("alice") and incoming.verified
    await incoming.answer()
    assert await call.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED
    assert call.peer == aor("bob")
    await call.hangup()
    await call.wait_ended(WAIT)
    assert not bob.calls and not await bob.history()  # bob's phone never saw it
    # Forwarding off: bob's own phone rings again.
    await bob.update_settings(forward_always=None)
    call = await alice.call("bob")
    incoming = await bob.next_incoming_call(WAIT)
    await incoming.reject()
    assert await call.wait_ended(WAIT) is EndCause.DECLINED


async def test_forwarding_on_busy_and_on_no_answer(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob")
    carol = await lab.open("carol")
    alice_events, bob_events = Events(alice), Events(bob)
    await bob.update_settings(forward_busy="carol", forward_no_answer="carol", no_answer_seconds=1)

    # No answer: bob's phone rings a second, then says 302 with carol as Contact.
    call = await alice.call("bob")
    ringing_at_bob = await bob.next_incoming_call(WAIT)
    at_carol = await carol.next_incoming_call(WAIT)
    redirected = await alice_events.wait(CallRedirected, lambda e: e.call == call.id)
    assert redirected.target == aor("carol")
    assert await ringing_at_bob.wait_ended(WAIT) is EndCause.FORWARDED
    assert ringing_at_bob.words == "forwarded to carol (no answer)"
    await at_carol.answer()
    assert await call.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED
    await call.settled()  # the events follow the state once the history is written
    states = [e.state for e in alice_events.of(CallStateChanged) if e.call == call.id]
    assert states == [
        CallState.DIALING,
        CallState.RINGING,
        CallState.DIALING,
        CallState.RINGING,
        CallState.CONNECTED,
    ]
    await call.hangup()
    await call.wait_ended(WAIT)
    (out,) = await alice.history()
    assert out.peer_aor == aor("bob") and out.outcome == "forwarded to carol: you hung up"
    (missed,) = await bob.history()
    assert (
        missed.direction is HistoryDirection.INCOMING and missed.outcome == "forwarded to carol (no answer)"
    )

    # Busy: bob is in a call with carol; alice's call to bob goes to carol at once.
    first, _ = await connected_call(carol, bob)
    call = await alice.call("bob")
    at_carol = await carol.next_incoming_call(WAIT)
    assert at_carol.peer == aor("alice")
    await at_carol.answer()  # carol's call with bob is held first
    assert await call.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED
    assert first.state is CallState.HELD
    # bob's phone stored the call it forwarded before it told anyone.
    await bob_events.wait(CallStateChanged, lambda e: e.cause is EndCause.FORWARDED and "busy" in e.words)
    latest = (await bob.history())[0]
    assert (
        latest.outcome == "forwarded to carol (you were busy)"
        and latest.direction is HistoryDirection.INCOMING
    )
    for c in (call, first):
        await c.hangup()
        await c.wait_ended(WAIT)


async def test_do_not_disturb(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob")
    bob_events = Events(bob)
    await bob.update_settings(do_not_disturb=True)
    call = await alice.call("bob")
    assert await call.wait_ended(WAIT) is EndCause.DO_NOT_DISTURB
    assert call.words == "bob does not want to be disturbed" and call.sip_status == 480
    assert [t.state for t in call.machine.transitions] == [CallState.DIALING, CallState.ENDED]  # never rang
    refused = await bob_events.wait(CallStateChanged, lambda e: e.direction is CallDirection.INCOMING)
    assert (refused.previous, refused.state, refused.cause) == (
        None,
        CallState.ENDED,
        EndCause.DO_NOT_DISTURB,
    )
    (missed,) = await bob.history()
    assert missed.direction is HistoryDirection.MISSED and missed.outcome == "not put through: do not disturb"
    assert (await alice.history())[0].outcome == "bob does not want to be disturbed"


async def test_blind_transfer(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob")
    carol = await lab.open("carol")
    alice_events, bob_events = Events(alice), Events(bob)
    call, at_bob = await connected_call(alice, bob)
    transfer = alice.spawn(call.transfer("carol"))
    at_carol = await carol.next_incoming_call(WAIT)
    assert at_carol.peer == aor("bob") and at_carol.verified  # bob's phone calls carol (RFC 3515)
    await at_carol.answer()
    update = await transfer
    assert isinstance(update, TransferUpdate) and update.final and update.status == 200
    assert await call.wait_ended(WAIT) is EndCause.TRANSFERRED
    assert call.words == "transferred to carol"
    assert await at_bob.wait_ended(WAIT) is EndCause.REMOTE_HUNG_UP
    # bob's phone took the new call on as an outgoing call to carol.
    new = await bob_events.wait(
        CallStateChanged, lambda e: e.direction is CallDirection.OUTGOING and e.state is CallState.CONNECTED
    )
    assert new.peer == aor("carol")
    progress = alice_events.of(TransferUpdate)
    assert progress and progress[-1].final
    bob_call = bob.get_call(new.call)
    assert bob_call is not None
    await bob_call.hangup()
    assert await at_carol.wait_ended(WAIT) is EndCause.REMOTE_HUNG_UP
    assert (await alice.history())[0].outcome == "transferred to carol"
    assert [h.peer_aor for h in await bob.history()] == [aor("carol"), aor("alice")]


async def test_two_calls_one_held(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob")
    carol = await lab.open("carol")
    bob_events = Events(bob)
    to_bob, at_bob = await connected_call(alice, bob)
    to_carol, at_carol = await connected_call(alice, carol)  # dialling carol holds bob
    assert to_bob.state is CallState.HELD and to_carol.state is CallState.CONNECTED
    held = await bob_events.wait(CallRemoteHold, lambda e: e.call == at_bob.id)
    assert held.held and at_bob.remote_held
    await to_bob.resume()  # and carol is held
    assert to_bob.state is CallState.CONNECTED and to_carol.state is CallState.HELD
    assert at_carol.remote_held
    await bob_events.wait(CallRemoteHold, lambda e: e.call == at_bob.id and not e.held)
    assert not at_bob.remote_held
    for c in (to_bob, to_carol):
        await c.hangup()
        assert await c.wait_ended(WAIT) is EndCause.HUNG_UP
    assert len(await alice.history()) == 2


async def test_messages_both_ways_and_to_someone_offline(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    bob = await lab.open("bob")
    alice_events, bob_events = Events(alice), Events(bob)
    record = await alice.send_message("bob", "hello bob")
    assert record.state is Delivery.DELIVERED and record.peer_aor == aor("bob")
    states = [e.record.state for e in alice_events.of(MessageStateChanged)]
    assert states == [Delivery.SENDING, Delivery.SENT, Delivery.DELIVERED]
    got = await bob_events.wait(MessageReceived)
    assert got.record.text == "hello bob" and got.record.peer_aor == aor("alice") and got.verified
    reply = await bob.send_message("alice", "hi alice ☺")
    assert reply.state is Delivery.DELIVERED
    back = await alice_events.wait(MessageReceived)
    assert back.record.text == "hi alice ☺"
    conversation = await alice.messages("bob")
    assert [(m.direction, m.text) for m in conversation] == [
        (MessageDirection.OUTGOING, "hello bob"),
        (MessageDirection.INCOMING, "hi alice ☺"),
    ]
    assert await alice.mark_read("bob") == 1
    # bob signs out: a message to him fails at once, saying why.
    await bob.close()
    started = time.monotonic()
    failed = await alice.send_message("bob", "are you there?")
    assert failed.state is Delivery.FAILED and failed.reason == "bob is not online"
    assert time.monotonic() - started < 5.0
    last = (await alice.messages("bob"))[-1]
    assert (last.state, last.reason) == (Delivery.FAILED, "bob is not online")


async def test_keys_pinned_on_first_use(lab: PhoneLab) -> None:
    """With key pinning on (the local overlay's default), a caller whose key is not the
    one first seen for their AoR is not verified until the key is accepted."""
    alice = await lab.open("alice", pin_keys=True)
    events = Events(alice)
    bob = await lab.open("bob")
    call, at_alice = await connected_call(bob, alice)
    assert at_alice.verified  # first seen: pinned
    pin = alice.pins.get(aor("bob")) if alice.pins is not None else None
    assert pin is not None and pin.node_id == bob.node_id
    await call.hangup()
    await at_alice.wait_ended(WAIT)
    await bob.close()
    # Another device, another key, claims bob (here: the CA issued bob a second one).
    other_bob = await lab.open("bob")
    assert other_bob.node_id != pin.node_id
    call, at_alice = await connected_call(other_bob, alice)
    assert not at_alice.verified
    changed = await events.wait(KeyChanged)
    assert (changed.aor, changed.node_id, changed.pinned_node_id) == (
        aor("bob"),
        other_bob.node_id,
        pin.node_id,
    )
    await call.hangup()
    await at_alice.wait_ended(WAIT)
    record = await other_bob.send_message("alice", "it is me, really")
    assert record.state is Delivery.DELIVERED
    message = await events.wait(MessageReceived)
    assert not message.verified
    # The user accepts the new key: from now on bob is verified again.
    assert alice.accept_key("bob")
    call, at_alice = await connected_call(other_bob, alice)
    assert at_alice.verified
    await call.hangup()
    await at_alice.wait_ended(WAIT)
    history = await alice.history()
    assert [h.verified for h in history] == [True, False, True]


async def test_a_failed_call_checks_presence_at_once(lab: PhoneLab) -> None:
    """Presence rechecks a buddy as soon as a call to them fails, not at the next
    scheduled check (here ten minutes away)."""
    slow = PresencePolicy(online_interval=600.0, offline_first=600.0, initial_spread=0.1)
    network = NetworkOptions(join_timeout=20.0, connect_timeout=3.0)
    alice = await lab.open("alice", presence=slow, network=network)
    bob = await lab.open("bob")
    events = Events(alice)
    await alice.add_buddy("bob")
    await events.wait(PresenceChanged, lambda e: e.aor == aor("bob") and e.online)
    await bob.close(sign_out=False)  # cut off: the registration stays behind
    call = await alice.call("bob")
    assert await call.wait_ended(30.0) is EndCause.UNREACHABLE
    assert call.words == "bob is online but could not be reached"
    gone = await events.wait(PresenceChanged, lambda e: e.aor == aor("bob") and not e.online, timeout=30.0)
    assert gone.time - (call.ended or 0.0) < 15.0

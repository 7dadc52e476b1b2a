"""The phone on the network: as a client (RFC 6940 §4.2), back on the overlay after it
went away, and as a plain SIP endpoint (``--sip-listen``) with unverified identities."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli.init_cmd import init_profile
from app.peer import build_node, peer_setup
from app.phone.calls import CallState, EndCause
from app.phone.events import MessageReceived, OverlayRole, PhoneState, PhoneStateChanged
from app.phone.network import JoinRole, LocalJoiner, NetworkOptions
from app.phone.service import Phone, PhoneError
from app.phone.store import Delivery
from app.profile import load_profile
from reload_core.wire.addresses import IpAddressPort

from .phone_lab import OVERLAY, WAIT, Events, PhoneLab, connected_call


async def test_a_client_registers_calls_and_is_called(lab: PhoneLab) -> None:
    alice = await lab.open("alice")
    carol = await lab.open("carol", network=NetworkOptions(role=JoinRole.CLIENT, join_timeout=20.0))
    assert carol.role is OverlayRole.CLIENT and carol.state is PhoneState.REGISTERED
    session = carol.session
    assert session is not None and session.node.is_client
    call, at_carol = await connected_call(alice, carol)
    await at_carol.hangup()
    assert await call.wait_ended(WAIT) is EndCause.REMOTE_HUNG_UP
    back, at_alice = await connected_call(carol, alice)
    assert at_alice.verified and at_alice.peer == f"sip:carol@{OVERLAY}"
    await back.hangup()
    assert await at_alice.wait_ended(WAIT) is EndCause.REMOTE_HUNG_UP


async def test_back_on_the_overlay_after_it_went_away(lab: PhoneLab) -> None:
    network = NetworkOptions(join_timeout=5.0, retry_first=0.3, retry_max=1.0, disconnected_grace=0.5)
    alice = await lab.open("alice", network=network)
    events = Events(alice)
    assert lab.bootstrap is not None
    address = lab.bootstrap.address
    assert address is not None
    # The whole overlay but alice goes away (as when her network drops).
    await lab.bootstrap.close()
    offline = await events.wait(PhoneStateChanged, lambda e: e.state is PhoneState.OFFLINE)
    assert offline.reason == "lost every link to the overlay" and offline.retry_in is not None

    # Attempts fail, and say why, while nobody is there (three of them: more than it
    # takes to fall back to a client when the overlay is there but will not have us).
    def failures() -> list[PhoneStateChanged]:
        return [
            e
            for e in events.of(PhoneStateChanged)
            if e.state is PhoneState.OFFLINE and e.reason.startswith("could not")
        ]

    await events.wait(PhoneStateChanged, lambda e: len(failures()) >= 3, timeout=30.0)
    assert all(f.reason.startswith("could not join as a peer") and f.role is None for f in failures())
    # The overlay is back at the same address: alice rejoins and registers by herself.
    node = build_node(peer_setup(load_profile(lab.overlay.peers[0].directory)))
    await node.start(IpAddressPort(address.addr, address.port))
    node.start_alone()
    lab.bootstrap = node
    await alice.wait_state(PhoneState.REGISTERED, timeout=30.0)
    assert alice.keeper.rejoins >= 1
    # An overlay that was down says nothing about our reachability: still a peer.
    assert alice.role is OverlayRole.PEER
    bob = await lab.open("bob")
    call, at_alice = await connected_call(bob, alice)
    await call.hangup()
    assert await at_alice.wait_ended(WAIT) is EndCause.REMOTE_HUNG_UP
    states = [e.state for e in events.of(PhoneStateChanged)]
    assert states[0] is PhoneState.OFFLINE and states[-1] is PhoneState.REGISTERED
    assert PhoneState.JOINING in states and PhoneState.REGISTERING in states


async def test_plain_sip_calls_and_messages_are_unverified(lab: PhoneLab) -> None:
    alice = await lab.open("alice", sip_listen=_listen("udp"))
    bob = await lab.open("bob")
    carol = await lab.open("carol", sip_listen=_listen("tcp"))
    alice_events = Events(alice)
    uri = alice.plain_uri
    assert uri is not None and uri.startswith("sip:alice@127.0.0.1:")
    # bob has no listening socket: his direct call opens one for itself.
    call = await bob.call(uri)
    assert call.plain
    incoming = await alice.next_incoming_call(WAIT)
    assert incoming.plain and not incoming.verified
    assert incoming.peer == f"sip:bob@{OVERLAY}"  # what bob's From says, and nothing proves it
    await incoming.answer()
    assert await call.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED
    assert not call.verified
    await call.hangup()
    assert await incoming.wait_ended(WAIT) is EndCause.REMOTE_HUNG_UP
    (record,) = await alice.history()
    assert not record.verified and record.outcome == "bob hung up"

    sent = await bob.send_message(uri, "over plain SIP")
    assert sent.state is Delivery.DELIVERED and sent.peer_aor == "sip:alice@127.0.0.1"
    got = await alice_events.wait(MessageReceived)
    assert got.record.text == "over plain SIP" and not got.verified

    # TCP, with the transport parameter in the URI.
    tcp_uri = carol.plain_uri
    assert tcp_uri is not None and tcp_uri.endswith(";transport=tcp")
    call = await alice.call(tcp_uri)
    at_carol = await carol.next_incoming_call(WAIT)
    await at_carol.reject(busy=True)
    assert await call.wait_ended(WAIT) is EndCause.BUSY and call.words == "carol is busy"
    # TLS (sips:), with the profile's key and certificate on both sides.
    dave = await lab.open("dave", sip_listen=_listen("tls"))
    tls_uri = dave.plain_uri
    assert tls_uri is not None and tls_uri.startswith("sips:dave@127.0.0.1:")
    call = await alice.call(tls_uri)
    at_dave = await dave.next_incoming_call(WAIT)
    assert at_dave.plain and not at_dave.verified
    await at_dave.answer()
    assert await call.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED
    await at_dave.hangup()
    assert await call.wait_ended(WAIT) is EndCause.REMOTE_HUNG_UP
    # Nobody listening there: said in words, not a traceback.
    call = await alice.call("sip:nobody@127.0.0.1:9;transport=tcp")
    assert await call.wait_ended(WAIT) is EndCause.CONNECTION_LOST
    assert call.words == "nobody's phone could not be reached"


def _listen(kind: str) -> str:
    return f"{kind}:127.0.0.1:0"


async def test_a_local_profile_runs_the_local_overlay_with_keys_pinned(tmp_path: Path) -> None:
    """A profile of ``p2psip init`` gets the local overlay's runner (DNS-SD, first come
    first served; its own tests run it in a network namespace) and key pinning."""
    init_profile("dora", tmp_path / "dora")
    phone = await Phone.open(tmp_path / "dora")
    try:
        assert isinstance(phone.keeper.joiner, LocalJoiner)
        assert phone.pins is not None
        assert phone.aor == "sip:dora@local.p2psip.invalid" and phone.domain == "local.p2psip.invalid"
        assert phone.state is PhoneState.STOPPED
        with pytest.raises(PhoneError, match="not an AoR"):
            await phone.add_buddy("sip:erin@192.0.2.1:5060")
        buddy = await phone.add_buddy("erin", "Erin")
        assert buddy.aor == "sip:erin@local.p2psip.invalid"
    finally:
        await phone.close()
    assert phone.state is PhoneState.CLOSED
    with pytest.raises(PhoneError, match="no profile"):
        await Phone.open(tmp_path / "nobody")

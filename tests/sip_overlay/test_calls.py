"""SIP calls through a RELOAD overlay (RFC 7904 with RFC 3261): phones on peers of a ring
over real TLS links, AoRs registered in the overlay, resolved by Fetch, reached by
AppAttach (ICE + DTLS on this machine's interface address), and the SIP dialogue over
that connection: INVITE/180/200/ACK, MESSAGE, INFO, BYE, CANCEL, 486, forwarding, GRUUs,
forking to two devices, the certificate identity check, and REFER."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.sip.aio import CallError, CallState
from app.sip.checks import CERTIFICATE_MISMATCH
from app.sip.events import (
    CallRinging,
    EndReason,
    InfoReceived,
    MessageReceived,
    RemoteIdentity,
)
from app.sip.headers import Headers
from app.sip.message import (
    MTU_LIMIT,
    SipRequest,
    SipResponse,
    build_response,
    new_branch,
    new_tag,
    parse_message,
)
from app.sip.overlay import NotReachable
from app.sip.uri import SipUri
from reload_core.config.document import DomainRestriction
from reload_core.usages.sip import Outcome, SipConnection, SipScheme, SipUsage
from tests.usages.sip_ring import DOMAIN, EcdsaCA, aor, configuration

from .phones import WAIT, EventLog, Phones, answered_call, ended


def sip(name: str) -> str:
    return f"sip:{aor(name)}"


class Accepted:
    """Connections a bare SIP Usage (no phone on it) accepted."""

    def __init__(self, usage: SipUsage) -> None:
        self.queue: asyncio.Queue[SipConnection] = asyncio.Queue()
        usage.listen(self.queue.put_nowait)

    async def next(self) -> SipConnection:
        return await asyncio.wait_for(self.queue.get(), WAIT)


async def receive(conn: SipConnection) -> SipRequest | SipResponse:
    return parse_message(await asyncio.wait_for(conn.recv(), WAIT))


async def final_response(conn: SipConnection) -> SipResponse:
    """The first final response on ``conn`` (a 100 Trying may come first)."""
    while True:
        message = await receive(conn)
        if isinstance(message, SipResponse) and message.status >= 200:
            return message


def crafted_request(method: str, uri: str, from_aor: str, to_aor: str, body: bytes = b"") -> SipRequest:
    h = Headers()
    h.add("Via", f"SIP/2.0/DTLS {DOMAIN}:5060;branch={new_branch()};rport")
    h.add("Max-Forwards", "70")
    h.add("From", f"<sip:{from_aor}>;tag={new_tag()}")
    h.add("To", f"<sip:{to_aor}>")
    h.add("Call-ID", f"{new_tag()}@{DOMAIN}")
    h.add("CSeq", f"1 {method}")
    h.add("Contact", f"<sip:{from_aor}>")
    if body:
        h.add("Content-Type", "application/sdp" if method == "INVITE" else "text/plain")
    return SipRequest(method, SipUri.parse(uri), h, body)


OFFER = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"


async def test_call_message_info_and_bye(phones: Phones) -> None:
    alice, bob = await phones.phones("relay", "alice", "bob")
    alice_log, bob_log = EventLog(alice), EventLog(bob)
    call = await alice.call(sip("bob"))

    reach = alice.reach_of(call)
    assert reach is not None and reach.resolution.outcome is Outcome.REGISTERED
    assert reach.resolution.fetches == 1 and not reach.failures and reach.own_devices == 0
    (branch,) = reach.branches
    assert branch.node_id == bob.node_id and not branch.reused
    assert str(branch.request_uri) == bob.gruu  # the device's GRUU (RFC 7904 §6)

    incoming = await bob.next_incoming_call(WAIT)
    assert incoming.incoming is not None
    # Who calls is the certificate's user and Node-ID (RFC 7904 §8.2.3), not a header.
    assert incoming.incoming.identity == RemoteIdentity(aor("alice"), alice.node_id, True)
    assert (incoming.incoming.to, incoming.incoming.request_uri) == (sip("bob"), bob.gruu)
    ringing = await call.wait_event(CallRinging, WAIT)
    assert isinstance(ringing, CallRinging) and ringing.status == 180
    assert ringing.identity == RemoteIdentity(aor("bob"), bob.node_id, True)
    assert call.state is CallState.RINGING

    await incoming.answer()
    answered = await call.wait_answered(WAIT)
    assert not answered.early and answered.sdp is not None and b"m=audio" in answered.sdp
    await incoming.wait_answered(WAIT)  # bob got the ACK
    assert call.state is incoming.state is CallState.ESTABLISHED
    dialog = bob.ua.core.call_dialog(incoming.ref)
    assert dialog is not None and str(dialog.remote_target) == alice.gruu  # alice's Contact

    # MESSAGE and INFO inside the dialog, both ways.
    response = await call.send_message("hello bob", timeout=WAIT)
    assert response.status == 200
    (message,) = await bob_log.wait(MessageReceived)
    assert (message.text, message.call) == ("hello bob", incoming.ref)
    assert message.identity == RemoteIdentity(aor("alice"), alice.node_id, True)
    response = await incoming.send_info(
        b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay", timeout=WAIT
    )
    assert response.status == 200
    (info,) = await alice_log.wait(InfoReceived)
    assert (info.call, info.content_type, info.body) == (
        call.ref,
        "application/dtmf-relay",
        b"Signal=5\r\nDuration=160\r\n",
    )
    # A MESSAGE outside the call, bob to alice: the connection alice made is reused.
    response = await bob.send_message(sip("alice"), "see you", timeout=WAIT)
    assert response.status == 200
    (pager,) = await alice_log.wait(MessageReceived, lambda m: m.call is None)
    assert pager.text == "see you" and pager.identity == RemoteIdentity(aor("bob"), bob.node_id, True)

    call.hangup()
    assert (await ended(incoming)).reason is EndReason.REMOTE_HANGUP
    assert (await ended(call)).reason is EndReason.LOCAL_HANGUP
    # One connection carried it all, one reader on each side.
    assert [f.peer.verified_node_id for f in alice.connections] == [bob.node_id]
    assert [f.peer.verified_user for f in bob.connections] == [aor("alice")]

    # The next call goes over the same connection: no AppAttach.
    again = await alice.call(sip("bob"))
    reach = alice.reach_of(again)
    assert reach is not None and reach.reused and reach.branches[0].flow is alice.connections[0]
    second = await bob.next_incoming_call(WAIT)
    await second.answer()
    await again.wait_answered(WAIT)
    second.hangup()  # the callee hangs up this time
    assert (await ended(again)).reason is EndReason.REMOTE_HANGUP
    assert len(alice.connections) == len(bob.connections) == 1


async def test_the_invite_on_the_wire(phones: Phones) -> None:
    """What a real INVITE over the AppAttach connection looks like: Via DTLS with the
    AoR's domain (RFC 7904 §5.1), our GRUU as Contact (§6), the callee's GRUU as
    Request-URI, compact headers and the static SDP offer, under 1300 bytes (RFC 3261
    §18.1.1); a 486 from the far end ends the call, and the ACK comes back on the
    connection."""
    alice_usage, eve = await phones.peers("alice", "eve")
    alice = await phones.phone(alice_usage)
    accepted = Accepted(eve)
    await eve.register()
    call = await alice.call(sip("eve"))
    conn = await accepted.next()
    assert (conn.verified_user, conn.verified_node_id) == (aor("alice"), alice.node_id)
    data = await asyncio.wait_for(conn.recv(), WAIT)
    invite = parse_message(data)
    assert isinstance(invite, SipRequest) and invite.method == "INVITE"
    print(f"\nINVITE over the overlay: {len(data)} bytes (one datagram holds {conn.max_datagram})")
    print(data.decode())
    assert len(data) == alice.flows.last_size["INVITE"] <= MTU_LIMIT
    assert len(data) <= conn.max_datagram  # one DTLS record in one UDP datagram, no IP fragments
    via = invite.top_via
    assert (via.transport, via.host, via.port) == ("DTLS", DOMAIN, 5060)
    assert [str(c.uri) for c in invite.contacts] == [alice.gruu]
    assert str(invite.uri) == eve.gruu()
    assert (str(invite.from_.uri), str(invite.to.uri)) == (sip("alice"), sip("eve"))
    assert invite.content_type == "application/sdp" and invite.body.startswith(b"v=0\r\n")
    assert b"\r\nv: SIP/2.0/DTLS " in data and b"\r\nm: <sip:" in data  # compact forms

    conn.send(build_response(invite, 486, to_tag=new_tag()).encode())
    end = await ended(call)
    assert (end.reason, end.status, end.phrase) == (EndReason.REJECTED, 486, "Busy Here")
    while (message := await receive(conn)) is not None:
        if isinstance(message, SipRequest) and message.method == "ACK":
            break
    assert message.cseq.seq == invite.cseq.seq and message.branch == invite.branch  # §17.1.1.3


async def test_cancel_before_the_answer(phones: Phones) -> None:
    alice, bob = await phones.phones("relay", "alice", "bob")
    call = await alice.call(sip("bob"))
    incoming = await bob.next_incoming_call(WAIT)
    await call.wait_event(CallRinging, WAIT)  # a CANCEL waits for a provisional (§9.1)
    call.hangup()
    assert (await ended(incoming)).reason is EndReason.REMOTE_CANCEL
    end = await ended(call)
    assert (end.reason, end.status) == (EndReason.LOCAL_CANCEL, 487)
    assert incoming.state is CallState.ENDED


async def test_busy_here(phones: Phones) -> None:
    alice, bob = await phones.phones("relay", "alice", "bob")
    call = await alice.call(sip("bob"))
    incoming = await bob.next_incoming_call(WAIT)
    incoming.reject(486)
    end = await ended(call)
    assert (end.reason, end.status, end.phrase) == (EndReason.REJECTED, 486, "Busy Here")
    assert (await ended(incoming)).reason is EndReason.REJECTED


async def test_a_callee_who_is_not_registered_is_told_at_once(phones: Phones) -> None:
    alice, bob = await phones.phones("relay", "alice", "bob")
    started = time.monotonic()
    with pytest.raises(NotReachable) as nobody:
        await alice.call(sip("carol"))
    assert str(nobody.value) == f"{aor('carol')} is not registered (not online)"
    assert nobody.value.outcome is Outcome.NOT_REGISTERED
    assert time.monotonic() - started < 2.0  # one Fetch, no timeout
    assert not alice.ua.calls and not alice.connections

    # Signed out: the registration is removed from the overlay (RFC 6940 §7.4.1.3).
    await bob.close()
    with pytest.raises(NotReachable, match=rf"^{aor('bob')} is not registered \(not online\)$"):
        await alice.call(sip("bob"))
    with pytest.raises(NotReachable, match="is not registered"):
        await alice.send_message(sip("bob"), "are you there?")
    # The UA's own dials (a transfer target) go the same way.
    with pytest.raises(CallError, match="is not registered"):
        await alice.ua.call(sip("carol"))
    with pytest.raises(NotReachable, match="is not a SIP AoR"):
        await alice.call("sip:example.org")
    # Calling oneself with no other device.
    with pytest.raises(NotReachable, match=f"^{aor('alice')} is registered only at this device$"):
        await alice.call(sip("alice"))


async def test_a_domain_the_overlay_does_not_serve(ecdsa_ca: EcdsaCA, interface_address: str) -> None:
    restricted = configuration(DomainRestriction(True, (r"storage\.test\.example",)))
    phones = Phones(ecdsa_ca, restricted)
    try:
        (alice,) = await phones.phones("relay", "alice")
        before = phones.fetches_of("zed@elsewhere.example")
        with pytest.raises(NotReachable) as outside:
            await alice.call("sip:zed@elsewhere.example")
        assert outside.value.outcome is Outcome.DOMAIN_NOT_SERVED
        assert "domain 'elsewhere.example' is not served by this overlay" in str(outside.value)
        assert phones.fetches_of("zed@elsewhere.example") == before
    finally:
        await phones.close()


async def test_a_forwarded_aor_reaches_its_target(phones: Phones) -> None:
    alice, bob, carol = await phones.phones("relay", "alice", "bob", "carol")
    await carol.usage.forward(None, aor("bob"))  # "in order to contact me, dereference this AOR"
    call = await alice.call(sip("carol"))
    reach = alice.reach_of(call)
    assert reach is not None and reach.resolution.forwarded_to == (aor("bob"),)
    assert [b.node_id for b in reach.branches] == [bob.node_id]
    incoming = await bob.next_incoming_call(WAIT)
    assert incoming.incoming is not None
    assert (incoming.incoming.to, incoming.incoming.request_uri) == (sip("carol"), bob.gruu)
    await incoming.answer()
    answered = await call.wait_answered(WAIT)
    assert answered.identity == RemoteIdentity(aor("bob"), bob.node_id, True)
    incoming.hangup()  # the callee, reached through carol's AoR, may hang up
    assert (await ended(call)).reason is EndReason.REMOTE_HANGUP
    assert not carol.ua.calls and not carol.connections


async def test_a_forwarding_loop_is_a_clear_error(phones: Phones) -> None:
    alice, carol, dave = await phones.phones("relay", "alice", "carol", "dave")
    await carol.usage.forward(None, aor("dave"))
    await dave.usage.forward(None, aor("carol"))
    started = time.monotonic()
    with pytest.raises(NotReachable) as loop:
        await alice.call(sip("carol"))
    assert loop.value.outcome is Outcome.LOOP
    assert (
        str(loop.value) == f"{aor('carol')}: forwarding loop {aor('carol')} → {aor('dave')} → {aor('carol')}"
    )
    assert time.monotonic() - started < 2.0
    assert not alice.connections


async def test_a_gruu_call_needs_no_fetch(phones: Phones) -> None:
    alice, bob = await phones.phones("relay", "alice", "bob")
    before = phones.fetches_of("bob", by=alice.node_id)
    call = await alice.call(bob.gruu)
    reach = alice.reach_of(call)
    assert reach is not None and reach.resolution.outcome is Outcome.GRUU and reach.resolution.fetches == 0
    incoming = await bob.next_incoming_call(WAIT)
    assert incoming.incoming is not None and incoming.incoming.request_uri == bob.gruu
    await incoming.answer()
    await call.wait_answered(WAIT)
    assert phones.fetches_of("bob", by=alice.node_id) == before
    call.hangup()
    assert (await ended(incoming)).reason is EndReason.REMOTE_HANGUP


async def test_two_devices_ring_and_the_first_answer_wins(phones: Phones) -> None:
    usages = await phones.peers("relay", "alice", "bob", "bob")
    alice = await phones.phone(usages[1])
    home, office = await phones.phone(usages[2]), await phones.phone(usages[3])
    alice_log = EventLog(alice)
    call = await alice.call(sip("bob"))
    reach = alice.reach_of(call)
    assert reach is not None and {b.node_id for b in reach.branches} == {home.node_id, office.node_id}
    at_home = await home.next_incoming_call(WAIT)
    at_office = await office.next_incoming_call(WAIT)
    ringing = await alice_log.wait(CallRinging, count=2)
    assert {r.identity.node_id for r in ringing} == {home.node_id, office.node_id}

    await at_office.answer()
    answered = await call.wait_answered(WAIT)
    assert answered.identity == RemoteIdentity(aor("bob"), office.node_id, True)
    # The other device stops ringing: the caller CANCELs it (RFC 3261 §13.2.2.4).
    assert (await ended(at_home)).reason is EndReason.REMOTE_CANCEL
    await at_office.wait_answered(WAIT)
    call.hangup()
    assert (await ended(at_office)).reason is EndReason.REMOTE_HANGUP

    # A user calling their own AoR rings their other device, not this one.
    own = await home.call(sip("bob"))
    own_reach = home.reach_of(own)
    assert own_reach is not None and own_reach.own_devices == 1
    assert [b.node_id for b in own_reach.branches] == [office.node_id]
    from_home = await office.next_incoming_call(WAIT)
    assert from_home.identity == RemoteIdentity(aor("bob"), home.node_id, True)
    from_home.reject(603)
    assert (await ended(own)).status == 603


async def test_an_unreachable_device_is_left_out_then_reported(phones: Phones) -> None:
    usages = await phones.peers("relay", "alice", "bob", "bob")
    alice = await phones.phone(usages[1])
    home, office = await phones.phone(usages[2]), await phones.phone(usages[3])
    # The office phone quits without signing out: its registration stays, its node no
    # longer takes SIP AppAttaches (Error_Not_Found, RFC 6940 §6.5.2.2).
    await office.close(unregister=False)
    call = await alice.call(sip("bob"))
    reach = alice.reach_of(call)
    assert reach is not None and [b.node_id for b in reach.branches] == [home.node_id]
    (failure,) = reach.failures
    assert failure.startswith(f"device {office.node_id.hex()[:8]}: ") and "not supported" in failure
    incoming = await home.next_incoming_call(WAIT)
    incoming.reject(480)
    assert (await ended(call)).status == 480

    await home.close(unregister=False)
    with pytest.raises(NotReachable) as nobody:
        await alice.call(sip("bob"))
    assert str(nobody.value).startswith(
        f"{aor('bob')} is registered at 2 devices but none could be reached: "
    )
    assert len(nobody.value.failures) == 2 and nobody.value.outcome is Outcome.REGISTERED


async def test_a_from_that_is_not_the_certificates_user_is_refused(phones: Phones) -> None:
    """RFC 7904 §8.2.3: eve's node AppAttaches to bob for real and sends requests whose
    From says alice; bob answers 403 and no call rings."""
    bob_usage, _, eve = await phones.peers("bob", "alice", "eve")
    bob = await phones.phone(bob_usage)
    conn = await eve.connect((await eve.resolve(aor("bob"))).contacts[0])
    forged = crafted_request("INVITE", bob.gruu, aor("alice"), aor("bob"), OFFER)
    conn.send(forged.encode())
    refused = await final_response(conn)
    assert (refused.status, refused.reason, refused.call_id) == (403, CERTIFICATE_MISMATCH, forged.call_id)
    forged_message = crafted_request("MESSAGE", bob.gruu, aor("alice"), aor("bob"), b"it's me, alice")
    conn.send(forged_message.encode())
    assert (await final_response(conn)).status == 403
    assert not bob.ua.calls

    # The same connection with eve's own AoR in From is fine, and bob knows it is eve.
    bob_log = EventLog(bob)
    honest = crafted_request("MESSAGE", bob.gruu, aor("eve"), aor("bob"), b"it's me, eve")
    conn.send(honest.encode())
    assert (await final_response(conn)).status == 200
    (message,) = await bob_log.wait(MessageReceived)
    assert message.identity == RemoteIdentity(aor("eve"), eve.node_id, True)
    assert message.text == "it's me, eve"


async def test_refer_transfers_the_call_to_a_third_phone(phones: Phones) -> None:
    usages = await phones.peers("relay", "alice", "bob", "carol")
    alice, bob = await phones.phone(usages[1]), await phones.phone(usages[2])
    carol = await phones.phone(usages[3], auto_answer=True)
    call, incoming = await answered_call(alice, bob, sip("bob"))

    progress = await call.refer(sip("carol"), timeout=WAIT)
    assert progress.final and progress.status == 200  # carol answered bob's new call
    at_carol = await carol.next_incoming_call(WAIT)
    assert at_carol.identity == RemoteIdentity(aor("bob"), bob.node_id, True)
    transferred = incoming.transferred_to
    assert transferred is not None and transferred.state is CallState.ESTABLISHED
    await at_carol.wait_answered(WAIT)
    # Bob reached carol through the overlay on a connection of his own.
    assert {f.peer.verified_user for f in bob.connections} == {aor("alice"), aor("carol")}
    call.hangup()
    transferred.hangup()
    assert (await ended(at_carol)).reason is EndReason.REMOTE_HANGUP
    assert (await ended(incoming)).reason is EndReason.REMOTE_HANGUP


async def test_sips_is_followed_end_to_end(phones: Phones) -> None:
    """A callee taking SIPS only (RFC 7904 §3.2, §5.1): the call goes over 5061, with
    sips: Request-URI and Contact."""
    usages = await phones.peers("relay", "alice", "bob")
    alice = await phones.phone(usages[1])
    bob = await phones.phone(usages[2], schemes=(SipScheme.SIPS,))
    call = await alice.call(sip("bob"))
    reach = alice.reach_of(call)
    assert reach is not None
    (branch,) = reach.branches
    assert branch.flow.scheme is SipScheme.SIPS and branch.request_uri.scheme == "sips"
    incoming = await bob.next_incoming_call(WAIT)
    await incoming.answer()
    await call.wait_answered(WAIT)
    dialog = bob.ua.core.call_dialog(incoming.ref)
    assert dialog is not None and str(dialog.remote_target) == "sips:" + alice.gruu.split(":", 1)[1]
    call.hangup()
    await ended(incoming)

"""The asyncio UserAgent over the in-memory datagram network (tests/sip/memory.py):
calls, MESSAGE and re-INVITE complete over seeded loss, no request reaches a TU twice,
and a verified flow carries the certificate's identity up."""

from __future__ import annotations

import pytest

from app.sip.aio import CallState, UserAgent
from app.sip.events import EndReason
from app.sip.message import SipResponse
from app.sip.sdp import Codec, StaticSdpSession
from app.sip.transaction import TimerConfig
from app.sip.ua import UaConfig
from app.sip.uri import SipUri

from .memory import Identity, MemoryNetwork, drop_every, drop_random

# Short timers keep the lossy runs quick; the RFC's ratios (T2 = 8 T1, 64 T1) are kept.
FAST = TimerConfig(t1=0.02, t2=0.16, t4=0.2, timer_d=1.28)
A = ("10.1.0.1", 5060)
B = ("10.1.0.2", 5060)


def make_ua(net: MemoryNetwork, user: str, address: tuple[str, int], **kw: object) -> UserAgent:
    ua = UserAgent(
        UaConfig(SipUri("sip", user, None, "example.org"), timers=FAST), resolver=net.resolver(address), **kw
    )  # type: ignore[arg-type]
    net.attach(ua, address)
    return ua


async def test_call_over_memory() -> None:
    net = MemoryNetwork()
    alice, bob = make_ua(net, "alice", A), make_ua(net, "bob", B, auto_answer=True)
    call = await alice.call("sip:bob@10.1.0.2:5060")
    answered = await call.wait_answered(timeout=5)
    assert answered.sdp is not None and call.state is CallState.ESTABLISHED
    incoming = await bob.next_incoming_call(timeout=5)
    await incoming.wait_answered(timeout=5)
    assert incoming.identity is not None and incoming.identity.user == "alice@example.org"
    call.hangup()
    ended = await incoming.wait_ended(timeout=5)
    assert ended.reason is EndReason.REMOTE_HANGUP
    assert call.session.closed and incoming.session.closed  # type: ignore[attr-defined]
    await alice.close()
    await bob.close()


@pytest.mark.parametrize("loss", ["random25", "every4"])
async def test_lossy_calls_messages_and_reinvites_complete(loss: str) -> None:
    net = MemoryNetwork(loss=drop_random(0.25, 11) if loss == "random25" else drop_every(4))
    alice, bob = make_ua(net, "alice", A), make_ua(net, "bob", B, auto_answer=True)
    for _ in range(4):
        call = await alice.call("sip:bob@10.1.0.2:5060")
        await call.wait_answered(timeout=20)
        response = await alice.send_message("sip:bob@10.1.0.2:5060", "out of dialog", timeout=20)
        assert response.status == 200
        response = await call.send_message("in dialog", timeout=20)
        assert response.status == 200
        done = await call.reinvite(timeout=20)
        assert done.status == 200
        call.hangup()
        incoming = bob.calls[max(bob.calls)]
        assert (await incoming.wait_ended(timeout=20)).reason is EndReason.REMOTE_HANGUP
    assert net.dropped >= 10
    counts = bob.core.tu_requests
    assert max(counts.values()) == 1, counts
    assert sum(1 for k in counts if k[0] == "MESSAGE") == 8
    assert sum(1 for k in counts if k[0] == "INVITE") == 8
    assert sum(1 for k in counts if k[0] == "BYE") == 4
    await alice.close()
    await bob.close()


async def test_verified_flow_identity_and_403_on_mismatch() -> None:
    net = MemoryNetwork()
    alice, bob = make_ua(net, "alice", A), make_ua(net, "bob", B, auto_answer=True)
    net.identities[A] = Identity("alice@example.org", b"\xaa" * 16)
    call = await alice.call("sip:bob@10.1.0.2:5060")
    await call.wait_answered(timeout=5)
    incoming = await bob.next_incoming_call(timeout=5)
    assert incoming.identity is not None
    assert (incoming.identity.user, incoming.identity.node_id, incoming.identity.verified) == (
        "alice@example.org",
        b"\xaa" * 16,
        True,
    )
    call.hangup()
    await incoming.wait_ended(timeout=5)
    net.identities[A] = Identity("mallory@example.org", b"\xbb" * 16)
    refused = await alice.call("sip:bob@10.1.0.2:5060")
    ended = await refused.wait_ended(timeout=5)
    assert (ended.reason, ended.status, ended.phrase) == (
        EndReason.REJECTED,
        403,
        "From does not match the certificate's user",
    )
    assert len(bob.calls) == 1
    await alice.close()
    await bob.close()


async def test_offer_without_common_codec_is_refused_488_with_warning() -> None:
    net = MemoryNetwork()
    g729 = Codec(18, "G729", 8000)
    alice = make_ua(net, "alice", A)
    bob = make_ua(net, "bob", B, auto_answer=True, session_factory=lambda: StaticSdpSession(codecs=[g729]))
    call = await alice.call("sip:bob@10.1.0.2:5060")
    ended = await call.wait_ended(timeout=5)
    assert (ended.reason, ended.status, ended.phrase) == (EndReason.REJECTED, 488, "Not Acceptable Here")
    (refusal,) = [m for src, m in net.sent if src == B and isinstance(m, SipResponse) and m.status == 488]
    assert (
        refusal.headers.get("Warning") == '305 example.org "Incompatible media format: no common audio codec"'
    )
    await alice.close()
    await bob.close()

"""The sans-I/O UA core between virtual nodes (tests/sip/virtual_net.py): calls, CANCEL,
rejections, MESSAGE, INFO, re-INVITE and glare, REFER, forking, caller identity, the
UAS checks of §8.2, and loss. Time is virtual: the RFC timers run at their real values."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from app.sip.events import (
    CallAnswered,
    CallEnded,
    CallRinging,
    EndReason,
    IncomingCall,
    InfoReceived,
    MessageReceived,
    ReInviteCompleted,
    ReInviteReceived,
    RemoteIdentity,
    RequestDone,
    TransferProgress,
    TransferRequested,
    UaEvent,
)
from app.sip.message import SipRequest, SipResponse
from app.sip.sdp import StaticSdpSession
from app.sip.transport import Peer as TransportPeer
from app.sip.ua import Target, Transmit
from app.sip.uri import SipUri

from .virtual_net import MemPeer, Node, VirtualNet, drop_first, drop_random

E = TypeVar("E", bound=UaEvent)


def one(node: Node, kind: type[E]) -> E:
    found = [e for e in node.events if isinstance(e, kind)]
    assert len(found) == 1, (kind.__name__, node.events)
    return found[0]


def has(node: Node, kind: type) -> Callable[[], bool]:
    return lambda: any(isinstance(e, kind) for e in node.events)


def methods(net: VirtualNet, sender: str) -> list[str]:
    return [m.method for who, m in net.sent if who == sender and isinstance(m, SipRequest)]


def statuses(net: VirtualNet, sender: str, method: str | None = None) -> list[int]:
    return [
        m.status
        for who, m in net.sent
        if who == sender and isinstance(m, SipResponse) and (method is None or m.cseq.method == method)
    ]


def call(net: VirtualNet, a: Node, *targets: Node) -> int:
    return a.core.invite(
        [net.target(a, t) for t in targets], a.session.offer_sync(), net.now, to="sip:bob@example.org"
    )


# --- basic calls -------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_call_answer_ack_bye(transport: str) -> None:
    net = VirtualNet(transport=transport)
    a, b = net.add("alice"), net.add("bob", auto_answer=True)
    ref = call(net, a, b)
    net.run_until(lambda: has(a, CallAnswered)() and has(b, CallAnswered)())
    incoming = one(b, IncomingCall)
    assert incoming.identity.user == "alice@example.org" and not incoming.identity.verified
    assert incoming.offer == net.sent[0][1].body
    assert one(a, CallRinging).status == 180
    answered = one(a, CallAnswered)
    assert not answered.early and answered.sdp is not None and b"m=audio 4001 RTP/AVP 0 8 101" in answered.sdp
    assert one(b, CallAnswered).sdp is None  # the INVITE made the offer: the ACK has no body
    a.core.hangup(ref, net.now)
    net.run_until(has(b, CallEnded))
    assert one(a, CallEnded).reason is EndReason.LOCAL_HANGUP
    assert one(b, CallEnded).reason is EndReason.REMOTE_HANGUP
    assert methods(net, "alice") == ["INVITE", "ACK", "BYE"]
    assert statuses(net, "bob") == [100, 180, 200, 200]
    net.run_idle()
    assert len(a.core.transactions) == 0 and len(b.core.transactions) == 0


def test_callee_hangs_up() -> None:
    net = VirtualNet()
    a, b = net.add("alice"), net.add("bob", auto_answer=True)
    call(net, a, b)
    net.run_until(has(b, CallAnswered))
    b.core.hangup(one(b, IncomingCall).call, net.now)
    net.run_until(has(a, CallEnded))
    assert one(a, CallEnded).reason is EndReason.REMOTE_HANGUP
    assert one(b, CallEnded).reason is EndReason.LOCAL_HANGUP
    assert methods(net, "bob") == ["BYE"]


def test_cancel_before_answer_gets_487() -> None:
    net = VirtualNet()
    a, b = net.add("alice"), net.add("bob")
    ref = call(net, a, b)
    net.run_until(has(a, CallRinging))
    a.core.cancel(ref, net.now)
    net.run_until(lambda: has(a, CallEnded)() and has(b, CallEnded)())
    ended = one(a, CallEnded)
    assert (ended.reason, ended.status) == (EndReason.LOCAL_CANCEL, 487)
    assert one(b, CallEnded).reason is EndReason.REMOTE_CANCEL
    assert methods(net, "alice") == ["INVITE", "CANCEL", "ACK"]  # ACK for the 487 (§17.1.1.3)
    assert statuses(net, "bob", "CANCEL") == [200] and statuses(net, "bob", "INVITE") == [100, 180, 487]


def test_cancel_before_any_provisional_waits_for_one() -> None:
    """§9.1: no CANCEL before a provisional response came."""
    net = VirtualNet(loss=drop_first(lambda m: isinstance(m, SipResponse), times=2))  # 100 and 180 lost
    a, b = net.add("alice"), net.add("bob")
    ref = call(net, a, b)
    net.run_for(0.1)
    a.core.cancel(ref, net.now)
    net.pump()
    assert "CANCEL" not in methods(net, "alice")
    net.run_until(has(a, CallEnded))  # the INVITE retransmission draws a 180: then CANCEL
    assert methods(net, "alice") == ["INVITE", "INVITE", "CANCEL", "ACK"]
    assert one(a, CallEnded).status == 487


@pytest.mark.parametrize(
    ("status", "reason"), [(486, EndReason.REJECTED), (603, EndReason.REJECTED), (480, EndReason.REJECTED)]
)
def test_reject(status: int, reason: EndReason) -> None:
    net = VirtualNet()
    a, b = net.add("alice"), net.add("bob")
    call(net, a, b)
    net.run_until(has(b, IncomingCall))
    b.core.reject(one(b, IncomingCall).call, status, net.now)
    net.run_until(has(a, CallEnded))
    ended = one(a, CallEnded)
    assert (ended.reason, ended.status) == (reason, status)
    assert one(b, CallEnded).reason is EndReason.REJECTED
    assert methods(net, "alice") == ["INVITE", "ACK"]


def test_redirect_302_reports_contacts() -> None:
    net = VirtualNet()
    a, b = net.add("alice"), net.add("bob")
    call(net, a, b)
    net.run_until(has(b, IncomingCall))
    b.core.reject(one(b, IncomingCall).call, 302, net.now, headers=[("Contact", "<sip:bob@192.0.2.50:5070>")])
    net.run_until(has(a, CallEnded))
    ended = one(a, CallEnded)
    assert ended.reason is EndReason.REDIRECTED and ended.contacts == ("sip:bob@192.0.2.50:5070",)


def test_unanswered_call_times_out_when_nobody_answers() -> None:
    net = VirtualNet()
    a = net.add("alice")
    ghost = net.add("ghost")
    del net.nodes[ghost.address]  # datagrams to it vanish
    call(net, a, ghost)
    net.run_until(has(a, CallEnded))
    ended = one(a, CallEnded)
    assert (ended.reason, ended.status) == (EndReason.TIMEOUT, 408)
    assert net.now == pytest.approx(32.0)  # Timer B
    assert methods(net, "alice") == ["INVITE"] * 7


def test_invite_expires_gets_487() -> None:
    net = VirtualNet()
    a, b = net.add("alice"), net.add("bob")
    a.core.invite([net.target(a, b)], a.session.offer_sync(), net.now, headers=[("Expires", "3")])
    net.run_until(has(a, CallEnded))
    assert one(a, CallEnded).status == 487
    assert one(b, CallEnded).reason is EndReason.TIMEOUT
    assert net.now == pytest.approx(3.02)


# --- 2xx retransmission and ACK (§13.3.1.4, §13.2.2.4) -------------------------------------


def test_lost_ack_makes_the_2xx_retransmit_and_ack_again() -> None:
    net = VirtualNet(loss=drop_first(lambda m: isinstance(m, SipRequest) and m.method == "ACK"))
    a, b = net.add("alice"), net.add("bob", auto_answer=True)
    call(net, a, b)
    net.run_until(has(b, CallAnswered))
    assert statuses(net, "bob", "INVITE") == [100, 180, 200, 200]
    assert methods(net, "alice") == ["INVITE", "ACK", "ACK"]
    assert len(a.of(CallAnswered)) == 1 and len(b.of(CallAnswered)) == 1


def test_no_ack_at_all_ends_the_call_with_bye_after_64_t1() -> None:
    net = VirtualNet(loss=drop_first(lambda m: isinstance(m, SipRequest) and m.method == "ACK", times=100))
    a, b = net.add("alice"), net.add("bob", auto_answer=True)
    call(net, a, b)
    net.run_until(has(b, CallEnded))
    assert one(b, CallEnded).reason is EndReason.NO_ACK
    assert net.now == pytest.approx(32.01)  # 64*T1 after the 2xx went out at 0.01
    # 2xx at 0, then T1, 2T1, 4T1, then every T2 up to 64*T1.
    assert statuses(net, "bob", "INVITE").count(200) == 11
    assert methods(net, "bob") == ["BYE"]
    net.run_until(has(a, CallEnded))
    assert one(a, CallEnded).reason is EndReason.REMOTE_HANGUP


def test_callee_hangup_before_ack_waits_for_it() -> None:
    net = VirtualNet(loss=drop_first(lambda m: isinstance(m, SipRequest) and m.method == "ACK"))
    a, b = net.add("alice"), net.add("bob")
    call(net, a, b)
    net.run_until(has(b, IncomingCall))
    ref = one(b, IncomingCall).call
    b.core.answer(ref, b.session.answer_sync(one(b, IncomingCall).offer or b""), net.now)  # type: ignore[arg-type]
    b.core.hangup(ref, net.now)
    net.pump()
    assert "BYE" not in methods(net, "bob")  # §15: not before the ACK
    net.run_until(has(a, CallEnded))
    assert methods(net, "bob") == ["BYE"]
    assert one(b, CallEnded).reason is EndReason.LOCAL_HANGUP


# --- MESSAGE, INFO, OPTIONS ------------------------------------------------------------------


def test_message_outside_a_dialog() -> None:
    net = VirtualNet()
    a, b = net.add("alice"), net.add("bob")
    ref = a.core.request(
        "MESSAGE", net.target(a, b), net.now, body="héllo".encode(), content_type="text/plain;charset=utf-8"
    )
    net.run_until(has(a, RequestDone))
    done = one(a, RequestDone)
    assert (done.request, done.status) == (ref, 200)
    msg = one(b, MessageReceived)
    assert msg.text == "héllo" and msg.call is None and msg.content_type == "text/plain"
    assert msg.identity.user == "alice@example.org"


def test_message_with_unsupported_type_gets_415() -> None:
    net = VirtualNet()
    a, b = net.add("alice"), net.add("bob")
    a.core.request(
        "MESSAGE", net.target(a, b), net.now, body=b"\x00", content_type="application/octet-stream"
    )
    net.run_until(has(a, RequestDone))
    done = one(a, RequestDone)
    assert done.status == 415 and done.response.headers.get("Accept") == "text/plain"
    assert b.of(MessageReceived) == []


def test_options_lists_allow() -> None:
    net = VirtualNet()
    a, b = net.add("alice"), net.add("bob")
    a.core.request("OPTIONS", net.target(a, b), net.now)
    net.run_until(has(a, RequestDone))
    allow = one(a, RequestDone).response.headers.get("Allow") or ""
    assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "INFO", "REFER", "NOTIFY"} == {
        m.strip() for m in allow.split(",")
    }


def established(net: VirtualNet) -> tuple[Node, Node, int, int]:
    a, b = net.add("alice"), net.add("bob", auto_answer=True)
    ref = call(net, a, b)
    net.run_until(lambda: has(a, CallAnswered)() and has(b, CallAnswered)())
    return a, b, ref, one(b, IncomingCall).call


def test_info_and_message_in_a_dialog() -> None:
    net = VirtualNet()
    a, b, ref, bref = established(net)
    a.core.send_in_dialog(
        ref, "INFO", net.now, body=b"Signal=5\r\nDuration=160\r\n", content_type="application/dtmf-relay"
    )
    a.core.send_in_dialog(ref, "MESSAGE", net.now, body=b"hi", content_type="text/plain")
    net.run_until(lambda: len(a.of(RequestDone)) == 2)
    assert [e.status for e in a.events if isinstance(e, RequestDone)] == [200, 200]
    info = one(b, InfoReceived)
    assert (info.call, info.content_type, info.info_package) == (bref, "application/dtmf-relay", None)
    assert one(b, MessageReceived).call == bref


def test_info_with_unknown_package_gets_469() -> None:
    net = VirtualNet()
    a, b, ref, _ = established(net)
    a.core.send_in_dialog(
        ref, "INFO", net.now, body=b"x", content_type="text/plain", headers=[("Info-Package", "foo")]
    )
    net.run_until(has(a, RequestDone))
    assert one(a, RequestDone).status == 469
    assert b.of(InfoReceived) == []


# --- re-INVITE and glare (§14) -----------------------------------------------------------


def test_reinvite() -> None:
    net = VirtualNet()
    a, b, ref, _ = established(net)
    offer = a.session.offer_sync()
    a.core.reinvite(ref, offer, net.now)
    net.run_until(has(a, ReInviteCompleted))
    done = one(a, ReInviteCompleted)
    assert done.status == 200 and done.sdp is not None and b"o=- " in done.sdp
    assert one(b, ReInviteReceived).offer == offer
    assert methods(net, "alice") == ["INVITE", "ACK", "INVITE", "ACK"]
    net.run_for(40)
    assert a.of(CallEnded) == [] and b.of(CallEnded) == []  # the re-INVITE's 2xx was ACKed


def test_reinvite_refused_with_488_keeps_the_call() -> None:
    net = VirtualNet()
    a, b, ref, _ = established(net)
    b.auto_reinvite = False
    a.core.reinvite(ref, a.session.offer_sync(), net.now)
    net.run_until(has(b, ReInviteReceived))
    b.core.reject_reinvite(one(b, ReInviteReceived).call, 488, net.now, headers=[("Warning", '305 bob "no"')])
    net.run_until(has(a, ReInviteCompleted))
    assert one(a, ReInviteCompleted).status == 488
    net.run_for(40)
    assert a.of(CallEnded) == []


def test_glare_491_then_retry_after_backoff() -> None:
    net = VirtualNet()
    # §14.1: the Call-ID's owner (the caller) waits 2.1-4 s, the other 0-2 s.
    a = net.add("alice", glare_backoff=lambda owner: 3.0 if owner else 1.0)
    b = net.add("bob", auto_answer=True, glare_backoff=lambda owner: 3.0 if owner else 1.0)
    ref = call(net, a, b)
    net.run_until(has(b, CallAnswered))
    bref = one(b, IncomingCall).call
    start = net.now
    a.core.reinvite(ref, a.session.offer_sync(), net.now)
    b.core.reinvite(bref, b.session.offer_sync(), net.now)
    net.run_until(lambda: has(a, ReInviteCompleted)() and has(b, ReInviteCompleted)())
    assert statuses(net, "alice", "INVITE").count(491) == 1 and statuses(net, "bob", "INVITE").count(491) == 1
    assert one(a, ReInviteCompleted).status == 200 and one(b, ReInviteCompleted).status == 200
    # bob (not the owner) retried after 1 s and went through; alice after 3 s.
    assert net.now - start == pytest.approx(3.04, abs=0.05)
    assert len(a.of(ReInviteReceived)) == 1 and len(b.of(ReInviteReceived)) == 1


# --- REFER (RFC 3515) ---------------------------------------------------------------------


def test_blind_transfer_with_notify_sipfrag() -> None:
    net = VirtualNet()
    a, b, ref, bref = established(net)
    c = net.add("carol", auto_answer=True)
    transfer = a.core.refer(ref, "sip:carol@example.org", net.now)
    net.run_until(has(b, TransferRequested))
    req = one(b, TransferRequested)
    assert req.call == bref and req.refer_to == "sip:carol@example.org"
    assert req.referred_by == "<sip:alice@example.org>"
    new = b.core.invite(
        [net.target(b, c)], b.session.offer_sync(), net.now, to=req.refer_to, transfer=(bref, req.transfer)
    )
    net.run_until(lambda: any(isinstance(e, TransferProgress) and e.final for e in a.events))
    progress = [(e.status, e.final) for e in a.events if isinstance(e, TransferProgress)]
    assert progress == [(202, False), (100, False), (200, True)]
    assert all(e.transfer == transfer for e in a.events if isinstance(e, TransferProgress))
    notifies = [
        m for who, m in net.sent if who == "bob" and isinstance(m, SipRequest) and m.method == "NOTIFY"
    ]
    assert [n.body for n in notifies] == [b"SIP/2.0 100 Trying\r\n", b"SIP/2.0 200 OK\r\n"]
    assert notifies[0].headers.get("Event") == notifies[1].headers.get("Event")
    assert notifies[1].headers.get("Subscription-State") == "terminated;reason=noresource"
    assert notifies[0].content_type == "message/sipfrag"
    assert b.core.call_state(new)[1] and has(c, CallAnswered)()


def test_transfer_target_busy_notifies_486() -> None:
    net = VirtualNet()
    a, b, ref, bref = established(net)
    c = net.add("carol")
    a.core.refer(ref, "sip:carol@example.org", net.now)
    net.run_until(has(b, TransferRequested))
    b.core.invite(
        [net.target(b, c)],
        b.session.offer_sync(),
        net.now,
        transfer=(bref, one(b, TransferRequested).transfer),
    )
    net.run_until(has(c, IncomingCall))
    c.core.reject(one(c, IncomingCall).call, 486, net.now)
    net.run_until(lambda: any(isinstance(e, TransferProgress) and e.final for e in a.events))
    last = a.events[-1]
    assert isinstance(last, TransferProgress) and (last.status, last.reason) == (486, "Busy Here")


# --- forking (§13.2.2.4, RFC 7904 §8.2.1) -------------------------------------------------


def test_fork_first_answer_wins_other_is_cancelled() -> None:
    net = VirtualNet()
    a, b, c = net.add("alice"), net.add("bob"), net.add("bob2", user="bob")
    ref = call(net, a, b, c)
    net.run_until(lambda: has(b, IncomingCall)() and has(c, IncomingCall)() and len(a.of(CallRinging)) == 2)
    bref = one(b, IncomingCall).call
    b.core.answer(bref, b.session.answer_sync(one(b, IncomingCall).offer or b""), net.now)  # type: ignore[arg-type]
    net.run_until(lambda: has(c, CallEnded)() and has(b, CallAnswered)())
    assert one(c, CallEnded).reason is EndReason.REMOTE_CANCEL
    answered = one(a, CallAnswered)
    assert answered.call == ref and answered.identity.user == "bob@example.org"
    assert a.core.call_state(ref)[1]
    assert statuses(net, "bob2", "INVITE")[-1] == 487
    net.run_for(40)
    assert a.of(CallEnded) == []


def test_fork_late_2xx_is_acked_then_byed() -> None:
    net = VirtualNet()
    a, b, c = (
        net.add("alice"),
        net.add("bob", auto_answer=True),
        net.add("bob2", user="bob", auto_answer=True),
    )
    ref = call(net, a, b, c)
    net.run_until(lambda: has(b, CallEnded)() or has(c, CallEnded)())
    winner, loser = (b, c) if has(c, CallEnded)() else (c, b)
    assert has(winner, CallAnswered)() and not has(winner, CallEnded)()
    # The loser answered too: its 200 was ACKed, then BYEd (§13.2.2.4).
    assert one(loser, CallAnswered).call == one(loser, IncomingCall).call
    assert one(loser, CallEnded).reason is EndReason.REMOTE_HANGUP
    to_loser = [
        m.method
        for who, m in net.sent
        if who == "alice" and isinstance(m, SipRequest) and m.uri.host == loser.address[0]
    ]  # type: ignore[union-attr]
    assert to_loser[:1] == ["INVITE"] and to_loser[-2:] == ["ACK", "BYE"]
    assert len(a.of(CallAnswered)) == 1 and a.of(CallEnded) == [] and a.core.call_state(ref)[1]


def test_fork_all_reject_gives_best_status() -> None:
    net = VirtualNet()
    a, b, c = net.add("alice"), net.add("bob"), net.add("bob2", user="bob")
    call(net, a, b, c)
    net.run_until(lambda: has(b, IncomingCall)() and has(c, IncomingCall)())
    b.core.reject(one(b, IncomingCall).call, 486, net.now)
    net.run_for(0.5)
    assert a.of(CallEnded) == []
    c.core.reject(one(c, IncomingCall).call, 503, net.now)
    net.run_until(has(a, CallEnded))
    assert one(a, CallEnded).status == 486  # 4xx before 5xx (§16.7)


def test_fork_6xx_cancels_the_others() -> None:
    net = VirtualNet()
    a, b, c = net.add("alice"), net.add("bob"), net.add("bob2", user="bob")
    call(net, a, b, c)
    net.run_until(lambda: has(b, IncomingCall)() and has(c, IncomingCall)() and len(a.of(CallRinging)) == 2)
    b.core.reject(one(b, IncomingCall).call, 603, net.now)
    net.run_until(lambda: has(a, CallEnded)() and has(c, CallEnded)())
    assert one(a, CallEnded).status == 603
    assert one(c, CallEnded).reason is EndReason.REMOTE_CANCEL


# --- caller identity (RFC 7904 §8.2.3) -----------------------------------------------------


def test_verified_identity_is_the_certificates() -> None:
    net = VirtualNet(verified=True)
    a, b, _, _ = established(net)
    incoming = one(b, IncomingCall)
    assert incoming.identity.verified and incoming.identity.user == "alice@example.org"
    assert incoming.identity.node_id == a.node_id
    assert one(a, CallAnswered).identity.node_id == b.node_id


def test_from_not_matching_certificate_is_refused_403(caplog: pytest.LogCaptureFixture) -> None:
    net = VirtualNet(verified=True)
    a = net.add("alice", cert_user="mallory@example.org")
    b = net.add("bob", auto_answer=True)
    call(net, a, b)
    a.core.request("MESSAGE", net.target(a, b), net.now, body=b"hi")
    net.run_until(lambda: has(a, CallEnded)() and has(a, RequestDone)())
    ended = one(a, CallEnded)
    assert (ended.status, ended.phrase) == (403, "From does not match the certificate's user")
    assert one(a, RequestDone).status == 403
    assert b.events == []
    refusals = [r for r in caplog.records if "mallory@example.org" in r.getMessage()]
    assert len(refusals) == 1  # logged once for that certificate and From


def test_host_compares_case_insensitively() -> None:
    net = VirtualNet(verified=True)
    a = net.add("alice", cert_user="alice@EXAMPLE.org")
    b = net.add("bob", auto_answer=True)
    call(net, a, b)
    net.run_until(has(b, IncomingCall))
    assert one(b, IncomingCall).identity.user == "alice@EXAMPLE.org"


# --- UAS checks (§8.2) with raw requests -------------------------------------------------------


def raw(
    method: str,
    *,
    uri: str = "sip:bob@10.0.0.2",
    to_tag: str = "",
    extra: str = "",
    branch: str = "z9hG4bKraw1",
    body: bytes = b"",
    cseq: int = 1,
) -> bytes:
    to = "<sip:bob@example.org>" + (f";tag={to_tag}" if to_tag else "")
    head = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.9:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {to}\r\n"
        "From: <sip:zed@example.org>;tag=z1\r\n"
        "Call-ID: raw-1@10.0.0.9\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:zed@10.0.0.9>\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def answer_to(node: Node, data: bytes) -> list[SipResponse]:
    peer = MemPeer("UDP", False, node.address, ("10.0.0.9", 5060))
    node.core.receive(data, peer, 0.0)
    return [
        o.message
        for o in node.core.take_outputs()
        if isinstance(o, Transmit) and isinstance(o.message, SipResponse)
    ]


@pytest.mark.parametrize(
    ("data", "status", "header"),
    [
        (raw("FOO"), 501, ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, REFER, NOTIFY")),
        (raw("SUBSCRIBE"), 405, ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, REFER, NOTIFY")),
        (raw("OPTIONS", extra="Require: 100rel, foo\r\n"), 420, ("Unsupported", "100rel, foo")),
        (
            raw("INVITE", body=b"<x/>", extra="Content-Type: application/xml\r\n"),
            415,
            ("Accept", "application/sdp"),
        ),
        (
            raw("MESSAGE", body=b"x", extra="Content-Type: text/plain\r\nContent-Encoding: gzip\r\n"),
            415,
            ("Accept-Encoding", "identity"),
        ),
        (raw("BYE"), 481, None),
        (raw("INFO"), 481, None),
        (raw("NOTIFY", extra="Event: refer\r\n"), 481, None),
        (raw("BYE", to_tag="nope"), 481, None),
        (raw("OPTIONS", uri="sip:someone-else@10.0.0.2"), 404, None),
        (raw("OPTIONS", uri="tel:+15551234"), 416, None),
    ],
)
def test_uas_checks(data: bytes, status: int, header: tuple[str, str] | None) -> None:
    net = VirtualNet()
    b = net.add("bob")
    response = answer_to(b, data)[-1]  # an INVITE draws a 100 first
    assert response.status == status
    assert response.to.tag is not None
    if header is not None:
        assert response.headers.get(header[0]) == header[1]
    assert b.core.take_outputs() == []


def test_merged_request_gets_482() -> None:
    net = VirtualNet()
    b = net.add("bob")
    first = answer_to(b, raw("MESSAGE", body=b"hi", extra="Content-Type: text/plain\r\n"))
    assert [r.status for r in first] == [200]
    b.core.take_outputs()
    second = answer_to(
        b, raw("MESSAGE", body=b"hi", branch="z9hG4bKotherpath", extra="Content-Type: text/plain\r\n")
    )
    assert [r.status for r in second] == [482]
    again = answer_to(b, raw("MESSAGE", body=b"hi", extra="Content-Type: text/plain\r\n"))
    assert [r.status for r in again] == [200]  # the retransmission is answered by its transaction
    assert b.core.tu_requests[("MESSAGE", "raw-1@10.0.0.9", 1)] == 2  # the first and the merged one


def test_cancel_without_invite_gets_481() -> None:
    net = VirtualNet()
    b = net.add("bob")
    assert [r.status for r in answer_to(b, raw("CANCEL"))] == [481]


def test_malformed_request_gets_400_with_reason() -> None:
    net = VirtualNet()
    b = net.add("bob")
    data = raw("OPTIONS").replace(b"Max-Forwards: 70", b"Max-Forwards: many")
    peer = MemPeer("UDP", False, b.address, ("10.0.0.9", 5060))
    b.core.receive(data, peer, 0.0)
    (out,) = b.core.take_outputs()
    assert isinstance(out, Transmit) and out.data.startswith(b"SIP/2.0 400 ")
    assert b"Max-Forwards" in out.data.split(b"\r\n")[0]


def test_out_of_order_cseq_gets_500() -> None:
    net = VirtualNet()
    _, b, _, bref = established(net)
    dialog = b.core.call_dialog(bref)
    assert dialog is not None
    data = raw("INFO", to_tag=dialog.local_tag, cseq=0).replace(
        b"tag=z1", f"tag={dialog.remote_tag}".encode()
    )
    data = data.replace(b"raw-1@10.0.0.9", dialog.call_id.encode())
    assert [r.status for r in answer_to(b, data)] == [500]


# --- loss ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_calls_complete_over_25_percent_loss(seed: int) -> None:
    net = VirtualNet(loss=drop_random(0.25, seed))
    a, b = net.add("alice"), net.add("bob", auto_answer=True)
    for _ in range(5):
        ref = call(net, a, b)
        net.run_until(
            lambda r=ref: any(isinstance(e, CallAnswered) and e.call == r for e in a.events), limit=60
        )
        sent = a.core.send_in_dialog(ref, "MESSAGE", net.now, body=b"hello", content_type="text/plain")
        net.run_until(
            lambda s=sent: any(isinstance(e, RequestDone) and e.request == s for e in a.events), limit=60
        )
        a.core.reinvite(ref, a.session.offer_sync(), net.now)
        net.run_until(
            lambda r=ref: any(isinstance(e, ReInviteCompleted) and e.call == r for e in a.events), limit=60
        )
        a.core.hangup(ref, net.now)
        ended = len(b.of(CallEnded)) + 1
        net.run_until(lambda n=ended: len(b.of(CallEnded)) == n, limit=60)
    assert net.dropped > 10
    assert [e.status for e in a.events if isinstance(e, RequestDone)] == [200] * 5
    assert [e.status for e in a.events if isinstance(e, ReInviteCompleted)] == [200] * 5
    assert [e.reason for e in b.events if isinstance(e, CallEnded)] == [EndReason.REMOTE_HANGUP] * 5
    # No request reached the callee's TU twice, however often it was retransmitted.
    assert max(b.core.tu_requests.values()) == 1, b.core.tu_requests
    per_method = {m: sum(1 for k in b.core.tu_requests if k[0] == m) for m in ("INVITE", "MESSAGE", "BYE")}
    assert per_method == {"INVITE": 10, "MESSAGE": 5, "BYE": 5}  # 5 calls and 5 re-INVITEs
    # (An ACK lost for good is overtaken by the next request of the dialog, which confirms it.)


def test_invite_without_offer_gets_our_offer_and_the_ack_answers() -> None:
    """§13.3.1 / RFC 3264: an INVITE with no body: our 2xx makes the offer, the ACK answers."""
    net = VirtualNet()
    b = net.add("bob")
    peer = MemPeer("UDP", False, b.address, ("10.0.0.9", 5060))
    b.core.receive(raw("INVITE"), peer, 0.0)
    out = b.core.take_outputs()
    (incoming,) = [e for e in out if isinstance(e, IncomingCall)]
    assert incoming.offer is None
    offer = b.session.offer_sync()
    b.core.answer(incoming.call, offer, 0.1)
    (ok,) = [o.message for o in b.core.take_outputs() if isinstance(o, Transmit)]
    assert isinstance(ok, SipResponse) and ok.status == 200 and ok.body == offer
    answer = StaticSdpSession("10.0.0.9").answer_sync(offer)
    assert isinstance(answer, bytes)
    ack = raw(
        "ACK",
        to_tag=ok.to.tag or "",
        branch="z9hG4bKack1",
        body=answer,
        extra="Content-Type: application/sdp\r\n",
    )
    b.core.receive(ack, peer, 0.2)
    (answered,) = [e for e in b.core.take_outputs() if isinstance(e, CallAnswered)]
    assert answered.sdp == answer and not answered.early
    assert b.core.next_deadline() is not None  # the INVITE transaction lingers (Timer L)...
    b.core.fire(0.2 + 0.5)
    assert [o for o in b.core.take_outputs() if isinstance(o, Transmit)] == []  # ...but no 2xx retransmission


def test_callee_reached_through_a_forwarded_aor_can_hang_up() -> None:
    """The callee's in-dialog From is the AoR we dialled (RFC 7904 §3: AoR forwards), not its
    certificate's user: the dialog's Node-ID is what is checked, and it matches."""
    net = VirtualNet(verified=True)
    a, c = net.add("alice"), net.add("carol", auto_answer=True)
    a.core.invite([net.target(a, c)], a.session.offer_sync(), net.now, to="sip:bob@example.org")
    net.run_until(has(c, CallAnswered))
    assert one(a, CallAnswered).identity.user == "carol@example.org"
    c.core.hangup(one(c, IncomingCall).call, net.now)
    net.run_until(has(a, CallEnded))
    assert one(a, CallEnded).reason is EndReason.REMOTE_HANGUP


def test_in_dialog_request_from_another_node_is_refused() -> None:
    net = VirtualNet(verified=True)
    _, b, _, bref = established(net)
    dialog = b.core.call_dialog(bref)
    assert dialog is not None
    bye = (
        raw("BYE", to_tag=dialog.local_tag, cseq=5)
        .replace(b"tag=z1", f"tag={dialog.remote_tag}".encode())
        .replace(b"raw-1@10.0.0.9", dialog.call_id.encode())
        .replace(b"zed@", b"alice@")
    )
    intruder = MemPeer("UDP", False, b.address, ("10.0.0.9", 5060), "alice@example.org", b"\x99" * 16)
    b.core.receive(bye, intruder, net.now)
    (response,) = [o.message for o in b.core.take_outputs() if isinstance(o, Transmit)]
    assert isinstance(response, SipResponse)
    assert (response.status, response.reason) == (403, "Not the certificate this dialog was made with")
    assert not b.core.call_state(bref)[2]  # the call goes on


def test_transport_peer_of_an_appattach_connection_is_checked() -> None:
    """The transport module's Peer, as its AppAttach wrapper makes it (verified user and
    Node-ID of the DTLS certificate): a From that is not the certificate's user gets 403,
    one that is gets through with the certificate's identity."""
    b = VirtualNet().add("bob")

    def peer(user: str) -> TransportPeer:
        return TransportPeer(
            "dtls-appattach", "", 0, key="conn-1", local=("10.0.0.2", 5060),
            verified_user=user, verified_node_id=b"\x42" * 16,
        )  # fmt: skip

    invite = raw("INVITE", body=StaticSdpSession().offer_sync(), extra="Content-Type: application/sdp\r\n")
    b.core.receive(invite, peer("mallory@example.org"), 0.0)
    out = b.core.take_outputs()
    assert [
        o.message.status for o in out if isinstance(o, Transmit) and isinstance(o.message, SipResponse)
    ] == [
        100,
        403,
    ]
    assert not any(isinstance(o, IncomingCall) for o in out)
    b.core.receive(
        invite.replace(b"z9hG4bKraw1", b"z9hG4bKraw2").replace(b"raw-1@", b"raw-2@"),
        peer("zed@example.org"),
        1.0,
    )
    (incoming,) = [o for o in b.core.take_outputs() if isinstance(o, IncomingCall)]
    assert incoming.identity == RemoteIdentity("zed@example.org", b"\x42" * 16, True)


def test_appattach_flow_without_socket_address_uses_the_aor_host() -> None:
    """RFC 7904 §5.1: Via and Contact carry our overlay URI's host on an AppAttach flow."""
    a = VirtualNet().add("alice")
    flow = TransportPeer("dtls-appattach", "", 0, key="conn-2", verified_user="bob@example.org")
    a.core.invite([Target(flow, SipUri("sip", "bob", None, "example.org"))], b"v=0\r\n", 0.0)
    (out,) = [o for o in a.core.take_outputs() if isinstance(o, Transmit)]
    invite = out.message
    assert isinstance(invite, SipRequest) and out.peer is flow
    assert str(invite.top_via).startswith("SIP/2.0/DTLS example.org;branch=z9hG4bK")
    assert invite.headers.get("Contact") == "<sip:alice@example.org>"

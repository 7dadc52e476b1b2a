"""The four transaction state machines of RFC 3261 §17 (with RFC 6026's Accepted state),
driven by hand: time is a number we set, messages are real parsed SIP."""

from __future__ import annotations

import pytest

from app.sip.errors import LocalProtocolError
from app.sip.message import SipRequest, SipResponse, build_response, parse_message
from app.sip.transaction import (
    INITIAL,
    TABLES,
    Act,
    TimerConfig,
    Transaction,
    TransactionLayer,
    TxKind,
    TxOutput,
    TxPassUp,
    TxSend,
    TxState,
    TxTerminated,
    TxTimeout,
)

CFG = TimerConfig()  # T1 0.5, T2 4, T4 5
PEER = ("192.0.2.9", 5060)


def request(
    method: str = "INVITE", branch: str = "z9hG4bKabc", host: str = "192.0.2.1", to_tag: str = ""
) -> SipRequest:
    to = "<sip:bob@example.org>" + (f";tag={to_tag}" if to_tag else "")
    data = (
        f"{method} sip:bob@192.0.2.2 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {to}\r\n"
        "From: <sip:alice@example.org>;tag=a1\r\n"
        "Call-ID: call-1@192.0.2.1\r\n"
        f"CSeq: 7 {method}\r\n"
        "Route: <sip:proxy.example.org;lr>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    return message


def response(req: SipRequest, status: int, tag: str | None = "b1") -> SipResponse:
    return build_response(req, status, to_tag=tag if status > 100 else None)


def sends(out: list[TxOutput]) -> list[SipRequest | SipResponse]:
    return [o.message for o in out if isinstance(o, TxSend)]


def passed(out: list[TxOutput]) -> list[SipRequest | SipResponse]:
    return [o.message for o in out if isinstance(o, TxPassUp)]


def run_timers(layer: TransactionLayer, until: float) -> list[tuple[float, TxOutput]]:
    """Fire the layer's timers at their deadlines up to ``until``."""
    log: list[tuple[float, TxOutput]] = []
    while True:
        d = layer.next_deadline()
        if d is None or d > until:
            return log
        log += [(d, o) for o in layer.fire(d)]


def send_times(log: list[tuple[float, TxOutput]]) -> list[float]:
    return [t for t, o in log if isinstance(o, TxSend)]


# --- the tables ------------------------------------------------------------------------


def test_every_table_state_is_reachable_and_terminates() -> None:
    for kind, table in TABLES.items():
        start, _ = INITIAL[kind]
        seen = {start}
        frontier = [start]
        while frontier:
            s = frontier.pop()
            for (state, _), (new, _) in table.items():
                if state is s and new not in seen:
                    seen.add(new)
                    frontier.append(new)
        assert TxState.TERMINATED in seen, kind
        assert {state for state, _ in table} <= seen, kind


# --- INVITE client (§17.1.1) -------------------------------------------------------------


def test_invite_client_timer_a_doubles_until_timer_b() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, out = layer.send_request(inv, PEER, reliable=False, now=0.0)
    assert sends(out) == [inv] and tx.state is TxState.CALLING
    log = run_timers(layer, 100.0)
    # A fires at T1, then 2, 4, 8, 16 T1 later (no cap); B at 64*T1 = 32 s ends it.
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    timeouts = [t for t, o in log if isinstance(o, TxTimeout)]
    assert timeouts == [32.0]
    assert tx.state is TxState.TERMINATED and len(layer) == 0


def test_invite_client_reliable_has_no_timer_a() -> None:
    layer = TransactionLayer(CFG)
    layer.send_request(request(), PEER, reliable=True, now=0.0)
    log = run_timers(layer, 100.0)
    assert send_times(log) == []
    assert [t for t, o in log if isinstance(o, TxTimeout)] == [32.0]


def test_invite_client_provisional_stops_retransmission_and_timeout() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, _ = layer.send_request(inv, PEER, reliable=False, now=0.0)
    out = layer.receive_response(response(inv, 180), 0.2)
    assert out is not None and passed(out)[0].status == 180  # type: ignore[union-attr]
    assert tx.state is TxState.PROCEEDING
    assert layer.next_deadline() is None  # no A, no B in Proceeding
    out = layer.receive_response(response(inv, 183), 5.0)
    assert out is not None and len(passed(out)) == 1


def test_invite_client_non_2xx_final_acks_absorbs_and_timer_d() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, _ = layer.send_request(inv, PEER, reliable=False, now=0.0)
    busy = response(inv, 486)
    out = layer.receive_response(busy, 0.1)
    assert out is not None
    (ack,) = sends(out)
    assert isinstance(ack, SipRequest) and ack.method == "ACK"
    # §17.1.1.3: Request-URI, Call-ID, From, CSeq number, top Via and Route of the INVITE,
    # To of the response.
    assert ack.uri == inv.uri and ack.call_id == inv.call_id and ack.cseq.seq == 7
    assert ack.top_via == inv.top_via and ack.to.tag == "b1"
    assert ack.headers.get_all("Route") == inv.headers.get_all("Route")
    assert [m.status for m in passed(out)] == [486]  # type: ignore[union-attr]
    # A retransmitted final: ACK again, not passed up.
    out = layer.receive_response(busy, 1.0)
    assert out is not None and sends(out) == [ack] and passed(out) == []
    assert tx.state is TxState.COMPLETED
    log = run_timers(layer, 100.0)
    assert [t for t, o in log if isinstance(o, TxTerminated)] == [32.1]  # Timer D: 32 s


def test_invite_client_reliable_timer_d_is_zero() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, _ = layer.send_request(inv, PEER, reliable=True, now=0.0)
    out = layer.receive_response(response(inv, 603), 0.1)
    assert out is not None and any(isinstance(o, TxTerminated) for o in out)
    assert tx.state is TxState.TERMINATED and len(layer) == 0


def test_invite_client_2xx_accepted_passes_retransmissions_until_timer_m() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, _ = layer.send_request(inv, PEER, reliable=False, now=0.0)
    ok = response(inv, 200)
    out = layer.receive_response(ok, 0.1)
    assert out is not None and passed(out) == [ok] and sends(out) == []  # the TU ACKs a 2xx
    assert tx.state is TxState.ACCEPTED
    out = layer.receive_response(ok, 0.6)
    assert out is not None and passed(out) == [ok]  # RFC 6026: each 2xx goes to the TU
    log = run_timers(layer, 100.0)
    assert [t for t, o in log if isinstance(o, TxTerminated)] == [32.1]  # Timer M = 64*T1
    assert layer.receive_response(ok, 40.0) is None


def test_invite_client_transport_error() -> None:
    layer = TransactionLayer(CFG)
    tx, _ = layer.send_request(request(), PEER, reliable=True, now=0.0)
    out = layer.transport_error(tx, 0.0)
    assert tx.state is TxState.TERMINATED
    assert [type(o).__name__ for o in out] == ["TxTransportError", "TxTerminated"]


# --- non-INVITE client (§17.1.2) ----------------------------------------------------------


def test_non_invite_client_timer_e_capped_at_t2_until_timer_f() -> None:
    layer = TransactionLayer(CFG)
    tx, _ = layer.send_request(request("MESSAGE"), PEER, reliable=False, now=0.0)
    log = run_timers(layer, 100.0)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [t for t, o in log if isinstance(o, TxTimeout)] == [32.0]
    assert tx.state is TxState.TERMINATED


def test_non_invite_client_proceeding_retransmits_every_t2() -> None:
    layer = TransactionLayer(CFG)
    req = request("OPTIONS")
    tx, _ = layer.send_request(req, PEER, reliable=False, now=0.0)
    run_timers(layer, 0.5)  # one retransmission; E now at 1.5
    layer.receive_response(response(req, 100), 0.7)
    assert tx.state is TxState.PROCEEDING
    log = run_timers(layer, 13.0)
    # Timer E fires as armed (1.5), then is reset to T2 each time in Proceeding.
    assert send_times(log) == [1.5, 5.5, 9.5]


def test_non_invite_client_final_then_timer_k() -> None:
    layer = TransactionLayer(CFG)
    req = request("BYE", to_tag="b1")
    tx, _ = layer.send_request(req, PEER, reliable=False, now=0.0)
    ok = response(req, 200)
    out = layer.receive_response(ok, 0.2)
    assert out is not None and passed(out) == [ok]
    assert tx.state is TxState.COMPLETED
    out = layer.receive_response(ok, 0.3)
    assert out is not None and out == []  # absorbed
    log = run_timers(layer, 100.0)
    assert send_times(log) == []  # E stopped
    assert [t for t, o in log if isinstance(o, TxTerminated)] == [5.2]  # Timer K = T4


def test_non_invite_client_reliable_no_e_and_k_zero() -> None:
    layer = TransactionLayer(CFG)
    req = request("MESSAGE")
    tx, _ = layer.send_request(req, PEER, reliable=True, now=0.0)
    assert layer.next_deadline() == 32.0  # only F
    out = layer.receive_response(response(req, 200), 0.1)
    assert out is not None and isinstance(out[-1], TxTerminated)
    assert tx.state is TxState.TERMINATED


# --- INVITE server (§17.2.1) ------------------------------------------------------------


def start_server(
    layer: TransactionLayer, req: SipRequest, reliable: bool = False
) -> tuple[Transaction, list[TxOutput]]:
    return layer.start_server(req, PEER, reliable=reliable, now=0.0)


def test_invite_server_sends_100_and_resends_last_provisional() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, out = start_server(layer, inv)
    assert [m.status for m in sends(out)] == [100]  # type: ignore[union-attr]
    assert passed(out) == [inv]
    ringing = response(inv, 180)
    out = layer.respond(tx, ringing, 0.1)
    assert sends(out) == [ringing]
    out = layer.receive_request(inv, 0.2)  # retransmitted INVITE
    assert out is not None and sends(out) == [ringing] and passed(out) == []


def test_invite_server_timer_g_until_timer_h() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, _ = start_server(layer, inv)
    busy = response(inv, 486)
    out = layer.respond(tx, busy, 0.0)
    assert sends(out) == [busy] and tx.state is TxState.COMPLETED
    log = run_timers(layer, 100.0)
    # G: T1 doubling up to T2, until H (64*T1) reports the missing ACK.
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [t for t, o in log if isinstance(o, TxTimeout)] == [32.0]
    assert tx.state is TxState.TERMINATED


def test_invite_server_ack_confirms_and_timer_i() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, _ = start_server(layer, inv)
    layer.respond(tx, response(inv, 487), 0.0)
    ack = request("ACK", to_tag="b1")
    out = layer.receive_request(ack, 0.7)
    assert out is not None and passed(out) == [] and tx.state is TxState.CONFIRMED
    out = layer.receive_request(ack, 0.8)  # retransmitted ACK absorbed
    assert out == []
    out = layer.receive_request(inv, 0.9)  # late INVITE retransmission absorbed in Confirmed
    assert out == []
    log = run_timers(layer, 100.0)
    assert send_times(log) == []
    assert [t for t, o in log if isinstance(o, TxTerminated)] == [5.7]  # Timer I = T4


def test_invite_server_reliable_no_g_and_i_zero() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, _ = start_server(layer, inv, reliable=True)
    layer.respond(tx, response(inv, 486), 0.0)
    assert layer.next_deadline() == 32.0  # only H
    out = layer.receive_request(request("ACK", to_tag="b1"), 0.1)
    assert out is not None and isinstance(out[-1], TxTerminated)


def test_invite_server_2xx_accepted_absorbs_invites_until_timer_l() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, _ = start_server(layer, inv)
    ok = response(inv, 200)
    assert sends(layer.respond(tx, ok, 0.0)) == [ok]
    assert tx.state is TxState.ACCEPTED
    out = layer.receive_request(inv, 0.3)
    assert out == []  # absorbed, not passed up, no resend (the TU retransmits 2xx)
    assert sends(layer.respond(tx, ok, 0.5)) == [ok]  # TU retransmission goes through
    log = run_timers(layer, 100.0)
    assert [t for t, o in log if isinstance(o, TxTerminated)] == [32.0]  # Timer L


# --- non-INVITE server (§17.2.2) ----------------------------------------------------------


def test_non_invite_server_trying_absorbs_then_resends_final_until_timer_j() -> None:
    layer = TransactionLayer(CFG)
    req = request("MESSAGE")
    tx, out = start_server(layer, req)
    assert passed(out) == [req] and sends(out) == []
    assert layer.receive_request(req, 0.1) == []  # Trying: absorbed
    ok = response(req, 200)
    assert sends(layer.respond(tx, ok, 0.2)) == [ok]
    out = layer.receive_request(req, 0.3)
    assert out is not None and sends(out) == [ok] and passed(out) == []
    log = run_timers(layer, 100.0)
    assert [t for t, o in log if isinstance(o, TxTerminated)] == [32.2]  # Timer J = 64*T1


def test_non_invite_server_proceeding_resends_provisional() -> None:
    layer = TransactionLayer(CFG)
    req = request("INFO", to_tag="b1")
    tx, _ = start_server(layer, req)
    trying = response(req, 100)
    layer.respond(tx, trying, 0.0)
    out = layer.receive_request(req, 0.1)
    assert out is not None and sends(out) == [trying]


def test_non_invite_server_reliable_timer_j_zero() -> None:
    layer = TransactionLayer(CFG)
    req = request("MESSAGE")
    tx, _ = start_server(layer, req, reliable=True)
    out = layer.respond(tx, response(req, 200), 0.0)
    assert isinstance(out[-1], TxTerminated) and len(layer) == 0


# --- matching (§17.1.3, §17.2.3) ---------------------------------------------------------


def test_server_matching_branch_sent_by_and_method() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    tx, _ = start_server(layer, inv)
    assert layer.match_request(request()) is tx
    assert layer.match_request(request(branch="z9hG4bKother")) is None
    assert layer.match_request(request(host="192.0.2.77")) is None  # other sent-by
    # ACK (to a non-2xx) matches the INVITE transaction; CANCEL does not, but finds it.
    assert layer.match_request(request("ACK", to_tag="b1")) is tx
    cancel = request("CANCEL")
    assert layer.match_request(cancel) is None
    assert layer.find_invite_for_cancel(cancel) is tx
    assert layer.find_invite_for_cancel(request("CANCEL", branch="z9hG4bKzzz")) is None


def test_client_matching_branch_and_cseq_method() -> None:
    layer = TransactionLayer(CFG)
    inv = request()
    inv_tx, _ = layer.send_request(inv, PEER, reliable=False, now=0.0)
    cancel = request("CANCEL")  # same branch, method CANCEL (§9.1)
    cancel_tx, _ = layer.send_request(cancel, PEER, reliable=False, now=0.0)
    out = layer.receive_response(response(cancel, 200), 0.1)
    assert out is not None and cancel_tx.state is TxState.COMPLETED
    assert inv_tx.state is TxState.CALLING
    out = layer.receive_response(response(inv, 487), 0.2)
    assert out is not None and inv_tx.state is TxState.COMPLETED
    assert layer.receive_response(response(request("MESSAGE", branch="z9hG4bKnone"), 200), 0.3) is None


def test_rfc2543_branch_falls_back_to_dialog_identifiers() -> None:
    layer = TransactionLayer(CFG)
    inv = request(branch="old-style-1")
    tx, _ = start_server(layer, inv)
    assert layer.match_request(request(branch="old-style-1")) is tx
    assert layer.match_request(request("ACK", branch="old-style-1", to_tag="b1")) is tx


def test_merged_request_detected() -> None:
    """§8.2.2.2: same From tag, Call-ID and CSeq, another branch: the request came twice."""
    layer = TransactionLayer(CFG)
    start_server(layer, request())
    assert layer.is_merged(request(branch="z9hG4bKsecondpath"))
    assert not layer.is_merged(request())
    assert not layer.is_merged(request("CANCEL", branch="z9hG4bKsecondpath"))


def test_ack_never_has_a_transaction() -> None:
    layer = TransactionLayer(CFG)
    with pytest.raises(LocalProtocolError):
        layer.send_request(request("ACK", to_tag="b1"), PEER, reliable=False, now=0.0)
    with pytest.raises(LocalProtocolError):
        layer.start_server(request("ACK", to_tag="b1"), PEER, reliable=False, now=0.0)


def test_kinds_follow_the_method() -> None:
    layer = TransactionLayer(CFG)
    a, _ = layer.send_request(request(), PEER, reliable=False, now=0.0)
    b, _ = layer.send_request(request("BYE", branch="z9hG4bK2"), PEER, reliable=False, now=0.0)
    assert (a.kind, b.kind) == (TxKind.INVITE_CLIENT, TxKind.NON_INVITE_CLIENT)
    assert Act.SEND_REQUEST in INITIAL[TxKind.INVITE_CLIENT][1]

"""SIP transactions (RFC 3261 §17, with the Accepted state of RFC 6026).

Four state machines, each an explicit table ``(state, event) -> (new state, actions)``:
the INVITE client transaction (§17.1.1, RFC 6026 §7.2), the non-INVITE client transaction
(§17.1.2), the INVITE server transaction (§17.2.1, RFC 6026 §7.1) and the non-INVITE
server transaction (§17.2.2). A pair missing from a table means the event is absorbed
(e.g. a retransmitted response in Completed).

No sockets and no clock: every entry point takes ``now`` (seconds, any monotonic origin),
:meth:`TransactionLayer.next_deadline` says when to call :meth:`TransactionLayer.fire`
next, and what the transactions want done comes out as :data:`TxOutput` values for the
transaction user (the UA core) to act on. Timers A, E and G (retransmissions) exist only
on unreliable transports; D, I, J and K are zero on reliable ones (§17.1.1.2, §17.1.2.2,
§17.2.1, §17.2.2), and a zero timer fires within the same call.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from app.sip.errors import LocalProtocolError, RemoteProtocolError
from app.sip.headers import Headers
from app.sip.message import SipRequest, SipResponse, build_response

MAGIC_COOKIE: Final = "z9hG4bK"
"""Branch prefix of RFC 3261 clients (§8.1.1.7); without it §17.2.3's older rules apply."""


@dataclass(frozen=True)
class TimerConfig:
    """The base timer values of RFC 3261 Table 4 (§17.1.1.1, §17.1.2.2, §17.2.2)."""

    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # cap on non-INVITE request and INVITE response retransmission intervals
    t4: float = 5.0  # maximum time a message stays in the network
    timer_d: float = 32.0  # "at least 32 seconds" on unreliable transports (§17.1.1.2)

    @property
    def timeout(self) -> float:
        """64*T1: timers B, F, H, J (unreliable), L and M, and §13.3.1.4's 2xx give-up."""
        return 64 * self.t1


class TxKind(enum.Enum):
    INVITE_CLIENT = "INVITE client"
    NON_INVITE_CLIENT = "non-INVITE client"
    INVITE_SERVER = "INVITE server"
    NON_INVITE_SERVER = "non-INVITE server"


class TxState(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"  # RFC 6026
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class TxEvent(enum.Enum):
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_3XX_6XX = "300-699 received"
    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    TU_1XX = "1xx from TU"
    TU_2XX = "2xx from TU"
    TU_3XX_6XX = "300-699 from TU"
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"
    TIMER_L = "Timer L"
    TIMER_M = "Timer M"


class Timer(enum.Enum):
    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741  (RFC 3261's name)
    J = "J"
    K = "K"
    L = "L"
    M = "M"

    @property
    def event(self) -> TxEvent:
        return TxEvent["TIMER_" + self.value]


class Act(enum.Enum):
    """What a transition does besides timers."""

    SEND_REQUEST = "send request"  # (re)transmit the request
    SEND_ACK = "send ACK"  # build the ACK for a non-2xx final (§17.1.1.3) and send it
    RESEND_ACK = "resend ACK"
    SEND_RESPONSE = "send response"  # the response from the TU; it becomes the last one
    RESEND_RESPONSE = "resend last response"
    PASS_UP = "pass to TU"
    TIMEOUT = "inform TU of timeout"
    TRANSPORT_FAILED = "inform TU of transport error"


class TimerOp(enum.Enum):
    START = "start"  # initial interval
    STOP = "stop"
    BACKOFF = "back off"  # fire again after double the interval (capped at T2 for E and G)
    START_T2 = "start at T2"  # Timer E in Proceeding (§17.1.2.2)


@dataclass(frozen=True)
class TimerAction:
    op: TimerOp
    timer: Timer


Action: TypeAlias = Act | TimerAction
Transition: TypeAlias = tuple[TxState, tuple[Action, ...]]
Table: TypeAlias = dict[tuple[TxState, TxEvent], Transition]

S = TxState
E = TxEvent


def _start(t: Timer) -> TimerAction:
    return TimerAction(TimerOp.START, t)


def _stop(*ts: Timer) -> tuple[TimerAction, ...]:
    return tuple(TimerAction(TimerOp.STOP, t) for t in ts)


def _backoff(t: Timer) -> TimerAction:
    return TimerAction(TimerOp.BACKOFF, t)


# §17.1.1.2 Figure 5 with RFC 6026 Figure 5 (2xx -> Accepted, Timer M).
INVITE_CLIENT_TABLE: Final[Table] = {
    (S.CALLING, E.TIMER_A): (S.CALLING, (Act.SEND_REQUEST, _backoff(Timer.A))),
    (S.CALLING, E.TIMER_B): (S.TERMINATED, (Act.TIMEOUT,)),
    (S.CALLING, E.RECV_1XX): (S.PROCEEDING, (*_stop(Timer.A, Timer.B), Act.PASS_UP)),
    (S.CALLING, E.RECV_2XX): (S.ACCEPTED, (*_stop(Timer.A, Timer.B), Act.PASS_UP, _start(Timer.M))),
    (S.CALLING, E.RECV_3XX_6XX): (
        S.COMPLETED,
        (*_stop(Timer.A, Timer.B), Act.SEND_ACK, Act.PASS_UP, _start(Timer.D)),
    ),
    (S.CALLING, E.TRANSPORT_ERROR): (S.TERMINATED, (Act.TRANSPORT_FAILED,)),
    (S.PROCEEDING, E.RECV_1XX): (S.PROCEEDING, (Act.PASS_UP,)),
    (S.PROCEEDING, E.RECV_2XX): (S.ACCEPTED, (Act.PASS_UP, _start(Timer.M))),
    (S.PROCEEDING, E.RECV_3XX_6XX): (S.COMPLETED, (Act.SEND_ACK, Act.PASS_UP, _start(Timer.D))),
    (S.PROCEEDING, E.TRANSPORT_ERROR): (S.TERMINATED, (Act.TRANSPORT_FAILED,)),
    (S.COMPLETED, E.RECV_3XX_6XX): (S.COMPLETED, (Act.RESEND_ACK,)),
    (S.COMPLETED, E.TRANSPORT_ERROR): (S.TERMINATED, (Act.TRANSPORT_FAILED,)),
    (S.COMPLETED, E.TIMER_D): (S.TERMINATED, ()),
    (S.ACCEPTED, E.RECV_2XX): (S.ACCEPTED, (Act.PASS_UP,)),
    (S.ACCEPTED, E.TIMER_M): (S.TERMINATED, ()),
}

_NON_INVITE_FINAL: Final[tuple[Action, ...]] = (*_stop(Timer.E, Timer.F), Act.PASS_UP, _start(Timer.K))

# §17.1.2.2 Figure 6.
NON_INVITE_CLIENT_TABLE: Final[Table] = {
    (S.TRYING, E.TIMER_E): (S.TRYING, (Act.SEND_REQUEST, _backoff(Timer.E))),
    (S.TRYING, E.TIMER_F): (S.TERMINATED, (Act.TIMEOUT,)),
    (S.TRYING, E.TRANSPORT_ERROR): (S.TERMINATED, (Act.TRANSPORT_FAILED,)),
    (S.TRYING, E.RECV_1XX): (S.PROCEEDING, (Act.PASS_UP,)),
    (S.TRYING, E.RECV_2XX): (S.COMPLETED, _NON_INVITE_FINAL),
    (S.TRYING, E.RECV_3XX_6XX): (S.COMPLETED, _NON_INVITE_FINAL),
    (S.PROCEEDING, E.TIMER_E): (
        S.PROCEEDING,
        (Act.SEND_REQUEST, TimerAction(TimerOp.START_T2, Timer.E)),
    ),
    (S.PROCEEDING, E.TIMER_F): (S.TERMINATED, (Act.TIMEOUT,)),
    (S.PROCEEDING, E.TRANSPORT_ERROR): (S.TERMINATED, (Act.TRANSPORT_FAILED,)),
    (S.PROCEEDING, E.RECV_1XX): (S.PROCEEDING, (Act.PASS_UP,)),
    (S.PROCEEDING, E.RECV_2XX): (S.COMPLETED, _NON_INVITE_FINAL),
    (S.PROCEEDING, E.RECV_3XX_6XX): (S.COMPLETED, _NON_INVITE_FINAL),
    (S.COMPLETED, E.TIMER_K): (S.TERMINATED, ()),
}

# §17.2.1 Figure 7 with RFC 6026 Figure 7 (2xx -> Accepted, Timer L; the TU retransmits
# 2xx through the transaction, retransmitted INVITEs are absorbed).
INVITE_SERVER_TABLE: Final[Table] = {
    (S.PROCEEDING, E.RECV_REQUEST): (S.PROCEEDING, (Act.RESEND_RESPONSE,)),
    (S.PROCEEDING, E.TU_1XX): (S.PROCEEDING, (Act.SEND_RESPONSE,)),
    (S.PROCEEDING, E.TU_2XX): (S.ACCEPTED, (Act.SEND_RESPONSE, _start(Timer.L))),
    (S.PROCEEDING, E.TU_3XX_6XX): (
        S.COMPLETED,
        (Act.SEND_RESPONSE, _start(Timer.G), _start(Timer.H)),
    ),
    (S.PROCEEDING, E.TRANSPORT_ERROR): (S.TERMINATED, (Act.TRANSPORT_FAILED,)),
    (S.COMPLETED, E.RECV_REQUEST): (S.COMPLETED, (Act.RESEND_RESPONSE,)),
    (S.COMPLETED, E.TIMER_G): (S.COMPLETED, (Act.RESEND_RESPONSE, _backoff(Timer.G))),
    (S.COMPLETED, E.TIMER_H): (S.TERMINATED, (Act.TIMEOUT,)),
    (S.COMPLETED, E.RECV_ACK): (S.CONFIRMED, (*_stop(Timer.G, Timer.H), _start(Timer.I))),
    (S.COMPLETED, E.TRANSPORT_ERROR): (S.TERMINATED, (Act.TRANSPORT_FAILED,)),
    (S.CONFIRMED, E.TIMER_I): (S.TERMINATED, ()),
    (S.ACCEPTED, E.TU_2XX): (S.ACCEPTED, (Act.SEND_RESPONSE,)),
    # An ACK for the 2xx that reuses the INVITE's branch (it should not, §17.1.1.3) is
    # the TU's business: it stops the TU's 2xx retransmissions.
    (S.ACCEPTED, E.RECV_ACK): (S.ACCEPTED, (Act.PASS_UP,)),
    (S.ACCEPTED, E.TIMER_L): (S.TERMINATED, ()),
}

_SERVER_FINAL: Final[tuple[Action, ...]] = (Act.SEND_RESPONSE, _start(Timer.J))

# §17.2.2 Figure 8.
NON_INVITE_SERVER_TABLE: Final[Table] = {
    (S.TRYING, E.TU_1XX): (S.PROCEEDING, (Act.SEND_RESPONSE,)),
    (S.TRYING, E.TU_2XX): (S.COMPLETED, _SERVER_FINAL),
    (S.TRYING, E.TU_3XX_6XX): (S.COMPLETED, _SERVER_FINAL),
    (S.PROCEEDING, E.TU_1XX): (S.PROCEEDING, (Act.SEND_RESPONSE,)),
    (S.PROCEEDING, E.TU_2XX): (S.COMPLETED, _SERVER_FINAL),
    (S.PROCEEDING, E.TU_3XX_6XX): (S.COMPLETED, _SERVER_FINAL),
    (S.PROCEEDING, E.RECV_REQUEST): (S.PROCEEDING, (Act.RESEND_RESPONSE,)),
    (S.PROCEEDING, E.TRANSPORT_ERROR): (S.TERMINATED, (Act.TRANSPORT_FAILED,)),
    (S.COMPLETED, E.RECV_REQUEST): (S.COMPLETED, (Act.RESEND_RESPONSE,)),
    (S.COMPLETED, E.TRANSPORT_ERROR): (S.TERMINATED, (Act.TRANSPORT_FAILED,)),
    (S.COMPLETED, E.TIMER_J): (S.TERMINATED, ()),
}

TABLES: Final[dict[TxKind, Table]] = {
    TxKind.INVITE_CLIENT: INVITE_CLIENT_TABLE,
    TxKind.NON_INVITE_CLIENT: NON_INVITE_CLIENT_TABLE,
    TxKind.INVITE_SERVER: INVITE_SERVER_TABLE,
    TxKind.NON_INVITE_SERVER: NON_INVITE_SERVER_TABLE,
}

INITIAL: Final[dict[TxKind, Transition]] = {
    TxKind.INVITE_CLIENT: (S.CALLING, (Act.SEND_REQUEST, _start(Timer.A), _start(Timer.B))),
    TxKind.NON_INVITE_CLIENT: (S.TRYING, (Act.SEND_REQUEST, _start(Timer.E), _start(Timer.F))),
    # The INVITE server transaction answers 100 Trying at once (§17.2.1: unless the TU
    # answers within 200 ms; ours does not wait for the user).
    TxKind.INVITE_SERVER: (S.PROCEEDING, (Act.SEND_RESPONSE, Act.PASS_UP)),
    TxKind.NON_INVITE_SERVER: (S.TRYING, (Act.PASS_UP,)),
}


def initial_interval(timer: Timer, reliable: bool, cfg: TimerConfig) -> float | None:
    """The first interval of ``timer``; None when it is not used on this transport."""
    if timer in (Timer.A, Timer.E, Timer.G):
        return None if reliable else cfg.t1
    if timer in (Timer.B, Timer.F, Timer.H, Timer.L, Timer.M):
        return cfg.timeout
    if timer is Timer.D:
        return 0.0 if reliable else max(cfg.timer_d, cfg.timeout)
    if timer is Timer.J:
        return 0.0 if reliable else cfg.timeout
    # I and K
    return 0.0 if reliable else cfg.t4


# --- outputs for the transaction user ------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TxSend:
    """Pass ``message`` to the transport towards ``transaction.peer``."""

    transaction: Transaction
    message: SipRequest | SipResponse


@dataclass(frozen=True, eq=False)
class TxPassUp:
    """A request (server) or response (client) for the TU; never a retransmission."""

    transaction: Transaction
    message: SipRequest | SipResponse


@dataclass(frozen=True, eq=False)
class TxTimeout:
    """Timer B or F (the client gave up: treat as 408, §8.1.3.1) or H (no ACK came)."""

    transaction: Transaction


@dataclass(frozen=True, eq=False)
class TxTransportError:
    """The transport could not deliver (treat as 503 on the client side, §8.1.3.1)."""

    transaction: Transaction


@dataclass(frozen=True, eq=False)
class TxTerminated:
    transaction: Transaction


TxOutput: TypeAlias = TxSend | TxPassUp | TxTimeout | TxTransportError | TxTerminated


def _response_event(status: int, *, client: bool) -> TxEvent:
    if status < 200:
        return TxEvent.RECV_1XX if client else TxEvent.TU_1XX
    if status < 300:
        return TxEvent.RECV_2XX if client else TxEvent.TU_2XX
    return TxEvent.RECV_3XX_6XX if client else TxEvent.TU_3XX_6XX


def ack_for_non_2xx(request: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK a client INVITE transaction sends for a 300-699 (§17.1.1.3): the INVITE's
    Request-URI, Call-ID, From, CSeq number, top Via and Route, the response's To."""
    headers = Headers()
    headers.add("Via", request.headers.get_all("Via")[0])
    headers.add("Max-Forwards", "70")
    to = response.headers.get("To")
    frm = request.headers.get("From")
    call_id = request.headers.get("Call-ID")
    if to is None or frm is None or call_id is None:
        raise LocalProtocolError("ACK built from a message missing To/From/Call-ID")
    headers.add("From", frm)
    headers.add("To", to)
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{request.cseq.seq} ACK")
    for route in request.headers.get_all("Route"):
        headers.add("Route", route)
    return SipRequest("ACK", request.uri, headers)


@dataclass(eq=False)
class Transaction:
    """One transaction: its table, state, timers and the messages it retransmits.

    ``peer`` is the transport's opaque handle for the far end (a UDP address, a
    connection); the transaction only hands it back in :class:`TxSend`.
    """

    kind: TxKind
    key: Hashable
    request: SipRequest
    peer: Hashable
    reliable: bool
    cfg: TimerConfig
    state: TxState = TxState.TERMINATED
    last_response: SipResponse | None = None
    ack: SipRequest | None = None
    # timer -> (deadline, interval it was armed with)
    timers: dict[Timer, tuple[float, float]] = field(default_factory=dict)
    # The final status this server transaction sent (the UA core asks: was it answered?).
    final_status: int | None = None

    @property
    def is_client(self) -> bool:
        return self.kind in (TxKind.INVITE_CLIENT, TxKind.NON_INVITE_CLIENT)

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def terminated(self) -> bool:
        return self.state is TxState.TERMINATED

    def next_deadline(self) -> float | None:
        return min((d for d, _ in self.timers.values()), default=None)

    def start(self, now: float, response: SipResponse | None = None) -> list[TxOutput]:
        """Enter the initial state; ``response`` is the 100 Trying of an INVITE server."""
        state, actions = INITIAL[self.kind]
        self.state = state
        self.last_response = response
        out: list[TxOutput] = []
        self._run(actions, now, self.request if not self.is_client else None, out)
        return out

    def handle(
        self, event: TxEvent, now: float, message: SipRequest | SipResponse | None = None
    ) -> list[TxOutput]:
        out: list[TxOutput] = []
        self._dispatch(event, now, message, out)
        return out

    def fire(self, now: float) -> list[TxOutput]:
        """Run every timer whose deadline has passed, earliest first."""
        out: list[TxOutput] = []
        while not self.terminated:
            due = [(d, t) for t, (d, _) in self.timers.items() if d <= now]
            if not due:
                break
            _, timer = min(due, key=lambda x: (x[0], x[1].value))
            self._dispatch(timer.event, now, None, out, fired=timer)
        return out

    # --- internals ---------------------------------------------------------------------

    def _dispatch(
        self,
        event: TxEvent,
        now: float,
        message: SipRequest | SipResponse | None,
        out: list[TxOutput],
        fired: Timer | None = None,
    ) -> None:
        if fired is not None and event is not fired.event:
            raise LocalProtocolError("timer/event mismatch")
        entry = TABLES[self.kind].get((self.state, event))
        if entry is None:
            # Absorbed; a timer that has no transition here is simply spent.
            if fired is not None:
                self.timers.pop(fired, None)
            return
        new_state, actions = entry
        if (
            fired is not None
            and TimerAction(TimerOp.BACKOFF, fired) not in actions
            and not any(
                isinstance(a, TimerAction) and a.timer is fired and a.op is TimerOp.START_T2 for a in actions
            )
        ):
            self.timers.pop(fired, None)
        self.state = new_state
        self._run(actions, now, message, out)
        if new_state is TxState.TERMINATED:
            self.timers.clear()
            out.append(TxTerminated(self))

    def _run(
        self,
        actions: tuple[Action, ...],
        now: float,
        message: SipRequest | SipResponse | None,
        out: list[TxOutput],
    ) -> None:
        zero_timers: list[Timer] = []
        for action in actions:
            if isinstance(action, TimerAction):
                if self._timer(action, now):
                    zero_timers.append(action.timer)
                continue
            if action is Act.SEND_REQUEST:
                out.append(TxSend(self, self.request))
            elif action is Act.SEND_ACK:
                if not isinstance(message, SipResponse):
                    raise LocalProtocolError("SEND_ACK without a response")
                self.ack = ack_for_non_2xx(self.request, message)
                out.append(TxSend(self, self.ack))
            elif action is Act.RESEND_ACK:
                if self.ack is not None:
                    out.append(TxSend(self, self.ack))
            elif action is Act.SEND_RESPONSE:
                if isinstance(message, SipResponse):
                    self.last_response = message
                    if message.status >= 200:
                        self.final_status = message.status
                if self.last_response is not None:
                    out.append(TxSend(self, self.last_response))
            elif action is Act.RESEND_RESPONSE:
                if self.last_response is not None:
                    out.append(TxSend(self, self.last_response))
            elif action is Act.PASS_UP:
                if message is not None:
                    out.append(TxPassUp(self, message))
            elif action is Act.TIMEOUT:
                out.append(TxTimeout(self))
            elif action is Act.TRANSPORT_FAILED:
                out.append(TxTransportError(self))
        # Zero-length timers (reliable transports) fire at once, after the transition's
        # other actions, exactly as a timer of 0 s would.
        for timer in zero_timers:
            if not self.terminated and timer in self.timers:
                self._dispatch(timer.event, now, None, out, fired=timer)

    def _timer(self, action: TimerAction, now: float) -> bool:
        """Apply a timer operation; True if it armed a zero-length timer."""
        timer = action.timer
        if action.op is TimerOp.STOP:
            self.timers.pop(timer, None)
            return False
        if action.op is TimerOp.START:
            interval = initial_interval(timer, self.reliable, self.cfg)
        elif action.op is TimerOp.START_T2:
            interval = None if self.reliable else self.cfg.t2
        else:  # BACKOFF
            prev = self.timers.get(timer)
            if prev is None:
                return False
            interval = 2 * prev[1]
            if timer is not Timer.A:  # E and G are capped at T2; A doubles freely
                interval = min(interval, self.cfg.t2)
        if interval is None:
            self.timers.pop(timer, None)
            return False
        self.timers[timer] = (now + interval, interval)
        return interval == 0.0


# --- matching (§17.1.3, §17.2.3) and the layer ---------------------------------------------


def client_key(message: SipRequest | SipResponse) -> tuple[str, str]:
    """§17.1.3: the top Via's branch and the CSeq method."""
    branch = message.top_via.branch
    if branch is None:
        raise RemoteProtocolError(400, "Via without branch")
    return (branch, message.cseq.method)


def server_key(request: SipRequest) -> Hashable:
    """§17.2.3: branch, sent-by and method, with ACK folded onto INVITE. A branch without
    the magic cookie (an RFC 2543 client) falls back on the dialog and CSeq identifiers
    and the whole top Via; our To-tag-free key lets its ACK find the INVITE too."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return ("3261", branch, via.host.lower(), via.port, method)
    return (
        "2543",
        str(request.uri),
        request.from_.tag,
        request.call_id,
        request.cseq.seq,
        via.host.lower(),
        via.port,
        via.branch,
        method,
    )


class TransactionLayer:
    """All live transactions of a UA, their matching, and their timers."""

    def __init__(self, cfg: TimerConfig | None = None) -> None:
        self.cfg = cfg or TimerConfig()
        self._client: dict[Hashable, Transaction] = {}
        self._server: dict[Hashable, Transaction] = {}

    def __iter__(self) -> Iterator[Transaction]:
        yield from list(self._client.values())
        yield from list(self._server.values())

    def __len__(self) -> int:
        return len(self._client) + len(self._server)

    # client side

    def send_request(
        self, request: SipRequest, peer: Hashable, *, reliable: bool, now: float
    ) -> tuple[Transaction, list[TxOutput]]:
        """Start a client transaction (§17.1); ACK never has one (§17.1.1.3, §13.2.2.4)."""
        if request.method == "ACK":
            raise LocalProtocolError("ACK is sent without a client transaction")
        key = client_key(request)
        if key in self._client:
            raise LocalProtocolError(f"branch reused: {key}")
        kind = TxKind.INVITE_CLIENT if request.method == "INVITE" else TxKind.NON_INVITE_CLIENT
        tx = Transaction(kind, key, request, peer, reliable, self.cfg)
        self._client[key] = tx
        out = tx.start(now)
        self._reap(out)
        return tx, out

    def receive_response(self, response: SipResponse, now: float) -> list[TxOutput] | None:
        """Feed a response; None when it matches no client transaction (§18.1.2: the core
        sees it only if it is a 2xx to INVITE, which it may have to ACK again)."""
        tx = self._client.get(client_key(response))
        if tx is None:
            return None
        out = tx.handle(_response_event(response.status, client=True), now, response)
        self._reap(out)
        return out

    # server side

    def match_request(self, request: SipRequest) -> Transaction | None:
        tx = self._server.get(server_key(request))
        if tx is None:
            return None
        if request.method == "ACK" and tx.kind is not TxKind.INVITE_SERVER:
            return None
        return tx

    def receive_request(self, request: SipRequest, now: float) -> list[TxOutput] | None:
        """Feed a request; None when it matches no server transaction (a new request, or
        an ACK for a 2xx on a branch of its own)."""
        tx = self.match_request(request)
        if tx is None:
            return None
        event = TxEvent.RECV_ACK if request.method == "ACK" else TxEvent.RECV_REQUEST
        out = tx.handle(event, now, request)
        self._reap(out)
        return out

    def start_server(
        self, request: SipRequest, peer: Hashable, *, reliable: bool, now: float
    ) -> tuple[Transaction, list[TxOutput]]:
        if request.method == "ACK":
            raise LocalProtocolError("ACK creates no server transaction")
        key = server_key(request)
        if key in self._server:
            raise LocalProtocolError("server transaction exists")
        kind = TxKind.INVITE_SERVER if request.method == "INVITE" else TxKind.NON_INVITE_SERVER
        tx = Transaction(kind, key, request, peer, reliable, self.cfg)
        self._server[key] = tx
        trying = build_response(request, 100) if kind is TxKind.INVITE_SERVER else None
        out = tx.start(now, trying)
        self._reap(out)
        return tx, out

    def respond(self, tx: Transaction, response: SipResponse, now: float) -> list[TxOutput]:
        """The TU's response for ``tx`` (a late one after termination is dropped)."""
        if tx.is_client:
            raise LocalProtocolError("respond() on a client transaction")
        if tx.terminated:
            return []
        out = tx.handle(_response_event(response.status, client=False), now, response)
        self._reap(out)
        return out

    def find_invite_for_cancel(self, cancel: SipRequest) -> Transaction | None:
        """§9.2: the INVITE server transaction a CANCEL targets (same matching as §17.2.3
        with the method taken as INVITE)."""
        via = cancel.top_via
        branch = via.branch
        if branch is not None and branch.startswith(MAGIC_COOKIE):
            key: Hashable = ("3261", branch, via.host.lower(), via.port, "INVITE")
        else:
            key = (
                "2543",
                str(cancel.uri),
                cancel.from_.tag,
                cancel.call_id,
                cancel.cseq.seq,
                via.host.lower(),
                via.port,
                via.branch,
                "INVITE",
            )
        tx = self._server.get(key)
        return tx if tx is not None and tx.kind is TxKind.INVITE_SERVER else None

    def is_merged(self, request: SipRequest) -> bool:
        """§8.2.2.2: no To tag, and From tag, Call-ID and CSeq equal to those of an ongoing
        server transaction that the request does not match: it reached us twice (a
        forking proxy's two paths), answer 482."""
        if request.to.tag is not None:
            return False
        key = server_key(request)
        from_tag = request.from_.tag
        cseq = request.cseq
        for tx in self._server.values():
            if tx.key == key or tx.terminated:
                continue
            r = tx.request
            if r.call_id == request.call_id and r.from_.tag == from_tag and r.cseq == cseq:
                return True
        return False

    def transport_error(self, tx: Transaction, now: float) -> list[TxOutput]:
        out = tx.handle(TxEvent.TRANSPORT_ERROR, now)
        self._reap(out)
        return out

    # timers

    def next_deadline(self) -> float | None:
        deadlines = [d for tx in self for d in (tx.next_deadline(),) if d is not None]
        return min(deadlines, default=None)

    def fire(self, now: float) -> list[TxOutput]:
        out: list[TxOutput] = []
        for tx in self:
            d = tx.next_deadline()
            if d is not None and d <= now:
                out.extend(tx.fire(now))
        self._reap(out)
        return out

    def _reap(self, out: list[TxOutput]) -> None:
        for o in out:
            if isinstance(o, TxTerminated):
                table = self._client if o.transaction.is_client else self._server
                if table.get(o.transaction.key) is o.transaction:
                    del table[o.transaction.key]

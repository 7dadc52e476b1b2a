"""The UA core: calls, requests and transfers over the transaction layer (sans-I/O).

RFC 3261 §8 (requests and responses outside dialogs), §9 (CANCEL), §12 (dialogs), §13
(INVITE; 2xx retransmission and ACK, §13.3.1.4, §13.2.2.4), §14 (re-INVITE and 491
glare), §15 (BYE); RFC 3428 (MESSAGE), RFC 6086 (INFO), RFC 3515 (REFER with the implicit
subscription's NOTIFY message/sipfrag); RFC 7904 §8.2.1 (the caller forks to each of the
callee's registrations itself) and §8.2.3 (caller identity from the certificate).

No sockets, no clock. Feed it :meth:`UserAgentCore.receive` (a datagram or a message cut
from a stream, with the :class:`PeerInfo` it came from) and :meth:`UserAgentCore.fire`
at :meth:`UserAgentCore.next_deadline`; drive it with the call methods; collect
:meth:`UserAgentCore.take_outputs`: :class:`Transmit` (bytes for a peer) and the events
of :mod:`app.sip.events`. Offer/answer bodies go in and out as bytes: the asyncio layer
asks the session handler (which may be async) and passes the result back in.

Max-Forwards (§8.1.1.6, §16.3): every request we originate carries 70. A UA never
forwards, so nothing loops through us: a request that arrives (even with Max-Forwards 0)
is ours to answer as its target, and a REFER's new INVITE is a new request of ours, not
a forwarded one.

Requests inside a dialog go to the flow (peer) the dialog was made over: on an AppAttach
connection that is RFC 7904 §5.1's rule, and on plain UDP/TCP it is the symmetric path
RFC 3581/RFC 5626 flows use. Our responses go back on the flow the request came from
(with ``received``/``rport`` filled in, §18.2.1 and RFC 3581).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeAlias, cast

from app.sip.checks import (
    ALLOW_HEADER,
    CERTIFICATE_MISMATCH,
    Refusal,
    check_content,
    check_method,
    check_request_uri,
    check_require,
    identity_of,
)
from app.sip.dialog import Dialog, DialogId, DialogState
from app.sip.errors import LocalProtocolError, RemoteProtocolError
from app.sip.events import (
    CallAnswered,
    CallDirection,
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
from app.sip.headers import Event, Headers, NameAddr, SubscriptionState, Via, split_list
from app.sip.message import (
    REASON_PHRASES,
    SipRequest,
    SipResponse,
    build_response,
    error_response_for,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
)
from app.sip.transaction import (
    TimerConfig,
    Transaction,
    TransactionLayer,
    TxOutput,
    TxPassUp,
    TxSend,
    TxState,
    TxTerminated,
    TxTimeout,
    TxTransportError,
)
from app.sip.uri import SipUri, parse_uri

log = logging.getLogger(__name__)

SDP: Final = "application/sdp"
SIPFRAG: Final = "message/sipfrag;version=2.0"
NOT_THE_DIALOG_PEER: Final = "Not the certificate this dialog was made with"
REFER_EXPIRES: Final = 60  # the implicit subscription's lifetime we announce (RFC 3515 §2.4.4)


class PeerInfo(Protocol):
    """What the core needs to know about a transport flow (the asyncio layer's peer).

    ``transport`` is the Via token (UDP, TCP, TLS, DTLS); ``local_address`` fills our
    Via sent-by and default Contact; ``remote_address`` the ``received``/``rport`` of
    requests from it. ``verified_user``/``verified_node_id`` are the certificate the
    transport checked (None on plain transports). Peers are dictionary keys.
    """

    def __hash__(self) -> int: ...

    @property
    def transport(self) -> str: ...

    @property
    def reliable(self) -> bool: ...

    @property
    def local_address(self) -> tuple[str, int]: ...

    @property
    def remote_address(self) -> tuple[str, int] | None: ...

    @property
    def verified_user(self) -> str | None: ...

    @property
    def verified_node_id(self) -> bytes | None: ...


@dataclass(frozen=True)
class Target:
    """One destination of an outgoing request: the flow and the Request-URI."""

    peer: PeerInfo
    uri: SipUri


@dataclass(frozen=True)
class Transmit:
    """Bytes to send to ``peer`` (``message`` is what they encode, for logs and tests)."""

    peer: PeerInfo
    data: bytes
    message: SipRequest | SipResponse | None


CoreOutput: TypeAlias = Transmit | UaEvent


def default_glare_backoff(rng: random.Random) -> Callable[[bool], float]:
    """§14.1: after a 491 the Call-ID's owner waits 2.1-4 s, the other side 0-2 s, in
    units of 10 ms."""

    def backoff(owner: bool) -> float:
        return rng.randint(210, 400) / 100 if owner else rng.randint(0, 200) / 100

    return backoff


@dataclass(frozen=True)
class UaConfig:
    aor: SipUri  # our address of record: From of what we originate, e.g. sip:alice@example.org
    display_name: str | None = None
    timers: TimerConfig = field(default_factory=TimerConfig)
    auto_ringing: bool = True  # answer a new INVITE with 180 at once (the user is alerted)
    info_packages: frozenset[str] = frozenset()  # RFC 6086 Recv-Info; legacy INFO always taken
    max_glare_retries: int = 5
    #: Our Contact URI on a flow (None: sip:user@local-address, transport param off UDP).
    contact: Callable[[PeerInfo], str] | None = None
    #: Extra Request-URI user parts that name us (besides the AoR's user).
    local_users: tuple[str, ...] = ()


# --- internal state ---------------------------------------------------------------------


@dataclass(eq=False)
class _Branch:
    """One target of an outgoing INVITE (a fork, RFC 7904 §8.2.1)."""

    peer: PeerInfo
    request: SipRequest
    tx: Transaction | None = None
    provisional: bool = False  # a 1xx came: CANCEL may go (§9.1)
    cancel_wanted: bool = False
    cancel_sent: bool = False
    final: SipResponse | None = None
    transport_failed: bool = False

    @property
    def identity(self) -> RemoteIdentity:
        return _peer_identity(self.peer, self.request)


@dataclass(eq=False)
class _Pending2xx:
    """A 2xx we retransmit until its ACK (§13.3.1.4)."""

    tx: Transaction
    response: SipResponse
    cseq: int
    interval: float
    give_up_at: float
    offer_in_2xx: bool
    reinvite: bool


@dataclass(eq=False)
class _ReferOut:
    """A REFER we sent (transferor side) and its implicit subscription."""

    transfer: int
    event_id: str
    done: bool = False


@dataclass(eq=False)
class _ReferIn:
    """A REFER we accepted (transferee side): we NOTIFY its progress."""

    transfer: int
    event_id: str
    done: bool = False


@dataclass(eq=False)
class _Call:
    ref: int
    direction: CallDirection
    call_id: str
    local_tag: str
    identity: RemoteIdentity | None = None
    # outgoing
    branches: list[_Branch] = field(default_factory=list)
    invite_cseq: int = 1
    early: dict[str, tuple[Dialog, _Branch]] = field(default_factory=dict)
    late: dict[DialogId, SipRequest] = field(default_factory=dict)  # late 2xx: their ACKs
    cancelled: bool = False
    # incoming
    invite_tx: Transaction | None = None
    invite: SipRequest | None = None
    # both
    dialog: Dialog | None = None
    answered: bool = False  # UAS: our 2xx went out
    confirmed: bool = False  # 2xx ACKed (UAS) or received (UAC)
    ended: bool = False
    deferred_bye: bool = False
    pending_2xx: _Pending2xx | None = None
    acks: dict[int, SipRequest] = field(default_factory=dict)  # our ACKs for 2xx, by CSeq
    reinvite_tx: Transaction | None = None
    reinvite_offer: bytes | None = None
    glare_retries: int = 0
    incoming_reinvite: Transaction | None = None
    refers_out: dict[int, _ReferOut] = field(default_factory=dict)
    refers_in: dict[int, _ReferIn] = field(default_factory=dict)
    transfer_of: tuple[int, int] | None = None  # (call, transfer) this call carries out


def _peer_identity(peer: PeerInfo, request: SipRequest) -> RemoteIdentity:
    """The identity of the far end of an outgoing request: its certificate, else the
    To AoR we addressed (unverified)."""
    if peer.verified_user is not None:
        return RemoteIdentity(peer.verified_user, peer.verified_node_id, True)
    uri = request.to.uri
    user = f"{uri.user}@{uri.host}" if isinstance(uri, SipUri) and uri.user else str(uri)
    return RemoteIdentity(user, None, False)


def _peer(tx: Transaction) -> PeerInfo:
    return cast(PeerInfo, tx.peer)


def _dialog_peer(dialog: Dialog) -> PeerInfo:
    return cast(PeerInfo, dialog.peer)


def _host_port(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_sipfrag_status(body: bytes) -> tuple[int, str] | None:
    """The status line of a message/sipfrag body (RFC 3420, RFC 3515 §2.4.5)."""
    line = body.split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].upper().startswith("SIP/") or not parts[1].isdigit():
        return None
    status = int(parts[1])
    if not 100 <= status <= 699:
        return None
    return status, parts[2] if len(parts) > 2 else ""


class UserAgentCore:
    """One SIP user agent (UAC and UAS), sans-I/O."""

    def __init__(
        self,
        config: UaConfig,
        *,
        glare_backoff: Callable[[bool], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._rng = rng or random.Random()
        self._glare_backoff = glare_backoff or default_glare_backoff(self._rng)
        self._tx = TransactionLayer(config.timers)
        self._out: list[CoreOutput] = []
        self._next_ref = 1
        self._calls: dict[int, _Call] = {}
        self._dialogs: dict[DialogId, _Call] = {}
        self._client_owner: dict[Transaction, Callable[[SipResponse, float], None]] = {}
        self._server_owner: dict[Transaction, _Call] = {}
        self._timers: dict[Hashable, tuple[float, Callable[[float], None]]] = {}
        self._refused_logged: set[tuple[str, str]] = set()
        self._failed: set[Transaction] = set()  # client transactions the transport failed
        #: (method, Call-ID, CSeq) of each request the TU processed: a retransmission never
        #: gets here, so every count is 1 (the tests on lossy transports check it).
        self.tu_requests: Counter[tuple[str, str, int]] = Counter()

    # --- driving -------------------------------------------------------------------------

    def take_outputs(self) -> list[CoreOutput]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        deadlines = [d for d, _ in self._timers.values()]
        tx = self._tx.next_deadline()
        if tx is not None:
            deadlines.append(tx)
        return min(deadlines, default=None)

    def fire(self, now: float) -> None:
        """Run every transaction and core timer that is due at ``now``."""
        self._handle_tx(self._tx.fire(now), now)
        while True:
            due = [(d, k) for k, (d, _) in self._timers.items() if d <= now]
            if not due:
                break
            _, key = min(due, key=lambda x: x[0])
            _, fn = self._timers.pop(key)
            fn(now)

    def receive(self, data: bytes, peer: PeerInfo, now: float) -> None:
        """A datagram (or one message cut from a stream) from ``peer``."""
        try:
            message = parse_message(data)
        except RemoteProtocolError as exc:
            log.info("malformed message from %s: %s %s", peer, exc.status, exc.reason)
            answer = error_response_for(data, exc)
            if answer is not None:
                self._out.append(Transmit(peer, answer, None))
            return
        self.receive_message(message, peer, now)

    def receive_message(self, message: SipRequest | SipResponse, peer: PeerInfo, now: float) -> None:
        try:
            if isinstance(message, SipResponse):
                self._on_response(message, now)
            else:
                self._on_request(message, peer, now)
        except RemoteProtocolError as exc:
            # A header parsed on access was malformed before a transaction existed.
            log.info("dropped message from %s: %s", peer, exc.reason)

    def transport_error(self, peer: PeerInfo, now: float) -> None:
        """The transport cannot reach ``peer`` (connection refused or lost): its client
        transactions fail with 503 (§8.1.3.1), server ones end."""
        for tx in list(self._tx):
            if tx.peer == peer and not tx.terminated:
                self._handle_tx(self._tx.transport_error(tx, now), now)

    # --- transaction outputs -------------------------------------------------------------

    def _handle_tx(self, outputs: list[TxOutput], now: float) -> None:
        for o in outputs:
            tx = o.transaction
            if isinstance(o, TxSend):
                self._send(_peer(tx), o.message)
            elif isinstance(o, TxPassUp):
                if isinstance(o.message, SipResponse):
                    handler = self._client_owner.get(tx)
                    if handler is not None:
                        handler(o.message, now)
                elif o.message.method == "ACK":
                    self._on_ack(o.message, _peer(tx), now)
                else:
                    self._on_new_request(tx, o.message, now)
            elif isinstance(o, TxTimeout | TxTransportError):
                if tx.is_client:
                    status = 408 if isinstance(o, TxTimeout) else 503
                    if isinstance(o, TxTransportError):
                        self._failed.add(tx)
                    handler = self._client_owner.get(tx)
                    if handler is not None:
                        handler(build_response(tx.request, status), now)
            elif isinstance(o, TxTerminated):
                self._failed.discard(tx)
                self._client_owner.pop(tx, None)
                self._server_owner.pop(tx, None)

    def _send(self, peer: PeerInfo, message: SipRequest | SipResponse) -> None:
        self._out.append(Transmit(peer, message.encode(compact=True), message))

    def _emit(self, event: UaEvent) -> None:
        self._out.append(event)

    def _new_ref(self) -> int:
        ref = self._next_ref
        self._next_ref += 1
        return ref

    def _set_timer(self, key: Hashable, at: float, fn: Callable[[float], None]) -> None:
        self._timers[key] = (at, fn)

    def _cancel_timer(self, key: Hashable) -> None:
        self._timers.pop(key, None)

    # --- building requests -----------------------------------------------------------------

    def _sent_by(self, peer: PeerInfo) -> str:
        """Our host[:port] on ``peer``'s flow. A flow with no socket address of ours (an
        AppAttach connection over ICE, RFC 7904 §5.1: "SIP messages carry the SIP URIs of
        actual overlay endpoints ... in the Via and Contact") uses our AoR's host."""
        host, _ = peer.local_address
        return _host_port(peer.local_address) if host else self.config.aor.host

    def _via(self, peer: PeerInfo) -> str:
        return f"SIP/2.0/{peer.transport} {self._sent_by(peer)};branch={new_branch()};rport"

    def contact(self, peer: PeerInfo) -> str:
        """Our Contact on ``peer``'s flow, in <> (``UaConfig.contact`` overrides it)."""
        if self.config.contact is not None:
            return f"<{self.config.contact(peer)}>"
        user = self.config.aor.user
        kind = peer.transport.upper()
        scheme = "sips" if kind == "TLS" and self.config.aor.scheme == "sips" else "sip"
        # §19.1.1 knows transport=udp/tcp/tls/sctp; the flow of an AppAttach connection
        # (DTLS) is named by the connection itself, so no parameter for it.
        param = f";transport={kind.lower()}" if kind in ("TCP", "TLS", "SCTP") else ""
        userinfo = f"{user}@" if user else ""
        return f"<{scheme}:{userinfo}{self._sent_by(peer)}{param}>"

    def _from(self, tag: str) -> str:
        return str(NameAddr(self.config.display_name, self.config.aor).with_tag(tag))

    def _start_client(
        self, request: SipRequest, peer: PeerInfo, handler: Callable[[SipResponse, float], None], now: float
    ) -> Transaction:
        tx, out = self._tx.send_request(request, peer, reliable=peer.reliable, now=now)
        self._client_owner[tx] = handler
        self._handle_tx(out, now)
        return tx

    def _in_dialog(
        self,
        call: _Call,
        method: str,
        now: float,
        handler: Callable[[SipResponse, float], None],
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Transaction:
        dialog = call.dialog
        if dialog is None:
            raise LocalProtocolError(f"{method} without a dialog")
        peer = _dialog_peer(dialog)
        request = dialog.create_request(method, via=self._via(peer), headers=headers, body=body)
        return self._start_client(request, peer, handler, now)

    # --- responses to our requests ----------------------------------------------------------

    def _on_response(self, response: SipResponse, now: float) -> None:
        out = self._tx.receive_response(response, now)
        if out is None:
            # §18.1.2: a response matching no transaction is dropped; a 2xx retransmission
            # after Timer M is ACKed again if we still know the dialog.
            self._stray_2xx(response)
            return
        self._handle_tx(out, now)

    def _stray_2xx(self, response: SipResponse) -> None:
        if not (200 <= response.status < 300) or response.cseq.method != "INVITE":
            return
        tag = response.to.tag
        if tag is None or response.from_.tag is None:
            return
        did = DialogId(response.call_id, response.from_.tag, tag)
        call = self._dialogs.get(did)
        if call is None:
            return
        ack = call.acks.get(response.cseq.seq)
        if ack is not None and call.dialog is not None:
            self._send(_dialog_peer(call.dialog), ack)

    # --- requests to us ---------------------------------------------------------------------

    def _stamp_via(self, request: SipRequest, peer: PeerInfo) -> None:
        """§18.2.1: ``received`` when sent-by is not the source address; RFC 3581 §4:
        ``rport`` (and ``received``) when the client asked for it."""
        remote = peer.remote_address
        if remote is None:
            return
        lines = request.headers.values("Via")
        if not lines:
            return
        items = split_list(lines[0])
        top = Via.parse(items[0])
        ip, port = remote
        changed = top
        wants_rport = top.has_param("rport") and top.param("rport") is None
        if top.host.strip("[]").lower() != ip.lower() or wants_rport:
            changed = changed.with_param("received", ip)
        if wants_rport:
            changed = changed.with_param("rport", str(port))
        if changed is top:
            return
        first = ", ".join([str(changed), *items[1:]])
        request.headers.remove("Via")
        request.headers.prepend("Via", first)
        for line in lines[1:]:
            request.headers.add("Via", line)

    def _on_request(self, request: SipRequest, peer: PeerInfo, now: float) -> None:
        # Parse what matching needs now, so a malformed one is dropped before anything.
        _ = (request.top_via, request.cseq, request.call_id, request.from_, request.to)
        self._stamp_via(request, peer)
        out = self._tx.receive_request(request, now)
        if out is not None:
            self._handle_tx(out, now)
            return
        if request.method == "ACK":
            self._on_ack(request, peer, now)
            return
        _, out = self._tx.start_server(request, peer, reliable=peer.reliable, now=now)
        self._handle_tx(out, now)

    def _respond(
        self,
        tx: Transaction,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        to_tag: str | None = None,
    ) -> SipResponse:
        if to_tag is None and status > 100 and tx.request.to.tag is None:
            to_tag = new_tag()  # §8.2.6.2: a To tag on every response but 100
        response = build_response(tx.request, status, reason, to_tag=to_tag, headers=headers)
        response.body = body
        self._handle_tx(self._tx.respond(tx, response, now), now)
        return response

    def _refuse(self, tx: Transaction, refusal: Refusal, now: float) -> None:
        self._respond(tx, refusal.status, now, reason=refusal.reason, headers=refusal.headers)

    def _on_new_request(self, tx: Transaction, request: SipRequest, now: float) -> None:
        self.tu_requests[(request.method, request.call_id, request.cseq.seq)] += 1
        try:
            self._dispatch(tx, request, now)
        except RemoteProtocolError as exc:
            if tx.final_status is None and not tx.terminated:
                self._respond(tx, exc.status, now, reason=exc.reason)

    def _dispatch(self, tx: Transaction, request: SipRequest, now: float) -> None:
        peer = _peer(tx)
        refusal = check_method(request.method)
        if refusal is None:
            users = (self.config.aor.user or "", *self.config.local_users)
            refusal = check_request_uri(request, users) if request.to.tag is None else None
        if refusal is None:
            refusal = check_require(request)
        if refusal is not None:
            self._refuse(tx, refusal, now)
            return
        to_tag = request.to.tag
        if to_tag is not None and request.method != "CANCEL":
            # Inside a dialog the far end is the one the dialog was made with (checked
            # there by Node-ID): its From is the dialog's remote URI, which may be an AoR
            # that forwarded to it rather than its certificate's user.
            self._in_dialog_request(tx, request, peer, to_tag, now)
            return
        identity = identity_of(request, peer.verified_user, peer.verified_node_id)
        if identity is None:
            self._refuse_identity(tx, request, peer, now)
            return
        if request.method == "CANCEL":
            self._on_cancel(tx, request, now)
            return
        if self._tx.is_merged(request):
            self._respond(tx, 482, now)
            return
        refusal = check_content(request)
        if refusal is not None:
            self._refuse(tx, refusal, now)
            return
        if request.method == "INVITE":
            self._on_invite(tx, request, peer, identity, now)
        elif request.method == "MESSAGE":
            self._respond(tx, 200, now)
            self._emit(MessageReceived(identity, None, request.content_type or "text/plain", request.body))
        elif request.method == "OPTIONS":
            self._respond(tx, 200, now, headers=self._capabilities())
        elif request.method == "REFER":
            # RFC 3515 allows a REFER that makes its own dialog; we transfer calls only.
            self._respond(tx, 403, now, reason="REFER outside a call not accepted")
        else:
            # BYE, INFO, NOTIFY and the like need a dialog (§12.2.2, RFC 6086 §4.2.2).
            self._respond(tx, 481, now)

    def _refuse_identity(self, tx: Transaction, request: SipRequest, peer: PeerInfo, now: float) -> None:
        key = (peer.verified_user or "", str(request.from_.uri))
        if key not in self._refused_logged:
            if len(self._refused_logged) >= 1024:  # bounded: a peer may vary its From freely
                self._refused_logged.clear()
            self._refused_logged.add(key)
            log.warning(
                "refused %s from certificate user %s: From is %s (%s)",
                request.method,
                peer.verified_user,
                request.from_.uri,
                CERTIFICATE_MISMATCH,
            )
        self._respond(tx, 403, now, reason=CERTIFICATE_MISMATCH)

    def _capabilities(self) -> list[tuple[str, str]]:
        return [("Allow", ALLOW_HEADER), ("Accept", f"{SDP}, text/plain, message/sipfrag")]

    # --- CANCEL (§9.2) ------------------------------------------------------------------------

    def _on_cancel(self, tx: Transaction, request: SipRequest, now: float) -> None:
        invite_tx = self._tx.find_invite_for_cancel(request)
        if invite_tx is None:
            self._respond(tx, 481, now)
            return
        call = self._server_owner.get(invite_tx)
        self._respond(tx, 200, now, to_tag=call.local_tag if call else None)
        if invite_tx.final_status is not None or call is None:
            return  # already answered: the CANCEL has no effect (§9.2)
        self._respond(invite_tx, 487, now, to_tag=call.local_tag)
        if invite_tx is call.invite_tx:
            self._end(call, EndReason.REMOTE_CANCEL, 487, now)
        elif invite_tx is call.incoming_reinvite:
            call.incoming_reinvite = None

    # --- incoming INVITE (§13.3) ------------------------------------------------------------

    def _on_invite(
        self, tx: Transaction, request: SipRequest, peer: PeerInfo, identity: RemoteIdentity, now: float
    ) -> None:
        call = _Call(self._new_ref(), CallDirection.INCOMING, request.call_id, new_tag(), identity)
        call.invite_tx = tx
        call.invite = request
        call.dialog = Dialog.as_uas(request, call.local_tag, peer)
        self._calls[call.ref] = call
        self._dialogs[call.dialog.id] = call
        self._server_owner[tx] = call
        expires = request.expires
        if expires is not None:
            # §13.3.1: an INVITE with Expires not answered in time gets 487.
            self._set_timer(("expires", call.ref), now + expires, lambda t: self._invite_expired(call, t))
        self._emit(
            IncomingCall(
                call.ref,
                identity,
                str(request.uri),
                str(request.to.uri),
                request.body or None,
                request.headers.get("Subject"),
            )
        )
        if self.config.auto_ringing and not call.ended and tx.final_status is None:
            self.ring(call.ref, now)

    def _invite_expired(self, call: _Call, now: float) -> None:
        tx = call.invite_tx
        if tx is not None and tx.final_status is None and not call.ended:
            self._respond(tx, 487, now, to_tag=call.local_tag)
            self._end(call, EndReason.TIMEOUT, 487, now)

    def _dialog_response_headers(
        self, call: _Call, extra: Iterable[tuple[str, str]] = ()
    ) -> list[tuple[str, str]]:
        """§12.1.1: a dialog-creating response copies Record-Route and has a Contact."""
        assert call.invite is not None and call.dialog is not None
        headers = [("Record-Route", rr) for rr in call.invite.headers.get_all("Record-Route")]
        headers.append(("Contact", self.contact(_dialog_peer(call.dialog))))
        headers.extend(extra)
        return headers

    def _incoming(self, ref: int) -> _Call:
        call = self._call(ref)
        if call.direction is not CallDirection.INCOMING or call.invite_tx is None:
            raise LocalProtocolError("not an incoming call")
        return call

    def ring(self, ref: int, now: float, *, status: int = 180, sdp: bytes | None = None) -> None:
        """A provisional response on an incoming call: 180 Ringing, or 183 Session
        Progress with an early answer in ``sdp``."""
        call = self._incoming(ref)
        tx = call.invite_tx
        assert tx is not None
        if call.ended or tx.final_status is not None:
            return
        headers = self._dialog_response_headers(call, [("Content-Type", SDP)] if sdp else [])
        self._respond(tx, status, now, headers=headers, body=sdp or b"", to_tag=call.local_tag)

    def answer(self, ref: int, sdp: bytes, now: float) -> None:
        """Accept an incoming call with 200 OK carrying ``sdp``: the answer to the
        INVITE's offer, or our offer when the INVITE had none (then the ACK answers)."""
        call = self._incoming(ref)
        tx = call.invite_tx
        assert tx is not None and call.invite is not None and call.dialog is not None
        if call.ended or tx.final_status is not None:
            raise LocalProtocolError("call already answered or ended")
        self._cancel_timer(("expires", call.ref))
        headers = self._dialog_response_headers(call, [("Allow", ALLOW_HEADER), ("Content-Type", SDP)])
        response = self._respond(tx, 200, now, headers=headers, body=sdp, to_tag=call.local_tag)
        call.answered = True
        call.dialog.state = DialogState.CONFIRMED
        self._start_2xx_retransmit(
            call, tx, response, offer_in_2xx=not call.invite.body, reinvite=False, now=now
        )

    def reject(
        self,
        ref: int,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Refuse an incoming call with a final 3xx-6xx (e.g. 486, 603, 302 with Contact)."""
        if not 300 <= status <= 699:
            raise LocalProtocolError("reject() takes a 3xx-6xx status")
        call = self._incoming(ref)
        tx = call.invite_tx
        assert tx is not None
        if call.ended or tx.final_status is not None:
            return
        self._cancel_timer(("expires", call.ref))
        self._respond(tx, status, now, reason=reason, headers=headers, to_tag=call.local_tag)
        self._end(call, EndReason.REJECTED, status, now, phrase=reason or REASON_PHRASES.get(status))

    # --- 2xx retransmission and ACK (§13.3.1.4) -----------------------------------------------

    def _start_2xx_retransmit(
        self,
        call: _Call,
        tx: Transaction,
        response: SipResponse,
        *,
        offer_in_2xx: bool,
        reinvite: bool,
        now: float,
    ) -> None:
        t = self.config.timers
        call.pending_2xx = _Pending2xx(
            tx, response, response.cseq.seq, t.t1, now + t.timeout, offer_in_2xx, reinvite
        )
        self._set_timer(("2xx", call.ref), now + t.t1, lambda n: self._retransmit_2xx(call, n))

    def _retransmit_2xx(self, call: _Call, now: float) -> None:
        p = call.pending_2xx
        if p is None or call.dialog is None:
            return
        if now >= p.give_up_at:
            # §13.3.1.4: no ACK in 64*T1: the dialog is confirmed, the session ends (BYE).
            call.pending_2xx = None
            call.confirmed = True
            if not call.ended:
                self._send_bye(call, now)
                self._end(call, EndReason.NO_ACK, None, now)
            return
        if p.tx.state is TxState.ACCEPTED:
            self._handle_tx(self._tx.respond(p.tx, p.response, now), now)
        else:
            self._send(_dialog_peer(call.dialog), p.response)
        p.interval = min(2 * p.interval, self.config.timers.t2)
        self._set_timer(
            ("2xx", call.ref), min(now + p.interval, p.give_up_at), lambda n: self._retransmit_2xx(call, n)
        )

    def _on_ack(self, request: SipRequest, peer: PeerInfo, now: float) -> None:
        """An ACK for a 2xx (an ACK for a non-2xx is absorbed by its transaction)."""
        from_tag, to_tag = request.from_.tag, request.to.tag
        if from_tag is None or to_tag is None:
            return
        call = self._dialogs.get(DialogId(request.call_id, to_tag, from_tag))
        if call is None:
            return
        p = call.pending_2xx
        if p is None or p.cseq != request.cseq.seq:
            return  # a retransmitted ACK, or an ACK for a 2xx we gave up on
        assert call.identity is not None
        if call.identity.verified and peer.verified_node_id != call.identity.node_id:
            return  # not from the certificate the dialog was made with (RFC 7904 §8.2.3)
        self.tu_requests[("ACK", request.call_id, request.cseq.seq)] += 1
        call.pending_2xx = None
        self._cancel_timer(("2xx", call.ref))
        answer = (request.body or None) if p.offer_in_2xx else None
        if p.reinvite:
            if answer is not None:
                self._emit(ReInviteCompleted(call.ref, 200, answer))
        elif not call.confirmed:
            call.confirmed = True
            if not call.ended:
                self._emit(CallAnswered(call.ref, False, answer, call.identity))
        if call.deferred_bye and not call.ended:
            self._send_bye(call, now)
            self._end(call, EndReason.LOCAL_HANGUP, None, now)

    # --- outgoing INVITE (§13.2), forking (§13.2.2.4, RFC 7904 §8.2.1) ---------------------

    def invite(
        self,
        targets: Sequence[Target],
        offer: bytes,
        now: float,
        *,
        to: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        transfer: tuple[int, int] | None = None,
    ) -> int:
        """Call: one INVITE with ``offer`` to each target (forking); returns the call.

        All branches share Call-ID, From tag and CSeq, as a proxy's forks do (§16.6), so
        the answers are early/confirmed dialogs of one call. The first 2xx wins; the other
        branches are CANCELed, and a late 2xx is ACKed and then BYEd (§13.2.2.4).
        ``to`` is the dialled AoR (default: the first target's URI). ``transfer`` ties the
        call to a REFER we accepted: its outcome is NOTIFYed (RFC 3515 §2.4.5).
        """
        if not targets:
            raise LocalProtocolError("a call needs at least one target")
        call = _Call(self._new_ref(), CallDirection.OUTGOING, new_call_id(self.config.aor.host), new_tag())
        call.transfer_of = transfer
        self._calls[call.ref] = call
        to_value = str(NameAddr(None, parse_uri(to))) if to else str(NameAddr(None, targets[0].uri))
        extra = list(headers)
        for target in targets:
            h = Headers()
            h.add("Via", self._via(target.peer))
            h.add("Max-Forwards", "70")
            h.add("From", self._from(call.local_tag))
            h.add("To", to_value)
            h.add("Call-ID", call.call_id)
            h.add("CSeq", f"{call.invite_cseq} INVITE")
            h.add("Contact", self.contact(target.peer))
            h.add("Allow", ALLOW_HEADER)
            for name, value in extra:
                h.add(name, value)
            h.add("Content-Type", SDP)
            branch = _Branch(target.peer, SipRequest("INVITE", target.uri, h, offer))
            call.branches.append(branch)
        for branch in call.branches:
            branch.tx = self._start_client(
                branch.request, branch.peer, self._branch_handler(call, branch), now
            )
        return call.ref

    def _branch_handler(self, call: _Call, branch: _Branch) -> Callable[[SipResponse, float], None]:
        def handler(response: SipResponse, now: float) -> None:
            self._on_branch_response(call, branch, response, now)

        return handler

    def _on_branch_response(self, call: _Call, branch: _Branch, response: SipResponse, now: float) -> None:
        status = response.status
        if status < 200:
            branch.provisional = True
            if branch.cancel_wanted and not branch.cancel_sent:
                self._send_cancel(call, branch, now)
            if status == 100 or call.dialog is not None or call.ended or call.cancelled:
                return
            tag = response.to.tag
            if tag is not None:
                entry = call.early.get(tag)
                if entry is None:
                    dialog = Dialog.as_uac(branch.request, response, branch.peer)
                    call.early[tag] = (dialog, branch)
                    self._dialogs[dialog.id] = call
                else:
                    entry[0].refresh_from_response(response)
            self._emit(CallRinging(call.ref, status, response.reason, branch.identity))
            if response.body and response.content_type == SDP:
                self._emit(CallAnswered(call.ref, True, response.body, branch.identity))
            self._notify_transfer(call, status, response.reason, final=False, now=now)
            return
        if status < 300:
            self._on_branch_2xx(call, branch, response, now)
            return
        if branch.final is None:
            branch.final = response
            branch.transport_failed = branch.tx is not None and branch.tx in self._failed
        for tag, (dialog, b) in list(call.early.items()):
            if b is branch:  # a final non-2xx ends the branch's early dialogs (§12.3)
                del call.early[tag]
                self._dialogs.pop(dialog.id, None)
        if status >= 600 and call.dialog is None:
            # 6xx: nobody anywhere will take it (§21.6, §16.7 step 5): stop the other forks.
            for other in call.branches:
                self._cancel_branch(call, other, now)
        self._check_call_failed(call, now)

    def _on_branch_2xx(self, call: _Call, branch: _Branch, response: SipResponse, now: float) -> None:
        tag = response.to.tag
        if tag is None:
            log.info("2xx to INVITE without To tag dropped")
            return
        did = DialogId(call.call_id, call.local_tag, tag)
        if call.dialog is not None and call.dialog.id == did:
            ack = call.acks.get(call.invite_cseq)
            if ack is not None:
                self._send(branch.peer, ack)  # the 2xx was retransmitted: ACK again
            return
        late_ack = call.late.get(did)
        if late_ack is not None:
            self._send(branch.peer, late_ack)
            return
        if branch.final is None:
            branch.final = response
        entry = call.early.pop(tag, None)
        if entry is not None and entry[1] is branch:
            dialog = entry[0]
            dialog.refresh_from_response(response)
        else:
            dialog = Dialog.as_uac(branch.request, response, branch.peer)
        if call.dialog is None and not call.cancelled and not call.ended:
            call.dialog = dialog
            call.confirmed = True
            self._dialogs[dialog.id] = call
            call.identity = branch.identity
            ack = self._ack_2xx(dialog, call.invite_cseq)
            call.acks[call.invite_cseq] = ack
            self._send(branch.peer, ack)
            # The other forks lose: their early dialogs end, their INVITEs are CANCELed.
            for _, (d, _) in list(call.early.items()):
                self._dialogs.pop(d.id, None)
            call.early.clear()
            for other in call.branches:
                if other is not branch:
                    self._cancel_branch(call, other, now)
            self._emit(CallAnswered(call.ref, False, response.body or None, branch.identity))
            self._notify_transfer(call, status=response.status, reason=response.reason, final=True, now=now)
            return
        # A late 2xx (another fork, or after we cancelled): ACK it, then BYE (§13.2.2.4).
        self._dialogs.pop(dialog.id, None)
        ack = self._ack_2xx(dialog, call.invite_cseq)
        call.late[did] = ack
        self._send(branch.peer, ack)
        bye = dialog.create_request("BYE", via=self._via(branch.peer))
        self._start_client(bye, branch.peer, lambda r, n: None, now)
        self._check_call_failed(call, now)

    def _ack_2xx(self, dialog: Dialog, cseq: int) -> SipRequest:
        """§13.2.2.4: the ACK for a 2xx is built by the UA core, in the dialog, with the
        INVITE's CSeq number and a branch of its own."""
        return dialog.create_request("ACK", via=self._via(_dialog_peer(dialog)), cseq=cseq)

    def _cancel_branch(self, call: _Call, branch: _Branch, now: float) -> None:
        if branch.final is not None or branch.cancel_wanted:
            return
        branch.cancel_wanted = True
        if branch.provisional:
            self._send_cancel(call, branch, now)
        # §9.1: without a final answer in 64*T1 the INVITE counts as cancelled.
        self._set_timer(
            ("cancel", call.ref, id(branch)),
            now + self.config.timers.timeout,
            lambda n: self._cancel_expired(call, branch, n),
        )

    def _cancel_expired(self, call: _Call, branch: _Branch, now: float) -> None:
        if branch.final is None:
            branch.final = build_response(branch.request, 487)
            self._check_call_failed(call, now)

    def _send_cancel(self, call: _Call, branch: _Branch, now: float) -> None:
        """§9.1: the INVITE's Request-URI, Call-ID, From, To, CSeq number and top Via
        (its branch), Route copied; a non-INVITE client transaction of its own."""
        branch.cancel_sent = True
        inv = branch.request
        h = Headers()
        h.add("Via", inv.headers.get_all("Via")[0])
        h.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            value = inv.headers.get(name)
            assert value is not None
            h.add(name, value)
        h.add("CSeq", f"{inv.cseq.seq} CANCEL")
        for route in inv.headers.get_all("Route"):
            h.add("Route", route)
        self._start_client(SipRequest("CANCEL", inv.uri, h), branch.peer, lambda r, n: None, now)

    def _check_call_failed(self, call: _Call, now: float) -> None:
        """When every branch has its final answer and none won, the call is over; the
        status shown is the best one (§16.7 step 6: a 6xx, else the lowest class)."""
        if call.dialog is not None or call.ended or any(b.final is None for b in call.branches):
            return
        finals = [b.final for b in call.branches if b.final is not None and b.final.status >= 300]
        if not finals:
            self._end(call, EndReason.LOCAL_CANCEL, None, now)
            return
        six = [r for r in finals if r.status >= 600]
        best = six[0] if six else min(finals, key=lambda r: r.status // 100)
        contacts: tuple[str, ...] = ()
        if call.cancelled:
            reason = EndReason.LOCAL_CANCEL
        elif 300 <= best.status < 400:
            reason = EndReason.REDIRECTED
            contacts = tuple(str(c.uri) for r in finals if r.status < 400 for c in r.contacts)
        elif best.status == 408:
            reason = EndReason.TIMEOUT
        elif best.status == 503 and all(b.transport_failed for b in call.branches):
            reason = EndReason.TRANSPORT_ERROR
        else:
            reason = EndReason.REJECTED
        self._end(call, reason, best.status, now, phrase=best.reason, contacts=contacts)

    def cancel(self, ref: int, now: float) -> None:
        """CANCEL an outgoing call that has no answer yet (§9.1); CallEnded follows once
        the branches have answered 487 (or 64*T1 later)."""
        call = self._call(ref)
        if call.direction is not CallDirection.OUTGOING or call.dialog is not None or call.ended:
            return
        call.cancelled = True
        for branch in call.branches:
            self._cancel_branch(call, branch, now)
        self._check_call_failed(call, now)

    # --- BYE (§15) ------------------------------------------------------------------------

    def hangup(self, ref: int, now: float) -> None:
        """End a call whatever its state: CANCEL (outgoing, unanswered), 603 (incoming,
        unanswered), BYE (answered; the callee waits for the ACK first, §15)."""
        call = self._call(ref)
        if call.ended:
            return
        if call.direction is CallDirection.OUTGOING:
            if call.dialog is None:
                self.cancel(ref, now)
            else:
                self._send_bye(call, now)
                self._end(call, EndReason.LOCAL_HANGUP, None, now)
            return
        tx = call.invite_tx
        if tx is not None and tx.final_status is None:
            self.reject(ref, 603, now)
        elif call.pending_2xx is not None and not call.pending_2xx.reinvite:
            call.deferred_bye = True
        else:
            self._send_bye(call, now)
            self._end(call, EndReason.LOCAL_HANGUP, None, now)

    def _send_bye(self, call: _Call, now: float) -> None:
        if call.dialog is None:
            return
        self._in_dialog(call, "BYE", now, lambda r, n: None)

    def _end(
        self,
        call: _Call,
        reason: EndReason,
        status: int | None,
        now: float,
        *,
        phrase: str | None = None,
        contacts: tuple[str, ...] = (),
    ) -> None:
        if call.ended:
            return
        call.ended = True
        self._cancel_timer(("expires", call.ref))
        self._cancel_timer(("glare", call.ref))
        self._cancel_timer(("2xx", call.ref))
        call.pending_2xx = None
        if call.dialog is not None:
            self._dialogs.pop(call.dialog.id, None)
        for dialog, _ in call.early.values():
            self._dialogs.pop(dialog.id, None)
        if call.incoming_reinvite is not None and call.incoming_reinvite.final_status is None:
            self._respond(call.incoming_reinvite, 487, now)
        if (
            call.transfer_of is not None
            and reason is not EndReason.LOCAL_HANGUP
            and reason is not EndReason.REMOTE_HANGUP
        ):
            self._notify_transfer(
                call, status or 487, phrase or REASON_PHRASES.get(status or 487, ""), final=True, now=now
            )
        self._emit(CallEnded(call.ref, reason, status, phrase, contacts))

    # --- requests inside a dialog (§12.2.2) ---------------------------------------------------

    def _in_dialog_request(
        self, tx: Transaction, request: SipRequest, peer: PeerInfo, to_tag: str, now: float
    ) -> None:
        from_tag = request.from_.tag
        call = self._dialogs.get(DialogId(request.call_id, to_tag, from_tag or ""))
        if call is None or call.dialog is None or call.dialog.remote_tag != from_tag:
            self._respond(tx, 481, now)
            return
        dialog = call.dialog
        identity = call.identity
        if identity is not None and identity.verified and peer.verified_node_id != identity.node_id:
            # The dialog belongs to the certificate it was made with (RFC 7904 §8.2.3).
            log.warning("refused %s in a dialog with %s from another node", request.method, identity.user)
            self._respond(tx, 403, now, reason=NOT_THE_DIALOG_PEER)
            return
        if not dialog.accept_remote_seq(request):
            self._respond(tx, 500, now, reason="CSeq out of order")
            return
        refusal = check_content(request)
        if refusal is not None:
            self._refuse(tx, refusal, now)
            return
        method = request.method
        if method == "BYE":
            self._respond(tx, 200, now)
            if call.invite_tx is not None and call.invite_tx.final_status is None:
                self._respond(call.invite_tx, 487, now)
            self._end(call, EndReason.REMOTE_HANGUP, None, now)
        elif method == "INVITE":
            self._on_reinvite(call, tx, request, now)
        elif method == "INFO":
            self._on_info(call, tx, request, now)
        elif method == "MESSAGE":
            self._respond(tx, 200, now)
            assert identity is not None
            self._emit(
                MessageReceived(identity, call.ref, request.content_type or "text/plain", request.body)
            )
        elif method == "OPTIONS":
            self._respond(tx, 200, now, headers=self._capabilities())
        elif method == "REFER":
            self._on_refer(call, tx, request, now)
        elif method == "NOTIFY":
            self._on_notify(call, tx, request, now)
        else:
            self._respond(tx, 405, now, headers=[("Allow", ALLOW_HEADER)])

    def _call(self, ref: int) -> _Call:
        call = self._calls.get(ref)
        if call is None:
            raise LocalProtocolError(f"no call {ref}")
        return call

    def _confirmed(self, ref: int) -> _Call:
        call = self._call(ref)
        if call.ended or call.dialog is None or not (call.confirmed or call.answered):
            raise LocalProtocolError("the call is not established")
        return call

    # --- re-INVITE (§14) ------------------------------------------------------------------

    def _invite_in_progress(self, call: _Call) -> bool:
        """§14.1: an INVITE transaction in either direction on this dialog."""
        ours = call.reinvite_tx is not None
        theirs = call.incoming_reinvite is not None
        waiting_ack = call.pending_2xx is not None
        return ours or theirs or waiting_ack

    def reinvite(self, ref: int, offer: bytes, now: float) -> None:
        """Send a re-INVITE with a new offer (§14.1); ReInviteCompleted reports it. A 491
        (glare) is retried after the §14.1 back-off, up to ``max_glare_retries`` times."""
        call = self._confirmed(ref)
        if self._invite_in_progress(call) or ("glare", call.ref) in self._timers:
            raise LocalProtocolError("an INVITE transaction is in progress on this dialog")
        call.glare_retries = 0
        self._send_reinvite(call, offer, now)

    def _send_reinvite(self, call: _Call, offer: bytes, now: float) -> None:
        assert call.dialog is not None
        call.reinvite_offer = offer
        headers = [
            ("Contact", self.contact(_dialog_peer(call.dialog))),
            ("Allow", ALLOW_HEADER),
            ("Content-Type", SDP),
        ]

        def handler(response: SipResponse, n: float) -> None:
            self._on_reinvite_response(call, response, n)

        call.reinvite_tx = self._in_dialog(call, "INVITE", now, handler, headers=headers, body=offer)

    def _on_reinvite_response(self, call: _Call, response: SipResponse, now: float) -> None:
        status = response.status
        if status < 200:
            return
        dialog = call.dialog
        if 200 <= status < 300:
            if dialog is None:
                return
            seq = response.cseq.seq
            ack = call.acks.get(seq)
            if ack is None:
                ack = self._ack_2xx(dialog, seq)
                call.acks[seq] = ack
                dialog.refresh_target(response)
                call.reinvite_tx = None
                self._emit(ReInviteCompleted(call.ref, status, response.body or None))
            self._send(_dialog_peer(dialog), ack)
            return
        call.reinvite_tx = None
        if call.ended:
            return
        if status == 491 and call.glare_retries < self.config.max_glare_retries and dialog is not None:
            call.glare_retries += 1
            delay = self._glare_backoff(dialog.caller)
            self._set_timer(("glare", call.ref), now + delay, lambda n: self._glare_retry(call, n))
            return
        self._emit(ReInviteCompleted(call.ref, status, None))
        if status in (481, 408):
            # §12.2.1.2/§14.1: the dialog is gone (481) or the peer silent (408).
            if status == 408:
                self._send_bye(call, now)
            self._end(call, EndReason.DIALOG_GONE, status, now, phrase=response.reason)

    def _glare_retry(self, call: _Call, now: float) -> None:
        if call.ended or call.reinvite_offer is None:
            return
        if self._invite_in_progress(call):
            # The other side's re-INVITE is still running: try again after it.
            assert call.dialog is not None
            delay = self._glare_backoff(call.dialog.caller)
            self._set_timer(("glare", call.ref), now + delay, lambda n: self._glare_retry(call, n))
            return
        self._send_reinvite(call, call.reinvite_offer, now)

    def _on_reinvite(self, call: _Call, tx: Transaction, request: SipRequest, now: float) -> None:
        assert call.dialog is not None
        if call.reinvite_tx is not None:
            self._respond(tx, 491, now)  # §14.2: our own re-INVITE is pending (glare)
            return
        if call.incoming_reinvite is not None or (
            call.invite_tx is not None and call.invite_tx.final_status is None
        ):
            # §14.2: a second INVITE before we answered the first: 500 with Retry-After.
            self._respond(tx, 500, now, headers=[("Retry-After", str(self._rng.randint(0, 10)))])
            return
        if call.pending_2xx is not None and call.pending_2xx.offer_in_2xx:
            self._respond(tx, 491, now)  # our offer in the 2xx awaits its answer in the ACK
            return
        if call.pending_2xx is not None:
            # The ACK for our 2xx is overtaken by the re-INVITE (it must have been lost or
            # reordered): the re-INVITE confirms the dialog just the same.
            self._cancel_timer(("2xx", call.ref))
            call.pending_2xx = None
            if not call.confirmed:
                call.confirmed = True
                assert call.identity is not None
                self._emit(CallAnswered(call.ref, False, None, call.identity))
        call.dialog.refresh_target(request)
        call.incoming_reinvite = tx
        self._server_owner[tx] = call
        self._emit(ReInviteReceived(call.ref, request.body or None))

    def accept_reinvite(self, ref: int, sdp: bytes, now: float) -> None:
        """200 to the pending re-INVITE with ``sdp`` (the answer, or our offer)."""
        call = self._call(ref)
        tx = call.incoming_reinvite
        if tx is None or call.dialog is None or call.ended:
            raise LocalProtocolError("no re-INVITE pending")
        call.incoming_reinvite = None
        headers = [
            ("Contact", self.contact(_dialog_peer(call.dialog))),
            ("Allow", ALLOW_HEADER),
            ("Content-Type", SDP),
        ]
        response = self._respond(tx, 200, now, headers=headers, body=sdp, to_tag=call.local_tag)
        self._start_2xx_retransmit(
            call, tx, response, offer_in_2xx=not tx.request.body, reinvite=True, now=now
        )

    def reject_reinvite(
        self,
        ref: int,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Refuse the pending re-INVITE (e.g. 488 with a Warning); the session stays as it
        was (§14.2)."""
        call = self._call(ref)
        tx = call.incoming_reinvite
        if tx is None:
            raise LocalProtocolError("no re-INVITE pending")
        call.incoming_reinvite = None
        self._respond(tx, status, now, reason=reason, headers=headers)

    # --- INFO (RFC 6086), MESSAGE (RFC 3428), OPTIONS and other requests ----------------------

    def _on_info(self, call: _Call, tx: Transaction, request: SipRequest, now: float) -> None:
        package = request.headers.get("Info-Package")
        if package is not None:
            name = package.split(";", 1)[0].strip()
            if name.lower() not in {p.lower() for p in self.config.info_packages}:
                # RFC 6086 §4.2.2: 469 with the packages we take.
                recv = ", ".join(sorted(self.config.info_packages))
                self._respond(
                    tx, 469, now, reason="Bad Info Package", headers=[("Recv-Info", recv)] if recv else []
                )
                return
            package = name
        self._respond(tx, 200, now)
        self._emit(InfoReceived(call.ref, request.content_type, request.body, package))

    def _done_handler(self, ref: int, call: _Call | None) -> Callable[[SipResponse, float], None]:
        def handler(response: SipResponse, now: float) -> None:
            if response.status < 200:
                return
            self._emit(RequestDone(ref, response.status, response.reason, response))
            if call is not None and response.status in (481, 408) and not call.ended:
                self._end(call, EndReason.DIALOG_GONE, response.status, now, phrase=response.reason)

        return handler

    def request(
        self,
        method: str,
        target: Target,
        now: float,
        *,
        to: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> int:
        """A request outside any dialog (MESSAGE, OPTIONS; §8.1.1): RequestDone reports
        its final response."""
        if method in ("INVITE", "ACK", "CANCEL", "BYE"):
            raise LocalProtocolError(f"{method} has its own API")
        ref = self._new_ref()
        h = Headers()
        h.add("Via", self._via(target.peer))
        h.add("Max-Forwards", "70")
        h.add("From", self._from(new_tag()))
        h.add("To", str(NameAddr(None, parse_uri(to) if to else target.uri)))
        h.add("Call-ID", new_call_id(self.config.aor.host))
        h.add("CSeq", f"1 {method}")
        for name, value in headers:
            h.add(name, value)
        if body or content_type:
            h.add("Content-Type", content_type or "text/plain")
        request = SipRequest(method, target.uri, h, body)
        self._start_client(request, target.peer, self._done_handler(ref, None), now)
        return ref

    def send_in_dialog(
        self,
        ref: int,
        method: str,
        now: float,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> int:
        """INFO or MESSAGE in a call's dialog; RequestDone reports the final response
        (a 481 or 408 also ends the call, §12.2.1.2)."""
        if method in ("INVITE", "ACK", "CANCEL", "BYE", "REFER", "NOTIFY"):
            raise LocalProtocolError(f"{method} has its own API")
        call = self._confirmed(ref)
        request_ref = self._new_ref()
        h = list(headers)
        if body or content_type:
            h.append(("Content-Type", content_type or "text/plain"))
        self._in_dialog(call, method, now, self._done_handler(request_ref, call), headers=h, body=body)
        return request_ref

    # --- REFER and its NOTIFYs (RFC 3515) ---------------------------------------------------

    def refer(self, ref: int, refer_to: str, now: float) -> int:
        """Blind transfer: REFER the far end of the call to ``refer_to`` (RFC 3515 §2.4.1);
        TransferProgress reports the 202 and each NOTIFY. Returns the transfer's number."""
        call = self._confirmed(ref)
        assert call.dialog is not None
        target = NameAddr(None, parse_uri(refer_to))
        transfer = self._new_ref()
        headers = [
            ("Refer-To", str(target)),
            ("Referred-By", str(NameAddr(None, self.config.aor))),
            ("Contact", self.contact(_dialog_peer(call.dialog))),
        ]
        out = _ReferOut(transfer, "")

        def handler(response: SipResponse, n: float) -> None:
            if response.status < 200 or out.done:
                return
            ok = response.status < 300
            if not ok:
                out.done = True
            self._emit(TransferProgress(call.ref, transfer, response.status, response.reason, not ok))
            if response.status in (481, 408) and not call.ended:
                self._end(call, EndReason.DIALOG_GONE, response.status, n, phrase=response.reason)

        tx = self._in_dialog(call, "REFER", now, handler, headers=headers)
        out.event_id = str(tx.request.cseq.seq)
        call.refers_out[transfer] = out
        return transfer

    def _on_notify(self, call: _Call, tx: Transaction, request: SipRequest, now: float) -> None:
        value = request.headers.get("Event")
        if value is None:
            self._respond(tx, 489, now, reason="Event header missing")
            return
        event = Event.parse(value)
        if event.package.lower() != "refer":
            self._respond(tx, 489, now)
            return
        subs = [s for s in call.refers_out.values() if event.id is None or s.event_id == event.id]
        if not subs:
            self._respond(tx, 481, now, reason="Subscription does not exist")
            return
        sub = subs[0]
        state_value = request.headers.get("Subscription-State")
        state = SubscriptionState.parse(state_value) if state_value is not None else None
        frag = parse_sipfrag_status(request.body)
        self._respond(tx, 200, now)
        if frag is None:
            return
        status, reason = frag
        terminated = state is not None and state.state.lower() == "terminated"
        final = terminated or status >= 200
        if sub.done:
            return
        sub.done = final
        self._emit(TransferProgress(call.ref, sub.transfer, status, reason, final))

    def _on_refer(self, call: _Call, tx: Transaction, request: SipRequest, now: float) -> None:
        values = request.headers.get_all("Refer-To")
        if len(values) != 1:
            self._respond(tx, 400, now, reason="REFER needs exactly one Refer-To")
            return
        target = NameAddr.parse(values[0], "Refer-To")
        assert call.dialog is not None
        self._respond(tx, 202, now, headers=[("Contact", self.contact(_dialog_peer(call.dialog)))])
        transfer = self._new_ref()
        sub = _ReferIn(transfer, str(request.cseq.seq))
        call.refers_in[transfer] = sub
        self._send_notify(call, sub, 100, "Trying", now)
        referred_by = request.headers.get("Referred-By")
        self._emit(TransferRequested(call.ref, transfer, str(target.uri), referred_by))

    def _send_notify(self, call: _Call, sub: _ReferIn, status: int, reason: str, now: float) -> None:
        """RFC 3515 §2.4.5: a NOTIFY with the status line of the new call's latest
        response; terminated with the final one (RFC 6665 §4.2.2)."""
        if call.ended or call.dialog is None or sub.done:
            return
        final = status >= 200
        sub.done = final
        state = "terminated;reason=noresource" if final else f"active;expires={REFER_EXPIRES}"
        headers = [
            ("Event", f"refer;id={sub.event_id}"),
            ("Subscription-State", state),
            ("Content-Type", SIPFRAG),
        ]
        body = f"SIP/2.0 {status} {reason}\r\n".encode()
        self._in_dialog(call, "NOTIFY", now, lambda r, n: None, headers=headers, body=body)

    def _notify_transfer(self, call: _Call, status: int, reason: str, *, final: bool, now: float) -> None:
        if call.transfer_of is None:
            return
        ref, transfer = call.transfer_of
        referrer = self._calls.get(ref)
        if referrer is None:
            return
        sub = referrer.refers_in.get(transfer)
        if sub is None or sub.done:
            return
        if final or status >= 200:
            self._send_notify(referrer, sub, status, reason, now)

    def fail_transfer(
        self, ref: int, transfer: int, status: int, now: float, reason: str | None = None
    ) -> None:
        """Refuse or give up a transfer we accepted: the final NOTIFY says ``status``."""
        call = self._call(ref)
        sub = call.refers_in.get(transfer)
        if sub is None:
            raise LocalProtocolError("no such transfer")
        self._send_notify(call, sub, status, reason or REASON_PHRASES.get(status, ""), now)

    # --- introspection -------------------------------------------------------------------------

    def call_state(self, ref: int) -> tuple[CallDirection, bool, bool]:
        """(direction, established, ended) of a call."""
        call = self._call(ref)
        return call.direction, call.dialog is not None and (call.confirmed or call.answered), call.ended

    def call_dialog(self, ref: int) -> Dialog | None:
        return self._call(ref).dialog

    def forget(self, ref: int) -> None:
        """Drop an ended call's state (its transactions run on without it)."""
        call = self._calls.get(ref)
        if call is not None and call.ended and call.pending_2xx is None:
            del self._calls[ref]

    @property
    def transactions(self) -> TransactionLayer:
        return self._tx


__all__ = [
    "CoreOutput",
    "PeerInfo",
    "Target",
    "Transmit",
    "UaConfig",
    "UserAgentCore",
    "default_glare_backoff",
    "parse_sipfrag_status",
]

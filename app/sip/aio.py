"""The asyncio user agent: the sans-I/O :class:`~app.sip.ua.UserAgentCore` driven on an
event loop, with the session handler (offer/answer, may be async) in the loop.

The driver is thin: bytes from the transports go to the core, the core's
:class:`~app.sip.ua.Transmit` outputs go to the peers' ``send``, one timer is armed
for the core's next deadline (``loop.time()`` is the core's clock), and the core's
events update :class:`Call` objects, run the session handler and reach the listeners.

Transports hand the UA each datagram (or each message a stream framer cut) with the
peer it came from, through :meth:`UserAgent.receive`; a peer is anything with the
:class:`~app.sip.ua.PeerInfo` attributes and a ``send(data)`` method (a UDP address on a
socket, a TCP/TLS connection, an AppAttach DTLS connection, an in-memory test flow).
Names in ``sip:`` URIs are turned into peers by a :data:`Resolver` (plain UDP/TCP from
the transport module, or the overlay's AoR lookup and AppAttach).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

from app.sip.errors import LocalProtocolError, RemoteProtocolError, SipError
from app.sip.events import (
    CallAnswered,
    CallDirection,
    CallEnded,
    CallRinging,
    IncomingCall,
    ReInviteCompleted,
    ReInviteReceived,
    RemoteIdentity,
    RequestDone,
    TransferProgress,
    TransferRequested,
    UaEvent,
)
from app.sip.message import SipRequest, SipResponse
from app.sip.sdp import RejectWith, SessionHandler, StaticSdpSession
from app.sip.transport import AddressTransport, StreamTransport, UdpTransport, peer_for_uri
from app.sip.ua import PeerInfo, Target, Transmit, UaConfig, UserAgentCore
from app.sip.uri import SipUri, parse_uri

log = logging.getLogger(__name__)


class SendingPeer(PeerInfo, Protocol):
    """A transport flow the UA can send on."""

    def send(self, data: bytes) -> None: ...


Resolver: TypeAlias = Callable[[SipUri], Awaitable[Sequence[Target]]]
"""Turns a SIP URI into targets (flow + Request-URI); several targets fork the call."""

TargetSpec: TypeAlias = Target | SipUri | str | Sequence[Target | SipUri | str]
"""One destination, or several to fork to: Targets as they are, URIs through the resolver."""
Listener: TypeAlias = Callable[[UaEvent], None]


class CallState(enum.Enum):
    CALLING = "calling"  # outgoing, no answer yet
    RINGING = "ringing"  # outgoing, a 180/183 came
    INCOMING = "incoming"  # incoming, not answered yet
    ESTABLISHED = "established"
    ENDED = "ended"


class CallError(SipError):
    """A call operation that could not be done (no target, call in the wrong state...)."""


class Call:
    """One call as the application sees it. Methods act on the UA core at once; the
    ``wait_*`` coroutines follow its progress."""

    def __init__(self, ua: UserAgent, ref: int, direction: CallDirection, session: SessionHandler) -> None:
        self._ua = ua
        self.ref = ref
        self.direction = direction
        self.session = session
        self.state = CallState.CALLING if direction is CallDirection.OUTGOING else CallState.INCOMING
        self.identity: RemoteIdentity | None = None
        self.incoming: IncomingCall | None = None
        self.events: list[UaEvent] = []
        self.transferred_to: Call | None = None  # the call we placed for a REFER we accepted
        loop = asyncio.get_running_loop()
        self._answered: asyncio.Future[CallAnswered] = loop.create_future()
        self._ended: asyncio.Future[CallEnded] = loop.create_future()
        self._reinvite: asyncio.Future[ReInviteCompleted] | None = None
        self._transfers: dict[int, asyncio.Future[TransferProgress]] = {}
        self._answering = False

    def __repr__(self) -> str:
        return f"<Call {self.ref} {self.direction.value} {self.state.value}>"

    @property
    def ended(self) -> CallEnded | None:
        return self._ended.result() if self._ended.done() else None

    async def wait_answered(self, timeout: float | None = None) -> CallAnswered:
        """Until the dialog is confirmed; CallError if the call ends first."""
        waiting: set[asyncio.Future[CallAnswered] | asyncio.Future[CallEnded]] = {self._answered, self._ended}
        await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if self._answered.done():
            return self._answered.result()
        if self._ended.done():
            raise CallError(f"call ended: {self._ended.result()}")
        raise TimeoutError("call not answered in time")

    async def wait_ended(self, timeout: float | None = None) -> CallEnded:
        return await asyncio.wait_for(asyncio.shield(self._ended), timeout)

    async def wait_event(self, kind: type[UaEvent], timeout: float | None = None) -> UaEvent:
        """The first event of ``kind`` for this call (one already seen counts)."""
        for e in self.events:
            if isinstance(e, kind):
                return e
        return await self._ua.wait_for(
            lambda e: isinstance(e, kind) and getattr(e, "call", None) == self.ref, timeout
        )

    # --- acting on the call ------------------------------------------------------------

    async def answer(self) -> None:
        """Answer an incoming call: the session handler answers the offer (or makes one
        when the INVITE had none); a refused offer rejects the call with its status."""
        if self.direction is not CallDirection.INCOMING or self.incoming is None:
            raise CallError("only an incoming call is answered")
        if self._answering or self.state is not CallState.INCOMING:
            return
        self._answering = True
        offer = self.incoming.offer
        result = await (self.session.answer(offer) if offer is not None else self.session.make_offer())
        if self.state is not CallState.INCOMING:
            return  # cancelled while the session handler worked
        if isinstance(result, RejectWith):
            self.reject(result.status, headers=self._ua.warning_headers(result))
            return
        self._ua._act(lambda now: self._ua.core.answer(self.ref, result, now))

    def ring(self, *, status: int = 180, sdp: bytes | None = None) -> None:
        self._ua._act(lambda now: self._ua.core.ring(self.ref, now, status=status, sdp=sdp))

    def reject(
        self, status: int = 486, *, reason: str | None = None, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        h = list(headers)
        self._ua._act(lambda now: self._ua.core.reject(self.ref, status, now, reason=reason, headers=h))

    def hangup(self) -> None:
        """CANCEL, reject (603) or BYE, whichever the state calls for."""
        self._ua._act(lambda now: self._ua.core.hangup(self.ref, now))

    def cancel(self) -> None:
        self._ua._act(lambda now: self._ua.core.cancel(self.ref, now))

    async def reinvite(self, offer: bytes | None = None, timeout: float | None = None) -> ReInviteCompleted:
        """A re-INVITE with a new offer (the session handler's unless given); returns the
        outcome once it is final (after any 491 glare retries)."""
        if self.state is not CallState.ESTABLISHED:
            raise CallError("the call is not established")
        body = offer if offer is not None else await self.session.make_offer()
        loop = asyncio.get_running_loop()
        self._reinvite = loop.create_future()
        future = self._reinvite
        self._ua._act(lambda now: self._ua.core.reinvite(self.ref, body, now))
        return await asyncio.wait_for(future, timeout)

    async def send_info(
        self, body: bytes, content_type: str, *, info_package: str | None = None, timeout: float | None = None
    ) -> SipResponse:
        headers = [("Info-Package", info_package)] if info_package else []
        return await self._ua._in_dialog(self.ref, "INFO", body, content_type, headers, timeout)

    async def send_message(self, text: str, *, timeout: float | None = None) -> SipResponse:
        return await self._ua._in_dialog(
            self.ref, "MESSAGE", text.encode(), "text/plain;charset=utf-8", [], timeout
        )

    async def refer(self, target: str, *, timeout: float | None = None) -> TransferProgress:
        """Blind transfer (RFC 3515): returns the final TransferProgress (the far end's
        NOTIFY with the new call's final status, or the REFER's refusal)."""
        future: asyncio.Future[TransferProgress] = asyncio.get_running_loop().create_future()

        def act(now: float) -> None:
            transfer = self._ua.core.refer(self.ref, target, now)
            self._transfers[transfer] = future

        self._ua._act(act)
        return await asyncio.wait_for(future, timeout)

    # --- events from the UA ---------------------------------------------------------------

    def _on_event(self, event: UaEvent) -> None:
        self.events.append(event)
        if isinstance(event, CallRinging):
            if self.state is CallState.CALLING:
                self.state = CallState.RINGING
            self.identity = event.identity
        elif isinstance(event, CallAnswered):
            self.identity = event.identity
            if event.sdp is not None:
                self._ua._spawn(self._accept_answer(event.sdp))
            if not event.early and not self._answered.done():
                self.state = CallState.ESTABLISHED
                self._answered.set_result(event)
        elif isinstance(event, CallEnded):
            self.state = CallState.ENDED
            if not self._ended.done():
                self._ended.set_result(event)
            for f in self._transfers.values():
                if not f.done():
                    f.set_exception(CallError(f"call ended: {event.reason.value}"))
            if self._reinvite is not None and not self._reinvite.done():
                self._reinvite.set_exception(CallError(f"call ended: {event.reason.value}"))
            self._ua._spawn(self.session.close())
        elif isinstance(event, ReInviteReceived):
            self._ua._spawn(self._answer_reinvite(event))
        elif isinstance(event, ReInviteCompleted):
            if event.status < 300 and event.sdp is not None:
                self._ua._spawn(self._accept_answer(event.sdp))
            if self._reinvite is not None and not self._reinvite.done():
                self._reinvite.set_result(event)
        elif isinstance(event, TransferProgress):
            pending = self._transfers.get(event.transfer)
            if pending is not None and event.final and not pending.done():
                pending.set_result(event)

    async def _accept_answer(self, sdp: bytes) -> None:
        refused = await self.session.accept_answer(sdp)
        if refused is not None and self.state is not CallState.ENDED:
            # An answer cannot be refused (RFC 3264 §6): the call is ended instead.
            log.info("call %d: unusable answer (%s): hanging up", self.ref, refused.warning)
            self.hangup()

    async def _answer_reinvite(self, event: ReInviteReceived) -> None:
        result = await (
            self.session.answer(event.offer) if event.offer is not None else self.session.make_offer()
        )
        if self.state is CallState.ENDED:
            return
        if isinstance(result, RejectWith):
            headers = self._ua.warning_headers(result)
            self._ua._act(
                lambda now: self._ua.core.reject_reinvite(self.ref, result.status, now, headers=headers)
            )
        else:
            self._ua._act(lambda now: self._ua.core.accept_reinvite(self.ref, result, now))


class UserAgent:
    """A SIP user agent on the running event loop (see the module docstring).

    ``auto_answer``: answer every incoming call at once (sipp's UAC, tests, a headless
    phone). ``accept_transfers``: on a REFER, call the Refer-To target (resolved by
    ``resolver``) and NOTIFY the transferor (RFC 3515). ``session_factory`` makes each
    call's session handler.
    """

    def __init__(
        self,
        config: UaConfig,
        *,
        session_factory: Callable[[], SessionHandler] = StaticSdpSession,
        resolver: Resolver | None = None,
        auto_answer: bool = False,
        accept_transfers: bool = True,
        glare_backoff: Callable[[bool], float] | None = None,
    ) -> None:
        self.core = UserAgentCore(config, glare_backoff=glare_backoff)
        self.config = config
        self.session_factory = session_factory
        self.resolver = resolver
        self.auto_answer = auto_answer
        self.accept_transfers = accept_transfers
        self.calls: dict[int, Call] = {}
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._listeners: list[Listener] = []
        self._waiters: list[tuple[Callable[[UaEvent], bool], asyncio.Future[UaEvent]]] = []
        self._requests: dict[int, asyncio.Future[SipResponse]] = {}
        self._incoming: asyncio.Queue[Call] = asyncio.Queue()
        self._tasks: set[asyncio.Task[object]] = set()
        self._closed = False

    # --- transports in ---------------------------------------------------------------------

    def receive(self, data: bytes | SipRequest | SipResponse, peer: SendingPeer) -> None:
        """A datagram (bytes), or a message a stream framer cut, from ``peer``."""
        if self._closed:
            return
        if isinstance(data, bytes):
            self._act(lambda now: self.core.receive(data, peer, now))
        else:
            self._act(lambda now: self.core.receive_message(data, peer, now))

    def deliver(self, item: SipRequest | SipResponse | RemoteProtocolError, peer: SendingPeer) -> None:
        """The transports' ``deliver`` callback (:data:`app.sip.transport.Deliver`): a
        malformed message was answered or dropped by the transport already."""
        if not isinstance(item, RemoteProtocolError):
            self.receive(item, peer)

    def transport_error(self, peer: PeerInfo) -> None:
        """``peer`` cannot be reached (refused, closed): its transactions fail."""
        if not self._closed:
            self._act(lambda now: self.core.transport_error(peer, now))

    # --- listeners -------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def wait_for(self, predicate: Callable[[UaEvent], bool], timeout: float | None = None) -> UaEvent:
        """The next event satisfying ``predicate``."""
        future: asyncio.Future[UaEvent] = self._loop.create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def next_incoming_call(self, timeout: float | None = None) -> Call:
        return await asyncio.wait_for(self._incoming.get(), timeout)

    # --- making calls and requests ------------------------------------------------------

    async def resolve(self, spec: TargetSpec) -> list[Target]:
        """The targets of ``spec`` (CallError when a URI leads nowhere)."""
        if isinstance(spec, Target):
            return [spec]
        if isinstance(spec, str | SipUri):
            uri = parse_uri(spec) if isinstance(spec, str) else spec
            if not isinstance(uri, SipUri):
                raise CallError(f"not a SIP URI: {spec}")
            if self.resolver is None:
                raise CallError("no resolver for SIP URIs: pass Target objects")
            try:
                targets = list(await self.resolver(uri))
            except OSError as exc:
                raise CallError(f"{uri}: {exc}") from None
            if not targets:
                raise CallError(f"nobody found at {uri}")
            return targets
        out: list[Target] = []
        for item in spec:
            out += await self.resolve(item)
        return out

    async def call(
        self,
        targets: TargetSpec,
        *,
        to: str | None = None,
        session: SessionHandler | None = None,
        headers: Iterable[tuple[str, str]] = (),
        transfer: tuple[int, int] | None = None,
    ) -> Call:
        """Place a call to one target or fork it to several (first 2xx wins)."""
        resolved = await self.resolve(targets)
        if not resolved:
            raise CallError("a call needs at least one target")
        if to is None and isinstance(targets, str | SipUri):
            to = str(targets)
        session = session or self.session_factory()
        offer = await session.make_offer()
        h = list(headers)
        holder: list[Call] = []

        def act(now: float) -> None:
            ref = self.core.invite(resolved, offer, now, to=to, headers=h, transfer=transfer)
            holder.append(self._new_call(ref, CallDirection.OUTGOING, session))

        self._act(act)
        return holder[0]

    async def request(
        self,
        method: str,
        target: TargetSpec,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        to: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        timeout: float | None = None,
    ) -> SipResponse:
        """A request outside a dialog; returns its final response (408 on timeout)."""
        resolved = await self.resolve(target)
        if to is None and isinstance(target, str | SipUri):
            to = str(target)
        future: asyncio.Future[SipResponse] = self._loop.create_future()
        h = list(headers)

        def act(now: float) -> None:
            ref = self.core.request(
                method, resolved[0], now, to=to, body=body, content_type=content_type, headers=h
            )
            self._requests[ref] = future

        self._act(act)
        return await asyncio.wait_for(future, timeout)

    async def send_message(
        self,
        target: TargetSpec,
        text: str,
        *,
        content_type: str = "text/plain;charset=utf-8",
        timeout: float | None = None,
    ) -> SipResponse:
        """A MESSAGE (RFC 3428) outside any call."""
        return await self.request(
            "MESSAGE", target, body=text.encode(), content_type=content_type, timeout=timeout
        )

    async def options(self, target: TargetSpec, *, timeout: float | None = None) -> SipResponse:
        return await self.request("OPTIONS", target, timeout=timeout)

    async def _in_dialog(
        self,
        ref: int,
        method: str,
        body: bytes,
        content_type: str,
        headers: list[tuple[str, str]],
        timeout: float | None,
    ) -> SipResponse:
        future: asyncio.Future[SipResponse] = self._loop.create_future()

        def act(now: float) -> None:
            request = self.core.send_in_dialog(
                ref, method, now, body=body, content_type=content_type, headers=headers
            )
            self._requests[request] = future

        self._act(act)
        return await asyncio.wait_for(future, timeout)

    def warning_headers(self, refusal: RejectWith) -> list[tuple[str, str]]:
        """A Warning for a refused offer (RFC 3261 §20.43), our AoR's host as the agent."""
        if refusal.warning is None:
            return []
        text = refusal.warning.replace("\\", "\\\\").replace('"', '\\"')
        return [("Warning", f'{refusal.warning_code} {self.config.aor.host} "{text}"')]

    async def close(self) -> None:
        """End every call (BYE/CANCEL/603) and stop the timer; the transports are the
        caller's to close."""
        for call in list(self.calls.values()):
            if call.state is not CallState.ENDED:
                with contextlib.suppress(LocalProtocolError):
                    call.hangup()
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._tasks:
            # Let the session handlers close; what is still running after a second is cancelled.
            _, pending = await asyncio.wait(set(self._tasks), timeout=1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    # --- the driver ----------------------------------------------------------------------

    def _act(self, fn: Callable[[float], None]) -> None:
        """Run ``fn(now)`` on the core, then deliver what it produced and re-arm the timer
        (also when ``fn`` refused, with LocalProtocolError, what the caller asked)."""
        try:
            fn(self._loop.time())
        finally:
            self._drain()

    def _drain(self) -> None:
        for out in self.core.take_outputs():
            if isinstance(out, Transmit):
                self._transmit(out)
            else:
                self._dispatch(out)
        self._arm()

    def _transmit(self, out: Transmit) -> None:
        peer = out.peer
        try:
            peer.send(out.data)  # type: ignore[attr-defined]
        except (OSError, SipError, ValueError) as exc:
            log.info("send to %s failed: %s", peer, exc)
            # Reported on the next turn, so the core is not re-entered while it emits.
            self._loop.call_soon(self.transport_error, peer)

    def _arm(self) -> None:
        if self._closed:
            return
        deadline = self.core.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        if not self._closed:
            self._act(self.core.fire)

    def _new_call(self, ref: int, direction: CallDirection, session: SessionHandler) -> Call:
        call = Call(self, ref, direction, session)
        self.calls[ref] = call
        return call

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, SipError | OSError | ValueError):
            log.warning("session handler failed: %s", exc)
        elif exc is not None:
            log.error("session handler failed", exc_info=exc)

    def _dispatch(self, event: UaEvent) -> None:
        if isinstance(event, IncomingCall):
            call = self._new_call(event.call, CallDirection.INCOMING, self.session_factory())
            call.incoming = event
            call.identity = event.identity
            self._incoming.put_nowait(call)
            if self.auto_answer:
                self._spawn(call.answer())
        elif isinstance(event, RequestDone):
            future = self._requests.pop(event.request, None)
            if future is not None and not future.done():
                future.set_result(event.response)
        elif isinstance(event, TransferRequested) and self.accept_transfers:
            self._spawn(self._transfer(event))
        call_ref = getattr(event, "call", None)
        if isinstance(call_ref, int):
            target = self.calls.get(call_ref)
            if target is not None:
                target._on_event(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the UA
                log.exception("SIP event listener failed on %s", type(event).__name__)
        for entry in list(self._waiters):
            predicate, waiter = entry
            if not waiter.done() and predicate(event):
                waiter.set_result(event)
                self._waiters.remove(entry)
        if isinstance(event, CallEnded):
            self._act_later_forget(event.call)

    def _act_later_forget(self, ref: int) -> None:
        # The core keeps an ended call only while its 2xx/ACK bookkeeping may need it.
        self._loop.call_later(self.config.timers.timeout, self.core.forget, ref)

    async def _transfer(self, event: TransferRequested) -> None:
        """RFC 3515: call the Refer-To target; the core NOTIFYs the outcome."""
        original = self.calls.get(event.call)
        try:
            uri = parse_uri(event.refer_to)
            if not isinstance(uri, SipUri):
                raise CallError("Refer-To is not a SIP URI")
            uri = uri.replace(headers=())
            new = await self.call(uri, to=str(uri), transfer=(event.call, event.transfer))
        except (SipError, OSError) as exc:
            log.info("transfer to %s failed: %s", event.refer_to, exc)
            with contextlib.suppress(LocalProtocolError):
                self._act(lambda now: self.core.fail_transfer(event.call, event.transfer, 503, now))
            return
        if original is not None:
            original.transferred_to = new


def transport_resolver(transports: Mapping[str, AddressTransport]) -> Resolver:
    """A resolver for plain ``sip:``/``sips:`` URIs on the given transports (by kind:
    udp, tcp, tls): the URI's transport parameter picks one (§19.1.1, §18)."""
    table = dict(transports)

    async def resolve(uri: SipUri) -> Sequence[Target]:
        return [Target(await peer_for_uri(uri, table), uri)]

    return resolve


class PlainTransports:
    """UDP and TCP sockets of one UA (direct ``sip:user@host`` calls, sipp, softphones)."""

    def __init__(self, udp: UdpTransport, tcp: StreamTransport) -> None:
        self.udp = udp
        self.tcp = tcp

    @property
    def by_kind(self) -> dict[str, AddressTransport]:
        return {"udp": self.udp, "tcp": self.tcp}

    def uri(self, user: str, kind: str = "udp") -> str:
        """Our URI on the ``kind`` socket, e.g. ``sip:bob@127.0.0.1:5062;transport=tcp``."""
        host, port = (self.udp if kind == "udp" else self.tcp).local_address
        host = f"[{host}]" if ":" in host else host
        return f"sip:{user}@{host}:{port}" + ("" if kind == "udp" else f";transport={kind}")

    async def close(self) -> None:
        await self.udp.close()
        await self.tcp.close()


async def open_plain_transports(
    ua: UserAgent, host: str = "127.0.0.1", *, udp_port: int = 0, tcp_port: int = 0
) -> PlainTransports:
    """Listen on UDP and TCP for ``ua`` (port 0: the OS picks), and resolve plain URIs
    through them when the UA has no resolver of its own."""
    udp = await UdpTransport.create(ua.deliver, host, udp_port, on_transport_error=ua.transport_error)
    tcp = await StreamTransport.listen(
        "tcp", ua.deliver, host, tcp_port, on_transport_error=ua.transport_error
    )
    plain = PlainTransports(udp, tcp)
    if ua.resolver is None:
        ua.resolver = transport_resolver(plain.by_kind)
    return plain


__all__ = [
    "Call",
    "CallError",
    "CallState",
    "PlainTransports",
    "Resolver",
    "SendingPeer",
    "TargetSpec",
    "UserAgent",
    "open_plain_transports",
    "transport_resolver",
]

"""The RELOAD node: message transport over overlay links (RFC 6940 §6.1, §6.2, §6.3, §6.7).

One :class:`Node` owns a :class:`~reload_core.node.transport.LinkTransport`, a Connection
Table, the CHORD-RELOAD state (:class:`~reload_core.topology.ChordTopology`, carried out
by :class:`~reload_core.node.chord_driver.ChordDriver`) and the request/response
machinery. It is the :class:`~reload_core.links.base.LinkHandler` of its links.

Every received message goes through the same pipeline:

1. the forwarding header is decoded (a malformed one is answered with the decoder's
   error code, or dropped when the codec says so) and its ``overlay`` checked (§6.1);
2. :func:`~reload_core.node.forwarding.decide` routes it (§6.1): forward to a connected
   node with the header rewritten, deliver here, drop silently, or answer with an error;
3. delivered messages are reassembled if fragmented (§6.7), decoded whole, and their
   signature verified (§6.3.4) before anything acts on them: a bad one is dropped and
   logged once;
4. requests pass the configuration sequence (§6.3.2.1), DESTINATION_CRITICAL option
   (§6.3.2.3) and critical extension (§6.3.3) checks, the response cache (§6.2.1), then
   their method's handler; responses are matched to a pending transaction and checked
   against the destination they were sent to (§6.3.4).

Everything runs from link callbacks and :class:`~reload_core.links.base.Clock` timers, so
the node runs the same on an asyncio clock and on a virtual one; only the convenience
coroutines (:meth:`Node.request`, :meth:`Node.join`...) need an event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reload_core.ids import NodeId
from reload_core.links.base import (
    AsyncioClock,
    Clock,
    CloseReason,
    Link,
    LinkNotOpenError,
    MessageTooLargeError,
    TimerHandle,
)
from reload_core.node.admission import ClientAdmission
from reload_core.node.attach import AttachManager
from reload_core.node.chord_driver import ChordDriver, OverlayHooks
from reload_core.node.client import ClientRole
from reload_core.node.connections import ConnectionTable
from reload_core.node.envelope import (
    build_error,
    build_message,
    build_response,
    is_request,
    peek_message_code,
    reencode,
    response_header,
    salvage_header,
    with_header,
)
from reload_core.node.errors import JoinError, NodeClosedError, RequestError, RequestRejected
from reload_core.node.events import (
    ConfigurationChanged,
    ConfigurationOutdated,
    ConnectionChanged,
    EventHub,
    Listener,
    NodeEvent,
    StateChanged,
)
from reload_core.node.forwarding import Deliver, Drop, Forward, Reject, decide, is_wildcard, originator
from reload_core.node.keepalive import keepalive_ping
from reload_core.node.limits import RateLimiter
from reload_core.node.logs import LogLimiter, NodeLogger
from reload_core.node.methods import register_builtin_methods
from reload_core.node.requests import Answer, Handler, IncomingRequest, OnDone, Outcome
from reload_core.node.settings import NodeSettings
from reload_core.node.transactions import Answered, InProgress, ResponseCache, TransactionTable
from reload_core.node.transport import LinkTransport, TransportFactory
from reload_core.security.certificates import NodeCertificate
from reload_core.security.signing import Resolve, SignatureError, Signer, signing_node_id, verify_message
from reload_core.topology.chord import ChordState, ChordTopology
from reload_core.topology.routing import Forward as TopologyForward
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.buffer import DecodeError, EncodeError
from reload_core.wire.codes import ErrorCode, MessageCode, is_request_code
from reload_core.wire.fragment import Reassembler, fragment_message
from reload_core.wire.link_methods import ConfigUpdateReq, ConfigUpdateType
from reload_core.wire.message import (
    CompressedDestination,
    Destination,
    ErrorResponse,
    ForwardingHeader,
    ForwardingOption,
    Message,
    MessageContents,
    MessageExtension,
    NodeDestination,
    OpaqueDestination,
    ResourceDestination,
    UnknownDestination,
    check_extensions,
    check_forwarding_options,
    decode_forwarding_header,
)
from reload_core.wire.registry import WireStruct, decode_body, decode_struct, encode_struct

CONFIG_UPDATE_SEQUENCE = 0xFFFF
"""§6.3.2.1: a ConfigUpdate with this configuration_sequence is accepted by every node."""

_SEQUENCE_MODULUS = 65535

# Errors a peer on the path (not the destination) may answer with (§6.3.2, §6.3.2.3, §6.6);
# §6.3.4's "sent by that Node-ID" cannot hold for them.
_PATH_ERRORS = frozenset(
    {
        ErrorCode.Error_TTL_Exceeded,
        ErrorCode.Error_Unsupported_Forwarding_Option,
        ErrorCode.Error_Message_Too_Large,
        ErrorCode.Error_Incompatible_with_Overlay,
        ErrorCode.Error_Invalid_Message,
    }
)


_DESTINATION_TYPES = (
    NodeDestination,
    ResourceDestination,
    OpaqueDestination,
    CompressedDestination,
    UnknownDestination,
)


def _sequence_is_older(theirs: int, ours: int) -> bool:
    """Whether configuration sequence ``theirs`` is behind ``ours``, modulo 65535 as in TCP
    (§6.3.2.1)."""
    return 0 < (ours - theirs) % _SEQUENCE_MODULUS <= _SEQUENCE_MODULUS // 2


@dataclass(slots=True)
class _Outgoing:
    """A request of ours in flight: what to send again and whom to tell."""

    code: int
    destinations: tuple[Destination, ...]
    data: bytes
    header: ForwardingHeader
    payload_at: int
    on_done: OnDone


class Node:
    """A RELOAD peer or client; see the package docstring for the API."""

    def __init__(
        self,
        signer: Signer,
        resolver: Resolve,
        settings: NodeSettings,
        transport: TransportFactory,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
        hooks: OverlayHooks | None = None,
    ) -> None:
        if len(signer.node_id) != settings.node_id_length:
            raise ValueError("the signer's Node-ID does not have the overlay's node-id-length")
        self._signer = signer
        self._resolver = resolver
        self._settings = settings
        self._clock: Clock = clock or AsyncioClock()
        self._rng = rng or random.Random()
        self.wall_clock = wall_clock
        self.hooks = hooks or OverlayHooks()
        self.log = NodeLogger(signer.node_id)
        self._limited = LogLimiter(self.log, self._clock.time, settings.log_window)
        self._started = self._clock.time()
        self._events = EventHub()
        self._connections = ConnectionTable()
        self._transactions: TransactionTable[_Outgoing] = TransactionTable(
            settings.overlay_reliability_timer, settings.max_transmissions
        )
        self._responses: ResponseCache[Message] = ResponseCache(settings.max_request_lifetime)
        self._reassembler = self._make_reassembler(settings)
        self._link_limit = RateLimiter(settings.link_rate, settings.link_burst)
        self._request_limit = RateLimiter(settings.request_rate, settings.request_burst)
        self._shed_errors = RateLimiter(settings.shed_error_rate, settings.shed_error_rate)
        self._handlers: dict[int, Handler] = {}
        self._tx_timer: TimerHandle | None = None
        self._tx_timer_at: float | None = None
        self._topology_timer: TimerHandle | None = None
        self._topology_timer_at: float | None = None
        self._config_pushed: dict[bytes, float] = {}
        self._closed = False
        self._state = "idle"
        self._join_waiter: asyncio.Future[None] | None = None
        self._join_link: Link | None = None
        self.keepalives_sent = 0
        """Keepalive Pings sent on idle links (:meth:`link_idle`)."""
        self.topology = ChordTopology(
            NodeId.from_bytes(signer.node_id),
            now=self._clock.time(),
            rng=random.Random(self._rng.getrandbits(64)),
            config=settings.chord,
        )
        self.driver = ChordDriver(self)
        self.attach = AttachManager(self)
        self.client = ClientRole(self)
        self.admission = ClientAdmission(self)
        self.transport: LinkTransport = transport(self, signer.node_certificate.node_ids)
        register_builtin_methods(self)

    @staticmethod
    def _make_reassembler(settings: NodeSettings) -> Reassembler:
        return Reassembler(
            max_message_size=settings.max_reassembled_size,
            lifetime=settings.max_request_lifetime,
            ctx=settings.wire_context,
        )

    # ================================================================ what others read

    @property
    def node_id(self) -> bytes:
        return self._signer.node_id

    @property
    def signer(self) -> Signer:
        return self._signer

    @property
    def settings(self) -> NodeSettings:
        return self._settings

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def rng(self) -> random.Random:
        return self._rng

    @property
    def connections(self) -> ConnectionTable:
        return self._connections

    @property
    def address(self) -> IpAddressPort | None:
        """Where this node accepts links (its Attach candidate), once started."""
        return self.transport.address

    @property
    def state(self) -> str:
        """``idle``, ``joining``, ``joined`` (a peer), ``client``, ``left`` or ``closed``."""
        return self._state

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has begun: the node acts on nothing any more."""
        return self._closed

    @property
    def is_client(self) -> bool:
        return self.client.active

    @property
    def is_joined(self) -> bool:
        return self.topology.state is ChordState.JOINED and not self.is_client

    @property
    def successors(self) -> tuple[bytes, ...]:
        return tuple(n.to_bytes() for n in self.topology.successors)

    @property
    def predecessors(self) -> tuple[bytes, ...]:
        return tuple(n.to_bytes() for n in self.topology.predecessors)

    @property
    def fingers(self) -> tuple[bytes, ...]:
        return tuple(n.to_bytes() for n in self.topology.fingers)

    @property
    def connected_nodes(self) -> frozenset[bytes]:
        """Node-IDs with an open link (the Connection Table)."""
        return self._connections.nodes()

    def uptime(self) -> float:
        return self._clock.time() - self._started

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every :mod:`~reload_core.node.events` event; returns a
        function that removes it."""
        return self._events.add(listener)

    def emit(self, event: NodeEvent) -> None:
        self._events.emit(event)

    def set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.emit(StateChanged(state))

    # ================================================================ RoutingView

    @property
    def routes(self) -> bool:
        return not self.is_client

    def is_connected(self, node_id: bytes) -> bool:
        return node_id in self._connections

    def is_responsible(self, id_: bytes) -> bool:
        if self.is_client or len(id_) != self._settings.node_id_length:
            return False
        return self.topology.is_responsible(NodeId.from_bytes(id_))

    def next_hop(self, id_: bytes, *, resource: bool) -> bytes | None:
        if self.is_client:
            return self.client.next_hop()
        if len(id_) != self._settings.node_id_length:
            return None
        decision = self.topology.route(NodeId.from_bytes(id_), resource=resource)
        if isinstance(decision, TopologyForward):
            hop = decision.next_hop.to_bytes()
            return hop if hop in self._connections else None
        return None

    # ================================================================ lifecycle

    async def start(self, listen: IpAddressPort | None = None) -> IpAddressPort:
        """Start accepting links at ``listen`` (default 127.0.0.1, OS-picked port); returns
        the address peers reach this node at."""
        self._check_open()
        return await self.transport.listen(listen)

    def start_alone(self) -> None:
        """Become the first peer of a new overlay, responsible for the whole ring (§6.4.2.1
        asks for an explicit setting for this; this call is it)."""
        self._check_open()
        self.set_state("joining")
        self.driver.apply(self.topology.start_alone(self._clock.time()))

    def begin_join(self, address: IpAddressPort) -> Link:
        """Start joining as a peer through the bootstrap node at ``address`` (§10.5, §11.4):
        connect to it, then CHORD-RELOAD's Attach/Update/Join sequence. Callback form, for
        any clock: the outcome is the ``joined`` state (a :class:`StateChanged` event) or
        the topology's failure, and :meth:`join` waits for it."""
        self._check_open()
        if self.topology.state is not ChordState.IDLE or self._join_link is not None:
            raise JoinError(f"cannot join in state {self.topology.state.name}")
        self.set_state("joining")
        link = self.transport.connect(address)
        self._join_link = link
        return link

    def _bootstrap_link_opened(self, link: Link, bootstrap: bytes) -> None:
        self._join_link = None
        if bootstrap == self.node_id:
            link.close()
            self.join_failed("the bootstrap node is this node")
            return
        self.driver.apply(self.topology.start_join(NodeId.from_bytes(bootstrap), self._clock.time()))

    async def join(self, bootstrap: Sequence[IpAddressPort] = (), *, timeout: float | None = None) -> None:
        """Join as a peer through the first bootstrap node that admits us; ``bootstrap``
        defaults to the configuration's bootstrap nodes. Raises :class:`JoinError`."""
        self._check_open()
        addresses = list(bootstrap) or list(self._settings.bootstrap_nodes)
        if not addresses:
            raise JoinError("no bootstrap node to join through")
        wait = (
            timeout
            if timeout is not None
            else self._settings.chord.join_timeout + self._settings.attach_timeout
        )
        reasons: list[str] = []
        loop = asyncio.get_running_loop()
        for address in addresses:
            self._join_waiter = waiter = loop.create_future()
            self.begin_join(address)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), wait)
                return
            except JoinError as exc:
                reasons.append(f"{address.addr}:{address.port}: {exc}")
            except TimeoutError:
                reasons.append(f"{address.addr}:{address.port}: join timed out")
            finally:
                self._join_waiter = None
            if self.topology.state is not ChordState.IDLE:
                break  # still joining after the timeout: do not start a second join
        self.set_state("idle")
        raise JoinError("; ".join(reasons) or "no bootstrap node admitted us")

    async def connect_as_client(
        self, bootstrap: Sequence[IpAddressPort] = (), *, timeout: float | None = None
    ) -> bytes:
        """Connect as a client (§4.2): through a bootstrap node, Attach to the peer
        responsible for our Node-ID and route everything through it; returns its Node-ID.
        The node should listen (:meth:`start`) so that the peer can connect back (§6.5.1)."""
        self._check_open()
        if self.topology.state is not ChordState.IDLE:
            raise JoinError("already a peer")
        addresses = list(bootstrap) or list(self._settings.bootstrap_nodes)
        return await self.client.connect(addresses, timeout)

    async def leave(self, timeout: float | None = None) -> None:
        """Leave gracefully (§10.9): Leave requests to the Neighbor Table, wait for their
        answers (at most ``timeout``, default two reliability timers), then :meth:`close`."""
        if self._closed:
            return
        if self.is_joined:
            acts = self.topology.leave(self._clock.time())
            waits = self.driver.send_leaves(acts)
            if waits:
                limit = timeout if timeout is not None else 2 * self._settings.overlay_reliability_timer
                await asyncio.wait(waits, timeout=limit)
        self.set_state("left")
        await self.close()

    async def close(self) -> None:
        """Close every link and stop; pending requests fail."""
        if self._closed:
            return
        self._closed = True
        self._cancel_timer("_tx_timer")
        self._cancel_timer("_topology_timer")
        self.attach.close()
        self.client.close()
        self.admission.close()
        for pending in self._transactions.pending():
            self._transactions.close(pending.transaction_id)
            self._finish(pending.context, RequestError(ErrorCode.Error_Request_Timeout, "node closed"))
        if self._join_waiter is not None and not self._join_waiter.done():
            self._join_waiter.set_exception(NodeClosedError("node closed while joining"))
        await self.transport.close()
        self.set_state("closed")

    def _check_open(self) -> None:
        if self._closed:
            raise NodeClosedError("node is closed")

    async def dial(self, address: IpAddressPort, expected_node_id: bytes | None = None) -> Link:
        """Open a link to ``address`` and wait until it is up (at most attach_timeout)."""
        link = self.transport.connect(address, expected_node_id)
        try:
            await asyncio.wait_for(link.wait_open(), self._settings.attach_timeout)
        except TimeoutError:
            link.close()
            raise
        return link

    # join outcome, from the driver

    def join_completed(self) -> None:
        self.set_state("joined")
        if self._join_waiter is not None and not self._join_waiter.done():
            self._join_waiter.set_result(None)

    def join_failed(self, reason: str) -> None:
        self._join_link = None
        if self.topology.state is ChordState.IDLE:
            self.set_state("idle")
        if self._join_waiter is not None and not self._join_waiter.done():
            self._join_waiter.set_exception(JoinError(reason))

    # ================================================================ requests (originating)

    def register_handler(self, code: MessageCode, handler: Handler) -> None:
        """Answer requests of ``code`` with ``handler`` (replacing any before)."""
        if not is_request_code(code):
            raise ValueError(f"{code!r} is not a request code")
        self._handlers[int(code)] = handler

    def send_request(
        self,
        destinations: Sequence[Destination],
        code: MessageCode,
        body: WireStruct | bytes,
        on_done: OnDone,
        *,
        max_response_length: int = 0,
        options: tuple[ForwardingOption, ...] = (),
        extensions: tuple[MessageExtension, ...] = (),
        configuration_sequence: int | None = None,
        certificates: Sequence[bytes] = (),
    ) -> int:
        """Send a request and call ``on_done`` once with its :class:`Answer` or
        :class:`RequestError` (§6.2.1: retransmitted every overlay-reliability-timer, five
        transmissions, then ``Error_Request_Timeout``). Returns the transaction ID.
        ``on_done`` may be called before this returns (e.g. a message too large)."""
        dests = tuple(destinations)
        if not dests:
            raise ValueError("a request needs a destination")
        if self._closed:
            on_done(RequestError(ErrorCode.Error_Request_Timeout, "node closed"))
            return 0
        payload = body if isinstance(body, bytes) else encode_struct(body)
        tid = self._transactions.new_transaction_id(self._rng)
        message = build_message(
            self._settings,
            self._signer,
            transaction_id=tid,
            destinations=dests,
            contents=MessageContents(code, payload, extensions),
            max_response_length=max_response_length,
            options=options,
            configuration_sequence=configuration_sequence,
            certificates=certificates,
        )
        data, header, payload_at = message.to_bytes_with_header()
        if len(data) > self._settings.max_message_size:
            on_done(
                RequestError(
                    ErrorCode.Error_Message_Too_Large,
                    f"{len(data)} bytes exceed max-message-size {self._settings.max_message_size}",
                )
            )
            return tid
        outgoing = _Outgoing(int(code), dests, data, header, payload_at, on_done)
        self._transactions.open(tid, outgoing, self._clock.time())
        self._arm_tx_timer()
        self._route(data, header, payload_at, None)
        return tid

    def is_pending(self, transaction_id: int) -> bool:
        """Whether a request of ours with this transaction ID still awaits its answer."""
        return transaction_id in self._transactions

    def cancel_request(self, transaction_id: int) -> bool:
        """Stop retransmitting a request; its ``on_done`` is not called. True if it was pending."""
        gone = self._transactions.close(transaction_id) is not None
        self._arm_tx_timer()
        return gone

    async def request(
        self,
        destination: bytes | Destination | Sequence[Destination],
        code: MessageCode,
        body: WireStruct | bytes,
        *,
        max_response_length: int = 0,
        options: tuple[ForwardingOption, ...] = (),
        certificates: Sequence[bytes] = (),
    ) -> tuple[WireStruct, Message]:
        """Send a request and wait for the answer: (decoded answer body, response message).

        ``destination`` is a Destination, a Destination List (a source route, §6.2.1), or
        bytes taken as a Resource-ID (address a Node-ID with ``NodeDestination(id)``).
        Raises :class:`RequestError` with the ErrorResponse's code for error answers and
        ``Error_Request_Timeout`` after the fifth transmission's timer (§6.2.1).
        ``certificates`` (DER) join the signer's in the certificate bucket (§6.3.4), e.g.
        those of the signers of stored data the request carries.
        """
        dests: tuple[Destination, ...]
        if isinstance(destination, bytes):
            dests = (ResourceDestination(destination),)
        elif isinstance(destination, _DESTINATION_TYPES):
            dests = (destination,)
        else:
            dests = tuple(destination)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()

        def done(outcome: Outcome) -> None:
            if not future.done():
                future.set_result(outcome)

        tid = self.send_request(
            dests,
            code,
            body,
            done,
            max_response_length=max_response_length,
            options=options,
            certificates=certificates,
        )
        try:
            outcome = await future
        except asyncio.CancelledError:
            self.cancel_request(tid)
            raise
        if isinstance(outcome, RequestError):
            raise outcome
        return outcome.body, outcome.message

    def _finish(self, outgoing: _Outgoing, outcome: Outcome) -> None:
        try:
            outgoing.on_done(outcome)
        except Exception:
            self.log.exception("request callback failed")

    # ---------------------------------------------------------------- retransmission timer

    def _arm_tx_timer(self) -> None:
        deadline = self._transactions.next_deadline()
        if deadline == self._tx_timer_at:
            return
        self._cancel_timer("_tx_timer")
        if deadline is not None and not self._closed:
            self._tx_timer_at = deadline
            self._tx_timer = self._clock.call_later(deadline - self._clock.time(), self._on_tx_timer)

    def _on_tx_timer(self) -> None:
        self._tx_timer = None
        self._tx_timer_at = None
        again, failed = self._transactions.expire(self._clock.time())
        for pending in again:
            out = pending.context
            self._route(out.data, out.header, out.payload_at, None)
        for pending in failed:
            self._finish(
                pending.context,
                RequestError(
                    ErrorCode.Error_Request_Timeout,
                    f"no response after {self._transactions.max_transmissions} transmissions",
                ),
            )
        self._arm_tx_timer()

    def _cancel_timer(self, name: str) -> None:
        timer: TimerHandle | None = getattr(self, name)
        if timer is not None:
            timer.cancel()
        setattr(self, name, None)
        setattr(self, name + "_at", None)

    def arm_topology_timer(self) -> None:
        """Keep one Clock timer on the topology's next stabilisation deadline (§10.7.4)."""
        if self._closed:
            return
        deadline = self.topology.next_timer()
        if deadline == self._topology_timer_at:
            return
        self._cancel_timer("_topology_timer")
        if deadline is not None:
            self._topology_timer_at = deadline
            self._topology_timer = self._clock.call_later(
                deadline - self._clock.time(), self._on_topology_timer
            )

    def _on_topology_timer(self) -> None:
        self._topology_timer = None
        self._topology_timer_at = None
        if not self._closed:
            self.driver.apply(self.topology.tick(self._clock.time()))

    # ================================================================ LinkHandler

    def link_opened(self, link: Link) -> None:
        node = link.remote_node_id
        if node is None or self._closed:
            link.close()
            return
        first = self._connections.add(link)
        send_update = self.attach.link_opened(node)
        if first:
            self.emit(ConnectionChanged(node, True))
        self.client.link_opened(link)
        if link is self._join_link:
            self._bootstrap_link_opened(link, node)
        elif not self.is_client:
            self.driver.apply(
                self.topology.on_connected(
                    NodeId.from_bytes(node), self._clock.time(), send_update_requested=send_update
                )
            )
        self.attach.complete_waiters(node)
        if first:
            self.admission.link_opened(node)

    def connected_again(self, node_id: bytes, *, send_update: bool) -> None:
        """An Attach came from a node we already have a link to; honour its send_update."""
        if not self.is_client and not self._closed:
            self.driver.apply(
                self.topology.on_connected(
                    NodeId.from_bytes(node_id), self._clock.time(), send_update_requested=send_update
                )
            )

    def link_closed(self, link: Link, reason: CloseReason) -> None:
        node = link.remote_node_id
        self.attach.link_closed(link)
        self._link_limit.forget(link)
        if link is self._join_link:
            self.join_failed(f"bootstrap node unreachable: {reason}")
        if node is None:
            return
        last = self._connections.remove(link)
        if reason.failed:
            self._limited.info(node, "link closed", "%s", reason)
        if not last:
            return
        self.emit(ConnectionChanged(node, False))
        if self._closed:
            return
        self.attach.first_hop_lost(node)
        self.client.link_lost(node)
        self.admission.link_lost(node)
        if not self.is_client:
            self.driver.apply(self.topology.on_connection_lost(NodeId.from_bytes(node), self._clock.time()))

    def link_suspect(self, link: Link, suspect: bool) -> None:
        node = link.remote_node_id
        if not suspect or node is None or self._closed:
            return
        self._limited.info(node, "link suspect", "no acks for an RTO")
        if not self._settings.drop_suspect_links:
            return
        # §6.6: take a likely failed link out of the Routing Table at once (§10.7.1).
        link.close()

    def link_idle(self, link: Link) -> None:
        """Keep an idle link measured with a Ping to its neighbour (see :mod:`.keepalive`)."""
        node = link.remote_node_id
        if node is None or self._closed:
            return
        tid = self._transactions.new_transaction_id(self._rng)
        if self._send_on(link, keepalive_ping(self._settings, self._signer, tid, node)):
            self.keepalives_sent += 1

    def message_too_large(self, link: Link, header: ForwardingHeader, length: int) -> None:
        previous = link.remote_node_id
        self._limited.warning(previous, "message too large", "%d bytes", length)
        if previous is None or self._closed:
            return
        # §6.6: answer, then the link closes (the framing layer does that on return).
        error = build_error(
            self._settings,
            self._signer,
            header,
            previous,
            ErrorCode.Error_Message_Too_Large,
            f"{length} bytes exceed max-message-size {self._settings.max_message_size}",
        )
        self._send_on(link, error.to_bytes())

    def message_received(self, link: Link, message: bytes) -> None:
        previous = link.remote_node_id
        if previous is None or self._closed:
            return
        if not self._link_limit.allow(link, self._clock.time()):
            self._limited.warning(
                previous, "link flood", "over %g messages/s, dropped", self._link_limit.rate
            )
            return
        try:
            self._receive(message, previous, link)
        except Exception:
            # A bug must not take the node down with a peer's message.
            self.log.exception("failed to process a message from %s", previous.hex()[:8])

    # ================================================================ the pipeline

    def _receive(self, data: bytes, previous: bytes, link: Link) -> None:
        try:
            header, payload_at = decode_forwarding_header(data, self._settings.wire_context)
        except DecodeError as exc:
            self._limited.warning(previous, "undecodable header", "%s", exc)
            salvaged = None if exc.drop else salvage_header(data)
            if salvaged is not None:
                error = build_error(
                    self._settings, self._signer, salvaged, previous, exc.error_code, str(exc)
                )
                self._send_on(link, error.to_bytes())
            return
        if header.overlay != self._settings.overlay:
            self._limited.warning(previous, "wrong overlay", "overlay field %#010x", header.overlay)
            self._reject(
                header, data, payload_at, previous, ErrorCode.Error_Incompatible_with_Overlay, "wrong overlay"
            )
            return
        refusal = self.admission.refusal(header, data, payload_at, previous)
        if refusal is not None:  # a client where clients-permitted is false (§11.1)
            self._reject(
                header, data, payload_at, previous, ErrorCode.Error_Incompatible_with_Overlay, refusal
            )
            return
        self._route(data, header, payload_at, previous)

    def _route(self, data: bytes, header: ForwardingHeader, payload_at: int, previous: bytes | None) -> None:
        """§6.1 for a received message (``previous`` set) or one of ours (None)."""
        decision = decide(header, self, previous_hop=previous, initial_ttl=self._settings.initial_ttl)
        if isinstance(decision, Deliver):
            if previous is None:
                # Our own message to ourselves: deliver from the clock, not from inside the caller.
                self._clock.call_later(0.0, lambda: self._deliver_safely(data, header, payload_at, None))
            else:
                self._deliver(data, header, payload_at, previous)
        elif isinstance(decision, Forward):
            out = data if decision.header == header else reencode(decision.header, data[payload_at:])
            if not self._send_to(decision.next_hop, out, transit=previous is not None):
                self._limited.info(previous, "no link", "to next hop %s", decision.next_hop.hex()[:8])
        elif isinstance(decision, Drop):
            self._limited.info(previous, "dropped", "%s", decision.reason)
        elif isinstance(decision, Reject):
            self._limited.info(previous, "rejected", "%s", decision.reason)
            if previous is None:
                self._fail_own(header.transaction_id, RequestError(decision.error_code, decision.reason))
            else:
                self._reject(header, data, payload_at, previous, decision.error_code, decision.reason)

    def _reject(
        self,
        header: ForwardingHeader,
        data: bytes,
        payload_at: int,
        previous: bytes | None,
        code: ErrorCode,
        reason: str,
    ) -> None:
        """Answer a request that fails a header check; responses are never answered."""
        if is_request(header, data, payload_at):
            self._send_error(header, previous, code, reason)

    def _fail_own(self, transaction_id: int, error: RequestError) -> None:
        pending = self._transactions.close(transaction_id)
        if pending is not None:
            self._arm_tx_timer()
            self._finish(pending.context, error)

    def _deliver_safely(
        self, data: bytes, header: ForwardingHeader, payload_at: int, previous: bytes | None
    ) -> None:
        try:
            self._deliver(data, header, payload_at, previous)
        except Exception:
            self.log.exception("failed to process a message to ourselves")

    def _deliver(
        self, data: bytes, header: ForwardingHeader, payload_at: int, previous: bytes | None
    ) -> None:
        """§6.1.1 "pass it to the upper layers": reassemble (§6.7), decode, verify (§6.3.4)."""
        now = self._clock.time()
        source = originator(header, previous)
        if previous is not None and not self._admit(header, data, payload_at, previous, source, now):
            return
        try:
            # An unfragmented message is whole as it is (§6.7); only fragments go in.
            whole = data if header.is_unfragmented else self._reassembler.add(data, now, source)
        except DecodeError as exc:
            self._limited.warning(previous, "bad fragment", "%s", exc)
            if not exc.drop:
                self._reject(header, data, payload_at, previous, exc.error_code, exc.reason)
            return
        if whole is None:
            return  # more fragments to come
        try:
            if whole is data:  # its header was decoded to route it
                message = Message.decode_payload(header, data, payload_at, self._settings.wire_context)
            else:
                message = Message.from_bytes(whole, self._settings.wire_context)
        except DecodeError as exc:
            self._limited.warning(previous, "undecodable message", "%s", exc)
            if not exc.drop:
                whole_header, whole_at = decode_forwarding_header(whole, self._settings.wire_context)
                self._reject(whole_header, whole, whole_at, previous, exc.error_code, str(exc))
            return
        try:
            signer = verify_message(message, self._resolver)
            signer_id = signing_node_id(message.security_block.signature.identity, signer)
        except SignatureError as exc:
            # §6.3.4: "SHOULD simply drop the message and MUST NOT process it".
            self._limited.warning(source, "bad signature", "%s", exc)
            return
        if is_request_code(int(message.message_contents.message_code)):
            self._handle_request(message, signer, signer_id, previous)
        else:
            self._handle_response(message, signer, signer_id)

    def _admit(
        self,
        header: ForwardingHeader,
        data: bytes,
        payload_at: int,
        previous: bytes,
        source: bytes | None,
        now: float,
    ) -> bool:
        """Shed load before the costly part (reassembly, signature check, §6.3.4): requests
        and fragments over their originator's budget (§6.5.1.2: an overloaded peer MAY
        answer with an error), and answers to nothing we are waiting for."""
        code = peek_message_code(header, data, payload_at)
        if code is not None and not is_request_code(code):
            answer = code == MessageCode.error or (0 < code < 0x8000 and code % 2 == 0)
            # An answer to a request given up or answered already would be dropped after
            # its check anyway (see _handle_response).
            return not (answer and header.is_unfragmented and header.transaction_id not in self._transactions)
        if self._request_limit.allow(source, now):
            return True
        self._limited.warning(source, "request flood", "over %g requests/s, shed", self._request_limit.rate)
        if code is not None and self._shed_errors.allow(source, now):
            self._send_error(
                header, previous, ErrorCode.Error_Request_Timeout, "overloaded: resend the request later"
            )
        return False

    # ================================================================ requests (answering)

    def _handle_request(
        self, message: Message, signer: NodeCertificate, signer_id: bytes, previous: bytes | None
    ) -> None:
        header = message.forwarding_header
        code = int(message.message_contents.message_code)
        now = self._clock.time()
        key = (originator(header, previous) or signer_id, header.transaction_id)
        earlier = self._responses.lookup(key, now)
        if isinstance(earlier, InProgress):
            return  # the first copy's answer is on its way
        if isinstance(earlier, Answered):
            # §6.2.1: the same answer again, under a header for this copy's path.
            replay = with_header(
                earlier.response, response_header(self._settings, header, previous, self.node_id)
            )
            self._send_response(replay, previous)
            return
        error = self._check_request(message, signer_id, previous)
        if error is not None:
            self._send_error(header, previous, error[0], error[1], cache_key=key)
            return
        handler = self._handlers.get(code)
        if handler is None:
            self._send_error(
                header,
                previous,
                ErrorCode.Error_Invalid_Message,
                f"unsupported method {code:#06x}",
                cache_key=key,
            )
            return
        try:
            body = decode_body(code, message.message_contents.message_body, self._settings.wire_context)
        except DecodeError as exc:
            self._limited.warning(signer_id, "undecodable body", "%s", exc)
            if not exc.drop:
                self._send_error(header, previous, exc.error_code, str(exc), cache_key=key)
            return
        request = IncomingRequest(message, body, signer, signer_id, previous, now)
        self._responses.begin(key, now)
        try:
            result = handler(request)
        except RequestRejected as exc:
            self._send_error(header, previous, exc.error_code, exc.error_info, cache_key=key)
            self._run_deferred(request)
            return
        except Exception:
            self.log.exception("handler for %#06x failed", code)
            self._responses.abandon(key)
            self._run_deferred(request)
            return
        if not inspect.isawaitable(result):
            self._answer(request, key, result)
            return
        task = asyncio.ensure_future(result)
        task.add_done_callback(lambda t: self._async_answer(request, key, t))

    def _check_request(
        self, message: Message, signer_id: bytes, previous: bytes | None
    ) -> tuple[ErrorCode, str] | None:
        """The destination's checks of §6.3.2.1, §6.3.2.3 and §6.3.3; None if all pass."""
        header = message.forwarding_header
        code = int(message.message_contents.message_code)
        ours = self._settings.configuration_sequence
        theirs = header.configuration_sequence
        if theirs != ours and not (
            theirs == CONFIG_UPDATE_SEQUENCE and code == MessageCode.config_update_req
        ):
            if theirs != CONFIG_UPDATE_SEQUENCE and _sequence_is_older(theirs, ours):
                self._push_configuration(header, previous, signer_id)
                return ErrorCode.Error_Config_Too_Old, f"configuration sequence {theirs}, ours is {ours}"
            return ErrorCode.Error_Config_Too_New, f"configuration sequence {theirs}, ours is {ours}"
        try:
            check_forwarding_options(header.options, forwarding=False)
            check_extensions(message.message_contents.extensions)
        except DecodeError as exc:
            return exc.error_code, exc.reason
        return None

    def _async_answer(
        self, request: IncomingRequest, key: tuple[bytes, int], task: asyncio.Future[WireStruct]
    ) -> None:
        header = request.message.forwarding_header
        if task.cancelled():
            self._responses.abandon(key)
        elif isinstance(task.exception(), RequestRejected):
            exc = task.exception()
            assert isinstance(exc, RequestRejected)
            self._send_error(header, request.previous_hop, exc.error_code, exc.error_info, cache_key=key)
        elif task.exception() is not None:
            self.log.error("handler for %#06x failed", request.code, exc_info=task.exception())
            self._responses.abandon(key)
        elif not self._closed:
            self._answer(request, key, task.result())
        self._run_deferred(request)

    def _answer(self, request: IncomingRequest, key: tuple[bytes, int], body: WireStruct) -> None:
        header = request.message.forwarding_header
        try:
            payload = encode_struct(body)
        except EncodeError:
            self.log.exception("handler for %#06x returned an unencodable answer", request.code)
            self._responses.abandon(key)
            self._run_deferred(request)
            return
        response = build_response(
            self._settings,
            self._signer,
            header,
            request.previous_hop,
            request.code + 1,
            payload,
            certificates=request.response_certificates,
        )
        encoded = response.to_bytes_with_header()
        size = len(encoded[0])
        if header.max_response_length and size > header.max_response_length:
            # §6.3.3.1's Error_Response_Too_Large is this exact case (§6.3.2 names
            # Error_Incompatible_with_Overlay; the error list's specific code wins).
            self._send_error(
                header,
                request.previous_hop,
                ErrorCode.Error_Response_Too_Large,
                f"response of {size} bytes exceeds max_response_length {header.max_response_length}",
                cache_key=key,
            )
        elif size > self._settings.max_message_size:
            self._send_error(
                header,
                request.previous_hop,
                ErrorCode.Error_Message_Too_Large,
                f"response of {size} bytes exceeds max-message-size {self._settings.max_message_size}",
                cache_key=key,
            )
        else:
            self._responses.complete(key, response, self._clock.time())
            self._route(*encoded, None)
        self._run_deferred(request)

    def _run_deferred(self, request: IncomingRequest) -> None:
        for work in request.run_deferred():
            try:
                work()
            except Exception:
                self.log.exception("deferred work after a response failed")

    def _send_error(
        self,
        request: ForwardingHeader,
        previous: bytes | None,
        code: ErrorCode,
        info: str | bytes,
        *,
        cache_key: tuple[bytes, int] | None = None,
    ) -> None:
        error = build_error(self._settings, self._signer, request, previous, code, info)
        if cache_key is not None:
            self._responses.complete(cache_key, error, self._clock.time())
        self._send_response(error, previous)

    def _send_response(self, response: Message, previous: bytes | None) -> None:
        self._route(*response.to_bytes_with_header(), None)

    def _push_configuration(
        self, request: ForwardingHeader, previous: bytes | None, requester: bytes
    ) -> None:
        """§6.3.2.1: a requester with an older configuration gets a ConfigUpdate, along the
        request's reverse path (it may be a client), at most once per log window."""
        document = self._settings.configuration_document
        if document is None:
            return
        now = self._clock.time()
        last = self._config_pushed.get(requester)
        if last is not None and now - last < self._settings.log_window:
            return
        self._config_pushed[requester] = now
        if len(self._config_pushed) > 1024:
            window = self._settings.log_window
            self._config_pushed = {n: t for n, t in self._config_pushed.items() if now - t < window}
        body = ConfigUpdateReq(ConfigUpdateType.config, config_data=document)
        dests = response_header(self._settings, request, previous, self.node_id).destination_list

        def done(outcome: Outcome) -> None:
            if isinstance(outcome, RequestError):
                self._limited.info(requester, "ConfigUpdate failed", "%s", outcome)

        self.send_request(
            dests, MessageCode.config_update_req, body, done, configuration_sequence=CONFIG_UPDATE_SEQUENCE
        )

    # ================================================================ responses

    def _handle_response(self, message: Message, signer: NodeCertificate, signer_id: bytes) -> None:
        header = message.forwarding_header
        pending = self._transactions.get(header.transaction_id)
        if pending is None:
            return  # an answer to a request already answered, given up, or never ours
        out = pending.context
        code = int(message.message_contents.message_code)
        error: ErrorResponse | None = None
        path_error = False
        if code == MessageCode.error:
            try:
                error = decode_struct(
                    ErrorResponse, message.message_contents.message_body, self._settings.wire_context
                )
                path_error = error.error_code in _PATH_ERRORS
            except DecodeError as exc:
                error = ErrorResponse(
                    ErrorCode.Error_Invalid_Message, f"undecodable ErrorResponse: {exc}".encode()
                )
        if not path_error and not self._acceptable_responder(out.destinations, signer_id):
            self._limited.warning(signer_id, "response from the wrong node", "to %#06x", out.code)
            return
        self._transactions.close(header.transaction_id)
        self._arm_tx_timer()
        outcome: Outcome
        if error is not None:
            outcome = RequestError(error.error_code, error.error_info, message)
            if error.error_code == ErrorCode.Error_Config_Too_Old:
                self.emit(ConfigurationOutdated(signer_id))
        elif code != out.code + 1:
            outcome = RequestError(
                ErrorCode.Error_Invalid_Message, f"answer code {code:#06x} to {out.code:#06x}", message
            )
        else:
            try:
                check_extensions(message.message_contents.extensions)
                body = decode_body(code, message.message_contents.message_body, self._settings.wire_context)
            except DecodeError as exc:
                outcome = RequestError(exc.error_code, str(exc), message)
            else:
                outcome = Answer(body, message, signer_id, signer)
        self._finish(out, outcome)

    def _acceptable_responder(self, destinations: tuple[Destination, ...], responder: bytes) -> bool:
        """§6.3.4's checks of a response against where its request went: a Node-ID
        destination must answer itself (unless the wildcard), a Resource-ID must be answered
        by a node at least as close to it as any in our Neighbor Table. (Errors that a peer
        on the path generates skip this: see ``_PATH_ERRORS``.)"""
        last = destinations[-1]
        if isinstance(last, NodeDestination):
            return is_wildcard(last.node_id) or responder == last.node_id
        if isinstance(last, ResourceDestination) and not self.is_client:
            if len(last.resource_id) != self._settings.node_id_length or len(responder) != len(
                last.resource_id
            ):
                return True
            target = NodeId.from_bytes(last.resource_id)
            distance = target.distance(NodeId.from_bytes(responder))
            return not any(target.distance(n) < distance for n in self.topology.neighbor_table.members())
        return True

    # ================================================================ sending

    def _send_to(self, node_id: bytes, data: bytes, *, transit: bool = False) -> bool:
        link = self._connections.get(node_id)
        if link is None:
            return False
        return self._send_on(link, data, transit=transit)

    def _send_on(self, link: Link, data: bytes, *, transit: bool = False) -> bool:
        try:
            link.send(data, transit=transit)
        except MessageTooLargeError:
            # The Via List grew past the link's limit: fragment (§6.7).
            try:
                pieces = fragment_message(data, self._settings.max_message_size, self._settings.wire_context)
            except (DecodeError, EncodeError):
                return False
            if len(pieces) == 1:
                return False
            try:
                for piece in pieces:
                    link.send(piece, transit=transit)
            except (LinkNotOpenError, MessageTooLargeError):
                return False
        except LinkNotOpenError:
            return False
        return True

    def close_links_to(self, node_id: bytes) -> None:
        for link in self._connections.links_to(node_id):
            link.close()

    # ================================================================ configuration

    def apply_configuration(self, settings: NodeSettings) -> None:
        """Switch to new settings after a ConfigUpdate (§6.5.4.2)."""
        self._settings = settings
        self.topology.config = settings.chord
        self._transactions.timer = settings.overlay_reliability_timer
        self._reassembler = self._make_reassembler(settings)
        self.log.info("configuration sequence is now %d", settings.configuration_sequence)
        self.emit(ConfigurationChanged(settings.configuration_sequence))


__all__ = ["CONFIG_UPDATE_SEQUENCE", "Node"]

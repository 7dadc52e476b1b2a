"""The overlay link interface the node uses (RFC 6940 §6.6).

A :class:`Link` is one authenticated connection to a neighbour: TLS/TCP with the framing
header (§6.6.5), DTLS/UDP with simple reliability (§6.6.3, §6.6.4), or an in-memory link
for tests and the simulator. The node sees only this interface, so the same node code
runs over sockets and over in-memory links on a virtual clock:

- it dials with a :class:`Connector` and accepts through a :class:`LinkListener`;
- it hands whole RELOAD messages to :meth:`Link.send`;
- it hears back through its :class:`LinkHandler`: link opened, message received, a
  message too large to accept (§6.6), the link suspected or recovered, the link idle
  (time for a keepalive message), link closed with a :class:`CloseReason` ("fast
  failure signalling", §6.6).

Time comes from a :class:`Clock`: :class:`AsyncioClock` over the running loop, or
:class:`VirtualClock`, which only moves when a test or the simulator advances it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol, TypeVar

from reload_core.wire.codes import OverlayLinkType
from reload_core.wire.message import ForwardingHeader

if TYPE_CHECKING:
    from reload_core.security.certificates import NodeCertificate

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_SIZE = 5000
"""§11.1 ``max-message-size``: "If this value is not present, the default is 5000"."""


# ---------------------------------------------------------------- clocks


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time in seconds and one-shot timers (``loop.call_later``'s shape)."""

    def time(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...


class AsyncioClock:
    """The event loop's clock; the loop is looked up when first needed."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def time(self) -> float:
        return self.loop.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.loop.call_later(max(0.0, delay), callback)


class _VirtualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock that stands still until :meth:`advance` moves it.

    Callbacks run in deadline order, ties in the order they were scheduled, each with
    :meth:`time` reading its own deadline; callbacks they schedule inside the advanced
    span run in the same call.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, _VirtualTimer]] = []
        self._counter = itertools.count()

    def time(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _VirtualTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._heap, (timer.when, next(self._counter), timer))
        return timer

    def call_at(self, when: float, callback: Callable[[], None], *, order: int | None = None) -> TimerHandle:
        """``callback`` at time ``when`` (not before now). Ties run in scheduling order, or
        by ``order`` when given: an order below zero runs before anything scheduled
        without one (a parallel simulation's events from other processes, whose arrival
        in real time must not decide their place)."""
        if when < self._now:
            raise ValueError(f"time {when} has passed (now {self._now})")
        timer = _VirtualTimer(when, callback)
        heapq.heappush(self._heap, (when, next(self._counter) if order is None else order, timer))
        return timer

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)

    def next_deadline(self) -> float | None:
        """When the next pending callback is due, or None if none is pending."""
        self._drop_cancelled()
        return self._heap[0][0] if self._heap else None

    @property
    def pending(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)

    def run_until(self, when: float) -> int:
        """Run every callback due at or before ``when``, then stand at ``when``.
        Returns how many callbacks ran."""
        ran = 0
        while True:
            self._drop_cancelled()
            if not self._heap or self._heap[0][0] > when:
                break
            due, _, timer = heapq.heappop(self._heap)
            self._now = max(self._now, due)
            timer.cancelled = True
            timer.callback()
            ran += 1
        self._now = max(self._now, when)
        return ran

    def advance(self, seconds: float) -> int:
        """Move time forward by ``seconds``, running what falls due."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        return self.run_until(self._now + seconds)


# ---------------------------------------------------------------- link state and events


class LinkState(Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


class CloseCode(Enum):
    """Why a link ended. Everything but ``LOCAL`` is a failure the node should act on."""

    LOCAL = "closed locally"
    REMOTE = "closed by the peer"
    NO_ACK = "data frames unacknowledged"  # §6.6.5 (the RTO-based failure timeout)
    RETRANSMISSIONS_EXHAUSTED = "retransmissions exhausted"  # §6.6.3.1
    CONNECT_FAILED = "connection failed"
    HANDSHAKE_FAILED = "handshake failed"
    AUTHENTICATION_FAILED = "authentication failed"  # a certificate was refused, either side's
    WRONG_NODE_ID = "peer certificate lacks the expected Node-ID"
    MESSAGE_TOO_LARGE = "message larger than max-message-size"  # §6.6
    PROTOCOL_ERROR = "malformed framing"
    TRANSPORT_ERROR = "transport error"


@dataclass(frozen=True, slots=True)
class CloseReason:
    code: CloseCode
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.code is not CloseCode.LOCAL

    def __str__(self) -> str:
        return f"{self.code.value}: {self.detail}" if self.detail else self.code.value


class LinkError(Exception):
    """A link operation that cannot be done (our side's mistake or a closed link)."""


class LinkNotOpenError(LinkError):
    def __init__(self, state: LinkState, reason: CloseReason | None = None) -> None:
        self.state = state
        self.reason = reason
        super().__init__(f"link is {state.value}" + (f" ({reason})" if reason else ""))


class MessageTooLargeError(LinkError):
    """Raised by :meth:`Link.send` for a message above max-message-size (fragment it, §6.7)."""


class LinkHandler(Protocol):
    """What a link tells the node. Called synchronously from the link's I/O; a handler
    may call :meth:`Link.send` and :meth:`Link.close` from inside any of these."""

    def link_opened(self, link: Link) -> None:
        """The link is authenticated and usable (``link.remote_node_id`` is set)."""

    def message_received(self, link: Link, message: bytes) -> None:
        """One whole RELOAD message (§6.3) arrived on the link."""

    def message_too_large(self, link: Link, header: ForwardingHeader, length: int) -> None:
        """A message of ``length`` bytes, above max-message-size, is arriving (§6.6).

        ``header`` is its forwarding header (with ``length`` set to the announced size):
        enough to build the Error_Message_Too_Large response, which the handler may
        :meth:`Link.send` now; the link closes as soon as this returns. When the header
        itself is too large or malformed the link closes without this call.
        """

    def link_suspect(self, link: Link, suspect: bool) -> None:
        """True: data has gone unacknowledged for an RTO, so the link has likely failed and
        should leave the routing table (§6.6, §6.6.3.1, §6.6.5). False: acks resumed."""

    def link_idle(self, link: Link) -> None:
        """Nothing has been sent on the link for its keepalive interval: send a message on
        it (the node sends a Ping, §6.5.3), whose ack measures the link's RTT (§6.6.5) and
        whose missing ack would expose a dead peer. Links never send empty frames of their
        own. A handler without this method gets no keepalives."""

    def link_closed(self, link: Link, reason: CloseReason) -> None:
        """The link is gone (``reason.failed`` unless we closed it). Called once, also for
        a dialed link that never opened."""


# ---------------------------------------------------------------- links


class Link(ABC):
    """One overlay link. Subclasses move the bytes; this class keeps state and tells the
    handler, exactly once per transition."""

    link_type: OverlayLinkType = OverlayLinkType.INVALID_PROTOCOL

    def __init__(self, handler: LinkHandler, *, expected_node_id: bytes | None = None) -> None:
        self._handler = handler
        self._state = LinkState.CONNECTING
        self._close_reason: CloseReason | None = None
        self._expected_node_id = expected_node_id
        self._remote_node_ids: tuple[bytes, ...] = ()
        self._remote_certificate: NodeCertificate | None = None
        self._open_waiters: list[asyncio.Future[None]] = []
        self._close_waiters: list[asyncio.Future[CloseReason]] = []

    # -- what the node reads

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def is_open(self) -> bool:
        return self._state is LinkState.OPEN

    @property
    def close_reason(self) -> CloseReason | None:
        return self._close_reason

    @property
    def expected_node_id(self) -> bytes | None:
        """The Node-ID this link was dialed for, if any."""
        return self._expected_node_id

    @property
    def remote_node_id(self) -> bytes | None:
        """The peer's Node-ID as its credentials prove it (None before the link opens):
        the dialed Node-ID, or the certificate's first Node-ID on an accepted link."""
        if not self._remote_node_ids:
            return None
        if self._expected_node_id is not None and self._expected_node_id in self._remote_node_ids:
            return self._expected_node_id
        return self._remote_node_ids[0]

    @property
    def remote_node_ids(self) -> tuple[bytes, ...]:
        """Every Node-ID the peer's certificate carries (§11.3 allows several)."""
        return self._remote_node_ids

    @property
    def remote_certificate(self) -> NodeCertificate | None:
        """The peer's authenticated certificate (None on links without certificates)."""
        return self._remote_certificate

    @property
    @abstractmethod
    def remote_address(self) -> object:
        """Where the peer is (a (host, port) pair for TCP, a name in memory)."""

    @property
    @abstractmethod
    def rtt(self) -> float | None:
        """Smoothed RTT (RFC 6298 SRTT) from the framing acks, None before the first."""

    @property
    @abstractmethod
    def rto(self) -> float:
        """Current retransmission/failure timeout (RFC 6298 RTO)."""

    @property
    @abstractmethod
    def suspect(self) -> bool:
        """Whether data has gone unacknowledged long enough to suspect a failure."""

    # -- what the node does

    @abstractmethod
    def send(self, message: bytes, *, transit: bool = False) -> None:
        """Queue one whole RELOAD message. ``transit`` marks a message this node forwards
        for others: on unreliable links it is not retransmitted (§6.6.3.1).

        Raises :class:`LinkNotOpenError` unless the link is open and
        :class:`MessageTooLargeError` above max-message-size."""

    @abstractmethod
    def close(self) -> None:
        """Close the link (TLS close_notify, then the transport). Idempotent."""

    async def wait_open(self) -> None:
        """Wait until the link opens; raises :class:`LinkNotOpenError` if it closes first."""
        if self._state is LinkState.OPEN:
            return
        if self._state is LinkState.CLOSED:
            raise LinkNotOpenError(self._state, self._close_reason)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._open_waiters.append(fut)
        await fut

    async def wait_closed(self) -> CloseReason:
        if self._close_reason is not None:
            return self._close_reason
        fut: asyncio.Future[CloseReason] = asyncio.get_running_loop().create_future()
        self._close_waiters.append(fut)
        return await fut

    # -- for subclasses

    def _opened(self, remote_node_ids: tuple[bytes, ...], certificate: NodeCertificate | None = None) -> None:
        if self._state is not LinkState.CONNECTING:
            return
        self._remote_node_ids = remote_node_ids
        self._remote_certificate = certificate
        self._state = LinkState.OPEN
        for fut in self._open_waiters:
            if not fut.done():
                fut.set_result(None)
        self._open_waiters.clear()
        self._notify("link_opened", self)

    def _closed(self, reason: CloseReason, *, notify: bool = True) -> bool:
        """Enter CLOSED; returns False if already closed. ``notify=False`` keeps the handler
        out of it (an accepted link that never opened is none of the node's business)."""
        if self._state is LinkState.CLOSED:
            return False
        self._state = LinkState.CLOSED
        self._close_reason = reason
        for fut in self._open_waiters:
            if not fut.done():
                fut.set_exception(LinkNotOpenError(LinkState.CLOSED, reason))
        self._open_waiters.clear()
        for cfut in self._close_waiters:
            if not cfut.done():
                cfut.set_result(reason)
        self._close_waiters.clear()
        if notify:
            self._notify("link_closed", self, reason)
        return True

    def _notify(self, method: str, *args: object) -> None:
        # A bug in the node must not tear down the link's I/O path.
        try:
            getattr(self._handler, method)(*args)
        except Exception:
            log.exception("link handler %s failed", method)

    def __repr__(self) -> str:
        peer = self.remote_node_id.hex() if self.remote_node_id else "?"
        return f"<{type(self).__name__} {self._state.value} peer={peer} at {self.remote_address!r}>"


A_contra = TypeVar("A_contra", contravariant=True)


class Connector(Protocol[A_contra]):
    """Dials links. Returns at once with a CONNECTING link; the handler hears
    ``link_opened`` or ``link_closed``."""

    def connect(self, address: A_contra, expected_node_id: bytes | None = None) -> Link:
        """Dial ``address``; with ``expected_node_id`` the link is refused unless the
        peer's certificate carries that Node-ID."""
        ...


class LinkListener(Protocol):
    """Accepts links; each authenticated one is announced with ``link_opened``."""

    @property
    def address(self) -> object: ...

    def close(self) -> None:
        """Stop accepting (links already open stay open)."""
        ...


__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "AsyncioClock",
    "Clock",
    "CloseCode",
    "CloseReason",
    "Connector",
    "Link",
    "LinkError",
    "LinkHandler",
    "LinkListener",
    "LinkNotOpenError",
    "LinkState",
    "MessageTooLargeError",
    "TimerHandle",
    "VirtualClock",
]

"""The per-link protocol of the framing header (RFC 6940 §6.6.2) and simple reliability
(§6.6.3), without sockets or clocks.

:class:`FramingConnection` is the protocol core, in aioquic's style: feed it bytes
(:meth:`~FramingConnection.receive`), messages (:meth:`~FramingConnection.send`) and
timer expiries (:meth:`~FramingConnection.handle_timer`), all with the current time,
then collect :meth:`~FramingConnection.data_to_send` and
:meth:`~FramingConnection.next_event`. It runs in one of two modes:

- stream (TLS/TCP, §6.6.5): frames are cut out of a byte stream; nothing is
  retransmitted (TCP is reliable) but every data frame is acked, the acks give the RTT
  and an RFC 6298 RTO, data unacknowledged for an RTO makes the link *suspect* (leave
  the routing table) and for ``failure_timeout`` makes it *failed*;
- datagram (DTLS/UDP, §6.6.3): one frame per datagram and the stop-and-wait sender of
  §6.6.3.1 (:class:`StopAndWaitSender`): one unacknowledged message at a time,
  retransmission after the RTO with doubling and a new sequence number, at most 5
  transmissions, then failure.

Keepalives: when a link has sent no data frame for ``keepalive_interval`` the core emits
:class:`LinkIdle`, and the link asks its handler to send something
(:meth:`~reload_core.links.base.LinkHandler.link_idle`): the node sends its neighbour a
Ping (§6.5.3). The framing header acks that message like any other, so it measures the
link's RTT (§6.6.5) and exposes a dead peer exactly as real traffic would, and every data
frame on the wire carries a RELOAD message. (An empty ``message`` would be legal in the
grammar, ``opaque message<0..2^24-1>``, but it is no RELOAD message: Wireshark's dissector
marks what follows it malformed, and another implementation may take it for a parse error
and drop the link.) An unsolicited ack frame would not do: acks are not acked, so its loss
would go unnoticed.

:class:`FramedLink` is the glue every concrete link (TLS, in-memory, DTLS) shares: it
drives the core with a :class:`~reload_core.links.base.Clock` and tells the handler.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reload_core.links.base import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Clock,
    CloseCode,
    CloseReason,
    Link,
    LinkHandler,
    LinkNotOpenError,
    LinkState,
    MessageTooLargeError,
    TimerHandle,
)
from reload_core.wire.buffer import DecodeError, Reader
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.framing import (
    DATA_HEADER_LEN,
    MAX_FRAMED_MESSAGE,
    AckFrame,
    DataFrame,
    FramedMessage,
    FramedMessageType,
    decode_framed_message,
    frame_length,
)
from reload_core.wire.message import FORWARDING_HEADER_FIXED_LEN, ForwardingHeader

if TYPE_CHECKING:
    from reload_core.security.certificates import NodeCertificate

SEQUENCE_MODULUS = 1 << 32
ACK_WINDOW = 32
"""§6.6.2: "The receiver MUST keep track of the 32 most recent sequence numbers"."""

_LENGTH_OFFSET = 16  # ForwardingHeader.length: after relo_token, overlay, sequence, version, ttl, fragment
_LISTS_OFFSET = 32  # via_list_length, destination_list_length, options_length


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Per-link parameters.

    ``max_message_size``: §11.1 max-message-size (default 5000).
    ``failure_timeout``: how long a data frame may stay unacknowledged on a stream link
    before the link is declared failed and closed; §6.6.5 RECOMMENDS keeping the
    connection 30 s before concluding a permanent failure (the RTO already made it
    suspect). ``keepalive_interval``: report the link idle (:class:`LinkIdle`) after this
    long without sending data, so that its user sends a message on it (None: never). ``initial_rto``/``min_rto``/``max_rto``: RFC 6298 (2.1),
    (2.4), (2.5); §6.6.5 asks for RFC 6298 §2 as is; on SR links §6.6.3.1 asks that the RTO
    be rounded to the millisecond rather than up to a second, and MAY be smaller on LANs,
    so lower ``min_rto`` there. ``max_transmissions`` and ``ack_spacing`` are §6.6.3.1's
    "total of 5 requests" and "wait 10 ms between receipt of an ACK and transmission of the
    next message". ``handshake_timeout`` bounds connection setup, and at most
    ``max_handshakes`` accepted connections may be in theirs at once: more are refused at
    once (half-open connections cost a socket and a TLS engine each).
    """

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    failure_timeout: float = 30.0
    keepalive_interval: float | None = 5.0
    initial_rto: float = 1.0
    min_rto: float = 1.0
    max_rto: float = 60.0
    max_transmissions: int = 5
    ack_spacing: float = 0.010
    handshake_timeout: float = 10.0
    max_handshakes: int = 64

    def __post_init__(self) -> None:
        if not 0 < self.max_message_size <= MAX_FRAMED_MESSAGE:
            raise ValueError(f"max_message_size must be 1..{MAX_FRAMED_MESSAGE}")
        if self.max_transmissions < 1:
            raise ValueError("max_transmissions must be at least 1")
        if not 0 < self.min_rto <= self.max_rto:
            raise ValueError("need 0 < min_rto <= max_rto")


# ---------------------------------------------------------------- §6.6.2 receiver


class AckGenerator:
    """The receiver of §6.6.2: remembers the 32 most recently received sequence numbers
    and builds the ack for each new one."""

    def __init__(self) -> None:
        self._recent: deque[int] = deque(maxlen=ACK_WINDOW)

    def ack_for(self, sequence: int) -> AckFrame:
        """The ack for data frame ``sequence``: bit N-M (bit 1 = least significant) of
        ``received`` is set for each of the 32 previously received M with N-32 < M < N."""
        received = 0
        for m in self._recent:
            d = (sequence - m) % SEQUENCE_MODULUS
            if 0 < d < ACK_WINDOW:
                received |= 1 << (d - 1)
        self._recent.append(sequence)
        return AckFrame(sequence, received)


def acknowledged_sequences(ack: AckFrame) -> list[int]:
    """Every sequence number the ack positively confirms: ``ack_sequence`` and N-k for
    each set bit k. (A set bit 32 cannot come from §6.6.2's rule, but it too is positive
    evidence, so it is honoured.)"""
    n = ack.ack_sequence
    seqs = [n]
    bits = ack.received & ((1 << ACK_WINDOW) - 1)
    while bits:  # one turn per set bit (every frame on a busy link acks up to 32 others)
        low = bits & -bits
        seqs.append((n - low.bit_length()) % SEQUENCE_MODULUS)
        bits ^= low
    return seqs


# ---------------------------------------------------------------- RFC 6298 RTO


class RtoEstimator:
    """RFC 6298 §2 with RELOAD's rounding (§6.6.3.1: up to the millisecond, not the second).

    ``initial_rtt`` (e.g. the RTT of ICE's STUN transaction, §6.6.3.1) is taken as the
    first measurement.
    """

    ALPHA = 1 / 8
    BETA = 1 / 4
    K = 4
    G = 0.001  # clock granularity: we keep time to the millisecond or better

    def __init__(
        self,
        initial_rto: float = 1.0,
        min_rto: float = 1.0,
        max_rto: float = 60.0,
        initial_rtt: float | None = None,
    ) -> None:
        self.min_rto = min_rto
        self.max_rto = max_rto
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.rto = self._bound(initial_rto)  # (2.1)
        if initial_rtt is not None:
            self.sample(initial_rtt)

    def _bound(self, rto: float) -> float:
        rto = math.ceil(round(rto * 1000, 6)) / 1000
        return min(self.max_rto, max(self.min_rto, rto))

    def sample(self, rtt: float) -> None:
        rtt = max(0.0, rtt)
        if self.srtt is None or self.rttvar is None:  # (2.2)
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:  # (2.3): RTTVAR first, with the old SRTT
            self.rttvar = (1 - self.BETA) * self.rttvar + self.BETA * abs(self.srtt - rtt)
            self.srtt = (1 - self.ALPHA) * self.srtt + self.ALPHA * rtt
        self.rto = self._bound(self.srtt + max(self.G, self.K * self.rttvar))


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class MessageReceived:
    message: bytes


@dataclass(frozen=True, slots=True)
class MessageTooLarge:
    """A data frame announced a message above max-message-size (§6.6). ``header`` is its
    forwarding header, or None when that is itself too large or malformed ("the receiver
    SHOULD close the TLS or DTLS session without sending an error")."""

    header: ForwardingHeader | None
    length: int


@dataclass(frozen=True, slots=True)
class SuspectChanged:
    suspect: bool


@dataclass(frozen=True, slots=True)
class LinkFailed:
    code: CloseCode
    detail: str


@dataclass(frozen=True, slots=True)
class LinkIdle:
    """Nothing has been sent for ``keepalive_interval``: the link's user should send a
    message on it (a Ping, §6.5.3) so that its acks keep measuring the link (§6.6.5). If
    nothing is sent, the next one comes an interval later."""


@dataclass(frozen=True, slots=True)
class MessageAcknowledged:
    """Datagram mode: the stop-and-wait sender saw an ack for a message (any of its
    transmissions). ``transmissions`` counts how often it was sent."""

    message: bytes
    transmissions: int


FramingEvent = (
    MessageReceived | MessageTooLarge | SuspectChanged | LinkFailed | MessageAcknowledged | LinkIdle
)


# ---------------------------------------------------------------- parsing


def _oversized(
    message_prefix: bytes | bytearray, length: int, max_size: int, ctx: WireContext
) -> MessageTooLarge | None:
    """Look at the start of an oversized message: None while more bytes are needed for its
    forwarding header, else the event (with the header when it fits and decodes)."""
    if len(message_prefix) < FORWARDING_HEADER_FIXED_LEN:
        if length < FORWARDING_HEADER_FIXED_LEN:
            return MessageTooLarge(None, length)
        return None
    lists = message_prefix[_LISTS_OFFSET:FORWARDING_HEADER_FIXED_LEN]
    header_len = FORWARDING_HEADER_FIXED_LEN + sum(
        int.from_bytes(lists[i : i + 2], "big") for i in range(0, 6, 2)
    )
    if header_len > max_size or header_len > length:
        return MessageTooLarge(None, length)
    if len(message_prefix) < header_len:
        return None
    # The header's length field counts the whole message; decode the header alone by
    # making it count just the header, then put the announced length back.
    head = bytearray(message_prefix[:header_len])
    head[_LENGTH_OFFSET : _LENGTH_OFFSET + 4] = header_len.to_bytes(4, "big")
    try:
        header = ForwardingHeader.decode(Reader(bytes(head)), ctx)
    except DecodeError:
        return MessageTooLarge(None, length)
    return MessageTooLarge(replace(header, length=length), length)


class StreamDeframer:
    """Cuts framed messages out of a TLS/TCP byte stream (§6.6.5).

    :meth:`next` returns the next whole frame, a :class:`MessageTooLarge` as soon as a
    data frame's header announces too much (§6.6: the error "can be sent and the session
    closed before the peer receives the complete message"), or None when it needs more
    bytes. An unknown frame type raises :class:`DecodeError`: on a stream there is no way
    to resynchronise.
    """

    def __init__(self, max_message_size: int, ctx: WireContext = DEFAULT_CONTEXT) -> None:
        self.max_message_size = max_message_size
        self._ctx = ctx
        self._buf = bytearray()
        self._done = False

    def feed(self, data: bytes) -> None:
        if not self._done:
            self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next(self) -> FramedMessage | MessageTooLarge | None:
        if self._done:
            return None
        n = frame_length(self._buf)
        if n is None:
            return None
        if self._buf[0] == FramedMessageType.data:
            length = n - DATA_HEADER_LEN
            if length > self.max_message_size:
                event = _oversized(self._buf[DATA_HEADER_LEN:], length, self.max_message_size, self._ctx)
                if event is not None:
                    self._done = True
                    self._buf.clear()
                return event
        if len(self._buf) < n:
            return None
        frame = bytes(self._buf[:n])
        del self._buf[:n]
        return decode_framed_message(Reader(frame), self._ctx)


def decode_datagram(
    datagram: bytes, max_message_size: int, ctx: WireContext = DEFAULT_CONTEXT
) -> FramedMessage | MessageTooLarge:
    """One framed message per datagram (DTLS, §6.6.3); trailing bytes are an error."""
    r = Reader(datagram)
    frame = decode_framed_message(r, ctx)
    r.expect_end("FramedMessage")
    if isinstance(frame, DataFrame) and len(frame.message) > max_message_size:
        event = _oversized(frame.message, len(frame.message), max_message_size, ctx)
        return event if event is not None else MessageTooLarge(None, len(frame.message))
    return frame


# ---------------------------------------------------------------- senders


class _SequenceSource:
    """§6.6.2: "Initially, the value is zero, and it increments by exactly one for each
    message sent over that connection" (wrapping at 2^32, as a uint32 must)."""

    def __init__(self) -> None:
        self.next = 0

    def take(self) -> int:
        seq = self.next
        self.next = (seq + 1) % SEQUENCE_MODULUS
        return seq


class _SentTimes:
    """When recently sent sequence numbers went out, for RTT samples (§6.6.3.1: "The
    sender keeps track of the time each message was sent for all recently sent messages")."""

    LIMIT = 4 * ACK_WINDOW

    def __init__(self) -> None:
        self._times: OrderedDict[int, float] = OrderedDict()

    def add(self, seq: int, now: float) -> None:
        self._times[seq] = now
        while len(self._times) > self.LIMIT:
            self._times.popitem(last=False)

    def rtt_sample(self, ack: AckFrame, now: float) -> float | None:
        """The RTT of the acknowledged frame, the first time it is acked. Only
        ``ack_sequence`` gives one: the ack was sent when that frame arrived."""
        sent = self._times.pop(ack.ack_sequence, None)
        return None if sent is None else now - sent


class StreamSender:
    """The sender on a reliable stream (§6.6.5): sequence numbers, RTT from the acks,
    and the age of the oldest unacknowledged frame for failure detection. Nothing is
    retransmitted; since TCP delivers in order, an ack for N also covers everything sent
    before N."""

    def __init__(self, rto: RtoEstimator) -> None:
        self.rto = rto
        self._seq = _SequenceSource()
        self._sent = _SentTimes()
        self._outstanding: OrderedDict[int, float] = OrderedDict()

    @property
    def next_sequence(self) -> int:
        return self._seq.next

    def frame(self, message: bytes, now: float) -> DataFrame:
        seq = self._seq.take()
        self._sent.add(seq, now)
        self._outstanding[seq] = now
        return DataFrame(seq, message)

    def on_ack(self, ack: AckFrame, now: float) -> None:
        rtt = self._sent.rtt_sample(ack, now)
        if rtt is not None:
            self.rto.sample(rtt)
        if ack.ack_sequence in self._outstanding:
            while self._outstanding:
                seq, _ = self._outstanding.popitem(last=False)
                if seq == ack.ack_sequence:
                    break
        for seq in acknowledged_sequences(ack)[1:]:
            self._outstanding.pop(seq, None)

    @property
    def oldest_unacked(self) -> float | None:
        """When the oldest frame still awaiting its ack was sent."""
        return next(iter(self._outstanding.values()), None)


@dataclass(slots=True)
class _InFlight:
    message: bytes
    transit: bool
    transmissions: int = 0
    sequences: set[int] | None = None
    deadline: float = 0.0


class StopAndWaitSender:
    """§6.6.3.1's stop-and-wait sender for unreliable links (reusable by DTLS).

    One message is unacknowledged at a time. A message is retransmitted, each time with a
    new sequence number, after RTO, 2·RTO, 4·RTO, ... until 5 transmissions in all, then
    the link fails (with RTO 500 ms: sends at 0, 0.5, 1.5, 3.5 and 7.5 s, failure at
    15.5 s). Transit messages (forwarded for others) are sent once: "transit nodes do not
    retransmit at this layer". Every ack is an RTT sample (retransmissions have their own
    sequence numbers, so there is no ambiguity), and the next message waits 10 ms after
    an ack. When no ack has arrived by the time the third retransmission goes out the link
    becomes suspect (§6.6.3.1's RECOMMENDED removal from the routing table), until an ack
    arrives.

    Drive it with :meth:`send`, :meth:`on_ack` and :meth:`on_timer`; it returns the
    frames to transmit and the :meth:`deadline` of its timer.
    """

    def __init__(self, rto: RtoEstimator, *, max_transmissions: int = 5, ack_spacing: float = 0.010) -> None:
        self.rto = rto
        self.max_transmissions = max_transmissions
        self.ack_spacing = ack_spacing
        self._seq = _SequenceSource()
        self._sent = _SentTimes()
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._current: _InFlight | None = None
        self._not_before = -math.inf
        self._retransmissions_since_ack = 0
        self.suspect = False
        self.failed = False
        self.acknowledged: deque[MessageAcknowledged] = deque()

    @property
    def queued(self) -> int:
        """Messages waiting, including the one in flight."""
        return len(self._queue) + (self._current is not None)

    @property
    def idle(self) -> bool:
        return self._current is None and not self._queue

    def send(self, message: bytes, now: float, *, transit: bool = False) -> list[DataFrame]:
        if self.failed:
            return []
        self._queue.append((message, transit))
        return self._pump(now)

    def deadline(self) -> float | None:
        if self.failed:
            return None
        if self._current is not None:
            return self._current.deadline
        if self._queue:
            return self._not_before
        return None

    def _pump(self, now: float) -> list[DataFrame]:
        if self._current is not None or not self._queue or now < self._not_before:
            return []
        message, transit = self._queue.popleft()
        self._current = _InFlight(message, transit, sequences=set())
        return [self._transmit(self._current, now)]

    def _transmit(self, inflight: _InFlight, now: float) -> DataFrame:
        seq = self._seq.take()
        self._sent.add(seq, now)
        assert inflight.sequences is not None
        inflight.sequences.add(seq)
        # "The node MUST double the time to wait after each retransmission."
        inflight.deadline = now + self.rto.rto * (1 << inflight.transmissions)
        inflight.transmissions += 1
        return DataFrame(seq, inflight.message)

    def on_ack(self, ack: AckFrame, now: float) -> tuple[list[DataFrame], bool]:
        """Returns frames to send and whether the suspect flag cleared."""
        if self.failed:
            return [], False
        rtt = self._sent.rtt_sample(ack, now)
        if rtt is not None:
            self.rto.sample(rtt)
        self._retransmissions_since_ack = 0
        recovered = self.suspect
        self.suspect = False
        current = self._current
        assert current is None or current.sequences is not None
        if (
            current is not None
            and current.sequences
            and current.sequences.intersection(acknowledged_sequences(ack))
        ):
            self.acknowledged.append(MessageAcknowledged(current.message, current.transmissions))
            self._current = None
            self._not_before = now + self.ack_spacing
        return self._pump(now), recovered

    def on_timer(self, now: float) -> tuple[list[DataFrame], bool, bool]:
        """Returns frames to send, whether the link just became suspect, and whether it
        failed (retransmissions exhausted)."""
        if self.failed:
            return [], False, False
        current = self._current
        if current is None:
            return self._pump(now), False, False
        if now < current.deadline:
            return [], False, False
        if current.transit:
            # Sent once; its loss is for end-to-end retransmission to repair.
            self._current = None
            became = self._count_retransmission()
            return self._pump(now), became, False
        if current.transmissions >= self.max_transmissions:
            self.failed = True
            return [], False, True
        frame = self._transmit(current, now)
        return [frame], self._count_retransmission(), False

    def _count_retransmission(self) -> bool:
        self._retransmissions_since_ack += 1
        if self._retransmissions_since_ack >= 3 and not self.suspect:
            self.suspect = True
            return True
        return False


# ---------------------------------------------------------------- the protocol core


class FramingConnection:
    """The per-link protocol: framing, acks, RTT, keepalives and failure detection.

    ``stream=True`` for TLS/TCP (§6.6.5), False for DTLS/UDP with SR (§6.6.3).
    ``initial_rtt`` seeds the RTO (§6.6.3.1: the RTT of ICE's STUN transaction).
    """

    def __init__(
        self,
        config: LinkConfig,
        *,
        stream: bool,
        now: float,
        initial_rtt: float | None = None,
        ctx: WireContext = DEFAULT_CONTEXT,
    ) -> None:
        self.config = config
        self.stream = stream
        self._ctx = ctx
        self.rto_estimator = RtoEstimator(config.initial_rto, config.min_rto, config.max_rto, initial_rtt)
        self._acks = AckGenerator()
        self._deframer = StreamDeframer(config.max_message_size, ctx) if stream else None
        self._stream_sender = StreamSender(self.rto_estimator) if stream else None
        self._sw_sender = (
            None
            if stream
            else StopAndWaitSender(
                self.rto_estimator,
                max_transmissions=config.max_transmissions,
                ack_spacing=config.ack_spacing,
            )
        )
        self._out: list[bytes] = []
        self._events: deque[FramingEvent] = deque()
        self._last_data_sent = now
        self.suspect = False
        self.failed = False
        self.discarded_datagrams = 0
        self.idle_events = 0
        """How often the link was reported idle (:class:`LinkIdle`)."""

    # -- inputs

    def send(self, message: bytes, now: float, *, transit: bool = False) -> None:
        """Frame one message. Raises :class:`MessageTooLargeError` above max-message-size."""
        if len(message) > self.config.max_message_size:
            raise MessageTooLargeError(
                f"message of {len(message)} bytes exceeds max-message-size {self.config.max_message_size}"
            )
        # No check of ``failed``: the Error_Message_Too_Large answer is sent after the
        # failure is known, before the link closes (§6.6).
        self._last_data_sent = now
        if self._stream_sender is not None:
            self._emit(self._stream_sender.frame(message, now))
        else:
            assert self._sw_sender is not None
            self._emit_all(self._sw_sender.send(message, now, transit=transit))

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the transport: a stream chunk, or one whole datagram."""
        if self.failed:
            return
        if self._deframer is not None:
            self._deframer.feed(data)
            while not self.failed:
                try:
                    item = self._deframer.next()
                except DecodeError as exc:
                    self._fail(CloseCode.PROTOCOL_ERROR, str(exc))
                    return
                if item is None:
                    return
                self._handle(item, now)
        else:
            try:
                item = decode_datagram(data, self.config.max_message_size, self._ctx)
            except DecodeError:
                # A datagram, unlike a stream, can be dropped without losing the next one.
                self.discarded_datagrams += 1
                return
            self._handle(item, now)

    def _handle(self, item: FramedMessage | MessageTooLarge, now: float) -> None:
        if isinstance(item, MessageTooLarge):
            self._events.append(item)
            self._fail(CloseCode.MESSAGE_TOO_LARGE, f"{item.length} bytes > {self.config.max_message_size}")
        elif isinstance(item, DataFrame):
            # §6.6.2: "the receiver ... SHOULD immediately send an ACK message".
            self._emit(self._acks.ack_for(item.sequence))
            if item.message:
                self._events.append(MessageReceived(item.message))
        else:
            self._on_ack(item, now)

    def _on_ack(self, ack: AckFrame, now: float) -> None:
        if self._stream_sender is not None:
            self._stream_sender.on_ack(ack, now)
            if self.suspect and self._stream_sender.oldest_unacked is None:
                self._set_suspect(False)
        else:
            assert self._sw_sender is not None
            frames, recovered = self._sw_sender.on_ack(ack, now)
            self._drain_acknowledged()
            if recovered:
                self._set_suspect(False)
            self._emit_all(frames)

    def handle_timer(self, now: float) -> None:
        if self.failed:
            return
        if self._stream_sender is not None:
            oldest = self._stream_sender.oldest_unacked
            if oldest is not None:
                if now >= oldest + self._failure_after():
                    self._fail(CloseCode.NO_ACK, f"no ack for {now - oldest:.3f} s")
                    return
                if not self.suspect and now >= oldest + self.rto_estimator.rto:
                    self._set_suspect(True)
        else:
            assert self._sw_sender is not None
            frames, became_suspect, failed = self._sw_sender.on_timer(now)
            if failed:
                self._fail(
                    CloseCode.RETRANSMISSIONS_EXHAUSTED,
                    f"{self._sw_sender.max_transmissions} transmissions unacknowledged",
                )
                return
            if became_suspect:
                self._set_suspect(True)
            self._emit_all(frames)
        keepalive = self._keepalive_due()
        if keepalive is not None and now >= keepalive:
            # Due again an interval from now, unless the user sends (it should) before.
            self._last_data_sent = now
            self.idle_events += 1
            self._events.append(LinkIdle())

    # -- outputs

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` next needs calling (None: no timer)."""
        if self.failed:
            return None
        deadlines: list[float] = []
        if self._stream_sender is not None:
            oldest = self._stream_sender.oldest_unacked
            if oldest is not None:
                deadlines.append(oldest + self._failure_after())
                if not self.suspect:
                    deadlines.append(oldest + self.rto_estimator.rto)
        else:
            assert self._sw_sender is not None
            d = self._sw_sender.deadline()
            if d is not None:
                deadlines.append(d)
        keepalive = self._keepalive_due()
        if keepalive is not None:
            deadlines.append(keepalive)
        return min(deadlines) if deadlines else None

    def data_to_send(self) -> list[bytes]:
        """Encoded frames to put on the wire, in order (each one datagram in datagram mode)."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> FramingEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def rtt(self) -> float | None:
        return self.rto_estimator.srtt

    @property
    def rto(self) -> float:
        return self.rto_estimator.rto

    @property
    def queued(self) -> int:
        """Messages the stop-and-wait sender still holds (always 0 on streams)."""
        return self._sw_sender.queued if self._sw_sender is not None else 0

    # -- internals

    def _failure_after(self) -> float:
        return max(self.config.failure_timeout, self.rto_estimator.rto)

    def _keepalive_due(self) -> float | None:
        interval = self.config.keepalive_interval
        if interval is None:
            return None
        if self._sw_sender is not None and not self._sw_sender.idle:
            return None
        return self._last_data_sent + interval

    def _emit(self, frame: DataFrame | AckFrame) -> None:
        self._out.append(frame.to_bytes())

    def _emit_all(self, frames: list[DataFrame]) -> None:
        for f in frames:
            self._emit(f)

    def _drain_acknowledged(self) -> None:
        assert self._sw_sender is not None
        while self._sw_sender.acknowledged:
            self._events.append(self._sw_sender.acknowledged.popleft())

    def _set_suspect(self, suspect: bool) -> None:
        if suspect != self.suspect:
            self.suspect = suspect
            self._events.append(SuspectChanged(suspect))

    def _fail(self, code: CloseCode, detail: str) -> None:
        if not self.failed:
            self.failed = True
            self._events.append(LinkFailed(code, detail))


# ---------------------------------------------------------------- the shared link glue


class FramedLink(Link):
    """A link whose bytes go through a :class:`FramingConnection`, with timers from a
    :class:`~reload_core.links.base.Clock`. Subclasses provide the transport:
    :meth:`_transmit` and :meth:`_shutdown_transport`, and call :meth:`_start_framing`
    when the transport is authenticated, :meth:`_receive` with incoming bytes and
    :meth:`_transport_closed` when it goes away."""

    def __init__(
        self,
        handler: LinkHandler,
        clock: Clock,
        config: LinkConfig,
        *,
        stream: bool,
        dialed: bool,
        expected_node_id: bytes | None = None,
        ctx: WireContext = DEFAULT_CONTEXT,
    ) -> None:
        super().__init__(handler, expected_node_id=expected_node_id)
        self.dialed = dialed
        self._clock = clock
        self.config = config
        self._stream = stream
        self._ctx = ctx
        self._framing: FramingConnection | None = None
        self._timer: TimerHandle | None = None
        self._timer_at: float | None = None
        self._processing = False

    # -- Link API

    @property
    def rtt(self) -> float | None:
        return self._framing.rtt if self._framing else None

    @property
    def rto(self) -> float:
        return self._framing.rto if self._framing else self.config.initial_rto

    @property
    def suspect(self) -> bool:
        return self._framing.suspect if self._framing else False

    @property
    def framing(self) -> FramingConnection | None:
        """The protocol core (for diagnostics and tests)."""
        return self._framing

    def send(self, message: bytes, *, transit: bool = False) -> None:
        if self._state is not LinkState.OPEN or self._framing is None:
            raise LinkNotOpenError(self._state, self._close_reason)
        self._framing.send(message, self._clock.time(), transit=transit)
        self._process()

    def close(self) -> None:
        # A handler may send (e.g. a LeaveAns) and close in one callback, while _process is
        # still on the stack and would not transmit once the link is closed: flush first.
        if self._state is LinkState.OPEN and self._framing is not None:
            out = self._framing.data_to_send()
            if out:
                self._transmit(out)
        self._finish(CloseReason(CloseCode.LOCAL))

    # -- for subclasses

    @abstractmethod
    def _transmit(self, chunks: list[bytes]) -> None:
        """Put encoded frames on the wire (datagram mode: one datagram each)."""

    @abstractmethod
    def _shutdown_transport(self, reason: CloseReason) -> None:
        """Close the transport, after what :meth:`_transmit` queued has gone out."""

    def _start_framing(
        self,
        remote_node_ids: tuple[bytes, ...],
        certificate: NodeCertificate | None = None,
        *,
        initial_rtt: float | None = None,
    ) -> None:
        """The transport is up and the peer authenticated: open the link."""
        if self._state is not LinkState.CONNECTING:
            return
        self._framing = FramingConnection(
            self.config, stream=self._stream, now=self._clock.time(), initial_rtt=initial_rtt, ctx=self._ctx
        )
        self._opened(remote_node_ids, certificate)
        self._process()

    def _receive(self, data: bytes) -> None:
        if self._framing is None or self._state is not LinkState.OPEN:
            return
        self._framing.receive(data, self._clock.time())
        self._process()

    def _transport_closed(self, reason: CloseReason) -> None:
        """The transport ended under us (EOF, reset, close_notify...)."""
        self._finish(reason, transport_gone=True)

    def _finish(self, reason: CloseReason, *, transport_gone: bool = False, notify: bool = True) -> None:
        was_open = self._state is LinkState.OPEN
        if self._state is LinkState.CLOSED:
            return
        self._cancel_timer()
        # An accepted link that never opened was never announced to the node.
        if not self._closed(reason, notify=notify and (was_open or self.dialed)):
            return
        if not transport_gone:
            self._shutdown_transport(reason)

    # -- driving the core

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._framing is None or self._state is not LinkState.OPEN:
            return
        self._framing.handle_timer(self._clock.time())
        self._process()

    def _process(self) -> None:
        if self._processing:
            return  # the outer call picks up what the handler queued
        self._processing = True
        try:
            framing = self._framing
            while framing is not None:
                out = framing.data_to_send()
                if out and self._state is LinkState.OPEN:
                    self._transmit(out)
                event = framing.next_event()
                if event is None:
                    break
                self._dispatch(event)
                if self._state is LinkState.CLOSED:
                    return
            self._rearm()
        finally:
            self._processing = False

    def _dispatch(self, event: FramingEvent) -> None:
        if isinstance(event, MessageReceived):
            self._notify("message_received", self, event.message)
        elif isinstance(event, MessageTooLarge):
            if event.header is not None:
                self._notify("message_too_large", self, event.header, event.length)
        elif isinstance(event, SuspectChanged):
            self._notify("link_suspect", self, event.suspect)
        elif isinstance(event, LinkIdle):
            # Optional for handlers: one without it just gets no keepalives.
            if getattr(self._handler, "link_idle", None) is not None:
                self._notify("link_idle", self)
        elif isinstance(event, LinkFailed):
            # Flush what the handler queued (e.g. Error_Message_Too_Large) before closing.
            assert self._framing is not None
            out = self._framing.data_to_send()
            if out:
                self._transmit(out)
            self._finish(CloseReason(event.code, event.detail))

    def _rearm(self) -> None:
        if self._framing is None or self._state is not LinkState.OPEN:
            return
        deadline = self._framing.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer_at is not None and (deadline is None or self._timer_at < deadline):
            # The armed timer fires first and re-arms for whatever is due then (handling a
            # timer early is harmless): no new timer for each frame that moves the deadline.
            return
        self._cancel_timer()
        if deadline is not None:
            self._timer_at = deadline
            self._timer = self._clock.call_later(deadline - self._clock.time(), self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None


__all__ = [
    "ACK_WINDOW",
    "SEQUENCE_MODULUS",
    "AckGenerator",
    "FramedLink",
    "FramingConnection",
    "FramingEvent",
    "LinkConfig",
    "LinkFailed",
    "LinkIdle",
    "MessageAcknowledged",
    "MessageReceived",
    "MessageTooLarge",
    "RtoEstimator",
    "StopAndWaitSender",
    "StreamDeframer",
    "StreamSender",
    "SuspectChanged",
    "acknowledged_sequences",
    "decode_datagram",
]

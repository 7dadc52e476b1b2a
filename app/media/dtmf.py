"""DTMF as RFC 4733 telephone-events, and as SIP INFO bodies: pure code, no I/O.

- :class:`TelephoneEvent`: the payload of RFC 4733 §2.3 (event, E, R, volume, duration),
  encoded and decoded; :func:`decode_events` reads a packet that reports several events
  (§2.5.1.5 / §2.5.2.4).
- :class:`Rfc4733Sender`: the sender's packet schedule of §2.5.1 for a queue of events: a
  first packet with the marker bit (§2.5.1.2), updates every ``interval`` with the same
  RTP timestamp and a growing duration, the final packet with E set sent three times
  (§2.5.1.4), and events longer than the 16-bit duration split into segments (§2.5.1.3).
- :class:`Rfc4733Receiver`: the receiver of §2.5.2: events are told apart by their RTP
  timestamp (duplicates and the repeated final packets are dropped), an event ends on
  its E bit, on the start of the next event, or after ``timeout`` with no news (lost
  end packets), and the segments of a long event are joined again.
- :func:`encode_dtmf_relay` / :func:`decode_dtmf_relay`: the de-facto
  ``application/dtmf-relay`` body of SIP INFO (RFC 6086 legacy use): ``Signal=5``,
  ``Duration=160`` (milliseconds).

Time is passed in (seconds on any monotonic clock); RTP timestamps and durations are in
units of the negotiated telephone-event clock rate, which is the audio codec's (8000 with
G.711, 48000 with Opus; RFC 4733 §2.1, RFC 7874 §3).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Final, TypeAlias

# RFC 4733 §3.2, Table 7: DTMF named events 0-15, and 16 (Flash).
DTMF_DIGITS: Final = "0123456789*#ABCD"
EVENT_FLASH: Final = 16
FLASH: Final = "!"  # our one-character name for the hook flash (and its dtmf-relay Signal)
DTMF_EVENTS: Final = frozenset(range(17))

MAX_DURATION: Final = 0xFFFF  # §2.3.5: 16 bits of timestamp units
PAYLOAD_SIZE: Final = 4
DEFAULT_VOLUME: Final = 10  # -10 dBm0 (§2.3.4: 0 to -63 dBm0, sign dropped)


class DtmfError(ValueError):
    """A digit we cannot send, or a telephone-event payload or dtmf-relay body we cannot read."""


def event_for_digit(digit: str) -> int:
    """The RFC 4733 event code (§3.2) of ``digit``: 0-9, *, #, A-D (either case), ! (flash)."""
    if digit == FLASH:
        return EVENT_FLASH
    index = DTMF_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise DtmfError(f"not a DTMF digit: {digit!r}")
    return index


def digit_for_event(event: int) -> str | None:
    """The digit of a DTMF event code (§3.2), or None for any other event."""
    if 0 <= event < len(DTMF_DIGITS):
        return DTMF_DIGITS[event]
    return FLASH if event == EVENT_FLASH else None


def parse_event_list(fmtp: str | None) -> frozenset[int]:
    """The events of an ``a=fmtp:PT 0-15,66`` parameter (RFC 4733 §7.1.1); with no fmtp the
    receiver takes 0-15 (§7.1.1). Ranges and values that make no sense are skipped."""
    if fmtp is None or not fmtp.strip():
        return frozenset(range(16))
    events: set[int] = set()
    for part in fmtp.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            continue
        first, last = int(low), int(high) if dash else int(low)
        if first <= last <= 255:
            events.update(range(first, last + 1))
    return frozenset(events)


@dataclass(frozen=True)
class TelephoneEvent:
    """The RFC 4733 §2.3 payload::

        |     event     |E|R| volume    |          duration             |

    ``volume`` is the power level in -dBm0 (0-63, §2.3.4); ``duration`` is in timestamp
    units since the event (or segment) began (§2.3.5). R is reserved: sent as 0, ignored
    on receipt (§2.3.3)."""

    event: int
    end: bool
    volume: int
    duration: int

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise DtmfError(f"event code {self.event} out of range")
        if not 0 <= self.volume <= 63:
            raise DtmfError(f"volume {self.volume} out of range 0-63")
        if not 0 <= self.duration <= MAX_DURATION:
            raise DtmfError(f"duration {self.duration} out of range 0-65535")

    def encode(self) -> bytes:
        return bytes(
            (self.event, (0x80 if self.end else 0) | self.volume, self.duration >> 8, self.duration & 0xFF)
        )

    @classmethod
    def decode(cls, data: bytes) -> TelephoneEvent:
        if len(data) != PAYLOAD_SIZE:
            raise DtmfError(f"a telephone-event is 4 bytes, not {len(data)}")
        return cls(data[0], bool(data[1] & 0x80), data[1] & 0x3F, (data[2] << 8) | data[3])


def decode_events(payload: bytes) -> tuple[TelephoneEvent, ...]:
    """Every event a packet reports: one, or several back to back (§2.5.1.5); DtmfError
    if the payload is empty or not a whole number of 4-byte reports."""
    if not payload or len(payload) % PAYLOAD_SIZE:
        raise DtmfError(f"telephone-event payload of {len(payload)} bytes")
    return tuple(
        TelephoneEvent.decode(payload[i : i + PAYLOAD_SIZE]) for i in range(0, len(payload), PAYLOAD_SIZE)
    )


def _ts_add(timestamp: int, delta: int) -> int:
    return (timestamp + delta) & 0xFFFFFFFF


def _ts_before(a: int, b: int) -> bool:
    """RTP timestamps compared on the 32-bit circle (RFC 1982 serial arithmetic)."""
    return a != b and ((b - a) & 0xFFFFFFFF) < 0x80000000


# --- the sender (§2.5.1) ---------------------------------------------------------------------


@dataclass(frozen=True)
class EventPacket:
    """One RTP packet for the I/O layer to send (it adds SSRC and sequence number)."""

    timestamp: int
    marker: bool
    report: TelephoneEvent

    @property
    def payload(self) -> bytes:
        return self.report.encode()


@dataclass(frozen=True)
class _Queued:
    event: int
    duration: int  # timestamp units
    volume: int


class _Sending:
    """The event on the air: where its current segment starts and what is left to send."""

    def __init__(self, queued: _Queued, start: float, timestamp: int) -> None:
        self.queued = queued
        self.start = start
        self.tick = 0  # the next update to send: tick k goes out at start + k * interval
        self.segment_timestamp = timestamp
        self.segment_offset = 0  # units from the event's start to the current segment's
        self.finals_left = 0  # repeats of the final packet still to send (§2.5.1.4)
        self.final: EventPacket | None = None
        self.segment_finals: list[tuple[EventPacket, int]] = []  # closed segments' final packets


class Rfc4733Sender:
    """The packet schedule of RFC 4733 §2.5.1 for queued events, one event at a time.

    :meth:`send` queues an event; :meth:`poll` returns the packets due at ``now`` given the
    RTP timestamp the media stream has at ``now`` (an event's timestamp is the instant it
    starts, §2.3.1); :meth:`next_deadline` says when to poll next. Packet k of an event
    goes out at ``start + k * interval`` and reports the duration up to the end of its
    interval, the way an audio packet covers its frame (§2.5.1.2); the last one has E set
    and is sent ``final_repeats`` times at the update interval (§2.5.1.4). Between
    events the sender keeps ``gap`` seconds of silence (a receiver needs a pause to tell
    two presses of the same key apart).
    """

    def __init__(
        self,
        clock_rate: int,
        *,
        interval: float = 0.05,
        final_repeats: int = 3,
        gap: float = 0.05,
    ) -> None:
        if clock_rate <= 0 or interval <= 0 or final_repeats < 1:
            raise ValueError("clock_rate, interval and final_repeats must be positive")
        self.clock_rate = clock_rate
        self.interval = interval
        self.final_repeats = final_repeats
        self.gap = gap
        self._interval_units = max(1, round(interval * clock_rate))
        self._queue: deque[_Queued] = deque()
        self._current: _Sending | None = None
        self._free_at: float | None = None  # when the next event may start

    @property
    def busy(self) -> bool:
        """An event is on the air or waiting."""
        return self._current is not None or bool(self._queue)

    @property
    def in_event(self) -> bool:
        """An event is being sent right now (audio packets may be held back meanwhile)."""
        return self._current is not None

    def send(self, event: int, duration: float, *, volume: int = DEFAULT_VOLUME) -> None:
        """Queue ``event`` lasting ``duration`` seconds (at least one update interval)."""
        units = max(self._interval_units, round(duration * self.clock_rate))
        TelephoneEvent(event, False, volume, 0)  # range checks
        self._queue.append(_Queued(event, units, volume))

    def cancel(self) -> None:
        """Drop the queued events; the one on the air still ends properly."""
        self._queue.clear()

    def next_deadline(self) -> float | None:
        if self._current is not None:
            return self._current.start + self._current.tick * self.interval
        if self._queue:
            return self._free_at if self._free_at is not None else float("-inf")
        return None

    def poll(self, now: float, rtp_now: int) -> list[EventPacket]:
        """The packets due at ``now``; ``rtp_now`` is the stream's RTP timestamp at ``now``."""
        out: list[EventPacket] = []
        while True:
            current = self._current
            if current is None:
                if not self._queue or (self._free_at is not None and now < self._free_at):
                    return out
                current = self._current = _Sending(self._queue.popleft(), now, rtp_now & 0xFFFFFFFF)
            due = current.start + current.tick * self.interval
            if now < due:
                return out
            out.extend(self._tick(current))
            current.tick += 1
            if current.final is not None and current.finals_left == 0 and not current.segment_finals:
                self._free_at = current.start + current.tick * self.interval + self.gap
                self._current = None
                # The next event starts on a later poll, with the RTP time of that moment.
                return out

    def _tick(self, s: _Sending) -> list[EventPacket]:
        out: list[EventPacket] = []
        # Final packets of closed segments go out again with the next updates (§2.5.1.4).
        still: list[tuple[EventPacket, int]] = []
        for packet, left in s.segment_finals:
            out.append(packet)
            if left > 1:
                still.append((packet, left - 1))
        s.segment_finals = still
        if s.final is not None:
            out.append(s.final)
            s.finals_left -= 1
            return out
        q = s.queued
        elapsed = min((s.tick + 1) * self._interval_units, q.duration)
        if elapsed - s.segment_offset > MAX_DURATION:
            # §2.5.1.3: the segment ends at the largest duration; the next one starts where
            # it ended, with its own timestamp and no E bit on the closed one.
            closing = EventPacket(
                s.segment_timestamp, False, TelephoneEvent(q.event, False, q.volume, MAX_DURATION)
            )
            out.append(closing)
            if self.final_repeats > 1:
                s.segment_finals.append((closing, self.final_repeats - 1))
            s.segment_offset += MAX_DURATION
            s.segment_timestamp = _ts_add(s.segment_timestamp, MAX_DURATION)
        ended = elapsed >= q.duration
        report = TelephoneEvent(q.event, ended, q.volume, elapsed - s.segment_offset)
        packet = EventPacket(s.segment_timestamp, s.tick == 0, report)
        out.append(packet)
        if ended:
            s.final = EventPacket(packet.timestamp, False, report)  # repeats carry no marker
            s.finals_left = self.final_repeats - 1
        return out


# --- the receiver (§2.5.2) --------------------------------------------------------------------


class EndedBy(enum.Enum):
    END_BIT = "end bit"  # a report with E set (§2.5.2.2)
    NEXT_EVENT = "next event"  # a new event began before this one's end came
    TIMEOUT = "timeout"  # no report for ``timeout`` seconds: the end packets were lost


@dataclass(frozen=True)
class ToneStarted:
    event: int
    timestamp: int  # RTP timestamp of the event's start


@dataclass(frozen=True)
class ToneEnded:
    event: int
    timestamp: int
    duration: int  # timestamp units, all segments together
    ended_by: EndedBy


ToneChange: TypeAlias = ToneStarted | ToneEnded


class _Receiving:
    def __init__(self, event: int, timestamp: int, now: float) -> None:
        self.event = event
        self.timestamp = timestamp  # the event's start
        self.segment_timestamp = timestamp
        self.closed = 0  # units of the segments before the current one
        self.segment_duration = 0
        self.last_news = now


class Rfc4733Receiver:
    """Telephone-event reports in, :class:`ToneStarted` / :class:`ToneEnded` out (§2.5.2).

    An event is named by its RTP timestamp (§2.5.2.1): a report for a new, later
    timestamp starts an event (the marker bit may have been lost with the first packet,
    so it is not needed); reports for the current timestamp update its duration; a
    report whose timestamp is the current segment's plus 0xFFFF, for the same event, is
    the next segment of a long event (§2.5.2.3). Reports for events already ended or
    older than the newest are dropped, which takes care of duplicates and of the
    repeated final packets. Reports with duration 0 are for state events, which DTMF is
    not (§2.3.5), and are ignored. :meth:`poll` ends an event whose end was lost.
    """

    def __init__(
        self, clock_rate: int, *, timeout: float = 0.25, events: frozenset[int] = DTMF_EVENTS
    ) -> None:
        self.clock_rate = clock_rate
        self.timeout = timeout
        self.events = events
        self._current: _Receiving | None = None
        self._newest: int | None = None  # the newest (segment) timestamp seen
        self._ended: deque[int] = deque(maxlen=16)  # timestamps of ended events and segments
        self.malformed = 0
        self.ignored = 0

    def next_deadline(self) -> float | None:
        return self._current.last_news + self.timeout if self._current is not None else None

    def poll(self, now: float) -> list[ToneChange]:
        current = self._current
        if current is not None and now >= current.last_news + self.timeout:
            return [self._finish(EndedBy.TIMEOUT)]
        return []

    def receive(
        self, timestamp: int, payload: bytes, now: float, *, marker: bool = False
    ) -> list[ToneChange]:
        """One RTP packet of the telephone-event payload type. ``marker`` is accepted for
        completeness: the timestamp alone tells a new event (§2.5.2.1)."""
        del marker
        try:
            reports = decode_events(payload)
        except DtmfError:
            self.malformed += 1
            return []
        out: list[ToneChange] = []
        at = timestamp & 0xFFFFFFFF
        for report in reports:
            out.extend(self._report(at, report, now))
            # §2.5.1.5: several events in one packet follow each other from its timestamp.
            at = _ts_add(at, report.duration)
        return out

    def _report(self, timestamp: int, report: TelephoneEvent, now: float) -> list[ToneChange]:
        if report.event not in self.events or report.duration == 0 or timestamp in self._ended:
            self.ignored += 1
            return []
        current = self._current
        if current is not None and timestamp == current.segment_timestamp:
            if report.event != current.event:
                self.ignored += 1
                return []
            current.segment_duration = max(current.segment_duration, report.duration)
            current.last_news = now
            return [self._finish(EndedBy.END_BIT)] if report.end else []
        if (
            current is not None
            and report.event == current.event
            and timestamp == _ts_add(current.segment_timestamp, MAX_DURATION)
        ):
            # The next segment of a long event: the last one lasted the largest duration.
            self._ended.append(current.segment_timestamp)
            current.closed += MAX_DURATION
            current.segment_timestamp = timestamp
            current.segment_duration = report.duration
            current.last_news = now
            self._newest = timestamp
            return [self._finish(EndedBy.END_BIT)] if report.end else []
        if self._newest is not None and _ts_before(timestamp, self._newest):
            self.ignored += 1  # late news of an older event
            return []
        out: list[ToneChange] = []
        if current is not None:
            out.append(self._finish(EndedBy.NEXT_EVENT))
        started = self._current = _Receiving(report.event, timestamp, now)
        started.segment_duration = report.duration
        self._newest = timestamp
        out.append(ToneStarted(report.event, timestamp))
        if report.end:
            out.append(self._finish(EndedBy.END_BIT))
        return out

    def _finish(self, how: EndedBy) -> ToneEnded:
        current = self._current
        assert current is not None
        self._current = None
        self._ended.append(current.segment_timestamp)
        return ToneEnded(current.event, current.timestamp, current.closed + current.segment_duration, how)


# --- SIP INFO (RFC 6086 legacy use) -------------------------------------------------------------

DTMF_RELAY: Final = "application/dtmf-relay"
DTMF_PLAIN: Final = "application/dtmf"
_FLASH_SIGNALS: Final = frozenset({FLASH, "16", "hf", "flash"})


def encode_dtmf_relay(digit: str, duration_ms: int) -> bytes:
    """The ``application/dtmf-relay`` body for ``digit`` (as the common phones and PBXs
    send it: ``Signal=`` the digit, ``!`` for flash; ``Duration=`` in milliseconds)."""
    event = event_for_digit(digit)
    signal = digit_for_event(event)
    return f"Signal={signal}\r\nDuration={max(1, int(duration_ms))}\r\n".encode("ascii")


def decode_dtmf_relay(body: bytes, content_type: str | None) -> tuple[str, int | None]:
    """(digit, duration in ms or None) of an INFO body: ``application/dtmf-relay`` (the
    key=value lines above; keys in any case) or ``application/dtmf`` (just the digit or
    its event code). DtmfError for anything else."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise DtmfError("dtmf body is not ASCII") from None
    if kind == DTMF_PLAIN:
        return _signal(text), None
    if kind != DTMF_RELAY:
        raise DtmfError(f"not a DTMF body: {content_type!r}")
    fields: dict[str, str] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        key, eq, value = line.partition("=")
        if eq:
            fields[key.strip().lower()] = value.strip()
    if "signal" not in fields:
        raise DtmfError("dtmf-relay body without Signal")
    digit = _signal(fields["signal"])
    duration = fields.get("duration")
    return digit, int(duration) if duration is not None and duration.isdigit() else None


def _signal(text: str) -> str:
    if text.lower() in _FLASH_SIGNALS:
        return FLASH
    if text.isdigit() and len(text) == 2:  # an event code (10-15) for * # A-D
        digit = digit_for_event(int(text))
        if digit is not None:
            return digit
    event_for_digit(text)  # DtmfError if not a digit
    return text.upper()

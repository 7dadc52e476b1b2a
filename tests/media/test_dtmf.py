"""RFC 4733 telephone-event: the payload codec (§2.3), the sender's packet sequence
(§2.5.1) and the receiver's state machine (§2.5.2), and the SIP INFO dtmf-relay body."""

from __future__ import annotations

import pytest

from app.media.dtmf import (
    MAX_DURATION,
    DtmfError,
    EndedBy,
    EventPacket,
    Rfc4733Receiver,
    Rfc4733Sender,
    TelephoneEvent,
    ToneChange,
    ToneEnded,
    ToneStarted,
    decode_dtmf_relay,
    decode_events,
    digit_for_event,
    encode_dtmf_relay,
    event_for_digit,
    parse_event_list,
)

pytestmark = pytest.mark.media


# --- the payload (§2.3) -------------------------------------------------------------------------


def test_payload_layout() -> None:
    # event 5, E set, volume 10 (-10 dBm0), duration 800 (100 ms at 8 kHz)
    assert TelephoneEvent(5, True, 10, 800).encode() == bytes([0x05, 0x8A, 0x03, 0x20])
    assert TelephoneEvent(11, False, 63, 0xFFFF).encode() == bytes([0x0B, 0x3F, 0xFF, 0xFF])
    assert TelephoneEvent.decode(bytes([0x05, 0x8A, 0x03, 0x20])) == TelephoneEvent(5, True, 10, 800)


def test_reserved_bit_is_ignored_on_receipt() -> None:
    # §2.3.3: R is sent as 0 and ignored by the receiver.
    assert TelephoneEvent.decode(bytes([0x01, 0xCA, 0x00, 0xA0])) == TelephoneEvent(1, True, 10, 160)


def test_field_ranges() -> None:
    for bad in [(256, False, 0, 1), (1, False, 64, 1), (1, False, 0, 0x10000), (1, False, -1, 1)]:
        with pytest.raises(DtmfError):
            TelephoneEvent(*bad)


def test_several_events_in_one_packet_and_malformed_payloads() -> None:
    two = TelephoneEvent(1, True, 10, 800).encode() + TelephoneEvent(2, False, 10, 160).encode()
    assert decode_events(two) == (TelephoneEvent(1, True, 10, 800), TelephoneEvent(2, False, 10, 160))
    for bad in [b"", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"]:
        with pytest.raises(DtmfError):
            decode_events(bad)


def test_event_codes() -> None:
    # §3.2 Table 7
    assert [event_for_digit(d) for d in "0123456789*#ABCD!"] == list(range(17))
    assert event_for_digit("b") == 13
    assert [digit_for_event(e) for e in (0, 9, 10, 11, 12, 15, 16, 17)] == [
        "0",
        "9",
        "*",
        "#",
        "A",
        "D",
        "!",
        None,
    ]
    for bad in ["E", "x", "12", "", " "]:
        with pytest.raises(DtmfError):
            event_for_digit(bad)


def test_fmtp_event_lists() -> None:
    assert parse_event_list("0-16") == frozenset(range(17))
    assert parse_event_list("0-15,66,70-72") == frozenset([*range(16), 66, 70, 71, 72])
    assert parse_event_list(None) == frozenset(range(16))  # §7.1.1 default
    assert parse_event_list("x,3-1,5") == frozenset([5])


# --- the sender (§2.5.1) ---------------------------------------------------------------------------


def run_sender(
    sender: Rfc4733Sender, *, rate: int, rtp_at_zero: int = 1000
) -> list[tuple[float, EventPacket]]:
    """Poll the sender at its deadlines until it is done; (time, packet) pairs."""
    out: list[tuple[float, EventPacket]] = []
    now = 0.0
    for _ in range(10_000):
        deadline = sender.next_deadline()
        if deadline is None:
            return out
        now = max(now, deadline)
        for packet in sender.poll(now, rtp_at_zero + round(now * rate)):
            out.append((now, packet))
    raise AssertionError("sender never finished")


def test_sender_sequence_for_a_short_digit() -> None:
    sender = Rfc4733Sender(8000)  # 50 ms updates, 3 final packets
    sender.send(event_for_digit("5"), 0.2)
    sent = run_sender(sender, rate=8000)
    times = [t for t, _ in sent]
    assert times == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.25])
    assert {p.timestamp for _, p in sent} == {1000}  # one event, one timestamp (§2.3.1)
    assert [p.marker for _, p in sent] == [True, False, False, False, False, False]
    assert [p.report.duration for _, p in sent] == [400, 800, 1200, 1600, 1600, 1600]
    assert [p.report.end for _, p in sent] == [False, False, False, True, True, True]
    assert all(p.report.event == 5 and p.report.volume == 10 for _, p in sent)
    assert sent[3][1].payload == bytes([0x05, 0x8A, 0x06, 0x40])


def test_sender_at_48_khz_and_a_digit_shorter_than_an_update() -> None:
    sender = Rfc4733Sender(48000)
    sender.send(event_for_digit("#"), 0.04)  # one update long: the first packet is the end
    sent = run_sender(sender, rate=48000)
    assert [(p.marker, p.report.end, p.report.duration) for _, p in sent] == [
        (True, True, 2400),  # rounded up to one 50 ms update
        (False, True, 2400),
        (False, True, 2400),
    ]


def test_sender_spaces_events_and_gives_each_its_start_time() -> None:
    sender = Rfc4733Sender(8000, gap=0.05)
    for d in "12":
        sender.send(event_for_digit(d), 0.1)
    sent = run_sender(sender, rate=8000)
    first = [(t, p) for t, p in sent if p.report.event == 1]
    second = [(t, p) for t, p in sent if p.report.event == 2]
    assert len(first) == len(second) == 4  # update, end, end, end
    start2 = second[0][0]
    assert start2 == pytest.approx(first[-1][0] + 0.05 + 0.05)  # after the last final + gap
    assert second[0][1].timestamp == 1000 + round(start2 * 8000)
    assert second[0][1].marker and not any(p.marker for _, p in second[1:])


def test_long_event_is_split_into_segments() -> None:
    # §2.5.1.3: 10 s at 8 kHz is 80,000 units, more than 0xFFFF: two segments.
    sender = Rfc4733Sender(8000)
    sender.send(event_for_digit("0"), 10.0)
    sent = [p for _, p in run_sender(sender, rate=8000, rtp_at_zero=0xFFFF_FF00)]
    first_ts = 0xFFFF_FF00
    second_ts = (first_ts + MAX_DURATION) & 0xFFFFFFFF  # wraps around 2^32
    seg1 = [p for p in sent if p.timestamp == first_ts]
    seg2 = [p for p in sent if p.timestamp == second_ts]
    assert len(seg1) + len(seg2) == len(sent)
    closing = [p for p in seg1 if p.report.duration == MAX_DURATION]
    assert len(closing) == 3 and not any(p.report.end for p in seg1)  # no E between segments
    assert seg1[0].marker and not any(p.marker for p in seg2)
    assert [p.report.end for p in seg2[-3:]] == [True, True, True]
    assert seg2[-1].report.duration == 80_000 - MAX_DURATION


def test_sender_validates_and_cancels() -> None:
    sender = Rfc4733Sender(8000)
    with pytest.raises(DtmfError):
        sender.send(300, 0.1)
    sender.send(1, 0.1)
    sender.send(2, 0.1)
    first = sender.poll(0.0, 0)
    assert first and sender.in_event
    sender.cancel()  # event 2 dropped, event 1 still ends properly
    rest = run_sender(sender, rate=8000)
    assert {p.report.event for _, p in rest} == {1}
    assert rest[-1][1].report.end and not sender.busy


# --- the receiver (§2.5.2) ---------------------------------------------------------------------------


def feed(
    receiver: Rfc4733Receiver, sent: list[tuple[float, EventPacket]], *, delay: float = 0.02
) -> list[ToneChange]:
    out: list[ToneChange] = []
    for t, p in sent:
        out += receiver.poll(t + delay)
        out += receiver.receive(p.timestamp, p.payload, t + delay, marker=p.marker)
    return out


def sent_digits(digits: str, rate: int = 8000, duration: float = 0.1) -> list[tuple[float, EventPacket]]:
    sender = Rfc4733Sender(rate)
    for d in digits:
        sender.send(event_for_digit(d), duration)
    return run_sender(sender, rate=rate)


def ended(changes: list[ToneChange]) -> list[ToneEnded]:
    return [c for c in changes if isinstance(c, ToneEnded)]


def test_round_trip_of_a_digit_sequence() -> None:
    sent = sent_digits("1234567890*#ABCD")
    receiver = Rfc4733Receiver(8000)
    changes = feed(receiver, sent)
    ends = ended(changes)
    assert "".join(digit_for_event(e.event) or "?" for e in ends) == "1234567890*#ABCD"
    assert all(e.duration == 800 and e.ended_by is EndedBy.END_BIT for e in ends)
    starts = [c for c in changes if isinstance(c, ToneStarted)]
    assert [s.timestamp for s in starts] == [e.timestamp for e in ends]
    assert receiver.next_deadline() is None


def test_duplicated_packets_count_once() -> None:
    sent = sent_digits("55")  # the same key twice: two events, told apart by timestamp
    doubled = [x for pair in zip(sent, sent, strict=True) for x in pair]
    ends = ended(feed(Rfc4733Receiver(8000), doubled))
    assert [(e.event, e.duration) for e in ends] == [(5, 800), (5, 800)]


def test_lost_first_packet_still_starts_the_event() -> None:
    sent = sent_digits("7")
    changes = feed(Rfc4733Receiver(8000), sent[1:])  # marker packet lost
    assert [type(c) for c in changes] == [ToneStarted, ToneEnded]
    assert ended(changes)[0].duration == 800


def test_lost_end_packets_end_the_event_by_timeout() -> None:
    sent = sent_digits("9", duration=0.2)
    kept = [(t, p) for t, p in sent if not p.report.end]  # all three end packets lost
    receiver = Rfc4733Receiver(8000, timeout=0.25)
    changes = feed(receiver, kept)
    assert not ended(changes)
    last = kept[-1][0] + 0.02
    assert receiver.next_deadline() == pytest.approx(last + 0.25)
    assert receiver.poll(last + 0.2) == []
    [end] = receiver.poll(last + 0.25)
    assert end == ToneEnded(9, sent[0][1].timestamp, 1200, EndedBy.TIMEOUT)


def test_lost_end_packets_then_next_event_ends_the_first() -> None:
    sent = sent_digits("12")
    kept = [(t, p) for t, p in sent if not (p.report.event == 1 and p.report.end)]
    ends = ended(feed(Rfc4733Receiver(8000, timeout=10.0), kept))
    assert [(e.event, e.ended_by) for e in ends] == [(1, EndedBy.NEXT_EVENT), (2, EndedBy.END_BIT)]


def test_only_an_end_packet_arrives() -> None:
    sent = sent_digits("4")
    changes = feed(Rfc4733Receiver(8000), [sent[-1]])
    assert [type(c) for c in changes] == [ToneStarted, ToneEnded]
    assert ended(changes)[0].duration == 800


def test_late_and_reordered_packets() -> None:
    sent = sent_digits("12")
    ones = [x for x in sent if x[1].report.event == 1]
    twos = [x for x in sent if x[1].report.event == 2]
    receiver = Rfc4733Receiver(8000, timeout=10.0)
    # event 2 begins before event 1's last update arrives: the late update is dropped.
    changes = feed(receiver, [ones[0], *twos[:1], ones[1], *twos[1:]])
    ends = ended(changes)
    assert [(e.event, e.ended_by) for e in ends] == [(1, EndedBy.NEXT_EVENT), (2, EndedBy.END_BIT)]
    assert ends[0].duration == 400  # only its first update was in time
    # an update with a smaller duration than known does not shrink the event
    receiver = Rfc4733Receiver(8000, timeout=0.25)
    p0, p1 = (p for _, p in sent_digits("1", duration=0.2)[:2])
    assert (p0.report.duration, p1.report.duration) == (400, 800)
    receiver.receive(p1.timestamp, p1.payload, 0.0)
    receiver.receive(p0.timestamp, p0.payload, 0.01)
    [end] = receiver.poll(0.26)
    assert isinstance(end, ToneEnded) and end.duration == 800


def test_long_event_segments_are_joined() -> None:
    sender = Rfc4733Sender(8000)
    sender.send(event_for_digit("0"), 10.0)
    sent = run_sender(sender, rate=8000, rtp_at_zero=0xFFFF_FF00)
    changes = feed(Rfc4733Receiver(8000), sent)
    assert [type(c) for c in changes] == [ToneStarted, ToneEnded]
    assert ended(changes)[0] == ToneEnded(0, 0xFFFF_FF00, 80_000, EndedBy.END_BIT)
    # the same with the closing packets of the first segment all lost
    no_close = [(t, p) for t, p in sent if p.report.duration != MAX_DURATION]
    assert ended(feed(Rfc4733Receiver(8000), no_close))[0].duration == 80_000


def test_long_event_at_48_khz() -> None:
    # 48 kHz: a segment holds only 1.365 s; a 3 s press is three segments, one digit.
    sender = Rfc4733Sender(48000)
    sender.send(event_for_digit("*"), 3.0)
    sent = run_sender(sender, rate=48000)
    assert len({p.timestamp for _, p in sent}) == 3
    ends = ended(feed(Rfc4733Receiver(48000), sent))
    assert [(e.event, e.duration) for e in ends] == [(10, 144_000)]


def test_receiver_ignores_what_is_not_dtmf() -> None:
    receiver = Rfc4733Receiver(8000)
    assert receiver.receive(100, b"\x05\x8a", 0.0) == []  # malformed
    assert receiver.receive(200, TelephoneEvent(5, False, 10, 0).encode(), 0.0) == []  # duration 0: a state
    assert receiver.receive(300, TelephoneEvent(66, True, 10, 800).encode(), 0.0) == []  # not DTMF
    assert (receiver.malformed, receiver.ignored) == (1, 2)


def test_several_events_in_one_packet_are_told_in_order() -> None:
    payload = TelephoneEvent(1, True, 10, 800).encode() + TelephoneEvent(2, True, 10, 800).encode()
    ends = ended(Rfc4733Receiver(8000).receive(5000, payload, 0.0))
    assert [(e.event, e.timestamp) for e in ends] == [(1, 5000), (2, 5800)]


# --- SIP INFO bodies -----------------------------------------------------------------------------------


def test_dtmf_relay_bodies() -> None:
    assert encode_dtmf_relay("5", 160) == b"Signal=5\r\nDuration=160\r\n"
    assert encode_dtmf_relay("a", 100) == b"Signal=A\r\nDuration=100\r\n"
    assert encode_dtmf_relay("!", 250) == b"Signal=!\r\nDuration=250\r\n"
    relay = "application/dtmf-relay"
    assert decode_dtmf_relay(b"Signal=5\r\nDuration=160\r\n", relay) == ("5", 160)
    assert decode_dtmf_relay(b"signal= # \nduration=90", "Application/DTMF-Relay; x=y") == ("#", 90)
    assert decode_dtmf_relay(b"Signal=11\r\n", relay) == ("#", None)
    assert decode_dtmf_relay(b"Signal=hf\r\nDuration=500\r\n", relay) == ("!", 500)
    assert decode_dtmf_relay(b"7", "application/dtmf") == ("7", None)
    for body, ctype in [
        (b"Duration=160\r\n", relay),
        (b"Signal=Z\r\n", relay),
        (b"Signal=5", "text/plain"),
        (b"\xff", relay),
    ]:
        with pytest.raises(DtmfError):
            decode_dtmf_relay(body, ctype)

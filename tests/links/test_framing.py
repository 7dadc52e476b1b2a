"""§6.6.2 framing protocol core: ack bitmasks, RTT/RTO, stream deframing, keepalives,
suspicion and failure (no sockets, no clock: time is passed in)."""

from __future__ import annotations

import pytest

from reload_core.links.base import CloseCode, MessageTooLargeError
from reload_core.links.framing import (
    AckGenerator,
    FramingConnection,
    LinkConfig,
    LinkFailed,
    LinkIdle,
    MessageReceived,
    MessageTooLarge,
    RtoEstimator,
    StreamDeframer,
    SuspectChanged,
    acknowledged_sequences,
    decode_datagram,
)
from reload_core.wire.buffer import DecodeError, Reader
from reload_core.wire.framing import AckFrame, DataFrame, decode_framed_message
from reload_core.wire.message import NodeDestination

from .support import make_message

# ---------------------------------------------------------------- the ack bitmask


def acks(received: list[int]) -> list[AckFrame]:
    gen = AckGenerator()
    return [gen.ack_for(s) for s in received]


def test_ack_marks_previous_sequence_numbers_bit_n_minus_m() -> None:
    assert acks([0, 1, 2, 3])[-1] == AckFrame(3, 0b111)  # M=2,1,0 -> bits 1,2,3
    assert acks([0])[-1] == AckFrame(0, 0)
    # M=2 is bit 3 (value 4), M=0 is bit 5 (value 16)
    assert acks([0, 2, 5])[-1] == AckFrame(5, 4 | 16)


def test_ack_window_is_the_32_most_recent_and_n_minus_32_excluded() -> None:
    assert acks([0, 32])[-1] == AckFrame(32, 0)  # M = N-32 is not "greater than N-32"
    assert acks([1, 32])[-1] == AckFrame(32, 1 << 30)  # N-M = 31, the highest bit used
    last = acks(list(range(41)))[-1]
    # The 32 previously received are 8..39; of those 9..39 are within (N-32, N).
    assert last == AckFrame(40, 0x7FFFFFFF)
    assert acknowledged_sequences(last) == list(range(40, 8, -1))


def test_ack_ignores_later_numbers_and_wraps_at_2_to_32() -> None:
    assert acks([5, 3])[-1] == AckFrame(3, 0)  # 5 is not less than 3
    assert acks([0xFFFFFFFF, 0])[-1] == AckFrame(0, 1)
    assert acknowledged_sequences(AckFrame(0, 1)) == [0, 0xFFFFFFFF]
    assert acknowledged_sequences(AckFrame(7, 1 << 31)) == [7, (7 - 32) % (1 << 32)]


def test_ack_window_counts_received_packets_not_numbers() -> None:
    # 33 packets received: the oldest (0) has left the 32-packet memory.
    gen = AckGenerator()
    for s in [0, *range(100, 132)]:
        gen.ack_for(s)
    assert gen.ack_for(20) == AckFrame(20, 0)


# ---------------------------------------------------------------- RFC 6298


def test_rto_follows_rfc6298_and_rounds_up_to_the_millisecond() -> None:
    est = RtoEstimator(initial_rto=1.0, min_rto=0.01, max_rto=60.0)
    assert est.rto == 1.0 and est.srtt is None  # (2.1)
    est.sample(0.1)  # (2.2)
    assert est.srtt == pytest.approx(0.1) and est.rttvar == pytest.approx(0.05)
    assert est.rto == pytest.approx(0.3)
    est.sample(0.2)  # (2.3): RTTVAR .0625, SRTT .1125, RTO .3625 -> .363
    assert est.rttvar == pytest.approx(0.0625) and est.srtt == pytest.approx(0.1125)
    assert est.rto == pytest.approx(0.363)


def test_rto_bounds_and_initial_rtt_seed() -> None:
    assert RtoEstimator(min_rto=1.0, initial_rtt=0.01).rto == 1.0  # (2.4)
    assert RtoEstimator(max_rto=60.0, initial_rtt=100.0).rto == 60.0  # (2.5)
    seeded = RtoEstimator(initial_rto=0.5, min_rto=0.001, initial_rtt=0.02)  # §6.6.3.1: ICE's RTT
    assert seeded.srtt == 0.02 and seeded.rto == pytest.approx(0.06)


# ---------------------------------------------------------------- stream deframing


def frames_bytes(*frames: DataFrame | AckFrame) -> bytes:
    return b"".join(f.to_bytes() for f in frames)


def drain(d: StreamDeframer) -> list[object]:
    out: list[object] = []
    while (item := d.next()) is not None:
        out.append(item)
    return out


def test_deframer_reassembles_frames_fed_byte_by_byte() -> None:
    m1, m2 = make_message(400, 1), make_message(700, 2)
    stream = frames_bytes(DataFrame(0, m1), AckFrame(9, 5), DataFrame(1, m2), DataFrame(2, b""))
    d = StreamDeframer(5000)
    got: list[object] = []
    for i in range(len(stream)):
        d.feed(stream[i : i + 1])
        got += drain(d)
    assert got == [DataFrame(0, m1), AckFrame(9, 5), DataFrame(1, m2), DataFrame(2, b"")]
    assert d.buffered == 0


def test_deframer_flags_an_oversized_message_from_its_header_alone() -> None:
    big = make_message(6000, transaction_id=0x1122334455667788)
    frame = DataFrame(0, big).to_bytes()
    d = StreamDeframer(5000)
    d.feed(frame[:60])  # the 8-byte frame header and 52 bytes of the message
    assert d.next() is None  # via/destination lists not complete yet
    d.feed(frame[60:120])
    event = d.next()
    assert isinstance(event, MessageTooLarge)
    assert event.length == 6000
    assert event.header is not None
    assert event.header.transaction_id == 0x1122334455667788
    assert event.header.length == 6000
    assert event.header.via_list == (NodeDestination(bytes(range(16))),)
    d.feed(frame[120:])
    assert d.next() is None  # nothing more after the verdict


def test_deframer_oversized_with_oversized_header_gives_no_header() -> None:
    big = make_message(3000)
    patched = bytearray(big)
    patched[32:34] = (2000).to_bytes(2, "big")  # via_list_length beyond max-message-size
    d = StreamDeframer(1000)
    d.feed(DataFrame(0, bytes(patched)).to_bytes()[:100])
    assert d.next() == MessageTooLarge(None, 3000)


def test_deframer_rejects_unknown_frame_type() -> None:
    d = StreamDeframer(5000)
    d.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(DecodeError):
        d.next()


def test_datagram_decoding() -> None:
    msg = make_message(500)
    assert decode_datagram(DataFrame(3, msg).to_bytes(), 5000) == DataFrame(3, msg)
    with pytest.raises(DecodeError):
        decode_datagram(DataFrame(3, msg).to_bytes() + b"x", 5000)
    event = decode_datagram(DataFrame(3, make_message(900, 7)).to_bytes(), 800)
    assert isinstance(event, MessageTooLarge) and event.header is not None
    assert event.header.transaction_id == 7


# ---------------------------------------------------------------- the stream protocol core


CFG = LinkConfig(failure_timeout=3.0, keepalive_interval=2.0, initial_rto=1.0, min_rto=0.01)


def pair(config: LinkConfig = CFG) -> tuple[FramingConnection, FramingConnection]:
    return FramingConnection(config, stream=True, now=0.0), FramingConnection(config, stream=True, now=0.0)


def pump(src: FramingConnection, dst: FramingConnection, now: float) -> None:
    for chunk in src.data_to_send():
        dst.receive(chunk, now)


def events(conn: FramingConnection) -> list[object]:
    out: list[object] = []
    while (e := conn.next_event()) is not None:
        out.append(e)
    return out


def test_data_is_acked_and_acks_give_rtt() -> None:
    a, b = pair()
    msg = make_message(500)
    a.send(msg, 0.0)
    [wire] = a.data_to_send()
    assert decode_framed_message(Reader(wire)) == DataFrame(0, msg)  # sequence starts at 0
    b.receive(wire, 0.05)
    assert events(b) == [MessageReceived(msg)]
    [ack] = b.data_to_send()
    assert decode_framed_message(Reader(ack)) == AckFrame(0, 0)
    a.receive(ack, 0.1)
    assert a.rtt == pytest.approx(0.1)
    assert a.rto == pytest.approx(0.3)
    a.send(msg, 1.0)
    assert decode_framed_message(Reader(a.data_to_send()[0])) == DataFrame(1, msg)


def test_unacked_data_makes_the_link_suspect_at_rto_then_failed() -> None:
    a, _ = pair()
    a.send(make_message(400), 0.5)
    a.data_to_send()
    assert a.get_timer() == pytest.approx(1.5)  # sent + initial RTO
    a.handle_timer(1.5)
    assert events(a) == [SuspectChanged(True)]
    assert a.get_timer() == pytest.approx(2.5)  # keepalive due: idle since 0.5
    a.handle_timer(2.5)
    assert events(a) == [LinkIdle()] and a.idle_events == 1
    assert a.get_timer() == pytest.approx(3.5)  # failure_timeout after the oldest frame
    a.handle_timer(3.5)
    [failed] = events(a)
    assert isinstance(failed, LinkFailed) and failed.code is CloseCode.NO_ACK
    assert a.get_timer() is None


def test_late_ack_clears_suspicion() -> None:
    a, b = pair()
    a.send(make_message(400), 0.0)
    pump(a, b, 0.1)
    a.handle_timer(1.0)
    assert events(a) == [SuspectChanged(True)]
    pump(b, a, 1.2)
    assert events(a) == [SuspectChanged(False)]
    assert a.rtt == pytest.approx(1.2)


def test_an_ack_covers_everything_before_it_on_a_stream() -> None:
    a, b = pair()
    for i in range(3):
        a.send(make_message(400, i), 0.0)
    chunks = a.data_to_send()
    for c in chunks:
        b.receive(c, 0.0)
    last_ack = b.data_to_send()[-1]
    a.receive(last_ack, 0.01)
    assert a.get_timer() == pytest.approx(2.0)  # only the keepalive remains


def test_an_idle_link_asks_for_a_keepalive_and_sends_no_empty_frame() -> None:
    """§6.6.5: the link's user sends a real message (the node's Ping) when told the link is
    idle; the core itself puts nothing on the wire, and the message's ack gives the RTT."""
    a, b = pair()
    assert a.get_timer() == pytest.approx(2.0)
    a.handle_timer(2.0)
    assert events(a) == [LinkIdle()]
    assert a.data_to_send() == []
    assert a.get_timer() == pytest.approx(4.0)  # told again an interval later if nothing is sent
    probe = make_message(400, 77)
    a.send(probe, 2.0)
    [wire] = a.data_to_send()
    assert decode_framed_message(Reader(wire)) == DataFrame(0, probe)
    b.receive(wire, 2.01)
    assert events(b) == [MessageReceived(probe)]
    pump(b, a, 2.02)
    assert a.rtt == pytest.approx(0.02)
    assert a.get_timer() == pytest.approx(4.0)
    a.handle_timer(4.0)
    assert events(a) == [LinkIdle()] and a.idle_events == 2


def test_an_empty_data_frame_from_a_peer_is_acked_but_not_delivered() -> None:
    """Robustness: another implementation's empty message (legal in the §6.6.2 grammar)
    is acked and dropped, not taken for a RELOAD message."""
    _, b = pair()
    b.receive(DataFrame(0, b"").to_bytes(), 1.0)
    assert events(b) == []
    [ack] = b.data_to_send()
    assert decode_framed_message(Reader(ack)) == AckFrame(0, 0)


def test_no_idle_event_while_the_stop_and_wait_sender_is_busy() -> None:
    conn = FramingConnection(CFG, stream=False, now=0.0)
    conn.send(make_message(400), 0.0)
    conn.data_to_send()
    for t in (1.0, 3.0):  # retransmissions, never an idle report
        conn.handle_timer(t)
    assert all(not isinstance(e, LinkIdle) for e in events(conn))
    assert conn.idle_events == 0


def test_garbage_fails_the_stream_and_too_large_is_reported_then_fails() -> None:
    a, _ = pair()
    a.receive(b"\x00\x01\x02", 0.0)
    [failed] = events(a)
    assert isinstance(failed, LinkFailed) and failed.code is CloseCode.PROTOCOL_ERROR

    small = LinkConfig(max_message_size=1000)
    b = FramingConnection(small, stream=True, now=0.0)
    b.receive(DataFrame(0, make_message(2000, 42)).to_bytes()[:200], 0.0)
    too_large, failed = events(b)
    assert isinstance(too_large, MessageTooLarge) and too_large.header is not None
    assert too_large.header.transaction_id == 42
    assert isinstance(failed, LinkFailed) and failed.code is CloseCode.MESSAGE_TOO_LARGE
    assert b.data_to_send() == []  # the oversized frame is not acked
    b.send(make_message(500, 42), 0.0)  # the error answer still goes out before the close
    assert len(b.data_to_send()) == 1


def test_send_checks_max_message_size() -> None:
    conn = FramingConnection(LinkConfig(max_message_size=1000), stream=True, now=0.0)
    with pytest.raises(MessageTooLargeError):
        conn.send(bytes(1001), 0.0)
    conn.send(bytes(1000), 0.0)

"""In-memory links on a virtual clock: the same Link interface and framing path as TLS."""

from __future__ import annotations

import pytest

from reload_core.links.base import (
    CloseCode,
    Link,
    LinkNotOpenError,
    LinkState,
    MessageTooLargeError,
    VirtualClock,
)
from reload_core.links.framing import LinkConfig
from reload_core.links.memory import MemoryLink, MemoryNetwork
from reload_core.wire.codes import OverlayLinkType
from reload_core.wire.message import ForwardingHeader

from .support import Recorder, make_message

A, B, C = b"\xaa" * 16, b"\xbb" * 16, b"\xcc" * 16
FAST = LinkConfig(failure_timeout=3.0, keepalive_interval=1.0, initial_rto=0.5, min_rto=0.1)


def network(**kw: object) -> tuple[VirtualClock, MemoryNetwork]:
    clock = VirtualClock()
    kw.setdefault("config", FAST)
    return clock, MemoryNetwork(clock, latency=0.01, **kw)  # type: ignore[arg-type]


def connected(net: MemoryNetwork, clock: VirtualClock, **kw: object) -> tuple[MemoryLink, Recorder, Recorder]:
    ra, rb = Recorder(), Recorder()
    net.endpoint("b", B, rb, **kw)  # type: ignore[arg-type]
    link = net.endpoint("a", A, ra).connect("b", B)
    assert link.state is LinkState.CONNECTING
    clock.advance(0.05)
    assert link.is_open and ra.opened == [link]
    return link, ra, rb


def test_messages_both_ways_with_node_ids_and_rtt() -> None:
    clock, net = network()
    link, ra, rb = connected(net, clock)
    [server] = rb.opened
    assert link.remote_node_id == B and server.remote_node_id == A
    assert link.link_type is OverlayLinkType.TLS_TCP_FH_NO_ICE
    m1, m2 = make_message(500, 1), make_message(4000, 2)
    link.send(m1)
    server.send(m2)
    clock.advance(0.1)
    assert rb.payloads() == [m1] and ra.payloads() == [m2]
    assert link.rtt == pytest.approx(0.02) and server.rtt == pytest.approx(0.02)


def test_echo_from_inside_the_handler_and_byte_sized_segments() -> None:
    clock, net = network(segment_size=1)
    rb = Recorder(on_message=lambda lk, m: lk.send(m[::-1]))
    net.endpoint("b", B, rb)
    ra = Recorder()
    link = net.endpoint("a", A, ra).connect("b")
    clock.advance(0.05)
    msgs = [make_message(400 + i, i) for i in range(5)]
    for m in msgs:
        link.send(m)
    clock.advance(0.1)
    assert ra.payloads() == [m[::-1] for m in msgs]


def test_dialing_the_wrong_node_id_or_nobody_fails() -> None:
    clock, net = network()
    ra, rb = Recorder(), Recorder()
    net.endpoint("b", B, rb)
    a = net.endpoint("a", A, ra)
    wrong = a.connect("b", C)
    nobody = a.connect("nowhere")
    clock.advance(1.0)
    assert ra.opened == []
    r1, r2 = ra.closed_reason(wrong), ra.closed_reason(nobody)
    assert r1 is not None and r1.code is CloseCode.WRONG_NODE_ID
    assert r2 is not None and r2.code is CloseCode.CONNECT_FAILED
    # b had accepted before a looked at its identity, then saw the link closed.
    [(_server, reason)] = rb.closed
    assert reason.code is CloseCode.REMOTE


def test_close_is_seen_by_the_peer() -> None:
    clock, net = network()
    link, ra, rb = connected(net, clock)
    link.close()
    link.close()
    clock.advance(0.1)
    assert ra.closed == [(link, ra.closed[0][1])] and ra.closed[0][1].code is CloseCode.LOCAL
    [(_server, reason)] = rb.closed
    assert reason.code is CloseCode.REMOTE
    with pytest.raises(LinkNotOpenError):
        link.send(make_message(400))


def test_send_refuses_messages_above_max_message_size() -> None:
    clock, net = network()
    link, _, _ = connected(net, clock)
    with pytest.raises(MessageTooLargeError):
        link.send(bytes(FAST.max_message_size + 1))


def run_until_closed(clock: VirtualClock, rec: Recorder, limit: float) -> float:
    """Step the clock until the recorder hears of a closed link; returns when."""
    while not rec.closed and clock.time() < limit:
        clock.advance(0.01)
    return clock.time()


def test_silent_crash_is_suspected_then_failed_within_the_configured_time() -> None:
    clock, net = network()
    link, ra, rb = connected(net, clock)
    crashed_at = clock.time()
    net._lookup("b").crash()  # type: ignore[union-attr]
    clock.advance(1.6)
    assert ra.suspects == [(link, True)] and link.is_open  # keepalive at +1 s, unacked for an RTO
    limit = crashed_at + FAST.keepalive_interval + FAST.failure_timeout  # type: ignore[operator]
    closed_at = run_until_closed(clock, ra, limit + 1)
    reason = ra.closed_reason(link)
    assert reason is not None and reason.code is CloseCode.NO_ACK
    assert closed_at <= limit + 0.011
    assert rb.closed == []  # a dead node tells its handler nothing


def test_partition_is_detected_like_a_crash() -> None:
    clock, net = network()
    link, ra, rb = connected(net, clock)
    net.partition("a", "b")
    start = clock.time()
    closed_at = run_until_closed(clock, ra, start + 10)
    assert ra.closed_reason(link).code is CloseCode.NO_ACK  # type: ignore[union-attr]
    assert closed_at <= start + FAST.keepalive_interval + FAST.failure_timeout + 0.011  # type: ignore[operator]
    [server] = rb.opened
    assert rb.closed_reason(server).code is CloseCode.NO_ACK  # type: ignore[union-attr]


def test_crash_with_fin_is_seen_at_once_and_partition_can_heal() -> None:
    clock, net = network()
    link, ra, _rb = connected(net, clock)
    net.partition("a", "b")
    clock.advance(1.7)  # keepalive at 1 s, RTO 0.5 s
    assert ra.suspects == [(link, True)]
    net.heal("a", "b")
    clock.advance(1.0)  # the next keepalive is acked
    assert ra.suspects == [(link, True), (link, False)] and link.is_open

    net._lookup("b").crash(fin=True)  # type: ignore[union-attr]
    clock.advance(0.02)
    reason = ra.closed_reason(link)
    assert reason is not None and reason.code is CloseCode.REMOTE


def test_too_large_message_is_answered_then_the_link_closes() -> None:
    clock, net = network()
    answers: list[int] = []

    def answer(link: Link, header: ForwardingHeader, length: int) -> None:
        answers.append(header.transaction_id)
        link.send(make_message(400, header.transaction_id))  # stands for Error_Message_Too_Large

    rb = Recorder(on_too_large=answer)
    net.endpoint("b", B, rb, config=LinkConfig(max_message_size=1000))
    ra = Recorder()
    link = net.endpoint("a", A, ra, config=LinkConfig(max_message_size=10000)).connect("b")
    clock.advance(0.05)
    link.send(make_message(3000, transaction_id=99))
    clock.advance(0.1)
    assert answers == [99]
    [(server, header, length)] = rb.too_large
    assert length == 3000 and header.length == 3000
    assert rb.payloads() == []
    assert rb.closed_reason(server) is not None
    assert rb.closed_reason(server).code is CloseCode.MESSAGE_TOO_LARGE  # type: ignore[union-attr]
    assert ra.payloads() == [make_message(400, 99)]
    assert ra.closed_reason(link).code is CloseCode.REMOTE  # type: ignore[union-attr]


def test_many_nodes_on_one_virtual_clock() -> None:
    clock = VirtualClock()
    net = MemoryNetwork(clock, latency=0.005, config=LinkConfig(keepalive_interval=None))
    n = 300
    recorders = [Recorder() for _ in range(n)]
    eps = [net.endpoint(f"n{i}", i.to_bytes(16, "big"), recorders[i]) for i in range(n)]
    links = [eps[i].connect(f"n{(i + 1) % n}", ((i + 1) % n).to_bytes(16, "big")) for i in range(n)]
    clock.advance(0.1)
    assert all(link.is_open for link in links)
    msg = make_message(400)
    for link in links:
        link.send(msg)
    clock.advance(0.1)
    assert all(r.payloads() == [msg] for r in recorders)


def test_unframed_links_carry_whole_messages_in_order_and_close_like_framed_ones() -> None:
    clock, net = network(framed=False)
    link, ra, rb = connected(net, clock)
    [server] = rb.opened
    msgs = [make_message(400 + i, i) for i in range(5)]
    for m in msgs:
        link.send(m)
    assert rb.payloads() == []  # one latency away
    clock.advance(0.01)
    assert rb.payloads() == msgs
    assert link.framing is None and link.rtt is None and not link.suspect
    assert net.messages_sent == 5 and net.frames_sent == 5  # no acknowledgements
    with pytest.raises(MessageTooLargeError):
        link.send(bytes(FAST.max_message_size + 1))
    server.send(msgs[0])
    link.close()
    clock.advance(0.1)
    assert ra.payloads() == []  # arrived after the close: dropped
    [(_server, reason)] = rb.closed
    assert reason.code is CloseCode.REMOTE
    with pytest.raises(LinkNotOpenError):
        link.send(msgs[0])


def test_only_lossless_whole_message_streams_go_unframed() -> None:
    with pytest.raises(ValueError):
        network(framed=False, stream=False)
    with pytest.raises(ValueError):
        network(framed=False, segment_size=10)

"""§6.6.3.1 stop-and-wait sender over lossy in-memory datagram links on a virtual clock."""

from __future__ import annotations

from reload_core.links.base import CloseCode, Link, VirtualClock
from reload_core.links.framing import LinkConfig, MessageAcknowledged, RtoEstimator, StopAndWaitSender
from reload_core.links.memory import DropFrames, LossFactory, LossPattern, MemoryNetwork, NoLoss, RandomLoss
from reload_core.wire.framing import AckFrame, FramedMessageType

from .support import Recorder, make_message

A, B = b"\xaa" * 16, b"\xbb" * 16
SR = LinkConfig(initial_rto=0.5, min_rto=0.5, keepalive_interval=None)


class Timed:
    """A loss pattern that notes when each data frame is sent, and drops per ``inner``."""

    def __init__(self, inner: LossPattern) -> None:
        self.clock: VirtualClock | None = None
        self.inner = inner
        self.data_times: list[float] = []

    def drops(self, frame: bytes) -> bool:
        if frame[0] == FramedMessageType.data and self.clock is not None:
            self.data_times.append(self.clock.time())
        return self.inner.drops(frame)


def setup(
    a_to_b: LossPattern, b_to_a: LossPattern | None = None, config: LinkConfig = SR, latency: float = 0.01
) -> tuple[VirtualClock, Link, Recorder, Recorder]:
    clock = VirtualClock()
    for p in (a_to_b, b_to_a):
        if isinstance(p, Timed):
            p.clock = clock
    patterns = {("a", "b"): a_to_b, ("b", "a"): b_to_a or NoLoss()}
    loss: LossFactory = lambda src, dst: patterns[(src, dst)]  # noqa: E731
    net = MemoryNetwork(clock, latency=latency, stream=False, config=config, loss=loss)
    ra, rb = Recorder(), Recorder()
    net.endpoint("b", B, rb)
    link = net.endpoint("a", A, ra).connect("b", B)
    clock.advance(1.0)
    assert link.is_open and len(rb.opened) == 1
    return clock, link, ra, rb


def test_rto_doubles_and_the_sender_gives_up_after_5_transmissions() -> None:
    timed = Timed(RandomLoss(1.0, kinds=[FramedMessageType.data]))
    clock, link, ra, _ = setup(timed)
    start = clock.time()
    link.send(make_message(400))
    clock.run_until(start + 15.49)
    assert link.is_open
    clock.run_until(start + 15.51)
    sent = [round(t - start, 6) for t in timed.data_times]
    assert sent == [0.0, 0.5, 1.5, 3.5, 7.5]  # §6.6.3.1's example for RTO 500 ms
    reason = ra.closed_reason(link)
    assert reason is not None and reason.code is CloseCode.RETRANSMISSIONS_EXHAUSTED
    # Suspect when the third retransmission went out, failed after the fifth's wait (8 s).
    assert ra.suspects == [(link, True)]
    assert not link.is_open


def test_suspect_after_third_retransmission_then_recovers_when_acks_resume() -> None:
    timed = Timed(DropFrames(range(4), kinds=[FramedMessageType.data]))
    clock, link, ra, rb = setup(timed)
    msg = make_message(400)
    link.send(msg)
    clock.advance(3.6)
    assert ra.suspects == [(link, True)]
    clock.advance(5.0)  # the fifth transmission, at 7.5 s, gets through
    assert ra.suspects == [(link, True), (link, False)]
    assert rb.payloads() == [msg]
    assert link.is_open


def test_nothing_lost_nothing_duplicated_when_data_frames_are_lost() -> None:
    loss = RandomLoss(0.25, seed=1234, kinds=[FramedMessageType.data])
    clock, link, ra, rb = setup(loss)
    sent = [make_message(400, i) for i in range(60)]
    for m in sent:
        link.send(m)
    clock.advance(120.0)
    assert rb.payloads() == sent
    assert link.is_open and ra.closed == []
    assert link.framing is not None and link.framing.queued == 0


def test_lost_acks_cost_one_duplicate_each_and_nothing_is_lost() -> None:
    # Retransmissions carry new sequence numbers (§6.6.2), so the receiver cannot tell a
    # retransmission from a new message: duplicates are the transaction layer's to drop.
    ack_loss = DropFrames({2, 5, 6, 11}, kinds=[FramedMessageType.ack])
    clock, link, _ra, rb = setup(NoLoss(), ack_loss)
    sent = [make_message(400, i) for i in range(10)]
    for m in sent:
        link.send(m)
    clock.advance(60.0)
    got = rb.payloads()
    deduplicated = [m for i, m in enumerate(got) if i == 0 or got[i - 1] != m]
    assert deduplicated == sent
    assert len(got) - len(sent) == len(ack_loss.dropped) == 4
    assert link.is_open


def test_next_message_waits_10ms_after_the_ack() -> None:
    timed = Timed(NoLoss())
    clock, link, _, rb = setup(timed, latency=0.001)
    start = clock.time()
    link.send(make_message(400, 1))
    link.send(make_message(400, 2))
    clock.advance(1.0)
    times = [round(t - start, 6) for t in timed.data_times]
    assert times == [0.0, 0.012]  # ack back at 2 ms, then the 10 ms pause
    assert len(rb.payloads()) == 2


def test_transit_messages_are_not_retransmitted() -> None:
    timed = Timed(DropFrames({0}, kinds=[FramedMessageType.data]))
    clock, link, _ra, rb = setup(timed)
    start = clock.time()
    lost, after = make_message(400, 1), make_message(400, 2)
    link.send(lost, transit=True)
    link.send(after)
    clock.advance(5.0)
    assert rb.payloads() == [after]
    assert [round(t - start, 6) for t in timed.data_times] == [0.0, 0.5]
    assert link.is_open


def test_sender_core_reports_acknowledgements_and_uses_every_ack_for_rtt() -> None:
    sender = StopAndWaitSender(RtoEstimator(initial_rto=0.5, min_rto=0.001))
    [f0] = sender.send(b"m1", 0.0)
    assert sender.send(b"m2", 0.0) == []  # one unacknowledged message at a time
    frames, _, _ = sender.on_timer(0.5)
    [f1] = frames
    assert (f0.sequence, f1.sequence) == (0, 1) and f1.message == b"m1"
    frames, recovered = sender.on_ack(AckFrame(1, 0), 0.6)
    assert frames == [] and not recovered
    assert list(sender.acknowledged) == [MessageAcknowledged(b"m1", 2)]
    assert sender.rto.srtt is not None and abs(sender.rto.srtt - 0.1) < 1e-9
    assert sender.deadline() is not None and abs(sender.deadline() - 0.61) < 1e-9  # type: ignore[operator]
    frames, _, _ = sender.on_timer(0.61)
    assert [f.message for f in frames] == [b"m2"] and frames[0].sequence == 2

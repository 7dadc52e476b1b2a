"""The G.107 E-model (R, Ie,eff, Id, MOS) against known points, the estimate from a
call's statistics, and the monitor on a real call between two MediaSessions."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

import pytest

from app.media.events import FirstAudio
from app.media.quality import (
    G711_NO_PLC,
    G711_PLC,
    CallQuality,
    EModelParameters,
    QualityMonitor,
    Satisfaction,
    codec_impairment,
    delay_impairment,
    effective_equipment_impairment,
    estimate_quality,
    mos_from_r,
    r_factor,
    satisfaction,
    voip_r_factor,
)
from app.media.session import AudioOptions, MediaSession
from app.media.stats import MediaStats

from .dtmf_support import T, connect, interface_address_or_skip

pytestmark = pytest.mark.media


def test_defaults_give_r_93_2_and_mos_4_41() -> None:
    # G.107 §7: with all parameters at their Table 1 defaults, R = 93.2.
    r = r_factor()
    assert r == pytest.approx(93.2, abs=0.05)
    assert mos_from_r(93.2) == pytest.approx(4.41, abs=0.005)
    assert satisfaction(r) is Satisfaction.VERY_SATISFIED


def test_mos_from_r() -> None:
    # G.107 Annex B: MOS = 1 + 0.035R + R(R-60)(100-R)7e-6, 1 below R=0, 4.5 above 100.
    assert mos_from_r(-5) == 1.0 and mos_from_r(0) == 1.0
    assert mos_from_r(100) == 4.5 and mos_from_r(120) == 4.5
    assert mos_from_r(50) == pytest.approx(2.575)
    assert mos_from_r(80) == pytest.approx(4.024)
    assert mos_from_r(70) == pytest.approx(3.6, abs=0.01)
    # the polynomial dips under 1 for R below about 6.5: the MOS scale stops at 1
    assert mos_from_r(3) == 1.0
    values = [mos_from_r(r) for r in range(0, 101)]
    assert all(b >= a for a, b in itertools.pairwise(values))


def test_effective_equipment_impairment() -> None:
    # §7.5: Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl), G.113 Appendix I figures
    assert effective_equipment_impairment(0, 25.1, 0) == 0
    assert effective_equipment_impairment(0, 25.1, 2) == pytest.approx(7.011, abs=0.001)
    assert effective_equipment_impairment(0, 4.3, 1) == pytest.approx(17.925, abs=0.001)
    assert effective_equipment_impairment(0, 25.1, 2, burst_ratio=2) == pytest.approx(7.280, abs=0.001)
    assert effective_equipment_impairment(11, 19, 0) == 11  # G.729A with no loss
    assert r_factor(EModelParameters(Ie=11)) == pytest.approx(93.2 - 11, abs=0.05)


@pytest.mark.parametrize("delay", [0, 50, 100, 150, 200, 250, 300])
def test_delay_impairment_follows_the_known_curve(delay: float) -> None:
    """Cole and Rosenbluth's fit of G.107's Id with default echo figures (ACM CCR 31(2),
    2001): Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3), good to about a point up to 300 ms."""
    fit = 0.024 * delay + (0.11 * (delay - 177.3) if delay > 177.3 else 0.0)
    full = delay_impairment(EModelParameters(T=delay, Ta=delay, Tr=2 * delay))
    assert full == pytest.approx(fit, abs=1.0)


def test_absolute_delay_term() -> None:
    # §7.4, Idd for Ta > 100 ms with X = log2(Ta/100): Ta = 200 -> X = 1, Ta = 400 -> X = 2
    assert delay_impairment(EModelParameters(Ta=100)) == pytest.approx(delay_impairment(EModelParameters()))
    idd_200 = delay_impairment(EModelParameters(Ta=200)) - delay_impairment(EModelParameters())
    idd_400 = delay_impairment(EModelParameters(Ta=400)) - delay_impairment(EModelParameters())
    assert idd_200 == pytest.approx(25 * (2 ** (1 / 6) - 3 * (1 + 3**-6) ** (1 / 6) + 2), abs=1e-9)
    assert idd_400 == pytest.approx(25 * (65 ** (1 / 6) - 3 * (1 + (2 / 3) ** 6) ** (1 / 6) + 2), abs=1e-9)
    assert idd_400 == pytest.approx(24.07, abs=0.01)


def test_voip_points() -> None:
    lan = voip_r_factor(one_way_delay_ms=60, loss_percent=0, codec=G711_PLC)
    assert mos_from_r(lan) > 4.3
    lossy = voip_r_factor(one_way_delay_ms=60, loss_percent=5, codec=G711_PLC)
    assert lan - lossy == pytest.approx(95 * 5 / (5 + 25.1), abs=1e-9)  # only Ie,eff differs
    assert 3.7 < mos_from_r(lossy) < 4.0
    # without concealment the same loss is far worse
    assert voip_r_factor(one_way_delay_ms=60, loss_percent=5, codec=G711_NO_PLC) < 60
    far = voip_r_factor(one_way_delay_ms=400, loss_percent=0, codec=G711_PLC)
    assert satisfaction(far) is Satisfaction.MANY_DISSATISFIED
    assert codec_impairment("opus/48000/2").delay_ms == 26.5
    assert codec_impairment("PCMA/8000") == G711_PLC
    assert codec_impairment(None) == G711_PLC


def stats(**changes: object) -> MediaStats:
    base = MediaStats(
        send_codec="opus/48000/2",
        receive_codec="PCMU/8000",
        rtt=0.1,
        jitter=0.005,
        packets_received=1000,
        packets_lost=0,
        fraction_lost=0.0,
        packets_sent=1000,
        remote_packets_lost=0,
        remote_fraction_lost=0.02,
        remote_jitter=0.04,
        playout=None,
        output_latency=0.02,
        capture_dropped_frames=0,
        late_packets=0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_estimate_from_statistics() -> None:
    first = stats(packets_received=1000, packets_lost=10)
    q = estimate_quality(first)
    # 10 lost of 1010 over the whole call; delay = 50 (RTT/2) + 60 + 20 (buffer + device) + 20 (G.711)
    assert q.receive.loss_percent == pytest.approx(100 * 10 / 1010)
    assert q.receive.one_way_delay_ms == pytest.approx(150.0)
    assert q.receive.codec == "PCMU/8000" and q.rtt_ms == pytest.approx(100.0)
    expected = voip_r_factor(one_way_delay_ms=150, loss_percent=100 * 10 / 1010, codec=G711_PLC)
    assert q.receive.r_factor == pytest.approx(expected)
    assert q.receive.mos == pytest.approx(mos_from_r(expected))
    # the far end's view: 2% lost, its buffer ~2x its 40 ms jitter, Opus' 26.5 ms
    assert q.send is not None
    assert q.send.loss_percent == pytest.approx(2.0)
    assert q.send.one_way_delay_ms == pytest.approx(50 + 80 + 26.5)
    # loss counted over the interval since the previous sample
    second = stats(packets_received=1490, packets_lost=20)
    assert estimate_quality(second, first).receive.loss_percent == pytest.approx(100 * 10 / 500)
    clean = stats(packets_received=2000, packets_lost=20)
    assert estimate_quality(clean, second).receive.loss_percent == 0.0
    # no RTCP from the far end yet
    early = estimate_quality(stats(rtt=None, remote_fraction_lost=None))
    assert early.rtt_ms is None and early.send is None
    # nothing arrived since the last sample (no path, or the far end is gone): all lost
    silent = estimate_quality(stats(packets_received=2000, packets_lost=20), clean)
    assert silent.receive.loss_percent == 100.0 and silent.receive.mos < 1.5
    assert estimate_quality(stats(packets_received=0, packets_lost=0)).receive.mos < 1.5
    # ... unless the call is on hold: nothing is sent then, by design
    held = estimate_quality(stats(packets_received=2000, packets_lost=20), clean, expecting_audio=False)
    assert held.receive.loss_percent == 0.0


async def test_monitor_on_a_call() -> None:
    interface_address_or_skip()
    options = AudioOptions(use_devices=False)
    caller, callee = MediaSession(audio=options), MediaSession(audio=options)
    monitor = None
    try:
        await connect(caller, callee)
        await callee.wait_event(FirstAudio, T)
        samples: list[CallQuality] = []
        with_rtt: asyncio.Future[CallQuality] = asyncio.get_running_loop().create_future()

        def listener(q: CallQuality) -> None:
            samples.append(q)
            if q.rtt_ms is not None and q.send is not None and not with_rtt.done():
                with_rtt.set_result(q)

        monitor = QualityMonitor(callee.stats, listener, interval=0.5)
        first = await monitor.sample()
        assert first.receive.codec is not None and first.receive.codec.startswith("opus")
        monitor.start()
        q = await asyncio.wait_for(with_rtt, T)  # RTCP reports both ways give RTT and the far end's loss
        assert q.rtt_ms is not None and 0 < q.rtt_ms < 50  # one machine
        assert q.receive.loss_percent == 0.0 and q.receive.mos > 4.3
        assert q.send is not None and q.send.loss_percent == 0.0 and q.send.mos > 4.3
        assert monitor.latest is q or monitor.latest in samples
        assert len(samples) >= 2
    finally:
        if monitor is not None:
            await monitor.stop()
        await caller.close()
        await callee.close()

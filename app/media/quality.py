"""Call quality: a MOS estimate from RTCP figures by the ITU-T G.107 E-model.

:func:`r_factor` is the E-model of G.107 (06/2015) §7 with every parameter
(:class:`EModelParameters`, defaults of its Table 1, which give R = 93.2):

    R = Ro - Is - Id - Ie,eff + A

with the basic signal-to-noise ratio Ro (§7.2), the simultaneous impairments Is (§7.3),
the delay impairments Id = Idte + Idle + Idd (§7.4: talker echo, listener echo, and
absolute delay) and the effective equipment impairment Ie,eff = Ie + (95 - Ie) * Ppl /
(Ppl / BurstR + Bpl) (§7.5: codec and packet loss). :func:`mos_from_r` is its Annex B.

For a VoIP call (:func:`voip_r_factor`) the delays are the mouth-to-ear delay Ta: half
the round trip, plus our playout buffer and output device, plus the codec's packet time
and look-ahead (T = Ta for the talker echo path, which an echo canceller keeps at the
default TELR of 65 dB, and Tr = 2 Ta). Codec figures (:data:`CODECS`) are from G.113
Appendix I for G.711 (Ie 0; Bpl 25.1 with its Appendix I concealment, 4.3 without);
Opus and G.722 are wideband codecs that G.107's narrowband scale has no figures for: we
rate them as G.711 (Ie 0: at least as good in the narrowband band) with concealment
(Bpl 25.1, since our playout buffer conceals every codec's losses), a documented
approximation rather than a G.113 value.

:class:`QualityMonitor` samples a MediaSession's ``stats()`` every few seconds and tells
its listener a frozen :class:`CallQuality`: what we hear (our loss and delay) and, from
the far end's receiver reports, what it hears of us.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from app.media.stats import MediaStats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EModelParameters:
    """G.107 Table 1 parameters (defaults); delays in ms, levels in dB, Ppl in percent."""

    SLR: float = 8.0  # send loudness rating
    RLR: float = 2.0  # receive loudness rating
    STMR: float = 15.0  # sidetone masking rating
    LSTR: float = 18.0  # listener sidetone rating
    Ds: float = 3.0  # D-value of the telephone, send side
    Dr: float = 3.0  # D-value of the telephone, receive side
    TELR: float = 65.0  # talker echo loudness rating
    WEPL: float = 110.0  # weighted echo path loss
    T: float = 0.0  # mean one-way delay of the echo path
    Tr: float = 0.0  # round-trip delay in a 4-wire loop
    Ta: float = 0.0  # absolute (mouth-to-ear) delay
    qdu: float = 1.0  # number of quantization distortion units
    Ie: float = 0.0  # equipment impairment factor
    Bpl: float = 4.3  # packet-loss robustness factor (G.711 without concealment)
    Ppl: float = 0.0  # random packet-loss probability, percent
    BurstR: float = 1.0  # burst ratio (1: random loss)
    Nc: float = -70.0  # circuit noise referred to the 0 dBr point, dBm0p
    Nfor: float = -64.0  # noise floor at the receive side, dBmp
    Ps: float = 35.0  # room noise at the send side, dB(A)
    Pr: float = 35.0  # room noise at the receive side, dB(A)
    A: float = 0.0  # advantage factor
    mT: float = 100.0  # minimum perceivable delay (Idd)
    sT: float = 1.0  # delay sensitivity (Idd)


def _ro_and_no(p: EModelParameters) -> tuple[float, float]:
    """§7.2: the basic signal-to-noise ratio Ro and the total noise No."""
    olr = p.SLR + p.RLR
    nos = p.Ps - p.SLR - p.Ds - 100 + 0.004 * (p.Ps - olr - p.Ds - 14) ** 2
    pre = p.Pr + 10 * math.log10(1 + 10 ** ((10 - p.LSTR) / 10))
    nor = p.RLR - 121 + pre + 0.008 * (pre - 35) ** 2
    nfo = p.Nfor + p.RLR
    no = 10 * math.log10(10 ** (p.Nc / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10))
    return 15 - 1.5 * (p.SLR + no), no


def _is(p: EModelParameters, ro: float, no: float) -> tuple[float, float]:
    """§7.3: Is = Iolr + Ist + Iq; also Ist, which the talker echo needs."""
    olr = p.SLR + p.RLR
    xolr = olr + 0.2 * (64 + no - p.RLR)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    stmro = -10 * math.log10(10 ** (-p.STMR / 10) + math.exp(-p.T / 4) * 10 ** (-p.TELR / 10))
    ist = (
        12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8)
        - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
        - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13)
        + 29
    )
    q = 37 - 15 * math.log10(p.qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q**2
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    z = 46 / 30 - g / 40
    iq = 15 * math.log10(1 + 10**y + 10**z)
    return iolr + ist + iq, ist


def delay_impairment(p: EModelParameters) -> float:
    """§7.4: Id = Idte + Idle + Idd."""
    ro, no = _ro_and_no(p)
    _, ist = _is(p, ro, no)
    # Talker echo (Idte); with little sidetone masking the echo is heard more (TERVs),
    # with much it adds to the sidetone's own impairment.
    roe = -1.5 * (no - p.RLR)
    terv = p.TELR - 40 * math.log10((1 + p.T / 10) / (1 + p.T / 150)) + 6 * math.exp(-0.3 * p.T**2)
    if p.STMR < 9:
        terv += ist / 2
    re = 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-p.T))
    if p.STMR > 20:
        idte = math.sqrt(idte**2 + ist**2)
    # Listener echo (Idle)
    rle = 10.5 * (p.WEPL + 7) * math.pow(p.Tr + 1, -0.25)
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    # Absolute delay (Idd)
    idd = 0.0
    if p.Ta > p.mT:
        x = math.log10(p.Ta / p.mT) / math.log10(2)
        k = 6 * p.sT
        idd = 25 * (math.pow(1 + x**k, 1 / k) - 3 * math.pow(1 + (x / 3) ** k, 1 / k) + 2)
    return idte + idle + idd


def effective_equipment_impairment(ie: float, bpl: float, ppl: float, burst_ratio: float = 1.0) -> float:
    """§7.5: Ie,eff, for ``ppl`` percent of packets lost (``burst_ratio`` 1: at random)."""
    if ppl <= 0:
        return ie
    return ie + (95 - ie) * ppl / (ppl / burst_ratio + bpl)


def r_factor(p: EModelParameters = EModelParameters()) -> float:
    """The transmission rating R of G.107 §7.1."""
    ro, no = _ro_and_no(p)
    is_, _ = _is(p, ro, no)
    return ro - is_ - delay_impairment(p) - effective_equipment_impairment(p.Ie, p.Bpl, p.Ppl, p.BurstR) + p.A


def mos_from_r(r: float) -> float:
    """G.107 Annex B: the estimated mean opinion score (conversational quality, 1-4.5).
    The polynomial dips slightly under 1 for 0 < R < 6.5; the score stops at 1 there."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)


class Satisfaction(enum.Enum):
    """G.109 Table 1: user satisfaction by R."""

    VERY_SATISFIED = "very satisfied"  # R >= 90
    SATISFIED = "satisfied"  # 80-90
    SOME_DISSATISFIED = "some users dissatisfied"  # 70-80
    MANY_DISSATISFIED = "many users dissatisfied"  # 60-70
    NEARLY_ALL_DISSATISFIED = "nearly all users dissatisfied"  # 50-60
    NOT_RECOMMENDED = "not recommended"  # below 50


def satisfaction(r: float) -> Satisfaction:
    for bound, level in (
        (90, Satisfaction.VERY_SATISFIED),
        (80, Satisfaction.SATISFIED),
        (70, Satisfaction.SOME_DISSATISFIED),
        (60, Satisfaction.MANY_DISSATISFIED),
        (50, Satisfaction.NEARLY_ALL_DISSATISFIED),
    ):
        if r >= bound:
            return level
    return Satisfaction.NOT_RECOMMENDED


@dataclass(frozen=True)
class CodecImpairment:
    """A codec's E-model figures: Ie, Bpl, and the delay it adds (packet time + look-ahead)."""

    ie: float
    bpl: float
    delay_ms: float


G711_PLC: Final = CodecImpairment(0.0, 25.1, 20.0)  # G.113 Appendix I, with G.711 Appendix I PLC
G711_NO_PLC: Final = CodecImpairment(0.0, 4.3, 20.0)  # G.113 Appendix I, no concealment
#: By encoding name (lower case), for calls through our playout buffer (it conceals).
CODECS: Final = {
    "pcmu": G711_PLC,
    "pcma": G711_PLC,
    "opus": CodecImpairment(0.0, 25.1, 26.5),  # approximation (module docstring); 20 ms + 6.5 ms look-ahead
    "g722": CodecImpairment(0.0, 25.1, 21.5),  # approximation; 20 ms + 1.5 ms of QMF filters
}


def codec_impairment(codec: str | None) -> CodecImpairment:
    """The figures of a codec named as in SDP ("opus/48000/2", "PCMU"...); unknown: G.711's."""
    name = (codec or "").split("/", 1)[0].strip().lower()
    return CODECS.get(name, G711_PLC)


def voip_r_factor(
    *, one_way_delay_ms: float, loss_percent: float, codec: CodecImpairment, burst_ratio: float = 1.0
) -> float:
    """R for a call with this mouth-to-ear delay and loss, G.107 defaults otherwise."""
    d = max(0.0, one_way_delay_ms)
    return r_factor(
        EModelParameters(
            T=d, Ta=d, Tr=2 * d, Ie=codec.ie, Bpl=codec.bpl, Ppl=max(0.0, loss_percent), BurstR=burst_ratio
        )
    )


# --- from a call's statistics ------------------------------------------------------------------

#: Playout delay assumed when the far end's is unknown: what our adaptive buffer holds
#: at rest plus a device's output latency.
NOMINAL_PLAYOUT_MS: Final = 60.0


@dataclass(frozen=True)
class QualityEstimate:
    """One direction of a call: what its listener hears."""

    codec: str | None
    loss_percent: float
    jitter_ms: float | None
    one_way_delay_ms: float  # mouth to ear
    r_factor: float
    mos: float

    @property
    def satisfaction(self) -> Satisfaction:
        return satisfaction(self.r_factor)


@dataclass(frozen=True)
class CallQuality:
    """A sample of a call's quality: ``receive`` is what we hear, ``send`` what the far
    end hears of us (from its RTCP receiver reports; None before the first one)."""

    rtt_ms: float | None
    receive: QualityEstimate
    send: QualityEstimate | None
    packets_received: int
    packets_lost: int


def _estimate(
    codec_name: str | None, loss_percent: float, jitter_s: float | None, network_ms: float, playout_ms: float
) -> QualityEstimate:
    codec = codec_impairment(codec_name)
    delay = network_ms + playout_ms + codec.delay_ms
    r = voip_r_factor(one_way_delay_ms=delay, loss_percent=loss_percent, codec=codec)
    return QualityEstimate(
        codec_name,
        loss_percent,
        None if jitter_s is None else jitter_s * 1000,
        delay,
        r,
        mos_from_r(r),
    )


def estimate_quality(
    stats: MediaStats, previous: MediaStats | None = None, *, expecting_audio: bool = True
) -> CallQuality:
    """The quality of a call from its statistics; loss is counted since ``previous``
    (the whole call without it). With no round-trip time yet the network delay is
    taken as 0 (a LAN). ``expecting_audio``: the far end should be sending (not on
    hold); then an interval with nothing received counts as all lost."""
    network_ms = (stats.rtt or 0.0) * 1000 / 2
    received = stats.packets_received - (previous.packets_received if previous else 0)
    lost = stats.packets_lost - (previous.packets_lost if previous else 0)
    loss = 100 * lost / (received + lost) if received + lost > 0 and lost > 0 else 0.0
    if received <= 0 and expecting_audio:
        loss = 100.0  # nothing came (no path, the far end gone): the listener hears nothing
    playout = stats.playout_delay
    if playout is None:  # no audio played yet: an adaptive buffer sizes itself to ~2x the jitter
        playout = max(NOMINAL_PLAYOUT_MS / 1000, 2 * (stats.jitter or 0.0)) + stats.output_latency
    receive = _estimate(stats.receive_codec, loss, stats.jitter, network_ms, playout * 1000)
    send = None
    if stats.remote_fraction_lost is not None:
        remote_playout = max(NOMINAL_PLAYOUT_MS, 2000 * (stats.remote_jitter or 0.0))
        send = _estimate(
            stats.send_codec,
            100 * stats.remote_fraction_lost,
            stats.remote_jitter,
            network_ms,
            remote_playout,
        )
    return CallQuality(
        None if stats.rtt is None else stats.rtt * 1000,
        receive,
        send,
        stats.packets_received,
        stats.packets_lost,
    )


class QualityMonitor:
    """Samples ``stats`` (a MediaSession's ``stats``) every ``interval`` seconds and calls
    ``listener`` with a :class:`CallQuality` (loss over the interval). :meth:`sample`
    takes one at once; :meth:`start`/:meth:`stop` run the timer."""

    def __init__(
        self,
        stats: Callable[[], Awaitable[MediaStats]],
        listener: Callable[[CallQuality], None] | None = None,
        *,
        interval: float = 5.0,
        expecting: Callable[[], bool] = lambda: True,
    ) -> None:
        self.stats = stats
        self.listener = listener
        self.interval = interval
        self.expecting = expecting  # audio should be flowing (the call is not on hold)
        self.latest: CallQuality | None = None
        self._previous: MediaStats | None = None
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> CallQuality:
        stats = await self.stats()
        quality = estimate_quality(stats, self._previous, expecting_audio=self.expecting())
        self._previous = stats
        self.latest = quality
        if self.listener is not None:
            try:
                self.listener(quality)
            except Exception:
                log.exception("call quality listener failed")
        return quality

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)  # the sampling period
            try:
                await self.sample()
            except (ConnectionError, RuntimeError) as exc:  # the call is closing
                log.info("call quality sample failed: %r", exc)

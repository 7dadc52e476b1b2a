"""RFC 4733 between two MediaSessions over ICE + DTLS-SRTP on this machine: the digits
sent are the digits received, in the audio stream's SSRC and sequence space, and the
audio around them goes on without counting as lost."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from app.media.dtmf_call import DtmfMethod, DtmfReceived, DtmfReceiver
from app.media.dtmf_session import SessionDtmf

from .dtmf_support import PairFactory, Side, T, pairs

pytestmark = pytest.mark.media
__all__ = ["pairs"]


async def receive_digits(receiver: DtmfReceiver, count: int) -> list[DtmfReceived]:
    while len(receiver.digits) < count:
        await receiver.next_digit(T)
    return receiver.digits[:count]


def dtmf(side: Side) -> SessionDtmf:
    assert side.dtmf is not None
    return side.dtmf


async def exchange(sending: Side, receiving: Side, digits: str, **kw: float) -> list[DtmfReceived]:
    assert dtmf(sending).sender.method() is DtmfMethod.RFC4733
    before = len(dtmf(receiving).receiver.digits)
    methods = await asyncio.wait_for(dtmf(sending).send(digits, **kw), T)
    assert methods == [DtmfMethod.RFC4733] * len(digits)
    got = await receive_digits(dtmf(receiving).receiver, before + len(digits))
    return got[before:]


async def test_digits_both_ways_with_opus(pairs: PairFactory) -> None:
    pair = await pairs()
    caller, callee = dtmf(pair.caller), dtmf(pair.callee)
    fmt = caller.channel.send_format
    assert fmt is not None and fmt.clock_rate == 48000
    pair.callee.record_incoming()
    got = await exchange(pair.caller, pair.callee, "1234567890*#")
    assert "".join(d.digit for d in got) == "1234567890*#"
    assert all(d.method is DtmfMethod.RFC4733 and d.duration_ms == 100 for d in got)
    # 12 events of 4 packets each (an update and three finals), the audio held meanwhile
    assert caller.channel.packets_sent == 48 and callee.channel.packets_received == 48
    assert pair.caller.session.rtp is not None and pair.caller.session.rtp.held_back > 0

    back = await exchange(pair.callee, pair.caller, "ABCD!")
    assert "".join(d.digit for d in back) == "ABCD!"

    # The audio went on, and aiortc's statistics count none of the event packets as lost.
    mark = len(pair.callee.incoming)
    await pair.callee.wait_incoming(
        lambda seen: sum(1 for p in seen[mark:] if p[0] != fmt.payload_type) >= 10
    )
    stats = await pair.callee.session.stats()
    assert stats.packets_lost == 0 and stats.packets_received > 50 and stats.late_packets == 0

    # One SSRC, one sequence space: audio and event packets numbered one after the other.
    seen = pair.callee.incoming
    assert len({ssrc for _, _, _, ssrc, _ in seen}) == 1
    seqs = [seq for _, seq, _, _, _ in seen]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    events = [(i, p) for i, p in enumerate(seen) if p[0] == fmt.payload_type]
    assert len(events) == 48 and sum(1 for _, p in events if p[4]) == 12  # a marker per event
    # each event's timestamp is on the audio clock: just after the audio before it,
    # before the audio after it
    checked = 0
    for i, (_, _, ts, _, _) in events:
        before = next((p[2] for p in reversed(seen[:i]) if p[0] != fmt.payload_type), None)
        after = next(p[2] for p in seen[i:] if p[0] != fmt.payload_type)
        assert 0 < (after - ts) & 0xFFFFFFFF < 48000
        if before is not None:  # (recording began after the audio had started)
            assert 0 <= (ts - before) & 0xFFFFFFFF < 48000 // 10
            checked += 1
    assert checked >= 40


async def test_digits_with_pcmu_use_the_8_khz_clock(pairs: PairFactory) -> None:
    pair = await pairs(codec_order=["PCMU"])
    fmt = dtmf(pair.caller).channel.send_format
    assert fmt is not None and fmt.clock_rate == 8000
    assert [f.clock_rate for f in dtmf(pair.callee).channel.receive_formats] == [8000]
    got = await exchange(pair.caller, pair.callee, "#0*")
    assert [(d.digit, d.duration_ms) for d in got] == [("#", 100), ("0", 100), ("*", 100)]


async def test_long_press_is_one_digit(pairs: PairFactory) -> None:
    # 1.5 s at 48 kHz is more than one 16-bit duration: two segments (§2.5.1.3), one digit.
    pair = await pairs()
    [got] = await exchange(pair.caller, pair.callee, "5", duration=1.5)
    assert got.digit == "5" and got.duration_ms == 1500


async def test_no_telephone_event_in_the_answer_means_no_rfc4733(pairs: PairFactory) -> None:
    pair = await pairs(callee_dtmf=False)  # the callee answers as aiortc does, without it
    channel = dtmf(pair.caller).channel
    assert channel.send_format is None and not channel.can_send(5)
    assert dtmf(pair.caller).sender.method() is None  # and no SIP call to fall back on

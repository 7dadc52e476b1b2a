"""RFC 4733 between two aiortc peer connections over ICE + DTLS-SRTP on this machine:
the digits sent are the digits received, in the audio stream's SSRC and sequence space,
and the audio around them keeps flowing."""

from __future__ import annotations

import asyncio
import itertools
import struct

import pytest
from aiortc.rtp import is_rtcp

from app.media.dtmf_call import DtmfMethod, DtmfReceived, DtmfReceiver, DtmfSender

from .rtc_pair import Pair, Side, connect_pair

pytestmark = pytest.mark.media

T = 20.0


async def receive_digits(receiver: DtmfReceiver, count: int) -> list[DtmfReceived]:
    while len(receiver.digits) < count:
        await receiver.next_digit(T)
    return receiver.digits[:count]


async def inbound_stats(pair_side_pc: object) -> dict[str, int]:
    report = await pair_side_pc.getStats()  # type: ignore[attr-defined]
    inbound = [s for s in report.values() if s.type == "inbound-rtp"]
    assert len(inbound) == 1
    return {"lost": inbound[0].packetsLost, "received": inbound[0].packetsReceived}


async def exchange(pair: Pair, digits: str, *, reverse: bool = False) -> list[DtmfReceived]:
    sending, receiving = (pair.callee, pair.caller) if reverse else (pair.caller, pair.callee)
    receiver = DtmfReceiver()
    receiver.attach_rtp(receiving.channel)
    sender = DtmfSender(rtp=sending.channel)
    assert sender.method() is DtmfMethod.RFC4733
    methods = await asyncio.wait_for(sender.send(digits), T)
    assert methods == [DtmfMethod.RFC4733] * len(digits)
    return await receive_digits(receiver, len(digits))


def record_incoming(pair_side: Side) -> list[tuple[int, int, int, int, bool]]:
    """(payload type, sequence, timestamp, SSRC, marker) of each RTP packet the side
    receives, as it comes out of SRTP, before the channel takes the events out."""
    seen: list[tuple[int, int, int, int, bool]] = []
    transport = pair_side.channel._transport
    hooked = transport._handle_rtp_data

    async def record(data: bytes, arrival_time_ms: int) -> None:
        if not is_rtcp(data):
            seq, ts, ssrc = struct.unpack("!HII", data[2:12])
            seen.append((data[1] & 0x7F, seq, ts, ssrc, bool(data[1] & 0x80)))
        await hooked(data, arrival_time_ms)

    transport._handle_rtp_data = record
    return seen


async def test_digits_both_ways_with_opus() -> None:
    pair = await connect_pair()
    try:
        seen = record_incoming(pair.callee)
        assert pair.caller.channel.send_clock_rate == 48000
        assert (
            pair.caller.channel.send_format is not None
            and pair.caller.channel.send_format.clock_rate == 48000
        )
        got = await exchange(pair, "1234567890*#")
        assert "".join(d.digit for d in got) == "1234567890*#"
        assert all(d.method is DtmfMethod.RFC4733 and d.duration_ms == 100 for d in got)
        # 12 events of 4 packets each, on the audio SSRC; the audio was held back meanwhile
        sent = pair.caller.channel
        assert sent.packets_sent == 48 and sent.audio_held_back > 0
        assert pair.callee.channel.packets_received == 48

        # One SSRC, one sequence space: audio and event packets numbered one after the other.
        fmt = pair.caller.channel.send_format
        assert fmt is not None
        assert len({ssrc for _, _, _, ssrc, _ in seen}) == 1
        seqs = [seq for _, seq, _, _, _ in seen]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
        events = [(i, p) for i, p in enumerate(seen) if p[0] == fmt.payload_type]
        assert len(events) == 48 and sum(1 for _, p in events if p[4]) == 12  # a marker per event

        back = await exchange(pair, "ABCD!", reverse=True)
        assert "".join(d.digit for d in back) == "ABCD!"

        # The audio kept flowing: aiortc's receiver saw a gap-free audio stream (the event
        # packets took sequence numbers but were taken out and the rest renumbered).
        track = await pair.callee.remote_track
        for _ in range(5):
            await asyncio.wait_for(track.recv(), T)
        stats = await inbound_stats(pair.callee.pc)
        assert stats["lost"] == 0 and stats["received"] > 50

        # each event's timestamp is on the audio clock: after the audio before it, before the audio after
        checked = 0
        for i, (_, _, ts, _, _) in events:
            before = next((p[2] for p in reversed(seen[:i]) if p[0] != fmt.payload_type), None)
            after = next(p[2] for p in seen[i:] if p[0] != fmt.payload_type)
            assert 0 < (after - ts) & 0xFFFFFFFF < 48000
            if before is not None:  # (recording began after the audio had started)
                assert 0 <= (ts - before) & 0xFFFFFFFF < 48000 // 10
                checked += 1
        assert checked >= 40
    finally:
        await pair.close()


async def test_digits_with_pcmu_use_the_8_khz_clock() -> None:
    pair = await connect_pair(codec="PCMU")
    try:
        fmt = pair.caller.channel.send_format
        assert pair.caller.channel.send_clock_rate == 8000
        assert fmt is not None and fmt.clock_rate == 8000
        got = await exchange(pair, "#0*")
        assert [(d.digit, d.duration_ms) for d in got] == [("#", 100), ("0", 100), ("*", 100)]
    finally:
        await pair.close()


async def test_long_press_is_one_digit() -> None:
    # 1.5 s at 48 kHz is more than one 16-bit duration: two segments (§2.5.1.3), one digit.
    pair = await connect_pair()
    try:
        receiver = DtmfReceiver()
        receiver.attach_rtp(pair.callee.channel)
        await DtmfSender(rtp=pair.caller.channel).send("5", duration=1.5)
        [got] = await receive_digits(receiver, 1)
        assert got.digit == "5" and got.duration_ms == 1500
    finally:
        await pair.close()


async def test_no_telephone_event_in_the_answer_means_no_rfc4733() -> None:
    pair = await connect_pair(answer_telephone_event=False)
    try:
        assert pair.caller.channel.send_format is None
        assert not pair.caller.channel.can_send(5)
        assert DtmfSender(rtp=pair.caller.channel).method() is None  # and no SIP call to fall back on
    finally:
        await pair.close()

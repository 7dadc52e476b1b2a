"""Two MediaSessions connected directly (offer/answer without SIP) over ICE on this
machine's interface address, with DTMF on them."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aioice.ice import get_host_addresses
from aiortc.rtp import is_rtcp

from app.media.codecs import DEFAULT_CODEC_ORDER
from app.media.dtmf_session import SessionDtmf
from app.media.events import FirstAudio
from app.media.session import AudioOptions, MediaSession

T = 10.0  # seconds any single step may take


def interface_address_or_skip() -> str:
    addresses = [a for a in get_host_addresses(use_ipv4=True, use_ipv6=False) if not a.startswith("127.")]
    if not addresses:
        pytest.skip("no non-loopback IPv4 interface address: ICE has no host candidate on this machine")
    return addresses[0]


async def connect(caller: MediaSession, callee: MediaSession) -> None:
    """An offer of ``caller`` answered by ``callee``, the answer taken by ``caller``."""
    answer = await callee.answer(await caller.make_offer())
    assert isinstance(answer, bytes), answer
    assert await caller.accept_answer(answer) is None


@dataclass
class Side:
    session: MediaSession
    dtmf: SessionDtmf | None
    incoming: list[tuple[int, int, int, int, bool]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_incoming(self, enough: Callable[[list[tuple[int, int, int, int, bool]]], bool]) -> None:
        """Until what :meth:`record_incoming` saw satisfies ``enough``."""
        while not enough(self.incoming):
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), T)

    def record_incoming(self) -> None:
        """(payload type, sequence, timestamp, SSRC, marker) of each RTP packet this side
        receives, as it comes out of SRTP, before anything takes it."""
        assert self.session.rtp is not None
        transport = self.session.rtp.transport
        entry = transport._handle_rtp_data
        seen = self.incoming
        arrived = self.arrived

        async def record(data: bytes, arrival_time_ms: int) -> None:
            if not is_rtcp(data):
                seq, ts, ssrc = struct.unpack("!HII", data[2:12])
                seen.append((data[1] & 0x7F, seq, ts, ssrc, bool(data[1] & 0x80)))
                arrived.set()
            await entry(data, arrival_time_ms)

        transport._handle_rtp_data = record  # type: ignore[method-assign]


@dataclass
class Pair:
    caller: Side
    callee: Side


PairFactory = Callable[..., Awaitable[Pair]]


@pytest_asyncio.fixture
async def pairs() -> AsyncIterator[PairFactory]:
    made: list[Pair] = []

    async def make(*, callee_dtmf: bool = True, codec_order: Sequence[str] | None = None) -> Pair:
        interface_address_or_skip()
        options = AudioOptions(use_devices=False)
        caller = MediaSession(audio=options, codec_order=codec_order or DEFAULT_CODEC_ORDER)
        callee = MediaSession(audio=options)
        pair = Pair(
            Side(caller, SessionDtmf(caller)), Side(callee, SessionDtmf(callee) if callee_dtmf else None)
        )
        made.append(pair)
        await connect(caller, callee)
        await caller.wait_event(FirstAudio, T)
        await callee.wait_event(FirstAudio, T)
        return pair

    try:
        yield make
    finally:
        for pair in made:
            for side in (pair.caller, pair.callee):
                if side.dtmf is not None:
                    side.dtmf.close()
                await side.session.close()

"""Two MediaSessions in one process, offer/answer passed directly, media over ICE on this
machine's interface address: a 440 Hz tone file sent by one is recorded by the other and
found again by FFT, without gaps; with Opus and with PCMU; across hold and resume, a
re-offer, mute; RTCP statistics; a call with no sound device at all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from app.media.devices import list_devices
from app.media.events import DeviceUnavailable, DtlsConnected, FirstAudio, HoldChanged, IceConnected
from app.media.output import ClockedOutput
from app.media.sdp import audio_direction
from app.media.session import AudioOptions, MediaSession

from .session_support import (
    GAP_RMS,
    WINDOW,
    Recording,
    connect,
    interface_address_or_skip,
    renegotiate,
    tone_file,
)

pytestmark = pytest.mark.media

T = 10.0
MAX_GAP = 0.060  # seconds of silence allowed once audio has started
Make = Callable[..., MediaSession]


@pytest_asyncio.fixture
async def sessions() -> AsyncIterator[Make]:
    interface_address_or_skip()
    made: list[MediaSession] = []

    def make(**options: object) -> MediaSession:
        session = MediaSession(**options)  # type: ignore[arg-type]
        made.append(session)
        return session

    try:
        yield make
    finally:
        for session in made:
            await session.close()


def recorded_frames(session: MediaSession) -> int:
    output = session.output
    assert isinstance(output, ClockedOutput)
    return output.frames


def window_of(frames: int) -> int:
    """The 10 ms window where the recording stood after ``frames`` 20 ms reads."""
    return frames * 2


@pytest.mark.parametrize("codec", ["opus", "PCMU"])
async def test_tone_across_a_call(sessions: Make, tmp_path: Path, codec: str) -> None:
    tone = tone_file(tmp_path / "tone.wav", 440.0)
    record = tmp_path / "heard.wav"
    alice = sessions(codec_order=[codec], audio=AudioOptions(play=tone, use_devices=False))
    bob = sessions(audio=AudioOptions(record=record, use_devices=False))
    await connect(alice, bob)
    for session in (alice, bob):
        ice = await session.wait_event(IceConnected, T)
        assert isinstance(ice, IceConnected) and ice.path == "host→host"  # one machine
        await session.wait_event(DtlsConnected, T)
    await bob.wait_event(FirstAudio, T)
    await asyncio.sleep(1.5)  # let 1.5 s of tone be heard
    stats = await bob.stats()
    # Decoded on the loop as the packets came (app.media.jitter.InlineDecoding).
    assert bob.decoding is not None and bob.decoding.decoded >= 50 and bob.decoding.failed == 0
    await alice.close()
    await bob.close()

    heard = Recording.read(record)
    first, last = heard.span()
    assert (last - first) * WINDOW / 48000 > 1.2
    assert abs(heard.frequency(first, last) - 440.0) <= 5.0
    assert heard.longest_gap(first, last) <= MAX_GAP
    assert stats.receive_codec is not None and stats.receive_codec.lower().startswith(codec.lower())
    assert stats.playout is not None and stats.playout.concealed_frames <= 3
    assert stats.packets_received >= 60 and stats.late_packets == 0
    # What the playout adds: about its target (40 ms at the start), never the 80 ms
    # prefetch of aiortc's own jitter buffer on top.
    assert stats.playout_delay is not None and stats.playout_delay < 0.1
    timings = bob.timings
    assert timings.ice is not None and timings.dtls is not None and timings.first_audio is not None
    assert timings.ice <= timings.dtls <= timings.first_audio < 2.0


async def test_hold_and_resume(sessions: Make, tmp_path: Path) -> None:
    tone = tone_file(tmp_path / "tone.wav", 440.0)
    record = tmp_path / "heard.wav"
    alice = sessions(audio=AudioOptions(play=tone, use_devices=False))
    bob = sessions(audio=AudioOptions(record=record, use_devices=False))
    changes: list[HoldChanged] = []
    bob.add_listener(lambda e: changes.append(e) if isinstance(e, HoldChanged) else None)
    await connect(alice, bob)
    await bob.wait_event(FirstAudio, T)
    await asyncio.sleep(0.8)

    alice.set_hold(True)
    offer, answer = await renegotiate(alice, bob)
    assert audio_direction(offer.decode()) == "sendonly" and audio_direction(answer.decode()) == "recvonly"
    assert (alice.local_hold, alice.remote_hold, bob.local_hold, bob.remote_hold) == (
        True,
        False,
        False,
        True,
    )
    held_at = recorded_frames(bob)
    sent_before = (await alice.stats()).packets_sent

    # Bob holds too: his offer says inactive (RFC 3264 §8.4), then he resumes.
    bob.set_hold(True)
    offer, answer = await renegotiate(bob, alice)
    assert audio_direction(offer.decode()) == "inactive" and audio_direction(answer.decode()) == "inactive"
    assert (bob.local_hold, bob.remote_hold, alice.remote_hold) == (True, True, True)
    bob.set_hold(False)
    offer, answer = await renegotiate(bob, alice)
    assert audio_direction(offer.decode()) == "recvonly" and audio_direction(answer.decode()) == "sendonly"
    await asyncio.sleep(0.6)
    assert (await alice.stats()).packets_sent == sent_before  # nothing left while held

    alice.set_hold(False)
    offer, answer = await renegotiate(alice, bob)
    assert audio_direction(offer.decode()) == "sendrecv" and audio_direction(answer.decode()) == "sendrecv"
    assert (alice.local_hold, alice.remote_hold, bob.local_hold, bob.remote_hold) == (
        False,
        False,
        False,
        False,
    )
    resumed_at = recorded_frames(bob)
    await asyncio.sleep(1.0)
    await alice.close()
    await bob.close()

    assert [(c.local, c.remote) for c in changes] == [
        (False, True),
        (True, True),
        (False, True),
        (False, False),
    ]
    heard = Recording.read(record)
    held, resumed = window_of(held_at), window_of(resumed_at)
    first, last = heard.span(0, held)
    assert abs(heard.frequency(first, last) - 440.0) <= 5.0 and heard.longest_gap(first, last) <= MAX_GAP
    quiet = heard.window_rms()[held + 20 : resumed]  # 200 ms after the hold on: silence
    assert len(quiet) >= 30 and quiet.max() < GAP_RMS
    first, last = heard.span(resumed)
    assert (first - resumed) * WINDOW / 48000 < 0.5  # the tone is back at once
    assert (last - first) * WINDOW / 48000 > 0.6
    assert abs(heard.frequency(first, last) - 440.0) <= 5.0 and heard.longest_gap(first, last) <= MAX_GAP


async def test_reoffers_keep_the_media(sessions: Make, tmp_path: Path) -> None:
    """A re-offer with nothing changed (a phone's re-INVITE after ICE, a session
    refresh) is answered on the same transport, and the audio goes on without a gap;
    the same offer again is answered too."""
    tone = tone_file(tmp_path / "tone.wav", 440.0)
    record = tmp_path / "heard.wav"
    alice = sessions(audio=AudioOptions(play=tone, use_devices=False))
    bob = sessions(audio=AudioOptions(record=record, use_devices=False))
    first_offer = await alice.make_offer()
    answer = await bob.answer(first_offer)
    assert isinstance(answer, bytes) and await alice.accept_answer(answer) is None
    await bob.wait_event(FirstAudio, T)
    await asyncio.sleep(0.4)
    pc = bob.peer_connection
    assert pc is not None
    transport = bob.receiver.transport if bob.receiver else None
    for _ in range(2):
        await renegotiate(alice, bob)
        await renegotiate(bob, alice)
    again = await bob.answer(first_offer)
    assert isinstance(again, bytes) and audio_direction(again.decode()) == "sendrecv"
    assert (
        bob.receiver is not None and bob.receiver.transport is transport and pc.connectionState == "connected"
    )
    await asyncio.sleep(0.6)
    await alice.close()
    await bob.close()
    heard = Recording.read(record)
    first, last = heard.span()
    assert heard.longest_gap(first, last) <= MAX_GAP and abs(heard.frequency(first, last) - 440.0) <= 5.0
    # Our o= line: one session id, the version counting up (RFC 3264 §8).
    origins = [line.split()[1:3] for line in again.decode().split("\r\n") if line.startswith("o=")]
    assert int(origins[0][1]) >= 4


async def test_mute_sends_silence(sessions: Make, tmp_path: Path) -> None:
    tone = tone_file(tmp_path / "tone.wav", 440.0)
    record = tmp_path / "heard.wav"
    alice = sessions(audio=AudioOptions(play=tone, use_devices=False))
    bob = sessions(audio=AudioOptions(record=record, use_devices=False))
    await connect(alice, bob)
    await bob.wait_event(FirstAudio, T)
    await asyncio.sleep(0.5)
    alice.muted = True
    muted_at = recorded_frames(bob)
    before = (await bob.stats()).packets_received
    await asyncio.sleep(0.6)
    after = (await bob.stats()).packets_received
    await alice.close()
    await bob.close()
    assert after - before >= 20  # the stream goes on (RTP every 20 ms)
    heard = Recording.read(record)
    quiet = heard.window_rms()[window_of(muted_at) + 20 : window_of(muted_at) + 50]
    assert len(quiet) == 30 and quiet.max() < GAP_RMS
    assert heard.span(0, window_of(muted_at))  # the tone was heard before


async def test_rtcp_statistics(sessions: Make, tmp_path: Path) -> None:
    tone = tone_file(tmp_path / "tone.wav", 440.0)
    alice = sessions(codec_order=["PCMU", "opus"], audio=AudioOptions(play=tone, use_devices=False))
    bob = sessions(audio=AudioOptions(use_devices=False))
    await connect(alice, bob)
    await bob.wait_event(FirstAudio, T)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + T
    stats = await alice.stats()
    while stats.rtt is None and loop.time() < deadline:  # RTCP every 0.5-1.5 s (RFC 3550 §6.2)
        await asyncio.sleep(0.1)
        stats = await alice.stats()
    assert stats.rtt is not None and 0 <= stats.rtt < 0.1
    # Each side sends the first codec of its own order that both have (RFC 3264 §6.1
    # lets each end send any of the negotiated formats).
    assert stats.send_codec == "PCMU/8000" and stats.receive_codec == "opus/48000/2"
    assert stats.packets_sent > 0 and stats.remote_packets_lost == 0 and stats.remote_fraction_lost == 0.0
    assert stats.remote_jitter is not None and 0 <= stats.remote_jitter < 0.05
    bob_stats = await bob.stats()
    assert bob_stats.jitter is not None and 0 <= bob_stats.jitter < 0.05
    assert bob_stats.packets_received > 0 and bob_stats.packets_lost == 0 and bob_stats.fraction_lost == 0.0


async def test_no_sound_device(sessions: Make, caplog: pytest.LogCaptureFixture) -> None:
    """This machine has no sound card: the call works all the same (silence is sent,
    received audio discarded), and each session says so once per direction."""
    if list_devices():
        pytest.skip("this machine has sound devices")
    caplog.set_level(logging.DEBUG, logger="app.media.session")
    alice = sessions()
    bob = sessions()
    await connect(alice, bob)
    await alice.wait_event(FirstAudio, T)
    await bob.wait_event(FirstAudio, T)
    await renegotiate(alice, bob)  # media going on: no second message
    await asyncio.sleep(0.5)  # half a second of (silent) audio each way
    for session in (alice, bob):
        problems = [e for e in session.events if isinstance(e, DeviceUnavailable)]
        assert [(p.role, p.message) for p in problems] == [
            ("input", "no audio input device on this machine: sending silence"),
            ("output", "no audio output device on this machine: received audio is discarded"),
        ]
        stats = await session.stats()
        assert stats.packets_sent >= 20 and stats.packets_received >= 20
        assert stats.playout is not None and stats.playout.played_frames >= 10
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == len(set(warnings)) <= 2  # once per process, never per call

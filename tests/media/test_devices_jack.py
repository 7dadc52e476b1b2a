"""The sounddevice path on a real, clocked PortAudio device: a JACK server with the dummy
driver (``jackd -d dummy``, Debian jackd2; 48 kHz, 20 ms periods, silent input), started
under a server name of its own and stopped in the fixture's finalizer. Capture and
playback streams run at 50 blocks a second; a call uses it as microphone and speaker,
switches devices mid-call; the TonePlayer plays on it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from app.media.audio import SAMPLE_RATE, Samples
from app.media.capture import DeviceSource, FileSource
from app.media.devices import CaptureStream, PlaybackStream, find_device, list_devices, rescan_devices
from app.media.events import DeviceChanged, DeviceUnavailable, FirstAudio, MediaEvent
from app.media.output import ClockedOutput, DeviceOutput
from app.media.session import AudioOptions, MediaSession
from app.media.tones import TonePlayer

from .session_support import Recording, connect, interface_address_or_skip, tone_file

pytestmark = pytest.mark.media

T = 10.0
JACK_API = "JACK Audio Connection Kit"


@pytest.fixture
def jack() -> Iterator[str]:
    """A JACK dummy server PortAudio sees; its name."""
    jackd, jack_wait = shutil.which("jackd"), shutil.which("jack_wait")
    if jackd is None or jack_wait is None:
        pytest.skip("jackd/jack_wait not installed (Debian package jackd2): no JACK dummy device")
    name = f"p2psip-test-{os.getpid()}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
    server = subprocess.Popen(
        [jackd, "--no-realtime", "-d", "dummy", "-r", str(SAMPLE_RATE), "-p", "960"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    try:
        ready = subprocess.run(
            [jack_wait, "-s", name, "-w", "-t", "10"], env=env, capture_output=True, timeout=20
        )
        if ready.returncode != 0:
            err = (
                server.stderr.read().decode(errors="replace")
                if server.poll() is not None and server.stderr
                else ""
            )
            pytest.fail(f"jackd did not start: {ready.stdout!r} {err}")
        os.environ["JACK_DEFAULT_SERVER"] = name  # PortAudio's JACK host API reads it when initialised
        rescan_devices()
        if not any(d.hostapi == JACK_API for d in list_devices()):
            pytest.skip("PortAudio here has no JACK host API")
        yield name
    finally:
        # PortAudio lets go of the server first (libjack aborts the process when a
        # client is closed after its server died), then the server stops.
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous
        rescan_devices()
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest_asyncio.fixture
async def closing() -> AsyncIterator[list[MediaSession]]:
    sessions: list[MediaSession] = []
    try:
        yield sessions
    finally:
        for session in sessions:
            await session.close()


async def test_streams_run_at_fifty_blocks_a_second(jack: str) -> None:
    devices = [d for d in list_devices() if d.hostapi == JACK_API]
    assert devices and devices[0].is_input and devices[0].is_output
    device = find_device(None, "input")
    assert device.hostapi == JACK_API and device.default_input
    assert find_device(devices[0].name, "output") == devices[0]
    assert find_device(devices[0].index, "output") == devices[0]

    loop = asyncio.get_running_loop()
    capture = CaptureStream(device)
    try:
        for _ in range(5):  # what queued while starting
            assert await capture.get() is not None
        start = loop.time()
        blocks: list[Samples] = []
        while len(blocks) < 50:
            block = await capture.get()
            assert block is not None
            blocks.append(block)
        elapsed = loop.time() - start
    finally:
        capture.close()
    assert 0.85 <= elapsed <= 1.2, elapsed
    assert all(len(b) == 960 and b.dtype == np.int16 for b in blocks)
    assert capture.dropped == 0

    pulled: list[int] = []

    def pull(n: int) -> Samples:
        pulled.append(n)
        return np.zeros(n, np.int16)

    playback = PlaybackStream(find_device(None, "output"), pull)
    try:
        await asyncio.sleep(0.2)  # started
        before, start = playback.frames, loop.time()
        await asyncio.sleep(1.0)
        rate = (playback.frames - before) / (loop.time() - start)
    finally:
        playback.close()
    assert 42 <= rate <= 58, rate
    assert set(pulled) == {960} and playback.errors == 0


class PlayedTap:
    """An audio processor that keeps the far-end reference it is given."""

    def __init__(self) -> None:
        self.played: list[Samples] = []

    def process_playout(self, frame: Samples) -> None:
        self.played.append(frame)

    def process_capture(self, frame: Samples) -> Samples:
        return frame


async def test_call_on_the_jack_device(jack: str, tmp_path: Path, closing: list[MediaSession]) -> None:
    interface_address_or_skip()
    record = tmp_path / "bob-heard.wav"
    alice = MediaSession()  # default devices: JACK's
    bob = MediaSession(
        audio=AudioOptions(play=tone_file(tmp_path / "440.wav", 440.0), record=record, use_devices=False)
    )
    closing += [alice, bob]
    events: list[MediaEvent] = []
    alice.add_listener(events.append)
    tap = PlayedTap()
    alice.processors.append(tap)
    await connect(alice, bob)
    await alice.wait_event(FirstAudio, T)
    await bob.wait_event(FirstAudio, T)
    assert not [e for e in events if isinstance(e, DeviceUnavailable)]
    assert alice.track is not None and isinstance(alice.track.source, DeviceSource)
    assert isinstance(alice.output, DeviceOutput)
    await asyncio.sleep(1.0)
    # What JACK played, as the echo canceller's reference: bob's tone.
    played = np.concatenate(tap.played[-40:])
    peak = (
        np.argmax(np.abs(np.fft.rfft(played.astype(float) * np.hanning(len(played)))))
        * SAMPLE_RATE
        / len(played)
    )
    assert abs(peak - 440.0) <= 5.0
    stats = await alice.stats()
    assert stats.output_latency > 0 and stats.playout is not None and stats.playout.played_frames >= 40
    assert stats.playout_delay is not None and stats.playout_delay < 0.2

    # Devices switched during the call.
    await alice.switch_input(play=tone_file(tmp_path / "660.wav", 660.0))
    assert isinstance(alice.track.source, FileSource)
    switched = (bob.output.frames if isinstance(bob.output, ClockedOutput) else 0) * 2
    await asyncio.sleep(0.8)
    await alice.switch_input(None)
    assert isinstance(alice.track.source, DeviceSource)
    await alice.switch_output(record=tmp_path / "alice-heard.wav")
    assert isinstance(alice.output, ClockedOutput)
    await asyncio.sleep(0.3)  # record 300 ms of the call
    await alice.switch_output(None)
    assert isinstance(alice.output, DeviceOutput)
    assert [e.role for e in events if isinstance(e, DeviceChanged)] == ["input", "input", "output", "output"]
    await alice.close()
    await bob.close()
    heard = Recording.read(record)
    first, last = heard.span(switched)
    assert abs(heard.frequency(first, last) - 660.0) <= 5.0
    assert Recording.read(tmp_path / "alice-heard.wav").samples.size >= 0.25 * SAMPLE_RATE


async def test_tone_player_on_jack(jack: str) -> None:
    player = TonePlayer()
    try:
        assert player.play("ringback")
        assert player.playing == "ringback"
        await asyncio.sleep(0.2)
        before = player.frames_played
        await asyncio.sleep(0.5)
        assert 18 <= player.frames_played - before <= 32
        assert player.play("busy", loop=False) and player.playing == "busy"
    finally:
        player.close()
    assert player.playing is None

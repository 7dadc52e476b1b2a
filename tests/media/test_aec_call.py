"""Echo cancellation in a call between two MediaSessions: the callee is a speakerphone
in a synthetic room (what it plays comes back into its microphone 80 ms later, 6 dB
down, with a reverberant tail), the caller talks (espeak-ng speech, looped) and listens
to what comes back. With the canceller on the callee's capture path, the caller hears
far less of its own voice than without: the echo return loss enhancement through the
whole path (Opus both ways, playout buffers, real timing)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from app.media.aec import OFF, CaptureProcessor, ProcessingSettings, processing_unavailable
from app.media.audio import SAMPLE_RATE, Samples
from app.media.session import AudioOptions, MediaSession

from .dtmf_support import T, connect, interface_address_or_skip

pytestmark = pytest.mark.media

HEARD_SECONDS = 10.0
MEASURED_FROM = 4.0  # seconds of speech the canceller has to converge


class Room:
    """A capture-path processor that adds the room's echo of what was played."""

    def __init__(self, *, delay_ms: int, gain_db: float, noise_rms: float = 3.0, seed: int = 7) -> None:
        rng = self.rng = np.random.default_rng(seed)
        self.noise_rms = noise_rms  # the microphone's own noise (3: about -80 dBFS)
        n = SAMPLE_RATE // 10
        t = np.arange(n) / SAMPLE_RATE
        response = rng.standard_normal(n) * np.exp(-t / 0.03) * 0.05
        response[0] = 1.0
        self.response = response * 10 ** (gain_db / 20)
        self.delay = delay_ms * SAMPLE_RATE // 1000
        self.played: npt.NDArray[np.float64] = np.zeros(0)
        self.played_from = 0  # timeline position of played[0]
        self.captured = 0

    def process_playout(self, frame: Samples) -> None:
        self.played = np.concatenate((self.played, frame.astype(np.float64)))

    def process_capture(self, frame: Samples) -> Samples:
        n, taps = len(frame), len(self.response)
        end = self.captured - self.delay + n  # the played samples this frame hears end here
        start = end - n - taps + 1
        segment = np.zeros(end - start)
        lo, hi = max(start, self.played_from), min(end, self.played_from + len(self.played))
        if hi > lo:
            segment[lo - start : hi - start] = self.played[lo - self.played_from : hi - self.played_from]
        echo = np.convolve(segment, self.response, mode="valid")
        self.captured += n
        keep_from = max(self.played_from, end - n - taps)  # what later frames can still hear
        self.played = self.played[keep_from - self.played_from :]
        self.played_from = keep_from
        noise = self.rng.standard_normal(n) * self.noise_rms
        return np.clip(frame + echo + noise, -32768, 32767).astype(np.int16)


class Heard:
    """A processor on the caller that keeps what it played (what came back) until full."""

    def __init__(self, seconds: float) -> None:
        self.frames: list[Samples] = []
        self.wanted = int(seconds * SAMPLE_RATE)
        self.count = 0
        self.full: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def process_playout(self, frame: Samples) -> None:
        if self.count < self.wanted:
            self.frames.append(frame.copy())
            self.count += len(frame)
            if self.count >= self.wanted and not self.full.done():
                self.full.set_result(None)

    def process_capture(self, frame: Samples) -> Samples:
        return frame

    def samples(self) -> npt.NDArray[np.float64]:
        return np.concatenate(self.frames).astype(np.float64)


async def echo_heard(speech: Path, settings: ProcessingSettings) -> tuple[float, CaptureProcessor]:
    """Power of what the caller hears back between MEASURED_FROM and HEARD_SECONDS."""
    caller = MediaSession(audio=AudioOptions(use_devices=False, play=speech))
    callee = MediaSession(audio=AudioOptions(use_devices=False))
    canceller = CaptureProcessor(settings)
    callee.processors.extend([Room(delay_ms=80, gain_db=-6.0), canceller])
    heard = Heard(HEARD_SECONDS)
    caller.processors.append(heard)
    try:
        await connect(caller, callee)
        await asyncio.wait_for(heard.full, HEARD_SECONDS + 4 * T)
    finally:
        await caller.close()
        await callee.close()
    samples = heard.samples()[int(MEASURED_FROM * SAMPLE_RATE) :]
    return float(np.mean(np.square(samples))), canceller


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} not installed (Debian packages espeak-ng, sox; tools/bootstrap.sh)"
        )
    if processing_unavailable() is not None:
        pytest.skip(str(processing_unavailable()))
    folder = tmp_path_factory.mktemp("call-speech")
    raw, path = folder / "raw.wav", folder / "speech.wav"
    text = (
        "Hello, this is a test of the echo canceller. I am talking through a loudspeaker in a small room, "
        "and what I say comes back into the microphone. You should not hear yourself."
    )
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True, timeout=60)
    subprocess.run(
        ["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(path)], check=True, timeout=60
    )
    return path


async def test_speakerphone_echo_is_cancelled_in_a_call(speech: Path) -> None:
    interface_address_or_skip()
    (without, _), (with_aec, canceller) = await asyncio.gather(
        echo_heard(speech, OFF),
        echo_heard(speech, ProcessingSettings(noise_suppression=False, auto_gain_control=False)),
    )
    without_db, with_db = (10 * np.log10(p / 32768**2) for p in (without, with_aec))
    erle = without_db - with_db
    print(
        f"\necho heard back by the caller: {without_db:.1f} dBFS without the canceller, {with_db:.1f} dBFS with it"
    )
    print(f"echo return loss enhancement through the call: {erle:.1f} dB")
    assert without_db > -40  # the room's echo does come back loudly without the canceller
    assert canceller.frames > 0 and canceller.reference_dropped == 0
    assert erle >= 20.0

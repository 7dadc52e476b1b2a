"""Echo cancellation on the capture path, measured: espeak-ng speaks the far end, a
synthetic room (delay, attenuation, a short reverberant impulse response, a little
noise) leaks it into the "microphone", and the echo return loss enhancement (ERLE) is
10*log10 of the echo's power before over the output's power after, once the canceller has
converged. Near-end speech must come through, alone and over the echo (double talk)."""

from __future__ import annotations

import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from app.media.aec import OFF, CaptureProcessor, ProcessingSettings, processing_unavailable

pytestmark = pytest.mark.media

RATE = 48_000
CHUNK = 960  # 20 ms, the media layer's frame
CONVERGED = 3.0  # seconds of far-end speech before the measurement starts
AEC_ONLY = ProcessingSettings(noise_suppression=False, auto_gain_control=False)

FAR_TEXT = (
    "The quick brown fox jumps over the lazy dog. Please call me back when you get this message, "
    "the meeting moved to three o'clock on Thursday afternoon. We will need the new budget figures, "
    "and a copy of last year's report."
)
NEAR_TEXT = "I think we should move the deadline to next week, do you agree?"

Signal = npt.NDArray[np.float64]


def speak(text: str, voice: str, path: Path) -> Signal:
    """espeak-ng's voice, made 48 kHz mono 16-bit by sox."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True, timeout=60)
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(path)], check=True, timeout=60
    )
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


@dataclass(frozen=True)
class Speech:
    far: Signal
    near: Signal


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} not installed (Debian packages espeak-ng, sox; tools/bootstrap.sh)"
        )
    reason = processing_unavailable()
    if reason is not None:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("speech")
    far = speak(FAR_TEXT, "en-us", folder / "far.wav")
    near = speak(NEAR_TEXT, "en-us+f3", folder / "near.wav") * 0.7
    assert len(far) > 8 * RATE and len(near) > 2 * RATE
    return Speech(far, near)


def room(far: Signal, *, delay_ms: int, gain_db: float, seed: int = 7) -> Signal:
    """The echo of ``far`` at the microphone: the speaker-to-microphone delay, the
    loudspeaker's level at the microphone, and a 100 ms reverberant tail (RT60 ~ 0.2 s)."""
    rng = np.random.default_rng(seed)
    n = int(0.1 * RATE)
    t = np.arange(n) / RATE
    response = rng.standard_normal(n) * np.exp(-t / 0.03) * 0.05
    response[0] = 1.0
    echo = np.convolve(far, response)[: len(far)] * 10 ** (gain_db / 20)
    delay = delay_ms * RATE // 1000
    return np.concatenate((np.zeros(delay), echo))[: len(far)]


def run(processor: CaptureProcessor, far: Signal, mic: Signal) -> Signal:
    """20 ms at a time, as the device callbacks would: what is played, then what is heard."""
    out = np.zeros(len(mic))
    for at in range(0, len(mic) // CHUNK * CHUNK, CHUNK):
        processor.play(np.clip(far[at : at + CHUNK], -32768, 32767).astype(np.int16))
        out[at : at + CHUNK] = processor.process(
            np.clip(mic[at : at + CHUNK], -32768, 32767).astype(np.int16)
        )
    return out


def power_db(a: Signal, b: Signal) -> float:
    return float(10 * np.log10(np.mean(np.square(a)) / np.mean(np.square(b))))


def correlation(out: Signal, ref: Signal, max_lag: int = RATE * 30 // 1000) -> float:
    """The best normalised correlation of ``out`` with ``ref`` over the processing's own
    latency (up to 30 ms)."""
    best = 0.0
    for lag in range(0, max_lag, 8):
        x, y = out[lag:], ref[: len(ref) - lag]
        best = max(best, float(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y))))
    return best


@pytest.mark.parametrize("delay_ms", [40, 80, 120])
def test_erle_on_speech_echo(speech: Speech, delay_ms: int) -> None:
    rng = np.random.default_rng(1)
    echo = room(speech.far, delay_ms=delay_ms, gain_db=-6.0)
    mic = echo + rng.standard_normal(len(echo)) * 3.0  # about -80 dBFS of noise
    start = int(CONVERGED * RATE)

    passthrough = run(CaptureProcessor(OFF), speech.far, mic)
    assert abs(power_db(echo[start:], passthrough[start:])) < 0.1  # the measurement itself is sound

    out = run(CaptureProcessor(AEC_ONLY), speech.far, mic)
    erle = power_db(echo[start:], out[start:])
    print(f"\nERLE with {delay_ms} ms echo delay: {erle:.1f} dB (echo at -6 dB, 100 ms reverberant tail)")
    assert erle >= 20.0


def test_near_end_speech_comes_through(speech: Speech) -> None:
    """After the canceller converged on far-end speech: near-end speech alone comes out
    at its level, and over the echo (double talk) it is still there."""
    far, near = speech.far, speech.near
    n = len(near)
    far_line = np.concatenate((far, np.zeros(n), far[:n]))
    near_line = np.concatenate((np.zeros(len(far)), near, near))
    echo = room(far_line, delay_ms=80, gain_db=-6.0)
    mic = echo + near_line + np.random.default_rng(2).standard_normal(len(echo)) * 3.0
    out = run(CaptureProcessor(AEC_ONLY), far_line, mic)

    alone = slice(len(far), len(far) + n)
    both = slice(len(far) + n, len(far) + 2 * n)
    level = power_db(out[alone], near_line[alone])
    alone_corr = correlation(out[alone], near_line[alone])
    both_corr = correlation(out[both], near_line[both])
    print(
        f"\nnear end alone: {level:+.1f} dB, correlation {alone_corr:.2f}; double talk: correlation {both_corr:.2f}"
    )
    assert abs(level) < 3.0 and alone_corr > 0.85
    assert both_corr > 0.5


def room_noise(seconds: float, rms: float, seed: int) -> Signal:
    """Steady noise the way a fan or a street makes it: most of its power low, none above 6 kHz."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(int(seconds * RATE))
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(len(white), 1 / RATE)
    spectrum[freqs > 6000] = 0
    spectrum[1:] /= np.sqrt(np.maximum(freqs[1:], 50) / 50)
    noise: Signal = np.fft.irfft(spectrum, len(white))
    scaled: Signal = noise * (rms / float(np.sqrt(np.mean(np.square(noise)))))
    return scaled


def test_noise_suppression_and_gain(speech: Speech) -> None:
    """NS takes steady noise down (by about its level) and leaves speech be; AGC brings
    a quiet talker up."""
    quiet = speech.near * 0.1  # about 35 dB below full scale
    talk = np.concatenate((np.zeros(2 * RATE), quiet, np.zeros(RATE)))
    mic = talk + room_noise(len(talk) / RATE, 60.0, seed=3)  # about -55 dBFS
    silent_far = np.zeros(len(mic))
    ns_only = ProcessingSettings(echo_cancellation=False, auto_gain_control=False, noise_suppression_level=2)
    out = run(CaptureProcessor(ns_only), silent_far, mic)
    tail = slice(len(mic) - RATE // 2 - CHUNK, len(mic) - CHUNK)  # noise alone, after the speech
    words = slice(2 * RATE, 2 * RATE + len(quiet))
    suppressed = power_db(mic[tail], out[tail])
    speech_change = power_db(out[words], mic[words])
    print(f"\nnoise suppression (level 2): noise {suppressed:.1f} dB down, speech {speech_change:+.1f} dB")
    assert suppressed > 12.0 and abs(speech_change) < 3.0

    agc_only = ProcessingSettings(echo_cancellation=False, noise_suppression=False)
    gained = run(CaptureProcessor(agc_only), silent_far, talk)
    gain = power_db(gained[words], talk[words])
    print(f"automatic gain on a quiet talker: {gain:+.1f} dB")
    assert gain > 6.0


def test_settings_switch_and_framing() -> None:
    rng = np.random.default_rng(4)
    mic = (rng.standard_normal(RATE) * 1000).astype(np.int16)
    processor = CaptureProcessor(OFF)
    # everything off: the samples pass unchanged, whatever the chunk size
    out = np.concatenate([processor.process(mic[i : i + 480]) for i in range(0, RATE, 480)])
    assert np.array_equal(out, mic)
    # inputs that are not whole 10 ms frames: the output runs one frame late
    odd = CaptureProcessor(OFF)
    pieces = [odd.process(mic[i : i + 700]) for i in range(0, 7000, 700)]
    assert [len(p) for p in pieces] == [700] * 10
    assert np.array_equal(
        np.concatenate(pieces), np.concatenate((np.zeros(480, np.int16), mic[: 7000 - 480]))
    )
    # switched on at run time: it applies at the next frame
    if processing_unavailable() is None:
        processor.configure(AEC_ONLY)
        assert processor.settings == AEC_ONLY
        processed = processor.process(mic[:960])
        assert len(processed) == 960 and not np.array_equal(processed, mic[:960])
        processor.configure(OFF)
        assert np.array_equal(processor.process(mic[:960]), mic[:960])


def test_reference_is_bounded_when_capture_stalls() -> None:
    processor = CaptureProcessor(OFF, max_reference=0.5)
    for _ in range(100):  # 2 s played, nothing captured
        processor.play(np.ones(CHUNK, dtype=np.int16))
    assert processor.reference_dropped >= RATE  # more than a second of it dropped
    with pytest.raises(ValueError):
        CaptureProcessor(OFF, sample_rate=44_100)
    with pytest.raises(ValueError):
        ProcessingSettings(noise_suppression_level=4)

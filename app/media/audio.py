"""Audio as the media layer handles it: 20 ms frames of 48 kHz mono signed 16-bit
samples (numpy int16), and the conversions to and from PyAV frames and audio files.

48 kHz is Opus's rate (RFC 7587 §4.1: the RTP clock of Opus is always 48 kHz) and what
sound devices and JACK run at; the 8/16 kHz codecs (PCMU, PCMA, G.722) are resampled at
the edges by PyAV's ``AudioResampler`` (libswresample), which keeps timestamps.
"""

from __future__ import annotations

import fractions
import wave
from pathlib import Path
from typing import Final, TypeAlias

import av
import numpy as np
import numpy.typing as npt

SAMPLE_RATE: Final = 48_000
FRAME_SAMPLES: Final = 960  # 20 ms: the packetization time of every codec we use
FRAME_SECONDS: Final = FRAME_SAMPLES / SAMPLE_RATE
TIME_BASE: Final = fractions.Fraction(1, SAMPLE_RATE)

Samples: TypeAlias = npt.NDArray[np.int16]


class AudioFileError(Exception):
    """An audio file that cannot be read or written (message says which and why)."""


def silence(samples: int = FRAME_SAMPLES) -> Samples:
    return np.zeros(samples, dtype=np.int16)


def to_av_frame(samples: Samples, pts: int) -> av.AudioFrame:
    """One mono 48 kHz frame for aiortc's encoders (pts counts samples, time base 1/48000)."""
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


def rms(samples: Samples) -> float:
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64))))) if len(samples) else 0.0


def ring_index(pos: int, n: int, size: int) -> slice | npt.NDArray[np.intp]:
    """Where ``n`` samples from ``pos`` lie in a ring of ``size``: a slice unless they
    wrap (a slice costs a fraction of an index array, and this runs 50 times a second)."""
    start = pos % size
    if start + n <= size:
        return slice(start, start + n)
    return (start + np.arange(n)) % size


_PLAIN_48K: Final = {("s16", "mono", SAMPLE_RATE), ("s16", "stereo", SAMPLE_RATE)}
"""Decoded frames ToMono48k takes without a resampler (packed 16-bit at 48 kHz)."""


class ToMono48k:
    """Decoded frames (any rate, layout, sample format) to 48 kHz mono int16, with their
    position on the stream's timeline in 48 kHz samples (from the frame's pts, which
    aiortc derives from the RTP timestamp, so lost packets show as jumps)."""

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None
        self._next: int = 0  # where a frame without pts goes

    def convert(self, frame: av.AudioFrame) -> list[tuple[int, Samples]]:
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key in _PLAIN_48K and frame.pts is not None:
            # What the Opus decoder gives: no resampling, only the channels averaged.
            data = frame.to_ndarray().reshape(-1)
            if key[1] == "stereo":
                pair = data.reshape(-1, 2).astype(np.int32)
                data = ((pair[:, 0] + pair[:, 1]) >> 1).astype(np.int16)
            pos = int(frame.pts)
            self._next = pos + len(data)
            self._input = None  # a later resampled input starts a fresh resampler
            return [(pos, data.astype(np.int16, copy=False))]
        if key != self._input:
            # A new codec after a re-INVITE: a fresh resampler, no state carried over.
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            self._input = key
        assert self._resampler is not None
        out: list[tuple[int, Samples]] = []
        for piece in self._resampler.resample(frame):
            samples = piece.to_ndarray().reshape(-1).astype(np.int16, copy=False)
            pos = self._next if piece.pts is None else int(piece.pts)
            out.append((pos, samples))
            self._next = pos + len(samples)
        return out


def load_audio_file(path: str | Path) -> Samples:
    """The whole of an audio file (WAV or anything FFmpeg reads), as 48 kHz mono int16."""
    try:
        container = av.open(str(path))
    except (OSError, av.FFmpegError) as exc:
        raise AudioFileError(f"cannot open audio file {path}: {exc}") from None
    try:
        if not container.streams.audio:
            raise AudioFileError(f"{path} has no audio stream")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        pieces: list[Samples] = []
        for frame in container.decode(audio=0):
            for piece in resampler.resample(frame):
                pieces.append(piece.to_ndarray().reshape(-1).astype(np.int16, copy=False))
        for piece in resampler.resample(None):  # flush the resampler's tail
            pieces.append(piece.to_ndarray().reshape(-1).astype(np.int16, copy=False))
    except av.FFmpegError as exc:
        raise AudioFileError(f"cannot decode audio file {path}: {exc}") from None
    finally:
        container.close()
    samples = np.concatenate(pieces) if pieces else silence(0)
    if len(samples) == 0:
        raise AudioFileError(f"{path} holds no audio")
    return samples


HEADER_EVERY: Final = 50  # writes (20 ms frames) between WAV header updates


class WavWriter:
    """A 48 kHz mono 16-bit PCM WAV file written frame by frame (stdlib ``wave``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._wav: wave.Wave_write | None = wave.open(str(self.path), "wb")  # noqa: SIM115
        except OSError as exc:
            raise AudioFileError(f"cannot write {path}: {exc}") from None
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)
        self.samples_written = 0
        self._writes = 0

    def write(self, samples: Samples) -> None:
        if self._wav is not None:
            data = samples.astype("<i2", copy=False).tobytes()
            self._writes += 1
            # The header's lengths are patched once a second (three seeks a write cost
            # more than the write), and at close: a killed phone leaves a file that
            # plays up to its last second.
            if self._writes % HEADER_EVERY == 0:
                self._wav.writeframes(data)
            else:
                self._wav.writeframesraw(data)
            self.samples_written += len(samples)

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None


def read_wav(path: str | Path) -> tuple[int, Samples]:
    """A 16-bit PCM WAV file's rate and samples (first channel): for tests and tools."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise AudioFileError(f"{path}: only 16-bit PCM is read here")
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
        return wav.getframerate(), data[:: wav.getnchannels()]


def write_wav(path: str | Path, samples: Samples, rate: int = SAMPLE_RATE) -> None:
    """A mono 16-bit PCM WAV file at ``rate``."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2", copy=False).tobytes())

"""Helpers of the MediaSession tests: tone files, connecting two sessions directly
(offer/answer without SIP), and reading a recording (frequency by FFT, gaps by RMS in
10 ms windows)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from aioice.ice import get_host_addresses

from app.media.audio import SAMPLE_RATE, Samples, read_wav, write_wav
from app.media.session import MediaSession
from app.sip.sdp import RejectWith

T = 10.0  # seconds any single step may take
WINDOW = SAMPLE_RATE // 100  # 10 ms
TONE_AMPLITUDE = 8000
#: A 10 ms window quieter than this (a tenth of the tone's RMS) counts as a gap.
GAP_RMS = TONE_AMPLITUDE / np.sqrt(2) / 10


def interface_address_or_skip() -> str:
    addresses = [a for a in get_host_addresses(use_ipv4=True, use_ipv6=False) if not a.startswith("127.")]
    if not addresses:
        pytest.skip("no non-loopback IPv4 interface address: ICE has no host candidate on this machine")
    return addresses[0]


def tone_file(path: Path, freq: float, seconds: float = 1.0, rate: int = SAMPLE_RATE) -> Path:
    """A sine tone WAV whose length is a whole number of periods (it loops cleanly)."""
    periods = max(1, round(freq * seconds))
    n = round(periods * rate / freq)
    t = np.arange(n) / rate
    write_wav(path, (np.sin(2 * np.pi * freq * t) * TONE_AMPLITUDE).astype(np.int16), rate)
    return path


async def connect(caller: MediaSession, callee: MediaSession) -> None:
    """An offer of ``caller`` answered by ``callee``, the answer taken by ``caller``."""
    answer = await callee.answer(await caller.make_offer())
    assert isinstance(answer, bytes), answer
    assert await caller.accept_answer(answer) is None


async def renegotiate(offerer: MediaSession, answerer: MediaSession) -> tuple[bytes, bytes]:
    offer = await offerer.make_offer()
    answer = await answerer.answer(offer)
    assert not isinstance(answer, RejectWith), answer
    assert await offerer.accept_answer(answer) is None
    return offer, answer


@dataclass
class Recording:
    samples: Samples

    @classmethod
    def read(cls, path: Path) -> Recording:
        rate, samples = read_wav(path)
        assert rate == SAMPLE_RATE
        return cls(samples)

    def window_rms(self) -> np.ndarray:
        n = len(self.samples) // WINDOW
        w = self.samples[: n * WINDOW].reshape(n, WINDOW).astype(np.float64)
        rms: np.ndarray = np.sqrt(np.mean(w * w, axis=1))
        return rms

    def audible(self) -> np.ndarray:
        loud: np.ndarray = self.window_rms() >= GAP_RMS
        return loud

    def span(self, start: int = 0, end: int | None = None) -> tuple[int, int]:
        """First and last audible 10 ms windows within [start, end)."""
        loud = np.flatnonzero(self.audible()[start:end])
        assert len(loud), "no audio in the recording"
        return start + int(loud[0]), start + int(loud[-1])

    def longest_gap(self, first: int, last: int) -> float:
        """Seconds of the longest run of quiet windows between two windows."""
        run = best = 0
        for loud in self.audible()[first : last + 1]:
            run = 0 if loud else run + 1
            best = max(best, run)
        return best * WINDOW / SAMPLE_RATE

    def frequency(self, first: int, last: int) -> float:
        """The strongest frequency (Hz) between two windows, by FFT (Hann window)."""
        x = self.samples[first * WINDOW : (last + 1) * WINDOW].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        return float(np.argmax(spectrum) * SAMPLE_RATE / len(x))

"""The playout buffer: decoded audio from the network waits here for the output clock.

Written from the asyncio side (frames from aiortc's decoder, placed by their RTP
timestamp), read from the output's clock (a PortAudio callback thread, or an asyncio
tick for a file or no device). One lock guards it; both sides hold it for a copy of a
few kilobytes at most.

- **Small and adaptive**: playback starts once ``target`` samples are queued (40 ms at
  first). When the output finds nothing to play while audio is still expected (the
  network is late), the read position stays where it is (the audio is stretched by a
  concealed frame, not skipped) and, once audio comes back, ``target`` grows by a frame
  (up to ``max_target``). After ten seconds without such an underrun it shrinks by a
  frame (down to ``min_target``).
- **No latency creep**: after each read, anything queued beyond ``target + margin`` is
  dropped, oldest first. A sender clock faster than ours, a burst after a stall, or a
  jump in timestamps therefore costs at most a click, never a growing delay.
- **Concealment**: a missing stretch (lost or late packet) is filled with the last good
  frame, fading out over 100 ms, then silence. aiortc decodes Opus through FFmpeg with
  no way to ask libopus for its own concealment, so all codecs get this one.
- The **delay estimate** is the mean queued audio seen by the output clock (an
  exponential average over about a second), in seconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

import numpy as np

from app.media.audio import FRAME_SAMPLES, SAMPLE_RATE, Samples, ring_index, silence

FADE_FRAMES: Final = 5  # concealment fades out over 100 ms
_SHRINK_AFTER_READS: Final = 500  # 10 s of 20 ms reads without an underrun
_LONG_UNDERRUN_READS: Final = 10  # longer than 200 ms: the far end stopped, not the network
_DELAY_ALPHA: Final = 0.02


@dataclass(frozen=True)
class PlayoutStats:
    delay: float  # seconds of audio queued, averaged as the output reads
    target: float  # seconds the buffer aims to hold
    played_frames: int
    concealed_frames: int  # frames (wholly or partly) made up by concealment
    underruns: int  # times the output found nothing while audio was expected
    dropped_frames: int  # frames dropped to keep the delay down
    late_frames: int  # frames that came after their time was played
    resyncs: int  # jumps of the timeline that restarted the buffer


class PlayoutBuffer:
    """48 kHz mono audio placed by position, read by an output clock (see module doc)."""

    def __init__(
        self,
        *,
        target: int = 2 * FRAME_SAMPLES,
        min_target: int = FRAME_SAMPLES,
        max_target: int = 10 * FRAME_SAMPLES,
        margin: int = 3 * FRAME_SAMPLES,
        capacity: int = 2 * SAMPLE_RATE,
    ) -> None:
        if not 0 < min_target <= target <= max_target < capacity // 2:
            raise ValueError("need 0 < min_target <= target <= max_target < capacity/2")
        self._lock = threading.Lock()
        self._ring = np.zeros(capacity, dtype=np.int16)
        self._valid = np.zeros(capacity, dtype=bool)
        self._capacity = capacity
        self._read: int | None = None  # position of the next sample to play
        self._end = 0  # one past the newest sample written
        self._primed = False
        self.target = target
        self.min_target = min_target
        self.max_target = max_target
        self.margin = margin
        self._last = silence()
        self._conceal_run = 0
        self._underrun_reads = 0  # reads of the current underrun, 0 when none
        self._reads_since_underrun = 0
        self._delay = float(target)
        self._played = 0
        self._concealed = 0
        self._underruns = 0
        self._dropped = 0
        self._late = 0
        self._resyncs = 0

    # ------------------------------------------------------------------ writer side

    def write(self, pos: int, samples: Samples) -> None:
        """Audio whose first sample belongs at ``pos`` (48 kHz samples on the stream's
        timeline)."""
        n = len(samples)
        if n == 0:
            return
        if n > self._capacity // 2:
            samples, pos, n = (
                samples[-(self._capacity // 2) :],
                pos + n - self._capacity // 2,
                self._capacity // 2,
            )
        with self._lock:
            if self._read is None:
                self._restart(pos)
            assert self._read is not None
            if pos + n <= self._read:
                if self._read - pos > self._capacity:  # far behind: the sender restarted its clock
                    self._resyncs += 1
                    self._restart(pos)
                else:
                    self._late += 1
                    return
            elif pos + n - self._read > self._capacity // 2:  # far ahead: a jump in timestamps
                self._resyncs += 1
                self._restart(pos)
            if pos < self._read:
                samples, pos = samples[self._read - pos :], self._read
                n = len(samples)
            start = pos % self._capacity
            first = min(n, self._capacity - start)
            self._ring[start : start + first] = samples[:first]
            self._valid[start : start + first] = True
            if first < n:
                self._ring[: n - first] = samples[first:]
                self._valid[: n - first] = True
            self._end = max(self._end, pos + n)
            if not self._primed and self._end - self._read >= self.target:
                # Start from ``target`` before the newest sample: what came in pieces
                # that do not add up to whole frames (a resampler's first output) is
                # not left to sit in the buffer as extra delay.
                start = self._end - self.target
                self._clear(self._read, start - self._read)
                self._read = start
                self._primed = True

    def _restart(self, pos: int) -> None:
        self._valid[:] = False
        self._read = pos
        self._end = pos
        self._primed = False

    # ------------------------------------------------------------------ output side

    def read(self, n: int = FRAME_SAMPLES) -> Samples:
        """The next ``n`` samples to play (never blocks; silence before audio comes)."""
        with self._lock:
            if self._read is None or not self._primed:
                return silence(n)
            queued = self._end - self._read
            self._delay += _DELAY_ALPHA * (max(queued, 0) - self._delay)
            if queued <= 0:
                return self._underrun(n)
            if self._underrun_reads:
                if self._underrun_reads <= _LONG_UNDERRUN_READS:
                    self.target = min(self.target + FRAME_SAMPLES, self.max_target)
                self._underrun_reads = 0
            out = self._take(n)
            self._read += n
            self._reads_since_underrun += 1
            if self._reads_since_underrun >= _SHRINK_AFTER_READS:
                self._reads_since_underrun = 0
                self.target = max(self.target - FRAME_SAMPLES, self.min_target)
            excess = self._end - self._read - (self.target + self.margin)
            if excess > 0:
                drop = self._end - self._read - self.target
                self._clear(self._read, drop)
                self._read += drop
                self._dropped += -(-drop // FRAME_SAMPLES)
            self._played += 1
            return out

    def _underrun(self, n: int) -> Samples:
        if self._underrun_reads == 0:
            self._underruns += 1
        self._underrun_reads += 1
        self._reads_since_underrun = 0
        if self._underrun_reads > _LONG_UNDERRUN_READS:
            # The far end stopped sending (hold, DTX, end of call): wait for audio again
            # with a full target, as at the start.
            self._primed = False
        self._concealed += 1
        return self._conceal(n)

    def _take(self, n: int) -> Samples:
        assert self._read is not None
        idx = ring_index(self._read, n, self._capacity)
        valid = self._valid[idx].copy()  # a slice is a view: cleared just below
        out = self._ring[idx].copy()
        self._valid[idx] = False
        if valid.all():
            self._conceal_run = 0
            self._last = out
            return out
        self._concealed += 1
        filler = self._conceal(n)
        out[~valid] = filler[~valid]
        if valid.any():
            self._conceal_run = 0
        return out

    def _conceal(self, n: int) -> Samples:
        self._conceal_run += 1
        if self._conceal_run > FADE_FRAMES:
            return silence(n)
        gain = 1.0 - self._conceal_run / (FADE_FRAMES + 1)
        base = np.resize(self._last, n)
        return (base.astype(np.float32) * gain).astype(np.int16)

    def _clear(self, pos: int, n: int) -> None:
        self._valid[ring_index(pos, n, self._capacity)] = False

    # ------------------------------------------------------------------ figures

    @property
    def delay(self) -> float:
        """Seconds of audio between arrival and playout (averaged)."""
        return self._delay / SAMPLE_RATE

    def stats(self) -> PlayoutStats:
        with self._lock:
            return PlayoutStats(
                delay=self._delay / SAMPLE_RATE,
                target=self.target / SAMPLE_RATE,
                played_frames=self._played,
                concealed_frames=self._concealed,
                underruns=self._underruns,
                dropped_frames=self._dropped,
                late_frames=self._late,
                resyncs=self._resyncs,
            )

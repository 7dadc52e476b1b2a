"""Where received audio goes: an output device, a WAV file, or nowhere. Each one is a
clock that reads 20 ms at a time from the call's :class:`~app.media.playout.PlayoutBuffer`
(a device by PortAudio's callback; a file or nothing by the event loop's clock, so a
recording holds what a listener would have heard, gaps and all, in real time).

What was played also goes to ``reference`` (bounded; the capture track hands it to the
audio processors as the far-end signal an echo canceller needs).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from pathlib import Path
from typing import Final, Protocol

from app.media.audio import FRAME_SAMPLES, FRAME_SECONDS, Samples, WavWriter, silence
from app.media.devices import AudioDevice, PlaybackStream
from app.media.playout import PlayoutBuffer

log = logging.getLogger(__name__)

_MAX_CATCH_UP: Final = 10  # frames a late tick may read at once (200 ms); beyond, skip time


class AudioOutput(Protocol):
    description: str

    @property
    def latency(self) -> float:
        """Seconds between a sample leaving the buffer and being heard (or written)."""
        ...

    async def close(self) -> None: ...


class DeviceOutput:
    def __init__(
        self, device: AudioDevice, buffer: PlayoutBuffer, reference: collections.deque[Samples]
    ) -> None:
        self.description = f"output device {device.name!r}"
        self.stream = PlaybackStream(device, buffer.read, played=reference.append)

    @property
    def latency(self) -> float:
        return self.stream.latency

    async def close(self) -> None:
        self.stream.close()


class ClockedOutput:
    """Reads the buffer every 20 ms of the event loop's clock and writes what it read to
    a WAV file (``record``), or drops it (no device)."""

    def __init__(
        self, buffer: PlayoutBuffer, reference: collections.deque[Samples], record: str | Path | None = None
    ) -> None:
        self.writer = WavWriter(record) if record is not None else None
        self.description = f"file {record}" if record is not None else "no output (discarded)"
        self._buffer = buffer
        self._reference = reference
        self.frames = 0
        self.skipped = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def latency(self) -> float:
        return 0.0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        done = 0
        while True:
            due = int((loop.time() - start) / FRAME_SECONDS) + 1 - done
            if due > _MAX_CATCH_UP:  # the loop was blocked: the listener heard nothing then
                self.skipped += due - 1
                if self.writer is not None:  # keep the recording's timeline the clock's
                    self.writer.write(silence(FRAME_SAMPLES * (due - 1)))
                done += due - 1
                due = 1
            for _ in range(due):
                block = self._buffer.read(FRAME_SAMPLES)
                self._reference.append(block)
                if self.writer is not None:
                    self.writer.write(block)
                self.frames += 1
            done += due
            await asyncio.sleep(max(0.0, start + done * FRAME_SECONDS - loop.time()))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self.writer is not None:
            self.writer.close()

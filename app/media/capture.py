"""What we send: a source of 20 ms frames (microphone, a looped file, or silence), the
audio processors on the capture path, and the aiortc track that the RTP sender reads.

Sources pace themselves: a device by its own clock (PortAudio delivers a block every
20 ms), a file or silence by the event loop's clock, so the sender encodes in real time.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, Packet
from av.stream import Stream

from app.media.audio import (
    FRAME_SAMPLES,
    FRAME_SECONDS,
    Samples,
    load_audio_file,
    ring_index,
    silence,
    to_av_frame,
)
from app.media.devices import CaptureStream
from app.media.encoder import InlineEncoder

log = logging.getLogger(__name__)

_MAX_LAG: Final = 0.2  # a paced source this far behind its clock starts again from now
#: Reference frames (what the output played) that may wait for the capture path: the
#: capture starts after the output (DTLS comes first) and loses time when the sender
#: falls behind (a device drops its oldest blocks, a paced source skips ahead), while the
#: output clock goes on. Beyond this the oldest reference is dropped, so processors see
#: the two paths at most 200 ms apart, as an echo canceller can follow.
REFERENCE_SLACK: Final = 10


class AudioProcessor(Protocol):
    """A hook on the audio path (echo cancellation, level meters, DTMF detection...).

    Both methods run on the event loop, in the capture track, once per 20 ms frame of
    48 kHz mono int16: first ``process_playout`` with each frame the output played
    since the last capture frame (the far-end reference an echo canceller needs, in
    order), then ``process_capture`` with the microphone's frame, returning the frame
    to send (same length). A processor that raises is removed (logged once). When the
    capture path has lost time against the output (see :data:`REFERENCE_SLACK`), the
    oldest reference frames are left out (``MicrophoneTrack.reference_dropped``).
    """

    def process_playout(self, frame: Samples) -> None: ...

    def process_capture(self, frame: Samples) -> Samples: ...


class FrameSource(Protocol):
    description: str

    async def next_frame(self) -> Samples | None:
        """The next 20 ms frame, in real time; None if the source failed."""
        ...

    def close(self) -> None: ...


class _Pacer:
    """Waits until the next 20 ms frame is due on the event loop's clock."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._count = 0

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._start is None or now - (self._start + self._count * FRAME_SECONDS) > _MAX_LAG:
            self._start, self._count = now, 0
        due = self._start + self._count * FRAME_SECONDS
        self._count += 1
        if due > now:
            await asyncio.sleep(due - now)


class SilenceSource:
    def __init__(self, description: str = "silence") -> None:
        self.description = description
        self._pacer = _Pacer()

    async def next_frame(self) -> Samples | None:
        await self._pacer.wait()
        return silence()

    def close(self) -> None:
        pass


class FileSource:
    """An audio file sent in a loop (converted to 48 kHz mono once, when opened)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = f"file {self.path}"
        self._samples = load_audio_file(self.path)
        self._offset = 0
        self._pacer = _Pacer()

    def _slice(self) -> Samples:
        start, total = self._offset, len(self._samples)
        self._offset = (start + FRAME_SAMPLES) % total
        return self._samples[ring_index(start, FRAME_SAMPLES, total)].copy()

    async def next_frame(self) -> Samples | None:
        await self._pacer.wait()
        return self._slice()

    def close(self) -> None:
        pass


class DeviceSource:
    """A microphone: frames as PortAudio delivers them."""

    def __init__(self, stream: CaptureStream) -> None:
        self.stream = stream
        self.description = f"input device {stream.device.name!r}"

    async def next_frame(self) -> Samples | None:
        return await self.stream.get()

    def close(self) -> None:
        self.stream.close()


class MicrophoneTrack(MediaStreamTrack):
    """The audio track aiortc's sender reads: one frame per ``recv``, from the current
    source, through the processors, silenced when muted. Timestamps count samples at
    48 kHz (pts, time base 1/48000), whatever the source."""

    kind = "audio"

    def __init__(
        self,
        source: FrameSource,
        *,
        processors: list[AudioProcessor] | None = None,
        reference: collections.deque[Samples] | None = None,
        on_source_failed: Callable[[FrameSource], FrameSource] | None = None,
    ) -> None:
        super().__init__()
        self._source = source
        self.processors: list[AudioProcessor] = processors if processors is not None else []
        self.reference: collections.deque[Samples] = (
            reference if reference is not None else collections.deque(maxlen=50)
        )
        self._on_source_failed = on_source_failed
        self.muted = False
        self.frames = 0
        self.reference_dropped = 0
        self._reference_debt = 0  # reference frames handed over minus capture frames
        self._pts = 0
        self.encoder: InlineEncoder | None = None  # set once the send codec is known

    @property
    def source(self) -> FrameSource:
        return self._source

    def set_source(self, source: FrameSource) -> None:
        """Switch sources between two frames (device change during a call)."""
        old, self._source = self._source, source
        if old is not source:
            old.close()

    async def recv(self) -> AudioFrame | Packet[Stream]:
        """The next frame, encoded already once :attr:`encoder` is set
        (:mod:`app.media.encoder`: aiortc's sender then only packs it)."""
        while True:
            frame = await self._next_frame()
            if self.encoder is None:
                return frame
            packet = self.encoder.encode(frame)
            if packet is not None:
                return packet

    async def _next_frame(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        source = self._source
        samples = await source.next_frame()
        while samples is None:
            if source is not self._source:  # switched while we waited
                source = self._source
            else:
                replacement = self._on_source_failed(source) if self._on_source_failed else SilenceSource()
                self.set_source(replacement)
                source = replacement
            samples = await source.next_frame()
        samples = self._process(samples)
        if self.muted:
            samples = silence(len(samples))
        frame = to_av_frame(samples, self._pts)
        self._pts += len(samples)
        self.frames += 1
        return frame

    def _process(self, samples: Samples) -> Samples:
        played: list[Samples] = []
        while self.reference:
            played.append(self.reference.popleft())
        self._reference_debt += len(played) - 1
        if self._reference_debt > REFERENCE_SLACK:
            drop = min(self._reference_debt - REFERENCE_SLACK, len(played))
            played = played[drop:]
            self.reference_dropped += drop
            self._reference_debt -= drop
        self._reference_debt = max(self._reference_debt, -REFERENCE_SLACK)
        for processor in list(self.processors):
            try:
                for block in played:
                    processor.process_playout(block)
                out = processor.process_capture(samples)
                if len(out) != len(samples):
                    raise ValueError(f"returned {len(out)} samples for {len(samples)}")
                samples = out
            except Exception:
                log.exception("audio processor %r failed: removed", processor)
                self.processors.remove(processor)
        return samples

    def stop(self) -> None:
        super().stop()
        self._source.close()

"""Sound devices through sounddevice (PortAudio): listing, choosing, and streams that
cross between PortAudio's callback threads and asyncio through small bounded queues.

Every stream runs at 48 kHz, mono, 16-bit, in 20 ms blocks (PortAudio adapts the
host's period to that block size). A machine with no sound card is a real case: the
device list is then empty, and opening a stream raises :class:`AudioDeviceError` with a
message a user can act on; callers fall back to silence (capture) or to no output.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final, Literal, TypeAlias

import numpy as np

from app.media.audio import FRAME_SAMPLES, SAMPLE_RATE, Samples

log = logging.getLogger(__name__)

DeviceSpec: TypeAlias = int | str
"""A device by PortAudio index, or by name (exact, else a unique case-insensitive part)."""
Direction: TypeAlias = Literal["input", "output"]

#: Capture frames waiting for the sender: 100 ms; older ones are dropped when it lags.
CAPTURE_QUEUE_FRAMES: Final = 5
_CAPTURE_STALL: Final = 0.5  # seconds without a block: the device stopped


class AudioDeviceError(Exception):
    """No such device, no device at all, or PortAudio refused to open it."""


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool
    default_output: bool

    @property
    def is_input(self) -> bool:
        return self.max_input_channels > 0

    @property
    def is_output(self) -> bool:
        return self.max_output_channels > 0

    def __str__(self) -> str:
        return f"{self.index}: {self.name} ({self.hostapi})"


_sd_module: ModuleType | None = None
_sd_lock = threading.Lock()


def _sd() -> ModuleType:
    """The sounddevice module, imported on first use (it loads libportaudio then)."""
    global _sd_module
    with _sd_lock:
        if _sd_module is None:
            try:
                import sounddevice
            except OSError as exc:  # no libportaudio2
                raise AudioDeviceError(f"PortAudio is not installed ({exc}): no sound devices") from None
            _sd_module = sounddevice
        return _sd_module


def list_devices() -> list[AudioDevice]:
    """Every device PortAudio knows (empty with no sound card or no PortAudio)."""
    try:
        sd = _sd()
        raw: Any = sd.query_devices()
        apis: Any = sd.query_hostapis()
        default_in, default_out = _defaults(sd)
    except (AudioDeviceError, Exception) as exc:  # PortAudioError is not exported at import time
        log.info("no sound devices: %s", exc)
        return []
    out = []
    for index, d in enumerate(raw):
        out.append(
            AudioDevice(
                index=index,
                name=str(d["name"]),
                hostapi=str(apis[d["hostapi"]]["name"]),
                max_input_channels=int(d["max_input_channels"]),
                max_output_channels=int(d["max_output_channels"]),
                default_samplerate=float(d["default_samplerate"]),
                default_input=index == default_in,
                default_output=index == default_out,
            )
        )
    return out


def _defaults(sd: ModuleType) -> tuple[int, int]:
    device: Any = sd.default.device
    pair = [int(x) if x is not None else -1 for x in device]
    apis: Any = sd.query_hostapis()
    for i in (0, 1):
        if pair[i] < 0:
            # sounddevice's default falls back to PortAudio's; with JACK as the only
            # host API that has devices, ALSA's "no default" would hide JACK's.
            key = "default_input_device" if i == 0 else "default_output_device"
            pair[i] = next((int(api[key]) for api in apis if int(api[key]) >= 0), -1)
    return pair[0], pair[1]


def find_device(spec: DeviceSpec | None, direction: Direction) -> AudioDevice:
    """The device ``spec`` names (None: the default one) able to do ``direction``."""
    devices = [d for d in list_devices() if (d.is_input if direction == "input" else d.is_output)]
    if not devices:
        raise AudioDeviceError(f"no audio {direction} device on this machine")
    if spec is None:
        chosen = next(
            (d for d in devices if (d.default_input if direction == "input" else d.default_output)), None
        )
        return chosen or devices[0]
    if isinstance(spec, int):
        for d in devices:
            if d.index == spec:
                return d
        raise AudioDeviceError(f"no audio {direction} device with index {spec}")
    exact = [d for d in devices if d.name == spec]
    if exact:
        return exact[0]
    partial = [d for d in devices if spec.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        names = ", ".join(repr(d.name) for d in partial)
        raise AudioDeviceError(f"audio {direction} device {spec!r} is ambiguous: {names}")
    raise AudioDeviceError(f"no audio {direction} device named {spec!r}")


def rescan_devices() -> None:
    """Make PortAudio enumerate the devices again (one plugged in, a JACK server
    started); streams must all be closed."""
    sd = _sd()
    sd._terminate()
    sd._initialize()


class CaptureStream:
    """A PortAudio input stream whose 20 ms blocks wait in a bounded queue for asyncio.

    The callback thread appends and, when the queue is full, drops the oldest block
    (``dropped`` counts them): the sender then gets the freshest audio, never a
    growing backlog. :meth:`get` returns None when the device stops delivering.
    """

    def __init__(self, device: AudioDevice, *, queue_frames: int = CAPTURE_QUEUE_FRAMES) -> None:
        self.device = device
        self._queue: collections.deque[Samples] = collections.deque()
        self._max = queue_frames
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._waiting = False
        self.frames = 0
        self.dropped = 0
        self.overflows = 0  # PortAudio's own input overflow flags
        self.closed = False
        sd = _sd()
        try:
            self._stream: Any = sd.InputStream(
                samplerate=SAMPLE_RATE,
                blocksize=FRAME_SAMPLES,
                device=device.index,
                channels=1,
                dtype="int16",
                latency="low",
                callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:  # sounddevice.PortAudioError, ValueError for a bad setting
            raise AudioDeviceError(f"cannot open audio input {device.name!r}: {exc}") from None

    @property
    def latency(self) -> float:
        return float(self._stream.latency)

    def _callback(self, indata: Any, frames: int, time: Any, status: Any) -> None:
        # PortAudio's thread: copy, queue, wake asyncio only when it waits.
        if status.input_overflow:
            self.overflows += 1
        block = np.array(indata[:, 0], dtype=np.int16)
        self._queue.append(block)
        self.frames += 1
        while len(self._queue) > self._max:
            self._queue.popleft()
            self.dropped += 1
        if self._waiting:
            self._waiting = False
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    async def get(self) -> Samples | None:
        """The oldest queued block; None if the device delivered nothing for a while
        or the stream is closed."""
        while not self.closed:
            try:
                return self._queue.popleft()
            except IndexError:
                pass
            self._wake.clear()
            self._waiting = True
            if self._queue:  # a block came between popleft and _waiting
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), _CAPTURE_STALL)
            except TimeoutError:
                return None
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._wake.set()
            try:
                self._stream.stop()
                self._stream.close()
            except Exception as exc:  # already gone with the device
                log.debug("closing %s: %s", self.device.name, exc)


class PlaybackStream:
    """A PortAudio output stream that asks ``pull(n)`` for each block, in PortAudio's
    callback thread (``pull`` must not block: a PlayoutBuffer's read, a tone's loop)."""

    def __init__(
        self,
        device: AudioDevice,
        pull: Callable[[int], Samples],
        *,
        played: Callable[[Samples], None] | None = None,
    ) -> None:
        self.device = device
        self._pull = pull
        self._played = played
        self.frames = 0
        self.underflows = 0
        self.errors = 0
        self.closed = False
        sd = _sd()
        try:
            self._stream: Any = sd.OutputStream(
                samplerate=SAMPLE_RATE,
                blocksize=FRAME_SAMPLES,
                device=device.index,
                channels=1,
                dtype="int16",
                latency="low",
                callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:
            raise AudioDeviceError(f"cannot open audio output {device.name!r}: {exc}") from None

    @property
    def latency(self) -> float:
        return float(self._stream.latency)

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        if status.output_underflow:
            self.underflows += 1
        try:
            block = self._pull(frames)
            outdata[:, 0] = block
            if self._played is not None:
                self._played(block)
        except Exception:  # never let an exception kill PortAudio's thread
            self.errors += 1
            outdata.fill(0)
        self.frames += 1

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._stream.stop()
                self._stream.close()
            except Exception as exc:
                log.debug("closing %s: %s", self.device.name, exc)

"""Echo cancellation, noise suppression and automatic gain on the capture path.

A call without a headset leaks what the speaker plays into the microphone; without a
canceller the far end hears itself a round trip later. :class:`CaptureProcessor` runs
WebRTC's audio processing modules (the AEC3 echo canceller with its residual echo
suppressor and high-pass filter, the noise suppressor, AGC2) through ``pywebrtc-audio``,
on 10 ms frames: what we play goes in as the far-end
reference (:meth:`CaptureProcessor.play`, from the playback path), the microphone's
samples go through :meth:`CaptureProcessor.process` (from the capture path) and come out
clean. The two paths may run on different threads (PortAudio callbacks); the reference
crosses through a bounded, locked buffer. AEC3 finds the delay between the reference and
its echo by itself (``stream_delay_ms`` is only a hint).

On a call: ``session.processors.append(CaptureProcessor(settings))`` (a MediaSession
hands the processor each played frame, then each microphone frame, on the event loop).
Each feature is switched by :class:`ProcessingSettings`; :meth:`CaptureProcessor.configure`
takes new settings at the next frame (the module is rebuilt, so it learns anew). With
everything off the samples pass unchanged.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

Samples: TypeAlias = npt.NDArray[np.int16]

DEFAULT_RATE: Final = 48_000  # the media layer's rate (app/media/audio.py)
SUPPORTED_RATES: Final = (16_000, 32_000, 48_000)  # AEC3's native rates: no resampling inside


class _EchoCanceller(Protocol):
    def process(self, near: Samples, far: Samples) -> Samples: ...


class _NoiseSuppressor(Protocol):
    @property
    def speech_probability(self) -> float: ...

    def process(self, audio: Samples) -> Samples: ...


class _GainController(Protocol):
    def process(self, audio: Samples, speech_probability: float | None = None) -> Samples: ...


@dataclass(frozen=True)
class _Modules:
    echo_canceller: Callable[..., _EchoCanceller]
    noise_suppressor: Callable[..., _NoiseSuppressor]
    gain_controller: Callable[..., _GainController]


def _load() -> tuple[_Modules | None, str | None]:
    try:
        from pywebrtc_audio import EchoCanceller, GainController, NoiseSuppressor
    except ImportError as exc:  # a platform with no wheel: calls go on without processing
        return None, f"pywebrtc-audio is not installed ({exc})"
    return _Modules(EchoCanceller, NoiseSuppressor, GainController), None


_MODULES, _UNAVAILABLE = _load()


class AudioProcessingUnavailable(RuntimeError):
    """Echo cancellation (or NS/AGC) was asked for and this installation has none."""


def processing_unavailable() -> str | None:
    """Why audio processing cannot run here, or None when it can."""
    return _UNAVAILABLE


@dataclass(frozen=True)
class ProcessingSettings:
    """What the capture path does to the microphone's samples (the user's settings)."""

    echo_cancellation: bool = True
    noise_suppression: bool = True
    auto_gain_control: bool = True
    noise_suppression_level: int = 1  # 0-3: 6, 12, 18, 21 dB of suppression
    stream_delay_ms: int = 0  # playback + capture latency if known; 0: AEC3 finds it

    def __post_init__(self) -> None:
        if not 0 <= self.noise_suppression_level <= 3:
            raise ValueError("noise_suppression_level is 0-3")
        if not 0 <= self.stream_delay_ms <= 1000:
            raise ValueError("stream_delay_ms is 0-1000")

    @property
    def any(self) -> bool:
        return self.echo_cancellation or self.noise_suppression or self.auto_gain_control


OFF: Final = ProcessingSettings(echo_cancellation=False, noise_suppression=False, auto_gain_control=False)


class CaptureProcessor:
    """The microphone's path through WebRTC's audio processing (see the module docstring).

    ``process`` returns as many samples as it is given; whole 10 ms frames go through at
    once. Once an input comes that is not a whole number of frames, the output runs one
    frame (10 ms) late, to cover the remainders held back. ``max_reference`` bounds the far-end
    reference waiting for the capture path (seconds); older reference is dropped, which
    only happens when the capture path stalls.
    """

    def __init__(
        self,
        settings: ProcessingSettings = ProcessingSettings(),
        *,
        sample_rate: int = DEFAULT_RATE,
        max_reference: float = 0.5,
    ) -> None:
        if sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"sample rate {sample_rate} not one of {SUPPORTED_RATES}")
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate // 100
        self._max_reference = max(self.frame_samples, int(max_reference * sample_rate))
        self._lock = threading.Lock()
        self._reference: deque[Samples] = deque()
        self._reference_samples = 0
        self._near = np.zeros(0, dtype=np.int16)
        self._out = np.zeros(0, dtype=np.int16)
        self._settings = settings
        self._pending: ProcessingSettings | None = None
        self.reference_dropped = 0  # samples of far-end reference dropped (capture stalled)
        self.frames = 0
        self._build(settings)

    @property
    def settings(self) -> ProcessingSettings:
        pending = self._pending
        return pending if pending is not None else self._settings

    def configure(self, settings: ProcessingSettings) -> None:
        """New settings from any thread; they apply at the next frame.
        AudioProcessingUnavailable if they ask for processing this installation lacks."""
        if settings.any and _UNAVAILABLE is not None:
            raise AudioProcessingUnavailable(_UNAVAILABLE)
        self._pending = settings

    def _build(self, settings: ProcessingSettings) -> None:
        # The three modules one after the other, as WebRTC's pipeline runs them. (The
        # binding's combined AudioProcessor ignores the suppression level at 48 kHz: it
        # suppresses about 6 dB whatever the level; the NoiseSuppressor alone honours it.)
        self._ec: _EchoCanceller | None = None
        self._ns: _NoiseSuppressor | None = None
        self._agc: _GainController | None = None
        if settings.any:
            modules = _MODULES
            if modules is None:
                raise AudioProcessingUnavailable(_UNAVAILABLE or "no audio processing module")
            rate = self.sample_rate
            if settings.echo_cancellation:
                # AEC3 with its high-pass filter in front (DC and rumble out).
                self._ec = modules.echo_canceller(
                    sample_rate=rate, num_channels=1, stream_delay_ms=settings.stream_delay_ms
                )
            if settings.noise_suppression:
                self._ns = modules.noise_suppressor(
                    sample_rate=rate, num_channels=1, level=settings.noise_suppression_level
                )
            if settings.auto_gain_control:
                self._agc = modules.gain_controller(sample_rate=rate, num_channels=1)
        self._settings = settings

    # --- far end: what the speaker plays -----------------------------------------------------

    def play(self, samples: Samples) -> None:
        """Samples just handed to the speaker (any length, mono, at our rate)."""
        if not len(samples):
            return
        with self._lock:
            self._reference.append(np.asarray(samples, dtype=np.int16))
            self._reference_samples += len(samples)
            while self._reference_samples - len(self._reference[0]) >= self._max_reference:
                dropped = self._reference.popleft()
                self._reference_samples -= len(dropped)
                self.reference_dropped += len(dropped)

    def _reference_frame(self) -> Samples:
        """The next 10 ms of reference; silence where nothing was played."""
        n = self.frame_samples
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        with self._lock:
            while filled < n and self._reference:
                head = self._reference[0]
                take = min(n - filled, len(head))
                out[filled : filled + take] = head[:take]
                filled += take
                if take == len(head):
                    self._reference.popleft()
                else:
                    self._reference[0] = head[take:]
                self._reference_samples -= take
        return out

    # --- MediaSession's capture-path hook (app.media.capture.AudioProcessor) --------------------

    def process_playout(self, frame: Samples) -> None:
        """A frame the output played (``MediaSession.processors`` hands them over in order)."""
        self.play(frame)

    def process_capture(self, frame: Samples) -> Samples:
        """The microphone's frame, cleaned, to send."""
        return self.process(frame)

    # --- near end: the microphone ---------------------------------------------------------------

    def process(self, samples: Samples) -> Samples:
        """The microphone's samples, cleaned (same length; see the class docstring)."""
        wanted = len(samples)
        near = np.concatenate((self._near, np.asarray(samples, dtype=np.int16)))
        whole = len(near) // self.frame_samples * self.frame_samples
        pieces = [self._out]
        for at in range(0, whole, self.frame_samples):
            pieces.append(self._frame(near[at : at + self.frame_samples]))
        self._near = near[whole:]
        out = np.concatenate(pieces)
        if len(out) < wanted:
            # Input not frame-aligned: from now on the output runs one frame late, which
            # covers any remainder held back.
            out = np.concatenate((np.zeros(self.frame_samples, dtype=np.int16), out))
        self._out = out[wanted:]
        return out[:wanted]

    def _frame(self, near: Samples) -> Samples:
        pending = self._pending
        if pending is not None:
            self._pending = None
            if pending != self._settings:
                self._build(pending)
        far = self._reference_frame()  # taken even when off, to stay aligned with playback
        self.frames += 1
        out = near
        if self._ec is not None:
            out = self._ec.process(out, far)
        speech: float | None = None
        if self._ns is not None:
            out = self._ns.process(out)
            speech = self._ns.speech_probability
        if self._agc is not None:
            out = self._agc.process(out, speech)  # NS's speech estimate steers the gain
        return out

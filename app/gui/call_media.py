"""Audio for the GUI's calls: what the phone service does not expose yet, built from the
media package's public parts and the phone's ``PhoneOptions.session_factory`` hook.

The phone runs each call's SDP through a session handler it makes with its
``session_factory``; the GUI hands it :meth:`MediaKit.session_factory`, which makes an
aiortc :class:`~app.media.session.MediaSession` (ICE + DTLS-SRTP audio) with, per call:

- DTMF (:class:`~app.media.dtmf_session.SessionDtmf`: RFC 4733 when negotiated, else SIP
  INFO), attached to the call's SIP dialog on first use;
- a :class:`LevelProbe` on the capture path: the microphone's level as sent and the
  level of what is played, for the meters;
- echo cancellation (:class:`~app.media.aec.CaptureProcessor`) when the setting asks
  for it and this installation has the module;
- a :class:`~app.media.quality.QualityMonitor` (E-model MOS from RTCP statistics) once
  the call is answered.

:meth:`MediaKit.audio_of` finds a call's :class:`CallAudio` from the phone's
:class:`~app.phone.phone_call.PhoneCall` (its SIP call's session). Nothing here imports
Qt; should the phone take this over, the GUI's widgets keep working against
:class:`CallAudio`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.media.aec import CaptureProcessor, ProcessingSettings, processing_unavailable
from app.media.audio import Samples
from app.media.devices import AudioDevice, list_devices
from app.media.dtmf_session import SessionDtmf
from app.media.quality import CallQuality, QualityMonitor
from app.media.session import AudioOptions, MediaSession
from app.media.tones import TonePlayer
from app.phone.phone_call import PhoneCall
from app.phone.store import Settings
from app.sip.sdp import SessionHandler

log = logging.getLogger("p2psip.gui")

FLOOR_DB = -60.0
QUALITY_INTERVAL = 2.0


def dbfs(samples: Samples) -> float:
    """The level of a frame in dBFS (full scale 32768), floored at -60."""
    if not len(samples):
        return FLOOR_DB
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return FLOOR_DB if rms <= 0 else max(FLOOR_DB, 20 * math.log10(rms / 32768.0))


class LevelProbe:
    """An :class:`~app.media.capture.AudioProcessor` that only listens: the level of the
    last frame sent (``input_db``: after mute and echo cancellation, what the far end
    gets) and of the last frame played (``output_db``)."""

    def __init__(self) -> None:
        self.input_db = FLOOR_DB
        self.output_db = FLOOR_DB
        self.frames = 0

    def process_playout(self, frame: Samples) -> None:
        self.output_db = dbfs(frame)

    def process_capture(self, frame: Samples) -> Samples:
        self.input_db = dbfs(frame)
        self.frames += 1
        return frame


@dataclass(eq=False)
class CallAudio:
    """One call's media controls (see the module docstring)."""

    session: MediaSession
    dtmf: SessionDtmf
    levels: LevelProbe
    quality: QualityMonitor | None = None
    latest_quality: CallQuality | None = None
    listeners: list[Callable[[CallQuality], None]] = field(default_factory=list)
    _attached: bool = False

    @property
    def muted(self) -> bool:
        return self.session.muted

    def set_muted(self, muted: bool) -> None:
        self.session.muted = muted

    async def send_dtmf(self, call: PhoneCall, digits: str) -> None:
        """Send ``digits`` (0-9, *, #, A-D) on ``call``'s media or its dialog."""
        if call.sip is None or call.ua is None:
            raise RuntimeError("the call has no dialog yet")
        if not self._attached:
            self.dtmf.attach_call(call.sip, call.ua)
            self._attached = True
        await self.dtmf.send(digits)

    def start_quality(self, interval: float = QUALITY_INTERVAL) -> None:
        if self.quality is None:
            self.quality = QualityMonitor(self.session.stats, self._quality, interval=interval)
            self.quality.start()

    def _quality(self, quality: CallQuality) -> None:
        self.latest_quality = quality
        for listener in list(self.listeners):
            listener(quality)

    @property
    def mos(self) -> float | None:
        quality = self.latest_quality
        return None if quality is None else quality.receive.mos

    async def close(self) -> None:
        if self.quality is not None:
            await self.quality.stop()
        self.dtmf.close()


class MediaKit:
    """Makes the calls' media sessions from the settings (see the module docstring).
    ``use_devices=False`` never opens a sound device (tests, benchmarks)."""

    def __init__(self, settings: Settings, *, use_devices: bool = True) -> None:
        self.settings = settings
        self.use_devices = use_devices
        self._audio: dict[int, CallAudio] = {}  # id(MediaSession) -> its controls
        self.ringer = TonePlayer(settings.ringer_device or settings.output_device, use_devices=use_devices)
        self.tester = TonePlayer(settings.output_device, use_devices=use_devices)

    def update(self, settings: Settings) -> None:
        """New settings: they apply to the next call (and the ringer at once)."""
        self.settings = settings
        self.ringer.device = settings.ringer_device or settings.output_device
        self.tester.device = settings.output_device

    @property
    def echo_cancellation_available(self) -> str | None:
        """None if echo cancellation can run here, else why not."""
        return processing_unavailable()

    def devices(self) -> list[AudioDevice]:
        return list_devices() if self.use_devices else []

    def session_factory(self) -> SessionHandler:
        s = self.settings
        audio = AudioOptions(
            input=s.input_device,
            output=s.output_device,
            ringing=s.ringer_device,
            use_devices=self.use_devices,
        )
        try:
            session = MediaSession(codec_order=s.codec_order, audio=audio)
        except ValueError as exc:  # a codec this aiortc lacks: the defaults rather than no call
            log.warning("codec order %s refused (%s): using the defaults", s.codec_order, exc)
            session = MediaSession(audio=audio)
        controls = CallAudio(session, SessionDtmf(session), LevelProbe())
        if s.echo_cancellation and processing_unavailable() is None:
            with contextlib.suppress(Exception):
                session.processors.append(CaptureProcessor(ProcessingSettings()))
        session.processors.append(controls.levels)
        self._audio[id(session)] = controls
        return session

    def audio_of(self, call: PhoneCall) -> CallAudio | None:
        """The media controls of ``call``, once its SIP call exists."""
        sip = call.sip
        session = getattr(sip, "session", None) if sip is not None else None
        return self._audio.get(id(session)) if session is not None else None

    async def forget(self, call: PhoneCall) -> None:
        """The call ended: stop its quality sampling and drop its controls."""
        audio = self.audio_of(call)
        if audio is not None:
            self._audio.pop(id(audio.session), None)
            await audio.close()

    def ring(self, on: bool) -> None:
        """The ringtone on the ringing device (or nowhere, when there is none)."""
        if on:
            if self.ringer.playing != "ringtone":
                self.ringer.play("ringtone")
        else:
            self.ringer.stop()

    def close(self) -> None:
        self.ringer.close()
        self.tester.close()


__all__ = ["FLOOR_DB", "CallAudio", "LevelProbe", "MediaKit", "dbfs"]

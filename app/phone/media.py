"""The phone's call audio: one :class:`~app.media.session.MediaSession` per call, made by
:meth:`MediaKit.session_factory` (the phone's ``session_factory``), shared by the headless
phone (``p2psip phone``) and the GUI (:mod:`app.gui.call_media` re-exports this module).

Per call (:class:`CallAudio`):

- aiortc audio (ICE + DTLS-SRTP) with the settings' codec order and devices (input,
  output); with no usable device silence is sent and what comes is still received, and
  the phone says so once (:class:`~app.phone.events.CallMedia` ``device-unavailable``);
- DTMF (:class:`~app.media.dtmf_session.SessionDtmf`: RFC 4733 when negotiated, else SIP
  INFO), attached to the call's dialog as soon as the phone knows it, so digits received
  either way become :class:`~app.phone.events.DtmfReceived`;
- a :class:`LevelProbe` (meters), echo cancellation (:class:`~app.media.aec.CaptureProcessor`)
  when the settings ask for it and the module is installed;
- a :class:`~app.media.quality.QualityMonitor` once answered:
  :class:`~app.phone.events.CallQuality` every ``quality_interval`` seconds (RTT, jitter,
  loss, E-model MOS).

Options of the whole phone: ``play`` (a WAV sent, looped, instead of the microphone),
``record`` (a WAV that gets what is heard, instead of the output device), ``echo`` (the
echo service: what is heard is sent back :data:`ECHO_DELAY` later, :class:`EchoProcessor`),
``onsets`` (:class:`OnsetProbe`: wall-clock times of tone-burst onsets sent and heard, for
``p2psip bench call``), ``ice_servers`` (STUN/TURN: the configuration's and the overlay's
TURN-SERVICE servers, RFC 6940 §9; never a public default).

Tones (:class:`~app.media.tones.TonePlayer`): the ringtone on the ringing device while an
incoming call rings, ringback on the output device while an outgoing call rings, busy
for three seconds when the far end is busy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from app.media.events import (
    DeviceChanged,
    DeviceUnavailable,
    FirstAudio,
    IceConnected,
    MediaEvent,
    MediaFailed,
)
from app.phone.media_stack import DeferredSession, MediaStack
from app.phone.store import Settings
from app.sip.sdp import SessionHandler

if TYPE_CHECKING:
    # The media stack (aiortc, PyAV, numpy: ~40 MB) is imported where a call's media is
    # made, not here: an idle phone imports this module but has no call (issue 14).
    from collections.abc import Coroutine
    from typing import Any, Protocol

    from aiortc import RTCIceServer

    from app.media.audio import Samples
    from app.media.devices import AudioDevice
    from app.media.dtmf_call import DtmfEvent, DtmfMethod
    from app.media.dtmf_session import SessionDtmf
    from app.media.quality import CallQuality, QualityMonitor
    from app.media.session import MediaSession
    from app.media.tones import TonePlayer
    from app.phone.phone_call import PhoneCall

    class CallPhone(Protocol):
        """What :class:`MediaBinder` needs of the phone."""

        @property
        def calls(self) -> tuple[PhoneCall, ...]: ...

        def get_call(self, number: int) -> PhoneCall | None: ...

        def add_listener(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...

        def emit(self, event: Any) -> None: ...

        def spawn(self, coroutine: Coroutine[Any, Any, object]) -> asyncio.Task[object]: ...


log = logging.getLogger("p2psip.media")

FLOOR_DB: Final = -60.0
QUALITY_INTERVAL: Final = 2.0
ECHO_DELAY: Final = 1.0
"""Seconds the echo service waits before sending back what it heard (like a sound test)."""
ONSET_DB: Final = -30.0
"""A frame this loud after :data:`ONSET_QUIET` of quieter frames is a burst's onset."""
ONSET_QUIET: Final = 0.1
BUSY_SECONDS: Final = 3.0


def dbfs(samples: Samples) -> float:
    """The level of a frame in dBFS (full scale 32768), floored at -60."""
    import numpy as np  # a frame exists: numpy is loaded already

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


class EchoProcessor:
    """The echo service's capture path: each frame played (what the caller said) is sent
    back ``delay`` seconds later in place of the (silent) capture frame. It counts frames,
    not clock time: the capture track hands over the played frames before each capture
    frame, one 20 ms frame each way in the steady state."""

    def __init__(self, delay: float = ECHO_DELAY) -> None:
        self.frames = max(1, round(delay / 0.02))
        self._line: collections.deque[Samples] = collections.deque()

    def process_playout(self, frame: Samples) -> None:
        self._line.append(frame.copy())
        while len(self._line) > 4 * self.frames:  # the capture stalled: keep the delay, not a backlog
            self._line.popleft()

    def process_capture(self, frame: Samples) -> Samples:
        from app.media.audio import silence

        if len(self._line) > self.frames:
            out = self._line.popleft()
            if len(out) == len(frame):
                return out
        return silence(len(frame))


class OnsetProbe:
    """Wall-clock times (``time.time()``) of burst onsets: in each frame handed to the
    encoder (``sent``) and each frame the output played (``heard``). Both phones of a
    benchmark run on one machine, so the two clocks are one: onset heard minus onset
    sent is mouth to ear through codec, network, jitter and playout buffer."""

    def __init__(self, report: Callable[[str, float], None]) -> None:
        self._report = report
        self._quiet = {"sent": ONSET_QUIET, "heard": ONSET_QUIET}  # the call starts quiet

    def _frame(self, direction: str, frame: Samples) -> None:
        if dbfs(frame) >= ONSET_DB:
            if self._quiet[direction] >= ONSET_QUIET:
                self._report(direction, time.time())
            self._quiet[direction] = 0.0
        else:
            self._quiet[direction] += len(frame) / 48000.0

    def process_playout(self, frame: Samples) -> None:
        self._frame("heard", frame)

    def process_capture(self, frame: Samples) -> Samples:
        self._frame("sent", frame)
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
    call_id: int | None = None
    handler: SessionHandler | None = None  # what the call's SIP side holds (audio_of's key)
    _attached: bool = False

    @property
    def muted(self) -> bool:
        return self.session.muted

    def set_muted(self, muted: bool) -> None:
        self.session.muted = muted

    def attach(self, call: PhoneCall) -> None:
        """The call's SIP dialog is known: INFO digits go out on it and come in from it."""
        if not self._attached and call.sip is not None and call.ua is not None:
            self.dtmf.attach_call(call.sip, call.ua)
            self._attached = True

    async def send_dtmf(self, call: PhoneCall, digits: str) -> list[DtmfMethod]:
        """Send ``digits`` (0-9, *, #, A-D) on ``call``'s media or its dialog."""
        if call.sip is None or call.ua is None:
            raise RuntimeError("the call has no dialog yet")
        self.attach(call)
        return await self.dtmf.send(digits)

    def start_quality(self, interval: float = QUALITY_INTERVAL) -> None:
        from app.media.quality import QualityMonitor

        if self.quality is None:
            session = self.session
            self.quality = QualityMonitor(
                session.stats,
                self._quality,
                interval=interval,
                expecting=lambda: not (session.local_hold or session.remote_hold),
            )
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


MediaNotice = Callable[[CallAudio, str, str], None]
"""(the call's audio, what: ice-connected/first-audio/device-unavailable/device-changed/
media-failed/onset-sent/onset-heard, detail)."""


class MediaKit:
    """Makes the calls' media sessions from the settings (see the module docstring).
    ``use_devices=False`` never opens a sound device (tests, benchmarks)."""

    def __init__(
        self,
        settings: Settings,
        *,
        use_devices: bool = True,
        play: Path | None = None,
        record: Path | None = None,
        echo: bool = False,
        onsets: bool = False,
        ice_servers: Sequence[RTCIceServer] = (),
        relay_only: bool = False,
    ) -> None:
        self.settings = settings
        self.relay_only = relay_only
        self.use_devices = use_devices
        self.play = play
        self.record = record
        self.echo = echo
        self.onsets = onsets
        self.ice_servers: list[RTCIceServer] = list(ice_servers)
        self.overlay_ice_servers: list[RTCIceServer] = []  # TURN-SERVICE (§9), set by the phone
        # The overlay's STUN servers (RFC 6940 §6.5.1.4), asked for as each call's media
        # is built (after the media stack is loaded: aiortc's types are made then).
        self.overlay_stun: Callable[[], Sequence[tuple[str, int]]] = lambda: ()
        self.notice: MediaNotice | None = None
        self.stack = MediaStack()
        self._audio: dict[int, CallAudio] = {}  # id(the call's session handler) -> its controls
        self._players: dict[str, TonePlayer] = {}  # made on first use: they load the media stack
        self._busy_until: asyncio.TimerHandle | None = None
        self._ringing = False  # the ringtone is wanted
        self._tone: str | None = None  # the call tone wanted (ringback, busy)
        self._switching: set[asyncio.Task[None]] = set()

    def _player(self, role: str) -> TonePlayer:
        player = self._players.get(role)
        if player is None:
            from app.media.tones import TonePlayer

            player = TonePlayer(self._device_of(role), use_devices=self.use_devices)
            self._players[role] = player
        return player

    def _device_of(self, role: str) -> str | None:
        s = self.settings
        return (s.ringer_device or s.output_device) if role == "ringer" else s.output_device

    @property
    def ringer(self) -> TonePlayer:
        """The ringtone's player (the ringing device, else the output device)."""
        return self._player("ringer")

    @property
    def tester(self) -> TonePlayer:
        """The settings' sound test on the output device."""
        return self._player("tester")

    @property
    def tones(self) -> TonePlayer:
        """Ringback and busy on the output device."""
        return self._player("tones")

    def update(self, settings: Settings) -> None:
        """New settings: they apply to the next call, the ringer at once, and a changed
        input or output device to the calls in progress too (device switching mid-call;
        calls that play or record a file keep it)."""
        previous, self.settings = self.settings, settings
        if self.use_devices and not self.echo:
            switch_input = settings.input_device != previous.input_device and self.play is None
            switch_output = settings.output_device != previous.output_device and self.record is None
            if switch_input or switch_output:
                with contextlib.suppress(RuntimeError):  # no running loop: nothing is in a call
                    loop = asyncio.get_running_loop()
                    for audio in list(self._audio.values()):
                        task = loop.create_task(self._switch(audio, switch_input, switch_output))
                        self._switching.add(task)
                        task.add_done_callback(self._switching.discard)
        for role, player in self._players.items():
            player.device = self._device_of(role)

    async def _switch(self, audio: CallAudio, switch_input: bool, switch_output: bool) -> None:
        """Move one call to the settings' devices; a device that cannot be opened is told
        (``device-unavailable``) and the call keeps what it had."""
        from app.media.devices import AudioDeviceError

        s = self.settings
        try:
            if switch_input:
                await audio.session.switch_input(s.input_device)
            if switch_output:
                await audio.session.switch_output(s.output_device)
        except (AudioDeviceError, OSError) as exc:
            self._notice(audio, "device-unavailable", f"{'input' if switch_input else 'output'}: {exc}")

    @property
    def echo_cancellation_available(self) -> str | None:
        """None if echo cancellation can run here, else why not."""
        from app.media.aec import processing_unavailable

        return processing_unavailable()

    def devices(self) -> list[AudioDevice]:
        if not self.use_devices:
            return []
        from app.media.devices import list_devices

        return list_devices()

    def session_factory(self) -> SessionHandler:
        """A new call's session handler: its media session is made once the media stack
        is loaded (:mod:`app.phone.media_stack`; the first call loads it)."""
        return DeferredSession(self.stack, self._build)

    def _build(self, handler: SessionHandler) -> MediaSession:
        from app.media.aec import CaptureProcessor, ProcessingSettings, processing_unavailable
        from app.media.dtmf_session import SessionDtmf
        from app.media.session import AudioOptions, MediaSession

        s = self.settings
        audio = AudioOptions(
            input=s.input_device,
            output=s.output_device,
            ringing=s.ringer_device,
            play=self.play,
            record=self.record,
            use_devices=self.use_devices and not self.echo,
        )
        from aiortc import RTCIceServer

        stun = [RTCIceServer(urls=f"stun:{host}:{port}") for host, port in self.overlay_stun()]
        servers = [*self.ice_servers, *stun, *self.overlay_ice_servers]
        try:
            session = MediaSession(
                codec_order=s.codec_order, audio=audio, ice_servers=servers, relay_only=self.relay_only
            )
        except ValueError as exc:  # a codec this aiortc lacks: the defaults rather than no call
            log.warning("codec order %s refused (%s): using the defaults", s.codec_order, exc)
            session = MediaSession(audio=audio, ice_servers=servers, relay_only=self.relay_only)
        controls = CallAudio(session, SessionDtmf(session), LevelProbe(), handler=handler)
        if self.echo:
            session.processors.append(EchoProcessor())
        elif s.echo_cancellation and self.play is None and processing_unavailable() is None:
            # Only for a microphone: a played file has no acoustic echo, and the
            # canceller would take the far end's audio in it for echo during double talk.
            with contextlib.suppress(Exception):
                session.processors.append(CaptureProcessor(ProcessingSettings()))
        session.processors.append(controls.levels)
        if self.onsets:
            session.processors.append(
                OnsetProbe(lambda what, at: self._notice(controls, f"onset-{what}", repr(at)))
            )
        session.add_listener(lambda event: self._media_event(controls, event))
        controls.dtmf.receiver.add_listener(lambda digit: self._digit(controls, digit))
        self._audio[id(handler)] = controls
        return session

    def _notice(self, controls: CallAudio, what: str, detail: str) -> None:
        if self.notice is not None:
            self.notice(controls, what, detail)

    def _media_event(self, controls: CallAudio, event: MediaEvent) -> None:
        if isinstance(event, IceConnected):
            path = f" {event.path}" if event.path else ""
            self._notice(controls, "ice-connected", f"{event.elapsed * 1000:.0f} ms{path}")
        elif isinstance(event, FirstAudio):
            self._notice(controls, "first-audio", f"{event.elapsed * 1000:.0f} ms")
        elif isinstance(event, DeviceUnavailable):
            self._notice(controls, "device-unavailable", f"{event.role}: {event.message}")
        elif isinstance(event, DeviceChanged):
            self._notice(controls, "device-changed", f"{event.role}: {event.description}")
        elif isinstance(event, MediaFailed):
            self._notice(controls, "media-failed", event.reason)

    def _digit(self, controls: CallAudio, event: DtmfEvent) -> None:
        from app.media.dtmf_call import DtmfReceived

        if isinstance(event, DtmfReceived):
            self._notice(controls, "dtmf", f"{event.digit} {event.method.value}")

    def audio_of(self, call: PhoneCall) -> CallAudio | None:
        """The media controls of ``call``, once its SIP call exists."""
        sip = call.sip
        session = getattr(sip, "session", None) if sip is not None else None
        return self._audio.get(id(session)) if session is not None else None

    async def forget(self, call: PhoneCall) -> None:
        """The call ended: stop its quality sampling and drop its controls."""
        audio = self.audio_of(call)
        if audio is not None:
            self._audio.pop(id(audio.handler), None)
            await audio.close()

    def ring(self, on: bool) -> None:
        """The ringtone on the ringing device (or nowhere, when there is none). On a
        first call it starts once the media stack is loaded: the 180 does not wait."""
        self._ringing = on
        if on and "ringer" not in self._players:
            self.stack.when_loaded(self._apply_ring)
        else:
            self._apply_ring()

    def _apply_ring(self) -> None:
        if self._ringing:
            if self.ringer.playing != "ringtone":
                self.ringer.play("ringtone")
        elif "ringer" in self._players:
            self.ringer.stop()

    def call_tone(self, name: str | None) -> None:
        """Ringback or busy on the output device; None stops it. Busy stops by itself."""
        self._tone = name
        if name is not None and "tones" not in self._players:
            self.stack.when_loaded(self._apply_tone)
        else:
            self._apply_tone()

    def _apply_tone(self) -> None:
        if self._busy_until is not None:
            self._busy_until.cancel()
            self._busy_until = None
        name = self._tone
        if name is None:
            if "tones" in self._players:
                self.tones.stop()
            return
        if self.tones.playing != name:
            self.tones.play(name)
        if name == "busy":
            with contextlib.suppress(RuntimeError):
                self._busy_until = asyncio.get_running_loop().call_later(BUSY_SECONDS, self.tones.stop)

    def close(self) -> None:
        for player in self._players.values():
            player.close()


PhoneMedia = MediaKit
"""The same class under the name the phone uses."""


class MediaBinder:
    """Ties a :class:`MediaKit` to a phone (:class:`app.phone.service.Phone`): follows its
    call events to bind each call's audio, ring and stop tones, start the quality
    samples, forget ended calls, and turns the kit's notices into phone events."""

    def __init__(
        self, phone: CallPhone, kit: MediaKit, *, quality_interval: float = QUALITY_INTERVAL
    ) -> None:
        self.phone = phone
        self.kit = kit
        self.quality_interval = quality_interval
        self._reported: set[str] = set()  # device roles already said unavailable
        self._pending: dict[
            int, list[tuple[str, str, float]]
        ] = {}  # id(controls) -> notices before the call was known
        kit.notice = self._notice
        phone.add_listener(self._on_event)

    def _on_event(self, event: object) -> None:
        from app.phone.calls import CallDirection, CallState, EndCause
        from app.phone.events import CallStateChanged

        if not isinstance(event, CallStateChanged):
            return
        call = self.phone.get_call(event.call)
        if event.state is CallState.RINGING:
            if event.direction is CallDirection.INCOMING:
                self.kit.ring(True)
            else:
                self.kit.call_tone("ringback")
        else:
            if event.direction is CallDirection.INCOMING:
                self.kit.ring(
                    any(
                        c.state is CallState.RINGING and c.direction is CallDirection.INCOMING
                        for c in self.phone.calls
                        if c.id != event.call
                    )
                )
            elif event.previous in (CallState.RINGING, CallState.DIALING):
                self.kit.call_tone("busy" if event.cause is EndCause.BUSY else None)
        if call is None:
            return
        audio = self.kit.audio_of(call)
        if audio is None:
            return
        if audio.call_id is None:
            audio.call_id = call.id
            for what, detail, at in self._pending.pop(id(audio), []):
                self._emit(audio, what, detail, at)
            audio.listeners.append(lambda q: self._quality(call.id, q))
        audio.attach(call)
        if event.state in (CallState.CONNECTED, CallState.HELD):
            audio.start_quality(self.quality_interval)
        elif event.state is CallState.ENDED:
            self.phone.spawn(self.kit.forget(call))

    def _notice(self, audio: CallAudio, what: str, detail: str) -> None:
        if what == "device-unavailable":
            role = detail.split(":", 1)[0]
            if role in self._reported:
                return
            self._reported.add(role)
        if audio.call_id is None:
            self._pending.setdefault(id(audio), []).append((what, detail, time.time()))
            return
        self._emit(audio, what, detail, time.time())

    def _emit(self, audio: CallAudio, what: str, detail: str, at: float) -> None:
        from app.phone.events import CallMedia, DtmfReceived

        assert audio.call_id is not None
        if what == "dtmf":
            digit, _, method = detail.partition(" ")
            self.phone.emit(DtmfReceived(audio.call_id, digit, method, at))
        else:
            self.phone.emit(CallMedia(audio.call_id, what, detail, at))

    def _quality(self, call: int, quality: CallQuality) -> None:
        from app.phone.events import CallQuality as QualityEvent

        r = quality.receive
        self.phone.emit(
            QualityEvent(call, quality.rtt_ms, r.jitter_ms, r.loss_percent, r.mos, r.codec, time.time())
        )


def ice_server(url: str) -> RTCIceServer:
    """``stun:HOST:PORT`` or ``turn:USER:PASSWORD@HOST:PORT`` as an aiortc ICE server."""
    from aiortc import RTCIceServer

    scheme, sep, rest = url.partition(":")
    if not sep or scheme not in ("stun", "turn", "turns"):
        raise ValueError(f"ICE server {url!r}: expected stun:HOST:PORT or turn:USER:PASSWORD@HOST:PORT")
    if "@" in rest:
        credentials, _, where = rest.rpartition("@")
        user, _, password = credentials.partition(":")
        return RTCIceServer(urls=f"{scheme}:{where}", username=user, credential=password)
    return RTCIceServer(urls=url)


__all__ = [
    "ECHO_DELAY",
    "FLOOR_DB",
    "CallAudio",
    "EchoProcessor",
    "LevelProbe",
    "MediaBinder",
    "MediaKit",
    "OnsetProbe",
    "PhoneMedia",
    "dbfs",
    "ice_server",
]

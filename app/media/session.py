"""A call's media: one aiortc ``RTCPeerConnection`` per call, as app/sip's
:class:`~app.sip.sdp.SessionHandler` (offers and answers in the INVITE/200/ACK and in
re-INVITEs, RFC 3264).

Media is ICE (RFC 8445, aioice) + DTLS-SRTP (RFC 5764), audio only, one stream; the
SDP we send is trimmed to fit an INVITE in one UDP datagram (:mod:`app.media.sdp`), and
what the far end sends is fixed up for aiortc first (real phones, NOTES.md). A plain
RTP/AVP offer is refused with 488 and a Warning (RFC 3261 §20.43).

Hold (RFC 3264 §8.4): :meth:`MediaSession.set_hold` chooses the direction of our next
offer (the phone then sends a re-INVITE: ``await call.reinvite()``); ``local_hold``
turns true when the far end's answer comes. An offer of the far end with
sendonly/inactive sets ``remote_hold``. Either way no RTP leaves while it is not ours to
send (aiortc would keep sending: its sender, once started, ignores later directions).
Mute sends silence.

For the layers above (DTMF, echo cancellation, call quality): ``processors`` (hooks on
the capture path with the far-end reference, :class:`~app.media.capture.AudioProcessor`),
``rtp`` (:class:`~app.media.rtp.RtpChannel`: extra packets on our stream, listeners for
payload types aiortc does not decode), ``sdp_hooks`` (see :class:`SdpHook`), the aiortc
objects (``peer_connection``, ``transceiver``, ``sender``, ``receiver``) and
:meth:`MediaSession.stats`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, TypeVar

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from app.media import jitter
from app.media.audio import AudioFileError, Samples, ToMono48k
from app.media.capture import (
    AudioProcessor,
    DeviceSource,
    FileSource,
    FrameSource,
    MicrophoneTrack,
    SilenceSource,
)
from app.media.codecs import DEFAULT_CODEC_ORDER, codec_preferences
from app.media.devices import AudioDeviceError, CaptureStream, DeviceSpec, find_device
from app.media.encoder import InlineEncoder
from app.media.events import (
    DeviceChanged,
    DeviceRole,
    DeviceUnavailable,
    DtlsConnected,
    FirstAudio,
    HoldChanged,
    IceConnected,
    MediaEvent,
    MediaFailed,
)
from app.media.output import AudioOutput, ClockedOutput, DeviceOutput
from app.media.playout import PlayoutBuffer
from app.media.rtp import RtpChannel
from app.media.sdp import (
    DTLS_PROFILES,
    ENCRYPTION_REQUIRED,
    WARN_MISC,
    WARN_TRANSPORT,
    PreparedRemote,
    SdpText,
    check_offer,
    finish_answer,
    m_line,
    prepare_remote,
    set_setup,
    trim_local,
)
from app.media.stats import MediaStats
from app.sip.sdp import RejectWith, SdpError

log = logging.getLogger(__name__)

#: Bytes our SDP may take. An INVITE from app/sip carries about 390 bytes of compact
#: headers on a plain UDP flow and 430 through an overlay's AppAttach (longer URIs);
#: RFC 3261 §18.1.1 allows 1300 for the whole message. Our SDP with all four codecs and
#: two host candidates is about 750 bytes; a relayed candidate adds about 120, so a
#: third host candidate is then left out.
DEFAULT_SDP_BUDGET: Final = 820
_CLOSE_TIMEOUT: Final = 5.0
_reported: set[tuple[str, str]] = set()  # device problems already logged at WARNING

E = TypeVar("E", bound=MediaEvent)


@dataclass(frozen=True)
class AudioOptions:
    """Where a call's audio comes from and goes to.

    ``input``/``output``/``ringing``: a device by index or name (None: the default one;
    ``ringing`` is for the phone's :class:`~app.media.tones.TonePlayer`, None meaning the
    output device). ``play``: an audio file sent (looped) instead of the microphone;
    ``record``: a WAV file (48 kHz mono 16-bit) that gets what is heard, instead of the
    output device. ``use_devices=False`` never touches PortAudio: silence is sent and
    received audio is discarded (unless ``play``/``record`` say otherwise)."""

    input: DeviceSpec | None = None
    output: DeviceSpec | None = None
    ringing: DeviceSpec | None = None
    play: Path | None = None
    record: Path | None = None
    use_devices: bool = True


class SdpHook(Protocol):
    """Sees and may rewrite SDP: ``remote_sdp`` the far end's as it came (before our
    fixes for aiortc), ``local_sdp`` ours just before it is sent (e.g. to add an
    RFC 4733 telephone-event payload type that aiortc does not know)."""

    def remote_sdp(self, sdp: str) -> str: ...

    def local_sdp(self, sdp: str) -> str: ...


@dataclass
class MediaTimings:
    """Seconds from the offer/answer that started media (loop clock) to each step."""

    ice: float | None = None
    dtls: float | None = None
    first_audio: float | None = None


class MediaSession:
    """See the module docstring. One per call: ``UserAgent(session_factory=MediaSession.factory(...))``.

    ``ice_servers``: STUN/TURN servers for ICE candidates (never a public default: with
    none, host candidates only); ``relay_only``: offer relayed candidates only (media
    through the TURN server, our addresses stay hidden). ``codec_order``: audio codec names, most preferred first
    (any of opus, G722, PCMU, PCMA). ``sdp_budget``: bytes our SDP may take (candidates
    beyond it are left out). ``listener``: called with every :data:`MediaEvent`."""

    def __init__(
        self,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        relay_only: bool = False,
        codec_order: Sequence[str] = DEFAULT_CODEC_ORDER,
        audio: AudioOptions | None = None,
        sdp_budget: int = DEFAULT_SDP_BUDGET,
        listener: Callable[[MediaEvent], None] | None = None,
    ) -> None:
        self.ice_servers = list(ice_servers)
        self.relay_only = relay_only
        self.codec_order = tuple(codec_order)
        self._preferences = codec_preferences(self.codec_order)  # ValueError now, not mid-call
        self.audio = audio or AudioOptions()
        self.sdp_budget = sdp_budget
        self.processors: list[AudioProcessor] = []
        self.sdp_hooks: list[SdpHook] = []
        self.buffer = PlayoutBuffer()
        self.reference: collections.deque[Samples] = collections.deque(maxlen=50)
        self.timings = MediaTimings()
        self.events: list[MediaEvent] = []
        self._listeners: list[Callable[[MediaEvent], None]] = [listener] if listener else []
        self._waiters: list[tuple[Callable[[MediaEvent], bool], asyncio.Future[MediaEvent]]] = []
        self._pc: RTCPeerConnection | None = None
        self._transceiver: RTCRtpTransceiver | None = None
        self._track: MicrophoneTrack | None = None
        self.rtp: RtpChannel | None = None
        self.jitter: jitter.PassThroughJitterBuffer | None = None
        self.decoding: jitter.InlineDecoding | None = None  # decoding on the loop
        self._output: AudioOutput | None = None
        self._receive_task: asyncio.Task[None] | None = None
        self._started_at: float | None = None
        self._want_hold = False
        self.local_hold = False
        self.remote_hold = False
        self._muted = False
        self._session_id = secrets.randbelow(2**62)
        self._version = 0
        self._last_remote: str | None = None  # the far end's last SDP as aiortc got it
        self._accepted_answer: bytes | None = None
        self._reported_roles: set[DeviceRole] = set()
        self._last_counts: tuple[int, int] = (0, 0)  # received, lost at the last stats()
        self.closed = False
        self._closing: asyncio.Task[None] | None = None

    @classmethod
    def factory(cls, **options: object) -> Callable[[], MediaSession]:
        """A ``session_factory`` for app/sip's UserAgent: a new session per call."""
        return lambda: cls(**options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ SessionHandler

    async def make_offer(self) -> bytes:
        """Our offer: the first one, or a new one for a re-INVITE (hold, resume, refresh)."""
        pc, transceiver = self._ensure_pc()
        if pc.signalingState == "have-remote-offer":
            raise RuntimeError("an offer of the far end is waiting for our answer")
        transceiver.direction = _direction(send=not self.remote_hold, receive=not self._want_hold)
        await pc.setLocalDescription(await pc.createOffer())
        return self._outgoing(pc.localDescription.sdp).encode()

    async def answer(self, offer: bytes) -> bytes | RejectWith:
        """Our answer to the far end's offer (INVITE or re-INVITE), or a 488 with why."""
        if self.closed:
            return RejectWith(488, "the call has ended", WARN_MISC)
        offer = self._hooked_remote(offer)
        checked = check_offer(offer, self.codec_order)
        if isinstance(checked, RejectWith):
            log.info("refusing an offer: %s", checked.warning)
            return checked
        pc, transceiver = self._ensure_pc()
        if pc.signalingState == "have-local-offer" and not await self._rollback():
            return RejectWith(491, "an offer of ours is pending", WARN_MISC)
        first = pc.remoteDescription is None
        try:
            prepared = prepare_remote(offer, checked, transceiver.mid or "0", offer=True)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=prepared.sdp, type="offer"))
            transceiver.direction = _direction(send=True, receive=not self._want_hold)
            answer = (await pc.createAnswer()).sdp
            if first and prepared.setup in (None, "actpass"):
                # aiortc as DTLS client offers ECDSA suites only; phones with RSA
                # certificates need us as the server (NOTES.md; RFC 5763 §5 lets us choose).
                answer = set_setup(answer, "passive")
            await pc.setLocalDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except (SdpError, ValueError, LookupError, AssertionError, AttributeError, TypeError) as exc:
            log.info("cannot answer an offer: %s", exc)
            return RejectWith(488, f"cannot use this offer: {exc}", WARN_MISC)
        except Exception as exc:  # aiortc's InvalidStateError, OperationError...
            log.info("cannot answer an offer: %r", exc)
            return RejectWith(488, f"cannot use this offer: {exc}", WARN_MISC)
        self._last_remote = prepared.sdp
        self.local_hold = self._want_hold
        self._set_remote_hold(prepared.hold)
        self._negotiated()
        return self._outgoing(pc.localDescription.sdp, prepared).encode()

    async def accept_answer(self, answer: bytes) -> RejectWith | None:
        """The far end's answer to our last offer."""
        pc = self._pc
        if pc is None or self.closed:
            return RejectWith(488, "no offer of ours is pending", WARN_MISC)
        if pc.signalingState == "stable":
            # The same answer again (183 then 200), or a second one, which changes
            # nothing (RFC 3264 §4: one answer per offer).
            return None
        answer = self._hooked_remote(answer)
        try:
            prepared = prepare_remote(
                answer, 0, self._transceiver.mid or "0" if self._transceiver else "0", offer=False
            )
            _, port, proto, _ = m_line(SdpText.parse(prepared.sdp).media[0])
        except (SdpError, ValueError, UnicodeDecodeError, IndexError) as exc:
            return RejectWith(488, f"malformed SDP answer: {exc}", WARN_MISC)
        if port == 0:
            return RejectWith(488, "the far end refused the audio stream", WARN_MISC)
        if proto.upper() not in DTLS_PROFILES:
            return RejectWith(488, ENCRYPTION_REQUIRED, WARN_TRANSPORT)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=prepared.sdp, type="answer"))
        except Exception as exc:  # aiortc raises ValueError, OperationError, AssertionError...
            log.info("unusable SDP answer: %r", exc)
            return RejectWith(488, f"unusable SDP answer: {exc}", WARN_MISC)
        self._last_remote = prepared.sdp
        self._accepted_answer = answer
        if self.local_hold != self._want_hold:
            self.local_hold = self._want_hold
            self._emit(HoldChanged(self.local_hold, self.remote_hold))
        self._negotiated()
        return None

    async def close(self) -> None:
        """End the media: devices and files closed (a recording is complete when this
        returns, also for a second caller while the first one is still closing)."""
        if self._closing is None:
            self.closed = True
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if self._pc is not None:
            try:
                await asyncio.wait_for(self._pc.close(), _CLOSE_TIMEOUT)
            except (TimeoutError, ConnectionError) as exc:
                log.info("closing the peer connection: %r", exc)
        if self._receive_task is not None:
            self._receive_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receive_task
        if self._track is not None:
            self._track.stop()
        if self._output is not None:
            await self._output.close()
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()

    # ------------------------------------------------------------------ controls

    def set_hold(self, hold: bool) -> None:
        """Hold (or resume) in our next offer; send it with a re-INVITE. While a hold is
        asked for, nothing is sent."""
        self._want_hold = hold

    @property
    def hold_requested(self) -> bool:
        return self._want_hold

    @property
    def muted(self) -> bool:
        return self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        """Send silence in place of the microphone (the RTP stream goes on)."""
        self._muted = value
        if self._track is not None:
            self._track.muted = value

    async def switch_input(self, device: DeviceSpec | None = None, *, play: Path | None = None) -> None:
        """Take the microphone ``device`` (None: the default) or, with ``play``, a file,
        now if media runs. AudioDeviceError/AudioFileError if it cannot be opened (the
        current source then stays)."""
        if play is not None:
            source: FrameSource | None = FileSource(play) if self._track is not None else None
        else:
            source = self._open_device_source(device) if self._track is not None else None
        self.audio = dataclasses.replace(self.audio, input=device, play=play, use_devices=True)
        if self._track is not None and source is not None:
            self._track.set_source(source)
            self._emit(DeviceChanged("input", source.description))

    async def switch_output(self, device: DeviceSpec | None = None, *, record: Path | None = None) -> None:
        """Play to ``device`` (None: the default) or, with ``record``, into a WAV file,
        now if media runs. AudioDeviceError/AudioFileError if it cannot be opened."""
        running = self._output is not None
        new: AudioOutput | None = None
        if running:
            if record is not None:
                new = ClockedOutput(self.buffer, self.reference, record)
            else:
                new = DeviceOutput(find_device(device, "output"), self.buffer, self.reference)
        self.audio = dataclasses.replace(self.audio, output=device, record=record, use_devices=True)
        if new is not None:
            old, self._output = self._output, new
            if old is not None:
                await old.close()
            self._emit(DeviceChanged("output", new.description))

    # ------------------------------------------------------------------ events

    def add_listener(self, listener: Callable[[MediaEvent], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def wait_event(self, kind: type[E], timeout: float | None = None) -> E:
        """The first event of ``kind`` (one already emitted counts)."""
        for e in self.events:
            if isinstance(e, kind):
                return e
        future: asyncio.Future[MediaEvent] = asyncio.get_running_loop().create_future()
        self._waiters.append((lambda e: isinstance(e, kind), future))
        event = await asyncio.wait_for(future, timeout)
        assert isinstance(event, kind)
        return event

    async def wait_hold(self, *, local: bool, remote: bool, timeout: float | None = None) -> None:
        """Until ``local_hold``/``remote_hold`` are these."""
        if (self.local_hold, self.remote_hold) == (local, remote):
            return
        future: asyncio.Future[MediaEvent] = asyncio.get_running_loop().create_future()
        self._waiters.append(
            (lambda e: isinstance(e, HoldChanged) and (e.local, e.remote) == (local, remote), future)
        )
        await asyncio.wait_for(future, timeout)

    def _emit(self, event: MediaEvent) -> None:
        self.events.append(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("media event listener failed on %s", type(event).__name__)
        for entry in list(self._waiters):
            predicate, waiter = entry
            if waiter.done():
                self._waiters.remove(entry)
            elif predicate(event):
                waiter.set_result(event)
                self._waiters.remove(entry)

    # ------------------------------------------------------------------ aiortc objects

    @property
    def peer_connection(self) -> RTCPeerConnection | None:
        return self._pc

    @property
    def transceiver(self) -> RTCRtpTransceiver | None:
        return self._transceiver

    @property
    def sender(self) -> RTCRtpSender | None:
        return self._transceiver.sender if self._transceiver else None

    @property
    def receiver(self) -> RTCRtpReceiver | None:
        return self._transceiver.receiver if self._transceiver else None

    @property
    def track(self) -> MicrophoneTrack | None:
        return self._track

    @property
    def output(self) -> AudioOutput | None:
        return self._output

    @property
    def codecs(self) -> list[RTCRtpCodecParameters]:
        """The negotiated codecs (the first is the one we send)."""
        return list(self._transceiver._codecs) if self._transceiver is not None else []

    @property
    def playout_delay(self) -> float:
        """Seconds from a frame's arrival to its being heard: the playout buffer's
        average plus the output device's latency."""
        return self.buffer.delay + (self._output.latency if self._output else 0.0)

    # ------------------------------------------------------------------ statistics

    async def stats(self) -> MediaStats:
        """RTCP and playout figures now (see :class:`~app.media.stats.MediaStats`)."""
        inbound = remote = None
        if self._pc is not None:
            for s in (await self._pc.getStats()).values():
                if s.type == "inbound-rtp":
                    inbound = s
                elif s.type == "remote-inbound-rtp":
                    remote = s
        codecs = {c.payloadType: c for c in self.codecs}
        send = self.codecs[0] if self.codecs else None
        rtp = self.rtp
        recv = codecs.get(rtp.last_payload_type) if rtp and rtp.last_payload_type is not None else None
        received = int(getattr(inbound, "packetsReceived", 0) or 0)
        lost = int(getattr(inbound, "packetsLost", 0) or 0)
        d_received, d_lost = received - self._last_counts[0], lost - self._last_counts[1]
        self._last_counts = (received, lost)
        fraction = d_lost / (d_received + d_lost) if inbound is not None and d_received + d_lost > 0 else None
        track = self._track
        source = track.source if track else None
        return MediaStats(
            send_codec=_codec_name(send),
            receive_codec=_codec_name(recv),
            rtt=getattr(remote, "roundTripTime", None),
            jitter=_seconds(getattr(inbound, "jitter", None), recv),
            packets_received=received,
            packets_lost=lost,
            fraction_lost=fraction,
            packets_sent=rtp.audio_sent if rtp else 0,
            remote_packets_lost=getattr(remote, "packetsLost", None),
            remote_fraction_lost=(remote.fractionLost / 256 if remote is not None else None),
            remote_jitter=_seconds(getattr(remote, "jitter", None), send),
            playout=self.buffer.stats() if self._started_at is not None else None,
            output_latency=self._output.latency if self._output else 0.0,
            capture_dropped_frames=source.stream.dropped if isinstance(source, DeviceSource) else 0,
            late_packets=self.jitter.late if self.jitter else 0,
            reference_dropped_frames=track.reference_dropped if track else 0,
        )

    # ------------------------------------------------------------------ internals

    def _ensure_pc(self) -> tuple[RTCPeerConnection, RTCRtpTransceiver]:
        if self.closed:
            raise RuntimeError("the media session is closed")
        if self._pc is None or self._transceiver is None:
            policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
            pc = RTCPeerConnection(
                RTCConfiguration(iceServers=list(self.ice_servers), iceTransportPolicy=policy)
            )
            self._track = MicrophoneTrack(
                SilenceSource(),
                processors=self.processors,
                reference=self.reference,
                on_source_failed=self._source_failed,
            )
            self._track.muted = self._muted
            transceiver = pc.addTransceiver(self._track, direction="sendrecv")
            transceiver.setCodecPreferences(self._preferences)
            self.jitter = jitter.install(transceiver.receiver)
            self.decoding = jitter.decode_inline(transceiver.receiver)
            self.rtp = RtpChannel(transceiver.sender.transport, transceiver.sender._ssrc, self._may_send)
            pc.on("iceconnectionstatechange", self._ice_state)
            pc.on("connectionstatechange", self._connection_state)
            self._pc, self._transceiver = pc, transceiver
        return self._pc, self._transceiver

    def _may_send(self) -> bool:
        if self._want_hold or self.local_hold or self._transceiver is None:
            return False
        return self._transceiver.currentDirection in ("sendrecv", "sendonly")

    async def _rollback(self) -> bool:
        """Back to "stable" from an offer of ours that was never answered (a re-INVITE
        refused or lost to glare), so a new offer of the far end can be taken: aiortc has
        no rollback, so the far end's last description is applied again as the answer."""
        pc, transceiver = self._pc, self._transceiver
        if pc is None or transceiver is None or self._last_remote is None:
            return False
        role = transceiver.receiver.transport._role
        text = set_setup(self._last_remote, "passive" if role == "client" else "active")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="answer"))
        except Exception as exc:
            log.info("cannot return to the last negotiated state: %r", exc)
            return False
        return True

    def _hooked_remote(self, body: bytes) -> bytes:
        if not self.sdp_hooks:
            return body
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
        for hook in self.sdp_hooks:
            text = hook.remote_sdp(text)
        return text.encode("utf-8")

    def _outgoing(self, sdp: str, prepared: PreparedRemote | None = None) -> str:
        self._version += 1
        text = trim_local(sdp, session_id=self._session_id, version=self._version, budget=self.sdp_budget)
        if prepared is not None:
            text = finish_answer(text, prepared)
        for hook in self.sdp_hooks:
            text = hook.local_sdp(text)
        return text

    def _set_remote_hold(self, hold: bool) -> None:
        if hold != self.remote_hold:
            self.remote_hold = hold
            self._emit(HoldChanged(self.local_hold, self.remote_hold))

    def _negotiated(self) -> None:
        """Both SDPs are set: start what is not running yet."""
        loop = asyncio.get_running_loop()
        if self._started_at is None:
            self._started_at = loop.time()
            if self._track is not None:
                self._track.set_source(self._open_source())
                if self.codecs and self._track.encoder is None:
                    # aiortc's sender starts after DTLS and keeps its first codec (codecs[0])
                    # for good: the track encodes for it from the first frame on.
                    self._track.encoder = InlineEncoder(self.codecs[0])
            self._output = self._open_output()
        receiver = self.receiver
        if self._receive_task is None and receiver is not None and receiver.track is not None:
            self._receive_task = loop.create_task(self._receive(receiver.track))

    def _elapsed(self) -> float:
        assert self._started_at is not None
        return asyncio.get_running_loop().time() - self._started_at

    async def _receive(self, track: MediaStreamTrack) -> None:
        convert = ToMono48k()
        first = True
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for pos, samples in convert.convert(frame):  # type: ignore[arg-type]
                self.buffer.write(pos, samples)
            if first:
                first = False
                self.timings.first_audio = self._elapsed()
                self._emit(FirstAudio(self.timings.first_audio))

    def _ice_state(self) -> None:
        pc = self._pc
        if (
            pc is not None
            and pc.iceConnectionState == "completed"
            and self.timings.ice is None
            and self._started_at
        ):
            self.timings.ice = self._elapsed()
            self._emit(IceConnected(self.timings.ice, self._ice_path()))

    def _ice_path(self) -> str | None:
        """The selected candidate pair's types ("host→srflx"), from aioice's nominated
        pair (aiortc has no public selected-pair API)."""
        transceiver = self._transceiver
        try:
            connection = transceiver.receiver.transport.transport._connection  # type: ignore[union-attr]
            pair = next(iter(connection._nominated.values()))
            return f"{pair.local_candidate.type}→{pair.remote_candidate.type}"
        except (AttributeError, StopIteration):
            return None

    def _connection_state(self) -> None:
        pc = self._pc
        if pc is None or self.closed:
            return
        if pc.connectionState == "connected" and self.timings.dtls is None and self._started_at:
            self.timings.dtls = self._elapsed()
            self._emit(DtlsConnected(self.timings.dtls))
        elif pc.connectionState == "failed":
            self._emit(MediaFailed("ICE or DTLS failed: no media path to the far end"))

    # ------------------------------------------------------------------ devices

    def _device_unavailable(self, role: DeviceRole, message: str) -> None:
        if role in self._reported_roles:
            return
        self._reported_roles.add(role)
        if (role, message) in _reported:
            log.debug("%s", message)
        else:
            _reported.add((role, message))
            log.warning("%s", message)
        self._emit(DeviceUnavailable(role, message))

    def _open_device_source(self, device: DeviceSpec | None) -> FrameSource:
        return DeviceSource(CaptureStream(find_device(device, "input")))

    def _open_source(self) -> FrameSource:
        if self.audio.play is not None:
            try:
                return FileSource(self.audio.play)
            except AudioFileError as exc:
                self._device_unavailable("input", f"{exc}: sending silence")
                return SilenceSource()
        if not self.audio.use_devices:
            return SilenceSource("silence (no devices used)")
        try:
            return self._open_device_source(self.audio.input)
        except AudioDeviceError as exc:
            self._device_unavailable("input", f"{exc}: sending silence")
            return SilenceSource()

    def _source_failed(self, source: FrameSource) -> FrameSource:
        self._reported_roles.discard("input")
        self._device_unavailable("input", f"{source.description} stopped delivering audio: sending silence")
        return SilenceSource()

    def _open_output(self) -> AudioOutput:
        if self.audio.record is not None:
            try:
                return ClockedOutput(self.buffer, self.reference, self.audio.record)
            except AudioFileError as exc:
                self._device_unavailable("output", f"{exc}: received audio is discarded")
                return ClockedOutput(self.buffer, self.reference)
        if not self.audio.use_devices:
            return ClockedOutput(self.buffer, self.reference)
        try:
            return DeviceOutput(find_device(self.audio.output, "output"), self.buffer, self.reference)
        except AudioDeviceError as exc:
            self._device_unavailable("output", f"{exc}: received audio is discarded")
            return ClockedOutput(self.buffer, self.reference)


def _direction(*, send: bool, receive: bool) -> str:
    """RFC 3264 §8.4: holding the far end, we stop receiving (sendonly); held by it,
    we stop sending (recvonly); both, inactive."""
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
        (send, receive), "inactive"
    )


def _codec_name(codec: RTCRtpCodecParameters | None) -> str | None:
    if codec is None:
        return None
    name = f"{codec.mimeType.split('/', 1)[1]}/{codec.clockRate}"
    return f"{name}/{codec.channels}" if codec.channels and codec.channels > 1 else name


def _seconds(value: object, codec: RTCRtpCodecParameters | None) -> float | None:
    """A jitter in RTP timestamp units (RFC 3550 §6.4.1) in seconds."""
    if not isinstance(value, int | float) or codec is None or not codec.clockRate:
        return None
    return float(value) / codec.clockRate

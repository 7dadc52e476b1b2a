"""RFC 4733 telephone-events on an aiortc audio transceiver (aiortc 1.16 has none).

Sending: the event packets share the audio stream's SSRC, sequence numbers and RTP clock
(RFC 4733 §2.1, RFC 3550 §5.1) and go through the same DTLS-SRTP transport. aiortc
numbers its audio packets in a local variable of ``RTCRtpSender._run_rtp``, so the
channel renumbers at the one place every outgoing packet passes: the transport's
``_send_rtp``. Our audio packets (by SSRC) get the next number of one counter that the
event packets use too, starting where aiortc's numbering stood, so SRTP sees a
continuous sequence. While an event is on the air the audio packets are held back
(``suppress_audio``), as libwebrtc does: the far end hears the event, not the key's
click. An event's RTP timestamp is the audio clock at its start, extrapolated from the
last audio packet sent.

Receiving: aiortc's RTP router drops payload types it did not negotiate, so the
channel takes the telephone-event packets at the transport's ``_handle_rtp_data``, after
SRTP and before routing, and gives them to an :class:`~app.media.dtmf.Rfc4733Receiver`.
aiortc's audio jitter buffer waits for every sequence number (a gap stalls it until 16
packets have piled up), so the audio packets that follow are renumbered down by the
count of event packets taken from their SSRC: aiortc sees a gap-free audio stream, and
its RTCP receiver reports count loss among audio packets only.

aiortc internals used (checked by :func:`hooks_available`, pinned by tests/media):
``RTCDtlsTransport._send_rtp``, ``._handle_rtp_data``, ``._rtp_header_extensions_map``,
``RTCRtpSender._ssrc`` and ``RTCRtpTransceiver._codecs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpTransceiver
from aiortc.rtp import RtpPacket, is_rtcp

from app.media.dtmf import DEFAULT_VOLUME, EventPacket, Rfc4733Receiver, Rfc4733Sender, ToneChange
from app.media.dtmf_sdp import TelephoneEventFormat, audio_codecs, format_for_rate, telephone_events

log = logging.getLogger(__name__)

SendRtp = Callable[[bytes], Awaitable[None]]
HandleRtp = Callable[[bytes, int], Awaitable[None]]
ToneListener = Callable[[ToneChange, int], None]  # a change, and the clock rate of its units

_HOOKED = ("_send_rtp", "_handle_rtp_data", "_rtp_header_extensions_map")


def hooks_available(transceiver: RTCRtpTransceiver) -> bool:
    """Whether this aiortc has the internals the channel hooks (see the module docstring)."""
    transport = transceiver.sender.transport
    return (
        all(hasattr(transport, name) for name in _HOOKED)
        and isinstance(getattr(transceiver.sender, "_ssrc", None), int)
        and hasattr(transceiver, "_codecs")
    )


def _u16(data: bytes, at: int) -> int:
    return (data[at] << 8) | data[at + 1]


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "big")


def _with_sequence(data: bytes, sequence: int) -> bytes:
    return data[:2] + (sequence & 0xFFFF).to_bytes(2, "big") + data[4:]


class RtpDtmfChannel:
    """RFC 4733 on one aiortc audio transceiver: make it right after the transceiver
    exists (so it sees every audio packet), call :meth:`negotiate` after each completed
    offer/answer, :meth:`close` when the call ends.

    ``on_tone`` gets each :data:`~app.media.dtmf.ToneChange` the far end's events make,
    with the clock rate their units are in.
    """

    def __init__(
        self,
        transceiver: RTCRtpTransceiver,
        *,
        on_tone: ToneListener | None = None,
        interval: float = 0.05,
        suppress_audio: bool = True,
    ) -> None:
        if not hooks_available(transceiver):
            raise RuntimeError("this aiortc lacks the internals RFC 4733 sending and receiving hook")
        self.transceiver = transceiver
        self.on_tone = on_tone
        self.interval = interval
        self.suppress_audio = suppress_audio
        self._loop = asyncio.get_running_loop()
        self._transport: Any = None
        self._orig_send: SendRtp | None = None
        self._orig_handle: HandleRtp | None = None
        # sending
        self._seq: int | None = None
        self._last_audio: tuple[int, int, float] | None = None  # (payload type, timestamp, loop time)
        self._origin: tuple[int, float] | None = None  # RTP clock with no audio sent yet
        self._tx: Rfc4733Sender | None = None
        self._tx_task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.packets_sent = 0
        self.audio_held_back = 0
        # negotiated
        self._remote_formats: tuple[TelephoneEventFormat, ...] = ()
        self._remote_rates: dict[int, int] = {}
        self._receive_formats: dict[int, TelephoneEventFormat] = {}
        # receiving
        self._receivers: dict[int, Rfc4733Receiver] = {}
        self._taken: dict[int, int] = {}  # SSRC -> event packets taken out of its sequence
        self._rx_timer: asyncio.TimerHandle | None = None
        self.packets_received = 0
        self._closed = False
        self._hook()

    # --- hooks ---------------------------------------------------------------------------------

    def _hook(self) -> None:
        transport = self.transceiver.sender.transport
        if transport is self._transport:
            return
        self._unhook()
        self._transport = transport
        self._orig_send = transport._send_rtp
        self._orig_handle = transport._handle_rtp_data
        # Instance attributes shadow the methods; _unhook deletes them again.
        setattr(transport, "_send_rtp", self._send_rtp)  # noqa: B010
        setattr(transport, "_handle_rtp_data", self._handle_rtp_data)  # noqa: B010

    def _unhook(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for name in ("_send_rtp", "_handle_rtp_data"):
            with contextlib.suppress(AttributeError):
                delattr(transport, name)
        self._transport = None

    async def _send_rtp(self, data: bytes) -> None:
        assert self._orig_send is not None
        if len(data) < 12 or is_rtcp(data) or _u32(data, 8) != self.transceiver.sender._ssrc:
            await self._orig_send(data)
            return
        if self.suppress_audio and self._tx is not None and self._tx.in_event:
            self.audio_held_back += 1
            return
        self._last_audio = (data[1] & 0x7F, _u32(data, 4), self._loop.time())
        await self._orig_send(_with_sequence(data, self._next_sequence(_u16(data, 2))))

    def _next_sequence(self, theirs: int) -> int:
        if self._seq is None:
            self._seq = theirs
        sequence = self._seq
        self._seq = (sequence + 1) & 0xFFFF
        return sequence

    async def _handle_rtp_data(self, data: bytes, arrival_time_ms: int) -> None:
        assert self._orig_handle is not None
        if len(data) >= 12 and not is_rtcp(data):
            ssrc = _u32(data, 8)
            fmt = self._receive_formats.get(data[1] & 0x7F)
            if fmt is not None:
                self._taken[ssrc] = self._taken.get(ssrc, 0) + 1
                self._take_event(data, fmt)
                return
            taken = self._taken.get(ssrc, 0)
            if taken:
                data = _with_sequence(data, _u16(data, 2) - taken)
        await self._orig_handle(data, arrival_time_ms)

    # --- negotiation ---------------------------------------------------------------------------

    def negotiate(self, local_sdp: bytes | str, remote_sdp: bytes | str) -> None:
        """Take the telephone-event formats of a completed offer/answer: we send with the
        far end's payload type for the audio's clock rate, and take the ones we declared."""
        self._hook()  # BUNDLE may have moved the sender to another transport
        self._remote_formats = telephone_events(remote_sdp)
        self._remote_rates = {c.payload_type: c.clock_rate for c in audio_codecs(remote_sdp)}
        self._receive_formats = {f.payload_type: f for f in telephone_events(local_sdp)}

    @property
    def send_clock_rate(self) -> int | None:
        """The RTP clock rate of the audio we send (what its packets say, else aiortc's
        negotiated first codec)."""
        if self._last_audio is not None and self._last_audio[0] in self._remote_rates:
            return self._remote_rates[self._last_audio[0]]
        codecs = self.transceiver._codecs
        return int(codecs[0].clockRate) if codecs else None

    @property
    def send_format(self) -> TelephoneEventFormat | None:
        """The far end's telephone-event format that goes with our audio, if it has one."""
        rate = self.send_clock_rate
        return format_for_rate(self._remote_formats, rate) if rate is not None else None

    def can_send(self, event: int) -> bool:
        fmt = self.send_format
        direction = self.transceiver.currentDirection
        return (
            not self._closed
            and fmt is not None
            and event in fmt.events
            and direction in ("sendrecv", "sendonly")
        )

    # --- sending -------------------------------------------------------------------------------

    def send(self, event: int, duration: float, *, volume: int = DEFAULT_VOLUME) -> None:
        """Queue one event (RuntimeError if :meth:`can_send` says no)."""
        fmt = self.send_format
        if fmt is None or not self.can_send(event):
            raise RuntimeError("telephone-event is not negotiated for the audio we send")
        if self._tx is None or self._tx.clock_rate != fmt.clock_rate:
            if self._tx is not None and self._tx.busy:
                raise RuntimeError("the audio clock rate changed while events were being sent")
            self._tx = Rfc4733Sender(fmt.clock_rate, interval=self.interval)
        self._tx.send(event, duration, volume=volume)
        self._idle.clear()
        if self._tx_task is None or self._tx_task.done():
            self._tx_task = self._loop.create_task(self._drive(self._tx, fmt.payload_type))

    async def drain(self) -> None:
        """Until every queued event has been sent (or dropped because the transport closed)."""
        await self._idle.wait()

    def _rtp_now(self, now: float, clock_rate: int) -> int:
        if self._last_audio is not None:
            _, timestamp, at = self._last_audio
            return (timestamp + round((now - at) * clock_rate)) & 0xFFFFFFFF
        if self._origin is None:
            self._origin = (secrets.randbits(32), now)
        timestamp, at = self._origin
        return (timestamp + round((now - at) * clock_rate)) & 0xFFFFFFFF

    async def _drive(self, tx: Rfc4733Sender, payload_type: int) -> None:
        try:
            while tx.busy and not self._closed:
                deadline = tx.next_deadline()
                if deadline is None:
                    break
                delay = deadline - self._loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # the §2.5.1.2 update timer
                now = self._loop.time()
                for packet in tx.poll(now, self._rtp_now(now, tx.clock_rate)):
                    await self._send_event_packet(packet, payload_type)
        except ConnectionError as exc:
            # The transport closed mid-event: the rest is dropped, and audio flows again.
            log.info("telephone-events dropped: %s", exc)
            if self._tx is tx:
                self._tx = None
        finally:
            self._idle.set()

    async def _send_event_packet(self, event: EventPacket, payload_type: int) -> None:
        assert self._orig_send is not None and self._transport is not None
        packet = RtpPacket(
            payload_type=payload_type,
            marker=1 if event.marker else 0,
            sequence_number=self._next_sequence(secrets.randbits(15)),
            timestamp=event.timestamp,
            ssrc=self.transceiver.sender._ssrc,
            payload=event.payload,
        )
        packet.extensions.mid = self.transceiver.mid
        await self._orig_send(packet.serialize(self._transport._rtp_header_extensions_map))
        self.packets_sent += 1

    # --- receiving -----------------------------------------------------------------------------

    def _take_event(self, data: bytes, fmt: TelephoneEventFormat) -> None:
        try:
            packet = RtpPacket.parse(data, self._transport._rtp_header_extensions_map)
        except ValueError:
            return
        self.packets_received += 1
        receiver = self._receivers.get(fmt.clock_rate)
        if receiver is None:
            receiver = self._receivers[fmt.clock_rate] = Rfc4733Receiver(fmt.clock_rate)
        now = self._loop.time()
        changes = receiver.receive(packet.timestamp, packet.payload, now, marker=bool(packet.marker))
        self._deliver(changes, fmt.clock_rate)
        self._arm_timeout()

    def _deliver(self, changes: list[ToneChange], clock_rate: int) -> None:
        for change in changes:
            if self.on_tone is not None:
                try:
                    self.on_tone(change, clock_rate)
                except Exception:  # a listener's bug must not stop the media path
                    log.exception("telephone-event listener failed")

    def _arm_timeout(self) -> None:
        if self._rx_timer is not None:
            self._rx_timer.cancel()
            self._rx_timer = None
        deadlines = [d for r in self._receivers.values() if (d := r.next_deadline()) is not None]
        if deadlines and not self._closed:
            self._rx_timer = self._loop.call_at(min(deadlines), self._on_timeout)

    def _on_timeout(self) -> None:
        self._rx_timer = None
        now = self._loop.time()
        for rate, receiver in self._receivers.items():
            self._deliver(receiver.poll(now), rate)
        self._arm_timeout()

    # --- end -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop sending, forget the receivers and give the transport its own methods back."""
        self._closed = True
        if self._tx_task is not None:
            self._tx_task.cancel()
        if self._rx_timer is not None:
            self._rx_timer.cancel()
        self._unhook()
        self._idle.set()

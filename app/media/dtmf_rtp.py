"""RFC 4733 telephone-events on a call's RTP stream (aiortc 1.16 has none).

The packets go through the media layer's :class:`~app.media.rtp.RtpChannel`, below
aiortc's sender and receiver: out on the audio stream's SSRC, in its sequence space and
on its RTP clock (RFC 4733 §2.1; RFC 3550 §5.1), through the same DTLS-SRTP transport;
in from the payload types we declared, which aiortc would drop. While an event is on
the air the audio packets are held back (``suppress_audio``, RFC 4733 §2.5.1.1 allows
it), as libwebrtc does, so the far end hears the event and not the key's click.

:class:`RtpDtmfChannel` drives an :class:`~app.media.dtmf.Rfc4733Sender` on the event loop
(one timer at its next deadline) and feeds an :class:`~app.media.dtmf.Rfc4733Receiver` per
clock rate from the stream's listener, with a timer for the events whose end was lost.
After each offer/answer, :meth:`RtpDtmfChannel.negotiate` takes the telephone-event
formats of both SDPs: we send with the far end's payload type for the clock rate of the
audio we send, and take the payload types we declared.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Protocol

from aiortc.rtp import RtpPacket

from app.media.dtmf import DEFAULT_VOLUME, EventPacket, Rfc4733Receiver, Rfc4733Sender, ToneChange
from app.media.dtmf_sdp import TelephoneEventFormat, format_for_rate, telephone_events

log = logging.getLogger(__name__)

ToneListener = Callable[[ToneChange, int], None]  # a change, and the clock rate of its units


class RtpStream(Protocol):
    """What the channel needs of the call's RTP stream (:class:`app.media.rtp.RtpChannel`)."""

    suppress_audio: bool

    def may_send(self) -> bool: ...

    def timestamp_now(self, clock_rate: int) -> int | None: ...

    async def send(
        self, payload_type: int, payload: bytes, *, timestamp: int, marker: bool = False
    ) -> bool: ...

    def add_listener(
        self, payload_type: int, listener: Callable[[RtpPacket], None]
    ) -> Callable[[], None]: ...


class RtpDtmfChannel:
    """RFC 4733 on one call (see the module docstring).

    ``send_clock_rate`` tells the RTP clock rate of the audio we send now (the first
    negotiated codec's). The stream is given with :meth:`bind` once it exists; until
    then, and after :meth:`close`, :meth:`can_send` is false. ``on_tone`` gets each
    :data:`~app.media.dtmf.ToneChange` the far end's events make, with the clock rate
    their units are in.
    """

    def __init__(
        self,
        send_clock_rate: Callable[[], int | None],
        *,
        on_tone: ToneListener | None = None,
        interval: float = 0.05,
        suppress_audio: bool = True,
    ) -> None:
        self.send_clock_rate = send_clock_rate
        self.on_tone = on_tone
        self.interval = interval
        self.suppress_audio = suppress_audio
        self._loop = asyncio.get_running_loop()
        self._stream: RtpStream | None = None
        # sending
        self._origin: tuple[int, float] | None = None  # an RTP clock while no audio was sent
        self._tx: Rfc4733Sender | None = None
        self._tx_task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.packets_sent = 0
        self.packets_not_sent = 0  # held (the call is on hold) or the transport was down
        # negotiated
        self._remote_formats: tuple[TelephoneEventFormat, ...] = ()
        self._receive_formats: dict[int, TelephoneEventFormat] = {}
        self._unlisten: list[Callable[[], None]] = []
        # receiving
        self._receivers: dict[int, Rfc4733Receiver] = {}
        self._rx_timer: asyncio.TimerHandle | None = None
        self.packets_received = 0
        self._closed = False

    def bind(self, stream: RtpStream) -> None:
        """The call's RTP stream; the listeners of a stream bound before move over."""
        if stream is self._stream:
            return
        self._stop_listening()
        self._stream = stream
        self._listen()

    # --- negotiation ---------------------------------------------------------------------------

    def negotiate(self, local_sdp: bytes | str, remote_sdp: bytes | str) -> None:
        """Take the telephone-event formats of a completed offer/answer."""
        self._remote_formats = telephone_events(remote_sdp)
        self._receive_formats = {f.payload_type: f for f in telephone_events(local_sdp)}
        self._stop_listening()
        self._listen()

    def _listen(self) -> None:
        stream = self._stream
        if stream is None or self._closed:
            return
        for pt, fmt in self._receive_formats.items():
            self._unlisten.append(stream.add_listener(pt, self._taker(fmt)))

    def _stop_listening(self) -> None:
        for remove in self._unlisten:
            remove()
        self._unlisten.clear()

    @property
    def send_format(self) -> TelephoneEventFormat | None:
        """The far end's telephone-event format that goes with the audio we send, if any
        (RFC 4733 §2.1: events share the audio's timestamps, so the same clock rate)."""
        rate = self.send_clock_rate()
        return format_for_rate(self._remote_formats, rate) if rate is not None else None

    @property
    def receive_formats(self) -> tuple[TelephoneEventFormat, ...]:
        return tuple(self._receive_formats.values())

    def can_send(self, event: int) -> bool:
        fmt = self.send_format
        stream = self._stream
        return (
            not self._closed
            and stream is not None
            and fmt is not None
            and event in fmt.events
            and stream.may_send()
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
        """Until every queued event has been sent (or dropped because the stream stopped)."""
        await self._idle.wait()

    def _rtp_now(self, clock_rate: int) -> int:
        stream = self._stream
        now = stream.timestamp_now(clock_rate) if stream is not None else None
        if now is not None:
            return now
        # No audio sent yet: a clock of our own, from a random origin (RFC 3550 §5.1).
        if self._origin is None:
            self._origin = (secrets.randbits(32), self._loop.time())
        timestamp, at = self._origin
        return (timestamp + round((self._loop.time() - at) * clock_rate)) & 0xFFFFFFFF

    async def _drive(self, tx: Rfc4733Sender, payload_type: int) -> None:
        try:
            while tx.busy and not self._closed:
                deadline = tx.next_deadline()
                if deadline is None:
                    break
                delay = deadline - self._loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # the §2.5.1.2 update timer
                packets = tx.poll(self._loop.time(), self._rtp_now(tx.clock_rate))
                self._hold_audio(tx.in_event)
                for packet in packets:
                    await self._send_event_packet(packet, payload_type)
        finally:
            self._hold_audio(False)
            if self._closed and self._tx is tx:
                self._tx = None
            self._idle.set()

    def _hold_audio(self, hold: bool) -> None:
        stream = self._stream
        if stream is not None:
            stream.suppress_audio = hold and self.suppress_audio

    async def _send_event_packet(self, event: EventPacket, payload_type: int) -> None:
        stream = self._stream
        if stream is not None and await stream.send(
            payload_type, event.payload, timestamp=event.timestamp, marker=event.marker
        ):
            self.packets_sent += 1
        else:
            self.packets_not_sent += 1

    # --- receiving -----------------------------------------------------------------------------

    def _taker(self, fmt: TelephoneEventFormat) -> Callable[[RtpPacket], None]:
        def take(packet: RtpPacket) -> None:
            self._take_event(packet, fmt)

        return take

    def _take_event(self, packet: RtpPacket, fmt: TelephoneEventFormat) -> None:
        self.packets_received += 1
        receiver = self._receivers.get(fmt.clock_rate)
        if receiver is None:
            receiver = self._receivers[fmt.clock_rate] = Rfc4733Receiver(fmt.clock_rate, events=fmt.events)
        changes = receiver.receive(
            packet.timestamp, packet.payload, self._loop.time(), marker=bool(packet.marker)
        )
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
        """Stop sending and receiving (the stream's listeners are removed)."""
        self._closed = True
        if self._tx_task is not None:
            self._tx_task.cancel()
        if self._rx_timer is not None:
            self._rx_timer.cancel()
        self._stop_listening()
        self._hold_audio(False)
        self._idle.set()

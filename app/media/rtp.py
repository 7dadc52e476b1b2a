"""Our hand on the call's RTP stream, below aiortc's sender and receiver.

aiortc's ``RTCRtpSender`` numbers its packets itself and has no way to send a packet of
another payload type on the same stream (RFC 4733 telephone-events must share the
audio's SSRC, sequence numbers and timestamp clock, RFC 4733 §2.1, §2.3), and its
receiver drops packets of payload types it did not negotiate. :class:`RtpChannel` wraps
the DTLS transport's two RTP entry points on the instance (before SRTP protection and
after SRTP unprotection, so packets are plain RTP here):

- outgoing: packets of our SSRC are renumbered from one counter that extra packets
  (:meth:`RtpChannel.send`) share (RFC 3550 §5.1: one sequence per SSRC); they are
  held back while ``may_send()`` is false (hold: the negotiated direction does not let
  us send) or while ``suppress_audio`` is set (RFC 4733 §2.5.1.1 lets a sender stop the
  audio during an event). RTCP passes untouched.
- incoming: packets of a payload type with a listener go to it and not to aiortc; the
  packets of the same SSRC after them are renumbered down by as many, so aiortc's
  receiver statistics do not count the ones taken out as lost.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RtpPacket, is_rtcp

log = logging.getLogger(__name__)

RtpListener = Callable[[RtpPacket], None]


class RtpChannel:
    """See the module docstring. ``ssrc`` is our sender's; ``may_send`` is the hold gate."""

    def __init__(self, transport: RTCDtlsTransport, ssrc: int, may_send: Callable[[], bool]) -> None:
        self.transport = transport
        self.ssrc = ssrc
        self.may_send = may_send
        self.suppress_audio = False
        self._listeners: dict[int, list[RtpListener]] = {}
        self._taken: dict[int, int] = {}  # SSRC -> packets handed to listeners, not to aiortc
        # RFC 3550 §5.1: a random start, in the lower half as aiortc does (no early wrap).
        self._seq = secrets.randbelow(0x8000)
        self.audio_sent = 0
        self.extra_sent = 0
        self.held_back = 0
        self.received = 0
        self.last_payload_type: int | None = None  # of what the far end sends
        self.last_timestamp: int | None = None  # RTP timestamp of our last audio packet
        self._last_timestamp_at = 0.0
        self.first_packet_at: float | None = None  # monotonic time of the first RTP packet in
        self._send_rtp: Callable[[bytes], Awaitable[None]] = transport._send_rtp
        self._handle_rtp: Callable[[bytes, int], Awaitable[None]] = transport._handle_rtp_data
        target: Any = transport
        target._send_rtp = self._outgoing
        target._handle_rtp_data = self._incoming

    # ------------------------------------------------------------------ out

    async def _outgoing(self, data: bytes) -> None:
        if is_rtcp(data) or len(data) < 12 or int.from_bytes(data[8:12], "big") != self.ssrc:
            await self._send_rtp(data)
            return
        if not self.may_send() or self.suppress_audio:
            self.held_back += 1
            return
        self.last_timestamp = int.from_bytes(data[4:8], "big")
        self._last_timestamp_at = time.monotonic()
        self.audio_sent += 1
        await self._send_rtp(self._renumber(data))

    def _renumber(self, data: bytes) -> bytes:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        return data[:2] + seq.to_bytes(2, "big") + data[4:]

    def timestamp_now(self, clock_rate: int) -> int | None:
        """Our stream's RTP timestamp for this instant (from the last audio packet sent),
        for an extra packet's timestamp; None before any audio was sent."""
        if self.last_timestamp is None:
            return None
        elapsed = time.monotonic() - self._last_timestamp_at
        return (self.last_timestamp + int(elapsed * clock_rate)) & 0xFFFFFFFF

    async def send(self, payload_type: int, payload: bytes, *, timestamp: int, marker: bool = False) -> bool:
        """One RTP packet of ``payload_type`` on our stream (our SSRC, the next sequence
        number). False if it was not sent (held, or the transport is not connected)."""
        if not self.may_send():
            return False
        packet = RtpPacket(payload_type=payload_type, marker=int(marker), timestamp=timestamp, ssrc=self.ssrc)
        packet.payload = payload
        packet.sequence_number = 0
        try:
            await self._send_rtp(self._renumber(packet.serialize()))
        except ConnectionError:
            return False
        self.extra_sent += 1
        return True

    # ------------------------------------------------------------------ in

    def add_listener(self, payload_type: int, listener: RtpListener) -> Callable[[], None]:
        """Packets of ``payload_type`` go to ``listener`` (on the event loop) instead of
        aiortc's receiver. Returns a function that removes it."""
        self._listeners.setdefault(payload_type, []).append(listener)

        def remove() -> None:
            listeners = self._listeners.get(payload_type, [])
            if listener in listeners:
                listeners.remove(listener)

        return remove

    async def _incoming(self, data: bytes, arrival_time_ms: int) -> None:
        if len(data) < 12:
            return
        if self.first_packet_at is None:
            self.first_packet_at = time.monotonic()
        self.received += 1
        payload_type = data[1] & 0x7F
        listeners = self._listeners.get(payload_type)
        ssrc = int.from_bytes(data[8:12], "big")
        if listeners:
            try:
                packet = RtpPacket.parse(data)
            except ValueError:
                return
            self._taken[ssrc] = self._taken.get(ssrc, 0) + 1
            for listener in list(listeners):
                try:
                    listener(packet)
                except Exception:
                    log.exception("RTP listener for payload type %d failed", payload_type)
            return
        taken = self._taken.get(ssrc)
        if taken:
            # aiortc's receiver counts loss from sequence gaps (RFC 3550 §6.4.1): the
            # packets taken out above were not lost, so what follows is numbered as if
            # they had never been in the stream.
            seq = (int.from_bytes(data[2:4], "big") - taken) & 0xFFFF
            data = data[:2] + seq.to_bytes(2, "big") + data[4:]
        self.last_payload_type = payload_type
        await self._handle_rtp(data, arrival_time_ms)

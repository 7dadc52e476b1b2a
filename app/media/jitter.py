"""The RTP-level jitter buffer we put in aiortc's audio receiver in place of its own.

aiortc 1.16 gives each audio ``RTCRtpReceiver`` a ``JitterBuffer(capacity=16,
prefetch=4)``: a packet is handed to the decoder only once the four packets after it
have come, which adds 80 ms to every call; and a lost packet stops the output until 16
packets have queued behind it, after which the buffer keeps releasing one frame per
packet that arrives, so those 300 ms stay for the rest of the call. Neither is
configurable (the buffer is made in the receiver's constructor).

:class:`PassThroughJitterBuffer` hands every audio packet on as it arrives. Timing
jitter, loss concealment and latency control are the :class:`~app.media.playout.PlayoutBuffer`'s
job, on decoded audio, with positions from the RTP timestamps. Here only duplicates and
packets older than one already passed on are dropped (counted as ``late``): a reordered
packet could not go to the decoder after a newer one without aiortc's timestamp mapper
taking it for a wrap-around (RFC 3550 §A.1 style checks, on 16-bit sequence numbers).
"""

from __future__ import annotations

import logging
from typing import Final

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)

#: A sequence number this far behind the last one means the sender restarted (RFC 3550
#: §A.1's MAX_MISORDER), not a late packet.
MAX_MISORDER: Final = 100
_RECEIVER_ATTRIBUTE: Final = "_RTCRtpReceiver__jitter_buffer"


class PassThroughJitterBuffer(JitterBuffer):
    """aiortc's ``JitterBuffer`` interface, passing each new packet straight on."""

    def __init__(self) -> None:
        super().__init__(capacity=2)
        self._last: int | None = None
        self.passed = 0
        self.late = 0
        self.restarts = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        if self._last is not None:
            ahead = (seq - self._last) & 0xFFFF
            behind = (self._last - seq) & 0xFFFF
            if ahead == 0 or (behind < ahead and behind < MAX_MISORDER):
                self.late += 1
                return False, None
            if behind < ahead:
                self.restarts += 1
        self._last = seq
        self.passed += 1
        data: bytes = getattr(packet, "_data", packet.payload)  # set by the receiver (depayloaded)
        return False, JitterFrame(data=data, timestamp=packet.timestamp)


def install(receiver: RTCRtpReceiver) -> PassThroughJitterBuffer | None:
    """Put a :class:`PassThroughJitterBuffer` in ``receiver`` (before it receives).
    None, with a log line, if this aiortc has no such attribute (then its own stays)."""
    if not hasattr(receiver, _RECEIVER_ATTRIBUTE):
        log.warning("this aiortc has no receiver jitter buffer to replace: playout keeps its 80 ms prefetch")
        return None
    buffer = PassThroughJitterBuffer()
    setattr(receiver, _RECEIVER_ATTRIBUTE, buffer)
    return buffer

"""The RTP-level jitter buffer we put in aiortc's audio receiver in place of its own,
and the receiver's decoding moved onto the event loop.

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

:class:`InlineDecoding` takes the place of the receiver's decoder queue: aiortc decodes
in a thread of its own and hands every frame back with ``run_coroutine_threadsafe`` (a
task, a future and a wake-up of the loop per 20 ms frame), which costs more than decoding
a voice frame (~50 µs for Opus). Here the frame is decoded where the packet arrives, on
the loop, and put on the receiver's track at once; aiortc's decoder thread waits idle
until the receiver stops.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

import av
from aiortc.codecs import get_decoder
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)

#: A sequence number this far behind the last one means the sender restarted (RFC 3550
#: §A.1's MAX_MISORDER), not a late packet.
MAX_MISORDER: Final = 100
_RECEIVER_ATTRIBUTE: Final = "_RTCRtpReceiver__jitter_buffer"
_DECODER_QUEUE: Final = "_RTCRtpReceiver__decoder_queue"


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


class InlineDecoding:
    """Stands in for aiortc's decoder queue (see the module docstring): ``put`` decodes
    at once, on the loop; ``get`` is for aiortc's decoder thread, which thus waits until
    the receiver stops (``put(None)``) and then ends the track as it always does."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self._receiver = receiver
        self._decoder: Decoder | None = None
        self._codec_name: str | None = None
        self._stopped = threading.Event()
        self.decoded = 0
        self.failed = 0

    def put(self, task: tuple[Any, JitterFrame] | None) -> None:
        if task is None:
            self._stopped.set()
            return
        codec, encoded = task
        if self._decoder is None or codec.name != self._codec_name:
            self._decoder, self._codec_name = get_decoder(codec), codec.name
        try:
            frames = self._decoder.decode(encoded)
        except av.FFmpegError as exc:  # kept: a reset decoder would fail until a keyframe
            self.failed += 1
            log.warning("failed to decode a %s frame: %s", codec.name, exc)
            return
        track: Any = self._receiver._track
        for frame in frames:
            track._queue.put_nowait(frame)
            self.decoded += 1

    def get(self, block: bool = True, timeout: float | None = None) -> None:
        self._stopped.wait()


def decode_inline(receiver: RTCRtpReceiver) -> InlineDecoding | None:
    """Decode ``receiver``'s audio on the loop (before it receives). None, with a log
    line, if this aiortc has no such queue (then its decoder thread stays)."""
    if not hasattr(receiver, _DECODER_QUEUE):
        log.warning("this aiortc has no decoder queue to replace: audio is decoded in its thread")
        return None
    decoding = InlineDecoding(receiver)
    setattr(receiver, _DECODER_QUEUE, decoding)
    return decoding

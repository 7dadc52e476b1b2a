"""Encoding our audio on the event loop, in the capture track, instead of in aiortc's
sender.

aiortc 1.16's ``RTCRtpSender`` hands every frame to a worker thread to be encoded
(``run_in_executor``) and, for Opus, encodes stereo at 96 kbit/s. For a 20 ms voice
frame the thread hand-off (queue, wake-up, ``call_soon_threadsafe``, the loop's self-pipe)
costs more than the encoding itself, and the second channel doubles the encoder's work
for a mono microphone: together about a fifth of a call's CPU (issue 15, ``p2psip bench
call``: ≤ 10 % of a core per call).

aiortc's sender also takes frames encoded already (a PyAV ``Packet``: it only packs it,
``Encoder.pack``). :class:`InlineEncoder` makes those packets in the track: Opus in mono
(RFC 7587 §3.4: a receiver always decodes either; the SDP keeps ``opus/48000/2``, as
§7 requires) at :data:`OPUS_BITRATE`, the others with aiortc's own encoders. RTP
timestamps stay on the codec's clock (RFC 3551 §4.5.2: 8000 Hz for G.722 too).
"""

from __future__ import annotations

import fractions
from typing import Final

from aiortc.codecs import get_encoder
from aiortc.codecs.base import Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import AudioFrame, AudioResampler, CodecContext, Packet
from av.stream import Stream

from app.media.audio import FRAME_SAMPLES, SAMPLE_RATE, TIME_BASE

OPUS_BITRATE: Final = 48_000
"""Mono Opus at 48 kbit/s: fullband speech and music without audible loss (RFC 7587
§3.1.1 puts fullband speech at 28-40 kbit/s), half of aiortc's stereo 96 kbit/s."""


class _FramesAsTheyAre:
    """The resampler of :class:`MonoOpusEncoder`: our frames (20 ms of 48 kHz mono s16)
    go to libopus as they are, since resampling costs as much as the encoding; anything
    else goes through a real resampler."""

    def __init__(self) -> None:
        self._resampler = AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE, frame_size=FRAME_SAMPLES)

    def resample(self, frame: AudioFrame | None) -> list[AudioFrame]:
        if (
            frame is not None
            and frame.samples == FRAME_SAMPLES
            and frame.sample_rate == SAMPLE_RATE
            and frame.format.name == "s16"
            and frame.layout.name == "mono"
        ):
            return [frame]
        return self._resampler.resample(frame)


class MonoOpusEncoder(OpusEncoder):
    """aiortc's Opus encoder with one channel (``application=voip``, 20 ms frames)."""

    def __init__(self, bitrate: int = OPUS_BITRATE) -> None:
        # Not OpusEncoder.__init__: it opens a stereo context.
        self.codec = CodecContext.create("libopus", "w")
        self.codec.bit_rate = bitrate
        self.codec.format = "s16"
        self.codec.layout = "mono"
        self.codec.options = {"application": "voip"}
        self.codec.sample_rate = SAMPLE_RATE
        self.codec.time_base = TIME_BASE
        self.resampler = _FramesAsTheyAre()  # type: ignore[assignment]  # its one method
        self.first_packet_pts = None


class InlineEncoder:
    """Encodes 48 kHz mono frames for ``codec`` (the one the sender was negotiated to
    send) into packets aiortc's sender only packs."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.codec = codec
        name = codec.mimeType.lower()
        self.encoder: Encoder = MonoOpusEncoder() if name == "audio/opus" else get_encoder(codec)
        self._time_base = fractions.Fraction(1, codec.clockRate)

    def encode(self, frame: AudioFrame) -> Packet[Stream] | None:
        """The packet of ``frame``; None while the encoder buffers (a resampler's first
        frame can come out short)."""
        payloads, timestamp = self.encoder.encode(frame)
        if not payloads:
            return None
        packet = Packet(payloads[0])
        packet.pts = timestamp
        packet.time_base = self._time_base
        return packet


__all__ = ["OPUS_BITRATE", "InlineEncoder", "MonoOpusEncoder"]

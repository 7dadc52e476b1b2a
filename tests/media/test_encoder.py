"""Our audio encoded in the capture track (:mod:`app.media.encoder`): packets aiortc's
sender only packs, on each codec's RTP clock, that decode back to what was sent; Opus
in one channel (RFC 6716 §3.1: the TOC byte's stereo bit is 0)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import RTCRtpSender
from av import AudioFrame, Packet

from app.media.audio import FRAME_SAMPLES, SAMPLE_RATE, Samples, ToMono48k, to_av_frame
from app.media.capture import FileSource, MicrophoneTrack
from app.media.encoder import InlineEncoder, MonoOpusEncoder

from .session_support import tone_file


def codec(name: str) -> RTCRtpCodecParameters:
    for cap in RTCRtpSender.getCapabilities("audio").codecs:
        if cap.mimeType.lower() == f"audio/{name.lower()}":
            return RTCRtpCodecParameters(
                mimeType=cap.mimeType, clockRate=cap.clockRate, channels=cap.channels, payloadType=96
            )
    raise AssertionError(f"aiortc has no {name}")


def tone(frames: int, freq: float = 440.0) -> list[Samples]:
    t = np.arange(frames * FRAME_SAMPLES) / SAMPLE_RATE
    signal = (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)
    return [signal[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] for i in range(frames)]


def peak_hz(samples: Samples) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(samples))


@pytest.mark.parametrize(
    ("name", "step", "size"),
    [("opus", 960, None), ("PCMU", 160, 160), ("PCMA", 160, 160), ("G722", 160, 160)],
)
def test_packets_on_the_codec_clock_decode_to_the_tone(name: str, step: int, size: int | None) -> None:
    parameters = codec(name)
    encoder = InlineEncoder(parameters)
    made = [encoder.encode(to_av_frame(frame, i * FRAME_SAMPLES)) for i, frame in enumerate(tone(50))]
    # A resampler to 8 kHz holds its first frame back (None): one packet fewer, no gap.
    packets = [p for p in made if p is not None]
    assert len(packets) >= 49 and all(p is not None for p in made[1:])
    stamps = [int(p.pts) for p in packets if p.pts is not None]
    assert len(stamps) == len(packets) and {b - a for a, b in itertools.pairwise(stamps)} == {step}
    assert all(p.time_base.denominator == parameters.clockRate for p in packets)
    if size is not None:
        assert {len(bytes(p)) for p in packets} == {size}
    decoder = get_decoder(parameters)
    mono = ToMono48k()
    heard: list[Samples] = []
    for p in packets:
        assert p.pts is not None
        for frame in decoder.decode(JitterFrame(data=bytes(p), timestamp=int(p.pts))):
            heard += [samples for _, samples in mono.convert(frame)]  # type: ignore[arg-type]
    audio = np.concatenate(heard)[SAMPLE_RATE // 5 :]  # past the codec's start-up
    assert abs(peak_hz(audio) - 440.0) < 10.0


def test_opus_is_sent_in_one_channel() -> None:
    encoder = InlineEncoder(codec("opus"))
    packet = encoder.encode(to_av_frame(tone(1)[0], 0))
    assert packet is not None
    toc = bytes(packet)[0]
    assert toc & 0x04 == 0, "RFC 6716 §3.1: s=0 is mono"
    assert isinstance(encoder.encoder, MonoOpusEncoder) and encoder.encoder.codec.bit_rate == 48_000


async def test_track_hands_the_sender_packets_once_the_codec_is_known(tmp_path: Path) -> None:
    track = MicrophoneTrack(FileSource(tone_file(tmp_path / "tone.wav", 440.0)))
    try:
        first = await track.recv()
        assert isinstance(first, AudioFrame)
        track.encoder = InlineEncoder(codec("PCMU"))
        second = await track.recv()
        assert isinstance(second, Packet) and len(bytes(second)) == 160
        track.muted = True
        for _ in range(2):  # the resampler's delay: the tone's last samples
            await track.recv()
        silent = await track.recv()
        assert isinstance(silent, Packet) and bytes(silent) == b"\xff" * 160  # PCMU's zero (G.711 μ-law of 0)
    finally:
        track.stop()

"""The audio paths without a network: the adaptive playout buffer (delay, concealment,
late frames, latency bound, underruns, clock drift, the callback thread), the
pass-through RTP jitter buffer, the conversions to 48 kHz mono, and the capture track
(processors, far-end reference, mute, frame timestamps)."""

from __future__ import annotations

import fractions
import itertools
import threading
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.rtp import RtpPacket

from app.media.audio import FRAME_SAMPLES, SAMPLE_RATE, ToMono48k, load_audio_file, rms
from app.media.capture import REFERENCE_SLACK, MicrophoneTrack, SilenceSource
from app.media.jitter import PassThroughJitterBuffer
from app.media.playout import FADE_FRAMES, PlayoutBuffer

pytestmark = pytest.mark.media

F = FRAME_SAMPLES


def frame(k: int) -> np.ndarray:
    """A recognisable 20 ms frame: a 1 kHz tone whose level encodes k."""
    t = (np.arange(F) + k * F) / SAMPLE_RATE
    return (np.sin(2 * np.pi * 1000 * t) * (1000 + 10 * (k % 100))).astype(np.int16)


def test_steady_stream_plays_in_order_at_the_target_delay() -> None:
    buf = PlayoutBuffer()
    out = []
    buf.write(0, frame(0))
    assert not buf.read().any()  # not primed: 40 ms must be queued first
    buf.write(F, frame(1))
    for k in range(2, 200):
        out.append(buf.read())
        buf.write(k * F, frame(k))
    assert all(np.array_equal(out[k], frame(k)) for k in range(len(out)))
    stats = buf.stats()
    assert stats.concealed_frames == stats.dropped_frames == stats.underruns == 0
    assert 0.035 <= stats.delay <= 0.045 and stats.target == pytest.approx(0.04)


def test_a_lost_frame_is_concealed_without_delay() -> None:
    buf = PlayoutBuffer()
    buf.write(0, frame(0))
    buf.write(F, frame(1))
    played = [buf.read()]
    for k in range(2, 12):
        if k != 5:  # lost
            buf.write(k * F, frame(k))
        played.append(buf.read())
    # played[k] is frame k; frame 5 is made from frame 4, fainter.
    assert np.array_equal(played[4], frame(4)) and np.array_equal(played[6], frame(6))
    concealed = played[5]
    assert 0 < rms(concealed) < rms(frame(4))
    assert np.corrcoef(concealed.astype(float), frame(4).astype(float))[0, 1] > 0.99
    assert buf.stats().concealed_frames == 1
    buf.write(5 * F, frame(5))  # it came after all: too late
    assert buf.stats().late_frames == 1


def test_concealment_fades_to_silence() -> None:
    buf = PlayoutBuffer()
    for k in range(3):
        buf.write(k * F, frame(k))
    levels = [rms(buf.read()) for _ in range(14)]  # then nothing more comes
    assert min(levels[:3]) > 500  # frames 0, 1, 2
    fading = levels[3 : 3 + FADE_FRAMES]
    assert all(a > b for a, b in itertools.pairwise(fading)) and fading[-1] > 0
    assert max(levels[3 + FADE_FRAMES :]) == 0


def test_latency_is_bounded_by_dropping_the_oldest() -> None:
    buf = PlayoutBuffer()
    for k in range(30):  # 600 ms arrive at once (a burst after a stall)
        buf.write(k * F, frame(k))
    first = buf.read()
    assert np.array_equal(first, frame(0))
    stats = buf.stats()
    assert stats.dropped_frames == 27  # 29 queued, 2 kept (the 40 ms target)
    assert np.array_equal(buf.read(), frame(28))


def test_an_underrun_stretches_and_the_target_grows() -> None:
    buf = PlayoutBuffer()
    buf.write(0, frame(0))
    buf.write(F, frame(1))
    assert np.array_equal(buf.read(), frame(0))
    assert np.array_equal(buf.read(), frame(1))
    filler = buf.read()  # frame 2 is late: nothing to play
    assert 0 < rms(filler) < rms(frame(1))
    buf.write(2 * F, frame(2))
    buf.write(3 * F, frame(3))
    assert np.array_equal(buf.read(), frame(2))  # played, not skipped
    stats = buf.stats()
    assert stats.underruns == 1 and stats.late_frames == 0
    assert stats.target == pytest.approx(0.06)  # one frame more against the next one


def test_a_pause_of_the_far_end_does_not_grow_the_target() -> None:
    buf = PlayoutBuffer()
    buf.write(0, frame(0))
    buf.write(F, frame(1))
    for _ in range(30):  # 600 ms with nothing: hold, DTX, a pause
        buf.read()
    buf.write(2 * F, frame(2))
    assert not buf.read().any()  # waits for the target again
    buf.write(3 * F, frame(3))
    assert np.array_equal(buf.read(), frame(2))
    assert buf.stats().target == pytest.approx(0.04)


def test_a_jump_in_timestamps_restarts_the_buffer() -> None:
    buf = PlayoutBuffer()
    buf.write(0, frame(0))
    buf.write(F, frame(1))
    buf.read()
    far = 10 * SAMPLE_RATE  # 10 s later (a sender that restarted its clock)
    buf.write(far, frame(7))
    buf.write(far + F, frame(8))
    assert buf.stats().resyncs == 1
    assert np.array_equal(buf.read(), frame(7))


def test_clock_drift_never_builds_up_delay() -> None:
    """A sender 1% fast for 60 s of audio: the buffer stays within target + margin."""
    buf = PlayoutBuffer()
    queued = []
    reads = 0
    for k in range(3030):
        buf.write(k * F, frame(k))
        if k % 101 != 100:  # the sender's clock runs 1% fast
            buf.read()
            reads += 1
            queued.append(buf.stats().delay)
    assert max(queued) < 0.04 + 0.06 + 0.02
    assert buf.stats().dropped_frames >= 20


def test_callback_thread_and_writer() -> None:
    buf = PlayoutBuffer()
    done = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                assert len(buf.read()) == F
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for k in range(5000):
        buf.write(k * F, frame(k))
    done.set()
    thread.join(5)
    assert not errors and not thread.is_alive()
    assert buf.stats().played_frames > 0


def packet(seq: int, ts: int) -> RtpPacket:
    p = RtpPacket(payload_type=0, sequence_number=seq & 0xFFFF, timestamp=ts)
    p._data = bytes([seq & 0xFF]) * 160  # type: ignore[attr-defined]
    return p


def test_rtp_packets_pass_straight_through() -> None:
    jb = PassThroughJitterBuffer()
    out = [jb.add(packet(s, s * 160))[1] for s in (65533, 65534, 65535, 0, 1)]  # wraps
    assert [f.timestamp for f in out if f] == [65533 * 160, 65534 * 160, 65535 * 160, 0, 160]
    assert jb.add(packet(1, 160))[1] is None  # duplicate
    assert jb.add(packet(3, 480))[1] is not None  # 2 is lost: no waiting for it
    assert jb.add(packet(2, 320))[1] is None  # 2 came late
    assert jb.late == 2
    assert jb.add(packet(40000, 7))[1] is not None and jb.restarts == 1  # the sender restarted


def test_decoded_frames_to_48k_mono_keep_their_positions() -> None:
    convert = ToMono48k()
    placed = []
    for k in [0, 1, 2, 5, 6]:  # 8 kHz frames (PCMU), 3 and 4 lost
        f = av.AudioFrame.from_ndarray(np.full((1, 160), 1000, np.int16), format="s16", layout="mono")
        f.sample_rate, f.pts, f.time_base = 8000, k * 160, fractions.Fraction(1, 8000)
        placed += convert.convert(f)
    starts = [pos for pos, _ in placed]
    assert starts[3] - (starts[2] + len(placed[2][1])) == 2 * F  # the hole is 40 ms at 48 kHz
    stereo = av.AudioFrame.from_ndarray(np.full((1, 2 * F), 2000, np.int16), format="s16", layout="stereo")
    stereo.sample_rate, stereo.pts, stereo.time_base = SAMPLE_RATE, 9 * F, fractions.Fraction(1, SAMPLE_RATE)
    ((pos, samples),) = convert.convert(stereo)
    assert pos == 9 * F and len(samples) == F and samples.dtype == np.int16


def test_audio_files_converted_to_48k_mono(tmp_path: Path) -> None:
    path = tmp_path / "cd.wav"
    t = np.arange(44100 * 2) / 44100
    left = (np.sin(2 * np.pi * 300 * t) * 10000).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(np.column_stack([left, left]).astype("<i2").tobytes())
    samples = load_audio_file(path)
    assert abs(len(samples) - 2 * SAMPLE_RATE) < 100 and samples.dtype == np.int16
    peak = np.argmax(np.abs(np.fft.rfft(samples.astype(float)))) * SAMPLE_RATE / len(samples)
    assert abs(peak - 300) < 2


class Probe:
    """An audio processor that notes what it is handed."""

    def __init__(self) -> None:
        self.played: list[int] = []  # reference frames handed before each capture frame
        self.pending = 0

    def process_playout(self, frame: np.ndarray) -> None:
        self.pending += 1

    def process_capture(self, frame: np.ndarray) -> np.ndarray:
        self.played.append(self.pending)
        self.pending = 0
        return (frame + 100).astype(np.int16)


class Broken:
    def process_playout(self, frame: np.ndarray) -> None:
        pass

    def process_capture(self, frame: np.ndarray) -> np.ndarray:
        raise RuntimeError("bug")


async def test_capture_track_processors_reference_and_mute() -> None:
    probe = Probe()
    track = MicrophoneTrack(SilenceSource(), processors=[Broken(), probe])
    for k in range(30):  # the output ran 600 ms ahead of the capture path
        track.reference.append(frame(k))
    first = await track.recv()
    assert probe.played == [REFERENCE_SLACK + 1] and track.reference_dropped == 30 - REFERENCE_SLACK - 1
    assert len(track.processors) == 1  # the broken one is out, the call goes on
    assert (first.pts, first.sample_rate, first.samples, first.format.name) == (0, SAMPLE_RATE, F, "s16")
    assert first.time_base == fractions.Fraction(1, SAMPLE_RATE)
    assert (first.to_ndarray() == 100).all()  # silence through the processor
    track.reference.append(frame(0))
    track.muted = True
    second = await track.recv()
    assert second.pts == F and probe.played == [REFERENCE_SLACK + 1, 1]
    assert not second.to_ndarray().any()  # muted: silence, after the processors
    track.stop()

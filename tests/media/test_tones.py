"""The generated tones (app/media/resources, made by ``python -m app.media.tones``): the
committed files are what the generator writes, loaded through importlib.resources at
48 kHz, with the frequencies and cadences of their standards; the TonePlayer with no
device plays nowhere and says so once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.media.audio import SAMPLE_RATE, Samples
from app.media.devices import list_devices
from app.media.events import DeviceUnavailable, MediaEvent
from app.media.tones import RESOURCES, TONES, TonePlayer, load_tone

pytestmark = pytest.mark.media

W = SAMPLE_RATE // 100  # 10 ms


def on_off(samples: Samples) -> list[tuple[bool, float]]:
    """The tone's cadence: runs of sound and silence, in seconds (10 ms resolution)."""
    n = len(samples) // W
    loud = np.abs(samples[: n * W].reshape(n, W).astype(float)).max(axis=1) > 1000
    runs: list[tuple[bool, float]] = []
    for value in loud:
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 0.01)
        else:
            runs.append((bool(value), 0.01))
    return [(v, round(d, 1)) for v, d in runs]


def peaks(samples: Samples, count: int) -> list[float]:
    spectrum = np.abs(np.fft.rfft(samples.astype(float) * np.hanning(len(samples))))
    found: list[float] = []
    for index in np.argsort(spectrum)[::-1]:
        freq = index * SAMPLE_RATE / len(samples)
        if all(abs(freq - f) > 15 for f in found):
            found.append(freq)
        if len(found) == count:
            break
    return sorted(found)


def test_committed_tones_are_the_generated_ones(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "app.media.tones", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for name in TONES:
        committed = (RESOURCES / f"{name}.wav").read_bytes()
        assert (tmp_path / f"{name}.wav").read_bytes() == committed
        assert len(committed) < 100_000


@pytest.mark.parametrize(
    ("name", "freqs", "cadence"),
    [
        ("ringback", [440, 480], [(True, 2.0), (False, 4.0)]),
        ("busy", [480, 620], [(True, 0.5), (False, 0.5)]),
        ("ringback-eu", [425], [(True, 1.0), (False, 4.0)]),
        ("busy-eu", [425], [(True, 0.5), (False, 0.5)]),
        ("ringtone", [1300, 1650], [(True, 0.4), (False, 0.2), (True, 0.4), (False, 2.0)]),
    ],
)
def test_tone_frequencies_and_cadence(
    name: str, freqs: list[float], cadence: list[tuple[bool, float]]
) -> None:
    samples = load_tone(name)
    assert samples.dtype == np.int16
    assert on_off(samples) == cadence
    burst = samples[: int(cadence[0][1] * SAMPLE_RATE)]
    assert peaks(burst, len(freqs)) == pytest.approx(freqs, abs=8)  # the trill spreads the ringtone a little
    assert np.abs(samples).max() < 32767 * 0.6  # no clipping, not harsh


def test_tone_player_without_a_device() -> None:
    if any(d.is_output for d in list_devices()):
        pytest.skip("this machine has an output device")
    events: list[MediaEvent] = []
    player = TonePlayer(listener=events.append)
    assert not player.play("ringtone")
    assert not player.play("ringback")
    assert player.playing is None
    assert events == [
        DeviceUnavailable("ringing", "no audio output device on this machine: tones are not played")
    ]
    assert not TonePlayer(use_devices=False).play("busy")
    with pytest.raises(ValueError, match="unknown tone"):
        player.play("siren")

"""``p2psip bench phone`` with small numbers: every figure is printed and sane."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.multinode
def test_bench_phone_small_run_prints_every_figure() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "bench",
            "phone",
            "--peers",
            "3",
            "--calls",
            "3",
            "--buddies",
            "10",
            "--presence-seconds",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert (figures["peers"], figures["calls"], figures["buddies"]) == (3, 3, 10)
    assert 0 < figures["dial_to_ringing_ms_p50"] <= figures["dial_to_ringing_ms_p99"] < 10_000
    # Idle, neither phone has the media stack loaded (issue 14): the two differ by noise only.
    assert 10 < figures["idle_rss_mb"] < 1000
    assert abs(figures["idle_rss_mb_no_media"] - figures["idle_rss_mb"]) < 5
    # Ten buddies' first checks (one Fetch each, a Ping for bob) fall in the window.
    assert 0 < figures["presence_requests_per_s"] <= 5
    assert figures["presence_target_met"] is True
    for key in ("dial_to_ringing_target_met", "idle_rss_target_met"):
        assert isinstance(figures[key], bool)
    assert result.returncode == (0 if all(v for k, v in figures.items() if k.endswith("_target_met")) else 1)

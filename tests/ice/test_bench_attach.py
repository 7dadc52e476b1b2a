"""``p2psip bench attach``: runs end to end and reports setup times."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from app.bench.bench_attach import percentile
from app.bench.nat_lab import ROOT


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert math.isnan(percentile([], 50))


@pytest.mark.multinode
def test_bench_attach_on_this_machine(interface_address: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "bench", "attach", "--count", "3", "--no-nat", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    results = json.loads(done.stdout)
    assert results["local_address"] == interface_address
    assert results["local_attach_failures"] == 0 and results["local_app_attach_failures"] == 0
    assert 0 < results["local_attach_ms_p50"] <= results["local_attach_ms_p99"]
    assert 0 < results["local_app_attach_ms_p50"] < 1000
    assert results["nat_skipped"] == "--no-nat"
    assert done.returncode == (0 if results["app_attach_target_met"] else 1)

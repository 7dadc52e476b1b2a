"""The simulator (RFC 6940 §10, §7): real nodes on a virtual clock join, converge and route
like the real thing, a seed gives the same run again, and churn loses no data."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import asdict, replace
from typing import Any

import pytest

from app.cli import main as cli_main
from reload_core.sim import SimConfig, SimReport, run_simulation

SMALL = SimConfig(nodes=30, seed=11, settle=30.0, duration=60.0, lookups=60, values=10)

# Figures of the machine, not of the simulated overlay.
MACHINE = ("wall_s", "cpu_s", "peak_rss_mb")


def figures(report: SimReport) -> dict[str, Any]:
    return {k: v for k, v in report.as_dict().items() if k not in MACHINE}


def test_the_same_seed_gives_the_same_run() -> None:
    """Also in another process, whose str/bytes hashes differ (PYTHONHASHSEED): nothing in
    the run may depend on hash order."""
    config = replace(SMALL, session_minutes=10.0)
    first = figures(run_simulation(config))
    code = (
        "import json, sys\n"
        "from reload_core.sim import SimConfig, run_simulation\n"
        f"report = run_simulation(SimConfig(**{asdict(config)!r}))\n"
        "json.dump(report.as_dict(), sys.stdout)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True, text=True)
    again = {k: v for k, v in json.loads(out.stdout).items() if k not in MACHINE}
    assert first == again
    assert first["joined"] >= 30 and first["lookups"] > 0 and first["values_stored"] == 10


def test_another_seed_gives_another_ring() -> None:
    assert figures(run_simulation(replace(SMALL, seed=12))) != figures(run_simulation(SMALL))


def test_an_overlay_converges_and_routes_in_about_half_log2_n_hops() -> None:
    n = 120
    report = run_simulation(SimConfig(nodes=n, seed=3, settle=300.0, duration=120.0, lookups=400, values=40))
    assert report.joined == n
    assert report.ring_ok, "every successor and predecessor list matches the sorted Node-IDs"
    assert report.errors == 0
    assert report.lookups == 400 and report.lookup_success == 1.0
    # Chord's ½·log2(N) hops, plus the final hop to the responsible peer (§10.3).
    assert report.hops_reference == pytest.approx(0.5 * math.log2(n))
    assert 0.5 * math.log2(n) <= report.hops_mean <= 0.5 * math.log2(n) + 1.0
    assert report.hops_p99 <= math.log2(n) + 1
    # 20 ms a link, there and back.
    assert report.lookup_ms_p50 == pytest.approx(40.0 * round(report.lookup_ms_p50 / 40.0))
    assert report.data_lost == 0 and report.values_stored == 40
    assert report.fingers_mean >= 3
    assert 0 < report.messages_per_node_per_s < 5


def test_churn_loses_no_data() -> None:
    report = run_simulation(
        SimConfig(nodes=60, seed=5, session_minutes=10.0, settle=60.0, duration=300.0, lookups=200, values=30)
    )
    assert report.failures >= 10
    assert report.replacements == report.failures
    assert report.values_stored == 30
    assert report.data_lost == 0
    assert report.lookup_success >= 0.97
    assert report.errors == 0


def test_peers_restarted_with_their_node_id_and_no_data_lose_nothing() -> None:
    """A restarted process keeps its Node-ID but not its data. Coming back within the
    successor hold-down (§10.7.1), it must still get its predecessors' replicas again
    (§10.7.3): without that, this run lost 9 of its 100 values."""
    report = run_simulation(
        SimConfig(
            nodes=40,
            seed=1,
            session_minutes=5.0,
            restarts=True,
            settle=60.0,
            duration=900.0,
            lookups=300,
            values=100,
        )
    )
    assert report.failures >= 50
    assert 0 <= report.failures - report.replacements <= 2  # the last may still be away
    assert report.values_stored == 100
    assert report.data_lost == 0
    assert report.lookup_success >= 0.99
    assert report.errors == 0


def test_silent_failures_are_found_by_keepalives() -> None:
    report = run_simulation(
        SimConfig(
            nodes=40,
            seed=7,
            session_minutes=10.0,
            silent_failures=1.0,
            keepalive=10.0,
            settle=60.0,
            duration=300.0,
            lookups=100,
            values=20,
        )
    )
    assert report.failures >= 5
    assert report.data_lost == 0
    assert report.lookup_success >= 0.9
    assert report.errors == 0


def test_lossy_datagram_links_still_route_every_lookup() -> None:
    report = run_simulation(replace(SMALL, loss=0.02, seed=13))
    assert report.joined == 30 and report.ring_ok
    assert report.lookup_success == 1.0
    assert report.data_lost == 0 and report.errors == 0


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError):
        SimConfig(nodes=1)
    with pytest.raises(ValueError):
        SimConfig(nodes=10, bootstrap_peers=11)
    with pytest.raises(ValueError):
        SimConfig(nodes=10, session_minutes=0.0)
    with pytest.raises(ValueError):
        SimConfig(nodes=10, loss=1.0)


def test_the_sim_command_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "--nodes", "12", "--seed", "2", "--json", "--lookups", "30", "--values", "5"]
    argv += ["--settle", "30", "--duration", "30"]
    assert cli_main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "hops_mean",
        "hops_p99",
        "lookup_success",
        "lookup_ms_p50",
        "data_lost",
        "messages_per_node_per_s",
        "wall_s",
        "peak_rss_mb",
    ):
        assert key in out
    assert out["nodes"] == 12 and out["lookup_success"] == 1.0 and out["data_lost"] == 0


def test_the_sim_command_refuses_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["sim", "--nodes", "1"]) == 1
    assert "error" in capsys.readouterr().err


def test_the_sim_command_runs_on_two_workers(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "--nodes", "20", "--workers", "2", "--json", "--lookups", "30", "--values", "5"]
    argv += ["--settle", "30", "--duration", "30"]
    assert cli_main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nodes"] == 20 and out["joined"] == 20 and out["ring_ok"]
    assert out["lookup_success"] == 1.0 and out["data_lost"] == 0 and out["errors"] == 0


def test_the_sim_command_refuses_bad_worker_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["sim", "--nodes", "10", "--workers", "0"]) == 1
    err = capsys.readouterr().err
    assert "workers" in err and "Traceback" not in err

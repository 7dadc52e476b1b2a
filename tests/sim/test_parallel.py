"""A simulation spread over two processes (reload_core.sim.parallel): links between
workers, the script kept the same in both, a seed giving the same run, and no worker
left behind when one fails."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from reload_core.links.base import VirtualClock
from reload_core.sim import SimConfig, SimReport, Simulation, run_simulation
from reload_core.sim.parallel import WorkerFailed

from .test_simulation import MACHINE, SMALL

pytestmark = pytest.mark.multinode  # worker processes

CHURN = replace(SMALL, nodes=40, workers=2, session_minutes=10.0, settle=60.0, duration=300.0, lookups=150)


def figures(report: SimReport) -> dict[str, object]:
    return {k: v for k, v in report.as_dict().items() if k not in MACHINE}


def children() -> list[int]:
    """This process's live child processes (zombies too), from /proc."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found.append(int(entry.name))
    return found


@pytest.fixture
def no_stray_workers() -> object:
    before = set(children())
    yield None
    assert set(children()) <= before, "a worker process outlived its simulation"


def test_two_workers_join_route_and_keep_every_value_under_churn(no_stray_workers: object) -> None:
    report = run_simulation(CHURN)
    assert report.ring_ok
    assert report.failures >= 10 and report.replacements == report.failures
    assert report.joined == 40 + report.replacements
    assert report.values_stored == 10 and report.data_lost == 0
    assert report.lookups >= 140 and report.lookup_success >= 0.97
    assert report.errors == 0
    # Every figure that adds up over workers came from both: half the nodes each.
    assert report.cpu_s > 0 and report.peak_rss_mb > 0


def test_a_seed_and_a_worker_count_give_the_same_run(no_stray_workers: object) -> None:
    assert figures(run_simulation(CHURN)) == figures(run_simulation(CHURN))


@pytest.mark.parametrize(
    "config",
    [
        replace(SMALL, workers=2, loss=0.02, seed=13),  # datagram links with retransmissions
        replace(  # links whose other end vanishes, found by keepalives
            SMALL, workers=2, session_minutes=10.0, silent_failures=1.0, keepalive=10.0, duration=200.0
        ),
        replace(SMALL, workers=3),
    ],
    ids=["lossy", "silent-failures", "three-workers"],
)
def test_every_link_kind_works_between_workers(config: SimConfig, no_stray_workers: object) -> None:
    report = run_simulation(config)
    assert report.joined >= 30 and report.ring_ok
    assert report.lookup_success >= (0.9 if config.silent_failures else 1.0)
    assert report.data_lost == 0 and report.errors == 0


@pytest.mark.parametrize("worker", [0, 1])
def test_a_failing_worker_stops_the_run_and_leaves_no_process(
    worker: int, monkeypatch: pytest.MonkeyPatch, no_stray_workers: object
) -> None:
    """Whichever worker fails, the run ends with its error, and every child is gone."""
    store_values = Simulation._store_values

    async def fail_in_one(self: Simulation) -> None:
        if self._worker == worker:
            raise RuntimeError(f"worker {worker} broke")
        await store_values(self)

    monkeypatch.setattr(Simulation, "_store_values", fail_in_one)
    with pytest.raises((WorkerFailed, RuntimeError), match=f"worker {worker} broke"):
        Simulation(replace(SMALL, workers=2)).run()


def test_a_note_that_fails_to_apply_is_fatal(
    monkeypatch: pytest.MonkeyPatch, no_stray_workers: object
) -> None:
    """A worker whose script missed a note would part from the others for good: the run
    must stop with an error rather than run on (or wait) for ever."""
    apply = Simulation._apply

    def fail_in_worker_1(self: Simulation, note: tuple[object, ...]) -> None:
        if self._worker == 1 and note[0] == "ring":
            raise RuntimeError("worker 1 could not apply a note")
        apply(self, note)

    monkeypatch.setattr(Simulation, "_apply", fail_in_worker_1)
    with pytest.raises(WorkerFailed, match="parted"):
        Simulation(replace(SMALL, workers=2)).run()


def test_events_from_other_workers_run_first_in_their_order() -> None:
    """Ties at one time: events posted by other workers (negative order, by sender and
    sequence) run before this worker's own, whatever order they were scheduled in."""
    clock = VirtualClock()
    ran: list[str] = []
    clock.call_later(1.0, lambda: ran.append("local"))
    clock.call_at(1.0, lambda: ran.append("worker 1, second"), order=-10)
    clock.call_at(1.0, lambda: ran.append("worker 1, first"), order=-20)
    clock.call_at(0.5, lambda: ran.append("earlier"), order=-5)
    clock.run_until(1.0)
    assert ran == ["earlier", "worker 1, first", "worker 1, second", "local"]
    with pytest.raises(ValueError):
        clock.call_at(0.5, lambda: None)


def test_more_workers_than_nodes_or_no_latency_are_refused() -> None:
    with pytest.raises(ValueError):
        SimConfig(nodes=3, workers=4, bootstrap_peers=1)
    with pytest.raises(ValueError):
        SimConfig(nodes=30, workers=2, latency=0.0)
    with pytest.raises(ValueError):
        SimConfig(nodes=30, workers=0)

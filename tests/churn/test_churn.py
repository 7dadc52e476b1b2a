"""Thirty ``p2psip peer`` processes on loopback over real TLS, killed (SIGKILL) and
restarted at random for a while under a steady load of stores, fetches and lookups
(RFC 6940 §6.1, §7.4, §10.4, §10.7.1): no stored value is lost, lookups reach the
responsible peer, no process dies of an exception, and memory does not keep growing.

The churn lasts ``P2PSIP_CHURN_SECONDS`` (default 120; set it higher for a longer run).
Kills respect what three-fold replication (§10.4) can survive: a peer within three ring
positions of one killed in the last minute (the successor hold-down of §10.7.1 plus the
replica Stores) is spared; otherwise victims are drawn at random.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import signal
import time
from pathlib import Path

import pytest

from app.bench.bench_storage import bench_kind
from app.bench.overlay_harness import OverlayHarness, PeerProcess
from reload_core.config.document import default_kinds

from .conftest import MakeOverlay
from .support import LookupTally, bad_log_lines, joined_ring, rss_of

pytestmark = pytest.mark.multinode

CHURN_SECONDS = float(os.environ.get("P2PSIP_CHURN_SECONDS", "120"))
PEERS = 30
LOADERS = 2  # worker-hosted peers that generate the load; never killed
STORAGE = "app.bench.bench_storage"
SPARE_POSITIONS = 3
SPARE_SECONDS = 60.0


class Churn:
    """The churn driver: kills and restarts peer processes, spares replica sets at risk."""

    def __init__(self, harness: OverlayHarness, rng: random.Random) -> None:
        self.harness = harness
        self.rng = rng
        self.killed: dict[int, float] = {}  # index -> when
        self.kills = 0
        self.restarts = 0
        self.down: set[int] = set()
        self.killed_processes: set[int] = set()  # id() of PeerProcess objects we killed
        self._tasks: set[asyncio.Task[None]] = set()

    def _spared(self, index: int, now: float) -> bool:
        ring = sorted(self.harness.overlay.peers[i].node_id for i in range(PEERS))
        position = {node_id: p for p, node_id in enumerate(ring)}
        me = position[self.harness.overlay.peers[index].node_id]
        for other, when in self.killed.items():
            if now - when > SPARE_SECONDS:
                continue
            there = position[self.harness.overlay.peers[other].node_id]
            gap = min((me - there) % len(ring), (there - me) % len(ring))
            if gap <= SPARE_POSITIONS:
                return True
        return False

    def kill_one(self) -> None:
        now = time.monotonic()
        candidates = [i for i in range(1, PEERS) if i not in self.down and not self._spared(i, now)]
        if not candidates:
            return
        victim = self.rng.choice(candidates)
        process = self.harness.processes[victim]
        self.killed_processes.add(id(process))
        process.send_signal(signal.SIGKILL)
        self.harness.process_gone(victim)
        self.killed[victim] = now
        self.down.add(victim)
        self.kills += 1
        task = asyncio.get_running_loop().create_task(self._restart(victim, process))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _restart(self, index: int, old: PeerProcess) -> None:
        await old.wait_exit(30)
        await asyncio.sleep(self.rng.uniform(2.0, 6.0))  # down for a while, as a crashed host is
        await self.harness.start_process(index, wait=False)
        await self.harness.processes[index].wait_ready(120)
        self.down.discard(index)
        self.restarts += 1

    async def finish(self) -> None:
        await asyncio.gather(*self._tasks)


@pytest.mark.timeout(CHURN_SECONDS + 480)
async def test_thirty_peers_under_churn_and_load(make_overlay: MakeOverlay, tmp_path: Path) -> None:
    overlay = make_overlay(PEERS + LOADERS, key_kind="ecdsa", required_kinds=(*default_kinds(), bench_kind()))
    rng = random.Random(2024)
    logs = tmp_path / "logs"
    logs.mkdir()
    async with OverlayHarness(overlay, workers=1, log_dir=logs) as harness:
        # -- the overlay: the bootstrap peer, the others five at a time, then the loaders
        await harness.start_process(0)
        gate = asyncio.Semaphore(5)

        async def start(index: int) -> None:
            async with gate:
                await harness.start_process(index, wait=False)
                await harness.processes[index].wait_ready(120)

        await asyncio.gather(*(start(i) for i in range(1, PEERS)))
        loaders = list(range(PEERS, PEERS + LOADERS))
        for index in loaders:
            await harness.start_peer(index)
        await harness.wait_ring(120)

        worker = harness.workers[0]
        assert worker.proc is not None
        tally = LookupTally()
        stored: dict[str, str] = {}
        next_index = dict.fromkeys(loaders, 0)
        store_errors: list[str] = []
        fetches = {"sent": 0, "ok": 0}
        rss: dict[str, list[int]] = {"bootstrap": [], "worker": []}
        churn = Churn(harness, rng)
        stop = asyncio.Event()

        async def lookups() -> None:
            while not stop.is_set():
                source = rng.choice(loaders)
                targets = [(source, secrets.token_bytes(16), True) for _ in range(4)]
                before = joined_ring(harness)
                results = await harness.lookups(len(targets), targets=targets)
                tally.judge(results, before, joined_ring(harness))
                await asyncio.sleep(0.25)

        async def stores() -> None:
            while not stop.is_set():
                loader = rng.choice(loaders)
                next_index[loader] += 1
                value = secrets.token_bytes(32).hex()
                (result,) = await harness.call_peer(
                    loader, f"{STORAGE}:worker_store", items=[[next_index[loader], value]], lifetime=3600
                )
                resource, _, error = result
                if error:
                    store_errors.append(error)
                else:
                    stored[resource] = value
                await asyncio.sleep(1.0)

        async def fetches_during() -> None:
            while not stop.is_set():
                if stored:
                    resource = rng.choice(sorted(stored))
                    ((ok, _, _),) = await harness.call_peer(
                        rng.choice(loaders), f"{STORAGE}:worker_fetch", items=[[resource, stored[resource]]]
                    )
                    fetches["sent"] += 1
                    fetches["ok"] += int(ok)
                await asyncio.sleep(1.0)

        async def memory() -> None:
            bootstrap = harness.processes[0].proc
            assert bootstrap is not None and worker.proc is not None
            while not stop.is_set():
                rss["bootstrap"].append(rss_of(bootstrap.pid))
                rss["worker"].append(rss_of(worker.proc.pid))
                await asyncio.sleep(2.0)

        async def kills() -> None:
            while not stop.is_set():
                await asyncio.sleep(rng.uniform(4.0, 10.0))
                if not stop.is_set():
                    churn.kill_one()

        load = [asyncio.ensure_future(f()) for f in (lookups, stores, fetches_during, memory, kills)]
        await asyncio.sleep(CHURN_SECONDS)
        stop.set()
        await asyncio.gather(*load)
        await churn.finish()

        # -- after the churn: the ring heals, and every stored value is there
        await harness.wait_ring(120)
        missing: list[str] = []
        items = sorted(stored.items())
        for start_at in range(0, len(items), 20):
            batch = items[start_at : start_at + 20]
            results = await harness.call_peer(
                rng.choice(loaders), f"{STORAGE}:worker_fetch", items=[list(i) for i in batch]
            )
            missing += [
                f"{r[:8]}: {res[2]}" for (r, _), res in zip(batch, results, strict=True) if not res[0]
            ]

        dead = [
            f"peer {p.peer.index}: exit {p.proc.returncode}"
            for p in harness._all_processes
            if p.proc is not None and p.proc.returncode is not None and id(p) not in churn.killed_processes
        ]
        log_paths = [p.log_path for p in harness._all_processes if p.log_path is not None]
        bad = bad_log_lines(log_paths)

    print(
        f"churn {CHURN_SECONDS:.0f} s: {churn.kills} kills, {churn.restarts} restarts; "
        f"{tally.sent} lookups, {tally.success:.4f} ok; {len(stored)} stored ({len(store_errors)} refused); "
        f"{fetches['ok']}/{fetches['sent']} fetches during the churn; rss {rss}"
    )
    assert churn.kills >= CHURN_SECONDS / 20
    assert churn.restarts == churn.kills
    assert not dead, dead
    assert not bad, bad[:20]
    assert len(stored) >= CHURN_SECONDS / 2
    assert not missing, missing
    assert tally.sent >= CHURN_SECONDS * 4
    assert tally.success >= 0.99, tally.failures[:20]
    assert fetches["ok"] >= 0.95 * fetches["sent"]
    for name, samples in rss.items():
        # After the first third (imports, the first links), resident memory levels off.
        third = max(1, len(samples) // 3)
        settled = max(samples[third : 2 * third] or samples)
        assert max(samples[2 * third :] or samples) <= settled * 1.25 + 16 * 2**20, (name, samples)

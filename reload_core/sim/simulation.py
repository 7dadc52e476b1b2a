"""Thousands of RELOAD peers in one process, on a virtual clock (RFC 6940 §10, §7).

Every peer is a real :class:`~reload_core.node.Node` with its real storage
(:class:`~reload_core.storage.Storage`): the codec, signatures and their verification,
symmetric recursive routing, CHORD-RELOAD and replication all run as they do over
sockets. Only the links are in memory (:class:`~reload_core.links.memory.MemoryNetwork`,
with its latency and loss) and time is a :class:`~reload_core.links.base.VirtualClock`
shared with an asyncio loop (:class:`~reload_core.sim.loop.VirtualTimeLoop`), so a
simulated hour costs only the work done in it.

A run (:meth:`Simulation.run`) goes through these phases, all in simulated time:

1. the bootstrap peers: the first starts the overlay alone, the others join through it;
2. arrivals: the other peers join, each through a random bootstrap peer (§10.5, §11.4),
   as a Poisson process; a failed join is tried again after a back-off;
3. ``settle`` seconds of stabilisation (§10.7.4);
4. the workload: values stored (§7.4.1), lookups for ``duration`` seconds, under churn
   if asked: peers fail (their connections closing, or silently) and new ones take
   their place;
5. every stored value fetched (§7.4.2), and the figures of :class:`SimReport`.

Randomness comes from one seeded PRNG (keys, hence Node-IDs and the ring; arrival and
session times; the workload; each node's own PRNG), so a seed gives the same run.

With ``workers`` > 1 the nodes are spread over that many processes
(:mod:`reload_core.sim.parallel`). Every worker runs this same script with the same
draws, but only its own nodes (node i in worker i mod workers); what only one worker
sees (a join, a store's or a fetch's result, a lookup's answer) it *notes*, and every
worker applies each note one link latency later, so that the script's choices
stay the same everywhere. Single-process runs apply each note at once.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import logging
import math
import random
import resource
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from reload_core.config.document import AccessControl
from reload_core.ids import NodeId
from reload_core.ids import resource_id as hash_resource
from reload_core.links.base import VirtualClock
from reload_core.links.framing import LinkConfig
from reload_core.links.memory import MemoryNetwork, RandomLoss
from reload_core.node import Answer, Node, NodeEvent, NodeSettings, Outcome, StateChanged, memory_transport
from reload_core.node.errors import JoinError, NodeError
from reload_core.node.transport import MemoryTransport, memory_address
from reload_core.security.signing import CertificateResolver
from reload_core.sim.config import SimConfig, SimReport, percentile
from reload_core.sim.identities import SimIdentity, shared_resolver
from reload_core.sim.loop import VirtualTimeLoop, cancel_remaining
from reload_core.sim.parallel import Channel, Note, TimeSync, fork_workers
from reload_core.storage import AccessPolicy, Kind, KindRegistry, Storage, StorageError
from reload_core.topology.config import ChordConfig
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import DataModel, MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import ResourceDestination
from reload_core.wire.storage import DataValue, StoredDataSpecifier

log = logging.getLogger(__name__)

OVERLAY = "sim.p2psip.test"
PORT = 6084

SIM_KIND = Kind(
    kind_id=0xF0000051,
    data_model=DataModel.SINGLE,
    access_control=AccessControl.NODE_MULTIPLE,
    max_count=1,
    max_size=1024,
    max_node_multiple=8,
    name="SIM-VALUE",
)
"""The Kind the workload stores: one value per Resource-ID H(Node-ID || i), i in 1..8
(NODE-MULTIPLE, §7.3.4), so each peer may store several values spread over the ring."""

WALL_EPOCH = 1_700_000_000.0
"""Wall-clock seconds at simulated time 0 (storage times, §7, come from the wall clock)."""

VALUE_LIFETIME = 86_400
FETCH_ATTEMPTS = 3
FETCH_RETRY = 20.0
JOIN_BACKOFF = 10.0
STORE_CONCURRENCY = 32
GC_THRESHOLD = 10_000
GROWTH_PER_SECOND = 0.1
GC_FREEZE_EVERY = 100
RESTART_PAUSE = (5.0, 15.0)
"""Seconds a restarted peer stays away (with ``restarts``)."""


@dataclass(eq=False)
class SimNode:
    """One simulated peer and what the simulation knows about it. ``node`` and ``storage``
    are None in the workers that do not run it (see the module docstring)."""

    index: int
    identity: SimIdentity
    rng: random.Random  # the script's draws for this peer: its bootstrap peer for each try
    created: float
    node: Node | None = None
    storage: Storage | None = None
    bootstrap: bool = False
    joined: bool = False  # in the ground-truth ring
    failed: bool = False
    join_noted: bool = False  # its worker saw it join (and noted so)
    join_attempts: int = 0
    values: int = 0  # NODE-MULTIPLE indices used so far
    fail_timer: asyncio.TimerHandle | None = None

    @property
    def key(self) -> int:
        return int.from_bytes(self.identity.node_id, "big")


@dataclass(slots=True)
class _StoredValue:
    resource: bytes
    value: bytes


@dataclass(slots=True)
class _Lookups:
    sent: int = 0
    abandoned: int = 0  # their source failed before the answer came: not judged
    succeeded: int = 0
    hops: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)


@dataclass(slots=True)
class _WorkerFigures:
    """What one worker measured of the run: the script's figures (the same in every
    worker) and those of its own nodes and process, which add up."""

    script: dict[str, Any]
    lookups: _Lookups
    messages: int
    join_failures: int
    errors: int
    cpu_s: float
    peak_rss_mb: float


class _Jobs:
    """Stores or fetches, at most ``concurrency`` at a time, each with its own PRNG (its
    draws then do not depend on how the others went) and retried by the script."""

    def __init__(
        self, count: int, concurrency: int, seeds: random.Random, start: Callable[[int, int], None]
    ) -> None:
        self.rngs = [random.Random(seeds.getrandbits(64)) for _ in range(count)]
        self._queue = deque(range(count))
        self._start = start
        self._concurrency = concurrency
        self._left = count
        self._done = asyncio.Event()

    async def run(self) -> None:
        """Start the first ``concurrency`` jobs; returns when every job has finished."""
        for _ in range(min(self._concurrency, len(self._queue))):
            self._next()
        if self._left:
            await self._done.wait()

    def _next(self) -> None:
        if self._queue:
            self._start(self._queue.popleft(), 0)

    def finish(self) -> None:
        self._left -= 1
        self._next()
        if self._left == 0:
            self._done.set()


class Simulation:
    """One run of :class:`SimConfig`; :meth:`run` returns the :class:`SimReport`."""

    def __init__(self, config: SimConfig, *, progress: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._progress = progress
        self.clock = VirtualClock()
        seed_rng = random.Random(config.seed)
        self._key_rng = random.Random(seed_rng.getrandbits(64))
        self._node_rng = random.Random(seed_rng.getrandbits(64))
        self._arrival_rng = random.Random(seed_rng.getrandbits(64))
        self._session_rng = random.Random(seed_rng.getrandbits(64))
        self._work_rng = random.Random(seed_rng.getrandbits(64))
        self._loss_seeds = random.Random(seed_rng.getrandbits(64))
        self.kinds = KindRegistry([SIM_KIND])
        self.access = AccessPolicy()
        self.resolver: CertificateResolver = shared_resolver(OVERLAY, config.nodes)
        self.settings = NodeSettings(
            overlay_name=OVERLAY,
            overlay_reliability_timer=config.overlay_reliability_timer,
            bootstrap_nodes=tuple(self._address(i) for i in range(config.bootstrap_peers)),
            chord=ChordConfig(
                update_interval=config.update_interval,
                ping_interval=config.ping_interval,
                reactive=config.reactive,
                eviction_grace=config.eviction_grace,
            ),
            wire_context=self.kinds.wire_context(),
        )
        self.network = self._make_network(None)
        self._worker = 0
        self._sync: TimeSync | None = None
        self._worker_of: dict[str, int] = {}  # memory address -> worker running it
        self.nodes: list[SimNode] = []
        self.bootstraps: list[SimNode] = []
        self._ring: list[int] = []  # ground truth: sorted keys of the live, joined peers
        self._by_key: dict[int, SimNode] = {}
        self._outstanding: set[int] = set()  # joins waited for
        self._joins_settled = asyncio.Event()
        self._join_failures = 0
        self._failures = 0
        self._replacements = 0
        self._churning = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._lookups = _Lookups()
        self._pending_lookups: set[int] = set()
        self._lookup_answered = asyncio.Event()
        self._stored: list[_StoredValue] = []
        self._lost = 0
        self._store_jobs: _Jobs | None = None
        self._fetch_jobs: _Jobs | None = None
        self._ring_reports: list[tuple[int, int, int]] = []  # per worker: problems, fingers, peers
        self._ring_checked = asyncio.Event()
        self._loop: VirtualTimeLoop | None = None
        self._wall0 = time.perf_counter()

    def _make_network(self, sync: TimeSync | None) -> MemoryNetwork:
        config = self.config
        link_config = LinkConfig(keepalive_interval=config.keepalive)
        if config.loss > 0:
            return MemoryNetwork(
                self.clock,
                latency=config.latency,
                stream=False,
                config=link_config,
                loss=lambda src, dst: RandomLoss(config.loss, self._loss_seeds.getrandbits(32)),
                remote=sync,
            )
        # Lossless and without keepalives, the framing layer would only spend time.
        return MemoryNetwork(
            self.clock,
            latency=config.latency,
            config=link_config,
            framed=config.keepalive is not None,
            remote=sync,
        )

    # ================================================================ running

    def run(self) -> SimReport:
        """Run the whole simulation (each worker makes and closes its own event loop)."""
        wall0 = time.perf_counter()
        self._wall0 = wall0
        if self.config.workers == 1:
            parts = [self._run_worker(0, {})]
        else:
            results = fork_workers(self.config.workers, self._run_worker)
            parts = [r for r in results if isinstance(r, _WorkerFigures)]
            assert len(parts) == self.config.workers
        return self._report(parts, time.perf_counter() - wall0)

    def _run_worker(self, worker: int, channels: dict[int, Channel]) -> _WorkerFigures:
        cpu0 = time.process_time()
        self._worker = worker
        loop = VirtualTimeLoop(self.clock)
        self._loop = loop
        if channels:
            self._sync = TimeSync(
                worker, channels, self.clock, self.config.latency, self._worker_of.__getitem__, self._apply
            )
            self.network = self._make_network(self._sync)
            self._sync.deliver = self.network.deliver_remote
            loop.barrier = self._sync
        logged = _ErrorCounter()
        logging.getLogger("reload_core").addHandler(logged)
        thresholds = gc.get_threshold()
        # Thousands of nodes are millions of long-lived objects: frozen as they come
        # (see _new_node), the collector's full passes stop rescanning them all.
        gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
        try:
            script = loop.run_until_complete(self._main())
            if self._sync is not None:
                self._sync.finish()  # what is left to cancel is this worker's own
        finally:
            self._loop = None
            try:
                cancel_remaining(loop)
            finally:
                loop.close()
                gc.unfreeze()
                gc.set_threshold(*thresholds)
                logging.getLogger("reload_core").removeHandler(logged)
        return _WorkerFigures(
            script=script,
            lookups=self._lookups,
            messages=script.pop("messages"),
            join_failures=self._join_failures,
            errors=loop.errors + logged.count,
            cpu_s=time.process_time() - cpu0,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )

    def _report(self, parts: list[_WorkerFigures], wall_s: float) -> SimReport:
        cfg = self.config
        script = parts[0].script
        sent = script["lookups_sent"]
        abandoned = sum(p.lookups.abandoned for p in parts)
        succeeded = sum(p.lookups.succeeded for p in parts)
        hops = [h for p in parts for h in p.lookups.hops]
        latency_ms = [ms for p in parts for ms in p.lookups.latency_ms]
        node_seconds = script["node_seconds"]
        messages = sum(p.messages for p in parts)
        return SimReport(
            nodes=cfg.nodes,
            seed=cfg.seed,
            session_minutes=cfg.session_minutes,
            joined=script["joined"],
            join_failures=sum(p.join_failures for p in parts),
            ring_ok=script["ring_ok"],
            fingers_mean=script["fingers_mean"],
            lookups=sent - abandoned,
            lookup_success=succeeded / (sent - abandoned) if sent > abandoned else math.nan,
            hops_mean=sum(hops) / len(hops) if hops else math.nan,
            hops_p99=percentile(hops, 0.99),
            hops_reference=cfg.hops_reference,
            lookup_ms_p50=percentile(latency_ms, 0.50),
            lookup_ms_p99=percentile(latency_ms, 0.99),
            values_stored=script["values_stored"],
            data_lost=script["data_lost"],
            failures=script["failures"],
            replacements=script["replacements"],
            messages_per_node_per_s=messages / node_seconds if node_seconds else math.nan,
            simulated_s=script["simulated_s"],
            wall_s=wall_s,
            cpu_s=sum(p.cpu_s for p in parts),
            peak_rss_mb=sum(p.peak_rss_mb for p in parts),
            errors=sum(p.errors for p in parts),
        )

    async def _main(self) -> dict[str, Any]:
        cfg = self.config
        await self._start_bootstraps()
        self._say(f"{len(self.bootstraps)} bootstrap peers up")
        await self._arrivals(cfg.nodes - cfg.bootstrap_peers)
        self._say(f"{len(self._ring)} peers joined")
        await asyncio.sleep(cfg.settle)
        local = [s for s in self.live() if s.node is not None]
        self._note(
            ("ring", len(self.ring_problems()), sum(len(s.node.fingers) for s in local if s.node), len(local))
        )
        await self._ring_checked.wait()
        ring_ok = sum(r[0] for r in self._ring_reports) == 0
        peers = sum(r[2] for r in self._ring_reports)
        fingers_mean = sum(r[1] for r in self._ring_reports) / peers if peers else 0.0
        self._say(f"settled; ring {'correct' if ring_ok else 'NOT correct'}; workload starts")
        messages0, t0 = self.network.messages_sent, self.clock.time()
        live_area = _LiveArea(self, t0)
        if cfg.session_minutes is not None:
            self._start_churn()
        await self._store_values()
        self._say(f"{len(self._stored)} values stored")
        await self._run_lookups(cfg.duration)
        self._churning = False
        self._say(f"{self._lookups.sent} lookups done, {self._failures} failures; fetching")
        live_area.stop()
        messages = self.network.messages_sent - messages0
        await self._fetch_values()
        return {
            "joined": sum(1 for s in self.nodes if s.joined),
            "ring_ok": ring_ok,
            "fingers_mean": fingers_mean,
            "lookups_sent": self._lookups.sent,
            "values_stored": len(self._stored),
            "data_lost": self._lost,
            "failures": self._failures,
            "replacements": self._replacements,
            "node_seconds": live_area.node_seconds,
            "simulated_s": self.clock.time(),
            "messages": messages,
        }

    def _say(self, text: str) -> None:
        if self._progress is not None and self._worker == 0:
            wall = time.perf_counter() - self._wall0
            self._progress(f"[{self.clock.time():8.1f} s simulated, {wall:7.1f} s wall] {text}")

    # ================================================================ notes

    def _note(self, note: Note) -> None:
        """Something only this worker saw, for every worker's script (module docstring)."""
        if self._sync is None:
            self._apply(note)
        else:
            self._sync.note(note)

    def _apply(self, note: Note) -> None:
        kind, *args = note
        if kind == "joined":
            self._on_joined(self.nodes[args[0]])
        elif kind == "gave_up":
            self._settle_join(self.nodes[args[0]])
        elif kind == "looked_up":
            self._pending_lookups.discard(args[0])
            self._lookup_answered.set()
        elif kind == "stored":
            self._on_stored(*args)
        elif kind == "fetched":
            self._on_fetched(*args)
        elif kind == "ring":
            self._ring_reports.append(tuple(args))
            if len(self._ring_reports) == self.config.workers:
                self._ring_checked.set()
        else:
            raise ValueError(f"unknown note {kind!r}")

    # ================================================================ peers

    @staticmethod
    def _address(index: int) -> IpAddressPort:
        return IpAddressPort(f"10.{(index >> 16) & 0xFF}.{(index >> 8) & 0xFF}.{index & 0xFF}", PORT)

    def live(self) -> list[SimNode]:
        """The live peers that have joined, in ring order."""
        return [self._by_key[k] for k in self._ring]

    def _new_node(self, *, bootstrap: bool = False, identity: SimIdentity | None = None) -> SimNode:
        """A new peer; every worker draws its keys and seeds, its own worker runs it."""
        index = len(self.nodes)
        if identity is None:
            identity = SimIdentity.draw(self._key_rng, OVERLAY, index, self.config.key_kind)
        seed = self._node_rng.getrandbits(64)
        sim_node = SimNode(index, identity, random.Random(seed ^ 1), self.clock.time(), bootstrap=bootstrap)
        self.nodes.append(sim_node)
        address = self._address(index)
        worker = index % self.config.workers
        self._worker_of[memory_address(address)] = worker
        if worker != self._worker:
            return sim_node
        if len(self._worker_of) % GC_FREEZE_EVERY == 0:
            gc.freeze()
        node = Node(
            identity.signer,
            self.resolver,
            self.settings,
            memory_transport(self.network, address),
            clock=self.clock,
            rng=random.Random(seed),
            wall_clock=lambda: WALL_EPOCH + self.clock.time(),
        )
        sim_node.node = node
        sim_node.storage = Storage.for_peer(
            node, self.resolver, self.kinds, access=self.access, publish_certificate=False
        )
        node.add_listener(lambda event: self._on_event(sim_node, event))
        _drive(node.start())
        return sim_node

    def _on_event(self, sim_node: SimNode, event: NodeEvent) -> None:
        if not isinstance(event, StateChanged) or sim_node.failed:
            return
        if event.state == "joined" and not sim_node.join_noted:
            sim_node.join_noted = True
            self._note(("joined", sim_node.index))
        elif event.state == "idle" and not sim_node.join_noted and sim_node.join_attempts:
            self._join_failures += 1
            if sim_node.join_attempts < self.config.max_join_attempts:
                delay = JOIN_BACKOFF * sim_node.join_attempts
                self.clock.call_later(delay, lambda: self._begin_join(sim_node))
            else:
                log.warning("node %d gave up joining", sim_node.index)
                self._note(("gave_up", sim_node.index))

    def _on_joined(self, sim_node: SimNode) -> None:
        if not sim_node.failed and not sim_node.joined:
            sim_node.joined = True
            key = sim_node.key
            bisect.insort(self._ring, key)
            self._by_key[key] = sim_node
        self._settle_join(sim_node)

    def _settle_join(self, sim_node: SimNode) -> None:
        self._outstanding.discard(sim_node.index)
        if not self._outstanding:
            self._joins_settled.set()

    async def _joins_done(self) -> None:
        if self._outstanding:
            self._joins_settled.clear()
            await self._joins_settled.wait()

    def _begin_join(self, sim_node: SimNode, via: IpAddressPort | None = None) -> None:
        if sim_node.node is None or sim_node.failed or sim_node.join_noted:
            return
        sim_node.join_attempts += 1
        bootstrap = via or sim_node.rng.choice(self.settings.bootstrap_nodes)
        try:
            sim_node.node.begin_join(bootstrap)
        except JoinError as exc:
            log.info("node %d cannot join now: %s", sim_node.index, exc)

    async def _start_bootstraps(self) -> None:
        first = self._new_node(bootstrap=True)
        self.bootstraps.append(first)
        self._outstanding.add(first.index)
        if first.node is not None:
            first.node.start_alone()
        await self._joins_done()
        for _ in range(1, self.config.bootstrap_peers):
            sim_node = self._new_node(bootstrap=True)
            self.bootstraps.append(sim_node)
            self._outstanding.add(sim_node.index)
            self._begin_join(sim_node, via=self._address(first.index))
            await self._joins_done()

    async def _arrivals(self, count: int) -> None:
        """``count`` peers join as a Poisson process; returns once each has joined or given up."""
        if count <= 0:
            return
        step = max(1, count // 10)
        for number in range(1, count + 1):
            # A young overlay grows by at most a tenth of its size per second (newcomers
            # hear of it from its members), up to the configured rate.
            rate = min(self.config.arrival_rate, max(1.0, len(self._ring) * GROWTH_PER_SECOND))
            await asyncio.sleep(self._arrival_rng.expovariate(rate))
            sim_node = self._new_node()
            self._outstanding.add(sim_node.index)
            self._begin_join(sim_node)
            if number % step == 0:
                self._say(f"{number}/{count} arrived, {len(self._ring)} joined")
        await self._joins_done()

    # ================================================================ churn

    def _session_time(self) -> float:
        """Exponential with median M minutes: rate ln 2 / M."""
        assert self.config.session_minutes is not None
        return self._session_rng.expovariate(math.log(2) / (self.config.session_minutes * 60.0))

    def _start_churn(self) -> None:
        self._churning = True
        for sim_node in self.nodes:
            if not sim_node.bootstrap and not sim_node.failed:
                self._schedule_failure(sim_node)

    def _schedule_failure(self, sim_node: SimNode) -> None:
        assert self._loop is not None
        sim_node.fail_timer = self._loop.call_later(self._session_time(), lambda: self._fail(sim_node))

    def _fail(self, sim_node: SimNode) -> None:
        if not self._churning or sim_node.failed:
            return
        sim_node.failed = True
        self._failures += 1
        if sim_node.joined:
            key = sim_node.key
            i = bisect.bisect_left(self._ring, key)
            if i < len(self._ring) and self._ring[i] == key:
                del self._ring[i]
            self._by_key.pop(key, None)
        silent = self._session_rng.random() < self.config.silent_failures
        if sim_node.node is not None:
            transport = sim_node.node.transport
            assert isinstance(transport, MemoryTransport)
            transport.endpoint.crash(fin=not silent)
            _drive(sim_node.node.close())
        self._spawn(self._replace(sim_node))

    async def _replace(self, failed: SimNode) -> None:
        """A new peer takes the failed one's place, with a session of its own; with
        ``restarts`` the failed peer itself comes back after a pause, with its Node-ID
        and without its data."""
        identity = None
        if self.config.restarts:
            await asyncio.sleep(self._session_rng.uniform(*RESTART_PAUSE))
            identity = failed.identity
        sim_node = self._new_node(identity=identity)
        self._replacements += 1
        self._begin_join(sim_node)
        if self._churning:
            self._schedule_failure(sim_node)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ================================================================ workload

    def _random_peer(self, rng: random.Random) -> SimNode:
        return self._by_key[self._ring[rng.randrange(len(self._ring))]]

    def responsible(self, key: int) -> int:
        """The ground truth: the live joined peer responsible for ``key`` (§10.1: the first
        peer at or after it, clockwise)."""
        i = bisect.bisect_left(self._ring, key)
        return self._ring[i % len(self._ring)]

    async def _store_values(self) -> None:
        self._store_jobs = _Jobs(self.config.values, STORE_CONCURRENCY, self._work_rng, self._store_attempt)
        await self._store_jobs.run()

    def _store_attempt(self, number: int, first: int) -> None:
        """Value ``number`` goes to a random peer's next NODE-MULTIPLE Resource-ID."""
        assert self._store_jobs is not None
        for attempt in range(first, FETCH_ATTEMPTS):
            owner = self._random_peer(self._store_jobs.rngs[number])
            if owner.values >= (SIM_KIND.max_node_multiple or 1):
                continue
            owner.values += 1
            resource = hash_resource(owner.identity.node_id + bytes([owner.values]))
            value = f"value {number} from node {owner.index}".encode()
            if owner.storage is not None:
                self._spawn(self._store(owner.storage, number, attempt, resource, value))
            return
        self._store_jobs.finish()  # no peer had room: not stored

    async def _store(
        self, storage: Storage, number: int, attempt: int, resource: bytes, value: bytes
    ) -> None:
        try:
            await storage.client.store(
                resource, SIM_KIND.kind_id, [DataValue(True, value)], lifetime=VALUE_LIFETIME
            )
        except (StorageError, NodeError) as exc:
            log.info("store %d failed: %s", number, exc)
            self._note(("stored", number, attempt, None, None))
        else:
            self._note(("stored", number, attempt, resource, value))

    def _on_stored(self, number: int, attempt: int, resource: bytes | None, value: bytes | None) -> None:
        assert self._store_jobs is not None
        if resource is not None and value is not None:
            self._stored.append(_StoredValue(resource, value))
            self._store_jobs.finish()
        else:
            self._store_attempt(number, attempt + 1)

    async def _run_lookups(self, duration: float) -> None:
        """Lookups as a Poisson process over ``duration``; returns after ``duration`` and
        once every lookup has its answer."""
        cfg = self.config
        end = self.clock.time() + duration
        if cfg.lookups:
            rate = cfg.lookups / duration
            for number in range(cfg.lookups):
                await asyncio.sleep(self._work_rng.expovariate(rate))
                if self.clock.time() >= end:
                    break
                self._pending_lookups.add(number)
                self._lookup(number)
        if self.clock.time() < end:
            await asyncio.sleep(end - self.clock.time())
        while self._pending_lookups:
            self._lookup_answered.clear()
            await self._lookup_answered.wait()

    def _lookup(self, number: int) -> None:
        source = self._random_peer(self._work_rng)
        key = self._work_rng.getrandbits(8 * self.settings.node_id_length)
        expected = self.responsible(key)
        sent = self.clock.time()
        self._lookups.sent += 1
        if source.node is None:
            return  # its worker sends it, and notes the answer

        def answered(outcome: Outcome) -> None:
            self._note(("looked_up", number))
            if source.failed:
                self._lookups.abandoned += 1  # closing the node failed it: no verdict on routing
                return
            if not isinstance(outcome, Answer):
                return
            responder = int.from_bytes(outcome.signer_node_id, "big")
            if responder != expected and responder != self.responsible(key):
                return
            lk = self._lookups
            lk.succeeded += 1
            # Links crossed: the answer's Via List names every peer between (symmetric
            # routing, §6.1.2); a lookup the source answers itself crossed none.
            via = outcome.message.forwarding_header.via_list
            lk.hops.append(0 if responder == source.key else len(via) + 1)
            lk.latency_ms.append((self.clock.time() - sent) * 1000.0)

        target = NodeId(key).to_bytes()
        source.node.send_request((ResourceDestination(target),), MessageCode.ping_req, PingReq(), answered)

    async def _fetch_values(self) -> None:
        """Fetch every stored value from a random peer; ``_lost`` counts those no attempt found."""
        self._fetch_jobs = _Jobs(len(self._stored), STORE_CONCURRENCY, self._work_rng, self._fetch_attempt)
        await self._fetch_jobs.run()

    def _fetch_attempt(self, number: int, attempt: int) -> None:
        assert self._fetch_jobs is not None
        peer = self._random_peer(self._fetch_jobs.rngs[number])
        if peer.storage is not None:
            self._spawn(self._fetch(peer.storage, number, attempt))

    async def _fetch(self, storage: Storage, number: int, attempt: int) -> None:
        stored = self._stored[number]
        found = False
        try:
            kinds = await storage.client.fetch(stored.resource, StoredDataSpecifier.single(SIM_KIND.kind_id))
        except (StorageError, NodeError) as exc:
            log.info("fetch failed: %s", exc)
        else:
            found = any(
                isinstance(data.value, DataValue) and data.value.value == stored.value
                for fetched in kinds
                for data in fetched.existing
            )
        self._note(("fetched", number, attempt, found))

    def _on_fetched(self, number: int, attempt: int, found: bool) -> None:
        assert self._fetch_jobs is not None and self._loop is not None
        if not found and attempt + 1 < FETCH_ATTEMPTS:
            self._loop.call_later(FETCH_RETRY, self._fetch_attempt, number, attempt + 1)
            return
        if not found:
            self._lost += 1
        self._fetch_jobs.finish()

    # ================================================================ checks

    def ring_problems(self) -> list[str]:
        """This worker's peers whose successor or predecessor lists differ from the ground
        truth (§10.1)."""
        ring = [NodeId(k).to_bytes() for k in self._ring]
        n = len(ring)
        size = self.settings.chord.neighbor_count
        count = min(size, n - 1)
        problems: list[str] = []
        for i, key in enumerate(self._ring):
            node = self._by_key[key].node
            if node is None:
                continue
            succ = tuple(ring[(i + j) % n] for j in range(1, count + 1))
            pred = tuple(ring[(i - j) % n] for j in range(1, count + 1))
            if node.successors != succ or node.predecessors != pred:
                problems.append(node.node_id.hex()[:8])
        return problems


class _ErrorCounter(logging.Handler):
    """Counts what the node code logs as errors: it catches its own exceptions (one bad
    message must not take a node down), so they show up here rather than in the loop."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class _LiveArea:
    """Integrates the number of live peers over time (node-seconds), for per-node rates."""

    def __init__(self, sim: Simulation, start: float) -> None:
        self._sim = sim
        self._last = start
        self._count = len(sim._ring)
        self.node_seconds = 0.0
        self._remove: Callable[[], None] | None = None
        self._sample()

    def _sample(self) -> None:
        now = self._sim.clock.time()
        self.node_seconds += self._count * (now - self._last)
        self._last = now
        self._count = len(self._sim._ring)
        self._timer = self._sim.clock.call_later(1.0, self._sample)

    def stop(self) -> None:
        self._timer.cancel()
        now = self._sim.clock.time()
        self.node_seconds += self._count * (now - self._last)


def _drive(work: Coroutine[Any, Any, Any]) -> None:
    """Run ``work`` to its end now, before anything else runs. Starting and closing a node
    over in-memory links never suspends; a node closes at once because a crashed process
    runs no more code, and a timer of its firing first would act for it."""
    try:
        work.send(None)
    except StopIteration:
        return
    work.close()
    raise RuntimeError("a node's start or close suspended: the simulator needs memory links")


def run_simulation(config: SimConfig) -> SimReport:
    """Run one simulation; see :class:`Simulation`."""
    return Simulation(config).run()


__all__ = ["OVERLAY", "SIM_KIND", "SimNode", "Simulation", "run_simulation"]

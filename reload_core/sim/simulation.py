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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

from reload_core.config.document import AccessControl
from reload_core.ids import NodeId
from reload_core.ids import resource_id as hash_resource
from reload_core.links.base import VirtualClock
from reload_core.links.framing import LinkConfig
from reload_core.links.memory import MemoryNetwork, RandomLoss
from reload_core.node import Answer, Node, NodeEvent, NodeSettings, Outcome, StateChanged, memory_transport
from reload_core.node.errors import JoinError, NodeError
from reload_core.node.transport import MemoryTransport
from reload_core.security.signing import CertificateResolver, Signer
from reload_core.sim.config import SimConfig, SimReport, percentile
from reload_core.sim.identities import make_signer, shared_resolver
from reload_core.sim.loop import VirtualTimeLoop, cancel_remaining
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
    """One simulated peer and what the simulation knows about it."""

    index: int
    node: Node
    storage: Storage
    created: float
    bootstrap: bool = False
    joined: bool = False
    failed: bool = False
    join_attempts: int = 0
    values: int = 0  # NODE-MULTIPLE indices used so far
    fail_timer: asyncio.TimerHandle | None = None

    @property
    def key(self) -> int:
        return int.from_bytes(self.node.node_id, "big")


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
        link_config = LinkConfig(keepalive_interval=config.keepalive)
        if config.loss > 0:
            self.network = MemoryNetwork(
                self.clock,
                latency=config.latency,
                stream=False,
                config=link_config,
                loss=lambda src, dst: RandomLoss(config.loss, self._loss_seeds.getrandbits(32)),
            )
        else:
            # Lossless and without keepalives, the framing layer would only spend time.
            self.network = MemoryNetwork(
                self.clock, latency=config.latency, config=link_config, framed=config.keepalive is not None
            )
        self.nodes: list[SimNode] = []
        self.bootstraps: list[SimNode] = []
        self._ring: list[int] = []  # ground truth: sorted keys of the live, joined peers
        self._by_key: dict[int, SimNode] = {}
        self._joined_event = asyncio.Event()
        self._waiting_for = 0
        self._join_failures = 0
        self._failures = 0
        self._replacements = 0
        self._churning = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._lookups = _Lookups()
        self._stored: list[_StoredValue] = []
        self._loop: VirtualTimeLoop | None = None
        self._wall0 = time.perf_counter()

    # ================================================================ running

    def run(self) -> SimReport:
        """Run the whole simulation (it makes and closes its own event loop)."""
        wall0, cpu0 = time.perf_counter(), time.process_time()
        self._wall0 = wall0
        loop = VirtualTimeLoop(self.clock)
        self._loop = loop
        logged = _ErrorCounter()
        logging.getLogger("reload_core").addHandler(logged)
        thresholds = gc.get_threshold()
        # Thousands of nodes are millions of long-lived objects: frozen as they come
        # (see _new_node), the collector's full passes stop rescanning them all.
        gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
        try:
            report = loop.run_until_complete(self._main(wall0, cpu0))
        finally:
            self._loop = None
            try:
                cancel_remaining(loop)
            finally:
                loop.close()
                gc.unfreeze()
                gc.set_threshold(*thresholds)
                logging.getLogger("reload_core").removeHandler(logged)
        return replace(report, errors=report.errors + logged.count)

    async def _main(self, wall0: float, cpu0: float) -> SimReport:
        cfg = self.config
        await self._start_bootstraps()
        self._say(f"{len(self.bootstraps)} bootstrap peers up")
        await self._arrivals(cfg.nodes - cfg.bootstrap_peers)
        self._say(f"{len(self._ring)} peers joined")
        await asyncio.sleep(cfg.settle)
        ring_ok = self.ring_problems() == []
        self._say(f"settled; ring {'correct' if ring_ok else 'NOT correct'}; workload starts")
        fingers = [len(s.node.fingers) for s in self.live()]
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
        node_seconds = live_area.node_seconds
        lost = await self._fetch_values()
        lk = self._lookups
        assert self._loop is not None
        return SimReport(
            nodes=cfg.nodes,
            seed=cfg.seed,
            session_minutes=cfg.session_minutes,
            joined=sum(1 for s in self.nodes if s.joined),
            join_failures=self._join_failures,
            ring_ok=ring_ok,
            fingers_mean=sum(fingers) / len(fingers) if fingers else 0.0,
            lookups=lk.sent - lk.abandoned,
            lookup_success=lk.succeeded / (lk.sent - lk.abandoned) if lk.sent > lk.abandoned else math.nan,
            hops_mean=sum(lk.hops) / len(lk.hops) if lk.hops else math.nan,
            hops_p99=percentile(lk.hops, 0.99),
            hops_reference=cfg.hops_reference,
            lookup_ms_p50=percentile(lk.latency_ms, 0.50),
            lookup_ms_p99=percentile(lk.latency_ms, 0.99),
            values_stored=len(self._stored),
            data_lost=lost,
            failures=self._failures,
            replacements=self._replacements,
            messages_per_node_per_s=messages / node_seconds if node_seconds else math.nan,
            simulated_s=self.clock.time(),
            wall_s=time.perf_counter() - wall0,
            cpu_s=time.process_time() - cpu0,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            errors=self._loop.errors,
        )

    def _say(self, text: str) -> None:
        if self._progress is not None:
            wall = time.perf_counter() - self._wall0
            self._progress(f"[{self.clock.time():8.1f} s simulated, {wall:7.1f} s wall] {text}")

    # ================================================================ peers

    @staticmethod
    def _address(index: int) -> IpAddressPort:
        return IpAddressPort(f"10.{(index >> 16) & 0xFF}.{(index >> 8) & 0xFF}.{index & 0xFF}", PORT)

    def live(self) -> list[SimNode]:
        """The live peers that have joined, in ring order."""
        return [self._by_key[k] for k in self._ring]

    async def _new_node(self, *, bootstrap: bool = False, signer: Signer | None = None) -> SimNode:
        index = len(self.nodes)
        if index % GC_FREEZE_EVERY == 0:
            gc.freeze()
        if signer is None:
            signer = make_signer(self._key_rng, OVERLAY, index, self.config.key_kind)
        node = Node(
            signer,
            self.resolver,
            self.settings,
            memory_transport(self.network, self._address(index)),
            clock=self.clock,
            rng=random.Random(self._node_rng.getrandbits(64)),
            wall_clock=lambda: WALL_EPOCH + self.clock.time(),
        )
        storage = Storage.for_peer(
            node, self.resolver, self.kinds, access=self.access, publish_certificate=False
        )
        sim_node = SimNode(index, node, storage, self.clock.time(), bootstrap=bootstrap)
        self.nodes.append(sim_node)
        node.add_listener(lambda event: self._on_event(sim_node, event))
        await node.start()
        return sim_node

    def _on_event(self, sim_node: SimNode, event: NodeEvent) -> None:
        if not isinstance(event, StateChanged) or sim_node.failed:
            return
        if event.state == "joined" and not sim_node.joined:
            sim_node.joined = True
            key = sim_node.key
            bisect.insort(self._ring, key)
            self._by_key[key] = sim_node
            self._waiting_for -= 1
            if self._waiting_for <= 0:
                self._joined_event.set()
        elif event.state == "idle" and not sim_node.joined and sim_node.join_attempts:
            self._join_failures += 1
            if sim_node.join_attempts < self.config.max_join_attempts:
                delay = JOIN_BACKOFF * sim_node.join_attempts
                self.clock.call_later(delay, lambda: self._begin_join(sim_node))
            else:
                log.warning("node %d gave up joining", sim_node.index)
                self._waiting_for -= 1
                if self._waiting_for <= 0:
                    self._joined_event.set()

    def _begin_join(self, sim_node: SimNode) -> None:
        if sim_node.failed or sim_node.joined:
            return
        sim_node.join_attempts += 1
        bootstrap = self._arrival_rng.choice(self.settings.bootstrap_nodes)
        try:
            sim_node.node.begin_join(bootstrap)
        except JoinError as exc:
            log.info("node %d cannot join now: %s", sim_node.index, exc)

    async def _start_bootstraps(self) -> None:
        first = await self._new_node(bootstrap=True)
        self.bootstraps.append(first)
        self._waiting_for = 1
        self._joined_event.clear()
        first.node.start_alone()
        for _ in range(1, self.config.bootstrap_peers):
            sim_node = await self._new_node(bootstrap=True)
            self.bootstraps.append(sim_node)
            await self._join_all([sim_node], via=first.node)

    async def _join_all(self, joining: list[SimNode], via: Node) -> None:
        self._waiting_for = len(joining)
        self._joined_event.clear()
        assert via.address is not None
        for sim_node in joining:
            sim_node.join_attempts += 1
            sim_node.node.begin_join(via.address)
        await self._joined_event.wait()

    async def _arrivals(self, count: int) -> None:
        """``count`` peers join as a Poisson process; returns once each has joined or given up."""
        if count <= 0:
            return
        self._waiting_for = count
        self._joined_event.clear()
        step = max(1, count // 10)
        for number in range(1, count + 1):
            # A young overlay grows by at most a tenth of its size per second (newcomers
            # hear of it from its members), up to the configured rate.
            rate = min(self.config.arrival_rate, max(1.0, len(self._ring) * GROWTH_PER_SECOND))
            await asyncio.sleep(self._arrival_rng.expovariate(rate))
            sim_node = await self._new_node()
            self._begin_join(sim_node)
            if number % step == 0:
                self._say(f"{number}/{count} arrived, {len(self._ring)} joined")
        await self._joined_event.wait()

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
        transport = sim_node.node.transport
        assert isinstance(transport, MemoryTransport)
        transport.endpoint.crash(fin=not silent)
        _stop_now(sim_node.node)
        self._spawn(self._replace(sim_node))

    async def _replace(self, failed: SimNode) -> None:
        """A new peer takes the failed one's place, with a session of its own; with
        ``restarts`` the failed peer itself comes back after a pause, with its Node-ID
        and without its data."""
        signer = None
        if self.config.restarts:
            await asyncio.sleep(self._session_rng.uniform(*RESTART_PAUSE))
            signer = failed.node.signer
        sim_node = await self._new_node(signer=signer)
        self._replacements += 1
        self._begin_join(sim_node)
        if self._churning:
            self._schedule_failure(sim_node)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ================================================================ workload

    def _random_peer(self) -> SimNode:
        return self._by_key[self._ring[self._work_rng.randrange(len(self._ring))]]

    def responsible(self, key: int) -> int:
        """The ground truth: the live joined peer responsible for ``key`` (§10.1: the first
        peer at or after it, clockwise)."""
        i = bisect.bisect_left(self._ring, key)
        return self._ring[i % len(self._ring)]

    async def _store_values(self) -> None:
        limit = asyncio.Semaphore(STORE_CONCURRENCY)

        async def store_one(number: int) -> None:
            async with limit:
                for _ in range(FETCH_ATTEMPTS):
                    owner = self._random_peer()
                    if owner.values >= (SIM_KIND.max_node_multiple or 1):
                        continue
                    owner.values += 1
                    resource = hash_resource(owner.node.node_id + bytes([owner.values]))
                    value = f"value {number} from node {owner.index}".encode()
                    try:
                        await owner.storage.client.store(
                            resource, SIM_KIND.kind_id, [DataValue(True, value)], lifetime=VALUE_LIFETIME
                        )
                    except (StorageError, NodeError) as exc:
                        log.info("store %d failed: %s", number, exc)
                        continue
                    self._stored.append(_StoredValue(resource, value))
                    return

        await asyncio.gather(*(store_one(n) for n in range(self.config.values)))

    async def _run_lookups(self, duration: float) -> None:
        """Lookups as a Poisson process over ``duration``; returns after ``duration`` and
        once every lookup has its answer."""
        cfg = self.config
        end = self.clock.time() + duration
        pending: set[int] = set()
        done = asyncio.Event()
        if cfg.lookups:
            rate = cfg.lookups / duration
            for number in range(cfg.lookups):
                await asyncio.sleep(self._work_rng.expovariate(rate))
                if self.clock.time() >= end:
                    break
                pending.add(number)
                self._lookup(number, pending, done)
        if self.clock.time() < end:
            await asyncio.sleep(end - self.clock.time())
        while pending:
            done.clear()
            await done.wait()

    def _lookup(self, number: int, pending: set[int], done: asyncio.Event) -> None:
        source = self._random_peer()
        key = self._work_rng.getrandbits(8 * self.settings.node_id_length)
        expected = self.responsible(key)
        sent = self.clock.time()
        self._lookups.sent += 1

        def answered(outcome: Outcome) -> None:
            pending.discard(number)
            done.set()
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

    async def _fetch_values(self) -> int:
        """Fetch every stored value from a random peer; how many no attempt found."""
        limit = asyncio.Semaphore(STORE_CONCURRENCY)

        async def fetch_one(stored: _StoredValue) -> bool:
            async with limit:
                for attempt in range(FETCH_ATTEMPTS):
                    if attempt:
                        await asyncio.sleep(FETCH_RETRY)
                    peer = self._random_peer()
                    try:
                        kinds = await peer.storage.client.fetch(
                            stored.resource, StoredDataSpecifier.single(SIM_KIND.kind_id)
                        )
                    except (StorageError, NodeError) as exc:
                        log.info("fetch failed: %s", exc)
                        continue
                    for fetched in kinds:
                        for data in fetched.existing:
                            value = data.value
                            if isinstance(value, DataValue) and value.value == stored.value:
                                return True
                return False

        found = await asyncio.gather(*(fetch_one(s) for s in self._stored))
        return sum(1 for ok in found if not ok)

    # ================================================================ checks

    def ring_problems(self) -> list[str]:
        """Peers whose successor or predecessor lists differ from the ground truth (§10.1)."""
        ring = [NodeId(k).to_bytes() for k in self._ring]
        n = len(ring)
        size = self.settings.chord.neighbor_count
        count = min(size, n - 1)
        problems: list[str] = []
        for i, key in enumerate(self._ring):
            node = self._by_key[key].node
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


def _stop_now(node: Node) -> None:
    """Close ``node`` before anything else runs: a crashed process runs no more code, and
    a timer of its firing first would act for it. Over in-memory links :meth:`Node.close`
    never suspends, so driving its coroutine once runs it to the end."""
    closing = node.close()
    try:
        closing.send(None)
    except StopIteration:
        return
    closing.close()  # it did suspend (not a memory transport): what is left is moot here


def run_simulation(config: SimConfig) -> SimReport:
    """Run one simulation; see :class:`Simulation`."""
    return Simulation(config).run()


__all__ = ["OVERLAY", "SIM_KIND", "SimNode", "Simulation", "run_simulation"]

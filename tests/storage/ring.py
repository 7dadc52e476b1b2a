"""Rings of storage peers for the tests: in-memory links (or real TLS) with the truth to
check replica placement against."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from reload_core.links.base import AsyncioClock
from reload_core.links.memory import MemoryNetwork
from reload_core.node import Node, NodeSettings, memory_transport
from reload_core.node.transport import TransportFactory
from reload_core.storage import AccessPolicy, KindRegistry, Quota, Storage
from reload_core.storage.placement import everything
from reload_core.topology.config import ChordConfig
from reload_core.wire.addresses import IpAddressPort

from .support import OVERLAY, Identity, SelfSigned, TestCA, make_kinds


def settings(kinds: KindRegistry, update_interval: float = 600.0, **overrides: object) -> NodeSettings:
    values: dict[str, object] = {
        "overlay_name": OVERLAY,
        "overlay_reliability_timer": 1.0,
        "chord": ChordConfig(update_interval=update_interval, ping_interval=3600.0, successor_holddown=0.2),
        "wire_context": kinds.wire_context(),
    }
    values.update(overrides)
    return NodeSettings(**values)  # type: ignore[arg-type]


def responsible(ring: Sequence[bytes], key: bytes) -> bytes:
    """The first Node-ID at or after ``key`` (§10.1)."""
    ordered = sorted(ring)
    return next((n for n in ordered if n >= key), ordered[0])


def replica_set(ring: Sequence[bytes], key: bytes, copies: int = 3) -> list[bytes]:
    """The responsible peer and its next successors (§10.4), from the true ring."""
    ordered = sorted(ring)
    i = ordered.index(responsible(ordered, key))
    return [ordered[(i + j) % len(ordered)] for j in range(min(copies, len(ordered)))]


def ring_converged(nodes: Sequence[Node]) -> bool:
    ordered = sorted(n.node_id for n in nodes)
    count = min(3, len(ordered) - 1)
    for n in nodes:
        i = ordered.index(n.node_id)
        succ = tuple(ordered[(i + j) % len(ordered)] for j in range(1, count + 1))
        pred = tuple(ordered[(i - j) % len(ordered)] for j in range(1, count + 1))
        if not n.is_joined or n.successors != succ or n.predecessors != pred:
            return False
    return True


class StorageRing:
    """Storage peers on one in-memory network (or over TLS with ``transport``); everything
    started here is closed by :meth:`close`."""

    def __init__(
        self,
        ca: TestCA | SelfSigned,
        kinds: KindRegistry | None = None,
        *,
        quota: Quota | None = None,
        transport: Callable[[StorageRing, object], TransportFactory] | None = None,
        update_interval: float = 600.0,
        refresh_interval: float | None = None,
        access: AccessPolicy | None = None,
        prepare: Callable[[Node, Identity], None] | None = None,
        peer_settings: dict[str, object] | None = None,
    ) -> None:
        """``access``: the storing peers' policy (default: the plain §7.3 one);
        ``prepare(node, identity)``: called on each node built, before it starts;
        ``peer_settings``: NodeSettings overrides for the peers (clients keep the defaults)."""
        self.ca = ca
        self.kinds = kinds or make_kinds()
        self.quota = quota
        self.clock = AsyncioClock()
        self.network = MemoryNetwork(self.clock, latency=0.0005)
        self.transport = transport
        self.update_interval = update_interval
        self.refresh_interval = refresh_interval
        self.access = access
        self.prepare = prepare
        self.peer_settings = peer_settings or {}
        self.peers: list[Storage] = []
        self.all: list[Storage] = []
        self._host = 0
        self._changed = asyncio.Event()

    def _poke(self, *_: object) -> None:
        self._changed.set()

    def _address(self) -> IpAddressPort:
        self._host += 1
        return IpAddressPort(f"10.1.{self._host // 250}.{self._host % 250 + 1}", 6084)

    async def new_storage(self, user: str | None = None, *, peer: bool = True) -> Storage:
        identity = self.ca.identity(user or f"peer{self._host}@{OVERLAY}")
        resolver = self.ca.resolver()
        factory = (
            self.transport(self, identity)
            if self.transport is not None
            else memory_transport(self.network, self._address())
        )
        overrides = self.peer_settings if peer else {}
        node = Node(
            identity.signer,
            resolver,
            settings(self.kinds, self.update_interval, **overrides),
            factory,
            clock=self.clock,
        )
        if self.prepare is not None:
            self.prepare(node, identity)
        if peer:
            storage = Storage.for_peer(
                node,
                resolver,
                self.kinds,
                access=self.access or AccessPolicy(),
                quota=self.quota,
                refresh_interval=self.refresh_interval,
            )
            assert storage.replicator is not None
            storage.replicator.add_listener(self._poke)
        else:
            storage = Storage.for_client(node, resolver, self.kinds)
        node.add_listener(self._poke)
        self.all.append(storage)
        await node.start()
        return storage

    async def first(self) -> Storage:
        s = await self.new_storage()
        s.node.start_alone()
        self.peers.append(s)
        return s

    async def join(self, via: Storage | None = None) -> Storage:
        return await self.join_as(None, via)

    async def join_as(self, user: str | None, via: Storage | None = None) -> Storage:
        s = await self.new_storage(user)
        bootstrap = (via or self.peers[0]).node.address
        assert bootstrap is not None
        await s.node.join([bootstrap], timeout=20.0)
        self.peers.append(s)
        return s

    async def client(self) -> Storage:
        s = await self.new_storage(peer=False)
        bootstrap = self.peers[0].node.address
        assert bootstrap is not None
        await s.node.connect_as_client([bootstrap], timeout=20.0)
        return s

    @property
    def nodes(self) -> list[Node]:
        return [s.node for s in self.peers]

    def by_id(self, node_id: bytes) -> Storage:
        return next(s for s in self.peers if s.node.node_id == node_id)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait, on node and replication events, until ``predicate()`` holds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                if predicate():
                    return
                try:
                    await asyncio.wait_for(self._changed.wait(), 0.5)
                except TimeoutError:
                    pass  # timers (hold-downs, expiry) act without events: look again

    def idle(self) -> bool:
        return all(s.replicator is None or not s.replicator.busy for s in self.peers)

    async def converge(self, timeout: float = 20.0) -> None:
        await self.wait_for(lambda: ring_converged(self.nodes) and self.idle(), timeout)

    def holders(self, resource: bytes, kind: int) -> set[bytes]:
        """Peers whose store has a live value of ``kind`` at ``resource``."""
        out: set[bytes] = set()
        for s in self.peers:
            assert s.store is not None
            now = s.node.clock.time()
            spec = everything(kind, self.kinds[kind].data_model)
            (got,) = s.store.fetch(resource, [spec], now)
            if any(v.alive(now) for v in got.values):
                out.add(s.node.node_id)
        return out

    def misplaced(self, placements: Sequence[tuple[bytes, int]]) -> list[str]:
        """Values not on every member of their true replica set."""
        ring = [s.node.node_id for s in self.peers]
        errors = []
        for resource, kind in placements:
            want = set(replica_set(ring, resource))
            have = self.holders(resource, kind)
            if not want <= have:
                errors.append(f"{resource.hex()[:8]}: missing on {[n.hex()[:8] for n in want - have]}")
        return errors

    async def settle(self, placements: Sequence[tuple[bytes, int]], timeout: float = 20.0) -> None:
        """Wait until the ring has converged and every value sits on its replica set."""
        try:
            await self.wait_for(
                lambda: ring_converged(self.nodes) and self.idle() and not self.misplaced(placements), timeout
            )
        except TimeoutError:
            raise AssertionError(
                f"not settled: converged={ring_converged(self.nodes)} idle={self.idle()} "
                f"misplaced={self.misplaced(placements)}"
            ) from None

    async def kill(self, storage: Storage) -> None:
        """An abrupt failure: no hand-off, no Leave, links just close."""
        self.peers.remove(storage)
        storage.close()
        await storage.node.close()

    async def close(self) -> None:
        for s in self.all:
            s.close()
            await s.node.close()

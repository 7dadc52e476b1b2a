"""An in-process network of ChordTopology instances on a virtual clock (no asyncio).

Actions are carried out as messages between the instances: requests that RELOAD routes
(Attach, Ping) travel hop by hop along each node's own ``route()`` decisions over the
connections that exist, so routing is exercised as the ring changes; Updates, Joins and
Leaves go over the direct connection. Work is queued and run to quiescence (FIFO).
"""

from __future__ import annotations

import functools
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable

from reload_core.ids import NodeId
from reload_core.topology import (
    AcceptJoin,
    Action,
    AnswerRouteQuery,
    AttachTo,
    ChordConfig,
    ChordState,
    ChordTopology,
    Deliver,
    Disconnected,
    Drop,
    DropConnection,
    HandOverData,
    JoinCompleted,
    JoinFailed,
    ProbePartition,
    RejectJoin,
    Replicate,
    ResponsibilityChanged,
    SendJoin,
    SendLeave,
    SendPing,
    SendUpdate,
    TopologyChanged,
)

MAX_HOPS = 64


class StormError(AssertionError):
    """The network did not go quiet: an endless exchange of messages."""


class SimNetwork:
    def __init__(self, config: ChordConfig, seed: int = 0, *, bootstrap_count: int = 1) -> None:
        self.config = config
        self.rng = random.Random(seed)
        self.now = 0.0
        self.nodes: dict[NodeId, ChordTopology] = {}
        self.links: set[frozenset[NodeId]] = set()
        self.bootstraps: list[NodeId] = []
        self.bootstrap_count = bootstrap_count
        self._queue: deque[Callable[[], None]] = deque()
        self.sent: Counter[str] = Counter()
        self.notices: list[tuple[NodeId, Action]] = []
        self.hops: list[int] = []

    # -- building the ring ----------------------------------------------------------------

    def new_node(self, node_id: NodeId) -> ChordTopology:
        topo = ChordTopology(node_id, now=self.now, rng=random.Random(self.rng.random()), config=self.config)
        self.nodes[node_id] = topo
        return topo

    def start_first(self, node_id: NodeId) -> None:
        topo = self.new_node(node_id)
        self.bootstraps.append(node_id)
        self._apply(node_id, topo.start_alone(self.now))
        self.run()

    def join(self, node_id: NodeId, via: NodeId | None = None) -> ChordTopology:
        """§10.5 through a bootstrap node: connect to it, then start the join and run."""
        bootstrap = via or next(b for b in self.bootstraps if b in self.nodes)
        topo = self.new_node(node_id)
        self._connect(node_id, bootstrap)
        self._apply(bootstrap, self.nodes[bootstrap].on_connected(node_id, self.now))
        self._apply(node_id, topo.start_join(bootstrap, self.now))
        self.run()
        if len(self.bootstraps) < self.bootstrap_count and topo.state is ChordState.JOINED:
            self.bootstraps.append(node_id)
        return topo

    def crash(self, *node_ids: NodeId) -> None:
        """The nodes vanish at the same moment; their peers then see the connections drop."""
        for node_id in node_ids:
            self.nodes.pop(node_id)
        for link in sorted(self.links, key=sorted):
            dead = link & set(node_ids)
            if dead:
                self.links.discard(link)
                for other in sorted(link - dead):
                    for node_id in sorted(dead):
                        self._apply(other, self.nodes[other].on_connection_lost(node_id, self.now))
        self.run()

    def leave(self, node_id: NodeId) -> None:
        """§10.9: the Leaves are delivered, then the node closes its connections."""
        self._apply(node_id, self.nodes[node_id].leave(self.now))
        self.run()
        self.crash(node_id)

    def advance(self, seconds: float, step: float) -> None:
        """Move the clock in steps, ticking every node and running to quiescence each time."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for node_id in sorted(self.nodes):
                self._apply(node_id, self.nodes[node_id].tick(self.now))
            self.run()

    # -- the truth ------------------------------------------------------------------------

    def ring(self) -> list[NodeId]:
        return sorted(self.nodes)

    def ring_errors(self) -> list[str]:
        """Every successor/predecessor pointer against the sorted ring of live nodes."""
        ring = self.ring()
        n = len(ring)
        size = self.config.neighbor_count
        errors: list[str] = []
        for i, node_id in enumerate(ring):
            topo = self.nodes[node_id]
            if topo.state is not ChordState.JOINED:
                errors.append(f"{node_id} is {topo.state.name}")
                continue
            want_succ = tuple(ring[(i + j) % n] for j in range(1, min(size, n - 1) + 1))
            want_pred = tuple(ring[(i - j) % n] for j in range(1, min(size, n - 1) + 1))
            if topo.successors != want_succ:
                errors.append(f"{node_id}: successors {topo.successors} != {want_succ}")
            if topo.predecessors != want_pred:
                errors.append(f"{node_id}: predecessors {topo.predecessors} != {want_pred}")
            for f in topo.fingers:
                if f not in self.nodes:
                    errors.append(f"{node_id}: dead finger {f}")
        return errors

    def responsible(self, k: NodeId) -> NodeId:
        ring = self.ring()
        return next((n for n in ring if n >= k), ring[0])

    # -- carrying out actions -------------------------------------------------------------

    def run(self, max_steps: int = 2_000_000) -> None:
        steps = 0
        while self._queue:
            steps += 1
            if steps > max_steps:
                raise StormError(f"still busy after {max_steps} deliveries: {self.sent.most_common(5)}")
            self._queue.popleft()()

    def _apply(self, src: NodeId, actions: Iterable[Action]) -> None:
        for act in actions:
            self._queue.append(functools.partial(self._execute, src, act))

    def connected(self, a: NodeId, b: NodeId) -> bool:
        return frozenset((a, b)) in self.links

    def _connect(self, a: NodeId, b: NodeId) -> None:
        self.links.add(frozenset((a, b)))

    def resolve(
        self, src: NodeId, dest: NodeId, resource: bool, via: tuple[NodeId, ...] = ()
    ) -> NodeId | None:
        """Where a routed request ends, following each node's ``route()`` (§6.1, §10.3)."""
        cur = src
        hops = 0
        for v in via:
            # A bootstrap node is reachable at its configured address (§11.4) without a link.
            if v not in self.nodes or not (self.connected(cur, v) or (cur == src and v in self.bootstraps)):
                return None
            cur, hops = v, hops + 1
        while hops <= MAX_HOPS:
            decision = self.nodes[cur].route(dest, resource=resource)
            if isinstance(decision, Deliver):
                self.hops.append(hops)
                return cur
            if isinstance(decision, Drop):
                return None
            nxt = decision.next_hop
            if nxt not in self.nodes or not self.connected(cur, nxt):
                return None
            cur, hops = nxt, hops + 1
        return None

    def _execute(self, src: NodeId, act: Action) -> None:
        topo = self.nodes.get(src)
        if topo is None:
            return
        now = self.now
        self.sent[type(act).__name__] += 1
        if isinstance(act, SendUpdate):
            to = self.nodes.get(act.to)
            if to is not None and (self.connected(src, act.to) or self.resolve(src, act.to, False) == act.to):
                self._apply(
                    act.to,
                    to.on_update_received(src, act.type, act.predecessors, act.successors, act.fingers, now),
                )
            else:
                self._apply(src, topo.on_peer_failed(act.to, now))
        elif isinstance(act, AttachTo):
            peer = self.resolve(src, act.dest, act.resource, act.via)
            if peer is None or peer == src:
                self._apply(src, topo.on_attach_failed(act.dest, act.resource, now))
            else:
                self._connect(src, peer)
                self._apply(src, topo.on_attach_succeeded(act.dest, act.resource, peer, now))
                other = self.nodes[peer]
                self._apply(peer, other.on_connected(src, now, send_update_requested=act.send_update))
        elif isinstance(act, SendPing):
            responder = self.resolve(src, act.dest, True)
            if responder is None:
                self._apply(src, topo.on_ping_failed(act.dest, now))
            else:
                self._apply(src, topo.on_ping_answer(act.dest, responder, now))
        elif isinstance(act, ProbePartition):
            bootstrap = next((b for b in self.bootstraps if b in self.nodes and b != src), None)
            if bootstrap is None:
                return
            responder = self.resolve(src, act.target, True, (bootstrap,))
            if responder is not None:
                self._apply(src, topo.on_partition_probe_answer(bootstrap, responder, now))
        elif isinstance(act, SendJoin):
            ap = self.nodes.get(act.to)
            if ap is not None and self.connected(src, act.to):
                self._apply(act.to, ap.on_join_request(src, now))
            else:
                self._apply(src, topo.on_join_answer(act.to, False, now))
        elif isinstance(act, AcceptJoin | RejectJoin):
            jn = self.nodes.get(act.joining)
            if jn is not None:
                self._apply(act.joining, jn.on_join_answer(src, isinstance(act, AcceptJoin), now))
        elif isinstance(act, HandOverData):
            self._apply(src, topo.on_handover_done(act.to, now))
        elif isinstance(act, SendLeave):
            to = self.nodes.get(act.to)
            if to is not None:
                self._apply(act.to, to.on_leave_received(src, act.type, act.node_ids, now))
        elif isinstance(act, DropConnection):
            link = frozenset((src, act.node))
            if link in self.links:
                self.links.discard(link)
                dropped = self.nodes.get(act.node)
                if dropped is not None:
                    self._apply(act.node, dropped.on_connection_lost(src, now))
        elif isinstance(
            act,
            AnswerRouteQuery
            | Replicate
            | ResponsibilityChanged
            | TopologyChanged
            | JoinCompleted
            | JoinFailed
            | Disconnected,
        ):
            self.notices.append((src, act))
        else:  # pragma: no cover - a new action type needs handling here
            raise AssertionError(f"unhandled action {act!r}")

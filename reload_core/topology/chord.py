"""CHORD-RELOAD as a state machine with no sockets and no clock (RFC 6940 §10).

:class:`ChordTopology` is one peer's view of the ring. The caller (the node's asyncio
layer, or a simulation on a virtual clock) feeds it what happened and carries out the
actions it returns, in order (see :mod:`reload_core.topology.actions`); time is passed in
as seconds on any monotonic clock and randomness as a :class:`random.Random`.

Inputs, each returning ``list[Action]``:

=====================================================  ========================================
``start_alone(now)``                                   first peer of an overlay (§6.4.2.1)
``start_join(bootstrap, now)``                         join through a connected bootstrap (§10.5)
``on_connected(node, now, send_update_requested)``     a connection is up (§6.4.2.3 send_update)
``on_connection_lost(node, now)``                      a connection went away (§10.7.1, §10.7.2)
``on_peer_failed(node, now)``                          a request to ``node`` failed (§10.7.1)
``on_attach_succeeded(dest, resource, peer, now)``     an :class:`AttachTo` connected to ``peer``
``on_attach_failed(dest, resource, now)``              an :class:`AttachTo` failed
``on_ping_answer(dest, responder, now)``               a :class:`SendPing` answered (§10.7.4.2)
``on_ping_failed(dest, now)``
``on_update_received(sender, type, preds, succs,       an UpdateReq arrived (§10.7.3)
fingers, now)``
``on_join_request(joining, now)``                      admitting peer's side (§10.5 steps 5-6)
``on_handover_done(joining, now)``                     Stores of step 6 are done (steps 7-8)
``on_join_answer(admitting, ok, now)``                 joining side, JoinAns or error
``on_leave_received(sender, type, node_ids, now)``     a LeaveReq arrived (§10.9)
``on_route_query(sender, dest, resource,               a RouteQueryReq arrived (§10.8)
send_update, now)``
``on_partition_probe_answer(bootstrap, responder,      §10.7.4.4 answer
now)``
``leave(now)``                                         leave the overlay (§10.9)
``tick(now)``                                          timers: stabilisation (§10.7.4)
=====================================================  ========================================

and ``next_timer()`` says when ``tick`` is next due. Queries: ``route()`` (§6.1.1, §10.3),
``is_responsible()``, ``replica_set()``/``replica_targets()``/``accepts_replica()`` (§10.4),
the tables, ``estimated_overlay_size()`` and ``uptime()``.

Joining (§10.5), from the joining node JN's side: ``start_join`` asks for an Attach to
Resource-ID n+1 with ``send_update`` (step 2; phase ``ATTACHING_AP``); the admitting peer
AP answers and sends a ``full`` Update (``AWAITING_AP_UPDATE``); JN Attaches, source-routed
through AP (§10.6), to each peer that belongs in its Neighbor Table and to the Finger Table
targets n + 2^(128-i) (step 3, ``ATTACHING_NEIGHBORS``); every peer it reaches enters its
Routing Table (step 4); once each neighbour Attach has ended it sends the Join (step 5,
``JOIN_SENT``); the JoinAns and AP's Update listing JN among AP's predecessors (step 7) make
it JOINED, and it sends Updates to the peers of its Neighbor Table (step 9: not its whole
Connection Table, whose other members are the far peers it Attached to for fingers; the
Connection Table rule of §10.7.3 is for a range that changed, and JN had none). The admitting
peer's side: ``on_connected(send_update_requested=True)`` sends JN the ``full`` Update;
``on_join_request`` answers and asks for the data hand-over of (predecessor, JN] (step 6);
``on_handover_done`` makes JN its predecessor and sends the Update of steps 7 and 8.

Updates (§10.7.3): every Node-ID in a received Update is a candidate; the peers that would
improve the Neighbor Table and are not yet connected get an Attach through the sender
(§10.6); connected ones enter at once. A changed Neighbor Table triggers, with reactive
recovery (``chord-reactive``), Updates to the Connection Table; a changed responsible range
triggers them in any case (§10.7.1, §10.7.3), with the data hand-over or replication it
implies. With periodic recovery a newly added neighbour gets a ``peer_ready`` Update. An
Update showing that its sender lacks peers we know (ourselves included) is answered with
ours, once per disagreement: Updates report topology shifts to adjacencies (§6.4.2.3), and
this is how a peer that lost all its successors finds the closer ones its new successor
knows (§10.7.1).

Failures (§10.7.1, §10.7.2): the lost peer leaves every table; the Neighbor Table is rebuilt
from the remaining Routing Table and the better peers named in the other neighbours' last
Updates are Attached; the successor hold-down delays new replicas by 30 s; a lost finger
(reactive) starts a search for its entry. A peer taken for dead (a lost connection, a failed
request, a Leave) is ignored in others' Updates for ``failed_hold`` seconds unless it gets in
touch itself with an Update of its own (a connection alone does not count: a peer restarted
with the same Node-ID Attaches before it has joined, §10.5 step 3); a
failed Attach is not taken as proof (routing may have failed while the ring was changing),
so the peer is tried again when an Update names it again.

Stabilisation (§10.7.4) in ``tick``: a ``neighbors`` Update to each neighbour every
``chord-update-interval`` (random phase per peer); every ``chord-ping-interval`` the Finger
Table is resized to the overlay size estimate and one invalid entry (exponentially weighted
to low i, Alternative 1) gets a Ping to a random ID in its range; every
``partition_check_interval`` a :class:`ProbePartition`; replicas after the hold-down; and
connections this peer opened to peers no longer in its Routing Table are closed after
``eviction_grace``.

Leaving (§10.9): ``leave`` sends ``from_pred`` Leaves (our predecessors) to the successors
and ``from_succ`` Leaves (our successors) to the predecessors; a received Leave is a
failure of the sender, and its lists are candidates (RFC 7363 §5.6).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum, auto

from reload_core.ids import NodeId
from reload_core.topology.actions import (
    AcceptJoin,
    Action,
    AnswerRouteQuery,
    AttachTo,
    ChordLeaveType,
    ChordUpdateType,
    Disconnected,
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
from reload_core.topology.config import ChordConfig
from reload_core.topology.fingers import (
    FingerTable,
    estimate_overlay_size,
    finger_range,
    finger_table_size,
    finger_target,
    random_finger_id,
)
from reload_core.topology.neighbors import NeighborTable
from reload_core.topology.routing import Deliver, Forward, RouteDecision, route
from reload_core.wire.codes import ErrorCode


class ChordState(Enum):
    IDLE = auto()
    JOINING = auto()
    JOINED = auto()
    LEFT = auto()


class JoinPhase(Enum):
    """The joining node's steps of §10.5."""

    ATTACHING_AP = auto()
    AWAITING_AP_UPDATE = auto()
    ATTACHING_NEIGHBORS = auto()
    JOIN_SENT = auto()
    AWAITING_ADMISSION = auto()


class _Purpose(Enum):
    ADMITTING = auto()
    NEIGHBOR = auto()
    FINGER = auto()
    HEAL = auto()


_Target = tuple[NodeId, bool]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    state: ChordState
    neighbors: NeighborTable
    fingers: tuple[NodeId, ...]
    routing: frozenset[NodeId]


class ChordTopology:
    """One CHORD-RELOAD peer's tables and procedures (RFC 6940 §10); see the module docstring."""

    def __init__(
        self, node_id: NodeId, *, now: float, rng: random.Random, config: ChordConfig | None = None
    ) -> None:
        self.node_id = node_id
        self.config = config or ChordConfig()
        self._rng = rng
        self._started = now
        self._state = ChordState.IDLE
        self._neighbors = NeighborTable(node_id, size=self.config.neighbor_count)
        self._fingers = FingerTable(node_id, self.config.min_fingers)
        self._connected: set[NodeId] = set()
        self._peers: set[NodeId] = set()  # connected nodes known to be ring peers
        # The Neighbor Table is rebuilt from _peers only when they changed (every input ends
        # in _finish, few change the peers): (changes to _peers, neighbor_count) it was built at.
        self._peers_changes = 0
        self._routing_cache: tuple[NeighborTable, int, frozenset[NodeId]] | None = None
        self._neighbors_built: tuple[int, int] | None = None
        # Peers added since that build, and whether any went: with none gone, the new table
        # is the best of the old one and the added peers (the nearest of a union are the
        # nearest of its parts' nearest), a dozen candidates instead of every peer.
        self._added_since_build: set[NodeId] = set()
        self._removed_since_build = False
        self._initiated: set[NodeId] = set()  # connections we opened, hence may close
        self._failed: dict[NodeId, float] = {}  # ignored until
        self._evicted: dict[NodeId, float] = {}  # out of the Routing Table since
        self._pending: dict[_Target, set[_Purpose]] = {}
        self._pending_pings: dict[NodeId, int] = {}
        self._reported: dict[NodeId, tuple[NodeId, ...]] = {}
        self._corrected: dict[NodeId, frozenset[NodeId]] = {}
        # joining node's side
        self._phase: JoinPhase | None = None
        self._ap: NodeId | None = None
        self._join_deadline = 0.0
        self._join_answered = False
        self._admitted = False
        self._early_updates: set[NodeId] = set()
        # admitting peer's side
        self._admitting: dict[NodeId, NodeId] = {}
        self._handed_over: set[NodeId] = set()
        # timers
        self._next_update: float | None = None
        self._next_finger: float | None = None
        self._next_partition: float | None = None
        self._holddown_until = 0.0
        self._replicas_committed: tuple[NodeId, ...] = ()
        # per-call output
        self._acts: list[Action] = []
        self._updates_out: dict[NodeId, ChordUpdateType] = {}

    # ==================================================================== queries

    @property
    def state(self) -> ChordState:
        return self._state

    @property
    def join_phase(self) -> JoinPhase | None:
        return self._phase

    @property
    def admitting_peer(self) -> NodeId | None:
        return self._ap

    @property
    def neighbor_table(self) -> NeighborTable:
        return self._neighbors

    @property
    def predecessors(self) -> tuple[NodeId, ...]:
        return self._neighbors.predecessors

    @property
    def successors(self) -> tuple[NodeId, ...]:
        return self._neighbors.successors

    @property
    def finger_table(self) -> FingerTable:
        """Read it, do not change it: changes go through the ``on_*`` inputs."""
        return self._fingers

    @property
    def fingers(self) -> tuple[NodeId, ...]:
        return self._fingers.entries()

    @property
    def connected(self) -> frozenset[NodeId]:
        return frozenset(self._connected)

    def routing_table(self) -> frozenset[NodeId]:
        """The Neighbor Table and the Finger Table together (§10.3). Cached until either
        changes: every message routed asks for it."""
        key = (self._neighbors, self._fingers.version)
        cached = self._routing_cache
        if cached is None or cached[0] is not key[0] or cached[1] != key[1]:
            table = self._neighbors.members() | self._fingers.peers()
            self._routing_cache = cached = (key[0], key[1], table)
        return cached[2]

    def uptime(self, now: float) -> int:
        """Seconds since this peer started, for ChordUpdate ``uptime`` (§10.7)."""
        return max(0, int(now - self._started))

    def estimated_overlay_size(self) -> float:
        nt = self._neighbors
        return estimate_overlay_size(self.node_id, nt.predecessors, nt.successors, nt.size)

    def is_responsible(self, k: NodeId) -> bool:
        """Whether ``k`` is in (predecessor, self] of a joined peer (§10.1, §6.1.1)."""
        return self._state is ChordState.JOINED and self._neighbors.is_responsible(k)

    def route(self, destination: NodeId, *, resource: bool) -> RouteDecision:
        """What to do with a message whose first Destination List entry is ``destination``."""
        return route(
            self.node_id,
            destination,
            resource=resource,
            is_responsible=self.is_responsible,
            routing_table=self.routing_table(),
            connected=self._connected,
        )

    def replica_targets(self) -> tuple[NodeId, ...]:
        """The successors that hold replicas of this peer's data (§10.4)."""
        return self._neighbors.replica_targets()

    def replica_set(self, k: NodeId) -> tuple[NodeId, ...] | None:
        """Responsible peer of ``k`` and its replica holders, as far as this peer sees (§10.4)."""
        return self._neighbors.replica_set(k)

    def accepts_replica(self, sender: NodeId, k: NodeId) -> bool:
        """Whether a replica Store for ``k`` from ``sender`` is in order (§10.4)."""
        return self._neighbors.accepts_replica(sender, k)

    def next_timer(self) -> float | None:
        """When ``tick`` next has something to do, or ``None``."""
        times: list[float] = []
        if self._state is ChordState.JOINING:
            times.append(self._join_deadline)
        if self._state is ChordState.JOINED:
            times += [
                t for t in (self._next_update, self._next_finger, self._next_partition) if t is not None
            ]
            if self._neighbors.replica_targets() != self._replicas_committed:
                times.append(self._holddown_until)
            grace = self.config.eviction_grace_time
            times += [since + grace for n, since in self._evicted.items() if n in self._initiated]
        return min(times) if times else None

    # ==================================================================== starting

    def start_alone(self, now: float) -> list[Action]:
        """Become the first peer, responsible for the whole ring (§6.4.2.1)."""
        self._require(ChordState.IDLE)
        snap = self._snapshot()
        self._state = ChordState.JOINED
        self._schedule(now)
        self._acts.append(JoinCompleted(self.node_id))
        return self._finish(snap, now)

    def start_join(self, bootstrap: NodeId, now: float) -> list[Action]:
        """§10.5 steps 1-2: connected to ``bootstrap``, Attach to Resource-ID n+1 with send_update."""
        self._require(ChordState.IDLE)
        if bootstrap == self.node_id:
            raise ValueError("the bootstrap node is this node")
        snap = self._snapshot()
        self._state = ChordState.JOINING
        self._phase = JoinPhase.ATTACHING_AP
        self._join_deadline = now + self.config.join_timeout
        self._join_answered = self._admitted = False
        self._connected.add(bootstrap)
        self._initiated.add(bootstrap)
        self._failed.pop(bootstrap, None)
        self._add_peer(bootstrap)
        self._request_attach(self.node_id.add(1), True, _Purpose.ADMITTING, send_update=True)
        return self._finish(snap, now)

    # ==================================================================== connections

    def on_connected(self, node: NodeId, now: float, *, send_update_requested: bool = False) -> list[Action]:
        """A connection to ``node`` is up. With ``send_update_requested`` (the Attach's flag),
        a joined peer answers with a ``full`` Update (§6.4.2.3, §10.5)."""
        if self._state is ChordState.LEFT or node == self.node_id:
            return []
        snap = self._snapshot()
        self._connected.add(node)
        # A bare connection does not end a failure hold: a restarted peer's join Attaches
        # (§10.5 step 3) populate Connection Tables only; its own Update (step 9) does.
        if send_update_requested:
            self._queue_update(node, ChordUpdateType.full)
        return self._finish(snap, now)

    def on_connection_lost(self, node: NodeId, now: float) -> list[Action]:
        """The connection to ``node`` is gone (§10.7.1, §10.7.2): it is taken for dead, so that
        stale Updates (or other neighbours' last reports) naming it do not Attach to it again."""
        if node not in self._connected or self._state is ChordState.LEFT:
            return []
        snap = self._snapshot()
        self._lose(node, now, failed=True)
        return self._finish(snap, now)

    def on_peer_failed(self, node: NodeId, now: float) -> list[Action]:
        """A request to ``node`` failed or its keepalives stopped: it is taken for dead (§10.7.1)."""
        if self._state is ChordState.LEFT or node == self.node_id:
            return []
        snap = self._snapshot()
        was_connected = node in self._connected
        self._lose(node, now, failed=True)
        if was_connected:
            self._acts.append(DropConnection(node))
        return self._finish(snap, now)

    def on_attach_succeeded(self, dest: NodeId, resource: bool, peer: NodeId, now: float) -> list[Action]:
        """The :class:`AttachTo` for (dest, resource) connected us to ``peer``."""
        if self._state is ChordState.LEFT:
            return []
        snap = self._snapshot()
        purposes = self._pending.pop((dest, resource), set())
        if peer == self.node_id:
            return self._finish(snap, now)
        self._connected.add(peer)
        self._initiated.add(peer)
        if purposes & {_Purpose.ADMITTING, _Purpose.HEAL}:
            self._failed.pop(peer, None)  # it answered for a Resource-ID: a ring peer
        elif self._is_failed(peer, now):
            # A peer taken for dead that connected to us (a restarted one, Attaching as a
            # joining node, §10.5 step 3) completes our pending Attach, but is not in the
            # ring until it sends its own Update (step 9): Connection Table only.
            purposes = set()
        if _Purpose.ADMITTING in purposes and self._phase is JoinPhase.ATTACHING_AP:
            self._ap = peer
            self._phase = JoinPhase.AWAITING_AP_UPDATE
            if peer in self._early_updates:
                self._on_ap_update()
        if purposes & {_Purpose.ADMITTING, _Purpose.NEIGHBOR, _Purpose.FINGER, _Purpose.HEAL}:
            self._add_peer(peer, finger=_Purpose.FINGER in purposes)
        if _Purpose.HEAL in purposes:
            self._queue_update(peer, ChordUpdateType.neighbors)  # §10.7.4.4
        self._check_join_progress()
        return self._finish(snap, now)

    def on_attach_failed(self, dest: NodeId, resource: bool, now: float) -> list[Action]:
        """The :class:`AttachTo` for (dest, resource) failed or timed out."""
        if self._state is ChordState.LEFT:
            return []
        snap = self._snapshot()
        purposes = self._pending.pop((dest, resource), set())
        if _Purpose.ADMITTING in purposes and self._state is ChordState.JOINING:
            self._fail_join("the Attach to the admitting peer failed")
        self._check_join_progress()
        return self._finish(snap, now)

    def on_ping_answer(self, dest: NodeId, responder: NodeId, now: float) -> list[Action]:
        """A finger search Ping to ``dest`` was answered by ``responder`` (§10.7.4.2)."""
        if self._pending_pings.pop(dest, None) is None or self._state is not ChordState.JOINED:
            return []
        snap = self._snapshot()
        if responder != self.node_id and not self._is_failed(responder, now):
            if responder in self._connected:
                self._add_peer(responder, finger=True)  # it answered for a Resource-ID: a ring peer
            else:
                i = self._fingers.index_of(responder)
                if i is not None and i <= self._fingers.size and self._fingers.entry(i) is None:
                    self._request_attach(responder, False, _Purpose.FINGER)
        return self._finish(snap, now)

    def on_ping_failed(self, dest: NodeId, now: float) -> list[Action]:
        self._pending_pings.pop(dest, None)
        return []

    # ==================================================================== updates

    def on_update_received(
        self,
        sender: NodeId,
        type: ChordUpdateType,
        predecessors: tuple[NodeId, ...],
        successors: tuple[NodeId, ...],
        fingers: tuple[NodeId, ...],
        now: float,
    ) -> list[Action]:
        """An UpdateReq from ``sender`` (§10.7.3); the caller answers it with an UpdateAns."""
        if self._state in (ChordState.IDLE, ChordState.LEFT) or sender == self.node_id:
            return []
        snap = self._snapshot()
        self._failed.pop(sender, None)  # it is evidently alive
        listed = (*predecessors, *successors)
        if type is not ChordUpdateType.peer_ready:
            self._reported[sender] = listed
        self._learn((sender, *listed, *fingers), sender, now)
        if self._state is ChordState.JOINED and type is not ChordUpdateType.peer_ready:
            self._correct(sender, listed)
        if self._state is ChordState.JOINING:
            self._join_update(sender, predecessors, now)
            self._check_join_progress()
        return self._finish(snap, now)

    def on_route_query(
        self, sender: NodeId, destination: NodeId, *, resource: bool, send_update: bool, now: float
    ) -> list[Action]:
        """§10.8: answer with the next peer we would route to; a ``full`` Update if asked."""
        if self._state is ChordState.LEFT:
            return []
        snap = self._snapshot()
        decision = self.route(destination, resource=resource)
        next_peer = (
            self.node_id
            if isinstance(decision, Deliver)
            else decision.next_hop
            if isinstance(decision, Forward)
            else None
        )
        self._acts.append(AnswerRouteQuery(sender, next_peer))
        if send_update:
            self._queue_update(sender, ChordUpdateType.full)
        return self._finish(snap, now)

    # ==================================================================== joining

    def on_join_request(self, joining: NodeId, now: float) -> list[Action]:
        """Admitting peer, §10.5 steps 5-6 (§6.4.2.1). The caller has checked that the JoinReq
        is signed by ``joining`` and came over the connection bound to it."""
        if self._state is ChordState.LEFT:
            return []
        snap = self._snapshot()
        start = self._neighbors.range_start
        if self._state is not ChordState.JOINED:
            self._acts.append(RejectJoin(joining, ErrorCode.Error_Forbidden, "not a peer of the ring yet"))
        elif joining not in self._connected:
            self._acts.append(
                RejectJoin(joining, ErrorCode.Error_Forbidden, "no connection bound to that Node-ID")
            )
        elif joining == self.node_id or not joining.in_interval(start, self.node_id):
            self._acts.append(
                RejectJoin(joining, ErrorCode.Error_Forbidden, "Node-ID not in this peer's range")
            )
        elif joining in self._admitting:
            self._acts.append(RejectJoin(joining, ErrorCode.Error_In_Progress, "join already in progress"))
        else:
            self._admitting[joining] = start
            self._acts.append(AcceptJoin(joining))
            self._acts.append(HandOverData(joining, start, joining))
        return self._finish(snap, now)

    def on_handover_done(self, joining: NodeId, now: float) -> list[Action]:
        """Admitting peer, §10.5 steps 7-8: JN becomes our predecessor; Updates go out."""
        if joining not in self._admitting or self._state is not ChordState.JOINED:
            return []
        snap = self._snapshot()
        del self._admitting[joining]
        self._failed.pop(joining, None)  # restarted with the same Node-ID: admitted afresh
        if joining in self._connected:
            self._handed_over.add(joining)
            self._add_peer(joining)
            self._queue_update(joining, ChordUpdateType.neighbors)
        acts = self._finish(snap, now)
        self._handed_over.discard(joining)
        return acts

    def on_join_answer(self, admitting: NodeId, ok: bool, now: float) -> list[Action]:
        """Joining node: the JoinAns (``ok``) or an error answered our :class:`SendJoin`."""
        if self._phase is not JoinPhase.JOIN_SENT or admitting != self._ap:
            return []
        snap = self._snapshot()
        if not ok:
            self._fail_join("the admitting peer refused the Join")
        elif self._admitted:
            self._complete_join(now)
        else:
            self._join_answered = True
            self._phase = JoinPhase.AWAITING_ADMISSION
        return self._finish(snap, now)

    # ==================================================================== partitions

    def on_partition_probe_answer(self, bootstrap: NodeId, responder: NodeId, now: float) -> list[Action]:
        """§10.7.4.4: the peer that answered a :class:`ProbePartition` through ``bootstrap``.

        An answer from anyone but our successor means the overlay is split (or we lack a
        closer successor): Attach to it through the bootstrap, then send it an Update.
        """
        if self._state is not ChordState.JOINED or responder == self.node_id:
            return []
        successors = self._neighbors.successors
        if successors and responder == successors[0]:
            return []
        snap = self._snapshot()
        self._failed.pop(responder, None)
        if responder in self._connected:
            self._add_peer(responder)
            self._queue_update(responder, ChordUpdateType.neighbors)
        else:
            via = (bootstrap,) if bootstrap != self.node_id else ()
            self._request_attach(responder, False, _Purpose.HEAL, via=via, send_update=True)
        return self._finish(snap, now)

    # ==================================================================== leaving

    def on_leave_received(
        self, sender: NodeId, type: ChordLeaveType, node_ids: tuple[NodeId, ...], now: float
    ) -> list[Action]:
        """A LeaveReq (§10.9): handled as a failure of ``sender`` (§10.7.1); the lists it carries
        are candidates for our Neighbor Table (RFC 7363 §5.6)."""
        if self._state in (ChordState.IDLE, ChordState.LEFT) or sender == self.node_id:
            return []
        snap = self._snapshot()
        was_connected = sender in self._connected
        self._lose(sender, now, failed=True)
        if was_connected:
            self._acts.append(DropConnection(sender))
        self._learn(node_ids, None, now)
        return self._finish(snap, now)

    def leave(self, now: float) -> list[Action]:
        """§10.9: Leaves to the Neighbor Table; afterwards every input is ignored."""
        acts: list[Action] = []
        if self._state is ChordState.JOINED:
            nt = self._neighbors
            for s in nt.successors:
                acts.append(SendLeave(s, ChordLeaveType.from_pred, nt.predecessors))
            for p in nt.predecessors:
                if p not in nt.successors:
                    acts.append(SendLeave(p, ChordLeaveType.from_succ, nt.successors))
        self._state = ChordState.LEFT
        self._phase = None
        self._next_update = self._next_finger = self._next_partition = None
        return acts

    # ==================================================================== timers

    def tick(self, now: float) -> list[Action]:
        """Run what is due: join timeout, stabilisation (§10.7.4), hold-downs, evictions."""
        if self._state in (ChordState.IDLE, ChordState.LEFT):
            return []
        snap = self._snapshot()
        self._failed = {n: t for n, t in self._failed.items() if t > now}
        if self._state is ChordState.JOINING and now >= self._join_deadline:
            self._fail_join("timed out")
        if self._state is ChordState.JOINED:
            cfg = self.config
            if self._next_update is not None and now >= self._next_update:
                for n in self._neighbors.members():  # §10.7.4.1
                    self._queue_update(n, ChordUpdateType.neighbors)
                self._next_update = _advance(self._next_update, cfg.update_interval, now)
            if self._next_finger is not None and now >= self._next_finger:
                self._resize_fingers()  # §10.7.4.3
                self._refresh_fingers()  # §10.7.4.2
                self._next_finger = _advance(self._next_finger, cfg.ping_interval, now)
            if self._next_partition is not None and now >= self._next_partition:
                self._acts.append(ProbePartition(self.node_id.add(1)))  # §10.7.4.4
                self._next_partition = _advance(self._next_partition, cfg.partition_check_interval, now)
            self._drop_evicted(now)
        return self._finish(snap, now)

    # ==================================================================== internals

    def _require(self, state: ChordState) -> None:
        if self._state is not state:
            raise RuntimeError(f"not allowed in state {self._state.name}")

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(self._state, self._neighbors, self._fingers.entries(), self.routing_table())

    def _schedule(self, now: float) -> None:
        """Random phases so that peers do not all stabilise at once (§10.7.4.1)."""
        cfg = self.config
        self._next_update = now + self._rng.uniform(0, cfg.update_interval)
        self._next_finger = now + self._rng.uniform(0, cfg.ping_interval)
        self._next_partition = now + self._rng.uniform(0, cfg.partition_check_interval)

    def _is_failed(self, node: NodeId, now: float) -> bool:
        until = self._failed.get(node)
        return until is not None and until > now

    def _add_peer(self, node: NodeId, *, finger: bool = False) -> None:
        """``node`` (connected) is a ring peer. Only peers found for a finger go into the Finger
        Table: peers met otherwise (the bootstrap node, peers that Attached to us) would pile
        every newcomer's fingers onto the same few nodes."""
        if node in self._connected and node != self.node_id:
            if node not in self._peers:
                self._peers.add(node)
                self._peers_changes += 1
                self._added_since_build.add(node)
            if finger:
                self._fingers.offer(node)

    def _queue_update(self, to: NodeId, type: ChordUpdateType) -> None:
        if to != self.node_id:
            self._updates_out[to] = max(type, self._updates_out.get(to, type))

    def _request_attach(
        self,
        dest: NodeId,
        resource: bool,
        purpose: _Purpose,
        *,
        via: tuple[NodeId, ...] = (),
        send_update: bool = False,
    ) -> None:
        key = (dest, resource)
        if key in self._pending:
            self._pending[key].add(purpose)
            return
        self._pending[key] = {purpose}
        self._acts.append(AttachTo(dest, resource, via, send_update))

    def _learn(self, candidates: tuple[NodeId, ...], informant: NodeId | None, now: float) -> None:
        """§10.7.3: connected candidates join the tables; better unconnected ones get an Attach
        source-routed through the peer that named them (§10.6)."""
        size = self.config.neighbor_count
        current = self._neighbors_built == (self._peers_changes, size)  # built from _peers as they are
        fresh = {c for c in candidates if c != self.node_id and not self._is_failed(c, now)}
        for c in fresh & self._connected:
            self._add_peer(c)
        base = self._neighbors.members() if current else self._peers
        desired = NeighborTable.build(self.node_id, base | fresh, size)
        via = (informant,) if informant is not None and informant in self._connected else ()
        for n in sorted(desired.members() - self._connected):
            self._request_attach(n, False, _Purpose.NEIGHBOR, via=via, send_update=True)

    def _correct(self, sender: NodeId, listed: tuple[NodeId, ...]) -> None:
        """Answer an Update that shows the sender lacks neighbours we know (us among them) with
        ours: a topology shift for the sender, which §6.4.2.3 has us report to it. This is
        how a peer whose successors all failed finds closer ones again: its new, farther
        successor knows the peers in between."""
        view = {sender, *listed}
        ideal = NeighborTable.build(sender, view | self._peers | {self.node_id}, self.config.neighbor_count)
        missing = frozenset(ideal.members() - view)
        if not missing:
            self._corrected.pop(sender, None)
        elif self._corrected.get(sender) != missing:
            # Said once per disagreement: a sender that cannot reach those peers would
            # otherwise get the same answer to each Update, and two such peers would
            # answer each other for ever.
            self._corrected[sender] = missing
            self._queue_update(sender, ChordUpdateType.neighbors)

    def _lose(self, node: NodeId, now: float, *, failed: bool) -> None:
        """§10.7.1 / §10.7.2: forget ``node`` everywhere; replace it from the neighbours' lists."""
        if failed:
            self._failed[node] = now + self.config.failed_hold_time
        was_neighbor = node in self._neighbors
        if node in self._neighbors.successors and self._state is ChordState.JOINED:
            self._holddown_until = now + self.config.successor_holddown
        cleared = self._fingers.remove(node)
        self._forget(node)
        if cleared and self.config.reactive and self._state is ChordState.JOINED:
            covered = self._covered_to()
            for i in cleared:
                if i in self._fingers.missing(covered):
                    self._search_finger(i)
        if was_neighbor:
            for reporter, listed in sorted(self._reported.items()):
                if reporter in self._neighbors and reporter in self._connected:
                    self._learn(tuple(n for n in listed if n != node), reporter, now)
        self._admitting.pop(node, None)
        if self._state is ChordState.JOINING and node == self._ap:
            self._fail_join("lost the connection to the admitting peer")

    def _forget(self, node: NodeId) -> None:
        # A peer we lost holds none of our replicas as far as we know: should it come back
        # (a restarted process keeps its Node-ID but not its data) before the hold-down
        # ends, it is a new member of the replica set and gets our data again (§10.7.3).
        self._replicas_committed = tuple(n for n in self._replicas_committed if n != node)
        self._connected.discard(node)
        if node in self._peers:
            self._peers.discard(node)
            self._peers_changes += 1
            self._removed_since_build = True
        self._initiated.discard(node)
        self._evicted.pop(node, None)
        self._reported.pop(node, None)
        self._corrected.pop(node, None)
        self._fingers.remove(node)

    def _covered_to(self) -> NodeId:
        """How far clockwise the successor list tells the whole truth (see FingerTable.missing)."""
        nt = self._neighbors
        if len(nt.successors) < nt.size:
            return self.node_id.add((1 << self.node_id.bits) - 1)  # a small ring: all of it
        return nt.successors[-1]

    def _search_finger(self, i: int) -> None:
        target = random_finger_id(self.node_id, i, self._rng)
        self._pending_pings[target] = i
        self._acts.append(SendPing(target))

    def _resize_fingers(self) -> None:
        nt = self._neighbors
        size = finger_table_size(
            self.node_id,
            nt.successors,
            self.estimated_overlay_size(),
            self.config.min_fingers,
            self.config.max_fingers,
        )
        if size != self._fingers.size:
            self._fingers.resize(size)

    def _refresh_fingers(self) -> None:
        """Alternative 1 of §10.7.4.2: walk the invalid entries from i=1, each picked with
        probability 0.5; at most one search per round."""
        for i in self._fingers.missing(self._covered_to()):
            if self._rng.random() < 0.5:
                self._search_finger(i)
                return

    def _drop_evicted(self, now: float) -> None:
        grace = self.config.eviction_grace_time
        routing = self.routing_table()
        for node, since in sorted(self._evicted.items()):
            if now < since + grace or node in routing:  # the same sum as next_timer(): no float gap
                continue
            if node in self._initiated and node in self._connected and node not in self._admitting:
                self._acts.append(DropConnection(node))
                self._forget(node)
            else:
                self._evicted.pop(node, None)

    # -- joining node -------------------------------------------------------------------

    def _join_update(self, sender: NodeId, predecessors: tuple[NodeId, ...], now: float) -> None:
        if self._phase is JoinPhase.ATTACHING_AP:
            self._early_updates.add(sender)
        elif sender != self._ap:
            return
        elif self._phase is JoinPhase.AWAITING_AP_UPDATE:
            self._on_ap_update()
        elif (
            self._phase in (JoinPhase.JOIN_SENT, JoinPhase.AWAITING_ADMISSION)
            and self.node_id in predecessors
        ):
            self._admitted = True  # §10.5 step 7
            if self._join_answered:
                self._complete_join(now)

    def _on_ap_update(self) -> None:
        """§10.5 step 3: the neighbour Attaches are already out (``_learn``); now the fingers."""
        self._phase = JoinPhase.ATTACHING_NEIGHBORS
        wanted = self._peers | {n for (n, resource), p in self._pending.items() if not resource}
        desired = NeighborTable.build(self.node_id, wanted, self.config.neighbor_count)
        if len(desired.successors) < desired.size:
            covered = self.node_id.add((1 << self.node_id.bits) - 1)
        else:
            covered = desired.successors[-1]
        reach = self.node_id.distance(covered)
        for i in range(1, self._fingers.size + 1):
            _, high = finger_range(self.node_id, i)
            if self.node_id.distance(high) > reach:
                self._request_attach(finger_target(self.node_id, i), True, _Purpose.FINGER)

    def _check_join_progress(self) -> None:
        """§10.5 step 5 once every neighbour Attach has ended (the last paragraph of §10.5)."""
        if self._phase is not JoinPhase.ATTACHING_NEIGHBORS or self._ap is None:
            return
        if any(_Purpose.NEIGHBOR in p for p in self._pending.values()):
            return
        self._phase = JoinPhase.JOIN_SENT
        self._acts.append(SendJoin(self._ap))

    def _complete_join(self, now: float) -> None:
        assert self._ap is not None
        self._state = ChordState.JOINED
        self._phase = None
        self._early_updates.clear()
        self._schedule(now)
        self._acts.append(JoinCompleted(self._ap))

    def _fail_join(self, reason: str) -> None:
        self._state = ChordState.IDLE
        self._phase = None
        self._ap = None
        self._neighbors = NeighborTable(self.node_id, size=self.config.neighbor_count)
        self._neighbors_built = None
        self._early_updates.clear()
        self._pending = {
            k: p for k, p in self._pending.items() if not p & {_Purpose.ADMITTING, _Purpose.NEIGHBOR}
        }
        self._acts.append(JoinFailed(reason))

    # -- the end of every input -----------------------------------------------------------

    def _finish(self, snap: _Snapshot, now: float) -> list[Action]:
        """Rebuild the Neighbor Table and turn the differences into actions."""
        if self._state in (ChordState.JOINING, ChordState.JOINED):
            size = self.config.neighbor_count
            built = (self._peers_changes, size)
            if built != self._neighbors_built:
                grown = not self._removed_since_build and (
                    self._neighbors_built is not None and self._neighbors_built[1] == size
                )
                candidates = self._neighbors.members() | self._added_since_build if grown else self._peers
                self._neighbors = NeighborTable.build(self.node_id, candidates, size)
                self._neighbors_built = built
                self._added_since_build = set()
                self._removed_since_build = False
        nt = self._neighbors
        joined = self._state is ChordState.JOINED
        if nt != snap.neighbors or self._fingers.entries() != snap.fingers:
            self._acts.append(TopologyChanged(nt.predecessors, nt.successors, self._fingers.entries()))
        if joined and snap.state is not ChordState.JOINED:
            self._responsibility_notice()
            self._replicas_committed = nt.replica_targets()
            for n in nt.members():  # §10.5 step 9
                self._queue_update(n, ChordUpdateType.neighbors)
        elif joined and nt != snap.neighbors:
            self._neighbors_changed(snap.neighbors)
        routing = self.routing_table()
        for n in snap.routing - routing:
            if n in self._connected:
                self._evicted.setdefault(n, now)
        for n in routing:
            self._evicted.pop(n, None)
        if joined:
            self._check_replicas(now)
            if snap.state is ChordState.JOINED and snap.routing and not routing:
                self._acts += [Disconnected(), ProbePartition(self.node_id.add(1))]  # §10.7.1
        acts = self._acts
        if joined:
            for to in sorted(self._updates_out):
                acts.append(self._update_for(to, self._updates_out[to], now))
        self._updates_out = {}
        self._acts = []
        return acts

    def _neighbors_changed(self, old: NeighborTable) -> None:
        new = self._neighbors
        if old.range_start != new.range_start or old.replica_range_start != new.replica_range_start:
            self._responsibility_notice()
        if old.range_start != new.range_start:
            self._range_moved(old.range_start, new.range_start)
            self._queue_all(ChordUpdateType.neighbors)  # §10.7.1, §10.7.3
        if self.config.reactive:
            self._queue_all(ChordUpdateType.neighbors)  # §10.7.1, §10.7.3
        else:
            for n in new.members() - old.members():
                self._queue_update(n, ChordUpdateType.peer_ready)  # RFC 7363 §5.2

    def _responsibility_notice(self) -> None:
        nt = self._neighbors
        self._acts.append(ResponsibilityChanged(nt.range_start, self.node_id, nt.replica_range_start))

    def _range_moved(self, old_start: NodeId, new_start: NodeId) -> None:
        """Data moves with the responsible range (§6.4.2.3, §10.7.3)."""
        me = self.node_id
        if old_start == me or new_start.in_interval(old_start, me, closed_end=False):
            # Shrunk: each new predecessor in (old_start, new_start] takes its slice.
            takers = {p for p in self._neighbors.predecessors if p.in_interval(old_start, new_start)}
            prev = old_start
            for q in sorted(takers | {new_start}, key=old_start.distance):
                if q in self._handed_over:
                    self._handed_over.discard(q)
                else:
                    self._acts.append(HandOverData(q, prev, q))
                prev = q
        else:
            # Grew over a lost predecessor's range, held here as a replica until now.
            targets = self._neighbors.replica_targets()
            if targets:
                self._acts.append(Replicate(targets, new_start, old_start))

    def _check_replicas(self, now: float) -> None:
        """§10.7.3 (new nodes in the replica set get our data), after §10.7.1's hold-down."""
        current = self._neighbors.replica_targets()
        if current == self._replicas_committed or now < self._holddown_until:
            return
        added = tuple(n for n in current if n not in self._replicas_committed)
        if added:
            self._acts.append(Replicate(added, self._neighbors.range_start, self.node_id))
        self._replicas_committed = current

    def _queue_all(self, type: ChordUpdateType) -> None:
        for n in self._connected:
            self._queue_update(n, type)

    def _update_for(self, to: NodeId, type: ChordUpdateType, now: float) -> SendUpdate:
        nt = self._neighbors
        uptime = self.uptime(now)
        if type is ChordUpdateType.peer_ready:
            return SendUpdate(to, type, uptime)
        if type is ChordUpdateType.neighbors:
            return SendUpdate(to, type, uptime, nt.predecessors, nt.successors)
        return SendUpdate(to, type, uptime, nt.predecessors, nt.successors, self._fingers.entries())


def _advance(due: float, interval: float, now: float) -> float:
    """The next due time after ``now`` on the same phase."""
    missed = int((now - due) // interval) + 1
    return due + missed * interval

"""Carries out CHORD-RELOAD's actions over the node (RFC 6940 §10).

:class:`~reload_core.topology.ChordTopology` decides; :class:`ChordDriver` does: it turns
each action into RELOAD requests (Attach §6.5.1 routed as §10.6 says, Update §10.7,
Join §10.5, Leave §10.9, Ping §10.7.4.2, the partition probe §10.7.4.4), closes
connections, and reports every outcome back to the topology. Actions are queued and run
one at a time, so an outcome that arrives while others are being carried out (a
message to ourselves, a callback fired at once) never re-enters the topology midway.

Data movement (§10.5 step 6, §10.7.3) belongs to the storage layer: :class:`OverlayHooks`
is where it plugs in. The default hooks move nothing and report hand-overs done at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from reload_core.ids import NodeId
from reload_core.links.base import Link
from reload_core.node.errors import RequestError
from reload_core.node.events import NeighborsChanged, ResponsibilityChanged
from reload_core.node.requests import Answer, Outcome
from reload_core.topology.actions import (
    AcceptJoin,
    Action,
    AnswerRouteQuery,
    AttachTo,
    Disconnected,
    DropConnection,
    HandOverData,
    JoinCompleted,
    JoinFailed,
    ProbePartition,
    RejectJoin,
    Replicate,
    SendJoin,
    SendLeave,
    SendPing,
    SendUpdate,
    TopologyChanged,
)
from reload_core.topology.actions import ResponsibilityChanged as TopologyResponsibility
from reload_core.wire.chord import ChordLeaveData, ChordLeaveType, ChordUpdate, ChordUpdateType
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination, ResourceDestination
from reload_core.wire.topology import JoinReq, LeaveReq

if TYPE_CHECKING:
    from reload_core.node.node import Node


class OverlayHooks:
    """What the storage layer does when the ring changes. Subclass and set ``node.hooks``.

    Node-IDs and range ends are bytes; ranges are (start, end] on the ring.
    """

    def hand_over(self, to: bytes, start: bytes, end: bytes, done: Callable[[], None]) -> None:
        """Store the data in (start, end] on ``to`` (§10.5 step 6, §6.4.2.3); call ``done``
        when the Stores have been answered."""
        done()

    def replicate(self, to: tuple[bytes, ...], start: bytes, end: bytes) -> None:
        """Store replicas of our data in (start, end] on each of ``to`` (§10.4, §10.7.3)."""

    def responsibility_changed(self, start: bytes, end: bytes, replica_start: bytes) -> None:
        """We are now responsible for (start, end] and hold replicas from replica_start."""

    def num_resources(self) -> int:
        """Resources stored here, each Resource-ID once (Probe ``num_resources``, §6.4.2.5)."""
        return 0


def _ids(nodes: tuple[NodeId, ...]) -> tuple[bytes, ...]:
    return tuple(n.to_bytes() for n in nodes)


class ChordDriver:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._queue: deque[Action] = deque()
        self._running = False
        self._probe_links: dict[Link, NodeId] = {}
        self._tasks: set[asyncio.Future[None]] = set()

    # ---------------------------------------------------------------- the queue

    def apply(self, actions: list[Action]) -> None:
        """Carry out ``actions`` in order (after any already queued)."""
        if self.node.closed:
            # Closing fails every pending request; what the topology makes of those
            # (failed peers, a partition probe) is not for a node that is going away.
            return
        self._queue.extend(actions)
        if self._running:
            return
        self._running = True
        try:
            while self._queue:
                action = self._queue.popleft()
                try:
                    self._execute(action)
                except Exception:
                    self.node.log.exception("failed to carry out %r", action)
        finally:
            self._running = False
        self.node.arm_topology_timer()

    def _now(self) -> float:
        return self.node.clock.time()

    def _execute(self, act: Action) -> None:
        node = self.node
        if isinstance(act, SendUpdate):
            self._send_update(act)
        elif isinstance(act, AttachTo):
            self._attach(act)
        elif isinstance(act, SendPing):
            self._ping(act.dest)
        elif isinstance(act, ProbePartition):
            self._probe(act.target)
        elif isinstance(act, SendJoin):
            self._join(act.to)
        elif isinstance(act, SendLeave):
            self._leave(act)
        elif isinstance(act, DropConnection):
            node.close_links_to(act.node.to_bytes())
        elif isinstance(act, HandOverData):
            self._hand_over(act)
        elif isinstance(act, Replicate):
            node.hooks.replicate(_ids(act.to), act.start.to_bytes(), act.end.to_bytes())
        elif isinstance(act, TopologyChanged):
            node.emit(NeighborsChanged(_ids(act.predecessors), _ids(act.successors), _ids(act.fingers)))
            if node.state == "disconnected" and (act.predecessors or act.successors or act.fingers):
                node.log.info("in a ring again")
                node.set_state("joined")
        elif isinstance(act, TopologyResponsibility):
            start, end, replica = act.start.to_bytes(), act.end.to_bytes(), act.replica_start.to_bytes()
            node.hooks.responsibility_changed(start, end, replica)
            node.emit(ResponsibilityChanged(start, end, replica))
        elif isinstance(act, JoinCompleted):
            node.log.info("joined the overlay through %s", act.admitting_peer)
            node.join_completed()
        elif isinstance(act, JoinFailed):
            node.log.warning("join failed: %s", act.reason)
            node.join_failed(act.reason)
        elif isinstance(act, Disconnected):
            node.log.warning("lost every Routing Table peer (§10.7.1)")
            node.set_state("disconnected")  # back to "joined" with the first Routing Table peer
        elif isinstance(act, AcceptJoin | RejectJoin | AnswerRouteQuery):
            # Answers belong to the request handler that asked the topology; one arriving
            # here has no request left to answer.
            node.log.debug("unexpected answer action %r", act)
        else:  # pragma: no cover - a new action type needs handling here
            node.log.error("unhandled topology action %r", act)

    # ---------------------------------------------------------------- requests

    def _peer_failed_on_timeout(self, peer: NodeId) -> Callable[[Outcome], None]:
        def done(outcome: Outcome) -> None:
            # Only silence means failure; an error answer shows the peer is alive (an
            # overloaded one answers Error_Request_Timeout itself: resend later).
            timed_out = (
                isinstance(outcome, RequestError)
                and outcome.error_code == ErrorCode.Error_Request_Timeout
                and outcome.response is None
            )
            if timed_out and not self.node.is_client and self.node.state not in ("left", "closed"):
                self.apply(self.node.topology.on_peer_failed(peer, self._now()))

        return done

    def _send_update(self, act: SendUpdate) -> None:
        body = ChordUpdate(
            act.uptime,
            ChordUpdateType(int(act.type)),
            _ids(act.predecessors),
            _ids(act.successors),
            _ids(act.fingers),
        )
        self.node.send_request(
            (NodeDestination(act.to.to_bytes()),),
            MessageCode.update_req,
            body,
            self._peer_failed_on_timeout(act.to),
        )

    def _attach(self, act: AttachTo) -> None:
        topology = self.node.topology

        def done(peer: bytes | None) -> None:
            now = self._now()
            if peer is None:
                self.apply(topology.on_attach_failed(act.dest, act.resource, now))
            else:
                self.apply(topology.on_attach_succeeded(act.dest, act.resource, NodeId.from_bytes(peer), now))

        self.node.attach.attach(
            act.dest.to_bytes(),
            done,
            resource=act.resource,
            via=_ids(act.via),
            send_update=act.send_update,
        )

    def _ping(self, dest: NodeId) -> None:
        topology = self.node.topology

        def done(outcome: Outcome) -> None:
            if isinstance(outcome, Answer):
                self.apply(
                    topology.on_ping_answer(dest, NodeId.from_bytes(outcome.signer_node_id), self._now())
                )
            else:
                self.apply(topology.on_ping_failed(dest, self._now()))

        self.node.send_request((ResourceDestination(dest.to_bytes()),), MessageCode.ping_req, PingReq(), done)

    def _join(self, admitting: NodeId) -> None:
        topology = self.node.topology

        def done(outcome: Outcome) -> None:
            self.apply(topology.on_join_answer(admitting, isinstance(outcome, Answer), self._now()))

        body = JoinReq(self.node.node_id)
        self.node.send_request((NodeDestination(admitting.to_bytes()),), MessageCode.join_req, body, done)

    def _leave(self, act: SendLeave, done: Callable[[Outcome], None] | None = None) -> None:
        if act.type == ChordLeaveType.from_succ:
            data = ChordLeaveData(ChordLeaveType.from_succ, successors=_ids(act.node_ids))
        else:
            data = ChordLeaveData(ChordLeaveType.from_pred, predecessors=_ids(act.node_ids))
        body = LeaveReq.chord(self.node.node_id, data)
        self.node.send_request(
            (NodeDestination(act.to.to_bytes()),),
            MessageCode.leave_req,
            body,
            done or (lambda _outcome: None),
        )

    def send_leaves(self, actions: list[Action]) -> list[asyncio.Future[Outcome]]:
        """§10.9: send the Leaves of ``topology.leave()``; futures of their outcomes."""
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[Outcome]] = []
        for act in actions:
            if not isinstance(act, SendLeave):
                continue
            future: asyncio.Future[Outcome] = loop.create_future()

            def done(outcome: Outcome, future: asyncio.Future[Outcome] = future) -> None:
                if not future.done():
                    future.set_result(outcome)

            self._leave(act, done)
            waits.append(future)
        return waits

    def _hand_over(self, act: HandOverData) -> None:
        topology = self.node.topology
        joining = act.to

        def done() -> None:
            self.apply(topology.on_handover_done(joining, self._now()))

        self.node.hooks.hand_over(joining.to_bytes(), act.start.to_bytes(), act.end.to_bytes(), done)

    # ---------------------------------------------------------------- §10.7.4.4

    def _probe(self, target: NodeId) -> None:
        """Ping our Node-ID + 1 routed through a bootstrap node, and tell the topology who
        answered. The bootstrap node is dialed afresh: its address is all we know of it."""
        node = self.node
        candidates = [a for a in node.settings.bootstrap_nodes if a != node.address]
        if not candidates or not self._has_loop():
            node.log.debug("no bootstrap node to probe for partitions through")
            return
        link = node.transport.connect(node.rng.choice(candidates))
        self._probe_links[link] = target
        task = asyncio.ensure_future(self._probe_when_open(link, target))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _has_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    async def _probe_when_open(self, link: Link, target: NodeId) -> None:
        try:
            await link.wait_open()
        except Exception:
            self._probe_links.pop(link, None)
            return
        self._probe_links.pop(link, None)
        bootstrap = link.remote_node_id
        node = self.node
        if bootstrap is None or bootstrap == node.node_id:
            link.close()
            return
        topology = node.topology

        def done(outcome: Outcome) -> None:
            if len(node.connections.links_to(bootstrap)) > 1:
                link.close()  # we already had a link to it
            if isinstance(outcome, Answer):
                responder = NodeId.from_bytes(outcome.signer_node_id)
                self.apply(
                    topology.on_partition_probe_answer(NodeId.from_bytes(bootstrap), responder, self._now())
                )

        dests = (NodeDestination(bootstrap), ResourceDestination(target.to_bytes()))
        node.send_request(dests, MessageCode.ping_req, PingReq(), done)


__all__ = ["ChordDriver", "OverlayHooks"]

"""ChordTopology's procedures, one rule at a time, on 8-bit rings checked by hand:
joining (RFC 6940 §10.5) from both sides, Updates (§10.7.3), neighbour and finger failures
(§10.7.1, §10.7.2), stabilisation (§10.7.4), partitions (§10.7.4.4), RouteQuery (§10.8)
and leaving (§10.9)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import TypeVar

import pytest

from reload_core.ids import NodeId
from reload_core.topology import (
    AcceptJoin,
    Action,
    AnswerRouteQuery,
    AttachTo,
    ChordConfig,
    ChordLeaveType,
    ChordState,
    ChordTopology,
    ChordUpdateType,
    Disconnected,
    DropConnection,
    Forward,
    HandOverData,
    JoinCompleted,
    JoinFailed,
    JoinPhase,
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
from reload_core.topology.fingers import finger_index
from reload_core.topology.neighbors import NeighborTable
from reload_core.wire.codes import ErrorCode

BITS = 8
FAR = 1e9  # keeps a timer out of the way of the one under test
RING7 = (10, 50, 90, 130, 170, 210, 250)

A = TypeVar("A")


def n(v: int) -> NodeId:
    return NodeId(v, BITS)


def ids(*values: int) -> tuple[NodeId, ...]:
    return tuple(n(v) for v in values)


def of(acts: Iterable[Action], kind: type[A]) -> list[A]:
    return [a for a in acts if isinstance(a, kind)]


def updates_to(acts: Iterable[Action]) -> dict[NodeId, SendUpdate]:
    return {a.to: a for a in of(acts, SendUpdate)}


def phase(t: ChordTopology) -> JoinPhase | None:
    return t.join_phase  # a call, so that mypy does not narrow the property between steps


def state(t: ChordTopology) -> ChordState:
    return t.state


def config(**kw: object) -> ChordConfig:
    base: dict[str, object] = {
        "update_interval": 100.0,
        "ping_interval": FAR,
        "partition_check_interval": FAR,
    }
    base.update(kw)
    return ChordConfig(**base)  # type: ignore[arg-type]


class LowRandom(random.Random):
    """Decides every 0.5 coin toss of §10.7.4.2 for "search this entry"."""

    def random(self) -> float:
        return 0.25


def peer(
    x: int, others: Sequence[int], cfg: ChordConfig | None = None, rng: random.Random | None = None
) -> ChordTopology:
    """A joined peer connected to ``others``, each known as a ring peer (a peer_ready Update)."""
    t = ChordTopology(n(x), now=0.0, rng=rng or random.Random(7), config=cfg or config())
    t.start_alone(0.0)
    for o in others:
        if o != x:
            t.on_connected(n(o), 0.0)
            t.on_update_received(n(o), ChordUpdateType.peer_ready, (), (), (), 0.0)
    return t


# == joining: the joining node (§10.5) ==================================================


def test_join_sequence_of_the_joining_node() -> None:
    jn = ChordTopology(n(70), now=0.0, rng=random.Random(1), config=config())
    every: list[Action] = []

    acts = jn.start_join(n(10), 0.0)
    every += acts
    assert of(acts, AttachTo) == [AttachTo(n(71), resource=True, via=(), send_update=True)]  # step 2
    assert state(jn) is ChordState.JOINING and phase(jn) is JoinPhase.ATTACHING_AP
    assert jn.route(n(71), resource=True) == Forward(n(10))  # through the bootstrap
    assert not jn.is_responsible(n(70))

    every += jn.on_attach_succeeded(n(71), True, n(90), 1.0)
    assert phase(jn) is JoinPhase.AWAITING_AP_UPDATE and jn.admitting_peer == n(90)

    # AP's Routing Table, asked for with send_update: neighbours and fingers
    acts = jn.on_update_received(
        n(90), ChordUpdateType.full, ids(50, 10, 250), ids(130, 170, 210), ids(130, 170, 250), 2.0
    )
    every += acts
    assert phase(jn) is JoinPhase.ATTACHING_NEIGHBORS
    attaches = of(acts, AttachTo)
    # step 3: the neighbours it lacks, source-routed through AP (§10.6) ...
    assert [a for a in attaches if not a.resource] == [
        AttachTo(n(v), resource=False, via=(n(90),), send_update=True) for v in (50, 130, 170, 250)
    ]
    # ... and fingers n + 2^(8-i) for the entries beyond its successors (which reach 170)
    assert [a for a in attaches if a.resource] == [AttachTo(n(198), True), AttachTo(n(134), True)]

    for v in (50, 130, 170):
        acts = jn.on_attach_succeeded(n(v), False, n(v), 3.0)
        assert not of(acts, SendJoin)
        every += acts
    every += jn.on_attach_succeeded(n(198), True, n(210), 3.0)  # a finger; does not hold up the Join
    acts = jn.on_attach_succeeded(n(250), False, n(250), 4.0)
    every += acts
    assert of(acts, SendJoin) == [SendJoin(n(90))]  # step 5, after every neighbour Attach
    assert phase(jn) is JoinPhase.JOIN_SENT
    assert jn.successors == ids(90, 130, 170) and jn.predecessors == ids(50, 10, 250)  # step 4
    assert jn.fingers == ids(210)  # entry 1: [198, 69]

    every += jn.on_attach_failed(n(134), True, 4.0)
    every += jn.on_join_answer(n(90), True, 5.0)
    assert phase(jn) is JoinPhase.AWAITING_ADMISSION
    assert not of(every, SendUpdate)  # no Update before it is in the ring (§10.5)

    # step 7: AP's Update labels JN as its predecessor
    acts = jn.on_update_received(
        n(90), ChordUpdateType.neighbors, ids(70, 50, 10), ids(130, 170, 210), (), 6.0
    )
    assert state(jn) is ChordState.JOINED and phase(jn) is None
    assert of(acts, JoinCompleted) == [JoinCompleted(n(90))]
    assert of(acts, ResponsibilityChanged) == [ResponsibilityChanged(n(50), n(70), n(250))]
    # step 9: Updates to the peers of its Neighbor Table, not to its finger (210)
    sent = updates_to(acts)
    assert set(sent) == set(ids(10, 50, 90, 130, 170, 250))
    assert all(u.type is ChordUpdateType.neighbors for u in sent.values())
    assert sent[n(90)].predecessors == ids(50, 10, 250) and sent[n(90)].successors == ids(90, 130, 170)
    assert sent[n(90)].uptime == 6
    assert jn.is_responsible(n(60)) and jn.is_responsible(n(70)) and not jn.is_responsible(n(50))


def test_admission_update_may_come_before_the_join_answer() -> None:
    jn = ChordTopology(n(70), now=0.0, rng=random.Random(1), config=config())
    jn.start_join(n(90), 0.0)
    jn.on_attach_succeeded(n(71), True, n(90), 0.0)
    acts = jn.on_update_received(n(90), ChordUpdateType.full, (), (), (), 0.0)  # AP alone
    assert of(acts, SendJoin) == [SendJoin(n(90))]
    jn.on_update_received(n(90), ChordUpdateType.neighbors, ids(70), ids(70), (), 1.0)
    assert state(jn) is ChordState.JOINING
    acts = jn.on_join_answer(n(90), True, 2.0)
    assert state(jn) is ChordState.JOINED
    assert of(acts, ResponsibilityChanged) == [ResponsibilityChanged(n(90), n(70), n(70))]
    assert jn.successors == ids(90) and jn.predecessors == ids(90)


def test_update_from_ap_before_its_attach_completes() -> None:
    jn = ChordTopology(n(70), now=0.0, rng=random.Random(1), config=config())
    jn.start_join(n(10), 0.0)
    jn.on_connected(n(90), 0.5)  # the link layer says so before the Attach's outcome comes in
    acts = jn.on_update_received(n(90), ChordUpdateType.full, ids(50, 10, 250), ids(130, 170, 210), (), 0.5)
    assert {a.dest for a in of(acts, AttachTo)} == set(ids(50, 130, 170, 250))
    acts = jn.on_attach_succeeded(n(71), True, n(90), 1.0)
    assert phase(jn) is JoinPhase.ATTACHING_NEIGHBORS
    assert [a.dest for a in of(acts, AttachTo)] == list(ids(198, 134))


@pytest.mark.parametrize("how", ["attach", "refused", "timeout", "lost"])
def test_join_failures(how: str) -> None:
    jn = ChordTopology(n(70), now=0.0, rng=random.Random(1), config=config(join_timeout=50.0))
    jn.start_join(n(10), 0.0)
    if how == "attach":
        acts = jn.on_attach_failed(n(71), True, 1.0)
    else:
        jn.on_attach_succeeded(n(71), True, n(90), 1.0)
        jn.on_update_received(n(90), ChordUpdateType.full, (), (), (), 1.0)
        if how == "refused":
            acts = jn.on_join_answer(n(90), False, 2.0)
        elif how == "timeout":
            assert jn.next_timer() == 50.0
            assert not of(jn.tick(49.0), JoinFailed)
            acts = jn.tick(50.0)
        else:
            acts = jn.on_connection_lost(n(90), 2.0)
    assert len(of(acts, JoinFailed)) == 1
    assert state(jn) is ChordState.IDLE and phase(jn) is None


# == joining: the admitting peer (§10.5) =================================================


def test_admitting_peer_side() -> None:
    ap = peer(90, RING7)
    acts = ap.on_connected(n(70), 10.0, send_update_requested=True)
    assert of(acts, SendUpdate) == [
        SendUpdate(n(70), ChordUpdateType.full, 10, ids(50, 10, 250), ids(130, 170, 210), ap.fingers)
    ]
    assert ap.route(n(70), resource=False) == Forward(n(70))  # JN's answers go straight to it

    acts = ap.on_join_request(n(70), 11.0)
    assert acts == [AcceptJoin(n(70)), HandOverData(n(70), n(50), n(70))]  # steps 5-6
    assert ap.is_responsible(n(60))  # until the Stores are done

    acts = ap.on_handover_done(n(70), 12.0)
    assert ap.predecessors == ids(70, 50, 10)
    assert of(acts, ResponsibilityChanged) == [ResponsibilityChanged(n(70), n(90), n(10))]
    assert not of(acts, HandOverData)  # already handed over
    sent = updates_to(acts)
    assert set(sent) == set(ids(10, 50, 70, 130, 170, 210, 250))  # steps 7-8, §10.7.3
    assert sent[n(70)].predecessors == ids(70, 50, 10)  # labels JN as AP's predecessor
    assert not ap.is_responsible(n(60)) and ap.is_responsible(n(71))


def test_admitting_peer_refuses_joins_it_cannot_take() -> None:
    ap = peer(90, RING7)
    for v in (100, 60, 50):
        ap.on_connected(n(v), 1.0)
    assert of(ap.on_join_request(n(100), 2.0), RejectJoin)[0].error_code is ErrorCode.Error_Forbidden
    assert of(ap.on_join_request(n(50), 2.0), RejectJoin)[0].error_code is ErrorCode.Error_Forbidden
    assert (
        of(ap.on_join_request(n(80), 2.0), RejectJoin)[0].error_code is ErrorCode.Error_Forbidden
    )  # no connection
    assert of(ap.on_join_request(n(60), 2.0), AcceptJoin)
    assert of(ap.on_join_request(n(60), 2.0), RejectJoin)[0].error_code is ErrorCode.Error_In_Progress


def test_first_peer_is_responsible_for_everything() -> None:
    t = ChordTopology(n(90), now=0.0, rng=random.Random(1), config=config())
    acts = t.start_alone(0.0)
    assert of(acts, ResponsibilityChanged) == [ResponsibilityChanged(n(90), n(90), n(90))]
    assert all(t.is_responsible(n(k)) for k in range(256))


# == Updates (§10.7.3) ===================================================================


def test_update_naming_a_closer_peer_leads_to_an_attach_then_a_new_neighbour() -> None:
    x = peer(90, RING7)
    acts = x.on_update_received(
        n(130), ChordUpdateType.neighbors, ids(100, 90, 50), ids(170, 210, 250), (), 1.0
    )
    assert of(acts, AttachTo) == [AttachTo(n(100), resource=False, via=(n(130),), send_update=True)]
    assert x.successors == ids(130, 170, 210)  # not before the Attach succeeds

    acts = x.on_attach_succeeded(n(100), False, n(100), 2.0)
    assert x.successors == ids(100, 130, 170)
    assert of(acts, TopologyChanged)
    assert of(acts, Replicate) == [Replicate(ids(100), n(50), n(90))]  # new replica holder
    assert not of(acts, ResponsibilityChanged)
    assert set(updates_to(acts)) == set(ids(10, 50, 100, 130, 170, 210, 250))  # reactive: Connection Table


def test_update_with_nothing_new_changes_nothing() -> None:
    x = peer(90, RING7)
    assert (
        x.on_update_received(n(130), ChordUpdateType.neighbors, ids(90, 50, 10), ids(170, 210, 250), (), 1.0)
        == []
    )


def test_update_that_misses_us_is_answered_with_ours() -> None:
    x = peer(90, RING7)
    acts = x.on_update_received(
        n(130), ChordUpdateType.neighbors, ids(50, 10, 250), ids(170, 210, 250), (), 1.0
    )
    assert of(acts, SendUpdate) == [
        SendUpdate(n(130), ChordUpdateType.neighbors, 1, ids(50, 10, 250), ids(130, 170, 210))
    ]


def test_periodic_recovery_sends_only_peer_ready_to_a_new_neighbour() -> None:
    x = peer(90, RING7, config(reactive=False))
    x.on_update_received(n(130), ChordUpdateType.neighbors, ids(100, 90, 50), ids(170, 210, 250), (), 1.0)
    acts = x.on_attach_succeeded(n(100), False, n(100), 2.0)
    assert of(acts, SendUpdate) == [SendUpdate(n(100), ChordUpdateType.peer_ready, 2)]


def test_failed_peer_is_ignored_in_stale_updates_until_the_hold_expires() -> None:
    x = peer(90, RING7, config(failed_hold=50.0))
    x.on_update_received(n(130), ChordUpdateType.neighbors, ids(100, 90, 50), ids(170, 210, 250), (), 1.0)
    x.on_attach_succeeded(n(100), False, n(100), 1.0)
    x.on_peer_failed(n(100), 2.0)  # e.g. its Update timed out
    stale = (n(130), ChordUpdateType.neighbors, ids(100, 90, 50), ids(170, 210, 250), ())
    assert not of(x.on_update_received(*stale, 10.0), AttachTo)
    assert of(x.on_update_received(*stale, 53.0), AttachTo) == [
        AttachTo(n(100), resource=False, via=(n(130),), send_update=True)
    ]


def test_a_failed_attach_is_tried_again_when_named_again() -> None:
    # A routed Attach can fail while the ring is in flux; that is no proof the peer is dead.
    x = peer(90, RING7)
    update = (n(130), ChordUpdateType.neighbors, ids(100, 90, 50), ids(170, 210, 250), ())
    x.on_update_received(*update, 1.0)
    assert x.on_attach_failed(n(100), False, 2.0) == []
    assert [a.dest for a in of(x.on_update_received(*update, 3.0), AttachTo)] == [n(100)]


# == neighbour failures (§10.7.1) ========================================================


def test_successor_failure_replaces_it_and_holds_replicas_down() -> None:
    x = peer(90, RING7)
    acts = x.on_connection_lost(n(130), 100.0)
    assert x.successors == ids(170, 210, 250)
    assert set(updates_to(acts)) == set(ids(10, 50, 170, 210, 250))
    assert not of(acts, Replicate)  # successor replacement hold-down (30 s)
    assert x.next_timer() is not None and x.next_timer() <= 130.0  # type: ignore[operator]
    assert not of(x.tick(129.0), Replicate)
    assert of(x.tick(130.0), Replicate) == [Replicate(ids(210), n(50), n(90))]


def test_predecessor_failure_widens_the_range() -> None:
    x = peer(90, RING7)
    acts = x.on_connection_lost(n(50), 1.0)
    assert of(acts, ResponsibilityChanged) == [ResponsibilityChanged(n(10), n(90), n(210))]
    assert of(acts, Replicate) == [Replicate(ids(130, 170), n(10), n(50))]  # now ours, replicate it
    assert set(updates_to(acts)) == set(ids(10, 130, 170, 210, 250))
    assert x.is_responsible(n(20))


def test_lost_neighbour_is_replaced_from_the_other_neighbours_lists() -> None:
    # ring of 10, 30, ..., 190; 90 is connected only to its neighbours
    x = peer(90, (30, 50, 70, 110, 130, 150))
    x.on_update_received(n(130), ChordUpdateType.neighbors, ids(110, 90, 70), ids(150, 170, 190), (), 1.0)
    assert x.successors == ids(110, 130, 150)
    acts = x.on_connection_lost(n(110), 2.0)
    assert x.successors == ids(130, 150, 30)  # best of what is left in the Routing Table
    assert of(acts, AttachTo) == [AttachTo(n(170), resource=False, via=(n(130),), send_update=True)]
    x.on_attach_succeeded(n(170), False, n(170), 3.0)
    assert x.successors == ids(130, 150, 170)


def test_request_failure_drops_the_connection() -> None:
    x = peer(90, RING7)
    acts = x.on_peer_failed(n(170), 1.0)
    assert of(acts, DropConnection) == [DropConnection(n(170))]
    assert n(170) not in x.connected and x.successors == ids(130, 210, 250)


def test_losing_every_peer_is_a_disconnection() -> None:
    x = peer(90, (50,))
    acts = x.on_connection_lost(n(50), 1.0)
    assert of(acts, Disconnected) == [Disconnected()]
    assert of(acts, ProbePartition) == [ProbePartition(n(91))]
    assert of(acts, ResponsibilityChanged) == [ResponsibilityChanged(n(90), n(90), n(90))]


# == fingers (§10.7.2, §10.7.4.2, §10.7.4.3) ==============================================


def finger_peer(cfg: ChordConfig) -> ChordTopology:
    x = peer(0, (10, 20, 30, 200, 220, 240), cfg, LowRandom(3))
    acts = x.tick(x.next_timer())  # type: ignore[arg-type]
    (ping,) = of(acts, SendPing)
    assert finger_index(n(0), ping.dest) == 1  # the first invalid entry, [128, 255]
    acts = x.on_ping_answer(ping.dest, n(150), 1.0)
    assert of(acts, AttachTo) == [AttachTo(n(150), resource=False)]
    x.on_attach_succeeded(n(150), False, n(150), 2.0)
    assert x.fingers == ids(150) and x.finger_table.entry(1) == n(150)
    return x


def test_finger_refresh_pings_a_random_id_in_an_invalid_entry() -> None:
    finger_peer(config(ping_interval=1000.0, update_interval=FAR))


def test_finger_failure_with_reactive_recovery_searches_again() -> None:
    x = finger_peer(config(ping_interval=1000.0, update_interval=FAR))
    acts = x.on_connection_lost(n(150), 3.0)
    assert x.fingers == ()
    (ping,) = of(acts, SendPing)
    assert finger_index(n(0), ping.dest) == 1
    assert x.successors == ids(10, 20, 30)  # a finger is not a neighbour


def test_finger_failure_with_periodic_recovery_waits() -> None:
    x = finger_peer(config(ping_interval=1000.0, update_interval=FAR, reactive=False))
    assert not of(x.on_connection_lost(n(150), 3.0), SendPing)


def test_finger_table_grows_with_the_overlay_size_estimate() -> None:
    step = 1 << 100
    x = ChordTopology(
        NodeId(0), now=0.0, rng=random.Random(1), config=config(ping_interval=10.0, update_interval=FAR)
    )
    x.start_alone(0.0)
    for k in (1, 2, 3, -1, -2, -3):
        node = NodeId(k * step % (1 << 128))
        x.on_connected(node, 0.0)
        x.on_update_received(node, ChordUpdateType.peer_ready, (), (), (), 0.0)
    assert x.estimated_overlay_size() == 2.0**28
    assert x.finger_table.size == 16
    x.tick(10.0)
    assert x.finger_table.size == 28  # ceil(log2 N), RFC 7363 §6.2


# == stabilisation (§10.7.4.1) and housekeeping =============================================


def test_periodic_update_goes_to_each_neighbour_every_interval() -> None:
    x = peer(90, (*RING7, 60, 120))
    due = x.next_timer()
    assert due is not None and 0.0 <= due < 100.0
    assert not of(x.tick(due - 0.5), SendUpdate)
    sent = updates_to(x.tick(due))
    assert set(sent) == set(ids(60, 50, 10, 120, 130, 170))  # neighbours, not 210 or 250
    assert all(u.type is ChordUpdateType.neighbors for u in sent.values())
    assert x.next_timer() == pytest.approx(due + 100.0)


def test_connections_we_opened_are_closed_after_falling_out_of_the_tables() -> None:
    x = peer(90, RING7, config(eviction_grace=40.0))
    x.on_update_received(n(130), ChordUpdateType.neighbors, ids(100, 90, 50), ids(170, 210, 250), (), 1.0)
    x.on_attach_succeeded(n(100), False, n(100), 1.0)
    x.on_update_received(n(100), ChordUpdateType.neighbors, ids(97, 96, 95), ids(130, 170, 210), (), 5.0)
    for v in (95, 96, 97):
        x.on_attach_succeeded(n(v), False, n(v), 5.0)
    assert x.successors == ids(95, 96, 97)
    assert not of(x.tick(44.0), DropConnection)
    assert of(x.tick(45.0), DropConnection) == [DropConnection(n(100))]  # 130, 170 opened theirs
    assert n(100) not in x.connected and n(130) in x.connected


def test_partition_check_and_healing() -> None:
    x = peer(90, RING7, config(partition_check_interval=500.0, update_interval=FAR))
    acts = x.tick(x.next_timer())  # type: ignore[arg-type]
    assert of(acts, ProbePartition) == [ProbePartition(n(91))]
    assert x.on_partition_probe_answer(n(10), n(130), 1.0) == []  # our successor: all well
    acts = x.on_partition_probe_answer(n(10), n(100), 1.0)
    assert of(acts, AttachTo) == [AttachTo(n(100), resource=False, via=(n(10),), send_update=True)]
    acts = x.on_attach_succeeded(n(100), False, n(100), 2.0)
    assert n(100) in updates_to(acts)
    assert x.successors[0] == n(100)


def test_route_query() -> None:
    x = peer(90, RING7)
    acts = x.on_route_query(n(10), n(150), resource=True, send_update=False, now=1.0)
    assert acts == [AnswerRouteQuery(n(10), n(130))]
    acts = x.on_route_query(n(10), n(60), resource=True, send_update=True, now=1.0)
    assert acts[0] == AnswerRouteQuery(n(10), n(90))
    assert updates_to(acts)[n(10)].type is ChordUpdateType.full


# == leaving (§10.9) ====================================================================


def test_leaving_peer_tells_its_neighbours() -> None:
    x = peer(90, RING7)
    acts = x.leave(5.0)
    assert acts == [
        SendLeave(n(130), ChordLeaveType.from_pred, ids(50, 10, 250)),
        SendLeave(n(170), ChordLeaveType.from_pred, ids(50, 10, 250)),
        SendLeave(n(210), ChordLeaveType.from_pred, ids(50, 10, 250)),
        SendLeave(n(50), ChordLeaveType.from_succ, ids(130, 170, 210)),
        SendLeave(n(10), ChordLeaveType.from_succ, ids(130, 170, 210)),
        SendLeave(n(250), ChordLeaveType.from_succ, ids(130, 170, 210)),
    ]
    assert state(x) is ChordState.LEFT
    assert x.tick(1e6) == [] and x.on_connected(n(5), 6.0) == []


def test_small_ring_leave_reaches_each_neighbour_once() -> None:
    x = peer(90, (10, 50))
    assert [(a.to, a.type) for a in of(x.leave(1.0), SendLeave)] == [
        (n(10), ChordLeaveType.from_pred),
        (n(50), ChordLeaveType.from_pred),
    ]


def test_leave_received_is_handled_as_a_failure() -> None:
    x = peer(130, (10, 50, 90, 170, 210, 250))
    acts = x.on_leave_received(n(90), ChordLeaveType.from_pred, ids(50, 10, 250), 1.0)
    assert of(acts, DropConnection) == [DropConnection(n(90))]
    assert x.predecessors == ids(50, 10, 250)
    assert of(acts, ResponsibilityChanged) == [ResponsibilityChanged(n(50), n(130), n(250))]
    assert of(acts, Replicate) == [Replicate(ids(170, 210), n(50), n(90))]
    stale = x.on_update_received(
        n(50), ChordUpdateType.neighbors, ids(10, 250, 210), ids(90, 130, 170), (), 2.0
    )
    assert not of(stale, AttachTo)  # the leaver is not Attached again


def test_leave_lists_bring_in_new_neighbours() -> None:
    x = peer(130, (90, 170, 210, 250))  # knows no peer before 90
    acts = x.on_leave_received(n(90), ChordLeaveType.from_pred, ids(50, 10, 250), 1.0)
    assert [a.dest for a in of(acts, AttachTo)] == list(ids(10, 50))
    assert all(a.via == () for a in of(acts, AttachTo))  # not through the peer that left


def test_two_peers_that_disagree_about_reachability_do_not_answer_each_other_for_ever() -> None:
    # 90 reaches 100 but not 120; 130 reaches 120 but not 100 (each took the other for dead).
    a = peer(90, (50, 100, 130, 170))
    b = peer(130, (90, 120, 170, 210))
    a.on_peer_failed(n(120), 0.0)
    b.on_peer_failed(n(100), 0.0)
    pending = [
        (a, u)
        for u in a.tick(a.next_timer())  # type: ignore[arg-type]
        if isinstance(u, SendUpdate) and u.to == n(130)
    ]
    exchanged = 0
    while pending and exchanged < 20:
        src, u = pending.pop(0)
        dst = b if src is a else a
        acts = dst.on_update_received(src.node_id, u.type, u.predecessors, u.successors, u.fingers, 1.0)
        pending += [(dst, r) for r in of(acts, SendUpdate) if r.to == src.node_id]
        exchanged += 1
    assert exchanged < 20 and not pending


@pytest.mark.parametrize("seed", range(5))
def test_the_neighbor_table_kept_up_incrementally_is_the_one_a_full_rebuild_gives(seed: int) -> None:
    """The table is rebuilt from the old one and the peers added since, unless a peer
    went: after any mix of connections, Updates and losses it must be what building it
    from every peer gives."""
    rng = random.Random(seed)
    x = peer(128, [])
    known: list[int] = []
    for step in range(400):
        now = 1.0 + step
        roll = rng.random()
        if roll < 0.5 or not known:
            o = rng.randrange(1, 256)
            if o != 128:
                x.on_connected(n(o), now)
                x.on_update_received(n(o), ChordUpdateType.peer_ready, (), (), (), now)
                known.append(o)
        elif roll < 0.8:
            listed = rng.sample(range(1, 256), 6)
            x.on_update_received(
                n(rng.choice(known)), ChordUpdateType.neighbors, ids(*listed[:3]), ids(*listed[3:]), (), now
            )
        else:
            x.on_connection_lost(n(known.pop(rng.randrange(len(known)))), now)
        full = NeighborTable.build(n(128), x._peers, x.config.neighbor_count)
        assert (x.predecessors, x.successors) == (full.predecessors, full.successors), f"step {step}"

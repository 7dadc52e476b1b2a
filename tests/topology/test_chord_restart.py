"""Lost peers taken for dead (RFC 6940 §10.7.1) and a peer restarted with the same Node-ID
joining again (§10.5 step 3: its Attaches populate Connection Tables only)."""

from __future__ import annotations

from reload_core.topology import AcceptJoin, Action, AttachTo, ChordUpdateType, RejectJoin
from tests.topology.test_chord_protocol import RING7, ids, n, of, peer


def test_a_lost_peer_is_not_attached_again_from_a_stale_update() -> None:
    x = peer(90, RING7)
    x.on_connection_lost(n(130), 1.0)
    stale = x.on_update_received(
        n(170), ChordUpdateType.neighbors, ids(130, 90, 50), ids(210, 250, 10), (), 2.0
    )
    assert n(130) not in [a.dest for a in of(stale, AttachTo)]


def test_a_restarted_peer_is_admitted_by_its_successor_despite_stale_updates() -> None:
    ap = peer(170, RING7)  # the successor of 130, hence its admitting peer
    ap.on_connection_lost(n(130), 1.0)
    assert ap.predecessors == ids(90, 50, 10)
    ap.on_connected(n(130), 2.0, send_update_requested=True)  # restarted, §10.5 step 2
    # A pending Attach completed by the restarted peer's connection, and a stale Update.
    ap.on_attach_succeeded(n(130), False, n(130), 2.5)
    ap.on_update_received(n(90), ChordUpdateType.neighbors, ids(50, 10, 250), ids(130, 170, 210), (), 3.0)
    assert n(130) not in ap.routing_table()
    acts = ap.on_join_request(n(130), 4.0)
    assert of(acts, AcceptJoin) == [AcceptJoin(n(130))] and not of(acts, RejectJoin)
    ap.on_handover_done(n(130), 5.0)
    assert ap.predecessors == ids(130, 90, 50)


def test_a_restarted_neighbor_enters_with_its_own_update() -> None:
    x = peer(90, RING7)
    x.on_connection_lost(n(130), 1.0)
    x.on_connected(n(130), 2.0)
    x.on_update_received(n(170), ChordUpdateType.neighbors, ids(130, 90, 50), ids(210, 250, 10), (), 3.0)
    assert n(130) not in x.successors
    x.on_update_received(n(130), ChordUpdateType.neighbors, ids(90, 50, 10), ids(170, 210, 250), (), 4.0)
    assert x.successors == ids(130, 170, 210)


RING16 = tuple(range(0, 160, 10))


def test_two_successors_failing_at_once_are_replaced_without_waiting() -> None:
    """§10.7.1 with reactive recovery: 90 loses 100 and 110 together. The last reports of its
    neighbours still name the first lost one; it must not hold a Neighbor Table slot (as an
    Attach that can only time out) and keep 140 out until the periodic Update."""
    alive = set(RING16) - {100, 110}
    x = peer(90, (60, 70, 80, 100, 110, 120))
    for s in (100, 110, 120):
        x.on_update_received(
            n(s), ChordUpdateType.neighbors, ids(s - 10, s - 20, s - 30), ids(s + 10, s + 20, s + 30), (), 0.0
        )
    pending: list[AttachTo] = []

    def take(acts: list[Action]) -> None:
        pending.extend(of(acts, AttachTo))

    take(x.on_connection_lost(n(100), 1.0))
    take(x.on_connection_lost(n(110), 1.0))
    # 120's reactive Update arrives while the Attaches are still out.
    take(
        x.on_update_received(n(120), ChordUpdateType.neighbors, ids(90, 80, 70), ids(130, 140, 150), (), 2.0)
    )
    while pending:
        a = pending.pop(0)
        if a.dest.value in alive:
            take(x.on_attach_succeeded(a.dest, a.resource, a.dest, 3.0))
        else:
            take(x.on_attach_failed(a.dest, a.resource, 12.0))
    assert x.successors == ids(120, 130, 140)

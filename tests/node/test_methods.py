"""The built-in methods (Probe §6.4.2.5, RouteQuery §6.4.2.4/§10.8, Join/Leave checks
§6.4.2.1-2, Attach §6.5.1.2), handlers registered by upper layers, fragmented requests
(§6.7) and the log limiter."""

from __future__ import annotations

import asyncio
import logging

import pytest

from reload_core.ids import NodeId
from reload_core.links.base import VirtualClock
from reload_core.node import IncomingRequest, Node, RequestError, RequestRejected, wait_until
from reload_core.node.logs import LogLimiter, NodeLogger
from reload_core.topology.routing import Forward
from reload_core.wire.chord import ChordLeaveData, ChordLeaveType, ChordRouteQueryAns
from reload_core.wire.codes import ApplicationId, ErrorCode, MessageCode, ProbeInformationType
from reload_core.wire.fragment import fragment_message
from reload_core.wire.link_methods import AppAttachAns, AppAttachReq, PingAns, PingReq
from reload_core.wire.message import NodeDestination, ResourceDestination
from reload_core.wire.registry import WireStruct
from reload_core.wire.topology import (
    JoinReq,
    LeaveReq,
    ProbeAns,
    ProbeReq,
    ResponsibleSetInformation,
    RouteQueryReq,
    UptimeInformation,
)

from .support import MemoryRing
from .test_hostile import Hostile, hostile  # noqa: F401  (fixture)
from .test_ring import build


async def test_probe_answers_what_was_asked_in_order(ring: MemoryRing) -> None:
    nodes = await build(ring, 5)
    asked = (
        ProbeInformationType.uptime,
        0x63,
        ProbeInformationType.responsible_set,
        ProbeInformationType.num_resources,
    )
    total = 0
    for node in nodes:
        body, _ = await nodes[0].request(
            NodeDestination(node.node_id), MessageCode.probe_req, ProbeReq(asked)
        )
        assert isinstance(body, ProbeAns)
        types = [info.type for info in body.probe_info]
        assert types == [
            ProbeInformationType.uptime,
            ProbeInformationType.responsible_set,
            ProbeInformationType.num_resources,
        ]
        uptime, share = body.probe_info[0], body.probe_info[1]
        assert isinstance(uptime, UptimeInformation) and isinstance(share, ResponsibleSetInformation)
        total += share.responsible_ppb
    # The ranges of the peers tile the ring: parts per billion add up to a billion.
    assert abs(total - 1_000_000_000) <= len(nodes)


async def test_route_query_names_the_next_hop(ring: MemoryRing) -> None:
    nodes = await build(ring, 8)
    asker, asked = nodes[0], nodes[5]
    for key in (b"\x00" * 16, b"\x7f" * 16, nodes[2].node_id):
        body, _ = await asker.request(
            NodeDestination(asked.node_id),
            MessageCode.route_query_req,
            RouteQueryReq(False, ResourceDestination(key)),
        )
        assert isinstance(body, ChordRouteQueryAns)
        expected = asked.topology.route(NodeId.from_bytes(key), resource=True)
        want = expected.next_hop.to_bytes() if isinstance(expected, Forward) else asked.node_id
        assert body.next_peer == want


async def test_join_and_leave_are_checked_against_the_signer_and_the_link(ring: MemoryRing) -> None:
    nodes = await build(ring, 4)
    a, b = nodes[0], nodes[1]
    with pytest.raises(RequestError) as caught:
        await a.request(NodeDestination(b.node_id), MessageCode.join_req, JoinReq(nodes[2].node_id))
    assert caught.value.error_code == ErrorCode.Error_Forbidden  # joining_peer_id is not the signer
    # Source-routed through another peer, it does not come over a link bound to the joiner.
    detour = (NodeDestination(nodes[2].node_id), NodeDestination(b.node_id))
    with pytest.raises(RequestError) as caught:
        await a.request(detour, MessageCode.join_req, JoinReq(a.node_id))
    assert caught.value.error_code == ErrorCode.Error_Forbidden
    assert b"direct connection" in caught.value.error_info
    leave = LeaveReq.chord(nodes[3].node_id, ChordLeaveData(ChordLeaveType.from_pred, predecessors=()))
    with pytest.raises(RequestError) as caught:
        await a.request(NodeDestination(b.node_id), MessageCode.leave_req, leave)
    assert caught.value.error_code == ErrorCode.Error_Forbidden
    garbled = LeaveReq(a.node_id, b"\x09")
    with pytest.raises(RequestError) as caught:
        await a.request(NodeDestination(b.node_id), MessageCode.leave_req, garbled)
    assert caught.value.error_code == ErrorCode.Error_Invalid_Message
    # A Join of a peer already in the ring is refused (its ID is not in b's range).
    with pytest.raises(RequestError) as caught:
        await a.request(NodeDestination(b.node_id), MessageCode.join_req, JoinReq(a.node_id))
    assert caught.value.error_code == ErrorCode.Error_Forbidden
    assert b.is_joined and a.node_id in b.connected_nodes


async def test_registered_handlers_sync_async_and_rejecting(ring: MemoryRing) -> None:
    nodes = await build(ring, 3)
    server, caller = nodes[0], nodes[2]
    seen: list[IncomingRequest] = []
    after: list[str] = []

    async def app_attach(request: IncomingRequest) -> WireStruct:
        seen.append(request)
        body = request.body
        assert isinstance(body, AppAttachReq)
        if body.application != ApplicationId.SIP:
            raise RequestRejected(ErrorCode.Error_Not_Found, "no such application")
        request.defer(lambda: after.append("sent"))
        await asyncio.sleep(0)  # a handler that awaits something
        return AppAttachAns(b"uf", b"pw", ApplicationId.SIP, b"active", ())

    server.register_handler(MessageCode.app_attach_req, app_attach)
    request = AppAttachReq(b"u", b"p", ApplicationId.SIP, b"passive", ())
    body, message = await caller.request(NodeDestination(server.node_id), MessageCode.app_attach_req, request)
    assert isinstance(body, AppAttachAns) and body.application == ApplicationId.SIP
    assert message.message_contents.message_code == MessageCode.app_attach_ans
    assert seen[0].signer_node_id == caller.node_id and after == ["sent"]
    with pytest.raises(RequestError) as caught:
        await caller.request(
            NodeDestination(server.node_id),
            MessageCode.app_attach_req,
            AppAttachReq(b"u", b"p", 9999, b"passive", ()),
        )
    assert caught.value.error_code == ErrorCode.Error_Not_Found
    assert caught.value.error_info == b"no such application"
    with pytest.raises(ValueError):
        server.register_handler(MessageCode.ping_ans, app_attach)


async def test_simultaneous_attaches_meet_in_one_connection(ring: MemoryRing) -> None:
    """§6.5.1.2's tie-breaker: both sides Attach at once and both learn of one connection."""
    nodes = await build(ring, 2)
    x = await ring.new_node()
    y = await ring.new_node()
    # x and y know nothing of each other; each reaches the other through the ring's peers.
    for node in (x, y):
        await node.connect_as_client([nodes[0].address])  # type: ignore[list-item]
    results: dict[str, bytes | None] = {}
    x.attach.attach(y.node_id, lambda peer: results.__setitem__("x", peer), resource=False)
    y.attach.attach(x.node_id, lambda peer: results.__setitem__("y", peer), resource=False)
    await wait_until([x, y], lambda: len(results) == 2, 15.0)
    assert results == {"x": y.node_id, "y": x.node_id}
    assert y.node_id in x.connected_nodes and x.node_id in y.connected_nodes
    _, response = await x.request(NodeDestination(y.node_id), MessageCode.ping_req, PingReq())
    assert response.forwarding_header.via_list == ()  # straight over the new link


async def test_fragmented_request_is_reassembled_then_verified(hostile: Hostile) -> None:  # noqa: F811
    message = hostile.message(body=PingReqBody(3000))
    data = message.to_bytes()
    pieces = fragment_message(data, 1200)
    assert len(pieces) > 2
    waiting = hostile.probe.expect()
    for piece in reversed(pieces):  # any order (§6.7)
        hostile.link.send(piece)
    answer = await waiting
    assert answer.forwarding_header.transaction_id == message.forwarding_header.transaction_id
    assert answer.message_contents.message_code == MessageCode.ping_ans
    # A fragment that contradicts what is held is refused and the partial message dropped;
    # an answer is possible when the fragment shows the message code (offset 0).
    other = hostile.message(body=PingReqBody(3000))
    first, second, *_ = fragment_message(other.to_bytes(), 1200)
    hostile.link.send(first)
    hostile.link.send(second)
    error = await hostile.error_for(first[:-1] + bytes([first[-1] ^ 1]))
    assert error.error_code == ErrorCode.Error_Invalid_Message
    # Past offset 0 a request cannot be told from a response: dropped without an answer
    # (still_serving would otherwise receive that error first).
    hostile.link.send(second)
    hostile.link.send(second[:-1] + bytes([second[-1] ^ 1]))
    await hostile.still_serving()


def PingReqBody(size: int) -> bytes:
    from reload_core.wire.registry import encode_struct

    return encode_struct(PingReq(bytes(size)))


def test_log_limiter_logs_once_per_peer_and_kind_per_window(caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock()
    limiter = LogLimiter(NodeLogger(b"\xab" * 16), clock.time, window=60.0)
    with caplog.at_level(logging.WARNING, logger="reload_core.node"):
        for _ in range(100):
            limiter.warning(b"\x01" * 16, "bad signature", "signature does not verify")
        limiter.warning(b"\x02" * 16, "bad signature", "signature does not verify")
        limiter.warning(b"\x01" * 16, "bad fragment", "overlap")
        clock.advance(60.0)
        limiter.warning(b"\x01" * 16, "bad signature", "signature does not verify")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert lines[0] == "[abababab] bad signature from 01010101: signature does not verify"
    assert lines[3].endswith("(99 more since last logged)")


async def test_nodes_answer_pings_with_fresh_response_ids(ring: MemoryRing) -> None:
    nodes: list[Node] = list(await build(ring, 2))
    ids = set()
    for _ in range(5):
        body, _ = await nodes[0].request(NodeDestination(nodes[1].node_id), MessageCode.ping_req, PingReq())
        assert isinstance(body, PingAns)
        ids.add(body.response_id)
    assert len(ids) == 5

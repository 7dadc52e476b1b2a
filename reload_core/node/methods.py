"""The node's own request handlers: Ping (§6.5.3), Probe (§6.4.2.5), RouteQuery (§6.4.2.4,
§10.8), Join (§6.4.2.1, §10.5), Leave (§6.4.2.2, §10.9), Update (§6.4.2.3, §10.7.3),
ConfigUpdate (§6.5.4) and Attach (§6.5.1, in :mod:`.attach`).

Each handler gets an :class:`~reload_core.node.requests.IncomingRequest` whose signature
is already verified, returns the answer body or raises
:class:`~reload_core.node.errors.RequestRejected`. Topology work a request triggers is
deferred until its answer has gone out, so that, e.g., the JoinAns precedes the Stores and
Update of §10.5 steps 6-7.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from reload_core.config.document import ConfigError, ConfigErrorReason, KindBlock
from reload_core.config.processing import accept_configuration
from reload_core.config.signing import verify_kind_signatures
from reload_core.config.xml import parse_kind_blocks
from reload_core.ids import NodeId
from reload_core.node.errors import RequestRejected
from reload_core.node.requests import IncomingRequest
from reload_core.topology.actions import AcceptJoin, Action, AnswerRouteQuery, ChordUpdateType, RejectJoin
from reload_core.topology.actions import ChordLeaveType as TopologyLeaveType
from reload_core.topology.chord import ChordState
from reload_core.wire.buffer import DecodeError
from reload_core.wire.chord import ChordRouteQueryAns, ChordUpdate
from reload_core.wire.codes import ErrorCode, MessageCode, ProbeInformationType
from reload_core.wire.link_methods import ConfigUpdateAns, ConfigUpdateReq, ConfigUpdateType, PingAns, PingReq
from reload_core.wire.message import NodeDestination, ResourceDestination
from reload_core.wire.topology import (
    JoinAns,
    JoinReq,
    LeaveAns,
    LeaveReq,
    NumResourcesInformation,
    ProbeAns,
    ProbeInformation,
    ProbeReq,
    ResponsibleSetInformation,
    RouteQueryReq,
    UpdateAns,
    UptimeInformation,
)

if TYPE_CHECKING:
    from reload_core.node.node import Node

PPB = 1_000_000_000
T = TypeVar("T")


def _body(request: IncomingRequest, cls: type[T]) -> T:
    body = request.body
    if not isinstance(body, cls):  # the registry decodes each code to its own structure
        raise RequestRejected(ErrorCode.Error_Invalid_Message, f"expected a {cls.__name__}")
    return body


class BuiltinMethods:
    def __init__(self, node: Node) -> None:
        self.node = node

    def _defer_actions(self, request: IncomingRequest, actions: list[Action]) -> None:
        # Even with no actions: applying re-arms the stabilisation timer the input may have moved.
        request.defer(lambda: self.node.driver.apply(actions))

    def _now(self) -> float:
        return self.node.clock.time()

    # ---------------------------------------------------------------- §6.5.3 Ping

    def ping(self, request: IncomingRequest) -> PingAns:
        _body(request, PingReq)
        millis = int(self.node.wall_clock() * 1000)
        return PingAns(self.node.rng.getrandbits(64), millis)

    # ---------------------------------------------------------------- §6.4.2.5 Probe

    def probe(self, request: IncomingRequest) -> ProbeAns:
        body = _body(request, ProbeReq)
        infos: list[ProbeInformation] = []
        for wanted in body.requested_info:
            # "SHOULD be returned in the requested order. Any other values MUST NOT be returned."
            if wanted == ProbeInformationType.responsible_set:
                infos.append(ResponsibleSetInformation(self._responsible_ppb()))
            elif wanted == ProbeInformationType.num_resources:
                infos.append(NumResourcesInformation(min(self.node.hooks.num_resources(), 0xFFFFFFFF)))
            elif wanted == ProbeInformationType.uptime:
                infos.append(UptimeInformation(min(int(self.node.uptime()), 0xFFFFFFFF)))
        return ProbeAns(tuple(infos))

    def _responsible_ppb(self) -> int:
        node = self.node
        if not node.is_joined:
            return 0
        table = node.topology.neighbor_table
        start = table.range_start
        if start == table.node_id:
            return PPB
        return start.distance(table.node_id) * PPB // (1 << table.node_id.bits)

    # ---------------------------------------------------------------- §6.4.2.4 RouteQuery

    def route_query(self, request: IncomingRequest) -> ChordRouteQueryAns:
        body = _body(request, RouteQueryReq)
        node = self.node
        if node.is_client:
            raise RequestRejected(ErrorCode.Error_Forbidden, "a client does not route")
        dest = body.destination
        if isinstance(dest, NodeDestination):
            target, resource = dest.node_id, False
        elif isinstance(dest, ResourceDestination):
            target, resource = dest.resource_id, True
        else:
            raise RequestRejected(ErrorCode.Error_Invalid_Message, "RouteQuery for an opaque destination")
        if len(target) != node.settings.node_id_length:
            raise RequestRejected(ErrorCode.Error_Invalid_Message, "destination of the wrong length")
        actions = node.topology.on_route_query(
            NodeId.from_bytes(request.signer_node_id),
            NodeId.from_bytes(target),
            resource=resource,
            send_update=body.send_update,
            now=self._now(),
        )
        answer = next((a for a in actions if isinstance(a, AnswerRouteQuery)), None)
        self._defer_actions(request, [a for a in actions if not isinstance(a, AnswerRouteQuery)])
        if answer is None or answer.next_peer is None:
            raise RequestRejected(ErrorCode.Error_Not_Found, "no route to that destination")
        return ChordRouteQueryAns(answer.next_peer.to_bytes())

    # ---------------------------------------------------------------- §6.4.2.1 Join

    def join(self, request: IncomingRequest) -> JoinAns:
        body = _body(request, JoinReq)
        node = self.node
        joining = request.signer_node_id
        if body.joining_peer_id != joining:
            raise RequestRejected(ErrorCode.Error_Forbidden, "joining_peer_id is not the signer's Node-ID")
        if not request.direct:
            # "arrives from a transport channel that is bound to the Node-ID to be assumed".
            raise RequestRejected(ErrorCode.Error_Forbidden, "a Join must come over a direct connection")
        if node.is_client:
            raise RequestRejected(ErrorCode.Error_Forbidden, "a client admits no peers")
        actions = node.topology.on_join_request(NodeId.from_bytes(joining), self._now())
        verdict = next((a for a in actions if isinstance(a, AcceptJoin | RejectJoin)), None)
        self._defer_actions(request, [a for a in actions if not isinstance(a, AcceptJoin | RejectJoin)])
        if isinstance(verdict, RejectJoin):
            raise RequestRejected(verdict.error_code, verdict.reason)
        if verdict is None:
            raise RequestRejected(ErrorCode.Error_Forbidden, "not admitting peers")
        return JoinAns()

    # ---------------------------------------------------------------- §6.4.2.2 Leave

    def leave(self, request: IncomingRequest) -> LeaveAns:
        body = _body(request, LeaveReq)
        node = self.node
        sender = request.signer_node_id
        if body.leaving_peer_id != sender:
            raise RequestRejected(ErrorCode.Error_Forbidden, "leaving_peer_id is not the signer's Node-ID")
        if not request.direct:
            raise RequestRejected(ErrorCode.Error_Forbidden, "a Leave must come over a direct connection")
        try:
            data = body.chord_leave_data(node.settings.wire_context)
        except DecodeError as exc:
            raise RequestRejected(ErrorCode.Error_Invalid_Message, f"overlay_specific_data: {exc}") from None
        if node.is_client:
            request.defer(lambda: node.client.on_leave(sender))
            return LeaveAns()
        listed = data.successors + data.predecessors
        if any(len(n) != node.settings.node_id_length for n in listed):
            raise RequestRejected(ErrorCode.Error_Invalid_Message, "Node-ID of the wrong length")
        actions = node.topology.on_leave_received(
            NodeId.from_bytes(sender),
            TopologyLeaveType(int(data.type)),
            tuple(NodeId.from_bytes(n) for n in listed),
            self._now(),
        )
        self._defer_actions(request, actions)
        return LeaveAns()

    # ---------------------------------------------------------------- §6.4.2.3 Update

    def update(self, request: IncomingRequest) -> UpdateAns:
        body = _body(request, ChordUpdate)
        node = self.node
        sender = request.signer_node_id
        if node.is_client:
            request.defer(lambda: node.client.on_update(sender, body))
            return UpdateAns()
        if node.topology.state in (ChordState.IDLE, ChordState.LEFT):
            # Not in the overlay: nothing to learn, but the sender's Update did arrive.
            return UpdateAns()

        def ids(values: tuple[bytes, ...]) -> tuple[NodeId, ...]:
            return tuple(NodeId.from_bytes(v) for v in values)

        actions = node.topology.on_update_received(
            NodeId.from_bytes(sender),
            ChordUpdateType(int(body.type)),
            ids(body.predecessors),
            ids(body.successors),
            ids(body.fingers),
            self._now(),
        )
        self._defer_actions(request, actions)
        return UpdateAns()

    # ---------------------------------------------------------------- §6.5.4 ConfigUpdate

    def config_update(self, request: IncomingRequest) -> ConfigUpdateAns:
        body = _body(request, ConfigUpdateReq)
        node = self.node
        current = node.settings.configuration
        if current is None:
            raise RequestRejected(ErrorCode.Error_Forbidden, "this node has no configuration to update")
        now = datetime.fromtimestamp(node.wall_clock(), UTC)
        if body.type == ConfigUpdateType.config:
            try:
                accepted = accept_configuration(body.config_data, previous=current, now=now)
            except ConfigError as exc:
                raise RequestRejected(_config_error_code(exc), exc.message) from None
            if accepted.configuration.sequence == current.sequence:
                raise RequestRejected(ErrorCode.Error_Config_Too_Old, "not newer than ours (§6.5.4.2)")
            settings = node.settings.with_configuration(accepted.configuration, accepted.data)
            request.defer(lambda: node.apply_configuration(settings))
        elif body.type == ConfigUpdateType.kind:
            blocks = self._kind_blocks(body.kinds)
            candidate = replace(current, required_kinds=blocks)
            try:
                verify_kind_signatures(candidate, now=now)
            except ConfigError as exc:
                raise RequestRejected(ErrorCode.Error_Forbidden, exc.message) from None
            merged = _merge_kinds(current.required_kinds, blocks)
            settings = node.settings.with_configuration(
                replace(current, required_kinds=merged), node.settings.configuration_document
            )
            request.defer(lambda: node.apply_configuration(settings))
        else:
            raise RequestRejected(
                ErrorCode.Error_Invalid_Message, f"unknown ConfigUpdateType {int(body.type)}"
            )
        return ConfigUpdateAns()

    @staticmethod
    def _kind_blocks(kinds: tuple[bytes, ...]) -> tuple[KindBlock, ...]:
        blocks: list[KindBlock] = []
        for data in kinds:
            try:
                blocks += parse_kind_blocks(data)
            except ConfigError as exc:
                raise RequestRejected(ErrorCode.Error_Invalid_Message, exc.message) from None
        if not blocks:
            raise RequestRejected(ErrorCode.Error_Invalid_Message, "no kind-block in the ConfigUpdate")
        return tuple(blocks)


def _merge_kinds(current: tuple[KindBlock, ...], new: tuple[KindBlock, ...]) -> tuple[KindBlock, ...]:
    replaced = {b.kind.kind_id for b in new}
    return tuple(b for b in current if b.kind.kind_id not in replaced) + new


def _config_error_code(exc: ConfigError) -> ErrorCode:
    if exc.reason in (ConfigErrorReason.SIGNATURE, ConfigErrorReason.KIND_SIGNATURE):
        return ErrorCode.Error_Forbidden
    if exc.reason in (ConfigErrorReason.SEQUENCE, ConfigErrorReason.EXPIRED):
        return ErrorCode.Error_Config_Too_Old
    if exc.reason is ConfigErrorReason.OVERLAY:
        return ErrorCode.Error_Incompatible_with_Overlay
    return ErrorCode.Error_Invalid_Message


def register_builtin_methods(node: Node) -> None:
    methods = BuiltinMethods(node)
    node.register_handler(MessageCode.ping_req, methods.ping)
    node.register_handler(MessageCode.probe_req, methods.probe)
    node.register_handler(MessageCode.route_query_req, methods.route_query)
    node.register_handler(MessageCode.join_req, methods.join)
    node.register_handler(MessageCode.leave_req, methods.leave)
    node.register_handler(MessageCode.update_req, methods.update)
    node.register_handler(MessageCode.config_update_req, methods.config_update)
    node.register_handler(MessageCode.attach_req, node.attach.handle_request)


__all__ = ["BuiltinMethods", "register_builtin_methods"]

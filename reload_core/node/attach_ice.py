"""Attach with full ICE (RFC 6940 §6.5.1) and AppAttach (§6.5.2) for the node.

:func:`install_ice` gives a :class:`~reload_core.node.node.Node` an
:class:`IceAttachManager` in place of the No-ICE one: from then on the node's Attaches,
those CHORD-RELOAD sends while joining and for its Neighbor and Finger Tables (§10.5,
§10.6: routed or source-routed through the overlay like any Attach), make DTLS/UDP links
with simple reliability over ICE (§6.6.4), so peers behind NATs can be neighbours. The
node's TLS/TCP transport stays for what is dialed directly: the bootstrap nodes (§11.4,
§4.2.1). An Attach that offers only No-ICE candidates is still answered the No-ICE way.

Requester (offerer, ICE controlling, DTLS server: §6.5.1.9, §6.5.1.13): gather
candidates, send the AttachReq ("passive"); with the signed AttachAns run the
connectivity checks against the answer's candidates and open a DTLS link that insists on
the answerer's Node-ID. Answerer (controlled, DTLS client): check the request, gather,
start the checks against the request's candidates at once and answer ("active"); the
link it opens insists on the requester's Node-ID. §6.5.1.2's tie-breaker and
``send_update`` (§6.4.2.3) work as with No-ICE (:class:`AttachManager`'s bookkeeping is
reused).

AppAttach (§6.5.2): :meth:`IceAttachManager.app_attach` brokers an ICE connection to a
node for an application (5060 SIP, 5061 SIPS, RFC 7904 §5.1) and returns a
:class:`~reload_core.links.dtls.DtlsAppConnection` whose far end proved the Node-ID of the
Destination List's terminal entry; :meth:`IceAttachManager.register_application` accepts
them on the other side (an unknown Application-ID is answered ``Error_Not_Found``). A
node of a TLS-only (No-ICE) overlay gets AppAttach alone with ``install_ice(...,
attach=False)``; :func:`app_attach_manager` finds a node's manager.

STUN (§6.5.1.4): the node answers STUN Binding requests on the UDP port of its listening
address (:class:`~reload_core.links.ice.StunResponder`, started once the node listens) and
on every ICE socket; it gathers server-reflexive candidates from the configuration's
bootstrap nodes and from the peers it has ICE links with (:class:`StunServerList`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from reload_core.config.document import OverlayConfiguration
from reload_core.links.base import CloseReason, Link
from reload_core.links.dtls import DTLS_LINK_CONFIG, DtlsAppConnection, DtlsEndpoint, DtlsLink
from reload_core.links.framing import LinkConfig
from reload_core.links.ice import (
    ANSWERER_ROLE,
    OFFERER_ROLE,
    IceConfig,
    IceConnection,
    IceError,
    IceParameterError,
    StunResponder,
    StunServerList,
    TurnRelay,
    candidate_from_wire,
    check_ice_credentials,
)
from reload_core.links.tls import OverlayTrust, TlsCredentials, TlsLink
from reload_core.node.attach import AttachDone, AttachManager
from reload_core.node.errors import NodeError, RequestError, RequestRejected
from reload_core.node.events import ConnectionChanged, NodeEvent, StateChanged
from reload_core.node.requests import Answer, IncomingRequest, Outcome
from reload_core.wire.codes import ErrorCode, MessageCode, OverlayLinkType
from reload_core.wire.link_methods import (
    AnyIceCandidate,
    AppAttachAns,
    AppAttachReq,
    AttachAns,
    AttachReq,
    IceCandidate,
)
from reload_core.wire.message import Destination, ForwardingHeader, NodeDestination

if TYPE_CHECKING:
    from reload_core.node.node import Node

log = logging.getLogger(__name__)

AppAcceptor = Callable[[DtlsAppConnection], None]
"""Called with each application connection another node AppAttached to us, once open."""


class AppAttachError(NodeError):
    """An AppAttach did not give a connection (the request failed, ICE or DTLS did)."""


def offers_ice(candidates: Sequence[AnyIceCandidate]) -> bool:
    """Whether an AttachReqAns offers ICE candidates (§6.5.1.5: an overlay is all ICE or
    all No-ICE, and one message never mixes them)."""
    return any(c.overlay_link == OverlayLinkType.DTLS_UDP_SR for c in candidates)


def _check_offer(ufrag: bytes, password: bytes, candidates: Sequence[AnyIceCandidate]) -> None:
    """The peer's ICE parameters, or RequestRejected: Error_Invalid_Message when malformed,
    Error_Incompatible_with_Overlay when no candidate is left that we can use (those of
    types we do not know are skipped, §6.3.1.1)."""
    try:
        check_ice_credentials(ufrag, password)
        usable = [c for c in candidates if candidate_from_wire(c) is not None]
    except IceParameterError as exc:
        raise RequestRejected(ErrorCode.Error_Invalid_Message, f"ICE parameters: {exc}") from None
    if not usable:
        raise RequestRejected(ErrorCode.Error_Incompatible_with_Overlay, "no ICE candidate we can use")


class _IceDone:
    """The ``on_done`` of an Attach whose request carries the candidates of ``ice``: once
    the outcome is known without ``ice`` being used for a link, the session is closed."""

    __slots__ = ("ice", "manager", "on_done", "used")

    def __init__(self, manager: IceAttachManager, ice: IceConnection, on_done: AttachDone) -> None:
        self.manager = manager
        self.ice = ice
        self.on_done = on_done
        self.used = False

    def __call__(self, peer: bytes | None) -> None:
        if not self.used:
            self.used = True
            self.manager._discard(self.ice)
        self.on_done(peer)


@dataclass(slots=True)
class _Gathering:
    task: asyncio.Task[None]
    ice: IceConnection
    on_done: AttachDone


class _LinkWatcher:
    """The DTLS links' handler: the node, with the manager looking on."""

    def __init__(self, node: Node, manager: IceAttachManager) -> None:
        self.node = node
        self.manager = manager

    def link_opened(self, link: Link) -> None:
        self.manager._link_opened(link)
        self.node.link_opened(link)

    def message_received(self, link: Link, message: bytes) -> None:
        self.node.message_received(link, message)

    def message_too_large(self, link: Link, header: ForwardingHeader, length: int) -> None:
        self.node.message_too_large(link, header, length)

    def link_suspect(self, link: Link, suspect: bool) -> None:
        self.node.link_suspect(link, suspect)

    def link_idle(self, link: Link) -> None:
        self.node.link_idle(link)

    def link_closed(self, link: Link, reason: CloseReason) -> None:
        peer = self.manager._dialing.get(link)
        self.node.link_closed(link, reason)
        self.manager._link_closed(link, peer, reason)


class IceAttachManager(AttachManager):
    """Attach over ICE and DTLS (see the module docstring); a drop-in for the node's
    :class:`AttachManager`."""

    def __init__(
        self,
        node: Node,
        credentials: TlsCredentials,
        trust: OverlayTrust,
        *,
        ice_config: IceConfig | None = None,
        link_config: LinkConfig | None = None,
    ) -> None:
        super().__init__(node)
        self.ice_config = ice_config or IceConfig()
        config = link_config or replace(DTLS_LINK_CONFIG, max_message_size=node.settings.max_message_size)
        self.dtls = DtlsEndpoint(
            credentials, trust, _LinkWatcher(node, self), config=config, clock=node.clock
        )
        fixed = [(b.addr, b.port) for b in node.settings.bootstrap_nodes]
        fixed += [s for s in self.ice_config.stun_servers if s not in fixed]
        self.stun_servers = StunServerList(fixed=fixed)
        self.stun_responder: StunResponder | None = None
        self._current: IceConnection | None = None
        self._gathering: dict[bytes, _Gathering] = {}
        self._applications: dict[int, AppAcceptor] = {}
        self._live: set[IceConnection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._closing: list[asyncio.Task[None]] = []
        self._stun_starting = False

    # ---------------------------------------------------------------- ICE sessions

    def _new_ice(self, *, controlling: bool) -> IceConnection:
        ice = IceConnection(
            controlling=controlling,
            config=self.ice_config,
            stun_servers=self.stun_servers.servers(self.ice_config.max_stun_servers),
        )
        self._live.add(ice)
        return ice

    async def _gather(self, ice: IceConnection) -> tuple[IceCandidate, ...]:
        candidates = await ice.gather()
        for server, mapped in ice.reflexive.items():
            self.stun_servers.learned(server, mapped)
        return candidates

    def _discard(self, ice: IceConnection) -> None:
        """Close an ICE session that will carry no link."""
        if ice in self._live:
            self._live.discard(ice)
            ice.close()
            self._closing.append(asyncio.ensure_future(ice.wait_closed()))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ICE attach task failed", exc_info=task.exception())

    # -- hooks of AttachManager.attach: the AttachReq carries the session being offered

    def candidates(self) -> tuple[IceCandidate, ...]:
        if self._current is not None:
            return self._current.local_candidates
        return super().candidates()

    def _ice_credentials(self) -> tuple[bytes, bytes]:  # type: ignore[override]
        if self._current is not None:
            return self._current.ufrag, self._current.password
        return AttachManager._ice_credentials()

    # ---------------------------------------------------------------- requester

    def attach(
        self,
        dest: bytes,
        on_done: AttachDone,
        *,
        resource: bool,
        via: tuple[bytes, ...] = (),
        send_update: bool = False,
    ) -> None:
        node = self.node
        if self._closed:
            on_done(None)
            return
        if not resource and node.is_connected(dest):
            on_done(dest)
            return
        if not resource and (dest in self._waiting or dest in self._gathering):
            self._wait_for(dest, on_done)
            return
        if isinstance(on_done, _IceDone) and not on_done.used and on_done.ice in self._live:
            # Sent again (e.g. its source route's first hop went away): same offer.
            self._send_attach(on_done, dest, resource=resource, via=via, send_update=send_update)
            return
        ice = self._new_ice(controlling=True)
        task = self._spawn(self._gather_and_send(ice, dest, on_done, resource, via, send_update))
        if not resource:
            self._gathering[dest] = _Gathering(task, ice, on_done)

    async def _gather_and_send(
        self,
        ice: IceConnection,
        dest: bytes,
        on_done: AttachDone,
        resource: bool,
        via: tuple[bytes, ...],
        send_update: bool,
    ) -> None:
        try:
            await self._gather(ice)
        except IceError as exc:
            log.info("Attach to %s: gathering failed: %s", dest.hex()[:8], exc)
            self._gathering.pop(dest, None)
            self._discard(ice)
            on_done(None)
            return
        entry = self._gathering.get(dest)
        if not resource:
            if entry is None or entry.ice is not ice:
                return  # given up for the other side's Attach (§6.5.1.2)
            del self._gathering[dest]
        self._send_attach(
            _IceDone(self, ice, on_done), dest, resource=resource, via=via, send_update=send_update
        )

    def _send_attach(
        self, done: _IceDone, dest: bytes, *, resource: bool, via: tuple[bytes, ...], send_update: bool
    ) -> None:
        self._current = done.ice
        try:
            super().attach(dest, done, resource=resource, via=via, send_update=send_update)
        finally:
            self._current = None

    def _answered(self, dest: bytes, resource: bool, outcome: Outcome, on_done: AttachDone) -> None:
        node = self.node
        if not isinstance(on_done, _IceDone) or not isinstance(outcome, Answer):
            super()._answered(dest, resource, outcome, on_done)
            return
        peer = outcome.signer_node_id
        body = outcome.body
        if peer == node.node_id or node.is_connected(peer) or not isinstance(body, AttachAns):
            super()._answered(dest, resource, outcome, on_done)
            return
        if not offers_ice(body.candidates):
            log.info("Attach to %s: the answer offers no ICE candidate", peer.hex()[:8])
            on_done(None)
            return
        on_done.used = True
        self._wait_for(peer, on_done.on_done, answered=True)
        self._spawn(
            self._connect(on_done.ice, peer, body.ufrag, body.password, body.candidates, offerer=True)
        )

    async def _connect(
        self,
        ice: IceConnection,
        peer: bytes,
        ufrag: bytes,
        password: bytes,
        candidates: Sequence[AnyIceCandidate],
        *,
        offerer: bool,
    ) -> None:
        """Checks, then the DTLS link (the offerer is the DTLS server, §6.5.1.13)."""
        try:
            await ice.connect(ufrag, password, candidates)
        except IceError as exc:
            log.info("ICE to %s failed: %s", peer.hex()[:8], exc)
            self._discard(ice)
            self._ice_failed(peer, offerer=offerer)
            return
        if self._closed or self.node.is_connected(peer):
            self._discard(ice)
            if not offerer:
                self._inbound.pop(peer, None)
            return
        self._live.discard(ice)  # the link owns it now
        link = self.dtls.open_link(ice, server_side=offerer, expected_node_id=peer)
        self._dialing[link] = peer

    def _ice_failed(self, peer: bytes, *, offerer: bool) -> None:
        if offerer:
            self._fail_waiters(peer)
        elif peer not in self._dialing.values():
            self._inbound.pop(peer, None)

    def _fail_waiters(self, peer: bytes) -> None:
        """The connection our answered Attach to ``peer`` was to bring has failed."""
        if self.node.is_connected(peer):
            return
        for waiter in self._waiting.pop(peer, []):
            if waiter.timer is not None:
                waiter.timer.cancel()
            waiter.on_done(None)

    # ---------------------------------------------------------------- answerer

    def handle_request(self, request: IncomingRequest) -> Any:
        """The Attach handler (§6.5.1.2): ICE offers are answered here, No-ICE ones by
        :class:`AttachManager`."""
        node = self.node
        body = request.body
        assert isinstance(body, AttachReq)
        if not offers_ice(body.candidates):
            return super().handle_request(request)
        requester = request.signer_node_id
        if requester == node.node_id:
            raise RequestRejected(ErrorCode.Error_Invalid_Message, "an Attach from this node to itself")
        self._tie_break(requester)
        if node.is_connected(requester):
            if body.send_update:
                request.defer(lambda: node.connected_again(requester, send_update=True))
            return self._answer_connected()
        _check_offer(body.ufrag, body.password, body.candidates)
        if self._closed:
            raise RequestRejected(ErrorCode.Error_Forbidden, "node closing")
        self._inbound[requester] = self._inbound.get(requester, False) or body.send_update
        return self._answer(requester, body)

    def _tie_break(self, requester: bytes) -> None:
        """§6.5.1.2 with our own Attach to ``requester`` unanswered (or still gathering):
        the smaller Node-ID gives its own up; the larger answers Error_In_Progress."""
        node = self.node
        own = self._unanswered.get(requester)
        gathering = self._gathering.get(requester)
        if own is not None or gathering is not None:
            if node.node_id < requester:
                if own is not None:
                    del self._unanswered[requester]
                    node.cancel_request(own.transaction_id)
                    self._wait_for(requester, own.on_done)
                if gathering is not None:
                    del self._gathering[requester]
                    gathering.task.cancel()
                    self._discard(gathering.ice)
                    self._wait_for(requester, gathering.on_done)
            else:
                raise RequestRejected(ErrorCode.Error_In_Progress, "our Attach to you is in progress")
        elif any(w.answered for w in self._waiting.get(requester, ())) and not node.is_connected(requester):
            raise RequestRejected(ErrorCode.Error_In_Progress, "our Attach to you is in progress")

    async def _answer_connected(self) -> AttachAns:
        # Already connected: the requester uses that link; the answer still carries a
        # session's parameters, as the grammar asks for them.
        ice = IceConnection(controlling=False, config=IceConfig(use_ipv6=self.ice_config.use_ipv6))
        try:
            candidates = await ice.gather()
            return AttachAns(ice.ufrag, ice.password, ANSWERER_ROLE, candidates, False)
        finally:
            await ice.aclose()

    async def _answer(self, requester: bytes, body: AttachReq) -> AttachAns:
        ice = self._new_ice(controlling=False)
        try:
            candidates = await self._gather(ice)
        except IceError as exc:
            self._discard(ice)
            self._ice_failed(requester, offerer=False)
            raise RequestRejected(
                ErrorCode.Error_Incompatible_with_Overlay, f"cannot gather ICE candidates: {exc}"
            ) from None
        self._spawn(self._connect(ice, requester, body.ufrag, body.password, body.candidates, offerer=False))
        return AttachAns(ice.ufrag, ice.password, ANSWERER_ROLE, candidates, False)

    def set_turn(self, relay: TurnRelay | None) -> None:
        """Gather relayed candidates from ``relay`` from now on (e.g. a TURN server found
        through the TURN-SERVICE usage, §9); None stops."""
        self.ice_config = replace(self.ice_config, turn=relay)

    # ---------------------------------------------------------------- link events

    def _link_opened(self, link: Link) -> None:
        if isinstance(link, DtlsLink):
            ice = link.channel
            peer = link.remote_node_id
            # §6.5.1.4: a connected peer serves as a STUN server at that address, when we
            # reached it at its own (host) address: behind a NAT or a relay, its address
            # filters packets from anyone but us.
            usable = isinstance(ice, IceConnection) and ice.remote_type == "host"
            if usable and peer is not None and ice.remote_address is not None:
                self.stun_servers.add_peer(peer, ice.remote_address)

    def _link_closed(self, link: Link, peer: bytes | None, reason: CloseReason) -> None:
        node_id = link.remote_node_id
        if node_id is not None and not self.node.is_connected(node_id):
            self.stun_servers.remove_peer(node_id)
        if peer is not None and node_id is None and link.expected_node_id == peer:
            # Our link never opened: the Attach waiting for it has failed.
            self._fail_waiters(peer)

    # ---------------------------------------------------------------- AppAttach (§6.5.2)

    def register_application(self, application: int, acceptor: AppAcceptor) -> None:
        """Accept AppAttach for ``application`` (e.g. 5060 SIP, 5061 SIPS); ``acceptor``
        gets each connection once it is open."""
        self._applications[int(application)] = acceptor

    def unregister_application(self, application: int) -> None:
        self._applications.pop(int(application), None)

    async def app_attach(
        self,
        destination: bytes | Sequence[Destination],
        application: int,
        *,
        timeout: float | None = None,
    ) -> DtlsAppConnection:
        """AppAttach to the node at ``destination`` (a Node-ID, or a Destination List whose
        terminal entry is one, RFC 7904 §5.1) for ``application``; the connection's far
        end has proved that Node-ID. Raises :class:`AppAttachError` or the request's
        :class:`RequestError`."""
        dests: tuple[Destination, ...] = (
            (NodeDestination(destination),) if isinstance(destination, bytes) else tuple(destination)
        )
        if not dests or not isinstance(dests[-1], NodeDestination):
            raise ValueError("an AppAttach goes to a Node-ID (the Destination List's terminal entry)")
        peer = dests[-1].node_id
        limit = (
            timeout
            if timeout is not None
            else self.node.settings.attach_timeout + self.ice_config.connect_timeout
        )
        ice = self._new_ice(controlling=True)
        try:
            return await asyncio.wait_for(self._app_attach(ice, dests, peer, int(application)), limit)
        except TimeoutError:
            raise AppAttachError(f"AppAttach to {peer.hex()} timed out after {limit} s") from None
        finally:
            if ice in self._live:
                self._discard(ice)

    async def _app_attach(
        self, ice: IceConnection, dests: tuple[Destination, ...], peer: bytes, application: int
    ) -> DtlsAppConnection:
        try:
            candidates = await self._gather(ice)
        except IceError as exc:
            raise AppAttachError(f"cannot gather ICE candidates: {exc}") from None
        body = AppAttachReq(ice.ufrag, ice.password, application, OFFERER_ROLE, candidates)
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[Outcome] = loop.create_future()

        def done(outcome: Outcome) -> None:
            if not answered.done():
                answered.set_result(outcome)

        tid = self.node.send_request(dests, MessageCode.app_attach_req, body, done)
        try:
            outcome = await answered
        except asyncio.CancelledError:
            self.node.cancel_request(tid)
            raise
        if isinstance(outcome, RequestError):
            raise outcome
        answer = outcome.body
        if not isinstance(answer, AppAttachAns) or int(answer.application) != application:
            raise AppAttachError("the AppAttach answer is for another application")
        if outcome.signer_node_id != peer:
            # RFC 7904 §5.1: the responding peer must be the terminal entry.
            raise AppAttachError(f"answered by {outcome.signer_node_id.hex()}, not {peer.hex()}")
        try:
            await ice.connect(answer.ufrag, answer.password, answer.candidates)
        except IceError as exc:
            raise AppAttachError(f"ICE to {peer.hex()}: {exc}") from None
        self._live.discard(ice)
        conn = self.dtls.open_app(ice, server_side=True, expected_node_id=peer, application=application)
        try:
            await conn.wait_open()
        except Exception as exc:
            raise AppAttachError(f"DTLS to {peer.hex()}: {conn.close_reason or exc}") from None
        return conn

    def handle_app_attach(self, request: IncomingRequest) -> Any:
        """The AppAttach handler (§6.5.2.2)."""
        body = request.body
        assert isinstance(body, AppAttachReq)
        acceptor = self._applications.get(int(body.application))
        if acceptor is None:
            raise RequestRejected(
                ErrorCode.Error_Not_Found, f"application {int(body.application)} not supported"
            )
        if not offers_ice(body.candidates):
            raise RequestRejected(ErrorCode.Error_Incompatible_with_Overlay, "AppAttach needs ICE candidates")
        _check_offer(body.ufrag, body.password, body.candidates)
        if self._closed:
            raise RequestRejected(ErrorCode.Error_Forbidden, "node closing")
        return self._answer_app(request.signer_node_id, body, acceptor)

    async def _answer_app(self, requester: bytes, body: AppAttachReq, acceptor: AppAcceptor) -> AppAttachAns:
        ice = self._new_ice(controlling=False)
        try:
            candidates = await self._gather(ice)
        except IceError as exc:
            self._discard(ice)
            raise RequestRejected(
                ErrorCode.Error_Incompatible_with_Overlay, f"cannot gather ICE candidates: {exc}"
            ) from None
        self._spawn(self._accept_app(ice, requester, body, acceptor))
        return AppAttachAns(ice.ufrag, ice.password, body.application, ANSWERER_ROLE, candidates)

    async def _accept_app(
        self, ice: IceConnection, requester: bytes, body: AppAttachReq, acceptor: AppAcceptor
    ) -> None:
        try:
            await ice.connect(body.ufrag, body.password, body.candidates)
        except IceError as exc:
            log.info("AppAttach from %s: ICE failed: %s", requester.hex()[:8], exc)
            self._discard(ice)
            return
        self._live.discard(ice)
        conn = self.dtls.open_app(
            ice, server_side=False, expected_node_id=requester, application=int(body.application)
        )
        try:
            await conn.wait_open()
        except Exception:
            log.info("AppAttach from %s: DTLS failed: %s", requester.hex()[:8], conn.close_reason)
            return
        try:
            acceptor(conn)
        except Exception:
            log.exception("application acceptor failed")
            conn.close()

    # ---------------------------------------------------------------- STUN service and lifecycle

    def _node_event(self, event: NodeEvent) -> None:
        if isinstance(event, ConnectionChanged):
            self._connection_changed(event)
        address = self.node.address
        if (
            address is not None
            and self.stun_responder is None
            and not self._stun_starting
            and not self._closed
        ):
            self._stun_starting = True
            self._spawn(self.serve_stun())

    def _connection_changed(self, event: ConnectionChanged) -> None:
        """A TLS link we dialed goes to a listening address, the bootstrap nodes' (§11.4):
        their UDP port there is a STUN server (§6.5.1.4: "These nodes make an initial list
        of STUN servers")."""
        if not event.up:
            self.stun_servers.remove_peer(event.node_id)
            return
        for link in self.node.connections.links_to(event.node_id):
            address = link.remote_address
            if isinstance(link, TlsLink) and link.dialed and isinstance(address, tuple):
                self.stun_servers.add_peer(event.node_id, (str(address[0]), int(address[1])))

    async def serve_stun(self) -> StunResponder | None:
        """Answer STUN Binding requests on the UDP port of the node's listening address
        (§6.5.1.4); done by itself once the node has listened and changed state."""
        address = self.node.address
        if self.stun_responder is not None or address is None or self._closed:
            return self.stun_responder
        try:
            self.stun_responder = await StunResponder.start(address.addr, address.port)
        except OSError as exc:
            log.warning("cannot serve STUN on UDP %s:%d: %s", address.addr, address.port, exc)
        return self.stun_responder

    def close(self) -> None:
        super().close()
        if self._closed:
            return
        self._closed = True
        for gathering in self._gathering.values():
            gathering.task.cancel()
        self._gathering.clear()
        for task in list(self._tasks):
            task.cancel()
        self.dtls.close()
        for ice in list(self._live):
            self._discard(ice)
        if self.stun_responder is not None:
            self.stun_responder.close()

    async def wait_closed(self) -> None:
        """Until every ICE session's sockets are closed (after the node's close())."""
        while self._tasks or self._closing:
            pending = [*self._tasks, *self._closing]
            self._closing = []
            await asyncio.gather(*pending, return_exceptions=True)


def install_ice(
    node: Node,
    credentials: TlsCredentials,
    trust: OverlayTrust,
    *,
    ice_config: IceConfig | None = None,
    link_config: LinkConfig | None = None,
    attach: bool = True,
) -> IceAttachManager:
    """Make ``node`` (built, not started) Attach with ICE and answer AppAttach; returns the
    manager (also ``node.attach``). ``credentials``/``trust`` are the node's TLS ones.

    With ``attach`` false the node keeps its No-ICE Attach (a TLS-only overlay) and gets
    AppAttach only: an AppAttach connection always runs ICE (§6.5.2 carries ICE
    parameters whatever the overlay's links are), so SIP can reach a node of any overlay
    (RFC 7904 §5.1). Such a node serves no STUN and asks the bootstrap nodes for none
    (No-ICE nodes answer no STUN, §6.5.1.11); the manager closes with the node.
    """
    manager = IceAttachManager(node, credentials, trust, ice_config=ice_config, link_config=link_config)
    _MANAGERS[node] = manager
    node.register_handler(MessageCode.app_attach_req, manager.handle_app_attach)
    if attach:
        node.attach = manager
        node.register_handler(MessageCode.attach_req, manager.handle_request)
        node.add_listener(manager._node_event)
        return manager
    manager.stun_servers = StunServerList(fixed=list(manager.ice_config.stun_servers))

    def close_with_node(event: NodeEvent) -> None:
        if isinstance(event, StateChanged) and event.state == "closed":
            manager.close()

    node.add_listener(close_with_node)
    return manager


_MANAGERS: weakref.WeakKeyDictionary[Node, IceAttachManager] = weakref.WeakKeyDictionary()


def app_attach_manager(node: Node) -> IceAttachManager | None:
    """The manager :func:`install_ice` gave ``node`` (for AppAttach), or None."""
    return _MANAGERS.get(node)


ICE_LINK_PROTOCOL = "DTLS-UDP-SR"
"""The ``overlay-link-protocol`` (§11.1) that asks for Attach with ICE and DTLS/UDP links."""


def uses_ice(configuration: OverlayConfiguration) -> bool:
    """Whether an overlay's nodes Attach with ICE: ``no-ice`` false and
    ``overlay-link-protocol`` DTLS-UDP-SR listed. §11.1's default "TLS" names TLS and
    DTLS without choosing; overlays that do not list DTLS-UDP-SR keep No-ICE TLS/TCP
    links, which work without a non-loopback interface address (aioice needs one)."""
    names = {p.strip().upper() for p in configuration.overlay_link_protocols}
    return not configuration.no_ice and ICE_LINK_PROTOCOL in names


__all__ = [
    "ICE_LINK_PROTOCOL",
    "AppAcceptor",
    "AppAttachError",
    "IceAttachManager",
    "app_attach_manager",
    "install_ice",
    "offers_ice",
    "uses_ice",
]

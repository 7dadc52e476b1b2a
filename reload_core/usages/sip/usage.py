"""The SIP Usage for RELOAD on one node (RFC 7904): :class:`SipUsage`.

It is what the SIP layer above needs from the overlay, and the only place that knows
RFC 7904:

- :meth:`SipUsage.register` keeps a ``sip_registration_route`` entry (our Destination
  List and contact preferences) at the AoR's Resource-ID under our Node-ID (§3.1, §3.2),
  refreshed before its lifetime ends; :meth:`SipUsage.forward` stores a
  ``sip_registration_uri`` entry there instead (§3.1) and :meth:`SipUsage.unforward`
  takes it back; :meth:`SipUsage.unregister` and :meth:`SipUsage.close` remove the entry
  (a Store with ``exists = false``, RFC 6940 §7.4.1.3). Before storing, the AoR is
  checked as the storing peer will check it (§3.3, §3.4).
- :meth:`SipUsage.resolve` finds the Destination Lists of an AoR or GRUU (§4, §6; see
  :mod:`.resolve`).
- :meth:`SipUsage.connect` AppAttaches for SIP (5060) or SIPS (5061), as the callee's
  contact preferences ask, to the terminal node of a Destination List, which must prove
  its Node-ID (§5.1); an open connection to that node is reused. :meth:`SipUsage.listen`
  accepts the AppAttaches of others. Either way the SIP layer gets a
  :class:`~.connection.SipConnection` with the far end's verified user name and Node-ID.
- :meth:`SipUsage.gruu` is our GRUU (§6).

AppAttach needs the node's ICE attach manager (:func:`~reload_core.node.attach_ice.install_ice`;
in a TLS-only overlay ``install_ice(..., attach=False)``, since an AppAttach connection
runs ICE whatever the overlay's links are). A storing peer applies §3.3 with
:func:`~.access.sip_access_policy`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from reload_core.config.document import OverlayConfiguration
from reload_core.links.dtls import DtlsAppConnection
from reload_core.node.attach_ice import AppAttachError, IceAttachManager, app_attach_manager
from reload_core.node.errors import NodeError, RequestError
from reload_core.node.node import Node
from reload_core.storage.client import StorageClient
from reload_core.storage.peer import Storage
from reload_core.usages.sip.access import registration_refusal
from reload_core.usages.sip.aor import Aor, AorError, parse_aor
from reload_core.usages.sip.connection import ConnectionPool, SipConnection, verify_peer
from reload_core.usages.sip.errors import RegistrationRefused, SipConnectError, SipUsageError
from reload_core.usages.sip.gruu import is_gruu, make_gruu
from reload_core.usages.sip.registration import DEFAULT_REGISTRATION_LIFETIME, Registration
from reload_core.usages.sip.resolve import Contact, Outcome, Resolution, Resolver, ResolverLimits
from reload_core.usages.sip.schemes import SipScheme, applications_to_try, encode_contact_prefs
from reload_core.wire.codes import ErrorCode
from reload_core.wire.message import Destination, NodeDestination
from reload_core.wire.sip_registration import SipRegistration

log = logging.getLogger(__name__)

ConnectionHandler = Callable[[SipConnection], None]
"""Called with each SIP connection another node opened to us (RFC 7904 §5.1)."""

ConnectTarget = Contact | str | bytes | Sequence[Destination]
"""What :meth:`SipUsage.connect` reaches: a resolved :class:`Contact`, a GRUU, a Node-ID,
or a Destination List."""


class SipUsage:
    """RFC 7904 on ``node`` (see the module docstring).

    ``storage`` stores and fetches as this node (its signer's certificate is the one
    whose user name and Node-ID the registrations carry); ``configuration`` is the
    overlay's (domain restrictions, §3.4; node-id-length). ``app_attach`` defaults to
    the manager :func:`~reload_core.node.attach_ice.install_ice` gave ``node``.
    ``lifetime``: seconds a registration lives between refreshes; ``limits``: how far
    resolution goes (§8.2.1); ``connect_timeout``: seconds an AppAttach may take
    (default: the node's attach timeout plus ICE's).
    """

    def __init__(
        self,
        node: Node,
        storage: StorageClient,
        configuration: OverlayConfiguration,
        *,
        app_attach: IceAttachManager | None = None,
        limits: ResolverLimits | None = None,
        lifetime: int = DEFAULT_REGISTRATION_LIFETIME,
        connect_timeout: float | None = None,
    ) -> None:
        if storage.signer.node_id != node.node_id:
            raise ValueError("the storage client must sign as the node")
        self.node = node
        self.storage = storage
        self.configuration = configuration
        self.resolver = Resolver(storage, configuration, limits)
        self.pool = ConnectionPool()
        self.lifetime = lifetime
        self.connect_timeout = connect_timeout
        self._app_attach = app_attach
        self._registrations: dict[str, Registration] = {}
        self._routes: dict[str, SipRegistration] = {}
        self._listening: set[SipScheme] = set()
        self._on_connection: ConnectionHandler | None = None
        self._rng = random.Random(node.rng.getrandbits(64))
        self._closed = False

    @classmethod
    def for_node(
        cls,
        node: Node,
        configuration: OverlayConfiguration,
        *,
        limits: ResolverLimits | None = None,
        lifetime: int = DEFAULT_REGISTRATION_LIFETIME,
        connect_timeout: float | None = None,
    ) -> SipUsage:
        """The usage for a node whose :class:`~reload_core.storage.Storage` is set up
        (``Storage.for_peer``/``for_client``/``from_configuration``)."""
        storage = Storage.of(node)
        if storage is None:
            raise SipUsageError("the node has no storage: Storage.for_peer or Storage.for_client first")
        return cls(
            node,
            storage.client,
            configuration,
            limits=limits,
            lifetime=lifetime,
            connect_timeout=connect_timeout,
        )

    # ---------------------------------------------------------------- who we are

    @property
    def user(self) -> str:
        """Our certificate's user name (rfc822Name): our AoR, without scheme (§2)."""
        return self.storage.signer.node_certificate.user_name

    @property
    def node_id(self) -> bytes:
        return self.node.node_id

    @property
    def bits(self) -> int:
        return self.configuration.node_id_length * 8

    def destination_list(self) -> tuple[Destination, ...]:
        """The Destination List that reaches this node: its Node-ID (a client is reached
        the same way, through the peer responsible for its Node-ID, RFC 6940 §4.2.1)."""
        return (NodeDestination(self.node_id),)

    def gruu(self, aor: str | None = None) -> str:
        """Our GRUU (RFC 7904 §6): ``sip:<aor>;gr=<our Destination List>``."""
        name = parse_aor(aor).name if aor is not None else self.user
        return make_gruu(f"sip:{name}", self.destination_list())

    # ---------------------------------------------------------------- registering (§3)

    @property
    def registrations(self) -> Mapping[str, Registration]:
        """Our live registrations (routes and forwards) by AoR."""
        return MappingProxyType(self._registrations)

    def check_registration(self, aor: str | Aor) -> Aor:
        """The AoR, if this node may register it (RFC 7904 §3.3: its domain is admitted by
        the overlay's restrictions and it is our certificate's user); else
        :class:`RegistrationRefused` saying why."""
        try:
            parsed = aor if isinstance(aor, Aor) else parse_aor(aor)
        except AorError as exc:
            raise RegistrationRefused(str(exc), ErrorCode.Error_Invalid_Message) from None
        refusal = registration_refusal(self.configuration, self.user, parsed)
        if refusal is not None:
            raise RegistrationRefused(refusal)
        return parsed

    def contact_prefs(self) -> bytes:
        """Our contact preferences (§3.2): the schemes we listen to, SIP if none yet."""
        return encode_contact_prefs(self._listening or {SipScheme.SIP})

    async def register(
        self,
        aor: str | None = None,
        *,
        lifetime: int | None = None,
        destination_list: Sequence[Destination] | None = None,
        contact_prefs: bytes | None = None,
    ) -> Registration:
        """Register ``aor`` (default: our user) at this node (§3.1): a
        ``sip_registration_route`` keyed by our Node-ID, kept refreshed. ``destination_list``
        may lead elsewhere (§3.2: "one Node-ID to forward to another"). Returns the
        :class:`Registration`, REGISTERED or FAILED after its first Store; raises
        :class:`RegistrationRefused` if §3.3 forbids it."""
        self._check_open()
        parsed = self.check_registration(aor if aor is not None else self.user)
        record = SipRegistration.for_route(
            tuple(destination_list) if destination_list is not None else self.destination_list(),
            contact_prefs if contact_prefs is not None else self.contact_prefs(),
        )
        self._routes[parsed.name] = record
        return await self._store(parsed, record, lifetime)

    async def forward(self, aor: str | None, to: str, *, lifetime: int | None = None) -> Registration:
        """Forward ``aor`` (default: our user) to the AoR or GRUU ``to`` (§3.1: "in order
        to contact me, dereference this AOR"): our entry for it becomes a
        ``sip_registration_uri``. The AoR is stored without its scheme (§2)."""
        self._check_open()
        parsed = self.check_registration(aor if aor is not None else self.user)
        if is_gruu(to):
            target = to
        else:
            try:
                target = parse_aor(to).name
            except AorError as exc:
                raise RegistrationRefused(
                    f"cannot forward to {to!r}: {exc}", ErrorCode.Error_Invalid_Message
                ) from None
            if target == parsed.name:
                raise RegistrationRefused(
                    f"{parsed.name} cannot forward to itself", ErrorCode.Error_Invalid_Message
                )
        return await self._store(parsed, SipRegistration.for_uri(target), lifetime)

    async def unforward(self, aor: str | None = None) -> Registration | None:
        """Take a forward back: our entry is our route again if ``aor`` was registered
        here (returned), else it is removed (None)."""
        self._check_open()
        parsed = self.check_registration(aor if aor is not None else self.user)
        route = self._routes.get(parsed.name)
        if route is not None:
            return await self._store(parsed, route, None)
        await self.unregister(parsed.name)
        return None

    async def unregister(self, aor: str | None = None) -> None:
        """Remove our entry for ``aor`` (default: our user) from the overlay (sign-out)."""
        name = parse_aor(aor).name if aor is not None else self.user
        self._routes.pop(name, None)
        registration = self._registrations.pop(name, None)
        if registration is not None:
            await registration.stop(remove=True)

    async def _store(self, aor: Aor, record: SipRegistration, lifetime: int | None) -> Registration:
        registration = self._registrations.get(aor.name)
        if registration is not None and not registration.stopped:
            if lifetime is not None:
                registration.lifetime = lifetime
            await registration.update(record)
            return registration
        registration = Registration(
            self.storage,
            aor,
            record,
            key=self.node_id,
            clock=self.node.clock,
            rng=random.Random(self._rng.getrandbits(64)),
            lifetime=lifetime if lifetime is not None else self.lifetime,
            bits=self.bits,
        )
        self._registrations[aor.name] = registration
        await registration.start()
        return registration

    # ---------------------------------------------------------------- resolving (§4, §6)

    async def resolve(self, target: str) -> Resolution:
        """Where ``target`` (an AoR or a GRUU) can be reached; see :mod:`.resolve`."""
        return await self.resolver.resolve(target)

    # ---------------------------------------------------------------- connecting (§5)

    def _manager(self) -> IceAttachManager:
        manager = self._app_attach or app_attach_manager(self.node)
        if manager is None:
            raise SipUsageError(
                "this node cannot AppAttach: install_ice(node, ...) first (attach=False in a TLS-only overlay)"
            )
        return manager

    async def _target(self, target: ConnectTarget) -> tuple[tuple[Destination, ...], bytes]:
        """(Destination List, contact preferences) of a connect target."""
        if isinstance(target, Contact):
            return target.destination_list, target.contact_prefs
        if isinstance(target, bytes):
            return (NodeDestination(target),), b""
        if isinstance(target, str):
            resolution = await self.resolve(target)
            if resolution.outcome is not Outcome.GRUU:
                raise SipConnectError(
                    f"connect takes a GRUU, a Contact, a Node-ID or a Destination List; {resolution.describe()}"
                )
            contact = resolution.contacts[0]
            return contact.destination_list, contact.contact_prefs
        return tuple(target), b""

    async def connect(
        self,
        target: ConnectTarget,
        *,
        scheme: SipScheme | None = None,
        timeout: float | None = None,
    ) -> SipConnection:
        """A SIP connection to ``target``'s terminal node (RFC 7904 §5.1): an open one
        already made to or from that node for the scheme, else a new AppAttach. The scheme
        is ``scheme``, else the callee's preference (``contact_prefs``), else SIP and then
        SIPS (for a callee that takes SIPS only). The far end must prove the terminal
        Node-ID, or the connection is closed and :class:`SipConnectError` raised."""
        self._check_open()
        dests, prefs = await self._target(target)
        last = dests[-1] if dests else None
        if not isinstance(last, NodeDestination):
            raise SipConnectError("the destination list does not end in a Node-ID (RFC 7904 §5.1)")
        peer = last.node_id
        if peer == self.node_id:
            raise SipConnectError("the destination is this node")
        applications = applications_to_try(prefs, scheme)
        for application in applications:
            kept = self.pool.get(peer, application)
            if kept is not None:
                return kept
        manager = self._manager()
        for i, application in enumerate(applications):
            try:
                conn, _ = await self.pool.acquire(
                    peer,
                    application,
                    functools.partial(self._app_attach_to, manager, dests, peer, application, timeout),
                )
                return conn
            except SipConnectError as exc:
                if exc.code == ErrorCode.Error_Not_Found and i + 1 < len(applications):
                    continue  # §6.5.2.2: that application is not supported there; try the next
                raise
        raise SipConnectError("no application to connect with")  # pragma: no cover - never empty

    async def _app_attach_to(
        self,
        manager: IceAttachManager,
        dests: tuple[Destination, ...],
        peer: bytes,
        application: int,
        timeout: float | None,
    ) -> SipConnection:
        name = SipScheme.of_application(application).name
        limit = timeout if timeout is not None else self.connect_timeout
        try:
            raw = await manager.app_attach(dests, application, timeout=limit)
        except RequestError as exc:
            raise SipConnectError(f"AppAttach ({name}) to {peer.hex()}: {exc}", exc.error_code) from None
        except AppAttachError as exc:
            raise SipConnectError(f"AppAttach ({name}) to {peer.hex()}: {exc}") from None
        except NodeError as exc:
            raise SipConnectError(
                f"AppAttach ({name}) to {peer.hex()}: {exc or type(exc).__name__}"
            ) from None
        try:
            verified = verify_peer(raw, peer)
        except SipConnectError:
            raw.close()
            raise
        if self._closed:
            raw.close()
            raise SipConnectError("the SIP usage closed while connecting")
        log.info("SIP connection (%s) to %s at %s", name, verified.user, peer.hex()[:8])
        return SipConnection(raw, verified, outgoing=True)

    def listen(
        self, on_connection: ConnectionHandler, schemes: Sequence[SipScheme] = (SipScheme.SIP, SipScheme.SIPS)
    ) -> None:
        """Accept AppAttaches for ``schemes`` (5060, 5061); ``on_connection`` gets each
        connection once open, with the far end verified. Registrations made afterwards
        state these schemes in their contact preferences (§3.2, §5.1)."""
        self._check_open()
        manager = self._manager()
        self._on_connection = on_connection
        for scheme in schemes:
            manager.register_application(scheme.application, self._accepted)
            self._listening.add(scheme)

    def stop_listening(self) -> None:
        manager = self._app_attach or app_attach_manager(self.node)
        if manager is not None:
            for scheme in self._listening:
                manager.unregister_application(scheme.application)
        self._listening.clear()
        self._on_connection = None

    def _accepted(self, raw: DtlsAppConnection) -> None:
        handler = self._on_connection
        if self._closed or handler is None:
            raw.close()
            return
        try:
            verified = verify_peer(raw, raw.expected_node_id)
        except SipConnectError as exc:
            log.info("SIP connection from %s refused: %s", raw.expected_node_id.hex()[:8], exc)
            raw.close()
            return
        conn = SipConnection(raw, verified, outgoing=False)
        self.pool.add(conn)
        handler(conn)

    # ---------------------------------------------------------------- lifecycle

    def _check_open(self) -> None:
        if self._closed:
            raise SipUsageError("the SIP usage is closed")

    async def close(self, *, remove: bool = True) -> None:
        """Sign out: stop accepting connections, remove every registration of ours from the
        overlay (RFC 6940 §7.4.1.3; with ``remove`` false they are only no longer
        refreshed) and close the SIP connections. Call it before the node leaves, while
        it can still store."""
        if self._closed:
            return
        self._closed = True
        self.stop_listening()
        registrations = list(self._registrations.values())
        self._registrations.clear()
        self._routes.clear()
        await asyncio.gather(*(r.stop(remove=remove) for r in registrations))
        self.pool.close_all()


__all__ = ["ConnectTarget", "ConnectionHandler", "SipUsage"]

"""Keeping the phone on its overlay: join as a peer or a client, register, notice when the
network is gone, and come back without the user doing anything.

A :class:`Joiner` gets the phone onto the overlay once and hands back an
:class:`Attachment` (the node, its SIP Usage, the role):

- :class:`EnrolledJoiner`, for a profile of an operator's overlay (``p2psip enroll``):
  a node of the profile (:func:`app.peer.build_node`) that joins through the
  configuration's bootstrap nodes (RFC 6940 §10.5, §11.4) as a **peer**, or connects as
  a **client** (§4.2, §4.2.1: it routes nothing and reaches the overlay through the peer
  responsible for its Node-ID) when the configuration permits clients and either it is
  asked to, or this machine plainly cannot be reached (a private address while the
  bootstrap nodes are public: a NAT in between that other peers could not open
  connections through), or joining as a peer failed twice in a row (no path for the
  connections a peer must accept). A phone behind a NAT therefore still works;
- :class:`LocalJoiner`, for the built-in local overlay: the
  :class:`~app.phone.local_overlay.LocalOverlay` runner (DNS-SD discovery, join or start
  alone, first-come-first-served name).

:class:`OverlayKeeper` runs the phone's life on the overlay as a loop: join; build the
SIP endpoint (:class:`~app.sip.overlay.OverlaySip`) and register (RFC 7904 §3); then
watch for the signs that the network went away (sleep, a Wi-Fi change, a cable pulled):

- the node says ``disconnected`` (every Routing Table peer lost, §10.7.1, or a client's
  peer lost and not regained) and does not come back within ``disconnected_grace``;
- the node closed or left without being asked;
- the registration's Store failed ``registration_failures`` times in a row;
- a client, or a peer that joined through others, has no overlay link left at a
  ``watch_interval`` check.

Then it says OFFLINE with the reason, closes that node and its SIP endpoint, and tries
again after a back-off (``retry_first`` doubling to ``retry_max``, ±20 %), with a fresh
node of the same identity: the new registration replaces the old entry, which is keyed
by our Node-ID (RFC 7904 §3.3). Every step is reported through ``on_state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from app.peer import PeerSetup, build_node
from app.phone.events import OverlayRole, PhoneState
from app.phone.local_overlay import LocalOverlay, LocalOverlayError, LocalOverlayStatus, OverlayState
from app.phone.names import NameTaken
from app.phone.plain import local_address_towards
from app.sip.overlay import OverlaySip
from reload_core.node.attach_ice import uses_ice
from reload_core.node.errors import JoinError, NodeError
from reload_core.node.events import NodeEvent, StateChanged
from reload_core.node.node import Node
from reload_core.storage.peer import Storage
from reload_core.usages.sip import (
    DEFAULT_REGISTRATION_LIFETIME,
    Refreshed,
    Registered,
    Registration,
    RegistrationEvent,
    RegistrationFailed,
    SipUsage,
    Unregistered,
)
from reload_core.wire.addresses import IpAddressPort

log = logging.getLogger("p2psip.phone")

LEAVE_TIMEOUT = 5.0


class JoinRole(StrEnum):
    """How to be on the overlay: the phone decides (``auto``), or always one way."""

    AUTO = "auto"
    PEER = "peer"
    CLIENT = "client"


class JoinFailed(Exception):
    """One attempt to get onto the overlay failed; the message says why in words."""


@dataclass(frozen=True, slots=True)
class NetworkOptions:
    """Local policy for getting onto the overlay and staying there (seconds)."""

    role: JoinRole = JoinRole.AUTO
    listen: IpAddressPort | None = None  # where a peer accepts links (default: see EnrolledJoiner)
    bootstrap: tuple[IpAddressPort, ...] = ()  # instead of the configuration's
    join_timeout: float | None = None  # default: the node's own
    peer_failures_before_client: int = 2
    retry_first: float = 1.0
    retry_max: float = 60.0
    disconnected_grace: float = 10.0
    registration_failures: int = 3
    watch_interval: float = 15.0
    registration_lifetime: int | None = None  # seconds (default: the SIP Usage's, or the local runner's)
    connect_timeout: float | None = None  # one AppAttach (default: the SIP Usage's)


@dataclass(eq=False)
class Attachment:
    """What one join gave: the node, its SIP Usage, our role; ``alone``: we started the
    overlay ourselves (no links to expect); ``close(sign_out)`` ends it (with a graceful
    Leave, §10.9, when signing out)."""

    node: Node
    usage: SipUsage
    role: OverlayRole
    alone: bool
    close: Callable[[bool], Awaitable[None]]
    via: str = ""


class Joiner(Protocol):
    async def join(self) -> Attachment:
        """Get onto the overlay once, or raise :class:`JoinFailed`."""
        ...

    def lost_reason(self) -> str | None:
        """Why the overlay is gone, when the joiner knows better than the node (else None)."""
        ...

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """Call ``callback`` with the reason when the joiner itself sees the overlay go."""
        ...


NAT_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
"""The address space NATs put hosts in: RFC 1918's private networks, RFC 6598's shared
(CGNAT) space, RFC 4193's unique local IPv6 addresses."""


def _in_nat_space(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in network for network in NAT_NETWORKS if network.version == address.version)


def behind_nat(local: str, bootstrap: Sequence[IpAddressPort]) -> bool:
    """Whether a peer at ``local`` plainly cannot be reached by the overlay: an address in
    a NAT's space (:data:`NAT_NETWORKS`) while every bootstrap node has one outside it.
    Outside is not the same as globally routable: the documentation and benchmarking
    networks (RFC 5737, RFC 2544) stand for public addresses in labs and tests, and a NAT
    lab's public side uses them."""
    try:
        ours = ipaddress.ip_address(local)
        theirs = [ipaddress.ip_address(b.addr) for b in bootstrap]
    except ValueError:
        return False
    if not theirs or not (_in_nat_space(ours) or ours.is_link_local):
        return False
    return all(
        not (_in_nat_space(t) or t.is_loopback or t.is_link_local or t.is_unspecified or t.is_multicast)
        for t in theirs
    )


def _same(a: IpAddressPort, b: IpAddressPort) -> bool:
    try:
        return a.port == b.port and ipaddress.ip_address(a.addr) == ipaddress.ip_address(b.addr)
    except ValueError:
        return False


class EnrolledJoiner:
    """Peer or client of an operator's overlay (see the module docstring)."""

    def __init__(self, setup: PeerSetup, options: NetworkOptions) -> None:
        self.setup = setup
        self.options = options
        self._peer_failures = 0
        self.last_role: OverlayRole | None = None

    def bootstrap(self) -> tuple[IpAddressPort, ...]:
        return self.options.bootstrap or self.setup.bootstrap_nodes

    def choose_role(self, listen_host: str) -> OverlayRole:
        option = self.options.role
        permitted = self.setup.configuration.clients_permitted
        if option is JoinRole.CLIENT:
            if not permitted:
                raise JoinFailed("the overlay does not permit clients (clients-permitted is false, §11.1)")
            return OverlayRole.CLIENT
        if option is JoinRole.PEER or not permitted:
            return OverlayRole.PEER
        if behind_nat(listen_host, self.bootstrap()):
            return OverlayRole.CLIENT
        if self._peer_failures >= self.options.peer_failures_before_client:
            return OverlayRole.CLIENT
        return OverlayRole.PEER

    async def join(self) -> Attachment:
        bootstrap = self.bootstrap()
        if not bootstrap:
            raise JoinFailed("the configuration names no bootstrap node to join through")
        listen = self.options.listen or IpAddressPort(local_address_towards(bootstrap[0].addr), 0)
        role = self.choose_role(listen.addr)
        node = build_node(self.setup, storage=role is OverlayRole.PEER)
        if role is OverlayRole.CLIENT:
            Storage.from_configuration(node, self.setup.resolver, self.setup.configuration, peer=False)
        try:
            address = await node.start(listen)
        except OSError as exc:
            await node.close()
            raise JoinFailed(f"cannot listen on {listen.addr}: {exc.strerror or exc}") from None
        others = [b for b in bootstrap if not _same(b, address)]
        try:
            if not others:
                raise JoinError("no bootstrap node but ourselves")
            if role is OverlayRole.PEER:
                await node.join(others, timeout=self.options.join_timeout)
            else:
                await node.connect_as_client(others, timeout=self.options.join_timeout)
        except (JoinError, NodeError, OSError) as exc:
            await node.close()
            if role is OverlayRole.PEER and await self._bootstrap_answers(others):
                # The overlay is there but would not take us as a peer: count it towards
                # trying as a client. (An overlay that is down says nothing about us.)
                self._peer_failures += 1
            how = "join as a peer" if role is OverlayRole.PEER else "connect as a client"
            raise JoinFailed(f"could not {how}: {exc or type(exc).__name__}") from None
        if role is OverlayRole.PEER:
            self._peer_failures = 0
        self.last_role = role
        usage = SipUsage.for_node(
            node,
            self.setup.configuration,
            lifetime=self.options.registration_lifetime or DEFAULT_REGISTRATION_LIFETIME,
            connect_timeout=self.options.connect_timeout,
        )

        async def close(sign_out: bool) -> None:
            storage = Storage.of(node)
            if sign_out and role is OverlayRole.PEER and storage is not None and node.is_joined:
                with contextlib.suppress(Exception):
                    # Our successor gets our data first, then the Leave (§10.9).
                    await asyncio.wait_for(storage.leave(LEAVE_TIMEOUT), 2 * LEAVE_TIMEOUT)
            await node.close()

        via = ", ".join(f"{b.addr}:{b.port}" for b in others)
        return Attachment(node, usage, role, False, close, via)

    async def _bootstrap_answers(self, bootstrap: Sequence[IpAddressPort]) -> bool:
        """Whether a bootstrap node accepts a TCP connection (TLS overlays; in an ICE
        overlay its address is UDP, and we cannot tell: assume it does)."""
        if uses_ice(self.setup.configuration):
            return True
        for address in bootstrap:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(address.addr, address.port), 3.0)
            except (OSError, TimeoutError):
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
        return False

    def lost_reason(self) -> str | None:
        return None

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """The node's own events tell everything here."""


class LocalJoiner:
    """The built-in local overlay through :class:`~app.phone.local_overlay.LocalOverlay`."""

    def __init__(self, overlay: LocalOverlay) -> None:
        self.overlay = overlay
        self._lost: str | None = None
        self._on_lost: Callable[[str], None] | None = None
        self.name_taken: str | None = None
        """Why the last attempt failed when another device holds our name (NameTaken):
        not a network trouble that trying again soon would cure."""
        overlay.add_listener(self._status)

    def _status(self, status: LocalOverlayStatus) -> None:
        if status.state is OverlayState.OFFLINE and status.reason:
            self._lost = status.reason
            if self._on_lost is not None:
                self._on_lost(status.reason)

    def on_lost(self, callback: Callable[[str], None]) -> None:
        self._on_lost = callback

    async def join(self) -> Attachment:
        self._lost = None
        try:
            status = await self.overlay.start()
        except NameTaken as exc:
            self.name_taken = str(exc)
            raise JoinFailed(str(exc)) from None
        except LocalOverlayError as exc:
            raise JoinFailed(str(exc)) from None
        self.name_taken = None
        node, usage = self.overlay.node, self.overlay.usage
        if node is None or usage is None:
            await self.overlay.stop()
            raise JoinFailed("the local overlay started without a node")
        overlay = self.overlay

        async def close(sign_out: bool) -> None:
            await overlay.stop()

        via = status.via.node_id.hex()[:8] if status.via is not None else ""
        return Attachment(node, usage, OverlayRole.PEER, status.via is None, close, via)

    def lost_reason(self) -> str | None:
        return self._lost


StateListener = Callable[[PhoneState, str, OverlayRole | None, float | None], None]


@dataclass(eq=False)
class OverlaySession:
    """One life of the phone on the overlay: the attachment and its SIP endpoint."""

    attachment: Attachment
    sip: OverlaySip
    registration: Registration | None = None

    @property
    def node(self) -> Node:
        return self.attachment.node

    @property
    def usage(self) -> SipUsage:
        return self.attachment.usage

    @property
    def role(self) -> OverlayRole:
        return self.attachment.role

    async def close(self, *, sign_out: bool) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sip.close(unregister=sign_out), 2 * LEAVE_TIMEOUT)
        await self.attachment.close(sign_out)


@dataclass(eq=False)
class OverlayKeeper:
    """The join-register-watch-rejoin loop (see the module docstring).

    ``make_sip`` builds the SIP endpoint on a new SIP Usage; ``on_up`` is called with each
    new session before it registers (the phone hooks its listeners there) and
    ``register`` registers it (or forwards, RFC 7904 §3.1) and returns the
    :class:`Registration`; ``on_down`` is called before a session is closed.
    """

    joiner: Joiner
    options: NetworkOptions
    make_sip: Callable[[SipUsage], OverlaySip]
    register: Callable[[OverlaySession], Awaitable[Registration]]
    on_state: StateListener
    on_up: Callable[[OverlaySession], None] = lambda session: None
    on_down: Callable[[OverlaySession], None] = lambda session: None
    rng: random.Random = field(default_factory=random.Random)
    session: OverlaySession | None = field(default=None, init=False)
    state: PhoneState = field(default=PhoneState.STOPPED, init=False)
    reason: str = field(default="", init=False)
    attempts: int = field(default=0, init=False)
    rejoins: int = field(default=0, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _lost: asyncio.Future[str] | None = field(default=None, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _first: asyncio.Future[PhoneState] | None = field(default=None, init=False)
    _closing: bool = field(default=False, init=False)
    _registration_failures: int = field(default=0, init=False)
    _grace: asyncio.TimerHandle | None = field(default=None, init=False)
    _restart: bool = field(default=False, init=False)
    _restart_sign_out: bool = field(default=False, init=False)

    # ---------------------------------------------------------------- control

    async def start(self) -> PhoneState:
        """Start the loop; returns the state after the first attempt (REGISTERED, or
        OFFLINE with the reason while it goes on trying)."""
        loop = asyncio.get_running_loop()
        if self._task is None:
            self.joiner.on_lost(self.lost)
            self._first = loop.create_future()
            self._task = loop.create_task(self._run())
        assert self._first is not None
        return await asyncio.shield(self._first)

    def retry_now(self) -> None:
        """Skip the rest of the back-off (the user asked, or the network came back)."""
        self._wake.set()

    def lost(self, reason: str) -> None:
        """The current session is unusable (e.g. the phone saw it); rejoin."""
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)

    async def restart(self, reason: str, *, sign_out: bool = True) -> None:
        """Close the current session (signing it out: its Node-ID is not coming back) and
        join again at once, e.g. with a renewed certificate."""
        if self.session is not None and self._lost is not None and not self._lost.done():
            self._restart = True
            self._restart_sign_out = sign_out
            self.lost(reason)
        self._wake.set()  # offline: skip the rest of the back-off

    async def close(self, *, sign_out: bool = True) -> None:
        """Stop: sign out (remove the registration, leave the overlay) and close."""
        self._closing = True
        self._wake.set()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result("closing")
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):
                self.on_down(session)
            await session.close(sign_out=sign_out)
        self._set(PhoneState.CLOSED, "signed out" if sign_out else "closed", None)

    # ---------------------------------------------------------------- the loop

    def _set(
        self, state: PhoneState, reason: str, role: OverlayRole | None, retry_in: float | None = None
    ) -> None:
        self.state, self.reason = state, reason
        try:
            self.on_state(state, reason, role, retry_in)
        except Exception:
            log.exception("phone state listener failed")
        if (
            self._first is not None
            and not self._first.done()
            and state in (PhoneState.REGISTERED, PhoneState.OFFLINE)
        ):
            self._first.set_result(state)

    def _delay(self, failures: int) -> float:
        base: float = min(self.options.retry_max, self.options.retry_first * 2.0 ** max(0, failures - 1))
        return base * self.rng.uniform(0.8, 1.2)

    async def _run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while not self._closing:
            self.attempts += 1
            self._set(PhoneState.JOINING, "joining the overlay", None)
            try:
                attachment = await self.joiner.join()
            except JoinFailed as exc:
                failures += 1
                await self._back_off(str(exc), failures)
                continue
            session = OverlaySession(attachment, self.make_sip(attachment.usage))
            self.session = session
            self._lost = loop.create_future()
            self._registration_failures = 0
            remove_node = attachment.node.add_listener(self._node_event)
            watchdog = loop.create_task(self._watch(session))
            registered_at: float | None = None
            try:
                self.on_up(session)
                self._set(PhoneState.REGISTERING, "registering our AoR", attachment.role)
                try:
                    session.registration = await self.register(session)
                except Exception as exc:  # refused for good (RFC 7904 §3.3), or the node went
                    self.lost(f"registration failed: {exc}")
                else:
                    session.registration.add_listener(self._registration_event)
                    if session.registration.state.value == "registered":
                        self._set(PhoneState.REGISTERED, "registered", attachment.role)
                        registered_at = loop.time()
                    elif session.registration.last_error:
                        self._set(
                            PhoneState.REGISTERING,
                            f"registration failed, retrying: {session.registration.last_error}",
                            attachment.role,
                        )
                reason = await self._lost
            finally:
                remove_node()
                watchdog.cancel()
                self._cancel_grace()
            if self._closing:
                return
            self.rejoins += 1
            self.session = None
            with contextlib.suppress(Exception):
                self.on_down(session)
            restart, sign_out = self._restart, self._restart_sign_out
            self._restart = self._restart_sign_out = False
            await session.close(sign_out=sign_out)
            if restart:
                failures = 0
                continue
            if self.state is PhoneState.REGISTERED or registered_at is not None:
                failures = 0  # it worked for a while: start the back-off again
            failures += 1
            await self._back_off(reason, failures)

    async def _back_off(self, reason: str, failures: int) -> None:
        delay = self._delay(failures)
        log.info("offline: %s; retrying in %.1f s", reason, delay)
        self._set(PhoneState.OFFLINE, reason, None, delay)
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    # ---------------------------------------------------------------- watching

    def _node_event(self, event: NodeEvent) -> None:
        if not isinstance(event, StateChanged) or self._closing:
            return
        session = self.session
        if event.state in ("closed", "left"):
            self.lost(self.joiner.lost_reason() or "the overlay node stopped")
        elif event.state == "disconnected":
            if session is not None and session.role is OverlayRole.CLIENT:
                self.lost("lost the connection to the overlay")
            elif self._grace is None:
                self._grace = asyncio.get_running_loop().call_later(
                    self.options.disconnected_grace, self.lost, "lost every link to the overlay"
                )
        elif event.state in ("joined", "client"):
            self._cancel_grace()

    def _cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    def _registration_event(self, event: RegistrationEvent) -> None:
        session = self.session
        role = session.role if session is not None else None
        if isinstance(event, Registered | Refreshed):
            self._registration_failures = 0
            if self.state is not PhoneState.REGISTERED:
                self._set(PhoneState.REGISTERED, "registered", role)
        elif isinstance(event, RegistrationFailed):
            self._registration_failures += 1
            if event.retry_in is None:
                self.lost(f"registration refused: {event.reason}")
            elif self._registration_failures >= self.options.registration_failures:
                self.lost(f"registration keeps failing: {event.reason}")
            else:
                self._set(PhoneState.REGISTERING, f"registration failed, retrying: {event.reason}", role)
        elif isinstance(event, Unregistered) and not self._closing:
            log.debug("registration of %s stopped: %s", event.aor, event.reason)

    async def _watch(self, session: OverlaySession) -> None:
        while True:
            await asyncio.sleep(self.options.watch_interval)
            reason = self.joiner.lost_reason()
            if reason is not None:
                self.lost(reason)
                return
            if not session.attachment.alone and not session.node.connected_nodes:
                self.lost("no link to the overlay is left")
                return


__all__ = [
    "NAT_NETWORKS",
    "Attachment",
    "EnrolledJoiner",
    "JoinFailed",
    "JoinRole",
    "Joiner",
    "LocalJoiner",
    "NetworkOptions",
    "OverlayKeeper",
    "OverlaySession",
    "behind_nat",
]

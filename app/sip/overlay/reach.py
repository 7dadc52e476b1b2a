"""Reaching a SIP URI through the overlay: resolve, then AppAttach to each device
(RFC 7904 §4, §5.1, §8.2.1).

:meth:`Reacher.reach` turns what the user dialled (``sip:bob@example.org``,
``bob@example.org``, a ``sips:`` AoR, or a RELOAD GRUU) into the flows to send the
INVITE on:

1. :meth:`SipUsage.resolve <reload_core.usages.sip.SipUsage.resolve>`: Fetch the AoR's
   SIP-REGISTRATION and follow its forwards (§4.2), or read a GRUU's Destination List
   (§6, no Fetch). An outcome that leaves nowhere to go (not registered, a forwarding
   loop, a domain this overlay does not serve...) is :class:`NotReachable` at once, with
   the reason in words: a caller is told, never left to time out.
2. The devices found, without this one (a user calling their own AoR finds their own
   registration among the others), are connected to in parallel: an AppAttach for SIP
   (5060) or SIPS (5061) as the callee's ``contact_prefs`` ask, or as a ``sips:`` URI
   demands (§5.1), or the open connection to that node reused. Each connection is one
   branch: the call forks to all of them, the caller's own proxy-less fork (§8.2.1).
3. Branches whose connection fails are left out and reported in :attr:`Reach.failures`
   when others succeed; when every one fails the dial is :class:`NotReachable` saying
   why for each. Once one device is connected the others get :data:`FORK_GRACE` seconds
   more; one still connecting then is left out of this call (its connection, once made,
   is kept for the next).

The Request-URI of each branch is the device's GRUU (§6; a registration's contact is a
Destination List, so the GRUU is the URI that names exactly that device); the To header
stays the AoR dialled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from app.sip.aio import CallError
from app.sip.errors import RemoteProtocolError
from app.sip.overlay.flows import OverlayFlow, OverlayFlows
from app.sip.ua import Target
from app.sip.uri import SipUri, parse_uri
from reload_core.usages.sip import (
    AorError,
    Contact,
    Outcome,
    Resolution,
    SipScheme,
    SipUsage,
    SipUsageError,
    is_gruu,
    parse_aor,
)

log = logging.getLogger(__name__)

FORK_GRACE = 2.0
"""Seconds the other devices of a callee get to connect once the first one is connected."""


class NotReachable(CallError):
    """Nobody to send the call to: ``reason`` says why in words. ``resolution`` is what
    resolving found (None when the URI could not be resolved at all); ``failures`` the
    connection failure of each device that was tried."""

    def __init__(
        self, reason: str, *, resolution: Resolution | None = None, failures: tuple[str, ...] = ()
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.resolution = resolution
        self.failures = failures

    @property
    def outcome(self) -> Outcome | None:
        return self.resolution.outcome if self.resolution is not None else None


@dataclass(frozen=True)
class Branch:
    """One device to send the request to: its connection's flow and the Request-URI.
    ``reused``: the connection was open already (no AppAttach); ``connect_ms``: how long
    getting it took."""

    contact: Contact
    flow: OverlayFlow
    request_uri: SipUri
    reused: bool
    connect_ms: float

    @property
    def target(self) -> Target:
        return Target(self.flow.peer, self.request_uri)

    @property
    def node_id(self) -> bytes:
        return self.flow.sip_connection.verified_node_id


@dataclass(frozen=True)
class Reach:
    """What dialling ``dialled`` found: the branches to fork to and how long each step
    took (``resolve_ms``: the Fetches, or none for a GRUU; ``connect_ms``: from then until
    the branches were ready). ``failures``: devices that could not be connected;
    ``pending``: devices still connecting when the call went out; ``own_devices``:
    registrations of this very device, skipped."""

    dialled: str
    resolution: Resolution
    branches: tuple[Branch, ...]
    failures: tuple[str, ...] = ()
    pending: int = 0
    own_devices: int = 0
    resolve_ms: float = 0.0
    connect_ms: float = 0.0

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(b.target for b in self.branches)

    @property
    def reused(self) -> bool:
        """Whether every branch went over a connection that was open already."""
        return all(b.reused for b in self.branches)

    def describe(self) -> str:
        n = len(self.branches)
        text = f"{self.resolution.describe()}; {n} device{'s' if n != 1 else ''} connected"
        if self.failures:
            text += f"; not reached: {'; '.join(self.failures)}"
        if self.pending:
            text += f"; {self.pending} still connecting"
        return text


def unreachable_reason(resolution: Resolution) -> str:
    """Why a resolution that found nowhere to go leads nowhere, in words."""
    if resolution.outcome is Outcome.NOT_REGISTERED:
        return f"{resolution.target} is not registered (not online)"
    return resolution.describe()


def dial_string(target: str | SipUri) -> tuple[str, SipUri]:
    """The dialled URI as text (a bare ``user@domain`` becomes ``sip:user@domain``) and
    parsed; :class:`NotReachable` if it is not a SIP URI."""
    text = str(target).strip()
    if ":" not in text.split("@", 1)[0]:
        text = f"sip:{text}"
    try:
        uri = parse_uri(text)
    except RemoteProtocolError as exc:
        raise NotReachable(f"{target!s} is not a SIP URI: {exc.reason}") from None
    if not isinstance(uri, SipUri):
        raise NotReachable(f"{target!s} is not a SIP or SIPS URI")
    return text, uri


class Reacher:
    """Resolves and connects for one UA (see the module docstring)."""

    def __init__(
        self,
        usage: SipUsage,
        flows: OverlayFlows,
        *,
        connect_timeout: float | None = None,
        fork_grace: float = FORK_GRACE,
    ) -> None:
        self.usage = usage
        self.flows = flows
        self.connect_timeout = connect_timeout
        self.fork_grace = fork_grace
        self._background: set[asyncio.Task[Branch]] = set()

    async def reach(self, target: str | SipUri, *, scheme: SipScheme | None = None) -> Reach:
        """The branches for ``target`` (see the module docstring); raises
        :class:`NotReachable` when there are none."""
        dialled, uri = dial_string(target)
        wanted = scheme if scheme is not None else (SipScheme.SIPS if uri.scheme == "sips" else None)
        if is_gruu(dialled):
            name = dialled
        else:
            try:
                name = parse_aor(dialled).name
            except AorError as exc:
                raise NotReachable(f"{dialled} is not a SIP AoR: {exc}") from None
        started = time.perf_counter()
        try:
            resolution = await self.usage.resolve(name)
        except SipUsageError as exc:
            raise NotReachable(f"{name}: {exc}") from None
        resolved = time.perf_counter()
        if resolution.outcome not in (Outcome.REGISTERED, Outcome.GRUU):
            raise NotReachable(unreachable_reason(resolution), resolution=resolution)
        contacts = [c for c in resolution.contacts if c.node_id != self.usage.node_id]
        own = len(resolution.contacts) - len(contacts)
        if not contacts:
            raise NotReachable(f"{name} is registered only at this device", resolution=resolution)
        branches, failures, pending = await self._connect_all(contacts, wanted)
        connected = time.perf_counter()
        if not branches:
            devices = f"{len(contacts)} device{'s' if len(contacts) != 1 else ''}"
            raise NotReachable(
                f"{name} is registered at {devices} but none could be reached: {'; '.join(failures)}",
                resolution=resolution,
                failures=tuple(failures),
            )
        for failure in failures:
            log.info("calling %s: left out %s", name, failure)
        return Reach(
            dialled,
            resolution,
            tuple(branches),
            tuple(failures),
            pending,
            own,
            (resolved - started) * 1000,
            (connected - resolved) * 1000,
        )

    async def _connect_all(
        self, contacts: list[Contact], scheme: SipScheme | None
    ) -> tuple[list[Branch], list[str], int]:
        loop = asyncio.get_running_loop()
        tasks = {loop.create_task(self._connect(c, scheme)): c for c in contacts}
        branches: list[Branch] = []
        failures: list[str] = []
        remaining: set[asyncio.Task[Branch]] = set(tasks)
        deadline: float | None = None
        try:
            while remaining:
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                done, remaining = await asyncio.wait(
                    remaining, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    break  # the grace is over: the others are left out of this call
                for task in done:
                    exc = task.exception()
                    if exc is None:
                        branches.append(task.result())
                        if deadline is None:
                            deadline = loop.time() + self.fork_grace
                    else:
                        failures.append(_failure_text(tasks[task], exc))
        except asyncio.CancelledError:
            for task in remaining:
                task.cancel()
            raise
        for task in remaining:
            # Left to finish: the connection, once made, is pooled and has its flow.
            self._background.add(task)
            task.add_done_callback(self._background_done)
        branches.sort(key=lambda b: contacts.index(b.contact))  # newest registration first
        return branches, failures, len(remaining)

    def _background_done(self, task: asyncio.Task[Branch]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a connection left out of a call failed: %s", task.exception())

    async def _connect(self, contact: Contact, scheme: SipScheme | None) -> Branch:
        node_id = contact.node_id
        reused = node_id is not None and any(
            self.usage.pool.get(node_id, application) is not None
            for application in contact.applications(scheme)
        )
        started = time.perf_counter()
        connection = await self.usage.connect(contact, scheme=scheme, timeout=self.connect_timeout)
        flow = self.flows.flow(connection)
        return Branch(
            contact,
            flow,
            request_uri(contact, connection.scheme),
            reused,
            (time.perf_counter() - started) * 1000,
        )

    async def close(self) -> None:
        """Stop the connects still under way."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def request_uri(contact: Contact, scheme: SipScheme) -> SipUri:
    """The Request-URI for ``contact``: its GRUU (RFC 7904 §6), ``sips:`` on a SIPS
    connection."""
    uri = parse_uri(contact.as_gruu())
    assert isinstance(uri, SipUri)  # a GRUU we built or resolved is a SIP URI
    return uri.replace(scheme="sips") if scheme is SipScheme.SIPS else uri


def _failure_text(contact: Contact, exc: BaseException) -> str:
    node = contact.node_id.hex()[:8] if contact.node_id is not None else "?"
    if not isinstance(exc, SipUsageError):
        log.warning("connecting to %s at %s failed unexpectedly", contact.aor, node, exc_info=exc)
    return f"device {node}: {exc or type(exc).__name__}"


__all__ = [
    "FORK_GRACE",
    "Branch",
    "NotReachable",
    "Reach",
    "Reacher",
    "dial_string",
    "request_uri",
    "unreachable_reason",
]

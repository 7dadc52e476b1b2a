"""Keeping one SIP-REGISTRATION entry of ours in the overlay (RFC 7904 §3.1, §3.2, §7).

A :class:`Registration` owns the dictionary entry that this node stores at an AoR's
Resource-ID under its own Node-ID (the key USER-NODE-MATCH allows it, §3.3, §7): a
``sip_registration_route`` ("in order to contact me, form a connection with this Peer")
or a ``sip_registration_uri`` ("dereference this AOR", forwarding), §3.1. Several devices
of one user each keep their own entry side by side (§3.2).

"The registration lifetime known from the regular SIP REGISTER method is inherited from
the lifetime attribute of the basic RELOAD StoredData structure" (§3.1), so the entry
is stored again before its lifetime ends: after a random 50-75 % of it, so that devices
that registered together do not refresh together. A Store that fails for a reason that
may pass (no route yet, a timeout) is retried with exponential backoff (1 s doubling up
to 60 s, ±20 %); one the storing peer refuses for good (``Error_Forbidden`` and the
like) is not. :meth:`Registration.stop` removes the entry: a Store of the same key with
``exists = false`` (RFC 6940 §7.4.1.3), as on sign-out and on a clean exit.

Timers run on the node's clock; outcomes go to listeners as frozen events
(:data:`RegistrationEvent`) and to :attr:`Registration.state`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from reload_core.links.base import Clock, TimerHandle
from reload_core.node.errors import NodeClosedError, NodeError, RequestError
from reload_core.storage.client import StorageClient
from reload_core.storage.errors import StorageError
from reload_core.usages.sip.aor import Aor
from reload_core.wire.codes import ErrorCode, KindId
from reload_core.wire.sip_registration import SipRegistration, SipRegistrationUri
from reload_core.wire.storage import DataValue, DictionaryEntry

log = logging.getLogger(__name__)

DEFAULT_REGISTRATION_LIFETIME = 3600
"""Seconds a registration lives unless refreshed (local choice; RFC 7904 sets none)."""

REFRESH_WINDOW = (0.5, 0.75)
"""A registration is refreshed after this share of its lifetime, drawn at random."""

RETRY_BASE = 1.0
RETRY_MAX = 60.0
REMOVAL_MIN_LIFETIME = 60
"""A removal lives at least this long, so that it outlasts the value it removes on
every replica (RFC 6940 §7.4.1.3)."""

PERMANENT_ERRORS = frozenset(
    {
        ErrorCode.Error_Forbidden,
        ErrorCode.Error_Unknown_Kind,
        ErrorCode.Error_Data_Too_Large,
        ErrorCode.Error_Invalid_Message,
        ErrorCode.Error_Incompatible_with_Overlay,
    }
)
"""Refusals that a retry cannot change."""


class RegistrationState(StrEnum):
    IDLE = "idle"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Registered:
    """The entry is stored (first time, after a failure, or with a new value)."""

    aor: str
    record: SipRegistration
    lifetime: int


@dataclass(frozen=True, slots=True)
class Refreshed:
    """The entry was stored again before its lifetime ran out."""

    aor: str
    record: SipRegistration
    lifetime: int


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    """A Store failed: ``reason`` in words, ``code`` the RELOAD error (None if the node
    failed locally), ``retry_in`` seconds until the next try (None: no more tries)."""

    aor: str
    reason: str
    code: ErrorCode | int | None
    retry_in: float | None


@dataclass(frozen=True, slots=True)
class Unregistered:
    """The registration stopped; ``removed``: the entry was removed from the overlay."""

    aor: str
    removed: bool
    reason: str


RegistrationEvent = Registered | Refreshed | RegistrationFailed | Unregistered
RegistrationListener = Callable[[RegistrationEvent], None]


class Registration:
    """One SIP-REGISTRATION entry of this node (see the module docstring).

    ``key`` is the storing node's Node-ID (the dictionary key, RFC 7904 §7); ``bits`` the
    Resource-ID length. Build it through :class:`~reload_core.usages.sip.usage.SipUsage`.
    """

    def __init__(
        self,
        client: StorageClient,
        aor: Aor,
        record: SipRegistration,
        *,
        key: bytes,
        clock: Clock,
        rng: random.Random | None = None,
        lifetime: int = DEFAULT_REGISTRATION_LIFETIME,
        bits: int = 128,
    ) -> None:
        if lifetime <= 0:
            raise ValueError("a registration's lifetime is a positive number of seconds")
        self.client = client
        self.aor = aor
        self.record = record
        self.key = key
        self.clock = clock
        self.rng = rng or random.Random()
        self.lifetime = lifetime
        self.resource = aor.resource_id(bits)
        self.state = RegistrationState.IDLE
        self.expires_at: float | None = None
        """When the stored entry ends, on the node's clock (None before a Store succeeded)."""
        self.last_error: str | None = None
        self.refreshes = 0
        self._listeners: list[RegistrationListener] = []
        self._timer: TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._failures = 0
        self._sent = False

    def __repr__(self) -> str:
        return f"<Registration {self.aor} {self.state.value}>"

    # ---------------------------------------------------------------- listeners

    def add_listener(self, listener: RegistrationListener) -> Callable[[], None]:
        """Call ``listener`` with every event; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _emit(self, event: RegistrationEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("registration listener failed")

    # ---------------------------------------------------------------- API

    @property
    def is_forward(self) -> bool:
        """Whether the entry forwards to another AoR (``sip_registration_uri``, §3.1)."""
        return isinstance(self.record.data, SipRegistrationUri)

    @property
    def stopped(self) -> bool:
        return self.state is RegistrationState.STOPPED

    @property
    def expires_in(self) -> float | None:
        """Seconds the stored entry has left (None before a Store succeeded)."""
        if self.expires_at is None:
            return None
        return max(0.0, self.expires_at - self.clock.time())

    async def start(self) -> RegistrationState:
        """Store the entry now and keep it refreshed; returns the state after the first
        Store (REGISTERED, or FAILED with a retry scheduled unless the refusal is final)."""
        if self.state is RegistrationState.STOPPED:
            raise RuntimeError("a stopped registration does not start again")
        if self.state is not RegistrationState.IDLE:
            return self.state
        self.state = RegistrationState.REGISTERING
        return await self._run(refresh=False)

    async def update(self, record: SipRegistration) -> RegistrationState:
        """Store ``record`` in place of the current value now (e.g. forwarding on or off)."""
        if self.state is RegistrationState.STOPPED:
            raise RuntimeError("a stopped registration cannot be updated")
        self.record = record
        if self.state is RegistrationState.IDLE:
            return await self.start()
        return await self._run(refresh=False)

    async def refresh(self) -> RegistrationState:
        """Store the entry again now, without waiting for the timer."""
        if self.state in (RegistrationState.IDLE, RegistrationState.STOPPED):
            return self.state
        return await self._run(refresh=True)

    async def stop(self, *, remove: bool = True) -> None:
        """Stop refreshing; with ``remove``, remove the entry from the overlay."""
        if self.state is RegistrationState.STOPPED:
            return
        self.state = RegistrationState.STOPPED
        self._cancel_timer()
        for task in list(self._tasks):
            task.cancel()
        removed, reason = False, "stopped without removing the entry"
        if remove and self._sent:
            async with self._lock:
                removed, reason = await self._remove()
        elif remove:
            reason = "nothing was stored"
        self._emit(Unregistered(self.aor.name, removed, reason))

    # ---------------------------------------------------------------- storing

    async def _run(self, *, refresh: bool) -> RegistrationState:
        task = asyncio.get_running_loop().create_task(self._store(refresh=refresh))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled() and self.state is RegistrationState.STOPPED:
                return self.state
            raise
        return self.state

    def _due(self) -> None:
        self._timer = None
        if self.state is RegistrationState.STOPPED:
            return
        task = asyncio.get_running_loop().create_task(
            self._store(refresh=self.state is RegistrationState.REGISTERED)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _store(self, *, refresh: bool) -> None:
        async with self._lock:
            if self.state is RegistrationState.STOPPED:
                return
            self._cancel_timer()
            record = self.record
            value = DictionaryEntry(self.key, DataValue(True, record.to_bytes()))
            self._sent = True
            try:
                await self.client.store(
                    self.resource, KindId.SIP_REGISTRATION, [value], lifetime=self.lifetime
                )
            except StorageError as exc:
                self._failed(exc.code, exc.reason)
                return
            except RequestError as exc:
                self._failed(exc.error_code, str(exc))
                return
            except NodeClosedError:
                self._failed(None, "the node is closed", final=True)
                return
            except NodeError as exc:
                self._failed(None, str(exc) or type(exc).__name__)
                return
            if self.stopped:  # stop() came while the Store was out
                return
            self.expires_at = self.clock.time() + self.lifetime
            self.last_error = None
            self._failures = 0
            was = self.state
            self.state = RegistrationState.REGISTERED
            low, high = REFRESH_WINDOW
            self._schedule(self.lifetime * self.rng.uniform(low, high))
            if refresh and was is RegistrationState.REGISTERED:
                self.refreshes += 1
                self._emit(Refreshed(self.aor.name, record, self.lifetime))
            else:
                self._emit(Registered(self.aor.name, record, self.lifetime))

    def _failed(self, code: ErrorCode | int | None, reason: str, *, final: bool = False) -> None:
        if self.state is RegistrationState.STOPPED:
            return
        self.last_error = reason
        self._failures += 1
        retry_in: float | None = None
        if not final and code not in PERMANENT_ERRORS:
            backoff = min(RETRY_MAX, RETRY_BASE * 2 ** (self._failures - 1))
            retry_in = backoff * self.rng.uniform(0.8, 1.2)
            self._schedule(retry_in)
        self.state = RegistrationState.FAILED
        log.info("registration of %s failed: %s", self.aor, reason)
        self._emit(RegistrationFailed(self.aor.name, reason, code, retry_in))

    async def _remove(self) -> tuple[bool, str]:
        left = self.expires_in
        lifetime = max(REMOVAL_MIN_LIFETIME, math.ceil(left) if left is not None else self.lifetime)
        try:
            await self.client.remove(self.resource, KindId.SIP_REGISTRATION, key=self.key, lifetime=lifetime)
        except StorageError as exc:
            return False, f"the removal failed: {exc}"
        except NodeError as exc:
            return False, f"the removal failed: {exc or type(exc).__name__}"
        self.expires_at = None
        return True, "removed from the overlay"

    def _schedule(self, delay: float) -> None:
        self._cancel_timer()
        self._timer = self.clock.call_later(delay, self._due)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


__all__ = [
    "DEFAULT_REGISTRATION_LIFETIME",
    "PERMANENT_ERRORS",
    "REFRESH_WINDOW",
    "Refreshed",
    "Registered",
    "Registration",
    "RegistrationEvent",
    "RegistrationFailed",
    "RegistrationListener",
    "RegistrationState",
    "Unregistered",
]

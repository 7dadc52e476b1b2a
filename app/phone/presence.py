"""Buddy presence: who is online, checked on a schedule that scales.

A buddy is **online** when their AoR has a registration (a Fetch of its SIP-REGISTRATION,
RFC 7904 §4) *and* the device it names answers a RELOAD Ping (RFC 6940 §6.5.3): a
registration outlives a device that crashed or lost its network until its lifetime runs
out, and the Ping tells the two apart. Offline otherwise, with the time they were last
seen online. That is the cheapest honest check: one Fetch (plus one more per forward
followed) and one Ping, routed through the overlay like any request; no SIP connection
is opened for it.

Cost. Every check is overlay traffic, so a long buddy list must not flood the overlay.
:class:`PresenceScheduler` (pure: time is passed in, no I/O) keeps the cost under
``max_rate`` overlay requests per second, whatever the number of buddies:

- an online buddy is checked again after ``online_interval`` (60 s), jittered ±20 % so
  that the checks of a list spread out instead of bunching;
- an offline buddy backs off: ``offline_first`` (60 s), then doubling up to
  ``offline_max`` (5 min): someone who is away is asked about rarely;
- new buddies (and all of them at start-up) are spread over the first
  ``initial_spread`` seconds;
- a token bucket of ``max_rate`` requests per second (depth ``burst``) meters the checks:
  a check that would overdraw it waits, oldest first, so with more buddies than the
  budget allows at those intervals the intervals stretch instead of the rate growing.
  Each check is charged its expected cost beforehand (two requests for a buddy last seen
  online, one for one offline) and corrected with the real count when it reports;
- :meth:`PresenceScheduler.urgent` checks a buddy at once, ahead of the queue (a call to
  them just failed: the list should not keep saying "online").

With the defaults, 200 buddies cost at most 4 requests per second
(``tests/phone/test_presence_scheduler.py`` runs an hour of virtual time and measures
it); :meth:`~PresenceScheduler.estimated_rate` and
:meth:`~PresenceScheduler.measured_rate` expose the figure (``p2psip bench phone``).

:class:`PresenceMonitor` runs a scheduler on the event loop with a check coroutine
supplied by the phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_EPSILON = 1e-9  # the bucket refills in floating point: "enough" within rounding


@dataclass(frozen=True, slots=True)
class PresencePolicy:
    """How often to check (seconds) and what it may cost (overlay requests)."""

    online_interval: float = 60.0
    offline_first: float = 60.0
    offline_max: float = 300.0
    backoff: float = 2.0
    jitter: float = 0.2
    initial_spread: float = 30.0
    max_rate: float = 4.0
    burst: float = 4.0
    cost_online: float = 2.0  # a Fetch that finds a registration + a Ping to its node
    cost_offline: float = 1.0  # a Fetch that finds nothing

    def __post_init__(self) -> None:
        if self.max_rate <= 0 or self.burst < max(self.cost_online, self.cost_offline):
            raise ValueError("max_rate must be positive and burst at least one check's cost")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction below 1")


@dataclass(frozen=True, slots=True)
class PresenceInfo:
    """What is known about one buddy: ``online`` None until the first check."""

    aor: str
    online: bool | None
    last_seen: float | None  # wall-clock time they were last found online
    last_checked: float | None  # scheduler time of the last report
    next_check: float
    offline_streak: int


@dataclass(eq=False, slots=True)
class _Entry:
    aor: str
    due: float
    online: bool | None = None
    last_seen: float | None = None
    last_checked: float | None = None
    offline_streak: int = 0
    in_flight: bool = False
    urgent: bool = False
    charged: float = 0.0
    checks: int = 0


class PresenceScheduler:
    """When to check which buddy, within a request budget (see the module docstring).
    Pure: every method takes the time (seconds, any monotonic origin)."""

    def __init__(self, policy: PresencePolicy | None = None, *, rng: random.Random | None = None) -> None:
        self.policy = policy or PresencePolicy()
        self.rng = rng or random.Random()
        self._entries: dict[str, _Entry] = {}
        self._tokens = self.policy.burst
        self._refilled: float | None = None
        self._spent: deque[tuple[float, int]] = deque()
        self.requests = 0
        """Overlay requests reported by all checks so far."""
        self.checks = 0

    # ---------------------------------------------------------------- the list

    def __contains__(self, aor: object) -> bool:
        return aor in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, aor: str, now: float, *, last_seen: float | None = None) -> None:
        """Watch ``aor``; its first check falls in the next ``initial_spread`` seconds."""
        if aor in self._entries:
            return
        due = now + self.rng.uniform(0.0, self.policy.initial_spread)
        self._entries[aor] = _Entry(aor, due, last_seen=last_seen)

    def remove(self, aor: str) -> None:
        self._entries.pop(aor, None)

    def urgent(self, aor: str, now: float) -> None:
        """Check ``aor`` as soon as the budget allows, before anyone else."""
        entry = self._entries.get(aor)
        if entry is not None and not entry.in_flight:
            entry.due = now
            entry.urgent = True

    def info(self, aor: str) -> PresenceInfo | None:
        e = self._entries.get(aor)
        if e is None:
            return None
        return PresenceInfo(e.aor, e.online, e.last_seen, e.last_checked, e.due, e.offline_streak)

    def all(self) -> list[PresenceInfo]:
        return [info for aor in self._entries if (info := self.info(aor)) is not None]

    # ---------------------------------------------------------------- the budget

    def _refill(self, now: float) -> None:
        if self._refilled is None:
            self._refilled = now
            return
        elapsed = max(0.0, now - self._refilled)
        self._tokens = min(self.policy.burst, self._tokens + elapsed * self.policy.max_rate)
        self._refilled = now

    def _cost(self, entry: _Entry) -> float:
        return self.policy.cost_offline if entry.online is False else self.policy.cost_online

    def take_due(self, now: float, limit: int | None = None) -> list[str]:
        """The buddies to check now (marked in flight until :meth:`report`), as many as
        the budget (and ``limit``) allows: urgent ones first, then by due time."""
        self._refill(now)
        ready = sorted(
            (e for e in self._entries.values() if not e.in_flight and e.due <= now),
            key=lambda e: (not e.urgent, e.due),
        )
        out: list[str] = []
        for entry in ready:
            if limit is not None and len(out) >= limit:
                break
            cost = self._cost(entry)
            if self._tokens + _EPSILON < cost:
                break
            self._tokens -= cost
            entry.in_flight = True
            entry.urgent = False
            entry.charged = cost
            out.append(entry.aor)
        return out

    def next_wakeup(self, now: float) -> float | None:
        """When :meth:`take_due` will next have something to give (None: nothing to check
        until a report comes in or a buddy is added)."""
        waiting = [e for e in self._entries.values() if not e.in_flight]
        if not waiting:
            return None
        first = min(waiting, key=lambda e: (not (e.urgent and e.due <= now), e.due))
        self._refill(now)
        cost = self._cost(first)
        budget_at = (
            now if self._tokens + _EPSILON >= cost else now + (cost - self._tokens) / self.policy.max_rate
        )
        return max(first.due, budget_at)

    # ---------------------------------------------------------------- outcomes

    def report(
        self, aor: str, online: bool, now: float, *, requests: int, wall_time: float | None = None
    ) -> bool:
        """The check of ``aor`` is done: ``online`` or not, having cost ``requests``
        overlay requests. Schedules the next check; returns whether ``online`` changed
        (the first result counts as a change). ``wall_time`` is stored as last seen."""
        self._refill(now)
        self.requests += requests
        self.checks += 1
        self._spent.append((now, requests))
        entry = self._entries.get(aor)
        if entry is None:
            self._tokens -= requests  # removed while in flight: the requests went all the same
            return False
        self._tokens += entry.charged - requests
        entry.charged = 0.0
        entry.in_flight = False
        entry.checks += 1
        changed = entry.online is not online
        entry.online = online
        entry.last_checked = now
        p = self.policy
        if online:
            entry.offline_streak = 0
            entry.last_seen = wall_time if wall_time is not None else entry.last_seen
            interval = p.online_interval
        else:
            entry.offline_streak += 1
            interval = min(p.offline_max, p.offline_first * p.backoff ** (entry.offline_streak - 1))
        if not entry.urgent:
            entry.due = now + interval * self.rng.uniform(1 - p.jitter, 1 + p.jitter)
        return changed

    def cancel(self, aor: str, now: float) -> None:
        """A check that could not run (the overlay is down): try again later, charge
        nothing."""
        entry = self._entries.get(aor)
        if entry is None or not entry.in_flight:
            return
        self._refill(now)
        self._tokens = min(self.policy.burst, self._tokens + entry.charged)
        entry.charged = 0.0
        entry.in_flight = False
        entry.due = now + self.policy.offline_first * self.rng.uniform(
            1 - self.policy.jitter, 1 + self.policy.jitter
        )

    def seen(self, aor: str, now: float, wall_time: float) -> bool:
        """``aor`` was just heard from (a call or a message came from them): online,
        without a check. Returns whether that is a change."""
        entry = self._entries.get(aor)
        if entry is None:
            return False
        changed = entry.online is not True
        entry.online = True
        entry.offline_streak = 0
        entry.last_seen = wall_time
        if not entry.in_flight:
            p = self.policy
            entry.due = now + p.online_interval * self.rng.uniform(1 - p.jitter, 1 + p.jitter)
        return changed

    # ---------------------------------------------------------------- figures

    def estimated_rate(self) -> float:
        """Overlay requests per second the list costs at the current intervals (online
        buddies every ``online_interval``, offline ones at their back-off), capped by the
        budget."""
        p = self.policy
        total = 0.0
        for e in self._entries.values():
            if e.online is False:
                interval = min(p.offline_max, p.offline_first * p.backoff ** max(0, e.offline_streak - 1))
                total += p.cost_offline / interval
            else:
                total += p.cost_online / p.online_interval
        return min(total, p.max_rate)

    def measured_rate(self, now: float, window: float = 60.0) -> float:
        """Overlay requests per second reported over the last ``window`` seconds."""
        while self._spent and self._spent[0][0] <= now - window:
            self._spent.popleft()
        return sum(n for _, n in self._spent) / window


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One presence check: ``online``, and how many overlay requests it took."""

    online: bool
    requests: int
    detail: str = ""


PresenceCheck = Callable[[str], Awaitable[CheckResult]]
PresenceListener = Callable[[str, bool, float | None], None]
"""Called with (aor, online, last seen wall time) whenever a buddy's presence changes."""


@dataclass
class PresenceMonitor:
    """Runs a :class:`PresenceScheduler` on the event loop: checks due buddies with
    ``check`` (at most ``concurrency`` at once) and tells ``on_change`` what changed.
    ``clock`` is the scheduler's time (the loop's), ``wall`` the last-seen time."""

    check: PresenceCheck
    on_change: PresenceListener
    scheduler: PresenceScheduler = field(default_factory=PresenceScheduler)
    concurrency: int = 8
    clock: Callable[[], float] = field(default_factory=lambda: asyncio.get_running_loop().time)
    wall: Callable[[], float] = time.time
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _checks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _paused: bool = field(default=False, init=False)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def pause(self, paused: bool) -> None:
        """Stop checking while the overlay is down (every check would fail); go on after."""
        self._paused = paused
        self._wake.set()

    def add(self, aor: str, *, last_seen: float | None = None) -> None:
        self.scheduler.add(aor, self.clock(), last_seen=last_seen)
        self._wake.set()

    def remove(self, aor: str) -> None:
        self.scheduler.remove(aor)

    def urgent(self, aor: str) -> None:
        self.scheduler.urgent(aor, self.clock())
        self._wake.set()

    def seen(self, aor: str) -> None:
        wall = self.wall()
        if self.scheduler.seen(aor, self.clock(), wall):
            self._notify(aor, True, wall)

    def _notify(self, aor: str, online: bool, last_seen: float | None) -> None:
        try:
            self.on_change(aor, online, last_seen)
        except Exception:
            log.exception("presence listener failed")

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock()
            room = self.concurrency - len(self._checks)
            if not self._paused and room > 0:
                for aor in self.scheduler.take_due(now, room):
                    task = asyncio.get_running_loop().create_task(self._one(aor))
                    self._checks.add(task)
                    task.add_done_callback(self._done)
            wakeup = None if self._paused else self.scheduler.next_wakeup(now)
            timeout = None if wakeup is None else max(0.0, wakeup - now)
            if len(self._checks) >= self.concurrency:
                timeout = None  # a finishing check wakes us
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._checks.discard(task)
        self._wake.set()

    async def _one(self, aor: str) -> None:
        try:
            result = await self.check(aor)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a check that broke: count it as nothing learnt
            log.info("presence check of %s failed: %s", aor, exc)
            self.scheduler.cancel(aor, self.clock())
            self._wake.set()
            return
        wall = self.wall()
        changed = self.scheduler.report(
            aor,
            result.online,
            self.clock(),
            requests=result.requests,
            wall_time=wall if result.online else None,
        )
        if changed:
            info = self.scheduler.info(aor)
            self._notify(aor, result.online, info.last_seen if info is not None else None)
        self._wake.set()

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._checks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None


__all__ = [
    "CheckResult",
    "PresenceCheck",
    "PresenceInfo",
    "PresenceListener",
    "PresenceMonitor",
    "PresencePolicy",
    "PresenceScheduler",
]

"""Phones on a ring of storage peers: each an :class:`~app.sip.overlay.OverlaySip` on a
peer of a :class:`~tests.usages.sip_ring.SipRing` (real TLS links on 127.0.0.1, AppAttach
with ICE and DTLS on this machine's interface address)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from app.sip.aio import Call
from app.sip.events import CallEnded, UaEvent
from app.sip.overlay import OverlaySip
from app.sip.transaction import TimerConfig
from reload_core.config.document import OverlayConfiguration
from reload_core.usages.sip import SipUsage
from tests.usages.sip_ring import EcdsaCA, SipRing, aor

# RFC 3261's timers (T1 0.5 s) with a shorter Timer D and T4: nothing here waits on them
# except the teardown of transactions that are done already.
TIMERS = TimerConfig(t4=1.0, timer_d=2.0)
WAIT = 15.0

E = TypeVar("E")


class Phones:
    """A ring and the phones on it; :meth:`close` ends everything, also when a test fails."""

    def __init__(self, ca: EcdsaCA, config: OverlayConfiguration | None = None) -> None:
        self.ring = SipRing(ca, config=config)
        self.endpoints: list[OverlaySip] = []

    async def peers(self, *names: str) -> list[SipUsage]:
        """Peers of users ``names`` (``relay`` and the like: peers with no phone), the ring
        converged."""
        usages = [await self.ring.peer(n) for n in names]
        await self.ring.ring.converge(30.0)
        return usages

    async def phone(self, usage: SipUsage, *, register: bool = True, **options: Any) -> OverlaySip:
        options.setdefault("timers", TIMERS)
        endpoint = OverlaySip(usage, **options)
        self.endpoints.append(endpoint)
        await endpoint.start(register=register)
        return endpoint

    async def phones(self, *names: str, **options: Any) -> list[OverlaySip]:
        """A converged ring with one peer per name; those not named ``relay*`` get a phone,
        registered."""
        usages = await self.peers(*names)
        return [
            await self.phone(u, **options)
            for u, name in zip(usages, names, strict=True)
            if not name.startswith("relay")
        ]

    def fetches_of(self, *users: str, by: bytes | None = None) -> int:
        return self.ring.fetches_of(*users, by=by)

    async def close(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.close(unregister=False)
        await self.ring.close()


async def answered_call(
    caller: OverlaySip, callee: OverlaySip, target: str | None = None
) -> tuple[Call, Call]:
    """``caller`` calls ``callee`` (its AoR unless ``target``); the callee answers; both
    calls once confirmed."""
    call = await caller.call(target or aor(callee.user.split("@")[0]))
    incoming = await callee.next_incoming_call(WAIT)
    await incoming.answer()
    await call.wait_answered(WAIT)
    await incoming.wait_answered(WAIT)
    return call, incoming


async def ended(call: Call) -> CallEnded:
    return await asyncio.wait_for(call.wait_ended(), WAIT)


class EventLog:
    """Every event of a phone from now on; :meth:`wait` finds one seen already or waits."""

    def __init__(self, endpoint: OverlaySip) -> None:
        self.events: list[UaEvent] = []
        self._changed = asyncio.Event()
        endpoint.add_listener(self._add)

    def _add(self, event: UaEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait(
        self, kind: type[E], predicate: Callable[[E], bool] = lambda e: True, count: int = 1
    ) -> list[E]:
        """The first ``count`` events of ``kind`` satisfying ``predicate``."""
        async with asyncio.timeout(WAIT):
            while True:
                found = [e for e in self.of(kind) if predicate(e)]
                if len(found) >= count:
                    return found[:count]
                self._changed.clear()
                await self._changed.wait()

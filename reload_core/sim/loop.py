"""An asyncio event loop that runs on a :class:`~reload_core.links.base.VirtualClock`.

The node itself needs no event loop (link callbacks and Clock timers drive it), but the
layers above it do: storage replication runs as asyncio tasks, :class:`StorageClient`
and :meth:`Node.request` are coroutines. :class:`VirtualTimeLoop` lets both kinds of code
share one virtual time line:

- ``loop.time()`` is the clock's time, so ``asyncio.sleep``, ``wait_for`` and
  ``call_later`` are virtual too;
- where a real loop would block in its selector until the next timer, this one moves
  the clock instead: to the loop's next timer or to the clock's next callback, whichever
  comes first, running the clock's callbacks on the way. Nothing ever waits on a
  socket, so a simulated hour takes what the callbacks cost and no more.

A loop with nothing left to run and nothing scheduled has deadlocked: it raises
:class:`SimulationStalled` instead of sleeping for ever. Exceptions escaping a clock
callback are logged and counted (``errors``), as asyncio does for its own callbacks, so
one bug does not end a long run; a simulation reports the count.
"""

from __future__ import annotations

import asyncio
import logging
import math
import selectors
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol, TypeVar

from reload_core.links.base import VirtualClock

log = logging.getLogger(__name__)

T = TypeVar("T")


class SimulationStalled(RuntimeError):
    """The loop would sleep for ever: no ready callback, no timer, no clock callback."""


class TimeBarrier(Protocol):
    """How the workers of a parallel simulation keep in step (see
    :mod:`reload_core.sim.parallel`): only events before the ``horizon`` may run."""

    @property
    def horizon(self) -> float: ...

    def passed(self, now: float) -> None:
        """Everything before ``now`` has run (the others may be told so)."""
        ...

    def wait(self, local_next: float) -> None:
        """This worker's next event, at ``local_next`` (inf: none), is beyond the horizon:
        wait until the others let the horizon move, or send events of their own."""
        ...


class _VirtualSelector(selectors.SelectSelector):
    """A selector that never polls: its ``select`` moves the virtual clock instead."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.errors = 0
        self.barrier: TimeBarrier | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return []  # ready callbacks are waiting: time stands still
        clock = self.clock
        target = math.inf if timeout is None else clock.time() + timeout
        due = clock.next_deadline()
        upto = target if due is None or due > target else due
        barrier = self.barrier
        if barrier is not None:
            if upto >= barrier.horizon:
                barrier.wait(upto)
                return []  # asyncio looks at its timers again, then calls back
        elif due is None and timeout is None:
            raise SimulationStalled("nothing is scheduled: the simulation would wait for ever")
        try:
            clock.run_until(upto)
        except Exception:
            self.errors += 1
            log.exception("a clock callback failed")
        if barrier is not None:
            barrier.passed(clock.time())
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose time is ``clock``'s; see the module docstring."""

    def __init__(self, clock: VirtualClock) -> None:
        self._virtual_selector = _VirtualSelector(clock)
        super().__init__(self._virtual_selector)
        self.clock = clock
        self._loop_errors = 0
        self.set_exception_handler(self._on_exception)

    def time(self) -> float:
        return self.clock.time()

    @property
    def barrier(self) -> TimeBarrier | None:
        """With a barrier, the loop keeps in step with other processes (a parallel simulation)."""
        return self._virtual_selector.barrier

    @barrier.setter
    def barrier(self, barrier: TimeBarrier | None) -> None:
        self._virtual_selector.barrier = barrier

    @property
    def errors(self) -> int:
        """Exceptions that escaped a clock callback, an asyncio callback or a task."""
        return self._virtual_selector.errors + self._loop_errors

    def _on_exception(self, loop: asyncio.AbstractEventLoop, context: Mapping[str, Any]) -> None:
        self._loop_errors += 1
        loop.default_exception_handler(dict(context))


def run_virtual(clock: VirtualClock, main: Coroutine[Any, Any, T]) -> T:
    """Run coroutine ``main`` to completion on a :class:`VirtualTimeLoop` over ``clock``;
    returns its result. The loop is closed afterwards."""
    loop = VirtualTimeLoop(clock)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            cancel_remaining(loop)
        finally:
            loop.close()


def cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending on ``loop`` and let them finish."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


__all__ = ["SimulationStalled", "TimeBarrier", "VirtualTimeLoop", "cancel_remaining", "run_virtual"]

"""The clocks links run on: the virtual clock of tests and the simulator, and asyncio's."""

from __future__ import annotations

import asyncio

import pytest

from reload_core.links.base import AsyncioClock, VirtualClock


def test_virtual_clock_runs_callbacks_in_deadline_order_with_their_own_time() -> None:
    clock = VirtualClock(start=10.0)
    seen: list[tuple[str, float]] = []
    clock.call_later(2.0, lambda: seen.append(("b", clock.time())))
    clock.call_later(1.0, lambda: seen.append(("a", clock.time())))
    clock.call_later(2.0, lambda: seen.append(("c", clock.time())))  # tie: scheduling order
    clock.call_later(5.0, lambda: seen.append(("late", clock.time())))
    assert clock.next_deadline() == 11.0
    assert clock.advance(3.0) == 3
    assert seen == [("a", 11.0), ("b", 12.0), ("c", 12.0)]
    assert clock.time() == 13.0
    assert clock.pending == 1


def test_virtual_clock_cancel_and_nested_scheduling() -> None:
    clock = VirtualClock()
    seen: list[float] = []
    handle = clock.call_later(1.0, lambda: seen.append(-1.0))
    handle.cancel()

    def chain() -> None:
        seen.append(clock.time())
        if len(seen) < 4:
            clock.call_later(0.5, chain)

    clock.call_later(0.5, chain)
    clock.run_until(1.6)
    assert seen == [0.5, 1.0, 1.5]  # the 2.0 one is not due yet
    assert clock.next_deadline() == 2.0
    clock.advance(10)
    assert seen == [0.5, 1.0, 1.5, 2.0]
    assert clock.next_deadline() is None
    assert clock.time() == 11.6


def test_virtual_clock_does_not_go_backwards() -> None:
    clock = VirtualClock()
    with pytest.raises(ValueError):
        clock.advance(-1)
    fired: list[float] = []
    clock.call_later(-5, lambda: fired.append(clock.time()))  # past deadlines run now
    clock.advance(0)
    assert fired == [0.0]


async def test_asyncio_clock_wraps_the_running_loop() -> None:
    clock = AsyncioClock()
    loop = asyncio.get_running_loop()
    assert abs(clock.time() - loop.time()) < 0.5
    fired = asyncio.Event()
    start = clock.time()
    clock.call_later(0.02, fired.set)
    cancelled = clock.call_later(0.01, lambda: pytest.fail("cancelled timer fired"))
    cancelled.cancel()
    await asyncio.wait_for(fired.wait(), 2.0)
    assert clock.time() - start >= 0.015

"""The virtual-time event loop: asyncio code and VirtualClock callbacks on one simulated
time line, with no real waiting, a stall detected instead of a hang, and failures counted."""

from __future__ import annotations

import asyncio
import time

import pytest

from reload_core.links.base import VirtualClock
from reload_core.sim.loop import SimulationStalled, VirtualTimeLoop, run_virtual


def test_an_hour_of_sleeping_takes_no_real_time() -> None:
    clock = VirtualClock()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600.0)
        return loop.time() - start

    started = time.perf_counter()
    assert run_virtual(clock, main()) == pytest.approx(3600.0)
    assert clock.time() == pytest.approx(3600.0)
    assert time.perf_counter() - started < 1.0


def test_clock_callbacks_and_asyncio_timers_run_in_time_order() -> None:
    clock = VirtualClock()
    seen: list[tuple[str, float]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        clock.call_later(1.0, lambda: seen.append(("clock", clock.time())))
        loop.call_later(2.0, lambda: seen.append(("loop", loop.time())))
        clock.call_later(3.0, lambda: seen.append(("clock", clock.time())))
        await asyncio.sleep(2.5)
        seen.append(("task", loop.time()))
        await asyncio.sleep(1.0)

    run_virtual(clock, main())
    assert seen == [("clock", 1.0), ("loop", 2.0), ("task", 2.5), ("clock", 3.0)]


def test_a_future_from_a_clock_callback_wakes_the_task() -> None:
    clock = VirtualClock()

    async def main() -> float:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        clock.call_later(42.0, lambda: future.set_result(clock.time()))
        return await asyncio.wait_for(future, 100.0)

    assert run_virtual(clock, main()) == 42.0


def test_a_deadlock_raises_instead_of_hanging() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nobody will resolve it

    with pytest.raises(SimulationStalled):
        run_virtual(VirtualClock(), main())


def test_a_failing_clock_callback_is_counted_and_the_run_goes_on() -> None:
    clock = VirtualClock()
    loop = VirtualTimeLoop(clock)
    ran: list[float] = []

    def boom() -> None:
        raise RuntimeError("a bug")

    async def main() -> None:
        clock.call_later(1.0, boom)
        clock.call_later(2.0, lambda: ran.append(clock.time()))
        await asyncio.sleep(5.0)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert loop.errors == 1
    assert ran == [2.0]

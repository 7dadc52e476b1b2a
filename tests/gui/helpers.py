"""Waiting for the GUI on asyncio (the tests' loop is Qt's, through qasync): on signals,
never by sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import SignalInstance

WAIT = 30.0


async def signal_once(*signals: SignalInstance, timeout: float = WAIT) -> tuple[Any, ...]:
    """The arguments of the next emission of any of ``signals``."""
    future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    def got(*args: Any) -> None:
        if not future.done():
            future.set_result(args)

    for signal in signals:
        signal.connect(got)
    try:
        return await asyncio.wait_for(future, timeout)
    finally:
        for signal in signals:
            signal.disconnect(got)


async def until(
    condition: Callable[[], Any], *signals: SignalInstance, timeout: float = WAIT, what: str = ""
) -> Any:
    """Wait until ``condition()`` is truthy, looking again whenever one of ``signals``
    fires. Returns the condition's value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out waiting for {what or condition}")
        try:
            await signal_once(*signals, timeout=left)
        except TimeoutError:
            continue

"""Async work started from Qt slots, never blocking the loop (DESIGN.md: "qasync runs
asyncio on Qt's loop. Never block it").

:func:`spawn` schedules a coroutine on the running loop (qasync's, in the app), keeps a
reference until it is done (asyncio holds only weak ones) and logs what it raised, so a
failing slot shows in the log instead of vanishing. Slots that must report a failure to
the user catch it themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger("p2psip.gui")

T = TypeVar("T")
_running: set[asyncio.Future[Any]] = set()


def _done(task: asyncio.Future[Any]) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task failed", exc_info=exc)


def spawn(coroutine: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Run ``coroutine`` on the loop; its task (already scheduled)."""
    task = asyncio.ensure_future(coroutine)
    _running.add(task)
    task.add_done_callback(_done)
    return task


def pending() -> int:
    """Tasks started by :func:`spawn` and not finished (for tests)."""
    return len(_running)


async def cancel_all() -> None:
    """Cancel what :func:`spawn` started and wait for it (on quit)."""
    tasks = list(_running)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["cancel_all", "pending", "spawn"]

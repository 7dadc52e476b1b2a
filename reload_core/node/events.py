"""What a node tells its observers (tests, the storage layer, the GUI's view models).

Listeners are plain callables, called synchronously as things happen; they must not
raise (a failing listener is logged and skipped). :func:`wait_until` waits, on events
rather than by polling, until a condition over some nodes holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NeighborsChanged:
    """The Neighbor Table or Finger Table changed (§10.1); the new contents."""

    predecessors: tuple[bytes, ...]
    successors: tuple[bytes, ...]
    fingers: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """The first link to ``node_id`` opened (``up``) or its last link closed."""

    node_id: bytes
    up: bool


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The node's overlay state changed (``"joined"``, ``"client"``, ``"left"``, ``"closed"``...)."""

    state: str


@dataclass(frozen=True, slots=True)
class ResponsibilityChanged:
    """This peer is responsible for (start, end] and keeps replicas down to replica_start
    (§10.1, §10.4); ``start == end`` is the whole ring."""

    start: bytes
    end: bytes
    replica_start: bytes


@dataclass(frozen=True, slots=True)
class ConfigurationChanged:
    """A ConfigUpdate (§6.5.4) gave this node a new configuration."""

    sequence: int


@dataclass(frozen=True, slots=True)
class ConfigurationOutdated:
    """A node answered one of our requests with Error_Config_Too_Old (§6.3.2.1): the
    overlay runs a newer configuration than ours. It pushes it in a ConfigUpdate, but a
    document larger than max-message-size cannot travel that way: fetch it (§11.2)."""

    responder: bytes


NodeEvent = (
    NeighborsChanged
    | ConnectionChanged
    | StateChanged
    | ResponsibilityChanged
    | ConfigurationChanged
    | ConfigurationOutdated
)
Listener = Callable[[NodeEvent], None]


class EventHub:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add(self, listener: Listener) -> Callable[[], None]:
        """Register ``listener``; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def emit(self, event: NodeEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("node event listener failed on %r", event)


class Observable(Protocol):
    def add_listener(self, listener: Listener) -> Callable[[], None]: ...


async def wait_until(nodes: Iterable[Observable], predicate: Callable[[], bool], timeout: float) -> None:
    """Return once ``predicate()`` holds, re-checking it after each event of ``nodes``;
    raises TimeoutError after ``timeout`` seconds of the running loop's clock."""
    changed = asyncio.Event()
    removers = [n.add_listener(lambda _event: changed.set()) for n in nodes]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not predicate():
            changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("condition not reached in time")
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                if predicate():
                    return
                raise
    finally:
        for remove in removers:
            remove()


__all__ = [
    "ConfigurationChanged",
    "ConfigurationOutdated",
    "ConnectionChanged",
    "EventHub",
    "Listener",
    "NeighborsChanged",
    "NodeEvent",
    "Observable",
    "ResponsibilityChanged",
    "StateChanged",
    "wait_until",
]

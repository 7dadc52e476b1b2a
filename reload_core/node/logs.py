"""Logging for one node: every line carries the node's Node-ID, and bad input from the
network is logged once per (peer, kind of problem) per time window, never as a flood."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any

log = logging.getLogger("reload_core.node")


class NodeLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each message with the first bytes of the node's Node-ID in hex."""

    def __init__(self, node_id: bytes, logger: logging.Logger = log) -> None:
        super().__init__(logger, {"node_id": node_id.hex()})
        self.prefix = f"[{node_id.hex()[:8]}] "

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return self.prefix + str(msg), kwargs


class LogLimiter:
    """Logs a message for a (peer, kind) at most once per ``window`` seconds of ``time()``,
    and says how many were held back when it logs again. Remembers at most ``max_keys``
    pairs (the oldest are forgotten first), so hostile peers cannot grow it."""

    def __init__(
        self,
        logger: logging.LoggerAdapter[logging.Logger],
        time: Callable[[], float],
        window: float = 60.0,
        max_keys: int = 4096,
    ) -> None:
        self._log = logger
        self._time = time
        self.window = window
        self.max_keys = max_keys
        self._seen: OrderedDict[tuple[bytes | None, str], tuple[float, int]] = OrderedDict()

    def log(self, level: int, peer: bytes | None, kind: str, msg: str, *args: object) -> bool:
        """Log unless this (peer, kind) was logged within the window; returns whether it was."""
        now = self._time()
        key = (peer, kind)
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.window:
            self._seen[key] = (entry[0], entry[1] + 1)
            return False
        held = entry[1] if entry is not None else 0
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        who = peer.hex()[:8] if peer else "?"
        suffix = f" ({held} more since last logged)" if held else ""
        self._log.log(level, "%s from %s: " + msg + suffix, kind, who, *args)
        return True

    def warning(self, peer: bytes | None, kind: str, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, peer, kind, msg, *args)

    def info(self, peer: bytes | None, kind: str, msg: str, *args: object) -> bool:
        return self.log(logging.INFO, peer, kind, msg, *args)


__all__ = ["LogLimiter", "NodeLogger", "log"]

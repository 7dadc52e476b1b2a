"""Load shedding: token buckets per source (RFC 6940 §6.5.1.2, §13.4, §13.5).

RFC 6940 leaves overload to the implementation ("If the peer is overloaded ... it MAY
generate an error", §6.5.1.2). The node keeps one bucket per link for every message it
receives, and one per originator for the requests it is asked to answer: a node that
floods us gets its excess shed, early and cheaply (before signatures are checked),
while everyone else is served as usual.

A :class:`RateLimiter` remembers at most ``max_keys`` sources, forgetting the least
recently seen first, so that many sources (forged ones included) cannot grow it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; each event takes one."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float) -> bool:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """Per-key token buckets; a ``rate`` of 0 or less lets everything through."""

    def __init__(self, rate: float, burst: float, max_keys: int = 4096) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()
        self.refused = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: Hashable, now: float) -> bool:
        """Whether one more event from ``key`` fits its budget at ``now``."""
        if self.rate <= 0:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self.burst, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        if bucket.take(now):
            return True
        self.refused += 1
        return False

    def forget(self, key: Hashable) -> None:
        self._buckets.pop(key, None)


__all__ = ["RateLimiter", "TokenBucket"]

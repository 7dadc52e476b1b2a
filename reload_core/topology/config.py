"""CHORD-RELOAD parameters (RFC 6940 §10, §11.1 ``chord-*`` elements).

The values that an overlay's configuration document carries (``chord-update-interval``,
``chord-ping-interval``, ``chord-reactive``) sit next to the constants the RFC fixes in
prose and the few knobs that are local policy; each says where it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

REPLICA_COUNT = 2
"""Replicas beyond the responsible peer: its successor and that peer's successor (§10.4)."""

MIN_NEIGHBORS = 3
"""A peer MUST attempt to keep at least three predecessors and three successors (§10.7)."""

MIN_FINGERS = 16
"""Grow the Finger Table to 16 entries when it has fewer (§10.7.4.3)."""

MAX_FINGERS = 128
"""An implementation SHOULD be able to grow the Finger Table to 128 entries (§10.7.4.3)."""

SUCCESSOR_HOLDDOWN = 30.0
"""Successor replacement hold-down time, seconds, before creating new replicas (§10.7.1)."""

DEFAULT_UPDATE_INTERVAL = 600.0
"""``chord-update-interval`` default: "about every ten minutes" (§10.7.4.1)."""

DEFAULT_PING_INTERVAL = 3600.0
"""``chord-ping-interval`` default: one finger search per hour (§10.7.4.2)."""


@dataclass(frozen=True, slots=True)
class ChordConfig:
    """Tunables of one CHORD-RELOAD peer; all times in seconds.

    ``neighbor_count`` is the size of each of the successor and predecessor lists: at least
    :data:`MIN_NEIGHBORS` (§10.7; O(log N) is RECOMMENDED there). ``partition_check_interval``,
    ``join_timeout``, ``failed_hold`` and ``eviction_grace`` are local policy: the RFC asks
    for a periodic partition check (§10.7.4.4) without a period, and leaves timers of the
    join, how long a failed peer's Node-ID is ignored in others' stale Updates and when an
    unused connection is closed to the implementation. ``None`` means "the update interval".
    """

    neighbor_count: int = MIN_NEIGHBORS
    update_interval: float = DEFAULT_UPDATE_INTERVAL
    ping_interval: float = DEFAULT_PING_INTERVAL
    reactive: bool = True
    min_fingers: int = MIN_FINGERS
    max_fingers: int = MAX_FINGERS
    successor_holddown: float = SUCCESSOR_HOLDDOWN
    partition_check_interval: float = DEFAULT_PING_INTERVAL
    join_timeout: float = 120.0
    failed_hold: float | None = None
    eviction_grace: float | None = None

    def __post_init__(self) -> None:
        if self.neighbor_count < MIN_NEIGHBORS:
            raise ValueError(f"neighbor_count must be at least {MIN_NEIGHBORS} (RFC 6940 §10.7)")
        if not 1 <= self.min_fingers <= self.max_fingers <= MAX_FINGERS:
            raise ValueError("need 1 <= min_fingers <= max_fingers <= 128 (RFC 6940 §10.7.4.3)")
        for name in ("update_interval", "ping_interval", "partition_check_interval", "join_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @property
    def failed_hold_time(self) -> float:
        return self.update_interval if self.failed_hold is None else self.failed_hold

    @property
    def eviction_grace_time(self) -> float:
        return self.update_interval if self.eviction_grace is None else self.eviction_grace

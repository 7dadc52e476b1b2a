"""What a simulation runs (:class:`SimConfig`) and what it measured (:class:`SimReport`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from reload_core.sim.identities import SimKeyKind


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One simulated overlay and its workload; times in simulated seconds.

    Overlay: ``nodes`` peers, the first ``bootstrap_peers`` of them always-on bootstrap
    peers (they never fail) that every other peer joins through (§10.5, §11.4), arriving
    as a Poisson process of ``join_rate`` per second (default: N/600 per second, at
    least one), held below a tenth of the overlay's size per second while it is young. Links: in memory, ``latency`` seconds one way; with ``loss`` > 0 they are
    DTLS-like datagram links with simple reliability (§6.6.3) losing that share of
    frames, else TLS/TCP-like streams (§6.6.5). ``keepalive`` is the links' keepalive
    interval (None: off; failures of killed processes are seen at once through their
    closed connections, silent ones only through timeouts).

    CHORD-RELOAD: periodic recovery unless ``reactive`` (the RFC's ``chord-reactive``),
    ``update_interval`` and ``ping_interval`` are ``chord-update-interval`` and
    ``chord-ping-interval`` (§10.7.4), ``eviction_grace`` how long a connection this peer
    opened outlives its place in the Routing Table.

    Workload, once every peer has joined and ``settle`` seconds have passed: ``values``
    values stored (each by a random peer, NODE-MULTIPLE), then for ``duration`` seconds
    ``lookups`` Pings to random Resource-IDs from random peers (a Poisson process), and at
    the end every value fetched from a random peer. With ``session_minutes`` (the median
    session time M) every non-bootstrap peer fails after a session time drawn from the
    exponential distribution with median M, from the start of the workload (or from its
    arrival), and a new peer joins in its place; ``silent_failures`` is the share of
    failures that close no connection (a host that vanished rather than a killed process).
    With ``restarts`` a failed peer comes back after a pause instead of a new one, with its
    own Node-ID and empty storage, as a restarted ``p2psip peer`` process does.

    ``workers`` > 1 spreads the nodes over that many processes, one core each
    (:mod:`reload_core.sim.parallel`); the link latency is their lookahead, so it must be
    positive. A seed gives the same figures for the same number of workers.
    """

    nodes: int = 1000
    seed: int = 1
    session_minutes: float | None = None
    latency: float = 0.02
    loss: float = 0.0
    bootstrap_peers: int = 3
    join_rate: float | None = None
    settle: float = 120.0
    duration: float = 600.0
    lookups: int = 2000
    values: int = 200
    key_kind: SimKeyKind = "ecdsa"
    reactive: bool = False
    update_interval: float = 600.0
    ping_interval: float = 60.0
    eviction_grace: float = 60.0
    overlay_reliability_timer: float = 3.0
    keepalive: float | None = None
    silent_failures: float = 0.0
    max_join_attempts: int = 5
    restarts: bool = False
    workers: int = 1

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise ValueError("a simulation needs at least two nodes")
        if not 1 <= self.bootstrap_peers <= self.nodes:
            raise ValueError("bootstrap_peers must be 1..nodes")
        if self.session_minutes is not None and self.session_minutes <= 0:
            raise ValueError("session_minutes must be positive")
        if not 0.0 <= self.loss < 1.0 or not 0.0 <= self.silent_failures <= 1.0:
            raise ValueError("loss must be in [0, 1) and silent_failures in [0, 1]")
        if self.latency < 0 or self.settle < 0 or self.duration <= 0:
            raise ValueError("latency and settle must not be negative, duration must be positive")
        if self.lookups < 0 or self.values < 0:
            raise ValueError("lookups and values must not be negative")
        if self.workers < 1 or self.workers > self.nodes:
            raise ValueError("workers must be 1..nodes")
        if self.workers > 1 and self.latency <= 0:
            raise ValueError("more than one worker needs a positive link latency (their lookahead)")

    @property
    def arrival_rate(self) -> float:
        return self.join_rate if self.join_rate is not None else max(1.0, self.nodes / 600.0)

    @property
    def hops_reference(self) -> float:
        """½·log2(N): Chord's mean lookup path length (§10: O(log N))."""
        return 0.5 * math.log2(self.nodes)


@dataclass(frozen=True, slots=True)
class SimReport:
    """The figures of one run. Lookup figures are over the Pings of the workload (less
    those whose sending peer failed before the answer); a lookup succeeds when the peer
    responsible for its Resource-ID (in the ground truth of the live, joined peers, when
    the Ping was sent or when it was answered) answers it. Hops are links crossed (the
    answer's Via List + 1); latency is simulated time. ``data_lost`` counts stored values
    that no fetch found at the end. ``messages_per_node_per_s`` counts RELOAD messages
    put on links (each hop once; with ``keepalive``, the keepalive Pings and their answers
    too) during the workload, per live peer;
    ``peak_rss_mb`` is the process's peak resident memory; ``errors`` counts exceptions
    that escaped a callback and errors that the node code logged."""

    nodes: int
    seed: int
    session_minutes: float | None
    joined: int
    join_failures: int
    ring_ok: bool
    fingers_mean: float
    lookups: int
    lookup_success: float
    hops_mean: float
    hops_p99: float
    hops_reference: float
    lookup_ms_p50: float
    lookup_ms_p99: float
    values_stored: int
    data_lost: int
    failures: int
    replacements: int
    messages_per_node_per_s: float
    simulated_s: float
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


__all__ = ["SimConfig", "SimReport", "percentile"]

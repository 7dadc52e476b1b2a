"""``p2psip bench``: benchmarks of the running system, one sub-command each.

``p2psip bench overlay --peers N --lookups M [--json]`` (RFC 6940 §6.1, §10): a fresh
overlay (its own CA, N peer profiles, a signed configuration whose bootstrap peer's port
was bound first), N peers on 127.0.0.1 over real TLS/TCP links in a few worker processes
(:mod:`app.bench.overlay_harness`), joined through the bootstrap peer; then, on events:

1. the ring: every successor and predecessor pointer checked against the sorted Node-IDs
   (``ring_ok``);
2. the Finger Tables: every range that holds a peer has a finger (§10.7.4.2; searched
   once per ``chord-ping-interval``, which the bench overlay sets to ``--finger-interval``);
3. M Pings (§6.5.3) from random peers to random Resource-IDs, routed by the overlay: a
   lookup fails when it gets an error or is answered by a peer other than the one
   responsible for the Resource-ID; hops are the links the request crossed (the Via List
   of the answer + 1).

Printed, one ``name: value`` per line or one JSON object with ``--json``:
``peers_joined``, ``ring_ok``, ``lookups``, ``failed``, ``hops_mean``, ``hops_p99``,
``latency_ms_p50``, ``latency_ms_p99``, ``join_s`` (first join to a correct ring),
``rss_mb_per_peer`` (the workers' resident memory over the peers), and the settings.

Further benchmarks register themselves in :data:`BENCH_MODULES`: each module has a
``register_bench(subparsers)`` adding its sub-command under ``bench``, and may use
:func:`report` for its output.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from app.bench.overlay_harness import OverlayHarness, provision_overlay, run_in_workdir
from app.cli import CliError
from app.cli.figures import report

BENCH_MODULES: list[str] = [
    "app.bench.bench_storage",
    "app.bench.bench_attach",
    "app.bench.bench_sip",
    "app.bench.bench_gui",
    "app.bench.bench_call",
    "app.bench.bench_phone",
]
"""Modules adding ``bench`` sub-commands (``register_bench(subparsers)``), besides ``overlay``."""

SETTLE_TIMEOUT = 120.0
FINGER_TIMEOUT = 60.0
"""Finger searches land on random IDs of a range (§10.7.4.2), so a range whose only peer
sits near its start can take long to fill: the wait for them is bounded tighter."""
DEFAULT_WORKERS = 2
"""Measured with 100 peers on 2 cores that other jobs kept busy (load 1.4-2.7), in one
sitting: 1 worker: join 37 s, lookups p50 2.6 / p99 7.2 ms; 2 workers: 34 s, 8.0 / 22.9
ms; 4 workers: 41 s, 23.9 / 64.7 ms. Every hop between processes waits for the scheduler,
so more processes mean slower lookups on a busy machine; 2 keeps the peers in several
processes (hops cross them, as between machines) within the 20 ms p50 target."""


def _progress(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


async def bench_overlay(
    peers: int,
    lookups: int,
    *,
    workers: int = DEFAULT_WORKERS,
    join_concurrency: int = 4,
    finger_interval: int = 1,
    key_kind: str = "ecdsa",
    seed: int | None = None,
    settle_timeout: float = SETTLE_TIMEOUT,
    quiet: bool = False,
    workdir: Path,
) -> dict[str, Any]:
    """Run the overlay benchmark in ``workdir``; the results as :func:`report` prints them."""
    rng = random.Random(seed)
    started = time.monotonic()
    overlay = provision_overlay(
        workdir,
        peers,
        key_kind="rsa" if key_kind == "rsa" else "ecdsa",
        chord_ping_interval=finger_interval,
    )
    _progress(quiet, f"provisioned {peers} peer profiles in {time.monotonic() - started:.1f} s")
    results: dict[str, Any] = {}
    # chord-ping-interval also paces the partition checks (§10.7.4.4), each of which
    # dials a bootstrap node afresh; once a minute is plenty on a ring made here.
    chord = {"partition_check_interval": max(60.0, float(finger_interval))}
    async with OverlayHarness(overlay, workers=workers, chord=chord) as harness:
        await harness.start_workers()
        baseline, _ = await harness.rss_bytes()
        join_started = time.monotonic()
        joined = await harness.start_peers(range(peers), concurrency=join_concurrency, keep_going=True)
        _progress(quiet, f"{len(joined)} peers joined in {time.monotonic() - join_started:.1f} s")
        ring_ok = True
        try:
            await harness.wait_ring(settle_timeout)
        except TimeoutError as exc:
            ring_ok = False
            _progress(quiet, f"the ring did not settle: {exc}")
        join_s = time.monotonic() - join_started
        fingers_ok = ring_ok
        if ring_ok:
            try:
                fingers_s = await harness.wait_fingers(min(settle_timeout, FINGER_TIMEOUT))
                _progress(quiet, f"finger tables complete after {fingers_s:.1f} s more")
            except TimeoutError as exc:
                fingers_ok = False
                _progress(quiet, f"finger tables not complete: {exc}")
        stats = harness.lookup_stats(await harness.lookups(lookups, rng=rng)) if lookups else None
        for failure in stats.failures[:10] if stats else ():
            _progress(quiet, f"failed lookup {failure}")
        rss, hosted = await harness.rss_bytes()
        results = {
            "peers": peers,
            "peers_joined": len(joined),
            "ring_ok": ring_ok,
            "fingers_ok": fingers_ok,
            "lookups": stats.lookups if stats else 0,
            "failed": stats.failed if stats else 0,
            "hops_mean": stats.hops_mean if stats else math.nan,
            "hops_p99": stats.hops_p99 if stats else math.nan,
            "hops_target": 0.5 * math.log2(max(peers, 2)) + 1,
            "latency_ms_p50": stats.latency_ms_p50 if stats else math.nan,
            "latency_ms_p99": stats.latency_ms_p99 if stats else math.nan,
            "join_s": join_s,
            "rss_mb_per_peer": rss / max(hosted, 1) / 2**20,
            "rss_mb_per_peer_above_baseline": (rss - baseline) / max(hosted, 1) / 2**20,
            "workers": workers,
            "key_type": key_kind,
            # Others' load on the machine moves the latencies: say what it was.
            "load_1m": os.getloadavg()[0],
        }
    return results


def _cmd_overlay(args: argparse.Namespace) -> int:
    if args.peers < 1:
        raise CliError("--peers must be at least 1")
    if args.lookups < 0:
        raise CliError("--lookups cannot be negative")
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    results = run_in_workdir(
        "p2psip-bench-",
        lambda workdir: bench_overlay(
            args.peers,
            args.lookups,
            workers=args.workers,
            join_concurrency=args.join_concurrency,
            finger_interval=args.finger_interval,
            key_kind=args.key_type,
            seed=args.seed,
            quiet=args.json,
            workdir=workdir,
        ),
    )
    report(results, as_json=args.json)
    ok = results["ring_ok"] and results["failed"] == 0 and results["peers_joined"] == args.peers
    return 0 if ok else 1


def _register_overlay(sub: Any) -> None:
    parser = sub.add_parser("overlay", help="N peers over TLS on loopback: joins, ring, routed lookups")
    parser.add_argument("--peers", type=int, default=100, help="number of peers (default 100)")
    parser.add_argument("--lookups", type=int, default=1000, help="routed requests (default 1000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"worker processes hosting the peers (default {DEFAULT_WORKERS})",
    )
    parser.add_argument("--join-concurrency", type=int, default=4, help="joins under way at once (default 4)")
    parser.add_argument(
        "--finger-interval",
        type=int,
        default=1,
        help="chord-ping-interval of the bench overlay, seconds between finger searches (default 1)",
    )
    parser.add_argument("--key-type", choices=["ecdsa", "rsa"], default="ecdsa", help="peer key type")
    parser.add_argument("--seed", type=int, help="random seed of the lookups")
    parser.set_defaults(func=_cmd_overlay)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks (overlay, ...)")
    sub = parser.add_subparsers(dest="bench_command", required=True, parser_class=type(parser))
    _register_overlay(sub)
    for name in BENCH_MODULES:
        importlib.import_module(name).register_bench(sub)


__all__ = ["BENCH_MODULES", "bench_overlay", "register", "report"]

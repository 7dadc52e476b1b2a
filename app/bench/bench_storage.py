"""``p2psip bench storage``: distributed storage under peer failures (RFC 6940 §7, §10.4).

``p2psip bench storage --peers N --records R --kill K [--json]``:

1. a fresh overlay (its own CA, N peer profiles, a signed configuration with one Kind of
   its own for the records: single value, NODE-MULTIPLE with max-node-multiple 255), N
   peers on 127.0.0.1 over real TLS/TCP links in worker processes
   (:mod:`app.bench.overlay_harness`), each a storage peer;
2. R values of 64 random bytes stored, one at a time, each by a random peer at one of its
   NODE-MULTIPLE resources H(Node-ID || i) (§7.3.4), signed (§7.1) and routed to the
   responsible peer (§6.1), which replicates them to its two successors (§10.4);
3. K peers killed abruptly (links reset, no Leave), one after another, each once the ring
   has re-stabilised and every value is back on its full replica set;
4. every value fetched from a random surviving peer, its signature verified (§7.4.2.2).

Printed, one ``name: value`` per line or one JSON object with ``--json``: ``stored``,
``fetched_ok``, ``lost``, ``store_ms_p50``, ``store_ms_p99``, ``fetch_ms_p50``,
``fetch_ms_p99``, and how long the replicas took to settle after each kill.

The successor replacement hold-down (§10.7.1: 30 s before new replicas) is set to
``--holddown`` seconds (default 1) on every peer so that the kills do not wait minutes.

Functions named ``worker_*`` run inside the harness's worker processes, on one peer each
(:meth:`OverlayHarness.call_peer`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import secrets
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from app.bench.overlay_harness import (
    OverlayHarness,
    percentile,
    provision_overlay,
    responsible_peer,
    run_in_workdir,
)
from app.cli import CliError
from reload_core.config.document import AccessControl, KindBlock, KindDescription, default_kinds
from reload_core.ids import resource_id
from reload_core.node.node import Node
from reload_core.storage import Storage, StorageError
from reload_core.wire.codes import DataModel
from reload_core.wire.storage import DataValue, StoredDataSpecifier

BENCH_KIND = 0xF0000B01
"""A private-use Kind-ID (§14.6) for the records."""

MAX_NODE_MULTIPLE = 255
RECORD_SIZE = 64
REPLICAS = 3
SETTLE_TIMEOUT = 180.0
_ME = "app.bench.bench_storage"


def bench_kind() -> KindBlock:
    return KindBlock(
        KindDescription(
            id=BENCH_KIND,
            data_model=DataModel.SINGLE,
            access_control=AccessControl.NODE_MULTIPLE,
            max_count=1,
            max_size=1024,
            max_node_multiple=MAX_NODE_MULTIPLE,
        )
    )


# ================================================================ in the worker processes


def _storage(node: Node) -> Storage:
    storage = Storage.of(node)
    if storage is None or storage.store is None:
        raise RuntimeError("this peer has no storage")
    return storage


def worker_tune(node: Node, successor_holddown: float) -> None:
    """Local policy for the bench: a short successor hold-down (§10.7.1)."""
    topology = node.topology
    topology.config = dataclasses.replace(topology.config, successor_holddown=successor_holddown)


async def worker_store(node: Node, items: list[list[Any]], lifetime: int) -> list[list[Any]]:
    """Store each ``[i, value hex]`` at H(Node-ID || i); ``[resource hex, ms, error]`` each."""
    client = _storage(node).client
    loop = asyncio.get_running_loop()
    out: list[list[Any]] = []
    for i, value_hex in items:
        resource = resource_id(node.node_id + bytes([i]))
        started = loop.time()
        error = ""
        try:
            await client.store(
                resource, BENCH_KIND, [DataValue(True, bytes.fromhex(value_hex))], lifetime=lifetime
            )
        except StorageError as exc:
            error = str(exc)
        out.append([resource.hex(), (loop.time() - started) * 1000, error])
    return out


async def worker_fetch(node: Node, items: list[list[str]]) -> list[list[Any]]:
    """Fetch each ``[resource hex, expected value hex]``; ``[ok, ms, error]`` each."""
    client = _storage(node).client
    loop = asyncio.get_running_loop()
    out: list[list[Any]] = []
    for resource_hex, value_hex in items:
        started = loop.time()
        try:
            (got,) = await client.fetch(bytes.fromhex(resource_hex), StoredDataSpecifier.single(BENCH_KIND))
        except StorageError as exc:
            out.append([False, (loop.time() - started) * 1000, str(exc)])
            continue
        elapsed = (loop.time() - started) * 1000
        values = [v.value for v in got.existing]
        ok = values == [DataValue(True, bytes.fromhex(value_hex))]
        out.append([ok, elapsed, "" if ok else f"got {len(values)} values, {got.discarded} discarded"])
    return out


async def worker_holdings(node: Node, resources: list[str], timeout: float) -> list[str]:
    """Which of ``resources`` this peer holds, once its replication work is done."""
    storage = _storage(node)
    assert storage.store is not None and storage.replicator is not None
    try:
        await storage.replicator.wait_idle(timeout)
    except TimeoutError:
        pass
    now = node.clock.time()
    held = []
    for rid_hex in resources:
        (kv,) = storage.store.fetch(bytes.fromhex(rid_hex), [StoredDataSpecifier.single(BENCH_KIND)], now)
        if any(v.alive(now) and v.data.signature.signature_value for v in kv.values):
            held.append(rid_hex)
    return held


# ================================================================ the coordinator


def replica_set(ring: list[bytes], rid: bytes) -> list[bytes]:
    ordered = sorted(ring)
    i = ordered.index(responsible_peer(ordered, rid))
    return [ordered[(i + j) % len(ordered)] for j in range(min(REPLICAS, len(ordered)))]


async def _misplaced(harness: OverlayHarness, records: dict[str, int], timeout: float) -> list[str]:
    """Records not on every peer of their replica set (as the true ring has it)."""
    members = sorted(harness.members)
    resources = list(records)
    held = await asyncio.gather(
        *(
            harness.call_peer(i, f"{_ME}:worker_holdings", resources=resources, timeout=timeout)
            for i in members
        )
    )
    holders: dict[str, set[bytes]] = defaultdict(set)
    for index, have in zip(members, held, strict=True):
        node_id = harness.view.peers[index].node_id
        for rid in have:
            holders[rid].add(node_id)
    ring = harness.ring()
    return [rid for rid in resources if not set(replica_set(ring, bytes.fromhex(rid))) <= holders[rid]]


async def _settle(harness: OverlayHarness, records: dict[str, int], timeout: float) -> float:
    """Until the ring is right and every record is on its replica set; seconds it took."""
    started = time.monotonic()
    await harness.wait_ring(timeout)
    while True:
        left = timeout - (time.monotonic() - started)
        missing = await _misplaced(harness, records, max(1.0, min(left, 10.0)))
        if not missing:
            return time.monotonic() - started
        if left <= 0:
            raise TimeoutError(f"{len(missing)} records not on their full replica set")
        # Replicas after a successor change wait out the hold-down (§10.7.1): look again.
        await asyncio.sleep(0.2)


def _progress(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


async def bench_storage(
    peers: int,
    records: int,
    kills: int,
    *,
    workers: int = 2,
    holddown: float = 1.0,
    seed: int | None = None,
    settle_timeout: float = SETTLE_TIMEOUT,
    quiet: bool = False,
    workdir: Path,
) -> dict[str, Any]:
    rng = random.Random(seed)
    started = time.monotonic()
    overlay = provision_overlay(
        workdir, peers, key_kind="ecdsa", required_kinds=(*default_kinds(), bench_kind())
    )
    _progress(quiet, f"provisioned {peers} peer profiles in {time.monotonic() - started:.1f} s")
    async with OverlayHarness(overlay, workers=workers) as harness:
        await harness.start_workers()
        await harness.start_peers(range(peers), concurrency=4)
        await harness.wait_ring(settle_timeout)
        _progress(quiet, f"{peers} peers joined, ring correct after {time.monotonic() - started:.1f} s")
        await asyncio.gather(
            *(
                harness.call_peer(i, f"{_ME}:worker_tune", successor_holddown=holddown)
                for i in harness.members
            )
        )

        # -- stores, from random peers
        by_writer: dict[int, list[list[Any]]] = defaultdict(list)
        expected: dict[str, str] = {}
        for _ in range(records):
            writer = rng.choice(sorted(harness.members))
            i = len(by_writer[writer]) + 1
            if i > MAX_NODE_MULTIPLE:
                raise CliError(f"more than {MAX_NODE_MULTIPLE} records for one peer; use more peers")
            by_writer[writer].append([i, secrets.token_bytes(RECORD_SIZE).hex()])
        store_ms: list[float] = []
        store_errors: list[str] = []
        owners: dict[str, int] = {}
        for writer in sorted(by_writer):
            items = by_writer[writer]
            results = await harness.call_peer(writer, f"{_ME}:worker_store", items=items, lifetime=3600)
            for (_, value_hex), (rid, ms, error) in zip(items, results, strict=True):
                if error:
                    store_errors.append(error)
                    continue
                store_ms.append(ms)
                expected[rid] = value_hex
                owners[rid] = writer
        _progress(quiet, f"stored {len(expected)} of {records} records ({len(store_errors)} refused)")
        settle_s = [await _settle(harness, owners, settle_timeout)]

        # -- kills, one after another, each once the replicas are back
        candidates = [i for i in sorted(harness.members) if overlay.peers[i].bootstrap is None]
        victims = rng.sample(candidates, min(kills, len(candidates)))
        for victim in victims:
            await harness.abort(victim)
            try:
                settle_s.append(await _settle(harness, owners, settle_timeout))
            except TimeoutError as exc:
                _progress(quiet, f"after killing peer {victim}: {exc}")
                settle_s.append(float("nan"))
            _progress(quiet, f"killed peer {victim}; replicas settled in {settle_s[-1]:.2f} s")

        # -- fetch everything from random survivors
        by_reader: dict[int, list[list[str]]] = defaultdict(list)
        for rid, value_hex in expected.items():
            by_reader[rng.choice(sorted(harness.members))].append([rid, value_hex])
        fetch_ms: list[float] = []
        fetched_ok = 0
        failures: list[str] = []
        for reader in sorted(by_reader):
            results = await harness.call_peer(reader, f"{_ME}:worker_fetch", items=by_reader[reader])
            for (rid, _), (ok, ms, error) in zip(by_reader[reader], results, strict=True):
                fetch_ms.append(ms)
                if ok:
                    fetched_ok += 1
                else:
                    failures.append(f"{rid[:8]}: {error}")
        for failure in failures[:10]:
            _progress(quiet, f"lost {failure}")
    return {
        "peers": peers,
        "records": records,
        "killed": len(victims),
        "stored": len(expected),
        "fetched_ok": fetched_ok,
        "lost": len(expected) - fetched_ok,
        "store_ms_p50": percentile(store_ms, 50),
        "store_ms_p99": percentile(store_ms, 99),
        "fetch_ms_p50": percentile(fetch_ms, 50),
        "fetch_ms_p99": percentile(fetch_ms, 99),
        "settle_s_max": max(settle_s) if settle_s else float("nan"),
        "holddown_s": holddown,
        "workers": workers,
    }


def _cmd_storage(args: argparse.Namespace) -> int:
    from app.cli.figures import report

    if args.peers < 1:
        raise CliError("--peers must be at least 1")
    if args.records < 0 or args.kill < 0:
        raise CliError("--records and --kill cannot be negative")
    if args.kill >= args.peers:
        raise CliError("--kill must leave at least one peer")
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    results = run_in_workdir(
        "p2psip-bench-storage-",
        lambda workdir: bench_storage(
            args.peers,
            args.records,
            args.kill,
            workers=args.workers,
            holddown=args.holddown,
            seed=args.seed,
            quiet=args.json,
            workdir=workdir,
        ),
    )
    report(results, as_json=args.json)
    return 0 if results["lost"] == 0 and results["stored"] == args.records else 1


def register_bench(sub: Any) -> None:
    parser = sub.add_parser(
        "storage", help="N storage peers over TLS: store R values, kill K peers, fetch all"
    )
    parser.add_argument("--peers", type=int, default=30, help="number of peers (default 30)")
    parser.add_argument("--records", type=int, default=300, help="values to store (default 300)")
    parser.add_argument("--kill", type=int, default=10, help="peers to kill one after another (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes hosting the peers (default 2)"
    )
    parser.add_argument(
        "--holddown", type=float, default=1.0, help="successor replacement hold-down, seconds (default 1)"
    )
    parser.add_argument("--seed", type=int, help="random seed")
    parser.set_defaults(func=_cmd_storage)


__all__ = ["BENCH_KIND", "bench_kind", "bench_storage", "register_bench"]

"""Benchmark of the phone's store (app/phone/store.py): what one write costs, and what it
would cost the event loop.

Each write is one committed transaction in WAL mode with ``synchronous=FULL`` (an fsync of
the WAL per commit), as the store always runs. Measured per operation (``--count`` of each,
on a store in ``--dir``, default a temporary folder on the disk the profile would be on):
a call started (the history insert), answered, ended; a message added and its state
updated; a contact read back. Then the longest the asyncio event loop went without running
(a 1 ms ticker's worst lateness) while the same writes were made through
``PhoneStore`` directly on the loop, and through ``AsyncPhoneStore``.

    .venv/bin/python bench/phone_store_bench.py [--count 300] [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.phone.store import (
    STORE_FILE,
    AsyncPhoneStore,
    CallDirection,
    Delivery,
    MessageDirection,
    PhoneStore,
)


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    n = len(ordered)
    return {
        "median_ms": statistics.median(ordered) * 1e3,
        "p90_ms": ordered[min(n - 1, int(n * 0.9))] * 1e3,
        "p99_ms": ordered[min(n - 1, int(n * 0.99))] * 1e3,
        "max_ms": ordered[-1] * 1e3,
    }


def per_operation(store: PhoneStore, count: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {
        k: []
        for k in (
            "start_call",
            "answer_call",
            "end_call",
            "add_message",
            "update_message_state",
            "get_contact",
        )
    }
    store.add_contact("sip:bench@example.org", "Bench")

    def timed(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        result = fn(*args, **kwargs)
        times[name].append(time.perf_counter() - t)
        return result

    for i in range(count):
        call = timed("start_call", store.start_call, CallDirection.OUTGOING, "sip:bench@example.org")
        timed("answer_call", store.answer_call, call.id)
        timed("end_call", store.end_call, call.id, outcome="hung up", sip_status=200)
        msg = timed("add_message", store.add_message, MessageDirection.OUTGOING, "sip:b@x", f"m{i}")
        timed("update_message_state", store.update_message_state, msg.id, Delivery.DELIVERED)
        timed("get_contact", store.get_contact, "sip:bench@example.org")
    return {k: summary(v) for k, v in times.items()}


async def loop_stall(writes: Callable[[], Awaitable[None]]) -> float:
    """The worst lateness of a 1 ms ticker while ``writes`` runs, in ms."""
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while not done.is_set():
            t = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, loop.time() - t - 0.001)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    await writes()
    done.set()
    await tick
    return worst * 1e3


async def stalls(folder: Path, count: int) -> dict[str, float]:
    sync_store = PhoneStore(folder / "sync.db")

    async def on_loop() -> None:
        for i in range(count):
            sync_store.add_message(MessageDirection.OUTGOING, "sip:b@x", f"m{i}")
            await asyncio.sleep(0)

    async_store = await AsyncPhoneStore.open(folder / "async.db")

    async def off_loop() -> None:
        for i in range(count):
            await async_store.add_message(MessageDirection.OUTGOING, "sip:b@x", f"m{i}")

    try:
        return {
            "sync_on_loop_worst_stall_ms": await loop_stall(on_loop),
            "async_worst_stall_ms": await loop_stall(off_loop),
        }
    finally:
        sync_store.close()
        await async_store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        with PhoneStore(folder / STORE_FILE) as store:
            ops = per_operation(store, args.count)
            mode = store.journal_mode
        loop = asyncio.run(stalls(folder, args.count))
    result = {
        "journal_mode": mode,
        "synchronous": "FULL",
        "count": args.count,
        "operations": ops,
        "event_loop": loop,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"phone store, journal_mode={mode}, synchronous=FULL, {args.count} of each")
    for name, s in ops.items():
        print(
            f"  {name:22} median {s['median_ms']:7.3f} ms  p90 {s['p90_ms']:7.3f}"
            f"  p99 {s['p99_ms']:7.3f}  max {s['max_ms']:8.3f}"
        )
    print(f"  event loop, writes on the loop:     worst stall {loop['sync_on_loop_worst_stall_ms']:8.3f} ms")
    print(f"  event loop, writes via AsyncPhoneStore: worst stall {loop['async_worst_stall_ms']:8.3f} ms")


if __name__ == "__main__":
    main()

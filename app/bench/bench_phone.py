"""``p2psip bench phone [--peers N] [--calls C] [--buddies B] [--presence-seconds S] [--json]``:
what a phone costs, measured on real phone processes over a real overlay.

1. An overlay of N peers (default 10) in worker processes (:mod:`app.bench.overlay_harness`),
   its ring settled; alice's and bob's phones as ``p2psip phone --json`` processes (call
   audio on, as a user runs them), driven through their stdin.
2. ``idle_rss_mb``: bob's phone's resident memory (``VmRSS``) once registered and idle;
   ``idle_rss_mb_no_media``: carol's, a phone run with ``--no-media`` (no aiortc).
3. Dial to ringing: C calls from alice to bob; each from alice's ``dialing`` event to her
   ``ringing`` event (the 180 from bob's phone; RFC 7904 §4 Fetch, AppAttach and ICE for
   the first, the open connection after it), both times from alice's clock; she then
   hangs up (CANCEL). p50 and p99 in ms.
4. Presence: B buddies (default 200) added to alice's running phone (bob, online, and
   B-1 user names with no registration) and S seconds (default 60) of its presence
   checks; ``presence_requests_per_s`` is the phone's own count of the overlay requests
   those checks made over the last minute (Fetches and Pings, RFC 6940 §6.5.3;
   :meth:`PresenceScheduler.measured_rate <app.phone.presence.PresenceScheduler.measured_rate>`),
   so the figure is measured, not computed; the scheduler's estimate for the list is
   printed beside it. The first minute is the dearest one: every buddy gets its first
   check in it.

Targets: presence ≤ 5 requests/s, dial to ringing p50 and p99 ≤ 300 ms, idle RSS ≤ 80 MB; each
with a ``*_target_met`` flag.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.bench.overlay_harness import OverlayHarness, percentile, provision_overlay, run_in_workdir
from app.cli import CliError
from app.cli.processes import PhoneProcess, proc_status_mb

PRESENCE_TARGET = 5.0
RINGING_TARGET_MS = 300.0
RSS_TARGET_MB = 80.0
STEP_TIMEOUT = 60.0


def _progress(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _call_event(number: int, state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: (
        e.get("event") == "CallStateChanged" and e.get("call") == number and e.get("state") == state
    )


async def bench_phone(
    peers: int,
    calls: int,
    buddies: int,
    presence_seconds: float,
    *,
    workers: int = 2,
    quiet: bool = False,
    workdir: Path,
) -> dict[str, Any]:
    """Run the phone benchmark in ``workdir``; the results as :func:`report` prints them."""
    overlay = provision_overlay(workdir, peers, key_kind="ecdsa")
    alice_profile, bob_profile = overlay.add_profile("alice"), overlay.add_profile("bob")
    carol_profile = overlay.add_profile("carol")
    results: dict[str, Any] = {"peers": peers, "calls": calls, "buddies": buddies}
    phones: list[PhoneProcess] = []
    async with OverlayHarness(overlay, workers=workers) as harness:
        try:
            await harness.start_peers(range(peers))
            await harness.wait_ring()
            _progress(quiet, f"{peers} peers in a settled ring")
            alice = await PhoneProcess.start("alice", alice_profile.directory, step_timeout=STEP_TIMEOUT)
            bob = await PhoneProcess.start("bob", bob_profile.directory, step_timeout=STEP_TIMEOUT)
            phones += [alice, bob]
            for phone in phones:
                ready = await phone.expect(lambda e: e.get("event") == "Ready", "Ready")
                if ready["state"] != "registered":
                    raise CliError(f"{phone.name}'s phone did not register: {ready.get('reason')}")
            results["idle_rss_mb"] = round(proc_status_mb(bob.proc.pid, "VmRSS"), 1)
            # The same phone without call audio (no aiortc, numpy, PortAudio loaded).
            carol = await PhoneProcess.start(
                "carol", carol_profile.directory, "--no-media", step_timeout=STEP_TIMEOUT
            )
            phones.append(carol)
            await carol.expect(lambda e: e.get("event") == "Ready", "Ready")
            results["idle_rss_mb_no_media"] = round(proc_status_mb(carol.proc.pid, "VmRSS"), 1)
            await carol.stop()
            _progress(quiet, f"phones registered; bob's idle RSS {results['idle_rss_mb']} MB")

            ringing_ms: list[float] = []
            for _ in range(calls):
                await alice.send("call bob")
                dialing = await alice.expect(
                    lambda e: e.get("event") == "CallStateChanged" and e.get("state") == "dialing", "dialing"
                )
                number = dialing["call"]
                ringing = await alice.expect(_call_event(number, "ringing"), "ringing")
                ringing_ms.append((ringing["time"] - dialing["time"]) * 1000)
                await alice.send(f"hangup {number}")
                await alice.expect(_call_event(number, "ended"), "the end of the call")
                await bob.expect(
                    lambda e: e.get("event") == "CallStateChanged" and e.get("state") == "ended",
                    "the end at bob",
                )
            if ringing_ms:
                results["dial_to_ringing_ms_first"] = round(ringing_ms[0], 1)
                results["dial_to_ringing_ms_p50"] = round(percentile(ringing_ms, 50), 1)
                results["dial_to_ringing_ms_p99"] = round(percentile(ringing_ms, 99), 1)
                results["dial_to_ringing_target_met"] = results["dial_to_ringing_ms_p99"] <= RINGING_TARGET_MS
            _progress(quiet, f"{calls} calls rang")

            if buddies > 0:
                await alice.send("buddy add bob")
                for i in range(buddies - 1):
                    await alice.send(f"buddy add nobody{i:03d}")
                for _ in range(buddies):
                    await alice.expect(lambda e: e.get("event") == "BuddiesChanged", "buddy added")
                _progress(quiet, f"{buddies} buddies; {presence_seconds:.0f} s of presence checks")
                started = time.monotonic()
                await asyncio.sleep(presence_seconds)  # the measurement window itself
                await alice.send("status")
                status = await alice.expect(lambda e: e.get("event") == "Status", "status")
                rate = status["presence_rate"]
                window = min(60.0, time.monotonic() - started)
                # measured_rate counts over the last 60 s: over a shorter run, per second of it.
                results["presence_requests_per_s"] = round(rate["measured"] * 60.0 / window, 3)
                results["presence_estimated_per_s"] = round(rate["estimated"], 3)
                results["presence_seconds"] = round(window, 1)
                results["presence_target_met"] = results["presence_requests_per_s"] <= PRESENCE_TARGET
            results["idle_rss_target_met"] = results["idle_rss_mb"] <= RSS_TARGET_MB
        finally:
            await asyncio.gather(*(p.stop() for p in phones), return_exceptions=True)
    return results


def _cmd_phone(args: argparse.Namespace) -> int:
    from app.cli.figures import report

    if args.peers < 1:
        raise CliError("--peers must be at least 1")
    if args.calls < 0 or args.buddies < 0:
        raise CliError("--calls and --buddies cannot be negative")
    if args.presence_seconds <= 0:
        raise CliError("--presence-seconds must be more than 0")
    results = run_in_workdir(
        "p2psip-bench-phone-",
        lambda workdir: bench_phone(
            args.peers,
            args.calls,
            args.buddies,
            args.presence_seconds,
            workers=args.workers,
            quiet=args.json,
            workdir=workdir,
        ),
    )
    report(results, as_json=args.json)
    met = [v for k, v in results.items() if k.endswith("_target_met")]
    return 0 if all(met) else 1


def register_bench(sub: Any) -> None:
    parser = sub.add_parser("phone", help="a phone's costs: presence requests/s, dial to ringing, idle RSS")
    parser.add_argument("--peers", type=int, default=10, help="overlay peers (default 10)")
    parser.add_argument("--calls", type=int, default=20, help="calls for dial-to-ringing (default 20)")
    parser.add_argument(
        "--buddies", type=int, default=200, help="buddies for the presence cost (default 200)"
    )
    parser.add_argument(
        "--presence-seconds", type=float, default=60.0, help="presence measurement window (default 60)"
    )
    parser.add_argument("--workers", type=int, default=2, help="processes hosting the overlay peers")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=_cmd_phone)


__all__ = ["bench_phone", "register_bench"]

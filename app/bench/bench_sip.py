"""``p2psip bench sip [--peers N] [--calls C] [--fresh F] [--json]``: how long a SIP call
through the overlay takes to ring and to be answered (RFC 7904 over RFC 6940).

1. A fresh overlay (its own CA, N peer profiles, a signed configuration), N peers on
   127.0.0.1 over real TLS/TCP links, each in a process of its own by default
   (:mod:`app.bench.overlay_harness`; ``--workers`` shares processes), the ring settled.
2. Two more peers, ``alice`` and ``bob``, each in its own process, join the ring; each
   runs an :class:`~app.sip.overlay.OverlaySip` phone that accepts SIP AppAttaches and
   registers its AoR in the overlay (RFC 7904 §3). Bob answers every call at once.
3. Alice calls ``sip:bob@<overlay>``: ``--fresh`` calls each over a new connection (her
   open SIP connections are closed before each, so every call makes an AppAttach: ICE
   and DTLS on this machine's interface address, since aioice leaves loopback out), then
   ``--calls`` calls over the connection that is open (RFC 7904 §5.1: "a previously
   established SIP connection MAY be used for a new call"). Each is hung up (BYE) once
   answered, and the next starts once bob has seen it end.

Each step is timed at the caller (``time.perf_counter``):

- ``resolve_ms``: the Fetch of bob's SIP-REGISTRATION, routed through the overlay (§4.2);
- ``app_attach_ms``: the AppAttach, ICE checks and DTLS handshake to bob's node (§5.1),
  or the lookup of the open connection on a reused one;
- ``invite_to_180_ms``, ``invite_to_200_ms``: from the INVITE sent to its 180 Ringing and
  its 200 OK;
- ``dial_to_ringing_ms``: all of it, from dialling to the 180 (target: p50 ≤ 300 ms);
  ``dial_to_answer_ms``: to the 200.

Printed as ``p50``/``p99`` per step, prefixed ``fresh_`` (new AppAttach per call) and
``reused_`` (open connection), with ``first_call_dial_to_ringing_ms`` (the very first call
of the run), ``invite_bytes`` (the INVITE as sent, compact headers and a static SDP offer)
and ``dial_to_ringing_target_met``. Exit status 1 if a call failed.

Functions named ``worker_*`` run inside the harness's worker processes, on the phone's
node (:meth:`OverlayHarness.call_peer <app.bench.overlay_harness.OverlayHarness.call_peer>`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.bench.overlay_harness import OverlayHarness, percentile, provision_overlay, run_in_workdir
from app.cli import CliError
from reload_core.node.node import Node

TARGET_MS = 300.0
"""dial_to_ringing p50 target, milliseconds."""
CALL_TIMEOUT = 30.0
SETTLE_TIMEOUT = 120.0
STEPS = (
    "resolve_ms",
    "app_attach_ms",
    "invite_to_180_ms",
    "invite_to_200_ms",
    "dial_to_ringing_ms",
    "dial_to_answer_ms",
)
_ME = "app.bench.bench_sip"


# ================================================================ in the worker processes


class _Phone:
    """One phone in a worker process, with the times its events came."""

    def __init__(self, endpoint: Any) -> None:
        from app.sip.events import CallEnded, UaEvent

        self.endpoint = endpoint
        self.stamps: dict[tuple[str, int], float] = {}
        self.ended = 0
        self.changed = asyncio.Event()

        def stamp(event: UaEvent) -> None:
            call = getattr(event, "call", None)
            if isinstance(call, int):
                self.stamps.setdefault((type(event).__name__, call), time.perf_counter())
            if isinstance(event, CallEnded):
                self.ended += 1
            self.changed.set()

        endpoint.add_listener(stamp)


_PHONES: dict[bytes, _Phone] = {}


async def worker_phone_start(node: Node, profile: str, auto_answer: bool) -> dict[str, Any]:
    """Start a phone on ``node`` (the profile's user): listen, register; its AoR and GRUU."""
    from app.peer import peer_setup
    from app.profile import load_profile
    from app.sip.overlay import OverlaySip
    from reload_core.usages.sip import SipUsage

    configuration = peer_setup(load_profile(profile)).configuration
    usage = SipUsage.for_node(node, configuration)
    endpoint = OverlaySip(usage, auto_answer=auto_answer)
    _PHONES[node.node_id] = _Phone(endpoint)
    registration = await endpoint.start()
    assert registration is not None
    return {"aor": endpoint.aor, "gruu": endpoint.gruu, "registration": str(registration.state)}


async def worker_phone_stop(node: Node) -> None:
    phone = _PHONES.pop(node.node_id, None)
    if phone is not None:
        await phone.endpoint.close()


async def worker_wait_ended(node: Node, count: int, timeout: float) -> int:
    """Until the phone has seen ``count`` calls end; how many it has."""
    phone = _PHONES[node.node_id]
    async with asyncio.timeout(timeout):
        while phone.ended < count:
            phone.changed.clear()
            await phone.changed.wait()
    return phone.ended


async def worker_dial(node: Node, callee: str, fresh: bool, timeout: float) -> dict[str, Any]:
    """One call to ``callee``, timed (see the module docstring); hung up once answered.
    With ``fresh`` the open SIP connections are closed first."""
    from app.sip.aio import CallError

    phone = _PHONES[node.node_id]
    endpoint = phone.endpoint
    if fresh:
        await endpoint.close_connections()
    started = time.perf_counter()
    try:
        call = await endpoint.call(callee)
        sent = time.perf_counter()  # the INVITE went out before call() returned
        await call.wait_answered(timeout)
    except (CallError, TimeoutError) as exc:
        return {"error": str(exc) or type(exc).__name__}
    reach = endpoint.reach_of(call)
    ringing = phone.stamps.get(("CallRinging", call.ref))
    answered = phone.stamps[("CallAnswered", call.ref)]
    call.hangup()
    await call.wait_ended(timeout)
    result: dict[str, Any] = {
        "reused": reach.reused,
        "fetches": reach.resolution.fetches,
        "resolve_ms": reach.resolve_ms,
        "app_attach_ms": reach.connect_ms,
        "invite_to_200_ms": (answered - sent) * 1000,
        "dial_to_answer_ms": (answered - started) * 1000,
        "invite_bytes": endpoint.flows.last_size.get("INVITE", 0),
    }
    if ringing is not None:
        result["invite_to_180_ms"] = (ringing - sent) * 1000
        result["dial_to_ringing_ms"] = (ringing - started) * 1000
    return result


# ================================================================ the coordinator


def _progress(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _figures(prefix: str, calls: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ok = [c for c in calls if "error" not in c]
    out: dict[str, Any] = {f"{prefix}_calls": len(calls), f"{prefix}_failed": len(calls) - len(ok)}
    for step in STEPS:
        values = [float(c[step]) for c in ok if step in c]
        out[f"{prefix}_{step}_p50"] = percentile(values, 50)
        out[f"{prefix}_{step}_p99"] = percentile(values, 99)
    return out


async def bench_sip(
    peers: int,
    calls: int,
    *,
    fresh: int = 5,
    workers: int | None = None,
    quiet: bool = False,
    settle_timeout: float = SETTLE_TIMEOUT,
    workdir: Path,
) -> dict[str, Any]:
    """Run the SIP call benchmark in ``workdir``; the results as :func:`report` prints them."""
    started = time.monotonic()
    overlay = provision_overlay(workdir, peers, key_kind="ecdsa")
    alice_profile, bob_profile = overlay.add_profile("alice"), overlay.add_profile("bob")
    _progress(quiet, f"provisioned {peers} peers and 2 phones in {time.monotonic() - started:.1f} s")
    results: dict[str, Any] = {"peers": peers}
    worker_count = workers if workers is not None else peers
    async with OverlayHarness(overlay, workers=worker_count) as harness:
        await harness.start_workers()
        joined = await harness.start_peers(range(peers), concurrency=4)
        alice, bob = alice_profile.index, bob_profile.index
        for index in (alice, bob):
            await harness.start_dedicated_peer(index)
        await harness.wait_ring(settle_timeout)
        _progress(quiet, f"{len(joined)} peers and 2 phones joined in {time.monotonic() - started:.1f} s")
        callee = await harness.call_peer(
            bob, f"{_ME}:worker_phone_start", profile=str(bob_profile.directory), auto_answer=True
        )
        caller = await harness.call_peer(
            alice, f"{_ME}:worker_phone_start", profile=str(alice_profile.directory), auto_answer=False
        )
        _progress(quiet, f"{caller['aor']} and {callee['aor']} registered")

        done: list[dict[str, Any]] = []
        fresh_calls: list[dict[str, Any]] = []
        reused_calls: list[dict[str, Any]] = []
        for i in range(fresh + calls):
            is_fresh = i < fresh
            result = await harness.call_peer(
                alice, f"{_ME}:worker_dial", callee=callee["aor"], fresh=is_fresh, timeout=CALL_TIMEOUT
            )
            (fresh_calls if is_fresh else reused_calls).append(result)
            done.append(result)
            if "error" in result:
                _progress(quiet, f"call {i + 1} failed: {result['error']}")
            else:
                await harness.call_peer(
                    bob, f"{_ME}:worker_wait_ended", count=len([d for d in done if "error" not in d]),
                    timeout=CALL_TIMEOUT,
                )  # fmt: skip
        await harness.call_peer(alice, f"{_ME}:worker_phone_stop")
        await harness.call_peer(bob, f"{_ME}:worker_phone_stop")

    ok = [d for d in done if "error" not in d]
    reuse = Counter(bool(d["reused"]) for d in ok)
    first = done[0] if done else {}
    results.update(
        {
            "peers_joined": len(joined),
            "caller": caller["aor"],
            "callee": callee["aor"],
            "invite_bytes": max((int(d["invite_bytes"]) for d in ok), default=0),
            "fresh_connection": "new AppAttach (ICE + DTLS) before each call",
            "reused_connection": "the open SIP connection, no AppAttach",
            **_figures("fresh", fresh_calls),
            **_figures("reused", reused_calls),
            "calls_over_new_appattach": reuse[False],
            "calls_over_open_connection": reuse[True],
            "first_call_dial_to_ringing_ms": float(first.get("dial_to_ringing_ms", float("nan"))),
            "first_call_app_attach_ms": float(first.get("app_attach_ms", float("nan"))),
            "dial_to_ringing_target_ms": TARGET_MS,
        }
    )
    medians = [results[f"{p}_dial_to_ringing_ms_p50"] for p in ("fresh", "reused") if results[f"{p}_calls"]]
    results["dial_to_ringing_target_met"] = bool(medians) and all(m <= TARGET_MS for m in medians)
    results["workers"] = worker_count + 2
    results["load_1m"] = os.getloadavg()[0]  # others' load on the machine moves the times
    return results


def ice_host_addresses() -> list[str]:
    """This machine's addresses that ICE can use (aioice leaves loopback out)."""
    from aioice.ice import get_host_addresses

    return [
        a for a in get_host_addresses(use_ipv4=True, use_ipv6=True) if not a.startswith("127.") and a != "::1"
    ]


def _cmd_sip(args: argparse.Namespace) -> int:
    from app.cli.figures import report

    if args.peers < 1:
        raise CliError("--peers must be at least 1")
    if args.calls < 0 or args.fresh < 0 or args.calls + args.fresh < 1:
        raise CliError("--calls and --fresh cannot be negative, and at least one call is needed")
    if args.workers is not None and args.workers < 1:
        raise CliError("--workers must be at least 1")
    if not ice_host_addresses():
        raise CliError("no non-loopback interface address: AppAttach's ICE has no host candidate here")
    results = run_in_workdir(
        "p2psip-bench-sip-",
        lambda workdir: bench_sip(
            args.peers,
            args.calls,
            fresh=args.fresh,
            workers=args.workers,
            quiet=args.json,
            workdir=workdir,
        ),
    )
    report(results, as_json=args.json)
    failed = results["fresh_failed"] + results["reused_failed"]
    return 0 if failed == 0 else 1


def register_bench(sub: Any) -> None:
    parser = sub.add_parser(
        "sip", help="SIP calls through an overlay of N peer processes: time to ring and to answer"
    )
    parser.add_argument(
        "--peers", type=int, default=10, help="overlay peers besides the two phones (default 10)"
    )
    parser.add_argument("--calls", type=int, default=20, help="calls over the open connection (default 20)")
    parser.add_argument(
        "--fresh", type=int, default=5, help="calls each over a new AppAttach, made first (default 5)"
    )
    parser.add_argument(
        "--workers", type=int, help="processes hosting the overlay peers (default: one per peer)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=_cmd_sip)


__all__ = ["TARGET_MS", "bench_sip", "ice_host_addresses", "register_bench"]

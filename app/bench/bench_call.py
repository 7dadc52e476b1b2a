"""``p2psip bench call [--calls C] [--json]``: call audio between two phone processes.

A fresh operator's overlay (one bootstrap ``p2psip peer`` process, ECDSA keys) and two
``p2psip phone --json`` processes, alice and bob, each with call media on and a file
sent in place of the microphone: a 200 ms 1 kHz burst every second. Alice calls bob C
times; bob answers when his phone rings; each call lasts ``--seconds``. Figures:

- ``dial_to_ringing_ms``: alice's call from its first event (dialing) to ringing (the
  180 back through the overlay: lookup, AppAttach, INVITE), on alice's clock;
- ``answer_to_audio_ms``: bob's call connected (his answer) to alice's first audio
  frame heard (ICE + DTLS-SRTP + first RTP decoded into the playout buffer);
- ``mouth_to_ear_ms``: a burst's onset as alice's phone hands the frame to the encoder
  to its onset in what bob's phone plays out: codec, packetisation, network, jitter and
  playout buffer. Both phones note the wall-clock time (``time.time()``) of each onset
  on their own audio paths (:class:`app.phone.media.OnsetProbe`: a 20 ms frame at or
  above -30 dBFS after 100 ms quieter); both run on this machine, so their clocks are
  one. Each onset heard pairs with the latest onset sent before it (bursts are 1 s
  apart, far more than the delay). The probe sees whole 20 ms frames: the figure is
  exact to a frame;
- ``cpu_pct_per_call``: the CPU time of each phone process (``/proc/PID/stat`` utime
  + stime) while the call is up, over the wall time, as % of one core;
- ``peak_rss_mb``: the largest VmHWM (``/proc/PID/status``) of the two phones at the end.

Each figure's p50 and p99, and ``target_met`` flags against :data:`TARGETS`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.bench.overlay_harness import provision_overlay
from app.cli import CliError
from app.cli.figures import report
from app.cli.processes import proc_status_mb
from app.media.audio import SAMPLE_RATE, write_wav

TARGETS = {
    "dial_to_ringing_ms": 300.0,
    "answer_to_audio_ms": 200.0,
    "mouth_to_ear_ms": 100.0,
    "cpu_pct_per_call": 10.0,
}
RSS_TARGET_MB = 120.0
WAIT = 60.0
BURST_HZ = 1000.0

Event = dict[str, Any]


def burst_file(path: Path, period: float = 1.0, burst: float = 0.2) -> Path:
    """A WAV: a ``burst`` s tone at :data:`BURST_HZ` then silence, ``period`` s long (looped)."""
    samples = np.zeros(round(period * SAMPLE_RATE), dtype=np.int16)
    n = round(burst * SAMPLE_RATE)
    samples[:n] = (np.sin(2 * np.pi * BURST_HZ * np.arange(n) / SAMPLE_RATE) * 8000).astype(np.int16)
    write_wav(path, samples)
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class PhoneProc:
    """A ``p2psip phone --json`` process: commands on stdin, events read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process, label: str) -> None:
        self.proc = proc
        self.label = label
        self.events: list[Event] = []
        self._used: set[int] = set()
        self._changed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, profile: Path, label: str, *args: str) -> PhoneProc:
        with (profile.parent / f"{label}.stderr.log").open("ab") as err:
            return cls(await cls._spawn(profile, err.fileno(), *args), label)

    @staticmethod
    async def _spawn(profile: Path, err: int, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "phone",
            "--json",
            "--profile",
            str(profile),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(raw)
                if isinstance(event, dict):
                    self.events.append(event)
                    self._changed.set()
        self._changed.set()

    async def expect(self, kind: str, where: Any = lambda e: True, timeout: float = WAIT) -> Event:
        async with asyncio.timeout(timeout):
            while True:
                for i, event in enumerate(self.events):
                    if i not in self._used and event.get("event") == kind and where(event):
                        self._used.add(i)
                        return event
                if self.proc.returncode is not None or self._reader.done():
                    raise CliError(f"{self.label}'s phone exited before {kind}")
                self._changed.clear()
                await self._changed.wait()

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.send("quit")
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def _bootstrap(overlay: Any) -> asyncio.subprocess.Process:
    """The overlay's bootstrap peer as a process, handed its bound socket (LISTEN_FDS)."""
    sock = overlay.take_socket(0)
    fd = sock.fileno()
    launcher = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_FDS'] = '1'; "
        "os.environ['LISTEN_PID'] = str(os.getpid()); "
        "os.execv(sys.executable, [sys.executable, '-m', 'app', 'peer', '--profile', sys.argv[2]])"
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            launcher,
            str(fd),
            str(overlay.peers[0].directory),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            pass_fds=[fd],
        )
    finally:
        sock.close()
    assert proc.stdout is not None
    async with asyncio.timeout(WAIT):
        while not (line := await proc.stdout.readline()).startswith(b"ready "):
            if not line:
                raise CliError("the bootstrap peer exited")
    return proc


async def _one_call(
    alice: PhoneProc, bob: PhoneProc, seconds: float, figures: dict[str, list[float]]
) -> None:
    await alice.send("call bob")
    dialing = await alice.expect("CallStateChanged", lambda e: e["state"] == "dialing")
    call = dialing["call"]
    ringing = await alice.expect("CallStateChanged", lambda e: e["call"] == call and e["state"] == "ringing")
    incoming = await bob.expect("CallStateChanged", lambda e: e["state"] == "ringing")
    await bob.send(f"answer {incoming['call']}")
    answered = await bob.expect(
        "CallStateChanged", lambda e: e["call"] == incoming["call"] and e["state"] == "connected"
    )
    first = await alice.expect("CallMedia", lambda e: e["call"] == call and e["what"] == "first-audio")
    cpu0 = {p.label: cpu_seconds(p.proc.pid) for p in (alice, bob)}
    wall0 = time.monotonic()
    await asyncio.sleep(seconds)  # the call's length (what is measured, not a wait for state)
    wall = time.monotonic() - wall0
    for p in (alice, bob):
        figures["cpu_pct_per_call"].append(100.0 * (cpu_seconds(p.proc.pid) - cpu0[p.label]) / wall)
    await alice.send(f"hangup {call}")
    await alice.expect("CallStateChanged", lambda e: e["call"] == call and e["state"] == "ended")
    await bob.expect("CallStateChanged", lambda e: e["call"] == incoming["call"] and e["state"] == "ended")
    figures["dial_to_ringing_ms"].append((ringing["time"] - dialing["time"]) * 1000)
    figures["answer_to_audio_ms"].append((first["time"] - answered["time"]) * 1000)
    sent = sorted(
        float(e["detail"])
        for e in alice.events
        if e.get("event") == "CallMedia" and e.get("call") == call and e["what"] == "onset-sent"
    )
    heard = [
        float(e["detail"])
        for e in bob.events
        if e.get("event") == "CallMedia" and e.get("call") == incoming["call"] and e["what"] == "onset-heard"
    ]
    for at in heard:
        before = [t for t in sent if t <= at]
        if before and at - before[-1] < 0.5:
            figures["mouth_to_ear_ms"].append((at - before[-1]) * 1000)


async def bench_call(calls: int, seconds: float, workdir: Path, *, quiet: bool = False) -> dict[str, Any]:
    from reload_core.config import DomainRestriction, default_kinds

    overlay = provision_overlay(
        workdir / "overlay",
        1,
        name="call.bench.test",
        key_kind="ecdsa",
        required_kinds=default_kinds(domain_restriction=DomainRestriction(enable=False)),
    )
    bursts = burst_file(workdir / "bursts.wav")
    bootstrap = await _bootstrap(overlay)
    phones: list[PhoneProc] = []
    figures: dict[str, list[float]] = {name: [] for name in TARGETS}
    try:
        for user in ("alice", "bob"):
            profile = overlay.add_profile(user).directory
            phones.append(await PhoneProc.start(profile, user, "--play", str(bursts), "--audio-onsets"))
        alice, bob = phones
        for phone in phones:
            ready = await phone.expect("Ready")
            if ready.get("state") != "registered":
                await phone.expect("PhoneStateChanged", lambda e: e["state"] == "registered")
        for n in range(calls):
            if not quiet:
                print(f"call {n + 1}/{calls}", file=sys.stderr, flush=True)
            await _one_call(alice, bob, seconds, figures)
        rss = max(proc_status_mb(p.proc.pid, "VmHWM") for p in phones)
    finally:
        await asyncio.gather(*(p.close() for p in phones), return_exceptions=True)
        if bootstrap.returncode is None:
            bootstrap.kill()
        await bootstrap.wait()
        overlay.close()
    results: dict[str, Any] = {"calls": calls, "call_seconds": seconds}
    for name, values in figures.items():
        results[f"{name}_p50"] = round(percentile(values, 50), 1)
        results[f"{name}_p99"] = round(percentile(values, 99), 1)
        results[f"{name}_samples"] = len(values)
    results["peak_rss_mb"] = round(rss, 1)
    for name, target in TARGETS.items():
        results[f"{name}_target"] = target
        results[f"{name}_target_met"] = bool(results[f"{name}_p99"] <= target)
    results["peak_rss_target_mb"] = RSS_TARGET_MB
    results["peak_rss_target_met"] = bool(rss <= RSS_TARGET_MB)
    results["cpu_cores"] = os.cpu_count()
    results["load_average_1m"] = round(os.getloadavg()[0], 2)
    results["mouth_to_ear_mean_ms"] = (
        round(statistics.fmean(figures["mouth_to_ear_ms"]), 1) if figures["mouth_to_ear_ms"] else float("nan")
    )
    return results


def _cmd_call(args: argparse.Namespace) -> int:
    if args.calls < 1:
        raise CliError("--calls must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="p2psip-bench-call-"))
    try:
        results = asyncio.run(bench_call(args.calls, args.seconds, workdir, quiet=args.json))
    except TimeoutError:
        raise CliError("benchmark failed: a phone did not answer in time") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, as_json=args.json)
    return 0


def register_bench(sub: Any) -> None:
    parser = sub.add_parser(
        "call", help="call audio between two phone processes: setup, latency, CPU, memory"
    )
    parser.add_argument("--calls", type=int, default=5, help="calls (default 5)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each call (default 5 s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=_cmd_call)


__all__ = ["TARGETS", "bench_call", "burst_file", "register_bench"]

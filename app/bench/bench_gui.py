"""``p2psip bench gui [--runs N] [--call-seconds S] [--json]``: how fast the GUI comes up
and how steady its event loop stays during a call.

A sample overlay (:mod:`app.gui.sample_overlay`: its CA, its bootstrap peer on 127.0.0.1)
runs in this process with bob's phone, which answers every call (aiortc audio, no sound
device). alice's phone runs under the real GUI (:func:`app.gui.app.run`, what ``p2psip
gui`` runs) in a child process, offscreen (``QT_QPA_PLATFORM=offscreen``):

- ``start_to_window_s``: from starting the child process to its main window shown and
  the loop idle once after (the window then takes input: it shows who and what the
  profile and its store hold), median of ``--runs`` starts (``start_to_window_s_max``
  the slowest); it covers the interpreter, Qt, the GUI's imports, reading the profile
  and the store, and building the window. Target ≤ 1.5 s. ``start_to_phone_s``: to
  the phone service loaded (in a worker thread meanwhile), opened and attached, when
  calls can be placed.
- ``loop_lag_ms_max``: once registered, the child calls bob from the main window; while
  the call is connected (``--call-seconds``) a 10 ms ``QTimer`` (precise) measures how
  late each of its ticks comes: the worst lateness is how long the loop, which also
  carries asyncio (qasync), the overlay, SIP, aiortc's media and the meters, was busy at
  once. ``loop_lag_ms_p99`` and ``loop_ticks`` too. Target ≤ 50 ms.

The child is ``python -m app.bench.bench_gui child``; it prints ``ready``, ``lag ...``
lines on stdout for the parent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

START_TARGET_S = 1.5
LAG_TARGET_MS = 50.0
TICK_MS = 10
CHILD_TIMEOUT = 90.0


# =================================================================== the child (GUI)


def child(profile: Path, mode: str, target: str, seconds: float) -> int:
    """The GUI of ``profile``; ``mode`` "start" quits once the window is up, "call" also
    calls ``target`` and measures the loop's lag for ``seconds`` of the call."""
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    from app.gui.app import GuiApp, run
    from app.gui.tasks import spawn
    from app.gui.theme import Scheme
    from app.phone.calls import CallState
    from app.phone.events import CallStateChanged, PhoneState, PhoneStateChanged

    def say(line: str) -> None:
        print(line, flush=True)

    def instrument(gui: GuiApp) -> None:
        state = {"called": False, "measuring": False}
        lateness: list[float] = []
        clock = QElapsedTimer()
        ticker = QTimer()
        ticker.setTimerType(Qt.TimerType.PreciseTimer)
        ticker.setInterval(TICK_MS)

        def tick() -> None:
            elapsed = clock.nsecsElapsed() / 1e6
            clock.restart()
            lateness.append(max(0.0, elapsed - TICK_MS))

        ticker.timeout.connect(tick)

        def ready() -> None:
            say("phone")
            if mode == "start":
                spawn(gui.quit())
                return
            windows = gui.windows
            assert windows is not None
            windows.bridge.phoneState.connect(registered)
            windows.bridge.callState.connect(call_state)
            registered(PhoneStateChanged(gui.phone.state, "", None, time.time()) if gui.phone else None)

        def registered(event: PhoneStateChanged | None) -> None:
            if event is None or event.state is not PhoneState.REGISTERED or state["called"]:
                return
            state["called"] = True
            assert gui.windows is not None
            gui.windows.window.place_call(target)

        def call_state(event: CallStateChanged) -> None:
            if event.state is CallState.CONNECTED and not state["measuring"]:
                state["measuring"] = True
                clock.start()
                ticker.start()
                QTimer.singleShot(int(seconds * 1000), lambda: stop(event.call))
            elif event.state is CallState.ENDED:
                if not state["measuring"]:
                    say(f"failed call ended: {event.words}")
                spawn(gui.quit())

        def stop(call_id: int) -> None:
            ticker.stop()
            samples = sorted(lateness)
            p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))] if samples else 0.0
            say(f"lag max_ms={max(samples, default=0.0):.2f} p99_ms={p99:.2f} ticks={len(samples)}")
            assert gui.windows is not None
            widget = gui.windows.window.call_widgets.get(call_id)
            if widget is not None:
                widget.hangup()

        gui.windowShown.connect(lambda: QTimer.singleShot(0, lambda: say("ready")))
        gui.phoneReady.connect(lambda: QTimer.singleShot(0, ready))

    return run(profile, scheme=Scheme.LIGHT, hook=instrument)


# =================================================================== the parent


async def _child(
    profile: Path, mode: str, *, target: str = "", seconds: float = 0.0
) -> tuple[float, float, list[str], int]:
    """Run a child; (seconds from its start to ``ready`` and to ``phone``, its stdout
    lines, exit status)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.bench.bench_gui",
        "child",
        "--profile",
        str(profile),
        "--mode",
        mode,
        "--target",
        target,
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    ready_after = phone_after = float("nan")
    lines: list[str] = []
    try:
        async with asyncio.timeout(CHILD_TIMEOUT + seconds):
            assert proc.stdout is not None
            while raw := await proc.stdout.readline():
                line = raw.decode().strip()
                lines.append(line)
                if line == "ready" and ready_after != ready_after:
                    ready_after = time.perf_counter() - started
                elif line == "phone" and phone_after != phone_after:
                    phone_after = time.perf_counter() - started
            status = await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return ready_after, phone_after, lines, status


def _fields(line: str) -> dict[str, float]:
    return {k: float(v) for k, _, v in (w.partition("=") for w in line.split()[1:])}


async def bench_gui(
    workdir: Path, *, runs: int = 3, call_seconds: float = 10.0, quiet: bool = False
) -> dict[str, Any]:
    from app.gui.sample_overlay import SampleOverlay

    sample = SampleOverlay(workdir)
    await sample.start()
    try:
        await sample.phone("bob", auto_answer=True)
        alice = sample.profile("alice")
        starts: list[float] = []
        phones: list[float] = []
        for run in range(runs):
            after, phone_after, lines, status = await _child(alice, "start")
            if status != 0 or after != after or phone_after != phone_after:
                raise RuntimeError(f"the GUI did not come up (exit {status}): {lines}")
            starts.append(after)
            phones.append(phone_after)
            if not quiet:
                print(
                    f"start {run + 1}: window after {after:.2f} s, phone attached after {phone_after:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
        _after, _phone, lines, status = await _child(alice, "call", target="bob", seconds=call_seconds)
        lag = next((_fields(line) for line in lines if line.startswith("lag ")), None)
        if lag is None:
            raise RuntimeError(f"the call was not measured (exit {status}): {lines}")
    finally:
        await sample.close()
    return {
        "start_to_window_s": statistics.median(starts),
        "start_to_window_s_max": max(starts),
        "start_target_s": START_TARGET_S,
        "start_to_phone_s": statistics.median(phones),
        "loop_lag_ms_max": lag["max_ms"],
        "loop_lag_ms_p99": lag["p99_ms"],
        "loop_ticks": int(lag["ticks"]),
        "lag_target_ms": LAG_TARGET_MS,
        "call_seconds": call_seconds,
        "runs": runs,
        "targets_met": statistics.median(starts) <= START_TARGET_S and lag["max_ms"] <= LAG_TARGET_MS,
        "load_1m": os.getloadavg()[0],
    }


def _cmd_gui(args: argparse.Namespace) -> int:
    from app.cli import CliError
    from app.cli.figures import report

    if args.runs < 1 or args.call_seconds <= 0:
        raise CliError("--runs must be at least 1 and --call-seconds positive")
    workdir = Path(tempfile.mkdtemp(prefix="p2psip-bench-gui-"))
    try:
        results = asyncio.run(
            bench_gui(workdir, runs=args.runs, call_seconds=args.call_seconds, quiet=args.json)
        )
    except (RuntimeError, TimeoutError) as exc:
        raise CliError(f"benchmark failed: {exc or 'timed out'}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, as_json=args.json)
    return 0 if results["targets_met"] else 1


def register_bench(sub: Any) -> None:
    parser = sub.add_parser("gui", help="the GUI: process start to a usable window, loop lag during a call")
    parser.add_argument("--runs", type=int, default=3, help="starts measured (default 3)")
    parser.add_argument(
        "--call-seconds",
        type=float,
        default=10.0,
        help="seconds of call the loop lag is measured over (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=_cmd_gui)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench.bench_gui")
    sub = parser.add_subparsers(dest="command", required=True)
    run_child = sub.add_parser("child")
    run_child.add_argument("--profile", type=Path, required=True)
    run_child.add_argument("--mode", choices=["start", "call"], required=True)
    run_child.add_argument("--target", default="")
    run_child.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    return child(args.profile, args.mode, args.target, args.seconds)


if __name__ == "__main__":
    sys.exit(_main())

__all__ = ["LAG_TARGET_MS", "START_TARGET_S", "bench_gui", "child", "register_bench"]

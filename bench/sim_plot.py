"""Plot what the simulator (:mod:`reload_core.sim`) measures over overlay size and churn.

::

    .venv/bin/python bench/sim_plot.py                      # run the simulations, draw the PNG
    .venv/bin/python bench/sim_plot.py --results r.json     # keep (or reuse) the figures
    .venv/bin/python bench/sim_plot.py --add big.json       # add runs made elsewhere (p2psip sim --json)

Two series of runs of real nodes on a virtual clock (RFC 6940 §10):

- overlay size N (``--sizes``), no churn: mean and 99th-percentile hops of routed
  lookups against Chord's ½·log2(N), and lookup success;
- churn at N = ``--churn-nodes``: every peer fails after an exponential session time of
  median M minutes (``--sessions``) and a new one takes its place; lookup success and
  values lost.

The figure goes to ``bench/sim_plot.png`` (``--out``); the figures of every run to
``--results`` as JSON, which a later call reuses instead of simulating again.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: draw to a file
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reload_core.sim import SimConfig, run_simulation
from reload_core.sim.parallel import default_workers

HERE = Path(__file__).resolve().parent
NO_CHURN = "none"


def run(config: SimConfig) -> dict[str, Any]:
    started = time.perf_counter()
    report = run_simulation(config).as_dict()
    print(
        f"N={config.nodes:6d} session={config.session_minutes}: hops {report['hops_mean']:.2f} "
        f"(ref {report['hops_reference']:.2f}), success {report['lookup_success']:.4f}, "
        f"lost {report['data_lost']}, {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return report


def key(nodes: int, session: float | None) -> str:
    return f"{nodes}/{session if session is not None else NO_CHURN}"


def collect(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    base = {"seed": args.seed, "lookups": args.lookups, "values": args.values}
    for n in args.sizes:
        if key(n, None) not in results:
            results[key(n, None)] = run(SimConfig(nodes=n, workers=default_workers(n), **base))
    for session in args.sessions:
        s = None if session <= 0 else session
        if key(args.churn_nodes, s) not in results:
            results[key(args.churn_nodes, s)] = run(
                SimConfig(
                    nodes=args.churn_nodes,
                    session_minutes=s,
                    duration=args.churn_duration,
                    workers=default_workers(args.churn_nodes),
                    **base,
                )
            )


def draw(results: dict[str, dict[str, Any]], churn_nodes: int, out: Path) -> None:
    steady = sorted((r for r in results.values() if r["session_minutes"] is None), key=lambda r: r["nodes"])
    churned = sorted(
        (r for r in results.values() if r["nodes"] == churn_nodes and r["session_minutes"] is not None),
        key=lambda r: -r["session_minutes"],
    )
    fig, (hops_ax, success_ax) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=90)

    ns = [r["nodes"] for r in steady]
    hops_ax.plot(ns, [r["hops_mean"] for r in steady], "o-", label="mean hops")
    hops_ax.plot(ns, [r["hops_p99"] for r in steady], "s--", label="99th percentile")
    reference = [n for n in (ns[0], ns[-1])] if ns else []
    if reference:
        span = [reference[0] * (reference[1] / reference[0]) ** (i / 50) for i in range(51)]
        hops_ax.plot(span, [0.5 * math.log2(n) for n in span], ":", color="grey", label="½·log₂ N")
        hops_ax.fill_between(
            span,
            [0.45 * math.log2(n) for n in span],
            [0.55 * math.log2(n) for n in span],
            color="grey",
            alpha=0.15,
            label="±10 %",
        )
    hops_ax.set_xscale("log")
    hops_ax.set_xlabel("peers N")
    hops_ax.set_ylabel("hops per lookup (links crossed)")
    hops_ax.set_title("Routing: hops against overlay size (no churn)")
    hops_ax.grid(True, which="both", alpha=0.3)
    hops_ax.legend(fontsize=8)

    if churned:
        sessions = [r["session_minutes"] for r in churned]
        success_ax.plot(sessions, [100 * r["lookup_success"] for r in churned], "o-", label="lookup success")
        lost = [r["data_lost"] / max(1, r["values_stored"]) * 100 for r in churned]
        success_ax.plot(sessions, [100 - x for x in lost], "s--", label="values kept")
        for r in churned:
            success_ax.annotate(
                f"{r['failures']} failures",
                (r["session_minutes"], 100 * r["lookup_success"]),
                textcoords="offset points",
                xytext=(0, -14),
                ha="center",
                fontsize=7,
            )
        success_ax.axhline(99, color="grey", linestyle=":", label="99 %")
        success_ax.set_xscale("log")
        success_ax.set_xticks(sessions, [f"{m:g}" for m in sessions])
        success_ax.minorticks_off()
        success_ax.invert_xaxis()
        success_ax.set_xlabel("median session time M, minutes (more churn →)")
        success_ax.set_ylabel("%")
        low = min(100 * r["lookup_success"] for r in churned) - 1
        success_ax.set_ylim(min(95.0, low, *(100 - x - 1 for x in lost)), 100.5)
        success_ax.set_title(f"Churn: N = {churn_nodes}, a new peer for each failed one")
        success_ax.grid(True, which="both", alpha=0.3)
        success_ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--churn-nodes", type=int, default=1000)
    parser.add_argument(
        "--sessions",
        type=float,
        nargs="+",
        default=[120.0, 60.0, 30.0, 15.0, 5.0],
        help="median session times in minutes (0: no churn)",
    )
    parser.add_argument("--churn-duration", type=float, default=600.0, help="simulated seconds of churn")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--values", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, help="JSON file of the runs: reused, then updated")
    parser.add_argument("--add", type=Path, nargs="*", default=[], help="more runs (p2psip sim --json)")
    parser.add_argument("--out", type=Path, default=HERE / "sim_plot.png")
    args = parser.parse_args(argv)
    logging.getLogger("reload_core").setLevel(logging.ERROR)

    results: dict[str, dict[str, Any]] = {}
    if args.results is not None and args.results.exists():
        results = json.loads(args.results.read_text())
    for path in args.add:
        report = json.loads(path.read_text())
        results[key(report["nodes"], report["session_minutes"])] = report
    collect(args, results)
    if args.results is not None:
        args.results.write_text(json.dumps(results, indent=1, sort_keys=True))
    draw(results, args.churn_nodes, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

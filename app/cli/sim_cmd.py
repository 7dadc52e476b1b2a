"""``p2psip sim``: a simulated overlay of N real nodes on a virtual clock (RFC 6940 §10).

``p2psip sim --nodes N [--session MINUTES] [--seed S] [--json] [--workers W]`` runs
:class:`reload_core.sim.Simulation` (over W processes, see
:mod:`reload_core.sim.parallel`): N peers join through bootstrap peers as a Poisson
process, the ring settles, values are stored, random lookups run for a while (under churn
with ``--session``: peers fail after exponential session times of that median and new
ones take their place), and every value is fetched back. Printed, one ``name: value``
per line or one JSON object with ``--json``: ``hops_mean``, ``hops_p99`` (links crossed;
``hops_reference`` is ½·log2 N), ``lookup_success``, ``lookup_ms_p50`` (simulated),
``data_lost``, ``messages_per_node_per_s``, ``wall_s``, ``peak_rss_mb`` and the rest of
:class:`reload_core.sim.SimReport`. Progress goes to stderr (not with ``--json``).

The exit status is 1 when a value was lost or code raised during the run, else 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from app.cli import CliError
from app.cli.figures import report
from reload_core.sim import SimConfig, Simulation
from reload_core.sim.parallel import PARALLEL_FROM, default_workers


def config_from_args(args: argparse.Namespace) -> SimConfig:
    values: dict[str, Any] = {
        "nodes": args.nodes,
        "seed": args.seed,
        "session_minutes": args.session,
        "latency": args.latency / 1000.0,
        "loss": args.loss,
        "bootstrap_peers": min(args.bootstrap_peers, args.nodes),
        "join_rate": args.join_rate,
        "settle": args.settle,
        "duration": args.duration,
        "lookups": args.lookups,
        "values": args.values,
        "key_kind": args.key_type,
        "reactive": args.reactive,
        "restarts": args.restarts,
        "workers": args.workers if args.workers is not None else default_workers(args.nodes),
    }
    try:
        return SimConfig(**values)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _cmd_sim(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    logging.getLogger("reload_core").setLevel(logging.ERROR)
    progress = None if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
    figures = Simulation(config, progress=progress).run()
    report(figures.as_dict(), as_json=args.json)
    return 0 if figures.data_lost == 0 and figures.errors == 0 else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim", help="simulate N real nodes on a virtual clock: hops, lookup success, data loss"
    )
    parser.add_argument("--nodes", type=int, default=1000, help="peers in the overlay (default 1000)")
    parser.add_argument(
        "--session",
        type=float,
        metavar="MINUTES",
        help="median session time: run under churn (default: none)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--lookups", type=int, default=2000, help="lookups in the workload (default 2000)")
    parser.add_argument("--values", type=int, default=200, help="values stored and fetched (default 200)")
    parser.add_argument(
        "--duration", type=float, default=600.0, help="simulated seconds of workload (default 600)"
    )
    parser.add_argument(
        "--settle", type=float, default=120.0, help="simulated seconds between the joins and the workload"
    )
    parser.add_argument("--latency", type=float, default=20.0, help="one-way link latency, ms (default 20)")
    parser.add_argument(
        "--loss", type=float, default=0.0, help="frame loss rate on datagram links (default 0)"
    )
    parser.add_argument("--join-rate", type=float, help="arrivals per simulated second (default N/600)")
    parser.add_argument(
        "--bootstrap-peers", type=int, default=3, help="always-on bootstrap peers (default 3)"
    )
    parser.add_argument(
        "--key-type",
        choices=["ecdsa", "ed25519"],
        default="ecdsa",
        help="node key type (default ecdsa: P-256, which this OpenSSL verifies faster than Ed25519)",
    )
    parser.add_argument("--reactive", action="store_true", help="chord-reactive recovery (default periodic)")
    parser.add_argument(
        "--restarts",
        action="store_true",
        help="with --session: a failed peer comes back with its Node-ID and no data (default: a new peer)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="processes to spread the nodes over, one core each "
        f"(default: 2 from {PARALLEL_FROM} nodes on a machine with 2 cores or more, else 1)",
    )
    parser.set_defaults(func=_cmd_sim)

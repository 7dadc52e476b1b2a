"""``p2psip bench attach [--count N] [--json]``: how long an Attach (RFC 6940 §6.5.1) and an
AppAttach (§6.5.2) take to set up a connection with full ICE and DTLS.

Three nodes in their own processes, with a throwaway overlay CA: a bootstrap peer and two
clients of it (§4.2), so that the clients' connection to each other can be made and
closed again and again without the ring making it on its own. The first client Attaches
to the second ``--count`` times (request and answer routed through the bootstrap peer,
candidates gathered, connectivity checks, DTLS handshake: the time until the link is
open), closing the link after each; then AppAttaches (application 5060) as many times,
until the application's DTLS connection is open.

Two setups:

- ``local``: all three on this machine's interface address (aioice leaves loopback out
  of its candidates);
- ``nat``: the bootstrap peer on a public network and each client behind its own
  MASQUERADE NAT, in network namespaces (:mod:`app.bench.nat_lab`; needs root, iproute2 and
  iptables; skipped with the reason otherwise, or with ``--no-nat``).

Printed: ``<setup>_attach_ms_p50/p99``, ``<setup>_app_attach_ms_p50/p99``, failures, and
``app_attach_target_met`` (local AppAttach p50 ≤ 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from app.cli import CliError

OVERLAY = "attach.bench.invalid"
APP_TARGET_MS = 100.0
MODULE = "app.bench.bench_attach"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# ---------------------------------------------------------------- the worker (one node)


def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def _worker(args: argparse.Namespace) -> None:
    from reload_core.links.tls import OverlayTrust, TlsCredentials
    from reload_core.node import Node, NodeSettings, tls_transport
    from reload_core.node.attach_ice import install_ice
    from reload_core.security.certificates import load_certificate, load_private_key_file
    from reload_core.security.signing import CertificateResolver, Signer
    from reload_core.wire.addresses import IpAddressPort
    from reload_core.wire.codes import MessageCode
    from reload_core.wire.link_methods import PingReq
    from reload_core.wire.message import NodeDestination

    def address(text: str) -> IpAddressPort:
        host, _, port = text.rpartition(":")
        return IpAddressPort(host, int(port))

    key = load_private_key_file(args.key)
    cert = load_certificate(Path(args.cert).read_bytes())
    root = load_certificate(Path(args.root).read_bytes())
    credentials = TlsCredentials(key, cert)
    trust = OverlayTrust(OVERLAY, root_certs=(root,))
    bootstrap = address(args.bootstrap) if args.bootstrap else None
    settings = NodeSettings(
        overlay_name=OVERLAY, overlay_reliability_timer=1.0, bootstrap_nodes=(bootstrap,) if bootstrap else ()
    )
    node = Node(
        Signer.create(key, cert),
        CertificateResolver(OVERLAY, roots=(root,)),
        settings,
        tls_transport(credentials, trust),
    )
    ice = install_ice(node, credentials, trust)
    apps: list[Any] = []
    ice.register_application(5060, apps.append)
    bound = await node.start(address(args.listen))
    if bootstrap is None:
        node.start_alone()
    else:
        await node.connect_as_client([bootstrap], timeout=20.0)
    _emit(event="ready", address=f"{bound.addr}:{bound.port}", node_id=node.node_id.hex())

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def settle(peer: bytes) -> None:
        # Closed on our side; a Ping routed through the bootstrap peer arrives after our
        # close_notify, so the peer has dropped its side before the next round.
        node.close_links_to(peer)
        await node.request(NodeDestination(peer), MessageCode.ping_req, PingReq())

    async def attach_once(peer: bytes) -> float:
        done: asyncio.Future[bytes | None] = loop.create_future()
        started = time.perf_counter()
        def finished(p: bytes | None) -> None:
            if not done.done():
                done.set_result(p)

        ice.attach(peer, finished, resource=False)
        got = await asyncio.wait_for(done, 20)
        elapsed = time.perf_counter() - started
        if got != peer:
            raise RuntimeError("Attach failed")
        await settle(peer)
        return elapsed

    async def app_attach_once(peer: bytes) -> float:
        started = time.perf_counter()
        conn = await ice.app_attach(peer, 5060, timeout=20)
        elapsed = time.perf_counter() - started
        conn.close()
        await node.request(NodeDestination(peer), MessageCode.ping_req, PingReq())
        return elapsed

    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "measure":
            peer = bytes.fromhex(cmd["peer"])
            op = attach_once if cmd["what"] == "attach" else app_attach_once
            times: list[float] = []
            failures: list[str] = []
            for _ in range(cmd["count"]):
                try:
                    times.append(await op(peer) * 1000)
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    node.close_links_to(peer)
            _emit(event="measured", what=cmd["what"], ms=times, failures=failures)
        elif cmd["cmd"] == "stop":
            break
    for conn in apps:
        conn.close()
    await node.close()
    await ice.wait_closed()


# ---------------------------------------------------------------- the bench


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def event(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            stderr = b""
            if self.proc.stderr is not None:
                stderr = await self.proc.stderr.read()
            raise RuntimeError(f"bench worker exited: {stderr.decode(errors='replace')[-2000:]}")
        event: dict[str, Any] = json.loads(line)
        return event

    async def command(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()


def _provision(directory: Path) -> dict[str, list[str]]:
    from reload_core.security.ca import OverlayCA
    from reload_core.security.certificates import private_key_to_pem, save_certificate

    now = datetime.now(UTC)
    ca = OverlayCA.create(OVERLAY, ec.generate_private_key(ec.SECP256R1()), now)
    root = directory / "root.pem"
    save_certificate(root, ca.certificate_der)
    out = {}
    for name in ("bootstrap", "caller", "callee"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = ca.issue_node_certificate(
            key.public_key(), f"{name}@{OVERLAY}", [secrets.token_bytes(16)], now
        )
        key_path, cert_path = directory / f"{name}-key.pem", directory / f"{name}-cert.pem"
        key_path.write_bytes(private_key_to_pem(key))
        key_path.chmod(0o600)
        save_certificate(cert_path, cert.public_bytes(Encoding.DER))
        out[name] = ["--key", str(key_path), "--cert", str(cert_path), "--root", str(root)]
    return out


async def _run_setup(
    spawn: Any, hosts: dict[str, str], creds: dict[str, list[str]], count: int
) -> dict[str, Any]:
    """Start the three workers through ``spawn(role, argv)`` and measure."""
    worker = [sys.executable, "-m", MODULE, "worker"]
    boot = _Worker(
        await spawn("bootstrap", [*worker, *creds["bootstrap"], "--listen", f"{hosts['bootstrap']}:0"])
    )
    ready = await boot.event(30)
    caller = _Worker(
        await spawn(
            "caller",
            [*worker, *creds["caller"], "--listen", f"{hosts['caller']}:0", "--bootstrap", ready["address"]],
        )
    )
    callee = _Worker(
        await spawn(
            "callee",
            [*worker, *creds["callee"], "--listen", f"{hosts['callee']}:0", "--bootstrap", ready["address"]],
        )
    )
    await caller.event(30)
    callee_ready = await callee.event(30)
    results: dict[str, Any] = {}
    for what in ("attach", "app_attach"):
        await caller.command(cmd="measure", peer=callee_ready["node_id"], what=what, count=count)
        measured = await caller.event(60 + 20 * count)
        results[f"{what}_ms_p50"] = percentile(measured["ms"], 50)
        results[f"{what}_ms_p99"] = percentile(measured["ms"], 99)
        results[f"{what}_failures"] = len(measured["failures"])
        if measured["failures"]:
            results[f"{what}_first_failure"] = measured["failures"][0]
    for w in (caller, callee, boot):
        await w.command(cmd="stop")
    return results


async def _stop(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{path}" if path else root)


async def bench_local(count: int, creds: dict[str, list[str]]) -> dict[str, Any]:
    from aioice.ice import get_host_addresses

    addresses = [a for a in get_host_addresses(use_ipv4=True, use_ipv6=False) if not a.startswith("127.")]
    if not addresses:
        return {"skipped": "no non-loopback IPv4 interface address (ICE leaves loopback out)"}
    host = addresses[0]
    procs: list[asyncio.subprocess.Process] = []

    async def spawn(role: str, argv: list[str]) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(),
        )
        procs.append(proc)
        return proc

    try:
        results = await _run_setup(spawn, {"bootstrap": host, "caller": host, "callee": host}, creds, count)
        results["address"] = host
        return results
    finally:
        for proc in procs:
            if proc.returncode is None and proc.stdin is not None:
                proc.stdin.close()
        await _stop(procs)


async def bench_nat(count: int, creds: dict[str, list[str]]) -> dict[str, Any]:
    from app.bench.nat_lab import LAN1_HOST, LAN2_HOST, PUBLIC_PEER, new_topology, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        return {"skipped": reason}
    topo = new_topology()
    try:
        topo.build()
        namespaces = {"bootstrap": topo.inet, "caller": topo.lan1, "callee": topo.lan2}

        async def spawn(role: str, argv: list[str]) -> asyncio.subprocess.Process:
            return await topo.spawn(
                namespaces[role],
                argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )

        hosts = {"bootstrap": PUBLIC_PEER, "caller": LAN1_HOST, "callee": LAN2_HOST}
        return await _run_setup(spawn, hosts, creds, count)
    finally:
        try:
            await topo.stop_processes()
        finally:
            topo.teardown()


async def bench_attach(count: int, *, nat: bool, workdir: Path) -> dict[str, Any]:
    creds = _provision(workdir)
    results: dict[str, Any] = {"count": count}
    for name, run in (("local", bench_local), ("nat", bench_nat)):
        if name == "nat" and not nat:
            results["nat_skipped"] = "--no-nat"
            continue
        for key, value in (await run(count, creds)).items():
            results[f"{name}_{key}"] = value
    p50 = results.get("local_app_attach_ms_p50", math.nan)
    results["app_attach_target_ms"] = APP_TARGET_MS
    results["app_attach_target_met"] = bool(p50 <= APP_TARGET_MS) if not math.isnan(p50) else False
    return results


def _cmd_attach(args: argparse.Namespace) -> int:
    from app.cli.figures import report

    if args.count < 1:
        raise CliError("--count must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="p2psip-bench-attach-"))
    try:
        results = asyncio.run(bench_attach(args.count, nat=not args.no_nat, workdir=workdir))
    except RuntimeError as exc:
        raise CliError(f"benchmark failed: {exc}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, as_json=args.json)
    failed = any(v for k, v in results.items() if k.endswith("_failures"))
    return 0 if results["app_attach_target_met"] and not failed else 1


def register_bench(sub: Any) -> None:
    parser = sub.add_parser(
        "attach", help="Attach and AppAttach setup time with ICE: on this machine and across NATs"
    )
    parser.add_argument("--count", type=int, default=30, help="Attaches and AppAttaches to time (default 30)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--no-nat", action="store_true", help="skip the setup across NATs in network namespaces"
    )
    parser.set_defaults(func=_cmd_attach)


def _worker_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE} worker")
    parser.add_argument("--key", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--bootstrap")
    asyncio.run(_worker(parser.parse_args(argv)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        _worker_main(sys.argv[2:])
    else:
        sys.exit("usage: p2psip bench attach (this module's own entry point runs a worker)")


__all__ = ["APP_TARGET_MS", "bench_attach", "percentile", "register_bench"]

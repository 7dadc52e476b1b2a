"""Test and benchmark overlays: many RELOAD peers on loopback, over real TLS, in several
processes (RFC 6940 §4, §6, §10, §11).

Provisioning (:func:`provision_overlay`)
    A fresh overlay in a folder: an operator directory (:class:`OverlayDirectory`: the
    overlay's own CA, the configuration signer), one profile per peer whose node
    certificate the CA issued (§11.3), and the signed configuration document (§11.1)
    listing the first peer(s) as ``bootstrap-node``. The bootstrap peers' listening
    sockets are bound (port 0) *before* the configuration is signed, and handed to the
    processes that run those peers, so no other process can take the ports in between.

Running peers
    :class:`OverlayHarness` (an async context manager) runs peers in worker processes
    (``python -m app.bench.overlay_harness worker``), each hosting many :class:`Node` instances
    on one asyncio loop, and ``p2psip peer`` processes (:class:`PeerProcess`), one peer
    each. A control channel (a socketpair, length-prefixed JSON) lets the coordinator
    start/join, leave, abruptly stop and query peers, and run lookups; workers push each
    peer's neighbour tables whenever they change, so :meth:`OverlayHarness.wait_ring`
    waits on events, not by polling. ``p2psip peer`` processes report the same through
    their status lines on stdout.

Cleanup
    Every process started here is killed and reaped when the harness closes, by a
    finalizer if the harness is dropped, and at interpreter exit; a worker also exits when
    its control channel closes and is killed by the kernel when its parent dies
    (PR_SET_PDEATHSIG on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import dataclasses
import datetime as dt
import importlib
import inspect
import json
import logging
import math
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from app.cli.overlay_cmd import OverlayDirectory
from app.peer import bind_listening_socket, build_node, peer_setup
from app.profile import ProfileDescriptor, load_profile, save_profile
from reload_core.config import BootstrapNode, OverlayConfiguration
from reload_core.node.errors import JoinError, RequestError
from reload_core.node.events import NeighborsChanged, NodeEvent, StateChanged
from reload_core.node.node import Node
from reload_core.node.requests import Outcome
from reload_core.node.transport import TlsTransport
from reload_core.security.ca import OverlayCA
from reload_core.security.certificates import KeyKind, generate_private_key
from reload_core.topology.fingers import finger_range
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination, ResourceDestination

log = logging.getLogger("p2psip.harness")

DEFAULT_OVERLAY = "harness.p2psip.test"
HOST = "127.0.0.1"
JOIN_ATTEMPTS = 12


# ================================================================ provisioning


@dataclass(frozen=True, slots=True)
class PeerProfile:
    """One provisioned peer: its profile folder and Node-ID; ``bootstrap`` is the address
    the configuration lists for it, if it is a bootstrap peer."""

    index: int
    directory: Path
    node_id: bytes
    bootstrap: BootstrapNode | None = None


@dataclass
class ProvisionedOverlay:
    """A provisioned overlay. ``sockets`` holds the bound listening sockets of the
    bootstrap peers (by peer index) until a process takes them."""

    root: Path
    name: str
    operator: OverlayDirectory
    configuration: OverlayConfiguration
    document: bytes
    peers: list[PeerProfile]
    key_kind: KeyKind
    sockets: dict[int, socket.socket] = field(default_factory=dict)
    ca: OverlayCA | None = field(default=None, repr=False)

    @property
    def bootstrap_nodes(self) -> tuple[BootstrapNode, ...]:
        return self.configuration.bootstrap_nodes

    def take_socket(self, index: int) -> socket.socket | None:
        return self.sockets.pop(index, None)

    def add_profile(self, user: str, *, key_kind: KeyKind | None = None) -> PeerProfile:
        """Another identity of this overlay, appended to ``peers`` (not a bootstrap peer)."""
        index = len(self.peers)
        peer = _issue_profile(self, index, user, key_kind or self.key_kind, self.root / "extra" / user)
        self.peers.append(peer)
        return peer

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()


def _issue_profile(
    overlay: ProvisionedOverlay, index: int, user: str, key_kind: KeyKind, directory: Path
) -> PeerProfile:
    if overlay.ca is None:
        overlay.ca = overlay.operator.ca()
    ca = overlay.ca
    key = generate_private_key(key_kind)
    node_id = secrets.token_bytes(overlay.configuration.node_id_length)
    user_name = f"{user}@{overlay.name}"
    cert = ca.issue_node_certificate(key.public_key(), user_name, [node_id], dt.datetime.now(dt.UTC))
    save_profile(
        directory,
        ProfileDescriptor(overlay=overlay.name, user_name=user_name, node_ids=(node_id,), self_signed=False),
        configuration=overlay.document,
        private_key=key,
        certificate=cert.public_bytes(Encoding.DER),
        root_certs=(ca.certificate_der,),
    )
    return PeerProfile(index, directory, node_id)


def provision_overlay(
    root: str | os.PathLike[str],
    peers: int,
    *,
    bootstrap_peers: int = 1,
    name: str = DEFAULT_OVERLAY,
    host: str = HOST,
    key_kind: KeyKind = "ecdsa",
    **configuration: Any,
) -> ProvisionedOverlay:
    """A new overlay of ``peers`` peer profiles in ``root`` (see the module docstring).

    ``configuration`` replaces fields of the :class:`OverlayConfiguration` (e.g.
    ``chord_update_interval``); ``key_kind`` is the node keys' type (RSA is the mandatory
    signature algorithm, §6.3.4; ECDSA P-256 keys are much faster to make)."""
    if not 1 <= bootstrap_peers <= peers:
        raise ValueError("need 1 <= bootstrap_peers <= peers")
    root_path = Path(root)
    sockets: dict[int, socket.socket] = {}
    try:
        for index in range(bootstrap_peers):
            # Bound, not listening: a peer dialing a bootstrap peer that is not running
            # yet is refused at once instead of waiting for a handshake. No SO_REUSEADDR:
            # nobody else may bind the port meanwhile (peers claim bootstrap addresses).
            sockets[index] = bind_listening_socket(host, listen=False, reuse_address=False)
        bootstrap = [BootstrapNode(host, s.getsockname()[1]) for s in sockets.values()]
        operator = OverlayDirectory.create(root_path / "operator", name, bootstrap=bootstrap)
        config = operator.configuration()
        if configuration:
            config = dataclasses.replace(config, sequence=config.sequence + 1, **configuration)
            operator.publish(config)
        document = operator.config_path.read_bytes()
        overlay = ProvisionedOverlay(root_path, name, operator, config, document, [], key_kind, sockets)
        for index in range(peers):
            peer = _issue_profile(
                overlay, index, f"peer{index}", key_kind, root_path / "peers" / f"peer-{index:04d}"
            )
            if index < bootstrap_peers:
                peer = dataclasses.replace(peer, bootstrap=bootstrap[index])
            overlay.peers.append(peer)
        return overlay
    except BaseException:
        for sock in sockets.values():
            sock.close()
        raise


# ================================================================ ring state


@dataclass(slots=True)
class PeerView:
    """What the coordinator knows of one peer's Neighbor Table (§10.1)."""

    index: int
    node_id: bytes
    state: str = "idle"
    predecessors: tuple[bytes, ...] = ()
    successors: tuple[bytes, ...] = ()
    fingers: int = 0
    neighbor_count: int = 3
    address: str | None = None
    finger_gaps: tuple[tuple[bytes, bytes], ...] | None = None
    """Empty Finger Table ranges beyond the successors (None: not reported)."""


def _expected_neighbors(ring: Sequence[bytes], position: int, count: int) -> tuple[list[bytes], list[bytes]]:
    n = len(ring)
    k = min(count, n - 1)
    successors = [ring[(position + 1 + i) % n] for i in range(k)]
    predecessors = [ring[(position - 1 - i) % n] for i in range(k)]
    return successors, predecessors


def ring_problems(peers: Iterable[PeerView]) -> list[str]:
    """Every successor and predecessor pointer of ``peers`` checked against their sorted
    Node-IDs (§10.1: the successors are the next peers clockwise, the predecessors the
    previous ones, as many as the neighbour tables hold, ``neighbor_count`` each or all
    the other peers when there are fewer). Empty when the ring is right."""
    views = sorted(peers, key=lambda p: p.node_id)
    ring = [p.node_id for p in views]
    problems: list[str] = []
    for position, view in enumerate(views):
        who = f"peer {view.index} ({view.node_id.hex()[:8]})"
        if len(views) == 1 and view.state == "disconnected":
            pass  # the last peer standing has lost every other (§10.7.1) and serves alone
        elif view.state != "joined":
            problems.append(f"{who} is {view.state}")
            continue
        successors, predecessors = _expected_neighbors(ring, position, view.neighbor_count)
        if list(view.successors) != successors:
            problems.append(f"{who} successors {_short(view.successors)}, expected {_short(successors)}")
        if list(view.predecessors) != predecessors:
            problems.append(
                f"{who} predecessors {_short(view.predecessors)}, expected {_short(predecessors)}"
            )
    return problems


def finger_problems(peers: Iterable[PeerView]) -> list[str]:
    """Finger Table entries still empty although a peer lies in their range (§10.7.4.2);
    empty when every reachable entry is filled."""
    views = list(peers)
    ring = sorted(p.node_id for p in views)
    problems: list[str] = []
    for view in views:
        for low, high in view.finger_gaps or ():
            if any(_in_range(n, low, high) for n in ring):
                problems.append(f"peer {view.index} has no finger in [{low.hex()[:8]}, {high.hex()[:8]}]")
    return problems


def _in_range(node_id: bytes, low: bytes, high: bytes) -> bool:
    """``node_id`` in the inclusive ring interval [low, high] (which may wrap)."""
    return low <= node_id <= high if low <= high else node_id >= low or node_id <= high


def _short(ids: Iterable[bytes]) -> str:
    return "[" + ",".join(i.hex()[:8] for i in ids) + "]"


def responsible_peer(ring: Sequence[bytes], resource_id: bytes) -> bytes:
    """The peer responsible for ``resource_id`` in CHORD-RELOAD: the first Node-ID at or
    after it clockwise (a peer owns (predecessor, itself], §10.1)."""
    ordered = sorted(ring)
    for node_id in ordered:
        if node_id >= resource_id:
            return node_id
    return ordered[0]


class RingView:
    """Peer views by index, with an event set whenever one changes."""

    def __init__(self) -> None:
        self.peers: dict[int, PeerView] = {}
        self._changed = asyncio.Event()

    def update(self, index: int, node_id: bytes, **changes: Any) -> PeerView:
        view = self.peers.get(index)
        if view is None or view.node_id != node_id:
            view = self.peers[index] = PeerView(index, node_id)
        for key, value in changes.items():
            setattr(view, key, value)
        self._changed.set()
        return view

    def forget(self, index: int) -> None:
        self.peers.pop(index, None)
        self._changed.set()

    def touch(self) -> None:
        self._changed.set()

    async def wait_for(self, check: Callable[[], list[str]], timeout: float) -> None:
        """Until ``check()`` returns no problems, re-checking after each change; raises
        TimeoutError listing the problems left after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            problems = check()
            if not problems:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


# ================================================================ processes

# Runs first in every process the harness starts: asks the kernel to kill it when the
# harness dies (PR_SET_PDEATHSIG survives execve), hands a listening socket over the way
# systemd socket activation does (fd 3, LISTEN_FDS, LISTEN_PID), then becomes the real
# program. Kept free of imports beyond the standard library so that it starts fast.
_LAUNCHER = r"""
import ctypes, os, signal, sys
parent, fd, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
except (OSError, AttributeError):
    pass
if os.getppid() != parent:
    sys.exit(1)
if fd >= 0:
    if fd != 3:
        os.dup2(fd, 3)
        os.close(fd)
    os.set_inheritable(3, True)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(argv[0], argv)
"""

_children: set[int] = set()
"""Every process started here and not reaped yet (for the atexit handler)."""


def _kill(pids: set[int], *, reap: bool) -> None:
    """SIGKILL ``pids``; with ``reap`` also wait for them (at exit, when no event loop
    reaps children any more)."""
    for pid in list(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if reap:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)
            _children.discard(pid)
        pids.discard(pid)


atexit.register(_kill, _children, reap=True)


async def _spawn(
    argv: Sequence[str],
    owner: set[int],
    *,
    listen_socket: socket.socket | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    pass_fds: Sequence[int] = (),
) -> asyncio.subprocess.Process:
    fds = list(pass_fds)
    fd = -1
    if listen_socket is not None:
        fd = listen_socket.fileno()
        fds.append(fd)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-S",
        "-c",
        _LAUNCHER,
        str(os.getpid()),
        str(fd),
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        pass_fds=fds,
        env=_child_environment(),
    )
    _children.add(proc.pid)
    owner.add(proc.pid)
    return proc


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(name, None)
    # The children import this project as the parent does, wherever it is run from.
    project = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH", "")) if p)
    return env


async def _reap(proc: asyncio.subprocess.Process, owner: set[int], timeout: float) -> int:
    """Wait for ``proc`` to end, SIGKILL it after ``timeout``; its exit status."""
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        code = await proc.wait()
    _forget(proc, owner)
    return code


def _forget(proc: asyncio.subprocess.Process, owner: set[int]) -> None:
    _children.discard(proc.pid)
    owner.discard(proc.pid)


# ---------------------------------------------------------------- control channel framing

_LENGTH = struct.Struct(">I")


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    header = await reader.readexactly(_LENGTH.size)
    return json.loads(await reader.readexactly(_LENGTH.unpack(header)[0]))


def _write_frame(writer: asyncio.StreamWriter, obj: Any) -> None:
    data = json.dumps(obj, separators=(",", ":")).encode()
    writer.write(_LENGTH.pack(len(data)) + data)


class WorkerError(Exception):
    """A worker process answered an operation with an error, or died."""


def run_in_workdir(
    prefix: str, bench: Callable[[Path], Coroutine[Any, Any, dict[str, Any]]]
) -> dict[str, Any]:
    """``bench(workdir)`` on a new event loop, in a temporary folder removed afterwards: what
    every ``p2psip bench`` command over a harness does. A harness that fails (a worker
    gone, a step that timed out) is one line for the user, not a traceback."""
    from app.cli import CliError

    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return asyncio.run(bench(workdir))
    except (WorkerError, TimeoutError) as exc:
        raise CliError(f"benchmark failed: {exc or type(exc).__name__}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class WorkerProcess:
    """A process hosting many peers on one asyncio loop, driven over a control channel."""

    def __init__(self, harness: OverlayHarness, name: str) -> None:
        self.harness = harness
        self.name = name
        self.proc: asyncio.subprocess.Process | None = None
        self.indices: set[int] = set()
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._reader_task: asyncio.Task[None] | None = None
        self.dead = False

    async def start(self, sockets: dict[int, socket.socket], log_level: str) -> None:
        parent_end, child_end = socket.socketpair()
        argv = [
            sys.executable,
            "-m",
            "app.bench.overlay_harness",
            "worker",
            "--control-fd",
            str(child_end.fileno()),
        ]
        argv += ["--log-level", log_level]
        for index, sock in sockets.items():
            argv += ["--socket", f"{index}={sock.fileno()}"]
        try:
            self.proc = await _spawn(
                argv,
                self.harness._pids,
                pass_fds=[child_end.fileno(), *(s.fileno() for s in sockets.values())],
            )
        finally:
            child_end.close()
            for sock in sockets.values():
                sock.close()  # the worker has its own copy now
        reader, self._writer = await asyncio.open_unix_connection(sock=parent_end)
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                msg = await _read_frame(reader)
                if "event" in msg:
                    self.harness._worker_event(msg)
                    continue
                future = self._pending.pop(msg["id"], None)
                if future is None or future.done():
                    continue
                if msg["ok"]:
                    future.set_result(msg["result"])
                else:
                    future.set_exception(WorkerError(f"{self.name}: {msg['error']}"))
        except (asyncio.IncompleteReadError, ConnectionError, json.JSONDecodeError):
            pass
        finally:
            self.dead = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(WorkerError(f"{self.name} exited"))
            self._pending.clear()
            self.harness._worker_gone(self)

    async def call(self, op: str, **args: Any) -> Any:
        if self.dead or self._writer is None:
            raise WorkerError(f"{self.name} is not running")
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        _write_frame(self._writer, {"id": self._next_id, "op": op, "args": args})
        await self._writer.drain()
        return await future

    def kill(self) -> None:
        """SIGKILL: every peer it hosts dies without a word (no Leave, no close_notify)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    async def close(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if not self.dead:
            with contextlib.suppress(WorkerError, ConnectionError):
                await asyncio.wait_for(self.call("stop"), timeout)
        if self._writer is not None:
            self._writer.close()
        await _reap(self.proc, self.harness._pids, timeout)
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task


class PeerProcess:
    """One ``p2psip peer`` process; its stdout status lines feed the harness's ring view."""

    def __init__(self, harness: OverlayHarness, peer: PeerProfile) -> None:
        self.harness = harness
        self.peer = peer
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self.lines: list[str] = []
        self._reader_task: asyncio.Task[None] | None = None
        self.address: str | None = None
        self.log_path: Path | None = None
        """Where its standard error (its log) goes, when the harness has a ``log_dir``."""

    async def start(self, extra_args: Sequence[str] = (), log_level: str = "warning") -> None:
        sock = self.harness.overlay.take_socket(self.peer.index)
        argv = [sys.executable, "-m", "app", "peer", "--profile", str(self.peer.directory)]
        argv += ["--log-level", log_level, *extra_args]
        log_file = None
        if self.harness.log_dir is not None:
            self.log_path = (
                self.harness.log_dir / f"peer-{self.peer.index}-{len(self.harness._all_processes)}.log"
            )
            log_file = self.log_path.open("ab")
        try:
            self.proc = await _spawn(
                argv,
                self.harness._pids,
                listen_socket=sock,
                stdout=subprocess.PIPE,
                stderr=log_file.fileno() if log_file is not None else None,
            )
        finally:
            if log_file is not None:
                log_file.close()  # the child has its own descriptor
            if sock is not None:
                sock.close()
        assert self.proc.stdout is not None
        self._reader_task = asyncio.get_running_loop().create_task(self._read(self.proc.stdout))

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        view = self.harness.view
        index, node_id = self.peer.index, self.peer.node_id
        async for raw in stdout:
            line = raw.decode("utf-8", "replace").strip()
            self.lines.append(line)
            event, fields = parse_status_line(line)
            if event == "ready":
                self.address = fields.get("listen")
                view.update(index, node_id, state=fields.get("state", "joined"), address=self.address)
                if not self.ready.done():
                    self.ready.set_result(fields)
            elif event == "neighbors":
                view.update(
                    index,
                    node_id,
                    state=fields.get("state", view.peers[index].state if index in view.peers else "joining"),
                    predecessors=_parse_ids(fields.get("predecessors", "-")),
                    successors=_parse_ids(fields.get("successors", "-")),
                    fingers=int(fields.get("fingers", "0")),
                )
            elif event == "state":
                view.update(index, node_id, state=fields.get("state", "?"))
        if not self.ready.done():
            self.ready.set_exception(WorkerError(f"peer {index} exited before it was ready"))
            self.ready.exception()  # whoever waits gets it from wait_ready; nobody need
        view.update(index, node_id, state="exited")

    async def wait_ready(self, timeout: float = 30.0) -> dict[str, str]:
        return await asyncio.wait_for(asyncio.shield(self.ready), timeout)

    def send_signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        _forget(self.proc, self.harness._pids)
        if self._reader_task is not None:
            await self._reader_task
        return code

    async def close(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        self.send_signal(signal.SIGKILL)
        await _reap(self.proc, self.harness._pids, timeout)
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task


def parse_status_line(line: str) -> tuple[str, dict[str, str]]:
    """``event key=value ...`` (``p2psip peer``'s stdout) as (event, fields)."""
    words = line.split()
    if not words:
        return "", {}
    fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    return words[0], fields


def _parse_ids(text: str) -> tuple[bytes, ...]:
    return () if text in ("", "-") else tuple(bytes.fromhex(h) for h in text.split(","))


# ================================================================ the coordinator


@dataclass(frozen=True, slots=True)
class LookupResult:
    """One routed request: from peer ``source`` to ``target``."""

    source: int
    target: bytes
    ok: bool
    responder: bytes | None = None
    hops: int = 0
    latency: float = 0.0
    error: str = ""


@dataclass(frozen=True, slots=True)
class LookupStats:
    lookups: int
    failed: int
    hops_mean: float
    hops_p99: float
    latency_ms_p50: float
    latency_ms_p99: float
    failures: tuple[str, ...] = ()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), nearest rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class OverlayHarness:
    """Peers of a :class:`ProvisionedOverlay` in worker processes and ``p2psip peer``
    processes (see the module docstring). Use as ``async with``."""

    def __init__(
        self,
        overlay: ProvisionedOverlay,
        *,
        workers: int = 2,
        log_level: str = "warning",
        chord: Mapping[str, float] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self.overlay = overlay
        self.log_level = log_level
        self.log_dir = log_dir
        """When set, each ``p2psip peer`` process's standard error goes to a file there."""
        self.view = RingView()
        self.workers: list[WorkerProcess] = []
        self.processes: dict[int, PeerProcess] = {}
        """The latest ``p2psip peer`` process of each peer index."""
        self._all_processes: list[PeerProcess] = []
        self.host_of: dict[int, WorkerProcess] = {}
        self.members: set[int] = set()
        """Peers that should be in the ring now (started, not left or killed)."""
        self._worker_count = workers
        self.chord = dict(chord or {})
        """ChordConfig fields that worker-hosted peers change from what the configuration
        gives (local policy, e.g. ``partition_check_interval``)."""
        self._pids: set[int] = set()
        """This harness's processes not reaped yet."""
        self._finalizer = weakref.finalize(self, _kill, self._pids, reap=False)

    async def __aenter__(self) -> OverlayHarness:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop every process (workers first asked to stop, then killed) and reap them."""
        # Peers about to lose all their neighbours at once need not tell us so.
        await asyncio.gather(*(w.call("quiet") for w in self.workers if not w.dead), return_exceptions=True)
        await asyncio.gather(
            *(w.close() for w in self.workers),
            *(p.close() for p in self._all_processes),
            return_exceptions=True,
        )
        self.overlay.close()
        _kill(self._pids, reap=False)

    # -- workers

    async def add_worker(self, indices: Iterable[int] = ()) -> WorkerProcess:
        """A new worker process; the bootstrap sockets of ``indices`` go with it."""
        worker = WorkerProcess(self, f"worker-{len(self.workers)}")
        self.workers.append(worker)
        sockets = {i: s for i in indices if (s := self.overlay.take_socket(i)) is not None}
        await worker.start(sockets, self.log_level)
        return worker

    async def start_workers(self) -> None:
        """Start the shared workers (the first takes the bootstrap peers' sockets)."""
        while len(self.workers) < self._worker_count:
            first = not self.workers
            await self.add_worker(
                [p.index for p in self.overlay.peers if p.bootstrap is not None] if first else ()
            )

    def _bootstrap_args(self) -> list[list[Any]]:
        return [[b.address, b.port] for b in self.overlay.bootstrap_nodes]

    async def start_peer(
        self, index: int, worker: WorkerProcess | None = None, *, found: bool | None = None
    ) -> PeerView:
        """Start peer ``index`` in ``worker`` (default: the next of the shared workers) and
        join it (the first bootstrap peer founds the ring, §10.5)."""
        await self.start_workers()
        if worker is None:
            shared = self.workers[: self._worker_count]
            worker = shared[index % len(shared)]
        peer = self.overlay.peers[index]
        if found is None:
            found = index == 0
        self.host_of[index] = worker
        worker.indices.add(index)
        try:
            state = await worker.call(
                "start",
                index=index,
                profile=str(peer.directory),
                found=found,
                bootstrap=self._bootstrap_args(),
                chord=self.chord,
            )
        except WorkerError:
            self.view.forget(index)
            raise
        self.members.add(index)
        self._apply_state(state)
        return self.view.peers[index]

    async def start_peers(
        self, indices: Iterable[int], *, concurrency: int = 4, keep_going: bool = False
    ) -> list[int]:
        """Start peers, ``concurrency`` joins at a time (peer 0, the founder, first and
        alone); returns those that joined. A failed join raises, unless ``keep_going``."""
        todo = list(indices)
        joined: list[int] = []
        if 0 in todo and 0 not in self.members:
            todo.remove(0)
            await self.start_peer(0)
            joined.append(0)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with semaphore:
                try:
                    await self.start_peer(index)
                except WorkerError as exc:
                    if not keep_going:
                        raise
                    log.warning("peer %d did not join: %s", index, exc)
                    return
                joined.append(index)

        await asyncio.gather(*(one(i) for i in todo))
        return sorted(joined)

    async def start_dedicated_peer(self, index: int) -> WorkerProcess:
        """Peer ``index`` alone in a worker of its own (so that it can be SIGKILLed)."""
        worker = await self.add_worker([index])
        await self.start_peer(index, worker, found=index == 0 and not self.members)
        return worker

    async def leave(self, index: int) -> None:
        """Graceful leave (§10.9)."""
        self.members.discard(index)
        await self.host_of[index].call("leave", index=index)
        self.view.forget(index)

    async def abort(self, index: int) -> None:
        """Close one peer abruptly: its links dropped, no Leave sent."""
        self.members.discard(index)
        await self.host_of[index].call("abort", index=index)
        self.view.forget(index)

    async def call_peer(self, index: int, target: str, **kwargs: Any) -> Any:
        """Run ``module:function(node, **kwargs)`` on worker-hosted peer ``index``, in its
        worker (see ``_Worker.op_call``); the function's JSON-able result."""
        return await self.host_of[index].call("call", target=target, index=index, kwargs=kwargs)

    def kill_worker(self, worker: WorkerProcess) -> None:
        """SIGKILL a worker; its peers leave the expected ring."""
        for index in worker.indices:
            self.members.discard(index)
            self.view.forget(index)
        worker.kill()

    def _apply_state(self, state: dict[str, Any]) -> None:
        self.view.update(
            state["index"],
            bytes.fromhex(state["node_id"]),
            state=state["state"],
            predecessors=tuple(bytes.fromhex(h) for h in state["predecessors"]),
            successors=tuple(bytes.fromhex(h) for h in state["successors"]),
            fingers=state["fingers"],
            neighbor_count=state["neighbor_count"],
            address=state["address"],
            finger_gaps=tuple((bytes.fromhex(lo), bytes.fromhex(hi)) for lo, hi in state["finger_gaps"]),
        )

    def _worker_event(self, msg: dict[str, Any]) -> None:
        if msg["event"] == "nodes":
            for state in msg["nodes"]:
                if state["index"] in self.members or state["index"] in self.view.peers:
                    self._apply_state(state)

    def _worker_gone(self, worker: WorkerProcess) -> None:
        for index in worker.indices:
            if index in self.view.peers:
                self.view.update(index, self.view.peers[index].node_id, state="exited")

    # -- p2psip peer processes

    async def start_process(
        self, index: int, extra_args: Sequence[str] = (), *, wait: bool = True
    ) -> PeerProcess:
        """Run peer ``index`` as a ``p2psip peer`` process (a bootstrap peer gets its bound
        socket through socket activation)."""
        proc = PeerProcess(self, self.overlay.peers[index])
        self.processes[index] = proc
        self._all_processes.append(proc)
        self.members.add(index)
        await proc.start(extra_args, self.log_level)
        if wait:
            await proc.wait_ready()
        return proc

    def process_gone(self, index: int) -> None:
        """Peer process ``index`` was stopped on purpose: it leaves the expected ring."""
        self.members.discard(index)
        self.view.forget(index)

    # -- observing

    def ring_problems(self) -> list[str]:
        missing = [f"peer {i} has not reported" for i in sorted(self.members) if i not in self.view.peers]
        return missing + ring_problems(self.view.peers[i] for i in self.members if i in self.view.peers)

    async def wait_ring(self, timeout: float = 60.0) -> float:
        """Until every member's successors and predecessors are right; the seconds it took."""
        start = time.monotonic()
        await self.view.wait_for(self.ring_problems, timeout)
        return time.monotonic() - start

    def finger_problems(self) -> list[str]:
        return finger_problems(self.view.peers[i] for i in self.members if i in self.view.peers)

    async def wait_fingers(self, timeout: float = 60.0) -> float:
        """Until every member's Finger Table holds a peer for each range that has one
        (§10.7.4.2: the finger searches fill them); the seconds it took."""
        start = time.monotonic()
        await self.view.wait_for(lambda: self.ring_problems() + self.finger_problems(), timeout)
        return time.monotonic() - start

    def ring(self) -> list[bytes]:
        return sorted(self.view.peers[i].node_id for i in self.members)

    async def state(self) -> list[dict[str, Any]]:
        """Every worker-hosted peer's state, asked now."""
        results = await asyncio.gather(*(w.call("state") for w in self.workers if not w.dead))
        return [s for states in results for s in states]

    async def lookups(
        self,
        count: int,
        *,
        rng: random.Random | None = None,
        targets: Sequence[tuple[int, bytes, bool]] | None = None,
        concurrency: int = 1,
    ) -> list[LookupResult]:
        """Route requests (Ping, §6.5.3) from worker-hosted members: ``count`` to random
        Resource-IDs from random peers, or the given (source, target, is_resource) list.
        Each worker runs its share ``concurrency`` at a time; the workers run at once."""
        rng = rng or random.Random()
        sources = sorted(i for i in self.members if i in self.host_of and not self.host_of[i].dead)
        if targets is None:
            length = self.overlay.configuration.node_id_length
            targets = [(rng.choice(sources), rng.randbytes(length), True) for _ in range(count)]
        by_worker: dict[WorkerProcess, list[list[Any]]] = {}
        for source, target, resource in targets:
            by_worker.setdefault(self.host_of[source], []).append([source, target.hex(), resource])
        answers = await asyncio.gather(
            *(w.call("lookups", items=items, concurrency=concurrency) for w, items in by_worker.items())
        )
        return [
            LookupResult(
                source=r["source"],
                target=bytes.fromhex(r["target"]),
                ok=r["ok"],
                responder=bytes.fromhex(r["responder"]) if r.get("responder") else None,
                hops=r.get("hops", 0),
                latency=r.get("latency", 0.0),
                error=r.get("error", ""),
            )
            for results in answers
            for r in results
        ]

    def lookup_stats(self, results: Sequence[LookupResult]) -> LookupStats:
        """Failed = an error, or an answer from a peer other than the responsible one."""
        ring = self.ring()
        failures: list[str] = []
        ok: list[LookupResult] = []
        for r in results:
            expected = responsible_peer(ring, r.target)
            if not r.ok:
                failures.append(f"from peer {r.source} to {r.target.hex()[:8]}: {r.error}")
            elif r.responder != expected:
                failures.append(
                    f"from peer {r.source}: {r.target.hex()[:8]} answered by "
                    f"{(r.responder or b'').hex()[:8]}, responsible is {expected.hex()[:8]}"
                )
            else:
                ok.append(r)
        hops = [float(r.hops) for r in ok]
        latencies = [r.latency * 1000 for r in ok]
        return LookupStats(
            lookups=len(results),
            failed=len(failures),
            hops_mean=statistics.fmean(hops) if hops else math.nan,
            hops_p99=percentile(hops, 99),
            latency_ms_p50=percentile(latencies, 50),
            latency_ms_p99=percentile(latencies, 99),
            failures=tuple(failures),
        )

    async def rss_bytes(self) -> tuple[int, int]:
        """(resident memory of all worker processes, peers they host)."""
        results = await asyncio.gather(*(w.call("rss") for w in self.workers if not w.dead))
        return sum(r["rss"] for r in results), sum(r["peers"] for r in results)


# ================================================================ the worker process


def _finger_gaps(node: Node) -> list[list[str]]:
    """The ranges (low, high, inclusive) of the Finger Table entries that are empty and
    not covered by the successor list (§10.7.4.2): a peer there should become a finger."""
    topology = node.topology
    me = topology.node_id
    successors = topology.successors
    covered = (
        successors[-1]
        if len(successors) >= node.settings.chord.neighbor_count
        else me.add((1 << me.bits) - 1)
    )
    gaps = []
    for i in topology.finger_table.missing(covered):
        low, high = finger_range(me, i)
        gaps.append([low.to_bytes().hex(), high.to_bytes().hex()])
    return gaps


def _node_state(index: int, node: Node) -> dict[str, Any]:
    address = node.address
    return {
        "finger_gaps": _finger_gaps(node),
        "index": index,
        "node_id": node.node_id.hex(),
        "state": node.state,
        "predecessors": [n.hex() for n in node.predecessors],
        "successors": [n.hex() for n in node.successors],
        "fingers": len(node.fingers),
        "neighbor_count": node.settings.chord.neighbor_count,
        "address": f"{address.addr}:{address.port}" if address is not None else None,
    }


def _rss() -> int:
    """This process's resident set size in bytes (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _Worker:
    """The worker side of the control channel: hosts peers, answers operations."""

    def __init__(self, writer: asyncio.StreamWriter, sockets: dict[int, socket.socket]) -> None:
        self._writer = writer
        self._sockets = sockets
        self.nodes: dict[int, Node] = {}
        self._dirty: set[int] = set()
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        reading = loop.create_task(self._read(reader))
        await self._stopping.wait()
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        await asyncio.gather(*(n.close() for n in self.nodes.values()), return_exceptions=True)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                msg = await _read_frame(reader)
                task = asyncio.get_running_loop().create_task(self._handle(msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            self._stopping.set()  # the coordinator is gone

    def _send(self, obj: Any) -> None:
        if not self._writer.is_closing():
            _write_frame(self._writer, obj)

    async def _handle(self, msg: dict[str, Any]) -> None:
        try:
            result = await getattr(self, "op_" + msg["op"])(**msg["args"])
        except Exception as exc:
            log.debug("operation %s failed", msg["op"], exc_info=True)
            self._send({"id": msg["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"})
        else:
            self._send({"id": msg["id"], "ok": True, "result": result})
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    # -- events

    def _watch(self, index: int, node: Node) -> None:
        def changed(event: NodeEvent) -> None:
            if isinstance(event, NeighborsChanged | StateChanged):
                self._dirty.add(index)
                if not self._flush_scheduled:
                    self._flush_scheduled = True
                    asyncio.get_running_loop().call_soon(self._flush)

        node.add_listener(changed)

    def _flush(self) -> None:
        self._flush_scheduled = False
        states = [_node_state(i, self.nodes[i]) for i in sorted(self._dirty) if i in self.nodes]
        self._dirty.clear()
        if states:
            self._send({"event": "nodes", "nodes": states})

    # -- operations

    async def op_start(
        self, index: int, profile: str, found: bool, bootstrap: list[list[Any]], chord: dict[str, Any]
    ) -> dict[str, Any]:
        setup = peer_setup(load_profile(profile))
        if chord:
            settings = dataclasses.replace(
                setup.settings, chord=dataclasses.replace(setup.settings.chord, **chord)
            )
            setup = dataclasses.replace(setup, settings=settings)
        node = build_node(setup, sock=self._sockets.pop(index, None))
        self.nodes[index] = node
        self._watch(index, node)
        await node.start()
        if found:
            node.start_alone()
        else:
            addresses = [IpAddressPort(host, port) for host, port in bootstrap]
            others = [a for a in addresses if a != node.address]
            await self._join(node, others)
        return _node_state(index, node)

    @staticmethod
    async def _join(node: Node, bootstrap: list[IpAddressPort]) -> None:
        """Join, trying again when refused: a peer that joined next to us meanwhile can
        make the admitting peer no longer responsible for our Node-ID (§10.5)."""
        for attempt in range(JOIN_ATTEMPTS):
            try:
                await node.join(bootstrap)
                return
            except JoinError as exc:
                if attempt == JOIN_ATTEMPTS - 1:
                    raise
                log.info("join attempt %d failed (%s); trying again", attempt + 1, exc)
                # Back off (with jitter) so that racing joiners stop meeting each other.
                await asyncio.sleep(random.uniform(0.5, 1.0) * min(2.0, 0.1 * 2**attempt))

    async def op_leave(self, index: int) -> None:
        node = self.nodes.pop(index)
        await node.leave()

    async def op_abort(self, index: int) -> None:
        node = self.nodes.pop(index)
        transport = node.transport
        if isinstance(transport, TlsTransport):
            for link in transport.endpoint.links:
                link.abort()
        await node.close()

    async def op_state(self) -> list[dict[str, Any]]:
        return [_node_state(i, n) for i, n in sorted(self.nodes.items())]

    async def op_lookups(self, items: list[list[Any]], concurrency: int = 1) -> list[dict[str, Any]]:
        semaphore = asyncio.Semaphore(max(1, concurrency))

        async def one(source: int, target_hex: str, resource: bool) -> dict[str, Any]:
            async with semaphore:
                return await self._lookup(source, bytes.fromhex(target_hex), resource)

        return list(await asyncio.gather(*(one(*item) for item in items)))

    async def _lookup(self, source: int, target: bytes, resource: bool) -> dict[str, Any]:
        node = self.nodes[source]
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Outcome] = loop.create_future()
        destination = ResourceDestination(target) if resource else NodeDestination(target)
        started = loop.time()

        def finished(outcome: Outcome) -> None:
            if not done.done():
                done.set_result(outcome)

        node.send_request((destination,), MessageCode.ping_req, PingReq(), finished)
        outcome = await done
        latency = loop.time() - started
        result: dict[str, Any] = {"source": source, "target": target.hex(), "latency": latency}
        if isinstance(outcome, RequestError):
            result.update(ok=False, error=str(outcome))
            return result
        responder = outcome.signer_node_id
        # The answer retraces the request's path (§6.2.2), one Via List entry per
        # intermediate peer, so the path had len(via_list) + 1 links.
        hops = 0 if responder == node.node_id else len(outcome.message.forwarding_header.via_list) + 1
        result.update(ok=True, responder=responder.hex(), hops=hops)
        return result

    async def op_call(self, target: str, index: int, kwargs: dict[str, Any]) -> Any:
        """``target`` is ``module:function``: ``function(node, **kwargs)`` runs on peer
        ``index`` (awaited if a coroutine), so that a benchmark can add operations of its
        own (e.g. storage) without this module knowing them."""
        module, _, name = target.partition(":")
        result = getattr(importlib.import_module(module), name)(self.nodes[index], **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def op_rss(self) -> dict[str, int]:
        return {"rss": _rss(), "peers": len(self.nodes)}

    async def op_quiet(self) -> None:
        logging.getLogger().setLevel(logging.CRITICAL)

    async def op_stop(self) -> None:
        self._stopping.set()


async def _worker_main(control_fd: int, sockets: dict[int, int]) -> None:
    control = socket.socket(fileno=control_fd)
    listening = {index: socket.socket(fileno=fd) for index, fd in sockets.items()}
    reader, writer = await asyncio.open_unix_connection(sock=control)
    worker = _Worker(writer, listening)
    try:
        await worker.serve(reader)
    finally:
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench.overlay_harness")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="host peers for a harness (started by OverlayHarness)")
    worker.add_argument("--control-fd", type=int, required=True)
    worker.add_argument("--socket", action="append", default=[], metavar="INDEX=FD")
    worker.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s [pid {os.getpid()}] %(name)s: %(message)s",
    )
    sockets = {int(i): int(fd) for i, _, fd in (s.partition("=") for s in args.socket)}
    asyncio.run(_worker_main(args.control_fd, sockets))
    return 0


if __name__ == "__main__":
    sys.exit(main())

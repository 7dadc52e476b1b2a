"""``p2psip peer``: a headless, always-on RELOAD peer (RFC 6940 §4.2, §10, §11.4).

It runs the identity of a profile folder (``p2psip enroll``): its key, node certificate
and the overlay's signed configuration document. It listens for TLS/TCP links (§6.6.5):

- at ``--listen HOST:PORT`` if given;
- else at a socket handed over by systemd-style socket activation (``LISTEN_FDS``);
- else, when the configuration lists a ``bootstrap-node`` address of this machine that is
  free, there: the peer is that bootstrap peer (§11.1, §11.4);
- else at an OS-picked port of the address this machine reaches the first bootstrap
  node from.

It joins the overlay through the bootstrap nodes (``--bootstrap`` replaces the
configuration's list), leaving its own address out (§10.5). The first bootstrap peer of
the configuration starts a new ring when no other bootstrap node admits it; any other
peer keeps trying, with backoff, until it gets in.

Standard output carries one line per event, ``key=value`` words after the event name, for
tests and harnesses; the first is the ready line::

    ready node_id=<hex> listen=<host>:<port> state=joined
    neighbors node_id=<hex> predecessors=<hex>,<hex> successors=<hex>,... fingers=<count> state=joined
    state node_id=<hex> state=<joining|joined|disconnected|left|closed|stopped>

(``-`` is an empty list; ``disconnected`` means every Routing Table peer was lost, §10.7.1.)

The log (joins, leaves, neighbour changes, failures) goes to standard error. SIGTERM and
SIGINT make the peer leave gracefully (§10.9: Leave to its neighbours, then close); the
exit status is then 0. A second signal closes at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.cli import CliError
from app.cli.overlay_cmd import parse_bootstrap
from app.peer import (
    PeerSetup,
    PeerSetupError,
    bind_listening_socket,
    build_node,
    inherited_listening_socket,
    peer_setup,
)
from app.profile import ProfileError, default_profile_dir, load_profile
from reload_core.node.errors import JoinError, NodeClosedError
from reload_core.node.events import ConnectionChanged, NeighborsChanged, NodeEvent, StateChanged
from reload_core.node.node import Node
from reload_core.wire.addresses import IpAddressPort

log = logging.getLogger("p2psip.peer")

JOIN_RETRY_FIRST = 1.0
JOIN_RETRY_MAX = 30.0
LEAVE_TIMEOUT = 10.0


def format_address(address: IpAddressPort) -> str:
    return f"[{address.addr}]:{address.port}" if ":" in address.addr else f"{address.addr}:{address.port}"


def _ids(ids: Sequence[bytes]) -> str:
    return ",".join(i.hex() for i in ids) or "-"


def status_line(event: str, **fields: object) -> str:
    """``event key=value ...``: the stdout format (values have no spaces)."""
    return " ".join([event, *(f"{k}={v}" for k, v in fields.items())])


def _emit(line: str) -> None:
    try:
        print(line, flush=True)
    except BrokenPipeError:
        pass  # nobody reads our status lines any more; keep serving


# ---------------------------------------------------------------- where to listen


def same_address(a: IpAddressPort, b: IpAddressPort) -> bool:
    return a.port == b.port and ipaddress.ip_address(a.addr) == ipaddress.ip_address(b.addr)


def parse_listen(text: str) -> IpAddressPort:
    """``HOST:PORT`` or ``[IPv6]:PORT`` with an IP address; port 0 lets the OS pick."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        if not sep or not port.isdigit() or int(port) > 0xFFFF:
            raise ValueError(text)
        return IpAddressPort(str(ipaddress.ip_address(host)), int(port))
    except ValueError:
        raise CliError(f"--listen {text!r} must be IP:PORT (an IP address; port 0: any)") from None


def claim_bootstrap_address(bootstrap: Sequence[IpAddressPort]) -> socket.socket | None:
    """A socket bound to the first of ``bootstrap`` that is an address of this machine and
    free, making this peer that bootstrap peer; None if there is none."""
    for address in bootstrap:
        try:
            return bind_listening_socket(address.addr, address.port)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                continue  # another local peer has it, or it is not this machine's address
            raise
    return None


def local_address_towards(address: IpAddressPort) -> str:
    """The address this machine sends from to reach ``address`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in address.addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((address.addr, address.port))
            return str(probe.getsockname()[0])
        except OSError:
            return "::1" if family == socket.AF_INET6 else "127.0.0.1"


def choose_listener(
    listen: IpAddressPort | None, bootstrap: Sequence[IpAddressPort]
) -> tuple[socket.socket | None, IpAddressPort | None]:
    """(an already bound socket, or None; else the address to listen at)."""
    if listen is not None:
        return None, listen
    try:
        inherited = inherited_listening_socket()
    except PeerSetupError as exc:
        raise CliError(str(exc)) from None
    if inherited is not None:
        return inherited, None
    try:
        claimed = claim_bootstrap_address(bootstrap)
    except OSError as exc:
        raise CliError(f"cannot listen: {exc.strerror or exc}") from None
    if claimed is not None:
        return claimed, None
    host = local_address_towards(bootstrap[0]) if bootstrap else "127.0.0.1"
    return None, IpAddressPort(host, 0)


# ---------------------------------------------------------------- running


class PeerRunner:
    """Start, join (or found the ring), report, and leave on request."""

    def __init__(
        self,
        setup: PeerSetup,
        bootstrap: Sequence[IpAddressPort],
        *,
        sock: socket.socket | None,
        listen: IpAddressPort | None,
    ) -> None:
        self.setup = setup
        self.bootstrap = tuple(bootstrap)
        self.node: Node = build_node(setup, sock=sock)
        self._listen = listen
        self.address: IpAddressPort | None = None
        self.stop = asyncio.Event()
        self.node.add_listener(self._on_event)

    @property
    def node_id_hex(self) -> str:
        return self.node.node_id.hex()

    def _on_event(self, event: NodeEvent) -> None:
        if isinstance(event, NeighborsChanged):
            log.info(
                "neighbours: predecessors %s, successors %s, %d fingers",
                _ids(event.predecessors),
                _ids(event.successors),
                len(event.fingers),
            )
            _emit(
                status_line(
                    "neighbors",
                    node_id=self.node_id_hex,
                    predecessors=_ids(event.predecessors),
                    successors=_ids(event.successors),
                    fingers=len(event.fingers),
                    state=self.node.state,
                )
            )
        elif isinstance(event, StateChanged):
            log.info("state: %s", event.state)
            _emit(status_line("state", node_id=self.node_id_hex, state=event.state))
        elif isinstance(event, ConnectionChanged):
            log.debug("link to %s %s", event.node_id.hex(), "up" if event.up else "down")

    def founds_ring(self) -> bool:
        """The first bootstrap peer of the list may start a new overlay (§6.4.2.1 wants
        that to be explicit configuration; being listed first is it)."""
        return (
            bool(self.bootstrap)
            and self.address is not None
            and same_address(self.address, self.bootstrap[0])
        )

    async def run(self) -> None:
        self.address = await self.node.start(self._listen)
        log.info("node %s listening on %s", self.node_id_hex, format_address(self.address))
        others = [b for b in self.bootstrap if not same_address(b, self.address)]
        if not others and not self.founds_ring():
            raise CliError("no bootstrap node to join through (configuration or --bootstrap)")
        joined = await self._join(others)
        if not joined:
            return  # stopped before it got in
        _emit(
            status_line(
                "ready", node_id=self.node_id_hex, listen=format_address(self.address), state=self.node.state
            )
        )
        await self.stop.wait()
        log.info("leaving the overlay")
        await self.node.leave(LEAVE_TIMEOUT)

    async def _join(self, others: Sequence[IpAddressPort]) -> bool:
        delay = JOIN_RETRY_FIRST
        while not self.stop.is_set():
            if others and await self._join_once(others):
                return True
            if self.stop.is_set():
                break
            if self.founds_ring():
                log.info("no other bootstrap node admitted us: starting a new overlay")
                self.node.start_alone()
                return True
            log.info("retrying the join in %.0f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
            delay = min(delay * 2, JOIN_RETRY_MAX)
        return False

    async def _join_once(self, others: Sequence[IpAddressPort]) -> bool:
        """One join attempt, abandoned when a signal asks us to stop."""
        join = asyncio.ensure_future(self.node.join(others))
        stopped = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({join, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not join.done():
            join.cancel()
            with contextlib.suppress(asyncio.CancelledError, JoinError, NodeClosedError):
                await join
            return False
        try:
            join.result()
        except JoinError as exc:
            log.warning("join failed: %s", exc)
            return False
        return True


async def run_peer(
    setup: PeerSetup,
    bootstrap: Sequence[IpAddressPort],
    *,
    sock: socket.socket | None,
    listen: IpAddressPort | None,
) -> None:
    runner = PeerRunner(setup, bootstrap, sock=sock, listen=listen)
    loop = asyncio.get_running_loop()
    signals = 0
    closing: set[asyncio.Task[None]] = set()

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            runner.stop.set()
        else:
            log.warning("second signal: closing at once")
            task = loop.create_task(runner.node.close())
            closing.add(task)
            task.add_done_callback(closing.discard)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        await runner.run()
    except OSError as exc:
        raise CliError(f"cannot listen: {exc.strerror or exc}") from None
    except NodeClosedError:
        pass  # closed by a second signal
    finally:
        await runner.node.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    _emit(status_line("state", node_id=runner.node_id_hex, state="stopped"))


def _cmd_peer(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    profile_dir = Path(args.profile) if args.profile else default_profile_dir()
    try:
        setup = peer_setup(load_profile(profile_dir))
    except (ProfileError, PeerSetupError) as exc:
        raise CliError(str(exc)) from None
    listen = None
    if args.listen is not None:
        listen = parse_listen(args.listen)
    if args.bootstrap:
        bootstrap = tuple(IpAddressPort(b.address, b.port) for b in map(parse_bootstrap, args.bootstrap))
    else:
        bootstrap = setup.bootstrap_nodes
    sock, address = choose_listener(listen, bootstrap)
    asyncio.run(run_peer(setup, bootstrap, sock=sock, listen=address))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("peer", help="run a headless peer (e.g. a bootstrap peer)")
    parser.add_argument("--profile", help="profile folder (default: the user's profile)")
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to accept links at")
    parser.add_argument(
        "--bootstrap",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="bootstrap node to join through, instead of the configuration's (repeatable)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level on stderr (default info)",
    )
    parser.set_defaults(func=_cmd_peer)


__all__ = [
    "PeerRunner",
    "choose_listener",
    "claim_bootstrap_address",
    "format_address",
    "register",
    "run_peer",
    "status_line",
]

"""The local overlay, run for one local profile (``p2psip init``): discover, join or start
alone, advertise, hold the name, heal splits.

:class:`LocalOverlay` builds the profile's node (:func:`app.peer.build_node`: a storing
peer with TLS/TCP No-ICE links and AppAttach, :mod:`app.phone.local_config`) and:

1. listens on the address multicast DNS leaves this machine from (the route to
   224.0.0.251, RFC 6762 §3), unless told another;
2. browses DNS-SD for peers of the overlay (:mod:`app.phone.discovery`) for
   ``browse_time`` seconds, or until the first answer;
3. joins through them (§10.5, §11.4), or, when nobody answered (or no one admitted it),
   starts the overlay alone (§6.4.2.1: this is the explicit setting it asks for);
4. advertises itself, so later phones find it;
5. claims its name first come, first served (:mod:`app.phone.names`): refused with
   :class:`~app.phone.names.NameTaken` when another device holds it; otherwise registers
   its AoR (RFC 7904 §3) and, should another device have registered in the same moment,
   keeps the name only if it has the smaller Node-ID;
6. keeps browsing: an advertised peer with a smaller Node-ID that is not in its ring is
   probed for a split and the rings merge (§10.7.4.4, :mod:`app.phone.partition`); after a
   merge the name is checked again.

Its state (:class:`OverlayState`) is reported to listeners as :class:`LocalOverlayStatus`:
discovering, joining (via whom), starting alone, joined (via whom, or alone), offline (and
why), stopped. :meth:`LocalOverlay.start` and :meth:`LocalOverlay.stop` may be called again
and again (a fresh node each time); rejoining after the network came back is the phone
service's to decide.

``python -m app.phone.local_overlay run --profile DIR`` runs it headless with one status
line per event on stdout (for tests and the curious), and a few commands on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from zeroconf import InterfaceChoice

from app.peer import PeerSetup, PeerSetupError, build_node, peer_setup
from app.phone.discovery import (
    Advertisement,
    DiscoveryError,
    DiscoveryEvent,
    Interfaces,
    LocalOverlayDiscovery,
    PeerFound,
)
from app.phone.local_config import LOCAL_OVERLAY_NAME, check_local_document
from app.phone.names import DEFAULT_PROBE_TIMEOUT, NameTaken, check_name, lost_to
from app.phone.partition import probe_advertisement, should_probe
from app.profile import Profile, ProfileError, default_profile_dir, load_profile
from reload_core.config import ConfigError
from reload_core.node.errors import JoinError, NodeError, RequestError
from reload_core.node.events import NeighborsChanged, NodeEvent
from reload_core.node.node import Node
from reload_core.storage.errors import StorageError
from reload_core.topology.chord import ChordState
from reload_core.usages.sip import SipUsage
from reload_core.usages.sip.aor import parse_aor
from reload_core.usages.sip.registration import RegistrationState
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination

log = logging.getLogger("p2psip.local")

MDNS_GROUP = "224.0.0.251"
MDNS_PORT = 5353
DEFAULT_BROWSE_TIME = 2.0
"""Seconds a starting phone looks for peers before starting the overlay alone: mDNS
answers on a LAN come within tens of milliseconds (a responder delays at most 500 ms,
RFC 6762 §6), and the browser asks again after 1 s."""
JOIN_TIMEOUT = 15.0
REGISTRATION_LIFETIME = 600
"""Seconds a registration lives between refreshes: a phone that vanished frees its
name's registration within ten minutes (RFC 7904 §3.1 leaves the lifetime to us)."""
HEAL_INTERVAL = 30.0
"""Seconds between sweeps over the advertised peers for splits (§10.7.4.4's "periodically")."""
SETTLE_TIME = 5.0
"""Seconds the ring is given after a merge before the name is checked again."""
LEAVE_TIMEOUT = 5.0


class LocalOverlayError(Exception):
    """The local overlay cannot run for this profile here; the message says why."""


class OverlayState(StrEnum):
    STOPPED = "stopped"
    DISCOVERING = "discovering"
    JOINING = "joining"
    STARTING_ALONE = "starting-alone"
    JOINED = "joined"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class LocalOverlayStatus:
    """Where the local overlay stands. ``via``: the peer joined (or being joined) through,
    None when started alone; ``address``: where our links are accepted; ``reason``: why
    offline; ``registered``: whether our AoR is registered."""

    state: OverlayState
    node_id: bytes
    address: IpAddressPort | None = None
    via: Advertisement | None = None
    reason: str = ""
    registered: bool = False
    merges: int = 0


StatusListener = Callable[[LocalOverlayStatus], None]


def lan_address() -> str | None:
    """The IPv4 address multicast DNS leaves this machine from: the source address of the
    route to the mDNS group (no packet is sent). None without such a route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((MDNS_GROUP, MDNS_PORT))
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    ip = ipaddress.ip_address(address)
    return None if ip.is_unspecified or ip.is_loopback else address


class LocalOverlay:
    """The local overlay for ``profile`` (see the module docstring)."""

    def __init__(
        self,
        profile: Profile,
        *,
        browse_time: float = DEFAULT_BROWSE_TIME,
        listen_host: str | None = None,
        register: bool = True,
        interfaces: Interfaces = InterfaceChoice.All,
        join_timeout: float = JOIN_TIMEOUT,
        probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
        heal_interval: float = HEAL_INTERVAL,
        registration_lifetime: int = REGISTRATION_LIFETIME,
    ) -> None:
        if profile.descriptor.overlay != LOCAL_OVERLAY_NAME:
            raise LocalOverlayError(
                f"the profile in {profile.directory} is for {profile.descriptor.overlay}, not the local overlay"
            )
        try:
            check_local_document(profile.configuration)
        except ConfigError as exc:
            raise LocalOverlayError(
                f"the profile's configuration is not the local overlay's: {exc}"
            ) from None
        try:
            self.setup: PeerSetup = peer_setup(profile)
        except PeerSetupError as exc:
            raise LocalOverlayError(str(exc)) from None
        self.profile = profile
        self.browse_time = browse_time
        self.listen_host = listen_host
        self.register = register
        self.interfaces = interfaces
        self.join_timeout = join_timeout
        self.probe_timeout = probe_timeout
        self.heal_interval = heal_interval
        self.registration_lifetime = registration_lifetime
        self.node: Node | None = None
        self.usage: SipUsage | None = None
        self.discovery: LocalOverlayDiscovery | None = None
        self._status = LocalOverlayStatus(OverlayState.STOPPED, self.setup.node_id)
        self._listeners: list[StatusListener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._probing: set[bytes] = set()
        self._failure: asyncio.Future[NameTaken] | None = None

    # ---------------------------------------------------------------- state

    @property
    def status(self) -> LocalOverlayStatus:
        return self._status

    @property
    def node_id(self) -> bytes:
        return self.setup.node_id

    @property
    def aor(self) -> str:
        return f"sip:{self.profile.descriptor.user_name}"

    def add_listener(self, listener: StatusListener) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def _set(self, state: OverlayState, **changes: object) -> None:
        self._status = replace(self._status, state=state, **changes)  # type: ignore[arg-type]
        log.info("local overlay: %s", self._status.state)
        for listener in list(self._listeners):
            try:
                listener(self._status)
            except Exception:
                log.exception("status listener failed")

    async def name_lost(self) -> NameTaken:
        """Wait until, after a merge, another device turns out to keep our name (the
        overlay is then offline)."""
        if self._failure is None:
            raise LocalOverlayError("the local overlay is not running")
        return await asyncio.shield(self._failure)

    # ---------------------------------------------------------------- start

    async def start(self) -> LocalOverlayStatus:
        """Discover, join or start alone, advertise, claim the name. Raises
        :class:`NameTaken` (the overlay is then left) or :class:`LocalOverlayError`
        (offline, and why); either way everything started is stopped again."""
        if self._status.state not in (OverlayState.STOPPED, OverlayState.OFFLINE):
            raise LocalOverlayError(f"the local overlay is already {self._status.state}")
        self._failure = asyncio.get_running_loop().create_future()
        self._status = LocalOverlayStatus(OverlayState.STOPPED, self.node_id)
        try:
            return await self._start()
        except NameTaken as exc:
            await self._teardown(leave=True)
            self._set(OverlayState.OFFLINE, reason=str(exc), registered=False)
            raise
        except LocalOverlayError as exc:
            await self._teardown(leave=True)
            self._set(OverlayState.OFFLINE, reason=str(exc), registered=False)
            raise
        except BaseException:
            await self._teardown(leave=False)
            self._set(OverlayState.STOPPED, registered=False, reason="")
            raise

    async def _start(self) -> LocalOverlayStatus:
        host = self.listen_host or lan_address()
        if host is None:
            raise LocalOverlayError(
                f"no network: no interface has a route to the multicast DNS group {MDNS_GROUP}"
            )
        node = self.node = self._new_node()
        try:
            address = await node.start(IpAddressPort(host, 0))
        except OSError as exc:
            raise LocalOverlayError(f"cannot listen on {host}: {exc.strerror or exc}") from None
        discovery = self.discovery = LocalOverlayDiscovery(
            LOCAL_OVERLAY_NAME,
            own_node_id=self.node_id,
            node_id_length=self.setup.configuration.node_id_length,
            interfaces=self.interfaces,
        )
        try:
            await discovery.start()
        except DiscoveryError as exc:
            raise LocalOverlayError(str(exc)) from None
        self._set(OverlayState.DISCOVERING, address=address)
        found = await discovery.browse(self.browse_time) if self.browse_time > 0 else []
        via = await self._join(found)
        if via is None:
            node = self.node
            address = node.address or address
            self._set(OverlayState.STARTING_ALONE, address=address, via=None)
            node.start_alone()
        advertising = asyncio.ensure_future(discovery.advertise(address, self.node_id))
        try:
            if self.register:
                await self._claim_name(alone=via is None)
            await advertising
        except DiscoveryError as exc:
            raise LocalOverlayError(str(exc)) from None
        finally:
            if not advertising.done():
                advertising.cancel()
                with contextlib.suppress(asyncio.CancelledError, DiscoveryError):
                    await advertising
        self._set(OverlayState.JOINED, address=address, via=via, registered=self._registered())
        discovery.add_listener(self._on_discovery)
        for ad in discovery.found:  # found while we were starting
            self._spawn(self._maybe_heal(ad))
        self._spawn(self._heal_loop())
        return self._status

    def _new_node(self) -> Node:
        return build_node(self.setup)

    async def _join(self, found: Sequence[Advertisement]) -> Advertisement | None:
        """Join through the first advertised peer that admits us (smallest Node-ID first);
        None when there is none."""
        assert self.node is not None
        for ad in found:
            self._set(OverlayState.JOINING, via=ad)
            try:
                await self.node.join(ad.addresses, timeout=self.join_timeout)
                return ad
            except JoinError as exc:
                log.warning("cannot join through %s: %s", ad.node_id.hex(), exc)
            if self.node.topology.state is not ChordState.IDLE:
                # Still half-joined after the timeout: a fresh node, or it could start
                # nothing else (§10.5 has no abort).
                host = self.node.address
                await self.node.close()
                self.node = self._new_node()
                await self.node.start(IpAddressPort(host.addr, 0) if host else None)
        return None

    def _registered(self) -> bool:
        if self.usage is None:
            return False
        registration = self.usage.registrations.get(self.profile.descriptor.user_name)
        return registration is not None and registration.state is RegistrationState.REGISTERED

    async def _claim_name(self, *, alone: bool) -> None:
        node = self.node
        assert node is not None
        usage = self.usage = SipUsage.for_node(
            node, self.setup.configuration, lifetime=self.registration_lifetime
        )
        aor = parse_aor(self.aor)
        own = self.profile.descriptor.node_ids
        length = self.setup.configuration.node_id_length
        if not alone:  # started alone, nobody else can hold it (a split is healed later)
            try:
                holder = await check_name(
                    node, usage.storage, aor, own, node_id_length=length, probe_timeout=self.probe_timeout
                )
            except (StorageError, NodeError) as exc:
                raise LocalOverlayError(f"cannot look up {aor.name} on the local overlay: {exc}") from None
            if holder is not None:
                raise NameTaken(aor.user, holder)
        await usage.register()
        await self._keep_name_or_yield()

    async def _keep_name_or_yield(self) -> None:
        """After registering (or a merge): withdraw if a device with a smaller Node-ID holds
        the name too (:func:`app.phone.names.lost_to`)."""
        node, usage = self.node, self.usage
        if node is None or usage is None:
            return
        aor = parse_aor(self.aor)
        try:
            holder = await lost_to(
                node,
                usage.storage,
                aor,
                self.profile.descriptor.node_ids,
                node_id_length=self.setup.configuration.node_id_length,
                probe_timeout=self.probe_timeout,
            )
        except (StorageError, NodeError) as exc:
            log.warning("cannot check who else holds %s: %s", aor.name, exc)
            return
        if holder is not None:
            await usage.unregister()
            raise NameTaken(aor.user, holder)

    # ---------------------------------------------------------------- splits

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_discovery(self, event: DiscoveryEvent) -> None:
        if isinstance(event, PeerFound):
            self._spawn(self._maybe_heal(event.advertisement))

    async def _heal_loop(self) -> None:
        """§10.7.4.4's "periodically": probe the advertised peers again, then check the name
        (a merge seen only by other peers of our ring may have brought a second holder)."""
        while True:
            await asyncio.sleep(self.heal_interval)
            if self.discovery is not None:
                for ad in self.discovery.found:
                    await self._maybe_heal(ad)
            await self._recheck_name()

    async def _maybe_heal(self, ad: Advertisement) -> None:
        node = self.node
        if node is None or ad.node_id in self._probing or not should_probe(node, ad):
            return
        self._probing.add(ad.node_id)
        try:
            outcome = await probe_advertisement(node, ad)
        except (RequestError, NodeError) as exc:
            log.debug("probe through %s failed: %s", ad.node_id.hex(), exc)
            return
        finally:
            self._probing.discard(ad.node_id)
        if not outcome.split or self._status.state is not OverlayState.JOINED:
            return
        self._set(OverlayState.JOINED, merges=self._status.merges + 1)
        await asyncio.sleep(SETTLE_TIME)  # let the merged ring settle before looking
        await self._recheck_name()

    async def _recheck_name(self) -> None:
        """Go offline when a device with a smaller Node-ID holds our name too."""
        if self.usage is None or self._status.state is not OverlayState.JOINED:
            return
        try:
            await self._keep_name_or_yield()
        except NameTaken as exc:
            log.warning("%s", exc)
            await self._teardown(leave=True)
            self._set(OverlayState.OFFLINE, reason=str(exc), registered=False)
            if self._failure is not None and not self._failure.done():
                self._failure.set_result(exc)

    # ---------------------------------------------------------------- stop

    async def stop(self) -> None:
        """Remove our registration, stop advertising, leave (§10.9) and close."""
        if self._status.state is OverlayState.STOPPED and self.node is None:
            return
        await self._teardown(leave=True)
        self._set(OverlayState.STOPPED, registered=False, reason="")

    async def _teardown(self, *, leave: bool) -> None:
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        usage, self.usage = self.usage, None
        discovery, self.discovery = self.discovery, None
        node, self.node = self.node, None
        if usage is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(usage.close(remove=leave), LEAVE_TIMEOUT)
        if discovery is not None:
            with contextlib.suppress(Exception):
                await discovery.close()
        if node is not None:
            if leave and node.is_joined:
                with contextlib.suppress(Exception):
                    await node.leave(LEAVE_TIMEOUT)
            await node.close()


# -------------------------------------------------------------------- headless entry


def _line(event: str, **fields: object) -> None:
    text = " ".join([event, *(f"{k}={v}" for k, v in fields.items())])
    with contextlib.suppress(BrokenPipeError):
        print(text, flush=True)


def _hex_list(ids: Sequence[bytes]) -> str:
    return ",".join(i.hex() for i in ids) or "-"


def _addr(address: IpAddressPort | None) -> str:
    return "-" if address is None else f"{address.addr}:{address.port}"


async def _command(overlay: LocalOverlay, line: str) -> None:
    """``ping HEX``, ``resolve AOR``, ``neighbors``, ``restart``: answers on stdout."""
    words = line.split()
    node, usage = overlay.node, overlay.usage
    if not words or node is None:
        return
    if words[0] == "ping" and len(words) == 2:
        target = bytes.fromhex(words[1])
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await node.request(NodeDestination(target), MessageCode.ping_req, PingReq())
            _line("ping", node_id=target.hex(), ok="true", rtt_ms=round((loop.time() - started) * 1000, 1))
        except (RequestError, NodeError) as exc:
            _line("ping", node_id=target.hex(), ok="false", error=str(exc).replace(" ", "_"))
    elif words[0] == "resolve" and len(words) == 2 and usage is not None:
        resolution = await usage.resolve(words[1])
        ids = [c.node_id for c in resolution.contacts if c.node_id is not None]
        _line(
            "resolve",
            aor=words[1],
            outcome=resolution.outcome.value.replace(" ", "-"),
            node_ids=_hex_list(ids),
        )
    elif words[0] == "restart":  # stop and start again (a fresh node, the same identity)
        await overlay.stop()
        status = await overlay.start()
        _line(
            "ready",
            node_id=overlay.node_id.hex(),
            listen=_addr(status.address),
            aor=overlay.aor,
            via=status.via.node_id.hex() if status.via else "-",
        )
    elif words[0] == "neighbors":
        _line(
            "neighbors",
            node_id=node.node_id.hex(),
            predecessors=_hex_list(node.predecessors),
            successors=_hex_list(node.successors),
        )


async def run(profile: Profile, args: argparse.Namespace) -> int:
    overlay = LocalOverlay(
        profile,
        browse_time=args.browse,
        listen_host=args.listen,
        register=not args.no_register,
        heal_interval=args.heal_interval,
    )
    node_id = overlay.node_id.hex()
    watched: set[int] = set()

    def on_node_event(event: NodeEvent) -> None:
        if isinstance(event, NeighborsChanged):
            _line(
                "neighbors",
                node_id=node_id,
                predecessors=_hex_list(event.predecessors),
                successors=_hex_list(event.successors),
                fingers=len(event.fingers),
            )

    def on_status(status: LocalOverlayStatus) -> None:
        node = overlay.node
        if node is not None and id(node) not in watched:
            watched.add(id(node))
            node.add_listener(on_node_event)
        fields: dict[str, object] = {"node_id": node_id, "state": status.state.value}
        if status.via is not None:
            fields["via"] = status.via.node_id.hex()
        if status.state is OverlayState.JOINED:
            fields.update(listen=_addr(status.address), registered=str(status.registered).lower())
            fields["merges"] = status.merges
        _line("state", **fields)
        if status.reason:
            _line("offline", node_id=node_id, reason=status.reason)  # the reason is the rest of the line

    overlay.add_listener(on_status)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        status = await overlay.start()
    except NameTaken as exc:
        print(f"p2psip: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except LocalOverlayError as exc:
        print(f"p2psip: error: {exc}", file=sys.stderr, flush=True)
        return 1
    _line(
        "ready",
        node_id=node_id,
        listen=_addr(status.address),
        aor=overlay.aor,
        via=status.via.node_id.hex() if status.via else "-",
    )
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def commands() -> None:
        while not reader.at_eof():
            line = (await reader.readline()).decode(errors="replace").strip()
            if line == "quit":
                stop.set()
                return
            try:
                await _command(overlay, line)
            except Exception as exc:  # a bad command is reported, never fatal
                _line("error", command=line.replace(" ", "_"), detail=str(exc).replace(" ", "_"))

    waiters = [
        asyncio.ensure_future(stop.wait()),
        asyncio.ensure_future(overlay.name_lost()),
        asyncio.ensure_future(commands()),
    ]
    done, _ = await asyncio.wait(waiters[:2], return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    lost = waiters[1].result() if waiters[1] in done and not waiters[1].cancelled() else None
    await overlay.stop()
    if lost is not None:
        print(f"p2psip: error: {lost}", file=sys.stderr, flush=True)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.phone.local_overlay")
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run", help="run the local overlay for a local profile (p2psip init)")
    runner.add_argument("--profile", help="profile folder (default: the per-user data folder)")
    runner.add_argument(
        "--browse", type=float, default=DEFAULT_BROWSE_TIME, help="seconds to look for peers (0: start alone)"
    )
    runner.add_argument("--listen", help="IP address to accept links at (default: the LAN's)")
    runner.add_argument("--no-register", action="store_true", help="join without registering the AoR")
    runner.add_argument("--heal-interval", type=float, default=HEAL_INTERVAL, help=argparse.SUPPRESS)
    runner.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        profile = load_profile(Path(args.profile) if args.profile else default_profile_dir())
        return asyncio.run(run(profile, args))
    except (ProfileError, LocalOverlayError) as exc:
        print(f"p2psip: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


__all__ = [
    "DEFAULT_BROWSE_TIME",
    "LocalOverlay",
    "LocalOverlayError",
    "LocalOverlayStatus",
    "OverlayState",
    "lan_address",
    "main",
]


if __name__ == "__main__":
    sys.exit(main())

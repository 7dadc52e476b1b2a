"""Phones on an enrolled overlay, in this process, over real sockets.

:class:`PhoneLab` provisions an operator's overlay (:func:`app.bench.overlay_harness.provision_overlay`:
its CA, a signed configuration document naming one bootstrap peer, ECDSA P-256 node
certificates, since AppAttach's DTLS 1.2 has no suite for Ed25519), runs the bootstrap
peer in this process on its pre-bound TLS socket, and opens :class:`~app.phone.service.Phone`
instances on profiles of the same overlay. The overlay's links are TLS on 127.0.0.1; SIP
runs over AppAttach connections whose ICE uses this machine's interface address (aioice
leaves loopback out), hence the ``interface_address`` fixture of the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from app.bench.overlay_harness import ProvisionedOverlay, provision_overlay
from app.peer import build_node, peer_setup
from app.phone.calls import CallState
from app.phone.events import PhoneEvent, PhoneState
from app.phone.network import NetworkOptions
from app.phone.phone_call import PhoneCall
from app.phone.presence import PresencePolicy
from app.phone.service import Phone, PhoneOptions
from app.profile import load_profile, replace_configuration
from app.sip.transaction import TimerConfig
from reload_core.config import DomainRestriction, default_kinds
from reload_core.node.node import Node

# RFC 3261's timers (T1 0.5 s) with a shorter Timer D and T4: nothing waits on them but
# the teardown of transactions that are done already.
TIMERS = TimerConfig(t4=1.0, timer_d=2.0)
WAIT = 20.0
OVERLAY = "phones.p2psip.test"
PRESENCE = PresencePolicy(online_interval=2.0, offline_first=2.0, offline_max=4.0, initial_spread=0.2)

E = TypeVar("E")


class Events:
    """Every event of a phone from now on; :meth:`wait` finds one seen already or waits."""

    def __init__(self, phone: Phone) -> None:
        self.events: list[PhoneEvent] = []
        self._changed = asyncio.Event()
        self.remove = phone.add_listener(self._add)

    def _add(self, event: PhoneEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait(
        self, kind: type[E], predicate: Callable[[E], bool] = lambda e: True, timeout: float = WAIT
    ) -> E:
        async with asyncio.timeout(timeout):
            while True:
                for e in self.of(kind):
                    if predicate(e):
                        return e
                self._changed.clear()
                await self._changed.wait()


class PhoneLab:
    """An overlay, its bootstrap peer, and phones; :meth:`close` ends them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.overlay: ProvisionedOverlay = provision_overlay(
            root / "overlay",
            1,
            name=OVERLAY,
            key_kind="ecdsa",
            required_kinds=default_kinds(domain_restriction=DomainRestriction(enable=False)),
        )
        self.bootstrap: Node | None = None
        self.phones: list[Phone] = []

    async def start_bootstrap(self) -> Node:
        setup = peer_setup(load_profile(self.overlay.peers[0].directory))
        sock = self.overlay.take_socket(0)
        node = build_node(setup, sock=sock)
        if sock is None:
            bootstrap = self.overlay.bootstrap_nodes[0]
            from reload_core.wire.addresses import IpAddressPort

            await node.start(IpAddressPort(bootstrap.address, bootstrap.port))
        else:
            await node.start()
        node.start_alone()
        self.bootstrap = node
        return node

    def profile(self, name: str) -> Path:
        return self.overlay.add_profile(name).directory

    async def open(
        self, name: str, *, start: bool = True, configuration: bytes | None = None, **overrides: Any
    ) -> Phone:
        """A phone for user ``name`` (a new profile, with ``configuration`` in place of the
        provisioned document if given), started and registered."""
        network = overrides.pop("network", NetworkOptions(join_timeout=20.0, retry_first=0.5, retry_max=2.0))
        sip_listen = overrides.pop("sip_listen", None)
        overrides.setdefault("presence", PRESENCE)
        options = PhoneOptions(timers=TIMERS, network=network, **overrides)
        directory = self.profile(name)
        if configuration is not None:
            replace_configuration(directory, configuration)
        phone = await Phone.open(directory, sip_listen=sip_listen, options=options)
        self.phones.append(phone)
        if start:
            state = await phone.start()
            assert state is PhoneState.REGISTERED, phone.state_reason
        return phone

    async def close(self) -> None:
        for phone in self.phones:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(phone.close(), 30)
        if self.bootstrap is not None:
            await self.bootstrap.close()
        self.overlay.close()


async def connected_call(
    caller: Phone, callee: Phone, target: str | None = None
) -> tuple[PhoneCall, PhoneCall]:
    """``caller`` calls ``callee``; it answers; both calls once connected."""
    call = await caller.call(target or callee.user.split("@")[0])
    incoming = await callee.next_incoming_call(WAIT)
    await incoming.answer()
    assert await call.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED, call.words
    assert await incoming.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED
    return call, incoming

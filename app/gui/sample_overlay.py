"""A real overlay in a folder, for the screenshots and the GUI's benchmark: an operator's
overlay (:func:`app.bench.overlay_harness.provision_overlay`: its CA, a signed configuration
naming one bootstrap peer, ECDSA P-256 node certificates), its bootstrap peer running in
this process on 127.0.0.1, and profiles for the phones (opened here, or by another
process such as ``p2psip gui --profile``). No multicast, no set-up on the machine: every
socket is on loopback except media and AppAttach ICE, which use this machine's interface
address (aioice leaves loopback out).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from app.bench.overlay_harness import ProvisionedOverlay, provision_overlay
from app.peer import build_node, peer_setup
from app.phone.network import NetworkOptions
from app.phone.service import Phone, PhoneOptions
from app.profile import load_profile
from reload_core.config import DomainRestriction, default_kinds
from reload_core.node.node import Node
from reload_core.wire.addresses import IpAddressPort

OVERLAY = "example.p2psip.test"


class SampleOverlay:
    """See the module docstring; :meth:`close` stops what it started."""

    def __init__(self, root: Path, *, name: str = OVERLAY) -> None:
        self.root = root
        self.overlay: ProvisionedOverlay = provision_overlay(
            root / "overlay",
            1,
            name=name,
            key_kind="ecdsa",
            required_kinds=default_kinds(domain_restriction=DomainRestriction(enable=False)),
        )
        self.bootstrap: Node | None = None
        self.nodes: list[Node] = []
        self.phones: list[Phone] = []

    @property
    def name(self) -> str:
        return self.overlay.configuration.instance_name

    async def start(self, *, peers: int = 0) -> Node:
        """Start the bootstrap peer, and ``peers`` more storing peers with no phone (a
        ring worth looking at), joined through it."""
        setup = peer_setup(load_profile(self.overlay.peers[0].directory))
        node = build_node(setup, sock=self.overlay.take_socket(0))
        await node.start()
        node.start_alone()
        self.bootstrap = node
        bootstrap = self.overlay.bootstrap_nodes[0]
        for index in range(peers):
            peer = build_node(peer_setup(load_profile(self.profile(f"peer{index + 1}"))))
            self.nodes.append(peer)
            await peer.start()
            await peer.join([IpAddressPort(bootstrap.address, bootstrap.port)], timeout=20.0)
        return node

    def profile(self, user: str) -> Path:
        """A new profile of ``user`` in this overlay (certificate from its CA)."""
        return self.overlay.add_profile(user).directory

    def options(self, **overrides: Any) -> PhoneOptions:
        network = overrides.pop("network", NetworkOptions(join_timeout=20.0, retry_first=0.5, retry_max=2.0))
        # Real call audio (aiortc) without a sound device: silence is sent.
        overrides.setdefault("media", True)
        overrides.setdefault("use_devices", False)
        return PhoneOptions(network=network, **overrides)

    async def phone(self, user: str, *, start: bool = True, **overrides: Any) -> Phone:
        """A phone of a new profile of ``user``, started (and registered) unless not."""
        phone = await Phone.open(self.profile(user), options=self.options(**overrides))
        self.phones.append(phone)
        if start:
            await phone.start()
        return phone

    async def close(self) -> None:
        for phone in self.phones:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(phone.close(), 30)
        for node in self.nodes:
            with contextlib.suppress(Exception):
                await node.close()
        if self.bootstrap is not None:
            await self.bootstrap.close()
        self.overlay.close()


__all__ = ["OVERLAY", "SampleOverlay"]

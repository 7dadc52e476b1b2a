"""Helpers for the node tests: a throwaway overlay CA, node identities, and rings of nodes
on in-memory links with the truth to check them against."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from reload_core.ids import NodeId
from reload_core.links.base import Clock
from reload_core.links.framing import LinkConfig
from reload_core.links.memory import MemoryNetwork
from reload_core.node import Node, NodeSettings, memory_transport, wait_until
from reload_core.node.transport import MemoryTransport
from reload_core.security.ca import OverlayCA
from reload_core.security.signing import CertificateResolver, Signer
from reload_core.topology.config import ChordConfig
from reload_core.wire.addresses import IpAddressPort

OVERLAY = "node.test.example"


@dataclass
class OverlayPki:
    """An overlay CA (Ed25519, so that signing thousands of messages stays cheap)."""

    ca: OverlayCA = field(
        default_factory=lambda: OverlayCA.create(
            OVERLAY, ed25519.Ed25519PrivateKey.generate(), datetime.now(UTC)
        )
    )

    @property
    def root(self) -> bytes:
        return self.ca.certificate_der

    def signer(self, node_id: bytes | None = None, user: str = "user") -> Signer:
        key = ed25519.Ed25519PrivateKey.generate()
        nid = node_id if node_id is not None else secrets.token_bytes(16)
        cert = self.ca.issue_node_certificate(key.public_key(), f"{user}@{OVERLAY}", [nid], datetime.now(UTC))
        return Signer(key, cert.public_bytes(Encoding.DER), nid)

    def resolver(self) -> CertificateResolver:
        return CertificateResolver(OVERLAY, roots=(self.root,))


def settings(**overrides: object) -> NodeSettings:
    values: dict[str, object] = {
        "overlay_name": OVERLAY,
        "overlay_reliability_timer": 1.0,
        "chord": ChordConfig(update_interval=600.0, ping_interval=3600.0),
    }
    values.update(overrides)
    return NodeSettings(**values)  # type: ignore[arg-type]


def ring_truth(
    node_ids: Sequence[bytes], size: int = 3
) -> dict[bytes, tuple[tuple[bytes, ...], tuple[bytes, ...]]]:
    """For each Node-ID: (predecessors, successors) as sorted Node-IDs make them (§10.1)."""
    ring = sorted(node_ids)
    n = len(ring)
    count = min(size, n - 1)
    truth = {}
    for i, node_id in enumerate(ring):
        succ = tuple(ring[(i + j) % n] for j in range(1, count + 1))
        pred = tuple(ring[(i - j) % n] for j in range(1, count + 1))
        truth[node_id] = (pred, succ)
    return truth


def ring_errors(nodes: Sequence[Node]) -> list[str]:
    truth = ring_truth([n.node_id for n in nodes])
    errors = []
    for node in nodes:
        pred, succ = truth[node.node_id]
        if not node.is_joined:
            errors.append(f"{node.node_id.hex()[:8]} is {node.state}")
        if node.successors != succ:
            errors.append(f"{node.node_id.hex()[:8]}: successors differ")
        if node.predecessors != pred:
            errors.append(f"{node.node_id.hex()[:8]}: predecessors differ")
    return errors


def responsible(node_ids: Sequence[bytes], key: bytes) -> bytes:
    """The peer responsible for ``key``: the first Node-ID at or after it (§10.1)."""
    ring = sorted(node_ids)
    return next((n for n in ring if n >= key), ring[0])


class MemoryRing:
    """Nodes on one MemoryNetwork. Every node started here is closed by :meth:`close`."""

    def __init__(
        self, pki: OverlayPki, clock: Clock | None = None, *, latency: float = 0.0005, **kw: object
    ) -> None:
        from reload_core.links.base import AsyncioClock

        self.pki = pki
        self.clock = clock or AsyncioClock()
        self.link_config = LinkConfig(**kw) if kw else LinkConfig()  # type: ignore[arg-type]
        self.network = MemoryNetwork(self.clock, latency=latency, config=self.link_config)
        self.nodes: list[Node] = []
        self.all: list[Node] = []
        self._port = 6084
        self._host = 0

    def next_address(self) -> IpAddressPort:
        self._host += 1
        return IpAddressPort(f"10.0.{self._host // 250}.{self._host % 250 + 1}", self._port)

    async def new_node(
        self,
        *,
        node_id: bytes | None = None,
        start: bool = True,
        node_settings: NodeSettings | None = None,
        **overrides: object,
    ) -> Node:
        signer = self.pki.signer(node_id)
        node = Node(
            signer,
            self.pki.resolver(),
            node_settings or settings(**overrides),
            memory_transport(self.network, self.next_address()),
            clock=self.clock,
        )
        self.all.append(node)
        if start:
            await node.start()
        return node

    async def first(self, **overrides: object) -> Node:
        node = await self.new_node(**overrides)
        node.start_alone()
        self.nodes.append(node)
        return node

    async def join(self, via: Node | None = None, **overrides: object) -> Node:
        node = await self.new_node(**overrides)
        bootstrap = via or self.nodes[0]
        assert bootstrap.address is not None
        await node.join([bootstrap.address], timeout=20.0)
        self.nodes.append(node)
        return node

    async def converge(self, timeout: float = 20.0) -> None:
        await wait_until(self.nodes, lambda: not ring_errors(self.nodes), timeout)

    def endpoint(self, node: Node) -> MemoryTransport:
        transport = node.transport
        assert isinstance(transport, MemoryTransport)
        return transport

    async def close(self) -> None:
        for node in self.all:
            await node.close()


def node_ids(nodes: Sequence[Node]) -> list[bytes]:
    return [n.node_id for n in nodes]


def short(node_id: bytes) -> str:
    return node_id.hex()[:8]


__all__ = [
    "OVERLAY",
    "MemoryRing",
    "NodeId",
    "OverlayPki",
    "responsible",
    "ring_errors",
    "ring_truth",
    "settings",
]

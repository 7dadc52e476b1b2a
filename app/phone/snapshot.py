"""A picture of this node in the overlay at one moment, for the GUI's overlay panel and
the curious: where it sits on the ring, its neighbours and fingers (RFC 6940 §10.1),
its links with their round-trip times (§6.6.3.1 SRTT), what it stores (§7) and its
recent errors.

:func:`snapshot_of` only reads properties of a running :class:`~reload_core.node.node.Node`
and its :class:`~reload_core.storage.peer.Storage`; it changes nothing and does no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reload_core.node.node import Node
from reload_core.storage.peer import Storage


@dataclass(frozen=True, slots=True)
class LinkSnapshot:
    """One open link: the Node-ID at its far end, where that is, its smoothed RTT
    (seconds, None before the first acknowledgement) and whether it is suspected to fail."""

    node_id: bytes
    remote_address: str
    rtt: float | None
    suspect: bool


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One Resource-ID this peer stores, with the Kinds stored there (their names)."""

    resource_id: bytes
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OverlaySnapshot:
    """This node in its overlay. Node-IDs are raw bytes, in the ring's order where that
    has a meaning (predecessors nearest first, successors nearest first, §10.1)."""

    overlay: str
    node_id: bytes
    state: str
    address: str | None
    predecessors: tuple[bytes, ...]
    successors: tuple[bytes, ...]
    fingers: tuple[bytes, ...]
    links: tuple[LinkSnapshot, ...]
    stored: tuple[StoredResource, ...]
    stored_bytes: int
    stored_entries: int
    errors: tuple[str, ...]
    uptime: float

    @property
    def node_id_bits(self) -> int:
        return 8 * len(self.node_id)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _remote(address: object) -> str:
    # TCP links give (host, port); other link kinds give what they have.
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
        return _host_port(str(address[0]), address[1])
    return str(address)


def snapshot_of(node: Node, overlay: str, *, errors: Sequence[str] = ()) -> OverlaySnapshot:
    """What ``node`` knows now (see :class:`OverlaySnapshot`); ``errors``: the caller's
    recent errors, newest last."""
    links: list[LinkSnapshot] = []
    for link in sorted(node.connections.links(), key=lambda link: link.remote_node_id or b""):
        if not link.is_open or link.remote_node_id is None:
            continue
        links.append(LinkSnapshot(link.remote_node_id, _remote(link.remote_address), link.rtt, link.suspect))
    stored: list[StoredResource] = []
    stored_bytes = stored_entries = 0
    storage = Storage.of(node)
    if storage is not None and storage.store is not None:
        store = storage.store
        for resource in sorted(store.resources()):
            names = []
            for kind_id in store.kinds_at(resource):
                kind = storage.kinds.get(kind_id)
                names.append(kind.label if kind is not None else str(kind_id))
            stored.append(StoredResource(resource, tuple(names)))
        stored_bytes, stored_entries = store.bytes_used, store.entries_used
    address = node.address
    return OverlaySnapshot(
        overlay=overlay,
        node_id=node.node_id,
        state=node.state,
        address=None if address is None else _host_port(address.addr, address.port),
        predecessors=node.predecessors,
        successors=node.successors,
        fingers=node.fingers,
        links=tuple(links),
        stored=tuple(stored),
        stored_bytes=stored_bytes,
        stored_entries=stored_entries,
        errors=tuple(errors),
        uptime=node.uptime(),
    )


__all__ = ["LinkSnapshot", "OverlaySnapshot", "StoredResource", "snapshot_of"]

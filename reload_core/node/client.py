"""Client operation (RFC 6940 §4.2, §4.2.1).

A client does not route and stores nothing. It connects through a bootstrap node, then
Attaches to Resource-ID = its own Node-ID + 1 (as §11.4 has joining nodes do), which
reaches the peer responsible for its Node-ID: "requests may be sent from/to the client using its Node-ID in the same manner as if
it were a peer, because the responsible peer in the overlay will handle the final step of
routing to the client" (first option of §4.2.1). If that Attach fails the client keeps
the bootstrap peer and relies on Destination Lists (the second option).

Everything the client sends goes to its peer (the "home" peer). Updates from it may show
that it is no longer responsible for the client's Node-ID (§4.2.1: "The client would then
need to form a connection to the appropriate peer"): the client Attaches again. When the
home link is lost the client reconnects through the bootstrap nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reload_core.ids import NodeId
from reload_core.links.base import Link, LinkNotOpenError
from reload_core.node.errors import JoinError
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.chord import ChordUpdate, ChordUpdateType

if TYPE_CHECKING:
    from reload_core.node.node import Node


class ClientRole:
    """The client half of a node; ``active`` once :meth:`connect` has been called."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.active = False
        self.home: bytes | None = None
        self._bootstraps: list[IpAddressPort] = []
        self._rehoming = False
        self._reconnect: asyncio.Task[None] | None = None
        self._closed = False

    def next_hop(self) -> bytes | None:
        """Where a client sends anything not for a directly connected node: its peer."""
        home = self.home
        if home is not None and self.node.is_connected(home):
            return home
        others = sorted(self.node.connected_nodes)
        return others[0] if others else None

    async def connect(self, addresses: Sequence[IpAddressPort], timeout: float | None) -> bytes:
        if not self.node.settings.clients_permitted:
            # §11.1: "If the nodes are not allowed to remain clients after the initial
            # join, the element MUST be set to 'false'": such an overlay's peers close the
            # links of a node that stays a client (:mod:`~reload_core.node.admission`).
            raise JoinError("the overlay does not permit clients (clients-permitted is false, §11.1)")
        if not addresses:
            raise JoinError("no bootstrap node to connect through")
        self.active = True
        self._bootstraps = list(addresses)
        self.node.set_state("connecting")
        limit = timeout if timeout is not None else 2 * self.node.settings.attach_timeout
        try:
            return await asyncio.wait_for(self._connect(addresses), limit)
        except (JoinError, TimeoutError) as exc:
            self.node.set_state("idle")
            raise JoinError(str(exc) or "timed out connecting as a client") from None

    async def _connect(self, addresses: Sequence[IpAddressPort]) -> bytes:
        node = self.node
        reasons: list[str] = []
        for address in addresses:
            try:
                link = await node.dial(address)
            except (LinkNotOpenError, TimeoutError) as exc:
                reasons.append(f"{address.addr}:{address.port}: {exc or 'timed out'}")
                continue
            bootstrap = link.remote_node_id
            assert bootstrap is not None
            if bootstrap == node.node_id:
                link.close()
                continue
            self.home = bootstrap
            peer = await self._attach_home()
            if peer is None:
                node.log.warning(
                    "Attach to the peer responsible for our Node-ID failed; staying with %s",
                    bootstrap.hex()[:8],
                )
                peer = bootstrap
            elif peer != bootstrap:
                self.home = peer
                node.close_links_to(bootstrap)
            node.set_state("client")
            return peer
        raise JoinError("; ".join(reasons) or "no bootstrap node reachable")

    async def _attach_home(self) -> bytes | None:
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()

        def done(peer: bytes | None) -> None:
            if not future.done():
                future.set_result(peer)

        self.node.attach.attach(self._own_id_plus_one(), done, resource=True)
        return await future

    def _own_id_plus_one(self) -> bytes:
        """Resource-ID Node-ID + 1, as §11.4 has a joining node Attach to: its responsible
        peer is ours, and a peer directly connected to us would otherwise route Resource-ID
        = our Node-ID straight back to us (§10.3)."""
        return NodeId.from_bytes(self.node.node_id).add(1).to_bytes()

    # ---------------------------------------------------------------- what the peer tells us

    def on_update(self, sender: bytes, update: ChordUpdate) -> None:
        """§4.2.1: an Update from the home peer may show it is no longer responsible for us."""
        if sender != self.home or update.type == ChordUpdateType.peer_ready or not update.predecessors:
            return
        me = NodeId.from_bytes(self.node.node_id)
        if not me.in_interval(NodeId.from_bytes(update.predecessors[0]), NodeId.from_bytes(sender)):
            self._rehome()

    def on_leave(self, sender: bytes) -> None:
        if sender == self.home:
            self.node.close_links_to(sender)

    def _rehome(self) -> None:
        if self._rehoming or self._closed:
            return
        self._rehoming = True

        def done(peer: bytes | None) -> None:
            self._rehoming = False
            old = self.home
            if peer is not None and peer != old:
                self.home = peer
                self.node.log.info("client now attached to %s", peer.hex()[:8])
                if old is not None:
                    self.node.close_links_to(old)

        self.node.attach.attach(self._own_id_plus_one(), done, resource=True)

    # ---------------------------------------------------------------- links

    def link_opened(self, link: Link) -> None:
        """Nothing to do: a client's links come from its own dials and Attaches."""

    def link_lost(self, node_id: bytes) -> None:
        if not self.active or self._closed or node_id != self.home:
            return
        self.home = None
        remaining = sorted(self.node.connected_nodes)
        if remaining:
            self.home = remaining[0]
            self._rehome()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = loop.create_task(self._reconnect_home())

    async def _reconnect_home(self) -> None:
        try:
            await self._connect(self._bootstraps)
        except (JoinError, LinkNotOpenError) as exc:
            self.node.log.warning("client lost its peer and could not reconnect: %s", exc)
            self.node.set_state("disconnected")

    def close(self) -> None:
        self._closed = True
        if self._reconnect is not None:
            self._reconnect.cancel()


__all__ = ["ClientRole"]

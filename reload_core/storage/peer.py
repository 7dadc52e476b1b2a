"""Distributed storage on a node, assembled (RFC 6940 §7, §8, §10.4).

A peer gets the data store, the Store/Fetch/Stat/Find service, replication hooks and the
client; a client node (§4.2) only the client, since it stores nothing for others::

    storage = Storage.for_peer(node, resolver, KindRegistry.from_configuration(config),
                               access=AccessPolicy.from_configuration(config))
    await node.join(...)                     # or node.start_alone(); then the node
                                             # stores its certificate (§8) on its own
    await storage.client.store(resource, kind, [value])
    ...
    await storage.leave()                    # hand off our range, then node.leave()
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reload_core.config.document import OverlayConfiguration
from reload_core.node.errors import NodeError
from reload_core.node.events import NodeEvent, StateChanged
from reload_core.security.signing import CertificateResolver, Resolve
from reload_core.storage.access import AccessPolicy
from reload_core.storage.certstore import CertificateStore
from reload_core.storage.client import StorageClient
from reload_core.storage.errors import StorageError
from reload_core.storage.kinds import KindRegistry
from reload_core.storage.replication import Replicator
from reload_core.storage.service import StorageService
from reload_core.storage.store import DataStore, Quota

if TYPE_CHECKING:
    from reload_core.node.node import Node

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Storage:
    """The storage parts of one node; ``store``, ``service`` and ``replicator`` are None on
    a client."""

    node: Node
    kinds: KindRegistry
    client: StorageClient
    certificates: CertificateStore
    store: DataStore | None = None
    service: StorageService | None = None
    replicator: Replicator | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    @classmethod
    def of(cls, node: Node) -> Storage | None:
        """The storage attached to ``node`` by :meth:`for_peer` or :meth:`for_client`."""
        return _ATTACHED.get(node)

    @classmethod
    def for_peer(
        cls,
        node: Node,
        resolve: Resolve,
        kinds: KindRegistry,
        *,
        access: AccessPolicy | None = None,
        quota: Quota | None = None,
        refresh_interval: float | None = None,
        publish_certificate: bool = True,
    ) -> Storage:
        """Install storage on a peer: handlers, hooks (``node.hooks``), timers. With
        ``publish_certificate`` the node stores its certificate (§8) once it has joined."""
        store = DataStore(kinds, quota)
        replicator = Replicator(node, store, resolve, refresh_interval=refresh_interval)
        service = StorageService(
            node,
            store,
            access or AccessPolicy(8 * node.settings.node_id_length),
            resolve,
            on_written=replicator.replicate_written,
        )
        service.install()
        node.hooks = replicator
        replicator.start()
        client = StorageClient(node, resolve, kinds)
        storage = cls(node, kinds, client, _certificate_store(client, resolve), store, service, replicator)
        _ATTACHED[node] = storage

        def on_event(event: NodeEvent) -> None:
            if not isinstance(event, StateChanged):
                return
            if event.state in ("left", "closed"):
                storage.close()  # a node that is gone replicates nothing more
            elif event.state == "joined" and publish_certificate:
                storage._publish_soon()

        node.add_listener(on_event)
        return storage

    @classmethod
    def for_client(cls, node: Node, resolve: Resolve, kinds: KindRegistry) -> Storage:
        client = StorageClient(node, resolve, kinds)
        storage = cls(node, kinds, client, _certificate_store(client, resolve))
        _ATTACHED[node] = storage
        return storage

    @classmethod
    def from_configuration(
        cls,
        node: Node,
        resolve: Resolve,
        config: OverlayConfiguration,
        *,
        peer: bool = True,
        quota: Quota | None = None,
        refresh_interval: float | None = None,
        access: AccessPolicy | None = None,
    ) -> Storage:
        """Storage for the overlay ``config`` describes; ``access`` replaces
        :meth:`AccessPolicy.from_configuration` (e.g. with a usage's rules added)."""
        kinds = KindRegistry.from_configuration(config)
        if not peer:
            return cls.for_client(node, resolve, kinds)
        return cls.for_peer(
            node,
            resolve,
            kinds,
            access=access or AccessPolicy.from_configuration(config),
            quota=quota,
            refresh_interval=refresh_interval,
        )

    def _publish_soon(self) -> None:
        async def publish() -> None:
            try:
                await self.certificates.publish()
            except (StorageError, NodeError) as exc:
                log.info("could not store our certificate (§8): %s", exc)

        task = asyncio.get_running_loop().create_task(publish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def leave(self, timeout: float | None = None) -> None:
        """Leave gracefully: our successor gets our whole range first, then §10.9."""
        if self.replicator is not None:
            await self.replicator.hand_off()
        self.close()
        await self.node.leave(timeout)

    def close(self) -> None:
        """Stop the timers and replication work (the node is closed separately)."""
        if self.replicator is not None:
            self.replicator.stop()
        for task in list(self._tasks):
            task.cancel()


_ATTACHED: weakref.WeakKeyDictionary[Node, Storage] = weakref.WeakKeyDictionary()


def _certificate_store(client: StorageClient, resolve: Resolve) -> CertificateStore:
    certificates = CertificateStore(client)
    if isinstance(resolve, CertificateResolver):
        certificates.install(resolve)
    return certificates


__all__ = ["Storage"]

"""Replication and data migration for CHORD-RELOAD (RFC 6940 §10.4, §10.5, §10.7.3).

The peer responsible for a Resource-ID keeps copies on its next two successors (§10.4):

- after an original Store it stores what was written on each replica, with replica
  numbers 1 and 2 and its own generation counter (§7.4.1.1);
- when the topology asks (:class:`~reload_core.node.OverlayHooks`): ``replicate`` sends
  the data of a range to new members of the replica set (§10.7.3), or to the replica set
  of a range that a failed or departed predecessor left to this peer; ``hand_over`` moves
  a range to a joining peer (§10.5 step 6) or a new predecessor (§6.4.2.3);
  ``responsibility_changed`` deletes what lies outside (replica_start, end], where this
  peer is no longer among the three peers holding it (§10.7.3);
- every ``refresh_interval`` it stores its whole range on its replicas again, which puts
  back whatever a replica lost or missed; values the replica already has change nothing.

Values passed on carry the lifetime they have left (§7.4.1.1). A replica Store refused
with ``Error_Data_Too_Old`` or ``Error_Generation_Counter_Too_Low`` means the other peer
has newer data: it is fetched and merged here, newer storage time winning (§7.4.1.1).

Together this keeps every value as long as fewer than three peers of a replica set fail
between two stabilisations: each failure or departure is followed by new copies.

A receiving peer takes a replica Store only from a plausible sender
(:func:`~reload_core.storage.placement.plausible_replica_source`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from reload_core.node.chord_driver import OverlayHooks
from reload_core.node.errors import NodeClosedError, RequestError
from reload_core.security.signing import Resolve, SignatureError, verify_stored_data
from reload_core.storage.placement import everything, in_range
from reload_core.storage.service import bucket
from reload_core.storage.store import DataStore, KindStored, KindValues, StoredValue, is_synthesized
from reload_core.wire.codes import ErrorCode, KindId, MessageCode
from reload_core.wire.message import NodeDestination, enum_or_int
from reload_core.wire.storage import (
    FetchAns,
    FetchReq,
    StoreKindData,
    StoreReq,
)

if TYPE_CHECKING:
    from reload_core.node.node import Node

log = logging.getLogger(__name__)

#: Room left in a message for the forwarding header, the sender's certificate and the
#: signature when replica Stores are cut to fit max-message-size.
_ENVELOPE_ALLOWANCE = 1800


class Replicator(OverlayHooks):
    """Carries out §10.4/§10.7.3 for one peer; set it as ``node.hooks`` and call
    :meth:`start`. Work runs as asyncio tasks; :meth:`wait_idle` waits for all of it."""

    def __init__(
        self,
        node: Node,
        store: DataStore,
        resolve: Resolve,
        *,
        refresh_interval: float | None = None,
        max_parallel: int = 16,
    ) -> None:
        self.node = node
        self.store = store
        self.resolve = resolve
        self.refresh_interval = (
            refresh_interval if refresh_interval is not None else node.settings.chord.update_interval
        )
        self._limit = asyncio.Semaphore(max_parallel)
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._handing_over: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self._timers: dict[str, object] = {}
        self._stopped = False
        self._listeners: list[Callable[[], None]] = []
        self.stores_sent = 0
        self.store_failures = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Arm the expiry and refresh timers."""
        self._stopped = False
        self._arm("refresh", self.refresh_interval, self._on_refresh)
        self._arm_expiry()

    def stop(self) -> None:
        self._stopped = True
        for handle in self._timers.values():
            handle.cancel()  # type: ignore[attr-defined]
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Return once no replication work is in flight."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                self._idle.clear()
                await self._idle.wait()

    def _arm(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()  # type: ignore[attr-defined]
        if not self._stopped:
            self._timers[name] = self.node.clock.call_later(delay, callback)

    def _arm_expiry(self) -> None:
        due = self.store.next_expiry()
        if due is not None:
            self._arm("expiry", max(1.0, due - self.node.clock.time()), self._on_expiry)

    def _on_expiry(self) -> None:
        self._timers.pop("expiry", None)
        self.store.expire(self.node.clock.time())
        self._arm_expiry()

    def _on_refresh(self) -> None:
        self._timers.pop("refresh", None)
        if self.node.is_joined:
            nt = self.node.topology.neighbor_table
            targets = tuple(n.to_bytes() for n in nt.replica_targets())
            if targets:
                self.replicate(targets, nt.range_start.to_bytes(), self.node.node_id)
        self._arm("refresh", self.refresh_interval, self._on_refresh)
        self._arm_expiry()

    def _spawn(self, work: Callable[[], Awaitable[None]]) -> asyncio.Task[None] | None:
        if self._stopped:
            return None

        async def run() -> None:
            try:
                await work()
            except (NodeClosedError, asyncio.CancelledError):
                pass
            except Exception:
                log.exception("replication work failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("replication listener failed")

    def add_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` whenever a piece of replication work ends; returns a remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # ------------------------------------------------------------------ OverlayHooks

    def hand_over(self, to: bytes, start: bytes, end: bytes, done: Callable[[], None]) -> None:
        """§10.5 step 6 / §6.4.2.3: store (start, end] on ``to``, then ``done()``.

        When ``start`` is our predecessor, ``to`` also becomes the first replica holder of
        that predecessor's range (§10.4), which we hold as its second: it gets those values
        too. The predecessor's own replica Stores to the newcomer may wait out the successor
        hold-down (§10.7.1); should it fail meanwhile, the newcomer, now responsible, would
        otherwise lack data that only we had left."""
        ranges = self._handing_over.setdefault(to, [])
        ranges.append((start, end))
        first = self._replicated_from(start)
        resources = list(self.store.select(lambda rid: in_range(rid, first, end)))

        async def work() -> None:
            try:
                await asyncio.gather(*(self._send_resource(to, rid, 1) for rid in resources))
            finally:
                ranges.remove((start, end))
                if not ranges:
                    self._handing_over.pop(to, None)
                done()

        if self._spawn(work) is None:
            done()

    def _replicated_from(self, start: bytes) -> bytes:
        """The predecessor before ``start`` when ``start`` is one of ours, else ``start``."""
        predecessors = self.node.predecessors
        if start in predecessors:
            i = predecessors.index(start)
            if i + 1 < len(predecessors) and predecessors[i + 1] != self.node.node_id:
                return predecessors[i + 1]
        return start

    def replicate(self, to: tuple[bytes, ...], start: bytes, end: bytes) -> None:
        """§10.4, §10.7.3: store our data in (start, end] on each of ``to``."""
        resources = list(self.store.select(lambda rid: in_range(rid, start, end)))
        if not resources:
            return
        for target in to:
            number = self._replica_number(target)

            async def work(target: bytes = target, number: int = number) -> None:
                await asyncio.gather(*(self._send_resource(target, rid, number) for rid in resources))

            self._spawn(work)

    def responsibility_changed(self, start: bytes, end: bytes, replica_start: bytes) -> None:
        """§10.7.3: delete what this peer no longer holds as owner or replica."""
        if replica_start == end:
            return
        gone = list(self.store.select(lambda rid: not in_range(rid, replica_start, end)))
        if gone:
            log.debug("dropping %d resources outside the replica range", len(gone))
            self.store.drop(gone)

    def num_resources(self) -> int:
        return len(self.store.resources())

    # ------------------------------------------------------------------ after a Store

    def replicate_written(self, resource: bytes, results: tuple[KindStored, ...]) -> None:
        """§10.4: send what an original Store wrote to the replicas (and to a peer a range
        holding it is being handed over to, so that it does not miss the change)."""
        now = self.node.clock.time()
        kinds = [
            KindValues(r.kind, r.generation_counter, tuple(v for v in r.written if v.alive(now)))
            for r in results
            if r.written
        ]
        if not kinds:
            return
        targets = [(t, i + 1) for i, t in enumerate(self.node.successors[:2])]
        for to, ranges in self._handing_over.items():
            if any(in_range(resource, s, e) for s, e in ranges) and to not in dict(targets):
                targets.append((to, 1))
        for target, number in targets:

            async def work(target: bytes = target, number: int = number) -> None:
                await self._send(target, resource, number, kinds)

            self._spawn(work)

    async def hand_off(self) -> None:
        """Before leaving (§10.9): make sure the successor that takes over our range has
        all of it, and wait for the Stores."""
        successors = self.node.successors
        if not successors or not self.node.is_joined:
            return
        start = self.node.topology.neighbor_table.range_start.to_bytes()
        resources = list(self.store.select(lambda rid: in_range(rid, start, self.node.node_id)))
        await asyncio.gather(*(self._send_resource(successors[0], rid, 1) for rid in resources))

    # ------------------------------------------------------------------ sending

    def _replica_number(self, target: bytes) -> int:
        successors = self.node.successors[:2]
        return successors.index(target) + 1 if target in successors else 1

    async def _send_resource(self, to: bytes, resource: bytes, number: int) -> None:
        kinds = self.store.export(resource, self.node.clock.time())
        if kinds:
            await self._send(to, resource, number, list(kinds))

    async def _send(self, to: bytes, resource: bytes, number: int, kinds: Sequence[KindValues]) -> None:
        """Replica Stores of ``kinds`` at ``resource`` on ``to``, cut to fit max-message-size."""
        for chunk, certificates in self._chunks(kinds):
            body = StoreReq(resource, number, chunk)
            async with self._limit:
                self.stores_sent += 1
                try:
                    await self.node.request(
                        NodeDestination(to), MessageCode.store_req, body, certificates=certificates
                    )
                except RequestError as exc:
                    self.store_failures += 1
                    if exc.error_code in (
                        ErrorCode.Error_Data_Too_Old,
                        ErrorCode.Error_Generation_Counter_Too_Low,
                    ):
                        await self._resync(to, resource, [int(k.kind) for k in chunk])
                    else:
                        log.debug("replica Store to %s failed: %s", to.hex(), exc)

    def _chunks(
        self, kinds: Sequence[KindValues]
    ) -> Iterable[tuple[tuple[StoreKindData, ...], tuple[bytes, ...]]]:
        """StoreKindData groups whose values and certificates fit in one message."""
        budget = max(1024, self.node.settings.max_message_size - _ENVELOPE_ALLOWANCE)
        now = self.node.clock.time()
        chunk: list[StoreKindData] = []
        certs: dict[bytes, None] = {}
        size = 0
        for kv in kinds:
            pending: list[StoredValue] = []
            for v in kv.values:
                extra = v.size + 16 + (len(v.certificate) + 3 if v.certificate not in certs else 0)
                if (chunk or pending) and size + extra > budget:
                    if pending:
                        chunk.append(self._kind_data(kv, pending, now))
                    yield tuple(chunk), tuple(certs)
                    chunk, certs, size, pending = [], {}, 0, []
                    extra = v.size + 16 + len(v.certificate) + 3
                pending.append(v)
                if v.certificate:
                    certs[v.certificate] = None
                size += extra
            if pending:
                chunk.append(self._kind_data(kv, pending, now))
        if chunk:
            yield tuple(chunk), tuple(certs)

    @staticmethod
    def _kind_data(kv: KindValues, values: Sequence[StoredValue], now: float) -> StoreKindData:
        return StoreKindData(
            enum_or_int(KindId, kv.kind), kv.generation, tuple(v.as_sent(now) for v in values)
        )

    async def _resync(self, peer: bytes, resource: bytes, kinds: Sequence[int]) -> None:
        """§7.4.1.1: the peer has newer data; fetch it and take in what is newer."""
        specifiers = [everything(k, self.store.kinds[k].data_model) for k in kinds if k in self.store.kinds]
        if not specifiers:
            return
        try:
            body, message = await self.node.request(
                NodeDestination(peer), MessageCode.fetch_req, FetchReq(resource, tuple(specifiers))
            )
        except RequestError as exc:
            log.debug("resynchronising fetch from %s failed: %s", peer.hex(), exc)
            return
        assert isinstance(body, FetchAns)
        certificates = bucket(message)
        now = self.node.clock.time()
        incoming: list[KindValues] = []
        for kr in body.kind_responses:
            good: list[StoredValue] = []
            for data in kr.values:
                if is_synthesized(data):
                    continue
                try:
                    cert = verify_stored_data(resource, int(kr.kind), data, self.resolve, certificates)
                except SignatureError:
                    continue
                good.append(StoredValue.received(data, now, cert.der))
            incoming.append(KindValues(int(kr.kind), kr.generation, tuple(good)))
        self.store.merge(resource, incoming, now)


__all__ = ["Replicator"]

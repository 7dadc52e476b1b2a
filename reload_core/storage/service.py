"""Store, Fetch, Stat and Find on a peer (RFC 6940 §7.4).

:class:`StorageService` answers the four storage methods for a
:class:`~reload_core.node.Node` over its :class:`~reload_core.storage.store.DataStore`.
On Store (§7.4.1.1) it checks, in this order:

1. an original Store (replica_number 0) reaches the peer responsible for the resource,
   else ``Error_Not_Found``; a replica Store comes from a plausible peer (§10.4, see
   :func:`~reload_core.storage.placement.plausible_replica_source`), else
   ``Error_Forbidden``;
2. every Kind is known, else ``Error_Unknown_Kind`` listing them;
3. every value's signature verifies (§7.1) with a certificate the overlay trusts (from the
   message's certificate bucket or the resolver's store), else ``Error_Forbidden``;
4. every value's signer, and for an original Store the request's signer too, satisfies
   the Kind's access control policy (§7.3), else ``Error_Forbidden``;
5. the data store's rules: generation counters, storage times, limits, quota.

The answer lists, per Kind, the generation counter and the replicas (§7.4.1.2); once it is
sent, the written values go to the replicas (§10.4). Fetch and Stat answer from the store,
leaving out any value whose signature no longer verifies (e.g. its certificate expired,
§7.1); a FetchAns carries the certificates of the values' signers so that the fetching
node can verify them too (§6.3.4, §7.4.2.2). Find (§7.4.4) answers for the range this peer
is responsible for and ``Error_Not_Found`` elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reload_core.ids import NodeId
from reload_core.node.errors import RequestRejected
from reload_core.node.requests import IncomingRequest
from reload_core.security.signing import Resolve, SignatureError, signing_node_id, verify_stored_data
from reload_core.storage.access import AccessPolicy, SignedBy
from reload_core.storage.errors import StorageError, forbidden
from reload_core.storage.placement import plausible_replica_source
from reload_core.storage.store import (
    DataStore,
    IncomingValue,
    KindStored,
    KindWrite,
    StoredValue,
    is_synthesized,
    unknown_kinds_error,
)
from reload_core.wire.codes import CertificateType, ErrorCode, KindId, MessageCode
from reload_core.wire.message import Message, enum_or_int
from reload_core.wire.storage import (
    DataValue,
    FetchAns,
    FetchKindResponse,
    FetchReq,
    FindAns,
    FindReq,
    StatAns,
    StatReq,
    StoreAns,
    StoredData,
    StoreKindResponse,
    StoreReq,
)

if TYPE_CHECKING:
    from reload_core.node.node import Node


def bucket(message: Message) -> tuple[bytes, ...]:
    """The X.509 certificates a message carries (§6.3.4)."""
    return tuple(c.certificate for c in message.security_block.certificates if c.type == CertificateType.X509)


def rejected(error: StorageError) -> RequestRejected:
    """The ErrorResponse for a StorageError: its error_info when §7.4.1.2 prescribes one
    (a StoreAns, an UnknownKinds), else the reason as text."""
    return RequestRejected(error.code, error.error_info or error.reason)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class VerifiedValue:
    """A StoredData whose signature verified, with who signed it."""

    data: StoredData
    signer: SignedBy


def verify_values(
    resource: bytes,
    kind: int,
    values: Sequence[StoredData],
    resolve: Resolve,
    certificates: Sequence[bytes],
) -> list[VerifiedValue]:
    """Verify each value's signature (§7.1); ``Error_Forbidden`` on the first failure."""
    out: list[VerifiedValue] = []
    for data in values:
        try:
            cert = verify_stored_data(resource, kind, data, resolve, certificates)
            node_id = signing_node_id(data.signature.identity, cert)
        except SignatureError as exc:
            raise forbidden(f"Kind {kind}: a value's signature is not valid ({exc})") from None
        out.append(VerifiedValue(data, SignedBy(cert, node_id)))
    return out


def _value_bytes(data: StoredData) -> bytes:
    v = data.value
    return v.value if isinstance(v, DataValue) else v.value.value


class StorageService:
    """The storage methods of one peer; :meth:`install` registers them on the node.

    ``on_written(resource, results)`` is called after an original Store's answer went out,
    with what it wrote (the replication manager sends it to the replicas, §10.4).
    ``replicas()`` names the peers that hold replicas of this peer's data, for StoreAns.
    """

    def __init__(
        self,
        node: Node,
        store: DataStore,
        access: AccessPolicy,
        resolve: Resolve,
        *,
        on_written: Callable[[bytes, tuple[KindStored, ...]], None] | None = None,
        replicas: Callable[[], tuple[bytes, ...]] | None = None,
    ) -> None:
        self.node = node
        self.store = store
        self.access = access
        self.resolve = resolve
        self.on_written = on_written
        self.replicas = replicas or (lambda: node.successors[:2])

    def install(self) -> None:
        self.node.register_handler(MessageCode.store_req, self.on_store)
        self.node.register_handler(MessageCode.fetch_req, self.on_fetch)
        self.node.register_handler(MessageCode.stat_req, self.on_stat)
        self.node.register_handler(MessageCode.find_req, self.on_find)

    def _now(self) -> float:
        return self.node.clock.time()

    # ------------------------------------------------------------------ §7.4.1 Store

    def on_store(self, request: IncomingRequest) -> StoreAns:
        body = request.body
        assert isinstance(body, StoreReq)
        try:
            results = self.accept_store(body, request)
        except StorageError as exc:
            raise rejected(exc) from None
        replica = body.replica_number != 0
        replicas = () if replica else self.replicas()
        if not replica and self.on_written is not None and any(r.written for r in results):
            hook = self.on_written
            request.defer(lambda: hook(body.resource, results))
        return StoreAns(
            tuple(
                StoreKindResponse(enum_or_int(KindId, r.kind), r.generation_counter, replicas)
                for r in results
            )
        )

    def accept_store(self, body: StoreReq, request: IncomingRequest) -> tuple[KindStored, ...]:
        """Checks 1-5 of the module docstring, then the store; raises StorageError."""
        resource = body.resource
        replica = body.replica_number != 0
        if self.node.is_client:
            raise StorageError(ErrorCode.Error_Forbidden, "a client stores no data (§4.2)")
        if len(resource) != self.node.settings.node_id_length:
            raise StorageError(ErrorCode.Error_Invalid_Message, f"Resource-ID of {len(resource)} bytes")
        if not replica:
            if not self.node.is_responsible(resource):
                raise StorageError(ErrorCode.Error_Not_Found, "this peer is not responsible for the resource")
        elif not plausible_replica_source(
            self.node.topology.neighbor_table,
            NodeId.from_bytes(request.signer_node_id),
            NodeId.from_bytes(resource),
        ):
            raise forbidden(
                f"replica Store from {request.signer_node_id.hex()}, which is not in this peer's view of the "
                "resource's replica set (§10.4)"
            )
        unknown = self.store.kinds.unknown(k.kind for k in body.kind_data)
        if unknown:
            raise unknown_kinds_error(unknown)
        certificates = bucket(request.message)
        origin = SignedBy(request.signer, request.signer_node_id)
        writes: list[KindWrite] = []
        for kd in body.kind_data:
            kind = self.store.kinds[kd.kind]
            verified = verify_values(resource, kd.kind, kd.values, self.resolve, certificates)
            for v in verified:
                self.access.check(kind, resource, v.data.value, v.signer)
                if not replica:
                    # §7.3: in a non-replica store the StoreReq's signer conforms too.
                    self.access.check(kind, resource, v.data.value, origin)
            writes.append(
                KindWrite(
                    int(kd.kind),
                    kd.generation_counter,
                    tuple(IncomingValue(v.data, v.signer.certificate.der) for v in verified),
                )
            )
        return self.store.store(resource, writes, self._now(), replica=replica)

    # ------------------------------------------------------------------ §7.4.2 Fetch

    def on_fetch(self, request: IncomingRequest) -> FetchAns:
        body = request.body
        assert isinstance(body, FetchReq)
        now = self._now()
        try:
            results = self.store.fetch(body.resource, body.specifiers, now)
        except StorageError as exc:
            raise rejected(exc) from None
        responses: list[FetchKindResponse] = []
        certificates: dict[bytes, None] = {}
        carried: set[bytes] = set()
        for r in results:
            good = [v for v in r.values if self._still_valid(body.resource, r.kind, v)]
            responses.append(
                FetchKindResponse(
                    enum_or_int(KindId, r.kind), r.generation, tuple(v.as_sent(now) for v in good)
                )
            )
            certificates.update((v.certificate, None) for v in good if v.certificate)
            if r.kind in (KindId.CERTIFICATE_BY_NODE, KindId.CERTIFICATE_BY_USER):
                carried.update(_value_bytes(v.data) for v in good)
        # A Certificate Store value is its signer's certificate (§8): no need to send it twice.
        request.add_response_certificates(tuple(c for c in certificates if c not in carried))
        return FetchAns(tuple(responses))

    def _still_valid(self, resource: bytes, kind: int, value: StoredValue) -> bool:
        """A stored value whose signature still verifies; synthesized ones pass (§7.4.2.2)."""
        if is_synthesized(value.data):
            return True
        try:
            verify_stored_data(resource, kind, value.data, self.resolve, (value.certificate,))
        except SignatureError:
            return False
        return True

    # ------------------------------------------------------------------ §7.4.3 Stat

    def on_stat(self, request: IncomingRequest) -> StatAns:
        body = request.body
        assert isinstance(body, StatReq)
        try:
            return StatAns(self.store.stat(body.resource, body.specifiers, self._now()))
        except StorageError as exc:
            raise rejected(exc) from None

    # ------------------------------------------------------------------ §7.4.4 Find

    def on_find(self, request: IncomingRequest) -> FindAns:
        body = request.body
        assert isinstance(body, FindReq)
        if self.node.is_client or not self.node.is_responsible(body.resource):
            raise RequestRejected(ErrorCode.Error_Not_Found, "this peer is not responsible for the resource")
        return self.store.find(body.resource, body.kinds, self._now(), self.node.is_responsible)


__all__ = ["StorageService", "VerifiedValue", "bucket", "rejected", "verify_values"]

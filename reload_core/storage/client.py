"""Storing and fetching as a node of the overlay (RFC 6940 §7.4): :class:`StorageClient`.

The client signs every value it stores (§7.1) with its node's credentials, routes the
request to the Resource-ID (§6.1) and verifies every value it fetches: values whose
signature does not verify, or whose certificate the overlay does not trust (e.g. it has
expired), are discarded and counted (§7.4.2.2: "MUST be discarded ... SHOULD somehow
signal to the application that a partial response was received").

Storage times are the node's wall clock in milliseconds, kept strictly increasing per
client. When a Store is refused with ``Error_Data_Too_Old`` (the stored value is newer,
e.g. another device with a clock ahead), the client fetches the stored storage times and
stores once more just after them, as §7 allows. Errors come back as
:class:`~reload_core.storage.errors.StorageError` with the RELOAD error code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reload_core.node.errors import RequestError
from reload_core.security.certificates import NodeCertificate
from reload_core.security.signing import Resolve, SignatureError, Signer, sign_stored_data, verify_stored_data
from reload_core.storage.errors import StorageError
from reload_core.storage.kinds import KindRegistry
from reload_core.storage.placement import everything
from reload_core.storage.service import bucket
from reload_core.storage.store import is_synthesized
from reload_core.wire.codes import ErrorCode, KindId, MessageCode
from reload_core.wire.message import Message, enum_or_int
from reload_core.wire.registry import WireStruct
from reload_core.wire.storage import (
    ArrayEntry,
    ArrayRange,
    DataValue,
    DictionaryEntry,
    FetchAns,
    FetchReq,
    FindAns,
    FindKindData,
    FindReq,
    StatAns,
    StatKindResponse,
    StatReq,
    StoreAns,
    StoredData,
    StoredDataSpecifier,
    StoredDataValue,
    StoreKindData,
    StoreReq,
)

if TYPE_CHECKING:
    from reload_core.node.node import Node

DEFAULT_LIFETIME = 3600
"""Seconds a value lives unless the caller says otherwise (local choice; §7 sets none)."""

MIN_REMOVAL_LIFETIME = 60


@dataclass(frozen=True, slots=True)
class StoreResult:
    """A Store's outcome for one Kind: the generation counter after it, the peers that
    hold replicas (§7.4.1.2), and the signed values as sent."""

    kind: int
    generation: int
    replicas: tuple[bytes, ...]
    values: tuple[StoredData, ...]


@dataclass(frozen=True, slots=True)
class FetchedKind:
    """One Kind of a FetchAns after verification: the values whose signatures verified
    (and synthesized nonexistent ones, vouched for by the response's signature), their
    signers (None for synthesized values), and how many values were discarded."""

    kind: int
    generation: int
    values: tuple[StoredData, ...]
    signers: tuple[NodeCertificate | None, ...]
    discarded: int = 0

    @property
    def existing(self) -> tuple[StoredData, ...]:
        """The values that exist (not removed, not synthesized)."""
        return tuple(v for v in self.values if _data_value(v.value).exists)


def _data_value(value: StoredDataValue) -> DataValue:
    return value if isinstance(value, DataValue) else value.value


def as_storage_error(exc: RequestError) -> StorageError:
    info = exc.error_info
    structured = exc.error_code in (ErrorCode.Error_Generation_Counter_Too_Low, ErrorCode.Error_Unknown_Kind)
    reason = "" if structured else info.decode("utf-8", "replace")
    code = exc.error_code
    name = code.name if isinstance(code, ErrorCode) else f"error {int(code):#x}"
    return StorageError(code, reason or name, info if structured else b"")


class StorageClient:
    """Store, Fetch, Stat, Find and remove over ``node``; see the module docstring."""

    def __init__(
        self,
        node: Node,
        resolve: Resolve,
        kinds: KindRegistry,
        *,
        signer: Signer | None = None,
    ) -> None:
        self.node = node
        self.resolve = resolve
        self.kinds = kinds
        self.signer = signer or node.signer
        self._last_time = 0

    def storage_time(self, after: int = 0) -> int:
        """Milliseconds since the epoch (§7), after every earlier one and after ``after``."""
        now = int(self.node.wall_clock() * 1000)
        self._last_time = max(now, self._last_time + 1, after + 1)
        return self._last_time

    def _kind(self, kind: int) -> int:
        if kind not in self.kinds:
            raise StorageError(
                ErrorCode.Error_Unknown_Kind, f"Kind {kind} is not in this overlay's configuration"
            )
        return int(kind)

    # ------------------------------------------------------------------ Store

    async def store(
        self,
        resource: bytes,
        kind: int,
        values: Sequence[StoredDataValue],
        *,
        lifetime: int = DEFAULT_LIFETIME,
        generation: int = 0,
    ) -> StoreResult:
        """Sign and store ``values`` of ``kind`` at Resource-ID ``resource`` (§7.4.1)."""
        kind = self._kind(kind)
        try:
            return await self._store_once(resource, kind, values, lifetime, generation, self.storage_time())
        except StorageError as exc:
            if exc.code != ErrorCode.Error_Data_Too_Old:
                raise
        # §7: another writer's clock is ahead; go just past the stored storage times.
        fetched = await self.fetch(resource, everything(kind, self.kinds[kind].data_model))
        latest = max((v.storage_time for f in fetched for v in f.values), default=0)
        return await self._store_once(resource, kind, values, lifetime, generation, self.storage_time(latest))

    async def _store_once(
        self,
        resource: bytes,
        kind: int,
        values: Sequence[StoredDataValue],
        lifetime: int,
        generation: int,
        storage_time: int,
    ) -> StoreResult:
        signed = tuple(
            sign_stored_data(resource, kind, storage_time, lifetime, v, self.signer) for v in values
        )
        body = StoreReq(resource, 0, (StoreKindData(enum_or_int(KindId, kind), generation, signed),))
        answer = await self._request(resource, MessageCode.store_req, body)
        assert isinstance(answer, StoreAns)
        for kr in answer.kind_responses:
            if int(kr.kind) == kind:
                return StoreResult(kind, kr.generation_counter, kr.replicas, signed)
        raise StorageError(ErrorCode.Error_Invalid_Message, f"the StoreAns has no answer for Kind {kind}")

    async def remove(
        self,
        resource: bytes,
        kind: int,
        *,
        key: bytes | None = None,
        index: int | None = None,
        lifetime: int | None = None,
    ) -> StoreResult:
        """Remove a value by storing a nonexistent one in its place (§7.4.1.3): the single
        value, the dictionary entry ``key`` or the array entry ``index``. Its lifetime is by
        default what the removed value had left (at least a minute), as §7.4.1.3 advises."""
        kind = self._kind(kind)
        model = self.kinds[kind].data_model
        gone = DataValue.nonexistent()
        value: StoredDataValue
        spec: StoredDataSpecifier
        if key is not None:
            value, spec = DictionaryEntry(key, gone), StoredDataSpecifier.dictionary(kind, [key])
        elif index is not None:
            value, spec = ArrayEntry(index, gone), StoredDataSpecifier.array(kind, [ArrayRange(index, index)])
        else:
            value, spec = gone, StoredDataSpecifier.single(kind)
        if spec.data_model is not model:
            raise StorageError(ErrorCode.Error_Invalid_Message, f"Kind {kind} is {model.name}")
        if lifetime is None:
            fetched = await self.fetch(resource, spec)
            left = max((v.lifetime for f in fetched for v in f.existing), default=0)
            lifetime = max(left, MIN_REMOVAL_LIFETIME)
        return await self.store(resource, kind, [value], lifetime=lifetime)

    # ------------------------------------------------------------------ Fetch, Stat, Find

    async def fetch(
        self, resource: bytes, specifiers: StoredDataSpecifier | Sequence[StoredDataSpecifier]
    ) -> tuple[FetchedKind, ...]:
        """Fetch (§7.4.2) and verify every value (§7.4.2.2)."""
        specs = (specifiers,) if isinstance(specifiers, StoredDataSpecifier) else tuple(specifiers)
        for s in specs:
            self._kind(s.kind)
        answer, message = await self._request_message(
            resource, MessageCode.fetch_req, FetchReq(resource, specs)
        )
        assert isinstance(answer, FetchAns)
        certificates = bucket(message)
        return tuple(
            self._verified(resource, int(kr.kind), kr.generation, kr.values, certificates)
            for kr in answer.kind_responses
        )

    @staticmethod
    def _self_certified(kind: int, values: Sequence[StoredData]) -> tuple[bytes, ...]:
        """A Certificate Store value is the certificate of the node that stored it (§8), so
        it may verify its own signature."""
        if kind not in (KindId.CERTIFICATE_BY_NODE, KindId.CERTIFICATE_BY_USER):
            return ()
        return tuple(
            v.value.value.value for v in values if isinstance(v.value, ArrayEntry) and v.value.value.exists
        )

    def _verified(
        self,
        resource: bytes,
        kind: int,
        generation: int,
        values: Sequence[StoredData],
        certificates: Sequence[bytes],
    ) -> FetchedKind:
        good: list[StoredData] = []
        signers: list[NodeCertificate | None] = []
        discarded = 0
        certificates = [*certificates, *self._self_certified(kind, values)]
        for data in values:
            if is_synthesized(data):
                if not _data_value(data.value).exists:
                    good.append(data)
                    signers.append(None)
                else:
                    discarded += 1  # an unsigned value claiming to exist is a forgery
                continue
            try:
                cert = verify_stored_data(resource, kind, data, self.resolve, certificates)
            except SignatureError:
                discarded += 1
                continue
            good.append(data)
            signers.append(cert)
        return FetchedKind(kind, generation, tuple(good), tuple(signers), discarded)

    async def stat(
        self, resource: bytes, specifiers: StoredDataSpecifier | Sequence[StoredDataSpecifier]
    ) -> tuple[StatKindResponse, ...]:
        """Stat (§7.4.3): metadata of the values, without the values."""
        specs = (specifiers,) if isinstance(specifiers, StoredDataSpecifier) else tuple(specifiers)
        answer = await self._request(resource, MessageCode.stat_req, StatReq(resource, specs))
        assert isinstance(answer, StatAns)
        return answer.kind_responses

    async def find(self, resource: bytes, kinds: Sequence[int]) -> tuple[FindKindData, ...]:
        """Find (§7.4.4): per Kind, the closest Resource-ID the responsible peer holds."""
        answer = await self._request(resource, MessageCode.find_req, FindReq(resource, tuple(kinds)))
        assert isinstance(answer, FindAns)
        return answer.results

    # ------------------------------------------------------------------ transport

    async def _request(self, resource: bytes, code: MessageCode, body: WireStruct) -> WireStruct:
        answer, _ = await self._request_message(resource, code, body)
        return answer

    async def _request_message(
        self, resource: bytes, code: MessageCode, body: WireStruct
    ) -> tuple[WireStruct, Message]:
        try:
            return await self.node.request(resource, code, body)
        except RequestError as exc:
            raise as_storage_error(exc) from None


__all__ = ["DEFAULT_LIFETIME", "FetchedKind", "StorageClient", "StoreResult", "as_storage_error"]

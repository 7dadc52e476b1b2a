"""One peer's data store (RFC 6940 §5.1, §7, §7.2, §7.4): pure, no I/O, time passed in.

Resource-ID → Kind-ID → values, in the Kind's data model (§7.2): one single value, an
array (sparse, by index) or a dictionary (by key). The rules applied on Store (§7.4.1.1):

- every Kind must be known, else ``Error_Unknown_Kind`` listing them all (§7.4.1.2);
- the request is atomic: every check is made on a staged copy and nothing changes unless
  all of it succeeds;
- original stores: a nonzero ``generation_counter`` must equal the stored one, else
  ``Error_Generation_Counter_Too_Low`` whose error_info is a StoreAns with the current
  counters (§7.4.1.2); a change raises the counter by one per Kind. Replica stores take the
  message's counter and must not carry 0;
- a value replacing another needs a later ``storage_time``, else ``Error_Data_Too_Old``
  (§7, §13.5.3). The very same signed value stored again (a retransmission, a replica
  refresh) changes nothing and is not an error;
- each value's ``DataValue.value`` is at most ``max-size`` bytes and a Resource-ID holds at
  most ``max-count`` values of a Kind, else ``Error_Data_Too_Large`` (§11.1, §13.5.2);
- the peer's own quota (bytes and/or values, :class:`Quota`) is never exceeded: a Store
  past it fails with ``Error_Data_Too_Large`` and nothing is dropped to make room.

Removal is a Store of ``exists = False`` (§7.4.1.3), kept, replicated and aged like any
other value. ``lifetime`` counts from when the Store arrived (§7): a value is gone once its
lifetime has passed, and when it is passed on (replicas, hand-overs) its lifetime is what
remains of it (§7.4.1.1). Arrays: a Store at index 0xffffffff appends (§7.2.2) and the
value keeps the index it got; gaps are answered with synthesized nonexistent values
(§7.4.1.3, §7.4.2.2). So that a gap cannot be made arbitrarily large, a Store at an
explicit index may leave at most ``max-count`` missing entries after the current end.

Signatures and access control are checked by the caller before :meth:`DataStore.store`
(see :mod:`reload_core.storage.access` and :mod:`reload_core.storage.service`); values
come in with the DER certificate of their signer, which is kept to go out with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from reload_core.storage.errors import StorageError, forbidden
from reload_core.storage.kinds import Kind, KindRegistry
from reload_core.wire.codes import (
    DataModel,
    ErrorCode,
    HashAlgorithm,
    KindId,
    SignatureAlgorithm,
    SignerIdentityType,
)
from reload_core.wire.message import enum_or_int
from reload_core.wire.registry import encode_struct
from reload_core.wire.storage import (
    APPEND_INDEX,
    LAST_INDEX,
    ArrayEntry,
    ArraySpecifier,
    DataValue,
    DictionaryEntry,
    DictionarySpecifier,
    FetchKindResponse,
    FindAns,
    FindKindData,
    SingleValueSpecifier,
    StatKindResponse,
    StoreAns,
    StoredData,
    StoredDataSpecifier,
    StoredMetaData,
    StoreKindResponse,
    UnknownKinds,
    data_model_of,
    synthetic_signature,
)

ValueKey = int | bytes | None
"""Where a value sits in its Kind: None (single value), an array index, a dictionary key."""


@dataclass(frozen=True, slots=True)
class Quota:
    """This peer's own limits on what it stores for others (§13.5.2 leaves them local).

    ``None`` is no limit. Bytes are counted as encoded StoredData structures.
    """

    max_bytes: int | None = None
    max_entries: int | None = None


@dataclass(frozen=True, slots=True)
class StoredValue:
    """A value as this peer holds it: the signed StoredData, when it expires on the
    store's clock, and its signer's DER certificate (sent along with it, §6.3.4)."""

    data: StoredData
    expires_at: float
    certificate: bytes = b""
    size: int = field(default=0, compare=False)

    @classmethod
    def received(cls, data: StoredData, now: float, certificate: bytes = b"") -> StoredValue:
        return cls(data, now + data.lifetime, certificate, data.length + 4)

    def remaining_lifetime(self, now: float) -> int:
        """Seconds left, rounded up: the lifetime to pass on (§7.4.1.1)."""
        return max(0, min(0xFFFFFFFF, math.ceil(self.expires_at - now)))

    def as_sent(self, now: float) -> StoredData:
        """The StoredData with its lifetime lowered by the time spent here (§7.4.1.1)."""
        return replace(self.data, lifetime=self.remaining_lifetime(now))

    def alive(self, now: float) -> bool:
        return now < self.expires_at


@dataclass(frozen=True, slots=True)
class IncomingValue:
    """A StoredData of a Store request and its signer's certificate (DER)."""

    data: StoredData
    certificate: bytes = b""


@dataclass(frozen=True, slots=True)
class KindWrite:
    """One StoreKindData (§7.4.1.1) as the store takes it."""

    kind: int
    generation_counter: int
    values: tuple[IncomingValue, ...]


@dataclass(frozen=True, slots=True)
class KindStored:
    """The outcome for one Kind: its generation counter after the Store and the values the
    Store actually wrote (array appends with their final index), to replicate."""

    kind: int
    generation_counter: int
    written: tuple[StoredValue, ...]


@dataclass(frozen=True, slots=True)
class KindValues:
    """Values of one Kind at one Resource-ID, as fetched or exported."""

    kind: int
    generation: int
    values: tuple[StoredValue, ...]


@dataclass
class _Slot:
    generation: int = 0
    values: dict[ValueKey, StoredValue] = field(default_factory=dict)


def value_key(data: StoredData) -> ValueKey:
    v = data.value
    if isinstance(v, ArrayEntry):
        return v.index
    if isinstance(v, DictionaryEntry):
        return v.key
    return None


def same_value(a: StoredData, b: StoredData) -> bool:
    """The same signed value (lifetime aside, which changes as it is passed on; an array
    entry's index aside, which the signature does not cover, §7.4.2.2)."""
    if a.storage_time != b.storage_time or a.signature != b.signature:
        return False
    va, vb = a.value, b.value
    if isinstance(va, ArrayEntry) and isinstance(vb, ArrayEntry):
        return va.value == vb.value
    return va == vb


def synthesized(value: DataValue | ArrayEntry | DictionaryEntry) -> StoredData:
    """A value this peer has no knowledge of: exists False, empty signature (§7.4.2.2)."""
    return StoredData(0, 0, value, synthetic_signature())


def is_synthesized(data: StoredData) -> bool:
    sig = data.signature
    return sig.identity.identity_type == SignerIdentityType.none and not sig.signature_value


def unknown_kinds_error(kinds: Sequence[int]) -> StorageError:
    info = encode_struct(UnknownKinds(tuple(kinds)))
    names = ", ".join(str(int(k)) for k in kinds)
    return StorageError(ErrorCode.Error_Unknown_Kind, f"unknown Kind-ID(s) {names}", info)


class DataStore:
    """The per-peer data store; see the module docstring for the rules it applies."""

    def __init__(self, kinds: KindRegistry, quota: Quota | None = None) -> None:
        self.kinds = kinds
        self.quota = quota or Quota()
        self._data: dict[bytes, dict[int, _Slot]] = {}
        self._bytes = 0
        self._entries = 0

    # ------------------------------------------------------------------ accounting

    @property
    def bytes_used(self) -> int:
        return self._bytes

    @property
    def entries_used(self) -> int:
        return self._entries

    def resources(self) -> tuple[bytes, ...]:
        return tuple(self._data)

    def __contains__(self, resource: object) -> bool:
        return resource in self._data

    def kinds_at(self, resource: bytes) -> tuple[int, ...]:
        return tuple(self._data.get(resource, {}))

    # ------------------------------------------------------------------ §7.4.1 Store

    def store(
        self, resource: bytes, writes: Sequence[KindWrite], now: float, *, replica: bool = False
    ) -> tuple[KindStored, ...]:
        """Apply one StoreReq's values, all or nothing; see the module docstring."""
        unknown = self.kinds.unknown(w.kind for w in writes)
        if unknown:
            raise unknown_kinds_error(unknown)
        seen: set[int] = set()
        for w in writes:
            if w.kind in seen:
                raise StorageError(ErrorCode.Error_Invalid_Message, f"Kind-ID {w.kind} appears twice")
            seen.add(w.kind)
        slots = self._data.get(resource, {})
        if not replica:
            stale = [w for w in writes if w.generation_counter not in (0, self._generation(slots, w.kind))]
            if stale:
                raise self._generation_error(slots, writes)
        staged: list[tuple[KindWrite, _Slot, tuple[StoredValue, ...]]] = []
        for w in writes:
            kind = self.kinds[w.kind]
            if replica and w.generation_counter == 0:
                raise StorageError(
                    ErrorCode.Error_Invalid_Message, "a replica Store has generation counter 0"
                )
            new_slot, written = self._stage(kind, slots.get(w.kind), w, now, replica=replica)
            staged.append((w, new_slot, written))
        delta_bytes = delta_entries = 0
        for w, new_slot, _ in staged:
            old = slots.get(w.kind)
            old_values = old.values.values() if old is not None else ()
            delta_bytes += sum(v.size for v in new_slot.values.values()) - sum(v.size for v in old_values)
            delta_entries += len(new_slot.values) - len(old.values if old is not None else ())
        self._check_quota(delta_bytes, delta_entries)
        # Commit.
        target = self._data.setdefault(resource, {})
        out: list[KindStored] = []
        for w, new_slot, written in staged:
            if new_slot.values:
                target[w.kind] = new_slot
            else:
                target.pop(w.kind, None)
            out.append(KindStored(w.kind, new_slot.generation, written))
        if not target:
            del self._data[resource]
        self._bytes += delta_bytes
        self._entries += delta_entries
        return tuple(out)

    def _generation(self, slots: dict[int, _Slot], kind: int) -> int:
        slot = slots.get(kind)
        return slot.generation if slot is not None else 0

    def _generation_error(self, slots: dict[int, _Slot], writes: Sequence[KindWrite]) -> StorageError:
        """§7.4.1.2: error_info is a StoreAns with every Kind's counter and no replicas."""
        answer = StoreAns(tuple(StoreKindResponse(w.kind, self._generation(slots, w.kind)) for w in writes))
        detail = ", ".join(
            f"Kind {w.kind}: sent {w.generation_counter}, stored {self._generation(slots, w.kind)}"
            for w in writes
            if w.generation_counter not in (0, self._generation(slots, w.kind))
        )
        return StorageError(ErrorCode.Error_Generation_Counter_Too_Low, detail, encode_struct(answer))

    def _stage(
        self, kind: Kind, slot: _Slot | None, write: KindWrite, now: float, *, replica: bool
    ) -> tuple[_Slot, tuple[StoredValue, ...]]:
        values = {k: v for k, v in (slot.values.items() if slot else ()) if v.alive(now)}
        written: list[StoredValue] = []
        for incoming in write.values:
            data = incoming.data
            self._check_value(kind, data)
            key = value_key(data)
            if key == APPEND_INDEX and kind.data_model is DataModel.ARRAY:
                duplicate = next((v for v in values.values() if same_value(v.data, data)), None)
                if duplicate is not None:
                    continue  # the same append again (a retransmission): already there
                key = _array_length(values)
                assert isinstance(data.value, ArrayEntry)
                data = replace(data, value=replace(data.value, index=key))
            elif kind.data_model is DataModel.ARRAY:
                assert isinstance(key, int)
                if key > _array_length(values) + kind.max_count:
                    raise StorageError(
                        ErrorCode.Error_Data_Too_Large,
                        f"Kind {kind.label}: index {key} would leave more than {kind.max_count} "
                        "missing entries in the array",
                    )
            existing = values.get(key)
            if existing is not None:
                if same_value(existing.data, data):
                    if now + data.lifetime > existing.expires_at:
                        values[key] = replace(existing, expires_at=now + data.lifetime)
                    continue
                if data.storage_time <= existing.data.storage_time:
                    raise StorageError(
                        ErrorCode.Error_Data_Too_Old,
                        f"Kind {kind.label}: storage_time {data.storage_time} is not after the stored "
                        f"value's {existing.data.storage_time}",
                    )
            stored = StoredValue.received(data, now, incoming.certificate)
            values[key] = stored
            written.append(stored)
        if len(values) > kind.max_count:
            raise StorageError(
                ErrorCode.Error_Data_Too_Large,
                f"Kind {kind.label}: {len(values)} values at one resource, max-count is {kind.max_count}",
            )
        old_generation = slot.generation if slot else 0
        if replica:
            generation = write.generation_counter
        elif written:
            generation = old_generation + 1
        else:
            generation = old_generation
        return _Slot(generation, values), tuple(written)

    def _check_value(self, kind: Kind, data: StoredData) -> None:
        model = data_model_of(data.value)
        if model is not kind.data_model:
            raise StorageError(
                ErrorCode.Error_Invalid_Message,
                f"Kind {kind.label} is {kind.data_model.name}, the value is {model.name}",
            )
        sig = data.signature
        if sig.identity.identity_type == SignerIdentityType.none or (
            sig.algorithm.signature == SignatureAlgorithm.anonymous
            and sig.algorithm.hash == HashAlgorithm.none
        ):
            # §7.4.1.1: only synthesized data in a FetchAns may look like this.
            raise forbidden(f"Kind {kind.label}: a stored value must be signed")
        dv = data.value if isinstance(data.value, DataValue) else data.value.value
        if len(dv.value) > kind.max_size:
            raise StorageError(
                ErrorCode.Error_Data_Too_Large,
                f"Kind {kind.label}: value of {len(dv.value)} bytes, max-size is {kind.max_size}",
            )

    def _check_quota(self, delta_bytes: int, delta_entries: int) -> None:
        q = self.quota
        if q.max_bytes is not None and delta_bytes > 0 and self._bytes + delta_bytes > q.max_bytes:
            raise StorageError(
                ErrorCode.Error_Data_Too_Large,
                f"this peer's storage quota of {q.max_bytes} bytes is used up "
                f"({self._bytes} stored, {delta_bytes} more asked for)",
            )
        if q.max_entries is not None and delta_entries > 0 and self._entries + delta_entries > q.max_entries:
            raise StorageError(
                ErrorCode.Error_Data_Too_Large,
                f"this peer's storage quota of {q.max_entries} values is used up "
                f"({self._entries} stored, {delta_entries} more asked for)",
            )

    # ------------------------------------------------------------------ resynchronisation

    def merge(self, resource: bytes, incoming: Sequence[KindValues], now: float) -> int:
        """Take in values fetched from another peer after a replica Store failed with
        ``Error_Data_Too_Old`` or ``Error_Generation_Counter_Too_Low`` (§7.4.1.1): each
        value replaces ours only if it is newer, the partition-healing rule. Values of
        unknown Kinds and values that would break a limit are skipped. Returns how many
        values were taken."""
        taken = 0
        for kv in incoming:
            kind = self.kinds.get(kv.kind)
            if kind is None:
                continue
            slots = self._data.get(resource, {})
            slot = slots.get(kv.kind)
            current = {k: v for k, v in (slot.values.items() if slot else ()) if v.alive(now)}
            newer = tuple(
                IncomingValue(v.data, v.certificate)
                for v in kv.values
                if not is_synthesized(v.data)
                and (
                    (old := current.get(value_key(v.data))) is None
                    or v.data.storage_time > old.data.storage_time
                )
            )
            if not newer:
                continue
            generation = max(kv.generation, slot.generation if slot else 0, 1)
            try:
                self.store(resource, (KindWrite(kv.kind, generation, newer),), now, replica=True)
            except StorageError:
                continue
            taken += len(newer)
        return taken

    # ------------------------------------------------------------------ §7.4.2 Fetch, §7.4.3 Stat

    def fetch(
        self, resource: bytes, specifiers: Sequence[StoredDataSpecifier], now: float
    ) -> tuple[KindValues, ...]:
        """The values each specifier selects (§7.4.2.1), synthesizing the nonexistent ones
        asked for (§7.4.2.2); none when the specifier's generation is the stored one."""
        unknown = self.kinds.unknown(s.kind for s in specifiers)
        if unknown:
            raise unknown_kinds_error(unknown)
        slots = self._data.get(resource, {})
        out: list[KindValues] = []
        for spec in specifiers:
            kind = self.kinds[spec.kind]
            if spec.data_model is not kind.data_model:
                raise StorageError(
                    ErrorCode.Error_Invalid_Message,
                    f"Kind {kind.label} is {kind.data_model.name}; the specifier is not",
                )
            slot = slots.get(kind.kind_id)
            generation = slot.generation if slot else 0
            if spec.generation != 0 and spec.generation == generation:
                out.append(KindValues(kind.kind_id, generation, ()))
                continue
            live = {k: v for k, v in (slot.values.items() if slot else ()) if v.alive(now)}
            out.append(KindValues(kind.kind_id, generation, tuple(_select(spec, live, now))))
        return tuple(out)

    def fetch_answer(
        self, resource: bytes, specifiers: Sequence[StoredDataSpecifier], now: float
    ) -> tuple[tuple[FetchKindResponse, ...], tuple[bytes, ...]]:
        """The FetchAns's kind_responses and the certificates of the values' signers."""
        results = self.fetch(resource, specifiers, now)
        responses = tuple(
            FetchKindResponse(_kind_code(r.kind), r.generation, tuple(v.as_sent(now) for v in r.values))
            for r in results
        )
        certs = dict.fromkeys(v.certificate for r in results for v in r.values if v.certificate)
        return responses, tuple(certs)

    def stat(
        self, resource: bytes, specifiers: Sequence[StoredDataSpecifier], now: float
    ) -> tuple[StatKindResponse, ...]:
        """§7.4.3: the metadata of what Fetch would return."""
        return tuple(
            StatKindResponse(
                _kind_code(r.kind),
                r.generation,
                tuple(StoredMetaData.of(v.as_sent(now)) for v in r.values),
            )
            for r in self.fetch(resource, specifiers, now)
        )

    # ------------------------------------------------------------------ §7.4.4 Find

    def find(
        self,
        resource: bytes,
        kinds: Sequence[int],
        now: float,
        in_range: Callable[[bytes], bool] = lambda _: True,
    ) -> FindAns:
        """§7.4.4.2: per Kind, the Resource-ID held here (and accepted by ``in_range``, the
        responsible range) that is closest to ``resource`` going clockwise, so that
        R(n+1) = nearest(1 + R(n)) walks the overlay; all zeros when there is none or the
        Kind is unknown."""
        width = len(resource) or 16
        target = int.from_bytes(resource, "big")
        modulus = 1 << (8 * width)
        results: list[FindKindData] = []
        for k in kinds:
            best: bytes | None = None
            best_d = modulus
            if int(k) in self.kinds:
                for rid, slots in self._data.items():
                    slot = slots.get(int(k))
                    if slot is None or len(rid) != width or not in_range(rid):
                        continue
                    if not any(v.alive(now) for v in slot.values.values()):
                        continue
                    d = (int.from_bytes(rid, "big") - target) % modulus
                    if d < best_d:
                        best, best_d = rid, d
            results.append(FindKindData(_kind_code(k), best if best is not None else bytes(width)))
        return FindAns(tuple(results))

    # ------------------------------------------------------------------ replication support

    def export(self, resource: bytes, now: float) -> tuple[KindValues, ...]:
        """Every live value at ``resource`` with its Kind's generation, to store elsewhere."""
        out: list[KindValues] = []
        for kind_id, slot in self._data.get(resource, {}).items():
            live = tuple(v for v in slot.values.values() if v.alive(now))
            if live:
                out.append(KindValues(kind_id, max(slot.generation, 1), live))
        return tuple(out)

    def select(self, predicate: Callable[[bytes], bool]) -> Iterator[bytes]:
        """Resource-IDs held here that ``predicate`` accepts."""
        return (rid for rid in list(self._data) if predicate(rid))

    def drop(self, resources: Iterable[bytes]) -> int:
        """Forget these Resource-IDs entirely (§10.7.3: no longer in the replica set)."""
        dropped = 0
        for rid in list(resources):
            slots = self._data.pop(rid, None)
            if slots is None:
                continue
            for slot in slots.values():
                self._bytes -= sum(v.size for v in slot.values.values())
                self._entries -= len(slot.values)
                dropped += len(slot.values)
        return dropped

    def expire(self, now: float) -> int:
        """Remove every value whose lifetime is over (§7.4.1.3); returns how many."""
        removed = 0
        for rid in list(self._data):
            slots = self._data[rid]
            for kind_id in list(slots):
                slot = slots[kind_id]
                dead = [k for k, v in slot.values.items() if not v.alive(now)]
                for k in dead:
                    v = slot.values.pop(k)
                    self._bytes -= v.size
                    self._entries -= 1
                removed += len(dead)
                if not slot.values:
                    del slots[kind_id]
            if not slots:
                del self._data[rid]
        return removed

    def next_expiry(self) -> float | None:
        """When the next value expires (for the caller's timer)."""
        times = [
            v.expires_at for s in self._data.values() for slot in s.values() for v in slot.values.values()
        ]
        return min(times) if times else None


def _kind_code(kind: int) -> KindId | int:
    return enum_or_int(KindId, kind)


def _array_length(values: dict[ValueKey, StoredValue]) -> int:
    indices = [k for k in values if isinstance(k, int)]
    return max(indices) + 1 if indices else 0


def _select(spec: StoredDataSpecifier, live: dict[ValueKey, StoredValue], now: float) -> list[StoredValue]:
    """§7.4.2.1's model_specifier over the live values; gaps and missing keys synthesized."""
    ms = spec.model_specifier
    if isinstance(ms, SingleValueSpecifier):
        v = live.get(None)
        return [v if v is not None else StoredValue(synthesized(DataValue.nonexistent()), now)]
    if isinstance(ms, DictionarySpecifier):
        if not ms.keys:
            return [live[k] for k in sorted(k for k in live if isinstance(k, bytes))]
        out: list[StoredValue] = []
        for key in dict.fromkeys(ms.keys):
            v = live.get(key)
            out.append(
                v
                if v is not None
                else StoredValue(synthesized(DictionaryEntry(key, DataValue.nonexistent())), now)
            )
        return out
    assert isinstance(ms, ArraySpecifier)
    length = _array_length(live)
    out = []
    for rng in ms.indices:
        last = length - 1 if rng.last == LAST_INDEX else min(rng.last, length - 1)
        for i in range(rng.first, last + 1):
            v = live.get(i)
            out.append(
                v if v is not None else StoredValue(synthesized(ArrayEntry(i, DataValue.nonexistent())), now)
            )
    return out


__all__ = [
    "DataStore",
    "IncomingValue",
    "KindStored",
    "KindValues",
    "KindWrite",
    "Quota",
    "StoredValue",
    "ValueKey",
    "is_synthesized",
    "same_value",
    "synthesized",
    "unknown_kinds_error",
    "value_key",
]

"""The storage method bodies and stored data of RFC 6940 §7: Store, Fetch, Stat and Find.

The data model of a Kind (single value, array or dictionary, §7.2) picks the arm of every
``select (DataModel)`` but is not on the wire: decoders take it from
``ctx.data_models[kind]``. For a Kind that map does not list, the values of that Kind are
decoded by trying SINGLE, ARRAY and DICTIONARY in turn and keeping the first model that
decodes all of them exactly; if none does, :class:`UnknownKindError` (a
:class:`DecodeError` with ``Error_Unknown_Kind``) is raised. A StoredDataSpecifier of an
unlisted Kind keeps its ``model_specifier`` bytes whole (:class:`OpaqueSpecifier`): its
``length`` lets it be carried without being understood.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Self, TypeVar

from reload_core.wire.buffer import DecodeError, EncodeError, Reader, Writer
from reload_core.wire.codes import (
    DataModel,
    ErrorCode,
    HashAlgorithm,
    KindId,
    MessageCode,
    SignatureAlgorithm,
    SignerIdentityType,
)
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.message import Signature, SignatureAndHashAlgorithm, SignerIdentity, enum_or_int
from reload_core.wire.registry import body

T = TypeVar("T")

APPEND_INDEX = 0xFFFFFFFF
"""A Store at this array index appends the value at the end of the array (§7.4.1.1)."""

LAST_INDEX = 0xFFFFFFFF
"""In an ArrayRange, the final element of the array (§7.4.2.1)."""

_MIN_NODE_ID_LENGTH = 16
_MAX_NODE_ID_LENGTH = 20

_INFERENCE_ORDER = (DataModel.SINGLE, DataModel.ARRAY, DataModel.DICTIONARY)


class UnknownKindError(DecodeError):
    """Values of a Kind whose data model is not configured fit none of the three models.

    The answer is ``Error_Unknown_Kind`` whose error_info lists the Kind (§7.4.1.2, see
    :class:`UnknownKinds`); ``kind`` is that Kind-ID (None when a lone StoredData was
    decoded with no Kind at hand).
    """

    def __init__(self, reason: str, *, kind: int | None, field: str = "", offset: int = 0) -> None:
        super().__init__(reason, field=field, offset=offset, error_code=ErrorCode.Error_Unknown_Kind)
        self.kind = kind


# ---------------------------------------------------------------- small helpers


def _push_kind(w: Writer, kind: int, field: str) -> None:
    """``typedef uint32 KindId`` (§6.5.4.1)."""
    w.push_uint32(kind, field)


def _pull_kind(r: Reader, field: str) -> KindId | int:
    return enum_or_int(KindId, r.pull_uint32(field))


def _push_resource(w: Writer, resource: bytes, field: str) -> None:
    """``typedef opaque ResourceId<0..2^8-1>``: one length byte, then the ID (§6.3.1.1)."""
    w.push_opaque(resource, 1, field)


def _pull_resource(r: Reader, field: str) -> bytes:
    return r.pull_opaque(1, field)


def _items(r: Reader, one: Callable[[Reader], T]) -> tuple[T, ...]:
    """Decode elements of a vector until its sub-reader is exhausted."""
    out: list[T] = []
    while not r.eof():
        out.append(one(r))
    return tuple(out)


def _check_unique_kinds(kinds: Iterable[int], field: str, *, offset: int | None = None) -> None:
    seen: set[int] = set()
    for k in kinds:
        if int(k) in seen:
            msg = f"Kind-ID {int(k)} appears more than once"
            if offset is None:
                raise EncodeError(f"{field}: {msg}")
            raise DecodeError(msg, field=field, offset=offset)
        seen.add(int(k))


def _decode_by_model(
    r: Reader,
    kind: int,
    ctx: WireContext,
    field: str,
    one: Callable[[Reader, WireContext, DataModel], T],
) -> tuple[T, ...]:
    """Decode a ``T values<0..2^32-1>`` vector whose elements depend on the Kind's data model.

    A Kind missing from ``ctx.data_models`` gets the first model under which every element
    decodes and the vector is used up exactly.
    """
    model = ctx.data_models.get(kind)
    if model is not None:
        vr = r.pull_vector(4, field)
        return _items(vr, lambda sub: one(sub, ctx, model))
    n = r.pull_uint32(field + ".length")
    base = r.offset
    raw = r.pull_bytes(n, field)
    return _infer_model(raw, base, kind, field, lambda sub, m: _items(sub, lambda x: one(x, ctx, m)))


def _infer_model(
    raw: bytes, base: int, kind: int | None, field: str, attempt: Callable[[Reader, DataModel], T]
) -> T:
    """Try each data model on ``raw`` (which sits at offset ``base`` of the input)."""
    failures: list[tuple[DataModel, DecodeError]] = []
    for model in _INFERENCE_ORDER:
        sub = Reader(raw)
        try:
            out = attempt(sub, model)
            sub.expect_end(field)
        except DecodeError as exc:
            failures.append((model, exc))
            continue
        return out
    deepest = max(failures, key=lambda f: f[1].offset)[1]
    detail = "; ".join(f"{m.name}: {e}" for m, e in failures)
    who = "the value" if kind is None else f"Kind {kind}"
    raise UnknownKindError(
        f"{who} has no configured data model and fits none of SINGLE, ARRAY, DICTIONARY ({detail})",
        kind=kind,
        field=field,
        offset=base + deepest.offset,
    )


# ---------------------------------------------------------------- §7.2 StoredDataValue


@dataclass(frozen=True, slots=True)
class DataValue:
    """§7.2: ``Boolean exists; opaque value<0..2^32-1>``; the single-value arm (§7.2.1).

    ``exists=False`` with an empty value removes a stored value (§7.4.1.3).
    """

    exists: bool
    value: bytes

    @classmethod
    def nonexistent(cls) -> DataValue:
        """The value stored to remove one, or synthesized for a gap (§7.4.1.3)."""
        return cls(False, b"")

    def encode(self, w: Writer) -> None:
        w.push_boolean(self.exists)
        w.push_opaque(self.value, 4, "DataValue.value")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        exists = r.pull_boolean("DataValue.exists")
        return cls(exists, r.pull_opaque(4, "DataValue.value"))


@dataclass(frozen=True, slots=True)
class ArrayEntry:
    """§7.2.2: ``uint32 index; DataValue value``. :data:`APPEND_INDEX` appends on Store."""

    index: int
    value: DataValue

    def encode(self, w: Writer) -> None:
        w.push_uint32(self.index, "ArrayEntry.index")
        self.value.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        index = r.pull_uint32("ArrayEntry.index")
        return cls(index, DataValue.decode(r, ctx))


@dataclass(frozen=True, slots=True)
class DictionaryEntry:
    """§7.2.3: ``DictionaryKey key; DataValue value`` (``DictionaryKey`` is ``opaque<0..2^16-1>``)."""

    key: bytes
    value: DataValue

    def encode(self, w: Writer) -> None:
        w.push_opaque(self.key, 2, "DictionaryEntry.key")
        self.value.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        key = r.pull_opaque(2, "DictionaryEntry.key")
        return cls(key, DataValue.decode(r, ctx))


StoredDataValue = DataValue | ArrayEntry | DictionaryEntry
"""§7.2: the arm is the Kind's data model: DataValue (single value), ArrayEntry, DictionaryEntry."""


def data_model_of(value: StoredDataValue) -> DataModel:
    """The data model whose arm ``value`` is."""
    if isinstance(value, ArrayEntry):
        return DataModel.ARRAY
    if isinstance(value, DictionaryEntry):
        return DataModel.DICTIONARY
    return DataModel.SINGLE


def encode_stored_data_value(value: StoredDataValue) -> bytes:
    """The bytes of a StoredDataValue (§7.2): its arm with no type or length in front."""
    w = Writer()
    value.encode(w)
    return w.data()


def decode_stored_data_value(
    r: Reader, model: DataModel, ctx: WireContext = DEFAULT_CONTEXT
) -> StoredDataValue:
    """Decode the arm of a StoredDataValue for ``model`` (§7.2)."""
    if model == DataModel.ARRAY:
        return ArrayEntry.decode(r, ctx)
    if model == DataModel.DICTIONARY:
        return DictionaryEntry.decode(r, ctx)
    return DataValue.decode(r, ctx)


def _common_model(values: Iterable[StoredDataValue], field: str) -> None:
    """Values of one Kind share its data model; mixing arms is our own mistake."""
    models = {data_model_of(v) for v in values}
    if len(models) > 1:
        raise EncodeError(f"{field}: values of one Kind mix data models {sorted(m.name for m in models)}")


# ---------------------------------------------------------------- §7 StoredData


@dataclass(frozen=True, slots=True)
class StoredData:
    """§7: ``uint32 length; uint64 storage_time; uint32 lifetime; StoredDataValue value;
    Signature signature``.

    ``length`` (the size of the rest of the structure) is derived on encode and checked on
    decode. ``storage_time`` is in milliseconds since the Unix epoch, ``lifetime`` in
    seconds; ``signature`` is computed over :func:`stored_data_signature_input` (§7.1).
    """

    storage_time: int
    lifetime: int
    value: StoredDataValue
    signature: Signature

    def encode(self, w: Writer) -> None:
        with w.vector(4, "StoredData.length"):
            w.push_uint64(self.storage_time, "StoredData.storage_time")
            w.push_uint32(self.lifetime, "StoredData.lifetime")
            self.value.encode(w)
            self.signature.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT, model: DataModel | None = None) -> Self:
        """Decode one StoredData whose value has data model ``model``; ``None`` infers it."""
        n = r.pull_uint32("StoredData.length")
        if model is not None:
            sub = r.sub_reader(n, "StoredData")
            out = cls._decode_rest(sub, ctx, model)
            sub.expect_end("StoredData")
            return out
        base = r.offset
        raw = r.pull_bytes(n, "StoredData")
        return _infer_model(raw, base, None, "StoredData", lambda sub, m: cls._decode_rest(sub, ctx, m))

    @classmethod
    def _decode_rest(cls, r: Reader, ctx: WireContext, model: DataModel) -> Self:
        storage_time = r.pull_uint64("StoredData.storage_time")
        lifetime = r.pull_uint32("StoredData.lifetime")
        value = decode_stored_data_value(r, model, ctx)
        return cls(storage_time, lifetime, value, Signature.decode(r, ctx))

    @property
    def length(self) -> int:
        """The ``length`` field: the encoded size excluding the length itself."""
        w = Writer()
        self.encode(w)
        return len(w) - 4


def _decode_stored_data(r: Reader, ctx: WireContext, model: DataModel) -> StoredData:
    return StoredData.decode(r, ctx, model)


def stored_data_signature_input(resource_id: bytes, kind: int, stored: StoredData) -> bytes:
    """The input to a StoredData's signature (§7.1):
    ``resource_id || kind || storage_time || StoredDataValue || SignerIdentity``.

    Each piece is its wire encoding in RFC 6940's presentation language: ``resource_id``
    is a ``ResourceId`` (``opaque<0..2^8-1>``, so it keeps its one length byte: §7.1 only
    leaves framing off where it says so, as it does for H(NodeId || certificate) in
    §6.3.4, and a variable-length ID without its length would make the concatenation
    ambiguous); ``kind`` is a ``KindId`` (uint32); ``storage_time`` a uint64; the
    StoredDataValue is the arm for the Kind's data model, with an ArrayEntry's ``index``
    set to zero, because appends (index 0xffffffff) change it after signing (§7.4.2.2);
    ``SignerIdentity`` is the one in ``stored.signature`` with its type and length.
    """
    w = Writer()
    _push_resource(w, resource_id, "resource_id")
    _push_kind(w, kind, "kind")
    w.push_uint64(stored.storage_time, "storage_time")
    value = stored.value
    if isinstance(value, ArrayEntry):
        value = replace(value, index=0)
    value.encode(w)
    stored.signature.identity.encode(w)
    return w.data()


# ---------------------------------------------------------------- §7.4.1 Store


@dataclass(frozen=True, slots=True)
class StoreKindData:
    """§7.4.1.1: ``KindId kind; uint64 generation_counter; StoredData values<0..2^32-1>``."""

    kind: KindId | int
    generation_counter: int
    values: tuple[StoredData, ...]

    def encode(self, w: Writer) -> None:
        _common_model((v.value for v in self.values), "StoreKindData.values")
        _push_kind(w, self.kind, "StoreKindData.kind")
        w.push_uint64(self.generation_counter, "StoreKindData.generation_counter")
        with w.vector(4, "StoreKindData.values"):
            for v in self.values:
                v.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        kind = _pull_kind(r, "StoreKindData.kind")
        gen = r.pull_uint64("StoreKindData.generation_counter")
        values = _decode_by_model(r, kind, ctx, "StoreKindData.values", _decode_stored_data)
        return cls(kind, gen, values)


@body(MessageCode.store_req)
@dataclass(frozen=True, slots=True)
class StoreReq:
    """§7.4.1.1: ``ResourceId resource; uint8 replica_number; StoreKindData kind_data<0..2^32-1>``.

    A Kind-ID appears at most once in ``kind_data``.
    """

    resource: bytes
    replica_number: int
    kind_data: tuple[StoreKindData, ...]

    def encode(self, w: Writer) -> None:
        _check_unique_kinds((k.kind for k in self.kind_data), "StoreReq.kind_data")
        _push_resource(w, self.resource, "StoreReq.resource")
        w.push_uint8(self.replica_number, "StoreReq.replica_number")
        with w.vector(4, "StoreReq.kind_data"):
            for k in self.kind_data:
                k.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        resource = _pull_resource(r, "StoreReq.resource")
        replica_number = r.pull_uint8("StoreReq.replica_number")
        at = r.offset
        kind_data = _items(r.pull_vector(4, "StoreReq.kind_data"), lambda s: StoreKindData.decode(s, ctx))
        _check_unique_kinds((k.kind for k in kind_data), "StoreReq.kind_data", offset=at)
        return cls(resource, replica_number, kind_data)


def _push_node_ids(w: Writer, node_ids: tuple[bytes, ...], field: str) -> None:
    """``NodeId name<0..2^16-1>``: Node-IDs of one overlay back to back (§6.3.1.1)."""
    if len({len(n) for n in node_ids}) > 1:
        raise EncodeError(f"{field}: Node-IDs of one overlay all have the same length")
    with w.vector(2, field):
        for n in node_ids:
            if not _MIN_NODE_ID_LENGTH <= len(n) <= _MAX_NODE_ID_LENGTH:
                raise EncodeError(f"{field}: a NodeId has 16..20 bytes, got {len(n)}")
            w.push_bytes(n)


def _pull_node_ids(r: Reader, ctx: WireContext, field: str) -> tuple[bytes, ...]:
    at = r.offset
    sub = r.pull_vector(2, field)
    if sub.remaining() % ctx.node_id_length:
        raise DecodeError(
            f"{sub.remaining()} bytes is not a whole number of {ctx.node_id_length}-byte Node-IDs",
            field=field + ".length",
            offset=at,
        )
    return _items(sub, lambda s: s.pull_bytes(ctx.node_id_length, field))


@dataclass(frozen=True, slots=True)
class StoreKindResponse:
    """§7.4.1.2: ``KindId kind; uint64 generation_counter; NodeId replicas<0..2^16-1>``."""

    kind: KindId | int
    generation_counter: int
    replicas: tuple[bytes, ...] = ()

    def encode(self, w: Writer) -> None:
        _push_kind(w, self.kind, "StoreKindResponse.kind")
        w.push_uint64(self.generation_counter, "StoreKindResponse.generation_counter")
        _push_node_ids(w, self.replicas, "StoreKindResponse.replicas")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        kind = _pull_kind(r, "StoreKindResponse.kind")
        gen = r.pull_uint64("StoreKindResponse.generation_counter")
        return cls(kind, gen, _pull_node_ids(r, ctx, "StoreKindResponse.replicas"))


@body(MessageCode.store_ans)
@dataclass(frozen=True, slots=True)
class StoreAns:
    """§7.4.1.2: ``StoreKindResponse kind_responses<0..2^16-1>``. Also the error_info of
    ``Error_Generation_Counter_Too_Low`` (with empty replica lists)."""

    kind_responses: tuple[StoreKindResponse, ...]

    def encode(self, w: Writer) -> None:
        with w.vector(2, "StoreAns.kind_responses"):
            for k in self.kind_responses:
                k.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        vr = r.pull_vector(2, "StoreAns.kind_responses")
        return cls(_items(vr, lambda s: StoreKindResponse.decode(s, ctx)))


@dataclass(frozen=True, slots=True)
class UnknownKinds:
    """§7.4.1.2: the error_info of ``Error_Unknown_Kind``: ``KindId unknown_kinds<0..2^8-1>``."""

    unknown_kinds: tuple[KindId | int, ...]

    def encode(self, w: Writer) -> None:
        with w.vector(1, "unknown_kinds"):
            for k in self.unknown_kinds:
                _push_kind(w, k, "unknown_kinds")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        vr = r.pull_vector(1, "unknown_kinds")
        return cls(_items(vr, lambda s: _pull_kind(s, "unknown_kinds")))


# ---------------------------------------------------------------- §7.4.2 Fetch


@dataclass(frozen=True, slots=True)
class ArrayRange:
    """§7.4.2.1: ``first``..``last`` inclusive; 0 is the first element and
    :data:`LAST_INDEX` (0xffffffff) the final one.

    The RFC types both as ``int32`` yet uses 0xffffffff for "final" and requires
    ``first <= last``; that only holds when the 32 bits are read unsigned, so they are.
    """

    first: int
    last: int

    def encode(self, w: Writer) -> None:
        if self.first > self.last:
            raise EncodeError(f"ArrayRange: first {self.first} is after last {self.last}")
        w.push_uint32(self.first, "ArrayRange.first")
        w.push_uint32(self.last, "ArrayRange.last")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        at = r.offset
        first = r.pull_uint32("ArrayRange.first")
        last = r.pull_uint32("ArrayRange.last")
        if first > last:
            raise DecodeError(f"first {first} is after last {last}", field="ArrayRange", offset=at)
        return cls(first, last)


def _check_ranges_disjoint(ranges: tuple[ArrayRange, ...]) -> str | None:
    ordered = sorted(ranges, key=lambda x: x.first)
    for a, b in pairwise(ordered):
        if b.first <= a.last:
            return f"ranges {a.first}..{a.last} and {b.first}..{b.last} overlap"
    return None


@dataclass(frozen=True, slots=True)
class SingleValueSpecifier:
    """The ``single_value`` arm of a StoredDataSpecifier's model_specifier: empty (§7.4.2.1)."""

    def encode(self, w: Writer) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ArraySpecifier:
    """The ``array`` arm: ``ArrayRange indices<0..2^16-1>``; ranges must not overlap (§7.4.2.1)."""

    indices: tuple[ArrayRange, ...]

    def encode(self, w: Writer) -> None:
        problem = _check_ranges_disjoint(self.indices)
        if problem:
            raise EncodeError(f"ArraySpecifier.indices: {problem}")
        with w.vector(2, "StoredDataSpecifier.indices"):
            for rng in self.indices:
                rng.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        at = r.offset
        vr = r.pull_vector(2, "StoredDataSpecifier.indices")
        indices = _items(vr, lambda s: ArrayRange.decode(s, ctx))
        problem = _check_ranges_disjoint(indices)
        if problem:
            raise DecodeError(problem, field="StoredDataSpecifier.indices", offset=at)
        return cls(indices)


@dataclass(frozen=True, slots=True)
class DictionarySpecifier:
    """The ``dictionary`` arm: ``DictionaryKey keys<0..2^16-1>``; no keys fetches all (§7.4.2.1)."""

    keys: tuple[bytes, ...]

    def encode(self, w: Writer) -> None:
        with w.vector(2, "StoredDataSpecifier.keys"):
            for k in self.keys:
                w.push_opaque(k, 2, "StoredDataSpecifier.keys")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        vr = r.pull_vector(2, "StoredDataSpecifier.keys")
        return cls(_items(vr, lambda s: s.pull_opaque(2, "StoredDataSpecifier.keys")))


@dataclass(frozen=True, slots=True)
class OpaqueSpecifier:
    """A model_specifier of a Kind whose data model is not configured, kept as its bytes."""

    contents: bytes

    def encode(self, w: Writer) -> None:
        w.push_bytes(self.contents)


ModelSpecifier = SingleValueSpecifier | ArraySpecifier | DictionarySpecifier | OpaqueSpecifier


@dataclass(frozen=True, slots=True)
class StoredDataSpecifier:
    """§7.4.2.1: ``KindId kind; uint64 generation; uint16 length; select (DataModel)
    model_specifier``. ``length`` (of the model_specifier) is derived.

    ``generation`` is the last generation counter the requester saw, or 0; when it
    matches the stored one, no values come back (§7.4.2.1).
    """

    kind: KindId | int
    generation: int
    model_specifier: ModelSpecifier

    @classmethod
    def single(cls, kind: int, generation: int = 0) -> StoredDataSpecifier:
        return cls(enum_or_int(KindId, kind), generation, SingleValueSpecifier())

    @classmethod
    def array(cls, kind: int, indices: Iterable[ArrayRange], generation: int = 0) -> StoredDataSpecifier:
        return cls(enum_or_int(KindId, kind), generation, ArraySpecifier(tuple(indices)))

    @classmethod
    def dictionary(cls, kind: int, keys: Iterable[bytes] = (), generation: int = 0) -> StoredDataSpecifier:
        """No keys is a wildcard: every key-value pair (§7.4.2.1)."""
        return cls(enum_or_int(KindId, kind), generation, DictionarySpecifier(tuple(keys)))

    @property
    def data_model(self) -> DataModel | None:
        """The model the specifier was written for (None for an opaque one)."""
        spec = self.model_specifier
        if isinstance(spec, SingleValueSpecifier):
            return DataModel.SINGLE
        if isinstance(spec, ArraySpecifier):
            return DataModel.ARRAY
        if isinstance(spec, DictionarySpecifier):
            return DataModel.DICTIONARY
        return None

    def encode(self, w: Writer) -> None:
        _push_kind(w, self.kind, "StoredDataSpecifier.kind")
        w.push_uint64(self.generation, "StoredDataSpecifier.generation")
        with w.vector(2, "StoredDataSpecifier.length"):
            self.model_specifier.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        kind = _pull_kind(r, "StoredDataSpecifier.kind")
        generation = r.pull_uint64("StoredDataSpecifier.generation")
        sub = r.pull_vector(2, "StoredDataSpecifier.model_specifier")
        model = ctx.data_models.get(kind)
        spec: ModelSpecifier
        if model == DataModel.SINGLE:
            spec = SingleValueSpecifier()
        elif model == DataModel.ARRAY:
            spec = ArraySpecifier.decode(sub, ctx)
        elif model == DataModel.DICTIONARY:
            spec = DictionarySpecifier.decode(sub, ctx)
        else:
            spec = OpaqueSpecifier(sub.pull_bytes(sub.remaining(), "StoredDataSpecifier.model_specifier"))
        sub.expect_end("StoredDataSpecifier.model_specifier")
        return cls(kind, generation, spec)


def _pull_specifiers(r: Reader, ctx: WireContext, field: str) -> tuple[StoredDataSpecifier, ...]:
    return _items(r.pull_vector(2, field), lambda s: StoredDataSpecifier.decode(s, ctx))


def _push_specifiers(w: Writer, specifiers: tuple[StoredDataSpecifier, ...], field: str) -> None:
    with w.vector(2, field):
        for s in specifiers:
            s.encode(w)


@body(MessageCode.fetch_req)
@dataclass(frozen=True, slots=True)
class FetchReq:
    """§7.4.2.1: ``ResourceId resource; StoredDataSpecifier specifiers<0..2^16-1>``."""

    resource: bytes
    specifiers: tuple[StoredDataSpecifier, ...]

    def encode(self, w: Writer) -> None:
        _push_resource(w, self.resource, "FetchReq.resource")
        _push_specifiers(w, self.specifiers, "FetchReq.specifiers")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        resource = _pull_resource(r, "FetchReq.resource")
        return cls(resource, _pull_specifiers(r, ctx, "FetchReq.specifiers"))


@dataclass(frozen=True, slots=True)
class FetchKindResponse:
    """§7.4.2.2: ``KindId kind; uint64 generation; StoredData values<0..2^32-1>``.

    A value the node has no knowledge of is synthesized with ``exists`` False and an
    empty signature: see :func:`synthetic_signature`.
    """

    kind: KindId | int
    generation: int
    values: tuple[StoredData, ...]

    def encode(self, w: Writer) -> None:
        _common_model((v.value for v in self.values), "FetchKindResponse.values")
        _push_kind(w, self.kind, "FetchKindResponse.kind")
        w.push_uint64(self.generation, "FetchKindResponse.generation")
        with w.vector(4, "FetchKindResponse.values"):
            for v in self.values:
                v.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        kind = _pull_kind(r, "FetchKindResponse.kind")
        gen = r.pull_uint64("FetchKindResponse.generation")
        return cls(kind, gen, _decode_by_model(r, kind, ctx, "FetchKindResponse.values", _decode_stored_data))


@body(MessageCode.fetch_ans)
@dataclass(frozen=True, slots=True)
class FetchAns:
    """§7.4.2.2: ``FetchKindResponse kind_responses<0..2^32-1>``, one per Kind requested."""

    kind_responses: tuple[FetchKindResponse, ...]

    def encode(self, w: Writer) -> None:
        with w.vector(4, "FetchAns.kind_responses"):
            for k in self.kind_responses:
                k.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        vr = r.pull_vector(4, "FetchAns.kind_responses")
        return cls(_items(vr, lambda s: FetchKindResponse.decode(s, ctx)))


def synthetic_signature() -> Signature:
    """The empty signature of a synthesized nonexistent value in a FetchAns (§7.4.2.2):
    algorithm {0, 0} (anonymous, none), identity_type none, zero-length value."""
    return Signature(
        SignatureAndHashAlgorithm(HashAlgorithm.none, SignatureAlgorithm.anonymous),
        SignerIdentity(SignerIdentityType.none),
        b"",
    )


# ---------------------------------------------------------------- §7.4.3 Stat


@body(MessageCode.stat_req)
@dataclass(frozen=True, slots=True)
class StatReq:
    """§7.4.3.1: identical to FetchReq: ``ResourceId resource; StoredDataSpecifier
    specifiers<0..2^16-1>``."""

    resource: bytes
    specifiers: tuple[StoredDataSpecifier, ...]

    def encode(self, w: Writer) -> None:
        _push_resource(w, self.resource, "StatReq.resource")
        _push_specifiers(w, self.specifiers, "StatReq.specifiers")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        resource = _pull_resource(r, "StatReq.resource")
        return cls(resource, _pull_specifiers(r, ctx, "StatReq.specifiers"))


_HASHLIB_NAMES = {
    HashAlgorithm.md5: "md5",
    HashAlgorithm.sha1: "sha1",
    HashAlgorithm.sha224: "sha224",
    HashAlgorithm.sha256: "sha256",
    HashAlgorithm.sha384: "sha384",
    HashAlgorithm.sha512: "sha512",
}


@dataclass(frozen=True, slots=True)
class MetaData:
    """§7.4.3.2: ``Boolean exists; uint32 value_length; HashAlgorithm hash_algorithm;
    opaque hash_value<0..255>``.

    ``hash_value`` is the digest of the DataValue's ``value`` field including its four
    length bytes; :meth:`of` computes it.
    """

    exists: bool
    value_length: int
    hash_algorithm: HashAlgorithm | int
    hash_value: bytes

    @classmethod
    def of(cls, value: DataValue, hash_algorithm: HashAlgorithm = HashAlgorithm.sha256) -> MetaData:
        name = _HASHLIB_NAMES.get(hash_algorithm)
        if name is None:
            raise ValueError(f"no digest for hash algorithm {hash_algorithm!r}")
        digest = hashlib.new(name, len(value.value).to_bytes(4, "big") + value.value).digest()
        return cls(value.exists, len(value.value), hash_algorithm, digest)

    def encode(self, w: Writer) -> None:
        w.push_boolean(self.exists)
        w.push_uint32(self.value_length, "MetaData.value_length")
        w.push_uint8(self.hash_algorithm, "MetaData.hash_algorithm")
        w.push_opaque(self.hash_value, 1, "MetaData.hash_value")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        exists = r.pull_boolean("MetaData.exists")
        value_length = r.pull_uint32("MetaData.value_length")
        alg = enum_or_int(HashAlgorithm, r.pull_uint8("MetaData.hash_algorithm"))
        return cls(exists, value_length, alg, r.pull_opaque(1, "MetaData.hash_value"))


@dataclass(frozen=True, slots=True)
class ArrayEntryMeta:
    """§7.4.3.2: ``uint32 index; MetaData value``."""

    index: int
    value: MetaData

    def encode(self, w: Writer) -> None:
        w.push_uint32(self.index, "ArrayEntryMeta.index")
        self.value.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        index = r.pull_uint32("ArrayEntryMeta.index")
        return cls(index, MetaData.decode(r, ctx))


@dataclass(frozen=True, slots=True)
class DictionaryEntryMeta:
    """§7.4.3.2: ``DictionaryKey key; MetaData value``."""

    key: bytes
    value: MetaData

    def encode(self, w: Writer) -> None:
        w.push_opaque(self.key, 2, "DictionaryEntryMeta.key")
        self.value.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        key = r.pull_opaque(2, "DictionaryEntryMeta.key")
        return cls(key, MetaData.decode(r, ctx))


MetaDataValue = MetaData | ArrayEntryMeta | DictionaryEntryMeta
"""§7.4.3.2: StoredDataValue's select with MetaData in place of DataValue."""


def _model_of_meta(value: MetaDataValue) -> DataModel:
    if isinstance(value, ArrayEntryMeta):
        return DataModel.ARRAY
    if isinstance(value, DictionaryEntryMeta):
        return DataModel.DICTIONARY
    return DataModel.SINGLE


def decode_metadata_value(r: Reader, model: DataModel, ctx: WireContext = DEFAULT_CONTEXT) -> MetaDataValue:
    if model == DataModel.ARRAY:
        return ArrayEntryMeta.decode(r, ctx)
    if model == DataModel.DICTIONARY:
        return DictionaryEntryMeta.decode(r, ctx)
    return MetaData.decode(r, ctx)


@dataclass(frozen=True, slots=True)
class StoredMetaData:
    """§7.4.3.2: ``uint32 value_length; uint64 storage_time; uint32 lifetime;
    MetaDataValue metadata``.

    Its fields are "the same as the corresponding fields in StoredData" with no signature,
    so ``value_length`` is to this structure what ``length`` is to StoredData: the size of
    the rest of it. It is derived on encode and checked on decode (Wireshark's RELOAD
    dissector reads it the same way). The stored value's own length is
    ``MetaData.value_length``.
    """

    storage_time: int
    lifetime: int
    metadata: MetaDataValue

    @classmethod
    def of(cls, stored: StoredData, hash_algorithm: HashAlgorithm = HashAlgorithm.sha256) -> StoredMetaData:
        """The metadata a Stat answers for ``stored``."""
        v = stored.value
        meta: MetaDataValue
        if isinstance(v, ArrayEntry):
            meta = ArrayEntryMeta(v.index, MetaData.of(v.value, hash_algorithm))
        elif isinstance(v, DictionaryEntry):
            meta = DictionaryEntryMeta(v.key, MetaData.of(v.value, hash_algorithm))
        else:
            meta = MetaData.of(v, hash_algorithm)
        return cls(stored.storage_time, stored.lifetime, meta)

    def encode(self, w: Writer) -> None:
        with w.vector(4, "StoredMetaData.value_length"):
            w.push_uint64(self.storage_time, "StoredMetaData.storage_time")
            w.push_uint32(self.lifetime, "StoredMetaData.lifetime")
            self.metadata.encode(w)

    @classmethod
    def decode(
        cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT, model: DataModel = DataModel.SINGLE
    ) -> Self:
        sub = r.pull_vector(4, "StoredMetaData")
        storage_time = sub.pull_uint64("StoredMetaData.storage_time")
        lifetime = sub.pull_uint32("StoredMetaData.lifetime")
        out = cls(storage_time, lifetime, decode_metadata_value(sub, model, ctx))
        sub.expect_end("StoredMetaData")
        return out


def _decode_stored_metadata(r: Reader, ctx: WireContext, model: DataModel) -> StoredMetaData:
    return StoredMetaData.decode(r, ctx, model)


@dataclass(frozen=True, slots=True)
class StatKindResponse:
    """§7.4.3.2: ``KindId kind; uint64 generation; StoredMetaData values<0..2^32-1>``."""

    kind: KindId | int
    generation: int
    values: tuple[StoredMetaData, ...]

    def encode(self, w: Writer) -> None:
        models = {_model_of_meta(v.metadata) for v in self.values}
        if len(models) > 1:
            raise EncodeError("StatKindResponse.values: values of one Kind mix data models")
        _push_kind(w, self.kind, "StatKindResponse.kind")
        w.push_uint64(self.generation, "StatKindResponse.generation")
        with w.vector(4, "StatKindResponse.values"):
            for v in self.values:
                v.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        kind = _pull_kind(r, "StatKindResponse.kind")
        gen = r.pull_uint64("StatKindResponse.generation")
        return cls(
            kind, gen, _decode_by_model(r, kind, ctx, "StatKindResponse.values", _decode_stored_metadata)
        )


@body(MessageCode.stat_ans)
@dataclass(frozen=True, slots=True)
class StatAns:
    """§7.4.3.2: ``StatKindResponse kind_responses<0..2^32-1>``."""

    kind_responses: tuple[StatKindResponse, ...]

    def encode(self, w: Writer) -> None:
        with w.vector(4, "StatAns.kind_responses"):
            for k in self.kind_responses:
                k.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        vr = r.pull_vector(4, "StatAns.kind_responses")
        return cls(_items(vr, lambda s: StatKindResponse.decode(s, ctx)))


# ---------------------------------------------------------------- §7.4.4 Find


@body(MessageCode.find_req)
@dataclass(frozen=True, slots=True)
class FindReq:
    """§7.4.4.1: ``ResourceId resource; KindId kinds<0..2^8-1>``; each Kind at most once."""

    resource: bytes
    kinds: tuple[KindId | int, ...]

    def encode(self, w: Writer) -> None:
        _check_unique_kinds(self.kinds, "FindReq.kinds")
        _push_resource(w, self.resource, "FindReq.resource")
        with w.vector(1, "FindReq.kinds"):
            for k in self.kinds:
                _push_kind(w, k, "FindReq.kinds")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        resource = _pull_resource(r, "FindReq.resource")
        at = r.offset
        kinds = _items(r.pull_vector(1, "FindReq.kinds"), lambda s: _pull_kind(s, "FindReq.kinds"))
        _check_unique_kinds(kinds, "FindReq.kinds", offset=at)
        return cls(resource, kinds)


@dataclass(frozen=True, slots=True)
class FindKindData:
    """§7.4.4.2: ``KindId kind; ResourceId closest`` (an empty or zero ID if none is known)."""

    kind: KindId | int
    closest: bytes

    def encode(self, w: Writer) -> None:
        _push_kind(w, self.kind, "FindKindData.kind")
        _push_resource(w, self.closest, "FindKindData.closest")

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        kind = _pull_kind(r, "FindKindData.kind")
        return cls(kind, _pull_resource(r, "FindKindData.closest"))


@body(MessageCode.find_ans)
@dataclass(frozen=True, slots=True)
class FindAns:
    """§7.4.4.2: ``FindKindData results<0..2^16-1>``."""

    results: tuple[FindKindData, ...]

    def encode(self, w: Writer) -> None:
        with w.vector(2, "FindAns.results"):
            for k in self.results:
                k.encode(w)

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> Self:
        vr = r.pull_vector(2, "FindAns.results")
        return cls(_items(vr, lambda s: FindKindData.decode(s, ctx)))


__all__ = [
    "APPEND_INDEX",
    "LAST_INDEX",
    "ArrayEntry",
    "ArrayEntryMeta",
    "ArrayRange",
    "ArraySpecifier",
    "DataValue",
    "DictionaryEntry",
    "DictionaryEntryMeta",
    "DictionarySpecifier",
    "FetchAns",
    "FetchKindResponse",
    "FetchReq",
    "FindAns",
    "FindKindData",
    "FindReq",
    "MetaData",
    "MetaDataValue",
    "ModelSpecifier",
    "OpaqueSpecifier",
    "SingleValueSpecifier",
    "StatAns",
    "StatKindResponse",
    "StatReq",
    "StoreAns",
    "StoreKindData",
    "StoreKindResponse",
    "StoreReq",
    "StoredData",
    "StoredDataSpecifier",
    "StoredDataValue",
    "StoredMetaData",
    "UnknownKindError",
    "UnknownKinds",
    "data_model_of",
    "decode_metadata_value",
    "decode_stored_data_value",
    "encode_stored_data_value",
    "stored_data_signature_input",
    "synthetic_signature",
]

"""Storage bodies and stored data (RFC 6940 §7, §7.4; §8 and §9 values).

Byte vectors are written field by field from the RFC's presentation language: a
``<0..2^8-1>`` vector carries a 1-byte length, ``<0..2^16-1>`` a 2-byte one and
``<0..2^32-1>`` a 4-byte one; ``KindId`` is a uint32 (§6.5.4.1), ``ResourceId`` an
``opaque<0..2^8-1>`` (§6.3.1.1), ``Boolean`` one byte (§6.3.1.1).
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reload_core.wire  # noqa: F401  (registers every body)
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.buffer import DecodeError, EncodeError, Reader
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
from reload_core.wire.jsonmap import from_json, to_json
from reload_core.wire.message import Signature, SignatureAndHashAlgorithm, SignerIdentity, enum_or_int
from reload_core.wire.registry import BODY_TYPES, WireStruct, decode_body, decode_struct, encode_struct
from reload_core.wire.storage import (
    APPEND_INDEX,
    LAST_INDEX,
    ArrayEntry,
    ArrayEntryMeta,
    ArrayRange,
    ArraySpecifier,
    DataValue,
    DictionaryEntry,
    DictionaryEntryMeta,
    DictionarySpecifier,
    FetchAns,
    FetchKindResponse,
    FetchReq,
    FindAns,
    FindKindData,
    FindReq,
    MetaData,
    OpaqueSpecifier,
    SingleValueSpecifier,
    StatAns,
    StatKindResponse,
    StatReq,
    StoreAns,
    StoredData,
    StoredDataSpecifier,
    StoredMetaData,
    StoreKindData,
    StoreKindResponse,
    StoreReq,
    UnknownKindError,
    UnknownKinds,
    data_model_of,
    decode_stored_data_value,
    encode_stored_data_value,
    stored_data_signature_input,
    synthetic_signature,
)
from reload_core.wire.usage_data import (
    TurnServer,
    certificate_entry,
    certificate_of,
    turn_server_resource_name,
)
from tests.wire.examples.storage import ALICE_CERT, EXAMPLES


def h(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts))


# Private-use Kinds of each data model (the configuration would define them, §7.4.5).
KIND_X = 0xF0000001  # single value
KIND_Y = 0xF0000002  # array
KIND_Z = 0xF0000003  # dictionary
KIND_UNKNOWN = 0xF0000009

CTX = WireContext(
    data_models={
        KindId.SIP_REGISTRATION: DataModel.DICTIONARY,
        KindId.TURN_SERVICE: DataModel.SINGLE,  # §9: "stores a single value for each Resource-ID"
        KindId.CERTIFICATE_BY_NODE: DataModel.ARRAY,
        KindId.CERTIFICATE_BY_USER: DataModel.ARRAY,
        KIND_X: DataModel.SINGLE,
        KIND_Y: DataModel.ARRAY,
        KIND_Z: DataModel.DICTIONARY,
    }
)
NO_MODELS = WireContext(data_models={})

# A short but well-formed Signature (§6.3.4) for the hand-written vectors.
SIG = Signature(
    SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.rsa),
    SignerIdentity(SignerIdentityType.cert_hash, HashAlgorithm.sha256, h("c0ffee00")),
    h("abcd"),
)
SIG_BYTES = h(
    "04",  # algorithm.hash = sha256 (4)
    "01",  # algorithm.signature = rsa (1)
    "01",  # identity.identity_type = cert_hash (1)
    "0006",  # identity.length = 6
    "04",  # identity.hash_alg = sha256
    "04",  # certificate_hash<0..2^8-1>: 4 bytes
    "c0ffee00",
    "0002",  # signature_value<0..2^16-1>: 2 bytes
    "abcd",
)
SIGNER_IDENTITY_BYTES = SIG_BYTES[2:11]

# ---------------------------------------------------------------- §7.2 data models

DV_ABC = DataValue(True, b"abc")
DV_ABC_BYTES = h(
    "01",  # exists = true
    "00000003",  # value<0..2^32-1>: 3 bytes
    "616263",  # "abc"
)
AE_FOO = ArrayEntry(0, DataValue(True, b"foo"))
AE_FOO_BYTES = h(
    "00000000",  # index = 0
    "01",  # value.exists = true
    "00000003",  # value.value length
    "666f6f",  # "foo"
)
DE_GONE = DictionaryEntry(h("0102"), DataValue.nonexistent())
DE_GONE_BYTES = h(
    "0002",  # key (DictionaryKey<0..2^16-1>): 2 bytes
    "0102",
    "00",  # value.exists = false (§7.4.1.3 removal)
    "00000000",  # value.value: zero length
)


def test_data_model_vectors() -> None:
    for obj, wire, model in (
        (DV_ABC, DV_ABC_BYTES, DataModel.SINGLE),
        (AE_FOO, AE_FOO_BYTES, DataModel.ARRAY),
        (DE_GONE, DE_GONE_BYTES, DataModel.DICTIONARY),
    ):
        assert encode_struct(obj) == wire
        assert encode_stored_data_value(obj) == wire
        assert decode_struct(type(obj), wire) == obj
        r = Reader(wire)
        assert decode_stored_data_value(r, model) == obj
        assert r.eof()
        assert data_model_of(obj) == model


def test_removal_value_is_exists_false_and_empty() -> None:
    assert DataValue.nonexistent() == DataValue(False, b"")
    assert encode_struct(DataValue.nonexistent()) == h("00", "00000000")


# ---------------------------------------------------------------- §7 StoredData

# The store of §7.4.1.1's figure at resource "1234": "abc" single value under Kind X
# (generation 99), "foo" at index 0 and "bar" at index 1 in Kind Y's array (generation 107).
SD_X = StoredData(0x0000018BCFE56800, 86400, DV_ABC, SIG)
SD_X_BYTES = (
    h(
        "00000023",  # length = 35: 8 + 4 + 8 (value) + 15 (signature)
        "0000018bcfe56800",  # storage_time = 1700000000000 ms
        "00015180",  # lifetime = 86400 s
    )
    + DV_ABC_BYTES
    + SIG_BYTES
)
SD_Y0 = StoredData(0x0000018BCFE56801, 86400, AE_FOO, SIG)
SD_Y0_BYTES = (
    h(
        "00000027",  # length = 39: 8 + 4 + 12 (ArrayEntry) + 15
        "0000018bcfe56801",  # storage_time
        "00015180",  # lifetime = 86400
    )
    + AE_FOO_BYTES
    + SIG_BYTES
)
SD_Y1 = StoredData(0x0000018BCFE56802, 33200, ArrayEntry(1, DataValue(True, b"bar")), SIG)
SD_Y1_BYTES = (
    h(
        "00000027",  # length = 39
        "0000018bcfe56802",  # storage_time
        "000081b0",  # lifetime = 33200
        "00000001",  # index = 1
        "01",  # exists
        "00000003",  # value length
        "626172",  # "bar"
    )
    + SIG_BYTES
)
SD_Z = StoredData(5, 0, DE_GONE, SIG)
SD_Z_BYTES = (
    h(
        "00000024",  # length = 36: 8 + 4 + 9 (DictionaryEntry) + 15
        "0000000000000005",  # storage_time = 5
        "00000000",  # lifetime = 0
    )
    + DE_GONE_BYTES
    + SIG_BYTES
)


@pytest.mark.parametrize(
    ("obj", "wire", "model"),
    [
        (SD_X, SD_X_BYTES, DataModel.SINGLE),
        (SD_Y0, SD_Y0_BYTES, DataModel.ARRAY),
        (SD_Y1, SD_Y1_BYTES, DataModel.ARRAY),
        (SD_Z, SD_Z_BYTES, DataModel.DICTIONARY),
    ],
    ids=["single", "array0", "array1", "dictionary"],
)
def test_stored_data_vectors(obj: StoredData, wire: bytes, model: DataModel) -> None:
    assert encode_struct(obj) == wire
    assert obj.length == len(wire) - 4
    r = Reader(wire)
    assert StoredData.decode(r, DEFAULT_CONTEXT, model) == obj
    assert r.eof()
    r = Reader(wire)
    inferred = StoredData.decode(r, DEFAULT_CONTEXT)  # no model given: inferred
    assert r.eof()
    if model == DataModel.DICTIONARY:
        # A 2-byte key plus its length is laid out like an array index: ARRAY fits first.
        assert inferred.value == ArrayEntry(0x00020102, DE_GONE.value)
    else:
        assert inferred == obj


def test_stored_data_length_is_checked() -> None:
    body = SD_X_BYTES[4:]
    for wrong in (len(body) - 1, len(body) + 1):
        bad = wrong.to_bytes(4, "big") + body + b"\x00"
        with pytest.raises(DecodeError):
            StoredData.decode(Reader(bad), DEFAULT_CONTEXT, DataModel.SINGLE)
    # One byte too long, padding included: the signature ends before the length does.
    padded = (len(body) + 1).to_bytes(4, "big") + body + b"\x00"
    with pytest.raises(DecodeError) as exc:
        StoredData.decode(Reader(padded), DEFAULT_CONTEXT, DataModel.SINGLE)
    assert "trailing" in exc.value.reason


STORE_REQ = StoreReq(
    h("1234"),
    0,
    (
        StoreKindData(KIND_X, 99, (SD_X,)),
        StoreKindData(KIND_Y, 107, (SD_Y0, SD_Y1)),
    ),
)
STORE_REQ_BYTES = (
    h(
        "02",  # resource (ResourceId<0..2^8-1>): 2 bytes
        "1234",
        "00",  # replica_number = 0
        f"{4 + 8 + 4 + len(SD_X_BYTES) + 4 + 8 + 4 + len(SD_Y0_BYTES) + len(SD_Y1_BYTES):08x}",  # kind_data length
        "f0000001",  # StoreKindData.kind = X
        "0000000000000063",  # generation_counter = 99
        f"{len(SD_X_BYTES):08x}",  # values<0..2^32-1> length
    )
    + SD_X_BYTES
    + h(
        "f0000002",  # kind = Y
        "000000000000006b",  # generation_counter = 107
        f"{len(SD_Y0_BYTES) + len(SD_Y1_BYTES):08x}",  # values length: two StoredData
    )
    + SD_Y0_BYTES
    + SD_Y1_BYTES
)


def test_store_req_vector_is_the_rfc_figure() -> None:
    assert len(STORE_REQ_BYTES) == 1 + 2 + 1 + 4 + 16 + 39 + 16 + 43 + 43
    assert encode_struct(STORE_REQ) == STORE_REQ_BYTES
    assert decode_body(MessageCode.store_req, STORE_REQ_BYTES, CTX) == STORE_REQ


def test_store_req_kinds_are_unique() -> None:
    twice = StoreReq(h("12"), 0, (StoreKindData(KIND_X, 0, ()), StoreKindData(KIND_X, 1, ())))
    with pytest.raises(EncodeError):
        encode_struct(twice)
    wire = h(
        "01",
        "12",  # resource
        "00",  # replica_number
        "00000020",  # kind_data: 32 bytes, two empty StoreKindData of 4 + 8 + 4
        "f0000001",
        "0000000000000000",
        "00000000",
        "f0000001",  # the same Kind again (§7.4.1.1 MUST NOT)
        "0000000000000001",
        "00000000",
    )
    with pytest.raises(DecodeError) as exc:
        decode_body(MessageCode.store_req, wire, CTX)
    assert exc.value.field == "StoreReq.kind_data"


def test_one_kind_cannot_mix_data_models() -> None:
    with pytest.raises(EncodeError):
        encode_struct(StoreKindData(KIND_X, 0, (SD_X, SD_Y0)))
    with pytest.raises(EncodeError):
        encode_struct(FetchKindResponse(KIND_X, 0, (SD_X, SD_Z)))


def test_known_model_is_not_second_guessed() -> None:
    """Kind Y is an array: a dictionary entry stored under it is malformed."""
    node_key = StoredData(5, 0, DictionaryEntry(bytes(range(16)), DataValue(True, b"v")), SIG)
    wire = encode_struct(StoreKindData(KIND_Z, 1, (node_key,)))
    assert decode_struct(StoreKindData, wire, CTX) == StoreKindData(KIND_Z, 1, (node_key,))
    as_y = h("f0000002") + wire[4:]
    with pytest.raises(DecodeError) as exc:
        decode_struct(StoreKindData, as_y, CTX)
    assert exc.value.error_code == ErrorCode.Error_Invalid_Message


STORE_ANS = StoreAns(
    (
        StoreKindResponse(KIND_X, 100, (bytes(range(16)), bytes(range(16, 32)))),
        StoreKindResponse(KindId.SIP_REGISTRATION, 1),
    )
)
STORE_ANS_BYTES = h(
    "003c",  # kind_responses<0..2^16-1>: 60 bytes = (4 + 8 + 2 + 32) + (4 + 8 + 2)
    "f0000001",  # kind = X
    "0000000000000064",  # generation_counter = 100
    "0020",  # replicas<0..2^16-1>: two 16-byte Node-IDs
    "000102030405060708090a0b0c0d0e0f",
    "101112131415161718191a1b1c1d1e1f",
    "00000001",  # kind = SIP-REGISTRATION
    "0000000000000001",  # generation_counter = 1
    "0000",  # replicas: none
)


def test_store_ans_vector() -> None:
    assert encode_struct(STORE_ANS) == STORE_ANS_BYTES
    assert decode_body(MessageCode.store_ans, STORE_ANS_BYTES) == STORE_ANS


def test_store_ans_replicas_are_whole_node_ids() -> None:
    wire = h("0011", "00000001", "0000000000000001", "0003", "aabbcc")
    with pytest.raises(DecodeError) as exc:
        decode_body(MessageCode.store_ans, wire)
    assert exc.value.field == "StoreKindResponse.replicas.length"
    ctx20 = WireContext(node_id_length=20)
    wire20 = h("0022", "00000001", "0000000000000001", "0014") + bytes(20)
    decoded = decode_body(MessageCode.store_ans, wire20, ctx20)
    assert decoded == StoreAns((StoreKindResponse(KindId.SIP_REGISTRATION, 1, (bytes(20),)),))
    with pytest.raises(EncodeError):
        encode_struct(StoreKindResponse(1, 1, (bytes(15),)))  # NodeIdLength is 16..20


def test_unknown_kinds_error_info() -> None:
    info = UnknownKinds((KIND_UNKNOWN, KindId.TURN_SERVICE))
    wire = h(
        "08",  # unknown_kinds<0..2^8-1>: 8 bytes
        "f0000009",
        "00000002",
    )
    assert encode_struct(info) == wire
    assert decode_struct(UnknownKinds, wire) == info
    with pytest.raises(DecodeError):
        decode_struct(UnknownKinds, h("03", "000000"))


# ---------------------------------------------------------------- §7.1 signature input


def test_stored_data_signature_input_vector() -> None:
    stored = StoredData(0x0102030405060708, 60, ArrayEntry(APPEND_INDEX, DataValue(True, b"foo")), SIG)
    expected = (
        h(
            "02",  # resource_id as a ResourceId: its length byte...
            "1234",  # ...and the ID
            "f0000002",  # kind (KindId, uint32)
            "0102030405060708",  # storage_time (uint64)
            "00000000",  # ArrayEntry.index, set to zero before signing (§7.4.2.2)
            "01",  # exists
            "00000003",
            "666f6f",  # value
        )
        + SIGNER_IDENTITY_BYTES  # SignerIdentity: type, length, hash_alg, certificate_hash
    )
    assert h("01", "0006", "04", "04", "c0ffee00") == SIGNER_IDENTITY_BYTES
    assert stored_data_signature_input(h("1234"), KIND_Y, stored) == expected
    # The storing peer rewrites an append to the real index; the input does not change.
    placed = StoredData(stored.storage_time, 60, ArrayEntry(7, DataValue(True, b"foo")), SIG)
    assert stored_data_signature_input(h("1234"), KIND_Y, placed) == expected
    # lifetime is not signed (§7.1 lists the covered fields)
    longer = StoredData(stored.storage_time, 9999, stored.value, SIG)
    assert stored_data_signature_input(h("1234"), KIND_Y, longer) == expected


def test_stored_data_signature_input_single_and_dictionary() -> None:
    assert stored_data_signature_input(h("aa"), KIND_X, SD_X) == (
        h("01", "aa", "f0000001", "0000018bcfe56800") + DV_ABC_BYTES + SIGNER_IDENTITY_BYTES
    )
    assert stored_data_signature_input(b"", KIND_Z, SD_Z) == (
        h("00", "f0000003", "0000000000000005") + DE_GONE_BYTES + SIGNER_IDENTITY_BYTES
    )


# ---------------------------------------------------------------- §7.4.2 Fetch

SPEC_SINGLE = StoredDataSpecifier.single(KIND_X, generation=3)
SPEC_SINGLE_BYTES = h(
    "f0000001",  # kind = X
    "0000000000000003",  # generation = 3
    "0000",  # length = 0: the single_value arm is empty
)
SPEC_ARRAY = StoredDataSpecifier.array(KIND_Y, [ArrayRange(0, 2), ArrayRange(5, LAST_INDEX)])
SPEC_ARRAY_BYTES = h(
    "f0000002",  # kind = Y
    "0000000000000000",  # generation = 0
    "0012",  # length = 18: the rest of the structure
    "0010",  # indices<0..2^16-1>: 16 bytes, two ArrayRanges
    "00000000",  # first = 0
    "00000002",  # last = 2
    "00000005",  # first = 5
    "ffffffff",  # last = the final element
)
SPEC_DICT = StoredDataSpecifier.dictionary(KindId.SIP_REGISTRATION, [h("0102"), b""], generation=1)
SPEC_DICT_BYTES = h(
    "00000001",  # kind = SIP-REGISTRATION
    "0000000000000001",  # generation = 1
    "0008",  # length = 8
    "0006",  # keys<0..2^16-1>: 6 bytes
    "0002",  # DictionaryKey: 2 bytes
    "0102",
    "0000",  # DictionaryKey: empty
)
SPEC_WILDCARD_BYTES = h("00000001", "0000000000000000", "0002", "0000")


@pytest.mark.parametrize(
    ("spec", "wire"),
    [
        (SPEC_SINGLE, SPEC_SINGLE_BYTES),
        (SPEC_ARRAY, SPEC_ARRAY_BYTES),
        (SPEC_DICT, SPEC_DICT_BYTES),
        (StoredDataSpecifier.dictionary(KindId.SIP_REGISTRATION), SPEC_WILDCARD_BYTES),
    ],
)
def test_stored_data_specifier_vectors(spec: StoredDataSpecifier, wire: bytes) -> None:
    assert encode_struct(spec) == wire
    assert decode_struct(StoredDataSpecifier, wire, CTX) == spec


def test_specifier_models() -> None:
    assert SPEC_SINGLE.data_model == DataModel.SINGLE
    assert SPEC_ARRAY.data_model == DataModel.ARRAY
    assert SPEC_DICT.data_model == DataModel.DICTIONARY
    assert SPEC_SINGLE.model_specifier == SingleValueSpecifier()
    assert SPEC_ARRAY.model_specifier == ArraySpecifier((ArrayRange(0, 2), ArrayRange(5, LAST_INDEX)))
    assert SPEC_DICT.model_specifier == DictionarySpecifier((h("0102"), b""))
    assert StoredDataSpecifier(KIND_UNKNOWN, 0, OpaqueSpecifier(b"")).data_model is None


def test_specifier_of_unconfigured_kind_is_kept_whole() -> None:
    wire = h("f0000009", "0000000000000002", "0005", "0003", "abcdef")
    spec = decode_struct(StoredDataSpecifier, wire, CTX)
    assert spec == StoredDataSpecifier(KIND_UNKNOWN, 2, OpaqueSpecifier(h("0003", "abcdef")))
    assert encode_struct(spec) == wire


def test_specifier_lengths_and_ranges_are_checked() -> None:
    # length says 3 but the single_value arm is empty
    with pytest.raises(DecodeError):
        decode_struct(StoredDataSpecifier, h("f0000001", "0000000000000000", "0003", "000000"), CTX)
    # length 20 but indices carry 16 bytes: two trailing bytes inside the specifier
    bad = SPEC_ARRAY_BYTES[:12] + h("0014") + SPEC_ARRAY_BYTES[14:] + h("0000")
    with pytest.raises(DecodeError) as exc:
        decode_struct(StoredDataSpecifier, bad, CTX)
    assert exc.value.field == "StoredDataSpecifier.model_specifier"
    # indices not a whole number of ArrayRanges
    with pytest.raises(DecodeError):
        decode_struct(StoredDataSpecifier, h("f0000002", "0000000000000000", "0006", "0004", "00000000"), CTX)
    # first after last (§7.4.2.1 "MUST be less than or equal to")
    with pytest.raises(DecodeError):
        decode_struct(
            StoredDataSpecifier,
            h("f0000002", "0000000000000000", "000a", "0008", "00000003", "00000002"),
            CTX,
        )
    with pytest.raises(EncodeError):
        encode_struct(StoredDataSpecifier.array(KIND_Y, [ArrayRange(3, 2)]))
    # overlapping ranges ("MUST NOT overlap")
    overlap = h(
        "f0000002", "0000000000000000", "0012", "0010", "00000000", "00000005", "00000005", "00000009"
    )
    with pytest.raises(DecodeError) as exc:
        decode_struct(StoredDataSpecifier, overlap, CTX)
    assert "overlap" in exc.value.reason
    with pytest.raises(EncodeError):
        encode_struct(StoredDataSpecifier.array(KIND_Y, [ArrayRange(4, 9), ArrayRange(0, 4)]))


FETCH_REQ = FetchReq(h("1234"), (SPEC_SINGLE, SPEC_ARRAY))
FETCH_REQ_BYTES = (
    h(
        "02",  # resource: 2 bytes
        "1234",
        f"{len(SPEC_SINGLE_BYTES) + len(SPEC_ARRAY_BYTES):04x}",  # specifiers<0..2^16-1> length
    )
    + SPEC_SINGLE_BYTES
    + SPEC_ARRAY_BYTES
)
FETCH_ANS = FetchAns(
    (
        FetchKindResponse(KIND_X, 99, (SD_X,)),
        FetchKindResponse(KIND_Y, 107, ()),  # generation matched: no values (§7.4.2.1)
    )
)
FETCH_ANS_BYTES = (
    h(
        f"{4 + 8 + 4 + len(SD_X_BYTES) + 4 + 8 + 4:08x}",  # kind_responses<0..2^32-1> length
        "f0000001",  # kind = X
        "0000000000000063",  # generation = 99
        f"{len(SD_X_BYTES):08x}",  # values<0..2^32-1> length
    )
    + SD_X_BYTES
    + h(
        "f0000002",  # kind = Y
        "000000000000006b",  # generation = 107
        "00000000",  # values: none
    )
)


def test_fetch_vectors() -> None:
    assert encode_struct(FETCH_REQ) == FETCH_REQ_BYTES
    assert decode_body(MessageCode.fetch_req, FETCH_REQ_BYTES, CTX) == FETCH_REQ
    assert encode_struct(FETCH_ANS) == FETCH_ANS_BYTES
    assert decode_body(MessageCode.fetch_ans, FETCH_ANS_BYTES, CTX) == FETCH_ANS


def test_synthetic_nonexistent_value() -> None:
    """§7.4.2.2: exists false, algorithm {0, 0}, identity none, empty signature_value."""
    gap = StoredData(0, 0, ArrayEntry(1, DataValue.nonexistent()), synthetic_signature())
    wire = h(
        "0000001c",  # length = 28: 8 + 4 + 9 (ArrayEntry) + 7 (Signature)
        "0000000000000000",  # storage_time
        "00000000",  # lifetime
        "00000001",  # index = 1
        "00",  # exists = false
        "00000000",  # empty value
        "00",  # algorithm.hash = none
        "00",  # algorithm.signature = anonymous
        "03",  # identity_type = none
        "0000",  # identity.length = 0
        "0000",  # signature_value: empty
    )
    assert encode_struct(gap) == wire
    assert StoredData.decode(Reader(wire), CTX, DataModel.ARRAY) == gap


# ---------------------------------------------------------------- §7.4.3 Stat


def test_stat_req_vector_is_fetch_req_shaped() -> None:
    req = StatReq(FETCH_REQ.resource, FETCH_REQ.specifiers)
    assert encode_struct(req) == FETCH_REQ_BYTES
    assert decode_body(MessageCode.stat_req, FETCH_REQ_BYTES, CTX) == req


ABC_HASH = hashlib.sha256(h("00000003", "616263")).digest()  # over value incl. its length bytes
META_ABC = MetaData(True, 3, HashAlgorithm.sha256, ABC_HASH)
META_ABC_BYTES = (
    h(
        "01",  # exists
        "00000003",  # value_length = 3
        "04",  # hash_algorithm = sha256
        "20",  # hash_value<0..255>: 32 bytes
    )
    + ABC_HASH
)


def test_metadata_vectors() -> None:
    assert MetaData.of(DV_ABC) == META_ABC
    assert encode_struct(META_ABC) == META_ABC_BYTES
    assert decode_struct(MetaData, META_ABC_BYTES) == META_ABC
    aem = ArrayEntryMeta(1, META_ABC)
    assert encode_struct(aem) == h("00000001") + META_ABC_BYTES
    dem = DictionaryEntryMeta(h("0102"), META_ABC)
    assert encode_struct(dem) == h("0002", "0102") + META_ABC_BYTES
    assert decode_struct(ArrayEntryMeta, h("00000001") + META_ABC_BYTES) == aem
    assert decode_struct(DictionaryEntryMeta, h("0002", "0102") + META_ABC_BYTES) == dem
    gone = MetaData.of(DataValue.nonexistent(), HashAlgorithm.sha1)
    assert gone == MetaData(False, 0, HashAlgorithm.sha1, hashlib.sha1(bytes(4)).digest())
    with pytest.raises(ValueError):
        MetaData.of(DV_ABC, HashAlgorithm.none)


STAT_ANS = StatAns((StatKindResponse(KIND_X, 99, (StoredMetaData.of(SD_X),)),))
STAT_ANS_BYTES = (
    h(
        f"{4 + 8 + 4 + 16 + len(META_ABC_BYTES):08x}",  # kind_responses<0..2^32-1> length
        "f0000001",  # kind = X
        "0000000000000063",  # generation = 99
        f"{16 + len(META_ABC_BYTES):08x}",  # values<0..2^32-1> length
        "00000033",  # StoredMetaData.value_length = 51: the rest, 8 + 4 + 39 (MetaData)
        "0000018bcfe56800",  # storage_time
        "00015180",  # lifetime
    )
    + META_ABC_BYTES
)


def test_stat_ans_vector() -> None:
    assert STAT_ANS.kind_responses[0].values[0] == StoredMetaData(SD_X.storage_time, 86400, META_ABC)
    assert encode_struct(STAT_ANS) == STAT_ANS_BYTES
    assert decode_body(MessageCode.stat_ans, STAT_ANS_BYTES, CTX) == STAT_ANS


def test_stored_metadata_value_length_is_checked() -> None:
    good = STAT_ANS_BYTES[20:]  # after the two vector lengths, kind and generation
    assert StoredMetaData.decode(Reader(good), CTX, DataModel.SINGLE) == StoredMetaData.of(SD_X)
    for wrong in (50, 52):
        bad = wrong.to_bytes(4, "big") + good[4:] + b"\x00"
        with pytest.raises(DecodeError):
            StoredMetaData.decode(Reader(bad), CTX, DataModel.SINGLE)


def test_stat_ans_array_and_dictionary() -> None:
    ans = StatAns(
        (
            StatKindResponse(KIND_Y, 1, (StoredMetaData.of(SD_Y0), StoredMetaData.of(SD_Y1))),
            StatKindResponse(KIND_Z, 2, (StoredMetaData.of(SD_Z),)),
        )
    )
    meta_y0 = ans.kind_responses[0].values[0].metadata
    assert meta_y0 == ArrayEntryMeta(0, MetaData.of(AE_FOO.value))
    assert ans.kind_responses[1].values[0].metadata == DictionaryEntryMeta(
        h("0102"), MetaData.of(DE_GONE.value)
    )
    wire = encode_struct(ans)
    assert decode_body(MessageCode.stat_ans, wire, CTX) == ans


# ---------------------------------------------------------------- §7.4.4 Find

FIND_REQ = FindReq(h("1234"), (KindId.SIP_REGISTRATION, KIND_X))
FIND_REQ_BYTES = h(
    "02",  # resource: 2 bytes
    "1234",
    "08",  # kinds<0..2^8-1>: 8 bytes
    "00000001",  # SIP-REGISTRATION
    "f0000001",  # X
)
FIND_ANS = FindAns((FindKindData(KindId.SIP_REGISTRATION, h("1235")), FindKindData(KIND_X, h("00"))))
FIND_ANS_BYTES = h(
    "000d",  # results<0..2^16-1>: 13 bytes
    "00000001",  # kind
    "02",  # closest: 2 bytes
    "1235",
    "f0000001",  # kind
    "01",  # closest: 1 byte, 0 = none known
    "00",
)


def test_find_vectors() -> None:
    assert encode_struct(FIND_REQ) == FIND_REQ_BYTES
    assert decode_body(MessageCode.find_req, FIND_REQ_BYTES) == FIND_REQ
    assert encode_struct(FIND_ANS) == FIND_ANS_BYTES
    assert decode_body(MessageCode.find_ans, FIND_ANS_BYTES) == FIND_ANS


def test_find_req_checks() -> None:
    with pytest.raises(DecodeError):  # kinds not a whole number of uint32
        decode_body(MessageCode.find_req, h("00", "05", "0000000100"))
    with pytest.raises(DecodeError):  # "Each value MUST appear only once"
        decode_body(MessageCode.find_req, h("00", "08", "00000001", "00000001"))
    with pytest.raises(EncodeError):
        encode_struct(FindReq(b"", (KIND_X, KIND_X)))


# ---------------------------------------------------------------- registration


def test_every_storage_code_is_registered() -> None:
    expected = {
        MessageCode.store_req: StoreReq,
        MessageCode.store_ans: StoreAns,
        MessageCode.fetch_req: FetchReq,
        MessageCode.fetch_ans: FetchAns,
        MessageCode.stat_req: StatReq,
        MessageCode.stat_ans: StatAns,
        MessageCode.find_req: FindReq,
        MessageCode.find_ans: FindAns,
    }
    for code, cls in expected.items():
        assert BODY_TYPES[code] is cls
    assert {code for code, _ in EXAMPLES} == set(expected)


@pytest.mark.parametrize(("code", "obj"), EXAMPLES, ids=[c.name for c, _ in EXAMPLES])
def test_examples_round_trip_with_default_context(code: MessageCode, obj: Any) -> None:
    wire = encode_struct(obj)
    assert decode_body(code, wire) == obj
    assert from_json(type(obj), to_json(obj)) == obj


def test_example_store_carries_a_sip_registration() -> None:
    from reload_core.wire.sip_registration import SipRegistration

    req = next(o for c, o in EXAMPLES if c == MessageCode.store_req)
    assert isinstance(req, StoreReq)
    entry = req.kind_data[0].values[0].value
    assert isinstance(entry, DictionaryEntry)
    reg = SipRegistration.from_bytes(entry.value.value)
    assert reg.type == 2
    sig = req.kind_data[0].values[0].signature
    assert len(sig.identity.certificate_hash) == 32 and len(sig.signature_value) == 256


# ---------------------------------------------------------------- unknown Kinds: inferring the model


def _store_req(kind: int, *values: StoredData) -> bytes:
    return encode_struct(StoreReq(h("01"), 0, (StoreKindData(kind, 0, values),)))


@pytest.mark.parametrize("value", [DV_ABC, AE_FOO, DictionaryEntry(bytes(range(16)), DataValue(True, b"x"))])
def test_unconfigured_kind_model_is_inferred(value: Any) -> None:
    stored = StoredData(1, 2, value, SIG)
    decoded = decode_body(MessageCode.store_req, _store_req(KIND_UNKNOWN, stored, stored), NO_MODELS)
    assert isinstance(decoded, StoreReq)
    assert decoded.kind_data[0].values == (stored, stored)


def test_inference_takes_the_first_model_that_fits() -> None:
    """A dictionary entry with a 2-byte key has exactly the layout of an array entry
    (0x0002 + key = a 4-byte index); with no configured model, ARRAY comes first."""
    stored = StoredData(1, 2, DictionaryEntry(h("0102"), DataValue(True, b"v")), SIG)
    wire = _store_req(KIND_UNKNOWN, stored)
    decoded = decode_body(MessageCode.store_req, wire, NO_MODELS)
    assert isinstance(decoded, StoreReq)
    assert decoded.kind_data[0].values[0].value == ArrayEntry(0x00020102, DataValue(True, b"v"))
    assert encode_struct(decoded) == wire  # same bytes either way
    configured = WireContext(data_models={KIND_UNKNOWN: DataModel.DICTIONARY})
    assert decode_body(MessageCode.store_req, wire, configured) == StoreReq(
        h("01"), 0, (StoreKindData(KIND_UNKNOWN, 0, (stored,)),)
    )


def test_unconfigured_kind_that_fits_no_model() -> None:
    junk = h("00000000000000010000000203")  # storage_time, lifetime, then one stray byte
    wire = h("01", "01", "00", f"{16 + 4 + len(junk):08x}", "f0000009", "0000000000000000")
    wire += h(f"{4 + len(junk):08x}", f"{len(junk):08x}") + junk
    with pytest.raises(UnknownKindError) as exc:
        decode_body(MessageCode.store_req, wire, NO_MODELS)
    assert isinstance(exc.value, DecodeError)
    assert exc.value.error_code == ErrorCode.Error_Unknown_Kind
    assert exc.value.kind == KIND_UNKNOWN
    assert "SINGLE" in exc.value.reason and "DICTIONARY" in exc.value.reason
    assert 0 < exc.value.offset <= len(wire)


def test_unconfigured_kind_in_fetch_and_stat_answers() -> None:
    fetch = FetchAns((FetchKindResponse(KIND_UNKNOWN, 4, (SD_Y0, SD_Y1)),))
    assert decode_body(MessageCode.fetch_ans, encode_struct(fetch), NO_MODELS) == fetch
    node_key = StoredData(5, 0, DictionaryEntry(bytes(range(16)), DataValue(True, b"v")), SIG)
    stat = StatAns((StatKindResponse(KIND_UNKNOWN, 4, (StoredMetaData.of(node_key),)),))
    assert decode_body(MessageCode.stat_ans, encode_struct(stat), NO_MODELS) == stat
    empty = FetchAns((FetchKindResponse(KIND_UNKNOWN, 4, ()),))
    assert decode_body(MessageCode.fetch_ans, encode_struct(empty), NO_MODELS) == empty


def test_default_context_knows_sip_registration_is_a_dictionary() -> None:
    stored = StoredData(1, 2, DictionaryEntry(h("0102"), DataValue(True, b"v")), SIG)
    wire = _store_req(KindId.SIP_REGISTRATION, stored)
    decoded = decode_body(MessageCode.store_req, wire)
    assert isinstance(decoded, StoreReq)
    assert decoded.kind_data[0].values[0] == stored


# ---------------------------------------------------------------- malformed input

VECTORS: list[tuple[type[Any], bytes]] = [
    (StoreReq, STORE_REQ_BYTES),
    (StoreAns, STORE_ANS_BYTES),
    (FetchReq, FETCH_REQ_BYTES),
    (FetchAns, FETCH_ANS_BYTES),
    (StatReq, FETCH_REQ_BYTES),
    (StatAns, STAT_ANS_BYTES),
    (FindReq, FIND_REQ_BYTES),
    (FindAns, FIND_ANS_BYTES),
    (StoredDataSpecifier, SPEC_ARRAY_BYTES),
    (StoredDataSpecifier, SPEC_DICT_BYTES),
    (DataValue, DV_ABC_BYTES),
    (ArrayEntry, AE_FOO_BYTES),
    (DictionaryEntry, DE_GONE_BYTES),
    (MetaData, META_ABC_BYTES),
] + [(type(obj), encode_struct(cast(WireStruct, obj))) for _, obj in EXAMPLES]


@pytest.mark.parametrize(("cls", "wire"), VECTORS, ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_truncation_at_every_offset_raises_decode_error(cls: type[Any], wire: bytes) -> None:
    assert decode_struct(cls, wire, CTX) is not None
    for cut in range(len(wire)):
        with pytest.raises(DecodeError):
            decode_struct(cls, wire[:cut], CTX)
        with pytest.raises(DecodeError):  # also when the model must be inferred
            decode_struct(cls, wire[:cut], NO_MODELS)


@pytest.mark.parametrize(("cls", "wire"), VECTORS, ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_trailing_bytes_raise_decode_error(cls: type[Any], wire: bytes) -> None:
    with pytest.raises(DecodeError) as exc:
        decode_struct(cls, wire + b"\x00", CTX)
    assert exc.value.offset == len(wire)


def test_bad_boolean_and_inner_lengths() -> None:
    with pytest.raises(DecodeError) as exc:
        decode_struct(DataValue, h("02", "00000000"))  # Boolean is 0 or 1
    assert exc.value.field == "DataValue.exists"
    with pytest.raises(DecodeError):
        decode_struct(DataValue, h("01", "00000004", "616263"))  # value overruns
    # a StoredData whose inner value claims more than its length holds
    inner = bytearray(SD_X_BYTES)
    inner[16:20] = (0x10).to_bytes(4, "big")  # DataValue length 16 instead of 3
    with pytest.raises(DecodeError):
        StoredData.decode(Reader(bytes(inner)), CTX, DataModel.SINGLE)
    # the SignerIdentity inside a StoredData with a wrong length
    bad_sig = bytearray(SD_X_BYTES)
    bad_sig[4 + 8 + 4 + 8 + 3 : 4 + 8 + 4 + 8 + 5] = (7).to_bytes(2, "big")
    with pytest.raises(DecodeError):
        StoredData.decode(Reader(bytes(bad_sig)), CTX, DataModel.SINGLE)
    # StoreReq.kind_data length one short
    short = bytearray(STORE_REQ_BYTES)
    short[4:8] = (int.from_bytes(short[4:8], "big") - 1).to_bytes(4, "big")
    with pytest.raises(DecodeError):
        decode_body(MessageCode.store_req, bytes(short), CTX)


# ---------------------------------------------------------------- §8, §9 values


def test_certificate_value_is_the_der_certificate() -> None:
    entry = certificate_entry(ALICE_CERT)
    assert entry == ArrayEntry(APPEND_INDEX, DataValue(True, ALICE_CERT))  # new ones at the end (§8)
    assert certificate_of(entry.value) == ALICE_CERT
    assert certificate_of(DataValue.nonexistent()) is None
    assert ALICE_CERT[:4] == h("30820175") and len(ALICE_CERT) == 4 + 0x175
    for bad in (b"", h("3100"), ALICE_CERT[:-1], ALICE_CERT + b"\x00", h("3081050102030405"), h("300200")):
        with pytest.raises(DecodeError):
            certificate_of(DataValue(True, bad))
        with pytest.raises(EncodeError):
            certificate_entry(bad)
    assert certificate_of(DataValue(True, h("3003", "020101"))) == h("3003020101")


def test_turn_server_vector() -> None:
    ts = TurnServer(3, IpAddressPort("192.0.2.1", 3478))
    wire = h(
        "03",  # iteration = 3
        "01",  # IpAddressPort.type = ipv4_address
        "06",  # length = 6
        "c0000201",  # 192.0.2.1
        "0d96",  # port 3478
    )
    assert ts.to_bytes() == wire
    assert TurnServer.from_bytes(wire) == ts
    v6 = TurnServer(20, IpAddressPort("2001:db8::1", 3478))
    assert TurnServer.from_bytes(v6.to_bytes()) == v6
    for cut in range(len(wire)):
        with pytest.raises(DecodeError):
            TurnServer.from_bytes(wire[:cut])
    with pytest.raises(DecodeError):
        TurnServer.from_bytes(wire + b"\x00")
    # stored as a single value under TURN-SERVICE (§9)
    stored = StoredData(1, 60, DataValue(True, wire), SIG)
    req = StoreReq(h("aa"), 0, (StoreKindData(KindId.TURN_SERVICE, 0, (stored,)),))
    assert decode_body(MessageCode.store_req, encode_struct(req), CTX) == req


def test_turn_resource_name() -> None:
    node = bytes(range(16))
    assert turn_server_resource_name(node, 1) == node + h("01")
    with pytest.raises(EncodeError):
        turn_server_resource_name(node, 0)


# ---------------------------------------------------------------- hypothesis round trips

u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 0xFFFFFFFFFFFFFFFF)
node_ids = st.binary(min_size=16, max_size=16)
resources = st.binary(max_size=32)
small = st.binary(max_size=40)

MODEL_KINDS = {
    DataModel.SINGLE: [KIND_X, KindId.TURN_SERVICE],
    DataModel.ARRAY: [KIND_Y, KindId.CERTIFICATE_BY_NODE, KindId.CERTIFICATE_BY_USER],
    DataModel.DICTIONARY: [KIND_Z, KindId.SIP_REGISTRATION],
}
ANY_KIND = st.sampled_from([k for ks in MODEL_KINDS.values() for k in ks] + [KIND_UNKNOWN]).map(
    lambda k: enum_or_int(KindId, int(k))
)
identities = st.one_of(
    st.just(SignerIdentity(SignerIdentityType.none)),
    st.builds(
        SignerIdentity,
        st.sampled_from([SignerIdentityType.cert_hash, SignerIdentityType.cert_hash_node_id]),
        u8.map(lambda v: enum_or_int(HashAlgorithm, v)),
        st.binary(max_size=64),
    ),
)
signatures = st.builds(
    Signature,
    st.builds(
        SignatureAndHashAlgorithm,
        u8.map(lambda v: enum_or_int(HashAlgorithm, v)),
        u8.map(lambda v: enum_or_int(SignatureAlgorithm, v)),
    ),
    identities,
    st.binary(max_size=300),
)
data_values = st.builds(DataValue, st.booleans(), small)
stored_values = {
    DataModel.SINGLE: data_values,
    DataModel.ARRAY: st.builds(ArrayEntry, u32, data_values),
    DataModel.DICTIONARY: st.builds(DictionaryEntry, small, data_values),
}
metadatas = st.builds(MetaData, st.booleans(), u32, u8.map(lambda v: enum_or_int(HashAlgorithm, v)), small)
meta_values = {
    DataModel.SINGLE: metadatas,
    DataModel.ARRAY: st.builds(ArrayEntryMeta, u32, metadatas),
    DataModel.DICTIONARY: st.builds(DictionaryEntryMeta, small, metadatas),
}
models = st.sampled_from(list(MODEL_KINDS))


def kinds_of(model: DataModel) -> st.SearchStrategy[Any]:
    return st.sampled_from(MODEL_KINDS[model]).map(lambda k: enum_or_int(KindId, int(k)))


def stored_datas(model: DataModel) -> st.SearchStrategy[StoredData]:
    return st.builds(StoredData, u64, u32, stored_values[model], signatures)


store_kind_datas = models.flatmap(
    lambda m: st.builds(StoreKindData, kinds_of(m), u64, st.lists(stored_datas(m), max_size=3).map(tuple))
)
fetch_kind_responses = models.flatmap(
    lambda m: st.builds(FetchKindResponse, kinds_of(m), u64, st.lists(stored_datas(m), max_size=3).map(tuple))
)
stat_kind_responses = models.flatmap(
    lambda m: st.builds(
        StatKindResponse,
        kinds_of(m),
        u64,
        st.lists(st.builds(StoredMetaData, u64, u32, meta_values[m]), max_size=3).map(tuple),
    )
)


@st.composite
def array_ranges(draw: st.DrawFn) -> tuple[ArrayRange, ...]:
    """Disjoint ranges: sorted distinct bounds paired up (some collapsed to one index)."""
    bounds = sorted(draw(st.lists(u32, max_size=8, unique=True)))
    if len(bounds) % 2:
        bounds = bounds[:-1]
    ranges = [
        ArrayRange(bounds[i], bounds[i] if draw(st.booleans()) else bounds[i + 1])
        for i in range(0, len(bounds), 2)
    ]
    return tuple(draw(st.permutations(ranges)))


specifiers = st.one_of(
    kinds_of(DataModel.SINGLE).flatmap(lambda k: st.builds(StoredDataSpecifier.single, st.just(k), u64)),
    kinds_of(DataModel.ARRAY).flatmap(
        lambda k: st.builds(StoredDataSpecifier.array, st.just(k), array_ranges(), u64)
    ),
    kinds_of(DataModel.DICTIONARY).flatmap(
        lambda k: st.builds(StoredDataSpecifier.dictionary, st.just(k), st.lists(small, max_size=3), u64)
    ),
    st.builds(StoredDataSpecifier, st.just(KIND_UNKNOWN), u64, st.builds(OpaqueSpecifier, small)),
)
unique_kinds = st.lists(ANY_KIND, max_size=5, unique_by=int).map(tuple)

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "StoreReq": st.builds(
        StoreReq,
        resources,
        u8,
        st.lists(store_kind_datas, max_size=3, unique_by=lambda k: int(k.kind)).map(tuple),
    ),
    "StoreAns": st.builds(
        StoreAns,
        st.lists(
            st.builds(StoreKindResponse, ANY_KIND, u64, st.lists(node_ids, max_size=3).map(tuple)), max_size=3
        ).map(tuple),
    ),
    "FetchReq": st.builds(FetchReq, resources, st.lists(specifiers, max_size=4).map(tuple)),
    "FetchAns": st.builds(FetchAns, st.lists(fetch_kind_responses, max_size=3).map(tuple)),
    "StatReq": st.builds(StatReq, resources, st.lists(specifiers, max_size=4).map(tuple)),
    "StatAns": st.builds(StatAns, st.lists(stat_kind_responses, max_size=3).map(tuple)),
    "FindReq": st.builds(FindReq, resources, unique_kinds),
    "FindAns": st.builds(
        FindAns, st.lists(st.builds(FindKindData, ANY_KIND, resources), max_size=4).map(tuple)
    ),
    "StoredDataSpecifier": specifiers,
    "UnknownKinds": st.builds(UnknownKinds, st.lists(ANY_KIND, max_size=5).map(tuple)),
    "TurnServer": st.builds(
        TurnServer,
        u8,
        st.builds(
            IpAddressPort,
            st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str),
            st.integers(0, 0xFFFF),
        ),
    ),
    **{f"StoredData.{m.name}": stored_datas(m) for m in MODEL_KINDS},
    **{f"MetaDataValue.{m.name}": meta_values[m] for m in MODEL_KINDS},
}


@pytest.mark.parametrize("name", list(STRATEGIES))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_round_trip(name: str, data: st.DataObject) -> None:
    obj = data.draw(STRATEGIES[name])
    wire = encode_struct(obj)
    if isinstance(obj, StoredData):
        r = Reader(wire)
        back: Any = StoredData.decode(r, CTX, data_model_of(obj.value))
        assert r.eof()
    elif isinstance(obj, TurnServer):
        back = TurnServer.from_bytes(wire)
    else:
        back = decode_struct(type(obj), wire, CTX)
    assert back == obj
    assert encode_struct(back) == wire
    assert from_json(type(obj), to_json(obj)) == obj


STORAGE_CODES = [
    MessageCode.store_req,
    MessageCode.store_ans,
    MessageCode.fetch_req,
    MessageCode.fetch_ans,
    MessageCode.stat_req,
    MessageCode.stat_ans,
    MessageCode.find_req,
    MessageCode.find_ans,
]


@pytest.mark.parametrize("code", STORAGE_CODES, ids=[c.name for c in STORAGE_CODES])
@settings(max_examples=200)
@given(data=st.binary(max_size=160))
def test_arbitrary_bytes_decode_or_raise_decode_error_only(code: MessageCode, data: bytes) -> None:
    """Whatever decodes re-encodes to the same bytes; nothing but DecodeError escapes."""
    for ctx in (DEFAULT_CONTEXT, NO_MODELS):
        try:
            obj = decode_body(code, data, ctx)
        except DecodeError:
            continue
        assert encode_struct(obj) == data


@pytest.mark.parametrize(("code", "obj"), EXAMPLES[:3], ids=[c.name for c, _ in EXAMPLES[:3]])
@settings(max_examples=150)
@given(data=st.data())
def test_mutated_examples_raise_decode_error_only(code: MessageCode, obj: Any, data: st.DataObject) -> None:
    wire = bytearray(encode_struct(obj))
    pos = data.draw(st.integers(0, len(wire) - 1))
    wire[pos] = data.draw(u8)
    try:
        decoded = decode_body(code, bytes(wire))
    except DecodeError:
        return
    assert encode_struct(decoded) == bytes(wire)

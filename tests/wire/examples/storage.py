"""Realistic example bodies for every message code that reload_core.wire.storage registers
(RFC 6940 §7.4: Store, Fetch, Stat, Find).

Alice (Node-ID NODE_ALICE, AOR alice@example.org) stores her SIP-REGISTRATION route
(RFC 7904 §3.2, dictionary keyed by her Node-ID) and her certificate under
CERTIFICATE_BY_NODE (§8, array, appended). Signatures have the shape §6.3.4 requires of
RSA-SHA256: SignatureAndHashAlgorithm(sha256, rsa), a cert_hash SignerIdentity with a
32-byte SHA-256 and a 256-byte (2048-bit) signature_value. All of it encodes and decodes
with the default WireContext.
"""

from __future__ import annotations

import hashlib

from reload_core.ids import resource_id
from reload_core.wire.codes import (
    HashAlgorithm,
    KindId,
    MessageCode,
    SignatureAlgorithm,
    SignerIdentityType,
)
from reload_core.wire.message import NodeDestination, Signature, SignatureAndHashAlgorithm, SignerIdentity
from reload_core.wire.sip_registration import SipRegistration
from reload_core.wire.storage import (
    LAST_INDEX,
    ArrayEntry,
    ArrayRange,
    DataValue,
    DictionaryEntry,
    FetchAns,
    FetchKindResponse,
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
    StoredMetaData,
    StoreKindData,
    StoreKindResponse,
    StoreReq,
    synthetic_signature,
)
from reload_core.wire.usage_data import certificate_entry

NODE_ALICE = bytes.fromhex("0123456789abcdef0123456789abcdef")
NODE_REPLICA_1 = bytes.fromhex("3f1e0c9b8a7d6e5f4a3b2c1d0e0f1a2b")
NODE_REPLICA_2 = bytes.fromhex("7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d")
AOR = "alice@example.org"  # an AOR has no scheme (RFC 7904 §2)
AOR_RESOURCE = resource_id(AOR)
NODE_RESOURCE = resource_id(NODE_ALICE)

# A self-signed EC P-256 certificate for NODE_ALICE on overlay.example.org (§11.3.1 shape).
ALICE_CERT = bytes.fromhex(
    "308201753082011aa00302010202025eed300a06082a8648ce3d0403023010310e300c06035504030c05616c69636530"
    "1e170d3235303130313030303030305a170d3334313233303030303030305a3010310e300c06035504030c05616c6963"
    "653059301306072a8648ce3d020106082a8648ce3d0301070342000470c36ab008166a7e45a89aee30804fdc5861cf4e"
    "a0d01f1c4284d9749282fbed383672801fff3cc392f52c16c81309371f6cb91a51720a6e0d9ff47b70c187b3a3643062"
    "30600603551d1104593057864272656c6f61643a2f2f3031313030313233343536373839616263646566303132333435"
    "36373839616263646566406f7665726c61792e6578616d706c652e6f72672f8111616c696365406578616d706c652e6f"
    "7267300a06082a8648ce3d0403020349003046022100f4246851694abbb8226b06d34016ad2c7073e50de7f1c951d2ef"
    "487d13dd61340221009aabcc6e5e762bd820b9c3adc8bea2612db2c1c9b8f20fe4a64905628e2bd920"
)

STORAGE_TIME = 1_735_689_600_000  # 2025-01-01T00:00:00Z in milliseconds
LIFETIME = 3600


def _signature(tag: int) -> Signature:
    """RSA-SHA256 over a cert_hash identity; the value is 256 bytes as a 2048-bit key gives."""
    return Signature(
        SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.rsa),
        SignerIdentity(
            SignerIdentityType.cert_hash, HashAlgorithm.sha256, hashlib.sha256(ALICE_CERT).digest()
        ),
        hashlib.sha256(bytes([tag])).digest() * 8,
    )


REGISTRATION = SipRegistration.for_route([NodeDestination(NODE_ALICE)], "(sip.schemes=SIP)")

REGISTRATION_DATA = StoredData(
    STORAGE_TIME,
    LIFETIME,
    DictionaryEntry(NODE_ALICE, DataValue(True, REGISTRATION.to_bytes())),
    _signature(1),
)

FORWARD_DATA = StoredData(
    STORAGE_TIME + 1,
    LIFETIME,
    DictionaryEntry(NODE_REPLICA_1, DataValue(True, SipRegistration.for_uri("sam@example.org").to_bytes())),
    _signature(2),
)

CERTIFICATE_DATA = StoredData(STORAGE_TIME, 86400, certificate_entry(ALICE_CERT), _signature(3))

STORE_REQ = StoreReq(
    AOR_RESOURCE,
    0,
    (StoreKindData(KindId.SIP_REGISTRATION, 0, (REGISTRATION_DATA,)),),
)

STORE_REQ_CERT = StoreReq(
    NODE_RESOURCE,
    1,  # a replica store: nonzero replica number and generation counter (§7.4.1.1)
    (StoreKindData(KindId.CERTIFICATE_BY_NODE, 7, (CERTIFICATE_DATA,)),),
)

STORE_ANS = StoreAns(
    (StoreKindResponse(KindId.SIP_REGISTRATION, 1, (NODE_REPLICA_1, NODE_REPLICA_2)),),
)

FETCH_REQ = FetchReq(
    AOR_RESOURCE,
    (StoredDataSpecifier.dictionary(KindId.SIP_REGISTRATION),),  # all keys (RFC 7904 §4.2)
)

FETCH_REQ_CERT = FetchReq(
    NODE_RESOURCE,
    (StoredDataSpecifier.array(KindId.CERTIFICATE_BY_NODE, [ArrayRange(0, LAST_INDEX)], generation=6),),
)

FETCH_ANS = FetchAns(
    (
        FetchKindResponse(KindId.SIP_REGISTRATION, 2, (REGISTRATION_DATA, FORWARD_DATA)),
        FetchKindResponse(
            KindId.CERTIFICATE_BY_NODE,
            8,
            (
                StoredData(
                    STORAGE_TIME,
                    86400,
                    ArrayEntry(0, DataValue(True, ALICE_CERT)),
                    CERTIFICATE_DATA.signature,
                ),
                # A gap the storing node synthesizes: nonexistent, empty signature (§7.4.2.2).
                StoredData(0, 0, ArrayEntry(1, DataValue.nonexistent()), synthetic_signature()),
            ),
        ),
    )
)

STAT_REQ = StatReq(
    AOR_RESOURCE,
    (StoredDataSpecifier.dictionary(KindId.SIP_REGISTRATION, [NODE_ALICE], generation=1),),
)

STAT_ANS = StatAns(
    (
        StatKindResponse(
            KindId.SIP_REGISTRATION,
            2,
            (StoredMetaData.of(REGISTRATION_DATA), StoredMetaData.of(FORWARD_DATA)),
        ),
    )
)

FIND_REQ = FindReq(AOR_RESOURCE, (KindId.SIP_REGISTRATION, KindId.CERTIFICATE_BY_USER))

FIND_ANS = FindAns(
    (
        FindKindData(KindId.SIP_REGISTRATION, AOR_RESOURCE),
        FindKindData(KindId.CERTIFICATE_BY_USER, bytes(16)),  # none known: 0 (§7.4.4.2)
    )
)

EXAMPLES: list[tuple[MessageCode, object]] = [
    (MessageCode.store_req, STORE_REQ),
    (MessageCode.store_req, STORE_REQ_CERT),
    (MessageCode.store_ans, STORE_ANS),
    (MessageCode.fetch_req, FETCH_REQ),
    (MessageCode.fetch_req, FETCH_REQ_CERT),
    (MessageCode.fetch_ans, FETCH_ANS),
    (MessageCode.stat_req, STAT_REQ),
    (MessageCode.stat_ans, STAT_ANS),
    (MessageCode.find_req, FIND_REQ),
    (MessageCode.find_ans, FIND_ANS),
]

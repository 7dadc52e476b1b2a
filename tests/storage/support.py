"""Credentials, Kinds and signed values for the storage tests.

Certificates come from the overlay CA of :mod:`reload_core.security.ca` (Ed25519 keys, so
that making dozens of identities stays fast); values are signed with the real §7.1 code.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from reload_core.config.document import AccessControl
from reload_core.ids import resource_id
from reload_core.security.ca import OverlayCA
from reload_core.security.certificates import NodeCertificate, make_self_signed, parse_node_certificate
from reload_core.security.signing import CertificateResolver, Signer, sign_stored_data
from reload_core.storage.access import SignedBy
from reload_core.storage.kinds import Kind, KindRegistry
from reload_core.storage.store import IncomingValue, KindWrite
from reload_core.wire.codes import DataModel, KindId
from reload_core.wire.storage import APPEND_INDEX, ArrayEntry, DataValue, DictionaryEntry, StoredData

OVERLAY = "storage.test.example"
NOW = dt.datetime.now(dt.UTC)

# Private-use Kind-IDs for the tests, one per data model and policy combination.
SINGLE_USER = 0xF0000001
ARRAY_USER = 0xF0000002
DICT_USER = 0xF0000003
SINGLE_NODE = 0xF0000004
MULTI_NODE = 0xF0000005


def make_kinds(*, max_count: int = 8, max_size: int = 256) -> KindRegistry:
    return KindRegistry(
        [
            Kind(SINGLE_USER, DataModel.SINGLE, AccessControl.USER_MATCH, 1, max_size, name="single-user"),
            Kind(
                ARRAY_USER, DataModel.ARRAY, AccessControl.USER_MATCH, max_count, max_size, name="array-user"
            ),
            Kind(DICT_USER, DataModel.DICTIONARY, AccessControl.USER_NODE_MATCH, max_count, max_size),
            Kind(SINGLE_NODE, DataModel.SINGLE, AccessControl.NODE_MATCH, 1, max_size),
            Kind(MULTI_NODE, DataModel.SINGLE, AccessControl.NODE_MULTIPLE, 1, max_size, max_node_multiple=3),
            Kind(KindId.CERTIFICATE_BY_NODE, DataModel.ARRAY, AccessControl.NODE_MATCH, 4, 8192),
            Kind(KindId.CERTIFICATE_BY_USER, DataModel.ARRAY, AccessControl.USER_MATCH, 4, 8192),
            Kind(KindId.SIP_REGISTRATION, DataModel.DICTIONARY, AccessControl.USER_NODE_MATCH, 16, 1024),
        ]
    )


class TestCA:
    """An overlay CA issuing Ed25519 node certificates."""

    __test__ = False

    def __init__(self, overlay: str = OVERLAY) -> None:
        self.overlay = overlay
        self.ca = OverlayCA.create(overlay, ed25519.Ed25519PrivateKey.generate(), NOW)

    @property
    def root(self) -> bytes:
        return self.ca.certificate_der

    def identity(self, user_name: str, node_id: bytes | None = None) -> Identity:
        key = ed25519.Ed25519PrivateKey.generate()
        nid = node_id or secrets.token_bytes(16)
        cert = self.ca.issue_node_certificate(key.public_key(), user_name, [nid], NOW)
        return Identity(Signer.create(key, cert.public_bytes(Encoding.DER), nid), user_name)

    def resolver(self) -> CertificateResolver:
        return CertificateResolver(overlay=self.overlay, roots=(self.root,))


class SelfSigned:
    """Self-signed credentials (§11.3.1): no CA, Node-IDs derived from the keys."""

    __test__ = False

    def __init__(self, overlay: str = OVERLAY) -> None:
        self.overlay = overlay

    def identity(self, user_name: str, node_id: bytes | None = None) -> Identity:
        key = ed25519.Ed25519PrivateKey.generate()
        der = make_self_signed(key, user_name, self.overlay, "sha256")
        return Identity(Signer.create(key, der), user_name)

    def resolver(self) -> CertificateResolver:
        return CertificateResolver(overlay=self.overlay, self_signed_digest="sha256")


@dataclass(frozen=True)
class Identity:
    signer: Signer
    user_name: str

    @property
    def node_id(self) -> bytes:
        return self.signer.node_id

    @property
    def der(self) -> bytes:
        return self.signer.certificate

    @cached_property
    def certificate(self) -> NodeCertificate:
        return parse_node_certificate(self.der)

    @property
    def signed_by(self) -> SignedBy:
        return SignedBy(self.certificate, self.node_id)

    @property
    def user_resource(self) -> bytes:
        return resource_id(self.user_name)

    @property
    def node_resource(self) -> bytes:
        return resource_id(self.node_id)

    def sign(
        self,
        resource: bytes,
        kind: int,
        value: DataValue | ArrayEntry | DictionaryEntry,
        storage_time: int,
        lifetime: int = 3600,
    ) -> StoredData:
        return sign_stored_data(resource, kind, storage_time, lifetime, value, self.signer)

    def single(self, resource: bytes, kind: int, data: bytes, t: int, lifetime: int = 3600) -> IncomingValue:
        return IncomingValue(self.sign(resource, kind, DataValue(True, data), t, lifetime), self.der)

    def entry(
        self, resource: bytes, kind: int, index: int, data: bytes, t: int, lifetime: int = 3600
    ) -> IncomingValue:
        return IncomingValue(
            self.sign(resource, kind, ArrayEntry(index, DataValue(True, data)), t, lifetime), self.der
        )

    def append(self, resource: bytes, kind: int, data: bytes, t: int, lifetime: int = 3600) -> IncomingValue:
        return self.entry(resource, kind, APPEND_INDEX, data, t, lifetime)

    def dict_entry(
        self,
        resource: bytes,
        kind: int,
        key: bytes,
        data: bytes,
        t: int,
        lifetime: int = 3600,
        *,
        exists: bool = True,
    ) -> IncomingValue:
        value = DictionaryEntry(key, DataValue(exists, data if exists else b""))
        return IncomingValue(self.sign(resource, kind, value, t, lifetime), self.der)


def write(kind: int, *values: IncomingValue, generation: int = 0) -> KindWrite:
    return KindWrite(kind, generation, values)

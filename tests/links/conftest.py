"""A throwaway overlay PKI for the TLS link tests, made with ``cryptography`` directly:
a root CA, an intermediate, node certificates with reload:// Node-ID URIs (§11.3), a
second unrelated CA, and self-signed node credentials (§11.3.1)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from reload_core.links.tls import OverlayTrust, TlsCredentials
from reload_core.security.certificates import PrivateKey, make_self_signed, parse_node_certificate
from reload_core.uri import node_id_uri

from .support import OVERLAY

NOW = datetime.now(UTC)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _usage(*, sign: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Ca:
    name: x509.Name
    key: PrivateKey
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return _der(self.cert)


def make_ca(common_name: str, parent: Ca | None = None) -> Ca:
    key: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if parent else rsa.generate_private_key(65537, 2048)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer = parent or None
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.name if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=None if parent is None else 0), critical=True
        )
        .add_extension(_usage(sign=False, cert_sign=True), critical=True)
    )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())  # type: ignore[arg-type]
    return Ca(name, key, cert)


def issue_node_cert(
    ca: Ca,
    key: PrivateKey,
    node_ids: Sequence[bytes],
    user: str = "alice@links.test.example",
    overlay: str = OVERLAY,
) -> bytes:
    """A §11.3 node certificate: empty subject, critical SAN with one reload URI per
    Node-ID and the user name as rfc822Name."""
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(node_id_uri(n, overlay)) for n in node_ids
    ]
    names.append(x509.RFC822Name(user))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(sign=True, cert_sign=False), critical=True)
        .sign(ca.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return _der(cert)


@dataclass
class Node:
    node_id: bytes
    credentials: TlsCredentials


@dataclass
class Pki:
    root: Ca
    inter: Ca
    other_root: Ca

    def node(
        self,
        *,
        via_intermediate: bool = False,
        ca: Ca | None = None,
        node_ids: Sequence[bytes] | None = None,
        rsa_key: bool = False,
    ) -> Node:
        key: PrivateKey = (
            rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
        )
        ids = list(node_ids) if node_ids is not None else [secrets.token_bytes(16)]
        issuer = ca or (self.inter if via_intermediate else self.root)
        cert = issue_node_cert(issuer, key, ids)
        chain = (self.inter.der,) if issuer is self.inter else ()
        return Node(ids[0], TlsCredentials(key, cert, chain))

    def trust(self) -> OverlayTrust:
        return OverlayTrust(OVERLAY, root_certs=(self.root.der,))


@pytest.fixture(scope="session")
def pki() -> Pki:
    root = make_ca("Links Test Root")
    return Pki(root, make_ca("Links Test Intermediate", root), make_ca("Some Other Root"))


def self_signed_node(user: str = "bob@links.test.example") -> Node:
    key = ec.generate_private_key(ec.SECP256R1())
    der = make_self_signed(key, user, OVERLAY, "sha256")
    return Node(parse_node_certificate(der).node_id, TlsCredentials(key, der))


SELF_SIGNED_TRUST = OverlayTrust(OVERLAY, self_signed_digest="sha256")

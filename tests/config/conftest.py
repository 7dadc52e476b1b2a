"""Fixtures for the configuration document tests: a small PKI (an overlay root CA and
node certificates in the §11.3 profile) and the RFC 6940 §11.1 example."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from reload_core.uri import node_id_uri

OVERLAY = "overlay.example.org"
DATA = Path(__file__).parent / "data"
# Certificates here are valid from 2025 to 2035; tests pass the time in (2030).

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Credentials:
    key: Key
    certificate: bytes
    node_id: bytes | None = None

    @property
    def node_id_hex(self) -> str:
        assert self.node_id is not None
        return self.node_id.hex()


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def make_root(name: str, key: Key | None = None) -> Credentials:
    key = key or _rsa()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2035, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Credentials(key, _der(cert))


def make_node(
    root: Credentials, *, overlay: str = OVERLAY, user: str = "signer", key: Key | None = None
) -> Credentials:
    """A node certificate (§11.3): empty subject, a reload URI and one rfc822Name."""
    key = key or _rsa()
    node_id = secrets.token_bytes(16)
    issuer = x509.load_der_x509_certificate(root.certificate).subject
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2035, 1, 1, tzinfo=UTC))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier(node_id_uri(node_id, overlay)),
                    x509.RFC822Name(f"{user}@{overlay}"),
                ]
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(root.key, hashes.SHA256())
    )
    return Credentials(key, _der(cert), node_id)


class Pki:
    """Certificate factory for tests that need more than the fixtures below."""

    make_root = staticmethod(make_root)
    make_node = staticmethod(make_node)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="session")
def root_ca() -> Credentials:
    return make_root("Test Overlay CA")


@pytest.fixture(scope="session")
def signer(root_ca: Credentials) -> Credentials:
    """The configuration and kind signer (RSA)."""
    return make_node(root_ca)


@pytest.fixture(scope="session")
def other_signer(root_ca: Credentials) -> Credentials:
    return make_node(root_ca, user="other", key=ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def foreign_ca() -> Credentials:
    return make_root("Someone Else's CA", ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def rfc_example() -> bytes:
    """RFC 6940 §11.1's example document, transcribed unchanged (page breaks removed)."""
    return (DATA / "rfc6940-example.xml").read_bytes()

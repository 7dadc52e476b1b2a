"""Builders for throwaway CAs and node certificates, made with ``cryptography`` directly
(not with the code under test), so that the tests check our rules against certificates
made independently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from reload_core.security.certificates import PrivateKey

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
OVERLAY = "overlay.example.org"
DAY = timedelta(days=1)


def uri(node_id: bytes, overlay: str = OVERLAY) -> str:
    """§14.15 by hand: Destination type node (0x01), length, Node-ID; hex; no specifier."""
    return f"reload://01{len(node_id):02x}{node_id.hex()}@{overlay}/"


def key_usage(*, sign: bool = False, cert_sign: bool = False, encipher: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=encipher,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass
class Ca:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def der(self) -> bytes:
        return der(self.cert)


class Pki:
    """Builders for CA and node certificates with every knob the tests turn."""

    def __init__(self, keys: dict[str, PrivateKey]) -> None:
        self.keys = keys

    def ca(
        self,
        name: str,
        key: PrivateKey,
        *,
        parent: Ca | None = None,
        ca: bool | None = True,
        path_length: int | None = None,
        usage: x509.KeyUsage | None = None,
        not_before: datetime = NOW - 365 * DAY,
        not_after: datetime = NOW + 365 * DAY,
    ) -> Ca:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(parent.cert.subject if parent else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(usage or key_usage(cert_sign=True), critical=True)
        )
        if ca is not None:
            builder = builder.add_extension(
                x509.BasicConstraints(ca=ca, path_length=path_length), critical=True
            )
        signer = parent.key if parent else key
        return Ca(builder.sign(signer, _hash_for(signer)), key)

    def leaf(
        self,
        issuer: Ca | None,
        key: PrivateKey,
        node_ids: Sequence[bytes] = (b"\x11" * 16,),
        user_name: str = "alice@overlay.example.org",
        *,
        overlay: str = OVERLAY,
        san: Sequence[x509.GeneralName] | None = None,
        subject: x509.Name | None = None,
        usage: x509.KeyUsage | None = None,
        ca: bool | None = False,
        not_before: datetime = NOW - 30 * DAY,
        not_after: datetime = NOW + 30 * DAY,
        signing_key: PrivateKey | None = None,
        hash_algorithm: hashes.HashAlgorithm | None = None,
        extra: Sequence[x509.ExtensionType] = (),
        critical_extra: bool = True,
    ) -> bytes:
        """A node certificate; ``issuer=None`` makes it self-issued (empty issuer)."""
        names = (
            list(san)
            if san is not None
            else [
                *(x509.UniformResourceIdentifier(uri(n, overlay)) for n in node_ids),
                x509.RFC822Name(user_name),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject or x509.Name([]))
            .issuer_name(issuer.cert.subject if issuer else x509.Name([]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=True)
            .add_extension(usage or key_usage(sign=True), critical=True)
        )
        if ca is not None:
            builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        for ext in extra:
            builder = builder.add_extension(ext, critical=critical_extra)
        signer = signing_key or (issuer.key if issuer else key)
        return der(builder.sign(signer, hash_algorithm or _hash_for(signer)))

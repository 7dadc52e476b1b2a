"""RELOAD signatures: messages (RFC 6940 §6.3.4) and stored data (§7.1).

A :class:`Signer` holds a node's private key, its certificate and the Node-ID it signs
as; it builds the ``SignerIdentity`` (``cert_hash`` for a certificate with one Node-ID,
``cert_hash_node_id`` for one with several, §6.3.4) and signs ``data || SignerIdentity``,
the common shape of both signature inputs.

Algorithms (the ``SignatureAndHashAlgorithm`` pair of TLS 1.2, RFC 5246 §7.4.1.4.1), by
key type:

- RSA: (sha256, rsa), RSASSA-PKCS1-v1_5, the mandatory one (§6.3.4);
- ECDSA: (sha256, ecdsa) on P-256 (sha384 on P-384, sha512 on P-521), the value a DER
  ``ECDSA-Sig-Value`` as in TLS 1.2 (RFC 8422 §5.4);
- Ed25519 / Ed448: (intrinsic(8), ed25519(7)) / (intrinsic(8), ed448(8)). RFC 8422 §5.1.3
  defines EdDSA for TLS 1.2 with the hash field set to the "Intrinsic" value 8, because
  PureEdDSA hashes internally; the pair's bytes 0x0807 / 0x0808 are the same code points
  as TLS 1.3's SignatureScheme (RFC 8446 §4.2.3).

Verification accepts SHA-256, SHA-384 and SHA-512 for RSA and ECDSA, "intrinsic" for
EdDSA only, and the same SHA-2 hashes for the SignerIdentity's certificate hash.
Everything that goes wrong while verifying, including garbage input, raises
:class:`SignatureError` and nothing else: a message that fails is dropped (§6.3.4).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from reload_core.security.certificates import (
    CertificateError,
    NodeCertificate,
    PrivateKey,
    PublicKey,
    SecurityError,
    SelfSignedDigest,
    certification_path,
    check_self_signed,
    parse_node_certificate,
    spki_der,
)
from reload_core.wire.buffer import Writer
from reload_core.wire.codes import CertificateType, HashAlgorithm, SignatureAlgorithm, SignerIdentityType
from reload_core.wire.message import (
    GenericCertificate,
    Message,
    MessageContents,
    SecurityBlock,
    Signature,
    SignatureAndHashAlgorithm,
    SignerIdentity,
)
from reload_core.wire.storage import StoredData, StoredDataValue, stored_data_signature_input


class SignatureError(SecurityError):
    """A signature cannot be accepted: it does not verify, its signer is unknown or its
    certificate invalid, its algorithm does not fit the key, or its hash is not allowed."""


_SHA2: dict[int, Callable[[], hashes.HashAlgorithm]] = {
    HashAlgorithm.sha256: hashes.SHA256,
    HashAlgorithm.sha384: hashes.SHA384,
    HashAlgorithm.sha512: hashes.SHA512,
}
# ECDSA parameter objects hold no state: one each serves every signature (building them
# per call cost a tenth of what the P-256 check itself does).
_ECDSA: dict[int, ec.ECDSA] = {alg: ec.ECDSA(make()) for alg, make in _SHA2.items()}
_HASHLIB: dict[int, str] = {
    HashAlgorithm.sha256: "sha256",
    HashAlgorithm.sha384: "sha384",
    HashAlgorithm.sha512: "sha512",
}
_SIGNED_IDENTITY_TYPES = (SignerIdentityType.cert_hash, SignerIdentityType.cert_hash_node_id)


# ---------------------------------------------------------------- raw signatures


def signature_algorithm_for(key: PrivateKey | PublicKey) -> SignatureAndHashAlgorithm:
    """The SignatureAndHashAlgorithm this module signs with for a key of this type."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.rsa)
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        by_curve = {"secp384r1": HashAlgorithm.sha384, "secp521r1": HashAlgorithm.sha512}
        return SignatureAndHashAlgorithm(
            by_curve.get(key.curve.name, HashAlgorithm.sha256), SignatureAlgorithm.ecdsa
        )
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return SignatureAndHashAlgorithm(HashAlgorithm.intrinsic, SignatureAlgorithm.ed25519)
    if isinstance(key, ed448.Ed448PrivateKey | ed448.Ed448PublicKey):
        return SignatureAndHashAlgorithm(HashAlgorithm.intrinsic, SignatureAlgorithm.ed448)
    raise TypeError(f"unsupported key type {type(key).__name__}")


def sign_with_key(private_key: PrivateKey, data: bytes) -> tuple[SignatureAndHashAlgorithm, bytes]:
    """Sign ``data`` as it is (no SignerIdentity appended): the algorithm pair and the value."""
    algorithm = signature_algorithm_for(private_key)
    if isinstance(private_key, rsa.RSAPrivateKey):
        value = private_key.sign(data, padding.PKCS1v15(), _SHA2[algorithm.hash]())
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        value = private_key.sign(data, _ECDSA[algorithm.hash])
    else:
        value = private_key.sign(data)
    return algorithm, value


def verify_with_key(
    public_key: PublicKey, algorithm: SignatureAndHashAlgorithm, data: bytes, signature_value: bytes
) -> None:
    """Check ``signature_value`` over ``data``; the algorithm must suit the key (see module doc)."""
    try:
        _verify_with_key(public_key, algorithm, data, signature_value)
    except SignatureError:
        raise
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None
    except Exception as exc:  # fail closed: whatever the input, the caller sees a SignatureError
        raise SignatureError(f"signature cannot be checked: {exc}") from exc


def _verify_with_key(
    public_key: PublicKey, algorithm: SignatureAndHashAlgorithm, data: bytes, signature_value: bytes
) -> None:
    sig_alg, hash_alg = int(algorithm.signature), int(algorithm.hash)
    if isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        if hash_alg not in _SHA2:
            raise SignatureError(f"hash algorithm {hash_alg} is not allowed with RSA or ECDSA")
        if isinstance(public_key, rsa.RSAPublicKey):
            if sig_alg != SignatureAlgorithm.rsa:
                raise SignatureError(f"signature algorithm {sig_alg} does not fit an RSA key")
            public_key.verify(signature_value, data, padding.PKCS1v15(), _SHA2[hash_alg]())
        else:
            if sig_alg != SignatureAlgorithm.ecdsa:
                raise SignatureError(f"signature algorithm {sig_alg} does not fit an ECDSA key")
            public_key.verify(signature_value, data, _ECDSA[hash_alg])
        return
    expected = (
        SignatureAlgorithm.ed25519
        if isinstance(public_key, ed25519.Ed25519PublicKey)
        else SignatureAlgorithm.ed448
    )
    if sig_alg != expected:
        raise SignatureError(f"signature algorithm {sig_alg} does not fit an {expected.name} key")
    if hash_alg != HashAlgorithm.intrinsic:
        raise SignatureError(f"hash algorithm {hash_alg} is not allowed with EdDSA (intrinsic only)")
    public_key.verify(signature_value, data)


# ---------------------------------------------------------------- §6.3.4 SignerIdentity


def _identity_hash(hash_alg: int, data: bytes) -> bytes:
    # Every message checked hashes its signer's certificate DER (§6.3.4) and a node hears
    # from few signers: cached, for DERs of a usual size only (the cache holds them).
    if len(data) <= _IDENTITY_CACHE_MAX_DER:
        return _cached_identity_hash(hash_alg, data)
    return _uncached_identity_hash(hash_alg, data)


_IDENTITY_CACHE_MAX_DER = 2048


def _uncached_identity_hash(hash_alg: int, data: bytes) -> bytes:
    name = _HASHLIB.get(hash_alg)
    if name is None:
        raise SignatureError(f"SignerIdentity hash algorithm {hash_alg} is not allowed")
    return hashlib.new(name, data).digest()


_cached_identity_hash = lru_cache(maxsize=1024)(_uncached_identity_hash)


def signer_identity(
    certificate: NodeCertificate, node_id: bytes, hash_alg: HashAlgorithm = HashAlgorithm.sha256
) -> SignerIdentity:
    """§6.3.4: ``cert_hash`` = H(certificate DER) for a certificate with one Node-ID,
    ``cert_hash_node_id`` = H(NodeId || certificate DER) for one with several."""
    if node_id not in certificate.node_ids:
        raise ValueError(f"Node-ID {node_id.hex()} is not in the certificate")
    if len(certificate.node_ids) == 1:
        return SignerIdentity(
            SignerIdentityType.cert_hash, hash_alg, _identity_hash(hash_alg, certificate.der)
        )
    return SignerIdentity(
        SignerIdentityType.cert_hash_node_id, hash_alg, _identity_hash(hash_alg, node_id + certificate.der)
    )


def signing_node_id(identity: SignerIdentity, certificate: NodeCertificate) -> bytes:
    """The Node-ID that ``identity`` designates in ``certificate``; SignatureError if the
    identity does not designate this certificate, or uses the wrong identity type for it
    (cert_hash MUST be used with one Node-ID, cert_hash_node_id with several, §6.3.4)."""
    kind = identity.identity_type
    if kind not in _SIGNED_IDENTITY_TYPES:
        raise SignatureError(f"SignerIdentity type {int(kind)} names no certificate")
    several = len(certificate.node_ids) > 1
    if several != (kind == SignerIdentityType.cert_hash_node_id):
        raise SignatureError(
            f"SignerIdentity {kind.name} used with a certificate of {len(certificate.node_ids)} Node-IDs"
        )
    if kind == SignerIdentityType.cert_hash:
        if _identity_hash(int(identity.hash_alg), certificate.der) == identity.certificate_hash:
            return certificate.node_ids[0]
    else:
        for node_id in certificate.node_ids:
            if _identity_hash(int(identity.hash_alg), node_id + certificate.der) == identity.certificate_hash:
                return node_id
    raise SignatureError("SignerIdentity does not designate this certificate")


def find_signer_certificate(
    identity: SignerIdentity, certificates: Iterable[bytes], node_id_length: int = 16
) -> NodeCertificate:
    """The certificate among ``certificates`` (DER) that ``identity`` designates.

    Only the identity is matched here; whether the certificate is trustworthy is the
    resolver's question. Certificates that do not parse are skipped."""
    if identity.identity_type not in _SIGNED_IDENTITY_TYPES:
        raise SignatureError(f"SignerIdentity type {int(identity.identity_type)} names no certificate")
    for der in certificates:
        if identity.identity_type == SignerIdentityType.cert_hash and (
            _identity_hash(int(identity.hash_alg), der) != identity.certificate_hash
        ):
            continue  # cheap test first: no parsing for the usual single-Node-ID case
        try:
            node = parse_node_certificate(der, node_id_length)
        except CertificateError:
            continue
        try:
            signing_node_id(identity, node)
        except SignatureError:
            continue
        return node
    raise SignatureError("no certificate matches the SignerIdentity")


# ---------------------------------------------------------------- Signer


@dataclass(frozen=True, slots=True, eq=False)
class Signer:
    """A node's signing credentials: key, certificate (DER) and the Node-ID it signs as.

    The certificate must carry ``node_id`` and the key's public half (checked on creation).
    """

    private_key: PrivateKey = field(repr=False)
    certificate: bytes
    node_id: bytes
    node_certificate: NodeCertificate = field(init=False, repr=False)

    def __post_init__(self) -> None:
        node = parse_node_certificate(self.certificate, len(self.node_id))
        if self.node_id not in node.node_ids:
            raise CertificateError(f"Node-ID {self.node_id.hex()} is not in the certificate")
        if spki_der(self.private_key.public_key()) != node.spki_der:
            raise CertificateError("the private key does not belong to the certificate")
        object.__setattr__(self, "node_certificate", node)

    @classmethod
    def create(cls, private_key: PrivateKey, certificate: bytes, node_id: bytes | None = None) -> Signer:
        """A signer for ``node_id``, or for the certificate's first Node-ID."""
        if node_id is None:
            node_id = _first_node_id(certificate)
        return cls(private_key, certificate, node_id)

    def identity(self, hash_alg: HashAlgorithm = HashAlgorithm.sha256) -> SignerIdentity:
        return signer_identity(self.node_certificate, self.node_id, hash_alg)

    def sign(self, data: bytes) -> Signature:
        """Sign ``data || SignerIdentity`` (both §6.3.4 and §7.1 end the input with it)."""
        identity = self.identity()
        algorithm, value = sign_with_key(self.private_key, data + identity.to_bytes())
        return Signature(algorithm, identity, value)


def _first_node_id(certificate: bytes) -> bytes:
    # Node-ID length is not known before parsing: try the lengths §6.3.1.1 allows.
    for length in range(16, 21):
        try:
            return parse_node_certificate(certificate, length).node_ids[0]
        except CertificateError:
            continue
    return parse_node_certificate(certificate).node_ids[0]  # raises with the 16-byte reason


# ---------------------------------------------------------------- §6.3.4 messages


def message_signature_input(
    overlay: int, transaction_id: int, contents: MessageContents | bytes, identity: SignerIdentity
) -> bytes:
    """``overlay || transaction_id || MessageContents || SignerIdentity`` (§6.3.4), with
    overlay a uint32 and transaction_id a uint64 as in the forwarding header; ``contents``
    may be given encoded."""
    w = Writer()
    w.push_uint32(overlay, "overlay")
    w.push_uint64(transaction_id, "transaction_id")
    if isinstance(contents, bytes):
        w.push_bytes(contents)
    else:
        contents.encode(w)
    identity.encode(w)
    return w.data()


def sign_message(
    overlay: int,
    transaction_id: int,
    contents: MessageContents | bytes,
    signer: Signer,
    certificates: Sequence[bytes] = (),
) -> SecurityBlock:
    """The SecurityBlock of a message (§6.3.4). The certificate bucket holds the signer's
    certificate first, then ``certificates`` (intermediates, signers of stored data the
    message carries), each once. ``contents`` may be given encoded."""
    identity = signer.identity()
    data = message_signature_input(overlay, transaction_id, contents, identity)
    algorithm, value = sign_with_key(signer.private_key, data)
    bucket: list[bytes] = []
    for der in (signer.certificate, *certificates):
        if der not in bucket:
            bucket.append(der)
    return SecurityBlock(
        tuple(GenericCertificate(CertificateType.X509, der) for der in bucket),
        Signature(algorithm, identity, value),
    )


Resolve: TypeAlias = Callable[[SignerIdentity, Sequence[bytes]], NodeCertificate]
"""Finds and validates a signer's certificate: given the SignerIdentity and the DER
certificates that came with it, returns the signer's trusted certificate or raises."""


def _x509_bucket(block: SecurityBlock) -> list[bytes]:
    return [c.certificate for c in block.certificates if c.type == CertificateType.X509]


def verify_message(message: Message, resolve: Resolve) -> NodeCertificate:
    """Verify a received message's signature (§6.3.4) and return its signer's certificate.

    ``resolve`` (usually a :class:`CertificateResolver`) finds the certificate that the
    SignerIdentity designates among the SecurityBlock's certificates and validates it.
    :func:`signing_node_id` tells which Node-ID signed."""
    try:
        header = message.forwarding_header
        signature = message.security_block.signature
        node = resolve(signature.identity, _x509_bucket(message.security_block))
        signing_node_id(signature.identity, node)
        data = message_signature_input(
            header.overlay, header.transaction_id, message.contents_bytes(), signature.identity
        )
        verify_with_key(node.public_key, signature.algorithm, data, signature.signature_value)
        return node
    except SignatureError:
        raise
    except Exception as exc:  # fail closed on anything, even on garbage that broke a decoder
        raise SignatureError(f"message signature rejected: {exc}") from exc


# ---------------------------------------------------------------- trust


@dataclass(frozen=True, slots=True)
class _Validated:
    node: NodeCertificate
    not_before: datetime
    not_after: datetime


@dataclass(eq=False)
class CertificateResolver:
    """The usual :data:`Resolve`: matches the SignerIdentity against the certificates that
    came with the signature and then those of ``store`` (e.g. the Certificate Store Usage,
    §8), and accepts a certificate that chains to ``roots`` (the configuration's root-cert
    elements) or, when ``self_signed_digest`` is set (self-signed-permitted, §11.3.1), a
    self-signed one whose Node-IDs match its key.

    Certificates are checked against ``clock()`` each time (§7.1: the current time MUST be
    compared to the certificate validity period); validated chains are remembered.
    """

    overlay: str
    roots: Sequence[bytes] = ()
    self_signed_digest: SelfSignedDigest | None = None
    node_id_length: int = 16
    store: Callable[[SignerIdentity], Iterable[bytes]] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    cache_size: int = 1024
    _cache: OrderedDict[bytes, _Validated] = field(default_factory=OrderedDict, init=False, repr=False)

    def __call__(self, identity: SignerIdentity, certificates: Sequence[bytes]) -> NodeCertificate:
        now = self.clock()
        known = self._known(identity, certificates, now)
        if known is not None:
            return known
        candidates: list[bytes] = list(certificates)
        try:
            node = find_signer_certificate(identity, candidates, self.node_id_length)
        except SignatureError:
            if self.store is None:
                raise
            candidates += [der for der in self.store(identity) if der not in candidates]
            node = find_signer_certificate(identity, candidates, self.node_id_length)
        others = [der for der in candidates if der != node.der]
        try:
            return self.validate(node, others, now)
        except CertificateError as exc:
            raise SignatureError(f"signer's certificate rejected: {exc}") from None

    def _known(
        self, identity: SignerIdentity, certificates: Sequence[bytes], now: datetime
    ) -> NodeCertificate | None:
        """A certificate among ``certificates`` that was validated before, is still within
        its cached window and that ``identity`` designates: every message needs this, so
        it skips parsing the DER again. (The identity's hash pins one DER, so this is the
        certificate the full search would find.)"""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        for der in certificates:
            cached = self._cache.get(der)
            if cached is None or not cached.not_before <= now <= cached.not_after:
                continue
            try:
                signing_node_id(identity, cached.node)
            except SignatureError:
                continue
            self._cache.move_to_end(der)
            return cached.node
        return None

    def validate(
        self, certificate: NodeCertificate | bytes, intermediates: Sequence[bytes], now: datetime
    ) -> NodeCertificate:
        """Whether this overlay trusts ``certificate`` at ``now``; raises CertificateError."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        der = certificate.der if isinstance(certificate, NodeCertificate) else certificate
        cached = self._cache.get(der)
        if cached is not None and cached.not_before <= now <= cached.not_after:
            self._cache.move_to_end(der)
            return cached.node
        node, window = self._validate(certificate, intermediates, now)
        self._remember(der, window)
        return node

    def _validate(
        self, certificate: NodeCertificate | bytes, intermediates: Sequence[bytes], now: datetime
    ) -> tuple[NodeCertificate, _Validated]:
        node = (
            certificate
            if isinstance(certificate, NodeCertificate)
            else parse_node_certificate(certificate, self.node_id_length)
        )
        if node.certificate.issuer == node.certificate.subject:
            # A node certificate's subject is empty, so only a self-signed one is self-issued.
            if self.self_signed_digest is None:
                raise CertificateError("self-signed certificates are not permitted")
            node = check_self_signed(node, self.self_signed_digest, now=now, overlay=self.overlay)
            return node, _Validated(node, node.not_valid_before, node.not_valid_after)
        if not self.roots:
            raise CertificateError("no root certificates configured to validate against")
        node, path = certification_path(
            node, intermediates, self.roots, now, self.overlay, node_id_length=self.node_id_length
        )
        # A cached answer holds only while every certificate of the path is in its validity period.
        issuers = [x509.load_der_x509_certificate(der) for der in path]
        not_before = max([node.not_valid_before, *(c.not_valid_before_utc for c in issuers)])
        not_after = min([node.not_valid_after, *(c.not_valid_after_utc for c in issuers)])
        return node, _Validated(node, not_before, not_after)

    def _remember(self, der: bytes, entry: _Validated) -> None:
        self._cache[der] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


# ---------------------------------------------------------------- §7.1 stored data


def sign_stored_data(
    resource_id: bytes,
    kind: int,
    storage_time: int,
    lifetime: int,
    value: StoredDataValue,
    signer: Signer,
) -> StoredData:
    """A StoredData signed as §7.1 says, over
    ``resource_id || kind || storage_time || StoredDataValue || SignerIdentity``
    (the bytes come from :func:`reload_core.wire.storage.stored_data_signature_input`)."""
    identity = signer.identity()
    algorithm = signature_algorithm_for(signer.private_key)
    # The input takes the SignerIdentity from the StoredData's signature, so sign a copy
    # that already carries it and then fill in the value.
    unsigned = StoredData(storage_time, lifetime, value, Signature(algorithm, identity, b""))
    algorithm, signature_value = sign_with_key(
        signer.private_key, stored_data_signature_input(resource_id, kind, unsigned)
    )
    return replace(unsigned, signature=Signature(algorithm, identity, signature_value))


def verify_stored_data(
    resource_id: bytes,
    kind: int,
    stored: StoredData,
    resolve: Resolve,
    certificates: Sequence[bytes] = (),
) -> NodeCertificate:
    """Verify a StoredData's signature (§7.1) and return its signer's certificate.

    ``certificates`` are those of the SecurityBlock of the message that carried the data
    (§6.3.4: the bucket holds the certificates of "the internal message objects" too).
    A synthesized value (identity ``none``, §7.4.2.2) has no signer and is rejected: the
    caller accepts such values on the strength of the response's own signature."""
    try:
        signature = stored.signature
        node = resolve(signature.identity, list(certificates))
        signing_node_id(signature.identity, node)
        data = stored_data_signature_input(resource_id, kind, stored)
        verify_with_key(node.public_key, signature.algorithm, data, signature.signature_value)
        return node
    except SignatureError:
        raise
    except Exception as exc:  # fail closed, as for messages
        raise SignatureError(f"stored data signature rejected: {exc}") from exc


__all__ = [
    "CertificateResolver",
    "Resolve",
    "SignatureError",
    "Signer",
    "find_signer_certificate",
    "message_signature_input",
    "sign_message",
    "sign_stored_data",
    "sign_with_key",
    "signature_algorithm_for",
    "signer_identity",
    "signing_node_id",
    "verify_message",
    "verify_stored_data",
    "verify_with_key",
]

"""RELOAD node certificates: the profile of RFC 6940 §11.3, self-generated credentials
(§11.3.1) and chain validation against the configuration's root certificates (§11.3,
§13.3).

A node certificate has an empty subject and a (critical) subjectAltName holding one or
more ``reload://<Destination list with one node entry>@<overlay>/`` URIs (§14.15) and
exactly one rfc822Name, the user name; nothing else may appear in the subjectAltName.
This module parses that profile, validates chains, makes self-signed certificates and
PKCS#10 requests, and loads and saves keys and certificates.

Everything a peer sends that fails these rules raises :class:`CertificateError`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtensionOID

from reload_core.uri import ReloadUriError, node_id_from_uri, node_id_uri
from reload_core.wire.context import WireContext

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
)
PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
KeyKind = Literal["rsa", "ecdsa", "ed25519"]
SelfSignedDigest = Literal["sha1", "sha256"]

MIN_RSA_BITS = 2048
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
# Certificate signatures made with MD5 or SHA-1 are forgeable; accept SHA-2 only.
_CERT_SIGNATURE_HASHES = (hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)
# Extensions whose meaning this module enforces, or that carry no constraint to enforce
# (key identifiers, extended key usage); any other critical extension rejects the
# certificate (RFC 5280 §4.2).
_UNDERSTOOD_CRITICAL = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
)
_MAX_CHAIN_DEPTH = 8


class SecurityError(Exception):
    """Base of the errors of :mod:`reload_core.security`."""


class CertificateError(SecurityError):
    """A certificate, chain or request breaks RFC 6940's rules; the message says which."""


# ---------------------------------------------------------------- §11.3 the profile


@dataclass(frozen=True, slots=True)
class NodeCertificate:
    """A parsed node certificate (§11.3): the Node-IDs and user name it binds to a key.

    ``node_ids`` are in subjectAltName order; ``fingerprint`` is SHA-256 of ``der``.
    Two instances are equal when their DER is.
    """

    der: bytes
    node_ids: tuple[bytes, ...]
    user_name: str
    overlay: str
    fingerprint: bytes
    certificate: x509.Certificate = field(compare=False, repr=False)
    public_key: PublicKey = field(compare=False, repr=False)

    @property
    def not_valid_before(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_valid_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def node_id(self) -> bytes:
        """The first Node-ID (the only one in most certificates)."""
        return self.node_ids[0]

    @property
    def spki_der(self) -> bytes:
        """DER SubjectPublicKeyInfo, the input of the self-signed Node-ID digest (§11.3.1)."""
        return spki_der(self.public_key)


def spki_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_node_id_length(node_id_length: int) -> None:
    if not 16 <= node_id_length <= 20:
        raise ValueError(f"NodeIdLength must be 16..20 (§6.3.1.1), got {node_id_length}")


def _strict_der(der: bytes) -> x509.Certificate:
    """Load a DER certificate; what cryptography only warns about (e.g. a serial number
    that is not positive, RFC 5280 §4.1.2.2) is an error here, not noise in the logs."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        try:
            return x509.load_der_x509_certificate(der)
        except CryptographyDeprecationWarning as exc:
            raise ValueError(str(exc)) from None


def _load_der(der: bytes) -> x509.Certificate:
    try:
        return _strict_der(der)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"not a DER X.509 certificate: {exc}") from None


def _check_public_key(key: object, what: str) -> PublicKey:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateError(f"{what}: RSA key of {key.key_size} bits, at least {MIN_RSA_BITS} needed")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _EC_CURVES):
            raise CertificateError(f"{what}: elliptic curve {key.curve.name} is not supported")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key
    raise CertificateError(f"{what}: public key type {type(key).__name__} cannot sign RELOAD messages")


def _check_user_name(name: str, what: str) -> str:
    # §11.3: "allow only legal characters in the name (e.g., no embedded NULs)".
    if not name:
        raise CertificateError(f"{what}: empty rfc822Name user name")
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in name):
        raise CertificateError(f"{what}: user name {name!r} has control, space or non-ASCII characters")
    return name


def parse_node_certificate(der: bytes, node_id_length: int = 16) -> NodeCertificate:
    """Parse a node certificate and check its §11.3 profile.

    Rejects: a non-empty subject; a missing subjectAltName; subjectAltName entries other
    than URIs and rfc822Names; zero or several rfc822Names; URIs that are not a reload
    URI with a Destination List of one ``node`` entry of ``node_id_length`` bytes and no
    specifier (§14.15); URIs naming different overlays; repeated Node-IDs; public keys
    that cannot sign RELOAD messages (§6.3.4).
    """
    _check_node_id_length(node_id_length)
    cert = _load_der(der)
    try:
        return _parse_profile(cert, bytes(der), node_id_length)
    except CertificateError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # Malformed extensions or names surface lazily from cryptography's accessors.
        raise CertificateError(f"malformed certificate: {exc}") from None


def _parse_profile(cert: x509.Certificate, der: bytes, node_id_length: int) -> NodeCertificate:
    if len(cert.subject) != 0:
        raise CertificateError(f"subject must be empty (§11.3), got {cert.subject.rfc4514_string()!r}")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateError("no subjectAltName extension (§11.3)") from None
    ctx = WireContext(node_id_length=node_id_length)
    node_ids: list[bytes] = []
    overlays: set[str] = set()
    user_names: list[str] = []
    for name in san:
        if isinstance(name, x509.UniformResourceIdentifier):
            try:
                node_id, overlay = node_id_from_uri(name.value, ctx)
            except ReloadUriError as exc:
                raise CertificateError(f"subjectAltName URI: {exc}") from None
            if node_id in node_ids:
                raise CertificateError(f"Node-ID {node_id.hex()} appears twice in subjectAltName")
            node_ids.append(node_id)
            overlays.add(overlay)
        elif isinstance(name, x509.RFC822Name):
            user_names.append(name.value)
        else:
            raise CertificateError(
                f"subjectAltName holds a {type(name).__name__}; only reload URIs and one rfc822Name "
                "are allowed (§11.3)"
            )
    if not node_ids:
        raise CertificateError("subjectAltName holds no reload URI with a Node-ID (§11.3)")
    if len(overlays) != 1:
        raise CertificateError(f"subjectAltName URIs name several overlays: {sorted(overlays)}")
    if len(user_names) != 1:
        raise CertificateError(f"subjectAltName must hold exactly one rfc822Name, found {len(user_names)}")
    public_key = _check_public_key(cert.public_key(), "certificate")
    return NodeCertificate(
        der=der,
        node_ids=tuple(node_ids),
        user_name=_check_user_name(user_names[0], "subjectAltName"),
        overlay=overlays.pop(),
        fingerprint=hashlib.sha256(der).digest(),
        certificate=cert,
        public_key=public_key,
    )


def node_certificate_builder(
    public_key: PublicKey,
    user_name: str,
    node_ids: Sequence[bytes],
    overlay: str,
    not_valid_before: datetime,
    not_valid_after: datetime,
    serial_number: int | None = None,
) -> x509.CertificateBuilder:
    """A builder with everything §11.3 prescribes: empty subject, critical subjectAltName
    of one reload URI per Node-ID plus the user name as rfc822Name, BasicConstraints
    CA=false and KeyUsage digitalSignature (both critical), SubjectKeyIdentifier.

    The issuer (the CA: ``issuer_name`` and AuthorityKeyIdentifier, or the empty name for a
    self-signed certificate) is left to the caller, which then calls ``sign``.
    """
    _check_user_name(user_name, "user_name")
    if not node_ids:
        raise ValueError("a node certificate needs at least one Node-ID")
    if len(set(node_ids)) != len(node_ids):
        raise ValueError("Node-IDs must be distinct")
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(node_id_uri(n, overlay)) for n in node_ids
    ]
    names.append(x509.RFC822Name(user_name))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number() if serial_number is None else serial_number)
        .not_valid_before(not_valid_before)
        .not_valid_after(not_valid_after)
        # RFC 5280 §4.2.1.6: with an empty subject the subjectAltName MUST be critical.
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def signing_hash(private_key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    """The hash to sign certificates and requests with (None: EdDSA hashes intrinsically)."""
    if isinstance(private_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if isinstance(private_key.curve, ec.SECP384R1):
            return hashes.SHA384()
        if isinstance(private_key.curve, ec.SECP521R1):
            return hashes.SHA512()
    return hashes.SHA256()


# ---------------------------------------------------------------- validation


def _check_dates(cert: x509.Certificate, now: datetime, what: str) -> None:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if now < cert.not_valid_before_utc:
        raise CertificateError(f"{what} is not valid before {cert.not_valid_before_utc.isoformat()}")
    if now > cert.not_valid_after_utc:
        raise CertificateError(f"{what} expired at {cert.not_valid_after_utc.isoformat()}")


def _check_critical_extensions(cert: x509.Certificate, what: str) -> None:
    for ext in cert.extensions:
        if ext.critical and ext.oid not in _UNDERSTOOD_CRITICAL:
            raise CertificateError(f"{what} has an unsupported critical extension {ext.oid.dotted_string}")


def _check_end_entity(cert: x509.Certificate, what: str) -> None:
    _check_critical_extensions(cert, what)
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise CertificateError(f"{what} is a CA certificate (BasicConstraints CA=true)")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        # RFC 5280 §4.2.1.3: absent KeyUsage places no restriction; present, it must allow signing.
        if not ku.digital_signature:
            raise CertificateError(f"{what}: KeyUsage lacks digitalSignature")
    except x509.ExtensionNotFound:
        pass


def _check_issuer_ca(cert: x509.Certificate, below: int, what: str) -> None:
    """An issuing certificate: CA=true, pathLenConstraint allows ``below`` intermediate CAs
    under it, and KeyUsage (when present) allows keyCertSign (RFC 5280 §4.2.1.3, §4.2.1.9)."""
    _check_critical_extensions(cert, what)
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise CertificateError(f"{what} has no BasicConstraints, so it is not a CA") from None
    if not bc.ca:
        raise CertificateError(f"{what} is not a CA (BasicConstraints CA=false)")
    if bc.path_length is not None and below > bc.path_length:
        raise CertificateError(f"{what}: pathLenConstraint {bc.path_length} exceeded ({below} CAs below it)")
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.key_cert_sign:
            raise CertificateError(f"{what}: KeyUsage lacks keyCertSign")
    except x509.ExtensionNotFound:
        pass


def _check_issued_by(cert: x509.Certificate, issuer: x509.Certificate, what: str) -> None:
    algo = cert.signature_hash_algorithm
    if algo is None:
        if not isinstance(issuer.public_key(), ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            raise CertificateError(f"{what}: signature without a hash from a non-EdDSA key")
    elif not isinstance(algo, _CERT_SIGNATURE_HASHES):
        raise CertificateError(f"{what} is signed with {algo.name}, which is not accepted")
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        raise CertificateError(f"{what}: signature does not verify") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"{what}: cannot be verified with its issuer: {exc}") from None


def validate_chain(
    cert: NodeCertificate | bytes,
    intermediates: Sequence[bytes],
    roots: Sequence[bytes],
    now: datetime,
    overlay: str,
    *,
    node_id_length: int = 16,
) -> NodeCertificate:
    """Check that ``cert`` chains to one of ``roots`` (the configuration's root-cert
    elements, §11.1) through ``intermediates``, as §11.3 requires ("including PKIX
    BasicConstraints checks") and §13.3 relies on.

    Checked on every certificate of the path: the issuer's signature (SHA-2 or EdDSA),
    validity dates at ``now``, no unknown critical extension. On the end entity: the
    §11.3 profile, no CA bit, KeyUsage digitalSignature (when present), and ``overlay``
    as the URIs' overlay name. On issuers (including the root): BasicConstraints CA=true,
    pathLenConstraint and KeyUsage keyCertSign (when present). Returns the parsed end entity.
    """
    return certification_path(cert, intermediates, roots, now, overlay, node_id_length=node_id_length)[0]


def certification_path(
    cert: NodeCertificate | bytes,
    intermediates: Sequence[bytes],
    roots: Sequence[bytes],
    now: datetime,
    overlay: str,
    *,
    node_id_length: int = 16,
) -> tuple[NodeCertificate, tuple[bytes, ...]]:
    """:func:`validate_chain` that also returns the issuers it found, from the end
    entity's issuer up to and including the root (DER)."""
    try:
        return _validate_chain(cert, intermediates, roots, now, overlay, node_id_length)
    except CertificateError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"malformed certificate in chain: {exc}") from None


def _validate_chain(
    cert: NodeCertificate | bytes,
    intermediates: Sequence[bytes],
    roots: Sequence[bytes],
    now: datetime,
    overlay: str,
    node_id_length: int,
) -> tuple[NodeCertificate, tuple[bytes, ...]]:
    node = cert if isinstance(cert, NodeCertificate) else parse_node_certificate(cert, node_id_length)
    if node.overlay != overlay:
        raise CertificateError(f"certificate is for overlay {node.overlay!r}, not {overlay!r}")
    _check_end_entity(node.certificate, "end-entity certificate")
    _check_dates(node.certificate, now, "end-entity certificate")
    if not roots:
        raise CertificateError("no root certificates to validate against")
    root_ders = {bytes(r) for r in roots}
    pool = [(der, _load_der(der)) for der in dict.fromkeys(bytes(r) for r in roots)]
    for der in intermediates:
        if any(der == seen for seen, _ in pool):
            continue
        try:
            pool.append((bytes(der), _strict_der(der)))
        except ValueError:
            continue  # a bucket may carry certificates for other purposes; a broken one is no issuer
    failures: list[str] = []
    path = _find_path(node.certificate, pool, root_ders, now, (), failures)
    if path is not None:
        return node, path
    if failures:
        raise CertificateError(f"no valid chain to a root certificate: {failures[0]}")
    raise CertificateError("no issuer of the certificate among the intermediate and root certificates")


def _find_path(
    cert: x509.Certificate,
    pool: Sequence[tuple[bytes, x509.Certificate]],
    root_ders: set[bytes],
    now: datetime,
    path: tuple[bytes, ...],
    failures: list[str],
) -> tuple[bytes, ...] | None:
    """Depth-first search for an issuer path from ``cert`` to a root; ``path`` holds the
    issuers chosen so far (their count is the number of CAs below the next one)."""
    if len(path) >= _MAX_CHAIN_DEPTH:
        failures.append(f"chain longer than {_MAX_CHAIN_DEPTH} certificates")
        return None
    for der, candidate in pool:
        if der in path or candidate.subject != cert.issuer:
            continue
        is_root = der in root_ders
        what = f"{'root' if is_root else 'intermediate'} certificate {candidate.subject.rfc4514_string()!r}"
        try:
            _check_issued_by(cert, candidate, f"certificate issued by {what}")
            _check_issuer_ca(candidate, len(path), what)
            _check_dates(candidate, now, what)
        except CertificateError as exc:
            failures.append(str(exc))
            continue
        if is_root:
            return (*path, der)
        found = _find_path(candidate, pool, root_ders, now, (*path, der), failures)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------- §11.3.1 self-signed


def _digest(name: SelfSignedDigest) -> hashes.SHA1 | hashes.SHA256:
    if name == "sha1":
        return hashes.SHA1()  # the Node-ID digest §11.3.1 names, not a signature hash
    if name == "sha256":
        return hashes.SHA256()
    raise ValueError(f"self-signed digest must be 'sha1' or 'sha256' (§11.1), got {name!r}")


def self_signed_node_ids(
    public_key: PublicKey, digest: SelfSignedDigest, count: int = 1, node_id_length: int = 16
) -> tuple[bytes, ...]:
    """The Node-IDs a self-signed certificate for ``public_key`` must carry (§11.3.1):
    the high-order bytes of digest(SubjectPublicKeyInfo DER), or with several Node-IDs,
    of digest(index || SubjectPublicKeyInfo DER) for index 1..count as a 4-byte big-endian
    integer."""
    _check_node_id_length(node_id_length)
    if count < 1:
        raise ValueError("at least one Node-ID is needed")
    algorithm = _digest(digest)
    spki = spki_der(public_key)

    def h(data: bytes) -> bytes:
        ctx = hashes.Hash(algorithm)
        ctx.update(data)
        return ctx.finalize()[:node_id_length]

    if count == 1:
        return (h(spki),)
    return tuple(h(i.to_bytes(4, "big") + spki) for i in range(1, count + 1))


def make_self_signed(
    private_key: PrivateKey,
    user_name: str,
    overlay: str,
    digest: SelfSignedDigest = "sha1",
    node_id_count: int = 1,
    days: int = 365,
    *,
    node_id_length: int = 16,
    now: datetime | None = None,
) -> bytes:
    """A self-signed node certificate (DER) for overlays with self-signed-permitted (§11.3.1).

    Node-IDs come from :func:`self_signed_node_ids`; subject and issuer are both empty, as
    the §11.3 profile wants. ``now`` defaults to the current time.
    """
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)  # tolerate peers' clock skew
    node_ids = self_signed_node_ids(private_key.public_key(), digest, node_id_count, node_id_length)
    builder = node_certificate_builder(
        private_key.public_key(), user_name, node_ids, overlay, start, start + timedelta(days=days)
    ).issuer_name(x509.Name([]))
    cert = builder.sign(private_key, signing_hash(private_key))
    return cert.public_bytes(serialization.Encoding.DER)


def check_self_signed(
    cert: NodeCertificate | bytes,
    digest: SelfSignedDigest,
    *,
    node_id_length: int = 16,
    now: datetime | None = None,
    overlay: str | None = None,
) -> NodeCertificate:
    """Accept a self-signed certificate (§11.3.1): it verifies with its own key, it is not
    a CA, and its Node-IDs are exactly those its public key yields ("nodes MUST check that
    the Node-ID and public keys match"). ``now`` and ``overlay``, when given, are checked
    too. Returns the parsed certificate."""
    try:
        node = cert if isinstance(cert, NodeCertificate) else parse_node_certificate(cert, node_id_length)
        what = "self-signed certificate"
        if node.certificate.issuer != node.certificate.subject:
            raise CertificateError(f"{what}: issuer differs from subject")
        _check_issued_by(node.certificate, node.certificate, what)
        _check_end_entity(node.certificate, what)
        if now is not None:
            _check_dates(node.certificate, now, what)
        if overlay is not None and node.overlay != overlay:
            raise CertificateError(f"certificate is for overlay {node.overlay!r}, not {overlay!r}")
        expected = self_signed_node_ids(node.public_key, digest, len(node.node_ids), len(node.node_id))
        if set(expected) != set(node.node_ids):
            raise CertificateError(f"{what}: Node-IDs do not match the public key ({digest} digest, §11.3.1)")
        return node
    except CertificateError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"malformed self-signed certificate: {exc}") from None


# ---------------------------------------------------------------- §11.3 requests


@dataclass(frozen=True, slots=True)
class NodeCsr:
    """A parsed enrollment request: the user name asked for and the key to certify."""

    user_name: str
    public_key: PublicKey = field(compare=False, repr=False)
    request: x509.CertificateSigningRequest = field(compare=False, repr=False)


def build_csr(private_key: PrivateKey, user_name: str) -> bytes:
    """A PKCS#10 request (DER) for the enrollment server (§11.3): empty subject, the user
    name as the single rfc822Name of a subjectAltName extension request."""
    _check_user_name(user_name, "user_name")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(user_name)]), critical=True)
        .sign(private_key, signing_hash(private_key))
    )
    return csr.public_bytes(serialization.Encoding.DER)


def parse_csr(der: bytes) -> NodeCsr:
    """Parse and check a request for the enrollment server: the request's own signature,
    a supported key, and a subjectAltName request holding exactly one rfc822Name and
    nothing else (Node-IDs are the server's to choose, §11.3). The subject is ignored."""
    try:
        csr = x509.load_der_x509_csr(der)
        if not csr.is_signature_valid:
            raise CertificateError("request signature does not verify")
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            raise CertificateError("request has no subjectAltName with the user name") from None
        names = list(san)
        if len(names) != 1 or not isinstance(names[0], x509.RFC822Name):
            raise CertificateError("request subjectAltName must hold exactly one rfc822Name and nothing else")
        user_name = _check_user_name(names[0].value, "request")
        public_key = _check_public_key(csr.public_key(), "request")
        return NodeCsr(user_name, public_key, csr)
    except CertificateError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"malformed certificate request: {exc}") from None


# ---------------------------------------------------------------- keys and files


def generate_private_key(kind: KeyKind = "rsa", *, rsa_bits: int = 2048) -> PrivateKey:
    """A fresh key: RSA (2048 bits by default; RSA-SHA256 is mandatory, §6.3.4), ECDSA
    P-256, or Ed25519."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r}")


def private_key_to_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """A private key from PEM or DER (PKCS#8 or the traditional formats)."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password)
        else:
            key = serialization.load_der_private_key(data, password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"cannot load private key: {exc}") from None
    if not isinstance(
        key,
        rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey,
    ):
        raise CertificateError(f"private key type {type(key).__name__} is not supported")
    return key


def certificate_to_pem(der: bytes) -> bytes:
    return _load_der(der).public_bytes(serialization.Encoding.PEM)


def load_certificate(data: bytes) -> bytes:
    """One certificate from PEM or DER, returned as DER."""
    return load_certificates(data)[0]


def load_certificates(data: bytes) -> tuple[bytes, ...]:
    """All certificates of a PEM bundle (or the one certificate of a DER file), as DER."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [_strict_der(data)]
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"cannot load certificate: {exc}") from None
    if not certs:
        raise CertificateError("no certificate found")
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)


def _write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` with mode 0600, atomically: a crash leaves the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_private_key(path: str | os.PathLike[str], key: PrivateKey, password: bytes | None = None) -> None:
    """Save as PKCS#8 PEM with mode 0600 (DESIGN.md: keys as files with 0600 permissions)."""
    _write_private_file(Path(path), private_key_to_pem(key, password))


def load_private_key_file(path: str | os.PathLike[str], password: bytes | None = None) -> PrivateKey:
    return load_private_key(Path(path).read_bytes(), password)


def save_certificate(path: str | os.PathLike[str], *ders: bytes) -> None:
    """Save one certificate, or a chain leaf first, as PEM with mode 0600."""
    _write_private_file(Path(path), b"".join(certificate_to_pem(d) for d in ders))


def load_certificate_file(path: str | os.PathLike[str]) -> bytes:
    return load_certificate(Path(path).read_bytes())


__all__ = [
    "CertificateError",
    "KeyKind",
    "NodeCertificate",
    "NodeCsr",
    "PrivateKey",
    "PublicKey",
    "SecurityError",
    "SelfSignedDigest",
    "build_csr",
    "certificate_to_pem",
    "certification_path",
    "check_self_signed",
    "generate_private_key",
    "load_certificate",
    "load_certificate_file",
    "load_certificates",
    "load_private_key",
    "load_private_key_file",
    "make_self_signed",
    "node_certificate_builder",
    "parse_csr",
    "parse_node_certificate",
    "private_key_to_pem",
    "save_certificate",
    "save_private_key",
    "self_signed_node_ids",
    "signing_hash",
    "spki_der",
    "validate_chain",
]

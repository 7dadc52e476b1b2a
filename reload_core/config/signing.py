"""Signing and verifying configuration documents (RFC 6940 §11.1).

§11.1: the signature covers each ``configuration`` element "starting from, and
including, the first < at the start of <configuration> up to and including the > in
</configuration>", treated as a binary blob and "signed using the standard
SecurityBlock defined in Section 6.3.4"; the SecurityBlock, base64-encoded (RFC 4648
alphabet), is the content of the ``signature`` element that follows the
configuration. A ``kind-signature`` is made "in the same way" over the ``kind``
element. The signature input is that blob and nothing else: §6.3.4's inputs for
messages and §7.1's for stored data append the SignerIdentity, §11.1's does not.

Who may sign: a configuration "MUST be signed by one of the configuration-signer
elements from the previous extant configuration" and kind-blocks "by a node listed in
the kind-signers block of the current configuration" (§11.1). Signers are Node-IDs,
so a signer is normally a node certificate (§11.3) issued under the overlay's
root-cert elements, carried in the SecurityBlock's certificate bucket. A root
certificate itself may also sign, when no signer list constrains the signature (it has
no Node-ID to list).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from lxml import etree

from reload_core.config.document import (
    CONFIG_BASE_NS,
    ConfigError,
    ConfigErrorReason,
    ConfigurationDocument,
    OverlayConfiguration,
    SignedConfiguration,
    hex_node_ids,
)
from reload_core.config.xml import generate_document, parse_document, span_map, validate_schema
from reload_core.security.certificates import (
    CertificateError,
    NodeCertificate,
    PrivateKey,
    parse_node_certificate,
    validate_chain,
)
from reload_core.security.signing import (
    SignatureError,
    find_signer_certificate,
    sign_with_key,
    signer_identity,
    signing_node_id,
    verify_with_key,
)
from reload_core.wire.buffer import DecodeError, Reader, Writer
from reload_core.wire.codes import CertificateType, HashAlgorithm, SignerIdentityType
from reload_core.wire.message import GenericCertificate, SecurityBlock, Signature, SignerIdentity

_B = "{" + CONFIG_BASE_NS + "}"
_Sign = Callable[[bytes, str], SecurityBlock]
_SIGNING_KEYS = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)
_IDENTITY_HASHES: dict[int, str] = {
    HashAlgorithm.sha256: "sha256",
    HashAlgorithm.sha384: "sha384",
    HashAlgorithm.sha512: "sha512",
}


# ---------------------------------------------------------------- SecurityBlock


def _der(certificate: bytes | x509.Certificate) -> bytes:
    if isinstance(certificate, x509.Certificate):
        return certificate.public_bytes(serialization.Encoding.DER)
    return bytes(certificate)


def _node_certificate(der: bytes, node_id_length: int) -> NodeCertificate | None:
    try:
        return parse_node_certificate(der, node_id_length)
    except CertificateError:
        return None


def make_security_block(
    data: bytes,
    private_key: PrivateKey,
    certificate: bytes | x509.Certificate,
    *,
    chain: Sequence[bytes | x509.Certificate] = (),
    node_id_length: int = 16,
) -> SecurityBlock:
    """A SecurityBlock (§6.3.4) signing ``data`` as it is, by ``private_key`` whose
    ``certificate`` travels in the bucket with the ``chain`` of intermediates.

    The SignerIdentity names the certificate: ``cert_hash`` (SHA-256), or for a node
    certificate with several Node-IDs ``cert_hash_node_id`` of its first Node-ID.
    """
    der = _der(certificate)
    public = x509.load_der_x509_certificate(der).public_key()
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if private_key.public_key().public_bytes(*spki) != public.public_bytes(*spki):
        raise ValueError("the private key does not belong to the certificate")
    node = _node_certificate(der, node_id_length)
    if node is not None:
        identity = signer_identity(node, node.node_id)
    else:
        identity = SignerIdentity(
            SignerIdentityType.cert_hash, HashAlgorithm.sha256, hashlib.sha256(der).digest()
        )
    algorithm, value = sign_with_key(private_key, data)
    bucket = tuple(GenericCertificate(CertificateType.X509, c) for c in (der, *(_der(c) for c in chain)))
    return SecurityBlock(bucket, Signature(algorithm, identity, value))


def _encode(block: SecurityBlock) -> bytes:
    w = Writer()
    block.encode(w)
    return w.data()


# ---------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class VerifiedSigner:
    """Who signed: the certificate (DER) and its Node-ID (None for a root certificate)."""

    certificate: bytes
    node_id: bytes | None


def verify_security_block(
    data: bytes,
    security_block: bytes,
    *,
    root_certs: Sequence[bytes],
    signers: Collection[bytes],
    bad_nodes: Collection[bytes] = (),
    overlay: str,
    node_id_length: int,
    now: datetime,
    reason: ConfigErrorReason = ConfigErrorReason.SIGNATURE,
    what: str = "signature",
) -> VerifiedSigner:
    """Check a base64-decoded ``signature``/``kind-signature`` over ``data`` (§11.1).

    The signer must be a root certificate (only when ``signers`` is empty) or a node
    certificate of ``overlay`` that chains to ``root_certs`` (§11.3) through the bucket,
    whose Node-ID is in ``signers`` (when not empty) and not in ``bad_nodes``.
    """

    def fail(message: str) -> ConfigError:
        return ConfigError(reason, f"{what}: {message}")

    try:
        r = Reader(security_block)
        block = SecurityBlock.decode(r)
        r.expect_end("SecurityBlock")
    except DecodeError as exc:
        raise fail(f"not a SecurityBlock (§6.3.4): {exc}") from None
    signature = block.signature
    identity = signature.identity
    bucket = [c.certificate for c in block.certificates if c.type == CertificateType.X509]
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)

    root = _root_signer(identity, root_certs)
    if root is not None:
        if signers:
            raise fail("signed by a root certificate, but only the listed signers' Node-IDs may sign")
        cert = x509.load_der_x509_certificate(root)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise fail("the signing root certificate is not valid now")
        key = cert.public_key()
        if not isinstance(key, _SIGNING_KEYS):
            raise fail(f"the signing root certificate's {type(key).__name__} cannot sign")
        try:
            verify_with_key(key, signature.algorithm, data, signature.signature_value)
        except SignatureError as exc:
            raise fail(str(exc)) from None
        return VerifiedSigner(root, None)

    try:
        node = find_signer_certificate(identity, bucket, node_id_length)
        node_id = signing_node_id(identity, node)
    except SignatureError as exc:
        raise fail(f"signer unknown: {exc}") from None
    try:
        validate_chain(node, bucket, root_certs, now, overlay, node_id_length=node_id_length)
    except CertificateError as exc:
        raise fail(f"signer's certificate is not trusted: {exc}") from None
    if signers and node_id not in signers:
        raise fail(f"signed by Node-ID {node_id.hex()}, which is not among the allowed signers")
    if node_id in bad_nodes:
        raise fail(f"signed by Node-ID {node_id.hex()}, which is a bad-node")
    try:
        verify_with_key(node.public_key, signature.algorithm, data, signature.signature_value)
    except SignatureError as exc:
        raise fail(str(exc)) from None
    return VerifiedSigner(node.der, node_id)


def _root_signer(identity: SignerIdentity, root_certs: Sequence[bytes]) -> bytes | None:
    if identity.identity_type != SignerIdentityType.cert_hash:
        return None
    name = _IDENTITY_HASHES.get(int(identity.hash_alg))
    if name is None:
        return None
    for der in root_certs:
        if hashlib.new(name, der).digest() == identity.certificate_hash:
            try:
                x509.load_der_x509_certificate(der)
            except ValueError:
                return None
            return bytes(der)
    return None


def verify_configuration(
    entry: SignedConfiguration,
    *,
    now: datetime,
    root_certs: Sequence[bytes] | None = None,
    configuration_signers: Collection[str] | None = None,
) -> VerifiedSigner:
    """Check the signature of a received configuration (§11.1).

    ``root_certs`` and ``configuration_signers`` come from the previous extant
    configuration; with none (the first configuration of an overlay) the configuration's
    own are used, so the signature at least binds it to the root certificates it names.
    Several ``signature`` elements: one that verifies is enough.
    """
    config = entry.configuration
    name = config.instance_name
    if not entry.raw:
        raise ConfigError(
            ConfigErrorReason.SIGNATURE, f"configuration {name!r} has no received bytes to check"
        )
    if not entry.signatures:
        raise ConfigError(ConfigErrorReason.SIGNATURE, f"configuration {name!r} is not signed")
    roots = config.root_certs if root_certs is None else tuple(root_certs)
    signers = config.configuration_signers if configuration_signers is None else tuple(configuration_signers)
    first: ConfigError | None = None
    for signature in entry.signatures:
        try:
            return verify_security_block(
                entry.raw,
                signature.value,
                root_certs=roots,
                signers=hex_node_ids(signers),
                bad_nodes=hex_node_ids(config.bad_nodes),
                overlay=name,
                node_id_length=config.node_id_length,
                now=now,
                what=f"signature of configuration {name!r}",
            )
        except ConfigError as exc:
            first = first or exc
    assert first is not None
    raise first


def verify_kind_signatures(
    config: OverlayConfiguration, *, now: datetime, root_certs: Sequence[bytes] | None = None
) -> None:
    """Check every kind-block's signature (§11.1): by a ``kind-signer`` of ``config``
    (any certificate under the root certificates when the configuration lists none)."""
    roots = config.root_certs if root_certs is None else tuple(root_certs)
    for block in config.required_kinds:
        what = f"kind-signature of kind {block.kind.label!r}"
        if block.kind_signature is None:
            raise ConfigError(ConfigErrorReason.KIND_SIGNATURE, f"{what}: missing (§11.1)")
        if not block.raw_kind:
            raise ConfigError(ConfigErrorReason.KIND_SIGNATURE, f"{what}: no received bytes to check")
        verify_security_block(
            block.raw_kind,
            block.kind_signature,
            root_certs=roots,
            signers=hex_node_ids(config.kind_signers),
            bad_nodes=hex_node_ids(config.bad_nodes),
            overlay=config.instance_name,
            node_id_length=config.node_id_length,
            now=now,
            reason=ConfigErrorReason.KIND_SIGNATURE,
            what=what,
        )


# ---------------------------------------------------------------- signing a document


def _prefix(data: bytes, start: int) -> bytes:
    """The ``prefix:`` of the element whose start tag begins at ``start`` (or b"")."""
    m = re.match(rb"<([^\s/>]+)", data[start:])
    assert m is not None
    name = m.group(1)
    return name.rpartition(b":")[0] + b":" if b":" in name else b""


def _indent(data: bytes, start: int) -> bytes:
    line = data[data.rfind(b"\n", 0, start) + 1 : start]
    return line if not line.strip() else b""


def _element(prefix: bytes, name: bytes, block: SecurityBlock, indent: bytes) -> bytes:
    """The element, its base64 in lines of 64 (whitespace is allowed in xsd:base64Binary)."""
    value = base64.b64encode(_encode(block))
    inner = b"\n" + indent + b"  "
    lines = inner + inner.join(value[i : i + 64] for i in range(0, len(value), 64)) + b"\n" + indent
    return b"<" + prefix + name + b">" + lines + b"</" + prefix + name + b">"


def _apply(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Replace ``data[a:b]`` by each text, edits not overlapping."""
    for a, b, text in sorted(edits, key=lambda e: e[0], reverse=True):
        data = data[:a] + text + data[b:]
    return data


def sign_config(
    document: bytes | ConfigurationDocument | OverlayConfiguration,
    private_key: PrivateKey,
    certificate: bytes | x509.Certificate,
    *,
    chain: Sequence[bytes | x509.Certificate] = (),
    instance_names: Collection[str] | None = None,
    sign_kinds: bool = True,
) -> bytes:
    """Sign a configuration document (§11.1); returns the signed document's bytes.

    Each configuration (or those of ``instance_names``) gets one ``signature`` element
    right after it, replacing any there. With ``sign_kinds`` its kind-blocks are first
    given a ``kind-signature`` over their ``kind`` element (replacing any), so the same
    key must belong to a kind-signer as well. Nothing else of the document changes: the
    signed bytes are the document's own.

    ``certificate`` is the signer's node certificate (§11.3), issued under one of the
    configuration's root-cert elements (``chain``: the intermediates) and whose Node-ID
    the configuration lists as configuration-signer (and kind-signer); or a root
    certificate itself, for a configuration that lists no signers.
    """
    data = document if isinstance(document, bytes) else generate_document(document)
    parsed = parse_document(data)
    wanted = {c.instance_name for c in parsed.overlays} if instance_names is None else set(instance_names)
    missing = wanted - {c.instance_name for c in parsed.overlays}
    if missing:
        raise ConfigError(ConfigErrorReason.OVERLAY, f"no configuration for {sorted(missing)} to sign")
    lengths = {c.instance_name: c.node_id_length for c in parsed.overlays}

    def sign(blob: bytes, name: str) -> SecurityBlock:
        return make_security_block(blob, private_key, certificate, chain=chain, node_id_length=lengths[name])

    if sign_kinds:
        data = _sign_kinds(data, wanted, sign)
    data = _sign_configurations(data, wanted, sign)
    parse_document(data)  # the result must still be a valid document
    return data


def _configurations(root: etree._Element) -> list[etree._Element]:
    return [c for c in root if c.tag == _B + "configuration"]


def _sign_kinds(data: bytes, wanted: Collection[str], sign: _Sign) -> bytes:
    root = validate_schema(data).getroot()
    spans = span_map(root, data)
    edits: list[tuple[int, int, bytes]] = []
    for config in _configurations(root):
        name = config.get("instance-name", "")
        if name not in wanted:
            continue
        for block in config.iter(_B + "kind-block"):
            kind = block.find(_B + "kind")
            assert kind is not None
            k_start, k_end = spans[kind]
            b_start, _ = spans[block]
            indent = _indent(data, k_start)
            new = _element(_prefix(data, b_start), b"kind-signature", sign(data[k_start:k_end], name), indent)
            old = block.find(_B + "kind-signature")
            if old is not None:
                s_start, s_end = spans[old]
                edits.append((s_start, s_end, new))
            else:
                edits.append((k_end, k_end, b"\n" + indent + new))
    return _apply(data, edits)


def _sign_configurations(data: bytes, wanted: Collection[str], sign: _Sign) -> bytes:
    root = validate_schema(data).getroot()
    spans = span_map(root, data)
    prefix = _prefix(data, spans[root][0])
    edits: list[tuple[int, int, bytes]] = []
    children = [c for c in root if isinstance(c.tag, str)]
    for i, config in enumerate(children):
        name = config.get("instance-name", "")
        if config.tag != _B + "configuration" or name not in wanted:
            continue
        start, end = spans[config]
        indent = _indent(data, start)
        new = _element(prefix, b"signature", sign(data[start:end], name), indent)
        # The signatures that follow the configuration give way to the new one.
        stop = end
        for sibling in children[i + 1 :]:
            if sibling.tag != _B + "signature":
                break
            stop = spans[sibling][1]
        edits.append((end, stop, b"\n" + indent + new))
    return _apply(data, edits)

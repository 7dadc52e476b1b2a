"""Message signatures (§6.3.4), stored-data signatures (§7.1), SignerIdentity and the
certificate resolver."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reload_core.ids import overlay_hash
from reload_core.security.certificates import CertificateError, make_self_signed
from reload_core.security.signing import (
    CertificateResolver,
    SignatureError,
    Signer,
    message_signature_input,
    sign_message,
    sign_stored_data,
    sign_with_key,
    signing_node_id,
    verify_message,
    verify_stored_data,
    verify_with_key,
)
from reload_core.wire.buffer import DecodeError, Reader, Writer
from reload_core.wire.codes import (
    CertificateType,
    DataModel,
    HashAlgorithm,
    KindId,
    MessageCode,
    SignatureAlgorithm,
    SignerIdentityType,
)
from reload_core.wire.message import (
    LAST_FRAGMENT_BIT,
    ForwardingHeader,
    GenericCertificate,
    Message,
    MessageContents,
    MessageExtension,
    NodeDestination,
    SecurityBlock,
    Signature,
    SignatureAndHashAlgorithm,
    SignerIdentity,
)
from reload_core.wire.storage import DataValue, DictionaryEntry, StoredData

from .pki import DAY, NOW, OVERLAY, Ca, Pki

OVERLAY_ID = overlay_hash(OVERLAY)
TID = 0x0123456789ABCDEF
NODE = bytes(range(16))
PEER = bytes(range(100, 116))
CONTENTS = MessageContents(
    MessageCode.ping_req, b"ping body: any bytes here", (MessageExtension(0x1234, False, b"ext"),)
)
KINDS = ["rsa", "ecdsa", "ed25519"]
EXPECTED_ALGORITHM = {
    "rsa": (HashAlgorithm.sha256, SignatureAlgorithm.rsa),
    "ecdsa": (HashAlgorithm.sha256, SignatureAlgorithm.ecdsa),
    "ed25519": (HashAlgorithm.intrinsic, SignatureAlgorithm.ed25519),
}


@pytest.fixture(scope="module")
def signers(pki: Pki, inter: Ca, keys: dict) -> dict[str, Signer]:
    return {kind: Signer(keys[kind], pki.leaf(inter, keys[kind], [NODE]), NODE) for kind in KINDS}


@pytest.fixture
def resolver(root: Ca) -> CertificateResolver:
    return CertificateResolver(OVERLAY, roots=[root.der], clock=lambda: NOW)


def make_message(
    signer: Signer,
    certificates: tuple[bytes, ...],
    contents: MessageContents = CONTENTS,
    overlay: int = OVERLAY_ID,
    tid: int = TID,
) -> Message:
    header = ForwardingHeader(
        overlay=overlay,
        configuration_sequence=7,
        ttl=100,
        fragment=LAST_FRAGMENT_BIT,
        transaction_id=tid,
        via_list=(NodeDestination(PEER),),
        destination_list=(NodeDestination(NODE),),
    )
    return Message(header, contents, sign_message(overlay, tid, contents, signer, certificates))


def on_the_wire(message: Message) -> Message:
    return Message.from_bytes(message.to_bytes())


# ---------------------------------------------------------------- SignerIdentity, Signer


def test_single_node_id_certificate_uses_cert_hash(signers: dict[str, Signer]) -> None:
    signer = signers["rsa"]
    identity = signer.identity()
    assert identity == SignerIdentity(
        SignerIdentityType.cert_hash, HashAlgorithm.sha256, hashlib.sha256(signer.certificate).digest()
    )
    assert identity.to_bytes() == b"\x01\x00\x22\x04\x20" + hashlib.sha256(signer.certificate).digest()
    assert (
        signer.identity(HashAlgorithm.sha384).certificate_hash == hashlib.sha384(signer.certificate).digest()
    )


def test_several_node_ids_use_cert_hash_node_id(pki: Pki, inter: Ca, keys: dict, root: Ca) -> None:
    ids = [bytes([i]) * 16 for i in (1, 2, 3)]
    cert = pki.leaf(inter, keys["ecdsa"], ids)
    signer = Signer(keys["ecdsa"], cert, ids[1])
    identity = signer.identity()
    assert identity.identity_type == SignerIdentityType.cert_hash_node_id
    assert identity.certificate_hash == hashlib.sha256(ids[1] + cert).digest()
    assert Signer.create(keys["ecdsa"], cert).node_id == ids[0]

    message = on_the_wire(make_message(signer, (inter.der,)))
    node = verify_message(message, CertificateResolver(OVERLAY, roots=[root.der], clock=lambda: NOW))
    assert signing_node_id(message.security_block.signature.identity, node) == ids[1]


def test_signer_sign_covers_data_then_identity(signers: dict[str, Signer]) -> None:
    for kind, signer in signers.items():
        signature = signer.sign(b"prefix bytes")
        assert signature.identity == signer.identity()
        assert (signature.algorithm.hash, signature.algorithm.signature) == EXPECTED_ALGORITHM[kind]
        signed = b"prefix bytes" + signature.identity.to_bytes()
        verify_with_key(
            signer.node_certificate.public_key, signature.algorithm, signed, signature.signature_value
        )
        with pytest.raises(SignatureError, match="does not verify"):
            verify_with_key(
                signer.node_certificate.public_key,
                signature.algorithm,
                b"prefix bytes",
                signature.signature_value,
            )


def test_signer_checks_key_and_node_id(pki: Pki, inter: Ca, keys: dict) -> None:
    cert = pki.leaf(inter, keys["rsa"], [NODE])
    with pytest.raises(CertificateError, match="does not belong"):
        Signer(keys["rsa2"], cert, NODE)
    with pytest.raises(CertificateError, match="not in the certificate"):
        Signer(keys["rsa"], cert, PEER)


# ---------------------------------------------------------------- §6.3.4 messages


@pytest.mark.parametrize("kind", KINDS)
def test_message_signature_verifies(
    kind: str, signers: dict[str, Signer], inter: Ca, resolver: CertificateResolver
) -> None:
    signer = signers[kind]
    message = on_the_wire(make_message(signer, (inter.der,)))
    block = message.security_block
    assert [c.certificate for c in block.certificates] == [signer.certificate, inter.der]
    assert all(c.type == CertificateType.X509 for c in block.certificates)
    assert (block.signature.algorithm.hash, block.signature.algorithm.signature) == EXPECTED_ALGORITHM[kind]
    node = verify_message(message, resolver)
    assert node.der == signer.certificate and node.node_ids == (NODE,)


def test_signature_input_is_overlay_tid_contents_identity(signers: dict[str, Signer], inter: Ca) -> None:
    signer = signers["rsa"]
    identity = signer.identity()
    expected = struct.pack("!IQ", OVERLAY_ID, TID) + CONTENTS.to_bytes() + identity.to_bytes()
    assert message_signature_input(OVERLAY_ID, TID, CONTENTS, identity) == expected
    # RSASSA-PKCS1-v1_5 is deterministic: the same bytes signed directly give the same value.
    block = sign_message(OVERLAY_ID, TID, CONTENTS, signer, (inter.der,))
    assert block.signature.signature_value == sign_with_key(signer.private_key, expected)[1]


def test_every_byte_of_message_contents_is_covered(
    signers: dict[str, Signer], inter: Ca, resolver: CertificateResolver
) -> None:
    message = make_message(signers["ecdsa"], (inter.der,))
    data = message.to_bytes()
    w = Writer()
    message.forwarding_header.encode(w)
    start, end = len(w), len(w) + len(CONTENTS.to_bytes())
    verified = 0
    for i in range(start, end):
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        try:
            decoded = Message.from_bytes(bytes(tampered))
        except DecodeError:
            continue  # a broken length field: the codec already refuses it
        with pytest.raises(SignatureError):
            verify_message(decoded, resolver)
        verified += 1
    assert verified >= len(CONTENTS.message_body)  # every body byte reached the signature check


@pytest.mark.parametrize("field", ["transaction_id", "overlay"])
def test_tampered_header_fields_are_rejected(
    field: str, signers: dict[str, Signer], inter: Ca, resolver: CertificateResolver
) -> None:
    message = make_message(signers["rsa"], (inter.der,))
    header = replace(message.forwarding_header, **{field: getattr(message.forwarding_header, field) ^ 1})
    with pytest.raises(SignatureError, match="does not verify"):
        verify_message(on_the_wire(replace(message, forwarding_header=header)), resolver)
    # Fields outside the signature input (TTL, via list) may change on the way.
    header = replace(message.forwarding_header, ttl=3, via_list=())
    verify_message(on_the_wire(replace(message, forwarding_header=header)), resolver)


def test_signature_by_the_wrong_key_is_rejected(
    signers: dict[str, Signer], inter: Ca, keys: dict, resolver: CertificateResolver
) -> None:
    message = make_message(signers["rsa"], (inter.der,))
    identity = signers["rsa"].identity()
    algorithm, value = sign_with_key(
        keys["rsa2"], message_signature_input(OVERLAY_ID, TID, CONTENTS, identity)
    )
    block = replace(message.security_block, signature=Signature(algorithm, identity, value))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_message(on_the_wire(replace(message, security_block=block)), resolver)


def test_identity_naming_a_missing_certificate_is_rejected(
    signers: dict[str, Signer], inter: Ca, root: Ca, resolver: CertificateResolver
) -> None:
    message = make_message(signers["rsa"], (inter.der,))
    block = replace(
        message.security_block, certificates=(GenericCertificate(CertificateType.X509, inter.der),)
    )
    stripped = on_the_wire(replace(message, security_block=block))
    with pytest.raises(SignatureError, match="no certificate matches"):
        verify_message(stripped, resolver)
    # A certificate store (e.g. the Certificate Store Usage) can supply it.
    asked: list[SignerIdentity] = []

    def store(identity: SignerIdentity) -> list[bytes]:
        asked.append(identity)
        return [signers["rsa"].certificate]

    with_store = CertificateResolver(OVERLAY, roots=[root.der], store=store, clock=lambda: NOW)
    assert verify_message(stripped, with_store).der == signers["rsa"].certificate
    assert asked == [message.security_block.signature.identity]


@pytest.mark.parametrize(
    ("kind", "algorithm", "expected"),
    [
        ("rsa", (HashAlgorithm.sha256, SignatureAlgorithm.ecdsa), "does not fit an RSA key"),
        ("rsa", (HashAlgorithm.sha1, SignatureAlgorithm.rsa), "hash algorithm 2 is not allowed"),
        ("rsa", (HashAlgorithm.md5, SignatureAlgorithm.rsa), "hash algorithm 1 is not allowed"),
        ("ecdsa", (HashAlgorithm.sha256, SignatureAlgorithm.rsa), "does not fit an ECDSA key"),
        ("ed25519", (HashAlgorithm.sha256, SignatureAlgorithm.ed25519), "intrinsic only"),
        ("ed25519", (HashAlgorithm.intrinsic, SignatureAlgorithm.ecdsa), "does not fit an ed25519 key"),
        ("ecdsa", (HashAlgorithm.sha384, SignatureAlgorithm.ecdsa), "does not verify"),
    ],
)
def test_algorithm_mismatch_is_rejected(
    kind: str,
    algorithm: tuple[int, int],
    expected: str,
    signers: dict[str, Signer],
    inter: Ca,
    resolver: CertificateResolver,
) -> None:
    message = make_message(signers[kind], (inter.der,))
    signature = replace(message.security_block.signature, algorithm=SignatureAndHashAlgorithm(*algorithm))
    block = replace(message.security_block, signature=signature)
    with pytest.raises(SignatureError, match=expected):
        verify_message(on_the_wire(replace(message, security_block=block)), resolver)


def test_identity_type_must_fit_the_certificate(
    pki: Pki, inter: Ca, keys: dict, resolver: CertificateResolver
) -> None:
    single = make_message(Signer(keys["rsa"], pki.leaf(inter, keys["rsa"], [NODE]), NODE), (inter.der,))
    sig = single.security_block.signature
    wrong = replace(
        sig, identity=SignerIdentity(SignerIdentityType.cert_hash_node_id, HashAlgorithm.sha256, b"\0" * 32)
    )
    with pytest.raises(SignatureError):
        verify_message(
            replace(single, security_block=replace(single.security_block, signature=wrong)), resolver
        )
    none = replace(sig, identity=SignerIdentity(SignerIdentityType.none))
    with pytest.raises(SignatureError, match="names no certificate"):
        verify_message(
            replace(single, security_block=replace(single.security_block, signature=none)), resolver
        )


def test_untrusted_or_expired_signer_is_rejected(
    pki: Pki, other_root: Ca, inter: Ca, root: Ca, keys: dict, signers: dict[str, Signer]
) -> None:
    foreign = Signer(keys["rsa"], pki.leaf(other_root, keys["rsa"], [NODE]), NODE)
    resolver = CertificateResolver(OVERLAY, roots=[root.der], clock=lambda: NOW)
    with pytest.raises(SignatureError, match="signer's certificate rejected"):
        verify_message(make_message(foreign, (other_root.der,)), resolver)
    later = CertificateResolver(OVERLAY, roots=[root.der], clock=lambda: NOW + 31 * DAY)
    with pytest.raises(SignatureError, match="expired"):
        verify_message(make_message(signers["rsa"], (inter.der,)), later)


def test_resolver_cache_honours_the_whole_chains_validity(pki: Pki, root: Ca, keys: dict) -> None:
    short = pki.ca("Short Intermediate", keys["inter"], parent=root, not_after=NOW + 10 * DAY)
    signer = Signer(keys["ecdsa"], pki.leaf(short, keys["ecdsa"], [NODE]), NODE)
    now = [NOW]
    resolver = CertificateResolver(OVERLAY, roots=[root.der], clock=lambda: now[0])
    message = make_message(signer, (short.der,))
    verify_message(message, resolver)
    verify_message(message, resolver)  # from the cache
    now[0] = NOW + 11 * DAY  # the leaf is still valid, its issuer is not
    with pytest.raises(SignatureError, match="expired"):
        verify_message(message, resolver)


def test_self_signed_signers_when_permitted(keys: dict, root: Ca) -> None:
    cert = make_self_signed(keys["ed25519"], "ivan@x.org", OVERLAY, "sha256", node_id_count=3, now=NOW)
    signer = Signer.create(keys["ed25519"], cert)
    message = on_the_wire(make_message(signer, ()))
    permitted = CertificateResolver(OVERLAY, roots=[root.der], self_signed_digest="sha256", clock=lambda: NOW)
    node = verify_message(message, permitted)
    assert signing_node_id(message.security_block.signature.identity, node) == node.node_ids[0]
    with pytest.raises(SignatureError, match="self-signed certificates are not permitted"):
        verify_message(message, CertificateResolver(OVERLAY, roots=[root.der], clock=lambda: NOW))
    with pytest.raises(SignatureError, match="do not match the public key"):
        verify_message(message, CertificateResolver(OVERLAY, self_signed_digest="sha1", clock=lambda: NOW))


def test_resolver_treats_naive_clock_as_utc(signers: dict[str, Signer], inter: Ca, root: Ca) -> None:
    naive = datetime(NOW.year, NOW.month, NOW.day)
    resolver = CertificateResolver(OVERLAY, roots=[root.der], clock=lambda: naive)
    assert verify_message(make_message(signers["rsa"], (inter.der,)), resolver).node_ids == (NODE,)


identities = st.builds(
    SignerIdentity,
    st.sampled_from(list(SignerIdentityType)),
    st.integers(0, 255),
    st.binary(max_size=70),
)
algorithms = st.builds(SignatureAndHashAlgorithm, st.integers(0, 255), st.integers(0, 255))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    algorithm=algorithms,
    identity=identities,
    value=st.binary(max_size=300),
    certificates=st.lists(st.binary(max_size=200), max_size=3),
    include_real=st.booleans(),
    cert_type=st.integers(0, 255),
)
def test_garbage_security_blocks_raise_only_signature_error(
    signers: dict[str, Signer],
    inter: Ca,
    resolver: CertificateResolver,
    algorithm: SignatureAndHashAlgorithm,
    identity: SignerIdentity,
    value: bytes,
    certificates: list[bytes],
    include_real: bool,
    cert_type: int,
) -> None:
    message = make_message(signers["rsa"], (inter.der,))
    if include_real:
        certificates = [*certificates, signers["rsa"].certificate, inter.der]
        identity = replace(identity, certificate_hash=signers["rsa"].identity().certificate_hash)
    bucket = tuple(
        GenericCertificate(cert_type if i == 0 else CertificateType.X509, c)
        for i, c in enumerate(certificates)
    )
    block = SecurityBlock(bucket, Signature(algorithm, identity, value))
    with pytest.raises(SignatureError):
        verify_message(replace(message, security_block=block), resolver)


@pytest.mark.parametrize("flip", [0x01, 0x80])
def test_any_flipped_byte_in_the_security_block_is_rejected(
    signers: dict[str, Signer], inter: Ca, root: Ca, flip: int
) -> None:
    signer = signers["ecdsa"]
    message = make_message(signer, (inter.der,))
    data = message.to_bytes()
    block_start = len(data) - _encoded_len(message.security_block)
    inter_start = data.index(inter.der, block_start)
    checked = 0
    for i in range(block_start, len(data)):
        tampered = bytearray(data)
        tampered[i] ^= flip
        try:
            decoded = Message.from_bytes(bytes(tampered))
        except DecodeError:
            continue
        checked += 1
        # A fresh resolver each time: a cached leaf would rightly no longer need the intermediate.
        resolver = CertificateResolver(OVERLAY, roots=[root.der], clock=lambda: NOW)
        if inter_start <= i < inter_start + len(inter.der):
            # Not every bit of a certificate is signed: the unused-bits count of its signature
            # BIT STRING is not, and 0 -> 1 there can still be valid DER. Such a twin of the
            # intermediate is as good as the original; anything else must fail.
            try:
                assert verify_message(decoded, resolver).der == signer.certificate
            except SignatureError:
                pass
            continue
        with pytest.raises(SignatureError):
            verify_message(decoded, resolver)
    assert checked > (len(data) - block_start) * 0.9


def test_unparsable_extra_certificate_does_not_block_a_valid_chain(
    signers: dict[str, Signer], inter: Ca, resolver: CertificateResolver
) -> None:
    message = make_message(signers["rsa"], (b"\x30\x00not a certificate", inter.der))
    assert verify_message(on_the_wire(message), resolver).der == signers["rsa"].certificate


def _encoded_len(block: SecurityBlock) -> int:
    w = Writer()
    block.encode(w)
    return len(w)


# ---------------------------------------------------------------- §7.1 stored data

RESOURCE = hashlib.sha1(b"sip:alice@overlay.example.org").digest()[:16]


@pytest.mark.parametrize("kind", KINDS)
def test_stored_data_signature_verifies(
    kind: str, signers: dict[str, Signer], inter: Ca, resolver: CertificateResolver
) -> None:
    value = DictionaryEntry(NODE, DataValue(True, b"registration"))
    stored = sign_stored_data(
        RESOURCE, KindId.SIP_REGISTRATION, 1_900_000_000_000, 3600, value, signers[kind]
    )
    assert stored.signature.identity == signers[kind].identity()
    certs = [signers[kind].certificate, inter.der]
    assert (
        verify_stored_data(RESOURCE, KindId.SIP_REGISTRATION, stored, resolver, certs).der
        == signers[kind].certificate
    )
    # Through the wire codec and back.
    w = Writer()
    stored.encode(w)
    decoded = StoredData.decode(Reader(w.data()), model=DataModel.DICTIONARY)
    verify_stored_data(RESOURCE, KindId.SIP_REGISTRATION, decoded, resolver, certs)


def test_stored_data_tampering_is_rejected(
    signers: dict[str, Signer], inter: Ca, resolver: CertificateResolver
) -> None:
    value = DataValue(True, b"value")
    signer = signers["rsa"]
    stored = sign_stored_data(RESOURCE, 0x4000, 1_900_000_000_000, 60, value, signer)
    certs = [signer.certificate, inter.der]
    for resource, kind, data in [
        (RESOURCE[:-1] + b"\0", 0x4000, stored),
        (RESOURCE, 0x4001, stored),
        (RESOURCE, 0x4000, replace(stored, storage_time=stored.storage_time + 1)),
        (RESOURCE, 0x4000, replace(stored, value=DataValue(True, b"valuf"))),
        (RESOURCE, 0x4000, replace(stored, value=DataValue(False, b"value"))),
    ]:
        with pytest.raises(SignatureError, match="does not verify"):
            verify_stored_data(resource, kind, data, resolver, certs)
    # §7.1 leaves lifetime out of the signature input.
    verify_stored_data(RESOURCE, 0x4000, replace(stored, lifetime=1), resolver, certs)
    with pytest.raises(SignatureError, match="no certificate matches"):
        verify_stored_data(RESOURCE, 0x4000, stored, resolver, [inter.der])


def test_synthesized_nonexistent_value_has_no_signer(resolver: CertificateResolver) -> None:
    # §7.4.2.2: identity none, algorithm {0, 0}, empty value.
    synthetic = StoredData(
        0,
        0,
        DataValue(False, b""),
        Signature(SignatureAndHashAlgorithm(0, 0), SignerIdentity(SignerIdentityType.none), b""),
    )
    with pytest.raises(SignatureError, match="names no certificate"):
        verify_stored_data(RESOURCE, 0x4000, synthetic, resolver, [])


# ---------------------------------------------------------------- openssl, independently


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
@pytest.mark.parametrize("kind", KINDS)
def test_openssl_verifies_message_signatures(
    kind: str, signers: dict[str, Signer], inter: Ca, tmp_path: Path
) -> None:
    signer = signers[kind]
    block = sign_message(OVERLAY_ID, TID, CONTENTS, signer, (inter.der,))
    data = struct.pack("!IQ", OVERLAY_ID, TID) + CONTENTS.to_bytes() + block.signature.identity.to_bytes()
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "sig").write_bytes(block.signature.signature_value)
    (tmp_path / "pub.pem").write_bytes(
        signer.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    if kind == "ed25519":
        cmd = [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "pub.pem",
            "-rawin",
            "-in",
            "data",
            "-sigfile",
            "sig",
        ]
    else:
        cmd = ["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig", "data"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verified" in result.stdout or "Success" in result.stdout

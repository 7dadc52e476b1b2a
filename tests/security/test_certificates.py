"""The §11.3 certificate profile, chain validation, §11.3.1 self-signed credentials,
requests, key files; cross-checked with the openssl command-line tool."""

from __future__ import annotations

import hashlib
import shutil
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from reload_core.security.certificates import (
    CertificateError,
    build_csr,
    certificate_to_pem,
    certification_path,
    check_self_signed,
    generate_private_key,
    load_certificate_file,
    load_certificates,
    load_private_key,
    load_private_key_file,
    make_self_signed,
    node_certificate_builder,
    parse_csr,
    parse_node_certificate,
    private_key_to_pem,
    save_certificate,
    save_private_key,
    self_signed_node_ids,
    spki_der,
    validate_chain,
)

from .pki import DAY, NOW, OVERLAY, Ca, Pki, der, key_usage, uri

NODE_A = bytes(range(16))
NODE_B = bytes(range(16, 32))
NODE_C = bytes(range(32, 48))


def _reason(excinfo: pytest.ExceptionInfo[CertificateError]) -> str:
    return str(excinfo.value)


# ---------------------------------------------------------------- §11.3 profile


def test_parse_node_certificate_reads_the_profile(pki: Pki, root: Ca, keys: dict) -> None:
    cert = pki.leaf(root, keys["rsa"], [NODE_A, NODE_B, NODE_C], "bob@overlay.example.org")
    node = parse_node_certificate(cert)
    assert node.node_ids == (NODE_A, NODE_B, NODE_C)
    assert node.node_id == NODE_A
    assert node.user_name == "bob@overlay.example.org"
    assert node.overlay == OVERLAY
    assert node.der == cert
    assert node.fingerprint == hashlib.sha256(cert).digest()
    assert node.spki_der == spki_der(keys["rsa"].public_key())
    assert node.not_valid_after == NOW + 30 * DAY


@pytest.mark.parametrize(
    ("san", "expected"),
    [
        ([x509.UniformResourceIdentifier(uri(NODE_A))], "exactly one rfc822Name, found 0"),
        (
            [
                x509.UniformResourceIdentifier(uri(NODE_A)),
                x509.RFC822Name("a@x.org"),
                x509.RFC822Name("b@x.org"),
            ],
            "exactly one rfc822Name, found 2",
        ),
        ([x509.RFC822Name("a@x.org")], "no reload URI"),
        (
            [x509.UniformResourceIdentifier(uri(NODE_A)), x509.RFC822Name("a@x.org"), x509.DNSName("x.org")],
            "DNSName",
        ),
        (
            [
                x509.UniformResourceIdentifier(uri(NODE_A)),
                x509.RFC822Name("a@x.org"),
                x509.DirectoryName(x509.Name([])),
            ],
            "DirectoryName",
        ),
        ([x509.UniformResourceIdentifier("https://x.org/"), x509.RFC822Name("a@x.org")], "not a reload URI"),
        (
            # a resource Destination (type 2), not a node
            [
                x509.UniformResourceIdentifier(f"reload://0211{'10' + NODE_A.hex()}@x.org/"),
                x509.RFC822Name("a@x.org"),
            ],
            "not a single node_id",
        ),
        (
            [x509.UniformResourceIdentifier(uri(NODE_A) + "0001"), x509.RFC822Name("a@x.org")],
            "names a data value",
        ),
        (
            [x509.UniformResourceIdentifier(uri(NODE_A + b"\0\0\0\0")), x509.RFC822Name("a@x.org")],
            "NodeIdLength is 16",
        ),
        (
            [
                x509.UniformResourceIdentifier(uri(NODE_A, "one.org")),
                x509.UniformResourceIdentifier(uri(NODE_B, "two.org")),
                x509.RFC822Name("a@x.org"),
            ],
            "several overlays",
        ),
        (
            [
                x509.UniformResourceIdentifier(uri(NODE_A)),
                x509.UniformResourceIdentifier(uri(NODE_A)),
                x509.RFC822Name("a@x.org"),
            ],
            "appears twice",
        ),
        ([x509.UniformResourceIdentifier(uri(NODE_A)), x509.RFC822Name("a b@x.org")], "space"),
    ],
)
def test_profile_violations_are_rejected(
    pki: Pki, root: Ca, keys: dict, san: list[x509.GeneralName], expected: str
) -> None:
    cert = pki.leaf(root, keys["ecdsa"], san=san)
    with pytest.raises(CertificateError) as excinfo:
        parse_node_certificate(cert)
    assert expected in _reason(excinfo)


def test_non_empty_subject_is_rejected(pki: Pki, root: Ca, keys: dict) -> None:
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "alice")])
    with pytest.raises(CertificateError, match="subject must be empty"):
        parse_node_certificate(pki.leaf(root, keys["ecdsa"], subject=subject))


def test_node_id_length_is_the_overlays(pki: Pki, root: Ca, keys: dict) -> None:
    node_id = bytes(range(20))
    cert = pki.leaf(root, keys["ecdsa"], [node_id])
    assert parse_node_certificate(cert, node_id_length=20).node_ids == (node_id,)
    with pytest.raises(CertificateError, match="NodeIdLength is 16"):
        parse_node_certificate(cert)


def test_small_rsa_key_is_rejected(pki: Pki, root: Ca) -> None:
    small = rsa.generate_private_key(65537, 1024)
    with pytest.raises(CertificateError, match="1024 bits"):
        parse_node_certificate(pki.leaf(root, small))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_der_raises_only_certificate_error(data: bytes) -> None:
    with pytest.raises(CertificateError):
        parse_node_certificate(data)


def test_every_truncation_raises_only_certificate_error(pki: Pki, root: Ca, keys: dict) -> None:
    cert = pki.leaf(root, keys["ed25519"])
    for n in range(len(cert)):
        with pytest.raises(CertificateError):
            parse_node_certificate(cert[:n])


# ---------------------------------------------------------------- chains


def test_chain_through_intermediate_validates(
    pki: Pki, root: Ca, inter: Ca, other_root: Ca, keys: dict
) -> None:
    cert = pki.leaf(inter, keys["rsa"])
    # Unrelated certificates in the bucket and the roots do not get in the way.
    node, path = certification_path(
        cert, [other_root.der, inter.der], [other_root.der, root.der], NOW, OVERLAY
    )
    assert node.node_ids == (b"\x11" * 16,)
    assert path == (inter.der, root.der)
    assert validate_chain(node, [inter.der], [root.der], NOW, OVERLAY) == node


def test_leaf_directly_under_root_validates(pki: Pki, root: Ca, keys: dict) -> None:
    cert = pki.leaf(root, keys["ed25519"])
    assert validate_chain(cert, [], [root.der], NOW, OVERLAY).der == cert


def test_missing_intermediate_is_rejected(pki: Pki, root: Ca, inter: Ca, keys: dict) -> None:
    with pytest.raises(CertificateError, match="no issuer"):
        validate_chain(pki.leaf(inter, keys["rsa"]), [], [root.der], NOW, OVERLAY)


@pytest.mark.parametrize(
    ("not_before", "not_after", "expected"),
    [(NOW - 60 * DAY, NOW - DAY, "expired"), (NOW + DAY, NOW + 60 * DAY, "not valid before")],
)
def test_leaf_outside_validity_is_rejected(
    pki: Pki, root: Ca, keys: dict, not_before: object, not_after: object, expected: str
) -> None:
    cert = pki.leaf(root, keys["rsa"], not_before=not_before, not_after=not_after)  # type: ignore[arg-type]
    with pytest.raises(CertificateError, match=expected):
        validate_chain(cert, [], [root.der], NOW, OVERLAY)
    # The same certificate is fine at a time inside its window.
    validate_chain(cert, [], [root.der], not_before + DAY, OVERLAY)  # type: ignore[operator]


def test_expired_intermediate_is_rejected(pki: Pki, root: Ca, keys: dict) -> None:
    old = pki.ca("Old Intermediate", keys["inter"], parent=root, not_after=NOW - DAY)
    with pytest.raises(CertificateError, match="expired"):
        validate_chain(pki.leaf(old, keys["rsa"]), [old.der], [root.der], NOW, OVERLAY)


def test_certificate_from_another_ca_is_rejected(pki: Pki, root: Ca, other_root: Ca, keys: dict) -> None:
    cert = pki.leaf(other_root, keys["rsa"])
    with pytest.raises(CertificateError, match="no valid chain to a root certificate"):
        validate_chain(cert, [other_root.der], [root.der], NOW, OVERLAY)


@pytest.mark.parametrize(("ca", "expected"), [(False, "CA=false"), (None, "no BasicConstraints")])
def test_intermediate_without_ca_bit_is_rejected(
    pki: Pki, root: Ca, keys: dict, ca: bool | None, expected: str
) -> None:
    bad = pki.ca("Not A CA", keys["inter"], parent=root, ca=ca)
    with pytest.raises(CertificateError, match=expected):
        validate_chain(pki.leaf(bad, keys["rsa"]), [bad.der], [root.der], NOW, OVERLAY)


def test_path_length_constraint_is_enforced(pki: Pki, keys: dict) -> None:
    tight_root = pki.ca("Tight Root", keys["other_root"], path_length=0)
    sub = pki.ca("Sub", keys["inter"], parent=tight_root)
    with pytest.raises(CertificateError, match="pathLenConstraint 0"):
        validate_chain(pki.leaf(sub, keys["rsa"]), [sub.der], [tight_root.der], NOW, OVERLAY)
    validate_chain(pki.leaf(tight_root, keys["rsa"]), [], [tight_root.der], NOW, OVERLAY)


def test_issuer_without_key_cert_sign_is_rejected(pki: Pki, root: Ca, keys: dict) -> None:
    bad = pki.ca("Signing Only", keys["inter"], parent=root, usage=key_usage(sign=True))
    with pytest.raises(CertificateError, match="keyCertSign"):
        validate_chain(pki.leaf(bad, keys["rsa"]), [bad.der], [root.der], NOW, OVERLAY)


def test_leaf_without_digital_signature_is_rejected(pki: Pki, root: Ca, keys: dict) -> None:
    cert = pki.leaf(root, keys["rsa"], usage=key_usage(encipher=True))
    with pytest.raises(CertificateError, match="digitalSignature"):
        validate_chain(cert, [], [root.der], NOW, OVERLAY)


def test_leaf_with_ca_bit_is_rejected(pki: Pki, root: Ca, keys: dict) -> None:
    cert = pki.leaf(root, keys["rsa"], ca=True)
    with pytest.raises(CertificateError, match="is a CA certificate"):
        validate_chain(cert, [], [root.der], NOW, OVERLAY)


def test_wrong_overlay_is_rejected(pki: Pki, root: Ca, keys: dict) -> None:
    cert = pki.leaf(root, keys["rsa"], overlay="elsewhere.example.net")
    with pytest.raises(CertificateError, match=r"for overlay 'elsewhere\.example\.net'"):
        validate_chain(cert, [], [root.der], NOW, OVERLAY)


def test_forged_signature_is_rejected(pki: Pki, root: Ca, keys: dict) -> None:
    # Names the real root as issuer but is signed by another key.
    cert = pki.leaf(root, keys["rsa"], signing_key=keys["rsa2"])
    with pytest.raises(CertificateError, match="signature does not verify"):
        validate_chain(cert, [], [root.der], NOW, OVERLAY)


def test_unknown_critical_extension_is_rejected(pki: Pki, root: Ca, keys: dict) -> None:
    ext = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    with pytest.raises(CertificateError, match=r"unsupported critical extension 1\.3\.6\.1\.4\.1\.55555\.1"):
        validate_chain(pki.leaf(root, keys["rsa"], extra=[ext]), [], [root.der], NOW, OVERLAY)
    # Not critical: ignored, as RFC 5280 §4.2 allows.
    cert = pki.leaf(root, keys["rsa"], extra=[ext], critical_extra=False)
    validate_chain(cert, [], [root.der], NOW, OVERLAY)


def test_no_roots_is_an_error(pki: Pki, root: Ca, keys: dict) -> None:
    with pytest.raises(CertificateError, match="no root certificates"):
        validate_chain(pki.leaf(root, keys["rsa"]), [], [], NOW, OVERLAY)


def test_certificate_issued_by_the_overlay_ca_validates(keys: dict) -> None:
    """The CA of reload_core.security.ca issues what this module accepts."""
    from reload_core.security.ca import OverlayCA

    ca = OverlayCA.create(OVERLAY, keys["root"], NOW - DAY)
    issued = ca.issue_from_csr(
        build_csr(keys["ecdsa"], "carol@overlay.example.org"), "carol@overlay.example.org", [NODE_A], NOW
    )
    node = validate_chain(der(issued), [], [der(ca.certificate)], NOW, OVERLAY)
    assert (node.user_name, node.node_ids) == ("carol@overlay.example.org", (NODE_A,))


def test_node_certificate_builder_follows_the_profile(root: Ca, keys: dict) -> None:
    builder = node_certificate_builder(
        keys["ecdsa"].public_key(), "dave@x.org", [NODE_A, NODE_B], OVERLAY, NOW - DAY, NOW + DAY
    )
    cert = builder.issuer_name(root.cert.subject).sign(root.key, hashes.SHA256())
    node = validate_chain(der(cert), [], [root.der], NOW, OVERLAY)
    assert node.node_ids == (NODE_A, NODE_B)
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


# ---------------------------------------------------------------- §11.3.1 self-signed


def _expected_node_ids(key: object, digest: str, count: int) -> tuple[bytes, ...]:
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
    if count == 1:
        return (hashlib.new(digest, spki).digest()[:16],)
    return tuple(hashlib.new(digest, i.to_bytes(4, "big") + spki).digest()[:16] for i in range(1, count + 1))


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("kind", ["rsa", "ecdsa", "ed25519"])
def test_self_signed_node_ids_match_the_key(keys: dict, digest: str, count: int, kind: str) -> None:
    key = keys[kind]
    cert = make_self_signed(key, "eve@x.org", OVERLAY, digest, node_id_count=count, now=NOW)  # type: ignore[arg-type]
    node = check_self_signed(cert, digest, now=NOW, overlay=OVERLAY)  # type: ignore[arg-type]
    assert node.node_ids == _expected_node_ids(key.public_key(), digest, count)
    assert node.node_ids == self_signed_node_ids(key.public_key(), digest, count)  # type: ignore[arg-type]
    assert node.user_name == "eve@x.org"
    assert len(node.certificate.subject) == 0 and len(node.certificate.issuer) == 0


def test_self_signed_with_20_byte_node_ids(keys: dict) -> None:
    cert = make_self_signed(keys["ecdsa"], "eve@x.org", OVERLAY, "sha256", node_id_length=20, now=NOW)
    node = check_self_signed(cert, "sha256", node_id_length=20)
    assert node.node_ids == (hashlib.sha256(node.spki_der).digest()[:20],)


def test_self_signed_node_id_not_matching_key_is_rejected(pki: Pki, keys: dict) -> None:
    cert = pki.leaf(None, keys["ecdsa"], [NODE_A])
    with pytest.raises(CertificateError, match="do not match the public key"):
        check_self_signed(cert, "sha1")


def test_self_signed_with_one_stolen_node_id_is_rejected(pki: Pki, keys: dict) -> None:
    ids = list(_expected_node_ids(keys["ecdsa"].public_key(), "sha256", 3))
    ids[1] = _expected_node_ids(keys["rsa"].public_key(), "sha256", 1)[0]  # someone else's Node-ID
    with pytest.raises(CertificateError, match="do not match"):
        check_self_signed(pki.leaf(None, keys["ecdsa"], ids), "sha256")


def test_self_signed_checked_with_the_other_digest_is_rejected(keys: dict) -> None:
    cert = make_self_signed(keys["ed25519"], "eve@x.org", OVERLAY, "sha1", now=NOW)
    with pytest.raises(CertificateError, match="sha256 digest"):
        check_self_signed(cert, "sha256")


def test_self_signed_with_matching_ids_but_bad_signature_is_rejected(pki: Pki, keys: dict) -> None:
    ids = _expected_node_ids(keys["rsa"].public_key(), "sha1", 1)
    cert = pki.leaf(None, keys["rsa"], ids, signing_key=keys["rsa2"])
    with pytest.raises(CertificateError, match="signature does not verify"):
        check_self_signed(cert, "sha1")


def test_self_signed_dates_and_overlay_are_checked_when_asked(keys: dict) -> None:
    cert = make_self_signed(keys["ecdsa"], "eve@x.org", OVERLAY, "sha1", days=10, now=NOW)
    check_self_signed(cert, "sha1")
    with pytest.raises(CertificateError, match="expired"):
        check_self_signed(cert, "sha1", now=NOW + 11 * DAY)
    with pytest.raises(CertificateError, match=r"not 'other\.org'"):
        check_self_signed(cert, "sha1", overlay="other.org")


def test_ca_issued_certificate_is_not_self_signed(pki: Pki, root: Ca, keys: dict) -> None:
    with pytest.raises(CertificateError, match="issuer differs from subject"):
        check_self_signed(pki.leaf(root, keys["rsa"]), "sha1")


# ---------------------------------------------------------------- requests


def test_build_csr_and_parse_csr(keys: dict) -> None:
    data = build_csr(keys["rsa"], "frank@overlay.example.org")
    request = x509.load_der_x509_csr(data)
    assert len(request.subject) == 0 and request.is_signature_valid
    parsed = parse_csr(data)
    assert parsed.user_name == "frank@overlay.example.org"
    assert spki_der(parsed.public_key) == spki_der(keys["rsa"].public_key())  # type: ignore[arg-type]
    # The enrollment server's own parser reads our request the same way.
    from reload_core.security.ca import parse_csr as server_parse_csr

    assert server_parse_csr(data).user_name == "frank@overlay.example.org"


def test_parse_csr_rejects_node_id_requests_and_garbage(keys: dict) -> None:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    csr = builder.add_extension(
        x509.SubjectAlternativeName(
            [x509.RFC822Name("a@x.org"), x509.UniformResourceIdentifier(uri(NODE_A))]
        ),
        critical=True,
    ).sign(keys["ecdsa"], hashes.SHA256())
    with pytest.raises(CertificateError, match="exactly one rfc822Name"):
        parse_csr(csr.public_bytes(serialization.Encoding.DER))
    with pytest.raises(CertificateError, match="malformed"):
        parse_csr(b"\x30\x03\x02\x01\x00")


# ---------------------------------------------------------------- keys and files


def test_generate_private_key() -> None:
    rsa_key = generate_private_key()
    assert isinstance(rsa_key, rsa.RSAPrivateKey) and rsa_key.key_size == 2048
    ec_key = generate_private_key("ecdsa")
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey) and ec_key.curve.name == "secp256r1"
    assert isinstance(generate_private_key("ed25519"), ed25519.Ed25519PrivateKey)
    with pytest.raises(ValueError, match="unknown key kind"):
        generate_private_key("dsa")  # type: ignore[arg-type]


def test_private_key_file_is_0600_and_round_trips(tmp_path: Path, keys: dict) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    save_private_key(path, keys["ed25519"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_private_key_file(path)
    assert isinstance(loaded, ed25519.Ed25519PrivateKey)
    assert spki_der(loaded.public_key()) == spki_der(keys["ed25519"].public_key())
    assert [p.name for p in tmp_path.iterdir()] == ["node.key"]  # no temporary file left

    save_private_key(path, keys["ecdsa"], password=b"secret")
    assert b"ENCRYPTED" in path.read_bytes()
    with pytest.raises(CertificateError):
        load_private_key(path.read_bytes(), b"wrong")
    assert spki_der(load_private_key_file(path, b"secret").public_key()) == spki_der(
        keys["ecdsa"].public_key()
    )


def test_certificate_file_is_0600_and_round_trips(
    tmp_path: Path, pki: Pki, root: Ca, inter: Ca, keys: dict
) -> None:
    leaf = pki.leaf(inter, keys["rsa"])
    path = tmp_path / "node.crt"
    save_certificate(path, leaf, inter.der)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_certificate_file(path) == leaf
    assert load_certificates(path.read_bytes()) == (leaf, inter.der)
    assert load_certificates(leaf) == (leaf,)
    with pytest.raises(CertificateError):
        load_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


# ---------------------------------------------------------------- openssl, independently

openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")


@openssl
def test_openssl_verifies_our_chain(tmp_path: Path, pki: Pki, root: Ca, inter: Ca, keys: dict) -> None:
    leaf = pki.leaf(inter, keys["rsa"])
    validate_chain(leaf, [inter.der], [root.der], NOW, OVERLAY)
    (tmp_path / "root.pem").write_bytes(certificate_to_pem(root.der))
    (tmp_path / "inter.pem").write_bytes(certificate_to_pem(inter.der))
    (tmp_path / "leaf.pem").write_bytes(certificate_to_pem(leaf))
    at = str(int(NOW.timestamp()))
    ok = subprocess.run(
        ["openssl", "verify", "-attime", at, "-CAfile", "root.pem", "-untrusted", "inter.pem", "leaf.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "leaf.pem: OK"
    # And openssl agrees that a month later the leaf has expired.
    late = str(int((NOW + timedelta(days=31)).timestamp()))
    expired = subprocess.run(
        ["openssl", "verify", "-attime", late, "-CAfile", "root.pem", "-untrusted", "inter.pem", "leaf.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert expired.returncode != 0 and "expired" in (expired.stdout + expired.stderr)


@openssl
def test_openssl_shows_san_uri_and_email(tmp_path: Path, keys: dict) -> None:
    cert = make_self_signed(
        keys["rsa"], "grace@overlay.example.org", OVERLAY, "sha256", node_id_count=2, now=NOW
    )
    node = parse_node_certificate(cert)
    (tmp_path / "self.pem").write_bytes(certificate_to_pem(cert))
    text = subprocess.run(
        ["openssl", "x509", "-in", "self.pem", "-noout", "-text"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    for node_id in node.node_ids:
        assert f"URI:reload://0110{node_id.hex()}@{OVERLAY}/" in text
    assert "email:grace@overlay.example.org" in text
    assert "X509v3 Subject Alternative Name: critical" in text
    assert "Subject: \n" in text or "Subject:\n" in text


@openssl
def test_sha1_signed_certificate_is_rejected(tmp_path: Path, keys: dict) -> None:
    """cryptography no longer signs with SHA-1, so openssl makes the certificate."""
    (tmp_path / "k.pem").write_bytes(private_key_to_pem(keys["rsa"]))
    node_id = self_signed_node_ids(keys["rsa"].public_key(), "sha1")[0]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-new",
            "-key",
            "k.pem",
            "-sha1",
            "-subj",
            "/",
            "-days",
            "1",
            "-out",
            "c.pem",
            "-addext",
            f"subjectAltName=critical,URI:{uri(node_id)},email:h@x.org",
        ],
        cwd=tmp_path,
        capture_output=True,
        check=True,
        timeout=30,
    )
    cert = load_certificate_file(tmp_path / "c.pem")
    assert parse_node_certificate(cert).node_ids == (node_id,)
    with pytest.raises(CertificateError, match="signed with sha1, which is not accepted"):
        check_self_signed(cert, "sha1")

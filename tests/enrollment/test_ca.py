"""OverlayCA: CA certificate, §11.3 node certificates from CSRs, the HTTPS server certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from reload_core.security.ca import (
    CsrError,
    OverlayCA,
    UserNameError,
    UserNameNotAllowed,
    check_user_name,
)
from reload_core.security.certificates import (
    CertificateError,
    build_csr,
    generate_private_key,
    spki_der,
    validate_chain,
)
from reload_core.uri import node_id_uri

OVERLAY = "ca.example"
NOW = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> OverlayCA:
    return OverlayCA.create(OVERLAY, generate_private_key("rsa"), NOW)


def test_ca_certificate_is_a_ca(ca: OverlayCA) -> None:
    cert = ca.certificate
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_before_utc <= NOW < cert.not_valid_after_utc


def test_node_certificate_from_csr_has_the_section_11_3_profile(ca: OverlayCA) -> None:
    key = generate_private_key("ecdsa")
    node_ids = (bytes.fromhex("0123456789abcdef0123456789abcdef"), bytes(range(1, 17)))
    cert = ca.issue_from_csr(build_csr(key, "alice@ca.example"), "alice@ca.example", node_ids, NOW)

    assert len(cert.subject) == 0
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert list(san.value) == [
        x509.UniformResourceIdentifier(node_id_uri(node_ids[0], OVERLAY)),
        x509.UniformResourceIdentifier(node_id_uri(node_ids[1], OVERLAY)),
        x509.RFC822Name("alice@ca.example"),
    ]
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier)[0] == (
        "reload://0110" + "0123456789abcdef0123456789abcdef" + "@ca.example/"
    )
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not (ku.value.key_cert_sign or ku.value.key_encipherment or ku.value.content_commitment)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert spki_der(cert.public_key()) == spki_der(key.public_key())  # type: ignore[arg-type]
    node = validate_chain(cert.public_bytes(Encoding.DER), [], [ca.certificate_der], NOW, OVERLAY)
    assert node.node_ids == node_ids and node.user_name == "alice@ca.example"


def test_csr_errors(ca: OverlayCA) -> None:
    key = generate_private_key("ed25519")
    node_ids = (b"\x42" * 16,)
    with pytest.raises(CsrError):
        ca.issue_from_csr(b"\x30\x03\x02\x01\x00", "alice@ca.example", node_ids, NOW)
    good = build_csr(key, "alice@ca.example")
    tampered = bytearray(good)
    tampered[-3] ^= 0x01  # inside the signature
    with pytest.raises(CsrError):
        ca.issue_from_csr(bytes(tampered), "alice@ca.example", node_ids, NOW)
    weak_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("alice@ca.example")]), critical=False)
        .sign(generate_private_key("rsa", rsa_bits=1024), hashes.SHA256())
    )
    with pytest.raises(CsrError):
        ca.issue_from_csr(weak_csr.public_bytes(Encoding.DER), "alice@ca.example", node_ids, NOW)
    with pytest.raises(UserNameNotAllowed):
        ca.issue_from_csr(build_csr(key, "mallory@ca.example"), "alice@ca.example", node_ids, NOW)


@pytest.mark.parametrize(
    "name",
    [
        "alice",
        "alice@",
        "@ca.example",
        "al ice@ca.example",
        "alice@ca..example",
        "alice\x00@ca.example",
        "al\x07ice@ca.example",
        "alïce@ca.example",
        ".alice@ca.example",
        "alice@-ca.example",
        "a" * 65 + "@x.org",
    ],
)
def test_illegal_user_names(name: str) -> None:
    with pytest.raises(UserNameError):
        check_user_name(name)


@pytest.mark.parametrize("name", ["alice@ca.example", "a.b+c_d-e@sub.example.org", "x@localhost"])
def test_legal_user_names(name: str) -> None:
    check_user_name(name)


def test_server_certificate_names_the_overlay_and_host(ca: OverlayCA) -> None:
    key = generate_private_key("ecdsa")
    cert = ca.issue_server_certificate(key.public_key(), ["127.0.0.1", "host.example", "ca.example"], NOW)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ca.example", "host.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    cert.verify_directly_issued_by(ca.certificate)


def test_save_and_load(ca: OverlayCA, tmp_path: Path) -> None:
    ca.save(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "ca-key.pem").st_mode) == 0o600
    loaded = OverlayCA.load(tmp_path, OVERLAY)
    assert loaded.certificate == ca.certificate
    assert spki_der(loaded.private_key.public_key()) == spki_der(ca.private_key.public_key())
    os.chmod(tmp_path / "ca-key.pem", 0o644)
    with pytest.raises(CertificateError, match="chmod 600"):
        OverlayCA.load(tmp_path, OVERLAY)

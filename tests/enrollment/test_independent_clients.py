"""The enrollment server against independent tools: ``openssl req`` makes the CSR,
``curl -F`` posts it, ``openssl verify`` checks the issued certificate against the CA."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from cryptography import x509

from reload_core.security.certificates import certificate_to_pem, parse_node_certificate
from tests.enrollment.support import OVERLAY, PASSWORDS, Overlay

pytestmark = pytest.mark.skipif(
    not (shutil.which("openssl") and shutil.which("curl")), reason="needs openssl and curl"
)


async def _run(*argv: str) -> tuple[int, bytes, bytes]:
    # Asynchronous, so the server in this event loop keeps answering while curl waits.
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


async def _openssl_csr(tmp: Path, user_name: str) -> Path:
    csr = tmp / "req.der"
    rc, _, err = await _run(
        "openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp / "key.pem"),
        "-subj", "/", "-addext", f"subjectAltName=email:{user_name}", "-outform", "DER", "-out", str(csr),
    )  # fmt: skip
    assert rc == 0, err.decode()
    return csr


async def _curl(
    ov: Overlay, tmp: Path, user: str, password: str, csr: Path, *extra: str
) -> tuple[str, bytes]:
    password_file = tmp / "password.txt"
    password_file.write_text(password, encoding="utf-8")
    out = tmp / "answer.bin"
    rc, status, err = await _run(
        "curl", "-sS", "--cacert", str(ov.ca_pem), "-H", "Accept: application/pkix-cert",
        "-F", f"username={user}", "-F", f"password=<{password_file}",
        "-F", f"csr=@{csr};type=application/pkcs10", *extra,
        "-o", str(out), "-w", "%{http_code} %{content_type}", ov.enroll_url,
    )  # fmt: skip
    assert rc == 0, err.decode()
    return status.decode(), out.read_bytes()


async def test_openssl_csr_curl_post_openssl_verify(overlay: Overlay, tmp_path: Path) -> None:
    csr = await _openssl_csr(tmp_path, f"alice@{OVERLAY}")
    status, body = await _curl(overlay, tmp_path, "alice", PASSWORDS["alice"], csr, "-F", "nodeids=2")
    assert status == "200 application/pkix-cert"
    node = parse_node_certificate(body)
    assert node.user_name == f"alice@{OVERLAY}" and len(node.node_ids) == 2

    cert_pem = tmp_path / "cert.pem"
    cert_pem.write_bytes(certificate_to_pem(body))
    rc, out, err = await _run(
        "openssl", "verify", "-x509_strict", "-CAfile", str(overlay.ca_pem), str(cert_pem)
    )
    assert rc == 0 and out.strip().endswith(b"OK"), (out + err).decode()
    # openssl's own reading of the certificate: empty subject, our SANs, the CSR's key.
    rc, text, _ = await _run(
        "openssl", "x509", "-in", str(cert_pem), "-noout", "-subject", "-ext", "subjectAltName"
    )
    assert text.startswith(b"subject=\n") and b"critical" in text
    assert b"email:alice@test.example" in text and text.count(b"URI:reload://") == 2
    rc, csr_key, _ = await _run("openssl", "req", "-inform", "DER", "-in", str(csr), "-noout", "-pubkey")
    rc, cert_key, _ = await _run("openssl", "x509", "-in", str(cert_pem), "-noout", "-pubkey")
    assert csr_key == cert_key
    assert x509.load_der_x509_certificate(body).subject == x509.Name([])


async def test_curl_refusals_are_tokens(overlay: Overlay, tmp_path: Path) -> None:
    csr = await _openssl_csr(tmp_path, f"alice@{OVERLAY}")
    assert await _curl(overlay, tmp_path, "alice", "wrong", csr) == (
        "403 text/plain",
        b"failed_authentication",
    )
    assert await _curl(overlay, tmp_path, "bob", PASSWORDS["bob"], csr) == (
        "403 text/plain",
        b"username_not_available",
    )
    assert await _curl(overlay, tmp_path, "alice", PASSWORDS["alice"], csr, "-F", "nodeids=99") == (
        "403 text/plain",
        b"Node-IDs_not_available",
    )
    junk = tmp_path / "junk.der"
    junk.write_bytes(b"-----BEGIN NONSENSE-----")
    assert await _curl(overlay, tmp_path, "alice", PASSWORDS["alice"], junk) == ("403 text/plain", b"bad_CSR")

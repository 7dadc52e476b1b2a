"""The HTTPS configuration + enrollment server and the enrollment client, end to end."""

from __future__ import annotations

import datetime as dt
import random
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from reload_core.enrollment.client import enroll
from reload_core.enrollment.errors import EnrollmentError, EnrollmentToken
from reload_core.enrollment.server import EnrollmentServer, server_ssl_context
from reload_core.security.certificates import (
    build_csr,
    generate_private_key,
    parse_node_certificate,
    spki_der,
    validate_chain,
)
from tests.enrollment.support import CONFIG_BYTES, OVERLAY, PASSWORDS, Overlay


def _csr(user_name: str) -> tuple[bytes, bytes]:
    key = generate_private_key("ecdsa")
    return build_csr(key, user_name), spki_der(key.public_key())


async def _enroll(ov: Overlay, user: str, nodeids: int = 1, user_name: str | None = None) -> bytes:
    csr, _ = _csr(user_name or f"{user}@{OVERLAY}")
    return await enroll(ov.enroll_url, user, PASSWORDS[user], csr, nodeids, ssl=ov.client_ssl)


async def test_configuration_is_served_with_its_media_type(overlay: Overlay) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{overlay.base_url}/.well-known/reload-config", ssl=overlay.client_ssl) as r,
    ):
        assert r.status == 200
        assert r.content_type == "application/p2p-overlay+xml"
        assert await r.read() == CONFIG_BYTES


async def test_enrollment_issues_a_certificate_that_chains_to_the_ca(overlay: Overlay) -> None:
    csr, spki = _csr(f"alice@{OVERLAY}")
    der = await enroll(overlay.enroll_url, "alice", PASSWORDS["alice"], csr, ssl=overlay.client_ssl)
    node = validate_chain(der, [], [overlay.ca_der], dt.datetime.now(dt.UTC), OVERLAY)
    assert node.user_name == f"alice@{OVERLAY}" and node.spki_der == spki
    cert = x509.load_der_x509_certificate(der)
    assert len(cert.subject) == 0
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # Exactly one reload URI per Node-ID and the one user name, nothing else (§11.3).
    assert len(list(san)) == 2
    assert san.get_values_for_type(x509.RFC822Name) == [f"alice@{OVERLAY}"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier)[0].endswith(f"@{OVERLAY}/")
    assert overlay.users.accounts()["alice"].node_ids == node.node_ids


async def test_bob_with_a_non_ascii_password(overlay: Overlay) -> None:
    der = await _enroll(overlay, "bob")
    assert parse_node_certificate(der).user_name == f"bob@{OVERLAY}"


async def test_re_enrollment_returns_the_same_node_ids(overlay: Overlay) -> None:
    first = parse_node_certificate(await _enroll(overlay, "alice"))
    again = parse_node_certificate(await _enroll(overlay, "alice"))
    assert again.node_ids == first.node_ids and again.der != first.der
    three = parse_node_certificate(await _enroll(overlay, "alice", nodeids=3))
    assert three.node_ids[0] == first.node_ids[0] and len(set(three.node_ids)) == 3
    assert parse_node_certificate(await _enroll(overlay, "alice", nodeids=3)).node_ids == three.node_ids


async def test_two_users_get_different_random_node_ids(overlay: Overlay) -> None:
    alice = parse_node_certificate(await _enroll(overlay, "alice", nodeids=2))
    bob = parse_node_certificate(await _enroll(overlay, "bob", nodeids=2))
    assert not set(alice.node_ids) & set(bob.node_ids)
    # Unpredictable: 128 random bits each, no visible structure such as a counter.
    ids = [int.from_bytes(n, "big") for n in alice.node_ids + bob.node_ids]
    assert len({i >> 64 for i in ids}) == 4 and all(abs(a - b) > 1 << 32 for a in ids for b in ids if a != b)


@pytest.mark.parametrize(
    ("user", "password", "user_name", "nodeids", "token"),
    [
        ("alice", "wrong", f"alice@{OVERLAY}", 1, EnrollmentToken.failed_authentication),
        ("mallory", "x", f"mallory@{OVERLAY}", 1, EnrollmentToken.failed_authentication),
        ("alice", PASSWORDS["alice"], f"bob@{OVERLAY}", 1, EnrollmentToken.username_not_available),
        ("alice", PASSWORDS["alice"], "alice@other.example", 1, EnrollmentToken.username_not_available),
        ("alice", PASSWORDS["alice"], f"alice@{OVERLAY}", 5, EnrollmentToken.Node_IDs_not_available),
    ],
)
async def test_refusals(
    overlay: Overlay, user: str, password: str, user_name: str, nodeids: int, token: EnrollmentToken
) -> None:
    csr, _ = _csr(user_name)
    with pytest.raises(EnrollmentError) as info:
        await enroll(overlay.enroll_url, user, password, csr, nodeids, ssl=overlay.client_ssl)
    assert info.value.token is token
    assert overlay.users.accounts()["alice"].node_ids == ()


async def test_malformed_csr_is_bad_csr(overlay: Overlay) -> None:
    with pytest.raises(EnrollmentError) as info:
        await enroll(
            overlay.enroll_url, "alice", PASSWORDS["alice"], b"\x30\x82garbage", ssl=overlay.client_ssl
        )
    assert info.value.token is EnrollmentToken.bad_CSR


async def _post(
    ov: Overlay, form: aiohttp.FormData | bytes, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    hdrs = {"Accept": "application/pkix-cert"} if headers is None else headers
    async with (
        aiohttp.ClientSession() as s,
        s.post(ov.enroll_url, data=form, headers=hdrs, ssl=ov.client_ssl) as r,
    ):
        return r.status, r.content_type, await r.read()


def _form(**fields: tuple[bytes | str, str | None]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, (value, ctype) in fields.items():
        filename = "data.bin" if isinstance(value, bytes) else None
        form.add_field(name, value, content_type=ctype or "text/plain", filename=filename)
    return form


async def test_http_level_answers(overlay: Overlay) -> None:
    csr, _ = _csr(f"alice@{OVERLAY}")
    good: dict[str, tuple[bytes | str, str | None]] = {
        "username": ("alice", None),
        "password": (PASSWORDS["alice"], None),
        "csr": (csr, "application/pkcs10"),
    }
    # The token is the whole text/plain body.
    assert await _post(overlay, _form(**good, nodeids=("many", None))) == (
        403,
        "text/plain",
        b"Node-IDs_not_available",
    )
    assert await _post(overlay, _form(**{**good, "csr": (csr, "application/octet-stream")})) == (
        403,
        "text/plain",
        b"bad_CSR",
    )
    no_password = _form(username=("alice", None), csr=(csr, "application/pkcs10"))
    assert (await _post(overlay, no_password))[2] == b"failed_authentication"
    # Accept must name application/pkix-cert.
    assert (await _post(overlay, _form(**good), {"Accept": "text/html"}))[0] == 406
    assert (await _post(overlay, _form(**good), {"Accept": "application/pkix-cert;q=0"}))[0] == 406
    # Not multipart, garbage multipart, oversized.
    assert (await _post(overlay, b"username=alice&password=x"))[0] == 415
    garbage = {"Accept": "application/pkix-cert", "Content-Type": "multipart/form-data; boundary=zz"}
    status, _, _ = await _post(overlay, b"--zz\r\nContent-Disposition: form-data\r\n\x00\xff\r\n--z", garbage)
    assert status == 400
    big = _form(**good, filler=(b"x" * 100_000, "application/octet-stream"))
    assert (await _post(overlay, big))[0] == 413
    # Duplicate parameters are ambiguous.
    dup = _form(**good)
    dup.add_field("username", "bob", content_type="text/plain")
    assert (await _post(overlay, dup))[0] == 400
    # And after all that the server still works.
    status, ctype, body = await _post(overlay, _form(**good, nodeids=("2", None)))
    assert (status, ctype) == (200, "application/pkix-cert")
    assert len(parse_node_certificate(body).node_ids) == 2


async def test_server_certificate_must_match_the_host(overlay: Overlay) -> None:
    csr, _ = _csr(f"alice@{OVERLAY}")
    with pytest.raises(EnrollmentError) as info:
        # The certificate names test.example and 127.0.0.1, not localhost (RFC 2818 matching).
        await enroll(
            f"https://localhost:{overlay.port}/enroll",
            "alice",
            PASSWORDS["alice"],
            csr,
            ssl=overlay.client_ssl,
        )
    assert info.value.token is None and "certificate" in str(info.value).lower()
    # §11.3: the certificate must match the overlay name, checked before the password goes out.
    der = await enroll(
        overlay.enroll_url, "alice", PASSWORDS["alice"], csr, ssl=overlay.client_ssl, server_name=OVERLAY
    )
    assert parse_node_certificate(der).user_name == f"alice@{OVERLAY}"
    with pytest.raises(EnrollmentError):
        await enroll(
            overlay.enroll_url,
            "alice",
            PASSWORDS["alice"],
            csr,
            ssl=overlay.client_ssl,
            server_name="other.example",
        )
    with pytest.raises(EnrollmentError) as info:
        await enroll(
            f"https://127.0.0.1:{overlay.port}/enroll", "alice", PASSWORDS["alice"], csr
        )  # system trust store
    assert info.value.token is None


async def test_client_refuses_plain_http() -> None:
    with pytest.raises(EnrollmentError, match="https"):
        await enroll("http://127.0.0.1:1/enroll", "alice", "pw", b"csr")


async def test_unknown_token_is_a_failure_for_an_unknown_reason(overlay: Overlay, tmp_path: Path) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=403, text="quota_exceeded", content_type="text/plain")

    app = web.Application()
    app.router.add_post("/enroll", refuse)
    server = EnrollmentServer(app)
    _, port = await server.start(
        "127.0.0.1",
        0,
        server_ssl_context(
            str(overlay.directory / "server-cert.pem"), str(overlay.directory / "server-key.pem")
        ),
    )
    try:
        with pytest.raises(EnrollmentError) as info:
            await enroll(f"https://127.0.0.1:{port}/enroll", "alice", "pw", b"csr", ssl=overlay.client_ssl)
        assert info.value.token is None and "quota_exceeded" in str(info.value)
    finally:
        await server.stop()


def test_issued_certificate_der_roundtrip_is_plain_der(overlay: Overlay) -> None:
    assert x509.load_der_x509_certificate(overlay.ca_der).public_bytes(Encoding.DER) == overlay.ca_der
    assert isinstance(overlay.client_ssl, ssl.SSLContext)


async def test_garbage_bodies_get_client_errors_not_crashes(overlay: Overlay) -> None:
    rng = random.Random(6940)
    boundary = "b0undary"
    headers = {"Accept": "application/pkix-cert", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="csr"\r\nContent-Type: application/pkcs10\r\n\r\n'
    bodies = [rng.randbytes(rng.randrange(0, 3000)) for _ in range(20)]
    bodies += [part.encode() + rng.randbytes(rng.randrange(0, 500)) for _ in range(20)]
    bodies += [part.encode() + rng.randbytes(200) + f"\r\n--{boundary}--\r\n".encode() for _ in range(10)]
    for body in bodies:
        status, _, _ = await _post(overlay, body, headers)
        assert 400 <= status < 500, status
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{overlay.base_url}/.well-known/reload-config", ssl=overlay.client_ssl) as r,
    ):
        assert r.status == 200

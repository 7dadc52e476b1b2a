"""Fetching the configuration over HTTPS (RFC 6940 §11.2) from a local aiohttp server."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reload_core.config import (
    MEDIA_TYPE,
    ConfigError,
    ConfigErrorReason,
    OverlayConfiguration,
    fetch_configuration,
    generate_document,
    sign_config,
    well_known_url,
)

OVERLAY = "overlay.example.org"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def write_server_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed TLS certificate for 127.0.0.1 (PEM files: certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass(frozen=True)
class Server:
    base: str
    cafile: str
    document: bytes


@pytest.fixture
async def config_server(tmp_path: Path, root_ca, signer) -> AsyncIterator[Server]:  # type: ignore[no-untyped-def]
    config = OverlayConfiguration(
        OVERLAY, sequence=3, root_certs=(root_ca.certificate,), configuration_signers=(signer.node_id_hex,)
    )
    document = sign_config(generate_document(config), signer.key, signer.certificate)
    never = asyncio.Event()

    async def well_known(request: web.Request) -> web.Response:
        assert request.headers["Accept"] == MEDIA_TYPE
        return web.Response(body=document, content_type=MEDIA_TYPE)

    async def wrong_type(request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="text/xml")

    async def tampered(request: web.Request) -> web.Response:
        body = document.replace(b"<max-message-size>5000<", b"<max-message-size>9000<")
        return web.Response(body=body, content_type=MEDIA_TYPE)

    async def stalled(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    app = web.Application()
    app.router.add_get("/.well-known/reload-config", well_known)
    app.router.add_get("/wrong-type", wrong_type)
    app.router.add_get("/tampered", tampered)
    app.router.add_get("/stalled", stalled)
    cert_path, key_path = write_server_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = runner.addresses[0][1]
        yield Server(f"https://127.0.0.1:{port}", str(cert_path), document)
    finally:
        never.set()
        await runner.cleanup()


def test_well_known_url() -> None:
    assert well_known_url("example.com") == "https://example.com/.well-known/reload-config"


async def test_fetch_accepts_a_signed_document(config_server: Server) -> None:
    accepted = await fetch_configuration(
        config_server.base + "/.well-known/reload-config", cafile=config_server.cafile, now=NOW
    )
    assert accepted.configuration.instance_name == OVERLAY
    assert accepted.configuration.sequence == 3
    assert accepted.data == config_server.document


async def test_fetch_with_overlay_name_selects_configuration(config_server: Server) -> None:
    with pytest.raises(ConfigError) as info:
        await fetch_configuration(
            config_server.base + "/.well-known/reload-config",
            overlay_name="elsewhere.example",
            cafile=config_server.cafile,
            now=NOW,
        )
    assert info.value.reason == ConfigErrorReason.OVERLAY


async def test_wrong_media_type_is_refused(config_server: Server) -> None:
    with pytest.raises(ConfigError, match="'text/xml', not 'application/p2p-overlay\\+xml'") as info:
        await fetch_configuration(config_server.base + "/wrong-type", cafile=config_server.cafile, now=NOW)
    assert info.value.reason == ConfigErrorReason.MEDIA_TYPE


async def test_http_error_is_refused(config_server: Server) -> None:
    with pytest.raises(ConfigError, match="answered 404") as info:
        await fetch_configuration(config_server.base + "/missing", cafile=config_server.cafile, now=NOW)
    assert info.value.reason == ConfigErrorReason.FETCH


async def test_tampered_document_is_refused(config_server: Server) -> None:
    with pytest.raises(ConfigError, match="does not verify") as info:
        await fetch_configuration(config_server.base + "/tampered", cafile=config_server.cafile, now=NOW)
    assert info.value.reason == ConfigErrorReason.SIGNATURE


async def test_untrusted_server_certificate_is_refused(config_server: Server) -> None:
    with pytest.raises(ConfigError, match="is not trusted: self-signed certificate") as info:
        await fetch_configuration(config_server.base + "/.well-known/reload-config", now=NOW)
    assert info.value.reason == ConfigErrorReason.FETCH


async def test_timeout(config_server: Server) -> None:
    with pytest.raises(ConfigError, match="timed out") as info:
        await fetch_configuration(config_server.base + "/stalled", cafile=config_server.cafile, timeout=0.3)
    assert info.value.reason == ConfigErrorReason.FETCH


async def test_only_https(config_server: Server) -> None:
    with pytest.raises(ConfigError, match="not an https: URL") as info:
        await fetch_configuration(config_server.base.replace("https", "http") + "/.well-known/reload-config")
    assert info.value.reason == ConfigErrorReason.FETCH


async def test_oversized_document_is_refused(config_server: Server) -> None:
    with pytest.raises(ConfigError, match="larger than 100 bytes") as info:
        await fetch_configuration(
            config_server.base + "/.well-known/reload-config", cafile=config_server.cafile, max_size=100
        )
    assert info.value.reason == ConfigErrorReason.FETCH

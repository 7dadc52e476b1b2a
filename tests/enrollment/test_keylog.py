"""``SSLKEYLOGFILE`` on the HTTPS side: the enrollment client, the configuration fetch and
the server append their TLS secrets to the file it names (NSS key log format)."""

from __future__ import annotations

import ssl
from collections import Counter
from pathlib import Path

import pytest

from reload_core.config.fetch import download_configuration
from reload_core.enrollment.client import enroll
from reload_core.security.certificates import build_csr, generate_private_key
from reload_core.security.keylog import keylog_file, log_keys
from tests.enrollment.support import CONFIG_BYTES, OVERLAY, PASSWORDS, running_overlay

TLS13_SECRETS = {
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
    "EXPORTER_SECRET",
}


def _labels(path: Path) -> Counter[str]:
    lines = path.read_text().splitlines()
    return Counter(line.split()[0] for line in lines if line and not line.startswith("#"))


def _plain_client_context(cafile: Path) -> ssl.SSLContext:
    """A context made without looking at the environment (unlike create_default_context)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(cafile))
    assert context.keylog_filename is None
    return context


async def test_client_fetch_and_server_log_their_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keys))
    served = tmp_path / "overlay"
    served.mkdir()
    async with running_overlay(served) as ov:
        csr = build_csr(generate_private_key("ecdsa"), f"alice@{OVERLAY}")
        client = _plain_client_context(ov.ca_pem)
        await enroll(ov.enroll_url, "alice", PASSWORDS["alice"], csr, ssl=client)
        assert client.keylog_filename == str(keys)
        labels = _labels(keys)
        # One connection; each secret written by both ends: client and server.
        assert set(labels) == TLS13_SECRETS and set(labels.values()) == {2}

        fetcher = _plain_client_context(ov.ca_pem)
        url = f"{ov.base_url}/.well-known/reload-config"
        assert await download_configuration(url, ssl=fetcher) == CONFIG_BYTES
        assert set(_labels(keys).values()) == {4}


async def test_nothing_is_logged_without_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    assert keylog_file() is None
    context = log_keys(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    assert context.keylog_filename is None
    served = tmp_path / "overlay"
    served.mkdir()
    async with running_overlay(served) as ov:
        csr = build_csr(generate_private_key("ecdsa"), f"bob@{OVERLAY}")
        await enroll(ov.enroll_url, "bob", PASSWORDS["bob"], csr, ssl=_plain_client_context(ov.ca_pem))
    assert list(tmp_path.glob("*.log")) == []


def test_an_unwritable_key_log_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "no" / "such" / "dir" / "keys.log"))
    context = log_keys(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    assert context.keylog_filename is None

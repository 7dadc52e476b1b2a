"""A real HTTPS configuration + enrollment server on 127.0.0.1 (OS-picked port) with an
overlay CA and two accounts: :func:`running_overlay`, stopped on exit also on failure."""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from reload_core.enrollment.server import EnrollmentServer, EnrollmentService, make_app, server_ssl_context
from reload_core.enrollment.users import UsersFile
from reload_core.security.ca import OverlayCA
from reload_core.security.certificates import (
    certificate_to_pem,
    generate_private_key,
    save_certificate,
    save_private_key,
)

OVERLAY = "test.example"
PASSWORDS = {"alice": "correct horse battery", "bob": "pässwörd ✓"}
CONFIG_BYTES = b'<?xml version="1.0" encoding="UTF-8"?>\n<overlay>served as is</overlay>\n'


@dataclass
class Overlay:
    directory: Path
    ca: OverlayCA
    users: UsersFile
    ca_pem: Path
    base_url: str
    enroll_url: str
    client_ssl: ssl.SSLContext
    port: int

    @property
    def ca_der(self) -> bytes:
        return self.ca.certificate_der


@contextlib.asynccontextmanager
async def running_overlay(tmp_path: Path) -> AsyncIterator[Overlay]:
    now = dt.datetime.now(dt.UTC)
    ca = OverlayCA.create(OVERLAY, generate_private_key("ecdsa"), now)
    ca.save(tmp_path)
    users = UsersFile.create(tmp_path / "users.json")
    for name, password in PASSWORDS.items():
        users.add_user(name, password, f"{name}@{OVERLAY}")

    server_key = generate_private_key("ecdsa")
    server_cert = ca.issue_server_certificate(server_key.public_key(), ["127.0.0.1"], now)
    save_private_key(tmp_path / "server-key.pem", server_key)
    save_certificate(tmp_path / "server-cert.pem", server_cert.public_bytes(Encoding.DER))
    service = EnrollmentService(ca, users, max_node_ids=4)
    app = make_app(service, lambda: CONFIG_BYTES, "/enroll")
    server = EnrollmentServer(app)
    host, port = await server.start(
        "127.0.0.1",
        0,
        server_ssl_context(str(tmp_path / "server-cert.pem"), str(tmp_path / "server-key.pem")),
    )
    try:
        ca_pem = tmp_path / "ca-cert.pem"
        assert ca_pem.read_bytes() == certificate_to_pem(ca.certificate_der)
        base = f"https://{host}:{port}"
        yield Overlay(
            tmp_path,
            ca,
            users,
            ca_pem,
            base,
            f"{base}/enroll",
            ssl.create_default_context(cafile=str(ca_pem)),
            port,
        )
    finally:
        await server.stop()

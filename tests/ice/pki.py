"""Overlay credentials for the ICE tests, made with the project's own overlay CA
(:class:`~reload_core.security.ca.OverlayCA`, §11.3): one CA per test session, node
certificates with one random Node-ID each, and files for peer processes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from reload_core.links.tls import OverlayTrust, TlsCredentials
from reload_core.security.ca import OverlayCA
from reload_core.security.certificates import PrivateKey, private_key_to_pem, save_certificate
from reload_core.security.signing import CertificateResolver, Signer

OVERLAY = "ice.test.example"


@dataclass(frozen=True)
class NodeCreds:
    node_id: bytes
    key: PrivateKey
    certificate: bytes

    @property
    def tls(self) -> TlsCredentials:
        return TlsCredentials(self.key, self.certificate)

    @property
    def signer(self) -> Signer:
        return Signer.create(self.key, self.certificate, self.node_id)

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """``name``-key.pem (0600) and ``name``-cert.pem in ``directory``."""
        key_path = directory / f"{name}-key.pem"
        cert_path = directory / f"{name}-cert.pem"
        key_path.write_bytes(private_key_to_pem(self.key))
        key_path.chmod(0o600)
        save_certificate(cert_path, self.certificate)
        return key_path, cert_path


class TestPki:
    __test__ = False

    def __init__(self, overlay: str = OVERLAY) -> None:
        self.overlay = overlay
        self.ca = OverlayCA.create(overlay, ec.generate_private_key(ec.SECP256R1()), datetime.now(UTC))

    @property
    def root(self) -> bytes:
        return self.ca.certificate_der

    def node(self, user: str = "alice@ice.test.example", node_id: bytes | None = None) -> NodeCreds:
        key = ec.generate_private_key(ec.SECP256R1())
        nid = node_id or secrets.token_bytes(16)
        cert = self.ca.issue_node_certificate(key.public_key(), user, [nid], datetime.now(UTC))
        return NodeCreds(nid, key, cert.public_bytes(Encoding.DER))

    def trust(self) -> OverlayTrust:
        return OverlayTrust(self.overlay, root_certs=(self.root,))

    def resolver(self) -> CertificateResolver:
        return CertificateResolver(self.overlay, roots=(self.root,))

    def write_root(self, directory: Path) -> Path:
        path = directory / "root-cert.pem"
        save_certificate(path, self.root)
        return path

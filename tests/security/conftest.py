"""Session fixtures: keys and CAs for the security tests (see :mod:`.pki`)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from reload_core.security.certificates import PrivateKey

from .pki import Ca, Pki


@pytest.fixture(scope="session")
def keys() -> dict[str, PrivateKey]:
    return {
        "root": rsa.generate_private_key(65537, 2048),
        "inter": ec.generate_private_key(ec.SECP256R1()),
        "other_root": ec.generate_private_key(ec.SECP256R1()),
        "rsa": rsa.generate_private_key(65537, 2048),
        "rsa2": rsa.generate_private_key(65537, 2048),
        "ecdsa": ec.generate_private_key(ec.SECP256R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


@pytest.fixture(scope="session")
def pki(keys: dict[str, PrivateKey]) -> Pki:
    return Pki(keys)


@pytest.fixture(scope="session")
def root(pki: Pki, keys: dict[str, PrivateKey]) -> Ca:
    return pki.ca("Test Overlay Root", keys["root"])


@pytest.fixture(scope="session")
def inter(pki: Pki, keys: dict[str, PrivateKey], root: Ca) -> Ca:
    return pki.ca("Test Overlay Intermediate", keys["inter"], parent=root, path_length=0)


@pytest.fixture(scope="session")
def other_root(pki: Pki, keys: dict[str, PrivateKey]) -> Ca:
    # Same subject as the real root: only the signature tells them apart.
    return pki.ca("Test Overlay Root", keys["other_root"])

"""Fixtures of the usage tests: the storage tests' CA, and this machine's interface
address for ICE (the ICE tests' fixture: aioice leaves loopback out of its candidates)."""

from __future__ import annotations

import pytest

from tests.ice.conftest import interface_address
from tests.storage.support import TestCA

from .sip_ring import EcdsaCA

__all__ = ["interface_address"]


@pytest.fixture(scope="session")
def ca() -> TestCA:
    """Ed25519 certificates: fast, for everything but AppAttach."""
    return TestCA()


@pytest.fixture(scope="session")
def ecdsa_ca() -> EcdsaCA:
    """ECDSA P-256 certificates, for nodes that AppAttach (DTLS 1.2)."""
    return EcdsaCA()

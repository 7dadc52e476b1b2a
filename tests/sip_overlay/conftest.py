"""Fixtures of the SIP-over-overlay tests: rings of storage peers over real TLS on
127.0.0.1 (tests/usages/sip_ring.py) whose phones are :class:`~app.sip.overlay.OverlaySip`
endpoints; AppAttach's ICE runs on this machine's interface address (aioice leaves
loopback out), so every test here takes the ``interface_address`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.ice.conftest import interface_address
from tests.usages.sip_ring import EcdsaCA

from .phones import Phones

__all__ = ["interface_address"]


@pytest.fixture(scope="session")
def ecdsa_ca() -> EcdsaCA:
    """ECDSA P-256 certificates: DTLS 1.2 (AppAttach) has no suite for Ed25519 keys."""
    return EcdsaCA()


@pytest.fixture
async def phones(ecdsa_ca: EcdsaCA, interface_address: str) -> AsyncIterator[Phones]:
    made = Phones(ecdsa_ca)
    try:
        yield made
    finally:
        await made.close()

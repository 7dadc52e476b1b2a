"""Fixtures for the node tests: one throwaway overlay CA per session, and rings of nodes
that are closed again whatever happens in the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .support import MemoryRing, OverlayPki


@pytest.fixture(scope="session")
def pki() -> OverlayPki:
    return OverlayPki()


@pytest.fixture
async def ring(pki: OverlayPki) -> AsyncIterator[MemoryRing]:
    r = MemoryRing(pki)
    try:
        yield r
    finally:
        await r.close()

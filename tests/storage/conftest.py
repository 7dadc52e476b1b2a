"""Fixtures of the storage tests: one CA and a few identities for the session."""

from __future__ import annotations

import pytest

from .support import Identity, TestCA


@pytest.fixture(scope="session")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture(scope="session")
def alice(ca: TestCA) -> Identity:
    return ca.identity("alice@storage.test.example")


@pytest.fixture(scope="session")
def bob(ca: TestCA) -> Identity:
    return ca.identity("bob@storage.test.example")

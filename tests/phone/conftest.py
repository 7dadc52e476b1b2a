"""Fixtures of the phone tests: a :class:`~tests.phone.phone_lab.PhoneLab` (an enrolled
overlay with its bootstrap peer running) and this machine's interface address, which
AppAttach's ICE needs (the lab's tests are skipped where there is none)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.ice.conftest import interface_address

from .phone_lab import PhoneLab

__all__ = ["interface_address"]


@pytest.fixture
async def lab(tmp_path: Path, interface_address: str) -> AsyncIterator[PhoneLab]:
    made = PhoneLab(tmp_path)
    try:
        await made.start_bootstrap()
        yield made
    finally:
        await made.close()

"""Fixtures of the enrollment tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.enrollment.support import Overlay, running_overlay


@pytest.fixture
async def overlay(tmp_path: Path) -> AsyncIterator[Overlay]:
    """A served overlay; the server stops when the test ends, whatever its outcome."""
    async with running_overlay(tmp_path) as ov:
        yield ov

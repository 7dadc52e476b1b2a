"""Fixtures of the multi-node tests: fresh overlays (their own CA, peer profiles, signed
configuration with a pre-bound bootstrap port) and harnesses whose processes are all
stopped at teardown, also when the test fails."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from app.bench.overlay_harness import OverlayHarness, ProvisionedOverlay, provision_overlay

MakeOverlay = Callable[..., ProvisionedOverlay]

PROJECT = Path(__file__).resolve().parents[2]


async def run_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``p2psip ARGS`` as a user runs it, killed if it outlives ``timeout``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        cwd=PROJECT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


MakeHarness = Callable[..., Awaitable[OverlayHarness]]


@pytest.fixture
def make_overlay(tmp_path: Path) -> Iterator[MakeOverlay]:
    made: list[ProvisionedOverlay] = []

    def make(peers: int, **kwargs: Any) -> ProvisionedOverlay:
        overlay = provision_overlay(tmp_path / f"overlay-{len(made)}", peers, **kwargs)
        made.append(overlay)
        return overlay

    yield make
    for overlay in made:
        overlay.close()


@pytest_asyncio.fixture
async def make_harness(make_overlay: MakeOverlay) -> AsyncIterator[MakeHarness]:
    """``await make_harness(peers, workers=..., **provisioning)``: a harness over a new overlay."""
    harnesses: list[OverlayHarness] = []

    async def make(peers: int, *, workers: int = 2, **kwargs: Any) -> OverlayHarness:
        harness = OverlayHarness(make_overlay(peers, **kwargs), workers=workers)
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        await harness.close()

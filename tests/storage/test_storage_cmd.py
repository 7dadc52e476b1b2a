"""``p2psip store|fetch|stat|find`` against a running overlay: three peers over TLS in a
harness worker process, the commands run as separate processes joining as clients."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.bench.overlay_harness import OverlayHarness, PeerProfile, provision_overlay
from reload_core.config.document import AccessControl, KindBlock, KindDescription, default_kinds
from reload_core.ids import resource_id
from reload_core.wire.codes import DataModel

SINGLE = 0xF0000C01
ARRAY = 0xF0000C02


def cli_kinds() -> tuple[KindBlock, ...]:
    return (
        *default_kinds(),
        KindBlock(KindDescription(DataModel.SINGLE, AccessControl.USER_MATCH, 1, 256, id=SINGLE)),
        KindBlock(KindDescription(DataModel.ARRAY, AccessControl.USER_MATCH, 8, 256, id=ARRAY)),
    )


@dataclass
class Overlay:
    harness: OverlayHarness
    carol: PeerProfile
    dave: PeerProfile
    name: str

    async def run(self, *args: str, profile: PeerProfile | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            *args,
            "--profile",
            str((profile or self.carol).directory),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def overlay(tmp_path: Path) -> AsyncIterator[Overlay]:
    provisioned = provision_overlay(tmp_path, 3, required_kinds=cli_kinds())
    carol = provisioned.add_profile("carol")
    dave = provisioned.add_profile("dave")
    async with OverlayHarness(provisioned, workers=1) as harness:
        await harness.start_workers()
        await harness.start_peers(range(3))
        await harness.wait_ring(60.0)
        yield Overlay(harness, carol, dave, provisioned.name)


async def test_store_fetch_stat_find_and_remove(overlay: Overlay) -> None:
    me = f"carol@{overlay.name}"
    code, out, err = await overlay.run("store", me, hex(SINGLE), "hello world", "--json")
    assert code == 0, err
    stored = json.loads(out)
    assert stored["generation"] == 1 and stored["resource_id"] == resource_id(me).hex()
    assert len(stored["replicas"]) == 2

    code, out, err = await overlay.run("store", me, hex(ARRAY), "first", "--append")
    assert code == 0, err
    assert "generation 1" in out

    code, out, err = await overlay.run("fetch", me, hex(SINGLE), "--json", profile=overlay.dave)
    assert code == 0, err
    (kind,) = json.loads(out)["kinds"]
    (value,) = kind["values"]
    assert value["value_text"] == "hello world" and value["exists"] is True
    assert value["signer"]["user_name"] == me and kind["discarded"] == 0

    code, out, err = await overlay.run("fetch", me, hex(ARRAY), "--index", "0-")
    assert code == 0, err
    assert '[0] "first"' in out and f"signed by {me}" in out

    code, out, err = await overlay.run("stat", me, hex(SINGLE), "--json")
    assert code == 0, err
    (meta,) = json.loads(out)["kinds"][0]["values"]
    assert meta["value_length"] == len("hello world") and meta["exists"] is True

    code, out, err = await overlay.run("find", me, hex(SINGLE), hex(ARRAY), "--json")
    assert code == 0, err
    assert {r["closest"] for r in json.loads(out)["results"]} == {resource_id(me).hex()}

    code, out, err = await overlay.run("store", me, hex(SINGLE), "--remove")
    assert code == 0, err
    code, out, err = await overlay.run("fetch", me, hex(SINGLE))
    assert code == 0, err
    assert "removed" in out


async def test_user_errors_are_one_line(overlay: Overlay) -> None:
    me = f"carol@{overlay.name}"
    # Dave may not write at Carol's resource (USER-MATCH, §7.3.1): the overlay refuses.
    code, _, err = await overlay.run("store", me, hex(SINGLE), "mine now", profile=overlay.dave)
    assert code == 1 and err.count("\n") == 1 and "Error_Forbidden" in err and "Traceback" not in err
    code, _, err = await overlay.run("fetch", me, "NO-SUCH-KIND")
    assert code == 1 and err.count("\n") == 1 and "no Kind" in err
    code, _, err = await overlay.run("store", me, hex(ARRAY), "x")
    assert code == 1 and err.count("\n") == 1 and "--append or --index" in err

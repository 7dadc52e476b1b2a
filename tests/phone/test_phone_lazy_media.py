"""An idle phone has no media stack loaded (issue 14): aiortc, PyAV and numpy (~40 MB of
the phone's RSS) come in with the first call's media session, not with the phone. Run
in a fresh interpreter, since the test process itself has imported them long before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ice.conftest import interface_address

__all__ = ["interface_address"]

pytestmark = pytest.mark.multinode

HEAVY = ("aiortc", "av", "numpy")

SCRIPT = """
import asyncio, json, sys
from pathlib import Path

from tests.phone.phone_lab import PhoneLab, connected_call

HEAVY = %r


def loaded():
    return sorted(m for m in HEAVY if m in sys.modules)


async def main(root):
    lab = PhoneLab(root)
    try:
        await lab.start_bootstrap()
        alice = await lab.open("alice", media=True, use_devices=False)
        bob = await lab.open("bob", media=True, use_devices=False)
        idle = loaded()
        call, _ = await connected_call(alice, bob)
        in_call = loaded()
        media = alice.media is not None and alice.media.audio_of(call) is not None
        await call.hangup()
        print(json.dumps({"idle": idle, "in_call": in_call, "media": media}))
    finally:
        await lab.close()


asyncio.run(main(Path(sys.argv[1])))
"""


def test_idle_phone_loads_no_media_stack(tmp_path: Path, interface_address: str) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT % (HEAVY,), str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["idle"] == [], f"an idle phone imported {result['idle']}"
    assert result["media"] is True
    assert result["in_call"] == sorted(HEAVY)

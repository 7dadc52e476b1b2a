"""The local overlay on a LAN (a network namespace): phones find each other by DNS-SD,
join or start alone, merge after a split (RFC 6940 §10.7.4.4), and hold names first come,
first served. Each phone is a process ``python -m app.phone.local_overlay run``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.cli.init_cmd import init_profile
from app.phone.local_config import LOCAL_OVERLAY_NAME
from tests.phone.lan import LAN_ADDRESS, Lan, Phone, unavailable_reason

pytestmark = pytest.mark.multinode

TAKEN = "p2psip: error: the name alice is already taken on this network by another device"


@pytest.fixture
async def lan() -> AsyncIterator[Lan]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    lan = Lan.create()
    try:
        yield lan
    finally:
        await lan.close()


def profile(tmp_path: Path, user: str, folder: str | None = None) -> tuple[Path, str]:
    """A local profile of ``user`` and its Node-ID in hex."""
    directory = tmp_path / (folder or user)
    _, descriptor = init_profile(user, directory)
    return directory, descriptor.node_ids[0].hex()


async def ready(phone: Phone) -> dict[str, str]:
    return await phone.expect("ready")


async def test_the_second_phone_finds_the_first_and_joins(lan: Lan, tmp_path: Path) -> None:
    alice_dir, alice_id = profile(tmp_path, "alice")
    bob_dir, bob_id = profile(tmp_path, "bob")

    alice = await lan.phone(alice_dir)
    await alice.expect("state", lambda f: f["state"] == "discovering")
    await alice.expect("state", lambda f: f["state"] == "starting-alone")
    first = await ready(alice)
    assert first["via"] == "-" and first["listen"].startswith(f"{LAN_ADDRESS}:")
    assert first["aor"] == f"sip:alice@{LOCAL_OVERLAY_NAME}"

    bob = await lan.phone(bob_dir)
    joining = await bob.expect("state", lambda f: f["state"] == "joining")
    assert joining["via"] == alice_id  # found by DNS-SD, not configured
    second = await ready(bob)
    assert second["via"] == alice_id
    # The ring has both.
    await bob.expect("neighbors", lambda f: f["successors"] == alice_id and f["predecessors"] == alice_id)
    await alice.expect("neighbors", lambda f: f["successors"] == bob_id and f["predecessors"] == bob_id)
    assert any(
        line.startswith("state") and "state=joined" in line and "registered=true" in line
        for line in bob.lines
    )

    # A RELOAD Ping to the other's Node-ID and a SIP Usage resolve, both ways.
    await bob.send(f"ping {alice_id}")
    pong = await bob.expect("ping")
    assert pong == {"node_id": alice_id, "ok": "true", "rtt_ms": pong["rtt_ms"]}
    await bob.send(f"resolve sip:alice@{LOCAL_OVERLAY_NAME}")
    assert await bob.expect("resolve") == {
        "aor": f"sip:alice@{LOCAL_OVERLAY_NAME}",
        "outcome": "registered",
        "node_ids": alice_id,
    }
    await alice.send(f"resolve sip:bob@{LOCAL_OVERLAY_NAME}")
    assert (await alice.expect("resolve"))["node_ids"] == bob_id

    # Start and stop again: a fresh node with the same identity joins once more.
    await bob.send("restart")
    await bob.expect("state", lambda f: f["state"] == "stopped")
    again = await bob.expect("ready")
    assert again["via"] == alice_id and again["node_id"] == bob_id
    await alice.send(f"resolve sip:bob@{LOCAL_OVERLAY_NAME}")
    assert (await alice.expect("resolve"))["node_ids"] == bob_id

    await bob.stop()
    assert bob.proc.returncode == 0
    await alice.expect("neighbors", lambda f: f["successors"] == "-")


async def test_a_name_taken_on_the_network_is_refused(lan: Lan, tmp_path: Path) -> None:
    alice_dir, alice_id = profile(tmp_path, "alice")
    bob_dir, _ = profile(tmp_path, "bob")
    other_dir, other_id = profile(tmp_path, "alice", "alice-on-another-device")
    assert other_id != alice_id  # another key, so another self-signed Node-ID (§11.3.1)

    alice = await lan.phone(alice_dir)
    await ready(alice)
    bob = await lan.phone(bob_dir)
    await ready(bob)

    other = await lan.phone(other_dir)
    offline = await other.expect("offline")
    assert offline["reason"] == TAKEN.removeprefix("p2psip: error: ")
    assert await other.wait() == 1
    assert TAKEN in (await other.stderr()).splitlines()
    assert not any(line.startswith("ready") for line in other.lines)

    # alice still has her name: her registration alone answers.
    await bob.send(f"resolve sip:alice@{LOCAL_OVERLAY_NAME}")
    assert (await bob.expect("resolve"))["node_ids"] == alice_id


async def test_two_overlays_started_at_once_merge(lan: Lan, tmp_path: Path) -> None:
    alice_dir, alice_id = profile(tmp_path, "alice")
    bob_dir, bob_id = profile(tmp_path, "bob")
    # --browse 0: neither looks for the other, so each starts an overlay of its own.
    alice = await lan.phone(alice_dir, "--browse", "0")
    bob = await lan.phone(bob_dir, "--browse", "0")
    assert (await ready(alice))["via"] == "-"
    assert (await ready(bob))["via"] == "-"

    # The one with the larger Node-ID probes through the other and the rings merge.
    larger, smaller = (alice, bob) if alice_id > bob_id else (bob, alice)
    larger_id, smaller_id = max(alice_id, bob_id), min(alice_id, bob_id)
    merged = await larger.expect("state", lambda f: f.get("merges") == "1")
    assert merged["state"] == "joined"
    await larger.expect("neighbors", lambda f: f["successors"] == smaller_id)
    await smaller.expect("neighbors", lambda f: f["successors"] == larger_id)
    assert not any("merges=1" in line for line in smaller.lines)

    await smaller.send(f"resolve sip:{'alice' if larger is alice else 'bob'}@{LOCAL_OVERLAY_NAME}")
    assert (await smaller.expect("resolve"))["node_ids"] == larger_id
    await larger.send(f"ping {smaller_id}")
    assert (await larger.expect("ping"))["ok"] == "true"


async def test_after_a_merge_the_smaller_node_id_keeps_the_name(lan: Lan, tmp_path: Path) -> None:
    first_dir, first_id = profile(tmp_path, "alice", "alice-1")
    second_dir, second_id = profile(tmp_path, "alice", "alice-2")
    one = await lan.phone(first_dir, "--browse", "0")
    two = await lan.phone(second_dir, "--browse", "0")
    await ready(one)
    await ready(two)
    keeper, loser = (one, two) if first_id < second_id else (two, one)
    offline = await loser.expect("offline", timeout=60)
    assert offline["reason"] == TAKEN.removeprefix("p2psip: error: ")
    assert await loser.wait() == 1
    assert TAKEN in (await loser.stderr()).splitlines()
    assert keeper.proc.returncode is None
    await keeper.send(f"resolve sip:alice@{LOCAL_OVERLAY_NAME}")
    assert (await keeper.expect("resolve"))["node_ids"] == min(first_id, second_id)


async def test_a_name_left_behind_by_a_vanished_device_is_free(lan: Lan, tmp_path: Path) -> None:
    alice_dir, alice_id = profile(tmp_path, "alice")
    bob_dir, bob_id = profile(tmp_path, "bob")
    new_dir, new_id = profile(tmp_path, "alice", "alice-with-a-new-key")
    alice = await lan.phone(alice_dir)
    await ready(alice)
    bob = await lan.phone(bob_dir)
    await ready(bob)
    await bob.send(f"resolve sip:alice@{LOCAL_OVERLAY_NAME}")
    assert (await bob.expect("resolve"))["node_ids"] == alice_id

    alice.proc.kill()  # gone without a word: no Leave, no goodbye, no removal
    await alice.wait()
    newcomer = await lan.phone(new_dir)
    # Her registration may outlive her, but nobody answers for its Node-ID: the name is free.
    assert (await ready(newcomer))["via"] == bob_id
    await bob.send(f"resolve sip:alice@{LOCAL_OVERLAY_NAME}")
    assert new_id in (await bob.expect("resolve"))["node_ids"].split(",")

"""The GUI on the local overlay (no set-up, DNS-SD discovery), end to end, as a user on
a LAN uses it: the first-run wizard, a buddy coming online, the echo test, a call from
another phone answered and hung up, the history, a message in and one out.

Multicast DNS must stay off the host's interfaces (issue 14), so everything runs in a
network namespace made here (:class:`tests.phone.lan.Lan`: a veth pair, multicast on):
the GUI in a process of its own (:mod:`tests.gui.local_gui`, the real app, Qt offscreen,
driven through its widgets; it prints what it sees as JSON lines) and bob's phone as a
``p2psip phone --json`` process. This test plays bob when the GUI says it waits for him,
and judges the values both report.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.cli.init_cmd import init_profile
from app.phone.local_config import LOCAL_OVERLAY_NAME
from tests.phone.lan import LAN_ADDRESS, Lan, unavailable_reason
from tests.phone.processes import Event, PhoneProcess, PhoneProcesses, python

pytestmark = pytest.mark.multinode

REPO = Path(__file__).resolve().parents[2]
WAIT = 60.0  # a step: generous, the machine is shared
ALICE = f"sip:alice@{LOCAL_OVERLAY_NAME}"
BOB = f"sip:bob@{LOCAL_OVERLAY_NAME}"


@pytest.fixture
async def lan() -> AsyncIterator[Lan]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    made = Lan.create()
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def processes(lan: Lan) -> AsyncIterator[PhoneProcesses]:
    """The processes in the LAN (the GUI and bob's phone): ended and reaped at the end,
    before the namespace goes (the ``lan`` fixture's finalizer runs after this one)."""
    group = PhoneProcesses(netns=lan.name)
    try:
        yield group
    finally:
        await group.close()


async def start_gui(group: PhoneProcesses, folder: Path) -> PhoneProcess:
    """``python -m tests.gui.local_gui`` in the LAN, with an empty profile folder."""
    assert group.netns is not None
    stderr_path = folder.parent / "gui.stderr.log"
    with stderr_path.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", group.netns,
            python(), "-m", "tests.gui.local_gui",
            "--profile", str(folder), "--name", "Alice", "--peer", "bob",
            cwd=str(REPO),
            env={**os.environ, "PYTHONUNBUFFERED": "1", "QT_QPA_PLATFORM": "offscreen"},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=err.fileno(),
            limit=1 << 20,
        )  # fmt: skip
    gui = PhoneProcess("gui", folder, proc, stderr_path)
    group.phones.append(gui)
    return gui


async def step(gui: PhoneProcess, name: str) -> Event:
    """The GUI's report of step ``name``; its failure report, if that came instead."""
    failed = gui.seen("Failed")
    assert not failed, (
        f"the GUI failed at {failed[0]['step']}: {failed[0]['error']}\n{failed[0].get('trace')}"
    )
    try:
        return await gui.expect(name, timeout=WAIT)
    except AssertionError:
        failed = gui.seen("Failed")
        if failed:
            raise AssertionError(
                f"the GUI failed at {failed[0]['step']}: {failed[0]['error']}\n{failed[0].get('trace')}"
            ) from None
        raise


async def test_the_gui_on_the_local_overlay(lan: Lan, processes: PhoneProcesses, tmp_path: Path) -> None:
    gui = await start_gui(processes, tmp_path / "alice")

    # The wizard: "Use the local network", the name typed; the phone starts alone on the
    # LAN (nobody answers its DNS-SD browse) and registers.
    registered = await step(gui, "Registered")
    assert registered["preview"] == f"You will be {ALICE}"
    assert registered["aor"] == ALICE and registered["overlay"] == f"Overlay {LOCAL_OVERLAY_NAME}"
    assert registered["connection"] == "Registered as a peer" and registered["wizard_gone"]

    # bob as a buddy: not on the LAN yet, so offline; then his phone starts, finds
    # alice's by DNS-SD, joins her overlay and registers, and the list shows him online.
    offline = await step(gui, "BuddyOffline")
    assert (offline["aor"], offline["name"], offline["presence"]) == (BOB, "Bob", "offline")
    bob_dir = tmp_path / "bob"
    init_profile("bob", bob_dir)
    bob = await processes.start(bob_dir, label="bob")
    await bob.registered()
    assert bob.info["aor"] == BOB
    online = await step(gui, "BuddyOnline")
    assert online["presence"] == "online" and online["shown"] == "Bob\nonline"
    # One ring of two on the namespace's LAN: bob is alice's successor and predecessor.
    assert online["address"].startswith(f"{LAN_ADDRESS}:"), online
    assert online["successors"] == online["predecessors"] == [bob.info["node_id"]], online

    # The echo test (built into every phone on the local overlay): answered, audio back.
    echo = await step(gui, "EchoConnected")
    assert echo["peer"] == f"sip:echo@{LOCAL_OVERLAY_NAME}" and echo["state"] == "connected"
    assert echo["first_audio"].endswith(" ms") and echo["status"].count(":") == 1  # the talk timer, 0:0N
    ended = await step(gui, "EchoEnded")
    assert (ended["cause"], ended["status"]) == ("hung up", "Ended: you hung up")

    # bob calls: the incoming call window, Answer, audio from bob, Hang up.
    await step(gui, "WaitingForCall")
    await bob.send("call alice")
    ringing = await bob.call_state("ringing", timeout=WAIT)
    answered = await step(gui, "CallAnswered")
    assert answered["title"] == "Call from Bob" and answered["peer"] == BOB
    assert answered["verified"] and answered["direction"] == "incoming"
    assert answered["first_audio"].endswith(" ms") and answered["incoming_window_gone"]
    await bob.call_state("connected", lambda e: e["call"] == ringing["call"], timeout=WAIT)
    hung_up = await step(gui, "CallEnded")
    assert (hung_up["cause"], hung_up["status"]) == ("hung up", "Ended: you hung up")
    await bob.call_state("ended", lambda e: e["call"] == ringing["call"], timeout=WAIT)

    # The history, newest first: bob's call (incoming, answered), then the echo test.
    history = await step(gui, "History")
    assert history["calls"][:2] == [
        {"direction": "incoming", "peer": BOB, "outcome": "you hung up", "answered": True},
        {
            "direction": "outgoing",
            "peer": f"sip:echo@{LOCAL_OVERLAY_NAME}",
            "outcome": "you hung up",
            "answered": True,
        },
    ]

    # A message from bob in the chat pane; the answer typed there reaches him, delivered.
    await step(gui, "WaitingForMessage")
    await bob.send("message alice hello from bob")
    shown = await step(gui, "MessageShown")
    assert (shown["peer"], shown["direction"], shown["text"]) == (BOB, "incoming", "hello from bob")
    assert shown["chat_tab"] and shown["unread"] == 0
    sent = await step(gui, "MessageSent")
    assert (sent["text"], sent["direction"], sent["state"]) == ("hi bob", "outgoing", "delivered")
    assert sent["states"][-1] == "delivered" and sent["tooltip"].endswith("delivered")
    got = await bob.expect("MessageReceived", timeout=WAIT)
    assert got["record"]["text"] == "hi bob" and got["record"]["peer_aor"] == ALICE

    # The app quits the normal way: signed out, every step seen.
    quit_ = await step(gui, "Quit")
    assert quit_["state"] == "closed"
    assert await gui.wait_exit(WAIT) == 0, gui.describe()
    start = gui.events[0]["time"]
    print("GUI steps (s):", {e["event"]: round(e["time"] - start, 2) for e in gui.events})
    print("first audio:", echo["first_audio"], answered["first_audio"])

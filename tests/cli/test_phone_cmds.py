"""``p2psip phone`` (stdin commands, JSON event lines, control socket) and the one-shot
phone commands ``p2psip call|message|buddies|history|forward``, as real processes on an
enrolled overlay (:func:`app.bench.overlay_harness.provision_overlay`: its own CA, one
``p2psip peer`` bootstrap process on 127.0.0.1); ``p2psip demo --json``; ``--version``
and bad arguments. Every process is stopped by its fixture, also when a test fails."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from app.bench.overlay_harness import OverlayHarness, provision_overlay

ROOT = Path(__file__).resolve().parents[2]
STEP = 60.0


def p2psip(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


async def ap2psip(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(p2psip, *args, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert " object at 0x" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


class PhoneProc:
    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.events.put_nowait(json.loads(line))  # every stdout line is JSON
        self.events.put_nowait(None)

    async def expect(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async with asyncio.timeout(STEP):
            while True:
                event = await self.events.get()
                assert event is not None, f"{self.name}'s phone stopped"
                if match(event):
                    return event

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()


def call_state(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == "CallStateChanged" and e["state"] == state


class Lab:
    def __init__(self, harness: OverlayHarness, profiles: dict[str, Path]) -> None:
        self.harness = harness
        self.profiles = profiles
        self.phones: list[PhoneProc] = []

    async def phone(self, name: str, *extra: str, media: bool = False) -> tuple[PhoneProc, dict[str, Any]]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "phone",
            "--json",
            *(() if media else ("--no-media",)),
            "--profile",
            str(self.profiles[name]),
            *extra,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        phone = PhoneProc(name, proc)
        self.phones.append(phone)
        ready = await phone.expect(lambda e: True)
        assert ready["event"] == "Ready", ready  # the first line
        return phone, ready

    async def close(self) -> None:
        for phone in self.phones:
            if phone.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    phone.proc.kill()
                await phone.proc.wait()
            phone.reader.cancel()


@pytest_asyncio.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    overlay = provision_overlay(tmp_path / "overlay", 1)
    profiles = {name: overlay.add_profile(name).directory for name in ("alice", "bob", "carol")}
    harness = OverlayHarness(overlay, workers=1)
    made = Lab(harness, profiles)
    try:
        await harness.start_process(0)
        yield made
    finally:
        await made.close()
        await harness.close()


@pytest.mark.multinode
async def test_phone_stdin_commands_between_two_processes(lab: Lab) -> None:
    alice, ready = await lab.phone("alice")
    assert ready["state"] == "registered"
    assert ready["aor"].startswith("sip:alice@")
    assert len(ready["node_id"]) == 32 and ready["gruu"].startswith(ready["aor"] + ";gr=")
    assert ready["sip_listen"] is None
    control = Path(ready["control"])
    assert control == lab.profiles["alice"] / "phone.sock"
    assert stat.S_IMODE(os.stat(control).st_mode) == 0o600
    bob, bob_ready = await lab.phone("bob", "--sip-listen", "udp:127.0.0.1:0")
    assert bob_ready["sip_listen"].startswith("udp:127.0.0.1:")

    await alice.send("call bob")
    dialing = await alice.expect(call_state("dialing"))
    ringing = await bob.expect(call_state("ringing"))
    assert ringing["peer"] == ready["aor"] and ringing["verified"] is True
    await bob.send(f"answer {ringing['call']}")
    connected = await alice.expect(call_state("connected"))
    assert connected["call"] == dialing["call"]
    await bob.expect(call_state("connected"))

    await alice.send("message bob 'hello there'")
    received = await bob.expect(lambda e: e["event"] == "MessageReceived")
    assert received["record"]["text"] == "hello there" and received["verified"] is True
    await alice.expect(lambda e: e["event"] == "MessageStateChanged" and e["record"]["state"] == "delivered")

    await alice.send("status")
    status = await alice.expect(lambda e: e["event"] == "Status")
    assert [c["state"] for c in status["calls"]] == ["connected"]
    await alice.send("frobnicate now")
    failed = await alice.expect(lambda e: e["event"] == "CommandFailed")
    assert failed["command"] == "frobnicate now" and "unknown command" in failed["reason"]
    await alice.send("answer 99")
    failed = await alice.expect(lambda e: e["event"] == "CommandFailed")
    assert failed["reason"] == "there is no call 99"

    await alice.send("hangup")
    await alice.expect(call_state("ended"))
    ended = await bob.expect(call_state("ended"))
    assert ended["cause"] == "remote hung up"
    for phone in (alice, bob):
        await phone.send("quit")
        await phone.expect(lambda e: e["event"] == "PhoneStateChanged" and e["state"] == "closed")
        assert await asyncio.wait_for(phone.proc.wait(), STEP) == 0
    assert not control.exists()


@pytest.mark.multinode
async def test_one_shot_commands_through_the_control_socket(lab: Lab) -> None:
    alice_dir = str(lab.profiles["alice"])
    bob, _ = await lab.phone("bob", "--auto-answer")
    alice, _ = await lab.phone("alice")

    result = await ap2psip("call", "bob", "--duration", "0.5", "--profile", alice_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bob answered" in result.stdout and "call with bob ended: you hung up" in result.stdout
    # The call ran in alice's running phone: its events say so.
    await alice.expect(call_state("connected"))
    await alice.expect(call_state("ended"))

    result = await ap2psip("message", "bob", "hi", "bob", "--profile", alice_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("delivered to sip:bob@")
    received = await bob.expect(lambda e: e["event"] == "MessageReceived")
    assert received["record"]["text"] == "hi bob"

    result = await ap2psip("buddies", "add", "bob", "Bob B", "--profile", alice_dir)
    assert result.returncode == 0 and "added sip:bob@" in result.stdout, result.stderr
    await alice.expect(lambda e: e["event"] == "PresenceChanged" and e["online"] is True)
    result = await ap2psip("buddies", "--json", "--profile", alice_dir)
    buddies = json.loads(result.stdout)
    assert [(b["display_name"], b["online"]) for b in buddies] == [("Bob B", True)]
    assert buddies[0]["last_seen"] is not None
    result = await ap2psip("buddies", "list", "--profile", alice_dir)
    assert "(Bob B): online, last seen" in result.stdout

    result = await ap2psip("history", "--json", "--limit", "5", "--profile", alice_dir)
    calls = json.loads(result.stdout)
    assert len(calls) == 1 and calls[0]["direction"] == "outgoing" and calls[0]["answered"] is not None

    result = await ap2psip("forward", "carol", "--on", "busy", "--profile", alice_dir)
    assert result.returncode == 0, result.stderr
    domain = buddies[0]["aor"].split("@")[1]
    assert result.stdout.strip() == f"forwarding busy to sip:carol@{domain}"
    changed = await alice.expect(lambda e: e["event"] == "SettingsChanged")
    assert changed["settings"]["forward_busy"].startswith("sip:carol@")
    result = await ap2psip("forward", "carol", "--on", "no-answer", "--after", "7", "--profile", alice_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("forwarding busy to sip:carol@")
    assert result.stdout.strip().endswith(f"forwarding no-answer to sip:carol@{domain} after 7 s")
    changed = await alice.expect(lambda e: e["event"] == "SettingsChanged")
    assert changed["settings"]["no_answer_seconds"] == 7
    result = await ap2psip("forward", "--off", "--profile", alice_dir)
    assert result.stdout.strip() == "no forwarding"

    result = await ap2psip("buddies", "remove", "bob", "--profile", alice_dir)
    assert result.returncode == 0 and "removed bob" in result.stdout


@pytest.mark.multinode
async def test_one_shot_commands_without_a_running_phone(lab: Lab) -> None:
    alice_dir = str(lab.profiles["alice"])
    # A phone of p2psip call's own has call audio on: bob's too, or he could not take it.
    bob, _ = await lab.phone("bob", "--auto-answer", media=True)

    result = await ap2psip("call", "bob", "--duration", "0.2", "--profile", alice_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bob answered" in result.stdout
    await bob.expect(call_state("connected"))
    ended = await bob.expect(call_state("ended"))
    assert ended["cause"] == "remote hung up"

    result = await ap2psip("message", "bob", "from a phone of its own", "--profile", alice_dir)
    assert result.returncode == 0, result.stderr
    received = await bob.expect(lambda e: e["event"] == "MessageReceived")
    assert received["record"]["text"] == "from a phone of its own"

    result = await ap2psip("history", "--profile", alice_dir)
    assert result.returncode == 0
    assert "-> bob" in result.stdout or "-> sip:bob@" in result.stdout

    result = await ap2psip("forward", "bob", "--profile", alice_dir)
    assert result.returncode == 0
    assert "forwarding always to sip:bob@" in result.stdout and "phone started later" in result.stdout

    # Nobody answers for carol: the call fails in words, exit 1.
    result = await ap2psip("call", "carol", "--profile", alice_dir)
    assert result.returncode == 1
    assert "call to carol not answered: " in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    result = await ap2psip("message", "carol", "anyone?", "--profile", alice_dir)
    assert result.returncode == 1 and result.stdout.startswith("not delivered to sip:carol@")


def test_version() -> None:
    result = p2psip("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("p2psip ") and result.stdout.split()[1][0].isdigit()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("call",), "the following arguments are required: TARGET"),
        (("call", "bob", "--duration", "soon"), "'soon' is not a number of seconds"),
        (("history", "--limit", "x"), "invalid int value"),
        (("buddies", "befriend"), "invalid choice"),
        (("forward", "--on", "sometimes"), "invalid choice"),
        (("forward", "bob", "--on", "no-answer", "--after", "soon"), "'soon' is not a whole number of seconds"),
        (("phone", "--max-calls", "two"), "invalid int value"),
    ],
)
def test_bad_arguments_are_one_line(args: tuple[str, ...], words: str) -> None:
    result = p2psip(*args)
    assert result.returncode == 2
    assert words in one_line_error(result)


def test_bad_profile_and_values_are_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing-here")
    for args in (
        ("history", "--profile", missing),
        ("phone", "--profile", missing),
        ("forward", "--profile", missing),
    ):
        result = p2psip(*args)
        assert result.returncode == 1, args
        assert one_line_error(result).startswith("p2psip: error: ")
    result = p2psip("forward", "bob", "--after", "5", "--profile", missing)
    assert result.returncode == 1
    assert one_line_error(result) == "p2psip: error: --after goes with --on no-answer and a TARGET"
    result = p2psip("phone", "--max-calls", "0", "--profile", missing)
    assert result.returncode == 1
    assert one_line_error(result) == "p2psip: error: --max-calls 0: at least 1 call"


@pytest.mark.multinode
def test_demo_reports_every_step() -> None:
    result = p2psip("demo", "--json", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(result.stdout)
    for check in ("registered", "call_answered", "first_audio", "message_delivered", "hung_up", "ok"):
        assert report[check] is True, report
    steps = list(report["steps"].values())
    assert steps == sorted(steps) and steps[-1] < 60_000


@pytest.mark.multinode
async def test_phone_signs_out_on_sigterm_and_speaks_words_without_json(lab: Lab) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "phone",
        "--no-media",
        "--profile",
        str(lab.profiles["carol"]),
        stdin=asyncio.subprocess.DEVNULL,  # no stdin at all: it runs on until a signal
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        ready = (await asyncio.wait_for(proc.stdout.readline(), STEP)).decode()
        assert "ready: sip:carol@" in ready and "(registered)" in ready
        assert (lab.profiles["carol"] / "phone.sock").exists()
        proc.terminate()
        rest = (await asyncio.wait_for(proc.stdout.read(), STEP)).decode()
        assert "phone: closed (signed out)" in rest
        assert await asyncio.wait_for(proc.wait(), STEP) == 0
        assert not (lab.profiles["carol"] / "phone.sock").exists()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

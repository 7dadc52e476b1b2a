"""A LAN in a network namespace for the local-overlay tests, and phones running in it.

Multicast DNS must never leave on the host's interfaces, so every process that browses or
advertises runs inside a namespace of its own (NOTES.md): a veth pair with both ends up,
an address on ``v0`` and the multicast route through it. The test process itself never
starts zeroconf.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
LAN_ADDRESS = "10.79.0.1"
_counter = itertools.count()


def unavailable_reason() -> str | None:
    """Why a namespace cannot be made here, or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "ip (iproute2) is not installed"
    probe = f"p2l-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns is unavailable: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _run(*argv: str) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


@dataclass
class Lan:
    """One namespace holding a veth pair: the LAN the phones share."""

    name: str
    phones: list[Phone] = field(default_factory=list)

    @classmethod
    def create(cls) -> Lan:
        lan = cls(f"p2l-{os.getpid()}-{next(_counter)}")
        _run("ip", "netns", "add", lan.name)
        try:
            for argv in (
                ("ip", "link", "set", "lo", "up"),
                ("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"),
                ("ip", "link", "set", "v0", "up"),
                ("ip", "link", "set", "v1", "up"),
                ("ip", "addr", "add", f"{LAN_ADDRESS}/24", "dev", "v0"),
                ("ip", "route", "add", "224.0.0.0/4", "dev", "v0"),
            ):
                _run("ip", "netns", "exec", lan.name, *argv)
        except BaseException:
            subprocess.run(["ip", "netns", "del", lan.name], capture_output=True)
            raise
        return lan

    async def phone(self, profile: Path, *args: str) -> Phone:
        """``python -m app.phone.local_overlay run --profile PROFILE ARGS`` in the LAN."""
        python = str(PYTHON) if PYTHON.exists() else sys.executable
        proc = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            self.name,
            python,
            "-m",
            "app.phone.local_overlay",
            "run",
            "--profile",
            str(profile),
            *args,
            cwd=str(REPO),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        phone = Phone(proc, profile.name)
        self.phones.append(phone)
        return phone

    async def close(self) -> None:
        for phone in self.phones:
            await phone.stop()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


Fields = dict[str, str]


def parse_line(line: str) -> tuple[str, Fields]:
    """``event key=value ...``; an ``offline`` line's reason is the rest of the line."""
    event, _, rest = line.partition(" ")
    fields: Fields = {}
    if event == "offline":
        head, _, reason = rest.partition("reason=")
        fields["reason"] = reason
        rest = head
    for word in rest.split():
        key, _, value = word.partition("=")
        fields[key] = value
    return event, fields


class Phone:
    """One phone process: its status lines, read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process, label: str) -> None:
        self.proc = proc
        self.label = label
        self.lines: list[str] = []
        self._used: set[int] = set()

    async def expect(
        self, event: str, where: Callable[[Fields], bool] = lambda f: True, timeout: float = 30.0
    ) -> Fields:
        """The first line of ``event`` whose fields satisfy ``where`` and that no earlier
        call returned, read so far or still to come."""

        async def read() -> Fields:
            assert self.proc.stdout is not None
            scanned = 0
            while True:
                for index in range(scanned, len(self.lines)):
                    name, fields = parse_line(self.lines[index])
                    if index not in self._used and name == event and where(fields):
                        self._used.add(index)
                        return fields
                scanned = len(self.lines)
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(
                        f"{self.label} exited ({self.proc.returncode}) before {event}; "
                        f"lines {self.lines}; stderr {await self.stderr()}"
                    )
                self.lines.append(raw.decode().rstrip("\n"))

        try:
            return await asyncio.wait_for(read(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.label}: no {event} line in {timeout} s; lines {self.lines}"
            ) from None

    async def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((command + "\n").encode())
        await self.proc.stdin.drain()

    async def wait(self, timeout: float = 30.0) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stderr(self) -> str:
        if self.proc.stderr is None or self.proc.returncode is None:
            return ""
        return (await self.proc.stderr.read()).decode(errors="replace")[-4000:]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()

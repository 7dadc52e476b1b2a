"""Child ``p2psip`` processes driven by the demo and the benchmarks: a peer that is ready
once it says so, and a phone (``p2psip phone --json``) whose event lines are read as they
come and whose stdin takes commands (the contract in app/cli/phone_cmd.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.cli import CliError

STEP_TIMEOUT = 30.0


def p2psip_argv() -> list[str]:
    """How to run this program's commands in a child process: the frozen program itself
    (PyInstaller bundle), else this interpreter with ``-m app``."""
    return [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "app"]


class PeerProcess:
    """A ``p2psip peer`` process; ready once it prints its ``ready`` status line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, profile: Path) -> PeerProcess:
        proc = await asyncio.create_subprocess_exec(
            *p2psip_argv(),
            "peer",
            "--profile",
            str(profile),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        peer = cls(proc)
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                while not (line := await proc.stdout.readline()).startswith(b"ready"):
                    if not line:
                        raise CliError(f"the peer of {profile.name} stopped before it was ready")
        except TimeoutError:
            await peer.stop()
            raise CliError(f"the peer of {profile.name} was not ready in {STEP_TIMEOUT:.0f} s") from None
        except BaseException:  # its own failure, or Ctrl-C while it starts: it must not outlive us
            await peer.stop()
            raise
        return peer

    async def stop(self) -> None:
        """SIGTERM (it leaves the overlay, §10.9), then SIGKILL."""
        for action in (self.proc.terminate, self.proc.kill):
            if self.proc.returncode is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                action()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10)


class PhoneProcess:
    """A ``p2psip phone --json`` process: its event lines, and commands to its stdin."""

    def __init__(
        self, name: str, proc: asyncio.subprocess.Process, step_timeout: float = STEP_TIMEOUT
    ) -> None:
        self.name = name
        self.proc = proc
        self.step_timeout = step_timeout
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(
        cls, name: str, profile: Path, *extra: str, step_timeout: float = STEP_TIMEOUT
    ) -> PhoneProcess:
        argv = [*p2psip_argv(), "phone", "--json", "--profile", str(profile), *extra]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return cls(name, proc, step_timeout)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    self.events.put_nowait(event)
        self.events.put_nowait(None)

    async def expect(self, match: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The next event that ``match``es; CliError when the phone stops or fails first."""
        try:
            async with asyncio.timeout(self.step_timeout):
                while True:
                    event = await self.events.get()
                    if event is None:
                        raise CliError(f"{self.name}'s phone stopped before: {what}")
                    self.seen.append(event)
                    if event.get("event") == "CommandFailed":
                        raise CliError(f"{self.name}: {event['command']}: {event['reason']}")
                    if match(event):
                        return event
        except TimeoutError:
            raise CliError(f"{self.name}: no {what} within {self.step_timeout:.0f} s") from None

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await self.proc.stdin.drain()

    async def stop(self) -> None:
        """``quit`` (it signs out), then SIGTERM, then SIGKILL."""
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.send("quit")
            for action in (None, self.proc.terminate, self.proc.kill):
                if action is not None:
                    with contextlib.suppress(ProcessLookupError):
                        action()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), 10)
                    break
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def proc_status_mb(pid: int, field: str) -> float:
    """A ``/proc/PID/status`` memory figure (``VmRSS``, ``VmHWM``...) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


__all__ = ["STEP_TIMEOUT", "PeerProcess", "PhoneProcess", "p2psip_argv", "proc_status_mb"]

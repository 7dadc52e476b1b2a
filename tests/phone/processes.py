"""Phones as separate processes: ``p2psip phone --json --profile DIR ...`` (the Phone CLI
contract in the team rules), optionally inside a network namespace (``ip netns exec``).

:class:`PhoneProcess` reads the phone's JSON lines (``{"event": ..., "time": ..., ...}``)
as they come, into a list every waiter scans; :meth:`PhoneProcess.expect` returns the
first event of a kind matching a predicate that no earlier ``expect`` returned, seen
already or still to come, within a timeout (never a sleep). Commands go to its stdin.
:class:`PhoneProcesses` owns every process a test starts and kills and reaps them all in
its :meth:`~PhoneProcesses.close` (fixture finalizers call it, also on failure). The
phone's standard error goes to a file beside its profile, quoted when an expectation
fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
WAIT = 30.0

Event = dict[str, Any]


def python() -> str:
    return str(PYTHON) if PYTHON.exists() else sys.executable


def p2psip_argv(*args: str, netns: str | None = None) -> list[str]:
    """``python -m app ARGS`` (the ``p2psip`` command of this checkout), in ``netns`` if given."""
    argv = [python(), "-m", "app", *args]
    return ["ip", "netns", "exec", netns, *argv] if netns is not None else argv


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("LISTEN_FDS", None)
    env.pop("LISTEN_PID", None)
    return env


async def p2psip(*args: str, netns: str | None = None, timeout: float = WAIT) -> tuple[int, str, str]:
    """Run a one-shot ``p2psip`` command; (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *p2psip_argv(*args, netns=netns),
        cwd=str(REPO),
        env=_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise AssertionError(f"p2psip {' '.join(args)} did not finish in {timeout} s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


class PhoneProcess:
    """One ``p2psip phone --json`` process and everything it printed."""

    def __init__(
        self, label: str, profile: Path, proc: asyncio.subprocess.Process, stderr_path: Path
    ) -> None:
        self.label = label
        self.profile = profile
        self.proc = proc
        self.stderr_path = stderr_path
        self.events: list[Event] = []
        self.info: Event = {}
        """The Ready event, once :meth:`ready` saw it."""
        self._used: set[int] = set()
        self._changed = asyncio.Event()
        self._eof = False
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(
        cls, profile: Path, *args: str, label: str | None = None, netns: str | None = None
    ) -> PhoneProcess:
        name = label or profile.name
        stderr_path = profile.parent / f"{profile.name}.{name}.stderr.log"
        with stderr_path.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                *p2psip_argv("phone", "--json", "--profile", str(profile), *args, netns=netns),
                cwd=str(REPO),
                env=_env(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err.fileno(),
                limit=1 << 20,
            )
        return cls(name, profile, proc, stderr_path)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            async for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    event = {"event": "_text", "line": line}
                if not isinstance(event, dict) or "event" not in event:
                    event = {"event": "_text", "line": line}
                self.events.append(event)
                self._changed.set()
        finally:
            self._eof = True
            self._changed.set()

    # ------------------------------------------------------------ events

    def seen(self, kind: str, where: Callable[[Event], bool] = lambda e: True) -> list[Event]:
        """Every event of ``kind`` matching ``where`` so far (used or not)."""
        return [e for e in self.events if e["event"] == kind and where(e)]

    def mark(self) -> int:
        """Where the events stand now: ``expect(..., after=mark)`` looks only at later ones."""
        return len(self.events)

    async def expect(
        self,
        kind: str,
        where: Callable[[Event], bool] = lambda e: True,
        timeout: float = WAIT,
        *,
        after: int = 0,
    ) -> Event:
        """The first event of ``kind`` matching ``where`` that no earlier call returned
        (of those from index ``after`` on)."""
        scanned = after
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            for index in range(scanned, len(self.events)):
                event = self.events[index]
                if index not in self._used and event["event"] == kind and where(event):
                    self._used.add(index)
                    return event
            scanned = len(self.events)
            if self._eof:
                await self._reap_quietly()
                raise AssertionError(
                    f"{self.label} exited ({self.proc.returncode}) before {kind}; {self.describe()}"
                )
            self._changed.clear()
            remaining = end - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.label}: no matching {kind} in {timeout} s; {self.describe()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def call_state(
        self, state: str, where: Callable[[Event], bool] = lambda e: True, timeout: float = WAIT
    ) -> Event:
        """The next CallStateChanged to ``state`` matching ``where``."""
        return await self.expect("CallStateChanged", lambda e: e["state"] == state and where(e), timeout)

    async def ready(self, timeout: float = 60.0) -> Event:
        self.info = await self.expect("Ready", timeout=timeout)
        return self.info

    async def registered(self, timeout: float = 60.0) -> Event:
        """Ready, and registered on the overlay (the Ready line's state or a later change)."""
        info = self.info or await self.ready(timeout)
        if info.get("state") == "registered":
            return info
        return await self.expect("PhoneStateChanged", lambda e: e["state"] == "registered", timeout)

    def describe(self, last: int = 25) -> str:
        lines = [json.dumps(e, ensure_ascii=False)[:400] for e in self.events[-last:]]
        return "last events:\n  " + "\n  ".join(lines) + f"\nstderr:\n{self.stderr_text()[-3000:]}"

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------ commands

    async def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((command + "\n").encode())
        await self.proc.stdin.drain()

    @property
    def running(self) -> bool:
        return self.proc.returncode is None and not self._eof

    async def wait_exit(self, timeout: float = WAIT) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._reader, timeout)
        return code

    async def quit(self, timeout: float = WAIT) -> int:
        """``quit`` on stdin (a clean sign-out); the exit status."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await self.send("quit")
        return await self.wait_exit(timeout)

    async def kill(self) -> int:
        """SIGKILL: gone without a word (no sign-out, no Leave)."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        return await self.wait_exit()

    async def _reap_quietly(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 5)

    async def close(self) -> None:
        """Ends the process whatever its state (SIGTERM, then SIGKILL), reaps it."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


class PhoneProcesses:
    """Every phone process of a test (or module); :meth:`close` ends them all."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.phones: list[PhoneProcess] = []

    async def start(self, profile: Path, *args: str, label: str | None = None) -> PhoneProcess:
        phone = await PhoneProcess.start(profile, *args, label=label, netns=self.netns)
        self.phones.append(phone)
        return phone

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.phones), return_exceptions=True)


async def history(profile: Path, *extra: str) -> list[Event]:
    """``p2psip history --json --profile DIR``: the call history as the user reads it
    (through the control socket when a phone runs for the profile), newest first."""
    code, out, err = await p2psip("history", "--json", "--profile", str(profile), *extra)
    assert code == 0, f"p2psip history: {code} {err}"
    text = out.strip()
    parsed: Any = json.loads(text) if text.startswith(("[", "{")) and "\n" not in text else None
    if parsed is None:
        parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(parsed, dict):
        parsed = parsed["calls"]
    assert isinstance(parsed, list)
    return parsed


class EnrolledOverlay:
    """An operator's overlay (a CA, a signed configuration naming one bootstrap peer, ECDSA
    node certificates) whose bootstrap peer runs as a ``p2psip peer`` process, and profiles
    for phones. The bootstrap's listening socket is bound here (port 0) and handed to the
    peer by socket activation (``LISTEN_FDS``), so no other process can take the port."""

    def __init__(self, root: Path, name: str = "phones.p2psip.test") -> None:
        from app.bench.overlay_harness import provision_overlay
        from reload_core.config import DomainRestriction, default_kinds

        self.root = root
        self.name = name
        self.overlay = provision_overlay(
            root / "overlay",
            1,
            name=name,
            key_kind="ecdsa",
            required_kinds=default_kinds(domain_restriction=DomainRestriction(enable=False)),
        )
        self.bootstrap: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._drain: asyncio.Task[None] | None = None
        self._bootstrap_log = root / "bootstrap.stderr.log"

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.name}"

    def profile(self, user: str) -> Path:
        return self.overlay.add_profile(user).directory

    async def start(self, timeout: float = WAIT) -> None:
        sock = self.overlay.take_socket(0)
        assert sock is not None
        fd = sock.fileno()
        # exec keeps the pid: the peer sees itself as LISTEN_PID, the socket at fd 3.
        launcher = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_FDS'] = '1'; "
            "os.environ['LISTEN_PID'] = str(os.getpid()); "
            "os.execv(sys.executable, [sys.executable, '-m', 'app', 'peer', '--profile', sys.argv[2]])"
        )
        try:
            with self._bootstrap_log.open("ab") as err:
                self.bootstrap = await asyncio.create_subprocess_exec(
                    python(),
                    "-c",
                    launcher,
                    str(fd),
                    str(self.overlay.peers[0].directory),
                    cwd=str(REPO),
                    env=_env(),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=err.fileno(),
                    pass_fds=[fd],
                )
        finally:
            sock.close()
        assert self.bootstrap.stdout is not None
        stdout = self.bootstrap.stdout

        async def ready() -> None:
            while not (line := await stdout.readline()).startswith(b"ready "):
                assert line, f"the bootstrap peer exited: {self._bootstrap_log.read_text(errors='replace')}"
                self.lines.append(line.decode(errors="replace").strip())

        await asyncio.wait_for(ready(), timeout)
        self._drain = asyncio.get_running_loop().create_task(self._read(self.bootstrap.stdout))

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        """Its status lines, read so that a full pipe never blocks it."""
        async for raw in stdout:
            self.lines.append(raw.decode(errors="replace").strip())

    async def close(self) -> None:
        proc = self.bootstrap
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._drain
        self.overlay.close()


__all__ = ["WAIT", "EnrolledOverlay", "PhoneProcess", "PhoneProcesses", "history", "p2psip", "p2psip_argv"]

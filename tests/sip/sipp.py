"""Running sipp (Debian sip-tester, 3.6.1) as an independent SIP peer in tests.

sipp runs in the foreground as an asyncio subprocess, with every port given (its SIP
port ``-p``, control port ``-cp``, media port ``-mp``) so that several runs never meet on
its defaults (5060, 8888, 6000); ``-timeout`` bounds it; its error log (``-trace_err``,
unexpected messages) and statistics (``-trace_stat``) go to files in the test's
directory. A process still running when the test ends is killed by the fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SIPP = shutil.which("sipp")
requires_sipp = pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian package sip-tester)")
SCENARIOS = Path(__file__).parent / "scenarios"


def free_port(kind: int = socket.SOCK_DGRAM, *, even: bool = False) -> int:
    """A port the OS says is free now. Racy by nature: the socket is closed before sipp
    binds the port, and another process could take it in between; on a test machine that
    is rare, and sipp then fails loudly (exit status 255/254) rather than silently."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not even or (port % 2 == 0 and port < 65534):
            return port


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    error_log: str  # -trace_err: unexpected messages ("" when there were none)
    stats: str  # -trace_stat CSV

    def stat(self, name: str) -> int:
        """A cumulative counter of the last -trace_stat row (e.g. SuccessfulCall(C))."""
        lines = [line for line in self.stats.splitlines() if line.strip()]
        header, last = lines[0].split(";"), lines[-1].split(";")
        return int(last[header.index(name)])


class Sipp:
    """Starts sipp processes; the fixture kills whatever is left."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[asyncio.subprocess.Process] = []
        self._runs = 0

    async def start(self, *args: str, timeout_s: int = 60) -> tuple[asyncio.subprocess.Process, Path]:
        assert SIPP is not None
        self._runs += 1
        run = self.workdir / f"sipp{self._runs}"
        run.mkdir()
        argv = [
            *args,
            "-i", "127.0.0.1",
            "-mi", "127.0.0.1",
            "-cp", str(free_port(socket.SOCK_DGRAM)),
            "-mp", str(free_port(socket.SOCK_DGRAM, even=True)),
            "-nostdin",
            "-timeout", f"{timeout_s}s",
            "-timeout_error",
            "-trace_err", "-error_file", str(run / "errors.log"),
            "-trace_stat", "-stf", str(run / "stats.csv"),
            "-trace_msg", "-message_file", str(run / "messages.log"),
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            SIPP, *argv, cwd=run, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        self.procs.append(proc)
        return proc, run

    async def finish(self, proc: asyncio.subprocess.Process, run: Path, timeout: float = 90) -> SippResult:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)

        def read(name: str) -> str:
            return (run / name).read_text(errors="replace") if (run / name).exists() else ""

        return SippResult(
            proc.returncode if proc.returncode is not None else -1,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
            read("errors.log"),
            read("stats.csv"),
        )

    async def run(self, *args: str, timeout_s: int = 60) -> SippResult:
        proc, run = await self.start(*args, timeout_s=timeout_s)
        return await self.finish(proc, run, timeout=timeout_s + 30)

    async def close(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


@contextlib.asynccontextmanager
async def sipp_runner(workdir: Path) -> AsyncIterator[Sipp]:
    """A :class:`Sipp` whose leftover processes are killed on the way out (also on failure)."""
    runner = Sipp(workdir)
    try:
        yield runner
    finally:
        await runner.close()


def tcp_listening(port: int) -> bool:
    """Whether something listens on TCP ``port`` (Linux /proc/net/tcp, state 0A = LISTEN):
    asked without connecting, so sipp sees no stray connection."""
    with contextlib.suppress(OSError):
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                        return True
    return False


def udp_bound(port: int) -> bool:
    """Whether UDP ``port`` on 127.0.0.1 is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


async def wait_bound(port: int, kind: str, timeout: float = 10) -> None:
    """Until sipp has bound its port. A process's bind gives no event to wait on, so this
    polls every 20 ms, bounded by ``timeout``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    check = tcp_listening if kind == "tcp" else udp_bound
    while not check(port):
        if loop.time() > end:
            raise AssertionError(f"sipp never bound {kind} port {port}")
        await asyncio.sleep(0.02)

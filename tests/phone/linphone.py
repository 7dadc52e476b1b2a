"""linphonec (Debian's linphone-cli 5.1) as an independent SIP phone in tests (NOTES.md).

``linphonec -c FILE`` wants a terminal: it runs under ``script`` (a pty), its stdin a
FIFO we keep open read-write (so it never sees end of file), its output read as it comes.
Each instance has its own ``linphonerc`` (127.0.0.1 only, no IPv6 migration, DTLS-SRTP
mandatory, rtcp-mux/BUNDLE/AVPF, ICE with no STUN server), its own ``[storage] uri``
(without one the core hangs in GlobalStartup) and its own HOME (instances of one HOME
share a DTLS certificate and databases). ``soundcard use files``: no sound card needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from pathlib import Path

import pytest

LINPHONEC = shutil.which("linphonec")
SCRIPT = shutil.which("script")
requires_linphonec = pytest.mark.skipif(
    LINPHONEC is None or SCRIPT is None,
    reason="linphonec not installed (Debian package linphone-cli) or script (util-linux) missing",
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

RC = """\
[sip]
sip_port={port}
sip_tcp_port=0
sip_tls_port=0
bind_address=127.0.0.1
use_ipv6=0
ipv6_migration_done=1
media_encryption=dtls
media_encryption_mandatory=1
default_proxy=-1
ping_with_options=0

[net]
prefer_ipv6=0
nat_policy_ref=lpnat

[nat_policy_0]
ref=lpnat
stun_server=
protocols=ice

[rtp]
rtcp_mux=1
bundle=1
avpf=1
audio_rtp_port={rtp_low}-{rtp_high}

[storage]
uri={home}/linphone.db
call_logs_db_uri={home}/call-history.db
zrtp_secrets_db_uri={home}/zrtp-secrets.db

[misc]
config-uri=
"""


class Linphone:
    """One linphonec; :meth:`expect` finds a line of its output by regular expression."""

    def __init__(self, workdir: Path, port: int, proc: asyncio.subprocess.Process, fifo_fd: int) -> None:
        self.workdir = workdir
        self.port = port
        self.proc = proc
        self._fifo_fd = fifo_fd
        self.output = ""
        self._pos = 0
        self._changed = asyncio.Event()
        self._eof = False
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, workdir: Path, port: int, rtp_port: int) -> Linphone:
        assert LINPHONEC is not None and SCRIPT is not None
        home = workdir / "home"
        home.mkdir(parents=True)
        rc = workdir / "linphonerc"
        rc.write_text(RC.format(port=port, rtp_low=rtp_port, rtp_high=rtp_port + 40, home=home))
        fifo = workdir / "stdin"
        os.mkfifo(fifo)
        fifo_fd = os.open(fifo, os.O_RDWR)  # read-write: opening never blocks, no EOF
        env = dict(os.environ, HOME=str(home), TERM="dumb")
        try:
            proc = await asyncio.create_subprocess_exec(
                SCRIPT,
                "-q",
                "-f",
                "-e",
                "-c",
                f"{LINPHONEC} -c {rc}",
                "/dev/null",
                stdin=fifo_fd,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=str(workdir),
                start_new_session=True,
            )
        except BaseException:
            os.close(fifo_fd)
            raise
        linphone = cls(workdir, port, proc, fifo_fd)
        await linphone.send("soundcard use files")
        return linphone

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while chunk := await self.proc.stdout.read(65536):
                self.output += _ANSI.sub("", chunk.decode(errors="replace")).replace("\r", "")
                self._changed.set()
        finally:
            self._eof = True
            self._changed.set()

    async def send(self, command: str) -> None:
        os.write(self._fifo_fd, (command + "\n").encode())

    async def expect(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first match of ``pattern`` after the previous match."""
        regex = re.compile(pattern)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            found = regex.search(self.output, self._pos)
            if found is not None:
                self._pos = found.end()
                return found
            if self._eof:
                raise AssertionError(f"linphonec exited before /{pattern}/; output:\n{self.output[-3000:]}")
            remaining = end - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"linphonec: no /{pattern}/ in {timeout} s; output:\n{self.output[-3000:]}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _children(self) -> list[int]:
        """The processes under ``script`` (the shell, linphonec): it runs them in a session
        of their own, out of reach of a signal to its process group."""
        found: list[int] = []
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            with contextlib.suppress(OSError, ValueError):
                kids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
                found += kids
                todo += kids
        return found

    async def close(self) -> None:
        children = self._children()
        if self.proc.returncode is None:
            with contextlib.suppress(OSError):
                await self.send("quit")
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        for pid in children:  # script gone; its child must not outlive the test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.close(self._fifo_fd)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


__all__ = ["LINPHONEC", "Linphone", "requires_linphonec"]

"""A real overlay operator for the wizard's tests: ``p2psip overlay create``, ``adduser``
and ``serve`` (HTTPS configuration and enrollment on 127.0.0.1, an OS-picked port), the
server stopped when the test ends, also on failure."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
OVERLAY = "gui.example"


def p2psip(*args: str) -> str:
    python = str(PYTHON) if PYTHON.exists() else sys.executable
    done = subprocess.run([python, "-m", "app", *args], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Operator:
    directory: Path
    config_url: str
    ca_pem: Path

    def adduser(self, user: str, password: str, *, user_name: str | None = None) -> None:
        pw = self.directory.parent / f"{user}.pw"
        pw.write_text(password + "\n")
        extra = ["--user-name", user_name] if user_name else []
        p2psip("overlay", "adduser", str(self.directory), user, "--password-file", str(pw), *extra)


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[Operator]:
    directory = tmp_path / "overlay"
    p2psip("overlay", "create", OVERLAY, "--dir", str(directory))
    python = str(PYTHON) if PYTHON.exists() else sys.executable
    proc = subprocess.Popen(
        [python, "-m", "app", "overlay", "serve", str(directory), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("serving "), line
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        yield Operator(directory, fields["config_url"], directory / "ca-cert.pem")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

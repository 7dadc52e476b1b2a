"""``p2psip overlay create|adduser|serve``, and ``p2psip enroll`` as real
processes: the server listens on 127.0.0.1 with an OS-picked port and is stopped by its
fixture (SIGTERM, then kill), also when a test fails."""

from __future__ import annotations

import json
import select
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.cli import main
from reload_core.config import accept_configuration
from reload_core.security.certificates import (
    check_self_signed,
    load_certificate_file,
    load_private_key_file,
    parse_node_certificate,
    spki_der,
    validate_chain,
)

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
OVERLAY = "cli.example"


def p2psip(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    python = str(PYTHON) if PYTHON.exists() else sys.executable
    return subprocess.run(
        [python, "-m", "app", *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def ok(*args: str) -> str:
    result = p2psip(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """A user error: non-zero exit, exactly one line on stderr, no traceback."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@dataclass
class Served:
    directory: Path
    process: subprocess.Popen[str]
    fields: dict[str, str]

    @property
    def config_url(self) -> str:
        return self.fields["config_url"]


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("the server printed nothing")
    return proc.stdout.readline()


@pytest.fixture
def serve() -> Iterator[object]:
    """``serve(dir)`` starts ``p2psip overlay serve DIR --host 127.0.0.1 --port 0``."""
    started: list[subprocess.Popen[str]] = []

    def start(directory: Path) -> Served:
        python = str(PYTHON) if PYTHON.exists() else sys.executable
        proc = subprocess.Popen(
            [python, "-m", "app", "overlay", "serve", str(directory), "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        started.append(proc)
        line = _read_line(proc, 60)
        assert line.startswith("serving "), line + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        )
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        return Served(directory, proc, fields)

    yield start
    for proc in started:
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


def _create(tmp_path: Path, *extra: str) -> Path:
    directory = tmp_path / "overlay"
    out = ok("overlay", "create", OVERLAY, "--dir", str(directory), *extra)
    assert f"created overlay {OVERLAY}" in out
    return directory


def _adduser(directory: Path, tmp_path: Path, user: str, password: str) -> Path:
    pw = tmp_path / f"{user}.pw"
    pw.write_text(password + "\n")
    assert ok("overlay", "adduser", str(directory), user, "--password-file", str(pw)).startswith(
        "added account"
    )
    return pw


def test_create_writes_ca_and_signed_configuration(tmp_path: Path) -> None:
    directory = _create(tmp_path, "--bootstrap", "192.0.2.1:6084", "--bootstrap", "[2001:db8::1]:7000")
    assert stat.S_IMODE((directory / "ca-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "signer-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "users.json").stat().st_mode) == 0o600
    assert json.loads((directory / "users.json").read_text()) == {"version": 1, "users": {}}
    accepted = accept_configuration((directory / "reload-config.xml").read_bytes(), overlay_name=OVERLAY)
    config = accepted.configuration
    assert config.root_certs == (load_certificate_file(directory / "ca-cert.pem"),)
    assert [(b.address, b.port) for b in config.bootstrap_nodes] == [
        ("192.0.2.1", 6084),
        ("2001:db8::1", 7000),
    ]
    assert "SIP-REGISTRATION" in {k.kind.name for k in config.required_kinds}
    assert config.enrollment_servers == (f"https://{OVERLAY}/enroll",)
    assert not config.self_signed_allowed
    assert accepted.signer is not None and accepted.signer.node_id is not None
    assert config.configuration_signers == (accepted.signer.node_id.hex(),)


def test_create_serve_adduser_enroll(tmp_path: Path, serve: object) -> None:
    directory = _create(tmp_path)
    pw = _adduser(directory, tmp_path, "alice", "open sesame")
    assert "open sesame" not in (directory / "users.json").read_text()
    served = serve(directory)  # type: ignore[operator]
    assert served.fields["host"] == "127.0.0.1" and int(served.fields["port"]) > 0
    assert served.config_url == f"https://127.0.0.1:{served.fields['port']}/.well-known/reload-config"
    assert served.fields["enrollment_url"] == f"https://127.0.0.1:{served.fields['port']}/enroll"

    profile = tmp_path / "profile"
    cafile = str(directory / "ca-cert.pem")
    args = ["--config-url", served.config_url, "--user", "alice", "--password-file", str(pw)]
    out = ok("enroll", *args, "--profile", str(profile), "--cafile", cafile)
    assert f"enrolled alice@{OVERLAY} in overlay {OVERLAY}" in out

    assert stat.S_IMODE((profile / "node-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700
    for name in ("profile.json", "overlay-config.xml", "node-cert.pem", "root-certs.pem", "https-ca.pem"):
        assert (profile / name).is_file()
    cert = load_certificate_file(profile / "node-cert.pem")
    node = validate_chain(
        cert, [], [load_certificate_file(directory / "ca-cert.pem")], datetime.now(UTC), OVERLAY
    )
    assert node.spki_der == spki_der(load_private_key_file(profile / "node-key.pem").public_key())
    descriptor = json.loads((profile / "profile.json").read_text())
    assert descriptor["node_ids"] == [node.node_id.hex()] and descriptor["user_name"] == f"alice@{OVERLAY}"
    stored = json.loads((directory / "users.json").read_text())["users"]["alice"]
    assert stored["node_ids"] == [node.node_id.hex()]
    assert node.node_id.hex() in out

    # Re-enrolling keeps the Node-ID; a wrong password is one line naming the §11.3 token.
    ok("enroll", *args, "--profile", str(profile), "--cafile", cafile)
    assert parse_node_certificate(load_certificate_file(profile / "node-cert.pem")).node_ids == node.node_ids
    bad = tmp_path / "bad.pw"
    bad.write_text("wrong\n")
    line = one_line_error(
        p2psip(
            "enroll",
            *args[:4],
            "--password-file",
            str(bad),
            "--profile",
            str(tmp_path / "p2"),
            "--cafile",
            cafile,
        )
    )
    assert "failed_authentication" in line
    # Without the overlay CA the HTTPS server is not trusted (system store).
    line = one_line_error(p2psip("enroll", *args, "--profile", str(tmp_path / "p3")))
    assert "certificate" in line.lower()

    # An account added while the server runs can enroll at once, with another Node-ID.
    bob_pw = _adduser(directory, tmp_path, "bob", "hunter2")
    ok("enroll", *args[:2], "--user", "bob", "--password-file", str(bob_pw), "--profile", str(tmp_path / "bob"),
       "--cafile", cafile, "--key-type", "ecdsa")  # fmt: skip
    bob = parse_node_certificate(load_certificate_file(tmp_path / "bob" / "node-cert.pem"))
    assert bob.user_name == f"bob@{OVERLAY}" and bob.node_ids != node.node_ids

    # SIGTERM: a clean shutdown, exit status 0, no traceback.
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=20) == 0
    assert served.process.stderr is not None and "Traceback" not in served.process.stderr.read()


def test_sigint_stops_the_server(tmp_path: Path, serve: object) -> None:
    served = serve(_create(tmp_path))  # type: ignore[operator]
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=20) == 0


def test_self_signed_overlay(tmp_path: Path, serve: object) -> None:
    directory = _create(tmp_path, "--self-signed")
    served = serve(directory)  # type: ignore[operator]
    assert served.fields["enrollment_url"] == "-"
    profile = tmp_path / "profile"
    out = ok(
        "enroll", "--config-url", served.config_url, "--user", "carol", "--profile", str(profile),
        "--cafile", str(directory / "ca-cert.pem"), "--key-type", "ed25519",
    )  # fmt: skip
    assert "self-signed certificate" in out
    node = check_self_signed(load_certificate_file(profile / "node-cert.pem"), "sha256", overlay=OVERLAY)
    assert node.user_name == f"carol@{OVERLAY}"
    assert json.loads((profile / "profile.json").read_text())["self_signed"] is True


@pytest.mark.parametrize(
    "args",
    [
        ["overlay", "create", "not a name!", "--dir", "{tmp}/x"],
        ["overlay", "create", OVERLAY, "--dir", "{tmp}/x", "--bootstrap", "host.example:6084"],
        ["overlay", "create", OVERLAY, "--dir", "{tmp}/x", "--enroll-url", "http://plain/enroll"],
        ["overlay", "serve", "{tmp}/missing"],
        ["overlay", "serve", "{tmp}", "--port", "99999"],
        ["overlay", "adduser", "{tmp}/missing", "bob", "--password-file", "{tmp}/none"],
        ["overlay", "frobnicate"],
        ["enroll", "--user", "alice"],
        ["enroll", "--config-url", "http://127.0.0.1:1/x", "--user", "a", "--profile", "{tmp}/p"],
        ["enroll", "--config-url", "https://127.0.0.1:1/x", "--user", "a", "--cafile", "{tmp}/none.pem"],
    ],
)
def test_bad_arguments_give_one_line(
    tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process (the same main() the entry point runs), to keep this fast; the other
    # tests cover the real process.
    try:
        status = main([a.replace("{tmp}", str(tmp_path)) for a in args])
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    one_line_error(subprocess.CompletedProcess(args, status, captured.out, captured.err))


def test_bad_argument_in_a_real_process(tmp_path: Path) -> None:
    line = one_line_error(p2psip("overlay", "create", "bad name!", "--dir", str(tmp_path / "x")))
    assert line.startswith("p2psip: error: overlay name 'bad name!'")


def test_adduser_errors(tmp_path: Path) -> None:
    directory = _create(tmp_path)
    _adduser(directory, tmp_path, "alice", "pw1")
    pw = tmp_path / "alice.pw"
    assert "already exists" in one_line_error(
        p2psip("overlay", "adduser", str(directory), "alice", "--password-file", str(pw))
    )
    empty = tmp_path / "empty.pw"
    empty.write_text("")
    assert "empty password" in one_line_error(
        p2psip("overlay", "adduser", str(directory), "bob", "--password-file", str(empty))
    )
    # create refuses a non-empty directory
    assert "not empty" in one_line_error(p2psip("overlay", "create", OVERLAY, "--dir", str(directory)))

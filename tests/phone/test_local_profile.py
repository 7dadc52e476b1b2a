"""``p2psip init``: a profile on the built-in local overlay (RFC 6940 §11.3.1), and the
built-in configuration document every copy of the app agrees on (§11.1)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from app.peer import build_node, peer_setup
from app.phone.local_config import (
    LOCAL_OVERLAY_NAME,
    check_local_document,
    local_configuration,
    local_configuration_document,
)
from app.phone.names import BadName, local_name, local_user_name
from app.profile import load_profile
from reload_core.config import ConfigError, generate_document, parse_document
from reload_core.node.attach_ice import uses_ice
from reload_core.security.certificates import (
    check_self_signed,
    load_certificate_file,
    load_private_key_file,
    self_signed_node_ids,
)
from reload_core.usages.sip.access import registration_refusal
from reload_core.usages.sip.aor import parse_aor

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"


def p2psip(*args: str) -> subprocess.CompletedProcess[str]:
    python = str(PYTHON) if PYTHON.exists() else sys.executable
    return subprocess.run([python, "-m", "app", *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_init_makes_a_local_profile(tmp_path: Path) -> None:
    profile_dir = tmp_path / "alice"
    result = p2psip("init", "--user", "Alice", "--profile", str(profile_dir), "--display-name", "Alice A.")
    assert result.returncode == 0, result.stderr
    assert f"AoR sip:alice@{LOCAL_OVERLAY_NAME}" in result.stdout

    names = sorted(p.name for p in profile_dir.iterdir())
    assert names == ["node-cert.pem", "node-key.pem", "overlay-config.xml", "profile.json", "root-certs.pem"]
    assert stat.S_IMODE(profile_dir.stat().st_mode) == 0o700
    for path in profile_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    descriptor = json.loads((profile_dir / "profile.json").read_text())
    assert descriptor["overlay"] == LOCAL_OVERLAY_NAME
    assert descriptor["user_name"] == f"alice@{LOCAL_OVERLAY_NAME}"
    assert descriptor["self_signed"] is True
    assert descriptor["display_name"] == "Alice A."
    assert descriptor["config_url"] is None

    # Node-ID = the first 16 bytes of SHA-256 over the key's SubjectPublicKeyInfo (§11.3.1).
    key = load_private_key_file(profile_dir / "node-key.pem")
    node = check_self_signed(
        load_certificate_file(profile_dir / "node-cert.pem"), "sha256", overlay=LOCAL_OVERLAY_NAME
    )
    expected = self_signed_node_ids(key.public_key(), "sha256", 1, 16)
    assert node.node_ids == expected
    assert descriptor["node_ids"] == [expected[0].hex()]
    assert f"Node-ID {expected[0].hex()}" in result.stdout
    assert node.user_name == f"alice@{LOCAL_OVERLAY_NAME}"
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert (profile_dir / "root-certs.pem").read_bytes() == b""

    # The profile makes a peer of a TLS-only overlay that accepts self-signed certificates.
    profile = load_profile(profile_dir)
    setup = peer_setup(profile)
    assert setup.node_id == expected[0]
    assert setup.configuration == local_configuration()
    assert not uses_ice(setup.configuration)
    assert (
        registration_refusal(setup.configuration, node.user_name, parse_aor(f"sip:{node.user_name}")) is None
    )

    # Again with the same name: nothing changes (the key is kept).
    again = p2psip("init", "--user", "alice", "--profile", str(profile_dir))
    assert again.returncode == 0, again.stderr
    assert "already holds" in again.stdout
    kept = load_private_key_file(profile_dir / "node-key.pem")
    assert isinstance(kept, ec.EllipticCurvePrivateKey)
    assert kept.private_numbers() == key.private_numbers()


async def test_a_local_profile_builds_a_node(tmp_path: Path) -> None:
    result = p2psip("init", "--user", "carol", "--profile", str(tmp_path / "c"))
    assert result.returncode == 0, result.stderr
    node = build_node(peer_setup(load_profile(tmp_path / "c")))
    try:
        assert node.settings.overlay_name == LOCAL_OVERLAY_NAME
        assert node.settings.bootstrap_nodes == ()
    finally:
        await node.close()


def test_two_copies_hold_byte_identical_configuration_documents(tmp_path: Path) -> None:
    for user in ("alice", "bob"):
        result = p2psip("init", "--user", user, "--profile", str(tmp_path / user))
        assert result.returncode == 0, result.stderr
    a = (tmp_path / "alice" / "overlay-config.xml").read_bytes()
    b = (tmp_path / "bob" / "overlay-config.xml").read_bytes()
    assert a == b == local_configuration_document()
    assert (tmp_path / "alice" / "node-key.pem").read_bytes() != (
        tmp_path / "bob" / "node-key.pem"
    ).read_bytes()


def test_the_built_in_document_is_the_local_configuration() -> None:
    data = local_configuration_document()
    document = parse_document(data)  # well-formed, UTF-8, valid by the grammar of §11.1.1
    assert len(document.entries) == 1
    entry = document.entries[0]
    assert entry.signatures == ()
    config = entry.configuration
    assert config == local_configuration()
    assert config.instance_name == LOCAL_OVERLAY_NAME
    assert config.self_signed_allowed and config.self_signed_permitted is not None
    assert config.self_signed_permitted.digest == "sha256"
    assert config.root_certs == () and config.enrollment_servers == () and config.bootstrap_nodes == ()
    assert config.configuration_signers == () and config.kind_signers == ()
    assert config.clients_permitted and config.no_ice and config.overlay_link_protocols == ("TLS",)
    assert config.aor_permitted(f"sip:alice@{LOCAL_OVERLAY_NAME}")
    assert not config.aor_permitted("sip:alice@example.org")
    assert check_local_document(data) == config
    # Generated again from the data, it parses to the same configuration.
    assert parse_document(generate_document(config)).entries[0].configuration == config


def test_another_document_is_not_the_local_one() -> None:
    other = generate_document(local_configuration().__class__(instance_name=LOCAL_OVERLAY_NAME, sequence=2))
    with pytest.raises(ConfigError):
        check_local_document(other)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("bob.smith", "bob.smith"),
        ("o'hara".replace("'", "-"), "o-hara"),
        ("+4930123", "+4930123"),
        (f"dave@{LOCAL_OVERLAY_NAME}", "dave"),
        ("x" * 64, "x" * 64),
    ],
)
def test_good_names(text: str, name: str) -> None:
    assert local_name(text) == name
    assert local_user_name(text) == f"{name}@{LOCAL_OVERLAY_NAME}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bad name",
        "a@example.org",
        ".alice",
        "alice.",
        "a..b",
        "x" * 65,
        "al;ice",
        "al?ice",
        "élise",
        "a%41",
    ],
)
def test_bad_names(text: str) -> None:
    with pytest.raises(BadName):
        local_name(text)


@pytest.mark.parametrize("user", ["bad name", "a@example.org", "al;ice", ""])
def test_init_with_a_bad_user_says_one_line_and_exits_2(tmp_path: Path, user: str) -> None:
    result = p2psip("init", "--user", user, "--profile", str(tmp_path / "p"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("p2psip init: error: argument --user:")
    assert not (tmp_path / "p").exists()


def test_init_refuses_a_folder_with_another_profile(tmp_path: Path) -> None:
    assert p2psip("init", "--user", "alice", "--profile", str(tmp_path / "p")).returncode == 0
    result = p2psip("init", "--user", "bob", "--profile", str(tmp_path / "p"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "choose another --profile" in lines[0]

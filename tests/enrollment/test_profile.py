"""app.profile: the user's profile folder (atomic writes, 0600 key, consistency checks)."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from app.profile import (
    ProfileDescriptor,
    ProfileError,
    default_profile_dir,
    existing_descriptor,
    load_profile,
    save_profile,
)
from reload_core.security.ca import OverlayCA
from reload_core.security.certificates import (
    PrivateKey,
    generate_private_key,
    make_self_signed,
    parse_node_certificate,
    spki_der,
)

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def ca() -> OverlayCA:
    return OverlayCA.create("profile.example", generate_private_key("ecdsa"), NOW)


def _identity(ca: OverlayCA, user: str = "alice") -> tuple[PrivateKey, bytes, ProfileDescriptor]:
    key = generate_private_key("ecdsa")
    node_id = os.urandom(16)
    cert = ca.issue_node_certificate(key.public_key(), f"{user}@profile.example", [node_id], NOW)
    der = cert.public_bytes(Encoding.DER)
    desc = ProfileDescriptor(
        "profile.example", f"{user}@profile.example", (node_id,), False, "https://x/.well-known/reload-config"
    )
    return key, der, desc


def test_save_then_load(ca: OverlayCA, tmp_path: Path) -> None:
    key, der, desc = _identity(ca)
    folder = tmp_path / "p"
    save_profile(
        folder,
        desc,
        configuration=b"<overlay/>",
        private_key=key,
        certificate=der,
        root_certs=(ca.certificate_der,),
        https_ca_pem=b"PEM",
    )
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "node-key.pem").stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == [
        "https-ca.pem",
        "node-cert.pem",
        "node-key.pem",
        "overlay-config.xml",
        "profile.json",
        "root-certs.pem",
    ]
    loaded = load_profile(folder)
    assert loaded.descriptor == desc and loaded.certificate == der and loaded.configuration == b"<overlay/>"
    assert loaded.root_certs == (ca.certificate_der,) and loaded.https_ca_pem == b"PEM"
    assert spki_der(loaded.private_key.public_key()) == spki_der(key.public_key())
    assert existing_descriptor(folder) == desc


def test_self_signed_profile_without_roots(tmp_path: Path) -> None:
    key = generate_private_key("ed25519")
    der = make_self_signed(key, "carol@profile.example", "profile.example", "sha256")
    node = parse_node_certificate(der)
    desc = ProfileDescriptor("profile.example", node.user_name, node.node_ids, True)
    save_profile(tmp_path / "p", desc, configuration=b"<overlay/>", private_key=key, certificate=der)
    loaded = load_profile(tmp_path / "p")
    assert loaded.root_certs == () and loaded.https_ca_pem is None and loaded.descriptor.self_signed


def test_load_refuses_unsafe_or_inconsistent_profiles(ca: OverlayCA, tmp_path: Path) -> None:
    key, der, desc = _identity(ca)
    folder = tmp_path / "p"
    with pytest.raises(ProfileError, match="no profile"):
        load_profile(folder)
    save_profile(folder, desc, configuration=b"x", private_key=key, certificate=der)
    os.chmod(folder / "node-key.pem", 0o644)
    with pytest.raises(ProfileError, match="chmod 600"):
        load_profile(folder)
    os.chmod(folder / "node-key.pem", 0o600)
    other_key, _, _ = _identity(ca)
    with pytest.raises(ProfileError, match="does not belong"):
        save_profile(folder, desc, configuration=b"x", private_key=other_key, certificate=der)
    (folder / "overlay-config.xml").unlink()
    with pytest.raises(ProfileError, match="incomplete"):
        load_profile(folder)
    os.chmod(folder, 0o777)
    with pytest.raises(ProfileError, match="chmod 700"):
        load_profile(folder)


def test_default_dir_is_per_user() -> None:
    assert default_profile_dir().name == "p2psip-phone"

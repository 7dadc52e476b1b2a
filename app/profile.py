"""The user's profile folder: one identity in one overlay.

Default location from platformdirs (``p2psip --profile DIR`` overrides). Contents::

    profile.json         descriptor: overlay, user name, Node-IDs, where the config came from
    overlay-config.xml   the signed configuration document, bytes as fetched (§11.1, §11.2)
    node-key.pem         the private key, mode 0600
    node-cert.pem        the node certificate (§11.3 or self-signed §11.3.1)
    root-certs.pem       the configuration's root-cert trust anchors (may be empty: self-signed)
    https-ca.pem         optional: the CA trusted for HTTPS to the configuration server

The folder is created 0700 and every file is written atomically (temp file + rename) with
mode 0600; the descriptor is written last, so an interrupted save never leaves a
descriptor that points at files from another identity. Loading refuses a private key
that others can read and a folder that others can write.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from reload_core.security.certificates import (
    CertificateError,
    PrivateKey,
    certificate_to_pem,
    load_certificate_file,
    load_certificates,
    load_private_key_file,
    parse_node_certificate,
    save_private_key,
    spki_der,
)

APP_NAME = "p2psip-phone"
PROFILE_VERSION = 1
DESCRIPTOR_FILE = "profile.json"
CONFIG_FILE = "overlay-config.xml"
KEY_FILE = "node-key.pem"
CERT_FILE = "node-cert.pem"
ROOTS_FILE = "root-certs.pem"
HTTPS_CA_FILE = "https-ca.pem"


class ProfileError(Exception):
    """The profile folder is missing, incomplete, inconsistent or unsafely readable."""


def default_profile_dir() -> Path:
    """The per-user data folder for the profile (e.g. ``~/.local/share/p2psip-phone``)."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


@dataclass(frozen=True, slots=True)
class ProfileDescriptor:
    """``profile.json``: what the other files are."""

    overlay: str
    user_name: str
    node_ids: tuple[bytes, ...]
    self_signed: bool
    config_url: str | None = None
    enrollment_url: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    display_name: str | None = None
    """What the user wants to be called (SIP display-name, RFC 3261 §20.10); optional."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PROFILE_VERSION,
            "overlay": self.overlay,
            "user_name": self.user_name,
            "node_ids": [n.hex() for n in self.node_ids],
            "self_signed": self.self_signed,
            "config_url": self.config_url,
            "enrollment_url": self.enrollment_url,
            "created": self.created.isoformat(),
            "display_name": self.display_name,
        }

    @classmethod
    def from_json(cls, obj: Any) -> ProfileDescriptor:
        try:
            if obj["version"] != PROFILE_VERSION:
                raise ProfileError(f"profile version {obj['version']!r} is not {PROFILE_VERSION}")
            node_ids = tuple(bytes.fromhex(n) for n in obj["node_ids"])
            for key in ("overlay", "user_name"):
                if not isinstance(obj[key], str):
                    raise ProfileError(f"profile {key} is not a string")
            for key in ("config_url", "enrollment_url", "display_name"):
                if obj.get(key) is not None and not isinstance(obj[key], str):
                    raise ProfileError(f"profile {key} is not a string")
            return cls(
                overlay=obj["overlay"],
                user_name=obj["user_name"],
                node_ids=node_ids,
                self_signed=bool(obj["self_signed"]),
                config_url=obj.get("config_url"),
                enrollment_url=obj.get("enrollment_url"),
                created=datetime.fromisoformat(obj["created"]),
                display_name=obj.get("display_name"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"malformed {DESCRIPTOR_FILE}: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class Profile:
    """A loaded profile: the descriptor and the contents of the other files."""

    directory: Path
    descriptor: ProfileDescriptor
    configuration: bytes
    private_key: PrivateKey = field(repr=False)
    certificate: bytes
    root_certs: tuple[bytes, ...] = ()
    https_ca_pem: bytes | None = None

    @property
    def https_ca_path(self) -> Path | None:
        return self.directory / HTTPS_CA_FILE if self.https_ca_pem is not None else None


def _write_private(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_directory(directory: Path) -> None:
    if os.name == "posix" and directory.stat().st_mode & 0o022:
        raise ProfileError(f"{directory} is writable by other users; run: chmod 700 {directory}")


def prepare_directory(directory: str | os.PathLike[str]) -> Path:
    """Create the folder (0700) if needed; refuse one that others can write."""
    path = Path(directory)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_directory(path)
    except OSError as exc:
        raise ProfileError(f"cannot use {path} as profile folder: {exc.strerror or exc}") from None
    return path


def existing_descriptor(directory: str | os.PathLike[str]) -> ProfileDescriptor | None:
    """The descriptor of a profile already in ``directory``, if there is one."""
    path = Path(directory) / DESCRIPTOR_FILE
    if not path.exists():
        return None
    try:
        return ProfileDescriptor.from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from None


def save_profile(
    directory: str | os.PathLike[str],
    descriptor: ProfileDescriptor,
    *,
    configuration: bytes,
    private_key: PrivateKey,
    certificate: bytes,
    root_certs: tuple[bytes, ...] = (),
    https_ca_pem: bytes | None = None,
) -> Profile:
    """Write a profile (replacing any previous one in ``directory``) and return it."""
    path = prepare_directory(directory)
    _check_consistent(descriptor, private_key, certificate)
    try:
        save_private_key(path / KEY_FILE, private_key)
        _write_private(path / CERT_FILE, certificate_to_pem(certificate))
        _write_private(path / ROOTS_FILE, b"".join(certificate_to_pem(r) for r in root_certs))
        _write_private(path / CONFIG_FILE, configuration)
        if https_ca_pem is not None:
            _write_private(path / HTTPS_CA_FILE, https_ca_pem)
        else:
            (path / HTTPS_CA_FILE).unlink(missing_ok=True)
        _write_private(path / DESCRIPTOR_FILE, (json.dumps(descriptor.to_json(), indent=2) + "\n").encode())
    except OSError as exc:
        raise ProfileError(f"cannot write the profile in {path}: {exc.strerror or exc}") from None
    return Profile(path, descriptor, configuration, private_key, certificate, root_certs, https_ca_pem)


def replace_configuration(directory: str | os.PathLike[str], configuration: bytes) -> None:
    """Put a newer configuration document (§11.1: a ConfigUpdate, §6.5.4, or a refetch,
    §11.2) in place of the profile's, atomically; the other files stay as they are."""
    path = Path(directory)
    try:
        _write_private(path / CONFIG_FILE, configuration)
    except OSError as exc:
        raise ProfileError(f"cannot write the configuration in {path}: {exc.strerror or exc}") from None


def _check_consistent(descriptor: ProfileDescriptor, private_key: PrivateKey, certificate: bytes) -> None:
    node_id_length = len(descriptor.node_ids[0]) if descriptor.node_ids else 16
    try:
        node = parse_node_certificate(certificate, node_id_length)
    except CertificateError as exc:
        raise ProfileError(f"the profile's certificate is not a node certificate: {exc}") from None
    if spki_der(private_key.public_key()) != node.spki_der:
        raise ProfileError("the profile's private key does not belong to its certificate")
    if node.node_ids != descriptor.node_ids or node.user_name != descriptor.user_name:
        raise ProfileError("the profile descriptor does not match the certificate's Node-IDs and user name")
    if node.overlay != descriptor.overlay:
        raise ProfileError(f"the certificate is for overlay {node.overlay!r}, not {descriptor.overlay!r}")


def load_profile(directory: str | os.PathLike[str]) -> Profile:
    """Load and cross-check a profile; :class:`ProfileError` says what is wrong."""
    path = Path(directory)
    descriptor = existing_descriptor(path)
    if descriptor is None:
        raise ProfileError(f"no profile in {path} (run: p2psip enroll)")
    _check_directory(path)
    key_path = path / KEY_FILE
    try:
        if os.name == "posix" and stat.S_IMODE(key_path.stat().st_mode) & 0o077:
            raise ProfileError(f"{key_path} is readable by other users; run: chmod 600 {key_path}")
        private_key = load_private_key_file(key_path)
        certificate = load_certificate_file(path / CERT_FILE)
        roots_pem = (path / ROOTS_FILE).read_bytes()
        root_certs = load_certificates(roots_pem) if roots_pem.strip() else ()
        configuration = (path / CONFIG_FILE).read_bytes()
        https_ca = path / HTTPS_CA_FILE
        https_ca_pem = https_ca.read_bytes() if https_ca.exists() else None
    except OSError as exc:
        raise ProfileError(f"incomplete profile in {path}: {exc.strerror or exc}: {exc.filename}") from None
    except CertificateError as exc:
        raise ProfileError(f"unreadable key or certificate in {path}: {exc}") from None
    _check_consistent(descriptor, private_key, certificate)
    return Profile(path, descriptor, configuration, private_key, certificate, root_certs, https_ca_pem)

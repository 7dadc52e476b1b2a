"""``p2psip overlay create|adduser|serve``: run an overlay as its operator (RFC 6940 §11).

An overlay directory holds::

    overlay.json        the operator's settings: overlay name, where enrollment happens
    ca-key.pem          the overlay CA's key (0600)         } the configuration's root-cert
    ca-cert.pem         the overlay CA's certificate        } and the HTTPS trust anchor
    signer-key.pem      key of the configuration/kind signer (0600)
    signer-cert.pem     its node certificate, issued by the CA; its Node-ID is the
                        configuration-signer and kind-signer of the configuration (§11.1)
    reload-config.xml   the signed configuration document served at
                        /.well-known/reload-config (§11.2)
    users.json          enrollment accounts (0600, scrypt password hashes)
    https-key.pem       the HTTPS server's key and certificate, issued by the CA for the
    https-cert.pem      overlay name and the address served on (§11.2, §11.3)

Enrollment URL: ``create --enroll-url URL`` fixes it. Without it (and without
``--self-signed``) it follows the server: ``serve`` puts ``https://<host>:<port>/enroll``
of the address it listens on into the configuration, re-signing it (sequence + 1) when
that changes, so ``serve --port 0`` works. With ``--self-signed`` the configuration has
self-signed-permitted (sha256) and no enrollment server (§11.3.1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import getpass
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import Encoding

from app.cli import CliError
from reload_core.config import (
    BootstrapNode,
    ConfigError,
    OverlayConfiguration,
    SelfSignedPermitted,
    default_kinds,
    generate_document,
    parse_document,
    sign_config,
)
from reload_core.config.document import DEFAULT_BOOTSTRAP_PORT, MAX_SEQUENCE
from reload_core.enrollment.server import (
    WELL_KNOWN_PATH,
    EnrollmentServer,
    EnrollmentService,
    make_app,
    server_ssl_context,
)
from reload_core.enrollment.users import AccountError, UsersFile, UsersFileError, write_private_file
from reload_core.security.ca import CA_CERT_FILE, OverlayCA
from reload_core.security.certificates import (
    CertificateError,
    PrivateKey,
    generate_private_key,
    load_certificate_file,
    load_private_key_file,
    save_certificate,
    save_private_key,
)

log = logging.getLogger("p2psip.overlay")

SETTINGS_FILE = "overlay.json"
CONFIG_FILE = "reload-config.xml"
USERS_FILE = "users.json"
SIGNER_KEY_FILE = "signer-key.pem"
SIGNER_CERT_FILE = "signer-cert.pem"
HTTPS_KEY_FILE = "https-key.pem"
HTTPS_CERT_FILE = "https-cert.pem"
DEFAULT_ENROLL_PATH = "/enroll"
AUTO = "auto"

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_OVERLAY_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_overlay_name(name: str) -> None:
    """An overlay name is a DNS name: it is the HTTPS server's name (§11.2) and the host
    part of every reload URI (§14.15)."""
    if len(name) > 253 or not _OVERLAY_NAME.fullmatch(name):
        raise CliError(f"overlay name {name!r} is not a DNS name (letters, digits, '-' and '.')")


def parse_bootstrap(text: str) -> BootstrapNode:
    """``ADDRESS[:PORT]`` or ``[IPv6]:PORT``; §11.1 wants an IP address, not a host name."""
    host, port = text, DEFAULT_BOOTSTRAP_PORT
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise CliError(f"bad bootstrap address {text!r}")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, text)
    try:
        return BootstrapNode(str(ipaddress.ip_address(host)), port)
    except (ValueError, ConfigError):
        raise CliError(f"bootstrap node {text!r} must be IP:PORT (an IP address, §11.1)") from None


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 0xFFFF:
        raise CliError(f"bad port in {whole!r}")
    return int(text)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def public_base_url(host: str, port: int, overlay: str) -> str:
    """``https://host[:port]`` that clients use for a server bound to ``host:port``; a
    wildcard bind is reached by the overlay name."""
    name = overlay if host in ("", "0.0.0.0", "::") else host
    return f"https://{_url_host(name)}" + ("" if port == 443 else f":{port}")


@dataclass
class OverlayDirectory:
    """An operator's overlay directory (see the module docstring)."""

    path: Path
    name: str
    enrollment: str
    """``"auto"`` (follows the server), ``"none"`` (self-signed only) or a fixed URL."""

    # -- creating and opening

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        name: str,
        *,
        bootstrap: Sequence[BootstrapNode] = (),
        self_signed: bool = False,
        enroll_url: str | None = None,
        now: dt.datetime | None = None,
    ) -> OverlayDirectory:
        """CA, configuration signer, signed configuration and empty users file."""
        check_overlay_name(name)
        now = now or _utc_now()
        directory = Path(path)
        if directory.exists() and any(directory.iterdir()):
            raise CliError(f"{directory} exists and is not empty")
        if enroll_url is not None:
            parts = urlsplit(enroll_url)
            if parts.scheme != "https" or not parts.hostname or not parts.path.startswith("/"):
                raise CliError(
                    f"--enroll-url must be an https:// URL with a path (§11.3), not {enroll_url!r}"
                )
            if parts.path == WELL_KNOWN_PATH:
                raise CliError(f"--enroll-url cannot use {WELL_KNOWN_PATH}")
        enrollment = enroll_url or ("none" if self_signed else AUTO)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create {directory}: {exc.strerror or exc}") from None
        od = cls(directory, name, enrollment)
        ca = OverlayCA.create(name, generate_private_key("rsa"), now)
        ca.save(directory)
        # The configuration is signed by a node certificate, as §11.1 names signers by Node-ID.
        signer_key = generate_private_key("rsa")
        signer_id = secrets.token_bytes(16)
        signer_cert = ca.issue_node_certificate(
            signer_key.public_key(),
            f"config-signer@{name}",
            [signer_id],
            now,
            validity=dt.timedelta(days=3650),
        )
        save_private_key(directory / SIGNER_KEY_FILE, signer_key)
        save_certificate(directory / SIGNER_CERT_FILE, signer_cert.public_bytes(Encoding.DER))
        UsersFile.create(directory / USERS_FILE)
        enrollment_servers: tuple[str, ...] = ()
        if enrollment == AUTO:
            enrollment_servers = (f"https://{name}{DEFAULT_ENROLL_PATH}",)  # until `serve` knows its address
        elif enrollment != "none":
            enrollment_servers = (enrollment,)
        try:
            config = OverlayConfiguration(
                instance_name=name,
                sequence=1,
                root_certs=(ca.certificate_der,),
                enrollment_servers=enrollment_servers,
                self_signed_permitted=SelfSignedPermitted(True, "sha256") if self_signed else None,
                bootstrap_nodes=tuple(bootstrap),
                configuration_signers=(signer_id.hex(),),
                kind_signers=(signer_id.hex(),),
                required_kinds=default_kinds(),
            )
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        od.publish(config)
        od._save_settings()
        return od

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> OverlayDirectory:
        directory = Path(path)
        try:
            settings: Any = json.loads((directory / SETTINGS_FILE).read_bytes())
            name, enrollment = settings["overlay"], settings["enrollment"]
            if not isinstance(name, str) or not isinstance(enrollment, str):
                raise ValueError("overlay and enrollment must be strings")
        except FileNotFoundError:
            raise CliError(
                f"{directory} is not an overlay directory (no {SETTINGS_FILE}; run: overlay create)"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CliError(f"cannot read {directory / SETTINGS_FILE}: {exc}") from None
        return cls(directory, name, enrollment)

    def _save_settings(self) -> None:
        doc = {"version": 1, "overlay": self.name, "enrollment": self.enrollment}
        write_private_file(self.path / SETTINGS_FILE, (json.dumps(doc, indent=2) + "\n").encode())

    # -- parts

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def ca_cert_path(self) -> Path:
        return self.path / CA_CERT_FILE

    def ca(self) -> OverlayCA:
        try:
            return OverlayCA.load(self.path, self.name)
        except (OSError, CertificateError) as exc:
            raise CliError(f"cannot load the overlay CA from {self.path}: {exc}") from None

    def users(self) -> UsersFile:
        return UsersFile(self.path / USERS_FILE)

    def _signer(self) -> tuple[PrivateKey, bytes]:
        try:
            return (
                load_private_key_file(self.path / SIGNER_KEY_FILE),
                load_certificate_file(self.path / SIGNER_CERT_FILE),
            )
        except (OSError, CertificateError) as exc:
            raise CliError(f"cannot load the configuration signer from {self.path}: {exc}") from None

    def configuration(self) -> OverlayConfiguration:
        """The configuration as published."""
        try:
            return parse_document(self.config_path.read_bytes()).entry(self.name).configuration
        except (OSError, ConfigError) as exc:
            raise CliError(f"cannot read {self.config_path}: {exc}") from None

    def publish(self, config: OverlayConfiguration) -> bytes:
        """Sign ``config`` (and its kinds) with the configuration signer and write it."""
        key, cert = self._signer()
        data = sign_config(generate_document(config), key, cert)
        write_private_file(self.config_path, data)
        os.chmod(self.config_path, 0o644)  # public: served to anyone
        return data

    def follow_enrollment_url(self, url: str) -> bool:
        """With ``enrollment == "auto"``: make ``url`` the configuration's enrollment
        server, re-signing with the next sequence number if it changed."""
        if self.enrollment != AUTO:
            return False
        config = self.configuration()
        if config.enrollment_servers == (url,):
            return False
        # Sequence numbers wrap past 2^16-2 (§11.1); 65535 is ConfigUpdate's (§6.3.2.1).
        sequence = config.sequence + 1 if config.sequence < MAX_SEQUENCE else 1
        self.publish(dataclasses.replace(config, enrollment_servers=(url,), sequence=sequence))
        return True

    def enrollment_path(self) -> str:
        if self.enrollment in (AUTO, "none"):
            return DEFAULT_ENROLL_PATH
        return urlsplit(self.enrollment).path

    def issue_https_certificate(self, hosts: Sequence[str], now: dt.datetime) -> tuple[Path, Path]:
        """A fresh HTTPS key and certificate for the overlay name and ``hosts``."""
        key = generate_private_key("ecdsa")
        cert = self.ca().issue_server_certificate(key.public_key(), hosts, now)
        save_private_key(self.path / HTTPS_KEY_FILE, key)
        save_certificate(self.path / HTTPS_CERT_FILE, cert.public_bytes(Encoding.DER))
        return self.path / HTTPS_CERT_FILE, self.path / HTTPS_KEY_FILE


@dataclass(frozen=True, slots=True)
class Serving:
    """Where a started server can be reached."""

    host: str
    port: int
    config_url: str
    enrollment_url: str | None


@contextlib.asynccontextmanager
async def serving(od: OverlayDirectory, host: str, port: int) -> AsyncIterator[Serving]:
    """Serve the configuration and enrollment of ``od`` on ``host:port`` (port 0: any)
    until the block ends; yields a :class:`Serving`."""
    now = _utc_now()
    hosts = [host] if host not in ("", "0.0.0.0", "::") else ["localhost", "127.0.0.1", "::1"]
    cert_path, key_path = od.issue_https_certificate(hosts, now)
    config = od.configuration()
    service = EnrollmentService(od.ca(), od.users(), node_id_length=config.node_id_length)
    app = make_app(service, od.config_path.read_bytes, od.enrollment_path())
    server = EnrollmentServer(app)
    try:
        _, bound_port = await server.start(host, port, server_ssl_context(str(cert_path), str(key_path)))
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        base = public_base_url(host, bound_port, od.name)
        if od.follow_enrollment_url(base + DEFAULT_ENROLL_PATH):
            log.info("configuration re-signed with enrollment server %s", base + DEFAULT_ENROLL_PATH)
        servers = od.configuration().enrollment_servers
        yield Serving(host, bound_port, base + WELL_KNOWN_PATH, servers[0] if servers else None)
    finally:
        await server.stop()


# ---------------------------------------------------------------- commands


def _cmd_create(args: argparse.Namespace) -> int:
    bootstrap = [parse_bootstrap(b) for b in args.bootstrap]
    od = OverlayDirectory.create(
        args.dir, args.name, bootstrap=bootstrap, self_signed=args.self_signed, enroll_url=args.enroll_url
    )
    config = od.configuration()
    print(f"created overlay {od.name} in {od.path}")
    print(f"  root certificate (for --cafile): {od.ca_cert_path}")
    print(f"  configuration: {od.config_path} (sequence {config.sequence})")
    if od.enrollment == AUTO:
        print("  enrollment server: where `p2psip overlay serve` listens")
    elif config.enrollment_servers:
        print(f"  enrollment server: {config.enrollment_servers[0]}")
    if config.self_signed_allowed:
        print("  self-signed certificates permitted (sha256 Node-IDs)")
    return 0


def read_password(password_file: str | None, *, confirm: bool) -> str:
    """From ``password_file`` (its first line) or a no-echo prompt."""
    if password_file is not None:
        try:
            text = Path(password_file).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read password file {password_file}: {exc}") from None
        password = text.splitlines()[0] if text else ""
    else:
        try:
            password = getpass.getpass("Password: ")
            if confirm and getpass.getpass("Password again: ") != password:
                raise CliError("the passwords differ")
        except EOFError:
            raise CliError("no password given") from None
    if not password:
        raise CliError("empty password")
    return password


def _cmd_adduser(args: argparse.Namespace) -> int:
    od = OverlayDirectory.open(args.dir)
    user_name = args.user_name or (args.user if "@" in args.user else f"{args.user}@{od.name}")
    password = read_password(args.password_file, confirm=True)
    try:
        od.users().add_user(args.user, password, user_name)
    except (AccountError, UsersFileError) as exc:
        raise CliError(str(exc)) from None
    print(f"added account {args.user} with user name {user_name}")
    return 0


async def _serve(od: OverlayDirectory, host: str, port: int, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows: Ctrl-C raises instead
            loop.add_signal_handler(signum, stop.set)
    async with serving(od, host, port) as s:
        # One parseable line on stdout; the log goes to stderr.
        print(
            f"serving host={s.host} port={s.port} config_url={s.config_url} enrollment_url={s.enrollment_url or '-'}",
            flush=True,
        )
        log.info("overlay %s: configuration at %s", od.name, s.config_url)
        await stop.wait()
        log.info("shutting down")


def _cmd_serve(args: argparse.Namespace) -> int:
    od = OverlayDirectory.open(args.dir)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve(od, args.host, args.port, asyncio.Event()))
    return 0


def _port_arg(text: str) -> int:
    if not text.isdigit() or int(text) > 0xFFFF:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("overlay", help="create and serve an overlay (operator)")
    sub = parser.add_subparsers(dest="overlay_command", required=True, parser_class=type(parser))

    create = sub.add_parser("create", help="new overlay: CA, signed configuration, empty users file")
    create.add_argument("name", help="overlay name, a DNS name (e.g. overlay.example.org)")
    create.add_argument("--dir", required=True, help="directory to create the overlay in (new or empty)")
    create.add_argument(
        "--bootstrap",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="bootstrap peer IP:port (repeatable)",
    )
    create.add_argument(
        "--self-signed", action="store_true", help="permit self-signed certificates (§11.3.1)"
    )
    create.add_argument("--enroll-url", help="fixed https:// enrollment URL (default: where `serve` listens)")
    create.set_defaults(func=_cmd_create)

    adduser = sub.add_parser("adduser", help="add an enrollment account")
    adduser.add_argument("dir", help="overlay directory")
    adduser.add_argument("user", help="account name (the enrollment form's username)")
    adduser.add_argument("--password-file", help="read the password from this file's first line")
    adduser.add_argument("--user-name", help="the user name for certificates (default USER@OVERLAY)")
    adduser.set_defaults(func=_cmd_adduser)

    serve = sub.add_parser("serve", help="serve configuration and enrollment over HTTPS")
    serve.add_argument("dir", help="overlay directory")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=_port_arg, default=443, help="port (default 443; 0: any free port)")
    serve.set_defaults(func=_cmd_serve)


__all__ = [
    "OverlayDirectory",
    "Serving",
    "check_overlay_name",
    "parse_bootstrap",
    "public_base_url",
    "read_password",
    "register",
    "serving",
]

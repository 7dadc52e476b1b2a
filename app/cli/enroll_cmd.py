"""``p2psip enroll``: join an overlay as a user (RFC 6940 §11.2, §11.3, §11.3.1).

1. Fetch the configuration document over HTTPS and verify its signature (§11.2, §11.1).
2. Generate a key. If the configuration names an enrollment server: send a PKCS#10
   request with the user name, account name and password, and check that the returned
   certificate chains to a root-cert of the configuration (§11.3). If it has no
   enrollment server but self-signed-permitted: make a self-signed certificate whose
   Node-ID is the digest of the public key (§11.3.1).
3. Store the profile (configuration, key 0600, certificate, root certs).

Trust for HTTPS: ``--cafile PEM`` (e.g. the ``ca-cert.pem`` that ``p2psip overlay create``
writes, handed to users out of band) replaces the system's trust store; without it the
system store is used, as for an overlay whose server has a public WebPKI certificate.
The enrollment server's certificate must match the overlay name (§11.3).

The user name asked for is ``USER`` if it contains ``@``, otherwise ``USER@<overlay>``.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.cli import CliError
from app.cli.overlay_cmd import read_password
from app.profile import (
    Profile,
    ProfileDescriptor,
    ProfileError,
    default_profile_dir,
    existing_descriptor,
    save_profile,
)
from reload_core.config import ConfigError, OverlayConfiguration, fetch_configuration
from reload_core.enrollment.client import enroll
from reload_core.enrollment.errors import EnrollmentError
from reload_core.security.certificates import (
    CertificateError,
    KeyKind,
    NodeCertificate,
    PrivateKey,
    SelfSignedDigest,
    build_csr,
    check_self_signed,
    generate_private_key,
    make_self_signed,
    validate_chain,
)


def https_context(cafile: str | None) -> ssl.SSLContext:
    """Verifying client context: ``cafile`` as the only trust anchors, else the system's."""
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"cannot use {cafile} as CA file: {exc}") from None


def requested_user_name(user: str, overlay: str) -> str:
    return user if "@" in user else f"{user}@{overlay}"


async def _enroll_at_server(
    config: OverlayConfiguration,
    key: PrivateKey,
    user: str,
    user_name: str,
    password: str,
    nodeids: int,
    context: ssl.SSLContext,
    now: datetime,
) -> tuple[bytes, NodeCertificate, str]:
    csr = build_csr(key, user_name)
    failure: EnrollmentError | None = None
    for url in config.enrollment_servers:
        try:
            der = await enroll(
                url, user, password, csr, nodeids, ssl=context, server_name=config.instance_name
            )
        except EnrollmentError as exc:
            if exc.token is not None:
                raise CliError(str(exc)) from None  # the server said no: another server would too
            failure = exc
            continue
        try:
            node = validate_chain(
                der, [], config.root_certs, now, config.instance_name, node_id_length=config.node_id_length
            )
        except CertificateError as exc:
            raise CliError(
                f"the enrollment server returned a certificate that does not check out: {exc}"
            ) from None
        return der, node, url
    raise CliError(str(failure))


async def enroll_profile(
    config_url: str,
    user: str,
    password: Callable[[], str],
    profile_dir: str | Path,
    *,
    cafile: str | None = None,
    overlay_name: str | None = None,
    nodeids: int = 1,
    key_kind: KeyKind = "rsa",
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Callable[[str], None] = lambda step: None,
) -> Profile:
    """Obtain credentials for ``user`` in the overlay configured at ``config_url`` and
    store them in ``profile_dir``. ``password`` is asked only if an enrollment server
    needs it. ``progress`` hears each step as it starts (``"configuration"``, ``"key"``,
    ``"enrollment"``, ``"saving"``). Raises :class:`CliError` with a one-line reason."""
    context = https_context(cafile)
    progress("configuration")
    try:
        accepted = await fetch_configuration(config_url, overlay_name=overlay_name, ssl=context, now=clock())
    except ConfigError as exc:
        raise CliError(f"configuration from {config_url} refused: {exc}") from None
    config = accepted.configuration
    overlay = config.instance_name
    user_name = requested_user_name(user, overlay)
    try:
        existing = existing_descriptor(profile_dir)
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    if existing is not None and (existing.overlay, existing.user_name) != (overlay, user_name):
        raise CliError(
            f"{profile_dir} holds the profile of {existing.user_name} in {existing.overlay}; choose another --profile"
        )
    progress("key")
    key = generate_private_key(key_kind)
    enrollment_url: str | None = None
    if config.enrollment_servers:
        progress("enrollment")
        der, node, enrollment_url = await _enroll_at_server(
            config, key, user, user_name, password(), nodeids, context, clock()
        )
    elif config.self_signed_allowed:
        assert config.self_signed_permitted is not None
        digest = config.self_signed_permitted.digest
        if digest not in ("sha1", "sha256"):
            raise CliError(f"self-signed-permitted digest {digest!r} is not supported (§11.1: sha1, sha256)")
        chosen: SelfSignedDigest = "sha1" if digest == "sha1" else "sha256"
        der = make_self_signed(
            key, user_name, overlay, chosen, nodeids, node_id_length=config.node_id_length, now=clock()
        )
        node = check_self_signed(
            der, chosen, node_id_length=config.node_id_length, now=clock(), overlay=overlay
        )
    else:
        raise CliError(
            f"overlay {overlay} has no enrollment server and does not permit self-signed certificates"
        )
    descriptor = ProfileDescriptor(
        overlay=overlay,
        user_name=node.user_name,
        node_ids=node.node_ids,
        self_signed=enrollment_url is None,
        config_url=config_url,
        enrollment_url=enrollment_url,
    )
    progress("saving")
    try:
        https_ca = Path(cafile).read_bytes() if cafile else None
        return save_profile(
            profile_dir,
            descriptor,
            configuration=accepted.data,
            private_key=key,
            certificate=der,
            root_certs=config.root_certs,
            https_ca_pem=https_ca,
        )
    except (OSError, ProfileError) as exc:
        raise CliError(str(exc)) from None


def _cmd_enroll(args: argparse.Namespace) -> int:
    profile_dir = Path(args.profile) if args.profile else default_profile_dir()
    profile = asyncio.run(
        enroll_profile(
            args.config_url,
            args.user,
            lambda: read_password(args.password_file, confirm=False),
            profile_dir,
            cafile=args.cafile,
            overlay_name=args.overlay,
            nodeids=args.nodeids,
            key_kind=args.key_type,
        )
    )
    d = profile.descriptor
    how = "self-signed certificate" if d.self_signed else f"certificate from {d.enrollment_url}"
    print(f"enrolled {d.user_name} in overlay {d.overlay} ({how})")
    for node_id in d.node_ids:
        print(f"  Node-ID {node_id.hex()}")
    print(f"  profile: {profile.directory}")
    return 0


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"not a Node-ID count 1..64: {text!r}")
    return int(text)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "enroll", help="join an overlay: fetch its configuration, get a certificate"
    )
    parser.add_argument(
        "--config-url", required=True, help="https:// URL of the configuration document (§11.2)"
    )
    parser.add_argument(
        "--user", required=True, help="account name (user name: USER@overlay unless it has an @)"
    )
    parser.add_argument("--password-file", help="read the password from this file's first line")
    parser.add_argument("--profile", help="profile folder (default: the per-user data folder)")
    parser.add_argument(
        "--cafile", help="PEM CA to trust for HTTPS (e.g. the overlay's ca-cert.pem); default: system"
    )
    parser.add_argument("--overlay", help="overlay name, when the document configures several")
    parser.add_argument("--nodeids", type=_count, default=1, help="number of Node-IDs (default 1)")
    parser.add_argument(
        "--key-type", choices=["rsa", "ecdsa", "ed25519"], default="rsa", help="key (default rsa)"
    )
    parser.set_defaults(func=_cmd_enroll)

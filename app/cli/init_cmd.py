"""``p2psip init``: a profile on the built-in local overlay, with no set-up at all.

``p2psip init --user NAME [--profile DIR] [--display-name X]`` makes, in the profile
folder (:mod:`app.profile`):

- an ECDSA P-256 key (0600). Not RSA: key generation and every signature are much
  cheaper, and AppAttach's DTLS (aiortc's client offers ECDSA suites only) works with it;
  not Ed25519, which that DTLS handshake cannot use under this OpenSSL;
- a self-signed certificate (§11.3.1) whose Node-ID is the first 16 bytes of the SHA-256
  digest of its public key and whose rfc822Name is ``NAME@local.p2psip.invalid``
  (:mod:`app.phone.names`); valid ten years, since no CA renews it and the Node-ID and the
  buddies' pins (:mod:`app.phone.pinning`) follow the key, not the certificate;
- the built-in configuration document of the local overlay, byte for byte as every copy
  of the app ships it (:mod:`app.phone.local_config`).

The AoR is ``sip:NAME@local.p2psip.invalid``. Whether the name is free on the network is
learnt when the phone joins (first come, first served, :mod:`app.phone.names`). Running
``init`` again with the same name keeps the existing key; another name needs another
``--profile``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.cli import CliError
from app.phone.local_config import (
    LOCAL_OVERLAY_NAME,
    LOCAL_SELF_SIGNED_DIGEST,
    local_configuration,
    local_configuration_document,
)
from app.phone.names import BadName, local_name
from app.profile import (
    Profile,
    ProfileDescriptor,
    ProfileError,
    default_profile_dir,
    existing_descriptor,
    save_profile,
)
from reload_core.security.certificates import check_self_signed, generate_private_key, make_self_signed

CERTIFICATE_DAYS = 3650
MAX_DISPLAY_NAME = 128


def init_profile(
    name: str, profile_dir: str | Path, *, display_name: str | None = None, now: datetime | None = None
) -> tuple[Profile | None, ProfileDescriptor]:
    """Make the local-overlay profile of ``name`` in ``profile_dir``: (the new profile, its
    descriptor), or (None, the existing descriptor) when the folder already holds this
    user's local profile. Raises :class:`CliError` with a one-line reason."""
    try:
        user = local_name(name)
    except BadName as exc:
        raise CliError(str(exc)) from None
    user_name = f"{user}@{LOCAL_OVERLAY_NAME}"
    try:
        existing = existing_descriptor(profile_dir)
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    if existing is not None:
        if (existing.overlay, existing.user_name) == (LOCAL_OVERLAY_NAME, user_name):
            return None, existing
        raise CliError(
            f"{profile_dir} holds the profile of {existing.user_name} in {existing.overlay}; choose another --profile"
        )
    now = now or datetime.now(UTC)
    configuration = local_configuration()
    key = generate_private_key("ecdsa")
    der = make_self_signed(
        key,
        user_name,
        LOCAL_OVERLAY_NAME,
        LOCAL_SELF_SIGNED_DIGEST,
        1,
        CERTIFICATE_DAYS,
        node_id_length=configuration.node_id_length,
        now=now,
    )
    node = check_self_signed(
        der, LOCAL_SELF_SIGNED_DIGEST, node_id_length=configuration.node_id_length, now=now
    )
    descriptor = ProfileDescriptor(
        overlay=LOCAL_OVERLAY_NAME,
        user_name=node.user_name,
        node_ids=node.node_ids,
        self_signed=True,
        created=now,
        display_name=display_name,
    )
    try:
        profile = save_profile(
            profile_dir,
            descriptor,
            configuration=local_configuration_document(),
            private_key=key,
            certificate=der,
        )
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    return profile, descriptor


def _user(text: str) -> str:
    try:
        return local_name(text)
    except BadName as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _display_name(text: str) -> str:
    text = text.strip()
    if not text or len(text) > MAX_DISPLAY_NAME or not text.isprintable():
        raise argparse.ArgumentTypeError(
            f"a display name is 1 to {MAX_DISPLAY_NAME} printable characters, not {text!r}"
        )
    return text


def _cmd_init(args: argparse.Namespace) -> int:
    profile_dir = Path(args.profile) if args.profile else default_profile_dir()
    profile, d = init_profile(args.user, profile_dir, display_name=args.display_name)
    if profile is None:
        print(f"{profile_dir} already holds {d.user_name} on the local overlay; nothing to do")
    else:
        print(f"created {d.user_name} on the local overlay (self-signed certificate, RFC 6940 §11.3.1)")
    print(f"  AoR sip:{d.user_name}")
    for node_id in d.node_ids:
        print(f"  Node-ID {node_id.hex()}")
    print(f"  profile: {profile_dir}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "init", help="make a profile on the built-in local overlay (no server, no set-up)"
    )
    parser.add_argument(
        "--user",
        required=True,
        type=_user,
        metavar="NAME",
        help=f"your name on the network: the AoR is sip:NAME@{LOCAL_OVERLAY_NAME}",
    )
    parser.add_argument("--profile", help="profile folder (default: the per-user data folder)")
    parser.add_argument("--display-name", type=_display_name, help="the name shown to the people you call")
    parser.set_defaults(func=_cmd_init)


__all__ = ["init_profile", "register"]

"""``p2psip demo`` (``make run``): the newest end-to-end thing the project can do.

In a temporary folder: create an overlay (CA, signed configuration), add two accounts,
serve configuration and enrollment over HTTPS on 127.0.0.1 (a free port), enroll both
users through that server exactly as ``p2psip enroll`` does, check both certificates
chain to the overlay's root certificate, then sign a RELOAD PingReq as alice (§6.3.4)
and verify it as bob, and show that a tampered copy is rejected. Everything is removed
at the end. Exit status 0 when every step worked.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.cli import CliError
from app.cli.enroll_cmd import enroll_profile
from app.cli.overlay_cmd import OverlayDirectory, serving
from app.profile import Profile
from reload_core.ids import overlay_hash
from reload_core.security.certificates import CertificateError, validate_chain
from reload_core.security.signing import (
    CertificateResolver,
    SignatureError,
    Signer,
    sign_message,
    signing_node_id,
    verify_message,
)
from reload_core.wire.codes import MessageCode
from reload_core.wire.context import WireContext
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import (
    LAST_FRAGMENT_BIT,
    ForwardingHeader,
    Message,
    MessageContents,
    NodeDestination,
)
from reload_core.wire.registry import decode_body, encode_struct

OVERLAY = "demo.p2psip.example"
USERS = ("alice", "bob")


def _given(password: str) -> Callable[[], str]:
    return lambda: password


def _say(text: str) -> None:
    print(text, flush=True)


def _ping_from(alice: Profile, bob: Profile, sequence: int, ttl: int) -> bytes:
    """A PingReq from alice's first Node-ID to bob's, signed by alice (§6.3.4, §6.5.3)."""
    signer = Signer.create(alice.private_key, alice.certificate)
    overlay = overlay_hash(alice.descriptor.overlay)
    transaction_id = secrets.randbits(64)
    contents = MessageContents(MessageCode.ping_req, encode_struct(PingReq(b"hello bob")))
    header = ForwardingHeader(
        overlay=overlay,
        configuration_sequence=sequence,
        ttl=ttl,
        fragment=LAST_FRAGMENT_BIT,  # unfragmented: offset 0, last fragment (§6.7)
        transaction_id=transaction_id,
        destination_list=(NodeDestination(bob.descriptor.node_ids[0]),),
    )
    block = sign_message(overlay, transaction_id, contents, signer)
    return Message(header, contents, block).to_bytes()


def _verify_as(bob: Profile, wire: bytes, node_id_length: int) -> tuple[bytes, str, PingReq]:
    """What bob learns from the bytes: the signing Node-ID, its user name and the body."""
    message = Message.from_bytes(wire, WireContext(node_id_length=node_id_length))
    resolver = CertificateResolver(
        bob.descriptor.overlay, roots=bob.root_certs, node_id_length=node_id_length
    )
    node = verify_message(message, resolver)
    node_id = signing_node_id(message.security_block.signature.identity, node)
    body = decode_body(message.message_contents.message_code, message.message_contents.message_body)
    assert isinstance(body, PingReq)
    return node_id, node.user_name, body


async def run_demo(workdir: Path) -> None:
    _say(f"1. create overlay {OVERLAY} in {workdir}")
    od = OverlayDirectory.create(workdir / "overlay", OVERLAY)
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    for user, password in passwords.items():
        od.users().add_user(user, password, f"{user}@{OVERLAY}")
    _say(f"   CA: {od.ca().certificate.subject.rfc4514_string()}; accounts: {', '.join(USERS)}")

    async with serving(od, "127.0.0.1", 0) as s:
        _say(f"2. serving HTTPS on 127.0.0.1:{s.port}")
        _say(f"   configuration: {s.config_url}")
        _say(f"   enrollment:    {s.enrollment_url}")
        profiles: dict[str, Profile] = {}
        for user in USERS:
            profile = await enroll_profile(
                s.config_url,
                user,
                _given(passwords[user]),
                workdir / f"profile-{user}",
                cafile=str(od.ca_cert_path),
            )
            profiles[user] = profile
            d = profile.descriptor
            _say(
                f"3. enrolled {d.user_name}: Node-ID {d.node_ids[0].hex()} (profile {profile.directory.name})"
            )

    config = od.configuration()
    now = datetime.now(UTC)
    for user, profile in profiles.items():
        node = validate_chain(profile.certificate, [], [od.ca().certificate_der], now, OVERLAY)
        _say(f"4. {user}'s certificate chains to the overlay CA (subject empty, SAN {node.user_name})")

    alice, bob = profiles["alice"], profiles["bob"]
    wire = _ping_from(alice, bob, config.sequence, config.initial_ttl)
    _say(f"5. alice signs a PingReq to bob: {len(wire)} bytes, RSA-SHA256 over the message (§6.3.4)")
    node_id, user_name, body = _verify_as(bob, wire, config.node_id_length)
    if node_id != alice.descriptor.node_ids[0]:
        raise CliError("the verified signer is not alice's Node-ID")
    _say(f"6. bob verifies it: signed by {user_name} as Node-ID {node_id.hex()}, padding {body.padding!r}")
    tampered = bytearray(wire)
    tampered[wire.index(b"hello bob")] ^= 0x20
    try:
        _verify_as(bob, bytes(tampered), config.node_id_length)
    except SignatureError as exc:
        _say(f"7. a copy with one flipped bit is rejected: {exc}")
    else:
        raise CliError("a tampered message verified")


def _cmd_demo(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="p2psip-demo-"))
    try:
        asyncio.run(run_demo(workdir))
    except (CertificateError, SignatureError) as exc:
        raise CliError(f"demo failed: {exc}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _say("demo finished: overlay, HTTPS enrollment, certificates and message signatures all work")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="end-to-end demo: overlay, enrollment, signed messages")
    parser.set_defaults(func=_cmd_demo)

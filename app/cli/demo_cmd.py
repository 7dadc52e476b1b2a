"""``p2psip demo`` (``make run``): the newest end-to-end thing the project can do.

In a temporary folder: create an overlay (CA, signed configuration), add two accounts,
serve configuration and enrollment over HTTPS on 127.0.0.1 (a free port), enroll both
users through that server exactly as ``p2psip enroll`` does, check both certificates
chain to the overlay's root certificate, then sign a RELOAD PingReq as alice (§6.3.4)
and verify it as bob, and show that a tampered copy is rejected. Then the enrolled
profiles run as peers of a real overlay over TLS/TCP on 127.0.0.1 (carol is the bootstrap
peer the configuration lists): alice registers her AoR as a SIP-REGISTRATION dictionary
entry keyed by her Node-ID (RFC 7904 §3), bob fetches it, verifies it and routes a Ping to
the Node-ID it names. Then alice's and bob's phones (app.phone, call audio on) join
through carol and alice calls bob, a tone file as her microphone: the call's timeline
down to the first audio bob's phone hears (by RMS). Everything is removed at the end. Exit status 0 when every step
worked.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.cli import CliError
from app.cli.enroll_cmd import enroll_profile
from app.cli.overlay_cmd import OverlayDirectory, serving
from app.peer import bind_listening_socket, build_node, peer_setup
from app.profile import Profile
from reload_core.config.document import BootstrapNode
from reload_core.ids import overlay_hash, resource_id
from reload_core.node.events import wait_until
from reload_core.security.certificates import CertificateError, validate_chain
from reload_core.security.signing import (
    CertificateResolver,
    SignatureError,
    Signer,
    sign_message,
    signing_node_id,
    verify_message,
)
from reload_core.storage import Storage
from reload_core.wire.codes import KindId, MessageCode
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
from reload_core.wire.sip_registration import SipRegistration
from reload_core.wire.storage import DataValue, DictionaryEntry, StoredDataSpecifier

OVERLAY = "demo.p2psip.example"
USERS = ("alice", "bob", "carol")
RING_TIMEOUT = 60.0


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
    # Bound before the configuration is signed, so that it can list carol's real port as
    # the bootstrap peer (§11.1 bootstrap-node) and nobody can take it in between.
    bootstrap_sock = bind_listening_socket("127.0.0.1", 0, listen=False)
    bootstrap_port = bootstrap_sock.getsockname()[1]
    od = OverlayDirectory.create(
        workdir / "overlay", OVERLAY, bootstrap=(BootstrapNode("127.0.0.1", bootstrap_port),)
    )
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
    await _overlay_steps(profiles, bootstrap_sock)


async def _overlay_steps(profiles: dict[str, Profile], bootstrap_sock: socket.socket) -> None:
    setups = {user: peer_setup(profile) for user, profile in profiles.items()}
    nodes = {"carol": build_node(setups["carol"], sock=bootstrap_sock)}
    try:
        await nodes["carol"].start()
        nodes["carol"].start_alone()
        for user in ("alice", "bob"):
            nodes[user] = build_node(setups[user], sock=bind_listening_socket("127.0.0.1", 0))
            await nodes[user].start()
            await nodes[user].join(setups[user].bootstrap_nodes, timeout=RING_TIMEOUT)
        ring = sorted(n.node_id for n in nodes.values())
        await wait_until(nodes.values(), lambda: _ring_ok(list(nodes.values()), ring), RING_TIMEOUT)
        _say("8. carol, alice and bob run as peers over TLS/TCP on 127.0.0.1; the Chord ring is closed:")
        for user, node in sorted(nodes.items(), key=lambda kv: kv[1].node_id):
            succ = node.successors[0].hex()[:8] if node.successors else "-"
            _say(f"   {user:5} {node.node_id.hex()[:8]}…  successor {succ}…")

        alice, bob = nodes["alice"], nodes["bob"]
        aor = profiles["alice"].descriptor.user_name
        registration = SipRegistration.for_route([NodeDestination(alice.node_id)])
        entry = DictionaryEntry(alice.node_id, DataValue(True, registration.to_bytes()))
        client = _storage(alice).client
        await client.store(resource_id(aor), KindId.SIP_REGISTRATION, [entry])
        _say(f"9. alice registers {aor}: SIP-REGISTRATION entry keyed by her Node-ID, signed (§7.1)")

        fetched = await _storage(bob).client.fetch(
            resource_id(aor), StoredDataSpecifier.dictionary(KindId.SIP_REGISTRATION, ())
        )
        found = SipRegistration.from_bytes(_first_value(fetched))
        target = found.data.destination_list[0]  # type: ignore[union-attr]
        assert isinstance(target, NodeDestination)
        _say(f"10. bob fetches {aor} and verifies the signature: route to Node-ID {target.node_id.hex()}")
        answer, _ = await bob.request([target], MessageCode.ping_req, PingReq())
        _say(f"11. bob pings that Node-ID through the overlay: answered by {answer.response_id:#x}")
        for user in ("alice", "bob"):  # their phones take their Node-IDs next
            await nodes.pop(user).close()
        await _call_with_audio(profiles)
    finally:
        for node in nodes.values():
            await node.close()


async def _call_with_audio(profiles: dict[str, Profile]) -> None:
    """alice's and bob's phones (app.phone) join through carol; alice calls bob with a
    440 Hz tone file as her microphone; bob's phone records what it hears. The timeline
    of the call, to the first audio bob hears: the first 20 ms frame played out at or
    above -30 dBFS RMS (app.phone.media.OnsetProbe)."""
    import functools
    import time

    import numpy as np

    from app.media.audio import SAMPLE_RATE, write_wav
    from app.phone.calls import CallState
    from app.phone.events import CallMedia, CallStateChanged, PhoneState
    from app.phone.service import Phone, PhoneOptions

    workdir = profiles["alice"].directory.parent
    tone = workdir / "tone-440.wav"
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    write_wav(tone, (np.sin(2 * np.pi * 440.0 * t) * 8000).astype(np.int16))
    heard = workdir / "bob-heard.wav"
    phones: dict[str, Phone] = {}
    marks: dict[str, float] = {}
    first_audio: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def listen(user: str, event: object) -> None:
        if isinstance(event, CallStateChanged):
            marks.setdefault(f"{user} {event.state.value}", event.time)
        elif isinstance(event, CallMedia) and event.what == "onset-heard" and not first_audio.done():
            first_audio.set_result(float(event.detail))

    try:
        extras: dict[str, dict[str, Any]] = {
            "alice": {"play": tone},
            "bob": {"record": heard, "auto_answer": True},
        }
        for user, extra in extras.items():
            options = PhoneOptions(media=True, use_devices=False, audio_onsets=True, **extra)
            phone = await Phone.open(profiles[user].directory, options=options)
            phones[user] = phone
            phone.add_listener(functools.partial(listen, user))
            if await phone.start() is not PhoneState.REGISTERED:
                raise CliError(f"{user}'s phone could not register: {phone.state_reason}")
        _say("12. alice's and bob's phones join through carol and register their AoRs (RFC 7904)")
        start = time.time()
        call = await phones["alice"].call("bob")
        await call.wait_state(CallState.CONNECTED, timeout=RING_TIMEOUT)
        heard_at = await asyncio.wait_for(first_audio, RING_TIMEOUT)
        _say("13. alice calls bob, a 440 Hz tone as her microphone; bob's phone answers and records:")
        steps = [
            (k, v) for k, v in sorted(marks.items(), key=lambda kv: kv[1]) if k.startswith(("alice", "bob"))
        ]
        for name, at in [*steps, ("bob hears the first audio (RMS)", heard_at)]:
            _say(f"    {(at - start) * 1000:7.0f} ms  {name}")
        await call.hangup()
    finally:
        for phone in phones.values():
            await phone.close()


def _ring_ok(nodes: list[Any], ring: list[bytes]) -> bool:
    for node in nodes:
        i = ring.index(node.node_id)
        if not node.successors or node.successors[0] != ring[(i + 1) % len(ring)]:
            return False
    return True


def _storage(node: Any) -> Storage:
    storage = Storage.of(node)
    if storage is None:
        raise CliError("the peer has no storage")
    return storage


def _first_value(kinds: Any) -> bytes:
    for kind in kinds:
        for value in kind.values:
            if isinstance(value.value, DictionaryEntry) and value.value.value.exists:
                return bytes(value.value.value.value)
    raise CliError("the registration was not found")


def _cmd_demo(args: argparse.Namespace) -> int:
    # The transcript is the output; the nodes' routine warnings (closing peers noticing
    # each other leave) would only interleave with it.
    logging.getLogger("reload_core").setLevel(logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="p2psip-demo-"))
    try:
        asyncio.run(run_demo(workdir))
    except (CertificateError, SignatureError) as exc:
        raise CliError(f"demo failed: {exc}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _say(
        "demo finished: HTTPS enrollment, signatures, a TLS Chord ring SIP registration and a call with audio all work"
    )
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="end-to-end demo: overlay, enrollment, signed messages")
    parser.set_defaults(func=_cmd_demo)

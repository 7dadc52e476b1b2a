"""Two phones behind two NATs talk (issue 15), in the NAT lab (:mod:`app.bench.nat_lab`:
network namespaces, two MASQUERADE routers that drop unsolicited inbound packets).

The overlay's bootstrap peer (a ``p2psip peer`` process) runs on the public network at
198.51.100.2; ``p2psip phone --json`` processes run alice at 10.1.0.2 behind NAT 1 and bob
at 10.2.0.2 behind NAT 2, with profiles of that overlay, whose configuration names the
bootstrap's public address and has its nodes Attach with ICE (overlay-link-protocol
DTLS-UDP-SR, §6.5.1; a TLS-only overlay's nodes answer no STUN, so nothing could cross
two NATs there). The phones join the way they do on their own (behind a NAT: as clients,
§4.2) and register; alice calls bob (AppAttach with ICE through both NATs, then SIP),
bob answers, each sends a tone file (``--play``) and records what it hears
(``--record``).

The overlay offers STUN as RFC 6940 §6.5.1.4 says: its bootstrap node answers Binding
requests on its listening address's UDP port, and the phones gather their call media's
server-reflexive candidates there too (no STUN server is configured). A TURN server
(coturn at 198.51.100.3) is there as well, each phone's configured relay
(``--ice-server turn:...``), so every call has relayed candidates: ICE must still pick
the direct path, server-reflexive candidates punching through both MASQUERADE NATs.
NAT 1 counts the UDP packets it forwards between alice and NAT 2's public address, and
between alice and the TURN server, while the tones play. The recordings have the tones'
frequencies (FFT) and no gap over 60 ms after the first audio.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from app.bench.nat_lab import (
    LAN1_HOST,
    NAT2_WAN,
    PUBLIC_PEER,
    TURN_SERVER,
    Topology,
    new_topology,
    unavailable_reason,
)
from tests.media.session_support import tone_file
from tests.phone.processes import PhoneProcess, PhoneProcesses, python
from tests.phone.test_phone_audio import CALL_SECONDS, check_tone, connected, hang_up

_reason = unavailable_reason() or (
    None
    if shutil.which("turnserver")
    else "coturn (turnserver) is not installed (tools/bootstrap.sh installs it)"
)
pytestmark = [
    pytest.mark.media,
    pytest.mark.multinode,
    pytest.mark.skipif(_reason is not None, reason=_reason or ""),
]

OVERLAY = "nat.phones.p2psip.test"
BOOTSTRAP_PORT = 6084  # RELOAD's port (§14.2): the public namespace is this test's alone
START = 60.0  # a process's start and join on a shared, loaded machine
MEDIA_PACKETS = 50  # per direction in the ~2 s between two quality samples (Opus: 50/s)
TURN_USER, TURN_PASSWORD = "phones", "relay-secret"
TURN_URL = f"turn:{TURN_USER}:{TURN_PASSWORD}@{TURN_SERVER}:3478"


class NatOverlay:
    """The lab, the overlay's bootstrap peer in its public namespace, and a group of phone
    processes behind each NAT; :meth:`close` ends them all and removes the namespaces."""

    def __init__(self, root: Path) -> None:
        from app.bench.overlay_harness import provision_overlay
        from reload_core.config import BootstrapNode, DomainRestriction, default_kinds

        self.root = root
        self.topology: Topology = new_topology()
        self.alice = PhoneProcesses(netns=self.topology.lan1)
        self.bob = PhoneProcesses(netns=self.topology.lan2)
        self.overlay = provision_overlay(
            root / "overlay",
            1,
            name=OVERLAY,
            key_kind="ecdsa",
            required_kinds=default_kinds(domain_restriction=DomainRestriction(enable=False)),
            bootstrap_nodes=(BootstrapNode(PUBLIC_PEER, BOOTSTRAP_PORT),),
            overlay_link_protocols=("DTLS-UDP-SR",),
        )
        # The socket it bound for the bootstrap peer is of this namespace: the peer binds
        # the public address in its own.
        self.overlay.close()

    def profile(self, user: str) -> Path:
        return self.overlay.add_profile(user).directory

    async def start(self) -> None:
        self.topology.build()
        await self.topology.start_turn(self.root, user=(TURN_USER, TURN_PASSWORD))
        log = self.root / "bootstrap.stderr.log"
        with log.open("ab") as err:
            proc = await self.topology.spawn(
                self.topology.inet,
                [python(), "-m", "app", "peer", "--profile", str(self.overlay.peers[0].directory)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err.fileno(),
            )
        assert proc.stdout is not None
        stdout = proc.stdout

        async def ready() -> bytes:
            while not (line := await stdout.readline()).startswith(b"ready "):
                assert line, f"the bootstrap peer exited: {log.read_text(errors='replace')}"
            return line

        line = await asyncio.wait_for(ready(), START)
        # The configuration's bootstrap address is one of this namespace: the peer took it.
        assert f"listen={PUBLIC_PEER}:{BOOTSTRAP_PORT}".encode() in line, line
        # Its later status lines stay unread: a pipe holds far more than a test's worth.

    async def close(self) -> None:
        try:
            await asyncio.gather(self.alice.close(), self.bob.close())
            await self.topology.stop_processes()
        finally:
            self.topology.teardown()


@pytest_asyncio.fixture
async def lab(tmp_path: Path) -> AsyncIterator[NatOverlay]:
    made = NatOverlay(tmp_path)
    try:
        await made.start()
        yield made
    finally:
        await made.close()


def iptables(namespace: str, *args: str) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, "iptables", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


PATHS = {
    "direct out": (LAN1_HOST, NAT2_WAN),
    "direct in": (NAT2_WAN, LAN1_HOST),
    "relay out": (LAN1_HOST, TURN_SERVER),
    "relay in": (TURN_SERVER, LAN1_HOST),
}
"""What NAT 1 counts: UDP between alice and NAT 2's public address, and between alice and
the TURN server, each way (as FORWARD sees them: before NAT 1 rewrites alice's source
address on the way out, after it restores her address on the way in)."""


def count_paths(topology: Topology) -> None:
    """Rules with no target (they only count) in NAT 1's FORWARD chain."""
    for source, destination in PATHS.values():
        iptables(topology.nat1, "-A", "FORWARD", "-p", "udp", "-s", source, "-d", destination)


def packets(topology: Topology) -> dict[str, int]:
    """UDP packets NAT 1 has forwarded so far, by :data:`PATHS` name."""
    counts = {}
    for line in iptables(topology.nat1, "-L", "FORWARD", "-v", "-n", "-x").splitlines():
        words = line.split()
        if len(words) >= 4 and words[0].isdigit():  # a rule's line; prot reads "17" with -n
            counts[(words[-2], words[-1])] = int(words[0])
    return {name: counts[pair] for name, pair in PATHS.items()}


async def registered(group: PhoneProcesses, profile: Path, *args: str) -> tuple[PhoneProcess, str]:
    """A phone started and registered; its role on the overlay then."""
    phone = await group.start(profile, *args)
    event = await phone.registered(START)
    return phone, event["role"]


async def test_two_phones_behind_two_nats_talk(lab: NatOverlay, tmp_path: Path) -> None:
    topology = lab.topology
    count_paths(topology)
    a_tone, b_tone = tone_file(tmp_path / "440.wav", 440.0), tone_file(tmp_path / "660.wav", 660.0)
    a_rec, b_rec = tmp_path / "alice-heard.wav", tmp_path / "bob-heard.wav"
    relay = ("--ice-server", TURN_URL)
    (alice, alice_role), (bob, bob_role) = await asyncio.gather(
        registered(lab.alice, lab.profile("alice"), "--play", str(a_tone), "--record", str(a_rec), *relay),
        registered(lab.bob, lab.profile("bob"), "--play", str(b_tone), "--record", str(b_rec), *relay),
    )
    # Behind a NAT a phone connects as a client (RFC 6940 §4.2): the overlay could not
    # open the connections a peer must accept.
    assert (alice_role, bob_role) == ("client", "client")
    mine, _ = await connected(alice, bob, "bob")
    for phone in (alice, bob):
        ice = await phone.expect("CallMedia", lambda e: e["what"] == "ice-connected", timeout=CALL_SECONDS)
        # Our base (host) to the other NAT's mapping: straight from NAT to NAT, no relay.
        assert ice["detail"].split()[-1] in ("host→srflx", "host→prflx"), ice
        await phone.expect("CallMedia", lambda e: e["what"] == "first-audio", timeout=CALL_SECONDS)
    before = packets(topology)
    # Two quality samples (2 s apart): about two seconds of tone each way.
    await bob.expect("CallQuality", timeout=CALL_SECONDS)
    await bob.expect("CallQuality", timeout=CALL_SECONDS)
    after = packets(topology)
    await hang_up(alice, bob, mine)
    await asyncio.gather(alice.quit(), bob.quit())
    during = {name: after[name] - before[name] for name in PATHS}
    print(f"UDP packets through NAT 1 while the tones played: {during}")
    assert during["direct out"] >= MEDIA_PACKETS and during["direct in"] >= MEDIA_PACKETS, during
    # Nothing of the media through the relay: at most a stray TURN refresh or a check.
    assert during["relay out"] + during["relay in"] < MEDIA_PACKETS // 5, during
    check_tone(b_rec, 440.0)  # bob heard alice
    check_tone(a_rec, 660.0)  # alice heard bob

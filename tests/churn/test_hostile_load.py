"""A live ``p2psip peer`` under attack (RFC 6940 §6.1, §6.3.2, §6.3.4, §6.5.1.2, §6.6,
§6.7, §13): fed garbage and mutated messages by a hostile client for a while
(``P2PSIP_HOSTILE_SECONDS``, default 60), it keeps answering valid requests and logs each
kind of bad message once, not a flood; under many half-open connections, a flood of
requests from one node and huge fragment counts it sheds the load and stays up.

The attacker holds a certificate of the overlay and speaks through hand-driven TLS links
(:mod:`multinode.raw_link`); a worker-hosted peer of the ring checks that the victim keeps
serving everyone else."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from multinode.raw_link import RawLink, error_of

from app.bench.overlay_harness import OverlayHarness
from app.peer import PeerSetup, peer_setup
from app.profile import load_profile
from reload_core.node.envelope import build_message
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import (
    FRAGMENT_HIGH_BIT,
    LAST_FRAGMENT_BIT,
    Message,
    MessageContents,
    NodeDestination,
)
from reload_core.wire.registry import encode_struct

from .conftest import MakeOverlay
from .support import bad_log_lines, open_fds, rss_of

pytestmark = pytest.mark.multinode

HOSTILE_SECONDS = float(os.environ.get("P2PSIP_HOSTILE_SECONDS", "60"))
FIXED_HEADER = 38


@dataclass
class Victim:
    harness: OverlayHarness
    attacker: PeerSetup
    friend: PeerSetup  # another client identity, well-behaved
    node_id: bytes  # the victim, peer 0
    far: bytes  # peer 1
    observer: int  # a worker-hosted peer that checks the victim keeps serving
    host: str
    port: int
    pid: int
    log: Path
    links: list[RawLink]

    async def link(self, setup: PeerSetup | None = None) -> RawLink:
        link = await RawLink.open(setup or self.attacker, self.host, self.port)
        self.links.append(link)
        return link

    async def ping(self, link: RawLink, timeout: float = 15.0) -> MessageCode | ErrorCode | int | None:
        """A valid Ping to the victim, sent again while it answers "resend later"
        (Error_Request_Timeout, §6.3.3.1); the final answer's code."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            request = link.request((NodeDestination(self.node_id),))
            link.send_frame(request.to_bytes())
            answer = await response(link, max(0.1, deadline - loop.time()))
            while answer.forwarding_header.transaction_id != request.forwarding_header.transaction_id:
                answer = await response(link, max(0.1, deadline - loop.time()))  # late, to earlier ones
            code = answer.message_contents.message_code
            if code == MessageCode.ping_ans:
                return MessageCode.ping_ans
            if error_of(answer) != ErrorCode.Error_Request_Timeout or loop.time() >= deadline:
                return error_of(answer)

    async def served(self, count: int = 5) -> int:
        """Pings from the observer to the victim and through it to the far peer: how many
        were answered by the right peer."""
        targets = [(self.observer, self.node_id, False), (self.observer, self.far, False)] * count
        results = await self.harness.lookups(len(targets), targets=targets)
        return sum(1 for r in results if r.ok and r.responder == r.target)

    def log_lines_about(self, who: bytes) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if who.hex()[:8] in line]


async def response(link: RawLink, timeout: float) -> Message:
    """The next message on ``link`` (an empty data frame, which another implementation
    might send, is skipped; the victim's own keepalives are Pings, skipped by the caller's
    transaction check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        data = await asyncio.wait_for(link.messages.get(), max(0.01, deadline - loop.time()))
        if data:
            return Message.from_bytes(data, link.setup.settings.wire_context)


@pytest_asyncio.fixture
async def victim(make_overlay: MakeOverlay, tmp_path: Path) -> AsyncIterator[Victim]:
    logs = tmp_path / "logs"
    logs.mkdir()
    overlay = make_overlay(3, key_kind="ecdsa")
    mallory = overlay.add_profile("mallory")
    trudy = overlay.add_profile("trudy")
    async with OverlayHarness(overlay, workers=1, log_dir=logs) as harness:
        near = await harness.start_process(0)
        await harness.start_process(1)
        await harness.start_peer(2)
        await harness.wait_ring(60)
        host, _, port = near.ready.result()["listen"].rpartition(":")
        assert near.proc is not None and near.log_path is not None
        state = Victim(
            harness,
            peer_setup(load_profile(mallory.directory)),
            peer_setup(load_profile(trudy.directory)),
            overlay.peers[0].node_id,
            overlay.peers[1].node_id,
            2,
            host,
            int(port),
            near.proc.pid,
            near.log_path,
            [],
        )
        try:
            yield state
        finally:
            for link in state.links:
                with contextlib.suppress(Exception):
                    await link.close()
            assert near.proc.returncode is None, "the victim died"
            assert not bad_log_lines([near.log_path]), bad_log_lines([near.log_path])[:10]


# ---------------------------------------------------------------- garbage and mutations


def mutations(link: RawLink, victim: bytes, far: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    """One round of hostile data frames, each named by what was done to it."""
    valid = link.request((NodeDestination(rng.choice((victim, far))),)).to_bytes()
    flipped = bytearray(valid)
    at = rng.randrange(4, len(flipped))
    flipped[at] ^= 1 << rng.randrange(8)
    body_flip = bytearray(valid)
    body_flip[rng.randrange(FIXED_HEADER + 34, len(body_flip))] ^= 0xFF
    return [
        ("random bytes", os.urandom(rng.randrange(1, 600))),
        ("bit flip", bytes(flipped)),
        ("flipped payload byte", bytes(body_flip)),
        ("truncated", valid[: rng.randrange(1, len(valid))]),
        ("trailing bytes", valid + os.urandom(rng.randrange(1, 40))),
        ("empty", b""),
        ("relo_token only", valid[:4]),
        ("huge length field", valid[:16] + (0xFFFFFFFF).to_bytes(4, "big") + valid[20:]),
        ("garbage after a valid header", valid[: FIXED_HEADER + 40] + os.urandom(200)),
    ]


@pytest.mark.timeout(HOSTILE_SECONDS + 240)
async def test_garbage_and_mutated_messages_are_survived_and_logged_once(victim: Victim) -> None:
    rng = random.Random(99)
    attacker_id = victim.attacker.signer.node_id
    sent: Counter[str] = Counter()
    served = asked = 0
    deadline = time.monotonic() + HOSTILE_SECONDS
    link = await victim.link()
    while time.monotonic() < deadline:
        if link.closed.is_set():
            link = await victim.link()  # garbage on the stream closes that link only (§6.6.2)
        for name, frame in mutations(link, victim.node_id, victim.far, rng):
            link.send_frame(frame)
            sent[name] += 1
        if rng.random() < 0.05:
            link.send_raw(os.urandom(rng.randrange(1, 100)))  # not even a frame
            sent["raw stream garbage"] += 1
        await asyncio.sleep(0.001)  # pace the rounds (the victim's link budget sheds the rest)
        if sum(sent.values()) % 900 < 10:
            served += await victim.served(1)
            asked += 2
    served += await victim.served(5)
    asked += 10

    print(
        f"hostile {HOSTILE_SECONDS:.0f} s: {sum(sent.values())} bad frames {dict(sent)}; {served}/{asked} served"
    )
    assert sum(sent.values()) >= 1000
    assert served == asked, "valid Pings to and through the victim went unanswered"
    # Each kind of bad input is logged once per log window (60 s) per peer, not per message.
    lines = victim.log_lines_about(attacker_id)
    windows = int(HOSTILE_SECONDS // 60) + 1
    assert 0 < len(lines) <= 12 * windows, lines
    kinds = Counter(line.split(" from ")[0].rsplit(": ", 1)[-1] for line in lines)
    assert max(kinds.values()) <= windows, kinds
    # Others are served at once; the attacker again once it behaves and its backlog, shed
    # against its own budget, has drained.
    for old in victim.links:
        await old.close()
    assert await victim.ping(await victim.link(victim.friend)) == MessageCode.ping_ans
    assert await victim.ping(await victim.link(), timeout=60) == MessageCode.ping_ans
    await victim.harness.wait_ring(30)


# ---------------------------------------------------------------- resource exhaustion


async def test_half_open_connections_are_capped_and_the_peer_stays_up(victim: Victim) -> None:
    baseline_fds = open_fds(victim.pid)
    held: list[socket.socket] = []
    try:
        for _ in range(300):  # connect, then never start TLS
            sock = socket.create_connection((victim.host, victim.port))
            held.append(sock)
        assert await victim.served(5) == 10  # links already up carry on
        # The victim holds at most its handshake cap (64) of them; it closed the others.
        assert open_fds(victim.pid) <= baseline_fds + 64 + 16
    finally:
        for sock in held:
            sock.close()
    # Once they are gone (the victim sees them close), a new link gets through.
    assert await victim.ping(await victim.link(victim.friend)) == MessageCode.ping_ans
    await victim.harness.wait_ring(30)


async def test_a_request_flood_is_shed_with_errors(victim: Victim) -> None:
    link = await victim.link()
    for _ in range(3000):
        link.send_frame(link.request((NodeDestination(victim.node_id),)).to_bytes())
    answers: list[object] = []
    with contextlib.suppress(TimeoutError):
        while True:
            answers.append(await response(link, 5))
    codes = Counter(
        "ping_ans" if a.message_contents.message_code == MessageCode.ping_ans else error_of(a)  # type: ignore[attr-defined]
        for a in answers
    )
    print(f"request flood of 3000 Pings: {dict(codes)}")
    assert codes["ping_ans"] < 3000 * 0.5, codes  # most of the flood was shed
    assert codes[ErrorCode.Error_Request_Timeout] >= 1, codes  # "resend later", §6.3.3.1
    assert await victim.served(5) == 10  # everyone else is served meanwhile
    assert await victim.ping(await victim.link(victim.friend)) == MessageCode.ping_ans
    lines = victim.log_lines_about(victim.attacker.signer.node_id)
    assert len(lines) <= 5, lines  # the flood is logged, once


def fragments(data: bytes, chunk: int) -> list[bytes]:
    """``data`` cut into fragments of ``chunk`` payload bytes (§6.7), however small."""
    header_len = FIXED_HEADER + int.from_bytes(data[32:34], "big") + int.from_bytes(data[34:36], "big")
    header_len += int.from_bytes(data[36:38], "big")
    payload = data[header_len:]
    out = []
    for offset in range(0, len(payload), chunk):
        piece = payload[offset : offset + chunk]
        last = LAST_FRAGMENT_BIT if offset + chunk >= len(payload) else 0
        fragment = (FRAGMENT_HIGH_BIT | last | offset).to_bytes(4, "big")
        length = (header_len + len(piece)).to_bytes(4, "big")
        out.append(data[:12] + fragment + length + data[20:header_len] + piece)
    return out


async def test_huge_fragment_counts_are_dropped_within_bounds(victim: Victim) -> None:
    link = await victim.link()
    rss_before = rss_of(victim.pid)

    def big_request(setup: PeerSetup = victim.attacker) -> bytes:
        return build_message(
            setup.settings,
            setup.signer,
            transaction_id=secrets.randbits(64),
            destinations=(NodeDestination(victim.node_id),),
            contents=MessageContents(MessageCode.ping_req, encode_struct(PingReq(bytes(4000)))),
        ).to_bytes()

    # One message in 1000 fragments of 4 bytes (over the per-message fragment limit), and
    # 2000 messages of which only the first fragment ever comes (over the per-source and
    # overall reassembly limits): none of it may pile up.
    for piece in fragments(big_request(), 4):
        link.send_frame(piece)
    for _ in range(2000):
        link.send_frame(fragments(big_request(), 1000)[0])
    assert await victim.served(5) == 10
    assert rss_of(victim.pid) < rss_before + 64 * 2**20
    # A message in a few honest fragments, from another node, still gets through.
    honest = await victim.link(victim.friend)
    request = big_request(victim.friend)
    for piece in fragments(request, 1500):
        honest.send_frame(piece)
    answer = await response(honest, 15)
    assert answer.forwarding_header.transaction_id == int.from_bytes(request[20:28], "big")
    assert answer.message_contents.message_code == MessageCode.ping_ans

"""ICE candidates from a configured TURN server (coturn on this machine's interface
address, long-term credentials): our SDP carries a relayed candidate, and with
``relay_only`` a call runs through the relay (no host candidate is offered) with audio."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiortc import RTCIceServer

from app.media.events import FirstAudio
from app.media.sdp import SdpText
from app.media.session import AudioOptions, MediaSession

from .session_support import Recording, connect, interface_address_or_skip, tone_file

pytestmark = pytest.mark.media

T = 15.0
USER, PASSWORD = "media", "secret-of-media"


def free_udp_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def turn_server(tmp_path: Path) -> AsyncIterator[RTCIceServer]:
    address = interface_address_or_skip()
    if shutil.which("turnserver") is None:
        pytest.skip("coturn (turnserver) is not installed")
    port = free_udp_port(address)
    proc = await asyncio.create_subprocess_exec(
        "turnserver", "-n", "-v", "--log-file=stdout", "--simple-log",
        f"--listening-ip={address}", f"--relay-ip={address}", f"--listening-port={port}",
        "--lt-cred-mech", f"--user={USER}:{PASSWORD}", "--realm=media.test.example",
        "--no-tls", "--no-dtls", "--no-cli", "--no-tcp", "--no-tcp-relay",
        f"--pidfile={tmp_path / 'turnserver.pid'}", f"--userdb={tmp_path / 'turndb'}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    stdout = proc.stdout

    async def ready() -> None:
        while line := await stdout.readline():
            if b"UDP listener opened on" in line:
                return
        raise RuntimeError("turnserver exited before listening")

    async def drain() -> None:  # its log must not fill the pipe
        while await stdout.readline():
            pass

    drainer: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(ready(), 10)
        drainer = asyncio.get_running_loop().create_task(drain())
        yield RTCIceServer(urls=f"turn:{address}:{port}", username=USER, credential=PASSWORD)
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if drainer is not None:
            await asyncio.gather(drainer, return_exceptions=True)


def candidate_types(sdp: bytes) -> list[str]:
    text = SdpText.parse(sdp.decode())
    out = []
    for section in text.media:
        for line in section:
            if line.startswith("a=candidate:"):
                parts = line.split()
                out.append(parts[parts.index("typ") + 1])
    return out


async def test_relayed_candidates_and_a_call_through_turn(turn_server: RTCIceServer, tmp_path: Path) -> None:
    plain = MediaSession(ice_servers=[turn_server], audio=AudioOptions(use_devices=False))
    try:
        offer = await plain.make_offer()
        assert "relay" in candidate_types(offer) and "host" in candidate_types(offer)
    finally:
        await plain.close()

    record = tmp_path / "heard.wav"
    alice = MediaSession(
        ice_servers=[turn_server],
        relay_only=True,
        audio=AudioOptions(play=tone_file(tmp_path / "tone.wav", 440.0), use_devices=False),
    )
    bob = MediaSession(
        ice_servers=[turn_server], relay_only=True, audio=AudioOptions(record=record, use_devices=False)
    )
    try:
        offer = await alice.make_offer()
        assert set(candidate_types(offer)) == {"relay"}
        answer = await bob.answer(offer)
        assert isinstance(answer, bytes) and set(candidate_types(answer)) == {"relay"}
        assert await alice.accept_answer(answer) is None
        await bob.wait_event(FirstAudio, T)
        await asyncio.sleep(1.0)
        pc = alice.peer_connection
        assert pc is not None and pc.connectionState == "connected"
    finally:
        await alice.close()
        await bob.close()
    heard = Recording.read(record)
    first, last = heard.span()
    assert abs(heard.frequency(first, last) - 440.0) <= 5.0
    assert heard.longest_gap(first, last) <= 0.06


async def test_connect_helper_is_the_direct_path() -> None:
    """(The other tests use host candidates only: no server is ever contacted.)"""
    interface_address_or_skip()
    a, b = (
        MediaSession(audio=AudioOptions(use_devices=False)),
        MediaSession(audio=AudioOptions(use_devices=False)),
    )
    try:
        await connect(a, b)
        offer = await a.make_offer()
        assert set(candidate_types(offer)) == {"host"}
    finally:
        await a.close()
        await b.close()

"""A live TLS overlay on 127.0.0.1, captured on ``lo``, decrypted and dissected by
Wireshark's RELOAD dissectors (Debian's tshark; see tests/wire/tshark_support.py).

Three peers form a ring over TLS/TCP links (RFC 6940 §6.6.5) with ``SSLKEYLOGFILE`` set,
ping each other, then stay idle for several keepalive intervals (a short one, so that
the run takes seconds), while ``dumpcap`` captures their ports. Then:

- tshark decrypts the capture with the key log and hands the plaintext to its
  ``reload-framing`` dissector: no packet may be malformed or carry a warning in TLS or
  RELOAD, and every application-data record must decrypt to RELOAD framing;
- the decrypted byte streams (``-z follow,tls,raw``) are cut into framed messages: every
  DATA frame (§6.6.2) must carry a RELOAD message, keepalives included (they are Pings,
  §6.5.3, not empty frames), and our codec must decode each;
- since tshark's TLS path dissects only the first framed message of a record, every
  framed message is also put in a segment of its own on port 6084
  (:class:`~tests.wire.tshark_support.TcpCapture`) and tshark must decode each DATA
  frame as the RELOAD message our codec sees, again with nothing malformed.

The capture runs only where capturing is allowed (root or CAP_NET_RAW); otherwise the
tests are skipped with dumpcap's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from reload_core.links.framing import LinkConfig, StreamDeframer
from reload_core.links.tls import OverlayTrust, TlsCredentials
from reload_core.node import Node, wait_until
from reload_core.node.transport import tls_transport
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import MessageCode
from reload_core.wire.framing import MAX_FRAMED_MESSAGE, AckFrame, DataFrame
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import Message, NodeDestination
from tests.node.support import OVERLAY, OverlayPki, ring_errors, settings
from tests.wire.tshark_support import TSHARK, TcpCapture, expert_problems, fields_named, first

DUMPCAP = shutil.which("dumpcap")
pytestmark = pytest.mark.skipif(
    TSHARK is None or DUMPCAP is None, reason="tshark/dumpcap are not installed (Debian package 'tshark')"
)

KEEPALIVE = 0.25
"""The links' keepalive interval: seconds of idleness before a keepalive Ping."""
IDLE_KEEPALIVES = 8
"""Keepalives the peers must have sent, all together, before the capture ends."""


class CaptureUnavailable(Exception):
    """dumpcap cannot capture here (no permission, no loopback interface...)."""


class LoopbackCapture:
    """dumpcap on ``lo`` writing pcapng to a pipe (which it flushes packet by packet).
    :meth:`mark` sends a UDP datagram with a fresh token to ourselves and waits until it
    shows up in the capture: once before the traffic (the capture is live; dumpcap says
    "Capturing" a little before it is) and once after (everything before it is in)."""

    def __init__(self, capture_filter: str) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._port = int(self._sock.getsockname()[1])
        self.capture_filter = f"({capture_filter}) or udp port {self._port}"
        self.data = bytearray()
        self._changed = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 10.0) -> None:
        assert DUMPCAP is not None
        self._proc = await asyncio.create_subprocess_exec(
            DUMPCAP,
            "-q",
            "-i",
            "lo",
            "-f",
            self.capture_filter,
            "-w",
            "-",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.ensure_future(self._read())
        await self.mark(timeout)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while chunk := await self._proc.stdout.read(65536):
            self.data += chunk
            self._changed.set()
        self._changed.set()

    async def mark(self, timeout: float = 10.0) -> None:
        token = f"p2psip-capture-{secrets.token_hex(8)}".encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while token not in self.data:
            if self._reader is None or self._reader.done():
                raise CaptureUnavailable(await self._stderr())
            if loop.time() >= deadline:
                raise CaptureUnavailable(f"no packet captured on lo in {timeout} s")
            self._sock.sendto(token, ("127.0.0.1", self._port))
            self._changed.clear()
            # Datagrams sent before the capture is live are not seen: send again until one is.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.05)

    async def _stderr(self) -> str:
        proc = self._proc
        if proc is None or proc.stderr is None:
            return "dumpcap did not start"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5.0)
        text = (await proc.stderr.read()).decode(errors="replace").strip()
        return f"dumpcap: {text or f'exit status {proc.returncode}'}"

    async def stop(self) -> bytes:
        self._sock.close()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10.0)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            await self._reader
        return bytes(self.data)


@dataclass
class LiveRun:
    pcap: Path
    keys: Path
    rsa_key: Path
    ports: list[int]
    keepalives: int
    pings: int
    skipped: str | None = None
    streams: dict[int, dict[bool, bytes]] = field(default_factory=dict)

    def tshark(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """tshark over the capture, decrypting with the key log; TLS on our ports goes to
        the RELOAD framing dissector. (Its ``tls.port`` table takes RELOAD framing only
        through an ``ssl_keys`` row, whose key file must hold some RSA key: ours is a
        throwaway; TLS 1.3 and ECDHE are decrypted from the key log.)"""
        assert TSHARK is not None
        args = [TSHARK, "-n", "-r", str(self.pcap), "-o", f"tls.keylog_file:{self.keys}"]
        for port in self.ports:
            args += ["-d", f"tcp.port=={port},tls"]
            args += ["-o", f'uat:ssl_keys:"0.0.0.0","{port}","reload-framing","{self.rsa_key}",""']
        return subprocess.run([*args, *extra], capture_output=True, text=True, timeout=300, check=True)


async def _run_overlay(directory: Path) -> LiveRun:
    keys = directory / "keys.log"
    pki = OverlayPki()
    trust = OverlayTrust(OVERLAY, root_certs=(pki.root,))
    config = LinkConfig(keepalive_interval=KEEPALIVE)
    nodes: list[Node] = []
    for _ in range(3):
        signer = pki.signer()
        credentials = TlsCredentials(signer.private_key, signer.certificate)
        nodes.append(
            Node(signer, pki.resolver(), settings(), tls_transport(credentials, trust, config=config))
        )
    idle = asyncio.Event()
    for node in nodes:
        original = node.link_idle

        def link_idle(link: object, original: object = original) -> None:
            original(link)  # type: ignore[operator]
            idle.set()

        node.link_idle = link_idle  # type: ignore[method-assign,assignment]
    capture: LoopbackCapture | None = None
    try:
        addresses = [await node.start(IpAddressPort("127.0.0.1", 0)) for node in nodes]
        ports = [a.port for a in addresses]
        capture = LoopbackCapture(" or ".join(f"tcp port {p}" for p in ports))
        try:
            await capture.start()
        except CaptureUnavailable as exc:
            return LiveRun(directory, keys, directory, ports, 0, 0, skipped=str(exc))
        first_node, *others = nodes
        first_node.start_alone()
        for node in others:
            await node.join([addresses[0]], timeout=30.0)
        await wait_until(nodes, lambda: not ring_errors(nodes), 30.0)
        pings = 0
        for a in nodes:
            for b in nodes:
                if a is not b:
                    await a.request(NodeDestination(b.node_id), MessageCode.ping_req, PingReq())
                    pings += 1
        # Idle links: keepalives, each a Ping on a link that carried nothing for KEEPALIVE.
        before = sum(n.keepalives_sent for n in nodes)
        while sum(n.keepalives_sent for n in nodes) < before + IDLE_KEEPALIVES:
            idle.clear()
            await asyncio.wait_for(idle.wait(), 10 * KEEPALIVE)
        keepalives = sum(n.keepalives_sent for n in nodes)
        for node in nodes:
            await node.close()
        await capture.mark()
    finally:
        for node in nodes:
            await node.close()
        data = await capture.stop() if capture is not None else b""
    pcap = directory / "overlay.pcapng"
    pcap.write_bytes(data)
    rsa_key = directory / "any-rsa.pem"
    rsa_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()
        )
    )
    return LiveRun(pcap, keys, rsa_key, ports, keepalives, pings)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    directory = tmp_path_factory.mktemp("live-capture")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSLKEYLOGFILE", str(directory / "keys.log"))
        run = asyncio.run(_run_overlay(directory))
    if run.skipped is not None:
        pytest.skip(f"cannot capture on lo: {run.skipped}")
    run.streams = _decrypted_streams(run)
    yield run


# ---------------------------------------------------------------- reading the capture


def _pdml(result: subprocess.CompletedProcess[str]) -> dict[int, ET.Element]:
    root = ET.fromstring(result.stdout)
    return {int(first(p, "num", "geninfo").get("show", "0")): p for p in root.iter("packet")}


def _decrypted_streams(run: LiveRun) -> dict[int, dict[bool, bytes]]:
    """Each TCP connection's plaintext, both ways: ``True`` from the dialer to the listener."""
    listed = run.tshark("-Y", "tls.app_data", "-T", "fields", "-e", "tcp.stream").stdout.split()
    streams: dict[int, dict[bool, bytes]] = {}
    for index in sorted({int(s) for s in listed}):
        text = run.tshark("-q", "-z", f"follow,tls,raw,{index}").stdout
        lines = text.splitlines()
        node0 = next(line for line in lines if line.startswith("Node 0: "))
        node0_port = int(node0.rpartition(":")[2])
        ways: dict[bool, bytearray] = {True: bytearray(), False: bytearray()}
        body = lines[lines.index(node0) + 2 :]
        for line in body:
            if not line.strip() or line.startswith("="):
                continue
            from_node1 = line.startswith("\t")
            # Node 0 spoke first; it is the dialer unless its port is a listening one.
            node0_dialed = node0_port not in run.ports
            ways[node0_dialed != from_node1] += bytes.fromhex(line.strip())
        streams[index] = {k: bytes(v) for k, v in ways.items()}
    return streams


def _frames(data: bytes) -> list[DataFrame | AckFrame]:
    deframer = StreamDeframer(MAX_FRAMED_MESSAGE)
    deframer.feed(data)
    frames: list[DataFrame | AckFrame] = []
    while (item := deframer.next()) is not None:
        assert isinstance(item, (DataFrame, AckFrame)), item
        frames.append(item)
    assert deframer.buffered == 0, "the plaintext ends inside a framed message"
    return frames


# ---------------------------------------------------------------- the tests


def test_the_links_went_idle_and_sent_keepalives(live: LiveRun) -> None:
    assert live.keepalives >= IDLE_KEEPALIVES
    assert len(live.streams) >= 3  # the ring's links, plus the join's first connection


def test_tshark_decrypts_every_record_to_reload_with_nothing_malformed(live: LiveRun) -> None:
    packets = _pdml(live.tshark("-T", "pdml"))
    problems: list[str] = []
    records = 0
    for num, packet in packets.items():
        protos = [p.get("name") for p in packet.iter("proto")]
        problems += [f"frame {num}: {p}" for p in expert_problems(packet) if "tcp." not in p]
        app_data = fields_named(packet, "tls.app_data")
        if not app_data:
            continue
        records += len(app_data)
        # Each decrypted record goes to RELOAD framing; anything else is an undecryptable
        # record or a payload the dissector refused (as it refuses an empty DATA frame).
        if protos.count("reload-framing") != len(app_data):
            problems.append(f"frame {num}: {len(app_data)} records, protocols {protos}")
    assert not problems, "\n".join(problems)
    assert records > 50


def test_every_data_frame_carries_a_reload_message(live: LiveRun) -> None:
    codes: Counter[str] = Counter()
    for ways in live.streams.values():
        for data in ways.values():
            for frame in _frames(data):
                if isinstance(frame, DataFrame):
                    assert frame.message, "an empty DATA frame (§6.6.2) is no RELOAD message"
                    message = Message.from_bytes(frame.message)
                    codes[MessageCode(message.message_contents.message_code).name] += 1
    # Our own Pings were answered; keepalives are Pings too, acked (and answered) like any.
    assert codes["ping_req"] >= live.pings + live.keepalives
    assert codes["ping_ans"] >= live.pings
    assert codes["attach_req"] and codes["join_req"] and codes["update_req"]


def test_tshark_decodes_every_framed_message_on_its_own(live: LiveRun, tmp_path: Path) -> None:
    """One framed message per segment, so that tshark dissects every one."""
    assert TSHARK is not None
    cap = TcpCapture()
    cap.handshake()
    expected: dict[int, DataFrame | AckFrame] = {}
    for ways in live.streams.values():
        for from_dialer, data in ways.items():
            for frame in _frames(data):
                expected[cap.send(from_dialer, frame.to_bytes())] = frame
    cap.close()
    pcap = tmp_path / "one-per-segment.pcap"
    cap.write(pcap)
    packets = _pdml(
        subprocess.run(
            [TSHARK, "-r", str(pcap), "-T", "pdml"], capture_output=True, timeout=300, check=True, text=True
        )
    )
    problems: list[str] = []
    for num, frame in expected.items():
        packet = packets[num]
        problems += [f"frame {num}: {p}" for p in expert_problems(packet)]
        if isinstance(frame, AckFrame):
            assert first(packet, "reload_framing.type").get("show") == "129"
            continue
        assert first(packet, "reload_framing.type").get("show") == "128"
        code = Message.from_bytes(frame.message).message_contents.message_code
        assert int(first(packet, "reload.message.code").get("show", "")) == code, f"frame {num}"
        assert int(first(packet, "reload_framing.message.length").get("show", "")) == len(frame.message)
    assert not problems, "\n".join(problems)
    assert sum(isinstance(f, DataFrame) for f in expected.values()) > 50


def test_the_key_log_holds_every_connection(live: LiveRun) -> None:
    """SSLKEYLOGFILE: both ends of every link wrote their secrets (NSS key log format)."""
    lines = [line.split() for line in live.keys.read_text().splitlines()]
    secrets_by_random = Counter(line[1] for line in lines if line[0] == "CLIENT_TRAFFIC_SECRET_0")
    assert len(secrets_by_random) >= len(live.streams)
    assert set(secrets_by_random.values()) == {2}
    assert os.stat(live.keys).st_mode & 0o077 == 0

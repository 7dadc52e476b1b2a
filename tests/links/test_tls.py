"""TLS/TCP links with framing header (§6.6.5) on 127.0.0.1 with real certificates."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from reload_core.links.base import CloseCode, Link, LinkNotOpenError
from reload_core.links.framing import LinkConfig
from reload_core.links.tls import OverlayTrust, TlsCredentials, TlsEndpoint, TlsLink
from reload_core.security.certificates import private_key_to_pem
from reload_core.uri import node_id_uri
from reload_core.wire.codes import OverlayLinkType
from reload_core.wire.message import ForwardingHeader

from .conftest import SELF_SIGNED_TRUST, Node, Pki, self_signed_node
from .support import OVERLAY, Recorder, make_message

MakeEndpoint = Callable[..., tuple[TlsEndpoint, Recorder]]


@pytest.fixture
async def endpoint() -> AsyncIterator[MakeEndpoint]:
    made: list[TlsEndpoint] = []

    def make(
        node: Node, trust: OverlayTrust, recorder: Recorder | None = None, **kw: object
    ) -> tuple[TlsEndpoint, Recorder]:
        rec = recorder or Recorder()
        ep = TlsEndpoint(node.credentials, trust, rec, **kw)  # type: ignore[arg-type]
        made.append(ep)
        return ep, rec

    yield make
    for ep in made:
        await ep.close()


async def linked(
    make: MakeEndpoint, a: Node, b: Node, trust: OverlayTrust, **kw: object
) -> tuple[TlsLink, Link, Recorder, Recorder]:
    """b listens, a dials b's Node-ID; returns a's link, b's link and both recorders."""
    ea, ra = make(a, trust, **kw)
    eb, rb = make(b, trust, **kw)
    listener = await eb.listen()
    link = ea.connect(listener.address, b.node_id)
    await asyncio.wait_for(link.wait_open(), 5)
    await rb.wait(lambda: rb.opened)
    return link, rb.opened[0], ra, rb


@pytest.mark.parametrize("intermediate_on", ["listener", "dialer"])
async def test_messages_both_ways_over_mutually_authenticated_tls(
    pki: Pki, endpoint: MakeEndpoint, intermediate_on: str
) -> None:
    a = pki.node(rsa_key=True, via_intermediate=intermediate_on == "dialer")
    b = pki.node(via_intermediate=intermediate_on == "listener")
    link, server, ra, rb = await linked(endpoint, a, b, pki.trust())
    assert link.remote_node_id == b.node_id and server.remote_node_id == a.node_id
    assert link.remote_certificate is not None and link.remote_certificate.der == b.credentials.certificate
    assert link.link_type is OverlayLinkType.TLS_TCP_FH_NO_ICE
    assert link.tls_version in ("TLSv1.2", "TLSv1.3")
    to_b = [make_message(400 + i, i) for i in range(20)]
    to_a = [make_message(1000 + i, 100 + i) for i in range(20)]
    for m in to_b:
        link.send(m)
    for m in to_a:
        server.send(m)
    await rb.wait(lambda: len(rb.messages) == 20)
    await ra.wait(lambda: len(ra.messages) == 20)
    assert rb.payloads() == to_b and ra.payloads() == to_a
    await ra.wait(lambda: link.rtt is not None and server.rtt is not None)
    assert 0 <= link.rtt < 1.0  # type: ignore[operator]
    assert not link.suspect


async def test_large_messages_up_to_the_limit(pki: Pki, endpoint: MakeEndpoint) -> None:
    limit = 200_000
    cfg = LinkConfig(max_message_size=limit)
    link, server, ra, rb = await linked(endpoint, pki.node(), pki.node(), pki.trust(), config=cfg)
    big = [make_message(limit, 1), make_message(limit - 1, 2), make_message(150_000, 3)]
    for m in big:
        link.send(m)
        server.send(m)
    await rb.wait(lambda: len(rb.messages) == 3)
    await ra.wait(lambda: len(ra.messages) == 3)
    assert rb.payloads() == big and ra.payloads() == big
    assert link.is_open and server.is_open


async def test_over_limit_message_gets_an_answer_and_the_link_closes(
    pki: Pki, endpoint: MakeEndpoint
) -> None:
    a, b = pki.node(), pki.node()

    def answer(link: Link, header: ForwardingHeader, length: int) -> None:
        # What the node does: answer Error_Message_Too_Large to the transaction (§6.6).
        link.send(make_message(450, header.transaction_id))

    ea, ra = endpoint(a, pki.trust(), config=LinkConfig(max_message_size=8_000_000))
    eb, rb = endpoint(
        b, pki.trust(), Recorder(on_too_large=answer), config=LinkConfig(max_message_size=10_000)
    )
    listener = await eb.listen()
    link = await ea.open_link(listener.address, b.node_id)
    link.send(make_message(600, 1))
    # Megabytes: b answers and closes while most of it is still unread in its socket.
    link.send(make_message(6_000_000, transaction_id=0xABCDEF))
    reason = await asyncio.wait_for(link.wait_closed(), 10)
    assert reason.code is CloseCode.REMOTE
    assert ra.payloads() == [make_message(450, 0xABCDEF)]
    [server] = rb.opened
    assert rb.payloads() == [make_message(600, 1)]
    [(_, header, length)] = rb.too_large
    assert (header.transaction_id, length, header.length) == (0xABCDEF, 6_000_000, 6_000_000)
    assert rb.closed_reason(server).code is CloseCode.MESSAGE_TOO_LARGE  # type: ignore[union-attr]


async def test_dialer_with_a_certificate_from_another_ca_is_refused(pki: Pki, endpoint: MakeEndpoint) -> None:
    outsider, b = pki.node(ca=pki.other_root), pki.node()
    ea, _ra = endpoint(outsider, pki.trust())
    eb, rb = endpoint(b, pki.trust())
    listener = await eb.listen()
    link = ea.connect(listener.address, b.node_id)
    reason = await asyncio.wait_for(link.wait_closed(), 5)
    # With TLS 1.3 the dialer's handshake completes before the listener judges its
    # certificate, so the dialer learns of the refusal from the alert that follows.
    assert reason.code is CloseCode.AUTHENTICATION_FAILED and "unknown ca" in reason.detail
    assert rb.opened == [] and rb.closed == []  # the node never hears of it
    [(_, refused)] = eb.handshake_failures
    assert refused.code is CloseCode.AUTHENTICATION_FAILED
    assert "root" in refused.detail or "issuer" in refused.detail


async def test_listener_with_a_certificate_from_another_ca_is_refused(
    pki: Pki, endpoint: MakeEndpoint
) -> None:
    a, outsider = pki.node(), pki.node(ca=pki.other_root)
    ea, ra = endpoint(a, pki.trust())
    eb, rb = endpoint(outsider, pki.trust())
    listener = await eb.listen()
    link = ea.connect(listener.address, outsider.node_id)
    with pytest.raises(LinkNotOpenError) as info:
        await asyncio.wait_for(link.wait_open(), 5)
    assert info.value.reason is not None and info.value.reason.code is CloseCode.AUTHENTICATION_FAILED
    assert ra.opened == [] and ra.closed == [(link, info.value.reason)]
    assert rb.opened == []


async def test_client_without_a_certificate_is_refused(pki: Pki, endpoint: MakeEndpoint) -> None:
    eb, rb = endpoint(pki.node(), pki.trust())
    listener = await eb.listen()
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.check_hostname = False
    anonymous.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.open_connection(*listener.address, ssl=anonymous)
    except ssl.SSLError:
        pass  # TLS 1.2 fails inside the handshake
    else:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await asyncio.wait_for(reader.read(), 5)  # TLS 1.3: the alert follows
        writer.close()
    await rb.wait(lambda: eb.handshake_failures)
    assert rb.opened == []
    assert eb.handshake_failures[0][1].code is CloseCode.AUTHENTICATION_FAILED


async def test_certificate_without_the_dialed_node_id_is_refused(pki: Pki, endpoint: MakeEndpoint) -> None:
    a, b = pki.node(), pki.node()
    ea, ra = endpoint(a, pki.trust())
    eb, rb = endpoint(b, pki.trust())
    listener = await eb.listen()
    link = ea.connect(listener.address, b"\x42" * 16)
    reason = await asyncio.wait_for(link.wait_closed(), 5)
    assert reason.code is CloseCode.WRONG_NODE_ID and b.node_id.hex() in reason.detail
    assert ra.opened == [] and rb.opened == []


async def test_dialing_any_node_id_of_a_multi_id_certificate(pki: Pki, endpoint: MakeEndpoint) -> None:
    ids = [b"\x01" * 16, b"\x02" * 16]
    a, b = pki.node(), pki.node(node_ids=ids)
    ea, _ = endpoint(a, pki.trust())
    eb, _rb = endpoint(b, pki.trust())
    listener = await eb.listen()
    link = await ea.open_link(listener.address, ids[1])
    assert link.remote_node_id == ids[1] and link.remote_node_ids == tuple(ids)


async def test_self_signed_overlay(endpoint: MakeEndpoint) -> None:
    a, b = self_signed_node("a@x"), self_signed_node("b@x")
    link, server, _ra, rb = await linked(endpoint, a, b, SELF_SIGNED_TRUST)
    assert link.remote_node_id == b.node_id and server.remote_node_id == a.node_id
    link.send(make_message(500))
    await rb.wait(lambda: rb.messages)


def _self_signed_with_stolen_node_id(node_id: bytes) -> TlsCredentials:
    """A self-signed certificate claiming a Node-ID its key does not hash to (§11.3.1)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(node_id_uri(node_id, OVERLAY)), x509.RFC822Name("m@x")]
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return TlsCredentials(key, cert.public_bytes(serialization.Encoding.DER))


async def test_self_signed_overlay_refuses_stolen_node_ids_and_ca_certs(
    pki: Pki, endpoint: MakeEndpoint
) -> None:
    b = self_signed_node()
    eb, rb = endpoint(b, SELF_SIGNED_TRUST)
    listener = await eb.listen()
    thief = Node(b.node_id, _self_signed_with_stolen_node_id(b.node_id))
    for dialer in (thief, pki.node()):  # the second is CA-signed: not acceptable here
        ea, _ra = endpoint(dialer, SELF_SIGNED_TRUST)
        link = ea.connect(listener.address, b.node_id)
        await asyncio.wait_for(link.wait_closed(), 5)
    assert rb.opened == []
    assert [r.code for _, r in eb.handshake_failures] == [CloseCode.AUTHENTICATION_FAILED] * 2
    # And a dialer refuses a listener that stole the Node-ID it dials.
    et, _ = endpoint(thief, SELF_SIGNED_TRUST)
    stolen = await et.listen()
    ea, _ra = endpoint(self_signed_node(), SELF_SIGNED_TRUST)
    reason = await asyncio.wait_for(ea.connect(stolen.address, b.node_id).wait_closed(), 5)
    assert reason.code is CloseCode.AUTHENTICATION_FAILED and "do not match" in reason.detail


async def test_close_sends_close_notify(pki: Pki, endpoint: MakeEndpoint) -> None:
    link, server, ra, _rb = await linked(endpoint, pki.node(), pki.node(), pki.trust())
    link.close()
    reason = await asyncio.wait_for(server.wait_closed(), 5)
    assert reason.code is CloseCode.REMOTE and reason.detail == "close_notify"
    assert ra.closed_reason(link).code is CloseCode.LOCAL  # type: ignore[union-attr]


async def test_garbage_frame_closes_the_link_and_nothing_else(pki: Pki, endpoint: MakeEndpoint) -> None:
    a, b = pki.node(), pki.node()
    link, server, _ra, rb = await linked(endpoint, a, b, pki.trust())
    link._transmit([b"\x07 this is not a FramedMessage"])  # raw bytes inside TLS
    reason = await asyncio.wait_for(server.wait_closed(), 5)
    assert reason.code is CloseCode.PROTOCOL_ERROR
    await asyncio.wait_for(link.wait_closed(), 5)
    # Plain-TCP garbage at the listener: refused, the listener goes on accepting.
    assert isinstance(server, TlsLink)
    eb = server.endpoint
    listener_address = link.remote_address
    assert listener_address is not None
    reader, writer = await asyncio.open_connection(*listener_address)
    writer.write(b"\x16\x03\x01\x00\x05hello" * 10)
    assert await asyncio.wait_for(reader.read(), 5) is not None  # server closes on us
    writer.close()
    await writer.wait_closed()
    await rb.wait(lambda: eb.handshake_failures)
    assert eb.handshake_failures[-1][1].code is CloseCode.HANDSHAKE_FAILED
    ea2, _ = endpoint(pki.node(), pki.trust())
    again = await ea2.open_link(listener_address, b.node_id)
    assert again.is_open


async def test_tls12_and_key_log_file(pki: Pki, endpoint: MakeEndpoint, tmp_path: Path) -> None:
    keylog = tmp_path / "keys.log"
    a, b = pki.node(), pki.node()
    ea, _ = endpoint(a, pki.trust(), keylog_file=keylog, max_version=SSL.TLS1_2_VERSION)
    eb, _rb = endpoint(b, pki.trust(), keylog_file=keylog)
    listener = await eb.listen()
    link = await ea.open_link(listener.address, b.node_id)
    assert link.tls_version == "TLSv1.2" and link.cipher is not None and "ECDHE" in link.cipher
    lines = keylog.read_bytes().splitlines()
    assert lines and all(line.startswith(b"CLIENT_RANDOM ") for line in lines)
    assert oct(keylog.stat().st_mode & 0o777) == "0o600"
    ec_, _ = endpoint(pki.node(), pki.trust(), keylog_file=keylog)
    await ec_.open_link(listener.address, b.node_id)
    assert b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" in keylog.read_bytes()  # TLS 1.3 by default


async def test_sslkeylogfile_names_the_key_log_by_default(
    pki: Pki, endpoint: MakeEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As curl and Python's ssl do: ``SSLKEYLOGFILE`` set, both ends log their secrets."""
    keylog = tmp_path / "env-keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    a, b = pki.node(), pki.node()
    ea, _ = endpoint(a, pki.trust())
    eb, rb = endpoint(b, pki.trust())
    listener = await eb.listen()
    await ea.open_link(listener.address, b.node_id)
    await rb.wait(lambda: rb.opened)  # the server's handshake is done too
    labels = [line.split()[0] for line in keylog.read_bytes().splitlines()]
    # TLS 1.3: five secrets per connection, written once by each end.
    assert sorted(set(labels)) == [
        b"CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        b"CLIENT_TRAFFIC_SECRET_0",
        b"EXPORTER_SECRET",
        b"SERVER_HANDSHAKE_TRAFFIC_SECRET",
        b"SERVER_TRAFFIC_SECRET_0",
    ]
    assert all(labels.count(label) == 2 for label in labels)
    monkeypatch.delenv("SSLKEYLOGFILE")
    keylog.unlink()
    c, d = pki.node(), pki.node()
    ec_, _ = endpoint(c, pki.trust())
    ed, _rd = endpoint(d, pki.trust())
    quiet = await ed.listen()
    await ec_.open_link(quiet.address, d.node_id)
    assert not keylog.exists()  # without the variable nothing is written


async def test_handshake_timeouts(pki: Pki, endpoint: MakeEndpoint) -> None:
    quick = LinkConfig(handshake_timeout=0.3)
    silent_peers: list[asyncio.StreamWriter] = []

    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent_peers.append(writer)

    silent = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    try:
        ea, _ra = endpoint(pki.node(), pki.trust(), config=quick)
        link = ea.connect(silent.sockets[0].getsockname()[:2])
        reason = await asyncio.wait_for(link.wait_closed(), 5)
        assert reason.code is CloseCode.HANDSHAKE_FAILED and reason.detail == "timed out"
        # And a listener drops a client that never speaks.
        eb, rb = endpoint(pki.node(), pki.trust(), config=quick)
        listener = await eb.listen()
        reader, writer = await asyncio.open_connection(*listener.address)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()
        [(_, refused)] = eb.handshake_failures
        assert refused.code is CloseCode.HANDSHAKE_FAILED and rb.opened == rb.closed == []
    finally:
        for w in silent_peers:
            w.close()
        silent.close()
        await silent.wait_closed()


async def test_connection_refused(pki: Pki, endpoint: MakeEndpoint) -> None:
    ea, ra = endpoint(pki.node(), pki.trust())
    eb, _ = endpoint(pki.node(), pki.trust())
    listener = await eb.listen()
    address = listener.address
    listener.close()
    await listener.wait_closed()
    link = ea.connect(address)
    reason = await asyncio.wait_for(link.wait_closed(), 5)
    assert reason.code is CloseCode.CONNECT_FAILED
    assert ra.closed == [(link, reason)]


# ---------------------------------------------------------------- a peer in another process


PeerStarter = Callable[[Node, Pki], Awaitable[tuple[asyncio.subprocess.Process, tuple[str, int]]]]


@pytest.fixture
async def peer_process(tmp_path: Path) -> AsyncIterator[PeerStarter]:
    procs: list[asyncio.subprocess.Process] = []

    async def start(node: Node, pki: Pki) -> tuple[asyncio.subprocess.Process, tuple[str, int]]:
        key, cert, root = tmp_path / "key.pem", tmp_path / "cert.der", tmp_path / "root.der"
        key.write_bytes(private_key_to_pem(node.credentials.private_key))
        cert.write_bytes(node.credentials.certificate)
        root.write_bytes(pki.root.der)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).with_name("tls_peer.py")),
            str(key),
            str(cert),
            str(root),
            OVERLAY,
            stdout=asyncio.subprocess.PIPE,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        return proc, ("127.0.0.1", int(line))

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        await proc.wait()


FAST_FAILURE = LinkConfig(failure_timeout=1.0, keepalive_interval=0.2, initial_rto=0.2, min_rto=0.2)


async def _echoing_link(
    pki: Pki, endpoint: MakeEndpoint, peer_process: PeerStarter
) -> tuple[asyncio.subprocess.Process, TlsLink, Recorder]:
    peer = pki.node()
    proc, address = await peer_process(peer, pki)
    ea, ra = endpoint(pki.node(), pki.trust(), config=FAST_FAILURE)
    link = await ea.open_link(address, peer.node_id)
    link.send(make_message(500, 5))
    await ra.wait(lambda: ra.messages)
    assert ra.payloads() == [make_message(500, 5)]
    return proc, link, ra


async def test_a_killed_peer_is_noticed_at_once(
    pki: Pki, endpoint: MakeEndpoint, peer_process: PeerStarter
) -> None:
    proc, link, ra = await _echoing_link(pki, endpoint, peer_process)
    proc.kill()
    await ra.wait(lambda: ra.closed, timeout=FAST_FAILURE.failure_timeout)
    reason = ra.closed_reason(link)
    assert reason is not None and reason.code in (CloseCode.REMOTE, CloseCode.TRANSPORT_ERROR)


async def test_a_frozen_peer_is_suspected_then_failed_within_the_failure_time(
    pki: Pki, endpoint: MakeEndpoint, peer_process: PeerStarter
) -> None:
    proc, link, ra = await _echoing_link(pki, endpoint, peer_process)
    os.kill(proc.pid, signal.SIGSTOP)  # its kernel still ACKs TCP; its link layer no longer acks frames
    loop = asyncio.get_running_loop()
    start = loop.time()
    budget = FAST_FAILURE.keepalive_interval + FAST_FAILURE.failure_timeout  # type: ignore[operator]
    await ra.wait(lambda: ra.closed, timeout=budget + 1.0)
    elapsed = loop.time() - start
    reason = ra.closed_reason(link)
    assert reason is not None and reason.code is CloseCode.NO_ACK
    assert ra.suspects and ra.suspects[0] == (link, True)
    assert elapsed <= budget + 0.8  # timer granularity and a loaded machine

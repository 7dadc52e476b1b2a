"""SIP transports on real sockets (127.0.0.1, ports from the OS): UDP, TCP, TLS with a
self-made certificate, and the AppAttach DTLS connection over ICE (RFC 7904 §5)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.sip.errors import RemoteProtocolError
from app.sip.message import SipMessage, SipRequest, SipResponse, build_response, new_tag, parse_message
from app.sip.transport import (
    DatagramConnectionTransport,
    Peer,
    StreamTransport,
    UdpTransport,
    peer_for_uri,
    uri_transport,
)
from app.sip.uri import SipUri
from tests.sip import samples

WAIT = 10.0
Item = SipMessage | RemoteProtocolError


class Inbox:
    """What a transport delivered, in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[Item, Peer]] = asyncio.Queue()

    def __call__(self, item: Item, peer: Peer) -> None:
        self.queue.put_nowait((item, peer))

    async def next(self) -> tuple[Item, Peer]:
        return await asyncio.wait_for(self.queue.get(), WAIT)

    async def next_message(self) -> tuple[SipMessage, Peer]:
        item, peer = await self.next()
        assert not isinstance(item, RemoteProtocolError), item
        return item, peer


class Errors:
    def __init__(self) -> None:
        self.peers: asyncio.Queue[Peer] = asyncio.Queue()

    def __call__(self, peer: Peer) -> None:
        self.peers.put_nowait(peer)

    async def next(self) -> Peer:
        return await asyncio.wait_for(self.peers.get(), WAIT)


Closers = list[Callable[[], Awaitable[None]]]


@pytest.fixture
async def closers() -> AsyncIterator[Closers]:
    items: Closers = []
    try:
        yield items
    finally:
        for close in reversed(items):
            await close()


def options(call_id: str = "opt.1", method: str = "OPTIONS") -> bytes:
    return samples.msg(
        f"""
{method} sip:bob@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK{call_id.replace(".", "")}
Max-Forwards: 70
To: <sip:bob@127.0.0.1>
From: <sip:alice@127.0.0.1>;tag=1
Call-ID: {call_id}
CSeq: 1 {method}
Content-Length: 0
"""
    )


# ---------------------------------------------------------------- UDP


async def test_udp_request_and_response(closers: Closers) -> None:
    inbox_a, inbox_b = Inbox(), Inbox()
    a = await UdpTransport.create(inbox_a)
    b = await UdpTransport.create(inbox_b)
    closers += [a.close, b.close]
    assert a.local_address[0] == "127.0.0.1" and a.local_address[1] > 0 and a.kind == "udp"
    to_b = a.peer(*b.local_address)
    to_b.send(samples.INVITE)
    request, from_a = await inbox_b.next_message()
    assert request == parse_message(samples.INVITE)
    assert from_a == Peer("udp", "127.0.0.1", a.local_address[1], local=b.local_address)
    assert (from_a.transport, from_a.reliable, from_a.remote_address) == ("UDP", False, a.local_address)
    assert from_a.verified_user is None and from_a.verified_node_id is None
    assert isinstance(request, SipRequest)
    from_a.send(build_response(request, 180, to_tag=new_tag()).encode())
    response, from_b = await inbox_a.next_message()
    assert isinstance(response, SipResponse) and response.status == 180
    assert (
        from_b == to_b and hash(from_b) == hash(to_b) and str(from_b) == f"udp:127.0.0.1:{b.local_address[1]}"
    )


async def test_udp_garbage_gets_400_and_the_transport_goes_on(
    closers: Closers, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox()
    server = await UdpTransport.create(inbox)
    closers.append(server.close)
    loop = asyncio.get_running_loop()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    client.bind(("127.0.0.1", 0))
    closers.append(_close_socket(client))

    async def exchange(data: bytes) -> bytes:
        await loop.sock_sendto(client, data, server.local_address)
        return await asyncio.wait_for(loop.sock_recv(client, 65535), WAIT)

    caplog.set_level(logging.WARNING, logger="app.sip.transport")
    bad, _, reason = samples.INVALID["mismatch01"]
    answer = parse_message(await exchange(bad))
    assert isinstance(answer, SipResponse) and answer.status == 400 and reason in answer.reason
    assert answer.call_id == "mismatch01.dj0234sxdfl3" and answer.to.tag is not None
    item, peer = await inbox.next()
    assert (
        isinstance(item, RemoteProtocolError) and item.status == 400 and peer.port == client.getsockname()[1]
    )
    # 505 for another version, also answered.
    answer = parse_message(await exchange(samples.INVALID["badvers"][0]))
    assert isinstance(answer, SipResponse) and answer.status == 505
    # Unanswerable garbage, a malformed response and keep-alives: nothing comes back; the
    # next datagram's answer is the first thing the client receives.
    for junk in (b"\x00\xff\xfe garbage", samples.INVALID_RESPONSES["bigcode"][0], b"\r\n\r\n", b"\r\n"):
        await loop.sock_sendto(client, junk, server.local_address)
    answer = parse_message(await exchange(samples.INVALID["ltgtruri"][0]))
    assert isinstance(answer, SipResponse) and answer.call_id == "ltgtruri.1@192.0.2.5"
    # Valid requests are still delivered.
    await loop.sock_sendto(client, options(), server.local_address)
    kinds = []
    while True:
        item, _ = await inbox.next()
        kinds.append(type(item).__name__)
        if isinstance(item, SipRequest):
            break
    assert kinds == ["RemoteProtocolError"] * 4 + ["SipRequest"]  # keep-alives are not delivered
    assert (server.malformed, server.answered) == (5, 3)
    # One log line per peer per minute.
    lines = [r for r in caplog.records if r.name == "app.sip.transport"]
    assert len(lines) == 1 and "malformed SIP message from udp:127.0.0.1:" in lines[0].getMessage()
    assert "CSeq method INVITE does not match" in lines[0].getMessage()


def _close_socket(sock: socket.socket) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        sock.close()

    return close


async def test_deliver_callback_errors_do_not_stop_the_transport(
    closers: Closers, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[str] = []
    second = asyncio.get_running_loop().create_future()

    def deliver(item: Item, peer: Peer) -> None:
        assert isinstance(item, SipRequest)
        got.append(item.call_id)
        if len(got) == 1:
            raise RuntimeError("a bug in the consumer")
        second.set_result(None)

    server = await UdpTransport.create(deliver)
    client = await UdpTransport.create(Inbox())
    closers += [server.close, client.close]
    peer = client.peer(*server.local_address)
    peer.send(options("one"))
    peer.send(options("two"))
    await asyncio.wait_for(second, WAIT)
    assert got == ["one", "two"]
    assert any("deliver callback failed" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- TCP


async def test_tcp_connection_reused_both_ways(closers: Closers) -> None:
    inbox_a, inbox_b = Inbox(), Inbox()
    a = await StreamTransport.listen("tcp", inbox_a)
    b = await StreamTransport.listen("tcp", inbox_b)
    closers += [a.close, b.close]
    to_b = a.peer(*b.local_address)
    to_b.send(samples.INVITE)
    to_b.send(samples.BYE)  # queued while connecting, same connection
    invite, from_a = await inbox_b.next_message()
    bye, from_a2 = await inbox_b.next_message()
    assert invite == parse_message(samples.INVITE) and bye == parse_message(samples.BYE)
    assert from_a == from_a2 and from_a.kind == "tcp" and from_a.reliable and from_a.transport == "TCP"
    assert from_a.local == b.local_address and from_a.port != a.local_address[1]  # the client's port
    assert isinstance(invite, SipRequest)
    from_a.send(build_response(invite, 200, to_tag=new_tag()).encode())
    response, from_b = await inbox_a.next_message()
    assert isinstance(response, SipResponse) and response.status == 200 and from_b == to_b
    assert a.connection_count == 1 and b.connection_count == 1


async def test_tcp_byte_by_byte_and_garbage(closers: Closers) -> None:
    inbox = Inbox()
    server = await StreamTransport.listen("tcp", inbox)
    closers.append(server.close)
    reader, writer = await asyncio.open_connection(*server.local_address)
    closers.append(_close_writer(writer))
    for i in range(len(samples.INVITE)):
        writer.write(samples.INVITE[i : i + 1])
        await writer.drain()
    message, _ = await inbox.next_message()
    assert message == parse_message(samples.INVITE)
    # A malformed request with a readable Content-Length: 400 back, the connection stays.
    bad = samples.INVALID["mismatch01"][0]
    writer.write(bad)
    answer = await _read_response(reader)
    assert answer.status == 400 and "CSeq method INVITE does not match" in answer.reason
    writer.write(b"\r\n\r\n" + options("after"))  # a keep-alive, then a valid request
    item, _ = await inbox.next()
    assert isinstance(item, RemoteProtocolError)
    message, _ = await inbox.next_message()
    assert message.call_id == "after"
    # No Content-Length on a stream: 400, then the server hangs up (framing lost, §18.3).
    writer.write(options("nolength").replace(b"Content-Length: 0\r\n", b""))
    answer = await _read_response(reader)
    assert answer.status == 400 and "Missing Content-Length" in answer.reason
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    # The listener still serves new connections.
    _, writer2 = await asyncio.open_connection(*server.local_address)
    closers.append(_close_writer(writer2))
    writer2.write(options("new"))
    item, _ = await inbox.next()
    assert isinstance(item, RemoteProtocolError)  # the one without Content-Length
    message, _ = await inbox.next_message()
    assert message.call_id == "new"


async def _read_response(reader: asyncio.StreamReader) -> SipResponse:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    message = parse_message(head)  # error responses have no body
    assert isinstance(message, SipResponse)
    return message


def _close_writer(writer: asyncio.StreamWriter) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass

    return close


async def test_idle_connection_closed(closers: Closers) -> None:
    inbox_a, inbox_b = Inbox(), Inbox()
    a = await StreamTransport.listen("tcp", inbox_a)
    b = await StreamTransport.listen("tcp", inbox_b, idle_timeout=0.3)
    closers += [a.close, b.close]
    to_b = a.peer(*b.local_address)
    to_b.send(options("idle"))
    _, from_a = await inbox_b.next_message()
    assert b.connection_count == 1
    await asyncio.wait_for(b.wait_connection_closed(from_a), WAIT)
    await asyncio.wait_for(a.wait_connection_closed(to_b), WAIT)
    assert a.connection_count == 0 and b.connection_count == 0
    # The next send opens a new connection.
    to_b.send(options("again"))
    message, _ = await inbox_b.next_message()
    assert message.call_id == "again"


async def test_connection_refused_is_a_transport_error(closers: Closers) -> None:
    errors = Errors()
    a = await StreamTransport.listen("tcp", Inbox(), on_transport_error=errors)
    closers.append(a.close)
    unused = socket.socket()
    unused.bind(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()  # nothing listens there now
    peer = a.peer("127.0.0.1", port)
    peer.send(options())
    assert await errors.next() == peer
    assert a.connection_count == 0


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sip.test.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def tls_contexts(certificate: tuple[Path, Path]) -> dict[str, Any]:
    cert_path, key_path = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert_path))
    return {"ssl_server": server, "ssl_client": client}


async def test_tls_request_response_and_garbage(closers: Closers, certificate: tuple[Path, Path]) -> None:
    inbox_a, inbox_b = Inbox(), Inbox()
    a = await StreamTransport.listen("tls", inbox_a, **tls_contexts(certificate))
    b = await StreamTransport.listen("tls", inbox_b, **tls_contexts(certificate))
    closers += [a.close, b.close]
    to_b = a.peer(*b.local_address)
    to_b.send(samples.INVITE_COMPACT)
    invite, from_a = await inbox_b.next_message()
    assert invite == parse_message(samples.INVITE_COMPACT)
    assert (from_a.kind, from_a.transport, from_a.reliable) == ("tls", "TLS", True)
    assert isinstance(invite, SipRequest)
    from_a.send(build_response(invite, 486, to_tag=new_tag()).encode())
    response, from_b = await inbox_a.next_message()
    assert isinstance(response, SipResponse) and response.status == 486 and from_b == to_b
    # A raw TLS client sending garbage gets its 400, and the connection serves on.
    reader, writer = await asyncio.open_connection(
        *b.local_address, ssl=tls_contexts(certificate)["ssl_client"], server_hostname="127.0.0.1"
    )
    closers.append(_close_writer(writer))
    writer.write(samples.INVALID["escruri"][0])
    answer = await _read_response(reader)
    assert answer.status == 400 and "headers not allowed in a Request-URI" in answer.reason
    writer.write(options("tls-after"))
    item, _ = await inbox_b.next()
    assert isinstance(item, RemoteProtocolError)
    message, _ = await inbox_b.next_message()
    assert message.call_id == "tls-after"


async def test_tls_untrusted_server_is_a_transport_error(
    closers: Closers, certificate: tuple[Path, Path]
) -> None:
    errors = Errors()
    server = await StreamTransport.listen("tls", Inbox(), **tls_contexts(certificate))
    untrusting = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # system CAs only
    client = await StreamTransport.listen(
        "tls",
        Inbox(),
        ssl_server=tls_contexts(certificate)["ssl_server"],
        ssl_client=untrusting,
        on_transport_error=errors,
    )
    closers += [server.close, client.close]
    peer = client.peer(*server.local_address)
    peer.send(options())
    assert await errors.next() == peer


# ---------------------------------------------------------------- URIs to peers


async def test_peer_for_uri(closers: Closers) -> None:
    udp = await UdpTransport.create(Inbox())
    tcp = await StreamTransport.listen("tcp", Inbox())
    closers += [udp.close, tcp.close]
    transports = {"udp": udp, "tcp": tcp}
    assert await peer_for_uri(SipUri.parse("sip:bob@127.0.0.1:5070"), transports) == udp.peer(
        "127.0.0.1", 5070
    )
    assert await peer_for_uri(SipUri.parse("sip:bob@localhost;transport=TCP"), transports) in (
        tcp.peer("127.0.0.1", 5060),
        tcp.peer("::1", 5060),
    )
    assert await peer_for_uri(
        SipUri.parse("sip:bob@example.invalid;maddr=127.0.0.2"), transports
    ) == udp.peer("127.0.0.2", 5060)
    assert uri_transport(SipUri.parse("sips:bob@x")) == "tls"
    with pytest.raises(OSError, match="no tls transport"):
        await peer_for_uri(SipUri.parse("sips:bob@127.0.0.1"), transports)


# ---------------------------------------------------------------- AppAttach DTLS over ICE


@pytest.fixture(scope="module")
def interface_address() -> str:
    from aioice.ice import get_host_addresses

    addresses = [a for a in get_host_addresses(use_ipv4=True, use_ipv6=False) if not a.startswith("127.")]
    if not addresses:
        pytest.skip("no non-loopback IPv4 interface address: ICE has no host candidate on this machine")
    return addresses[0]


async def test_appattach_dtls_connection(closers: Closers, interface_address: str) -> None:
    from reload_core.links.dtls import DtlsEndpoint
    from tests.ice.pki import TestPki
    from tests.ice.support import Recorder, connected_pair

    pki = TestPki()
    alice, bob = pki.node("alice@ice.test.example"), pki.node("bob@ice.test.example")
    ea = DtlsEndpoint(alice.tls, pki.trust(), Recorder())
    eb = DtlsEndpoint(bob.tls, pki.trust(), Recorder())
    offerer, answerer = await connected_pair()

    async def close_all() -> None:
        ea.close()
        eb.close()
        await offerer.aclose()
        await answerer.aclose()

    closers.append(close_all)
    caller = ea.open_app(offerer, server_side=True, expected_node_id=bob.node_id, application=5060)
    callee = eb.open_app(answerer, server_side=False, expected_node_id=alice.node_id, application=5060)
    await asyncio.wait_for(asyncio.gather(caller.wait_open(), callee.wait_open()), WAIT)

    inbox_a, inbox_b, errors_b = Inbox(), Inbox(), Errors()
    ta = DatagramConnectionTransport(caller, inbox_a)
    tb = DatagramConnectionTransport(callee, inbox_b, on_transport_error=errors_b)
    ta.start()
    tb.start()
    assert (ta.peer.verified_user, ta.peer.verified_node_id) == ("bob@ice.test.example", bob.node_id)
    assert (tb.peer.verified_user, tb.peer.verified_node_id) == ("alice@ice.test.example", alice.node_id)
    assert (ta.peer.kind, ta.peer.transport, ta.peer.reliable) == ("dtls-appattach", "DTLS", False)
    assert ta.peer.key == bob.node_id.hex() and ta.peer.remote_address == caller.remote_address

    ta.peer.send(samples.INVITE)
    invite, peer = await inbox_b.next_message()
    assert (
        invite == parse_message(samples.INVITE) and peer == tb.peer and peer.verified_node_id == alice.node_id
    )
    # Garbage over the connection: answered with 400 by the transport.
    caller.send(samples.INVALID["mismatch02"][0])
    item, _ = await inbox_b.next()
    assert isinstance(item, RemoteProtocolError)
    answer, _ = await inbox_a.next_message()
    assert isinstance(answer, SipResponse) and answer.status == 400
    assert (tb.malformed, tb.answered) == (1, 1)
    # The far end closes: the transport says so once its reader sees it.
    await ta.close()
    assert await errors_b.next() == tb.peer
    await asyncio.wait_for(asyncio.shield(tb.closed), WAIT)

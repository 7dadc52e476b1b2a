"""ICE (§6.5.1.3-§6.5.1.12) and DTLS/UDP with SR links (§6.6.3, §6.6.4) on this machine's
interface address, and simple reliability over a lossy in-memory channel."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioice import Candidate, stun

from reload_core.links.base import CloseCode, LinkNotOpenError, LinkState
from reload_core.links.dtls import (
    DTLS_LINK_CONFIG,
    DtlsAppConnection,
    DtlsEndpoint,
    DtlsLink,
    pack_datagrams,
    split_records,
)
from reload_core.links.framing import LinkConfig
from reload_core.links.ice import (
    ANSWERER_ROLE,
    OFFERER_ROLE,
    IceConfig,
    IceConnection,
    IceFailedError,
    IceParameterError,
    StunResponder,
    StunServerList,
    candidate_from_wire,
    candidate_to_wire,
    check_ice_credentials,
    ice_priority,
)
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import OverlayLinkType
from reload_core.wire.fragment import Reassembler
from reload_core.wire.link_methods import CandType, IceCandidate
from reload_core.wire.message import decode_forwarding_header

from .channels import MemoryChannel, channel_pair
from .conftest import Closer
from .pki import TestPki
from .support import Recorder, connected_pair, make_message

# ---------------------------------------------------------------- encoding (§6.5.1.6, §6.5.1.7)


def test_priority_formula() -> None:
    # RFC 8445 §5.1.2.1 with component 1: host 126, srflx 100, relay 0.
    assert ice_priority("host") == (126 << 24) + (65535 << 8) + 255 == 2130706431
    assert ice_priority("srflx", 65534) == (100 << 24) + (65534 << 8) + 255
    assert ice_priority("relay") == 16777215
    with pytest.raises(ValueError):
        ice_priority("host", 70000)


def test_candidates_translate_both_ways() -> None:
    srflx = Candidate("abcd1234", 1, "udp", 1694498815, "198.51.100.7", 40000, "srflx", "10.0.0.2", 5000)
    wire = candidate_to_wire(srflx)
    assert wire == IceCandidate(
        addr_port=IpAddressPort("198.51.100.7", 40000),
        overlay_link=OverlayLinkType.DTLS_UDP_SR,
        foundation=b"abcd1234",
        priority=1694498815,
        type=CandType.srflx,
        rel_addr_port=IpAddressPort("10.0.0.2", 5000),
    )
    back = candidate_from_wire(wire)
    assert back is not None
    assert back.to_sdp() == "abcd1234 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 10.0.0.2 rport 5000"
    host = candidate_to_wire(Candidate("f1", 1, "udp", 2130706431, "fd00::2", 6084, "host"))
    assert host.rel_addr_port is None and host.type is CandType.host
    back_host = candidate_from_wire(host)
    assert back_host is not None and (back_host.host, back_host.port, back_host.type) == (
        "fd00::2",
        6084,
        "host",
    )


def test_other_link_protocols_and_bad_candidates() -> None:
    no_ice = IceCandidate(
        IpAddressPort("192.0.2.1", 6084), OverlayLinkType.TLS_TCP_FH_NO_ICE, b"1", 1, CandType.host
    )
    assert candidate_from_wire(no_ice) is None
    bad_foundation = IceCandidate(
        IpAddressPort("192.0.2.1", 6084), OverlayLinkType.DTLS_UDP_SR, b"a b", 1, CandType.host
    )
    with pytest.raises(IceParameterError):
        candidate_from_wire(bad_foundation)
    with pytest.raises(IceParameterError):
        candidate_from_wire(
            IceCandidate(IpAddressPort("192.0.2.1", 0), OverlayLinkType.DTLS_UDP_SR, b"f", 1, CandType.host)
        )


def test_ice_credentials_are_checked() -> None:
    check_ice_credentials(b"abcd", b"a" * 22)
    for ufrag, pwd in [
        (b"abc", b"a" * 22),
        (b"abcd", b"a" * 21),
        (b"ab:d", b"a" * 22),
        (b"abcd", b"a" * 257),
    ]:
        with pytest.raises(IceParameterError):
            check_ice_credentials(ufrag, pwd)


def test_dtls_records_are_never_split_across_datagrams() -> None:
    def record(n: int, body: int) -> bytes:
        return bytes([22, 0xFE, 0xFD]) + bytes(8) + body.to_bytes(2, "big") + bytes([n]) * body

    data = record(1, 500) + record(2, 500) + record(3, 100) + record(4, 1300)
    records = split_records(data)
    assert [len(r) for r in records] == [513, 513, 113, 1313]
    datagrams = pack_datagrams(records, 1200)
    assert [len(d) for d in datagrams] == [1139, 1313]
    assert b"".join(datagrams) == data


# ---------------------------------------------------------------- STUN (§6.5.1.4, §6.5.1.10.3)


async def _binding(sock_host: str, server: tuple[str, int]) -> tuple[tuple[str, int], tuple[str, int]]:
    """Send a plain Binding request from a fresh socket; (our address, mapped address)."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((sock_host, 0))
        sock.setblocking(False)
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        await loop.sock_sendto(sock, bytes(request), server)
        data = await asyncio.wait_for(loop.sock_recv(sock, 2048), 5)
        response = stun.parse_message(data)
        assert response.transaction_id == request.transaction_id
        assert response.message_class == stun.Class.RESPONSE
        return sock.getsockname(), response.attributes["XOR-MAPPED-ADDRESS"]


async def test_stun_responder_tells_the_reflexive_address(interface_address: str) -> None:
    responder = await StunResponder.start(interface_address, 0)
    try:
        ours, mapped = await _binding(interface_address, responder.address)
        assert mapped == ours
        assert responder.answered == 1
    finally:
        responder.close()


async def test_gathering_asks_the_stun_servers(interface_address: str, closer: Closer) -> None:
    responder = await StunResponder.start(interface_address, 0)
    try:
        conn = IceConnection(controlling=True, stun_servers=[responder.address])
        closer.add(conn)
        candidates = await conn.gather()
        host = next(c for c in candidates if c.addr_port.addr == interface_address)
        assert host.type is CandType.host and host.priority >> 24 == 126
        assert host.overlay_link == OverlayLinkType.DTLS_UDP_SR
        # On one machine the mapped address is the host candidate itself: asked, but redundant.
        assert conn.reflexive == {responder.address: (interface_address, host.addr_port.port)}
        assert not [c for c in candidates if c.type is CandType.srflx]
        assert responder.answered >= 1
        assert len({c.priority for c in candidates}) == len(candidates)  # distinct local preferences
    finally:
        responder.close()


def test_stun_server_list_keeps_one_server_per_group() -> None:
    servers = StunServerList(fixed=[("198.51.100.1", 6084)])
    servers.add_peer(b"a" * 16, ("198.51.100.2", 5000))
    servers.add_peer(b"b" * 16, ("198.51.100.3", 5000))
    servers.add_peer(b"c" * 16, ("203.0.113.9", 7000))
    assert servers.servers() == [
        ("198.51.100.1", 6084),
        ("198.51.100.2", 5000),
        ("198.51.100.3", 5000),
        ("203.0.113.9", 7000),
    ]
    nat = ("198.51.100.11", 40000)
    servers.learned(("198.51.100.1", 6084), nat)
    servers.learned(("198.51.100.2", 5000), nat)
    servers.learned(("198.51.100.3", 5000), nat)
    servers.learned(("203.0.113.9", 7000), ("203.0.113.50", 41000))  # behind another NAT
    assert servers.servers() == [("198.51.100.1", 6084), ("203.0.113.9", 7000)]
    servers.remove_peer(b"c" * 16)  # connection lost: no longer usable (§6.5.1.4)
    assert servers.servers() == [("198.51.100.1", 6084)]


# ---------------------------------------------------------------- ICE (§6.5.1.9, §6.5.1.10)


async def test_ice_connects_offerer_controlling(interface_address: str, closer: Closer) -> None:
    offerer, answerer = await connected_pair()
    closer.add(offerer, answerer)
    assert offerer.controlling and not answerer.controlling
    assert (offerer.role, answerer.role) == (OFFERER_ROLE, ANSWERER_ROLE) == (b"passive", b"active")
    assert offerer.selected_pair is not None and answerer.selected_pair is not None
    assert offerer.remote_address == answerer.local_address
    assert offerer.local_type == "host"
    assert offerer.rtt is not None and 0 < offerer.rtt < 1.0

    got: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    offerer.start(lambda d: got.put_nowait(("offerer", d)), lambda why: None)
    answerer.start(lambda d: got.put_nowait(("answerer", d)), lambda why: None)
    offerer.send(b"to the answerer")
    answerer.send(b"to the offerer")
    received = {await asyncio.wait_for(got.get(), 5), await asyncio.wait_for(got.get(), 5)}
    assert received == {("answerer", b"to the answerer"), ("offerer", b"to the offerer")}


async def test_every_ice_socket_answers_plain_binding_requests(
    interface_address: str, closer: Closer
) -> None:
    # §6.5.1.4: a connected peer can be used as a STUN server at its connection's address.
    offerer, answerer = await connected_pair(IceConfig(use_ipv6=False))
    closer.add(offerer, answerer)
    server = answerer.local_address
    assert server is not None
    ours, mapped = await _binding(interface_address, server)
    assert mapped == ours


async def test_ice_fails_when_nothing_answers(interface_address: str, closer: Closer) -> None:
    offerer = IceConnection(controlling=True, config=IceConfig(connect_timeout=1.0, use_ipv6=False))
    closer.add(offerer)
    await offerer.gather()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((interface_address, 0))
        port = silent.getsockname()[1]
        candidate = IceCandidate(
            IpAddressPort(interface_address, port),
            OverlayLinkType.DTLS_UDP_SR,
            b"x1",
            ice_priority("host"),
            CandType.host,
        )
        with pytest.raises(IceFailedError):
            await offerer.connect(b"ufrg", b"p" * 22, [candidate])


async def test_ice_refuses_answers_without_usable_candidates(closer: Closer) -> None:
    offerer = IceConnection(controlling=True)
    closer.add(offerer)
    await offerer.gather()
    no_ice = IceCandidate(
        IpAddressPort("192.0.2.1", 6084), OverlayLinkType.TLS_TCP_FH_NO_ICE, b"1", 1, CandType.host
    )
    with pytest.raises(IceParameterError):
        await offerer.connect(b"ufrg", b"p" * 22, [no_ice])


# ---------------------------------------------------------------- DTLS links over ICE (§6.5.1.13, §6.6.4)


@dataclass
class Pair:
    """The offerer's side (a) and the answerer's side (b) of one DTLS link."""

    la: DtlsLink
    lb: DtlsLink
    ra: Recorder
    rb: Recorder
    id_a: bytes = b""
    id_b: bytes = b""
    ca: MemoryChannel | None = None
    cb: MemoryChannel | None = None


async def _dtls_pair(
    pki: TestPki,
    closer: Closer,
    *,
    offerer_expects: bytes | None = None,
    answerer_expects: bytes | None = None,
    offerer_pki: TestPki | None = None,
) -> Pair:
    a, b = (offerer_pki or pki).node(), pki.node()
    ra, rb = Recorder(), Recorder()
    ea = closer.endpoint(DtlsEndpoint(a.tls, pki.trust(), ra))
    eb = closer.endpoint(DtlsEndpoint(b.tls, pki.trust(), rb))
    offerer, answerer = await connected_pair()
    closer.add(offerer, answerer)
    # §6.5.1.13: the Attach requester (the ICE offerer) is the DTLS server.
    la = ea.open_link(offerer, server_side=True, expected_node_id=offerer_expects or b.node_id)
    lb = eb.open_link(answerer, server_side=False, expected_node_id=answerer_expects or a.node_id)
    return Pair(la, lb, ra, rb, a.node_id, b.node_id)


async def test_dtls_link_over_ice(pki: TestPki, interface_address: str, closer: Closer) -> None:
    p = await _dtls_pair(pki, closer)
    la, lb, ra, rb, id_a, id_b = p.la, p.lb, p.ra, p.rb, p.id_a, p.id_b
    await asyncio.wait_for(asyncio.gather(la.wait_open(), lb.wait_open()), 10)
    assert ra.opened == [la] and rb.opened == [lb]
    assert la.remote_node_id == id_b and lb.remote_node_id == id_a
    assert la.link_type is OverlayLinkType.DTLS_UDP_SR
    assert la.dtls_version == "DTLSv1.2"
    assert la.remote_certificate is not None and la.remote_certificate.node_ids == (id_b,)
    # §6.6.3.1: the RTO starts from the ICE check's RTT (a LAN RTT: the 50 ms floor).
    assert la.rto == DTLS_LINK_CONFIG.min_rto

    for i in range(10):
        la.send(b"a->b %d" % i)
        lb.send(b"b->a %d" % i)
    await rb.wait(lambda: len(rb.messages) == 10)
    await ra.wait(lambda: len(ra.messages) == 10)
    assert rb.payloads() == [b"a->b %d" % i for i in range(10)]
    assert ra.payloads() == [b"b->a %d" % i for i in range(10)]
    assert la.rtt is not None and la.rtt < 1.0

    la.close()
    await rb.wait(lambda: rb.closed)
    assert rb.reason(lb) is not None and rb.reason(lb).code is CloseCode.REMOTE  # close_notify
    assert ra.reason(la) is not None and ra.reason(la).code is CloseCode.LOCAL


async def test_wrong_node_id_is_refused(pki: TestPki, interface_address: str, closer: Closer) -> None:
    impostor_expected = pki.node().node_id
    # The answerer attached to someone else: the offerer's certificate must be refused.
    p = await _dtls_pair(pki, closer, answerer_expects=impostor_expected)
    la, lb, ra, rb = p.la, p.lb, p.ra, p.rb
    await rb.wait(lambda: rb.closed)
    await ra.wait(lambda: ra.closed)
    reason = rb.reason(lb)
    assert reason is not None and reason.code is CloseCode.WRONG_NODE_ID
    assert impostor_expected.hex() in reason.detail
    assert ra.reason(la) is not None and ra.reason(la).code in (
        CloseCode.AUTHENTICATION_FAILED,
        CloseCode.HANDSHAKE_FAILED,
    )
    assert not ra.opened and not rb.opened
    assert la.state is LinkState.CLOSED and lb.state is LinkState.CLOSED


async def test_offerer_refuses_an_answerer_with_another_node_id(
    pki: TestPki, interface_address: str, closer: Closer
) -> None:
    other = pki.node().node_id
    p = await _dtls_pair(pki, closer, offerer_expects=other)
    la, ra, rb = p.la, p.ra, p.rb
    await ra.wait(lambda: ra.closed)
    await rb.wait(lambda: rb.closed)
    reason = ra.reason(la)
    assert reason is not None and reason.code is CloseCode.WRONG_NODE_ID
    assert not ra.opened and not rb.opened


async def test_certificate_of_another_overlay_ca_is_refused(
    pki: TestPki, interface_address: str, closer: Closer
) -> None:
    p = await _dtls_pair(pki, closer, offerer_pki=TestPki())
    lb, ra, rb = p.lb, p.ra, p.rb
    await rb.wait(lambda: rb.closed)
    await ra.wait(lambda: ra.closed)
    reason = rb.reason(lb)
    assert reason is not None and reason.code is CloseCode.AUTHENTICATION_FAILED
    assert not ra.opened and not rb.opened


async def test_large_messages_are_fragmented_to_the_path(
    pki: TestPki, interface_address: str, closer: Closer
) -> None:
    p = await _dtls_pair(pki, closer)
    la, rb = p.la, p.rb
    await asyncio.wait_for(asyncio.gather(la.wait_open(), p.lb.wait_open()), 10)
    message = make_message(4800, transaction_id=77)
    la.send(message)
    reassembler = Reassembler(max_message_size=5000)
    whole: list[bytes] = []
    # 4800 bytes in records of about 1150: five fragments of §6.7.
    await rb.wait(lambda: len(rb.messages) >= 5)
    fragments = rb.payloads()
    assert la.fragmented_messages == 1
    assert all(len(f) <= la.max_frame_message for f in fragments)
    for f in fragments:
        header, _ = decode_forwarding_header(f)
        assert header.transaction_id == 77 and not header.is_unfragmented
        out = reassembler.add(f, 0.0, source="a")
        if out is not None:
            whole.append(out)
    assert len(whole) == 1
    h_whole, at = decode_forwarding_header(whole[0])
    _, at_orig = decode_forwarding_header(message)
    assert whole[0][at:] == message[at_orig:] and h_whole.transaction_id == 77


# ---------------------------------------------------------------- simple reliability (§6.6.3.1)


def _data_record(datagram: bytes) -> bool:
    return datagram[:1] == b"\x17"  # DTLS application_data: after the handshake, frames


async def _memory_pair(pki: TestPki, closer: Closer, config: LinkConfig = DTLS_LINK_CONFIG) -> Pair:
    a, b = pki.node(), pki.node()
    ra, rb = Recorder(), Recorder()
    ea = closer.endpoint(DtlsEndpoint(a.tls, pki.trust(), ra, config=config))
    eb = closer.endpoint(DtlsEndpoint(b.tls, pki.trust(), rb, config=config))
    ca, cb = channel_pair(latency=0.002)
    la = ea.open_link(ca, server_side=True, expected_node_id=b.node_id)
    lb = eb.open_link(cb, server_side=False, expected_node_id=a.node_id)
    await asyncio.wait_for(asyncio.gather(la.wait_open(), lb.wait_open()), 10)
    return Pair(la, lb, ra, rb, ca=ca, cb=cb)


async def test_sr_retransmits_lost_frames_in_order(pki: TestPki, closer: Closer) -> None:
    p = await _memory_pair(pki, closer)
    la, lb, rb, ca, cb = p.la, p.lb, p.rb, p.ca, p.cb
    assert ca is not None and cb is not None
    base = ca.sent
    # Lose every third application datagram from a to b (data frames) and every fifth
    # from b to a (acks): nothing may be lost, and order is kept (one message at a time).
    ca.drop = lambda i, d: i > base and _data_record(d) and i % 3 == 0
    cb.drop = lambda i, d: _data_record(d) and i % 5 == 0
    count = 40
    for i in range(count):
        la.send(b"message %03d" % i)
    await rb.wait(lambda: len(set(rb.payloads())) == count, timeout=30)
    received = rb.payloads()
    # Each message arrives; a duplicate is a retransmission whose ack was lost, right
    # after its first copy (stop-and-wait: one message in flight).
    deduplicated = [m for i, m in enumerate(received) if i == 0 or received[i - 1] != m]
    assert deduplicated == [b"message %03d" % i for i in range(count)]
    await asyncio.wait_for(la.wait_sent(), 10)
    assert la.framing is not None
    retransmissions = la.data_frames_sent - la.messages_sent  # a keepalive would be a message too
    assert retransmissions >= ca.dropped > 0
    assert len(received) - count <= cb.dropped
    assert la.is_open and lb.is_open


async def test_idle_dtls_link_keepalives_are_messages_never_empty_frames(
    pki: TestPki, closer: Closer
) -> None:
    """§6.6.4 over SR: an idle link asks its handler for a keepalive message; the link
    itself sends no empty data frame, and the keepalive is acked like any message."""
    config = LinkConfig(initial_rto=0.05, min_rto=0.05, max_rto=1.0, keepalive_interval=0.05)
    p = await _memory_pair(pki, closer, config)
    probe = make_message(300, transaction_id=0xA11CE)
    p.ra.keepalive = probe
    await p.rb.wait(lambda: p.rb.payloads().count(probe) >= 3, timeout=10)
    await asyncio.wait_for(p.la.wait_sent(), 10)
    assert p.la.framing is not None and p.la.framing.idle_events >= 3
    # Every data frame a sent was one of its messages: nothing lost, nothing empty.
    assert p.la.data_frames_sent == p.la.messages_sent >= 3
    assert p.rb.idle and p.lb.data_frames_sent == p.lb.messages_sent == 0  # b's handler sent none
    assert p.la.rtt is not None and p.la.is_open and not p.la.suspect


async def test_dtls_links_log_their_secrets_to_sslkeylogfile(
    pki: TestPki, closer: Closer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keys))
    p = await _memory_pair(pki, closer)
    p.la.send(make_message(300))
    await p.rb.wait(lambda: p.rb.messages)
    lines = keys.read_bytes().splitlines()
    # DTLS 1.2: one master secret per association, written by each end.
    assert len(lines) == 2 and lines[0] == lines[1] and lines[0].startswith(b"CLIENT_RANDOM ")


async def test_silent_peer_fails_after_five_transmissions(pki: TestPki, closer: Closer) -> None:
    config = LinkConfig(initial_rto=0.02, min_rto=0.02, max_rto=1.0, keepalive_interval=None)
    p = await _memory_pair(pki, closer, config)
    la, ra, ca = p.la, p.ra, p.ca
    assert ca is not None
    base = ca.sent
    ca.drop = lambda i, d: i >= base  # the path dies
    started = asyncio.get_running_loop().time()
    la.send(b"into the void")
    await ra.wait(lambda: ra.closed, timeout=10)
    reason = ra.reason(la)
    assert reason is not None and reason.code is CloseCode.RETRANSMISSIONS_EXHAUSTED
    assert la.data_frames_sent - la.messages_sent == 4  # 5 transmissions in all
    assert [s for _, s in ra.suspects] == [True]  # suspect after the third retransmission
    # RTO 20 ms doubled: sends at 0, 20, 60, 140, 300 ms, failure at 620 ms (at least).
    assert asyncio.get_running_loop().time() - started >= 0.6


async def test_channel_failure_closes_the_link(pki: TestPki, closer: Closer) -> None:
    p = await _memory_pair(pki, closer)
    la, ra, ca = p.la, p.ra, p.ca
    assert ca is not None
    ca.lose("ICE consent expired")
    await ra.wait(lambda: ra.closed)
    reason = ra.reason(la)
    assert reason is not None and reason.code is CloseCode.TRANSPORT_ERROR and "consent" in reason.detail


async def test_handshake_survives_lost_flights(pki: TestPki, closer: Closer) -> None:
    a, b = pki.node(), pki.node()
    ra, rb = Recorder(), Recorder()
    ea = closer.endpoint(DtlsEndpoint(a.tls, pki.trust(), ra))
    eb = closer.endpoint(DtlsEndpoint(b.tls, pki.trust(), rb))
    ca, cb = channel_pair()
    cb.drop = lambda i, d: i == 0  # the first ClientHello
    ca.drop = lambda i, d: i == 0  # the server's first flight
    la = ea.open_link(ca, server_side=True, expected_node_id=b.node_id)
    lb = eb.open_link(cb, server_side=False, expected_node_id=a.node_id)
    await asyncio.wait_for(asyncio.gather(la.wait_open(), lb.wait_open()), 15)
    assert cb.dropped == 1 and ca.dropped == 1


# ---------------------------------------------------------------- application connections (§6.5.2)


async def test_app_connection_carries_datagrams(pki: TestPki, interface_address: str, closer: Closer) -> None:
    a, b = pki.node(), pki.node()
    ea = closer.endpoint(DtlsEndpoint(a.tls, pki.trust(), Recorder()))
    eb = closer.endpoint(DtlsEndpoint(b.tls, pki.trust(), Recorder()))
    offerer, answerer = await connected_pair()
    closer.add(offerer, answerer)
    caller = ea.open_app(offerer, server_side=True, expected_node_id=b.node_id, application=5060)
    callee = eb.open_app(answerer, server_side=False, expected_node_id=a.node_id, application=5060)
    await asyncio.wait_for(asyncio.gather(caller.wait_open(), callee.wait_open()), 10)
    assert caller.remote_node_id == b.node_id and callee.remote_node_id == a.node_id
    invite = b"INVITE sip:bob@ice.test.example SIP/2.0\r\n" + b"x" * 2000
    caller.send(invite)
    assert await asyncio.wait_for(callee.recv(), 5) == invite
    callee.send(b"SIP/2.0 200 OK\r\n\r\n")
    assert await asyncio.wait_for(caller.recv(), 5) == b"SIP/2.0 200 OK\r\n\r\n"
    caller.close()
    reason = await asyncio.wait_for(callee.wait_closed(), 5)
    assert reason.code is CloseCode.REMOTE
    with pytest.raises(LinkNotOpenError):
        await callee.recv()
    assert isinstance(caller, DtlsAppConnection)

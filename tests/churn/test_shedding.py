"""Load shedding inside one process (RFC 6940 §6.5.1.2, §6.7, §13): per-source token
buckets, a node shedding a request flood with errors while serving everyone else, the
Reassembler's per-source cap, and the cap on TLS handshakes under way."""

from __future__ import annotations

import asyncio
import random
import secrets
import socket

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from reload_core.links.base import CloseReason, Link, VirtualClock
from reload_core.links.framing import LinkConfig
from reload_core.links.memory import MemoryNetwork
from reload_core.links.tls import OverlayTrust, TlsCredentials, TlsEndpoint
from reload_core.node import Node, NodeSettings, memory_transport
from reload_core.node.envelope import build_message
from reload_core.node.limits import RateLimiter, TokenBucket
from reload_core.security.certificates import make_self_signed
from reload_core.security.signing import Signer
from reload_core.sim.identities import make_signer, shared_resolver
from reload_core.sim.loop import run_virtual
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.buffer import DecodeError
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.fragment import Reassembler, fragment_message
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import ErrorResponse, Message, MessageContents, NodeDestination
from reload_core.wire.registry import decode_struct, encode_struct

OVERLAY = "shed.test.example"


# ---------------------------------------------------------------- token buckets


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=5.0, tokens=5.0, stamp=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.1) and not bucket.take(0.1)  # one token a tenth of a second
    assert sum(bucket.take(10.0) for _ in range(10)) == 5  # refilled to the burst, no more


def test_a_limiter_keeps_sources_apart_and_remembers_few() -> None:
    limiter = RateLimiter(rate=1.0, burst=2.0, max_keys=3)
    assert [limiter.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", 0.0)
    for key in ("c", "d", "e"):
        limiter.allow(key, 0.0)
    assert len(limiter) == 3  # "a" and "b" forgotten first
    assert limiter.refused == 1
    assert all(RateLimiter(rate=0.0, burst=1.0).allow("x", 0.0) for _ in range(100))


# ---------------------------------------------------------------- a request flood


class Attacker:
    """A raw endpoint on the memory network with a valid identity of the overlay."""

    def __init__(self) -> None:
        self.link: Link | None = None
        self.answers: list[Message] = []
        self.opened = asyncio.Event()

    def link_opened(self, link: Link) -> None:
        self.link = link
        self.opened.set()

    def message_received(self, link: Link, message: bytes) -> None:
        self.answers.append(Message.from_bytes(message))

    def message_too_large(self, link: Link, header: object, length: int) -> None:
        pass

    def link_suspect(self, link: Link, suspect: bool) -> None:
        pass

    def link_closed(self, link: Link, reason: CloseReason) -> None:
        pass

    def codes(self) -> list[int]:
        return [int(m.message_contents.message_code) for m in self.answers]

    def errors(self) -> list[ErrorCode | int]:
        return [
            decode_struct(ErrorResponse, m.message_contents.message_body).error_code
            for m in self.answers
            if m.message_contents.message_code == MessageCode.error
        ]


def ping(settings: NodeSettings, signer: Signer, target: bytes) -> bytes:
    return build_message(
        settings,
        signer,
        transaction_id=secrets.randbits(64),
        destinations=(NodeDestination(target),),
        contents=MessageContents(MessageCode.ping_req, encode_struct(PingReq())),
    ).to_bytes()


def test_a_request_flood_from_one_node_is_shed_with_errors_and_others_are_served() -> None:
    clock = VirtualClock()
    rng = random.Random(5)
    resolver = shared_resolver(OVERLAY, 10)
    settings = NodeSettings(OVERLAY, request_rate=50.0, request_burst=100.0, shed_error_rate=10.0)
    network = MemoryNetwork(clock, latency=0.001, config=LinkConfig(keepalive_interval=None))

    async def main() -> None:
        victim = Node(
            make_signer(rng, OVERLAY, 0),
            resolver,
            settings,
            memory_transport(network, IpAddressPort("10.0.0.1", 6084)),
            clock=clock,
        )
        await victim.start()
        victim.start_alone()
        flooder, friend = Attacker(), Attacker()
        signers = [make_signer(rng, OVERLAY, i) for i in (1, 2)]
        for index, (who, signer) in enumerate(zip((flooder, friend), signers, strict=True)):
            endpoint = network.endpoint(f"10.0.0.{index + 2}:6084", signer.node_id, who)
            endpoint.connect("10.0.0.1:6084")
            await asyncio.wait_for(who.opened.wait(), 5.0)
        assert flooder.link is not None and friend.link is not None
        for _ in range(1000):  # all at once: far over 50 a second with a burst of 100
            flooder.link.send(ping(settings, signers[0], victim.node_id))
        friend.link.send(ping(settings, signers[1], victim.node_id))
        await asyncio.sleep(1.0)

        answered = flooder.codes().count(MessageCode.ping_ans)
        assert 100 <= answered <= 110  # the burst, and what refilled meanwhile
        assert flooder.errors() == [ErrorCode.Error_Request_Timeout] * 10  # the error budget
        assert len(flooder.answers) < 130  # the rest was dropped unanswered
        assert friend.codes() == [MessageCode.ping_ans]  # another node is served as usual

        await asyncio.sleep(2.0)  # the bucket refills: the flooder is served again
        flooder.link.send(ping(settings, signers[0], victim.node_id))
        await asyncio.sleep(1.0)
        assert flooder.codes()[-1] == MessageCode.ping_ans
        await victim.close()

    run_virtual(clock, main())


def test_unsolicited_answers_are_dropped_before_their_signature_is_checked() -> None:
    clock = VirtualClock()
    rng = random.Random(6)
    checked: list[int] = []
    resolver = shared_resolver(OVERLAY, 10)

    def counting_resolver(identity: object, certificates: object) -> object:
        checked.append(1)
        return resolver(identity, certificates)  # type: ignore[arg-type]

    settings = NodeSettings(OVERLAY)
    network = MemoryNetwork(clock, latency=0.001, config=LinkConfig(keepalive_interval=None))

    async def main() -> None:
        victim = Node(
            make_signer(rng, OVERLAY, 0),
            counting_resolver,  # type: ignore[arg-type]
            settings,
            memory_transport(network, IpAddressPort("10.0.0.1", 6084)),
            clock=clock,
        )
        await victim.start()
        victim.start_alone()
        attacker = Attacker()
        signer = make_signer(rng, OVERLAY, 1)
        network.endpoint("10.0.0.2:6084", signer.node_id, attacker).connect("10.0.0.1:6084")
        await asyncio.wait_for(attacker.opened.wait(), 5.0)
        assert attacker.link is not None
        for _ in range(200):
            answer = build_message(
                settings,
                signer,
                transaction_id=secrets.randbits(64),
                destinations=(NodeDestination(victim.node_id),),
                contents=MessageContents(MessageCode.ping_ans, b"\x00" * 12),
            )
            attacker.link.send(answer.to_bytes())
        attacker.link.send(ping(settings, signer, victim.node_id))
        await asyncio.sleep(1.0)
        assert len(checked) == 1  # only the request's signature was checked
        assert attacker.codes() == [MessageCode.ping_ans]
        await victim.close()

    run_virtual(clock, main())


# ---------------------------------------------------------------- reassembly


def test_one_source_cannot_take_every_reassembly_slot() -> None:
    settings = NodeSettings(OVERLAY)
    signer = make_signer(random.Random(7), OVERLAY, 0)
    reassembler = Reassembler(max_message_size=20_000, max_pending=16, max_pending_per_source=4)

    def first_fragment() -> bytes:
        message = build_message(
            settings,
            signer,
            transaction_id=secrets.randbits(64),
            destinations=(NodeDestination(b"\x01" * 16),),
            contents=MessageContents(MessageCode.ping_req, bytes(3000)),
        )
        return fragment_message(message.to_bytes(), 1200)[0]

    for _ in range(4):
        assert reassembler.add(first_fragment(), 0.0, source=b"flooder") is None
    with pytest.raises(DecodeError) as refused:
        reassembler.add(first_fragment(), 0.0, source=b"flooder")
    assert refused.value.drop
    assert reassembler.add(first_fragment(), 0.0, source=b"someone else") is None
    assert len(reassembler) == 5
    reassembler.expire(100.0)  # after the request lifetime (§6.7) the slots are free again
    assert len(reassembler) == 0
    assert reassembler.add(first_fragment(), 100.0, source=b"flooder") is None


# ---------------------------------------------------------------- half-open connections


async def test_connections_beyond_the_handshake_cap_are_refused_at_once() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cert = make_self_signed(key, f"victim@{OVERLAY}", OVERLAY, "sha256")
    trust = OverlayTrust(OVERLAY, self_signed_digest="sha256")

    class Quiet:
        def link_opened(self, link: Link) -> None: ...
        def message_received(self, link: Link, message: bytes) -> None: ...
        def message_too_large(self, link: Link, header: object, length: int) -> None: ...
        def link_suspect(self, link: Link, suspect: bool) -> None: ...
        def link_closed(self, link: Link, reason: CloseReason) -> None: ...

    endpoint = TlsEndpoint(
        TlsCredentials(key, cert), trust, Quiet(), config=LinkConfig(max_handshakes=4, handshake_timeout=30.0)
    )
    listener = await endpoint.listen("127.0.0.1", 0)
    host, port = listener.address
    loop = asyncio.get_running_loop()
    held: list[socket.socket] = []
    try:
        for _ in range(12):  # connect and say nothing: half-open TLS
            sock = socket.create_connection((host, port))
            sock.setblocking(False)
            held.append(sock)

        async def closed_by_peer(sock: socket.socket) -> bool:
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 1), 0.5)
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
            return data == b""

        verdicts = [await closed_by_peer(s) for s in held]
        assert verdicts.count(False) == 4  # the cap: four handshakes may wait
        assert endpoint.refused_connections == 8
        waiting = list(endpoint.links)  # the four accepted ones, still in their handshake
        assert len(waiting) == 4
        for sock in held:
            sock.close()
        held.clear()
        await asyncio.wait_for(asyncio.gather(*(link.wait_closed() for link in waiting)), 5.0)

        # The held handshakes gone, a real peer gets in again.
        client_key = ed25519.Ed25519PrivateKey.generate()
        client_cert = make_self_signed(client_key, f"client@{OVERLAY}", OVERLAY, "sha256")
        client = TlsEndpoint(TlsCredentials(client_key, client_cert), trust, Quiet())
        try:
            await asyncio.wait_for(client.open_link((host, port)), 5.0)
        finally:
            await client.close()
    finally:
        for sock in held:
            sock.close()
        await endpoint.close()

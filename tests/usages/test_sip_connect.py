"""SIP connections by AppAttach (RFC 7904 §5.1, RFC 6940 §6.5.2) between peers of a ring:
in a TLS-only (No-ICE) overlay and in one whose links are DTLS over ICE. AppAttach's ICE
runs over this machine's interface address (aioice leaves loopback out)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from reload_core.ids import WILDCARD_NODE_ID
from reload_core.links.tls import TlsLink
from reload_core.node.attach import AttachManager
from reload_core.node.attach_ice import IceAttachManager
from reload_core.node.transport import TlsTransport
from reload_core.usages.sip import (
    SIP_APPLICATION,
    SIPS_APPLICATION,
    Outcome,
    SipConnectError,
    SipConnection,
    SipConnectionClosed,
    SipScheme,
    make_gruu,
)
from reload_core.usages.sip.connection import verify_peer
from reload_core.wire.codes import ErrorCode
from reload_core.wire.message import NodeDestination

from .sip_ring import EcdsaCA, SipRing, aor

INVITE = b"INVITE sip:bob@storage.test.example SIP/2.0\r\nVia: SIP/2.0/DTLS x\r\n\r\n"
OK = b"SIP/2.0 200 OK\r\n\r\n"


@pytest.fixture
async def make_ring(ecdsa_ca: EcdsaCA, interface_address: str) -> AsyncIterator[Callable[..., SipRing]]:
    rings: list[SipRing] = []

    def make(**options: object) -> SipRing:
        ring = SipRing(ecdsa_ca, **options)  # type: ignore[arg-type]
        rings.append(ring)
        return ring

    try:
        yield make
    finally:
        for ring in rings:
            await ring.close()


class Accepted:
    """The connections a node accepted, as they come."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[SipConnection] = asyncio.Queue()
        self.all: list[SipConnection] = []

    def __call__(self, conn: SipConnection) -> None:
        self.all.append(conn)
        self.queue.put_nowait(conn)

    async def next(self) -> SipConnection:
        return await asyncio.wait_for(self.queue.get(), 15)


@pytest.mark.parametrize("ice", [False, True], ids=["tls-only", "ice-overlay"])
async def test_connect_gives_the_verified_far_end_and_is_reused(
    make_ring: Callable[..., SipRing], ice: bool
) -> None:
    ring = make_ring(ice=ice)
    _, alice, bob = await ring.peers("relay", "alice", "bob")
    if ice:
        assert isinstance(alice.node.attach, IceAttachManager)
    else:
        # RFC 6940 §6.5.2 in a No-ICE overlay: Attach stays No-ICE, the overlay links TLS,
        # and AppAttach still makes its connection with ICE.
        assert type(alice.node.attach) is AttachManager and type(bob.node.attach) is AttachManager
        for usage in (alice, bob):
            transport = usage.node.transport
            assert isinstance(transport, TlsTransport)
            assert all(isinstance(link, TlsLink) for link in transport.endpoint.links)
    accepted = Accepted()
    bob.listen(accepted)
    await bob.register()
    resolution = await alice.resolve(aor("bob"))
    assert resolution.outcome is Outcome.REGISTERED
    contact = resolution.contacts[0]
    assert contact.schemes == (SipScheme.SIP, SipScheme.SIPS)  # bob listens to both (§3.2)

    conn = await alice.connect(contact)
    far = await accepted.next()
    # Identity from the certificates the handshake proved (§5.1), both ways.
    assert (conn.verified_user, conn.verified_node_id) == (aor("bob"), bob.node_id)
    assert (far.verified_user, far.verified_node_id) == (aor("alice"), alice.node_id)
    assert conn.peer.aor is not None and conn.peer.aor.name == aor("bob")
    assert conn.application == far.application == SIP_APPLICATION and conn.scheme is SipScheme.SIP
    assert conn.outgoing and not far.outgoing and conn.is_open
    with pytest.raises(SipConnectError, match="does not carry Node-ID"):
        verify_peer(conn.app_connection, alice.node_id)

    conn.send(INVITE)
    assert await asyncio.wait_for(far.recv(), 5) == INVITE
    far.send(OK)
    assert await asyncio.wait_for(conn.recv(), 5) == OK

    # A second call to bob's node uses the open connection (§5.1), as does bob calling
    # back: the connection alice opened to him.
    assert await alice.connect(contact) is conn
    assert await alice.connect(bob.node_id) is conn
    assert await bob.connect(alice.node_id) is far
    assert accepted.all == [far]

    # Closed connections are dropped: the next connect makes a new one; two at once make one.
    conn.close()
    assert await asyncio.wait_for(far.wait_closed(), 5)
    with pytest.raises(SipConnectionClosed):
        await asyncio.wait_for(far.recv(), 5)
    with pytest.raises(SipConnectionClosed):
        conn.send(INVITE)
    first, second = await asyncio.gather(alice.connect(contact), alice.connect(contact))
    assert first is second and first is not conn and first.is_open
    far2 = await accepted.next()
    assert far2.verified_node_id == alice.node_id and accepted.all == [far, far2]
    first.send(INVITE)
    assert await asyncio.wait_for(far2.recv(), 5) == INVITE


async def test_a_responder_that_is_not_the_terminal_node_is_refused(
    make_ring: Callable[..., SipRing],
) -> None:
    """§5.1: "the responding Peer MUST present a certificate with a Node-ID matching the
    terminal entry in the destination list". A GRUU whose list ends in the wildcard
    Node-ID is answered by the first node it reaches (RFC 6940 §6.1.1), which cannot be
    the terminal entry: no connection."""
    ring = make_ring()
    _, alice, relay = await ring.peers("relay", "alice", "mallory")
    accepted = Accepted()
    relay.listen(accepted)
    gruu = make_gruu(f"sip:{aor('bob')}", [NodeDestination(relay.node_id), NodeDestination(WILDCARD_NODE_ID)])
    with pytest.raises(SipConnectError) as refused:
        await alice.connect(gruu)
    assert f"answered by {relay.node_id.hex()}, not {WILDCARD_NODE_ID.hex()}" in refused.value.reason
    assert not alice.pool.connections() and not accepted.all


async def test_the_callees_scheme_is_followed(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring()
    _, alice, bob, carol = await ring.peers("relay", "alice", "bob", "carol")
    bob_accepted, carol_accepted = Accepted(), Accepted()
    bob.listen(bob_accepted, schemes=(SipScheme.SIPS,))
    carol.listen(carol_accepted, schemes=(SipScheme.SIPS,))
    await bob.register()  # contact_prefs (sip.schemes=SIPS): §3.2
    await carol.register(contact_prefs=b"")  # SIPS only, and says nothing

    bob_contact = (await alice.resolve(aor("bob"))).contacts[0]
    assert bob_contact.contact_prefs == b"(sip.schemes=SIPS)"
    sips = await alice.connect(bob_contact)
    assert sips.application == SIPS_APPLICATION and sips.scheme is SipScheme.SIPS
    assert (await bob_accepted.next()).application == SIPS_APPLICATION

    # No preference stated: SIP first, answered Error_Not_Found (§6.5.2.2), then SIPS.
    carol_contact = (await alice.resolve(aor("carol"))).contacts[0]
    assert carol_contact.schemes == ()
    to_carol = await alice.connect(carol_contact)
    assert to_carol.application == SIPS_APPLICATION and to_carol.verified_user == aor("carol")

    # Insisting on SIP with a callee that takes SIPS only fails, saying why.
    with pytest.raises(SipConnectError) as not_found:
        await alice.connect(bob_contact, scheme=SipScheme.SIP)
    assert not_found.value.code == ErrorCode.Error_Not_Found
    assert "application 5060 not supported" in not_found.value.reason


async def test_a_gruu_connects_directly(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring()
    _, alice, bob = await ring.peers("relay", "alice", "bob")
    accepted = Accepted()
    bob.listen(accepted)
    before = ring.fetches_of("bob", by=alice.node_id)
    conn = await alice.connect(bob.gruu())
    assert conn.verified_node_id == bob.node_id and conn.verified_user == aor("bob")
    assert ring.fetches_of("bob", by=alice.node_id) == before  # no Fetch for a GRUU (§6)
    with pytest.raises(SipConnectError, match="connect takes a GRUU"):
        await alice.connect(aor("bob"))
    with pytest.raises(SipConnectError, match="the destination is this node"):
        await alice.connect(alice.gruu())


async def test_a_client_registers_and_is_called(make_ring: Callable[..., SipRing]) -> None:
    """A client (RFC 6940 §4.2) stores through its peer and is reached by its Node-ID
    through the peer responsible for it (§4.2.1), AppAttach included."""
    ring = make_ring()
    _, alice, _ = await ring.peers("relay", "alice", "carol")
    storage = await ring.ring.new_storage(aor("bob"), peer=False)
    bootstrap = ring.ring.peers[0].node.address
    assert bootstrap is not None
    await storage.node.connect_as_client([bootstrap], timeout=20.0)
    bob = ring.usage(storage)
    accepted = Accepted()
    bob.listen(accepted)
    await bob.register()
    contact = (await alice.resolve(aor("bob"))).contacts[0]
    assert contact.node_id == bob.node_id
    conn = await alice.connect(contact)
    far = await accepted.next()
    assert conn.verified_user == aor("bob") and far.verified_user == aor("alice")
    far.send(OK)
    assert await asyncio.wait_for(conn.recv(), 5) == OK

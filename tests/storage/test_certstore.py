"""The Certificate Store Usage (RFC 6940 §8) and the user-name check of §11.3.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from reload_core.ids import resource_id
from reload_core.node.envelope import build_message
from reload_core.security.signing import SignatureError, verify_message
from reload_core.storage import Storage, StorageError
from reload_core.storage.placement import everything
from reload_core.wire.codes import DataModel, KindId, MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import MessageContents, NodeDestination
from reload_core.wire.registry import encode_struct
from reload_core.wire.usage_data import certificate_entry

from .ring import StorageRing
from .support import OVERLAY, SelfSigned, TestCA


@pytest.fixture
async def ring(ca: TestCA) -> AsyncIterator[StorageRing]:
    r = StorageRing(ca)
    try:
        yield r
    finally:
        await r.close()


async def build(ring: StorageRing, n: int) -> list[Storage]:
    await ring.first()
    for _ in range(n - 1):
        await ring.join()
    await ring.converge()
    return ring.peers


async def test_publish_stores_under_node_and_user_once(ring: StorageRing) -> None:
    peers = await build(ring, 4)
    bob = peers[1]
    await bob.certificates.publish()  # a peer stores it on joining; again, it is not appended twice
    me = bob.node.signer.node_certificate
    reader = peers[3].certificates
    assert [c.der for c in await reader.by_node(bob.node.node_id)] == [me.der]
    assert [c.der for c in await reader.by_user(me.user_name)] == [me.der]
    (arr,) = await peers[3].client.fetch(
        resource_id(bob.node.node_id), everything(KindId.CERTIFICATE_BY_NODE, DataModel.ARRAY)
    )
    assert len(arr.existing) == 1
    # Only Bob may store at his Node-ID's resource (NODE-MATCH).
    with pytest.raises(StorageError):
        await peers[2].client.store(
            resource_id(bob.node.node_id),
            KindId.CERTIFICATE_BY_NODE,
            [certificate_entry(peers[2].node.signer.certificate)],
        )


async def test_a_message_without_its_signers_certificate_verifies_after_a_fetch(ring: StorageRing) -> None:
    peers = await build(ring, 4)
    bob, alice = peers[1], peers[2]
    await bob.certificates.publish()
    contents = MessageContents(MessageCode.ping_req, encode_struct(PingReq()))
    message = build_message(
        bob.node.settings,
        bob.node.signer,
        transaction_id=7,
        destinations=(NodeDestination(alice.node.node_id),),
        contents=contents,
    )
    # Strip the certificate bucket, and name Bob as the originator in the Via List.
    message = replace(
        message,
        security_block=replace(message.security_block, certificates=()),
        forwarding_header=replace(message.forwarding_header, via_list=(NodeDestination(bob.node.node_id),)),
    )
    fresh = ring.ca.resolver()  # knows the roots, has never seen Bob's certificate
    with pytest.raises(SignatureError):
        verify_message(message, fresh)
    signer = await alice.certificates.verify_message(message, fresh)
    assert signer.der == bob.node.signer.certificate
    assert bob.node.signer.certificate in alice.certificates.cache
    # Once cached, a resolver the store is installed in verifies it at once.
    alice.certificates.install(fresh)
    assert verify_message(message, fresh).der == bob.node.signer.certificate


async def test_an_unpublished_signer_stays_unverified(ring: StorageRing) -> None:
    peers = await build(ring, 3)
    outsider = ring.ca.identity(f"carol@{OVERLAY}")  # a valid identity that never stored its certificate
    contents = MessageContents(MessageCode.ping_req, encode_struct(PingReq()))
    message = build_message(
        peers[0].node.settings, outsider.signer, transaction_id=9, destinations=(), contents=contents
    )
    message = replace(message, security_block=replace(message.security_block, certificates=()))
    with pytest.raises(SignatureError):
        await peers[0].certificates.verify_message(message, ring.ca.resolver(), origin=outsider.node_id)
    assert await peers[0].certificates.by_node(outsider.node_id) == ()


async def test_self_signed_user_name_check() -> None:
    """§11.3.1: a self-signed node looks whether its user name is already taken, and does
    not store its certificate under a name another key holds."""
    ring = StorageRing(SelfSigned())  # type: ignore[arg-type]
    try:
        await ring.first()
        await ring.join()
        erin = await ring.join_as("erin@storage.test.example")
        await ring.converge()
        assert await erin.certificates.publish() is True  # (joining already stored it)
        # A second node wanting the same name finds it taken; Erin herself does not.
        impostor = await ring.join_as("erin@storage.test.example")
        await ring.converge()
        assert await impostor.certificates.user_name_taken() is True
        assert await impostor.certificates.publish() is False
        assert await erin.certificates.user_name_taken() is False
        assert [c.der for c in await erin.certificates.by_user("erin@storage.test.example")] == [
            erin.node.signer.certificate
        ]
        assert await impostor.certificates.user_name_taken("frank@storage.test.example") is False
        # Its certificate is still stored by Node-ID.
        assert await erin.certificates.by_node(impostor.node.node_id)
    finally:
        await ring.close()

"""The TURN Server Usage (§9): TURN-SERVICE records stored by a peer and found by others
through Find on random Resource-IDs, with signatures checked; eligibility; credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import AsyncIterator

import pytest

from reload_core.ids import resource_id
from reload_core.node import Node, tls_transport, wait_until
from reload_core.node.attach_ice import IceAttachManager, install_ice
from reload_core.storage import KindRegistry, Storage, StorageError
from reload_core.storage.access import node_multiple_match
from reload_core.usages.turn import (
    TURN_SERVICE_KIND,
    TurnCredentials,
    TurnService,
    may_offer_turn,
    rest_credentials,
    use_overlay_turn,
)
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import ErrorCode, KindId
from reload_core.wire.storage import DataValue
from reload_core.wire.usage_data import TurnServer

from .pki import TestPki
from .test_node_ice import ring_errors, settings

TURN_ADDRESS = IpAddressPort("198.51.100.3", 3478)


def test_who_may_offer_a_turn_server() -> None:
    assert may_offer_turn("198.51.100.7", [("198.51.100.7", 5000)])
    assert not may_offer_turn("198.51.100.7", [("203.0.113.1", 5000)])  # behind a NAT
    assert not may_offer_turn("10.1.0.2", [])  # RFC 1918
    assert not may_offer_turn("192.168.1.20", [("192.168.1.20", 1)])
    assert may_offer_turn("2001:db8::5", [])


def test_rest_credentials_are_coturns_auth_secret_scheme() -> None:
    name, password = rest_credentials("s3cret", "alice", now=1_700_000_000, ttl=600)
    assert name == "1700000600:alice"
    expected = base64.b64encode(hmac.new(b"s3cret", b"1700000600:alice", hashlib.sha1).digest()).decode()
    assert password == expected
    relay = TurnCredentials(shared_secret="s3cret").for_server(("198.51.100.3", 3478), "alice", 1_700_000_000)
    assert relay.address == ("198.51.100.3", 3478) and relay.username.endswith(":alice")
    fixed = TurnCredentials("bob", "pw").for_server(("198.51.100.3", 3478), "ignored", 0)
    assert (fixed.username, fixed.password) == ("bob", "pw")


@pytest.fixture
async def storage_ring(pki: TestPki, interface_address: str) -> AsyncIterator[list[Node]]:
    nodes: list[Node] = []
    managers: list[IceAttachManager] = []
    kinds = KindRegistry([TURN_SERVICE_KIND])
    try:
        for i in range(3):
            creds = pki.node()
            node = Node(creds.signer, pki.resolver(), settings(), tls_transport(creds.tls, pki.trust()))
            managers.append(install_ice(node, creds.tls, pki.trust()))
            Storage.for_peer(node, pki.resolver(), kinds, publish_certificate=False)
            nodes.append(node)
            address = await node.start(IpAddressPort(interface_address, 0))
            if i == 0:
                bootstrap = address
                node.start_alone()
            else:
                await node.join([bootstrap], timeout=20.0)
        await wait_until(nodes, lambda: not ring_errors(nodes), 20.0)
        yield nodes
    finally:
        for node in nodes:
            await node.close()
        for manager in managers:
            await manager.wait_closed()


async def test_turn_servers_are_advertised_and_found(storage_ring: list[Node]) -> None:
    operator, _, seeker = storage_ring
    operator_storage, seeker_storage = Storage.of(operator), Storage.of(seeker)
    assert operator_storage is not None and seeker_storage is not None

    service = TurnService(operator_storage.client, turn_density=5)
    stored = await service.advertise(TURN_ADDRESS)
    assert len(stored) == 5
    # Resource-ID H(Node-ID || d), writable by the operator alone (NODE-MULTIPLE, §7.3.4).
    for d, resource in service.resources(operator.node_id):
        assert resource == resource_id(operator.node_id + bytes([d]))
        assert node_multiple_match(resource, operator.node_id, 20) == d

    finder = TurnService(seeker_storage.client, turn_density=5)
    found = await finder.find(attempts=30, rng=random.Random(7))
    assert [f.address for f in found] == [("198.51.100.3", 3478)]
    assert found[0].node_id == operator.node_id
    assert 1 <= found[0].server.iteration <= 5

    # Another node cannot write the operator's TURN-SERVICE Resource-IDs.
    _, resource = service.resources(operator.node_id)[0]
    with pytest.raises(StorageError) as refused:
        await seeker_storage.client.store(
            resource,
            KindId.TURN_SERVICE,
            [DataValue(True, TurnServer(1, IpAddressPort("203.0.113.66", 3478)).to_bytes())],
        )
    assert refused.value.code == ErrorCode.Error_Forbidden

    # The node then gathers a relayed candidate from what it finds (§6.5.1.5).
    manager = seeker.attach
    assert isinstance(manager, IceAttachManager) and manager.ice_config.turn is None
    chosen = await use_overlay_turn(finder, manager, TurnCredentials(shared_secret="x"), attempts=30)
    assert chosen is not None and chosen.address == ("198.51.100.3", 3478)
    assert manager.ice_config.turn is not None and manager.ice_config.turn.address == ("198.51.100.3", 3478)
    assert manager.ice_config.turn.username.endswith(":" + seeker.node_id.hex())

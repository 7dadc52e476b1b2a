"""Who may register which AoR (RFC 7904 §3.3, §3.4): real Stores over the overlay
refused by the storing peer with Error_Forbidden and the rule in words, and the same
verdicts before a Store is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reload_core.config.document import DomainRestriction
from reload_core.ids import resource_id
from reload_core.storage import StorageError
from reload_core.usages.sip import RegistrationRefused, SipUsage
from reload_core.wire.codes import ErrorCode, KindId
from reload_core.wire.sip_registration import SipRegistration
from reload_core.wire.storage import DataValue, DictionaryEntry
from tests.storage.support import TestCA

from .sip_ring import SipRing, aor, configuration

RESTRICTED = configuration(DomainRestriction(True, (r"storage\.test\.example", r".*\.my\.example")))


@pytest.fixture
async def ring(ca: TestCA) -> AsyncIterator[SipRing]:
    r = SipRing(ca, config=RESTRICTED)
    try:
        yield r
    finally:
        await r.close()


def route_of(usage: SipUsage) -> bytes:
    return SipRegistration.for_route(usage.destination_list(), "(sip.schemes=SIP)").to_bytes()


async def store_raw(usage: SipUsage, target: str, key: bytes, value: bytes | None = None) -> None:
    """A Store of a SIP-REGISTRATION entry made directly with the storage client: no
    check of ours before it goes out."""
    entry = DictionaryEntry(key, DataValue(True, route_of(usage) if value is None else value))
    await usage.storage.store(resource_id(target), KindId.SIP_REGISTRATION, [entry])


async def refused(usage: SipUsage, target: str, key: bytes, value: bytes | None = None) -> StorageError:
    with pytest.raises(StorageError) as caught:
        await store_raw(usage, target, key, value)
    return caught.value


async def test_storing_peers_refuse_what_rfc_7904_forbids(ring: SipRing) -> None:
    _, alice, mallory, eve, dora = await ring.peers(
        "relay", "alice", "mallory", "eve@elsewhere.example", "dora@office.my.example"
    )
    alice_aor = aor("alice")

    # The certificate's user is not the AoR: mallory cannot register (or hijack) alice.
    hijack = await refused(mallory, alice_aor, mallory.node_id)
    assert hijack.code == ErrorCode.Error_Forbidden
    assert hijack.reason == (
        f"the certificate's AoR '{aor('mallory')}' does not hash to Resource-ID "
        f"{resource_id(alice_aor).hex()} (RFC 7904 §3.3: only the AoR's user registers it)"
    )

    # An AoR outside the domain restrictions, though it is the certificate's own user.
    outside = await refused(eve, "eve@elsewhere.example", eve.node_id)
    assert outside.code == ErrorCode.Error_Forbidden
    assert outside.reason == (
        "AoR eve@elsewhere.example: domain 'elsewhere.example' is outside this overlay's domain "
        r"restrictions, which admit domains matching storage\.test\.example, .*\.my\.example "
        "(RFC 7904 §3.4); RFC 7904 §3.3"
    )

    # The dictionary key must be a Node-ID of the storing node's certificate.
    wrong_key = await refused(alice, alice_aor, mallory.node_id)
    assert wrong_key.code == ErrorCode.Error_Forbidden
    assert "is not a Node-ID of the storing node's certificate (RFC 7904 §3.3)" in wrong_key.reason

    # What is stored must be a SipRegistration (§7).
    garbage = await refused(alice, alice_aor, alice.node_id, b"\x02\x00\x05hello")
    assert garbage.code == ErrorCode.Error_Invalid_Message
    assert garbage.reason.startswith("the value is not a SipRegistration (RFC 7904 §3.2, §7)")

    # What the rules allow is stored: alice's own AoR, a domain a pattern matches in full.
    await store_raw(alice, alice_aor, alice.node_id)
    await store_raw(dora, "dora@office.my.example", dora.node_id)
    assert (await mallory.resolve(alice_aor)).devices == 1
    assert (await mallory.resolve("dora@office.my.example")).devices == 1


async def test_our_own_store_is_checked_before_it_is_sent(ring: SipRing) -> None:
    _, alice, eve = await ring.peers("relay", "alice", "eve@elsewhere.example")
    users = ("alice", "bob", "eve@elsewhere.example")
    before = ring.fetches_of(*users)
    with pytest.raises(RegistrationRefused) as other:
        await alice.register(aor("bob"))
    assert other.value.code == ErrorCode.Error_Forbidden
    assert other.value.reason == (
        f"AoR {aor('bob')} is not this node's user: the certificate names '{aor('alice')}' "
        "(USER-NODE-MATCH, RFC 7904 §3.3, §7)"
    )
    with pytest.raises(RegistrationRefused) as outside:
        await eve.register()
    assert "outside this overlay's domain restrictions" in outside.value.reason
    with pytest.raises(RegistrationRefused):
        await eve.forward(None, aor("alice"))
    with pytest.raises(RegistrationRefused, match="cannot forward to itself"):
        await alice.forward(None, f"sips:{aor('alice')}")
    assert not alice.registrations and not eve.registrations
    assert ring.fetches_of(*users) == before


async def test_without_patterns_only_the_overlays_domain(ca: TestCA) -> None:
    """§3.4: a <domain-restrictions> element whose "enable" is not set admits only the
    overlay's own domain."""
    ring = SipRing(ca, config=configuration(DomainRestriction(False)))
    try:
        _, alice, dora = await ring.peers("relay", "alice", "dora@office.my.example")
        await alice.register()
        outside = await refused(dora, "dora@office.my.example", dora.node_id)
        assert outside.code == ErrorCode.Error_Forbidden
        assert "which admit only the overlay's own domain storage.test.example" in outside.reason
    finally:
        await ring.close()

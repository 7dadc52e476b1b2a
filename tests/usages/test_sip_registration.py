"""Registering, forwarding and resolving AoRs (RFC 7904 §3, §4, §6, §8.2.1) on rings of
peers over real TLS/TCP links on 127.0.0.1, with storing peers that apply §3.3."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from reload_core.config.document import DomainRestriction
from reload_core.usages.sip import (
    Outcome,
    Refreshed,
    Registered,
    Registration,
    RegistrationEvent,
    RegistrationFailed,
    RegistrationState,
    Resolver,
    ResolverLimits,
    SipScheme,
    SipUsage,
    Unregistered,
    parse_aor,
    parse_gruu,
)
from reload_core.wire.codes import ErrorCode, KindId
from reload_core.wire.message import NodeDestination
from reload_core.wire.sip_registration import SipRegistration
from reload_core.wire.storage import DictionaryEntry, StoredDataSpecifier
from tests.storage.support import TestCA

from .sip_ring import DOMAIN, SipRing, aor, configuration

ALICE, BOB, CAROL = aor("alice"), aor("bob"), aor("carol")


@pytest.fixture
async def make_ring(ca: TestCA) -> AsyncIterator[Callable[..., SipRing]]:
    rings: list[SipRing] = []

    def make(**options: object) -> SipRing:
        ring = SipRing(ca, **options)  # type: ignore[arg-type]
        rings.append(ring)
        return ring

    try:
        yield make
    finally:
        for ring in rings:
            await ring.close()


async def next_event(
    registration: Registration, kind: type[RegistrationEvent], timeout: float = 15.0
) -> RegistrationEvent:
    """The next event of ``kind`` the registration emits."""
    future: asyncio.Future[RegistrationEvent] = asyncio.get_running_loop().create_future()

    def listener(event: RegistrationEvent) -> None:
        if isinstance(event, kind) and not future.done():
            future.set_result(event)

    remove = registration.add_listener(listener)
    try:
        return await asyncio.wait_for(future, timeout)
    finally:
        remove()


async def stored_keys(usage: SipUsage, target: str) -> set[bytes]:
    """The dictionary keys of the live SIP-REGISTRATION entries at ``target``'s Resource-ID."""
    fetched = await usage.storage.fetch(
        parse_aor(target).resource_id(usage.bits), StoredDataSpecifier.dictionary(KindId.SIP_REGISTRATION)
    )
    return {v.value.key for f in fetched for v in f.existing if isinstance(v.value, DictionaryEntry)}


async def test_register_one_then_two_devices(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring()
    _, alice1, alice2, bob = await ring.peers("relay", "alice", "alice", "bob")

    registration = await alice1.register()
    assert registration.state is RegistrationState.REGISTERED
    assert registration.aor.name == ALICE and not registration.is_forward

    one = await bob.resolve(f"sip:{ALICE}")
    assert one.outcome is Outcome.REGISTERED
    assert [c.node_id for c in one.contacts] == [alice1.node_id]
    (contact,) = one.contacts
    assert contact.registered_by == alice1.node_id and contact.aor == ALICE
    assert contact.destination_list == (NodeDestination(alice1.node_id),)
    assert contact.schemes == (SipScheme.SIP,)  # nobody listens yet: SIP (§3.2)
    assert contact.expires_in is not None and 3500 < contact.expires_in <= 3600
    assert one.describe() == f"sip:{ALICE} is registered at 1 device"
    assert one.fetches == 1 and one.discarded == 0

    await alice2.register()
    two = await bob.resolve(ALICE)  # the AoR without its scheme names the same resource (§2)
    assert two.outcome is Outcome.REGISTERED
    assert {c.node_id for c in two.contacts} == {alice1.node_id, alice2.node_id}
    assert two.describe() == f"{ALICE} is registered at 2 devices"
    # Side by side: one dictionary entry per device, keyed by its Node-ID (§3.2, §7).
    assert await stored_keys(bob, ALICE) == {alice1.node_id, alice2.node_id}

    nobody = await alice1.resolve(BOB)
    assert nobody.outcome is Outcome.NOT_REGISTERED and not nobody.ok
    assert nobody.describe() == f"{BOB} is not registered"


async def test_refreshed_before_the_lifetime_runs_out(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring(lifetime=2)
    _, alice, bob = await ring.peers("relay", "alice", "bob")
    clock = alice.node.clock
    registration = await alice.register()
    first = (await bob.resolve(ALICE)).contacts[0]
    times = [clock.time()]
    for _ in range(2):
        expires_at = registration.expires_at
        assert expires_at is not None
        event = await next_event(registration, Refreshed, timeout=10)
        assert isinstance(event, Refreshed) and event.aor == ALICE and event.lifetime == 2
        now = clock.time()
        assert now < expires_at, "refreshed only after the entry had expired"
        times.append(now)
    assert registration.refreshes >= 2
    # Two refreshes later the first Store's lifetime is long over, and alice is registered.
    assert times[-1] - times[0] > 2
    again = await bob.resolve(ALICE)
    assert again.outcome is Outcome.REGISTERED and again.contacts[0].node_id == alice.node_id
    assert again.contacts[0].storage_time > first.storage_time


async def test_removed_on_sign_out_and_on_clean_exit(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring()
    _, alice1, alice2, bob = await ring.peers("relay", "alice", "alice", "bob")
    registration = await alice1.register()
    await alice2.register()
    assert (await bob.resolve(ALICE)).devices == 2

    stopped = asyncio.ensure_future(next_event(registration, Unregistered))
    await alice1.unregister()
    event = await stopped
    assert isinstance(event, Unregistered) and event.removed and event.aor == ALICE
    assert registration.state is RegistrationState.STOPPED
    left = await bob.resolve(ALICE)
    assert [c.node_id for c in left.contacts] == [alice2.node_id]
    assert left.removed == 1  # alice1's entry is now a removal (exists = false, RFC 6940 §7.4.1.3)

    await alice2.close()  # a clean exit removes the registrations too
    gone = await bob.resolve(ALICE)
    assert gone.outcome is Outcome.NOT_REGISTERED and gone.removed == 2
    assert gone.describe() == f"{ALICE} is not registered"


async def test_an_entry_nobody_refreshes_expires(make_ring: Callable[..., SipRing]) -> None:
    """A device that vanished without removing its entry (stopped, not removed): once the
    lifetime has run out the entry is gone (§3.1: the lifetime of StoredData)."""
    ring = make_ring(lifetime=2)
    _, alice, bob = await ring.peers("relay", "alice", "bob")
    registration = await alice.register()
    assert (await bob.resolve(ALICE)).outcome is Outcome.REGISTERED
    expires_at = registration.expires_at
    assert expires_at is not None
    await registration.stop(remove=False)

    # Wait on the node's clock until the lifetime (rounded up for replicas) is over.
    clock = alice.node.clock
    over: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    clock.call_later(expires_at - clock.time() + 1.1, lambda: over.set_result(None))
    await asyncio.wait_for(over, 10)
    assert (await bob.resolve(ALICE)).outcome is Outcome.NOT_REGISTERED


async def test_forward_and_take_it_back(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring()
    _, alice, bob, carol = await ring.peers("relay", "alice", "bob", "carol")
    await alice.register()
    await bob.register()

    registration = await alice.forward(None, f"sip:{BOB}")
    assert registration.is_forward and registration.record == SipRegistration.for_uri(BOB)
    forwarded = await carol.resolve(ALICE)
    assert forwarded.outcome is Outcome.REGISTERED
    assert forwarded.forwarded_to == (BOB,)
    assert [(c.node_id, c.aor) for c in forwarded.contacts] == [(bob.node_id, BOB)]
    assert forwarded.describe() == f"{ALICE} is forwarded to {BOB} and registered at 1 device"
    assert forwarded.fetches == 2

    back = await alice.unforward()
    assert back is registration and not registration.is_forward
    direct = await carol.resolve(ALICE)
    assert direct.forwarded_to == () and [c.node_id for c in direct.contacts] == [alice.node_id]

    # A forward of an AoR nobody registered here goes away entirely when taken back.
    await carol.forward(None, ALICE)
    assert (await bob.resolve(CAROL)).forwarded_to == (ALICE,)
    assert await carol.unforward() is None
    assert (await bob.resolve(CAROL)).outcome is Outcome.NOT_REGISTERED


async def test_forwarding_loop_is_detected(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring()
    _, alice, bob, carol, alice2 = await ring.peers("relay", "alice", "bob", "carol", "alice")
    await alice.forward(None, BOB)
    await bob.forward(None, CAROL)
    await carol.forward(None, ALICE)
    looped = await bob.resolve(ALICE)
    assert looped.outcome is Outcome.LOOP
    assert looped.loop == (ALICE, BOB, CAROL, ALICE)
    assert looped.describe() == f"{ALICE}: forwarding loop {ALICE} → {BOB} → {CAROL} → {ALICE}"
    assert looped.fetches == 3  # each AoR once
    assert (await alice.resolve(ALICE)).loop == looped.loop

    # alice's second device registers: the call goes there, and the loop is mentioned.
    await alice2.register()
    mixed = await bob.resolve(ALICE)
    assert mixed.outcome is Outcome.REGISTERED
    assert [c.node_id for c in mixed.contacts] == [alice2.node_id]
    assert mixed.describe() == (
        f"{ALICE} is forwarded to {BOB}, {CAROL}, {ALICE} and registered at 1 device; "
        f"forwarding loop {ALICE} → {BOB} → {CAROL} → {ALICE} not followed"
    )
    # A forward to an AoR already resolved by another path is no loop.
    await carol.register()
    await alice2.forward(None, CAROL)  # alice → bob → carol, and alice → carol
    diamond = await bob.resolve(ALICE)
    assert diamond.outcome is Outcome.REGISTERED and diamond.loop == ()
    assert [c.node_id for c in diamond.contacts] == [carol.node_id]
    assert diamond.fetches == 3 and set(diamond.forwarded_to) == {BOB, CAROL}


async def test_forwarding_depth_limit(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring(limits=ResolverLimits(max_depth=2))
    _, u1, u2, u3, u4 = await ring.peers("relay", "u1", "u2", "u3", "u4")
    await u1.forward(None, aor("u2"))
    await u2.forward(None, aor("u3"))
    await u3.forward(None, aor("u4"))
    await u4.register()

    too_deep = await u4.resolve(aor("u1"))
    assert too_deep.outcome is Outcome.DEPTH_LIMIT
    assert too_deep.depth_limited == (aor("u4"),)
    assert too_deep.describe() == f"{aor('u1')}: forwarded more than 2 times; not followed to {aor('u4')}"
    assert too_deep.fetches == 3

    few_fetches = await Resolver(u4.storage, ring.config, ResolverLimits(max_fetches=2)).resolve(aor("u1"))
    assert few_fetches.outcome is Outcome.DEPTH_LIMIT and few_fetches.fetches == 2
    assert few_fetches.fetch_limited == (aor("u3"),) and few_fetches.depth_limited == ()
    assert few_fetches.describe() == f"{aor('u1')}: 2 Fetches made, not followed further to {aor('u3')}"

    two_steps = await u4.resolve(aor("u2"))
    assert two_steps.outcome is Outcome.REGISTERED
    assert two_steps.forwarded_to == (aor("u3"), aor("u4"))
    assert [c.node_id for c in two_steps.contacts] == [u4.node_id]


async def test_duplicate_destination_lists_are_removed(make_ring: Callable[..., SipRing]) -> None:
    """§3.2: "one Node-ID to forward to another": alice's desk phone (alice2) rings her cell
    phone (alice1) by registering alice1's Destination List; and bob forwards to alice."""
    ring = make_ring()
    _, alice1, alice2, bob, carol = await ring.peers("relay", "alice", "alice", "bob", "carol")
    await alice1.register()
    await alice2.register(destination_list=alice1.destination_list())
    await bob.forward(None, ALICE)
    await carol.register()
    await carol.forward(None, BOB)  # carol → bob → alice: alice's two entries, one place

    one = await carol.resolve(ALICE)
    assert one.outcome is Outcome.REGISTERED
    assert [c.node_id for c in one.contacts] == [alice1.node_id]
    assert one.found == 1 and one.duplicates == 1
    # The newest entry of the two is the one kept.
    assert one.contacts[0].registered_by == alice2.node_id
    via = await carol.resolve(CAROL)
    assert via.forwarded_to == (BOB, ALICE) and via.devices == 1 and via.duplicates == 1


async def test_fan_out_is_capped(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring(limits=ResolverLimits(max_fanout=2))
    _, a1, a2, a3, bob = await ring.peers("relay", "alice", "alice", "alice", "bob")
    for device in (a1, a2, a3):
        await device.register()
    capped = await bob.resolve(ALICE)
    assert capped.outcome is Outcome.REGISTERED
    assert capped.found == 3 and capped.capped == 1 and capped.devices == 2
    assert {c.node_id for c in capped.contacts} == {a2.node_id, a3.node_id}  # the newest two
    assert capped.describe() == (
        f"{ALICE} is registered at 3 devices; only the 2 newest are used (fan-out cap of 2, RFC 7904 §8.2.1)"
    )


async def test_a_gruu_is_resolved_without_a_fetch(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring()
    _, alice, bob = await ring.peers("relay", "alice", "bob")
    await alice.register()
    gruu = alice.gruu()
    assert gruu.startswith(f"sip:{ALICE};gr=")
    assert parse_gruu(gruu).destination_list == alice.destination_list()

    before, made = ring.fetches_of(ALICE, by=bob.node_id), bob.resolver.fetches
    direct = await bob.resolve(gruu)
    assert direct.outcome is Outcome.GRUU and direct.fetches == 0
    assert [c.node_id for c in direct.contacts] == [alice.node_id]
    assert direct.contacts[0].gruu == gruu
    assert ring.fetches_of(ALICE, by=bob.node_id) == before and bob.resolver.fetches == made
    assert direct.describe() == f"{gruu} is a GRUU: directly to node {alice.node_id.hex()} (RFC 7904 §6)"
    # The same AoR without its gr parameter is fetched (and the peers count it).
    assert (await bob.resolve(ALICE)).fetches == 1
    assert ring.fetches_of(ALICE, by=bob.node_id) == before + 1


async def test_domain_not_served(make_ring: Callable[..., SipRing]) -> None:
    restricted = configuration(DomainRestriction(True, (r"storage\.test\.example",)))
    ring = make_ring(config=restricted)
    _, alice, bob = await ring.peers("relay", "alice", "bob")
    before = ring.fetches_of("zed@elsewhere.example")
    outside = await bob.resolve("sip:zed@elsewhere.example")
    assert outside.outcome is Outcome.DOMAIN_NOT_SERVED and outside.fetches == 0
    assert outside.describe() == (
        "sip:zed@elsewhere.example: domain 'elsewhere.example' is not served by this overlay, which admits "
        r"domains matching storage\.test\.example (RFC 7904 §3.4, §4.1)"
    )
    assert ring.fetches_of("zed@elsewhere.example") == before
    # A pattern matches the whole domain, not a part of it.
    assert (await bob.resolve(f"sip:zed@x{DOMAIN}")).outcome is Outcome.DOMAIN_NOT_SERVED
    assert (await bob.resolve(f"sip:zed@{DOMAIN}.evil.org")).outcome is Outcome.DOMAIN_NOT_SERVED
    # A forward out of the overlay is reported, not followed.
    await alice.forward(None, "sip:zed@elsewhere.example")
    out = await bob.resolve(ALICE)
    assert out.outcome is Outcome.FORWARDED_OUTSIDE and out.external == ("zed@elsewhere.example",)
    assert out.describe() == f"{ALICE} is forwarded to zed@elsewhere.example, outside this overlay"


async def test_no_domain_restrictions_serve_any_domain(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring()  # no <domain-restrictions>: any AoR (RFC 7904 §3.4)
    _, bob = await ring.peers("relay", "bob")
    anywhere = await bob.resolve("sip:zed@elsewhere.example")
    assert anywhere.outcome is Outcome.NOT_REGISTERED and anywhere.fetches == 1


async def test_registration_events_and_contact_prefs(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring()
    _, alice, bob = await ring.peers("relay", "alice", "bob")
    events: list[RegistrationEvent] = []
    registration = await alice.register()
    registration.add_listener(events.append)
    assert registration.expires_in is not None and registration.expires_in > 3590
    await registration.refresh()
    await alice.register(contact_prefs=b"(sip.schemes=SIPS)")  # a new value: stored now
    assert [type(e) for e in events] == [Refreshed, Registered]
    assert (await bob.resolve(ALICE)).contacts[0].schemes == (SipScheme.SIPS,)


async def test_a_refused_store_is_final_and_a_lost_one_is_retried(make_ring: Callable[..., SipRing]) -> None:
    ring = make_ring()
    _, alice, bob = await ring.peers("relay", "alice", "bob")

    # Made by hand, past SipUsage's own check: the storing peer refuses, for good.
    hijack = Registration(
        alice.storage,
        parse_aor(BOB),
        SipRegistration.for_route(alice.destination_list()),
        key=alice.node_id,
        clock=alice.node.clock,
    )
    failures: list[RegistrationEvent] = []
    hijack.add_listener(failures.append)
    assert await hijack.start() is RegistrationState.FAILED
    (failed,) = failures
    assert isinstance(failed, RegistrationFailed)
    assert failed.code == ErrorCode.Error_Forbidden and failed.retry_in is None
    assert "does not hash to Resource-ID" in failed.reason and hijack.last_error == failed.reason
    assert (await bob.resolve(BOB)).outcome is Outcome.NOT_REGISTERED

    # A node that has not joined yet: no answer, so the Store is tried again later, and
    # succeeds once the node is in the overlay.
    storage = await ring.ring.new_storage(CAROL)
    carol = ring.usage(storage)
    registration = await carol.register()
    assert registration.state is RegistrationState.FAILED
    assert registration.last_error is not None and "no response" in registration.last_error
    registered = asyncio.ensure_future(next_event(registration, Registered, timeout=20))
    bootstrap = ring.ring.peers[0].node.address
    assert bootstrap is not None
    await storage.node.join([bootstrap], timeout=20.0)
    ring.ring.peers.append(storage)
    await registered
    assert registration.state is RegistrationState.REGISTERED
    assert [c.node_id for c in (await bob.resolve(CAROL)).contacts] == [carol.node_id]

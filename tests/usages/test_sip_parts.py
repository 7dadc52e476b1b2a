"""The SIP Usage's pure parts (RFC 7904): AoRs as resource names (§2, §7), contact
preferences and schemes (§3.2, §5.1), the storing peer's rule (§3.3, §3.4), reading a
Fetch of registrations and removing duplicates (§4.2), with real certificates and
signatures."""

from __future__ import annotations

import pytest

from reload_core.config.document import AccessControl, DomainRestriction
from reload_core.ids import resource_id
from reload_core.storage import StorageError
from reload_core.storage.client import FetchedKind
from reload_core.storage.kinds import Kind
from reload_core.usages.sip import (
    Aor,
    AorError,
    Contact,
    Outcome,
    Resolution,
    SipRegistrationRule,
    SipScheme,
    parse_aor,
    resource_name,
    sip_access_policy,
)
from reload_core.usages.sip.resolve import dedupe, read_registrations
from reload_core.usages.sip.schemes import applications_to_try, encode_contact_prefs, preferred_schemes
from reload_core.wire.codes import DataModel, ErrorCode, KindId
from reload_core.wire.context import WireContext
from reload_core.wire.message import NodeDestination
from reload_core.wire.sip_registration import SipRegistration
from reload_core.wire.storage import DataValue, DictionaryEntry, StoredData
from tests.storage.support import Identity, TestCA

from .sip_ring import DOMAIN, aor, configuration

SIP_KIND = Kind(KindId.SIP_REGISTRATION, DataModel.DICTIONARY, AccessControl.USER_NODE_MATCH, 16, 1024)
CTX = WireContext(node_id_length=16)


@pytest.mark.parametrize(
    ("text", "user", "domain"),
    [
        ("sip:alice@example.org", "alice", "example.org"),
        ("SIPS:alice@example.org", "alice", "example.org"),
        ("alice@example.org", "alice", "example.org"),
        ("sip:alice@example.org;transport=udp?subject=x", "alice", "example.org"),
        ("sip:alice@example.org:5061", "alice", "example.org"),
        ("sip:al%69ce@example.org", "alice", "example.org"),  # §7: escapes decoded
        ("sip:%C3%A9lise@example.org", "élise", "example.org"),
        ("sip:alice@Example.ORG", "alice", "Example.ORG"),  # hashed as written
        ("sip:alice@[2001:db8::1]", "alice", "[2001:db8::1]"),
    ],
)
def test_aor_names_its_resource(text: str, user: str, domain: str) -> None:
    parsed = parse_aor(text)
    assert parsed == Aor(user, domain)
    assert resource_name(text) == f"{user}@{domain}" == str(parsed)
    assert parsed.resource_id() == resource_id(f"{user}@{domain}")
    assert parsed.uri("sips") == f"sips:{user}@{domain}"


@pytest.mark.parametrize(
    "text",
    [
        "example.org",
        "sip:@example.org",
        "alice@",
        "sip:alice@",
        "a b@example.org",
        "alice@exa_mple",
        "al%zzice@x.org",
        "",
    ],
)
def test_not_an_aor(text: str) -> None:
    with pytest.raises(AorError):
        parse_aor(text)


def test_contact_prefs_and_schemes() -> None:
    assert encode_contact_prefs([SipScheme.SIP]) == b"(sip.schemes=SIP)"
    assert encode_contact_prefs([SipScheme.SIPS]) == b"(sip.schemes=SIPS)"
    both = encode_contact_prefs([SipScheme.SIPS, SipScheme.SIP])
    assert both == b"(|(sip.schemes=SIP)(sip.schemes=SIPS))"
    assert preferred_schemes(both) == (SipScheme.SIP, SipScheme.SIPS)
    assert preferred_schemes(b"(sip.schemes=SIPS)") == (SipScheme.SIPS,)
    assert preferred_schemes(b'(&(sip.audio=TRUE)(sip.schemes="sips,sip"))') == (
        SipScheme.SIPS,
        SipScheme.SIP,
    )
    assert preferred_schemes(b"(sip.audio=TRUE)") == ()
    assert preferred_schemes(b"\xff\xfe") == ()
    assert applications_to_try(b"") == (5060, 5061)
    assert applications_to_try(b"(sip.schemes=SIPS)") == (5061,)
    assert applications_to_try(b"(sip.schemes=SIPS)", SipScheme.SIP) == (5060,)
    assert SipScheme.of_application(5061) is SipScheme.SIPS
    with pytest.raises(ValueError):
        SipScheme.of_application(5062)


def route(identity: Identity, prefs: bytes = b"(sip.schemes=SIP)") -> bytes:
    return SipRegistration.for_route([NodeDestination(identity.node_id)], prefs).to_bytes()


def check(rule: SipRegistrationRule, who: Identity, target: str, key: bytes, value: bytes | None) -> None:
    entry = DictionaryEntry(key, DataValue(value is not None, value or b""))
    rule(SIP_KIND, resource_id(target), entry, who.signed_by)


def test_storing_peer_rule_follows_the_domain_restrictions(ca: TestCA) -> None:
    alice = ca.identity(aor("alice"))
    eve = ca.identity("eve@elsewhere.example")
    dora = ca.identity("dora@Office.My.Example")
    ann = ca.identity("ann@123.example")

    any_domain = SipRegistrationRule(configuration())  # no <domain-restrictions>: any AoR
    for who in (alice, eve, dora):
        check(any_domain, who, who.user_name, who.node_id, route(who))

    own = SipRegistrationRule(configuration(DomainRestriction(False)))  # not enabled: own domain only
    check(own, alice, alice.user_name, alice.node_id, route(alice))
    with pytest.raises(StorageError, match=r"only the overlay's own domain storage\.test\.example"):
        check(own, eve, eve.user_name, eve.node_id, route(eve))

    patterns = SipRegistrationRule(
        configuration(
            DomainRestriction(True, (r"storage\.test\.example", r".*\.my\.example", r"[[:digit:]]+\.example"))
        )
    )
    check(patterns, alice, alice.user_name, alice.node_id, route(alice))
    check(patterns, dora, dora.user_name, dora.node_id, route(dora))  # domains compare case-blind
    check(patterns, ann, ann.user_name, ann.node_id, route(ann))  # a POSIX bracket class
    with pytest.raises(StorageError) as refused:
        check(patterns, eve, eve.user_name, eve.node_id, route(eve))
    assert refused.value.code == ErrorCode.Error_Forbidden

    # A removal (exists = false) is checked the same way, and needs no SipRegistration.
    check(patterns, alice, alice.user_name, alice.node_id, None)
    # Not a SipRegistration: Error_Invalid_Message.
    with pytest.raises(StorageError) as garbage:
        check(patterns, alice, alice.user_name, alice.node_id, b"\x01\x00\x01")
    assert garbage.value.code == ErrorCode.Error_Invalid_Message
    # The user name of the certificate must be an AoR at all.
    plain = ca.identity("operator@localhost")
    with pytest.raises(StorageError, match="outside this overlay's domain restrictions"):
        check(patterns, plain, plain.user_name, plain.node_id, route(plain))


def test_the_rule_runs_inside_the_access_policy(ca: TestCA) -> None:
    alice, bob = ca.identity(aor("alice")), ca.identity(aor("bob"))
    policy = sip_access_policy(configuration())
    entry = DictionaryEntry(alice.node_id, DataValue(True, route(alice)))
    policy.check(SIP_KIND, resource_id(alice.user_name), entry, alice.signed_by)
    with pytest.raises(StorageError, match="does not hash to Resource-ID"):
        policy.check(SIP_KIND, resource_id(alice.user_name), entry, bob.signed_by)
    # Other Kinds are not the rule's business.
    other = Kind(0xF0000003, DataModel.DICTIONARY, SIP_KIND.access_control, 8, 256)
    policy.check(other, resource_id(alice.user_name), entry, alice.signed_by)


def signed(
    who: Identity, target: str, key: bytes, value: bytes | None, t: int, lifetime: int = 3600
) -> StoredData:
    entry = DictionaryEntry(key, DataValue(value is not None, value or b""))
    return who.sign(resource_id(target), KindId.SIP_REGISTRATION, entry, t, lifetime)


def test_reading_a_fetch_drops_what_reaches_nobody(ca: TestCA) -> None:
    alice1, alice2, mallory = (
        ca.identity(aor("alice")),
        ca.identity(aor("alice")),
        ca.identity(aor("mallory")),
    )
    alice3 = ca.identity(aor("alice"))
    target = aor("alice")
    values = [
        (signed(alice1, target, alice1.node_id, route(alice1), 10), alice1),  # kept
        (signed(alice2, target, alice2.node_id, None, 11), alice2),  # a removal
        (signed(alice3, target, alice3.node_id, route(alice3), 12, lifetime=0), alice3),  # expired
        (signed(mallory, target, mallory.node_id, route(mallory), 13), mallory),  # not alice's user
        (signed(alice2, target, alice1.node_id, route(alice2), 14), alice2),  # key of another node
        (signed(alice3, target, alice3.node_id, b"\x02\x00\x01x", 15), alice3),  # not a SipRegistration
        (
            signed(alice2, target, alice2.node_id, SipRegistration.for_uri("bob@x.example").to_bytes(), 16),
            alice2,
        ),
        (signed(alice3, target, alice3.node_id, b"\x07\x00\x02ab", 17), alice3),  # a type unknown here
    ]
    fetched = FetchedKind(
        KindId.SIP_REGISTRATION, 8, tuple(v for v, _ in values), tuple(w.certificate for _, w in values)
    )
    read = read_registrations(parse_aor(target), fetched, ctx=CTX)
    assert [(c.node_id, c.registered_by, c.storage_time) for c in read.routes] == [
        (alice1.node_id, alice1.node_id, 10)
    ]
    assert read.routes[0].expires_in == 3600 and read.routes[0].schemes == (SipScheme.SIP,)
    assert read.uris == ("bob@x.example",)
    assert (read.removed, read.expired, read.discarded) == (1, 1, 4)
    assert any("not by alice@" in n for n in read.notes)
    assert any("SipRegistrationType 7" in n for n in read.notes)


def test_duplicates_keep_the_newest_and_order_newest_first() -> None:
    a, b = (NodeDestination(bytes([1]) * 16),), (NodeDestination(bytes([2]) * 16),)
    contacts = [
        Contact(a, "x@d", storage_time=5),
        Contact(b, "x@d", storage_time=7),
        Contact(a, "y@d", storage_time=9),
        Contact(a, "x@d", gruu="sip:x@d;gr=AQ~~", storage_time=1),
    ]
    unique, duplicates = dedupe(contacts)
    assert [(c.destination_list, c.aor, c.storage_time) for c in unique] == [(a, "y@d", 9), (b, "x@d", 7)]
    assert duplicates == 2


def test_failed_outcomes_say_why() -> None:
    assert (
        Resolution("bob", Outcome.INVALID, reason="'bob' has no user part").describe()
        == "'bob' is not a SIP AoR or GRUU: 'bob' has no user part"
    )
    assert (
        Resolution(
            f"bob@{DOMAIN}", Outcome.LOOKUP_FAILED, reason="Error_Request_Timeout: no answer"
        ).describe()
        == f"bob@{DOMAIN}: lookup failed: Error_Request_Timeout: no answer"
    )
    assert not Resolution("x@d", Outcome.NOT_REGISTERED).ok

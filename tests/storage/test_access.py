"""Access control policies (RFC 6940 §7.3): each allowed and refused."""

from __future__ import annotations

import pytest

from reload_core.config.document import DomainRestriction, OverlayConfiguration, default_kinds
from reload_core.ids import resource_id
from reload_core.storage.access import AccessPolicy, SignedBy, node_multiple_match
from reload_core.storage.errors import StorageError
from reload_core.wire.codes import ErrorCode, KindId
from reload_core.wire.storage import ArrayEntry, DataValue, DictionaryEntry

from .support import ARRAY_USER, DICT_USER, MULTI_NODE, SINGLE_NODE, SINGLE_USER, Identity, TestCA, make_kinds

KINDS = make_kinds()
POLICY = AccessPolicy()
VALUE = DataValue(True, b"v")


def refused(
    kind: int, resource: bytes, value: object, signer: SignedBy, policy: AccessPolicy = POLICY
) -> str:
    with pytest.raises(StorageError) as exc:
        policy.check(KINDS[kind], resource, value, signer)  # type: ignore[arg-type]
    assert exc.value.code == ErrorCode.Error_Forbidden
    return exc.value.reason


def test_user_match(alice: Identity, bob: Identity) -> None:
    POLICY.check(KINDS[SINGLE_USER], alice.user_resource, VALUE, alice.signed_by)
    POLICY.check(KINDS[ARRAY_USER], alice.user_resource, ArrayEntry(0, VALUE), alice.signed_by)
    assert "does not hash" in refused(SINGLE_USER, alice.user_resource, VALUE, bob.signed_by)
    refused(SINGLE_USER, alice.node_resource, VALUE, alice.signed_by)


def test_node_match(alice: Identity, bob: Identity) -> None:
    POLICY.check(KINDS[SINGLE_NODE], alice.node_resource, VALUE, alice.signed_by)
    POLICY.check(
        KINDS[KindId.CERTIFICATE_BY_NODE], alice.node_resource, ArrayEntry(0, VALUE), alice.signed_by
    )
    refused(SINGLE_NODE, alice.node_resource, VALUE, bob.signed_by)
    refused(SINGLE_NODE, alice.user_resource, VALUE, alice.signed_by)
    # The Node-ID must be the one the SignerIdentity designates: one from the certificate.
    refused(SINGLE_NODE, resource_id(b"\x01" * 16), VALUE, SignedBy(alice.certificate, b"\x01" * 16))


def test_user_node_match(alice: Identity, bob: Identity) -> None:
    r = alice.user_resource
    POLICY.check(KINDS[DICT_USER], r, DictionaryEntry(alice.node_id, VALUE), alice.signed_by)
    assert "dictionary key" in refused(DICT_USER, r, DictionaryEntry(bob.node_id, VALUE), alice.signed_by)
    refused(DICT_USER, r, DictionaryEntry(bob.node_id, VALUE), bob.signed_by)  # Bob cannot write Alice's AOR
    refused(DICT_USER, r, VALUE, alice.signed_by)


def test_node_multiple(alice: Identity, bob: Identity) -> None:
    for i in (1, 2, 3):
        r = resource_id(alice.node_id + bytes([i]))
        assert node_multiple_match(r, alice.node_id, 3) == i
        POLICY.check(KINDS[MULTI_NODE], r, VALUE, alice.signed_by)
    refused(
        MULTI_NODE, resource_id(alice.node_id + bytes([4])), VALUE, alice.signed_by
    )  # past max-node-multiple
    refused(MULTI_NODE, resource_id(alice.node_id + bytes([1])), VALUE, bob.signed_by)
    refused(MULTI_NODE, alice.node_resource, VALUE, alice.signed_by)


def test_sip_registration_aor_must_be_in_an_admitted_domain(ca: TestCA) -> None:
    """RFC 7904 §3.3: the AOR (the user name) must be a valid resource name for the overlay."""
    config = OverlayConfiguration(
        instance_name="storage.test.example",
        domain_restriction=DomainRestriction(True, (r".*\.test\.example",)),
        required_kinds=default_kinds(),
    )
    policy = AccessPolicy.from_configuration(config)
    ok = ca.identity("carol@storage.test.example")
    policy.check(
        KINDS[KindId.SIP_REGISTRATION],
        ok.user_resource,
        DictionaryEntry(ok.node_id, VALUE),
        ok.signed_by,
    )
    outsider = ca.identity("mallory@elsewhere.example")
    reason = refused(
        KindId.SIP_REGISTRATION,
        outsider.user_resource,
        DictionaryEntry(outsider.node_id, VALUE),
        outsider.signed_by,
        policy,
    )
    assert "admits" in reason
    # Other Kinds are not subject to the SIP domain rule.
    policy.check(KINDS[SINGLE_USER], outsider.user_resource, VALUE, outsider.signed_by)

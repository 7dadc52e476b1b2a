"""Signing and verifying configuration documents (RFC 6940 §11.1, SecurityBlock §6.3.4)."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from reload_core.config import (
    ConfigError,
    ConfigErrorReason,
    ConfigurationDocument,
    OverlayConfiguration,
    accept_configuration,
    default_kinds,
    generate_document,
    parse_document,
    sign_config,
    verify_configuration,
    verify_kind_signatures,
)
from reload_core.wire.buffer import Reader
from reload_core.wire.codes import HashAlgorithm, SignatureAlgorithm, SignerIdentityType
from reload_core.wire.message import SecurityBlock

OVERLAY = "overlay.example.org"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def configuration(root_ca, signer, **kw) -> OverlayConfiguration:  # type: ignore[no-untyped-def]
    fields = {
        "instance_name": OVERLAY,
        "sequence": 5,
        "root_certs": (root_ca.certificate,),
        "configuration_signers": (signer.node_id_hex,),
        "kind_signers": (signer.node_id_hex,),
        "required_kinds": default_kinds(),
        "bootstrap_nodes": (),
        **kw,
    }
    return OverlayConfiguration(**fields)


def accept(data: bytes, **kw) -> object:  # type: ignore[no-untyped-def]
    return accept_configuration(data, overlay_name=OVERLAY, now=NOW, **kw)


def refused(data: bytes, reason: ConfigErrorReason, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        accept(data, **kw)
    assert info.value.reason == reason, str(info.value)
    return str(info.value)


def test_signed_document_is_accepted(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    config = configuration(root_ca, signer)
    signed = sign_config(generate_document(config), signer.key, signer.certificate)
    accepted = accept(signed)
    # The same configuration, now with kind-signatures.
    assert replace(accepted.configuration, required_kinds=config.required_kinds) == config
    assert [k.kind for k in accepted.configuration.required_kinds] == [k.kind for k in config.required_kinds]
    assert accepted.signer.node_id == signer.node_id
    assert accepted.data == signed
    # The signature element follows the configuration and holds a base64 SecurityBlock.
    entry = parse_document(signed).entries[0]
    assert len(entry.signatures) == 1
    block = SecurityBlock.decode(Reader(entry.signatures[0].value))
    assert block.certificates[0].certificate == signer.certificate
    assert (block.signature.algorithm.hash, block.signature.algorithm.signature) == (
        HashAlgorithm.sha256,
        SignatureAlgorithm.rsa,
    )
    assert block.signature.identity.identity_type == SignerIdentityType.cert_hash
    assert re.search(
        rb"</configuration>\n  <signature>\n(    [A-Za-z0-9+/=]{1,64}\n)+  </signature>\n</overlay>", signed
    )
    # Every kind-block got its kind-signature over its kind element.
    for kind in entry.configuration.required_kinds:
        assert kind.kind_signature is not None
    verify_kind_signatures(entry.configuration, now=NOW)


def test_signing_keeps_the_configuration_bytes(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    """The model can be signed directly, and signing changes nothing but the signatures."""
    config = configuration(root_ca, signer)
    unsigned_kinds = sign_config(config, signer.key, signer.certificate, sign_kinds=False)
    assert (
        parse_document(unsigned_kinds).entries[0].raw
        == parse_document(generate_document(config)).entries[0].raw
    )
    signed = sign_config(config, signer.key, signer.certificate)
    # Signing again replaces the signatures rather than adding to them.
    again = sign_config(signed, signer.key, signer.certificate)
    assert again.count(b"<signature>") == 1
    assert again.count(b"<kind-signature>") == len(default_kinds())
    accept(again)


def test_ecdsa_signer(root_ca, other_signer) -> None:  # type: ignore[no-untyped-def]
    config = configuration(root_ca, other_signer)
    accepted = accept(sign_config(config, other_signer.key, other_signer.certificate))
    assert accepted.signer.node_id == other_signer.node_id


def tamper(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1
    return data.replace(old, new)


def test_changed_element_is_refused(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    signed = sign_config(configuration(root_ca, signer), signer.key, signer.certificate)
    changed = tamper(signed, b"<max-message-size>5000<", b"<max-message-size>5001<")
    message = refused(changed, ConfigErrorReason.SIGNATURE)
    assert "signature of configuration 'overlay.example.org'" in message
    assert "does not verify" in message
    # Whitespace is part of the signed blob too (§11.1).
    spaced = tamper(signed, b"<no-ice>false</no-ice>", b"<no-ice> false </no-ice>")
    assert "does not verify" in refused(spaced, ConfigErrorReason.SIGNATURE)


def test_changed_signature_is_refused(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    signed = sign_config(configuration(root_ca, signer), signer.key, signer.certificate)
    text = re.search(rb"<signature>([^<]+)</signature>", signed)
    assert text is not None
    raw = bytearray(base64.b64decode(text.group(1)))
    raw[-1] ^= 0x01  # last byte of signature_value
    forged = signed.replace(text.group(1), base64.b64encode(bytes(raw)))
    assert "does not verify" in refused(forged, ConfigErrorReason.SIGNATURE)
    truncated = signed.replace(text.group(1), base64.b64encode(bytes(raw[:-3])))
    assert "not a SecurityBlock" in refused(truncated, ConfigErrorReason.SIGNATURE)


def test_changed_kind_is_refused(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    signed = sign_config(configuration(root_ca, signer), signer.key, signer.certificate)
    # Resign the configuration only: the kind's own signature must still catch the change.
    changed = tamper(signed, b"<max-count>16</max-count>", b"<max-count>17</max-count>")
    resigned = sign_config(changed, signer.key, signer.certificate, sign_kinds=False)
    message = refused(resigned, ConfigErrorReason.KIND_SIGNATURE)
    assert "kind-signature of kind 'SIP-REGISTRATION'" in message and "does not verify" in message


def test_unsigned_document_is_refused(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    data = generate_document(configuration(root_ca, signer))
    assert "is not signed" in refused(data, ConfigErrorReason.SIGNATURE)
    accepted = accept(data, require_signature=False)
    assert accepted.signer is None


def test_signer_must_be_a_configuration_signer(root_ca, signer, other_signer) -> None:  # type: ignore[no-untyped-def]
    signed = sign_config(
        configuration(root_ca, signer), other_signer.key, other_signer.certificate, sign_kinds=False
    )
    message = refused(signed, ConfigErrorReason.SIGNATURE)
    assert f"Node-ID {other_signer.node_id_hex}, which is not among the allowed signers" in message


def test_signer_must_chain_to_the_root_certs(pki, root_ca, foreign_ca) -> None:  # type: ignore[no-untyped-def]
    stranger = pki.make_node(foreign_ca)
    config = configuration(root_ca, stranger)
    signed = sign_config(config, stranger.key, stranger.certificate)
    assert "signer's certificate is not trusted" in refused(signed, ConfigErrorReason.SIGNATURE)


def test_bad_node_cannot_sign(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    config = configuration(root_ca, signer, bad_nodes=(signer.node_id_hex,))
    signed = sign_config(config, signer.key, signer.certificate)
    assert "which is a bad-node" in refused(signed, ConfigErrorReason.SIGNATURE)


def test_root_certificate_may_sign_when_no_signer_is_listed(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    open_config = configuration(root_ca, signer, configuration_signers=(), kind_signers=())
    accepted = accept(sign_config(open_config, root_ca.key, root_ca.certificate))
    assert accepted.signer.node_id is None and accepted.signer.certificate == root_ca.certificate
    listed = configuration(root_ca, signer)
    signed = sign_config(listed, root_ca.key, root_ca.certificate)
    assert "signed by a root certificate" in refused(signed, ConfigErrorReason.SIGNATURE)


def test_previous_configuration_decides_who_may_sign(root_ca, signer, other_signer) -> None:  # type: ignore[no-untyped-def]
    """§11.1: signed "by one of the configuration-signer elements from the previous extant
    configuration" — a new document cannot appoint its own signer."""
    previous = configuration(root_ca, signer)
    takeover = configuration(root_ca, other_signer, sequence=6)
    signed = sign_config(takeover, other_signer.key, other_signer.certificate)
    accept(signed)  # on its own it is consistent...
    message = refused(signed, ConfigErrorReason.SIGNATURE, previous=previous)  # ...but not as an update
    assert "not among the allowed signers" in message
    update = sign_config(configuration(root_ca, signer, sequence=6), signer.key, signer.certificate)
    assert accept(update, previous=previous).configuration.sequence == 6


def test_several_overlays_signed_separately(pki, root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    """One document, two overlays, each signed by its own overlay's signer (§11.1)."""
    second = "second.example.org"
    signer_b = pki.make_node(root_ca, overlay=second)
    a = configuration(root_ca, signer)
    b = configuration(root_ca, signer_b, instance_name=second, required_kinds=())
    data = generate_document(ConfigurationDocument.of(a, b))
    only_a = sign_config(data, signer.key, signer.certificate, instance_names=[OVERLAY])
    document = parse_document(only_a)
    assert [len(e.signatures) for e in document.entries] == [1, 0]
    assert verify_configuration(document.entry(OVERLAY), now=NOW).node_id == signer.node_id
    with pytest.raises(ConfigError, match="is not signed"):
        verify_configuration(document.entry(second), now=NOW)
    both = sign_config(only_a, signer_b.key, signer_b.certificate, instance_names=[second])
    assert parse_document(both).entry(OVERLAY) == document.entry(OVERLAY)  # untouched
    assert accept_configuration(both, overlay_name=second, now=NOW).signer.node_id == signer_b.node_id  # type: ignore[union-attr]
    assert accept(both).signer.node_id == signer.node_id
    # A signer of one overlay cannot sign another's configuration.
    wrong = sign_config(data, signer.key, signer.certificate)
    with pytest.raises(ConfigError, match=r"certificate is for overlay 'overlay\.example\.org'"):
        accept_configuration(wrong, overlay_name=second, now=NOW)


def test_signature_of_the_rfc_example_does_not_verify(rfc_example: bytes) -> None:
    """The example's signatures are placeholders ("This is not right!")."""
    message = refused(rfc_example, ConfigErrorReason.SIGNATURE)
    assert "not a SecurityBlock" in message


def test_key_must_match_certificate(root_ca, signer, other_signer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="does not belong"):
        sign_config(configuration(root_ca, signer), other_signer.key, signer.certificate)


def test_signing_a_hand_written_prefixed_document(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    """Prefixes, an empty-element configuration and a kind-signature written before its
    kind: the signatures go in with the document's own prefix, the rest stays as it was."""
    cert = base64.b64encode(root_ca.certificate).decode()
    data = f"""<?xml version="1.0" encoding="UTF-8"?>
<p:overlay xmlns:p="urn:ietf:params:xml:ns:p2p:config-base">
 <!-- the first overlay -->
 <p:configuration instance-name="{OVERLAY}" sequence="9">
  <p:root-cert>{cert}</p:root-cert>
  <p:configuration-signer>{signer.node_id_hex}</p:configuration-signer>
  <p:kind-signer>{signer.node_id_hex}</p:kind-signer>
  <p:required-kinds><p:kind-block><p:kind-signature>AAAA</p:kind-signature><p:kind name="TURN-SERVICE"
    ><p:data-model>SINGLE</p:data-model><p:access-control>NODE-MULTIPLE</p:access-control
    ><p:max-node-multiple>20</p:max-node-multiple><p:max-count>1</p:max-count><p:max-size>64</p:max-size
  ></p:kind></p:kind-block></p:required-kinds>
 </p:configuration>
 <p:signature>AAAA</p:signature>
 <p:configuration instance-name="empty.example.org"/>
</p:overlay>
""".encode()
    before = parse_document(data)
    signed = sign_config(data, signer.key, signer.certificate, instance_names=[OVERLAY])
    after = parse_document(signed)
    assert signed.count(b"<p:signature>") == 1 and signed.count(b"<p:kind-signature>") == 1
    assert b"AAAA" not in signed
    assert b"<!-- the first overlay -->" in signed
    assert (
        after.entries[1].raw
        == before.entries[1].raw
        == b'<p:configuration instance-name="empty.example.org"/>'
    )
    assert (
        after.entries[0].configuration.required_kinds[0].raw_kind
        == before.entries[0].configuration.required_kinds[0].raw_kind
    )
    accepted = accept(signed)
    assert accepted.configuration.sequence == 9

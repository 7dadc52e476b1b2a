"""The RELAX NG grammar (RFC 6940 §11.1.1 + RFC 7904 §3.4) and parsing of the §11.1 example."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from reload_core.config import (
    AccessControl,
    BootstrapNode,
    ConfigError,
    ConfigErrorReason,
    SelfSignedPermitted,
    load_schema,
    parse_document,
)
from reload_core.config.xml import _schema_tree, validate_schema
from reload_core.wire.codes import DataModel

BASE = "urn:ietf:params:xml:ns:p2p:config-base"
CHORD = "urn:ietf:params:xml:ns:p2p:config-chord"
SIP = "urn:ietf:params:xml:ns:p2p:config-base:sip"
RNG = "http://relaxng.org/ns/structure/1.0"


def doc(configuration_body: str, attrs: str = 'instance-name="o.example"', extra_ns: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<overlay xmlns="{BASE}" xmlns:chord="{CHORD}" '
        f'xmlns:sip="{SIP}" {extra_ns}>\n<configuration {attrs}>\n{configuration_body}\n</configuration>\n'
        "</overlay>\n"
    ).encode()


KIND = """<required-kinds><kind-block><kind name="SIP-REGISTRATION">
  <data-model>DICTIONARY</data-model><access-control>USER-NODE-MATCH</access-control>
  <max-count>2</max-count><max-size>100</max-size>{}
</kind></kind-block></required-kinds>"""


def test_schema_is_a_package_resource() -> None:
    schema = load_schema()
    assert isinstance(schema, etree.RelaxNG)
    assert load_schema() is schema  # compiled once


def test_rfc_example_validates_and_parses(rfc_example: bytes) -> None:
    document = parse_document(rfc_example)
    assert [c.instance_name for c in document.overlays] == ["overlay.example.org", "other.example.net"]
    first, other = document.entries
    c = first.configuration
    assert c.sequence == 22
    assert c.expiration == datetime(2002, 10, 10, 7, 0, tzinfo=UTC)
    assert c.topology_plugin == "CHORD-RELOAD"
    assert c.node_id_length == 16
    assert len(c.root_certs) == 2 and c.root_certs[1] == b"bad cert\n"
    assert c.root_certs[0][:4] == bytes.fromhex("30820324")  # a DER SEQUENCE of 0x324 bytes
    assert c.enrollment_servers == ("https://example.org", "https://example.net")
    assert c.self_signed_permitted == SelfSignedPermitted(False, "sha1")
    assert c.bootstrap_nodes == (
        BootstrapNode("192.0.0.1", 6084),
        BootstrapNode("192.0.2.2", 6084),
        BootstrapNode("2001:DB8::1", 6084),
    )
    assert (c.turn_density, c.clients_permitted, c.no_ice) == (20, False, False)
    assert (c.chord_update_interval, c.chord_ping_interval, c.chord_reactive) == (400, 30, True)
    assert c.shared_secret == "password"
    assert (c.max_message_size, c.initial_ttl, c.overlay_reliability_timer) == (4000, 30, 3000)
    assert c.overlay_link_protocols == ("TLS",)
    assert c.configuration_signers == ("47112162e84c69ba",)
    assert c.kind_signers == ("47112162e84c69ba", "6eba45d31a900c06")
    assert c.bad_nodes == ("6ebc45d31a900c06", "6ebc45d31a900ca6")
    assert c.is_bad_node(bytes.fromhex("6ebc45d31a900ca6"))
    assert c.mandatory_extensions == ("urn:ietf:params:xml:ns:p2p:config-ext1",)
    assert c.extension_attributes == (("{urn:ietf:params:xml:ns:p2p:config-ext1}ext-example", "stuff"),)
    assert c.extensions == (
        '<ext:example-extension xmlns:ext="urn:ietf:params:xml:ns:p2p:config-ext1"> foo </ext:example-extension>',
    )
    sip, private = c.required_kinds
    assert sip.kind.name == "SIP-REGISTRATION" and sip.kind.kind_id == 1
    # As written in the example, but the registered Kind's model and policy win (§11.1).
    assert (sip.kind.data_model, sip.kind.access_control) == (DataModel.SINGLE, AccessControl.USER_MATCH)
    assert sip.kind.effective_data_model == DataModel.DICTIONARY
    assert sip.kind.effective_access_control == AccessControl.USER_NODE_MATCH
    assert (sip.kind.max_count, sip.kind.max_size) == (1, 100)
    assert sip.kind_signature == b"This is not right!\n"
    assert private.kind.id == 2000 and private.kind.name is None
    assert private.kind.access_control == AccessControl.NODE_MULTIPLE
    assert (private.kind.max_node_multiple, private.kind.max_count, private.kind.max_size) == (3, 22, 4)
    assert len(private.kind.extensions) == 1 and "example-kind-extension" in private.kind.extensions[0]
    assert c.data_models()[2000] == DataModel.ARRAY
    assert c.data_models()[1] == DataModel.DICTIONARY
    assert first.signatures[0].value == b"This is not right!\n"
    assert other.configuration.instance_name == "other.example.net"
    assert other.signatures[0].value == b"This is not right!\n"


def test_raw_bytes_are_the_exact_signed_spans(rfc_example: bytes) -> None:
    document = parse_document(rfc_example)
    first, other = document.entries
    assert first.raw.startswith(b'<configuration instance-name="overlay.example.org" sequence="22"')
    assert first.raw.endswith(b"</required-kinds>\n   </configuration>")
    assert rfc_example.count(first.raw) == 1
    assert other.raw == b'<configuration instance-name="other.example.net">\n   </configuration>'
    sip = first.configuration.required_kinds[0]
    assert sip.raw_kind.startswith(b'<kind name="SIP-REGISTRATION">') and sip.raw_kind.endswith(b"</kind>")
    assert sip.raw.startswith(b"<kind-block>") and sip.raw.endswith(b"</kind-block>")
    assert sip.raw_kind in sip.raw


def test_rfc_grammar_as_printed_refuses_its_own_example(rfc_example: bytes) -> None:
    """Why the schema adds overlay-reliability-timer: without it, §11.1's example fails."""
    tree = _schema_tree()
    for define in tree.getroot().findall(f"{{{RNG}}}define"):
        if define.find(f".//{{{RNG}}}element[@name='overlay-reliability-timer']") is not None:
            define.getparent().remove(define)
    printed = etree.RelaxNG(tree)
    example = etree.fromstring(rfc_example)
    assert not printed.validate(example)
    assert "overlay-reliability-timer" in str(printed.error_log.last_error)
    assert load_schema().validate(example)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (doc("", attrs='sequence="1"'), "configuration failed to validate attributes"),
        (doc("<foo>1</foo>"), "foo"),
        (doc("<node-id-length>sixteen</node-id-length>"), "node-id-length"),
        (doc("<turn-density>256</turn-density>"), "turn-density"),
        (doc("<no-ice>yes</no-ice>"), "no-ice"),
        (doc("<chord:chord-finger-count>3</chord:chord-finger-count>"), "chord-finger-count"),
        (doc("<self-signed-permitted>true</self-signed-permitted>"), "self-signed-permitted"),
        (doc('<bootstrap-node port="6084"/>'), "bootstrap-node"),
        (doc("<root-cert>not base64!</root-cert>"), "root-cert"),
        (doc("", attrs='instance-name="o" expiration="tomorrow"'), "configuration"),
        (doc(KIND.replace("<max-count>2</max-count>", "").format("")), "kind"),
        (
            doc(KIND.format("<sip:domain-restriction><sip:pattern>x</sip:pattern></sip:domain-restriction>")),
            "",
        ),
        (doc(KIND.format('<sip:domain-restriction enable="true"><sip:other/></sip:domain-restriction>')), ""),
        (f'<overlay xmlns="{BASE}"/>'.encode(), "overlay"),
        (f'<overlay xmlns="{BASE}"><signature>AAAA</signature></overlay>'.encode(), "overlay"),
        (b'<overlay><configuration instance-name="x"/></overlay>', "overlay"),
    ],
)
def test_grammar_refuses_with_line_and_message(data: bytes, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_document(data)
    assert info.value.reason == ConfigErrorReason.GRAMMAR
    assert "RELAX NG grammar of §11.1.1" in str(info.value)
    assert where in str(info.value)


def test_grammar_error_names_the_line() -> None:
    data = doc("<max-message-size>-1</max-message-size>")
    with pytest.raises(ConfigError, match=r"line 4: .*; Extra element max-message-size"):
        validate_schema(data)


def test_grammar_accepts_extensions_and_rfc7904_restriction() -> None:
    body = (
        '<ext:anything xmlns:ext="urn:example:ext" ext:a="1"><ext:nested>t</ext:nested></ext:anything>'
        + KIND.format(
            '<sip:domain-restriction enable="true"><sip:pattern>dht\\.example\\.com</sip:pattern>'
            "</sip:domain-restriction><x:k xmlns:x='urn:example:x'/>"
        )
    )
    document = parse_document(doc(body, attrs='instance-name="o.example" xmlns:e="urn:e" e:flag="1"'))
    c = document.overlays[0]
    assert c.extension_attributes == (("{urn:e}flag", "1"),)
    assert c.extensions == (
        '<ext:anything xmlns:ext="urn:example:ext" ext:a="1"><ext:nested>t</ext:nested></ext:anything>',
    )
    kind = c.required_kinds[0].kind
    assert kind.domain_restriction is not None and kind.domain_restriction.patterns == (
        "dht\\.example\\.com",
    )
    assert kind.extensions == ('<x:k xmlns:x="urn:example:x"></x:k>',)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<overlay", "not well-formed"),
        (
            b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<overlay xmlns="' + BASE.encode() + b'"/>',
            "requires UTF-8",
        ),
        (
            b'<!DOCTYPE overlay [<!ENTITY a "aaaa">]>\n<overlay xmlns="' + BASE.encode() + b'"/>',
            "DTD",
        ),
    ],
)
def test_xml_level_refusals(data: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_document(data)
    assert info.value.reason == ConfigErrorReason.XML


@pytest.mark.parametrize(
    ("body", "attrs", "message"),
    [
        ("<node-id-length>21</node-id-length>", "", "node-id-length 21 is not 16..20"),
        ("", 'sequence="65535"', "sequence 65535"),
        ("<overlay-reliability-timer>100</overlay-reliability-timer>", "", "below 200 ms"),
        ("<enrollment-server>http://example.org</enrollment-server>", "", "not an https: URL"),
        ('<bootstrap-node address="boot.example.org"/>', "", "not an IP address"),
        ("<initial-ttl>300</initial-ttl>", "", "initial-ttl 300"),
        ("<kind-signer>xyz</kind-signer>", "", "kind-signer 'xyz'"),
        (KIND.format("").replace("USER-NODE-MATCH", "NODE-MULTIPLE"), "", "needs max-node-multiple"),
    ],
)
def test_rules_of_the_text_are_checked(body: str, attrs: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_document(doc(body, attrs=f'instance-name="o.example" {attrs}'))
    assert info.value.reason == ConfigErrorReason.VALUE
    assert "configuration 'o.example'" in str(info.value)

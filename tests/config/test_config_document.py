"""The configuration model: generate → parse round trips, defaults, several overlays,
registered Kinds, RFC 7904 domain restrictions, ConfigUpdate kind-blocks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from reload_core.config import (
    AccessControl,
    BootstrapNode,
    ConfigError,
    ConfigErrorReason,
    ConfigSignature,
    ConfigurationDocument,
    DomainRestriction,
    KindBlock,
    KindDescription,
    OverlayConfiguration,
    SelfSignedPermitted,
    SignedConfiguration,
    default_kinds,
    generate_document,
    load_schema,
    parse_document,
    parse_kind_blocks,
)
from reload_core.config.xml import element_spans
from reload_core.wire.codes import DataModel, KindId
from reload_core.wire.context import WireContext

BASE = "urn:ietf:params:xml:ns:p2p:config-base"


def full_configuration() -> OverlayConfiguration:
    """Every element and attribute of §11.1 (and RFC 7904 §3.4), none at its default."""
    kinds = (
        *default_kinds(
            domain_restriction=DomainRestriction(True, (r"dht\.example\.com", r".*\.my\.example"))
        ),
        KindBlock(
            KindDescription(
                id=0xF0000010,
                data_model="QUEUE",
                access_control="OWNER-ONLY",
                max_count=7,
                max_size=512,
                extensions=('<x:limit xmlns:x="urn:example:kinds" x:unit="s">30</x:limit>',),
            ),
            kind_signature=b"\x00\x01kind-signature",
            kind_signature_algorithm="rsa-sha1",
        ),
    )
    return OverlayConfiguration(
        instance_name="overlay.example.org",
        expiration=datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC),
        sequence=65534,
        topology_plugin="CHORD-RELOAD",
        node_id_length=20,
        root_certs=(b"\x30\x82root-one", b"\x30\x82root-two"),
        enrollment_servers=("https://enroll.example.org/", "https://enroll.example.net:8443/reload"),
        self_signed_permitted=SelfSignedPermitted(True, "sha1"),
        bootstrap_nodes=(BootstrapNode("192.0.2.1", 6084), BootstrapNode("2001:db8::7", 7000)),
        turn_density=0,
        clients_permitted=False,
        no_ice=True,
        chord_update_interval=120,
        chord_ping_interval=60,
        chord_reactive=False,
        shared_secret="s3cret & <more>",
        max_message_size=65000,
        initial_ttl=30,
        overlay_reliability_timer=1500,
        overlay_link_protocols=("TLS", "DTLS"),
        configuration_signers=("00112233445566778899aabbccddeeff00112233",),
        kind_signers=("00112233445566778899aabbccddeeff00112233", "ffeeddccbbaa99887766554433221100ffeeddcc"),
        bad_nodes=("0123456789abcdef0123456789abcdef01234567",),
        mandatory_extensions=("urn:example:ext",),
        required_kinds=kinds,
        domain_restriction=DomainRestriction(False),
        extensions=(
            '<e:flags xmlns:e="urn:example:ext" e:on="yes"><e:flag>a</e:flag><e:flag>b</e:flag></e:flags>',
            '<f:note xmlns:f="urn:example:other">  spaced text  </f:note>',
        ),
        extension_attributes=(("{urn:example:ext}tag", "v1"), ("{urn:example:attr}x", "2")),
    )


def test_full_document_round_trips_and_validates() -> None:
    full = full_configuration()
    document = ConfigurationDocument(
        (
            SignedConfiguration(full, (ConfigSignature(b"sig-1", "rsa-sha1"), ConfigSignature(b"sig-2"))),
            SignedConfiguration(OverlayConfiguration("second.example.net", sequence=3)),
        )
    )
    xml = generate_document(document)
    parsed = parse_document(xml)  # validates against the grammar on the way
    assert parsed == document
    assert generate_document(parsed) == xml  # deterministic
    assert parse_document(generate_document(parsed)) == document
    assert b"<chord:chord-reactive>false</chord:chord-reactive>" in xml
    assert b'<sip:domain-restriction enable="true">' in xml


def test_rfc_example_round_trips(rfc_example: bytes) -> None:
    document = parse_document(rfc_example)
    again = parse_document(generate_document(document))
    assert again == document


def test_defaults_when_elements_are_absent() -> None:
    data = f'<overlay xmlns="{BASE}"><configuration instance-name="o.example"/></overlay>'.encode()
    c = parse_document(data).overlays[0]
    assert c == OverlayConfiguration("o.example")
    assert (c.sequence, c.expiration, c.topology_plugin, c.node_id_length) == (0, None, "CHORD-RELOAD", 16)
    assert (c.max_message_size, c.initial_ttl, c.overlay_reliability_timer) == (5000, 100, 3000)
    assert (c.chord_update_interval, c.chord_ping_interval, c.chord_reactive) == (600, 3600, True)
    assert (c.turn_density, c.clients_permitted, c.no_ice) == (1, True, False)
    assert c.overlay_link_protocols == ("TLS",)
    assert c.self_signed_permitted is None and not c.self_signed_allowed
    assert c.aor_permitted("sip:anyone@anywhere.example")  # no restriction: any AOR (RFC 7904 §3.4)
    # An empty list of link protocols means the default (§11.1).
    assert OverlayConfiguration("o.example", overlay_link_protocols=()).overlay_link_protocols == ("TLS",)


def test_bootstrap_port_defaults_to_6084() -> None:
    data = (
        f'<overlay xmlns="{BASE}"><configuration instance-name="o.example">'
        '<bootstrap-node address="192.0.2.9"/></configuration></overlay>'
    ).encode()
    assert parse_document(data).overlays[0].bootstrap_nodes == (BootstrapNode("192.0.2.9", 6084),)


def test_several_overlays_in_one_document() -> None:
    a = OverlayConfiguration("a.example", sequence=1, max_message_size=4000)
    b = OverlayConfiguration("b.example", sequence=9, node_id_length=20)
    document = parse_document(generate_document([a, b]))
    assert document.overlays == (a, b)
    assert document.entry("b.example").configuration.node_id_length == 20
    with pytest.raises(ConfigError, match=r"no configuration for overlay 'c\.example'") as info:
        document.entry("c.example")
    assert info.value.reason == ConfigErrorReason.OVERLAY
    assert [e.raw.split(b'"')[1] for e in document.entries] == [b"a.example", b"b.example"]


def test_one_overlay_twice_is_refused() -> None:
    data = generate_document([OverlayConfiguration("a.example"), OverlayConfiguration("a.example")])
    with pytest.raises(ConfigError, match="configured twice") as info:
        parse_document(data)
    assert info.value.reason == ConfigErrorReason.VALUE


def test_default_kinds_and_data_models() -> None:
    kinds = {b.kind.kind_id: b.kind for b in default_kinds()}
    assert set(kinds) == {1, 2, 3, 16}
    sip = kinds[KindId.SIP_REGISTRATION]
    assert (sip.name, sip.data_model, sip.access_control) == (
        "SIP-REGISTRATION",
        DataModel.DICTIONARY,
        AccessControl.USER_NODE_MATCH,
    )
    turn = kinds[KindId.TURN_SERVICE]
    assert (turn.data_model, turn.access_control, turn.max_node_multiple) == (
        DataModel.SINGLE,
        AccessControl.NODE_MULTIPLE,
        20,
    )
    assert kinds[KindId.CERTIFICATE_BY_NODE].access_control == AccessControl.NODE_MATCH
    assert kinds[KindId.CERTIFICATE_BY_USER].access_control == AccessControl.USER_MATCH
    assert {kinds[3].data_model, kinds[16].data_model} == {DataModel.ARRAY}

    private = KindBlock(
        KindDescription(
            id=0xF0000001, data_model=DataModel.ARRAY, access_control="X", max_count=1, max_size=1
        )
    )
    odd = KindBlock(
        KindDescription(id=0xF0000002, data_model="QUEUE", access_control="X", max_count=1, max_size=1)
    )
    config = OverlayConfiguration(
        "o.example", node_id_length=20, required_kinds=(*default_kinds(), private, odd)
    )
    assert config.data_models() == {
        1: DataModel.DICTIONARY,
        2: DataModel.SINGLE,
        3: DataModel.ARRAY,
        16: DataModel.ARRAY,
        0xF0000001: DataModel.ARRAY,
    }
    assert config.wire_context() == WireContext(node_id_length=20, data_models=config.data_models())


def test_unknown_kind_names_are_reported() -> None:
    kind = KindDescription(
        name="PRESENCE", data_model=DataModel.DICTIONARY, access_control="USER-MATCH", max_count=1, max_size=1
    )
    config = OverlayConfiguration("o.example", required_kinds=(KindBlock(kind),))
    assert kind.kind_id is None
    assert config.unknown_kind_names() == ("PRESENCE",)
    assert config.kinds() == {}


def test_a_kind_has_a_name_or_an_id() -> None:
    with pytest.raises(ConfigError, match="either a name or an id"):
        KindDescription(data_model=DataModel.SINGLE, access_control="USER-MATCH", max_count=1, max_size=1)
    with pytest.raises(ConfigError, match="described twice"):
        OverlayConfiguration("o.example", required_kinds=(*default_kinds(), default_kinds()[0]))


def test_domain_restriction_rfc7904() -> None:
    patterns = DomainRestriction(True, (r"dht\.example\.com", r".*\.my\.example"))
    sip = KindDescription(
        name="SIP-REGISTRATION",
        data_model=DataModel.DICTIONARY,
        access_control=AccessControl.USER_NODE_MATCH,
        max_count=1,
        max_size=100,
        domain_restriction=patterns,
    )
    config = OverlayConfiguration("overlay.example.org", required_kinds=(KindBlock(sip),))
    assert config.effective_domain_restriction() == patterns
    # RFC 7904 §3.4's example: <user>@dht.example.com, or any domain ending in my.example.
    assert config.aor_permitted("sip:alice@dht.example.com")
    assert config.aor_permitted("bob@DHT.Example.COM")
    assert config.aor_permitted("sips:carol@office.my.example")
    assert not config.aor_permitted("sip:eve@dhtXexample.com")
    assert not config.aor_permitted("sip:eve@my.example.evil.org")
    # enable="false": only the overlay's own domain.
    own = OverlayConfiguration("overlay.example.org", domain_restriction=DomainRestriction(False))
    assert own.aor_permitted("sip:alice@overlay.example.org")
    assert not own.aor_permitted("sip:alice@dht.example.com")
    # POSIX bracket classes are understood.
    assert DomainRestriction(True, (r"[[:alpha:]]+\.example",)).permits("abc.example", "x")
    with pytest.raises(ConfigError, match="not a regular expression"):
        DomainRestriction(True, ("(unclosed",))


def test_kind_blocks_as_config_update_carries_them() -> None:
    block = (
        b'<kind-block><kind id="4026531841"><data-model>ARRAY</data-model>'
        b"<access-control>NODE-MULTIPLE</access-control><max-node-multiple>4</max-node-multiple>"
        b"<max-count>10</max-count><max-size>200</max-size></kind>"
        b"<kind-signature>AAEC</kind-signature></kind-block>"
    )
    (parsed,) = parse_kind_blocks(block)
    assert parsed.kind.id == 0xF0000001 and parsed.kind.max_node_multiple == 4
    assert parsed.kind_signature == b"\x00\x01\x02"
    assert parsed.raw == block
    assert parsed.raw_kind == block[len(b"<kind-block>") : block.index(b"</kind>") + len(b"</kind>")]
    with pytest.raises(ConfigError) as info:
        parse_kind_blocks(b"<kind-block><kind id='1'><max-size>1</max-size></kind></kind-block>")
    assert info.value.reason == ConfigErrorReason.GRAMMAR


def test_schema_compiles_from_the_package() -> None:
    assert load_schema().validate(etree.fromstring(generate_document(OverlayConfiguration("o.example"))))


@pytest.mark.parametrize(
    ("snippet", "start", "end"),
    [
        (b'<a><configuration x="1>"/></a>', 3, 26),
        (b"<a><b><b/></b></a>", 3, 14),
        (b"<a><!-- c --><b></b ></a>", 13, 21),
    ],
)
def test_element_spans_are_exact(snippet: bytes, start: int, end: int) -> None:
    spans = element_spans(snippet)
    assert spans[0] == (0, len(snippet))
    assert spans[1] == (start, end)

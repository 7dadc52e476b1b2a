"""RELOAD GRUUs (RFC 7904 §6): the gr parameter is base64 (RFC 4648 Table 1) of a
Destination List (RFC 6940 §14.15: Destinations concatenated, no overall length), with
'~' in place of '='.

The expected base64 strings were computed independently with coreutils, e.g.
``echo -n 01100123456789abcdef0123456789abcdef | xxd -r -p | base64``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reload_core.usages.sip.gruu import (
    Gruu,
    GruuError,
    decode_gr,
    decode_gr_bytes,
    encode_gr,
    gr_parameter,
    is_gruu,
    make_gruu,
    parse_gruu,
)
from reload_core.wire.context import WireContext
from reload_core.wire.message import (
    CompressedDestination,
    NodeDestination,
    OpaqueDestination,
    ResourceDestination,
)

NODE = bytes.fromhex("0123456789abcdef0123456789abcdef")

# 01 10 <16-byte Node-ID>: one node Destination, 18 bytes, no padding
NODE_GR = "ARABI0VniavN7wEjRWeJq83v"
# 02 05 04 0a0b0c0d: a resource Destination of 7 bytes, two pad characters
RESOURCE_GR = "AgUECgsMDQ~~"
# 01 10 ff*16 81 23: a node then a compressed Destination, 20 bytes, one pad, '/' in it
ROUTE_GR = "ARD/////////////////////gSM~"


def test_gr_vectors() -> None:
    assert encode_gr([NodeDestination(NODE)]) == NODE_GR
    assert decode_gr(NODE_GR) == (NodeDestination(NODE),)
    res = ResourceDestination(bytes.fromhex("0a0b0c0d"))
    assert encode_gr([res]) == RESOURCE_GR
    assert decode_gr(RESOURCE_GR) == (res,)
    route = (NodeDestination(b"\xff" * 16), CompressedDestination(0x8123))
    assert encode_gr(route) == ROUTE_GR
    assert decode_gr(ROUTE_GR) == route


def test_rfc_example_value_is_base64_of_a_placeholder() -> None:
    """RFC 7904 §6's example decodes to ASCII digits, not to a Destination List."""
    value = gr_parameter("alice@example.com;gr=MDEyMzQ1Njc4OTAxMjM0NTY3ODk~")
    assert value == "MDEyMzQ1Njc4OTAxMjM0NTY3ODk~"
    assert decode_gr_bytes(value) == b"01234567890123456789"
    assert is_gruu("alice@example.com;gr=MDEyMzQ1Njc4OTAxMjM0NTY3ODk~")
    with pytest.raises(GruuError, match="not a Destination List"):
        parse_gruu("alice@example.com;gr=MDEyMzQ1Njc4OTAxMjM0NTY3ODk~")


def test_make_and_parse_in_the_rfc_form() -> None:
    """An AOR has no scheme (RFC 7904 §2), as in §6's example; a sip: URI works too."""
    gruu = make_gruu("alice@example.com", [NodeDestination(NODE)])
    assert gruu == "alice@example.com;gr=" + NODE_GR
    assert parse_gruu(gruu) == Gruu("alice@example.com", (NodeDestination(NODE),))
    sip = make_gruu("sip:alice@example.com", [NodeDestination(NODE)])
    assert sip == "sip:alice@example.com;gr=" + NODE_GR
    assert parse_gruu(sip).aor == "sip:alice@example.com"
    assert str(parse_gruu(sip)) == sip


def test_other_parameters_and_odd_user_parts() -> None:
    uri = f"sips:alice;x=1@example.com;transport=tls;GR={RESOURCE_GR};lr"
    g = parse_gruu(uri)
    assert g.aor == "sips:alice;x=1@example.com;transport=tls;lr"
    assert g.destination_list == (ResourceDestination(bytes.fromhex("0a0b0c0d")),)
    assert is_gruu(uri)
    assert not is_gruu("sip:alice;gr=x@example.com")  # ';gr=' in the user part is not a parameter
    assert gr_parameter("sip:alice@example.com") is None


def test_percent_escapes_are_equivalent() -> None:
    escaped = "sip:alice@example.com;gr=" + ROUTE_GR.replace("/", "%2F").replace("~", "%7E")
    assert parse_gruu(escaped).destination_list == decode_gr(ROUTE_GR)


@pytest.mark.parametrize(
    "uri",
    [
        "sip:alice@example.com",  # no gr at all
        "sip:alice@example.com;gr",  # gr without a value (RFC 5627's flag form)
        "sip:alice@example.com;gr=",  # empty value
        f"sip:alice@example.com;gr={NODE_GR};gr={NODE_GR}",  # twice
        "sip:alice@example.com;gr=AgUECgsMDQ==",  # '=' instead of '~'
        "sip:alice@example.com;gr=AgUECgsMDQ~",  # bad padding
        "sip:alice@example.com;gr=AgUECgsMDR~~",  # non-canonical: stray low bits
        "sip:alice@example.com;gr=AgUE-gsMDQ~~",  # not in the base64 alphabet
        "sip:alice@example.com;gr=%zz",  # bad escape
        "sip:alice@example.com;gr=AAAA",  # 00 00 00: DestinationType 0 is invalid
        "sip:alice@example.com;gr=ARA~",  # a node Destination cut short
        f"sip:alice@example.com;gr={NODE_GR}?subject=hi",  # URI headers
        f"sip:@example.com;gr={NODE_GR}",  # empty user
        f"sip:alice@example.com;;gr={NODE_GR}",  # empty parameter
        f"sip:alice@example.com;gr={NODE_GR} ",  # whitespace
        "",
    ],
)
def test_invalid_gruus_raise_gruu_error(uri: str) -> None:
    with pytest.raises(GruuError):
        parse_gruu(uri)
    assert issubclass(GruuError, ValueError)


def test_node_id_length_comes_from_the_overlay() -> None:
    node20 = bytes(range(20))
    gruu = make_gruu("alice@example.com", [NodeDestination(node20)])
    assert parse_gruu(gruu, WireContext(node_id_length=20)).destination_list == (NodeDestination(node20),)
    with pytest.raises(GruuError):
        parse_gruu(gruu)


def test_cannot_build_bad_gruus() -> None:
    with pytest.raises(GruuError):
        make_gruu("alice@example.com", [])
    with pytest.raises(GruuError):
        make_gruu(f"alice@example.com;gr={NODE_GR}", [NodeDestination(NODE)])
    with pytest.raises(GruuError):
        make_gruu("alice@example.com", [CompressedDestination(0x1234)])  # top bit must be set
    with pytest.raises(GruuError):
        encode_gr([])


destinations = st.one_of(
    st.binary(min_size=16, max_size=16).map(NodeDestination),
    st.binary(max_size=30).map(ResourceDestination),
    st.binary(max_size=30).map(OpaqueDestination),
    st.integers(0x8000, 0xFFFF).map(CompressedDestination),
)
users = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_+", min_size=1, max_size=12)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){1,2}", fullmatch=True)


@settings(max_examples=200)
@given(
    dests=st.lists(destinations, min_size=1, max_size=4).map(tuple),
    user=users,
    host=hosts,
    scheme=st.sampled_from(["", "sip:", "sips:"]),
)
def test_round_trip(dests: tuple[NodeDestination, ...], user: str, host: str, scheme: str) -> None:
    aor = f"{scheme}{user}@{host}"
    gruu = make_gruu(aor, dests)
    value = gr_parameter(gruu)
    assert value is not None and "=" not in value and ";" not in value
    assert parse_gruu(gruu) == Gruu(aor, dests)
    assert decode_gr(encode_gr(dests)) == dests


@settings(max_examples=300)
@given(value=st.text(max_size=40))
def test_arbitrary_gr_values_raise_gruu_error_only(value: str) -> None:
    try:
        dests = decode_gr(value)
    except GruuError:
        return
    if "%" not in value:
        assert encode_gr(dests) == value  # canonical: one spelling per Destination List

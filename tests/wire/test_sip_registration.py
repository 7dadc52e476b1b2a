"""SipRegistration (RFC 7904 §3.2), stored in SIP-REGISTRATION dictionary entries (§7).

Vectors are written field by field: ``SipRegistrationType`` is one byte (max 255),
``length`` a uint16, ``opaque uri<0..2^16-1>`` and ``contact_prefs`` carry 2-byte lengths,
``Destination destination_list<3..2^16-1>`` a 2-byte length; a node Destination is
type 1, length 16 and the Node-ID (RFC 6940 §6.3.2.2).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reload_core.wire.buffer import DecodeError, EncodeError
from reload_core.wire.codes import KindId, MessageCode
from reload_core.wire.context import WireContext
from reload_core.wire.jsonmap import from_json, to_json
from reload_core.wire.message import (
    CompressedDestination,
    NodeDestination,
    OpaqueDestination,
    ResourceDestination,
    UnknownDestination,
)
from reload_core.wire.registry import decode_body, encode_struct
from reload_core.wire.sip_registration import (
    SipRegistration,
    SipRegistrationRoute,
    SipRegistrationType,
    SipRegistrationUri,
    UnknownSipRegistrationData,
)
from reload_core.wire.storage import DataValue, DictionaryEntry, StoreReq
from tests.wire.examples.storage import EXAMPLES, NODE_ALICE


def h(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts))


NODE = h("0123456789abcdef0123456789abcdef")

URI_REG = SipRegistration.for_uri("sam@dht.example.org")
URI_REG_BYTES = h(
    "01",  # type = sip_registration_uri
    "0015",  # length = 21: the rest of the PDU
    "0013",  # uri<0..2^16-1>: 19 bytes
    "73616d40646874",  # "sam@dht"
    "2e6578616d706c652e6f7267",  # ".example.org"
)

ROUTE_REG = SipRegistration.for_route([NodeDestination(NODE)], "(sip.schemes=SIPS)")
ROUTE_REG_BYTES = h(
    "02",  # type = sip_registration_route
    "0028",  # length = 40: 2 + 18 + 2 + 18
    "0012",  # contact_prefs<0..2^16-1>: 18 bytes
    "287369702e736368656d65733d5349505329",  # "(sip.schemes=SIPS)"
    "0012",  # destination_list<3..2^16-1>: 18 bytes
    "01",  # Destination.type = node
    "10",  # Destination.length = 16
    "0123456789abcdef0123456789abcdef",  # node_id
)

# Alice's desk phone forwarding through a peer that compressed the rest of the route
# (RFC 7904 §6 anonymous GRUUs), and an opaque destination.
MULTI_REG = SipRegistration.for_route([NodeDestination(NODE), CompressedDestination(0x8123)])
MULTI_REG_BYTES = h(
    "02",  # type = sip_registration_route
    "0018",  # length = 24
    "0000",  # contact_prefs: empty
    "0014",  # destination_list: 20 bytes
    "01",
    "10",
    "0123456789abcdef0123456789abcdef",  # node Destination (18 bytes)
    "8123",  # compressed Destination (2 bytes, top bit set)
)

UNKNOWN_REG = SipRegistration(7, UnknownSipRegistrationData(h("c0ffee")))
UNKNOWN_REG_BYTES = h(
    "07",  # type 7: an extension this node does not know
    "0003",  # length
    "c0ffee",  # kept as is
)

VECTORS = [
    (URI_REG, URI_REG_BYTES),
    (ROUTE_REG, ROUTE_REG_BYTES),
    (MULTI_REG, MULTI_REG_BYTES),
    (UNKNOWN_REG, UNKNOWN_REG_BYTES),
]
IDS = ["uri", "route", "multi", "unknown"]


@pytest.mark.parametrize(("reg", "wire"), VECTORS, ids=IDS)
def test_vectors(reg: SipRegistration, wire: bytes) -> None:
    assert reg.to_bytes() == wire
    assert SipRegistration.from_bytes(wire) == reg


def test_fields() -> None:
    assert URI_REG.type is SipRegistrationType.sip_registration_uri
    assert URI_REG.data == SipRegistrationUri(b"sam@dht.example.org")
    assert ROUTE_REG.type is SipRegistrationType.sip_registration_route
    assert ROUTE_REG.data == SipRegistrationRoute(b"(sip.schemes=SIPS)", (NodeDestination(NODE),))
    assert SipRegistration.from_bytes(UNKNOWN_REG_BYTES).type == 7


def test_route_with_every_destination_variant() -> None:
    dests = (
        NodeDestination(NODE),
        ResourceDestination(h("aabb")),
        OpaqueDestination(h("0102")),
        CompressedDestination(0xFFFF),
        UnknownDestination(9, h("beef")),
    )
    reg = SipRegistration.for_route(dests)
    assert SipRegistration.from_bytes(reg.to_bytes()) == reg


def test_node_destination_length_follows_the_overlay() -> None:
    node20 = bytes(range(20))
    reg = SipRegistration.for_route([NodeDestination(node20)])
    ctx20 = WireContext(node_id_length=20)
    assert SipRegistration.from_bytes(reg.to_bytes(), ctx20) == reg
    with pytest.raises(DecodeError):
        SipRegistration.from_bytes(reg.to_bytes())  # NodeIdLength 16


@pytest.mark.parametrize(("reg", "wire"), VECTORS, ids=IDS)
def test_truncation_at_every_offset(reg: SipRegistration, wire: bytes) -> None:
    for cut in range(len(wire)):
        with pytest.raises(DecodeError):
            SipRegistration.from_bytes(wire[:cut])


@pytest.mark.parametrize(("reg", "wire"), VECTORS, ids=IDS)
def test_trailing_bytes(reg: SipRegistration, wire: bytes) -> None:
    with pytest.raises(DecodeError) as exc:
        SipRegistration.from_bytes(wire + b"\x00")
    assert exc.value.offset == len(wire)


def test_wrong_lengths() -> None:
    # length one more than the data: the data ends inside it
    longer = ROUTE_REG_BYTES[:1] + h("0029") + ROUTE_REG_BYTES[3:] + h("00")
    with pytest.raises(DecodeError) as exc:
        SipRegistration.from_bytes(longer)
    assert exc.value.field == "SipRegistration.data"
    # uri length running past the PDU's length
    with pytest.raises(DecodeError):
        SipRegistration.from_bytes(h("01", "0003", "0005", "61"))
    # destination_list<3..2^16-1>: a lone compressed Destination is 2 bytes, below the minimum
    short = h("02", "0006", "0000", "0002", "8123")
    with pytest.raises(DecodeError) as exc:
        SipRegistration.from_bytes(short)
    assert exc.value.field == "SipRegistration.destination_list.length"
    with pytest.raises(EncodeError):
        SipRegistration.for_route([CompressedDestination(0x8123)]).to_bytes()
    with pytest.raises(EncodeError):
        SipRegistration.for_route([]).to_bytes()
    # a Destination that overruns the destination list
    with pytest.raises(DecodeError):
        SipRegistration.from_bytes(h("02", "0009", "0000", "0005", "01", "10", "000000"))
    # DestinationType 0 is invalid
    with pytest.raises(DecodeError):
        SipRegistration.from_bytes(h("02", "0007", "0000", "0003", "00", "01", "00"))


def test_type_must_match_data() -> None:
    with pytest.raises(EncodeError):
        SipRegistration(SipRegistrationType.sip_registration_uri, SipRegistrationRoute(b"", ()))
    with pytest.raises(EncodeError):
        SipRegistration(SipRegistrationType.sip_registration_route, SipRegistrationUri(b"x"))
    with pytest.raises(EncodeError):
        SipRegistration(9, SipRegistrationUri(b"x"))
    with pytest.raises(EncodeError):
        SipRegistration(SipRegistrationType.sip_registration_uri, UnknownSipRegistrationData(b""))


def test_stored_as_a_dictionary_entry_keyed_by_node_id() -> None:
    """RFC 7904 §7: the value of a SIP-REGISTRATION dictionary entry whose key is the
    storing peer's Node-ID."""
    code, req = EXAMPLES[0]
    assert code == MessageCode.store_req
    assert isinstance(req, StoreReq)
    wire = encode_struct(req)
    decoded = decode_body(MessageCode.store_req, wire)
    assert isinstance(decoded, StoreReq)
    kind_data = decoded.kind_data[0]
    assert kind_data.kind is KindId.SIP_REGISTRATION
    entry = kind_data.values[0].value
    assert isinstance(entry, DictionaryEntry)
    assert entry.key == NODE_ALICE
    reg = SipRegistration.from_bytes(entry.value.value)
    assert reg == SipRegistration.for_route([NodeDestination(NODE_ALICE)], "(sip.schemes=SIP)")
    # The registration's bytes sit inside the DataValue's opaque value, in the message.
    assert DataValue(True, reg.to_bytes()) == entry.value
    assert reg.to_bytes() in wire


def test_json_names() -> None:
    assert to_json(ROUTE_REG) == {
        "type": "sip_registration_route",
        "data": {
            "contact_prefs": b"(sip.schemes=SIPS)".hex(),
            "destination_list": [{"node_id": NODE.hex()}],
        },
    }
    for reg, _ in VECTORS:
        assert from_json(SipRegistration, to_json(reg)) == reg


# ---------------------------------------------------------------- hypothesis

destinations = st.one_of(
    st.binary(min_size=16, max_size=16).map(NodeDestination),
    st.binary(max_size=20).map(ResourceDestination),
    st.binary(max_size=20).map(OpaqueDestination),
    st.integers(0x8000, 0xFFFF).map(CompressedDestination),
)
registrations = st.one_of(
    st.binary(max_size=80).map(SipRegistration.for_uri),
    st.builds(
        SipRegistration.for_route,
        st.lists(destinations, min_size=1, max_size=4).filter(
            lambda ds: not (len(ds) == 1 and isinstance(ds[0], CompressedDestination))
        ),
        st.binary(max_size=40),
    ),
    st.builds(SipRegistration, st.integers(3, 255), st.binary(max_size=40).map(UnknownSipRegistrationData)),
)


@settings(max_examples=300)
@given(reg=registrations)
def test_round_trip(reg: SipRegistration) -> None:
    wire = reg.to_bytes()
    back = SipRegistration.from_bytes(wire)
    assert back == reg
    assert back.to_bytes() == wire
    assert from_json(SipRegistration, to_json(reg)) == reg


@settings(max_examples=400)
@given(data=st.binary(max_size=80))
def test_arbitrary_bytes(data: bytes) -> None:
    try:
        reg: Any = SipRegistration.from_bytes(data)
    except DecodeError:
        return
    assert reg.to_bytes() == data

"""Topology-plugin bodies (RFC 6940 §6.4.2) and CHORD-RELOAD's structures (§10.7-§10.9),
plus the shared example bodies of tests/wire/examples/topology_link.py.

Byte vectors are written field by field from the RFC's presentation language. NodeId is
``opaque NodeId[NodeIdLength]`` (no length prefix, 16 bytes in CHORD-RELOAD); a
``NodeId list<0..2^16-1>`` has a 2-byte length counting bytes, not Node-IDs.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reload_core.wire
from reload_core.wire.buffer import DecodeError, EncodeError, Reader
from reload_core.wire.chord import (
    ChordLeaveData,
    ChordLeaveType,
    ChordRouteQueryAns,
    ChordUpdate,
    ChordUpdateType,
)
from reload_core.wire.codes import MessageCode, ProbeInformationType
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.jsonmap import from_json, to_json
from reload_core.wire.message import (
    CompressedDestination,
    NodeDestination,
    OpaqueDestination,
    ResourceDestination,
    UnknownDestination,
)
from reload_core.wire.registry import BODY_TYPES, decode_body, decode_struct, encode_struct
from reload_core.wire.topology import (
    JoinAns,
    JoinReq,
    LeaveAns,
    LeaveReq,
    NumResourcesInformation,
    ProbeAns,
    ProbeReq,
    ResponsibleSetInformation,
    RouteQueryAns,
    RouteQueryReq,
    UnknownProbeInformation,
    UpdateAns,
    UpdateReq,
    UptimeInformation,
)
from tests.wire.examples.topology_link import EXAMPLES


def h(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts))


A = h("0123456789abcdef0123456789abcdef")
B = h("1111111111111111aaaaaaaaaaaaaaaa")
C = h("2222222222222222bbbbbbbbbbbbbbbb")
D = h("fedcba9876543210fedcba9876543210")

# ---------------------------------------------------------------- §6.4.2.1 Join

JOIN_REQ_BYTES = h(
    "0123456789abcdef0123456789abcdef",  # joining_peer_id (NodeId[16])
    "0000",  # overlay_specific_data<0..2^16-1>: empty in CHORD-RELOAD
)


def test_join_vectors() -> None:
    assert encode_struct(JoinReq(A)) == JOIN_REQ_BYTES
    assert decode_body(MessageCode.join_req, JOIN_REQ_BYTES) == JoinReq(A)
    assert encode_struct(JoinAns()) == h("0000")  # overlay_specific_data: empty
    wire = h("0003", "c0ffee")  # another overlay's data is carried as opaque bytes
    assert decode_body(MessageCode.join_ans, wire) == JoinAns(h("c0ffee"))
    assert encode_struct(JoinAns(h("c0ffee"))) == wire


def test_join_req_node_id_length_comes_from_the_overlay() -> None:
    ctx20 = WireContext(node_id_length=20)
    node20 = bytes(range(20))
    wire = node20 + h("0000")
    assert decode_struct(JoinReq, wire, ctx20) == JoinReq(node20)
    assert encode_struct(JoinReq(node20)) == wire
    with pytest.raises(DecodeError):
        decode_struct(JoinReq, wire)  # 16-byte overlay: 4 bytes too many
    with pytest.raises(EncodeError):
        encode_struct(JoinReq(bytes(15)))  # NodeIdLength is 16..20 (§6.3.1.1)


# ---------------------------------------------------------------- §6.4.2.2 / §10.9 Leave

CHORD_LEAVE_SUCC_BYTES = h(
    "01",  # ChordLeaveType = from_succ
    "0020",  # successors<0..2^16-1>: 32 bytes = two Node-IDs
    "1111111111111111aaaaaaaaaaaaaaaa",
    "2222222222222222bbbbbbbbbbbbbbbb",
)
CHORD_LEAVE_PRED_BYTES = h(
    "02",  # ChordLeaveType = from_pred
    "0010",  # predecessors: one Node-ID
    "fedcba9876543210fedcba9876543210",
)
LEAVE_REQ_BYTES = (
    h(
        "0123456789abcdef0123456789abcdef",  # leaving_peer_id
        "0023",  # overlay_specific_data<0..2^16-1>: 35 bytes, a ChordLeaveData
    )
    + CHORD_LEAVE_SUCC_BYTES
)


def test_chord_leave_data_vectors() -> None:
    succ = ChordLeaveData(ChordLeaveType.from_succ, successors=(B, C))
    pred = ChordLeaveData(ChordLeaveType.from_pred, predecessors=(D,))
    assert encode_struct(succ) == CHORD_LEAVE_SUCC_BYTES
    assert decode_struct(ChordLeaveData, CHORD_LEAVE_SUCC_BYTES) == succ
    assert encode_struct(pred) == CHORD_LEAVE_PRED_BYTES
    assert decode_struct(ChordLeaveData, CHORD_LEAVE_PRED_BYTES) == pred


def test_leave_vectors() -> None:
    req = LeaveReq.chord(A, ChordLeaveData(ChordLeaveType.from_succ, successors=(B, C)))
    assert req == LeaveReq(A, CHORD_LEAVE_SUCC_BYTES)
    assert encode_struct(req) == LEAVE_REQ_BYTES
    decoded = decode_body(MessageCode.leave_req, LEAVE_REQ_BYTES)
    assert decoded == req
    assert isinstance(decoded, LeaveReq)
    assert decoded.chord_leave_data() == ChordLeaveData(ChordLeaveType.from_succ, successors=(B, C))
    assert encode_struct(LeaveAns()) == b""  # "LeaveAns is an empty message"
    assert decode_body(MessageCode.leave_ans, b"") == LeaveAns()


def test_leave_req_with_bad_chord_data() -> None:
    """The generic LeaveReq decodes; reading its overlay_specific_data as Chord's fails cleanly."""
    req = decode_struct(LeaveReq, A + h("0003", "030000"))
    with pytest.raises(DecodeError) as exc:
        req.chord_leave_data()
    assert exc.value.drop  # unknown ChordLeaveType 3: §6.3.1.1
    with pytest.raises(DecodeError):
        LeaveReq(A, CHORD_LEAVE_PRED_BYTES + b"\x00").chord_leave_data()  # trailing byte
    with pytest.raises(DecodeError):
        LeaveReq(A, h("01", "000f") + bytes(15)).chord_leave_data()  # not whole Node-IDs


@pytest.mark.parametrize("leave_type", [0, 3, 255])
def test_unknown_chord_leave_type_is_dropped(leave_type: int) -> None:
    with pytest.raises(DecodeError) as exc:
        decode_struct(ChordLeaveData, bytes([leave_type]) + h("0000"))
    assert exc.value.drop and exc.value.field == "ChordLeaveData.type" and exc.value.offset == 0


def test_chord_leave_select_consistency_enforced() -> None:
    with pytest.raises(EncodeError):
        ChordLeaveData(ChordLeaveType.from_succ, predecessors=(A,))
    with pytest.raises(EncodeError):
        ChordLeaveData(ChordLeaveType.from_pred, successors=(A,))
    with pytest.raises(EncodeError):
        ChordLeaveData(ChordLeaveType.invalidChordLeaveType)


# ---------------------------------------------------------------- §6.4.2.3 / §10.7 Update

PEER_READY_BYTES = h(
    "00015180",  # uptime = 86400 s
    "01",  # type = peer_ready: nothing follows
)
NEIGHBORS_BYTES = h(
    "00000e10",  # uptime = 3600 s
    "02",  # type = neighbors
    "0010",  # predecessors: 16 bytes
    "fedcba9876543210fedcba9876543210",
    "0020",  # successors: 32 bytes
    "1111111111111111aaaaaaaaaaaaaaaa",
    "2222222222222222bbbbbbbbbbbbbbbb",
)
FULL_BYTES = h(
    "ffffffff",  # uptime = 2^32-1 s
    "03",  # type = full
    "0000",  # predecessors: none (a peer never lists itself, §10.7.3)
    "0010",  # successors
    "1111111111111111aaaaaaaaaaaaaaaa",
    "0030",  # fingers: 48 bytes, ascending
    "0123456789abcdef0123456789abcdef",
    "1111111111111111aaaaaaaaaaaaaaaa",
    "fedcba9876543210fedcba9876543210",
)


@pytest.mark.parametrize(
    ("update", "wire"),
    [
        (ChordUpdate(86400, ChordUpdateType.peer_ready), PEER_READY_BYTES),
        (ChordUpdate(3600, ChordUpdateType.neighbors, predecessors=(D,), successors=(B, C)), NEIGHBORS_BYTES),
        (ChordUpdate(2**32 - 1, ChordUpdateType.full, (), (B,), (A, B, D)), FULL_BYTES),
    ],
    ids=["peer_ready", "neighbors", "full"],
)
def test_chord_update_vectors(update: ChordUpdate, wire: bytes) -> None:
    assert encode_struct(update) == wire
    assert decode_body(MessageCode.update_req, wire) == update


def test_update_registry() -> None:
    """§6.4.2.3: UpdateReq's body is overlay specific; for CHORD-RELOAD it is ChordUpdate."""
    assert UpdateReq is ChordUpdate and BODY_TYPES[MessageCode.update_req] is ChordUpdate
    assert encode_struct(UpdateAns()) == b""
    assert decode_body(MessageCode.update_ans, b"") == UpdateAns()
    with pytest.raises(DecodeError):
        decode_body(MessageCode.update_ans, b"\x00")


@pytest.mark.parametrize("update_type", [0, 4, 255])
def test_unknown_chord_update_type_is_dropped(update_type: int) -> None:
    with pytest.raises(DecodeError) as exc:
        decode_struct(ChordUpdate, h("00000001") + bytes([update_type]) + h("0000", "0000"))
    assert exc.value.drop and exc.value.field == "ChordUpdate.type" and exc.value.offset == 4


def test_chord_update_node_id_list_must_hold_whole_node_ids() -> None:
    wire = h("00000001", "02", "0011") + bytes(17) + h("0000")
    with pytest.raises(DecodeError) as exc:
        decode_struct(ChordUpdate, wire)
    assert exc.value.field == "ChordUpdate.predecessors.length"


def test_chord_update_select_consistency_enforced() -> None:
    with pytest.raises(EncodeError):
        ChordUpdate(1, ChordUpdateType.peer_ready, successors=(A,))
    with pytest.raises(EncodeError):
        ChordUpdate(1, ChordUpdateType.neighbors, fingers=(A,))
    with pytest.raises(EncodeError):
        ChordUpdate(1, ChordUpdateType.invalidChordUpdateType)
    with pytest.raises(EncodeError):
        encode_struct(ChordUpdate(1, ChordUpdateType.full, fingers=(A, bytes(20))))  # mixed lengths


# ---------------------------------------------------------------- §6.4.2.4 / §10.8 RouteQuery

ROUTE_QUERY_NODE_BYTES = h(
    "01",  # send_update = true
    "01",  # Destination.type = node
    "10",  # Destination.length = 16
    "fedcba9876543210fedcba9876543210",  # node_id
    "0000",  # overlay_specific_data: CHORD-RELOAD adds nothing (§10.8)
)
ROUTE_QUERY_RESOURCE_BYTES = h(
    "00",  # send_update = false
    "02",  # Destination.type = resource
    "11",  # Destination.length = 17
    "10",  # ResourceId<0..2^8-1>: 16 bytes
    "0123456789abcdef0123456789abcdef",
    "0000",
)


def test_route_query_vectors() -> None:
    by_node = RouteQueryReq(True, NodeDestination(D))
    by_resource = RouteQueryReq(False, ResourceDestination(A))
    assert encode_struct(by_node) == ROUTE_QUERY_NODE_BYTES
    assert decode_body(MessageCode.route_query_req, ROUTE_QUERY_NODE_BYTES) == by_node
    assert encode_struct(by_resource) == ROUTE_QUERY_RESOURCE_BYTES
    assert decode_body(MessageCode.route_query_req, ROUTE_QUERY_RESOURCE_BYTES) == by_resource
    compressed = h("00", "8001", "0000")  # a 16-bit compressed opaque destination (§6.3.2.2)
    assert decode_struct(RouteQueryReq, compressed) == RouteQueryReq(False, CompressedDestination(0x8001))


def test_route_query_ans_vector() -> None:
    assert RouteQueryAns is ChordRouteQueryAns
    assert BODY_TYPES[MessageCode.route_query_ans] is ChordRouteQueryAns
    wire = h("1111111111111111aaaaaaaaaaaaaaaa")  # next_peer (NodeId[16])
    assert encode_struct(ChordRouteQueryAns(B)) == wire
    assert decode_body(MessageCode.route_query_ans, wire) == ChordRouteQueryAns(B)


def test_route_query_send_update_must_be_boolean() -> None:
    with pytest.raises(DecodeError) as exc:
        decode_struct(RouteQueryReq, b"\x02" + ROUTE_QUERY_NODE_BYTES[1:])
    assert exc.value.field == "RouteQueryReq.send_update"


# ---------------------------------------------------------------- §6.4.2.5 Probe

PROBE_REQ_BYTES = h(
    "03",  # requested_info<0..2^8-1>: 3 bytes
    "01",  # responsible_set
    "02",  # num_resources
    "03",  # uptime
)
PROBE_ANS_BYTES = h(
    "0012",  # probe_info<0..2^16-1>: 3 * 6 bytes
    "01",  # type = responsible_set
    "04",  # length
    "0bebc200",  # responsible_ppb = 200,000,000 (a fifth of the ring)
    "02",  # type = num_resources
    "04",
    "0000002a",  # 42
    "03",  # type = uptime
    "04",
    "00093a80",  # 604800 s
)


def test_probe_vectors() -> None:
    req = ProbeReq(
        (
            ProbeInformationType.responsible_set,
            ProbeInformationType.num_resources,
            ProbeInformationType.uptime,
        )
    )
    assert encode_struct(req) == PROBE_REQ_BYTES
    assert decode_body(MessageCode.probe_req, PROBE_REQ_BYTES) == req
    ans = ProbeAns(
        (ResponsibleSetInformation(200_000_000), NumResourcesInformation(42), UptimeInformation(604_800))
    )
    assert encode_struct(ans) == PROBE_ANS_BYTES
    assert decode_body(MessageCode.probe_ans, PROBE_ANS_BYTES) == ans
    assert [i.type for i in ans.probe_info] == [1, 2, 3]


def test_probe_unknown_types() -> None:
    """ProbeReq may ask for types the responder does not know; ProbeInformation's length
    lets a receiver skip unknown ones (§6.4.2.5.2)."""
    req = decode_struct(ProbeReq, h("02", "04", "c8"))
    assert req.requested_info == (ProbeInformationType.exp_probe, 0xC8)
    ans_bytes = h("000c", "04", "02", "beef", "c8", "00", "03", "04", "00000005")
    ans = decode_struct(ProbeAns, ans_bytes)
    assert ans == ProbeAns(
        (
            UnknownProbeInformation(ProbeInformationType.exp_probe, h("beef")),
            UnknownProbeInformation(0xC8, b""),
            UptimeInformation(5),
        )
    )
    assert encode_struct(ans) == ans_bytes


def test_probe_malformed_information() -> None:
    with pytest.raises(DecodeError) as exc:
        decode_struct(ProbeAns, h("0005", "03", "03", "000005"))  # a uint32 in 3 bytes
    assert exc.value.field == "ProbeInformation.length" and exc.value.offset == 3
    with pytest.raises(DecodeError):
        decode_struct(ProbeAns, h("0006", "00", "04", "00000005"))  # invalidProbeOption
    with pytest.raises(EncodeError):
        UnknownProbeInformation(ProbeInformationType.uptime, h("00000005"))


# ---------------------------------------------------------------- hypothesis round trips

node_ids = st.binary(min_size=16, max_size=16)
node_id_lists = st.lists(node_ids, max_size=6).map(tuple)
opaque16 = st.binary(max_size=300)
destinations = st.one_of(
    st.builds(NodeDestination, node_ids),
    st.builds(ResourceDestination, st.binary(max_size=254)),
    st.builds(OpaqueDestination, st.binary(max_size=254)),
    st.builds(CompressedDestination, st.integers(0x8000, 0xFFFF)),
    st.builds(UnknownDestination, st.integers(4, 127), st.binary(max_size=255)),
)
chord_updates = st.one_of(
    st.builds(ChordUpdate, st.integers(0, 2**32 - 1), st.just(ChordUpdateType.peer_ready)),
    st.builds(
        ChordUpdate,
        st.integers(0, 2**32 - 1),
        st.just(ChordUpdateType.neighbors),
        node_id_lists,
        node_id_lists,
    ),
    st.builds(
        ChordUpdate,
        st.integers(0, 2**32 - 1),
        st.just(ChordUpdateType.full),
        node_id_lists,
        node_id_lists,
        node_id_lists,
    ),
)
chord_leaves = st.one_of(
    st.builds(lambda s: ChordLeaveData(ChordLeaveType.from_succ, successors=s), node_id_lists),
    st.builds(lambda p: ChordLeaveData(ChordLeaveType.from_pred, predecessors=p), node_id_lists),
)
uint32 = st.integers(0, 2**32 - 1)
probe_infos = st.one_of(
    st.builds(ResponsibleSetInformation, uint32),
    st.builds(NumResourcesInformation, uint32),
    st.builds(UptimeInformation, uint32),
    st.builds(
        UnknownProbeInformation,
        st.one_of(st.just(ProbeInformationType.exp_probe), st.integers(5, 255)),
        st.binary(max_size=255),
    ),
)
probe_types = st.one_of(st.sampled_from(ProbeInformationType), st.integers(5, 255))

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "JoinReq": st.builds(JoinReq, node_ids, opaque16),
    "JoinAns": st.builds(JoinAns, opaque16),
    "LeaveReq": st.one_of(
        st.builds(LeaveReq, node_ids, opaque16), st.builds(LeaveReq.chord, node_ids, chord_leaves)
    ),
    "LeaveAns": st.just(LeaveAns()),
    "ChordUpdate": chord_updates,
    "UpdateAns": st.just(UpdateAns()),
    "RouteQueryReq": st.builds(RouteQueryReq, st.booleans(), destinations, opaque16),
    "ChordRouteQueryAns": st.builds(ChordRouteQueryAns, node_ids),
    "ChordLeaveData": chord_leaves,
    "ProbeReq": st.builds(ProbeReq, st.lists(probe_types, max_size=255).map(tuple)),
    "ProbeAns": st.builds(ProbeAns, st.lists(probe_infos, max_size=8).map(tuple)),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(name: str, data: st.DataObject) -> None:
    obj = data.draw(STRATEGIES[name])
    wire = encode_struct(obj)
    again = decode_struct(type(obj), wire, DEFAULT_CONTEXT)
    assert again == obj
    assert encode_struct(again) == wire


@settings(max_examples=100)
@given(leave=chord_leaves, peer=node_ids)
def test_leave_req_carries_chord_leave_data(leave: ChordLeaveData, peer: bytes) -> None:
    req = decode_struct(LeaveReq, encode_struct(LeaveReq.chord(peer, leave)))
    assert req.leaving_peer_id == peer and req.chord_leave_data() == leave


@settings(max_examples=50)
@given(ids=st.lists(st.binary(min_size=20, max_size=20), max_size=4).map(tuple), uptime=uint32)
def test_chord_update_with_20_byte_node_ids(ids: tuple[bytes, ...], uptime: int) -> None:
    ctx = WireContext(node_id_length=20)
    update = ChordUpdate(uptime, ChordUpdateType.full, ids, ids[::-1], ids)
    assert decode_struct(ChordUpdate, encode_struct(update), ctx) == update


TOPOLOGY_CLASSES = [
    JoinReq,
    JoinAns,
    LeaveReq,
    LeaveAns,
    ChordUpdate,
    UpdateAns,
    RouteQueryReq,
    ChordRouteQueryAns,
    ChordLeaveData,
    ProbeReq,
    ProbeAns,
]


@pytest.mark.parametrize("cls", TOPOLOGY_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=300)
@given(data=st.binary(max_size=120))
def test_arbitrary_bytes_raise_only_decode_error(cls: Any, data: bytes) -> None:
    """Garbage either decodes to a value that re-encodes to the same bytes, or raises DecodeError."""
    try:
        obj = decode_struct(cls, data)
    except DecodeError:
        return
    assert encode_struct(obj) == data


# ---------------------------------------------------------------- malformed input

VECTORS: list[tuple[type[Any], bytes]] = [
    (JoinReq, JOIN_REQ_BYTES),
    (JoinAns, h("0003", "c0ffee")),
    (LeaveReq, LEAVE_REQ_BYTES),
    (ChordLeaveData, CHORD_LEAVE_SUCC_BYTES),
    (ChordLeaveData, CHORD_LEAVE_PRED_BYTES),
    (ChordUpdate, PEER_READY_BYTES),
    (ChordUpdate, NEIGHBORS_BYTES),
    (ChordUpdate, FULL_BYTES),
    (RouteQueryReq, ROUTE_QUERY_NODE_BYTES),
    (RouteQueryReq, ROUTE_QUERY_RESOURCE_BYTES),
    (ChordRouteQueryAns, h("1111111111111111aaaaaaaaaaaaaaaa")),
    (ProbeReq, PROBE_REQ_BYTES),
    (ProbeAns, PROBE_ANS_BYTES),
]


@pytest.mark.parametrize(("cls", "wire"), VECTORS, ids=lambda v: getattr(v, "__name__", ""))
def test_every_truncation_raises_decode_error(cls: Any, wire: bytes) -> None:
    for cut in range(len(wire)):
        with pytest.raises(DecodeError):
            decode_struct(cls, wire[:cut])


@pytest.mark.parametrize(
    ("cls", "wire"),
    [*VECTORS, (LeaveAns, b""), (UpdateAns, b"")],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_trailing_bytes_rejected(cls: Any, wire: bytes) -> None:
    with pytest.raises(DecodeError) as exc:
        decode_struct(cls, wire + b"\x00")
    assert exc.value.offset == len(wire)
    r = Reader(wire + b"\x00")
    cls.decode(r, DEFAULT_CONTEXT)
    assert r.remaining() == 1


# ---------------------------------------------------------------- the shared examples

OUR_MODULES = {"reload_core.wire.chord", "reload_core.wire.topology", "reload_core.wire.link_methods"}


def test_examples_cover_every_code_we_register() -> None:
    ours = {code for code, cls in reload_core.wire.BODY_TYPES.items() if cls.__module__ in OUR_MODULES}
    assert len(ours) == 18
    assert {code for code, _ in EXAMPLES} == ours


@pytest.mark.parametrize(
    ("code", "obj"), EXAMPLES, ids=[f"{c.name}-{i}" for i, (c, _) in enumerate(EXAMPLES)]
)
def test_example_round_trips(code: MessageCode, obj: Any) -> None:
    assert isinstance(obj, BODY_TYPES[code])
    wire = encode_struct(obj)
    assert decode_body(code, wire) == obj
    assert from_json(type(obj), to_json(obj)) == obj
    for cut in range(len(wire)):
        with pytest.raises(DecodeError):
            decode_body(code, wire[:cut])

"""The §6.1 routing decision and response Destination Lists, with concrete Node-IDs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from reload_core.node.forwarding import (
    Deliver,
    Drop,
    Forward,
    Reject,
    decide,
    originator,
    response_destinations,
    response_options,
)
from reload_core.wire.codes import ErrorCode, ForwardingFlag
from reload_core.wire.message import (
    LAST_FRAGMENT_BIT,
    CompressedDestination,
    ForwardingHeader,
    ForwardingOption,
    NodeDestination,
    OpaqueDestination,
    ResourceDestination,
)


def nid(byte: int) -> bytes:
    return bytes([byte]) * 16


ME = nid(0x50)
WILDCARD = b"\xff" * 16


@dataclass
class View:
    """This node owns (0x40.., 0x50..]; connected to 0x20, 0x45 (a client), 0x60 and 0x90."""

    node_id: bytes = ME
    routes: bool = True
    connected: set[bytes] = field(default_factory=lambda: {nid(0x20), nid(0x45), nid(0x60), nid(0x90)})
    hops: dict[bytes, bytes] = field(default_factory=dict)

    def is_connected(self, node_id: bytes) -> bool:
        return node_id in self.connected

    def is_responsible(self, id_: bytes) -> bool:
        return nid(0x40) < id_ <= ME

    def next_hop(self, id_: bytes, *, resource: bool) -> bytes | None:
        if self.hops:
            return self.hops.get(id_)
        return nid(0x90) if id_ > nid(0x60) else nid(0x60) if id_ > ME else nid(0x20)


def header(
    *dests: object, via: tuple[object, ...] = (), ttl: int = 100, options: tuple[ForwardingOption, ...] = ()
) -> ForwardingHeader:
    return ForwardingHeader(
        overlay=1,
        configuration_sequence=0,
        ttl=ttl,
        fragment=LAST_FRAGMENT_BIT,
        transaction_id=7,
        via_list=via,  # type: ignore[arg-type]
        destination_list=dests,  # type: ignore[arg-type]
        options=options,
    )


PREV = nid(0x20)


def run(h: ForwardingHeader, view: View | None = None, previous: bytes | None = PREV) -> object:
    return decide(h, view or View(), previous_hop=previous, initial_ttl=100)


def test_own_node_id_alone_is_delivered() -> None:
    assert run(header(NodeDestination(ME))) == Deliver()


def test_wildcard_is_consumed_even_with_more_entries() -> None:
    assert run(header(NodeDestination(WILDCARD), NodeDestination(nid(0x90)))) == Deliver()


def test_own_entry_is_removed_and_the_next_one_routed() -> None:
    decision = run(header(NodeDestination(ME), NodeDestination(nid(0x90)), ResourceDestination(nid(0x95))))
    assert isinstance(decision, Forward)
    assert decision.next_hop == nid(0x90)
    assert decision.header.destination_list == (NodeDestination(nid(0x90)), ResourceDestination(nid(0x95)))
    assert decision.header.via_list == (NodeDestination(PREV),)
    assert decision.header.ttl == 99


def test_responsible_resource_must_be_the_last_entry() -> None:
    assert run(header(ResourceDestination(nid(0x48)))) == Deliver()
    dropped = run(header(ResourceDestination(nid(0x48)), NodeDestination(nid(0x90))))
    assert isinstance(dropped, Drop)


def test_node_id_in_range_goes_to_a_connected_client_else_is_dropped_silently() -> None:
    to_client = run(header(NodeDestination(nid(0x45))))
    assert isinstance(to_client, Forward) and to_client.next_hop == nid(0x45)
    assert isinstance(run(header(NodeDestination(nid(0x46)))), Drop)


def test_connected_destination_goes_direct_before_the_routing_table() -> None:
    view = View(hops={nid(0x90): nid(0x60)})
    decision = run(header(NodeDestination(nid(0x90))), view)
    assert isinstance(decision, Forward) and decision.next_hop == nid(0x90)


def test_other_ids_follow_the_topology_and_grow_the_via_list() -> None:
    decision = run(header(ResourceDestination(nid(0x70)), via=(NodeDestination(nid(0x10)),), ttl=5))
    assert isinstance(decision, Forward)
    assert decision.next_hop == nid(0x90)
    assert decision.header.via_list == (NodeDestination(nid(0x10)), NodeDestination(PREV))
    assert decision.header.ttl == 4
    assert decision.header.destination_list == (ResourceDestination(nid(0x70)),)


def test_our_own_messages_keep_their_ttl_and_via_list() -> None:
    decision = run(header(ResourceDestination(nid(0x70))), previous=None)
    assert isinstance(decision, Forward)
    assert decision.header.ttl == 100 and decision.header.via_list == ()


def test_exhausted_ttl_is_answered_unless_the_message_is_ours() -> None:
    assert run(header(ResourceDestination(nid(0x70)), ttl=0)) == Reject(
        ErrorCode.Error_TTL_Exceeded, "TTL exhausted (§6.3.2)"
    )
    assert run(header(NodeDestination(ME), ttl=0)) == Deliver()


def test_ttl_above_initial_ttl_is_rejected() -> None:
    decision = run(header(NodeDestination(ME), ttl=101))
    assert isinstance(decision, Reject) and decision.error_code == ErrorCode.Error_TTL_Exceeded


def test_unknown_forward_critical_option_is_rejected_when_forwarding() -> None:
    critical = ForwardingOption(99, ForwardingFlag.FORWARD_CRITICAL, b"x")
    decision = run(header(ResourceDestination(nid(0x70)), options=(critical,)))
    assert isinstance(decision, Reject)
    assert decision.error_code == ErrorCode.Error_Unsupported_Forwarding_Option
    # Only DESTINATION_CRITICAL: a forwarding peer passes it on.
    at_destination = ForwardingOption(99, ForwardingFlag.DESTINATION_CRITICAL, b"x")
    assert isinstance(run(header(ResourceDestination(nid(0x70)), options=(at_destination,))), Forward)
    # And the destination itself does not check options here (it does after verifying).
    assert run(header(NodeDestination(ME), options=(critical,))) == Deliver()


def test_a_client_does_not_route_for_others_but_sends_its_own() -> None:
    client = View(routes=False)
    assert isinstance(run(header(ResourceDestination(nid(0x70))), client), Drop)
    assert isinstance(run(header(ResourceDestination(nid(0x70))), client, previous=None), Forward)


def test_no_route_and_unroutable_destinations_are_dropped() -> None:
    assert isinstance(run(header(ResourceDestination(nid(0x70))), View(hops={nid(1): nid(2)})), Drop)
    assert isinstance(run(header(OpaqueDestination(b"\x01\x02"))), Drop)
    assert isinstance(run(header(CompressedDestination(0x8001))), Drop)


@pytest.mark.parametrize(
    ("via", "dests", "reason"),
    [
        ((ResourceDestination(nid(1)),), (NodeDestination(ME),), "a Resource-ID in the Via List (§6.3.2.2)"),
        ((), (), "empty Destination List"),
    ],
)
def test_malformed_lists_are_rejected(
    via: tuple[object, ...], dests: tuple[object, ...], reason: str
) -> None:
    assert run(header(*dests, via=via)) == Reject(ErrorCode.Error_Invalid_Message, reason)


def test_response_destination_list_is_previous_hop_then_reversed_via_list() -> None:
    # §6.1.2's example: E answers D's request whose Via List is [A, B, C] with [D, C, B, A].
    a, b, c, d = nid(0xA0), nid(0xB0), nid(0xC0), nid(0xD0)
    request = header(
        NodeDestination(nid(0xE0)), via=(NodeDestination(a), NodeDestination(b), NodeDestination(c))
    )
    assert response_destinations(request, d) == tuple(NodeDestination(x) for x in (d, c, b, a))
    assert response_destinations(header(NodeDestination(ME)), None) == ()
    assert originator(request, d) == a
    assert originator(header(NodeDestination(ME)), d) == d


def test_response_copy_options_come_back_with_flags_cleared() -> None:
    copied = ForwardingOption(9, ForwardingFlag.RESPONSE_COPY | ForwardingFlag.FORWARD_CRITICAL, b"v")
    kept_out = ForwardingOption(10, ForwardingFlag.DESTINATION_CRITICAL, b"w")
    assert response_options((copied, kept_out)) == (ForwardingOption(9, 0, b"v"),)

"""Attach candidates of types the answerer does not know (RFC 6940 §6.3.1.1, §6.5.1.1):
skipped, the others used; the Attach fails only when none is left."""

from __future__ import annotations

import pytest

from reload_core.node import Node, RequestError, wait_until
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.link_methods import (
    AnyIceCandidate,
    AttachAns,
    AttachReq,
    CandType,
    IceCandidate,
    IceExtension,
    UnknownIceCandidate,
)
from reload_core.wire.message import NodeDestination

from .support import MemoryRing
from .test_ring import build

# A host candidate whose address is of AddressType 7, which §6.3.1.1 does not define.
NEW_ADDRESS_CANDIDATE = UnknownIceCandidate(
    bytes.fromhex("07050a0b0c0d0e0401") + b"7" + bytes.fromhex("7effffff010000")
)


async def _requester_and_answerer(ring: MemoryRing) -> tuple[Node, Node]:
    """A node that reaches the ring's second peer only through the overlay."""
    peers = await build(ring, 2)
    requester = await ring.new_node()
    await requester.connect_as_client([peers[0].address])  # type: ignore[list-item]
    answerer = next(p for p in peers if p.node_id not in requester.connected_nodes)
    return requester, answerer


def _offer(candidates: tuple[AnyIceCandidate, ...]) -> AttachReq:
    return AttachReq(b"8hhY", b"asd88fgpdd777uzjYhagZg", b"passive", candidates)


async def test_unknown_candidates_are_skipped_and_the_good_one_attaches(ring: MemoryRing) -> None:
    requester, answerer = await _requester_and_answerer(ring)
    assert requester.address is not None
    good = IceCandidate(
        requester.address,
        requester.transport.link_type,
        b"1",
        1,
        CandType.host,
        extensions=(IceExtension(b"x-never-heard-of", b"1"),),  # ICE ignores unknown extensions
    )
    unknown_link = IceCandidate(requester.address, 0x42, b"2", 2**31, CandType.host)  # a new OverlayLinkType
    offer = _offer((NEW_ADDRESS_CANDIDATE, unknown_link, good))
    body, _ = await requester.request(NodeDestination(answerer.node_id), MessageCode.attach_req, offer)
    assert isinstance(body, AttachAns)
    # §6.5.1.13: the answerer connects to the candidate it could use.
    await wait_until([requester, answerer], lambda: answerer.node_id in requester.connected_nodes, 10.0)
    assert requester.node_id in answerer.connected_nodes


@pytest.mark.parametrize("only", ["unknown address", "unknown link"])
async def test_an_attach_with_no_usable_candidate_is_refused(ring: MemoryRing, only: str) -> None:
    requester, answerer = await _requester_and_answerer(ring)
    assert requester.address is not None
    candidate: AnyIceCandidate = (
        NEW_ADDRESS_CANDIDATE
        if only == "unknown address"
        else IceCandidate(requester.address, 0x42, b"2", 2, CandType.host)
    )
    with pytest.raises(RequestError) as exc:
        await requester.request(
            NodeDestination(answerer.node_id), MessageCode.attach_req, _offer((candidate,))
        )
    assert exc.value.error_code == ErrorCode.Error_Incompatible_with_Overlay
    assert answerer.node_id not in requester.connected_nodes

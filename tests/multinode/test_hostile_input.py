"""Hostile input to a live ``p2psip peer`` process (RFC 6940 §6.1, §6.3.2, §6.3.2.3,
§6.3.4, §6.6, §6.6.2): each gets the RFC's answer, or is dropped where the RFC says so,
and the peer keeps serving valid requests, and the ring stays whole, afterwards.

The attacker is an identity of the overlay (a certificate from its CA) on a hand-driven
TLS link (:mod:`.raw_link`) to peer 0 of a two-peer ring; peer 1 is the far side for
messages peer 0 has to forward."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from app.bench.overlay_harness import OverlayHarness
from app.peer import PeerSetup, peer_setup
from app.profile import load_profile
from reload_core.wire.codes import ErrorCode, ForwardingFlag, MessageCode
from reload_core.wire.message import ForwardingOption, Message, NodeDestination

from .conftest import MakeHarness
from .raw_link import RawLink, error_of

pytestmark = pytest.mark.multinode

UNKNOWN_OPTION = 0x7E  # not in the §14.12 registry


@dataclass
class Live:
    harness: OverlayHarness
    attacker: PeerSetup
    near: bytes  # peer 0, the one the attacker is linked to
    far: bytes  # peer 1
    host: str
    port: int
    links: list[RawLink]

    async def link(self) -> RawLink:
        link = await RawLink.open(self.attacker, self.host, self.port)
        self.links.append(link)
        return link

    async def assert_serving(self, link: RawLink | None = None) -> None:
        """Valid Pings to both peers are answered by them, and the ring is whole."""
        link = link or await self.link()
        for target in (self.near, self.far):
            request = link.request((NodeDestination(target),))
            link.send_frame(request.to_bytes())
            answer = await link.response()
            assert answer.forwarding_header.transaction_id == request.forwarding_header.transaction_id
            assert answer.message_contents.message_code == MessageCode.ping_ans
            assert link.signer_of(answer) == target
        await self.harness.wait_ring(10)


@pytest_asyncio.fixture
async def live(make_harness: MakeHarness) -> AsyncIterator[Live]:
    harness = await make_harness(2)
    mallory = harness.overlay.add_profile("mallory")
    near = await harness.start_process(0)
    await harness.start_process(1)
    await harness.wait_ring(30)
    host, _, port = near.ready.result()["listen"].rpartition(":")
    state = Live(
        harness,
        peer_setup(load_profile(mallory.directory)),
        harness.overlay.peers[0].node_id,
        harness.overlay.peers[1].node_id,
        host,
        int(port),
        [],
    )
    yield state
    for link in state.links:
        await link.close()


def _with_ttl(message: Message, ttl: int) -> bytes:
    """``message`` with another TTL; the signature does not cover the forwarding header
    (§6.3.4), so it still verifies."""
    header = dataclasses.replace(message.forwarding_header, ttl=ttl)
    return dataclasses.replace(message, forwarding_header=header).to_bytes()


async def test_a_bad_signature_is_dropped(live: Live) -> None:
    link = await live.link()
    forged = link.request((NodeDestination(live.near),))
    block = forged.security_block
    value = bytearray(block.signature.signature_value)
    value[len(value) // 2] ^= 0x01
    forged = dataclasses.replace(
        forged,
        security_block=dataclasses.replace(
            block, signature=dataclasses.replace(block.signature, signature_value=bytes(value))
        ),
    )
    link.send_frame(forged.to_bytes())
    # §6.3.4: "SHOULD simply drop the message". The link delivers in order and the peer
    # handles messages in order, so the first answer to arrive is to the valid Ping sent
    # next: nothing came back for the forged one.
    await live.assert_serving(link)
    assert link.messages.empty()


async def test_an_exhausted_ttl_is_answered_with_error_ttl_exceeded(live: Live) -> None:
    link = await live.link()
    # §6.3.2: TTL 0 on a message the peer would have to forward.
    request = link.request((NodeDestination(live.far),))
    link.send_frame(_with_ttl(request, 0))
    answer = await link.response()
    assert answer.forwarding_header.transaction_id == request.forwarding_header.transaction_id
    assert error_of(answer) == ErrorCode.Error_TTL_Exceeded
    assert link.signer_of(answer) == live.near
    # §6.3.2: a TTL above initial-ttl is discarded with the same error, even when the
    # message is for the peer itself.
    request = link.request((NodeDestination(live.near),))
    link.send_frame(_with_ttl(request, live.attacker.settings.initial_ttl + 1))
    answer = await link.response()
    assert error_of(answer) == ErrorCode.Error_TTL_Exceeded
    await live.assert_serving(link)


async def test_an_oversize_message_is_refused_and_its_link_closed(live: Live) -> None:
    link = await live.link()
    limit = live.attacker.settings.max_message_size
    request = link.request((NodeDestination(live.near),), padding=b"\0" * (limit + 100))
    data = request.to_bytes()
    assert len(data) > limit
    link.send_frame(data)
    # §6.6: "SHOULD send an Error_Message_Too_Large error and then close the TLS ... session".
    answer = await link.response()
    assert answer.forwarding_header.transaction_id == request.forwarding_header.transaction_id
    assert error_of(answer) == ErrorCode.Error_Message_Too_Large
    await link.wait_closed()
    await live.assert_serving()


async def test_an_unknown_critical_forwarding_option_is_rejected(live: Live) -> None:
    link = await live.link()
    # §6.3.2.3: FORWARD_CRITICAL and not understood by a peer that would forward it.
    option = ForwardingOption(UNKNOWN_OPTION, ForwardingFlag.FORWARD_CRITICAL, b"\x01\x02")
    request = link.request((NodeDestination(live.far),), options=(option,))
    link.send_frame(request.to_bytes())
    answer = await link.response()
    assert error_of(answer) == ErrorCode.Error_Unsupported_Forwarding_Option
    assert link.signer_of(answer) == live.near
    # DESTINATION_CRITICAL and not understood by the node that would answer.
    option = ForwardingOption(UNKNOWN_OPTION, ForwardingFlag.DESTINATION_CRITICAL)
    request = link.request((NodeDestination(live.near),), options=(option,))
    link.send_frame(request.to_bytes())
    answer = await link.response()
    assert error_of(answer) == ErrorCode.Error_Unsupported_Forwarding_Option
    # Not critical: ignored, and the Ping is answered by its destination.
    option = ForwardingOption(UNKNOWN_OPTION, 0)
    request = link.request((NodeDestination(live.far),), options=(option,))
    link.send_frame(request.to_bytes())
    answer = await link.response()
    assert answer.message_contents.message_code == MessageCode.ping_ans
    assert link.signer_of(answer) == live.far
    await live.assert_serving(link)


async def test_garbage_in_a_data_frame_is_dropped_and_the_link_kept(live: Live) -> None:
    link = await live.link()
    link.send_frame(os.urandom(300).replace(b"\xd2", b"\x00"))  # no relo_token: nothing to answer
    truncated = link.request((NodeDestination(live.near),)).to_bytes()[:30]
    link.send_frame(truncated)  # a forwarding header cut short
    await live.assert_serving(link)
    assert link.messages.empty()
    assert not link.closed.is_set()


async def test_garbage_on_the_stream_closes_that_link_only(live: Live) -> None:
    link = await live.link()
    link.send_raw(b"\x42" + os.urandom(64))  # neither a data nor an ack frame (§6.6.2)
    await link.wait_closed()
    # Not TLS at all.
    reader, writer = await asyncio.open_connection(live.host, live.port)
    writer.write(b"\x16\x03\x01\x00\x05" + os.urandom(512))  # a TLS record header, then noise
    with contextlib.suppress(ConnectionResetError):
        await asyncio.wait_for(reader.read(), 10)  # read() returns at EOF: the peer hung up
    writer.close()
    await live.assert_serving()

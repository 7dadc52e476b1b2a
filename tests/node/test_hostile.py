"""Hostile and malformed input to a live node: each is answered with the RFC's error or
dropped, and the node keeps answering valid requests afterwards (RFC 6940 §6.1, §6.2.1,
§6.3.2, §6.3.2.1, §6.3.2.3, §6.3.3, §6.3.3.1, §6.3.4, §6.6)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, replace

import pytest

from reload_core.links.base import CloseCode, CloseReason, Link
from reload_core.node import Node, NodeSettings
from reload_core.node.envelope import build_message, build_response
from reload_core.node.transport import memory_address
from reload_core.security.signing import Signer, verify_message
from reload_core.wire.codes import ErrorCode, ForwardingFlag, MessageCode
from reload_core.wire.framing import DataFrame
from reload_core.wire.link_methods import PingAns, PingReq
from reload_core.wire.message import (
    Destination,
    ErrorResponse,
    ForwardingHeader,
    ForwardingOption,
    Message,
    MessageContents,
    MessageExtension,
    NodeDestination,
    ResourceDestination,
)
from reload_core.wire.registry import decode_struct, encode_struct

from .support import MemoryRing, OverlayPki, settings


class Probe:
    """A raw endpoint on the memory network: sends whatever it is told and records what
    comes back. Its identity is a valid overlay member's."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.closed: list[CloseReason] = []
        self.too_large: list[int] = []
        self._changed = asyncio.Event()

    def link_opened(self, link: Link) -> None:
        self._changed.set()

    def message_received(self, link: Link, message: bytes) -> None:
        self.messages.append(message)
        self._changed.set()

    def message_too_large(self, link: Link, header: ForwardingHeader, length: int) -> None:
        self.too_large.append(length)

    def link_suspect(self, link: Link, suspect: bool) -> None:
        pass

    def link_closed(self, link: Link, reason: CloseReason) -> None:
        self.closed.append(reason)
        self._changed.set()

    async def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def expect(self, timeout: float = 5.0) -> Coroutine[None, None, Message]:
        """The next message to arrive after this call (count taken now, before sending)."""
        count = len(self.messages)

        async def wait() -> Message:
            await self.wait(lambda: len(self.messages) > count, timeout)
            return Message.from_bytes(self.messages[count])

        return wait()


@dataclass
class Hostile:
    probe: Probe
    link: Link
    signer: Signer
    settings: NodeSettings
    target: Node
    ring: MemoryRing

    def message(
        self,
        destinations: tuple[Destination, ...] | None = None,
        *,
        code: int = MessageCode.ping_req,
        body: bytes | None = None,
        tid: int | None = None,
        extensions: tuple[MessageExtension, ...] = (),
        options: tuple[ForwardingOption, ...] = (),
        max_response_length: int = 0,
        sequence: int | None = None,
    ) -> Message:
        return build_message(
            self.settings,
            self.signer,
            transaction_id=tid if tid is not None else secrets.randbits(64),
            destinations=destinations or (NodeDestination(self.target.node_id),),
            contents=MessageContents(code, encode_struct(PingReq()) if body is None else body, extensions),
            max_response_length=max_response_length,
            options=options,
            configuration_sequence=sequence,
        )

    async def exchange(self, message: Message | bytes) -> Message:
        data = message if isinstance(message, bytes) else message.to_bytes()
        pending = self.probe.expect()
        self.link.send(data)
        answer = await pending
        verify_message(answer, self.ring.pki.resolver())  # every answer is signed by the node
        return answer

    async def error_for(self, message: Message | bytes) -> ErrorResponse:
        answer = await self.exchange(message)
        assert answer.message_contents.message_code == MessageCode.error
        return decode_struct(ErrorResponse, answer.message_contents.message_body)

    async def still_serving(self) -> None:
        """The node answers a valid Ping from us and from a peer of the ring."""
        tid = secrets.randbits(64)
        answer = await self.exchange(self.message(tid=tid))
        assert answer.forwarding_header.transaction_id == tid
        assert answer.message_contents.message_code == MessageCode.ping_ans
        other = next(n for n in self.ring.nodes if n is not self.target)
        body, _ = await other.request(NodeDestination(self.target.node_id), MessageCode.ping_req, PingReq())
        assert isinstance(body, PingAns)


async def connect(ring: MemoryRing, target: Node, probe: Probe, signer: Signer) -> Link:
    address = target.address
    assert address is not None
    link = ring.network._endpoints[f"probe-{signer.node_id.hex()}"].connect(
        memory_address(address), target.node_id
    )
    await probe.wait(lambda: link.is_open)
    return link


@pytest.fixture
async def hostile(ring: MemoryRing, pki: OverlayPki) -> AsyncIterator[Hostile]:
    await ring.first()
    await ring.join()
    await ring.join()
    await ring.converge()
    target = ring.nodes[1]
    signer = pki.signer()
    probe = Probe()
    ring.network.endpoint(f"probe-{signer.node_id.hex()}", signer.node_id, probe)
    link = await connect(ring, target, probe, signer)
    yield Hostile(probe, link, signer, settings(), target, ring)
    link.close()


async def test_bad_signature_is_dropped_silently(hostile: Hostile) -> None:
    good = hostile.message()
    signature = good.security_block.signature
    forged = replace(
        good,
        security_block=replace(
            good.security_block,
            signature=replace(signature, signature_value=bytes(b ^ 0x55 for b in signature.signature_value)),
        ),
    )
    # The link is in order: had the forged one been answered, that answer would come first.
    hostile.link.send(forged.to_bytes())
    hostile.link.send(
        replace(forged, forwarding_header=replace(forged.forwarding_header, transaction_id=1)).to_bytes()
    )
    await hostile.still_serving()
    answered = {Message.from_bytes(m).forwarding_header.transaction_id for m in hostile.probe.messages}
    assert forged.forwarding_header.transaction_id not in answered and 1 not in answered


async def test_exhausted_ttl(hostile: Hostile) -> None:
    elsewhere = next(n for n in hostile.ring.nodes if n is not hostile.target)
    message = hostile.message((NodeDestination(elsewhere.node_id),))
    spent = replace(message, forwarding_header=replace(message.forwarding_header, ttl=0))
    error = await hostile.error_for(spent)
    assert error.error_code == ErrorCode.Error_TTL_Exceeded
    too_high = replace(message, forwarding_header=replace(message.forwarding_header, ttl=101))
    assert (await hostile.error_for(too_high)).error_code == ErrorCode.Error_TTL_Exceeded
    await hostile.still_serving()


async def test_oversize_message_is_refused_and_the_link_closed(hostile: Hostile) -> None:
    big = hostile.message(body=encode_struct(PingReq(bytes(6000))))
    assert len(big.to_bytes()) > hostile.target.settings.max_message_size
    # Our own side would refuse to send it; put the frame on the wire directly.
    answer = hostile.probe.expect()
    hostile.link._transmit([DataFrame(999, big.to_bytes()).to_bytes()])  # type: ignore[attr-defined]
    error = await answer
    body = decode_struct(ErrorResponse, error.message_contents.message_body)
    assert body.error_code == ErrorCode.Error_Message_Too_Large
    assert error.forwarding_header.transaction_id == big.forwarding_header.transaction_id
    await hostile.probe.wait(lambda: bool(hostile.probe.closed))  # §6.6: the session is closed
    hostile.link = await connect(hostile.ring, hostile.target, hostile.probe, hostile.signer)
    await hostile.still_serving()


@pytest.mark.parametrize("flag", [ForwardingFlag.FORWARD_CRITICAL, ForwardingFlag.DESTINATION_CRITICAL])
async def test_unknown_critical_forwarding_option(hostile: Hostile, flag: int) -> None:
    option = ForwardingOption(0x7E, flag, b"?")
    if flag == ForwardingFlag.FORWARD_CRITICAL:
        # The target has to forward it to reach the other node.
        elsewhere = next(n for n in hostile.ring.nodes if n is not hostile.target)
        message = hostile.message((NodeDestination(elsewhere.node_id),), options=(option,))
    else:
        message = hostile.message(options=(option,))
    error = await hostile.error_for(message)
    assert error.error_code == ErrorCode.Error_Unsupported_Forwarding_Option
    await hostile.still_serving()


async def test_understood_or_non_critical_input_is_served(hostile: Hostile) -> None:
    harmless = ForwardingOption(0x7E, 0, b"?")  # not critical: ignored
    answer = await hostile.exchange(hostile.message(options=(harmless,)))
    assert answer.message_contents.message_code == MessageCode.ping_ans
    extension = MessageExtension(0x4242, False, b"x")
    answer = await hostile.exchange(hostile.message(extensions=(extension,)))
    assert answer.message_contents.message_code == MessageCode.ping_ans


async def test_unknown_critical_extension(hostile: Hostile) -> None:
    message = hostile.message(extensions=(MessageExtension(0x4242, True, b"x"),))
    assert (await hostile.error_for(message)).error_code == ErrorCode.Error_Unknown_Extension
    await hostile.still_serving()


async def test_unknown_method_and_undecodable_body(hostile: Hostile) -> None:
    assert (await hostile.error_for(hostile.message(code=0x41))).error_code == ErrorCode.Error_Invalid_Message
    truncated = hostile.message(body=b"\x00\x05ab")  # padding says 5 bytes, has 2
    assert (await hostile.error_for(truncated)).error_code == ErrorCode.Error_Invalid_Message
    await hostile.still_serving()


async def test_configuration_sequence_mismatch(hostile: Hostile) -> None:
    newer = hostile.message(sequence=5)
    assert (await hostile.error_for(newer)).error_code == ErrorCode.Error_Config_Too_New
    await hostile.still_serving()


async def test_response_longer_than_max_response_length(hostile: Hostile) -> None:
    error = await hostile.error_for(hostile.message(max_response_length=64))
    assert error.error_code == ErrorCode.Error_Response_Too_Large
    answer = await hostile.exchange(hostile.message(max_response_length=4000))
    assert answer.message_contents.message_code == MessageCode.ping_ans


async def test_garbage_on_a_link(hostile: Hostile) -> None:
    # A data frame holding no RELOAD message at all: no relo_token, nothing to answer.
    hostile.link.send(secrets.token_bytes(200))
    hostile.link.send(b"\xd2\x45\x4c\x4f" + secrets.token_bytes(20))  # a token, then too short to answer
    await hostile.still_serving()
    # A header that starts right but does not decode is answered (to the previous hop).
    message = hostile.message().to_bytes()
    broken = message[:12] + b"\x00\x00\x00\x00" + message[16:]  # fragment high bit cleared
    assert (await hostile.error_for(broken)).error_code == ErrorCode.Error_Invalid_Message
    # Bytes that are not even a frame: the stream cannot resynchronise, the link closes.
    hostile.link._transmit([b"\x07garbage"])  # type: ignore[attr-defined]
    await hostile.probe.wait(lambda: any(r.code is CloseCode.REMOTE for r in hostile.probe.closed))
    hostile.link = await connect(hostile.ring, hostile.target, hostile.probe, hostile.signer)
    await hostile.still_serving()


async def test_retransmission_gets_the_same_answer(hostile: Hostile) -> None:
    message = hostile.message()
    first = await hostile.exchange(message)
    again = await hostile.exchange(message)
    assert again.message_contents == first.message_contents  # same response_id (§6.2.1)
    assert again.security_block == first.security_block
    other = await hostile.exchange(hostile.message())
    first_body = decode_struct(PingAns, first.message_contents.message_body)
    assert decode_struct(PingAns, other.message_contents.message_body).response_id != first_body.response_id


async def test_response_from_the_wrong_node_is_ignored(hostile: Hostile, pki: OverlayPki) -> None:
    """§6.3.4: the response to a request sent to a Node-ID must be signed by that node."""
    target = hostile.target
    incoming = hostile.probe.expect()
    pending = asyncio.ensure_future(
        target.request(NodeDestination(hostile.signer.node_id), MessageCode.ping_req, PingReq())
    )
    request = await incoming
    impostor = pki.signer()
    body = encode_struct(PingAns(1, 2))
    forged = build_response(
        target.settings, impostor, request.forwarding_header, None, MessageCode.ping_ans, body
    )
    forged = replace(
        forged,
        forwarding_header=replace(
            forged.forwarding_header, destination_list=(NodeDestination(target.node_id),)
        ),
    )
    hostile.link.send(forged.to_bytes())
    genuine = build_response(
        target.settings,
        hostile.signer,
        request.forwarding_header,
        None,
        MessageCode.ping_ans,
        encode_struct(PingAns(3, 4)),
    )
    genuine = replace(
        genuine,
        forwarding_header=replace(
            genuine.forwarding_header, destination_list=(NodeDestination(target.node_id),)
        ),
    )
    hostile.link.send(genuine.to_bytes())
    answer, _ = await pending
    assert answer == PingAns(3, 4)


async def test_resource_request_answered_through_a_peer(hostile: Hostile) -> None:
    """Requests from a directly connected node that never Attached get routed and answered
    along the reverse path (§6.1.2, §4.2.1 second bullet)."""
    ids = sorted(n.node_id for n in hostile.ring.nodes)
    for key in (ids[0], ids[-1], bytes(16)):
        answer = await hostile.exchange(hostile.message((ResourceDestination(key),)))
        assert answer.message_contents.message_code == MessageCode.ping_ans

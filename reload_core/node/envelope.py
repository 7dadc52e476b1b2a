"""Building signed messages and rewriting forwarding headers (RFC 6940 §6.3, §6.3.4).

Every message this node sends is signed (§6.3.4: "All RELOAD messages MUST be signed"):
:func:`build_message` signs ``overlay || transaction_id || MessageContents ||
SignerIdentity``. The signature does not cover the forwarding header, so an intermediate
peer rewrites the header (:func:`reencode`) and the destination replays a cached answer
under a header for the retransmission's path (:func:`with_header`) without re-signing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from reload_core.node.forwarding import response_destinations, response_options
from reload_core.node.settings import NodeSettings
from reload_core.security.signing import Signer, sign_message
from reload_core.wire.buffer import Writer
from reload_core.wire.codes import ErrorCode, MessageCode, is_request_code
from reload_core.wire.message import (
    LAST_FRAGMENT_BIT,
    Destination,
    ErrorResponse,
    ForwardingHeader,
    ForwardingOption,
    Message,
    MessageContents,
    MessageExtension,
    NodeDestination,
)
from reload_core.wire.registry import encode_struct

_TRANSACTION_ID_AT = 20  # relo_token, overlay, sequence, version, ttl, fragment, length
_FIXED_HEADER = 38


def build_message(
    settings: NodeSettings,
    signer: Signer,
    *,
    transaction_id: int,
    destinations: tuple[Destination, ...],
    contents: MessageContents,
    max_response_length: int = 0,
    options: tuple[ForwardingOption, ...] = (),
    configuration_sequence: int | None = None,
    certificates: Sequence[bytes] = (),
) -> Message:
    """A new, unfragmented, signed message from this node (§6.3.2: TTL = initial-ttl).
    ``certificates`` go in the bucket after the signer's (§6.3.4)."""
    header = ForwardingHeader(
        overlay=settings.overlay,
        configuration_sequence=(
            settings.configuration_sequence if configuration_sequence is None else configuration_sequence
        ),
        ttl=settings.initial_ttl,
        fragment=LAST_FRAGMENT_BIT,
        transaction_id=transaction_id,
        max_response_length=max_response_length,
        destination_list=destinations,
        options=options,
    )
    encoded = contents.to_bytes()
    security = sign_message(settings.overlay, transaction_id, encoded, signer, certificates)
    return Message(header, contents, security, encoded)


def response_header(
    settings: NodeSettings, request: ForwardingHeader, previous_hop: bytes | None, own_id: bytes
) -> ForwardingHeader:
    """The forwarding header of a response to ``request`` received from ``previous_hop``
    (§6.1.2, §6.2.2; RESPONSE_COPY options, §6.3.2.3; max_response_length 0, §6.3.2)."""
    destinations = response_destinations(request, previous_hop) or (NodeDestination(own_id),)
    return ForwardingHeader(
        overlay=settings.overlay,
        configuration_sequence=settings.configuration_sequence,
        ttl=settings.initial_ttl,
        fragment=LAST_FRAGMENT_BIT,
        transaction_id=request.transaction_id,
        destination_list=destinations,
        options=response_options(request.options),
    )


def build_response(
    settings: NodeSettings,
    signer: Signer,
    request: ForwardingHeader,
    previous_hop: bytes | None,
    code: int,
    body: bytes,
    extensions: tuple[MessageExtension, ...] = (),
    certificates: Sequence[bytes] = (),
) -> Message:
    """A signed response carrying ``body`` under message code ``code``; ``certificates``
    go in the bucket after the signer's (§6.3.4)."""
    contents = MessageContents(code, body, extensions)
    header = response_header(settings, request, previous_hop, signer.node_id)
    encoded = contents.to_bytes()
    security = sign_message(settings.overlay, request.transaction_id, encoded, signer, certificates)
    return Message(header, contents, security, encoded)


def build_error(
    settings: NodeSettings,
    signer: Signer,
    request: ForwardingHeader,
    previous_hop: bytes | None,
    error_code: ErrorCode,
    info: str | bytes,
) -> Message:
    """A signed ErrorResponse (§6.3.3.1); ``info`` is UTF-8 text for debugging, or bytes
    where the method defines error_info (e.g. §7.4.1.2)."""
    raw = info.encode("utf-8") if isinstance(info, str) else info
    body = encode_struct(ErrorResponse(error_code, raw[:0xFFFF]))
    return build_response(settings, signer, request, previous_hop, MessageCode.error, body)


def with_header(message: Message, header: ForwardingHeader) -> Message:
    """The same contents and signature under another forwarding header."""
    return replace(message, forwarding_header=header)


def reencode(header: ForwardingHeader, payload: bytes) -> bytes:
    """``header`` (its length fields recomputed) followed by ``payload`` unchanged."""
    w = Writer()
    header.encode(w, len(payload))
    w.push_bytes(payload)
    return w.data()


def peek_message_code(header: ForwardingHeader, data: bytes, payload_at: int) -> int | None:
    """The message_code after the header when this piece holds it (offset 0), else None.
    Lets an intermediate peer tell a request, which gets an error answer, from a response,
    which never does."""
    if header.fragment_offset != 0 or len(data) < payload_at + 2:
        return None
    return int.from_bytes(data[payload_at : payload_at + 2], "big")


def is_request(header: ForwardingHeader, data: bytes, payload_at: int) -> bool:
    code = peek_message_code(header, data, payload_at)
    return code is not None and is_request_code(code)


def salvage_header(data: bytes) -> ForwardingHeader | None:
    """From bytes whose forwarding header does not decode, what an error answer needs: the
    transaction ID (the fixed part must be there and start with relo_token). The answer
    can only go back to the previous hop."""
    if len(data) < _FIXED_HEADER or data[:4] != b"\xd2\x45\x4c\x4f":
        return None
    tid = int.from_bytes(data[_TRANSACTION_ID_AT : _TRANSACTION_ID_AT + 8], "big")
    return ForwardingHeader(overlay=0, configuration_sequence=0, ttl=0, fragment=0, transaction_id=tid)


__all__ = [
    "build_error",
    "build_message",
    "build_response",
    "is_request",
    "peek_message_code",
    "reencode",
    "response_header",
    "salvage_header",
    "with_header",
]

"""RELOAD wire codec (RFC 6940 §6.3, §6.4.2, §6.5, §6.6.2, §6.7, §7, §10; RFC 7904 §3.2).

Pure functions over bytes. Every decoder raises only :class:`DecodeError`.
"""

from reload_core.wire import chord, link_methods, storage, topology  # noqa: F401  (registers bodies)
from reload_core.wire.buffer import DecodeError, EncodeError, Reader, Writer
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.message import (
    ErrorResponse,
    ForwardingHeader,
    Message,
    MessageContents,
    SecurityBlock,
    Signature,
    SignerIdentity,
)
from reload_core.wire.registry import BODY_TYPES, decode_body, decode_struct, encode_struct

__all__ = [
    "BODY_TYPES",
    "DEFAULT_CONTEXT",
    "DecodeError",
    "EncodeError",
    "ErrorCode",
    "ErrorResponse",
    "ForwardingHeader",
    "Message",
    "MessageCode",
    "MessageContents",
    "Reader",
    "SecurityBlock",
    "Signature",
    "SignerIdentity",
    "WireContext",
    "Writer",
    "decode_body",
    "decode_struct",
    "encode_struct",
]

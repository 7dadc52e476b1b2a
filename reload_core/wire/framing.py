"""The per-hop framing header (RFC 6940 §6.6.2): data and ack frames.

On TLS/TCP (§6.6.5) frames follow each other on the byte stream; :func:`frame_length`
says how many bytes the next frame needs so a stream reader can cut them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from reload_core.wire.buffer import DecodeError, Reader, Writer
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext

MAX_FRAMED_MESSAGE = (1 << 24) - 1
"""``opaque message<0..2^24-1>``."""

DATA_HEADER_LEN = 8  # type, sequence, 24-bit length
ACK_LEN = 9  # type, ack_sequence, received


class FramedMessageType(IntEnum):
    """§6.6.2."""

    data = 128
    ack = 129


@dataclass(frozen=True, slots=True)
class DataFrame:
    """``case data: uint32 sequence; opaque message<0..2^24-1>``."""

    sequence: int
    message: bytes

    def encode(self, w: Writer) -> None:
        w.push_uint8(FramedMessageType.data)
        w.push_uint32(self.sequence, "FramedMessage.sequence")
        w.push_opaque(self.message, 3, "FramedMessage.message")

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.data()


@dataclass(frozen=True, slots=True)
class AckFrame:
    """``case ack: uint32 ack_sequence; uint32 received``.

    ``received`` bit ``N-M`` (bit 1 being the least significant) is set when sequence
    number M, N-32 < M < N, was among the 32 most recently received (§6.6.2).
    """

    ack_sequence: int
    received: int

    def encode(self, w: Writer) -> None:
        w.push_uint8(FramedMessageType.ack)
        w.push_uint32(self.ack_sequence, "FramedMessage.ack_sequence")
        w.push_uint32(self.received, "FramedMessage.received")

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.data()


FramedMessage = DataFrame | AckFrame


def decode_framed_message(r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> FramedMessage:
    at = r.offset
    t = r.pull_uint8("FramedMessage.type")
    if t == FramedMessageType.data:
        seq = r.pull_uint32("FramedMessage.sequence")
        return DataFrame(seq, r.pull_opaque(3, "FramedMessage.message"))
    if t == FramedMessageType.ack:
        return AckFrame(r.pull_uint32("FramedMessage.ack_sequence"), r.pull_uint32("FramedMessage.received"))
    raise DecodeError(f"unknown FramedMessageType {t}", field="FramedMessage.type", offset=at, drop=True)


class FramedMessageCodec:
    """Namespace giving framed messages the codec's ``decode`` shape (for tests and tools)."""

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext = DEFAULT_CONTEXT) -> FramedMessage:
        return decode_framed_message(r, ctx)


def frame_length(buf: bytes | bytearray) -> int | None:
    """Bytes the frame at the start of ``buf`` occupies, or None if more are needed to tell.

    Raises :class:`DecodeError` for a type byte that is neither data nor ack: on a
    stream there is no way to resynchronise, so the link must be closed.
    """
    if not buf:
        return None
    t = buf[0]
    if t == FramedMessageType.ack:
        return ACK_LEN
    if t == FramedMessageType.data:
        if len(buf) < DATA_HEADER_LEN:
            return None
        return DATA_HEADER_LEN + int.from_bytes(buf[5:8], "big")
    raise DecodeError(f"unknown FramedMessageType {t}", field="FramedMessage.type", offset=0)


__all__ = [
    "ACK_LEN",
    "DATA_HEADER_LEN",
    "AckFrame",
    "DataFrame",
    "FramedMessage",
    "FramedMessageType",
    "decode_framed_message",
    "frame_length",
]

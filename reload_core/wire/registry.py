"""Message-code → body-structure registry (RFC 6940 §6.3.3: the message_body of a
``message_code`` X_req is the structure XReq, of X_ans the structure XAns)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, Self, TypeVar

from reload_core.wire.buffer import DecodeError, Reader, Writer
from reload_core.wire.codes import MessageCode
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext


class WireStruct(Protocol):
    """Every codec structure: ``encode`` appends to a Writer, ``decode`` pulls from a Reader."""

    def encode(self, w: Writer) -> None: ...

    @classmethod
    def decode(cls, r: Reader, ctx: WireContext) -> Self: ...


S = TypeVar("S", bound=WireStruct)

BODY_TYPES: dict[int, type[WireStruct]] = {}
"""Message code → body class. Filled by the ``@body`` decorator as modules import."""


def body(code: MessageCode) -> Callable[[type[S]], type[S]]:
    """Class decorator: register ``cls`` as the message_body structure for ``code``."""

    def register(cls: type[S]) -> type[S]:
        if code in BODY_TYPES:
            raise RuntimeError(f"{code.name} registered twice")
        BODY_TYPES[code] = cls
        return cls

    return register


def encode_struct(obj: WireStruct) -> bytes:
    w = Writer()
    obj.encode(w)
    return w.data()


def decode_struct(cls: type[S], data: bytes, ctx: WireContext = DEFAULT_CONTEXT) -> S:
    """Decode exactly one ``cls`` from ``data``; trailing bytes are an error."""
    r = Reader(data)
    obj = cls.decode(r, ctx)
    r.expect_end(cls.__name__)
    return obj


def decode_body(code: int, data: bytes, ctx: WireContext = DEFAULT_CONTEXT) -> WireStruct:
    """Decode a message_body by its message code (§6.3.3)."""
    cls = BODY_TYPES.get(code)
    if cls is None:
        raise DecodeError(f"no body structure for message code {code:#x}", field="message_code")
    return decode_struct(cls, data, ctx)

"""Errors of the node layer (RFC 6940 §6.3.3.1).

:class:`RequestError` is what a caller of :meth:`Node.request` sees when its request
failed: the responder's ErrorResponse, or a local verdict such as
``Error_Request_Timeout`` after the fifth transmission (§6.2.1). :class:`RequestRejected`
goes the other way: a request handler raises it to answer with an ErrorResponse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reload_core.wire.codes import ErrorCode
from reload_core.wire.message import enum_or_int

if TYPE_CHECKING:
    from reload_core.wire.message import Message


class NodeError(Exception):
    """Base of the node layer's errors."""


class RequestError(NodeError):
    """A request failed. ``error_code`` is the ErrorResponse's code (§6.3.3.1) or the local
    verdict (``Error_Request_Timeout``, ``Error_Message_Too_Large``...); ``response`` is
    the error response message when one arrived, else None."""

    def __init__(
        self, error_code: ErrorCode | int, error_info: bytes | str = b"", response: Message | None = None
    ) -> None:
        self.error_code = enum_or_int(ErrorCode, int(error_code))
        self.error_info = error_info.encode() if isinstance(error_info, str) else error_info
        self.response = response
        name = self.error_code.name if isinstance(self.error_code, ErrorCode) else f"{self.error_code:#x}"
        info = self.error_info.decode("utf-8", "replace")
        super().__init__(f"{name}: {info}" if info else name)


class RequestRejected(NodeError):
    """Raised by a request handler: answer the request with this ErrorResponse.
    ``error_info`` is text, or bytes where the method defines it (e.g. §7.4.1.2)."""

    def __init__(self, error_code: ErrorCode, error_info: str | bytes = "") -> None:
        self.error_code = error_code
        self.error_info = error_info
        text = error_info if isinstance(error_info, str) else f"{len(error_info)} bytes of error_info"
        super().__init__(f"{error_code.name}: {text}" if error_info else error_code.name)


class JoinError(NodeError):
    """Joining the overlay (or connecting as a client) failed through every bootstrap node."""


class NodeClosedError(NodeError):
    """The node was closed while the operation was under way."""


__all__ = ["JoinError", "NodeClosedError", "NodeError", "RequestError", "RequestRejected"]

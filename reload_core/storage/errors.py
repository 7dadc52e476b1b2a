"""Why a storage request is refused: the RELOAD error code to answer with (RFC 6940 §6.3.3.1).

:class:`StorageError` is raised by the pure storage logic (the data store, access control)
and by the client API when the responsible peer answers with an error; ``error_info`` is
the body §7.4.1.2 prescribes for some codes (a StoreAns for
``Error_Generation_Counter_Too_Low``, an UnknownKinds list for ``Error_Unknown_Kind``).
"""

from __future__ import annotations

from reload_core.wire.codes import ErrorCode


class StorageError(Exception):
    """A storage operation failed with ``code``; ``reason`` is for people, ``error_info``
    for the ErrorResponse (§6.3.3.1)."""

    def __init__(self, code: ErrorCode | int, reason: str, error_info: bytes = b"") -> None:
        self.code = code
        self.reason = reason
        self.error_info = error_info
        super().__init__(str(self))

    @property
    def code_name(self) -> str:
        return self.code.name if isinstance(self.code, ErrorCode) else f"error {int(self.code):#x}"

    def __str__(self) -> str:
        return f"{self.code_name}: {self.reason}"


def forbidden(reason: str) -> StorageError:
    return StorageError(ErrorCode.Error_Forbidden, reason)


__all__ = ["StorageError", "forbidden"]

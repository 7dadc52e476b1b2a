"""Errors of the SIP Usage for RELOAD (RFC 7904), each with the reason in words."""

from __future__ import annotations

from reload_core.wire.codes import ErrorCode


class SipUsageError(Exception):
    """Base of the SIP Usage's errors."""


class RegistrationRefused(SipUsageError):
    """We will not store this registration: RFC 7904 §3.3 would refuse it (the AoR's
    domain is outside the overlay's restrictions, or the AoR is not our certificate's
    user). ``code`` is the error the storing peer would answer with."""

    def __init__(self, reason: str, code: ErrorCode = ErrorCode.Error_Forbidden) -> None:
        self.reason = reason
        self.code = code
        super().__init__(reason)


class SipConnectError(SipUsageError):
    """An AppAttach for SIP did not give a usable connection (RFC 7904 §5.1): the request
    failed (``code``, the RELOAD error, when there was one), ICE or DTLS failed, or the far
    end did not prove the Node-ID of the Destination List's terminal entry."""

    def __init__(self, reason: str, code: ErrorCode | int | None = None) -> None:
        self.reason = reason
        self.code = code
        super().__init__(reason)


class SipConnectionClosed(SipUsageError):
    """The SIP connection is closed (``reason`` says by whom or why)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


__all__ = ["RegistrationRefused", "SipConnectError", "SipConnectionClosed", "SipUsageError"]

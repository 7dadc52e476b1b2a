"""Why an enrollment was refused: the four tokens of RFC 6940 §11.3.

The enrollment server answers a refused certificate request with ``403 Forbidden`` and a
``text/plain`` body of exactly one token; a client that gets any other body treats it
as a failure for an unknown reason (§11.3).
"""

from __future__ import annotations

from enum import StrEnum


class EnrollmentToken(StrEnum):
    """The 403 body tokens of §11.3, spelled exactly as on the wire."""

    failed_authentication = "failed_authentication"
    username_not_available = "username_not_available"
    Node_IDs_not_available = "Node-IDs_not_available"
    bad_CSR = "bad_CSR"


_DESCRIPTIONS = {
    EnrollmentToken.failed_authentication: "the account name and password were not valid",
    EnrollmentToken.username_not_available: "the user name requested in the CSR is not allowed",
    EnrollmentToken.Node_IDs_not_available: "the number of Node-IDs requested is not allowed",
    EnrollmentToken.bad_CSR: "the certificate signing request was not acceptable",
}


class EnrollmentError(Exception):
    """A certificate request that did not yield a certificate.

    ``token`` is the §11.3 reason, or ``None`` for a failure for an unknown reason (an
    unknown token, another HTTP status, an unreachable server); ``detail`` says more.
    """

    def __init__(self, token: EnrollmentToken | None, detail: str = "") -> None:
        self.token = token
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.token is None:
            return f"enrollment failed: {self.detail or 'unknown reason'}"
        text = f"enrollment refused ({self.token.value}): {_DESCRIPTIONS[self.token]}"
        return f"{text}: {self.detail}" if self.detail else text

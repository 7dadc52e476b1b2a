"""Errors of the SIP layer, h11-style: the peer's mistakes apart from ours.

A peer's malformed message raises :class:`RemoteProtocolError` carrying the status code to
answer a request with (RFC 3261 §21.4: 400 Bad Request, 505 for another SIP version §8.2.2.x,
416 for an unsupported URI scheme §8.2.2.1, 513 for a message too large §21.5.13) and a
reason phrase saying what is wrong and where, which can go on the wire as is.
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every error the SIP layer raises on purpose."""


class RemoteProtocolError(SipError):
    """The peer sent something malformed.

    ``status`` is the response code to answer a request with; ``reason`` is a short
    phrase (one line, no control characters) usable as that response's reason phrase.
    ``raw`` is the message's bytes when the parser had them, so the transport can build
    the error response (see :func:`app.sip.message.error_response_for`).
    """

    def __init__(self, status: int, reason: str, *, raw: bytes = b"") -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.raw = raw


class LocalProtocolError(SipError):
    """Our own misuse of the API: a bug on our side, never caused by a peer."""

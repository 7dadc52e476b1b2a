"""The UAS core's checks of a new request (RFC 3261 §8.2), as pure functions.

Each returns None when the request passes, or the :class:`Refusal` to answer with.
The order the UA core applies them is §8.2's: method (§8.2.1), header inspection
(§8.2.2: URI scheme, Request-URI, merged requests), extensions (§8.2.2.3), content
(§8.2.3). Caller identity (RFC 7904 §8.2.3) is in :func:`identity_of`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from app.sip.errors import RemoteProtocolError
from app.sip.events import RemoteIdentity
from app.sip.headers import parse_token_list
from app.sip.message import SipRequest
from app.sip.uri import SipUri

#: Methods this UA implements (§20.5 Allow): RFC 3261's, MESSAGE (RFC 3428), INFO
#: (RFC 6086), REFER (RFC 3515) and the NOTIFY of its implicit subscription.
ALLOWED: Final = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "INFO", "REFER", "NOTIFY")
ALLOW_HEADER: Final = ", ".join(ALLOWED)

#: Methods we know of but do not do: 405 (§8.2.1). Anything else unknown: 501 (§21.5.2).
KNOWN_NOT_ALLOWED: Final = frozenset({"REGISTER", "SUBSCRIBE", "PUBLISH", "UPDATE", "PRACK"})

#: Option tags we support (§8.2.2.3); none so far, so any Require is refused with 420.
SUPPORTED: Final[frozenset[str]] = frozenset()

#: Body types per method (§8.2.3); a method not listed takes any type (INFO: RFC 6086
#: leaves the type to the Info Package; NOTIFY is checked by the refer subscription).
ACCEPT: Final[dict[str, tuple[str, ...]]] = {
    "INVITE": ("application/sdp",),
    "MESSAGE": ("text/plain",),
    "ACK": ("application/sdp",),
}

CERTIFICATE_MISMATCH: Final = "From does not match the certificate's user"


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def check_method(method: str) -> Refusal | None:
    """§8.2.1: 405 with Allow for a method we know but do not do; 501 with Allow for a
    method we do not know (§21.5.2)."""
    if method in ALLOWED:
        return None
    status = 405 if method in KNOWN_NOT_ALLOWED else 501
    return Refusal(status, None, (("Allow", ALLOW_HEADER),))


def check_request_uri(request: SipRequest, local_users: Iterable[str]) -> Refusal | None:
    """§8.2.2.1: 416 for a scheme we do not handle; 404 for a user that is not ours
    (a Request-URI without a user part names this UA)."""
    uri = request.uri
    if not isinstance(uri, SipUri):
        return Refusal(416)
    if uri.user is not None and uri.user not in set(local_users):
        return Refusal(404)
    return None


def check_require(request: SipRequest) -> Refusal | None:
    """§8.2.2.3: 420 listing the Require option tags we do not support (not for ACK and
    CANCEL, whose Require is ignored)."""
    if request.method in ("ACK", "CANCEL"):
        return None
    tags = parse_token_list(request.headers.get_all("Require"), "Require")
    unsupported = [t for t in tags if t.lower() not in SUPPORTED]
    if not unsupported:
        return None
    return Refusal(420, None, (("Unsupported", ", ".join(unsupported)),))


def check_content(request: SipRequest) -> Refusal | None:
    """§8.2.3: 415 with Accept for a body type the method does not take, with
    Accept-Encoding for a content coding we do not do (we do none)."""
    encodings = [e.strip().lower() for e in request.headers.get_all("Content-Encoding")]
    if any(e and e != "identity" for e in encodings):
        return Refusal(415, None, (("Accept-Encoding", "identity"),))
    if not request.body:
        return None
    accepted = ACCEPT.get(request.method)
    if accepted is None:
        return None
    ctype = request.content_type
    if ctype is None:
        # §7.4.1: a body with no Content-Type; refuse it saying what we take.
        return Refusal(415, "Content-Type missing", (("Accept", ", ".join(accepted)),))
    if ctype in accepted or (request.method == "MESSAGE" and ctype.startswith("text/")):
        return None
    return Refusal(415, None, (("Accept", ", ".join(accepted)),))


def _split_user(user: str) -> tuple[str, str] | None:
    local, at, domain = user.rpartition("@")
    if not at or not local or not domain:
        return None
    return local, domain.lower()


def identity_of(
    request: SipRequest, verified_user: str | None, verified_node_id: bytes | None
) -> RemoteIdentity | None:
    """RFC 7904 §8.2.3 / DESIGN.md: the caller's identity for ``request``.

    With a verified certificate the identity is the certificate's user name and Node-ID,
    and the From AoR must name that user (user part exact, §19.1.4; host case-insensitive):
    None means it does not (answer 403). Without one, it is From's user@host, unverified.
    """
    try:
        uri = request.from_.uri
    except RemoteProtocolError:
        return None
    if isinstance(uri, SipUri):
        claimed = f"{uri.user}@{uri.host}" if uri.user is not None else uri.host
    else:
        claimed = str(uri)
    if verified_user is None:
        return RemoteIdentity(claimed, None, False)
    cert = _split_user(verified_user)
    mine = _split_user(claimed) if isinstance(uri, SipUri) and uri.user is not None else None
    if cert is None or mine is None or cert != mine:
        return None
    return RemoteIdentity(verified_user, verified_node_id, True)

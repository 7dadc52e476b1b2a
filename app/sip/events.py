"""What the SIP user agent tells its listeners: frozen events (h11-style).

Calls, transfers and requests are named by small integers (``call``, ``transfer``,
``request``) that the UA core hands out; the asyncio layer maps them to its objects.

Caller identity (RFC 7904 §8.2.3, DESIGN.md): :class:`RemoteIdentity` is the far end's
certificate (user name and Node-ID) when the transport verified one, never the From
header's; on plain transports it is the From AoR, marked ``verified=False``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from app.sip.message import SipResponse


@dataclass(frozen=True)
class RemoteIdentity:
    """Who is at the far end of a request or call."""

    user: str  # "alice@example.org": the certificate's rfc822Name, or From's user@host
    node_id: bytes | None  # the certificate's Node-ID (RFC 6940 §11.3), None if unverified
    verified: bool  # True only when ``user`` and ``node_id`` come from a verified certificate

    @property
    def aor(self) -> str:
        return f"sip:{self.user}"


class EndReason(enum.Enum):
    """Why a call ended (the status, when there is one, is in :class:`CallEnded`)."""

    LOCAL_HANGUP = "local hangup"  # we sent BYE (§15.1.1)
    REMOTE_HANGUP = "remote hangup"  # BYE received (§15.1.2)
    LOCAL_CANCEL = "cancelled"  # we cancelled before an answer (§9.1)
    REMOTE_CANCEL = "cancelled by caller"  # CANCEL received (§9.2)
    REJECTED = "rejected"  # a final 4xx-6xx: theirs on an outgoing call, ours on an incoming one
    REDIRECTED = "redirected"  # a 3xx; the Contacts are in CallEnded.contacts (§8.1.3.4)
    ANSWERED_ELSEWHERE = "answered elsewhere"  # our fork lost to another branch (§13.2.2.4)
    TIMEOUT = "timeout"  # no final response (408 / Timer B, §8.1.3.1) or INVITE Expires ran out
    TRANSPORT_ERROR = "transport error"  # 503 from the transport (§8.1.3.1)
    NO_ACK = "no ACK"  # our 2xx was never ACKed (§13.3.1.4): we sent BYE
    DIALOG_GONE = "dialog gone"  # 481/408 to a request inside the dialog (§12.2.1.2)


class CallDirection(enum.Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


@dataclass(frozen=True)
class IncomingCall:
    """A new INVITE (§13.3). ``offer`` is its SDP (None: the offer goes in our 2xx)."""

    call: int
    identity: RemoteIdentity
    request_uri: str
    to: str  # the AoR the caller dialled
    offer: bytes | None
    subject: str | None = None


@dataclass(frozen=True)
class CallRinging:
    """A 180 or 183 (§13.2.2.1) on an outgoing call, from the branch ``identity``."""

    call: int
    status: int
    reason: str
    identity: RemoteIdentity


@dataclass(frozen=True)
class CallAnswered:
    """Offer/answer done. ``early``: an answer in a provisional response (early media,
    the dialog is still early). Otherwise the dialog is confirmed: on an outgoing call the
    2xx came (and we ACKed it), on an incoming one its ACK came. ``sdp`` is the far end's
    answer to our offer when this message carried one (2xx or 183 body, or the ACK's when
    our 2xx made the offer), else None."""

    call: int
    early: bool
    sdp: bytes | None
    identity: RemoteIdentity


@dataclass(frozen=True)
class CallEnded:
    call: int
    reason: EndReason
    status: int | None = None
    phrase: str | None = None
    contacts: tuple[str, ...] = ()  # a 3xx's Contact URIs


@dataclass(frozen=True)
class ReInviteReceived:
    """A re-INVITE (§14.2): answer it with accept_reinvite/reject_reinvite."""

    call: int
    offer: bytes | None


@dataclass(frozen=True)
class ReInviteCompleted:
    """Our re-INVITE finished (§14.1): ``status`` 2xx with the answer in ``sdp``, or the
    failure (491 only after our glare retries ran out). Also sent when the ACK to a
    re-INVITE we answered carries the answer to the offer our 2xx made."""

    call: int
    status: int
    sdp: bytes | None


@dataclass(frozen=True)
class MessageReceived:
    """A MESSAGE (RFC 3428), in a call's dialog (``call``) or on its own (``call`` None)."""

    identity: RemoteIdentity
    call: int | None
    content_type: str
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class InfoReceived:
    """An INFO (RFC 6086) in a call's dialog."""

    call: int
    content_type: str | None
    body: bytes
    info_package: str | None


@dataclass(frozen=True)
class TransferRequested:
    """A REFER (RFC 3515) in a call: we answered 202; place the call to ``refer_to``
    with UserAgentCore.invite(..., transfer=(call, transfer)) or refuse it with
    fail_transfer (the NOTIFYs follow on their own)."""

    call: int
    transfer: int
    refer_to: str
    referred_by: str | None


@dataclass(frozen=True)
class TransferProgress:
    """On the transferor: the REFER's answer (``status`` 202 or its failure) and then each
    NOTIFY's message/sipfrag status line (RFC 3515 §2.4.5). ``final`` once it is over."""

    call: int
    transfer: int
    status: int
    reason: str
    final: bool


@dataclass(frozen=True)
class RequestDone:
    """The final response to a request we sent with UserAgentCore.request/send_in_dialog
    (a timeout is a 408 and a transport failure a 503, §8.1.3.1)."""

    request: int
    status: int
    reason: str
    response: SipResponse


UaEvent: TypeAlias = (
    IncomingCall
    | CallRinging
    | CallAnswered
    | CallEnded
    | ReInviteReceived
    | ReInviteCompleted
    | MessageReceived
    | InfoReceived
    | TransferRequested
    | TransferProgress
    | RequestDone
)

"""SIP dialogs (RFC 3261 §12): identifiers, sequence numbers, route set, remote target.

A :class:`Dialog` is plain state with the rules of §12.1 (creation on either side),
§12.2.1.1 (building a request inside it, loose and strict routing) and §12.2.2
(checking the remote CSeq). Which transport flow carries the dialog's requests is the
UA core's business: the dialog only remembers the peer handle it was made over.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from app.sip.errors import LocalProtocolError, RemoteProtocolError
from app.sip.headers import Headers, NameAddr
from app.sip.message import SipRequest, SipResponse
from app.sip.uri import SipUri, Uri


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class DialogId:
    """§12: Call-ID, local tag and remote tag."""

    call_id: str
    local_tag: str
    remote_tag: str


def contact_uri(message: SipRequest | SipResponse) -> Uri | None:
    """The URI of the first Contact (the remote target, §12.1.1/§12.1.2)."""
    values = message.headers.get_all("Contact")
    if not values:
        return None
    na = NameAddr.parse(values[0])
    if na.is_star or na.uri is None:
        return None
    return na.uri


def _route_set(values: Iterable[str]) -> tuple[NameAddr, ...]:
    return tuple(NameAddr.parse(v) for v in values)


# URI parameters that §19.1.1 does not allow in a Request-URI (strict routing, §12.2.1.1).
_NOT_IN_REQUEST_URI = ("method", "maddr", "ttl", "transport", "lr")


@dataclass(eq=False)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr  # our From in requests we send (tag included)
    remote_uri: NameAddr  # our To in requests we send (tag included)
    remote_target: Uri
    route_set: tuple[NameAddr, ...]
    local_seq: int | None
    remote_seq: int | None
    peer: Hashable  # the flow the dialog was made over (RFC 7904 §5.1: SIP stays on it)
    secure: bool = False
    state: DialogState = DialogState.EARLY
    caller: bool = False  # we sent the dialog-creating INVITE (we own the Call-ID: §14.1)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    # §12.1.1
    @classmethod
    def as_uas(cls, request: SipRequest, local_tag: str, peer: Hashable) -> Dialog:
        remote_tag = request.from_.tag
        if remote_tag is None:
            raise RemoteProtocolError(400, "From without tag")
        target = contact_uri(request)
        if target is None:
            raise RemoteProtocolError(400, "dialog-creating request without Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=request.to.with_tag(local_tag),
            remote_uri=request.from_,
            remote_target=target,
            route_set=_route_set(request.headers.get_all("Record-Route")),
            local_seq=None,
            remote_seq=request.cseq.seq,
            peer=peer,
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            caller=False,
        )

    # §12.1.2
    @classmethod
    def as_uac(cls, request: SipRequest, response: SipResponse, peer: Hashable) -> Dialog:
        remote_tag = response.to.tag
        local_tag = request.from_.tag
        if remote_tag is None or local_tag is None:
            raise RemoteProtocolError(400, "dialog-creating response without To tag")
        target = contact_uri(response)
        if target is None:
            # §12.1.2 needs a Contact; a 1xx without one still makes an early dialog
            # whose target we take from the Request-URI until a Contact arrives.
            if response.status >= 200:
                raise RemoteProtocolError(400, "2xx to INVITE without Contact")
            target = request.uri
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=request.from_,
            remote_uri=response.to,
            remote_target=target,
            route_set=tuple(reversed(_route_set(response.headers.get_all("Record-Route")))),
            local_seq=request.cseq.seq,
            remote_seq=None,
            peer=peer,
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            caller=True,
        )

    def refresh_from_response(self, response: SipResponse) -> None:
        """§12.1.2/§13.2.2.4: a later 1xx or the 2xx of the same dialog may carry the
        Contact (target refresh) and, the first time, the route set."""
        target = contact_uri(response)
        if target is not None:
            self.remote_target = target
        if self.state is DialogState.EARLY and response.status >= 200:
            self.route_set = tuple(reversed(_route_set(response.headers.get_all("Record-Route"))))
            self.state = DialogState.CONFIRMED

    def refresh_target(self, message: SipRequest | SipResponse) -> None:
        """Target refresh by a re-INVITE or its 2xx (§12.2, §14)."""
        target = contact_uri(message)
        if target is not None:
            self.remote_target = target

    def next_local_seq(self) -> int:
        """§12.2.1.1: the local sequence number goes up by one for each new request."""
        self.local_seq = 1 if self.local_seq is None else self.local_seq + 1
        return self.local_seq

    def accept_remote_seq(self, request: SipRequest) -> bool:
        """§12.2.2: a request with a lower CSeq than the last is out of order (500).
        ACK and CANCEL carry the CSeq of the request they belong to: not checked."""
        if request.method in ("ACK", "CANCEL"):
            return True
        seq = request.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def request_uri_and_routes(self) -> tuple[Uri, list[str]]:
        """§12.2.1.1: loose routing when the first route has ``lr``, else strict."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if isinstance(first.uri, SipUri) and first.uri.has_param("lr"):
            return self.remote_target, [str(r) for r in self.route_set]
        if not isinstance(first.uri, SipUri):
            raise LocalProtocolError("route set entry is not a SIP URI")
        params = tuple((k, v) for k, v in first.uri.params if k.lower() not in _NOT_IN_REQUEST_URI)
        uri = first.uri.replace(params=params, headers=())
        routes = [str(r) for r in self.route_set[1:]]
        routes.append(f"<{self.remote_target}>")
        return uri, routes

    def create_request(
        self,
        method: str,
        *,
        via: str,
        cseq: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> SipRequest:
        """A request within the dialog (§12.2.1.1). ``cseq`` is given for ACK and CANCEL,
        which reuse the INVITE's number; otherwise the local sequence number advances."""
        seq = self.next_local_seq() if cseq is None else cseq
        uri, routes = self.request_uri_and_routes()
        h = Headers()
        h.add("Via", via)
        h.add("Max-Forwards", "70")
        h.add("From", str(self.local_uri))
        h.add("To", str(self.remote_uri))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{seq} {method}")
        for r in routes:
            h.add("Route", r)
        for name, value in headers:
            h.add(name, value)
        return SipRequest(method, uri, h, body)

"""What request handlers receive and what request callers get back (RFC 6940 §6.3.3)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from reload_core.node.errors import RequestError
from reload_core.security.certificates import NodeCertificate
from reload_core.wire.message import Destination, Message, NodeDestination
from reload_core.wire.registry import WireStruct


@dataclass(slots=True)
class IncomingRequest:
    """A request delivered to this node, its signature verified (§6.3.4).

    ``signer_node_id`` is the Node-ID it was signed with (its certificate is ``signer``);
    ``previous_hop`` the Node-ID of the link it arrived on, None when this node sent it to
    itself. A handler may :meth:`defer` work to run once the response has been sent.
    """

    message: Message
    body: WireStruct
    signer: NodeCertificate
    signer_node_id: bytes
    previous_hop: bytes | None
    received_at: float
    _deferred: list[Callable[[], None]] = field(default_factory=list, repr=False)
    response_certificates: list[bytes] = field(default_factory=list, repr=False)

    @property
    def code(self) -> int:
        return int(self.message.message_contents.message_code)

    @property
    def transaction_id(self) -> int:
        return self.message.forwarding_header.transaction_id

    @property
    def via_list(self) -> tuple[Destination, ...]:
        return self.message.forwarding_header.via_list

    @property
    def direct(self) -> bool:
        """Whether it came straight from its signer over a link bound to the signer's
        Node-ID (§6.4.2.1, §6.4.2.2: Join and Leave must)."""
        return self.previous_hop == self.signer_node_id and not self.via_list

    def defer(self, work: Callable[[], None]) -> None:
        """Run ``work`` after the response (or error response) has been sent."""
        self._deferred.append(work)

    def add_response_certificates(self, certificates: Iterable[bytes]) -> None:
        """Put these DER certificates in the answer's certificate bucket too, e.g. those of
        the signers of stored data it carries (§6.3.4, §7.4.2.2)."""
        for der in certificates:
            if der not in self.response_certificates:
                self.response_certificates.append(der)

    def run_deferred(self) -> list[Callable[[], None]]:
        work, self._deferred = self._deferred, []
        return work


HandlerResult = WireStruct | Awaitable[WireStruct]
Handler = Callable[[IncomingRequest], HandlerResult]
"""A request handler: returns the answer body (the structure registered for the request
code + 1), or an awaitable of it; raises :class:`~reload_core.node.errors.RequestRejected`
to answer with an ErrorResponse."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful response: the decoded body, the whole message and who signed it."""

    body: WireStruct
    message: Message
    signer_node_id: bytes
    signer: NodeCertificate


Outcome = Answer | RequestError
OnDone = Callable[[Outcome], None]


def node_path(*node_ids: bytes) -> tuple[Destination, ...]:
    """A Destination List of Node-IDs (a source route, §6.2.1)."""
    return tuple(NodeDestination(n) for n in node_ids)


__all__ = ["Answer", "Handler", "HandlerResult", "IncomingRequest", "OnDone", "Outcome", "node_path"]

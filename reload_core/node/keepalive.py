"""Keepalives on idle overlay links, as RELOAD messages (RFC 6940 §6.5.3, §6.6.5).

§6.6.5 asks a TLS/TCP link to measure its RTT through the framing header, and a link that
carries nothing measures nothing: an idle link's failure would only show when the next
real message goes unacknowledged. So when a link has sent nothing for its keepalive
interval (:class:`~reload_core.links.framing.LinkIdle`), the node sends the neighbour at
its other end a Ping (§6.5.3: "Ping is used to test connectivity along a path"; here the
path is one hop), on that very link. The framing header acks the Ping like any message,
which gives the RTT sample, and an ack that never comes makes the link suspect after an
RTO and failed after the failure timeout (§6.6.5's 30 s), as for any message. The same
holds on DTLS/UDP links under simple reliability (§6.6.3.1), whose sender retransmits the
Ping. Every data frame on the wire is thus a RELOAD message.

The neighbour answers the Ping like any other. The Ping is not entered in the
transaction table: it is never retransmitted end to end (the link layer's acks are what
it is for), and its answer, matching no pending transaction, is dropped before its
signature is checked.
"""

from __future__ import annotations

from reload_core.node.envelope import build_message
from reload_core.node.settings import NodeSettings
from reload_core.security.signing import Signer
from reload_core.wire.codes import MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import MessageContents, NodeDestination
from reload_core.wire.registry import encode_struct

_PING_BODY = encode_struct(PingReq())


def keepalive_ping(settings: NodeSettings, signer: Signer, transaction_id: int, neighbour: bytes) -> bytes:
    """A signed PingReq from us to the Node-ID ``neighbour`` at the other end of a link."""
    message = build_message(
        settings,
        signer,
        transaction_id=transaction_id,
        destinations=(NodeDestination(neighbour),),
        contents=MessageContents(MessageCode.ping_req, _PING_BODY),
    )
    return message.to_bytes()


__all__ = ["keepalive_ping"]

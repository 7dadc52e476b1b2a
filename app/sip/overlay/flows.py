"""SIP flows over the overlay's AppAttach connections (RFC 7904 §5).

Every :class:`~reload_core.usages.sip.SipConnection` (made by our AppAttach or accepted
from another node's) becomes one :class:`OverlayFlow`: a
:class:`~app.sip.transport.DatagramConnectionTransport` with one reader task that hands
each DTLS record to the user agent, and a :class:`~app.sip.transport.Peer` carrying the
far end's certificate identity (``verified_user``, ``verified_node_id``), from which the
UA core takes the caller's identity and makes its RFC 7904 §8.2.3 From check. A
connection the SIP Usage hands out again (it pools them by Node-ID, §5.1: "a previously
established SIP connection MAY be used for a new call") keeps its flow: one reader per
connection, whichever side opened it.

What our messages say about where we are (RFC 7904 §5.1: "SIP messages carry the SIP URIs
of actual overlay endpoints (e.g., "sip:alice@dht.example.com") in the Via and Contact
headers, while the communication continues via the RELOAD connection"): the Via's
transport is ``DTLS`` (the AppAttach connection is DTLS over ICE) and its sent-by our
AoR's domain with the Application-ID as port (5060 SIP, 5061 SIPS), not an address of
the ICE path; the Contact is our GRUU (§6), which reaches this very device without a
Fetch.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Callable

from app.sip.transport import DatagramConnectionTransport, Deliver, Peer, TransportErrorHandler
from reload_core.usages.sip import SipConnection, SipScheme

log = logging.getLogger(__name__)

_numbers = itertools.count(1)


def message_kind(data: bytes) -> str:
    """The method of a request, or the status code of a response (``"SIP/2.0 180"`` ->
    ``"180"``), read from the start line without parsing the message."""
    first = data[:64].split(b"\r\n", 1)[0].split(b" ", 2)
    if len(first) >= 2 and first[0].upper().startswith(b"SIP/"):
        return first[1].decode("ascii", "replace")
    return first[0].decode("ascii", "replace") if first else ""


class OverlayFlow(DatagramConnectionTransport):
    """One SIP connection as a transport of the UA (see the module docstring). It counts
    what it sends: ``sent`` (messages by method or status) and ``last_size`` (bytes of
    the latest of each), so that message sizes on the wire can be reported."""

    def __init__(
        self,
        connection: SipConnection,
        deliver: Deliver,
        *,
        on_transport_error: TransportErrorHandler | None,
        local_host: str,
        on_send: Callable[[str, int], None] | None = None,
    ) -> None:
        # The key tells this connection from any earlier or later one to the same node
        # (the UA's transactions belong to the flow they started on).
        key = f"{connection.verified_node_id.hex()}/{connection.application}#{next(_numbers)}"
        super().__init__(
            connection,
            deliver,
            on_transport_error=on_transport_error,
            key=key,
            verified_user=connection.verified_user,
            verified_node_id=connection.verified_node_id,
            local_address=(local_host, connection.application),
            remote_address=connection.remote_address,
        )
        self.sip_connection = connection
        self.sent: Counter[str] = Counter()
        self.last_size: dict[str, int] = {}
        self._on_send = on_send

    @property
    def scheme(self) -> SipScheme:
        return self.sip_connection.scheme

    def send(self, data: bytes, peer: Peer) -> None:
        kind = message_kind(data)
        self.sent[kind] += 1
        self.last_size[kind] = len(data)
        if self._on_send is not None:
            self._on_send(kind, len(data))
        super().send(data, peer)

    def __repr__(self) -> str:
        return f"<OverlayFlow {self.peer.key} {self.sip_connection!r}>"


class OverlayFlows:
    """The flows of one UA, by connection and by peer key. ``sent`` and ``last_size``
    count what every flow, open or closed, sent (by method or status)."""

    def __init__(
        self,
        deliver: Deliver,
        on_transport_error: TransportErrorHandler | None,
        local_host: str,
        *,
        on_closed: Callable[[OverlayFlow], None] | None = None,
    ) -> None:
        self._deliver = deliver
        self._on_transport_error = on_transport_error
        self.local_host = local_host
        self._on_closed = on_closed
        self._by_connection: dict[SipConnection, OverlayFlow] = {}
        self._by_key: dict[str, OverlayFlow] = {}
        self._closed = False
        self.sent: Counter[str] = Counter()
        self.last_size: dict[str, int] = {}

    def _count(self, kind: str, size: int) -> None:
        self.sent[kind] += 1
        self.last_size[kind] = size

    def flow(self, connection: SipConnection) -> OverlayFlow:
        """The flow of ``connection``, started (reading) on first use."""
        flow = self._by_connection.get(connection)
        if flow is not None:
            return flow
        if self._closed:
            raise RuntimeError("the flows are closed")
        flow = OverlayFlow(
            connection,
            self._deliver,
            on_transport_error=self._on_transport_error,
            local_host=self.local_host,
            on_send=self._count,
        )
        self._by_connection[connection] = flow
        assert flow.peer.key is not None
        self._by_key[flow.peer.key] = flow
        flow.closed.add_done_callback(lambda _: self._forget(flow))
        flow.start()
        log.debug("SIP flow %s", flow)
        return flow

    def _forget(self, flow: OverlayFlow) -> None:
        self._by_connection.pop(flow.sip_connection, None)
        if flow.peer.key is not None:
            self._by_key.pop(flow.peer.key, None)
        if self._on_closed is not None:
            self._on_closed(flow)

    def of_peer(self, peer: object) -> OverlayFlow | None:
        """The flow a UA peer belongs to (None for a peer of another transport)."""
        if isinstance(peer, Peer) and isinstance(peer.owner, OverlayFlow):
            return peer.owner
        return None

    def get(self, key: str) -> OverlayFlow | None:
        return self._by_key.get(key)

    @property
    def all(self) -> tuple[OverlayFlow, ...]:
        return tuple(self._by_connection.values())

    async def close(self) -> None:
        """Close every flow and its connection."""
        self._closed = True
        flows = list(self._by_connection.values())
        await asyncio.gather(*(f.close() for f in flows), return_exceptions=True)


__all__ = ["OverlayFlow", "OverlayFlows", "message_kind"]

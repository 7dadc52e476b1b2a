"""``clients-permitted`` false (RFC 6940 §11.1): a peer that keeps no clients.

§11.1: "If the nodes are not allowed to remain clients after the initial join, the
element MUST be set to 'false'. There is currently no way for the overlay to enforce
this." The protocol has no message for it, so this is what one peer can do on its own.

Who is a client, seen from a peer: "a node that has connected to the overlay, but that
has not yet taken steps to insert itself into the overlay topology" (§4.2). The first way
of §4.2.1 connects it to the peer responsible for its Node-ID, exactly as a joining node
reaches its admitting peer (§10.5 step 2, an Attach to Resource-ID n+1): a node with a
link to us whose Node-ID lies in our range and that is not in our Routing Table is
either joining through us or a client, and time tells them apart: a joining node sends
its Join and becomes our predecessor (§10.5 steps 5-7). So, while the configuration says
false, such a node (a *pending* one) gets ``chord.join_timeout`` to join:

- meanwhile, of the requests it sends itself (an empty Via List: we are its first hop),
  those a join uses (Attach, Ping, RouteQuery, Join, Update, Leave: §10.5, §10.8, §10.9)
  are served as usual; any other is refused with ``Error_Incompatible_with_Overlay``
  (§6.3.3.1: "some other parameter that is inconsistent with the overlay
  configuration"): the node acts as a client, a role the configuration does not permit.
  (``Error_Forbidden`` is about the request itself, the requester's permission for it,
  §7.3; and ``Error_Incompatible_with_Overlay`` is one of the answers a peer on the path,
  as the client's peer is, may give, §6.3.2.)
- when the time is up and it has not joined, its links are closed: the peer does not
  keep client connections.

A client of §4.2.1's second way (connected to any peer, reached through Destination
Lists) cannot be told apart from a far peer that Attached to us for its Finger Table, and
is not caught. Our own node refuses to become a client of such an overlay
(:class:`~reload_core.node.client.ClientRole`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reload_core.ids import NodeId
from reload_core.links.base import TimerHandle
from reload_core.node.envelope import peek_message_code
from reload_core.wire.codes import MessageCode, is_request_code
from reload_core.wire.message import ForwardingHeader

if TYPE_CHECKING:
    from reload_core.node.node import Node

JOIN_METHODS = frozenset(
    {
        MessageCode.attach_req,
        MessageCode.ping_req,
        MessageCode.route_query_req,
        MessageCode.join_req,
        MessageCode.update_req,
        MessageCode.leave_req,
    }
)
"""Requests a joining node sends before it is in the ring (§10.5, §10.8, §10.9)."""

CLIENT_REFUSED = "clients-permitted is false (§11.1): join the overlay as a peer"


class ClientAdmission:
    """The peer's side of ``clients-permitted`` false (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._pending: dict[bytes, TimerHandle] = {}
        self.closed_clients = 0
        """Links closed because their node stayed a client."""

    @property
    def pending(self) -> frozenset[bytes]:
        """Nodes in our range that have yet to join (or to be found clients)."""
        return frozenset(self._pending)

    def _is_peer(self, node_id: bytes) -> bool:
        return NodeId.from_bytes(node_id) in self.node.topology.routing_table()

    def link_opened(self, node_id: bytes) -> None:
        """A first link to ``node_id`` is up: start its time to join if it may be a client."""
        node = self.node
        if node.settings.clients_permitted or node_id in self._pending or not node.is_joined:
            return
        if not node.is_responsible(node_id) or self._is_peer(node_id):
            return
        grace = node.settings.chord.join_timeout
        self._pending[node_id] = node.clock.call_later(grace, lambda: self._expire(node_id))

    def link_lost(self, node_id: bytes) -> None:
        """The last link to ``node_id`` is gone."""
        timer = self._pending.pop(node_id, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, node_id: bytes) -> None:
        self._pending.pop(node_id, None)
        node = self.node
        if node.closed or not node.is_connected(node_id) or self._is_peer(node_id):
            return
        self.closed_clients += 1
        node.log.info("%s did not join: closing its links (%s)", node_id.hex()[:8], CLIENT_REFUSED)
        node.close_links_to(node_id)

    def refusal(self, header: ForwardingHeader, data: bytes, payload_at: int, previous: bytes) -> str | None:
        """Why a message that came from ``previous`` is refused, or None to process it."""
        if not self._pending or previous not in self._pending or header.via_list:
            return None
        if self._is_peer(previous):  # it has joined: nothing more to watch
            self.link_lost(previous)
            return None
        code = peek_message_code(header, data, payload_at)
        if code is None or not is_request_code(code) or code in JOIN_METHODS:
            return None
        return CLIENT_REFUSED

    def close(self) -> None:
        for timer in self._pending.values():
            timer.cancel()
        self._pending.clear()


__all__ = ["CLIENT_REFUSED", "JOIN_METHODS", "ClientAdmission"]

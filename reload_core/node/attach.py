"""Attach over No-ICE overlay links (RFC 6940 §6.5.1, §6.5.1.11, §6.5.1.13).

With No-ICE there are no connectivity checks: "the DTLS or TLS handshake ... forms the
connectivity check", and "the node that sent the Attach request MUST be the TLS server.
The other node MUST be the TLS client". So:

- the requester sends an AttachReq (role "passive") whose candidate is its listening
  address, learns from the signed AttachAns which node answered, and waits for that node
  to connect; the link's certificate must carry that Node-ID (§6.5.1.11), which is how
  the waiting Attach is matched to the incoming link;
- the answerer replies (role "active") and dials the requester's candidate, insisting on
  the requester's Node-ID in its certificate; once the link is up it honours the
  request's ``send_update`` flag (§6.4.2.3).

Simultaneous Attaches between two nodes follow §6.5.1.2's tie-breaker: the node with the
smaller Node-ID abandons its own request and answers the other's; the larger one answers
``Error_In_Progress`` and waits for the connection its own request will bring. Full ICE
(aioice) is a later addition; an Attach offering only ICE candidates is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reload_core.links.base import Link, TimerHandle
from reload_core.node.errors import RequestError, RequestRejected
from reload_core.node.requests import Answer, IncomingRequest, Outcome
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.link_methods import (
    AnyIceCandidate,
    AttachAns,
    AttachReq,
    CandType,
    IceCandidate,
    usable_candidates,
)
from reload_core.wire.message import Destination, NodeDestination, ResourceDestination

if TYPE_CHECKING:
    from reload_core.node.node import Node

AttachDone = Callable[[bytes | None], None]
"""Told the Node-ID of the node the Attach connected us to, or None if it failed."""

HOST_PRIORITY = (126 << 24) | (65535 << 8) | 255
"""ICE priority of a host candidate of component 1 (RFC 8445 §5.1.2.1), as §6.5.1.1 carries it."""


@dataclass(slots=True)
class _Waiter:
    """An Attach waiting for a link from ``peer``. ``answered``: the peer sent its AttachAns
    and will connect (§6.5.1.13); else it said Error_In_Progress and its own Attach to us
    will bring the link (§6.5.1.2)."""

    on_done: AttachDone
    answered: bool
    timer: TimerHandle | None = None


@dataclass(slots=True)
class _Unanswered:
    transaction_id: int
    on_done: AttachDone


@dataclass(slots=True)
class _Rerouted:
    """An Attach source-routed through ``first_hop``, to send again if that hop is lost."""

    dest: bytes
    resource: bool
    first_hop: bytes
    send_update: bool
    on_done: AttachDone


@dataclass(slots=True)
class AttachManager:
    """The node's Attach state, both as requester and as answerer."""

    node: Node
    _unanswered: dict[bytes, _Unanswered] = field(default_factory=dict)
    _waiting: dict[bytes, list[_Waiter]] = field(default_factory=dict)
    _inbound: dict[bytes, bool] = field(default_factory=dict)
    _dialing: dict[Link, bytes] = field(default_factory=dict)
    _source_routed: dict[int, _Rerouted] = field(default_factory=dict)

    # ---------------------------------------------------------------- our candidates

    def candidates(self) -> tuple[IceCandidate, ...]:
        address = self.node.transport.address
        if address is None:
            return ()
        return (
            IceCandidate(
                addr_port=address,
                overlay_link=self.node.transport.link_type,
                foundation=b"1",
                priority=HOST_PRIORITY,
                type=CandType.host,
            ),
        )

    @staticmethod
    def _ice_credentials() -> tuple[bytes, bytes]:
        # No ICE runs, but the fields are filled as ICE would (RFC 8445 §5.3: 4+ and 22+ chars).
        return secrets.token_hex(4).encode(), secrets.token_hex(12).encode()

    # ---------------------------------------------------------------- requester

    def attach(
        self,
        dest: bytes,
        on_done: AttachDone,
        *,
        resource: bool,
        via: tuple[bytes, ...] = (),
        send_update: bool = False,
    ) -> None:
        """Attach to Node-ID ``dest`` (or to whoever is responsible for Resource-ID ``dest``),
        source-routed through ``via`` (§10.6); ``on_done`` gets the connected peer or None."""
        node = self.node
        if not resource and node.is_connected(dest):
            on_done(dest)
            return
        if not resource and dest in self._waiting:
            self._wait_for(dest, on_done)
            return
        ufrag, password = self._ice_credentials()
        body = AttachReq(ufrag, password, b"passive", self.candidates(), send_update)
        target: Destination = ResourceDestination(dest) if resource else NodeDestination(dest)
        dests = (*(NodeDestination(v) for v in via), target)
        state: dict[str, int] = {}

        def answered(outcome: Outcome) -> None:
            tid = state.get("tid", -1)
            self._source_routed.pop(tid, None)
            if not resource:
                entry = self._unanswered.get(dest)
                if entry is not None and entry.transaction_id == tid:
                    del self._unanswered[dest]
            timed_out = (
                isinstance(outcome, RequestError) and outcome.error_code == ErrorCode.Error_Request_Timeout
            )
            if via and timed_out:
                # The peer that named ``dest`` may have gone since (§10.6 routes through
                # it): one more try, routed conventionally.
                self.attach(dest, on_done, resource=resource, send_update=send_update)
                return
            self._answered(dest, resource, outcome, on_done)

        tid = node.send_request(dests, MessageCode.attach_req, body, answered)
        state["tid"] = tid
        if node.is_pending(tid):
            if via:
                self._source_routed[tid] = _Rerouted(dest, resource, via[0], send_update, on_done)
            if not resource:
                self._unanswered[dest] = _Unanswered(tid, on_done)

    def first_hop_lost(self, node_id: bytes) -> None:
        """The last link to ``node_id`` closed: Attaches source-routed through it cannot
        arrive, so send them again routed conventionally rather than wait for their timeout."""
        for tid, entry in list(self._source_routed.items()):
            if entry.first_hop != node_id:
                continue
            del self._source_routed[tid]
            self.node.cancel_request(tid)
            unanswered = self._unanswered.get(entry.dest)
            if unanswered is not None and unanswered.transaction_id == tid:
                del self._unanswered[entry.dest]
            self.attach(entry.dest, entry.on_done, resource=entry.resource, send_update=entry.send_update)

    def _answered(self, dest: bytes, resource: bool, outcome: Outcome, on_done: AttachDone) -> None:
        node = self.node
        if isinstance(outcome, Answer):
            peer = outcome.signer_node_id
            if peer == node.node_id:
                on_done(None)
            elif node.is_connected(peer):
                on_done(peer)
            else:
                self._wait_for(peer, on_done, answered=True)
        elif (
            isinstance(outcome, RequestError)
            and outcome.error_code == ErrorCode.Error_In_Progress
            and not resource
        ):
            # The other side is attaching to us (§6.5.1.2): its connection will come.
            if node.is_connected(dest):
                on_done(dest)
            else:
                self._wait_for(dest, on_done)
        else:
            on_done(None)

    def _wait_for(self, peer: bytes, on_done: AttachDone, *, answered: bool = False) -> None:
        waiter = _Waiter(on_done, answered)
        self._waiting.setdefault(peer, []).append(waiter)

        def expire() -> None:
            waiters = self._waiting.get(peer, [])
            if waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiting[peer]
                self.node.log.info("no connection from %s after its AttachAns", peer.hex()[:8])
                waiter.on_done(None)

        waiter.timer = self.node.clock.call_later(self.node.settings.attach_timeout, expire)

    def complete_waiters(self, peer: bytes) -> None:
        """A link to ``peer`` is up: every Attach waiting for it has succeeded."""
        for waiter in self._waiting.pop(peer, []):
            if waiter.timer is not None:
                waiter.timer.cancel()
            waiter.on_done(peer)
        entry = self._unanswered.pop(peer, None)
        if entry is not None:
            # Connected before its answer came (e.g. the other side dialed first).
            self.node.cancel_request(entry.transaction_id)
            entry.on_done(peer)

    # ---------------------------------------------------------------- answerer

    def handle_request(self, request: IncomingRequest) -> AttachAns:
        """The Attach handler (§6.5.1.2)."""
        node = self.node
        body = request.body
        assert isinstance(body, AttachReq)
        requester = request.signer_node_id
        if requester == node.node_id:
            raise RequestRejected(ErrorCode.Error_Invalid_Message, "an Attach from this node to itself")
        own = self._unanswered.get(requester)
        if own is not None:
            # §6.5.1.2 tie-breaker, Node-IDs compared as big-endian unsigned integers. An Attach
            # of ours that cannot arrive is not in progress: answer as the smaller node would.
            if node.node_id < requester or self._undeliverable(requester):
                del self._unanswered[requester]
                self._source_routed.pop(own.transaction_id, None)
                node.cancel_request(own.transaction_id)
                self._wait_for(requester, own.on_done)
            else:
                raise RequestRejected(ErrorCode.Error_In_Progress, "our Attach to you is in progress")
        elif any(w.answered for w in self._waiting.get(requester, ())) and not node.is_connected(requester):
            # §6.5.1.2: our Attach was answered and its connection is being made.
            raise RequestRejected(ErrorCode.Error_In_Progress, "our Attach to you is in progress")
        if node.is_connected(requester):
            if body.send_update:
                request.defer(lambda: node.connected_again(requester, send_update=True))
        else:
            candidate = self._pick(body.candidates)
            if candidate is None:
                raise RequestRejected(
                    ErrorCode.Error_Incompatible_with_Overlay,
                    "no host candidate of this overlay's No-ICE link protocol (full ICE is not supported)",
                )
            if requester not in self._inbound:
                link = node.transport.connect(candidate.addr_port, expected_node_id=requester)
                self._dialing[link] = requester
            self._inbound[requester] = self._inbound.get(requester, False) or body.send_update
        ufrag, password = self._ice_credentials()
        return AttachAns(ufrag, password, b"active", self.candidates(), False)

    def _undeliverable(self, node_id: bytes) -> bool:
        """Whether our Attach to ``node_id`` is dropped before it reaches it: a Node-ID in our
        own range is reached only over a direct connection (§6.1.1), so every route to it
        ends here. This is a joining node (§10.5) that a stale Update named to us: its
        Attach to Resource-ID n+1 (step 2) comes to us, and answering it Error_In_Progress
        would fail its join for as long as our own Attach is retransmitted."""
        node = self.node
        return node.is_responsible(node_id) and not node.is_connected(node_id)

    def _pick(self, candidates: tuple[AnyIceCandidate, ...]) -> IceCandidate | None:
        """The best host candidate of our link protocol; candidates of types we do not know
        (address, Overlay Link protocol) are skipped (§6.3.1.1, §6.5.1.1)."""
        link_type = self.node.transport.link_type
        usable = [
            c
            for c in usable_candidates(candidates)
            if c.overlay_link == link_type and c.type == CandType.host
        ]
        return max(usable, key=lambda c: c.priority) if usable else None

    # ---------------------------------------------------------------- link events

    def link_opened(self, peer: bytes) -> bool:
        """Returns whether ``peer``'s Attach asked us for an Update (§6.4.2.3)."""
        for link, who in list(self._dialing.items()):
            if who == peer:
                del self._dialing[link]
        return self._inbound.pop(peer, False)

    def link_closed(self, link: Link) -> None:
        peer = self._dialing.pop(link, None)
        if peer is not None and not any(p == peer for p in self._dialing.values()):
            self._inbound.pop(peer, None)  # our dial to an Attach requester failed

    def close(self) -> None:
        for waiters in self._waiting.values():
            for waiter in waiters:
                if waiter.timer is not None:
                    waiter.timer.cancel()
        self._waiting.clear()
        self._unanswered.clear()
        self._source_routed.clear()
        self._inbound.clear()
        self._dialing.clear()


__all__ = ["HOST_PRIORITY", "AttachDone", "AttachManager"]

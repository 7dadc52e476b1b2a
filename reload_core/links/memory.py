"""In-memory overlay links for tests and the simulator.

A :class:`MemoryNetwork` connects :class:`MemoryEndpoint` objects by name, on any
:class:`~reload_core.links.base.Clock` (a :class:`~reload_core.links.base.VirtualClock`
runs thousands of nodes in one process). Links carry encoded frames through the same
:class:`~reload_core.links.framing.FramingConnection` as TLS and DTLS: in stream mode the
bytes go through the stream deframer like TLS/TCP's (optionally cut into small segments),
in datagram mode each frame is a datagram under the stop-and-wait sender like DTLS's,
and a deterministic :class:`LossPattern` may drop some of them.

With ``framed=False`` (stream links only) a link hands each message whole to the other
end one latency later, with no framing header, acknowledgements or keepalives: what a
reliable, in-order stream gives the node, at half the events. The simulator uses it for
its lossless overlays, where the framing layer (§6.6.2) would only spend time.

Nothing is encrypted and the peer's Node-IDs are those its endpoint was registered
with: in memory the network itself vouches for identities. A dialed Node-ID is still
checked, as TLS checks the certificate.

A network may be one part of a network spread over several processes (``remote``, a
:class:`RemoteLinks`; see :mod:`reload_core.sim.parallel`): an endpoint another process
runs is reached by posting each thing that would cross the link (the dial, its answer,
each message or frame, the closing) to that process, to happen there one latency later.
The link's other end is then a :class:`RemotePeer`, an address in the other process.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from reload_core.links.base import (
    Clock,
    CloseCode,
    CloseReason,
    LinkHandler,
    LinkNotOpenError,
    LinkState,
    MessageTooLargeError,
    TimerHandle,
)
from reload_core.links.framing import FramedLink, LinkConfig
from reload_core.wire.codes import OverlayLinkType
from reload_core.wire.framing import DATA_HEADER_LEN, FramedMessageType

if TYPE_CHECKING:
    from reload_core.security.certificates import NodeCertificate

# ---------------------------------------------------------------- loss


class LossPattern(Protocol):
    """Decides, frame by frame in sending order, which frames one direction drops."""

    def drops(self, frame: bytes) -> bool: ...


_ALL_KINDS = frozenset({FramedMessageType.data, FramedMessageType.ack})


class NoLoss:
    def drops(self, frame: bytes) -> bool:
        return False


class RandomLoss:
    """Drops each frame of the given kinds with probability ``rate``, from a seeded PRNG,
    so a run is reproducible."""

    def __init__(self, rate: float, seed: int = 0, kinds: Iterable[FramedMessageType] = _ALL_KINDS) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("loss rate must be in [0, 1]")
        self.rate = rate
        self.kinds = frozenset(kinds)
        self._rng = random.Random(seed)

    def drops(self, frame: bytes) -> bool:
        return bool(frame) and frame[0] in self.kinds and self._rng.random() < self.rate


class DropFrames:
    """Drops the frames whose index, counting only frames of the given kinds from 0, is
    in ``indices``; ``dropped`` records them."""

    def __init__(self, indices: Iterable[int], kinds: Iterable[FramedMessageType] = _ALL_KINDS) -> None:
        self.indices = frozenset(indices)
        self.kinds = frozenset(kinds)
        self.count = 0
        self.dropped: list[bytes] = []

    def drops(self, frame: bytes) -> bool:
        if not frame or frame[0] not in self.kinds:
            return False
        index = self.count
        self.count += 1
        if index in self.indices:
            self.dropped.append(frame)
            return True
        return False


LossFactory = Callable[[str, str], LossPattern]
"""Makes the pattern for one direction of one link: (from address, to address)."""


class RemoteLinks(Protocol):
    """The other processes of a network spread over several (see the module docstring)."""

    @property
    def worker(self) -> int:
        """This process's number."""
        ...

    def owner(self, address: str) -> int | None:
        """The process that runs the endpoint at ``address``; None for this one."""
        ...

    def post(self, when: float, worker: int, target: int | None, method: str, args: tuple[Any, ...]) -> None:
        """Have process ``worker`` call ``method(*args)`` at time ``when`` on its link
        ``target``, or on its network for None (see :meth:`MemoryNetwork.deliver_remote`)."""
        ...


class RemotePeer:
    """The other end of a link, in another process: its number and the link's there."""

    __slots__ = ("link_id", "worker")

    def __init__(self, worker: int, link_id: int) -> None:
        self.worker = worker
        self.link_id = link_id


# ---------------------------------------------------------------- network


class MemoryNetwork:
    """Endpoints by name, links between them with one-way ``latency`` seconds.

    ``stream=True`` gives TLS/TCP-like links (reliable, in order; ``segment_size`` cuts
    the byte stream into pieces of at most that many bytes); False gives DTLS-like
    datagram links with simple reliability, subject to ``loss``.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        latency: float = 0.001,
        stream: bool = True,
        config: LinkConfig | None = None,
        loss: LossFactory | None = None,
        segment_size: int | None = None,
        framed: bool = True,
        remote: RemoteLinks | None = None,
    ) -> None:
        if stream and loss is not None:
            raise ValueError("a stream link does not lose frames; use stream=False or partition()")
        if not framed and (not stream or segment_size):
            raise ValueError("only whole-message stream links can go without framing")
        self.clock = clock
        self.latency = latency
        self.stream = stream
        self.config = config or LinkConfig()
        self.loss: LossFactory = loss or (lambda src, dst: NoLoss())
        self.segment_size = segment_size
        self.framed = framed
        self._endpoints: dict[str, MemoryEndpoint] = {}
        self._blocked: set[frozenset[str]] = set()
        self.remote = remote
        self._links_by_id: dict[int, MemoryLink] = {}  # only with remote: links by number
        self._next_link_id = 0
        # Traffic counters over every link of the network, for simulations' figures.
        self.frames_sent = 0
        self.messages_sent = 0  # data frames with a message in them (keepalive Pings too)

    def endpoint(
        self,
        address: str,
        node_ids: bytes | tuple[bytes, ...],
        handler: LinkHandler,
        *,
        config: LinkConfig | None = None,
        accept: bool = True,
    ) -> MemoryEndpoint:
        """Register a node at ``address``; with ``accept`` it takes incoming links."""
        if address in self._endpoints:
            raise ValueError(f"address {address!r} is taken")
        ids = (node_ids,) if isinstance(node_ids, bytes) else tuple(node_ids)
        ep = MemoryEndpoint(self, address, ids, handler, config or self.config, accept)
        self._endpoints[address] = ep
        return ep

    def partition(self, a: str, b: str) -> None:
        """Silently drop everything between ``a`` and ``b`` from now on (both ways)."""
        self._blocked.add(frozenset((a, b)))

    def heal(self, a: str, b: str) -> None:
        self._blocked.discard(frozenset((a, b)))

    def blocked(self, a: str, b: str) -> bool:
        return bool(self._blocked) and frozenset((a, b)) in self._blocked

    def _lookup(self, address: str) -> MemoryEndpoint | None:
        return self._endpoints.get(address)

    def _forget(self, ep: MemoryEndpoint) -> None:
        if self._endpoints.get(ep.address) is ep:
            del self._endpoints[ep.address]

    def _post(self, peer: MemoryLink | RemotePeer, method: str, *args: Any) -> None:
        """``peer.method(*args)`` one latency from now, wherever ``peer`` is."""
        if isinstance(peer, RemotePeer):
            assert self.remote is not None
            self.remote.post(self.clock.time() + self.latency, peer.worker, peer.link_id, method, args)
        else:
            self.clock.call_later(self.latency, partial(getattr(peer, method), *args))

    def _register(self, link: MemoryLink) -> int:
        link_id = self._next_link_id
        self._next_link_id += 1
        if self.remote is not None:
            self._links_by_id[link_id] = link
        return link_id

    def deliver_remote(self, target: int | None, method: str, args: tuple[Any, ...]) -> None:
        """What another process posted (:meth:`RemoteLinks.post`) happens now."""
        if target is None:
            if method == "_remote_connect":
                self._remote_connect(*args)
            return
        link = self._links_by_id.get(target)
        if link is not None:
            getattr(link, method)(*args)
        elif method == "_remote_accepted":
            # The dialing end gave up before the answer: the accepted end hears it close.
            worker, link_id, _ = args
            self._post(RemotePeer(worker, link_id), "_peer_closed")
        # Anything else for a link closed here would find it closed: nothing to do.

    def _remote_connect(
        self, worker: int, link_id: int, client_address: str, client_node_ids: tuple[bytes, ...], address: str
    ) -> None:
        """A dial from another process reaches ``address`` (see :meth:`_connect`)."""
        client = RemotePeer(worker, link_id)
        server = self._accept(client, client_address, address)
        if server is None:
            return
        assert self.remote is not None
        self._post(client, "_remote_accepted", self.remote.worker, server.link_id, server.endpoint.node_ids)
        server._start_framing(client_node_ids)

    def _connect(self, client: MemoryLink, address: str) -> None:
        """The connection attempt reaches ``address`` (one latency after the dial)."""
        if client.state is not LinkState.CONNECTING or self.blocked(client.local_address, address):
            return  # timed out meanwhile, or lost: the handshake timer will tell
        server = self._accept(client, client.local_address, address)
        if server is None:
            return
        client.peer = server
        client.loss = self.loss(client.local_address, address)
        # Scheduled first so that it precedes anything the server sends on opening.
        node_ids = server.endpoint.node_ids
        self.clock.call_later(self.latency, lambda: client._handshake_done(node_ids))
        server._start_framing(client.endpoint.node_ids)

    def _accept(
        self, client: MemoryLink | RemotePeer, client_address: str, address: str
    ) -> MemoryLink | None:
        """The endpoint at ``address`` takes a dial from ``client``: the accepted end, not yet
        open; None (the dialer told, unless the endpoint vanished silently) if it cannot."""
        server_ep = self._lookup(address)
        if server_ep is None or server_ep.crashed:
            if server_ep is None or server_ep.fin_on_crash:
                self._post(client, "_fail_connect", CloseCode.CONNECT_FAILED, f"nobody at {address!r}")
            return None
        if not server_ep.accepting:
            self._post(client, "_fail_connect", CloseCode.CONNECT_FAILED, f"{address!r} does not accept")
            return None
        server = MemoryLink(server_ep, address=client_address, expected_node_id=None, dialed=False)
        server.peer = client
        server.loss = self.loss(address, client_address)
        server_ep._links[server] = None
        return server


class MemoryEndpoint:
    """One node on a :class:`MemoryNetwork`: a connector and a listener in one."""

    def __init__(
        self,
        network: MemoryNetwork,
        address: str,
        node_ids: tuple[bytes, ...],
        handler: LinkHandler,
        config: LinkConfig,
        accepting: bool,
    ) -> None:
        self.network = network
        self.address = address
        self.node_ids = node_ids
        self.handler = handler
        self.config = config
        self.accepting = accepting
        self.crashed = False
        self.fin_on_crash = False
        # Insertion-ordered (not a set of objects hashed by address), so that crash() and
        # close_links() act in the same order in every run of a seeded simulation.
        self._links: dict[MemoryLink, None] = {}

    @property
    def links(self) -> frozenset[MemoryLink]:
        """Links of this endpoint not yet closed."""
        return frozenset(link for link in self._links if link.state is not LinkState.CLOSED)

    def connect(self, address: str, expected_node_id: bytes | None = None) -> MemoryLink:
        if self.crashed:
            raise RuntimeError(f"endpoint {self.address!r} has crashed")
        link = MemoryLink(self, address=address, expected_node_id=expected_node_id, dialed=True)
        self._links[link] = None
        network = self.network
        link._handshake_timer = network.clock.call_later(
            self.config.handshake_timeout,
            lambda: link._fail_connect(CloseCode.HANDSHAKE_FAILED, "no answer"),
        )
        worker = network.remote.owner(address) if network.remote is not None else None
        if worker is None:
            network.clock.call_later(network.latency, lambda: network._connect(link, address))
        else:
            assert network.remote is not None
            args = (network.remote.worker, link.link_id, self.address, self.node_ids, address)
            network.remote.post(network.clock.time() + network.latency, worker, None, "_remote_connect", args)
        return link

    def close(self) -> None:
        """Stop accepting and leave the network; open links stay open."""
        self.accepting = False
        self.network._forget(self)

    def close_links(self) -> None:
        for link in list(self._links):
            link.close()

    def crash(self, *, fin: bool = False) -> None:
        """The node dies: its links stop without telling its handler. With ``fin`` its
        peers see the connections close (a killed process, whose OS closes the sockets);
        without, they hear nothing more (a host that lost power or network)."""
        self.crashed = True
        self.fin_on_crash = fin
        self.accepting = False
        for link in list(self._links):
            link._die(fin=fin)


class MemoryLink(FramedLink):
    """One end of an in-memory link."""

    def __init__(
        self, endpoint: MemoryEndpoint, *, address: str, expected_node_id: bytes | None, dialed: bool
    ) -> None:
        network = endpoint.network
        super().__init__(
            endpoint.handler,
            network.clock,
            endpoint.config,
            stream=network.stream,
            dialed=dialed,
            expected_node_id=expected_node_id,
        )
        self.link_type = OverlayLinkType.TLS_TCP_FH_NO_ICE if network.stream else OverlayLinkType.DTLS_UDP_SR
        self.endpoint = endpoint
        self.network = network
        self.link_id = network._register(self)
        self._remote_address = address
        self.peer: MemoryLink | RemotePeer | None = None
        self.loss: LossPattern = NoLoss()
        self._handshake_timer: TimerHandle | None = None
        self.frames_sent = 0
        self.frames_dropped = 0

    @property
    def local_address(self) -> str:
        return self.endpoint.address

    @property
    def remote_address(self) -> str:
        return self._remote_address

    # -- handshake

    def _handshake_done(self, server_node_ids: tuple[bytes, ...]) -> None:
        self._cancel_handshake_timer()
        if self.state is not LinkState.CONNECTING:
            return
        expected = self.expected_node_id
        if expected is not None and expected not in server_node_ids:
            self._finish(
                CloseReason(CloseCode.WRONG_NODE_ID, f"{self.remote_address!r} is not {expected.hex()}")
            )
            return
        self._start_framing(server_node_ids)

    def _remote_accepted(self, worker: int, link_id: int, server_node_ids: tuple[bytes, ...]) -> None:
        """The dial reached an endpoint of process ``worker``: its end is link ``link_id``."""
        server = RemotePeer(worker, link_id)
        if self.state is not LinkState.CONNECTING:
            self.network._post(server, "_peer_closed")  # timed out meanwhile
            return
        self.peer = server
        self.loss = self.network.loss(self.local_address, self._remote_address)
        self._handshake_done(server_node_ids)

    def _fail_connect(self, code: CloseCode, detail: str) -> None:
        self._cancel_handshake_timer()
        if self.state is LinkState.CONNECTING:
            self._finish(CloseReason(code, detail))

    def _cancel_handshake_timer(self) -> None:
        timer = self._handshake_timer
        if timer is not None:
            timer.cancel()
            self._handshake_timer = None

    # -- transport

    def _path_blocked(self) -> bool:
        return self.network.blocked(self.local_address, self._remote_address)

    def _transmit(self, chunks: list[bytes]) -> None:
        peer = self.peer
        network = self.network
        for chunk in chunks:
            self.frames_sent += 1
            network.frames_sent += 1
            if len(chunk) > DATA_HEADER_LEN and chunk[0] == FramedMessageType.data:
                network.messages_sent += 1
            if peer is None or self._path_blocked() or self.loss.drops(chunk):
                self.frames_dropped += 1
                continue
            for piece in self._segments(chunk):
                network._post(peer, "_deliver", piece)

    # -- unframed (framed=False): whole messages, no framing layer

    def send(self, message: bytes, *, transit: bool = False) -> None:
        if self.network.framed:
            super().send(message, transit=transit)
            return
        if self._state is not LinkState.OPEN:
            raise LinkNotOpenError(self._state, self._close_reason)
        if len(message) > self.config.max_message_size:
            raise MessageTooLargeError(
                f"message of {len(message)} bytes exceeds max-message-size {self.config.max_message_size}"
            )
        network = self.network
        self.frames_sent += 1
        network.frames_sent += 1
        network.messages_sent += 1
        peer = self.peer
        if peer is None or self._path_blocked():
            self.frames_dropped += 1
            return
        if isinstance(peer, MemoryLink):
            network.clock.call_later(network.latency, partial(peer._deliver_message, message))
        else:
            network._post(peer, "_deliver_message", message)

    def _deliver_message(self, message: bytes) -> None:
        if self._state is LinkState.OPEN and not self.endpoint.crashed and not self._path_blocked():
            self._notify("message_received", self, message)

    def _start_framing(
        self,
        remote_node_ids: tuple[bytes, ...],
        certificate: NodeCertificate | None = None,
        *,
        initial_rtt: float | None = None,
    ) -> None:
        if self.network.framed:
            super()._start_framing(remote_node_ids, certificate, initial_rtt=initial_rtt)
        else:
            self._opened(remote_node_ids, certificate)

    def _segments(self, chunk: bytes) -> list[bytes]:
        size = self.network.segment_size
        if not self.network.stream or not size:
            return [chunk]
        return [chunk[i : i + size] for i in range(0, len(chunk), size)]

    def _deliver(self, data: bytes) -> None:
        if self.endpoint.crashed or self._path_blocked():
            return
        self._receive(data)

    def _shutdown_transport(self, reason: CloseReason) -> None:
        self._cancel_handshake_timer()
        peer = self.peer
        if peer is None or self._path_blocked():
            return
        self.network._post(peer, "_peer_closed")

    def _peer_closed(self) -> None:
        if self.endpoint.crashed or self._path_blocked():
            return
        if self.state is LinkState.CONNECTING:
            self._fail_connect(CloseCode.HANDSHAKE_FAILED, "peer closed during the handshake")
        else:
            self._transport_closed(CloseReason(CloseCode.REMOTE))

    def _closed(self, reason: CloseReason, *, notify: bool = True) -> bool:
        closed = super()._closed(reason, notify=notify)
        if closed:
            self.endpoint._links.pop(self, None)  # a long-lived endpoint keeps no dead links
            self.network._links_by_id.pop(self.link_id, None)
        return closed

    def _die(self, *, fin: bool) -> None:
        self._cancel_handshake_timer()
        self._cancel_timer()
        if self.state is LinkState.CLOSED:
            return
        self._closed(CloseReason(CloseCode.TRANSPORT_ERROR, "endpoint crashed"), notify=False)
        peer = self.peer
        if fin and peer is not None:
            self.network._post(peer, "_peer_closed")


__all__ = [
    "DropFrames",
    "LossFactory",
    "LossPattern",
    "MemoryEndpoint",
    "MemoryLink",
    "MemoryNetwork",
    "NoLoss",
    "RandomLoss",
    "RemoteLinks",
    "RemotePeer",
]

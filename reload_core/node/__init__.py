"""The RELOAD overlay node (RFC 6940 §4.2, §6.1-§6.5, §6.7, §10).

Building and running a node::

    from reload_core.node import Node, NodeSettings, tls_transport

    settings = NodeSettings.from_configuration(config, document_bytes)
    node = Node(
        signer,            # security.Signer: key, certificate, the Node-ID it signs as
        resolver,          # security.CertificateResolver(overlay, roots, self_signed_digest)
        settings,
        tls_transport(tls_credentials, overlay_trust, config=LinkConfig(...)),
        # clock=AsyncioClock() by default; a VirtualClock with memory links for simulations
    )
    await node.start(IpAddressPort("0.0.0.0", 6084))   # listen; returns the advertised address
    node.start_alone()                                   # the first peer of a new overlay, or
    await node.join([bootstrap_address])                 # a peer joining through a bootstrap node, or
    await node.connect_as_client([bootstrap_address])    # a client (§4.2): no routing, no storage
    body, response = await node.request(NodeDestination(peer_id), MessageCode.ping_req, PingReq())
    await node.leave()                                   # graceful (§10.9), then close()
    await node.close()

Joining without an event loop
    ``node.begin_join(address)`` is the callback form of :meth:`Node.join` (the outcome is a
    ``StateChanged("joined")`` event, or ``"idle"`` on failure); with ``send_request``
    below, a node runs entirely from link callbacks and Clock timers, e.g. on a
    ``VirtualClock`` with in-memory links for large simulations.

Requests
    ``await node.request(destination, code, body)`` returns ``(answer body, response
    Message)``. ``destination`` is a ``NodeDestination``/``ResourceDestination``, a list of
    them (a source route), or bytes meaning a Resource-ID. Error answers raise
    :class:`RequestError` with the ErrorResponse's ``error_code`` (and ``error_info``,
    ``response``); after the fifth transmission's overlay-reliability-timer it is
    ``Error_Request_Timeout`` (§6.2.1). ``node.send_request(dests, code, body, on_done)``
    is the callback form (no event loop needed), ``on_done`` getting an :class:`Answer`
    or a :class:`RequestError`.

Serving requests
    ``node.register_handler(code, handler)``: ``handler(IncomingRequest)`` returns the
    answer body (or an awaitable of it) or raises :class:`RequestRejected(error_code,
    info)`. The request's signature is verified before the handler runs; the node
    answers retransmissions from its response cache (§6.2.1), checks the configuration
    sequence, critical options and extensions, and max_response_length. Built in: Ping,
    Probe, RouteQuery, Join, Leave, Update, ConfigUpdate, Attach (No-ICE).

Topology and storage hooks
    ``node.topology`` is the :class:`~reload_core.topology.ChordTopology` (read it: its
    ``is_responsible``, ``replica_set``, ``accepts_replica``...). Data movement plugs in
    through ``node.hooks`` (:class:`OverlayHooks`: ``hand_over``, ``replicate``,
    ``responsibility_changed``, ``num_resources``).

Observing
    ``node.node_id``, ``node.state`` (idle, joining, joined, connecting, client, left,
    closed), ``node.successors``/``predecessors``/``fingers`` (bytes, closest first),
    ``node.connected_nodes``, ``node.address``. ``node.add_listener(callback)`` gets the
    events of :mod:`reload_core.node.events` (``NeighborsChanged``, ``ConnectionChanged``,
    ``StateChanged``, ``ResponsibilityChanged``, ``ConfigurationChanged``,
    ``ConfigurationOutdated``);
    ``await wait_until(nodes, predicate, timeout)`` waits on those events for a condition.

Transports
    :func:`tls_transport` (TLS/TCP + framing header, No-ICE, §6.6.5) and
    :func:`memory_transport` (in-memory links, for tests and the simulator). A
    :data:`TransportFactory` gets the node (its LinkHandler) and its Node-IDs.
"""

from reload_core.node.chord_driver import ChordDriver, OverlayHooks
from reload_core.node.errors import JoinError, NodeClosedError, NodeError, RequestError, RequestRejected
from reload_core.node.events import (
    ConfigurationChanged,
    ConfigurationOutdated,
    ConnectionChanged,
    NeighborsChanged,
    NodeEvent,
    ResponsibilityChanged,
    StateChanged,
    wait_until,
)
from reload_core.node.node import Node
from reload_core.node.requests import Answer, Handler, IncomingRequest, Outcome, node_path
from reload_core.node.settings import NodeSettings
from reload_core.node.transport import (
    LinkTransport,
    MemoryTransport,
    TlsTransport,
    TransportFactory,
    memory_address,
    memory_transport,
    tls_transport,
)

__all__ = [
    "Answer",
    "ChordDriver",
    "ConfigurationChanged",
    "ConfigurationOutdated",
    "ConnectionChanged",
    "Handler",
    "IncomingRequest",
    "JoinError",
    "LinkTransport",
    "MemoryTransport",
    "NeighborsChanged",
    "Node",
    "NodeClosedError",
    "NodeError",
    "NodeEvent",
    "NodeSettings",
    "Outcome",
    "OverlayHooks",
    "RequestError",
    "RequestRejected",
    "ResponsibilityChanged",
    "StateChanged",
    "TlsTransport",
    "TransportFactory",
    "memory_address",
    "memory_transport",
    "node_path",
    "tls_transport",
    "wait_until",
]

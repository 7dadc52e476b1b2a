"""SIP transports on asyncio (RFC 3261 §18): UDP, TCP, TLS, and a datagram connection such
as the AppAttach DTLS connection of RFC 7904.

Every transport hands what it receives to one ``deliver(item, peer)`` callback, where
``item`` is a parsed :class:`~app.sip.message.SipRequest`/``SipResponse`` or the
:class:`~app.sip.errors.RemoteProtocolError` of a malformed message, and ``peer`` is the
:class:`Peer` it came from. A malformed request is answered by the transport itself (the
400/505 of :func:`~app.sip.message.error_response_for`, sent back where it came from, as
§18.2.2 does with ``rport``), or dropped when no response can be built; a malformed
response is dropped (§18.1.2). Such messages are logged at most once a minute per peer.
Nothing a peer sends raises into the event loop, and an exception in ``deliver`` is logged,
never propagated into the transport.

``Peer`` is a frozen dataclass, a dictionary key, and has the attributes the UA core wants
of a flow (``transport`` = Via token, ``reliable``, ``local_address``, ``remote_address``,
``verified_user``, ``verified_node_id``) plus ``send(data)``, which goes to the transport
that made it: ``transport.send(data, peer)``.

Streams (TCP, TLS): one listener, outgoing connections opened on the first send to an
address and reused for it, as are incoming ones for the replies (§18.3); a
:class:`~app.sip.message.StreamFramer` cuts messages; a connection idle for
``idle_timeout`` seconds is closed (§18: kept "for some implementation-defined duration").
A connection whose framing is lost (no Content-Length...) is answered and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

from app.sip.errors import RemoteProtocolError
from app.sip.message import (
    MAX_STREAM_MESSAGE,
    SipMessage,
    StreamFramer,
    error_response_for,
    parse_message,
)
from app.sip.uri import SipUri

log = logging.getLogger(__name__)

TransportKind = Literal["udp", "tcp", "tls", "dtls-appattach"]
#: The Via transport token of each kind (§18, §20.42; RFC 7904 §5: DTLS on AppAttach).
VIA_TRANSPORT: dict[str, str] = {"udp": "UDP", "tcp": "TCP", "tls": "TLS", "dtls-appattach": "DTLS"}
#: Seconds between two log lines about one peer's malformed messages.
LOG_INTERVAL = 60.0
#: Default idle time after which a stream connection is closed.
IDLE_TIMEOUT = 600.0


@dataclass(frozen=True)
class Peer:
    """The far end of a flow: where a message came from, or where to send one.

    ``key`` tells connections apart when the address does not (the AppAttach
    connection's name); None on socket transports. ``local`` is our address on the
    transport (for Via sent-by and Contact).
    """

    kind: TransportKind
    host: str
    port: int
    key: str | None = None
    local: tuple[str, int] = ("", 0)
    verified_user: str | None = None
    verified_node_id: bytes | None = None
    owner: SipTransport | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def transport(self) -> str:
        """The Via transport token: UDP, TCP, TLS or DTLS."""
        return VIA_TRANSPORT[self.kind]

    @property
    def reliable(self) -> bool:
        """Whether SIP's retransmissions are off (§17.1.1.2: only over unreliable ones)."""
        return self.kind in ("tcp", "tls")

    @property
    def local_address(self) -> tuple[str, int]:
        return self.local

    @property
    def remote_address(self) -> tuple[str, int] | None:
        return (self.host, self.port) if self.host else None

    def send(self, data: bytes) -> None:
        """Send ``data`` on the transport this peer belongs to."""
        if self.owner is None:
            log.warning("no transport to send to %s on", self)
            return
        self.owner.send(data, self)

    def __str__(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        where = f"{name}:{self.port}" if self.host else (self.key or "?")
        return f"{self.kind}:{where}"


Deliver = Callable[[SipMessage | RemoteProtocolError, Peer], None]
TransportErrorHandler = Callable[[Peer], None]


class SipTransport(Protocol):
    """What every transport offers."""

    @property
    def kind(self) -> TransportKind: ...

    @property
    def local_address(self) -> tuple[str, int]: ...

    def send(self, data: bytes, peer: Peer) -> None: ...

    async def close(self) -> None: ...


class AddressTransport(SipTransport, Protocol):
    """A socket transport, where a peer is an address."""

    def peer(self, host: str, port: int) -> Peer: ...


class _Receiver:
    """Parsing, answering and delivering, shared by the transports."""

    def __init__(self, deliver: Deliver, on_transport_error: TransportErrorHandler | None) -> None:
        self._deliver = deliver
        self._on_transport_error = on_transport_error
        self._logged: dict[tuple[str, str, int, str | None], tuple[float, int]] = {}
        #: Malformed messages received, and error responses sent for them (for tests, stats).
        self.malformed = 0
        self.answered = 0

    def _datagram(self, data: bytes, peer: Peer, reply: Callable[[bytes], None]) -> None:
        if not data.strip(b"\r\n"):
            return  # a CRLF keep-alive (RFC 5626 §4.4.1)
        try:
            item: SipMessage | RemoteProtocolError = parse_message(data)
        except RemoteProtocolError as exc:
            item = exc
        self._item(item, peer, reply)

    def _item(
        self, item: SipMessage | RemoteProtocolError, peer: Peer, reply: Callable[[bytes], None]
    ) -> None:
        if isinstance(item, RemoteProtocolError):
            self.malformed += 1
            answer = error_response_for(item.raw, item)
            if answer is not None:
                self.answered += 1
                reply(answer)
            self._log_malformed(peer, item, answered=answer is not None)
        try:
            self._deliver(item, peer)
        except Exception:
            log.exception("SIP deliver callback failed on a message from %s", peer)

    def _log_malformed(self, peer: Peer, exc: RemoteProtocolError, *, answered: bool) -> None:
        who = (peer.kind, peer.host, peer.port, peer.key)
        now = time.monotonic()
        last, suppressed = self._logged.get(who, (float("-inf"), 0))
        if now - last < LOG_INTERVAL:
            self._logged[who] = (last, suppressed + 1)
            return
        if len(self._logged) > 4096:  # forget old peers rather than grow without bound
            self._logged = {k: v for k, v in self._logged.items() if now - v[0] < LOG_INTERVAL}
        self._logged[who] = (now, 0)
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        log.warning(
            "malformed SIP message from %s: %s %s; %s%s",
            peer, exc.status, exc.reason, "answered" if answered else "dropped", more,
        )  # fmt: skip

    def _transport_error(self, peer: Peer) -> None:
        if self._on_transport_error is None:
            return
        try:
            self._on_transport_error(peer)
        except Exception:
            log.exception("SIP transport-error callback failed for %s", peer)


def _addr(sockaddr: Any) -> tuple[str, int]:
    return str(sockaddr[0]), int(sockaddr[1])


# ------------------------------------------------------------------ UDP


class UdpTransport(_Receiver, asyncio.DatagramProtocol):
    """One UDP socket: every datagram is one message (§18.1.1, §18.2.1)."""

    def __init__(self, deliver: Deliver, on_transport_error: TransportErrorHandler | None = None) -> None:
        _Receiver.__init__(self, deliver, on_transport_error)
        self._transport: asyncio.DatagramTransport | None = None
        self._local: tuple[str, int] = ("", 0)
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def create(
        cls,
        deliver: Deliver,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_transport_error: TransportErrorHandler | None = None,
    ) -> UdpTransport:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: cls(deliver, on_transport_error), local_addr=(host, port)
        )
        return protocol

    @property
    def kind(self) -> TransportKind:
        return "udp"

    @property
    def local_address(self) -> tuple[str, int]:
        return self._local

    def peer(self, host: str, port: int) -> Peer:
        """The peer at ``host:port`` (an IP address) on this socket."""
        return Peer("udp", host, port, local=self._local, owner=self)

    def send(self, data: bytes, peer: Peer) -> None:
        if self._transport is None or self._transport.is_closing():
            self._transport_error(peer)
            return
        try:
            self._transport.sendto(data, (peer.host, peer.port))
        except OSError as exc:  # e.g. a datagram above 64 KiB, an unroutable address
            log.info("UDP send to %s failed: %s", peer, exc)
            self._transport_error(peer)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            await asyncio.shield(self._closed)

    # asyncio.DatagramProtocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._local = _addr(transport.get_extra_info("sockname"))

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        host, port = _addr(addr)
        peer = Peer("udp", host, port, local=self._local, owner=self)
        self._datagram(data, peer, lambda answer: self.send(answer, peer))

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier datagram; asyncio does not say to whom it went.
        log.debug("UDP socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)


# ------------------------------------------------------------------ TCP / TLS


class _StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection of a :class:`StreamTransport`."""

    def __init__(self, owner: StreamTransport, address: tuple[str, int] | None) -> None:
        self.owner = owner
        self.address = address  # the far end; None for an incoming one until it is made
        self.framer = StreamFramer(owner.max_message_size)
        self.pending: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._last_activity = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.address is None:
            self.address = _addr(transport.get_extra_info("peername"))
            self.owner._register(self.address, self)
        self.peer = self.owner._peer(self.address)
        self._touch()
        pending, self.pending = self.pending, []
        for data in pending:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self._touch()
        assert self.peer is not None
        for item in self.framer.feed(data):
            self.owner._item(item, self.peer, self.write)
        if self.framer.broken and self.transport is not None:
            # The next message's start is unknown: answered above, now hang up (§18.3).
            self.transport.close()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self.address is not None:
            self.owner._unregister(self.address, self)
        if not self.closed.done():
            self.closed.set_result(None)
        if exc is not None and self.peer is not None:
            log.info("SIP %s connection to %s lost: %s", self.owner.kind, self.peer, exc)
            self.owner._transport_error(self.peer)

    def write(self, data: bytes) -> None:
        if self.transport is None:
            self.pending.append(data)  # still connecting
        elif self.transport.is_closing():
            if self.peer is not None:
                self.owner._transport_error(self.peer)
        else:
            self.transport.write(data)
            self._touch()

    def _touch(self) -> None:
        self._last_activity = time.monotonic()
        if self._idle_timer is None and self.owner.idle_timeout is not None:
            self._idle_timer = asyncio.get_running_loop().call_later(
                self.owner.idle_timeout, self._check_idle
            )

    def _check_idle(self) -> None:
        self._idle_timer = None
        timeout = self.owner.idle_timeout
        if timeout is None or self.transport is None or self.transport.is_closing():
            return
        idle = time.monotonic() - self._last_activity
        if idle >= timeout:
            log.debug("closing idle SIP connection to %s", self.peer)
            self.transport.close()
        else:
            self._idle_timer = asyncio.get_running_loop().call_later(timeout - idle, self._check_idle)


class StreamTransport(_Receiver):
    """TCP (``kind="tcp"``) or TLS (``kind="tls"``): a listener and outgoing connections."""

    def __init__(
        self,
        kind: Literal["tcp", "tls"],
        deliver: Deliver,
        *,
        on_transport_error: TransportErrorHandler | None = None,
        ssl_server: ssl.SSLContext | None = None,
        ssl_client: ssl.SSLContext | None = None,
        idle_timeout: float | None = IDLE_TIMEOUT,
        max_message_size: int = MAX_STREAM_MESSAGE,
    ) -> None:
        super().__init__(deliver, on_transport_error)
        if kind == "tls" and ssl_client is None and ssl_server is None:
            raise ValueError("a TLS transport needs an SSL context")
        self._kind: Literal["tcp", "tls"] = kind
        self.ssl_server = ssl_server
        self.ssl_client = ssl_client
        self.idle_timeout = idle_timeout
        self.max_message_size = max_message_size
        self._server: asyncio.Server | None = None
        self._local: tuple[str, int] = ("", 0)
        self._connections: dict[tuple[str, int], _StreamConnection] = {}
        self._all: set[_StreamConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def listen(
        cls,
        kind: Literal["tcp", "tls"],
        deliver: Deliver,
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> StreamTransport:
        """A transport with a listening socket (options as for the constructor)."""
        transport = cls(kind, deliver, **options)
        await transport.start(host, port)
        return transport

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self.kind == "tls" and self.ssl_server is None:
            raise ValueError("a TLS listener needs ssl_server")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: self._new_connection(None), host, port, ssl=self.ssl_server
        )
        self._local = _addr(self._server.sockets[0].getsockname())

    @property
    def kind(self) -> TransportKind:
        return self._kind

    @property
    def local_address(self) -> tuple[str, int]:
        return self._local

    @property
    def connection_count(self) -> int:
        return len(self._all)

    def peer(self, host: str, port: int) -> Peer:
        return self._peer((host, port))

    def _peer(self, address: tuple[str, int]) -> Peer:
        return Peer(self._kind, address[0], address[1], local=self._local, owner=self)

    def _new_connection(self, address: tuple[str, int] | None) -> _StreamConnection:
        conn = _StreamConnection(self, address)
        self._all.add(conn)
        conn.closed.add_done_callback(lambda _: self._all.discard(conn))
        return conn

    def _register(self, address: tuple[str, int], conn: _StreamConnection) -> None:
        self._connections.setdefault(address, conn)

    def _unregister(self, address: tuple[str, int], conn: _StreamConnection) -> None:
        if self._connections.get(address) is conn:
            del self._connections[address]

    async def wait_connection_closed(self, peer: Peer) -> None:
        """Until the connection to ``peer`` (if any) is closed."""
        conn = self._connections.get((peer.host, peer.port))
        if conn is not None:
            await asyncio.shield(conn.closed)

    def send(self, data: bytes, peer: Peer) -> None:
        address = (peer.host, peer.port)
        conn = self._connections.get(address)
        if conn is None:
            if self._kind == "tls" and self.ssl_client is None:
                log.info("no TLS client context to reach %s", peer)
                self._transport_error(peer)
                return
            conn = self._new_connection(address)
            conn.peer = self._peer(address)
            self._connections[address] = conn
            task = asyncio.get_running_loop().create_task(self._connect(conn, address))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        conn.write(data)

    async def _connect(self, conn: _StreamConnection, address: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(
                lambda: conn,
                address[0],
                address[1],
                ssl=self.ssl_client if self._kind == "tls" else None,
                server_hostname=address[0] if self._kind == "tls" else None,
            )
        except OSError as exc:  # refused, unreachable, TLS handshake or certificate failure
            log.info("SIP %s connection to %s:%s failed: %s", self._kind, *address, exc)
            self._unregister(address, conn)
            if not conn.closed.done():
                conn.closed.set_result(None)
            assert conn.peer is not None
            self._transport_error(conn.peer)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._all):
            if conn.transport is not None:
                conn.transport.close()
        waits = [asyncio.shield(c.closed) for c in self._all if c.transport is not None]
        if waits:
            await asyncio.wait(waits, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()


# ------------------------------------------------------------------ datagram connections


class DatagramConnection(Protocol):
    """A connected datagram service, such as reload_core's DtlsAppConnection."""

    async def recv(self) -> bytes: ...

    def send(self, message: bytes) -> None: ...

    def close(self) -> None: ...


class DatagramConnectionTransport(_Receiver):
    """SIP over one connected datagram flow: the AppAttach connection of RFC 7904 §5
    (DTLS over ICE). One record is one message; the flow is unreliable, so SIP's own
    retransmissions apply. The far end's certificate identity (user name and Node-ID,
    checked by the DTLS layer) is on the peer as ``verified_user``/``verified_node_id``.
    """

    def __init__(
        self,
        connection: DatagramConnection,
        deliver: Deliver,
        *,
        on_transport_error: TransportErrorHandler | None = None,
        key: str | None = None,
        verified_user: str | None = None,
        verified_node_id: bytes | None = None,
        local_address: tuple[str, int] = ("", 0),
        remote_address: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(deliver, on_transport_error)
        self.connection = connection
        certificate = getattr(connection, "remote_certificate", None)
        if certificate is not None:  # a DtlsAppConnection: its NodeCertificate (§11.3)
            verified_user = verified_user or getattr(certificate, "user_name", None)
            verified_node_id = verified_node_id or getattr(certificate, "node_id", None)
        if remote_address is None:
            remote_address = getattr(connection, "remote_address", None)
        host, port = remote_address if remote_address is not None else ("", 0)
        if key is None:
            key = verified_node_id.hex() if verified_node_id is not None else f"conn-{id(connection):x}"
        self.peer = Peer(
            "dtls-appattach", host, port, key, local_address, verified_user, verified_node_id, owner=self
        )
        self._reader: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        """Start reading (call once)."""
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def kind(self) -> TransportKind:
        return "dtls-appattach"

    @property
    def local_address(self) -> tuple[str, int]:
        return self.peer.local

    async def _read(self) -> None:
        lost = False
        try:
            while True:
                data = await self.connection.recv()
                self._datagram(data, self.peer, self._reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection closed (LinkNotOpenError) or failed
            log.info("SIP connection %s ended: %s", self.peer, exc)
            lost = True
        finally:
            if not self.closed.done():
                self.closed.set_result(None)
        if lost:
            self._transport_error(self.peer)

    def _reply(self, data: bytes) -> None:
        self.send(data, self.peer)

    def send(self, data: bytes, peer: Peer) -> None:
        if peer != self.peer:
            log.warning("%s is not the peer of connection %s", peer, self.peer)
            self._transport_error(peer)
            return
        try:
            self.connection.send(data)
        except Exception as exc:  # closed, or a record too large
            log.info("SIP send on %s failed: %s", self.peer, exc)
            self._transport_error(peer)

    async def close(self) -> None:
        self.connection.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if not self.closed.done():
            self.closed.set_result(None)


# ------------------------------------------------------------------ addresses


async def resolve_host(host: str, port: int) -> tuple[str, int]:
    """An IP address for ``host`` (A/AAAA, RFC 3263 §4.2 when a port or IP is given; no
    NAPTR/SRV), the first the resolver gives."""
    bare = host[1:-1] if host.startswith("[") else host
    try:
        ipaddress.ip_address(bare)
        return bare, port
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(bare, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"{host}: no address")
    return _addr(infos[0][4])


def uri_transport(uri: SipUri) -> TransportKind:
    """Which transport a URI asks for (§19.1.1 ``transport`` parameter, sips -> TLS)."""
    t = uri.transport
    if uri.scheme == "sips" or t == "tls":
        return "tls"
    if t == "tcp":
        return "tcp"
    return "udp"


async def peer_for_uri(uri: SipUri, transports: dict[str, AddressTransport]) -> Peer:
    """The peer to send a request for ``uri`` to (maddr, or host, and port; default 5060,
    5061 for sips), on the transport of ``transports`` its scheme and parameter name."""
    kind = uri_transport(uri)
    transport = transports.get(kind)
    if transport is None:
        raise OSError(f"no {kind} transport for {uri}")
    host, port = await resolve_host(uri.maddr or uri.host, uri.port or uri.default_port)
    return transport.peer(host, port)


__all__ = [
    "IDLE_TIMEOUT",
    "LOG_INTERVAL",
    "VIA_TRANSPORT",
    "AddressTransport",
    "DatagramConnection",
    "DatagramConnectionTransport",
    "Deliver",
    "Peer",
    "SipTransport",
    "StreamTransport",
    "TransportErrorHandler",
    "TransportKind",
    "UdpTransport",
    "peer_for_uri",
    "resolve_host",
    "uri_transport",
]

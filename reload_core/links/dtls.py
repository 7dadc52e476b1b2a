"""DTLS/UDP with simple reliability over an ICE connection (RFC 6940 §6.6.3, §6.6.4),
and the DTLS connections AppAttach gives applications (§6.5.2).

DTLS 1.2 [RFC6347] runs in pyOpenSSL over memory BIOs, with the engine, the context and
the overlay's certificate rules of :mod:`reload_core.links.tls` (:func:`make_context`,
:class:`TlsEngine`, :class:`OverlayTrust`): both ends present their overlay certificates,
the peer's chain must lead to the configuration's roots (or be an acceptable self-signed
certificate, §11.3.1), and "the certificate presented in the handshake [must match] the
identity of the other peer as found in the Attach message" (§6.5.1.13): a certificate
without the Node-ID we attached to is refused inside the handshake (an alert, no link).
"The node that sent the Attach request MUST be the TLS server" (§6.5.1.13): the ICE
offerer is the DTLS server.

Datagrams: the DTLS layer is told a ciphertext MTU (:data:`DEFAULT_DATAGRAM_SIZE`, sized
for a 1280-byte IPv6 path with a TURN ChannelData header), so it cuts handshake messages
to fit; the records it writes are packed into datagrams of at most that size and never
split. Handshake retransmissions follow OpenSSL's DTLS timer, driven by the link's clock.

:class:`DtlsSession` is the shared part: one DTLS association over a
:class:`DatagramChannel` (an :class:`~reload_core.links.ice.IceConnection`, or a lossy
in-memory channel in tests). :class:`DtlsLink` puts the framing header and the
stop-and-wait sender of §6.6.3.1 on top (:class:`~reload_core.links.framing.FramedLink`
in datagram mode: one frame per DTLS record, acks, retransmission after the RTO seeded
from the ICE check's RTT with doubling, five transmissions, suspect after three
unacknowledged retransmissions, keepalives). Messages that do not fit one record are
fragmented with §6.7 (:func:`~reload_core.wire.fragment.fragment_message`); the final
destination reassembles them. :class:`DtlsAppConnection` gives an application (SIP over
an AppAttach, RFC 7904 §5.1) the DTLS records themselves: a datagram service like SIP
over DTLS, authenticated by the far end's certificate.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto

from reload_core.links.base import (
    AsyncioClock,
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
from reload_core.links.tls import (
    OverlayTrust,
    TlsCredentials,
    TlsEngine,
    authenticate_peer,
    describe_ssl_error,
    make_context,
)
from reload_core.security.certificates import NodeCertificate
from reload_core.wire.buffer import DecodeError, EncodeError
from reload_core.wire.codes import OverlayLinkType
from reload_core.wire.context import WireContext
from reload_core.wire.fragment import fragment_message
from reload_core.wire.framing import DATA_HEADER_LEN, FramedMessageType

log = logging.getLogger(__name__)

DTLS1_2_VERSION = 0xFEFD
_OP_NO_QUERY_MTU = 0x1000
"""SSL_OP_NO_QUERY_MTU: a memory BIO cannot tell OpenSSL the path MTU; we do."""

DEFAULT_DATAGRAM_SIZE = 1200
"""Ciphertext bytes per UDP datagram: with IPv6 (40) + UDP (8) + TURN ChannelData (4)
headers it fits the 1280-byte minimum IPv6 MTU."""

DTLS_RECORD_HEADER_LEN = 13  # type, version, epoch, sequence_number (48 bits), length
MAX_RECORD_PLAINTEXT = 1 << 14

VIA_ALLOWANCE = 32
"""§6.7: fragments leave 32 bytes for the Via List to grow on later hops."""

DTLS_LINK_CONFIG = LinkConfig(initial_rto=0.5, min_rto=0.05, max_rto=60.0)
"""§6.6.3.1: 500 ms before any RTT is known; the RTO is "rounded up to the nearest
millisecond" rather than to a second. The 50 ms floor is the RFC 6298 clock-granularity
term for an asyncio event loop, whose callbacks run late by milliseconds under load: a
smaller RTO retransmits messages whose acks are merely queued."""

_AUTH_ALERT_WORDS = ("certificate", "unknown ca", "access denied")
_DATA_FRAME = bytes([FramedMessageType.data])


class DatagramChannel(Protocol):
    """What DTLS runs over: a connected, unreliable datagram service."""

    def start(self, on_datagram: Callable[[bytes], None], on_lost: Callable[[str], None]) -> None:
        """Deliver datagrams; ``on_lost`` once when the channel fails (not after close)."""

    def send(self, datagram: bytes) -> None: ...

    def close(self) -> None: ...

    @property
    def remote_address(self) -> tuple[str, int] | None: ...

    @property
    def rtt(self) -> float | None:
        """The RTT measured while the channel was set up (ICE's check), if any."""


def dtls_context(credentials: TlsCredentials, *, keylog_file: str | None = None) -> SSL.Context:
    """A DTLS 1.2 context for both roles, with :mod:`~reload_core.links.tls`'s verification
    hook (the connection's app data decides on the peer's certificate). Secrets go to
    ``keylog_file``, by default to ``$SSLKEYLOGFILE`` if set."""
    ctx = make_context(
        credentials,
        method=SSL.DTLS_METHOD,
        min_version=DTLS1_2_VERSION,
        max_version=DTLS1_2_VERSION,
        keylog_file=keylog_file,
    )
    ctx.set_options(_OP_NO_QUERY_MTU)
    return ctx


def split_records(data: bytes) -> list[bytes]:
    """Cut the DTLS layer's output into whole records (RFC 6347 §4.1). A truncated tail
    is kept as a last piece rather than dropped (it cannot happen with a memory BIO)."""
    records: list[bytes] = []
    i = 0
    while i < len(data):
        if len(data) - i < DTLS_RECORD_HEADER_LEN:
            records.append(data[i:])
            break
        length = int.from_bytes(data[i + 11 : i + 13], "big")
        end = i + DTLS_RECORD_HEADER_LEN + length
        records.append(data[i:end])
        i = end
    return records


def pack_datagrams(records: list[bytes], size: int) -> list[bytes]:
    """Records into datagrams of at most ``size`` bytes, in order; a record larger than
    ``size`` goes alone (IP fragments it)."""
    out: list[bytes] = []
    current = b""
    for record in records:
        if current and len(current) + len(record) > size:
            out.append(current)
            current = b""
        current += record
    if current:
        out.append(current)
    return out


# ---------------------------------------------------------------- peer verification


class PeerCheck:
    """Judges the peer's certificate chain during the handshake, by the overlay's rules
    (:meth:`OverlayTrust.authenticate`) and the Node-ID we attached to."""

    def __init__(
        self, trust: OverlayTrust, now: Callable[[], datetime], expected_node_id: bytes | None
    ) -> None:
        self.trust = trust
        self.now = now
        self.expected_node_id = expected_node_id
        self.verified: NodeCertificate | None = None
        self.failure: CloseReason | None = None
        self._chain: dict[int, bytes] = {}

    def verify(self, conn: SSL.Connection, cert: crypto.X509, depth: int) -> bool:
        der = cert.to_cryptography().public_bytes(Encoding.DER)
        if depth > 0:
            self._chain[depth] = der
            return True
        if self.verified is not None:
            return self.verified.der == der
        result = authenticate_peer(
            self.trust, der, self._chain.values(), conn, self.now(), self.expected_node_id
        )
        if isinstance(result, CloseReason):
            self.failure = result
            return False
        self.verified = result
        return True


# ---------------------------------------------------------------- the DTLS association


class DtlsSession:
    """One DTLS association over a :class:`DatagramChannel`.

    Tells its owner: ``on_open(certificate)`` once the handshake is done and the peer
    verified, ``on_record(plaintext)`` per application-data record, ``on_closed(reason)``
    once (not after :meth:`close`)."""

    def __init__(
        self,
        context: SSL.Context,
        check: PeerCheck,
        channel: DatagramChannel,
        clock: Clock,
        *,
        server_side: bool,
        handshake_timeout: float,
        datagram_size: int = DEFAULT_DATAGRAM_SIZE,
        on_open: Callable[[NodeCertificate], None],
        on_record: Callable[[bytes], None],
        on_closed: Callable[[CloseReason], None],
    ) -> None:
        self.check = check
        self.channel = channel
        self.clock = clock
        self.server_side = server_side
        self.datagram_size = datagram_size
        self._on_open = on_open
        self._on_record = on_record
        self._on_closed = on_closed
        self.engine = TlsEngine(context, server_side=server_side, app_data=self)
        self.engine.conn.set_ciphertext_mtu(datagram_size)
        self.open = False
        self.finished = False
        self.cleartext_limit = datagram_size - DTLS_RECORD_HEADER_LEN
        self.datagrams_sent = 0
        self.datagrams_received = 0
        self._retransmit_timer: TimerHandle | None = None
        self._handshake_timer: TimerHandle | None = clock.call_later(
            handshake_timeout, self._handshake_timeout
        )

    # pyOpenSSL's verify callback (via make_context) asks the app data.
    def _verify_certificate(self, conn: SSL.Connection, cert: crypto.X509, depth: int) -> bool:
        return self.check.verify(conn, cert, depth)

    def start(self) -> None:
        self.channel.start(self._datagram, self._lost)
        if not self.server_side:
            self._handshake_step()  # ClientHello

    # -- input

    def _datagram(self, data: bytes) -> None:
        if self.finished:
            return
        self.datagrams_received += 1
        self.engine.receive_ciphertext(data)
        if not self.open:
            self._handshake_step()
        if self.open and not self.finished:
            self._read_records()
        self._flush()

    def _handshake_step(self) -> None:
        try:
            done = self.engine.do_handshake()
        except SSL.Error as exc:
            self._flush()  # the alert
            self._fail(self.check.failure or self._classify(exc, CloseCode.HANDSHAKE_FAILED))
            return
        self._flush()
        if not done:
            return
        self._cancel_handshake_timer()
        verified = self.check.verified
        if verified is None or self.engine.peer_certificate_der() != verified.der:
            self._fail(CloseReason(CloseCode.AUTHENTICATION_FAILED, "peer certificate was not verified"))
            return
        # The handshake resets what OpenSSL knows of the MTU; tell it again.
        self.engine.conn.set_ciphertext_mtu(self.datagram_size)
        mtu = int(self.engine.conn.get_cleartext_mtu())
        if mtu > 0:
            self.cleartext_limit = mtu
        self.open = True
        self._on_open(verified)

    def _read_records(self) -> None:
        conn = self.engine.conn
        while not self.finished:
            try:
                data = conn.recv(MAX_RECORD_PLAINTEXT + 1)
            except SSL.WantReadError:
                return
            except SSL.ZeroReturnError:
                self._fail(CloseReason(CloseCode.REMOTE, "close_notify"))
                return
            except SSL.Error as exc:
                self._flush()
                self._fail(self._classify(exc, CloseCode.TRANSPORT_ERROR))
                return
            if not data:
                self._fail(CloseReason(CloseCode.REMOTE, "close_notify"))
                return
            self._on_record(data)

    def _lost(self, why: str) -> None:
        if self.finished:
            return
        code = CloseCode.TRANSPORT_ERROR if self.open else CloseCode.HANDSHAKE_FAILED
        self._fail(CloseReason(code, why), close_channel=False)

    # -- output

    def send_record(self, data: bytes) -> None:
        """One application-data record (raises SSL.Error if the DTLS layer refuses it)."""
        self.engine.conn.send(data)

    def flush(self) -> None:
        self._flush()

    def _flush(self) -> None:
        out = self.engine.ciphertext_to_send()
        if out:
            for datagram in pack_datagrams(split_records(out), self.datagram_size):
                self.datagrams_sent += 1
                self.channel.send(datagram)
        self._rearm_retransmit()

    def _rearm_retransmit(self) -> None:
        if self._retransmit_timer is not None:
            self._retransmit_timer.cancel()
            self._retransmit_timer = None
        if self.finished:
            return
        timeout = self.engine.conn.DTLSv1_get_timeout()
        if timeout is not None:
            self._retransmit_timer = self.clock.call_later(float(timeout), self._retransmit)

    def _retransmit(self) -> None:
        self._retransmit_timer = None
        if self.finished:
            return
        try:
            self.engine.conn.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self._fail(self._classify(exc, CloseCode.HANDSHAKE_FAILED))
            return
        self._flush()

    # -- ending

    def _handshake_timeout(self) -> None:
        self._handshake_timer = None
        if not self.open and not self.finished:
            self._fail(CloseReason(CloseCode.HANDSHAKE_FAILED, "DTLS handshake timed out"))

    def _cancel_handshake_timer(self) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    def _classify(self, exc: SSL.Error, default: CloseCode) -> CloseReason:
        detail = describe_ssl_error(exc)
        lowered = detail.lower()
        code = CloseCode.AUTHENTICATION_FAILED if any(w in lowered for w in _AUTH_ALERT_WORDS) else default
        return CloseReason(code, f"DTLS: {detail}")

    def _fail(self, reason: CloseReason, *, close_channel: bool = True) -> None:
        if self.finished:
            return
        self._end(close_notify=False, close_channel=close_channel)
        self._on_closed(reason)

    def close(self, *, close_notify: bool = True) -> None:
        """End the association (with a close_notify alert) and the channel; no callback."""
        self._end(close_notify=close_notify, close_channel=True)

    def _end(self, *, close_notify: bool, close_channel: bool) -> None:
        if self.finished:
            return
        if close_notify and self.engine.handshake_done:
            self.engine.shutdown()
            self._flush()
        self.finished = True
        self._cancel_handshake_timer()
        if self._retransmit_timer is not None:
            self._retransmit_timer.cancel()
            self._retransmit_timer = None
        if close_channel:
            self.channel.close()

    @property
    def protocol_version(self) -> str | None:
        return self.engine.protocol_version if self.engine.handshake_done else None

    @property
    def cipher(self) -> str | None:
        return self.engine.cipher if self.engine.handshake_done else None


# ---------------------------------------------------------------- the overlay link


class DtlsEndpoint:
    """Our node's DTLS credentials and rules, shared by its DTLS links and application
    connections."""

    def __init__(
        self,
        credentials: TlsCredentials,
        trust: OverlayTrust,
        handler: LinkHandler,
        *,
        config: LinkConfig | None = None,
        clock: Clock | None = None,
        wall_clock: Callable[[], datetime] | None = None,
        datagram_size: int = DEFAULT_DATAGRAM_SIZE,
        keylog_file: str | None = None,
    ) -> None:
        self.credentials = credentials
        self.trust = trust
        self.handler = handler
        self.config = config or DTLS_LINK_CONFIG
        self.clock: Clock = clock or AsyncioClock()
        self.wall_clock: Callable[[], datetime] = wall_clock or (lambda: datetime.now(UTC))
        self.datagram_size = datagram_size
        self.wire_context = WireContext(node_id_length=trust.node_id_length)
        self.context = dtls_context(credentials, keylog_file=keylog_file)
        self._links: set[DtlsLink] = set()
        self._apps: set[DtlsAppConnection] = set()

    @property
    def links(self) -> frozenset[DtlsLink]:
        return frozenset(self._links)

    def open_link(
        self, channel: DatagramChannel, *, server_side: bool, expected_node_id: bytes | None
    ) -> DtlsLink:
        """A DTLS/UDP-with-SR link over a connected channel; the handler hears
        ``link_opened`` or ``link_closed``."""
        link = DtlsLink(self, channel, server_side=server_side, expected_node_id=expected_node_id)
        self._links.add(link)
        link._start()
        return link

    def open_app(
        self, channel: DatagramChannel, *, server_side: bool, expected_node_id: bytes, application: int
    ) -> DtlsAppConnection:
        """An application's DTLS connection (AppAttach, §6.5.2) over a connected channel."""
        app = DtlsAppConnection(
            self, channel, server_side=server_side, expected_node_id=expected_node_id, application=application
        )
        self._apps.add(app)
        app._start()
        return app

    def close(self) -> None:
        for link in list(self._links):
            link.close()
        for app in list(self._apps):
            app.close()


class DtlsLink(FramedLink):
    """DTLS/UDP with SR over ICE (OverlayLinkType DTLS-UDP-SR, §6.6.4)."""

    link_type = OverlayLinkType.DTLS_UDP_SR

    def __init__(
        self,
        endpoint: DtlsEndpoint,
        channel: DatagramChannel,
        *,
        server_side: bool,
        expected_node_id: bytes | None,
    ) -> None:
        # Both ends of an ICE link know whom they attached to, so both are "dialed": the
        # node hears link_closed even for a link that never opened.
        FramedLink.__init__(
            self,
            endpoint.handler,
            endpoint.clock,
            endpoint.config,
            stream=False,
            dialed=True,
            expected_node_id=expected_node_id,
            ctx=endpoint.wire_context,
        )
        self.endpoint = endpoint
        self.channel = channel
        self.server_side = server_side
        self.fragmented_messages = 0
        self.messages_sent = 0
        self._sent_waiters: list[asyncio.Future[None]] = []
        self.data_frames_sent = 0
        """Data frames put on the wire: messages, their retransmissions and keepalives."""
        self.session = DtlsSession(
            endpoint.context,
            PeerCheck(endpoint.trust, endpoint.wall_clock, expected_node_id),
            channel,
            endpoint.clock,
            server_side=server_side,
            handshake_timeout=endpoint.config.handshake_timeout,
            datagram_size=endpoint.datagram_size,
            on_open=self._session_open,
            on_record=self._receive,
            on_closed=self._session_closed,
        )

    def _start(self) -> None:
        self.session.start()

    # -- Link API

    @property
    def remote_address(self) -> tuple[str, int] | None:
        return self.channel.remote_address

    async def wait_sent(self) -> None:
        """Until every message sent so far has been acknowledged (the stop-and-wait sender
        holds none); raises :class:`LinkNotOpenError` if the link closes first."""
        while self._state is LinkState.OPEN and self._framing is not None and self._framing.queued:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._sent_waiters.append(waiter)
            await waiter
        if self._state is not LinkState.OPEN:
            raise LinkNotOpenError(self._state, self._close_reason)

    def _receive(self, data: bytes) -> None:
        super()._receive(data)
        if self._sent_waiters and self._framing is not None and not self._framing.queued:
            self._wake_sent_waiters()

    def _closed(self, reason: CloseReason, *, notify: bool = True) -> bool:
        changed = super()._closed(reason, notify=notify)
        self._wake_sent_waiters()
        return changed

    def _wake_sent_waiters(self) -> None:
        waiters, self._sent_waiters = self._sent_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def max_frame_message(self) -> int:
        """The largest message that goes in one record (larger ones are fragmented, §6.7)."""
        return self.session.cleartext_limit - DATA_HEADER_LEN

    @property
    def dtls_version(self) -> str | None:
        return self.session.protocol_version

    @property
    def cipher(self) -> str | None:
        return self.session.cipher

    def send(self, message: bytes, *, transit: bool = False) -> None:
        if self._state is not LinkState.OPEN:
            raise LinkNotOpenError(self._state, self._close_reason)
        if len(message) > self.config.max_message_size:
            raise MessageTooLargeError(
                f"message of {len(message)} bytes exceeds max-message-size {self.config.max_message_size}"
            )
        pieces = [message]
        if len(message) > self.max_frame_message:
            try:
                pieces = fragment_message(message, self.max_frame_message - VIA_ALLOWANCE, self._ctx)
            except (DecodeError, EncodeError):
                pieces = [message]  # not a fragmentable RELOAD message: one large record
            if len(pieces) > 1:
                self.fragmented_messages += 1
        for piece in pieces:
            if self._state is not LinkState.OPEN:
                return
            self.messages_sent += 1
            super().send(piece, transit=transit)

    # -- session events

    def _session_open(self, certificate: NodeCertificate) -> None:
        self._start_framing(certificate.node_ids, certificate, initial_rtt=self.channel.rtt)

    def _session_closed(self, reason: CloseReason) -> None:
        self.endpoint._links.discard(self)
        if self._state is LinkState.CONNECTING:
            self._finish(reason, transport_gone=True)
        else:
            self._transport_closed(reason)

    # -- FramedLink transport hooks

    def _transmit(self, chunks: list[bytes]) -> None:
        try:
            for chunk in chunks:
                if chunk[:1] == _DATA_FRAME:
                    self.data_frames_sent += 1
                self.session.send_record(chunk)  # one frame, one record (§6.6.3)
        except SSL.Error as exc:
            self.session.flush()
            self._finish(CloseReason(CloseCode.TRANSPORT_ERROR, f"DTLS: {describe_ssl_error(exc)}"))
            return
        self.session.flush()

    def _shutdown_transport(self, reason: CloseReason) -> None:
        self.endpoint._links.discard(self)
        self.session.close(close_notify=reason.code is not CloseCode.RETRANSMISSIONS_EXHAUSTED)


# ---------------------------------------------------------------- application connections


class DtlsAppConnection:
    """An application's connection from AppAttach (§6.5.2): DTLS over the ICE connection,
    the far end authenticated by its overlay certificate carrying ``remote_node_id``.

    Datagram service, as SIP over DTLS: :meth:`send` puts one message in one DTLS record
    (up to 16384 bytes; above :attr:`max_datagram` IP fragments it), :meth:`recv` returns
    the next one; nothing is retransmitted here (SIP's transactions do that over
    unreliable transports). ICE's consent checks keep the NAT bindings alive (RFC 7904
    §5.2).
    """

    def __init__(
        self,
        endpoint: DtlsEndpoint,
        channel: DatagramChannel,
        *,
        server_side: bool,
        expected_node_id: bytes,
        application: int,
        queue_limit: int = 1000,
    ) -> None:
        self.endpoint = endpoint
        self.channel = channel
        self.application = application
        self.expected_node_id = expected_node_id
        self.queue_limit = queue_limit
        self.remote_certificate: NodeCertificate | None = None
        self.close_reason: CloseReason | None = None
        self.dropped = 0
        self._queue: deque[bytes] = deque()
        self._readable = asyncio.Event()
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed: asyncio.Future[CloseReason] = asyncio.get_running_loop().create_future()
        self.session = DtlsSession(
            endpoint.context,
            PeerCheck(endpoint.trust, endpoint.wall_clock, expected_node_id),
            channel,
            endpoint.clock,
            server_side=server_side,
            handshake_timeout=endpoint.config.handshake_timeout,
            datagram_size=endpoint.datagram_size,
            on_open=self._session_open,
            on_record=self._record,
            on_closed=self._session_closed,
        )

    def _start(self) -> None:
        self.session.start()

    # -- what the application reads

    @property
    def is_open(self) -> bool:
        return self._opened.done() and not self._opened.exception() and self.close_reason is None

    @property
    def remote_node_id(self) -> bytes | None:
        return self.expected_node_id if self.remote_certificate is not None else None

    @property
    def remote_address(self) -> tuple[str, int] | None:
        return self.channel.remote_address

    @property
    def max_datagram(self) -> int:
        """The largest message that fits one UDP datagram of the path."""
        return self.session.cleartext_limit

    async def wait_open(self) -> None:
        """Until the handshake is done; raises :class:`LinkNotOpenError` if it failed."""
        await asyncio.shield(self._opened)

    async def wait_closed(self) -> CloseReason:
        return await asyncio.shield(self._closed)

    def send(self, message: bytes) -> None:
        if not self.is_open:
            raise LinkNotOpenError(
                LinkState.CLOSED if self.close_reason else LinkState.CONNECTING, self.close_reason
            )
        if not 0 < len(message) <= MAX_RECORD_PLAINTEXT:
            raise MessageTooLargeError(f"a DTLS record carries 1..{MAX_RECORD_PLAINTEXT} bytes")
        try:
            self.session.send_record(message)
        except SSL.Error as exc:
            self._session_closed(CloseReason(CloseCode.TRANSPORT_ERROR, f"DTLS: {describe_ssl_error(exc)}"))
            self.session.close(close_notify=False)
            raise LinkNotOpenError(LinkState.CLOSED, self.close_reason) from None
        self.session.flush()

    async def recv(self) -> bytes:
        """The next message; raises :class:`LinkNotOpenError` once closed and drained."""
        while not self._queue:
            if self.close_reason is not None:
                raise LinkNotOpenError(LinkState.CLOSED, self.close_reason)
            self._readable.clear()
            await self._readable.wait()
        return self._queue.popleft()

    def close(self) -> None:
        if self.close_reason is None:
            self.session.close()
            self._session_closed(CloseReason(CloseCode.LOCAL))

    # -- session events

    def _session_open(self, certificate: NodeCertificate) -> None:
        self.remote_certificate = certificate
        if not self._opened.done():
            self._opened.set_result(None)

    def _record(self, data: bytes) -> None:
        if len(self._queue) >= self.queue_limit:
            self.dropped += 1  # a datagram service may drop; SIP retransmits
            return
        self._queue.append(data)
        self._readable.set()

    def _session_closed(self, reason: CloseReason) -> None:
        if self.close_reason is not None:
            return
        self.close_reason = reason
        self.endpoint._apps.discard(self)
        if not self._opened.done():
            self._opened.set_exception(LinkNotOpenError(LinkState.CLOSED, reason))
            self._opened.exception()  # retrieved: nobody may be waiting
        if not self._closed.done():
            self._closed.set_result(reason)
        self._readable.set()

    def __repr__(self) -> str:
        peer = self.expected_node_id.hex()[:8]
        state = "open" if self.is_open else ("closed" if self.close_reason else "connecting")
        return f"<DtlsAppConnection app={self.application} {state} peer={peer} at {self.remote_address}>"


__all__ = [
    "DEFAULT_DATAGRAM_SIZE",
    "DTLS1_2_VERSION",
    "DTLS_LINK_CONFIG",
    "DatagramChannel",
    "DtlsAppConnection",
    "DtlsEndpoint",
    "DtlsLink",
    "DtlsSession",
    "PeerCheck",
    "dtls_context",
    "pack_datagrams",
    "split_records",
]

"""TLS/TCP with framing header, No-ICE (RFC 6940 §6.6.5).

TLS runs in pyOpenSSL over memory BIOs (:class:`TlsEngine`), with asyncio moving the
ciphertext over TCP, so that the same engine can later serve DTLS and so that we, not
OpenSSL, decide which certificates to accept: RELOAD node certificates have an empty
subject, Node-IDs as reload URIs (§11.3) and, in self-signed overlays, no issuer at all
(§11.3.1), none of which a web PKI verifier understands.

Both ends authenticate with the overlay's credentials (§13.3, §13.6.3: "certificate-based
mutual authentication"). The verify callback replaces OpenSSL's verdict with ours: the
peer's chain must lead to one of the configuration's root certificates
(:func:`~reload_core.security.certificates.validate_chain`) or, where the overlay
permits self-signed certificates, be a self-signed certificate whose Node-IDs match its
key (:func:`~reload_core.security.certificates.check_self_signed`). A dialer that asked
for a Node-ID refuses a certificate that does not carry it. Rejection happens inside the
handshake, so the peer gets a TLS alert. (In TLS 1.3 a client's handshake is complete
before the server has judged the client's certificate, so a refused dialer sees its link
open and at once fail with AUTHENTICATION_FAILED when the alert arrives; the listener
never opens the link.)

RFC 6940 names TLS 1.2 [RFC5246] and prescribes no cipher suite; we accept TLS 1.2 and
1.3, with only ECDHE key exchange and AEAD ciphers on TLS 1.2 (TLS 1.3's suites all are).
No compression, no renegotiation (a peer could swap certificates) and no session
resumption: the server's session cache is off and a client never offers a session, so
every link authenticates afresh.

The framing header runs over the TLS stream (§6.6.5): every data frame is acked, the acks
give the RTT and RFC 6298 RTO, and a link whose frames go unacknowledged is suspected and
then failed (:mod:`reload_core.links.framing`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto

from reload_core.links.base import (
    AsyncioClock,
    Clock,
    CloseCode,
    CloseReason,
    LinkHandler,
    LinkState,
    TimerHandle,
)
from reload_core.links.framing import FramedLink, LinkConfig
from reload_core.security.certificates import (
    CertificateError,
    NodeCertificate,
    PrivateKey,
    SelfSignedDigest,
    check_self_signed,
    validate_chain,
)
from reload_core.security.keylog import keylog_file as resolve_keylog_file
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import OverlayLinkType
from reload_core.wire.context import WireContext

log = logging.getLogger(__name__)

TLS12_CIPHERS = b"ECDHE+AESGCM:ECDHE+CHACHA20"
_READ_SIZE = 65536
CLOSE_LINGER = 2.0
"""Seconds a closing link keeps reading (and discarding) after its FIN: closing a socket
with unread data makes the kernel send RST, which can destroy the Error_Message_Too_Large
answer and the close_notify before the peer reads them."""
_AUTH_ALERT_WORDS = ("certificate", "unknown ca", "access denied")
REFUSAL_LOG_WINDOW = 60.0
"""Seconds between log lines about connections refused for too many handshakes."""

_PEER_GONE = frozenset({CloseCode.NO_ACK, CloseCode.RETRANSMISSIONS_EXHAUSTED, CloseCode.TRANSPORT_ERROR})


# ---------------------------------------------------------------- credentials and trust


@dataclass(frozen=True, slots=True)
class TlsCredentials:
    """Our side: the private key, our node certificate (DER) and the intermediate CA
    certificates to send with it (DER, leaf's issuer first)."""

    private_key: PrivateKey
    certificate: bytes
    chain: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class OverlayTrust:
    """Which peer certificates the overlay accepts (§11.1 root-cert and
    self-signed-permitted, §11.3, §11.3.1)."""

    overlay: str
    root_certs: tuple[bytes, ...] = ()
    self_signed_digest: SelfSignedDigest | None = None
    node_id_length: int = 16

    def authenticate(
        self, certificate: bytes, intermediates: Sequence[bytes], now: datetime
    ) -> NodeCertificate:
        """The peer's node certificate if the overlay accepts it; else CertificateError."""
        reasons: list[str] = []
        if self.root_certs:
            try:
                return validate_chain(
                    certificate,
                    intermediates,
                    self.root_certs,
                    now,
                    self.overlay,
                    node_id_length=self.node_id_length,
                )
            except CertificateError as exc:
                reasons.append(str(exc))
        if self.self_signed_digest is not None:
            try:
                return check_self_signed(
                    certificate,
                    self.self_signed_digest,
                    node_id_length=self.node_id_length,
                    now=now,
                    overlay=self.overlay,
                )
            except CertificateError as exc:
                reasons.append(str(exc))
        if not reasons:
            raise CertificateError("the overlay has neither root certificates nor self-signed-permitted")
        raise CertificateError("; ".join(reasons))


# ---------------------------------------------------------------- the engine


def make_context(
    credentials: TlsCredentials,
    *,
    method: int = SSL.TLS_METHOD,
    min_version: int = SSL.TLS1_2_VERSION,
    max_version: int | None = None,
    keylog_file: str | os.PathLike[str] | None = None,
) -> SSL.Context:
    """A context for both roles of mutually authenticated links. Connections must carry a
    :class:`TlsLink`-like object as app data whose ``_verify_certificate`` decides.
    Secrets go to ``keylog_file``, or by default to ``$SSLKEYLOGFILE`` if set
    (:mod:`reload_core.security.keylog`)."""
    ctx = SSL.Context(method)
    ctx.set_min_proto_version(min_version)
    if max_version is not None:
        ctx.set_max_proto_version(max_version)
    ctx.set_options(
        SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION | SSL.OP_NO_TICKET | SSL.OP_CIPHER_SERVER_PREFERENCE
    )
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.set_cipher_list(TLS12_CIPHERS)
    ctx.use_certificate(x509.load_der_x509_certificate(credentials.certificate))
    for der in credentials.chain:
        ctx.add_extra_chain_cert(x509.load_der_x509_certificate(der))
    ctx.use_privatekey(credentials.private_key)
    ctx.check_privatekey()
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verify_callback)
    keylog = resolve_keylog_file(keylog_file)
    if keylog is not None:
        ctx.set_keylog_callback(_keylog_writer(Path(keylog)))
    return ctx


def _verify_callback(conn: SSL.Connection, cert: crypto.X509, errnum: int, depth: int, ok: int) -> bool:
    owner = conn.get_app_data()
    verify = getattr(owner, "_verify_certificate", None)
    if verify is None:
        return False
    try:
        return bool(verify(conn, cert, depth))
    except Exception:  # an exception here would be re-raised by pyOpenSSL mid-handshake
        log.exception("certificate verification raised")
        return False


def _keylog_writer(path: Path) -> Callable[[SSL.Connection, bytes], None]:
    """NSS key log lines (SSLKEYLOGFILE format) appended to ``path``, for tshark's
    ``-o tls.keylog_file:...``."""

    def write(conn: SSL.Connection, line: bytes) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line + b"\n")
            finally:
                os.close(fd)
        except OSError:
            log.warning("cannot write TLS key log %s", path, exc_info=True)

    return write


class TlsEngine:
    """One TLS (or DTLS) connection over memory BIOs: feed it ciphertext, take ciphertext
    out, read and write plaintext. No I/O, no clock."""

    def __init__(self, context: SSL.Context, *, server_side: bool, app_data: object) -> None:
        self.conn = SSL.Connection(context, None)
        self.conn.set_app_data(app_data)
        if server_side:
            self.conn.set_accept_state()
        else:
            self.conn.set_connect_state()
        self.handshake_done = False

    def receive_ciphertext(self, data: bytes) -> None:
        self.conn.bio_write(data)

    def do_handshake(self) -> bool:
        """Advance the handshake; True once complete. Raises SSL.Error on failure."""
        if not self.handshake_done:
            try:
                self.conn.do_handshake()
            except SSL.WantReadError:
                return False
            self.handshake_done = True
        return True

    def read(self) -> tuple[bytes, bool]:
        """All plaintext available now, and whether the peer sent close_notify."""
        chunks: list[bytes] = []
        while True:
            try:
                data = self.conn.recv(_READ_SIZE)
            except SSL.WantReadError:
                return b"".join(chunks), False
            except SSL.ZeroReturnError:
                return b"".join(chunks), True
            if not data:
                return b"".join(chunks), True
            chunks.append(data)

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)

    def ciphertext_to_send(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self.conn.bio_read(_READ_SIZE)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def shutdown(self) -> None:
        """Queue close_notify (if the session got far enough to have one)."""
        try:
            self.conn.shutdown()
        except SSL.Error:
            pass

    def peer_certificate_der(self) -> bytes | None:
        cert = self.conn.get_peer_certificate(as_cryptography=True)
        return None if cert is None else cert.public_bytes(Encoding.DER)

    @property
    def protocol_version(self) -> str:
        return str(self.conn.get_protocol_version_name())

    @property
    def cipher(self) -> str | None:
        name = self.conn.get_cipher_name()
        return None if name is None else str(name)


def authenticate_peer(
    trust: OverlayTrust,
    der: bytes,
    seen_chain: Iterable[bytes],
    conn: SSL.Connection,
    now: datetime,
    expected_node_id: bytes | None,
) -> NodeCertificate | CloseReason:
    """The peer's certificate ``der`` checked by the overlay's rules (chain to a root-cert or
    self-signed, §11.3), with the intermediates seen in the handshake; when we dialed a
    Node-ID, the certificate must carry it. Shared by the TLS and DTLS links."""
    intermediates = [d for d in seen_chain if d != der]
    for c in conn.get_peer_cert_chain(as_cryptography=True) or []:
        d = c.public_bytes(Encoding.DER)
        if d != der and d not in intermediates:
            intermediates.append(d)
    try:
        node = trust.authenticate(der, intermediates, now)
    except CertificateError as exc:
        return CloseReason(CloseCode.AUTHENTICATION_FAILED, str(exc))
    if expected_node_id is not None and expected_node_id not in node.node_ids:
        return CloseReason(
            CloseCode.WRONG_NODE_ID,
            f"certificate carries {', '.join(n.hex() for n in node.node_ids)}, not {expected_node_id.hex()}",
        )
    return node


def describe_ssl_error(exc: SSL.Error) -> str:
    parts: list[str] = []
    for item in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(item, tuple) and item:
            parts.append(str(item[-1]))
    return ", ".join(parts) or str(exc) or type(exc).__name__


# ---------------------------------------------------------------- the link


class TlsLink(FramedLink, asyncio.Protocol):
    """One TLS/TCP link with framing header (OverlayLinkType TLS-TCP-FH-NO-ICE)."""

    link_type = OverlayLinkType.TLS_TCP_FH_NO_ICE

    def __init__(self, endpoint: TlsEndpoint, *, dialed: bool, expected_node_id: bytes | None = None) -> None:
        FramedLink.__init__(
            self,
            endpoint.handler,
            endpoint.clock,
            endpoint.config,
            stream=True,
            dialed=dialed,
            expected_node_id=expected_node_id,
            ctx=endpoint.wire_context,
        )
        self.endpoint = endpoint
        self._transport: asyncio.Transport | None = None
        self._engine: TlsEngine | None = None
        self._peer_address: tuple[str, int] | None = None
        self._seen_chain: dict[int, bytes] = {}
        self._verified: NodeCertificate | None = None
        self._auth_failure: CloseReason | None = None
        self._handshake_timer: TimerHandle | None = None
        self._linger_timer: TimerHandle | None = None
        self._dial_task: asyncio.Task[Any] | None = None
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._arm_handshake_timer()

    # -- Link API

    @property
    def remote_address(self) -> tuple[str, int] | None:
        return self._peer_address

    @property
    def tls_version(self) -> str | None:
        return self._engine.protocol_version if self._engine and self._engine.handshake_done else None

    @property
    def cipher(self) -> str | None:
        return self._engine.cipher if self._engine and self._engine.handshake_done else None

    async def wait_transport_closed(self) -> None:
        """Until the TCP connection is gone (or was never made)."""
        if self._transport is None and (self._dial_task is None or self._dial_task.done()):
            return
        await asyncio.shield(self._lost)

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._peer_address = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Each frame is one RELOAD message that someone waits for: never let Nagle
            # hold it back (asyncio sets this only for sockets it created itself).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.state is LinkState.CLOSED:
            transport.close()
            return
        if not self.dialed and not self.endpoint._may_handshake(self):
            self._cancel_handshake_timer()
            self._closed(
                CloseReason(CloseCode.HANDSHAKE_FAILED, "too many handshakes under way"), notify=False
            )
            transport.abort()
            return
        self._engine = TlsEngine(self.endpoint.context, server_side=not self.dialed, app_data=self)
        self.endpoint._links.add(self)
        if self.dialed:
            self._handshake_step()  # ClientHello

    def data_received(self, data: bytes) -> None:
        engine = self._engine
        if engine is None or self.state is LinkState.CLOSED:
            return
        engine.receive_ciphertext(data)
        if self.state is LinkState.CONNECTING:
            self._handshake_step()
            if not self.is_open:
                return
        self._read_plaintext()

    def eof_received(self) -> bool | None:
        self._lost_transport(CloseReason(CloseCode.REMOTE, "TCP connection closed without close_notify"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if not self._lost.done():
            self._lost.set_result(None)
        self.endpoint._links.discard(self)
        if exc is None:
            self._lost_transport(CloseReason(CloseCode.REMOTE, "TCP connection closed"))
        else:
            self._lost_transport(CloseReason(CloseCode.TRANSPORT_ERROR, str(exc) or type(exc).__name__))

    # -- TLS

    def _handshake_step(self) -> None:
        engine = self._engine
        assert engine is not None
        try:
            done = engine.do_handshake()
        except SSL.Error as exc:
            self._flush()  # the alert
            reason = self._auth_failure or self._classify(exc, CloseCode.HANDSHAKE_FAILED)
            self._finish(reason)
            return
        self._flush()
        if not done:
            return
        self._cancel_handshake_timer()
        self.endpoint._handshaking.discard(self)
        verified = self._verified
        if verified is None or engine.peer_certificate_der() != verified.der:
            self._finish(CloseReason(CloseCode.AUTHENTICATION_FAILED, "peer certificate was not verified"))
            return
        self._start_framing(verified.node_ids, verified)

    def _verify_certificate(self, conn: SSL.Connection, cert: crypto.X509, depth: int) -> bool:
        """OpenSSL's verdicts are ignored: chain certificates are collected, and at depth 0
        the whole chain is judged by the overlay's rules."""
        der = cert.to_cryptography().public_bytes(Encoding.DER)
        if depth > 0:
            self._seen_chain[depth] = der
            return True
        if self._verified is not None:
            return self._verified.der == der
        result = authenticate_peer(
            self.endpoint.trust,
            der,
            self._seen_chain.values(),
            conn,
            self.endpoint.wall_clock(),
            self.expected_node_id,
        )
        if isinstance(result, CloseReason):
            self._auth_failure = result
            return False
        self._verified = result
        return True

    def _classify(self, exc: SSL.Error, default: CloseCode) -> CloseReason:
        """With TLS 1.3 a dialer learns that the listener refused its certificate only
        from the alert that follows the handshake; tell that case apart."""
        detail = describe_ssl_error(exc)
        lowered = detail.lower()
        code = CloseCode.AUTHENTICATION_FAILED if any(w in lowered for w in _AUTH_ALERT_WORDS) else default
        return CloseReason(code, f"TLS: {detail}")

    def _read_plaintext(self) -> None:
        engine = self._engine
        assert engine is not None
        try:
            data, closed = engine.read()
        except SSL.Error as exc:
            self._flush()
            self._finish(self._classify(exc, CloseCode.TRANSPORT_ERROR))
            return
        if data:
            self._receive(data)
        if closed and self.state is not LinkState.CLOSED:
            self._finish(CloseReason(CloseCode.REMOTE, "close_notify"))

    def _flush(self) -> None:
        engine, transport = self._engine, self._transport
        if engine is None:
            return
        out = engine.ciphertext_to_send()
        if out and transport is not None and not transport.is_closing():
            transport.write(out)

    def _finish(self, reason: CloseReason, *, transport_gone: bool = False, notify: bool = True) -> None:
        self.endpoint._handshaking.discard(self)
        refused = self.state is LinkState.CONNECTING and not self.dialed
        super()._finish(reason, transport_gone=transport_gone, notify=notify)
        if refused:
            self.endpoint._handshake_failed(self._peer_address, reason)

    # -- FramedLink transport hooks

    def _transmit(self, chunks: list[bytes]) -> None:
        engine = self._engine
        if engine is None:
            return
        engine.write(b"".join(chunks))
        self._flush()

    def _shutdown_transport(self, reason: CloseReason) -> None:
        self._cancel_handshake_timer()
        if self._dial_task is not None and not self._dial_task.done():
            self._dial_task.cancel()
        engine, transport = self._engine, self._transport
        if engine is not None and engine.handshake_done:
            engine.shutdown()
            self._flush()
        if transport is None:
            return
        if reason.code in _PEER_GONE:
            transport.abort()  # a flush to a dead peer would never finish
        elif reason.code in (CloseCode.LOCAL, CloseCode.MESSAGE_TOO_LARGE) and transport.can_write_eof():
            # FIN after the buffered data; keep reading until the peer's FIN (see CLOSE_LINGER).
            transport.write_eof()
            self._linger_timer = self._clock.call_later(CLOSE_LINGER, transport.abort)
        else:
            transport.close()  # after the buffered close_notify and data are written

    def abort(self) -> None:
        """Drop the TCP connection at once, without flushing (for shutdown)."""
        if self.state is not LinkState.CLOSED:
            self.close()
        if self._transport is not None:
            self._transport.abort()

    def _lost_transport(self, reason: CloseReason) -> None:
        self._cancel_handshake_timer()
        if self.state is LinkState.CONNECTING:
            reason = self._auth_failure or CloseReason(CloseCode.HANDSHAKE_FAILED, reason.detail)
        self._transport_closed(reason)

    # -- connection setup

    def _arm_handshake_timer(self) -> None:
        self._handshake_timer = self._clock.call_later(self.config.handshake_timeout, self._handshake_timeout)

    def _handshake_timeout(self) -> None:
        self._handshake_timer = None
        if self.state is LinkState.CONNECTING:
            self._finish(CloseReason(CloseCode.HANDSHAKE_FAILED, "timed out"))

    def _cancel_handshake_timer(self) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    def _dial_failed(self, detail: str) -> None:
        self._cancel_handshake_timer()
        if self.state is LinkState.CONNECTING:
            self._finish(CloseReason(CloseCode.CONNECT_FAILED, detail))
        if not self._lost.done():
            self._lost.set_result(None)


# ---------------------------------------------------------------- endpoint and listener


class TlsListener:
    """A listening TCP socket whose authenticated links go to the endpoint's handler."""

    def __init__(self, server: asyncio.Server) -> None:
        self._server = server

    @property
    def address(self) -> tuple[str, int]:
        sockname = self._server.sockets[0].getsockname()
        return (str(sockname[0]), int(sockname[1]))

    def close(self) -> None:
        self._server.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


class TlsEndpoint:
    """Our node's TLS/TCP links: dial with :meth:`connect`, accept with :meth:`listen`.

    ``keylog_file`` appends the session keys in SSLKEYLOGFILE format (for tshark; it
    lets anyone with the file decrypt the captures, so leave it off in production); by
    default the ``SSLKEYLOGFILE`` environment variable names the file, if set.
    ``wall_clock`` gives the time certificates are checked at.
    """

    def __init__(
        self,
        credentials: TlsCredentials,
        trust: OverlayTrust,
        handler: LinkHandler,
        *,
        config: LinkConfig | None = None,
        clock: Clock | None = None,
        wall_clock: Callable[[], datetime] | None = None,
        keylog_file: str | os.PathLike[str] | None = None,
        min_version: int = SSL.TLS1_2_VERSION,
        max_version: int | None = None,
    ) -> None:
        self.credentials = credentials
        self.trust = trust
        self.handler = handler
        self.config = config or LinkConfig()
        self.clock: Clock = clock or AsyncioClock()
        self.wall_clock: Callable[[], datetime] = wall_clock or (lambda: datetime.now(UTC))
        self.wire_context = WireContext(node_id_length=trust.node_id_length)
        self.context = make_context(
            credentials, min_version=min_version, max_version=max_version, keylog_file=keylog_file
        )
        self._links: set[TlsLink] = set()
        self._dialing: set[TlsLink] = set()
        self._handshaking: set[TlsLink] = set()
        self.refused_connections = 0
        """Incoming connections closed at once because ``max_handshakes`` were under way."""
        self._refusals_logged_at = -math.inf
        self._listeners: list[TlsListener] = []
        self.handshake_failures: deque[tuple[tuple[str, int] | None, CloseReason]] = deque(maxlen=100)
        """Recent incoming connections that never became links (the node is not told of
        those): peer address and why."""

    def _may_handshake(self, link: TlsLink) -> bool:
        """Admit an accepted connection to its handshake, unless too many are under way."""
        if len(self._handshaking) < self.config.max_handshakes:
            self._handshaking.add(link)
            return True
        self.refused_connections += 1
        now = self.clock.time()
        if now - self._refusals_logged_at >= REFUSAL_LOG_WINDOW:  # once a minute, not per connection
            self._refusals_logged_at = now
            log.warning(
                "%d TLS handshakes under way: refusing new connections (%d so far)",
                len(self._handshaking),
                self.refused_connections,
            )
        return False

    def _handshake_failed(self, peer: tuple[str, int] | None, reason: CloseReason) -> None:
        log.info("incoming TLS link from %s refused: %s", peer, reason)
        self.handshake_failures.append((peer, reason))

    @property
    def links(self) -> frozenset[TlsLink]:
        """Links with a live TCP connection or being dialed."""
        return frozenset(self._links | self._dialing)

    async def listen(
        self, host: str = "127.0.0.1", port: int = 0, *, sock: socket.socket | None = None
    ) -> TlsListener:
        """Accept links on ``host:port``, or on ``sock``, a socket already bound."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            server = await loop.create_server(lambda: TlsLink(self, dialed=False), sock=sock)
        else:
            server = await loop.create_server(lambda: TlsLink(self, dialed=False), host, port)
        listener = TlsListener(server)
        self._listeners.append(listener)
        return listener

    def connect(
        self, address: tuple[str, int] | IpAddressPort, expected_node_id: bytes | None = None
    ) -> TlsLink:
        host, port = (address.addr, address.port) if isinstance(address, IpAddressPort) else address
        link = TlsLink(self, dialed=True, expected_node_id=expected_node_id)
        link._peer_address = (host, port)
        self._dialing.add(link)
        link._dial_task = asyncio.get_running_loop().create_task(self._dial(link, host, port))
        return link

    async def _dial(self, link: TlsLink, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: link, host, port)
        except OSError as exc:
            link._dial_failed(str(exc) or type(exc).__name__)
        except asyncio.CancelledError:
            link._dial_failed("cancelled")
            raise
        finally:
            self._dialing.discard(link)

    async def open_link(
        self, address: tuple[str, int] | IpAddressPort, expected_node_id: bytes | None = None
    ) -> TlsLink:
        """:meth:`connect` and wait until the link is open (raises LinkNotOpenError)."""
        link = self.connect(address, expected_node_id)
        await link.wait_open()
        return link

    async def close(self, timeout: float = 5.0) -> None:
        """Stop listening, close every link and wait for their TCP connections to end."""
        for listener in self._listeners:
            listener.close()
        links = list(self._links | self._dialing)
        for link in links:
            link.close()
        waits = [asyncio.ensure_future(link.wait_transport_closed()) for link in links]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout)
            if pending:  # peers that neither read nor close: stop waiting for them
                for link in links:
                    link.abort()
                await asyncio.wait(pending, timeout=1.0)
                for fut in pending:
                    fut.cancel()
        for listener in self._listeners:
            await listener.wait_closed()
        self._listeners.clear()


__all__ = [
    "TLS12_CIPHERS",
    "OverlayTrust",
    "TlsCredentials",
    "TlsEndpoint",
    "TlsEngine",
    "TlsLink",
    "TlsListener",
    "make_context",
]

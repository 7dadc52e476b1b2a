"""SIP connections made by AppAttach, and who is at their far end (RFC 7904 §5).

"Once the AppAttach succeeds, the Peer sends plain or (D)TLS-encrypted SIP messages over
the connection as in normal SIP" (§5.1). The connection here is DTLS over the ICE
connection AppAttach made (:class:`~reload_core.links.dtls.DtlsAppConnection`): a
datagram service, one SIP message per record, authenticated on both ends by the overlay
certificates. :class:`SipConnection` gives the SIP layer that service and the far end's
identity as the handshake proved it (:class:`VerifiedPeer`: the certificate's user name,
its rfc822Name, and the Node-ID), so that a caller is known by its certificate, never by
what its From header says.

"If certificate-based authentication is in use, the responding Peer MUST present a
certificate with a Node-ID matching the terminal entry in the destination list.
Otherwise, the connection MUST NOT be used and MUST be closed" (§5.1):
:func:`verify_peer` is that check. "A previously established SIP connection MAY be used
for a new call" (§5.1): :class:`ConnectionPool` keeps the open ones by Node-ID and
Application-ID.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from reload_core.links.base import CloseReason, LinkNotOpenError, MessageTooLargeError
from reload_core.security.certificates import NodeCertificate
from reload_core.usages.sip.aor import Aor, AorError, parse_aor
from reload_core.usages.sip.errors import SipConnectError, SipConnectionClosed
from reload_core.usages.sip.schemes import SipScheme

log = logging.getLogger(__name__)


class AppConnection(Protocol):
    """What a connection from AppAttach offers (:class:`~reload_core.links.dtls.DtlsAppConnection`)."""

    application: int
    remote_certificate: NodeCertificate | None
    close_reason: CloseReason | None

    @property
    def is_open(self) -> bool: ...

    @property
    def remote_node_id(self) -> bytes | None: ...

    @property
    def remote_address(self) -> tuple[str, int] | None: ...

    @property
    def max_datagram(self) -> int: ...

    def send(self, message: bytes) -> None: ...

    async def recv(self) -> bytes: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> CloseReason: ...


@dataclass(frozen=True, slots=True)
class VerifiedPeer:
    """The far end of a SIP connection as its certificate proved it in the handshake:
    ``user`` is the certificate's user name (rfc822Name, an AoR without scheme, RFC 7904
    §2) and ``node_id`` the Node-ID it proved (RFC 6940 §6.5.1.13, RFC 7904 §5.1)."""

    user: str
    node_id: bytes
    certificate: NodeCertificate

    @property
    def aor(self) -> Aor | None:
        """The user name as an AoR (None if it is not one)."""
        try:
            return parse_aor(self.user)
        except AorError:
            return None


def verify_peer(conn: AppConnection, node_id: bytes) -> VerifiedPeer:
    """The far end of ``conn`` if its certificate proved ``node_id``; else
    :class:`SipConnectError` (the caller must close ``conn``, §5.1)."""
    cert = conn.remote_certificate
    if cert is None or not conn.is_open:
        raise SipConnectError("the connection is not open: no certificate was proved")
    if conn.remote_node_id != node_id or node_id not in cert.node_ids:
        raise SipConnectError(
            f"the far end's certificate does not carry Node-ID {node_id.hex()}, the terminal entry of the "
            "destination list (RFC 7904 §5.1)"
        )
    return VerifiedPeer(cert.user_name, node_id, cert)


class SipConnection:
    """A SIP connection over AppAttach (see the module docstring).

    Datagram service: :meth:`send` sends one SIP message, :meth:`recv` returns the next
    one; nothing is retransmitted here (SIP's transactions do that over unreliable
    transports). Both raise :class:`SipConnectionClosed` once the connection is closed
    (``recv`` after what had arrived is read). ``outgoing``: we made the AppAttach.
    """

    def __init__(self, conn: AppConnection, peer: VerifiedPeer, *, outgoing: bool) -> None:
        self.app_connection = conn
        self.peer = peer
        self.outgoing = outgoing

    @property
    def verified_user(self) -> str:
        """The far end's user name from its certificate (rfc822Name)."""
        return self.peer.user

    @property
    def verified_node_id(self) -> bytes:
        """The Node-ID the far end proved."""
        return self.peer.node_id

    @property
    def application(self) -> int:
        return int(self.app_connection.application)

    @property
    def scheme(self) -> SipScheme:
        return SipScheme.of_application(self.application)

    @property
    def remote_address(self) -> tuple[str, int] | None:
        return self.app_connection.remote_address

    @property
    def is_open(self) -> bool:
        return self.app_connection.is_open

    @property
    def max_datagram(self) -> int:
        """The largest message that fits one datagram of the path (larger ones are sent,
        IP-fragmented, up to a DTLS record's 16384 bytes)."""
        return self.app_connection.max_datagram

    @property
    def close_reason(self) -> str | None:
        reason = self.app_connection.close_reason
        return None if reason is None else str(reason)

    async def recv(self) -> bytes:
        try:
            return await self.app_connection.recv()
        except LinkNotOpenError as exc:
            raise SipConnectionClosed(str(exc.reason or exc)) from None

    def send(self, message: bytes) -> None:
        """Send one message; :class:`ValueError` if it is empty or above 16384 bytes."""
        try:
            self.app_connection.send(message)
        except LinkNotOpenError as exc:
            raise SipConnectionClosed(str(exc.reason or exc)) from None
        except MessageTooLargeError as exc:
            raise ValueError(str(exc)) from None

    def close(self) -> None:
        self.app_connection.close()

    async def wait_closed(self) -> str:
        """Until the connection is closed; returns why."""
        return str(await self.app_connection.wait_closed())

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        way = "to" if self.outgoing else "from"
        return (
            f"<SipConnection {self.scheme.name} {way} {self.verified_user} "
            f"({self.verified_node_id.hex()[:8]}) {state}>"
        )


PoolKey = tuple[bytes, int]


class ConnectionPool:
    """Open SIP connections by (Node-ID, Application-ID), for reuse (RFC 7904 §5.1);
    closed ones are dropped when next looked at. Connects to one key under way at once
    are made once (:meth:`acquire`)."""

    def __init__(self) -> None:
        self._open: dict[PoolKey, SipConnection] = {}
        self._pending: dict[PoolKey, asyncio.Future[SipConnection]] = {}

    def get(self, node_id: bytes, application: int) -> SipConnection | None:
        key = (node_id, int(application))
        conn = self._open.get(key)
        if conn is not None and not conn.is_open:
            del self._open[key]
            return None
        return conn

    def add(self, conn: SipConnection) -> None:
        """Keep ``conn`` for reuse, unless an open connection to that node for that
        application is kept already."""
        if self.get(conn.verified_node_id, conn.application) is None:
            self._open[(conn.verified_node_id, conn.application)] = conn

    def connections(self) -> tuple[SipConnection, ...]:
        """The open connections kept."""
        return tuple(c for c in list(self._open.values()) if c.is_open)

    async def acquire(
        self, node_id: bytes, application: int, connect: Callable[[], Awaitable[SipConnection]]
    ) -> tuple[SipConnection, bool]:
        """An open connection to ``node_id`` for ``application``: the kept one, one being
        made, or a new one from ``connect()``. Returns it and whether it was reused."""
        key = (node_id, int(application))
        while True:
            kept = self.get(node_id, application)
            if kept is not None:
                return kept, True
            pending = self._pending.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending), True
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # we were cancelled
                # The connect we waited for was abandoned by its caller: make our own.
        future: asyncio.Future[SipConnection] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            conn = await connect()
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: there may be no other waiter
            else:
                future.cancel()
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(conn)
        self.add(conn)
        return conn, False

    def close_all(self) -> None:
        for conn in list(self._open.values()):
            conn.close()
        self._open.clear()


__all__ = [
    "AppConnection",
    "ConnectionPool",
    "PoolKey",
    "SipConnection",
    "VerifiedPeer",
    "verify_peer",
]

"""The phone as a plain SIP endpoint: calls and messages to ``sip:user@host[:port]``
outside the overlay, over UDP, TCP or TLS sockets (RFC 3261 §18).

``--sip-listen udp|tcp|tls:HOST:PORT`` (:func:`parse_sip_listen`) makes the phone
reachable there by any SIP phone (sipp, linphone...). Without it, a direct call still
works: its transport is opened on demand, on an OS-picked port of the address this
machine reaches the callee from, and kept for the answers and later calls.

This endpoint has a user agent of its own, apart from the overlay's: a rejoin of the
overlay (network change) does not end the calls it carries. On these sockets nobody
proves who they are: the caller's identity is their From header, and every event says
``verified=False`` (:class:`~app.sip.events.RemoteIdentity`). TLS uses the profile's key
and certificate as server credentials; as a client it does not check the server's
certificate (there is no PKI for plain SIP peers here), which again is why nothing
reached this way counts as verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.sip.aio import CallError, UserAgent
from app.sip.sdp import SessionHandler
from app.sip.transaction import TimerConfig
from app.sip.transport import (
    AddressTransport,
    StreamTransport,
    TransportKind,
    UdpTransport,
    resolve_host,
    uri_transport,
)
from app.sip.ua import Target, UaConfig
from app.sip.uri import SipUri

ListenKind = Literal["udp", "tcp", "tls"]


class SipListenError(ValueError):
    """A ``--sip-listen`` value that is not ``udp|tcp|tls:HOST:PORT``."""


@dataclass(frozen=True, slots=True)
class SipListen:
    """Where the plain SIP endpoint listens."""

    kind: ListenKind
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.kind}:{host}:{self.port}"


def parse_sip_listen(text: str) -> SipListen:
    """``udp:127.0.0.1:5070``, ``tcp:0.0.0.0:5060``, ``tls:[::1]:5061`` (port 0: any)."""
    kind, sep, rest = text.partition(":")
    kind = kind.lower()
    if not sep or kind not in ("udp", "tcp", "tls"):
        raise SipListenError(f"--sip-listen {text!r}: expected udp|tcp|tls:HOST:PORT")
    host, sep, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        if not sep or not port.isdigit() or int(port) > 0xFFFF:
            raise ValueError(text)
        ipaddress.ip_address(host)
    except ValueError:
        raise SipListenError(f"--sip-listen {text!r}: HOST must be an IP address and PORT 0-65535") from None
    listen_kind: ListenKind = "udp" if kind == "udp" else "tcp" if kind == "tcp" else "tls"
    return SipListen(listen_kind, host, int(port))


def local_address_towards(host: str) -> str:
    """The address this machine sends from to reach ``host`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))
            return str(probe.getsockname()[0])
        except OSError:
            return "::1" if family == socket.AF_INET6 else "127.0.0.1"


def tls_contexts(key_file: Path, cert_file: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for SIP over TLS with the profile's credentials."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE  # see the module docstring: nothing here is verified
    client.load_cert_chain(cert_file, key_file)
    return server, client


class PlainSip:
    """A SIP user agent on plain sockets (see the module docstring). Make it with
    :meth:`open` inside the running loop."""

    def __init__(self, ua: UserAgent, *, tls: tuple[ssl.SSLContext, ssl.SSLContext] | None) -> None:
        self.ua = ua
        self._tls = tls
        self.listening: AddressTransport | None = None
        self._transports: dict[tuple[TransportKind, str], AddressTransport] = {}
        self._lock = asyncio.Lock()
        ua.resolver = self.resolve

    @classmethod
    async def open(
        cls,
        aor: SipUri,
        *,
        listen: SipListen | None = None,
        display_name: str | None = None,
        session_factory: Callable[[], SessionHandler],
        timers: TimerConfig | None = None,
        credentials: tuple[Path, Path] | None = None,
    ) -> PlainSip:
        """The endpoint, listening at ``listen`` if given. ``credentials``: (key file,
        certificate file) for TLS."""
        # No automatic 180: the phone rings a call only once it decides to present it.
        config = UaConfig(aor, display_name=display_name, timers=timers or TimerConfig(), auto_ringing=False)
        ua = UserAgent(config, session_factory=session_factory, accept_transfers=True)
        tls = tls_contexts(*credentials) if credentials is not None else None
        plain = cls(ua, tls=tls)
        if listen is not None:
            try:
                plain.listening = await plain._open(listen.kind, listen.host, listen.port)
            except OSError as exc:
                await ua.close()
                raise SipListenError(f"cannot listen for SIP at {listen}: {exc.strerror or exc}") from None
        return plain

    @property
    def local_address(self) -> tuple[str, int] | None:
        return self.listening.local_address if self.listening is not None else None

    def uri(self) -> str | None:
        """Our plain SIP address (``sip:alice@127.0.0.1:5070;transport=tcp``), if we listen."""
        if self.listening is None:
            return None
        host, port = self.listening.local_address
        host = f"[{host}]" if ":" in host else host
        kind = self.listening.kind
        scheme = "sips" if kind == "tls" else "sip"
        param = ";transport=tcp" if kind == "tcp" else ""
        return f"{scheme}:{self.ua.config.aor.user}@{host}:{port}{param}"

    async def _open(self, kind: TransportKind, host: str, port: int) -> AddressTransport:
        ua = self.ua
        transport: AddressTransport
        if kind == "udp":
            transport = await UdpTransport.create(
                ua.deliver, host, port, on_transport_error=ua.transport_error
            )
        elif kind == "tcp":
            transport = await StreamTransport.listen(
                "tcp", ua.deliver, host, port, on_transport_error=ua.transport_error
            )
        elif kind == "tls":
            if self._tls is None:
                raise OSError("no credentials for SIP over TLS")
            server, client = self._tls
            transport = await StreamTransport.listen(
                "tls",
                ua.deliver,
                host,
                port,
                on_transport_error=ua.transport_error,
                ssl_server=server,
                ssl_client=client,
            )
        else:
            raise OSError(f"no {kind} transport for plain SIP")
        self._transports[(kind, transport.local_address[0])] = transport
        return transport

    async def transport_for(self, kind: TransportKind, remote_host: str) -> AddressTransport:
        """The transport to reach ``remote_host`` over ``kind``: the listening one when it
        fits, else one opened now on the address towards it."""
        async with self._lock:
            listening = self.listening
            if listening is not None and listening.kind == kind:
                local = listening.local_address[0]
                if ipaddress.ip_address(local).is_unspecified or _same_scope(local, remote_host):
                    return listening
            host = local_address_towards(remote_host)
            kept = self._transports.get((kind, host))
            if kept is not None:
                return kept
            return await self._open(kind, host, 0)

    async def resolve(self, uri: SipUri) -> Sequence[Target]:
        """The UA's resolver: ``uri``'s host and port (RFC 3263's A/AAAA step only) on the
        transport it names."""
        kind = uri_transport(uri)
        host, port = await resolve_host(uri.maddr or uri.host, uri.port or uri.default_port)
        transport = await self.transport_for(kind, host)
        return [Target(transport.peer(host, port), uri)]

    async def close(self) -> None:
        await self.ua.close()
        transports = list(self._transports.values())
        self._transports.clear()
        for transport in transports:
            with contextlib.suppress(OSError, CallError):
                await transport.close()


def _same_scope(local: str, remote: str) -> bool:
    """Whether a socket bound to ``local`` can reach ``remote`` (loopback reaches only
    loopback)."""
    try:
        a, b = ipaddress.ip_address(local), ipaddress.ip_address(remote)
    except ValueError:
        return False
    if a.version != b.version:
        return False
    return a.is_loopback == b.is_loopback


__all__ = [
    "PlainSip",
    "SipListen",
    "SipListenError",
    "local_address_towards",
    "parse_sip_listen",
    "tls_contexts",
]

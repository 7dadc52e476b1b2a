"""A RELOAD peer built from a profile folder (RFC 6940 §4, §11): what ``p2psip peer`` and
the multi-node harness run.

:func:`peer_setup` reads a :class:`~app.profile.Profile` (key, node certificate, root
certificates, the signed configuration document) and makes the parts a
:class:`~reload_core.node.node.Node` is built from: the message :class:`Signer`, the
:class:`CertificateResolver` of the overlay's trust rules (root-cert, §11.1;
self-signed-permitted, §11.3.1), the :class:`NodeSettings` of the configuration and the
TLS/TCP link transport (§6.6.5) authenticated by the same credentials.

A listening socket may be handed in already bound (:func:`listening_socket`): a harness
binds first, so that the configuration it signs can list the port of a bootstrap peer
before that peer runs (§11.1 ``bootstrap-node``), and no other process can take the port
in between.
"""

from __future__ import annotations

import ipaddress
import os
import random
import socket
from dataclasses import dataclass

from app.profile import Profile
from reload_core.config import ConfigError, OverlayConfiguration, parse_document
from reload_core.links.base import LinkHandler
from reload_core.links.framing import LinkConfig
from reload_core.links.tls import OverlayTrust, TlsCredentials, TlsEndpoint
from reload_core.node.attach_ice import install_ice, uses_ice
from reload_core.node.node import Node
from reload_core.node.settings import NodeSettings
from reload_core.node.transport import LinkTransport, TlsTransport, TransportFactory
from reload_core.security.certificates import SelfSignedDigest
from reload_core.security.signing import CertificateResolver, Signer
from reload_core.storage.peer import Storage
from reload_core.usages.sip.access import sip_access_policy
from reload_core.wire.addresses import IpAddressPort


class PeerSetupError(Exception):
    """The profile cannot make a peer (configuration unreadable, key and certificate
    unusable for this overlay)."""


@dataclass(frozen=True, slots=True)
class PeerSetup:
    """Everything a peer of one profile is made of."""

    profile: Profile
    configuration: OverlayConfiguration
    signer: Signer
    resolver: CertificateResolver
    settings: NodeSettings
    credentials: TlsCredentials
    trust: OverlayTrust

    @property
    def node_id(self) -> bytes:
        return self.signer.node_id

    @property
    def bootstrap_nodes(self) -> tuple[IpAddressPort, ...]:
        return self.settings.bootstrap_nodes


def peer_setup(profile: Profile, **settings_overrides: object) -> PeerSetup:
    """The peer parts of ``profile``; ``settings_overrides`` replace NodeSettings fields
    (local policy such as ``attach_timeout``)."""
    overlay = profile.descriptor.overlay
    try:
        configuration = parse_document(profile.configuration).entry(overlay).configuration
    except ConfigError as exc:
        raise PeerSetupError(f"the profile's configuration document is unusable: {exc}") from None
    digest: SelfSignedDigest | None = None
    if configuration.self_signed_allowed and configuration.self_signed_permitted is not None:
        if configuration.self_signed_permitted.digest not in ("sha1", "sha256"):
            raise PeerSetupError(f"unknown self-signed digest {configuration.self_signed_permitted.digest!r}")
        digest = "sha1" if configuration.self_signed_permitted.digest == "sha1" else "sha256"
    roots = configuration.root_certs or profile.root_certs
    length = configuration.node_id_length
    try:
        signer = Signer.create(profile.private_key, profile.certificate, profile.descriptor.node_ids[0])
    except Exception as exc:  # CertificateError or a Node-ID of the wrong length
        raise PeerSetupError(f"the profile's key and certificate cannot sign: {exc}") from None
    if len(signer.node_id) != length:
        raise PeerSetupError(f"the profile's Node-ID is not {length} bytes long (node-id-length, §11.1)")
    resolver = CertificateResolver(overlay, roots=roots, self_signed_digest=digest, node_id_length=length)
    settings = NodeSettings.from_configuration(configuration, profile.configuration, **settings_overrides)
    return PeerSetup(
        profile=profile,
        configuration=configuration,
        signer=signer,
        resolver=resolver,
        settings=settings,
        credentials=TlsCredentials(profile.private_key, profile.certificate),
        trust=OverlayTrust(overlay, root_certs=roots, self_signed_digest=digest, node_id_length=length),
    )


class PreboundTlsTransport(TlsTransport):
    """TLS/TCP links (§6.6.5) whose listener is a socket bound before the node existed."""

    def __init__(self, endpoint: TlsEndpoint, sock: socket.socket | None) -> None:
        super().__init__(endpoint)
        self._sock = sock

    async def listen(self, address: IpAddressPort | None = None) -> IpAddressPort:
        if self._sock is None:
            return await super().listen(address)
        sock, self._sock = self._sock, None
        # Whoever bound it may have kept SO_REUSEADDR off to hold the port; the listener
        # needs it, or a restarted peer could not bind the port while this one's
        # connections linger in TIME_WAIT (accepted sockets inherit the flag).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener = await self.endpoint.listen(sock=sock)
        host, port = listener.address
        self._address = IpAddressPort(host, port)
        return self._address


def transport_factory(
    setup: PeerSetup, *, sock: socket.socket | None = None, link_config: LinkConfig | None = None
) -> TransportFactory:
    """TLS/TCP transports for ``setup``'s credentials; ``sock`` is a listening socket to use."""

    def build(handler: LinkHandler, node_ids: tuple[bytes, ...]) -> LinkTransport:
        endpoint = TlsEndpoint(setup.credentials, setup.trust, handler, config=link_config)
        return PreboundTlsTransport(endpoint, sock)

    return build


def build_node(
    setup: PeerSetup,
    *,
    sock: socket.socket | None = None,
    rng: random.Random | None = None,
    link_config: LinkConfig | None = None,
    storage: bool = True,
) -> Node:
    """A :class:`Node` of ``setup`` (not started). With ``storage``, it stores data for
    the overlay as a peer (RFC 6940 §7, §10.4): :meth:`Storage.of(node)
    <reload_core.storage.Storage.of>` reaches it. It can AppAttach in any overlay
    (:func:`~reload_core.node.attach_ice.app_attach_manager` finds the manager), so the
    SIP Usage can run on it (:meth:`SipUsage.for_node
    <reload_core.usages.sip.usage.SipUsage.for_node>`)."""
    node = Node(
        setup.signer,
        setup.resolver,
        setup.settings,
        transport_factory(setup, sock=sock, link_config=link_config),
        rng=rng,
    )
    if uses_ice(setup.configuration):
        # Attach with ICE and DTLS/UDP links (RFC 6940 §6.5.1), answer AppAttach (§6.5.2).
        install_ice(node, setup.credentials, setup.trust)
    else:
        # No-ICE Attach, but AppAttach all the same: its connection runs ICE in every
        # overlay (§6.5.2), and SIP reaches the node through it (RFC 7904 §5.1).
        install_ice(node, setup.credentials, setup.trust, attach=False)
    if storage:
        # A storing peer checks SIP-REGISTRATION Stores as RFC 7904 §3.3 asks.
        access = sip_access_policy(setup.configuration)
        Storage.from_configuration(node, setup.resolver, setup.configuration, access=access)
    return node


def bind_listening_socket(
    host: str, port: int = 0, *, listen: bool = True, reuse_address: bool = True
) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: one the OS picks), listening unless
    ``listen`` is false: until then connections to it are refused rather than left
    waiting for a TLS handshake nobody answers. ``reuse_address`` (SO_REUSEADDR) lets a
    restarted peer bind its port while old connections linger in TIME_WAIT; a socket
    bound without it keeps every other socket off its port, listening or not."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that
    # say they are TCP, and accepted sockets inherit the listener's proto. With Nagle on,
    # each small RELOAD message waits ~40 ms for the peer's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


SD_LISTEN_FDS_START = 3


def inherited_listening_socket() -> socket.socket | None:
    """A listening socket passed in by systemd-style socket activation: ``LISTEN_FDS=1``
    and ``LISTEN_PID`` this process, the socket at file descriptor 3 (sd_listen_fds(3)).
    The variables are removed so that child processes do not take the socket for theirs."""
    fds, pid = os.environ.get("LISTEN_FDS"), os.environ.get("LISTEN_PID")
    if fds is None:
        return None
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    if pid is not None and pid != str(os.getpid()):
        return None
    if fds != "1":
        raise PeerSetupError(f"LISTEN_FDS={fds}: a peer listens on exactly one socket")
    sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    if sock.type != socket.SOCK_STREAM:
        raise PeerSetupError("the inherited socket (fd 3) is not a TCP socket")
    os.set_inheritable(sock.fileno(), False)
    return sock


__all__ = [
    "PeerSetup",
    "PeerSetupError",
    "PreboundTlsTransport",
    "bind_listening_socket",
    "build_node",
    "inherited_listening_socket",
    "peer_setup",
    "transport_factory",
]

"""A SIP phone endpoint on a RELOAD overlay: :class:`OverlaySip` (RFC 7904).

It ties one :class:`~app.sip.aio.UserAgent` to one node's
:class:`~reload_core.usages.sip.SipUsage`:

- :meth:`OverlaySip.start` accepts SIP and SIPS AppAttaches (§5.1) and registers our
  AoR, the certificate's user (§3), with contact preferences naming the schemes we
  take (§3.2);
- calls and requests to ``sip:``/``sips:`` AoRs and GRUUs are resolved and connected by
  :class:`~app.sip.overlay.reach.Reacher` (Fetch, forwards, AppAttach to each device,
  fork), also when the UA itself dials (a transfer's REFER target);
- every connection, ours or another node's, is a flow of the UA
  (:class:`~app.sip.overlay.flows.OverlayFlow`) whose peer carries the far end's
  certificate user and Node-ID: the UA takes the caller's identity from it and refuses
  a request whose From is not that user with 403 (§8.2.3);
- our Contact is our GRUU (§6) and our Via says DTLS (§5.1).

Close it (:meth:`OverlaySip.close`) before the node leaves: it signs out (removes the
registration) while the node can still store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence

from app.sip.aio import Call, Listener, UserAgent
from app.sip.message import SipResponse
from app.sip.overlay.flows import OverlayFlow, OverlayFlows
from app.sip.overlay.reach import FORK_GRACE, Reach, Reacher
from app.sip.sdp import SessionHandler, StaticSdpSession
from app.sip.transaction import TimerConfig
from app.sip.ua import PeerInfo, Target, UaConfig
from app.sip.uri import SipUri
from reload_core.usages.sip import Registration, SipConnection, SipScheme, SipUsage, parse_aor


def _host_port(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class OverlaySip:
    """One user's SIP endpoint on the overlay (see the module docstring). Make it inside
    the running event loop.

    ``usage``: the node's SIP Usage (its certificate's user is our AoR). The UA options
    (``display_name``, ``timers``, ``session_factory``, ``auto_answer``,
    ``accept_transfers``, ``info_packages``) are :class:`~app.sip.aio.UserAgent`'s;
    ``auto_ringing`` (:class:`~app.sip.ua.UaConfig`'s) off lets the application decide
    whether an INVITE rings at all (do not disturb, forwarding) before any 180 goes out.
    ``schemes``: what we accept AppAttaches for; ``connect_timeout``: seconds one
    AppAttach may take (default: the SIP Usage's); ``fork_grace``: see
    :data:`~app.sip.overlay.reach.FORK_GRACE`.
    """

    def __init__(
        self,
        usage: SipUsage,
        *,
        display_name: str | None = None,
        timers: TimerConfig | None = None,
        session_factory: Callable[[], SessionHandler] = StaticSdpSession,
        auto_answer: bool = False,
        auto_ringing: bool = True,
        accept_transfers: bool = True,
        info_packages: Iterable[str] = (),
        schemes: Sequence[SipScheme] = (SipScheme.SIP, SipScheme.SIPS),
        connect_timeout: float | None = None,
        fork_grace: float = FORK_GRACE,
    ) -> None:
        self.usage = usage
        self.schemes = tuple(schemes)
        aor = parse_aor(usage.user)
        self.domain = aor.domain
        config = UaConfig(
            SipUri("sip", aor.user, None, aor.domain, None, (), ()),
            display_name=display_name,
            timers=timers or TimerConfig(),
            info_packages=frozenset(info_packages),
            contact=self.contact,
            auto_ringing=auto_ringing,
        )
        self.ua = UserAgent(
            config,
            session_factory=session_factory,
            resolver=self._resolve,
            auto_answer=auto_answer,
            accept_transfers=accept_transfers,
        )
        self.flows = OverlayFlows(self.ua.deliver, self.ua.transport_error, self.domain)
        self.reacher = Reacher(usage, self.flows, connect_timeout=connect_timeout, fork_grace=fork_grace)
        self.registration: Registration | None = None
        self._reaches: dict[int, Reach] = {}
        self._started = False
        self._closed = False

    # ---------------------------------------------------------------- who we are

    @property
    def user(self) -> str:
        """Our certificate's user name, e.g. ``alice@example.org``."""
        return self.usage.user

    @property
    def aor(self) -> str:
        """Our AoR as a SIP URI, e.g. ``sip:alice@example.org``."""
        return f"sip:{self.usage.user}"

    @property
    def node_id(self) -> bytes:
        return self.usage.node_id

    @property
    def gruu(self) -> str:
        """Our GRUU (RFC 7904 §6): reaches this device without a Fetch."""
        return self.usage.gruu()

    def contact(self, peer: PeerInfo) -> str:
        """Our Contact URI on ``peer``'s flow: our GRUU on an overlay connection (``sips:``
        on a SIPS one); on any other transport the address the UA core would use."""
        flow = self.flows.of_peer(peer)
        if flow is not None:
            gruu = self.gruu
            return "sips:" + gruu.split(":", 1)[1] if flow.scheme is SipScheme.SIPS else gruu
        param = "" if peer.transport.upper() == "UDP" else f";transport={peer.transport.lower()}"
        return f"sip:{parse_aor(self.user).user}@{_host_port(peer.local_address)}{param}"

    # ---------------------------------------------------------------- lifecycle

    async def start(self, *, register: bool = True) -> Registration | None:
        """Accept SIP connections and (with ``register``) register our AoR (RFC 7904 §3);
        the :class:`Registration` (its ``state`` says whether the Store went through; it
        is retried and refreshed on its own)."""
        if self._closed:
            raise RuntimeError("the endpoint is closed")
        if not self._started:
            self.usage.listen(self._accepted, self.schemes)
            self._started = True
        if register:
            self.registration = await self.usage.register()
        return self.registration

    def _accepted(self, connection: SipConnection) -> None:
        if self._closed:
            connection.close()
            return
        self.flows.flow(connection)

    async def close(self, *, unregister: bool = True) -> None:
        """End the calls (BYE/CANCEL), stop connecting, close the connections, and close
        the SIP Usage (removing our registration from the overlay with ``unregister``).
        Run it before the node leaves."""
        if self._closed:
            return
        self._closed = True
        await self.ua.close()
        await self.reacher.close()
        await self.flows.close()
        await self.usage.close(remove=unregister)

    # ---------------------------------------------------------------- calls and requests

    async def _resolve(self, uri: SipUri) -> Sequence[Target]:
        """The UA's resolver: its own dials (a transfer target) reach the overlay too."""
        return (await self.reacher.reach(uri)).targets

    async def reach(self, target: str | SipUri, *, scheme: SipScheme | None = None) -> Reach:
        """Resolve and connect ``target`` without sending anything (see
        :meth:`Reacher.reach <app.sip.overlay.reach.Reacher.reach>`)."""
        return await self.reacher.reach(target, scheme=scheme)

    async def call(
        self,
        target: str | SipUri,
        *,
        session: SessionHandler | None = None,
        headers: Iterable[tuple[str, str]] = (),
        scheme: SipScheme | None = None,
    ) -> Call:
        """Call an AoR (every device it is registered at rings; the first to answer
        wins, the others get CANCEL) or a GRUU. Raises
        :class:`~app.sip.overlay.reach.NotReachable` saying why when nobody can be
        reached; otherwise the :class:`~app.sip.aio.Call`, its INVITEs sent."""
        reach = await self.reacher.reach(target, scheme=scheme)
        call = await self.ua.call(list(reach.targets), to=reach.dialled, session=session, headers=headers)
        self._reaches[call.ref] = reach
        return call

    def reach_of(self, call: Call) -> Reach | None:
        """How an outgoing call placed by :meth:`call` was reached (timings, branches)."""
        return self._reaches.get(call.ref)

    async def send_message(
        self, target: str | SipUri, text: str, *, timeout: float | None = None
    ) -> SipResponse:
        """A MESSAGE (RFC 3428) outside any call, to the newest registered device of
        ``target``; its final response."""
        reach = await self.reacher.reach(target)
        return await self.ua.request(
            "MESSAGE",
            reach.targets[0],
            to=reach.dialled,
            body=text.encode(),
            content_type="text/plain;charset=utf-8",
            timeout=timeout,
        )

    async def next_incoming_call(self, timeout: float | None = None) -> Call:
        return await self.ua.next_incoming_call(timeout)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Every event of the UA (:mod:`app.sip.events`); returns the remover."""
        return self.ua.add_listener(listener)

    @property
    def connections(self) -> tuple[OverlayFlow, ...]:
        """The open SIP connections, as flows."""
        return self.flows.all

    async def close_connections(self) -> None:
        """Close every SIP connection (the next call makes new AppAttaches)."""
        await asyncio.gather(*(flow.close() for flow in self.flows.all), return_exceptions=True)


__all__ = ["OverlaySip"]

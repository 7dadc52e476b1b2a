"""The phone service: :class:`Phone`, shared by the GUI and the CLI.

It runs one profile folder (:mod:`app.profile`): an operator's overlay (``p2psip
enroll``) or the built-in local overlay (``p2psip init``). Everything is asyncio; the
state goes out as frozen events (:mod:`app.phone.events`) to listeners::

    phone = await Phone.open(profile_dir, sip_listen="udp:127.0.0.1:5070")
    remove = phone.add_listener(print)
    await phone.start()                      # joins, registers; REGISTERED or OFFLINE (why)
    call = await phone.call("bob")           # an AoR, a bare name, a GRUU, sip:user@host
    await call.wait_state(CallState.CONNECTED)
    await call.hold(); await call.resume(); await call.transfer("carol"); await call.hangup()
    record = await phone.send_message("bob", "hello")   # delivered / failed (and why)
    await phone.add_buddy("bob", "Bob")      # presence: PresenceChanged events
    await phone.update_settings(do_not_disturb=True, forward_no_answer="carol")
    await phone.close()                      # hangs up, signs out, leaves the overlay

What it does, and where:

- getting onto the overlay and staying there (peer or client, rejoining after the network
  dropped): :mod:`app.phone.network`;
- calls: :class:`~app.phone.phone_call.PhoneCall` on the SIP endpoint of the overlay
  (:class:`~app.sip.overlay.OverlaySip`: resolve, AppAttach, fork, RFC 7904) or of plain
  SIP (:mod:`app.phone.plain`); the state machine in :mod:`app.phone.calls`; words in
  :mod:`app.phone.words`;
- incoming calls: do not disturb (480 with the reason "Do Not Disturb"), forwarding
  always (our registration becomes a forward to the target, RFC 7904 §3.1, and a call that
  reaches this device anyway gets 302), on busy and on no answer (302 with the target as
  Contact, RFC 3261 §21.3.3), busy (486 past ``max_calls``), auto-answer;
- several calls at once: one is active, the others held (answering, dialling or resuming
  one holds the connected one first);
- presence of buddies: :mod:`app.phone.presence`; messages (RFC 3428) with their
  delivery state, and the call history, in the store (:mod:`app.phone.store`);
- the profile's configuration and certificate: :mod:`app.phone.upkeep`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.peer import PeerSetup, PeerSetupError, peer_setup
from app.phone.calls import ANSWERED_STATES, CallDirection, CallState, EndCause
from app.phone.events import (
    BuddiesChanged,
    CertificateAction,
    CertificateNotice,
    ConfigurationUpdated,
    DtmfReceived,
    KeyChanged,
    MessageReceived,
    MessageStateChanged,
    OverlayRole,
    PhoneEvent,
    PhoneState,
    PhoneStateChanged,
    PresenceChanged,
    SettingsChanged,
)
from app.phone.local_config import is_local_overlay
from app.phone.local_overlay import LocalOverlay, LocalOverlayError
from app.phone.media import MediaBinder, MediaKit, ice_server
from app.phone.names import is_answering
from app.phone.network import (
    EnrolledJoiner,
    JoinRole,
    LocalJoiner,
    NetworkOptions,
    OverlayKeeper,
    OverlaySession,
)
from app.phone.phone_call import CallActionError, OfflineError, PhoneCall
from app.phone.pinning import PinResult
from app.phone.plain import PlainSip, SipListen, parse_sip_listen
from app.phone.presence import CheckResult, PresenceMonitor, PresencePolicy, PresenceScheduler
from app.phone.snapshot import OverlaySnapshot, snapshot_of
from app.phone.store import (
    AsyncPhoneStore,
    CallRecord,
    Conversation,
    Delivery,
    MessageDirection,
    MessageRecord,
    Settings,
    StoreError,
)
from app.phone.targets import DialTarget, TargetError, TargetKind, normalise_aor, parse_target
from app.phone.trust import KeyPins
from app.phone.upkeep import (
    CONFIG_REFRESH,
    RenewalError,
    config_refresh_delay,
    plan_certificate,
    refetch_configuration,
    renew_enrolled,
    renew_self_signed,
    save_configuration,
)
from app.phone.words import DND_PHRASE, short_name, status_words, unreachable_words
from app.profile import Profile, ProfileError, load_profile
from app.sip.aio import Call, CallError, UserAgent
from app.sip.errors import SipError
from app.sip.events import IncomingCall, InfoReceived, RemoteIdentity, TransferRequested, UaEvent
from app.sip.events import MessageReceived as SipMessageReceived
from app.sip.overlay import NotReachable, OverlaySip
from app.sip.sdp import SessionHandler, StaticSdpSession
from app.sip.transaction import TimerConfig
from app.sip.uri import SipUri
from reload_core.config import ConfigError, OverlayConfiguration
from reload_core.node.attach_ice import app_attach_manager
from reload_core.node.errors import NodeError
from reload_core.node.events import ConfigurationChanged, ConfigurationOutdated, NodeEvent
from reload_core.security.certificates import NodeCertificate
from reload_core.storage.errors import StorageError
from reload_core.usages.sip import Outcome, Registration, SipUsage, SipUsageError, parse_aor
from reload_core.usages.turn import TurnCredentials, TurnService, relays

if TYPE_CHECKING:
    from reload_core.node.node import Node

log = logging.getLogger("p2psip.phone")

PhoneListener = Callable[[PhoneEvent], None]

PRESENCE_PING_TIMEOUT = 3.0
MESSAGE_TIMEOUT = 40.0
CERTIFICATE_CHECK = 12 * 3600.0
OUTDATED_REFETCH = 60.0
MAX_CALLS = 4
"""Calls at once by default; one more is refused busy (486)."""


class PhoneError(Exception):
    """The phone cannot do what was asked; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class PhoneOptions:
    """Local choices of a running phone (the user's settings are in the store)."""

    sip_listen: SipListen | None = None
    auto_answer: bool | None = None  # overrides the stored setting for this run
    network: NetworkOptions = field(default_factory=NetworkOptions)
    session_factory: Callable[[], SessionHandler] = StaticSdpSession
    timers: TimerConfig | None = None
    ring_timeout: float = 90.0  # an outgoing call nobody answers is given up ("no answer")
    max_calls: int = MAX_CALLS
    presence: PresencePolicy = field(default_factory=PresencePolicy)
    presence_ping_timeout: float = PRESENCE_PING_TIMEOUT
    message_timeout: float = MESSAGE_TIMEOUT
    config_refresh: float = CONFIG_REFRESH
    certificate_check: float = CERTIFICATE_CHECK
    local_browse_time: float | None = None  # local overlay: DNS-SD browse (default: the runner's)
    local_listen_host: str | None = None  # local overlay: where to listen (default: the LAN address)
    pin_keys: bool | None = None  # trust on first use of callers' keys (default: on the local overlay only)
    # Call audio (app.phone.media). media=False: calls carry a static SDP and no audio
    # (StaticSdpSession), as a phone without aiortc would; ``p2psip phone`` turns it on.
    media: bool = False
    play: Path | None = None  # a WAV sent (looped) instead of the microphone
    record: Path | None = None  # a WAV that gets what is heard, instead of the output device
    echo: bool = False  # the echo service: auto-answer, send back what is heard 1 s later
    use_devices: bool = True  # False: never open a sound device (tests, benchmarks)
    ice_servers: tuple[str, ...] = ()  # stun:HOST:PORT, turn:USER:PASSWORD@HOST:PORT
    relay_only: bool = False  # offer relayed ICE candidates only: media through TURN, our addresses hidden
    audio_onsets: bool = False  # CallMedia onset events (p2psip bench call)
    quality_interval: float = 2.0  # seconds between CallQuality events


@dataclass(frozen=True, slots=True)
class Buddy:
    """A buddy with what presence knows: ``online`` None until the first check."""

    aor: str
    display_name: str
    online: bool | None
    last_seen: float | None
    added: float


class Phone:
    """The phone service for one profile (see the module docstring). Make it with
    :meth:`open` inside the running event loop."""

    def __init__(
        self,
        profile: Profile,
        setup: PeerSetup,
        store: AsyncPhoneStore,
        settings: Settings,
        options: PhoneOptions,
    ) -> None:
        self.profile = profile
        self.setup = setup
        self._store = store
        self._settings = settings
        self.options = options
        self.user = profile.descriptor.user_name
        self._domain = self.user.split("@", 1)[1]
        self._listeners: list[PhoneListener] = []
        self._tasks: set[asyncio.Task[object]] = set()
        self._calls: dict[int, PhoneCall] = {}
        self._by_ref: dict[tuple[int, int], PhoneCall] = {}
        self._refer_targets: dict[tuple[int, int], str] = {}
        self._watched: set[int] = set()  # calls whose SIP connection is watched
        self._numbers = 0
        self._names: dict[str, str] = {}
        self._incoming: asyncio.Queue[PhoneCall] = asyncio.Queue()
        self._state = PhoneState.STOPPED
        self._reason = "not started"
        self._role: OverlayRole | None = None
        self._state_changed = asyncio.Event()
        self._plain: PlainSip | None = None
        self._plain_lock = asyncio.Lock()
        self._local: LocalOverlay | None = None
        self._upkeep: asyncio.Task[None] | None = None
        self._config_wake = asyncio.Event()
        self._outdated_fetch = -OUTDATED_REFETCH
        self._closed = False
        self.pins: KeyPins | None = None
        """Trust on first use of keys (:mod:`app.phone.trust`), when on."""
        self.presence = PresenceMonitor(
            self._check_presence,
            self._presence_changed,
            PresenceScheduler(options.presence),
        )
        self.media: MediaKit | None = None
        """The calls' audio (:mod:`app.phone.media`), when calls carry media."""
        self._session_factory = options.session_factory
        self._echo: PlainSip | None = None
        self._echo_lock = asyncio.Lock()
        given = getattr(options.session_factory, "__self__", None)
        if isinstance(given, MediaKit):  # the GUI's kit (app.gui.call_media): the phone binds it
            self.media = given
        elif options.media or options.echo:
            try:
                servers = [ice_server(url) for url in options.ice_servers]
            except ValueError as exc:
                raise PhoneError(str(exc)) from None
            self.media = MediaKit(
                settings,
                use_devices=options.use_devices,
                play=options.play,
                record=options.record,
                echo=options.echo,
                onsets=options.audio_onsets,
                ice_servers=servers,
                relay_only=options.relay_only,
            )
            self._session_factory = self.media.session_factory
        if self.media is not None:
            MediaBinder(self, self.media, quality_interval=options.quality_interval)
            self.media.overlay_stun = self._overlay_stun
        self.keeper = OverlayKeeper(
            self._joiner(),
            options.network,
            self._make_sip,
            self._register,
            self._on_keeper_state,
            self._session_up,
            self._session_down,
        )

    # ================================================================ opening

    @classmethod
    async def open(
        cls,
        profile_dir: str | os.PathLike[str],
        *,
        sip_listen: str | SipListen | None = None,
        auto_answer: bool | None = None,
        role: JoinRole | str | None = None,
        options: PhoneOptions | None = None,
    ) -> Phone:
        """Load the profile and its store; nothing joins yet (:meth:`start`). Raises
        :class:`PhoneError` with one line saying what is wrong."""
        opts = options or PhoneOptions()
        changes: dict[str, Any] = {}
        if sip_listen is not None:
            try:
                changes["sip_listen"] = (
                    parse_sip_listen(sip_listen) if isinstance(sip_listen, str) else sip_listen
                )
            except ValueError as exc:
                raise PhoneError(str(exc)) from None
        if auto_answer is not None:
            changes["auto_answer"] = auto_answer
        if role is not None:
            try:
                changes["network"] = dataclasses.replace(opts.network, role=JoinRole(role))
            except ValueError:
                raise PhoneError(f"role {role!r} is not auto, peer or client") from None
        opts = dataclasses.replace(opts, **changes)
        try:
            profile = load_profile(profile_dir)
            setup = peer_setup(profile)
        except (ProfileError, PeerSetupError) as exc:
            raise PhoneError(str(exc)) from None
        try:
            store = await AsyncPhoneStore.in_profile(profile.directory)
        except StoreError as exc:
            raise PhoneError(str(exc)) from None
        try:
            settings = await store.settings()
            interrupted = await store.end_interrupted_calls()
            if interrupted:
                log.info("%d call(s) of the last run closed in the history", interrupted)
            for message in await store.pending_messages():
                await store.update_message_state(
                    message.id, Delivery.FAILED, reason="the phone stopped before it was sent"
                )
        except StoreError as exc:
            await store.aclose()
            raise PhoneError(str(exc)) from None
        try:
            phone = cls(profile, setup, store, settings, opts)
        except PhoneError:
            await store.aclose()
            raise
        try:
            for contact in await store.list_contacts():
                phone._names[contact.aor] = contact.display_name
            pin = opts.pin_keys if opts.pin_keys is not None else is_local_overlay(profile.descriptor.overlay)
            if pin:
                phone.pins = KeyPins(await store.pins(), store, phone.spawn)
        except StoreError as exc:
            await store.aclose()
            raise PhoneError(str(exc)) from None
        return phone

    def _joiner(self) -> EnrolledJoiner | LocalJoiner:
        if is_local_overlay(self.profile.descriptor.overlay):
            kwargs: dict[str, Any] = {}
            if self.options.network.registration_lifetime is not None:
                kwargs["registration_lifetime"] = self.options.network.registration_lifetime
            if self.options.local_browse_time is not None:
                kwargs["browse_time"] = self.options.local_browse_time
            if self.options.local_listen_host is not None:
                kwargs["listen_host"] = self.options.local_listen_host
            try:
                self._local = LocalOverlay(self.profile, **kwargs)
            except LocalOverlayError as exc:
                raise PhoneError(str(exc)) from None
            return LocalJoiner(self._local)
        return EnrolledJoiner(self.setup, self.options.network)

    # ================================================================ who and where

    @property
    def domain(self) -> str:
        """Our AoR's domain: bare user names are completed with it."""
        return self._domain

    @property
    def aor(self) -> str:
        """``sip:alice@example.org``."""
        return f"sip:{self.user}"

    @property
    def display_name(self) -> str:
        return self._settings.display_name or self.profile.descriptor.display_name or ""

    @property
    def node_id(self) -> bytes:
        return self.setup.node_id

    @property
    def overlay(self) -> str:
        return self.profile.descriptor.overlay

    @property
    def store(self) -> AsyncPhoneStore:
        return self._store

    @property
    def state(self) -> PhoneState:
        return self._state

    @property
    def state_reason(self) -> str:
        return self._reason

    @property
    def name_taken(self) -> str | None:
        """On the local overlay: why our name is not ours (another device holds it, first
        come first served), after an attempt to join found so; None otherwise."""
        joiner = self.keeper.joiner
        return joiner.name_taken if isinstance(joiner, LocalJoiner) else None

    @property
    def role(self) -> OverlayRole | None:
        """Peer or client, while on the overlay."""
        return self._role

    @property
    def session(self) -> OverlaySession | None:
        """The current overlay session (node, SIP Usage, SIP endpoint), None while offline."""
        return self.keeper.session

    @property
    def gruu(self) -> str | None:
        """Our GRUU (RFC 7904 §6), while on the overlay."""
        session = self.keeper.session
        return session.sip.gruu if session is not None else None

    @property
    def plain_uri(self) -> str | None:
        """Our plain SIP address with ``sip_listen``."""
        return self._plain.uri() if self._plain is not None else None

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def auto_answer(self) -> bool:
        if self.options.echo:
            return True
        override = self.options.auto_answer
        return override if override is not None else self._settings.auto_answer

    @property
    def calls(self) -> tuple[PhoneCall, ...]:
        """The calls going on now."""
        return tuple(c for c in self._calls.values() if c.live)

    def get_call(self, number: int) -> PhoneCall | None:
        return self._calls.get(number)

    def overlay_snapshot(self, *, errors: Sequence[str] = ()) -> OverlaySnapshot | None:
        """This node in its overlay now (:mod:`app.phone.snapshot`: neighbours, fingers,
        links with their RTTs, stored data), None while off the overlay. ``errors``: the
        caller's recent errors, shown with it."""
        session = self.keeper.session
        return None if session is None else snapshot_of(session.node, self.overlay, errors=errors)

    # ================================================================ listeners

    def add_listener(self, listener: PhoneListener) -> Callable[[], None]:
        """Call ``listener`` with every event; returns the function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def emit(self, event: PhoneEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("phone listener failed on %s", type(event).__name__)

    def spawn(self, coroutine: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("phone task failed", exc_info=task.exception())

    # ================================================================ lifecycle

    async def start(self) -> PhoneState:
        """Open the plain SIP endpoint (with ``sip_listen``) and get onto the overlay;
        returns the state after the first attempt: REGISTERED, or OFFLINE with the reason
        in :attr:`state_reason` (it goes on trying by itself)."""
        if self._closed:
            raise PhoneError("the phone is closed")
        if self.options.sip_listen is not None and self._plain is None:
            try:
                await self._plain_endpoint()
            except (OSError, ValueError) as exc:
                raise PhoneError(str(exc)) from None
        self.presence.pause(True)
        self.presence.start()
        for contact in await self._store.list_contacts():
            self.presence.add(contact.aor, last_seen=contact.last_seen)
        self._upkeep = asyncio.get_running_loop().create_task(self._upkeep_loop())
        return await self.keeper.start()

    async def wait_state(self, *states: PhoneState, timeout: float | None = None) -> PhoneState:
        """Until the phone is in one of ``states``."""
        async with asyncio.timeout(timeout):
            while self._state not in states:
                self._state_changed.clear()
                await self._state_changed.wait()
        return self._state

    def retry_now(self) -> None:
        """Try to get back onto the overlay now rather than after the back-off."""
        self.keeper.retry_now()

    async def close(self, *, sign_out: bool = True) -> None:
        """Sign out: end the calls, remove our registration, leave the overlay (§10.9),
        close the sockets and the store. With ``sign_out`` false the registration is left
        behind and the node closes without a Leave, as when the phone is cut off: the
        overlay finds out by itself (its links drop, Pings go unanswered)."""
        if self._closed:
            return
        self._closed = True
        await self.presence.close()
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        for call in self.calls:
            call.end(EndCause.PHONE_CLOSED, "the phone was closed")
            if call.sip is not None:
                with contextlib.suppress(CallError, SipError):
                    call.sip.hangup()
        await self.keeper.close(sign_out=sign_out)
        if self._plain is not None:
            await self._plain.close()
        if self._echo is not None:
            await self._echo.close()
        if (
            self.media is not None
            and self._session_factory == self.media.session_factory
            and not isinstance(getattr(self.options.session_factory, "__self__", None), MediaKit)
        ):
            self.media.close()  # ours (the GUI closes its own kit)
        for call in list(self._calls.values()):
            await call.settled()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._store.aclose()

    # ================================================================ the overlay

    def _on_keeper_state(
        self, state: PhoneState, reason: str, role: OverlayRole | None, retry_in: float | None
    ) -> None:
        self._state, self._reason = state, reason
        if role is not None or state in (PhoneState.OFFLINE, PhoneState.JOINING, PhoneState.CLOSED):
            self._role = role
        self._state_changed.set()
        if not self._closed:
            self.presence.pause(state is not PhoneState.REGISTERED)
        self.emit(PhoneStateChanged(state, reason, self._role, time.time(), retry_in))

    def _make_sip(self, usage: SipUsage) -> OverlaySip:
        return OverlaySip(
            usage,
            display_name=self.display_name or None,
            timers=self.options.timers,
            session_factory=self._session_factory,
            auto_answer=False,
            auto_ringing=False,  # the phone decides (DND, forwarding, busy) before a 180
            accept_transfers=True,
            connect_timeout=self.options.network.connect_timeout,
        )

    async def _register(self, session: OverlaySession) -> Registration:
        """Listen for SIP connections and register our AoR, or forward it (forwarding
        always, RFC 7904 §3.1)."""
        forward = self._settings.forward_always
        await session.sip.start(register=forward is None)
        if forward is not None:
            return await session.usage.forward(None, forward)
        registration = session.usage.registrations.get(self.user)
        assert registration is not None
        return registration

    def _session_up(self, session: OverlaySession) -> None:
        ua = session.sip.ua
        ua.add_listener(lambda event: self._on_ua_event(ua, event, plain=False))
        session.node.add_listener(self._on_node_event)
        if self.media is not None:
            self.spawn(self._find_turn(session))

    async def _find_turn(self, session: OverlaySession) -> None:
        """TURN servers for call media from the overlay (TURN-SERVICE, RFC 6940 §9), with
        time-limited credentials from the configuration's shared secret (coturn's
        use-auth-secret; RELOAD carries no TURN credentials). None found, or no secret to
        authenticate with: host (and configured) candidates only, never a public default."""
        media = self.media
        config = session.usage.configuration
        if media is None or config.turn_density == 0 or not config.shared_secret:
            return
        try:
            found = await TurnService(session.usage.storage, turn_density=config.turn_density).find(
                attempts=2
            )
        except (StorageError, NodeError, OSError, TimeoutError) as exc:
            log.info("no TURN server found through the overlay: %s", exc)
            return
        credentials = TurnCredentials(shared_secret=config.shared_secret)
        from aiortc import RTCIceServer  # the overlay has TURN: calls will need aiortc

        servers = []
        for relay in relays(found, credentials, session.node.node_id.hex(), time.time()):
            host, port = relay.address[0], relay.address[1]
            servers.append(
                RTCIceServer(urls=f"turn:{host}:{port}", username=relay.username, credential=relay.password)
            )
        media.overlay_ice_servers = servers
        if servers:
            log.info("call media may relay through %d TURN server(s) of the overlay", len(servers))

    def _overlay_stun(self) -> list[tuple[str, int]]:
        """The STUN servers the overlay offers now (the kit asks when it builds a call's
        media): server-reflexive candidates from them let media between two phones
        behind NATs go straight from NAT to NAT."""
        session = self.keeper.session
        return overlay_stun_servers(session.node) if session is not None else []

    def _session_down(self, session: OverlaySession) -> None:
        ua = session.sip.ua
        for call in list(self._calls.values()):
            if call.live and call.ua is ua:
                call.end(EndCause.CONNECTION_LOST, "the phone lost the overlay")

    def _on_node_event(self, event: NodeEvent) -> None:
        if isinstance(event, ConfigurationChanged):
            self.spawn(self._configuration_pushed(event.sequence))
        elif isinstance(event, ConfigurationOutdated):
            # The overlay runs a newer configuration than ours; a peer pushes it, but only
            # one that fits in max-message-size gets through: fetch it (§11.2), at most
            # once a minute however many answers say so.
            now = asyncio.get_running_loop().time()
            if now - self._outdated_fetch >= OUTDATED_REFETCH:
                self._outdated_fetch = now
                self._config_wake.set()

    # ================================================================ calls

    def next_number(self) -> int:
        self._numbers += 1
        return self._numbers

    def display_name_of(self, aor: str) -> str:
        return self._names.get(aor, "")

    def _target(self, text: str) -> DialTarget:
        try:
            return parse_target(text, domain=self._domain)
        except TargetError as exc:
            raise PhoneError(str(exc)) from None

    async def call(self, target: str) -> PhoneCall:
        """Call ``target`` (a user name, an AoR, a GRUU or ``sip:user@host[:port]``).
        Returns at once, DIALING; the call goes on by itself and reports every change.
        A connected call is put on hold first. :class:`PhoneError` for a TARGET that
        cannot be called at all."""
        if self._closed:
            raise PhoneError("the phone is closed")
        parsed = self._target(target)
        if self._is_echo_test(parsed):
            parsed = await self._echo_target(parsed)
        await self.hold_others(None)
        call = PhoneCall(
            self,
            self.next_number(),
            CallDirection.OUTGOING,
            parsed.aor,
            verified=False,
            target=parsed,
            plain=parsed.kind is TargetKind.DIRECT,
        )
        self._calls[call.id] = call
        call.announce()
        call.later(self.options.ring_timeout, lambda: self._ring_timeout(call))
        call.dial(parsed)
        return call

    def _is_echo_test(self, target: DialTarget) -> bool:
        """echo@<local overlay>: every phone on the local overlay has the echo test built
        in (on an operator's overlay the operator runs ``p2psip phone --echo`` as ``echo``)."""
        return (
            self.media is not None
            and target.kind is not TargetKind.DIRECT
            and target.aor == f"sip:echo@{self._domain}"
            and is_local_overlay(self.profile.descriptor.overlay)
            and self.user.split("@", 1)[0] != "echo"
        )

    async def _echo_target(self, target: DialTarget) -> DialTarget:
        """The built-in echo test: a second user agent in this process, listening for
        plain SIP on 127.0.0.1, answering at once with a media session that sends back
        what it hears a second later (:class:`app.phone.media.EchoProcessor`). The call
        goes out of our plain SIP endpoint to it: the whole SIP and media stack (INVITE,
        SDP offer/answer, ICE on this machine's interface address, DTLS-SRTP, codec,
        playout) runs both ways, only the overlay lookup is left out."""
        async with self._echo_lock:
            if self._echo is None:
                kit = MediaKit(self._settings, use_devices=False, echo=True)
                aor = SipUri("sip", "echo", None, self._domain, None, (), ())
                echo = await PlainSip.open(
                    aor,
                    listen=SipListen("udp", "127.0.0.1", 0),
                    display_name="Echo test",
                    session_factory=kit.session_factory,
                    timers=self.options.timers,
                )
                echo.ua.auto_answer = True
                self._echo = echo
            uri = self._echo.uri()
        assert uri is not None
        return DialTarget(TargetKind.DIRECT, uri, target.aor, target.user)

    def _ring_timeout(self, call: PhoneCall) -> None:
        if call.live and call.state not in ANSWERED_STATES:
            call.give_up(EndCause.NO_ANSWER, "no answer")

    def new_session(self) -> SessionHandler:
        return self._session_factory()

    async def place(
        self, call: PhoneCall, target: DialTarget, session: SessionHandler
    ) -> tuple[UserAgent, Call]:
        """Send the INVITE for ``call``: over plain SIP, or through the overlay."""
        if target.kind is TargetKind.DIRECT:
            plain = await self._plain_endpoint()
            sip = await plain.ua.call(target.uri, to=target.uri, session=session)
            return plain.ua, sip
        overlay = self.keeper.session
        if overlay is None:
            raise OfflineError(f"you are offline: {self._reason}")
        sip = await overlay.sip.call(target.uri, session=session)
        return overlay.sip.ua, sip

    def bind(self, call: PhoneCall, ua: UserAgent, ref: int) -> None:
        self._by_ref[(id(ua), ref)] = call

    def call_ended(self, call: PhoneCall) -> None:
        for key, bound in list(self._by_ref.items()):
            if bound is call:
                del self._by_ref[key]

    async def hold_others(self, keep: PhoneCall | None) -> None:
        """Put every connected call but ``keep`` on hold (one call is active at a time)."""
        for other in self.calls:
            if other is not keep and other.state is CallState.CONNECTED:
                try:
                    await other.hold()
                except CallActionError as exc:
                    log.warning("call %d could not be held: %s", other.id, exc)

    def trust(self, identity: RemoteIdentity) -> bool:
        """Whether ``identity`` counts as verified: its certificate was checked (an overlay
        connection) and, with key pinning on, its key is the one pinned for its AoR
        (:mod:`app.phone.trust`); a changed key is announced with :class:`KeyChanged`."""
        if not identity.verified or identity.node_id is None:
            return False
        if self.pins is None:
            return True
        certificate = self._certificate_of(identity.node_id)
        if certificate is None:
            return True  # the connection is gone already; it was checked when made
        check = self.pins.check(identity.aor, certificate)
        if check.result is PinResult.CHANGED:
            self.emit(
                KeyChanged(
                    identity.aor, identity.node_id, check.pinned.node_id, check.pinned.first_seen, time.time()
                )
            )
            return False
        return True

    def watch_connection(self, call: PhoneCall, identity: RemoteIdentity) -> None:
        """End ``call`` when the SIP connection to its far end closes. A phone that
        vanished (killed, cut off) sends no BYE; its AppAttach connection closes once ICE
        consent expires (RFC 7675) or DTLS closes, and nothing else would end a call whose
        far end is gone: it would stay connected for ever."""
        session = self.keeper.session
        node_id = identity.node_id
        if call.plain or session is None or node_id is None or call.id in self._watched:
            return
        for flow in session.sip.connections:
            if flow.sip_connection.verified_node_id == node_id:
                self._watched.add(call.id)
                flow.closed.add_done_callback(lambda _: self._connection_closed(call))
                return

    def _connection_closed(self, call: PhoneCall) -> None:
        self._watched.discard(call.id)
        if not call.live or self._closed:
            return
        call.end(EndCause.CONNECTION_LOST, f"the connection to {call.name} was lost")
        if call.sip is not None:
            with contextlib.suppress(CallError, SipError):
                call.sip.hangup()

    def _certificate_of(self, node_id: bytes) -> NodeCertificate | None:
        session = self.keeper.session
        if session is None:
            return None
        for flow in session.sip.connections:
            connection = flow.sip_connection
            if connection.verified_node_id == node_id:
                return connection.peer.certificate
        return None

    def accept_key(self, aor: str) -> bool:
        """The user trusts the new key ``aor`` came with (after a :class:`KeyChanged`): it
        is pinned in place of the old one. False if there was no changed key."""
        if self.pins is None:
            return False
        return self.pins.accept(self._aor(aor)) is not None

    async def next_incoming_call(self, timeout: float | None = None) -> PhoneCall:
        """The next incoming call that rings (calls refused at once are not)."""
        return await asyncio.wait_for(self._incoming.get(), timeout)

    def _on_ua_event(self, ua: UserAgent, event: UaEvent, *, plain: bool) -> None:
        if isinstance(event, IncomingCall):
            self._incoming_call(ua, event, plain=plain)
            return
        if isinstance(event, SipMessageReceived):
            self.spawn(self._message_in(event, plain=plain))
            return
        if isinstance(event, TransferRequested):
            self._refer_targets[(id(ua), event.call)] = event.refer_to
        ref = getattr(event, "call", None)
        if not isinstance(ref, int):
            return
        call = self._by_ref.get((id(ua), ref))
        if call is None:
            call = self._adopt_transfer(ua, ref, plain=plain)
        if call is not None:
            call.on_sip(event)
            if isinstance(event, InfoReceived) and (self.media is None or self.media.audio_of(call) is None):
                self._info_digit(call, event)  # with media, the call's SessionDtmf takes INFO digits

    def _info_digit(self, call: PhoneCall, event: InfoReceived) -> None:
        """A DTMF digit in an INFO (RFC 6086, application/dtmf-relay) of a call without media."""
        from app.media.dtmf_call import DtmfReceived as DtmfDigit
        from app.media.dtmf_call import DtmfReceiver

        received = DtmfReceiver()
        received.add_listener(
            lambda digit: (
                self.emit(DtmfReceived(call.id, digit.digit, digit.method.value, time.time()))
                if isinstance(digit, DtmfDigit)
                else None
            )
        )
        received.on_sip_event(event)

    def _adopt_transfer(self, ua: UserAgent, ref: int, *, plain: bool) -> PhoneCall | None:
        """A call our UA placed by itself for a REFER we accepted (RFC 3515): the phone
        takes it on as an outgoing call to the Refer-To target."""
        for original_ref, original in ua.calls.items():
            placed = original.transferred_to
            if placed is None or placed.ref != ref:
                continue
            refer_to = self._refer_targets.pop((id(ua), original_ref), "")
            try:
                target = parse_target(refer_to, domain=self._domain)
            except TargetError:
                target = None
            peer = target.aor if target is not None else ""
            call = PhoneCall(
                self,
                self.next_number(),
                CallDirection.OUTGOING,
                peer or refer_to,
                verified=False,
                target=target,
                plain=plain,
            )
            call.sip, call.ua = placed, ua
            self._calls[call.id] = call
            self.bind(call, ua, ref)
            call.announce()
            return call
        return None

    def _incoming_call(self, ua: UserAgent, event: IncomingCall, *, plain: bool) -> None:
        identity = event.identity
        peer = identity.aor
        call = PhoneCall(
            self, self.next_number(), CallDirection.INCOMING, peer, verified=self.trust(identity), plain=plain
        )
        call.sip, call.ua = ua.calls.get(event.call), ua
        self._calls[call.id] = call
        self.bind(call, ua, event.call)
        if not plain:
            self.watch_connection(call, identity)
        if peer in self.presence.scheduler:
            self.presence.seen(peer)
        s = self._settings
        others = [c for c in self.calls if c is not call]
        in_call = any(c.state in ANSWERED_STATES for c in others)
        if s.forward_always is not None:
            self._forward(call, s.forward_always, "")
        elif s.do_not_disturb:
            call.refuse(480, EndCause.DO_NOT_DISTURB, "not put through: do not disturb", reason=DND_PHRASE)
        elif in_call and s.forward_busy is not None:
            self._forward(call, s.forward_busy, " (you were busy)")
        elif len(others) >= self.options.max_calls:
            call.refuse(486, EndCause.BUSY, "you were busy")
        else:
            call.ring()
            call.announce()
            self._incoming.put_nowait(call)
            if self.auto_answer:
                self.spawn(self._auto_answer(call))
            elif s.forward_no_answer is not None:
                target = s.forward_no_answer
                call.later(float(s.no_answer_seconds), lambda: self._forward(call, target, " (no answer)"))

    async def _auto_answer(self, call: PhoneCall) -> None:
        with contextlib.suppress(CallActionError):
            await call.answer()

    def _forward(self, call: PhoneCall, target: str, why: str) -> None:
        """Send a ringing incoming call to ``target``: 302 with it as Contact (RFC 3261
        §21.3.3); the caller's phone dials it."""
        if not call.live or call.state is not CallState.RINGING:
            return
        try:
            parsed = parse_target(target, domain=self._domain)
        except TargetError:
            call.refuse(480, EndCause.UNAVAILABLE, f"could not forward to {target}")
            return
        name = self.display_name_of(parsed.aor) or short_name(parsed.aor)
        call.refuse(
            302,
            EndCause.FORWARDED,
            f"forwarded to {name}{why}",
            headers=[("Contact", f"<{parsed.uri}>")],
            missed=False,
        )

    # ================================================================ plain SIP

    async def _plain_endpoint(self) -> PlainSip:
        async with self._plain_lock:
            if self._plain is None:
                aor = SipUri("sip", self.user.split("@", 1)[0], None, self._domain, None, (), ())
                directory = self.profile.directory
                plain = await PlainSip.open(
                    aor,
                    listen=self.options.sip_listen,
                    display_name=self.display_name or None,
                    session_factory=self._session_factory,
                    timers=self.options.timers,
                    credentials=(directory / "node-key.pem", directory / "node-cert.pem"),
                )
                plain.ua.add_listener(lambda event: self._on_ua_event(plain.ua, event, plain=True))
                self._plain = plain
            return self._plain

    # ================================================================ messages

    async def send_message(self, target: str, text: str, *, timeout: float | None = None) -> MessageRecord:
        """Send a text message (RFC 3428): stored at once (SENDING), then SENT, then
        DELIVERED or FAILED with the reason in words; each step is a
        :class:`MessageStateChanged`. Returns the final record. A message to someone who
        is not online fails at once."""
        parsed = self._target(target)
        record = await self._store.add_message(MessageDirection.OUTGOING, parsed.aor, text)
        self.emit(MessageStateChanged(record, time.time()))
        name = self.display_name_of(parsed.aor) or short_name(parsed.aor)
        limit = timeout if timeout is not None else self.options.message_timeout
        try:
            if parsed.kind is TargetKind.DIRECT:
                plain = await self._plain_endpoint()
                record = await self._message_state(record, Delivery.SENT)
                response = await plain.ua.send_message(parsed.uri, text, timeout=limit)
            else:
                session = self.keeper.session
                if session is None:
                    return await self._message_state(
                        record, Delivery.FAILED, f"you are offline: {self._reason}"
                    )
                reach = await session.sip.reach(parsed.uri)
                record = await self._message_state(record, Delivery.SENT)
                response = await session.sip.ua.request(
                    "MESSAGE",
                    reach.targets[0],
                    to=reach.dialled,
                    body=text.encode(),
                    content_type="text/plain;charset=utf-8",
                    timeout=limit,
                )
        except NotReachable as exc:
            found = exc.outcome in (Outcome.REGISTERED, Outcome.GRUU)
            _, words = unreachable_words(name, None if found else exc.outcome, detail=exc.reason)
            if parsed.aor in self.presence.scheduler:
                self.presence.urgent(parsed.aor)
            return await self._message_state(record, Delivery.FAILED, words)
        except TimeoutError:
            return await self._message_state(record, Delivery.FAILED, f"{name} did not answer")
        except (CallError, SipError, OSError) as exc:
            return await self._message_state(record, Delivery.FAILED, f"could not send to {name}: {exc}")
        if 200 <= response.status < 300:
            return await self._message_state(record, Delivery.DELIVERED)
        _, words = status_words(name, response.status, response.reason)
        return await self._message_state(record, Delivery.FAILED, words)

    async def _message_state(self, record: MessageRecord, state: Delivery, reason: str = "") -> MessageRecord:
        updated = await self._store.update_message_state(record.id, state, reason=reason)
        self.emit(MessageStateChanged(updated, time.time()))
        return updated

    async def _message_in(self, event: SipMessageReceived, *, plain: bool) -> None:
        peer = event.identity.aor
        if peer in self.presence.scheduler:
            self.presence.seen(peer)
        try:
            record = await self._store.add_message(MessageDirection.INCOMING, peer, event.text)
        except (StoreError, ValueError) as exc:
            log.error("an incoming message could not be stored: %s", exc)
            return
        self.emit(MessageReceived(record, self.trust(event.identity) and not plain, time.time()))

    async def messages(
        self, peer: str, *, limit: int = 100, before_id: int | None = None
    ) -> list[MessageRecord]:
        """The conversation with ``peer``, oldest first."""
        return await self._store.list_messages(self._aor(peer), limit=limit, before_id=before_id)

    async def conversations(self) -> list[Conversation]:
        return await self._store.conversations()

    async def mark_read(self, peer: str) -> int:
        return await self._store.mark_read(self._aor(peer))

    def _aor(self, text: str) -> str:
        return self._target(text).aor

    # ================================================================ buddies and presence

    async def add_buddy(self, target: str, display_name: str = "") -> Buddy:
        """Add a buddy by AoR (a bare name is completed with our domain); presence checks
        start at once."""
        try:
            aor = normalise_aor(target, domain=self._domain)
        except TargetError as exc:
            raise PhoneError(str(exc)) from None
        try:
            contact = await self._store.add_contact(aor, display_name)
        except StoreError as exc:
            raise PhoneError(str(exc)) from None
        self._names[aor] = contact.display_name
        self.presence.add(aor, last_seen=contact.last_seen)
        self.presence.urgent(aor)
        self.emit(BuddiesChanged(aor, contact.display_name, True, False, time.time()))
        return self._buddy(contact.aor, contact.display_name, contact.last_seen, contact.added)

    async def rename_buddy(self, aor: str, display_name: str) -> Buddy:
        key = self._buddy_key(aor)
        try:
            contact = await self._store.update_contact(key, display_name=display_name)
        except StoreError as exc:
            raise PhoneError(str(exc)) from None
        self._names[key] = display_name
        self.emit(BuddiesChanged(key, display_name, False, False, time.time()))
        return self._buddy(contact.aor, contact.display_name, contact.last_seen, contact.added)

    async def remove_buddy(self, aor: str) -> bool:
        key = self._buddy_key(aor)
        removed = await self._store.remove_contact(key)
        self.presence.remove(key)
        self._names.pop(key, None)
        if removed:
            self.emit(BuddiesChanged(key, "", False, True, time.time()))
        return removed

    async def buddies(self) -> list[Buddy]:
        """The buddy list with presence, ordered by name."""
        return [
            self._buddy(c.aor, c.display_name, c.last_seen, c.added)
            for c in await self._store.list_contacts()
        ]

    def _buddy_key(self, text: str) -> str:
        try:
            return normalise_aor(text, domain=self._domain)
        except TargetError as exc:
            raise PhoneError(str(exc)) from None

    def _buddy(self, aor: str, display_name: str, last_seen: float | None, added: float) -> Buddy:
        info = self.presence.scheduler.info(aor)
        online = info.online if info is not None else None
        seen = info.last_seen if info is not None and info.last_seen is not None else last_seen
        return Buddy(aor, display_name, online, seen, added)

    def refresh_presence(self, aor: str) -> None:
        """Check a buddy's presence now (ahead of the schedule)."""
        self.presence.urgent(self._buddy_key(aor))

    def presence_failed(self, aor: str) -> None:
        """A call to ``aor`` failed: check its presence at once."""
        if aor in self.presence.scheduler:
            self.presence.urgent(aor)

    @property
    def presence_rate(self) -> tuple[float, float]:
        """(estimated, measured over the last minute) overlay requests per second that
        presence costs."""
        scheduler = self.presence.scheduler
        return scheduler.estimated_rate(), scheduler.measured_rate(asyncio.get_running_loop().time())

    async def _check_presence(self, aor: str) -> CheckResult:
        """Online: a registration is found and its node answers a Ping (RFC 6940 §6.5.3)."""
        session = self.keeper.session
        if session is None:
            raise OfflineError("offline")
        try:
            resolution = await session.usage.resolve(parse_aor(aor).name)
        except (SipUsageError, StorageError, NodeError) as exc:
            return CheckResult(False, 1, str(exc))
        requests = max(1, resolution.fetches)
        for contact in resolution.contacts[:2]:
            node_id = contact.node_id
            if node_id is None or node_id == session.node.node_id:
                continue
            requests += 1
            if await _answers_ping(session, node_id, self.options.presence_ping_timeout):
                return CheckResult(True, requests)
        return CheckResult(False, requests, resolution.outcome.value)

    def _presence_changed(self, aor: str, online: bool, last_seen: float | None) -> None:
        if last_seen is not None:
            self.spawn(self._store_last_seen(aor, last_seen))
        self.emit(PresenceChanged(aor, online, last_seen, time.time()))

    async def _store_last_seen(self, aor: str, when: float) -> None:
        with contextlib.suppress(StoreError):
            await self._store.set_last_seen(aor, when)

    # ================================================================ history

    async def history(
        self, *, limit: int = 100, offset: int = 0, missed_only: bool = False, peer: str | None = None
    ) -> list[CallRecord]:
        """The call history, newest first."""
        key = self._aor(peer) if peer is not None else None
        return await self._store.list_calls(limit=limit, offset=offset, missed_only=missed_only, peer_aor=key)

    # ================================================================ settings

    async def update_settings(self, **changes: Any) -> Settings:
        """Change settings (``do_not_disturb``, ``auto_answer``, ``forward_always``,
        ``forward_busy``, ``forward_no_answer``, ``no_answer_seconds``, ``display_name``,
        ...); stored, then applied: forwarding always changes our registration into a
        forward (RFC 7904 §3.1) and back. Forward targets are user names, AoRs, GRUUs or
        (busy and no answer) plain SIP addresses."""
        for key in ("forward_always", "forward_busy", "forward_no_answer"):
            value = changes.get(key)
            if isinstance(value, str):
                target = self._target(value)
                if key == "forward_always" and target.kind is TargetKind.DIRECT:
                    raise PhoneError("forwarding always goes to an AoR or a GRUU of the overlay")
                if target.aor == self.aor and target.kind is TargetKind.AOR:
                    raise PhoneError("a phone cannot forward to itself")
                changes[key] = target.uri
        try:
            settings = dataclasses.replace(self._settings, **changes)
        except (TypeError, ValueError) as exc:
            raise PhoneError(str(exc)) from None
        previous, self._settings = self._settings, settings
        if self.media is not None:
            self.media.update(settings)
        await self._store.save_settings(settings)
        if settings.forward_always != previous.forward_always:
            await self._apply_forwarding()
        self.emit(SettingsChanged(settings, time.time()))
        return settings

    async def _apply_forwarding(self) -> None:
        session = self.keeper.session
        if session is None:
            return  # applied when the phone registers next
        target = self._settings.forward_always
        try:
            if target is not None:
                await session.usage.forward(None, target)
            else:
                await session.usage.register()
        except (SipUsageError, StorageError, NodeError) as exc:
            raise PhoneError(f"forwarding could not be changed: {exc}") from None

    # ================================================================ profile upkeep

    async def renew_certificate(self, password: str, *, account: str | None = None) -> datetime:
        """Renew the node certificate at the enrollment server with the account's
        password (§11.3); the phone rejoins with it. Returns the new expiry."""
        try:
            profile = await renew_enrolled(self.profile, self._configuration(), password, account=account)
        except RenewalError as exc:
            self.emit(CertificateNotice(CertificateAction.RENEWAL_FAILED, 0.0, str(exc), time.time()))
            raise PhoneError(str(exc)) from None
        return await self._use_profile(profile)

    async def _use_profile(self, profile: Profile) -> datetime:
        self.profile = profile
        try:
            self.setup = peer_setup(profile)
        except PeerSetupError as exc:
            raise PhoneError(str(exc)) from None
        if isinstance(self.keeper.joiner, EnrolledJoiner):
            self.keeper.joiner.setup = self.setup
        plan = plan_certificate(profile, datetime.now(UTC))
        self.emit(
            CertificateNotice(
                CertificateAction.RENEWED,
                plan.not_after.timestamp(),
                f"certificate renewed, valid until {plan.not_after:%Y-%m-%d}; the phone rejoins the overlay with it",
                time.time(),
            )
        )
        await self.keeper.restart("rejoining with the renewed certificate")
        return plan.not_after

    def _configuration(self) -> OverlayConfiguration:
        session = self.keeper.session
        if session is not None and session.node.settings.configuration is not None:
            return session.node.settings.configuration
        return self.setup.configuration

    async def _configuration_pushed(self, sequence: int) -> None:
        """A peer pushed a newer configuration (ConfigUpdate, §6.5.4) and the node took it:
        keep it in the profile, and look at the configuration server too."""
        session = self.keeper.session
        document = session.node.settings.configuration_document if session is not None else None
        if document is None or document == self.profile.configuration:
            return  # our own refetch, applied
        try:
            self.profile = save_configuration(self.profile, document)
        except ProfileError as exc:
            log.error("%s", exc)
            return
        self.emit(ConfigurationUpdated(sequence, "ConfigUpdate", time.time()))

    async def refetch_configuration(self) -> int | None:
        """Fetch the configuration from the profile's URL now; apply and keep it when it
        is newer. Returns the new sequence, or None if nothing changed."""
        current = self._configuration()
        try:
            accepted = await refetch_configuration(self.profile, current)
        except ConfigError as exc:
            log.warning("configuration refetch failed: %s", exc)
            return None
        if accepted is None:
            return None
        try:
            self.profile = save_configuration(self.profile, accepted.data)
        except ProfileError as exc:
            log.error("%s", exc)
            return None
        session = self.keeper.session
        if session is not None:
            node = session.node
            node.apply_configuration(node.settings.with_configuration(accepted.configuration, accepted.data))
        try:
            self.setup = peer_setup(self.profile)
        except PeerSetupError as exc:
            log.error("the refetched configuration cannot run this profile: %s", exc)
            return None
        if isinstance(self.keeper.joiner, EnrolledJoiner):
            self.keeper.joiner.setup = self.setup
        url = self.profile.descriptor.config_url or ""
        self.emit(ConfigurationUpdated(accepted.configuration.sequence, url, time.time()))
        return accepted.configuration.sequence

    async def check_certificate(self) -> None:
        """Warn before the certificate expires; renew a self-signed one by itself."""
        now = datetime.now(UTC)
        plan = plan_certificate(self.profile, now)
        if plan.renew:
            try:
                profile = renew_self_signed(self.profile, self._configuration(), now)
            except RenewalError as exc:
                self.emit(
                    CertificateNotice(
                        CertificateAction.RENEWAL_FAILED, plan.not_after.timestamp(), str(exc), time.time()
                    )
                )
                return
            await self._use_profile(profile)
        elif plan.action is not None:
            self.emit(CertificateNotice(plan.action, plan.not_after.timestamp(), plan.message, time.time()))

    async def _upkeep_loop(self) -> None:
        next_config = 0.0
        next_cert = 0.0
        loop = asyncio.get_running_loop()
        while True:
            self._config_wake.clear()  # before the work: a wake-up during it is kept
            now = loop.time()
            if now >= next_cert:
                await self.check_certificate()
                next_cert = now + self.options.certificate_check
            if self.profile.descriptor.config_url and now >= next_config and self.keeper.session is not None:
                await self.refetch_configuration()
                next_config = now + config_refresh_delay(
                    self._configuration(), datetime.now(UTC), self.options.config_refresh
                )
            wait = max(1.0, min(next_cert, next_config if next_config > now else now + 60.0) - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._config_wake.wait(), wait)
            if self._config_wake.is_set():
                next_config = 0.0


async def _answers_ping(session: OverlaySession, node_id: bytes, timeout: float) -> bool:
    return await is_answering(session.node, node_id, timeout)


def overlay_stun_servers(node: Node) -> list[tuple[str, int]]:
    """The STUN servers ``node`` gathers its own ICE candidates from (RFC 6940 §6.5.1.4:
    the bootstrap nodes, then a peer per reflexive address seen through it), IPv4 ones
    only (aioice asks STUN servers over IPv4 only). None in a TLS-only overlay, whose
    nodes answer no STUN (§6.5.1.11)."""
    manager = app_attach_manager(node)
    if manager is None:
        return []
    servers = manager.stun_servers.servers(manager.ice_config.max_stun_servers)
    return [(host, port) for host, port in servers if "." in host]


__all__ = ["Buddy", "Phone", "PhoneError", "PhoneListener", "PhoneOptions", "overlay_stun_servers"]

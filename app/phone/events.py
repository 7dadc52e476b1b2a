"""What the phone tells its listeners: frozen events (the GUI and the CLI use nothing else).

Listeners are plain callables added with :meth:`Phone.add_listener
<app.phone.service.Phone.add_listener>`, called on the event loop, in order, as things
happen; a listener that raises is logged and skipped. Every event carries ``time``
(wall clock, seconds since the epoch) so that a listener attached later can order what
it replays.

- :class:`PhoneStateChanged`: joining, registering, registered, offline (with the reason),
  closed; the role (peer or client, RFC 6940 §4.2) once known.
- :class:`CallStateChanged`: every change of every call (:mod:`app.phone.calls`); a call
  is new when ``previous`` is None. Ended calls carry the cause and the words.
- :class:`CallRedirected`, :class:`CallRemoteHold`, :class:`TransferUpdate`: details of
  a call that are not state changes.
- :class:`MessageReceived`, :class:`MessageStateChanged`: instant messages (RFC 3428)
  with their delivery state as kept in the store.
- :class:`PresenceChanged`, :class:`BuddiesChanged`: the buddy list.
- :class:`SettingsChanged`: the settings as stored now.
- :class:`ConfigurationUpdated`, :class:`CertificateNotice`: the profile's overlay
  configuration (§11.1) and certificate (§11.3) as they change or need attention.
- :class:`KeyChanged`: a caller's key is not the one pinned for them (local overlay).
- :class:`CallQuality`, :class:`CallMedia`, :class:`DtmfReceived`: a call's audio
  (:mod:`app.phone.media`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from app.phone.calls import CallDirection, CallState, EndCause
from app.phone.store import MessageRecord, Settings


class PhoneState(StrEnum):
    """Where the phone stands on the overlay."""

    STOPPED = "stopped"  # opened, not started
    JOINING = "joining"  # joining the overlay (or connecting as a client)
    REGISTERING = "registering"  # on the overlay; our AoR is being stored
    REGISTERED = "registered"  # reachable: our registration is in the overlay
    OFFLINE = "offline"  # not on the overlay; ``reason`` says why; retried on its own
    CLOSED = "closed"  # signed out


class OverlayRole(StrEnum):
    """How we are on the overlay (RFC 6940 §4.2)."""

    PEER = "peer"  # routes and stores for others
    CLIENT = "client"  # reaches the overlay through a peer responsible for our Node-ID


@dataclass(frozen=True, slots=True)
class PhoneStateChanged:
    state: PhoneState
    reason: str
    role: OverlayRole | None
    time: float
    retry_in: float | None = None  # OFFLINE: seconds until the next attempt


@dataclass(frozen=True, slots=True)
class CallStateChanged:
    """A call changed state (``previous`` None: a new call, outgoing or incoming).

    ``call`` is the call's id (its history record's). ``peer`` the AoR at the other end
    (``sip:bob@example.org``; for a call forwarded on its way, the AoR dialled), ``name``
    what to call them. ``verified``: the far end's identity is its certificate's
    (overlay calls); False for plain SIP, where the caller's From is all we have.
    ``words``: why it ended, for the user ("bob is busy"), when it has ended."""

    call: int
    state: CallState
    previous: CallState | None
    direction: CallDirection
    peer: str
    name: str
    verified: bool
    time: float
    cause: EndCause | None = None
    words: str = ""
    sip_status: int | None = None


@dataclass(frozen=True, slots=True)
class CallRedirected:
    """An outgoing call follows a forward (a 302 of the callee, RFC 3261 §8.1.3.4) to
    ``target``."""

    call: int
    target: str
    time: float


@dataclass(frozen=True, slots=True)
class CallRemoteHold:
    """The far end put the call on hold (``held``) or took it off (RFC 3264 §8.4)."""

    call: int
    held: bool
    time: float


@dataclass(frozen=True, slots=True)
class TransferUpdate:
    """A blind transfer we asked for (REFER, RFC 3515): ``status`` of the REFER, then of
    the new call as the far end reports it; ``final`` once it is settled."""

    call: int
    target: str
    status: int
    reason: str
    final: bool
    time: float


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A text message came in (stored already). ``verified`` as for calls."""

    record: MessageRecord
    verified: bool
    time: float


@dataclass(frozen=True, slots=True)
class MessageStateChanged:
    """An outgoing message moved on: sending, sent, delivered, failed (with the reason in
    words)."""

    record: MessageRecord
    time: float


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """A buddy came online or went offline; ``last_seen``: when last found online."""

    aor: str
    online: bool
    last_seen: float | None
    time: float


@dataclass(frozen=True, slots=True)
class BuddiesChanged:
    """A buddy was added (``added``), renamed, or removed (``removed``)."""

    aor: str
    display_name: str
    added: bool
    removed: bool
    time: float


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    settings: Settings
    time: float


@dataclass(frozen=True, slots=True)
class ConfigurationUpdated:
    """The overlay's configuration moved to ``sequence`` (§11.1) and was saved in the
    profile; ``source`` is "ConfigUpdate" (a peer pushed it, §6.5.4) or the URL refetched."""

    sequence: int
    source: str
    time: float


@dataclass(frozen=True, slots=True)
class KeyChanged:
    """``aor`` came with another key than the one pinned for it (trust on first use, on
    the local overlay): what it says is not taken as verified until the user accepts the
    new key (``Phone.accept_key``). ``pinned_node_id``/``first_seen``: the pinned key's."""

    aor: str
    node_id: bytes
    pinned_node_id: bytes
    first_seen: float
    time: float


class CertificateAction(StrEnum):
    EXPIRING = "expiring"  # renew before ``not_after``: ``how`` says how
    RENEWED = "renewed"  # the profile holds a new certificate (in use from the next join)
    EXPIRED = "expired"
    RENEWAL_FAILED = "renewal failed"


@dataclass(frozen=True, slots=True)
class CertificateNotice:
    """The node certificate (§11.3) needs attention, or was renewed. ``message`` says what
    was done and what the user should do."""

    action: CertificateAction
    not_after: float
    message: str
    time: float


@dataclass(frozen=True, slots=True)
class CallQuality:
    """A sample of a call's quality, every few seconds while it is answered (what we
    hear: jitter, loss over the last interval, ITU-T G.107 E-model MOS; round trip from
    RTCP). None: not known yet."""

    call: int
    rtt_ms: float | None
    jitter_ms: float | None
    loss_percent: float
    mos: float
    codec: str | None
    time: float


@dataclass(frozen=True, slots=True)
class CallMedia:
    """Something about a call's audio (:mod:`app.phone.media`): ``what`` is
    ``ice-connected`` (how long it took and the path, e.g. "31 ms srflx→srflx"),
    ``first-audio`` (the first frame heard), ``device-unavailable``
    (once per phone and device role: the call goes on, silence is sent),
    ``device-changed``, ``media-failed``, ``onset-sent``/``onset-heard`` (a tone burst's
    wall-clock onset, ``p2psip bench call``); ``detail`` in words."""

    call: int
    what: str
    detail: str
    time: float


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """A digit the far end sent (``method``: rfc4733 or sip-info)."""

    call: int
    digit: str
    method: str
    time: float


PhoneEvent: TypeAlias = (
    PhoneStateChanged
    | CallStateChanged
    | CallRedirected
    | CallRemoteHold
    | TransferUpdate
    | MessageReceived
    | MessageStateChanged
    | PresenceChanged
    | BuddiesChanged
    | SettingsChanged
    | ConfigurationUpdated
    | CertificateNotice
    | KeyChanged
    | CallQuality
    | CallMedia
    | DtmfReceived
)

__all__ = [
    "BuddiesChanged",
    "CallMedia",
    "CallQuality",
    "CallRedirected",
    "CallRemoteHold",
    "CallStateChanged",
    "CertificateAction",
    "CertificateNotice",
    "ConfigurationUpdated",
    "DtmfReceived",
    "KeyChanged",
    "MessageReceived",
    "MessageStateChanged",
    "OverlayRole",
    "PhoneEvent",
    "PhoneState",
    "PhoneStateChanged",
    "PresenceChanged",
    "SettingsChanged",
    "TransferUpdate",
]

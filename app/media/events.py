"""Events of a call's media session, to listeners (the phone, the GUI, tests).

Times (``elapsed``) are seconds since both SDPs were known (the offer/answer that
started media), on the event loop's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

DeviceRole: TypeAlias = Literal["input", "output", "ringing"]


@dataclass(frozen=True)
class IceConnected:
    """ICE found its path: ``path`` names the selected pair's candidate types, ours then
    theirs (RFC 8445 §5.1.1.1: host, srflx, prflx, relay). Ours is a host or a relayed
    candidate (a pair holds a server-reflexive candidate's base, RFC 8445 §6.1.2.4), so
    two phones behind two NATs show "host→srflx" (or prflx) and a relayed call
    "relay→..."; None if aiortc does not tell."""

    elapsed: float
    path: str | None = None


@dataclass(frozen=True)
class DtlsConnected:
    """ICE and DTLS-SRTP are up (aiortc's connectionState "connected")."""

    elapsed: float


@dataclass(frozen=True)
class FirstAudio:
    """The first decoded frame from the far end reached the playout buffer."""

    elapsed: float


@dataclass(frozen=True)
class HoldChanged:
    """``local``: we hold the far end (our offer with sendonly/inactive was answered);
    ``remote``: the far end holds us (its offer said sendonly/inactive)."""

    local: bool
    remote: bool


@dataclass(frozen=True)
class DeviceUnavailable:
    """A sound device could not be used; the call goes on without it (silence is sent
    in place of the microphone; received audio is discarded)."""

    role: DeviceRole
    message: str


@dataclass(frozen=True)
class DeviceChanged:
    role: DeviceRole
    description: str  # what is used now, e.g. "input device 'USB headset'", "silence"


@dataclass(frozen=True)
class MediaFailed:
    """ICE or DTLS failed: no media can flow (the phone should end the call)."""

    reason: str


MediaEvent: TypeAlias = (
    IceConnected | DtlsConnected | FirstAudio | HoldChanged | DeviceUnavailable | DeviceChanged | MediaFailed
)

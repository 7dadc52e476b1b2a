"""The audio codecs we offer, in the user's order (aiortc 1.16 has Opus, G.722, PCMU and
PCMA; RFC 7587, RFC 3551). The order is given to aiortc with
``RTCRtpTransceiver.setCodecPreferences``: it is the m= line's order in our offers and
answers (RFC 3264 §5.1: most preferred first), and the codec we send is the first one
both sides have."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

DEFAULT_CODEC_ORDER: Final = ("opus", "G722", "PCMU", "PCMA")


def available_codecs() -> list[str]:
    """Names of the audio codecs aiortc can encode and decode here."""
    caps = RTCRtpSender.getCapabilities("audio")
    return [c.mimeType.split("/", 1)[1] for c in caps.codecs]


def codec_preferences(order: Sequence[str]) -> list[RTCRtpCodecCapability]:
    """aiortc's capabilities for the named codecs (case-insensitive), in that order.
    ValueError for an empty list, an unknown name or a repeated one."""
    if not order:
        raise ValueError("codec_order is empty: at least one audio codec is needed")
    caps = {c.mimeType.split("/", 1)[1].lower(): c for c in RTCRtpSender.getCapabilities("audio").codecs}
    out: list[RTCRtpCodecCapability] = []
    for name in order:
        cap = caps.get(name.lower())
        if cap is None:
            raise ValueError(f"unknown audio codec {name!r}: available are {', '.join(available_codecs())}")
        if cap in out:
            raise ValueError(f"audio codec {name!r} is listed twice")
        out.append(cap)
    return out

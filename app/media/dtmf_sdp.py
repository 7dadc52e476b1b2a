"""telephone-event in SDP offers and answers (RFC 4733 §7, RFC 3264): aiortc 1.16 knows
no telephone-event, so the SDP it writes is completed here, as text, before it leaves.

- :func:`add_to_offer`: one ``telephone-event`` format per clock rate of the offered audio
  codecs (``/48000`` beside Opus and ``/8000`` beside G.711, as RFC 7874 §3 asks of
  WebRTC endpoints): ``a=rtpmap:PT telephone-event/RATE`` and ``a=fmtp:PT 0-16``.
- :func:`add_to_answer`: the offer's telephone-event formats whose rate is one of the
  answer's audio codecs', with the offer's payload types (RFC 3264 §6.1), for the
  events both sides take.
- :func:`telephone_events` and :func:`audio_codecs`: what an SDP says, for the media layer
  to pick the payload type to send with (the far end's) and those to receive.

aiortc ignores formats it does not know in the far end's SDP, so the completed text can be
handed to it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from app.media.dtmf import parse_event_list
from app.sip.sdp import Codec, MediaDescription, SdpError, parse_sdp

TELEPHONE_EVENT: Final = "telephone-event"
OUR_EVENTS: Final = frozenset(range(17))  # DTMF 0-15 and flash (RFC 4733 §3.2)
_PREFERRED_PT: Final = {8000: 101, 48000: 110, 16000: 102}


@dataclass(frozen=True)
class TelephoneEventFormat:
    payload_type: int
    clock_rate: int
    events: frozenset[int]


def _audio(sdp: bytes | str) -> MediaDescription | None:
    body = sdp.encode() if isinstance(sdp, str) else sdp
    try:
        parsed = parse_sdp(body)
    except SdpError:
        return None
    for m in parsed.media:
        if m.media == "audio" and m.port != 0:
            return m
    return None


def telephone_events(sdp: bytes | str) -> tuple[TelephoneEventFormat, ...]:
    """The telephone-event formats of the first active audio stream, in SDP order."""
    m = _audio(sdp)
    if m is None:
        return ()
    return tuple(
        TelephoneEventFormat(c.payload_type, c.clock_rate, parse_event_list(c.fmtp))
        for c in m.codecs()
        if c.name.lower() == TELEPHONE_EVENT
    )


def audio_codecs(sdp: bytes | str) -> tuple[Codec, ...]:
    """The audio codecs (telephone-event, CN, RED and other helpers left out), in SDP order."""
    m = _audio(sdp)
    if m is None:
        return ()
    helpers = {TELEPHONE_EVENT, "cn", "red", "rtx", "ulpfec"}
    return tuple(c for c in m.codecs() if c.name.lower() not in helpers)


def format_for_rate(
    formats: tuple[TelephoneEventFormat, ...], clock_rate: int
) -> TelephoneEventFormat | None:
    """RFC 4733 §2.1: events share the audio's timestamps, so only the format of the
    audio codec's clock rate can go with it."""
    return next((f for f in formats if f.clock_rate == clock_rate), None)


def _events_text(events: frozenset[int]) -> str:
    ordered = sorted(events)
    parts: list[str] = []
    start = prev = ordered[0]
    for e in [*ordered[1:], None]:
        if e is not None and e == prev + 1:
            prev = e
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        if e is not None:
            start = prev = e
    return ",".join(parts)


def _add_formats(sdp: str, formats: list[TelephoneEventFormat]) -> str:
    if not formats:
        return sdp
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    trailing = lines and lines[-1] == ""
    if trailing:
        lines.pop()
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if line.startswith("m=audio ") and not line.startswith("m=audio 0 ")
        ),
        None,
    )
    if start is None:
        return sdp
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("m=")), len(lines))
    lines[start] += "".join(f" {f.payload_type}" for f in formats)
    at = end
    for i in range(start + 1, end):
        if lines[i].startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
            at = i + 1
    added: list[str] = []
    for f in formats:
        added.append(f"a=rtpmap:{f.payload_type} {TELEPHONE_EVENT}/{f.clock_rate}")
        added.append(f"a=fmtp:{f.payload_type} {_events_text(f.events)}")
    lines[at:at] = added
    return newline.join(lines) + (newline if trailing else "")


def _used_payload_types(sdp: str) -> set[int]:
    used: set[int] = set()
    for line in sdp.splitlines():
        if line.startswith("m="):
            used.update(int(f) for f in line.split()[3:] if f.isdigit())
    return used


def add_to_offer(offer: str, *, events: frozenset[int] = OUR_EVENTS) -> str:
    """``offer`` with a telephone-event format for each audio clock rate it offers
    (unless it has one already), on payload types no stream of the offer uses."""
    present = {f.clock_rate for f in telephone_events(offer)}
    used = _used_payload_types(offer)
    formats: list[TelephoneEventFormat] = []
    for rate in dict.fromkeys(c.clock_rate for c in audio_codecs(offer)):
        if rate in present:
            continue
        preferred = _PREFERRED_PT.get(rate)
        pt = preferred if preferred is not None and preferred not in used else None
        if pt is None:
            pt = next((p for p in range(96, 128) if p not in used), None)
        if pt is None:
            break  # no dynamic payload type left: offer without it
        used.add(pt)
        formats.append(TelephoneEventFormat(pt, rate, events))
    return _add_formats(offer, formats)


def add_to_answer(offer: bytes | str, answer: str, *, events: frozenset[int] = OUR_EVENTS) -> str:
    """``answer`` with the offer's telephone-event formats that go with one of the
    answer's audio codecs (same clock rate), on the offer's payload types."""
    rates = {c.clock_rate for c in audio_codecs(answer)}
    present = {f.clock_rate for f in telephone_events(answer)}
    used = _used_payload_types(answer)
    formats: list[TelephoneEventFormat] = []
    for f in telephone_events(offer):
        common = f.events & events
        if f.clock_rate in rates and f.clock_rate not in present and f.payload_type not in used and common:
            formats.append(TelephoneEventFormat(f.payload_type, f.clock_rate, common))
            present.add(f.clock_rate)  # one format per rate
    return _add_formats(answer, formats)

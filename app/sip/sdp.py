"""Offer/answer (RFC 3264) for the UA: the session handler interface, and a static one.

The UA core carries SDP bodies as bytes; the asyncio layer asks a
:class:`SessionHandler` for offers and answers (async, since the media layer, aiortc,
is). :class:`StaticSdpSession` is a real, minimal handler with no media of its own: it
offers audio (PCMU, PCMA, telephone-event; RFC 4566 §5 lines v/o/s/c/t/m) and answers by
intersecting codecs (RFC 3264 §6.1), refusing an offer with no audio codec in common with
488 and a 305 Warning (RFC 3261 §20.43). It is what the tests, sipp and a phone with no
media stack use; the media issue brings the aiortc handler.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol


@dataclass(frozen=True)
class RejectWith:
    """Refuse an offer (or an answer): ``status`` (488 Not Acceptable Here) and a Warning
    (``warning_code`` 3xx of RFC 3261 §20.43 and a text)."""

    status: int
    warning: str | None = None
    warning_code: int = 399


class SessionHandler(Protocol):
    """One call's media session, as offer/answer sees it (RFC 3264)."""

    async def make_offer(self) -> bytes:
        """An offer (initial, or a new one for a re-INVITE)."""
        ...

    async def answer(self, offer: bytes) -> bytes | RejectWith:
        """The answer to the far end's offer, or why it is refused."""
        ...

    async def accept_answer(self, answer: bytes) -> RejectWith | None:
        """The far end's answer to our offer; a RejectWith means we cannot use it (the
        UA then ends the call: an answer cannot be refused, RFC 3264 §6)."""
        ...

    async def close(self) -> None:
        """The call ended."""
        ...


@dataclass(frozen=True)
class Codec:
    payload_type: int
    name: str  # encoding name as in a=rtpmap (RFC 4566 §6)
    clock_rate: int
    fmtp: str | None = None

    def same_codec(self, other: Codec) -> bool:
        return self.name.lower() == other.name.lower() and self.clock_rate == other.clock_rate


PCMU: Final = Codec(0, "PCMU", 8000)
PCMA: Final = Codec(8, "PCMA", 8000)
TELEPHONE_EVENT: Final = Codec(101, "telephone-event", 8000, "0-16")
DEFAULT_CODECS: Final = (PCMU, PCMA, TELEPHONE_EVENT)

# RFC 3551 Table 4: static audio payload types we may meet without an rtpmap.
_STATIC: Final = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    18: ("G729", 8000),
}

_DIRECTIONS: Final = ("sendrecv", "sendonly", "recvonly", "inactive")
_REVERSE: Final = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class SdpError(ValueError):
    """An SDP body we cannot read."""


@dataclass
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    attributes: list[str] = field(default_factory=list)
    connection: str | None = None

    def codecs(self) -> list[Codec]:
        rtpmap: dict[int, tuple[str, int]] = {}
        fmtp: dict[int, str] = {}
        for a in self.attributes:
            if a.startswith("rtpmap:"):
                pt_text, _, enc = a[7:].partition(" ")
                name, _, rest = enc.partition("/")
                rate = rest.split("/")[0]
                if pt_text.isdigit() and rate.isdigit():
                    rtpmap[int(pt_text)] = (name, int(rate))
            elif a.startswith("fmtp:"):
                pt_text, _, params = a[5:].partition(" ")
                if pt_text.isdigit():
                    fmtp[int(pt_text)] = params
        out: list[Codec] = []
        for f in self.formats:
            if not f.isdigit():
                continue
            pt = int(f)
            known = rtpmap.get(pt) or _STATIC.get(pt)
            if known is not None:
                out.append(Codec(pt, known[0], known[1], fmtp.get(pt)))
        return out

    @property
    def direction(self) -> str:
        for a in self.attributes:
            if a in _DIRECTIONS:
                return a
        return "sendrecv"


@dataclass
class SessionDescription:
    origin: str
    connection: str | None
    media: list[MediaDescription]
    session_attributes: list[str] = field(default_factory=list)

    @property
    def session_direction(self) -> str | None:
        for a in self.session_attributes:
            if a in _DIRECTIONS:
                return a
        return None


def parse_sdp(body: bytes) -> SessionDescription:
    """The parts of an SDP body (RFC 4566 §5) offer/answer needs; SdpError if it is not SDP."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP does not start with v=0")
    origin: str | None = None
    connection: str | None = None
    media: list[MediaDescription] = []
    session_attrs: list[str] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"bad SDP line {line[:40]!r}")
        kind, value = line[0], line[2:].strip()
        if kind == "o":
            origin = value
        elif kind == "c":
            if media:
                media[-1].connection = value
            else:
                connection = value
        elif kind == "m":
            parts = value.split()
            if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
                raise SdpError(f"bad m= line {value[:40]!r}")
            media.append(MediaDescription(parts[0], int(parts[1].split("/")[0]), parts[2], parts[3:]))
        elif kind == "a":
            (media[-1].attributes if media else session_attrs).append(value)
    if origin is None:
        raise SdpError("SDP without o=")
    return SessionDescription(origin, connection, media, session_attrs)


_session_ids = itertools.count(1)


class StaticSdpSession:
    """A :class:`SessionHandler` with fixed audio codecs and no media engine.

    ``address``/``port`` go in c=/m= (RFC 4566 §5.7, §5.14); the session version in o=
    goes up with each new offer or answer that differs (RFC 3264 §8).

    Hold (RFC 3264 §8.4), with the same names as the media layer's session:
    :meth:`set_hold` makes our next offer ``a=sendonly`` (``a=inactive`` while the far
    end holds us too) and our answers never take media in; ``local_hold`` turns true
    when the far end accepts that offer; ``remote_hold`` is true while the far end's last
    offer was sendonly or inactive.
    """

    def __init__(
        self,
        address: str = "127.0.0.1",
        port: int = 49170,
        codecs: Sequence[Codec] = DEFAULT_CODECS,
    ) -> None:
        self.address = address
        self.port = port
        self.codecs = tuple(codecs)
        self.session_id = 10_000 + next(_session_ids)
        self.version = 0
        self.remote: SessionDescription | None = None  # the far end's last offer or answer
        self.closed = False
        self._want_hold = False
        self._offered_hold = False
        self.local_hold = False
        self.remote_hold = False

    def set_hold(self, hold: bool) -> None:
        """Hold (or resume) in our next offer; the caller sends it in a re-INVITE."""
        self._want_hold = hold

    @property
    def hold_requested(self) -> bool:
        return self._want_hold

    def _direction(self, *, send: bool, receive: bool) -> str:
        return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
            (send, receive), "inactive"
        )

    @property
    def _addrtype(self) -> str:
        return "IP6" if ":" in self.address else "IP4"

    def _head(self) -> list[str]:
        self.version += 1
        return [
            "v=0",
            f"o=- {self.session_id} {self.version} IN {self._addrtype} {self.address}",
            "s=-",
            f"c=IN {self._addrtype} {self.address}",
            "t=0 0",
        ]

    @staticmethod
    def _codec_lines(codecs: Sequence[Codec]) -> list[str]:
        lines = []
        for c in codecs:
            lines.append(f"a=rtpmap:{c.payload_type} {c.name}/{c.clock_rate}")
            if c.fmtp:
                lines.append(f"a=fmtp:{c.payload_type} {c.fmtp}")
        return lines

    def offer_sync(self) -> bytes:
        pts = " ".join(str(c.payload_type) for c in self.codecs)
        lines = self._head()
        lines.append(f"m=audio {self.port} RTP/AVP {pts}")
        lines += self._codec_lines(self.codecs)
        self._offered_hold = self._want_hold
        lines.append(f"a={self._direction(send=not self.remote_hold, receive=not self._want_hold)}")
        return ("\r\n".join(lines) + "\r\n").encode()

    def answer_sync(self, offer: bytes) -> bytes | RejectWith:
        """RFC 3264 §6: one m= line per offered one; audio on RTP/AVP with the codecs we
        share (in the offer's payload type numbers), anything else refused with port 0."""
        try:
            sdp = parse_sdp(offer)
        except SdpError as exc:
            return RejectWith(488, str(exc), 399)
        lines = self._head()
        accepted = 0
        held = False
        for m in sdp.media:
            common: list[Codec] = []
            if m.media == "audio" and m.proto == "RTP/AVP" and m.port != 0:
                for theirs in m.codecs():
                    if any(theirs.same_codec(ours) for ours in self.codecs):
                        common.append(theirs)
            # telephone-event alone carries no voice (RFC 4733 §2.5.1.2 is not a codec).
            if not [c for c in common if c.name.lower() != "telephone-event"]:
                lines.append(f"m={m.media} 0 {m.proto} {' '.join(m.formats)}")
                continue
            accepted += 1
            lines.append(f"m=audio {self.port} RTP/AVP {' '.join(str(c.payload_type) for c in common)}")
            lines += self._codec_lines(common)
            direction = m.direction if m.direction != "sendrecv" else (sdp.session_direction or "sendrecv")
            offered = _REVERSE[direction]  # what the offer lets the answer do
            held = direction in ("sendonly", "inactive")
            lines.append(
                "a="
                + self._direction(
                    send=offered in ("sendrecv", "sendonly"),
                    receive=offered in ("sendrecv", "recvonly") and not self._want_hold,
                )
            )
        if accepted == 0:
            self.version -= 1  # nothing was answered
            return RejectWith(488, "Incompatible media format: no common audio codec", 305)
        self.remote = sdp
        self.remote_hold = held
        self.local_hold = self._want_hold
        return ("\r\n".join(lines) + "\r\n").encode()

    def accept_answer_sync(self, answer: bytes) -> RejectWith | None:
        try:
            sdp = parse_sdp(answer)
        except SdpError as exc:
            return RejectWith(488, str(exc), 399)
        usable = [
            m
            for m in sdp.media
            if m.media == "audio"
            and m.port != 0
            and any(
                c.same_codec(o) and c.name.lower() != "telephone-event"
                for c in m.codecs()
                for o in self.codecs
            )
        ]
        if not usable:
            return RejectWith(488, "answer has no audio codec we offered", 305)
        self.remote = sdp
        self.local_hold = self._offered_hold
        return None

    async def make_offer(self) -> bytes:
        return self.offer_sync()

    async def answer(self, offer: bytes) -> bytes | RejectWith:
        return self.answer_sync(offer)

    async def accept_answer(self, answer: bytes) -> RejectWith | None:
        return self.accept_answer_sync(answer)

    async def close(self) -> None:
        self.closed = True

"""SDP text between the far end and aiortc (RFC 4566, RFC 3264, RFC 8839, RFC 8842).

Pure functions over SDP text, no I/O:

- :func:`check_offer` decides whether an offer can be answered at all: an audio stream
  on DTLS-SRTP (RFC 5764 §8: ``UDP/TLS/RTP/SAVP[F]``) with a fingerprint (RFC 8122),
  ICE credentials (RFC 8839 §5.4), RTP/RTCP multiplexing (RFC 5761; aiortc has no other
  way) and a codec in common. Anything else gets a 488 with a Warning (RFC 3261 §20.43).
- :func:`prepare_remote` rewrites the far end's offer or answer into what aiortc 1.16
  parses and acts on, with the fixes real phones need (NOTES.md): ICE credentials,
  fingerprint and setup given at session level are copied into the media section; a
  missing ``a=mid`` is added (else aiortc refuses its own answer); ``a=extmap`` loses
  extension attributes such as linphone's ``vad=off`` (they crash aiortc's parser); a
  missing direction is written out as the session's or ``sendrecv`` (RFC 4566 §6: the
  default; aiortc would otherwise never send); static payload types listed without
  ``a=rtpmap`` get one (RFC 3551 Table 4); TCP candidates (aioice gathers and uses UDP
  only) and malformed ``a=ssrc``/``a=fmtp`` lines aiortc would trip on are dropped.
  Media sections other than the one audio stream are kept out of aiortc and rejected
  with port 0 in the answer (RFC 3264 §6).
- :func:`trim_local` cuts what aiortc writes down to what one audio stream needs, so
  an INVITE with SDP stays under the 1300 bytes of RFC 3261 §18.1.1: only the SHA-256
  fingerprint (the far end needs one it supports; RFC 8122 §5 makes SHA-256 the one
  everyone must), no ``a=msid``/``a=msid-semantic`` (WebRTC stream ids), no ``a=ssrc``
  and ``a=ssrc-group`` (RFC 5576 is optional; aiortc routes by payload type without
  them), no ``a=rtcp`` (RFC 5761 §5.1.3: with ``a=rtcp-mux`` it only names the port
  in case mux is refused, and aiortc refuses that case anyway). Over a byte budget,
  what costs no function goes first: candidate foundations are shortened to 8
  characters (only their equality matters, RFC 8445 §5.1.1.3; aiortc writes 32), then
  IPv6 host candidates, then the optional RTP header extensions (``a=extmap``, RFC
  8285: one audio stream needs neither the mid nor the audio level); only then other
  candidates, least useful first. So a host, a server-reflexive and a relayed
  candidate, which do not all fit beside four codecs and telephone-event, leave the
  server-reflexive and the relayed one: a call through two NATs still goes straight
  from NAT to NAT when a TURN server is known. The o= line keeps one session id and
  counts versions up (RFC 3264 §8: aiortc writes a new session id every time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from app.sip.sdp import RejectWith, SdpError, parse_sdp

DTLS_PROFILES: Final = frozenset({"UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP"})
DIRECTIONS: Final = ("sendrecv", "sendonly", "recvonly", "inactive")
#: RFC 3551 Table 4: static payload types aiortc can decode, for offers without rtpmap.
STATIC_RTPMAP: Final = {0: "PCMU/8000", 8: "PCMA/8000", 9: "G722/8000"}
#: Attributes that may come at session level and that aiortc must see per media section.
_SESSION_TRANSPORT: Final = ("ice-ufrag", "ice-pwd", "ice-options", "fingerprint", "setup")

#: Warning codes of RFC 3261 §20.43 used for refused offers.
WARN_TRANSPORT: Final = 304  # "Incompatible transport protocol"
WARN_MEDIA_FORMAT: Final = 305  # "Incompatible media format"
WARN_MISC: Final = 399  # "Miscellaneous warning"

ENCRYPTION_REQUIRED: Final = "encrypted media (DTLS-SRTP) is required"


def attr(line: str) -> tuple[str, str] | None:
    """``("name", "value")`` of an ``a=`` line, None for other lines."""
    if not line.startswith("a="):
        return None
    name, _, value = line[2:].partition(":")
    return name, value


@dataclass
class SdpText:
    """An SDP body as lines (without CRLF): the session part and one list per m= section,
    each starting with its m= line. Unknown lines pass through untouched."""

    session: list[str]
    media: list[list[str]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> SdpText:
        lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
        if not lines or lines[0] != "v=0":
            raise SdpError("SDP does not start with v=0")
        sdp = cls(session=[])
        for line in lines:
            if line.startswith("m="):
                sdp.media.append([line])
            elif sdp.media:
                sdp.media[-1].append(line)
            else:
                sdp.session.append(line)
        return sdp

    def text(self) -> str:
        lines = self.session + [line for section in self.media for line in section]
        return "".join(line + "\r\n" for line in lines)


def m_line(section: Sequence[str]) -> tuple[str, int, str, list[str]]:
    """(media, port, proto, formats) of a section's m= line (RFC 4566 §5.14)."""
    parts = section[0][2:].split()
    if len(parts) < 3:
        raise SdpError(f"bad m= line {section[0][:40]!r}")
    port = parts[1].split("/")[0]
    return parts[0], int(port) if port.isdigit() else 0, parts[2], parts[3:]


def attrs(lines: Iterable[str], name: str) -> list[str]:
    """Values of the ``a=name`` lines among ``lines``."""
    return [a[1] for a in map(attr, lines) if a is not None and a[0] == name]


def direction_of(lines: Iterable[str]) -> str | None:
    for a in map(attr, lines):
        if a is not None and a[0] in DIRECTIONS:
            return a[0]
    return None


# --------------------------------------------------------------------------- offers


def check_offer(body: bytes, codec_names: Sequence[str]) -> int | RejectWith:
    """The index of the audio section we will use, or why the offer is refused (488)."""
    try:
        parsed = parse_sdp(body)
        text = SdpText.parse(body.decode("utf-8"))
    except (SdpError, UnicodeDecodeError, ValueError) as exc:
        return RejectWith(488, f"malformed SDP: {exc}", WARN_MISC)
    audio = [i for i, m in enumerate(parsed.media) if m.media == "audio" and m.port != 0]
    if not audio:
        return RejectWith(488, "no audio stream in the offer", WARN_MEDIA_FORMAT)
    secure = [i for i in audio if parsed.media[i].proto.upper() in DTLS_PROFILES]
    if not secure:
        # RFC 3261 §20.43: 304 "Incompatible transport protocol" is the one that names
        # the m= line's <proto> field (RFC 4566 §5.14 calls it the transport protocol).
        return RejectWith(488, ENCRYPTION_REQUIRED, WARN_TRANSPORT)
    ours = {name.lower() for name in codec_names}
    problem = ""
    for i in secure:
        m = parsed.media[i]
        lines = text.media[i] + text.session
        if not attrs(lines, "fingerprint"):
            problem = "DTLS-SRTP offer without a=fingerprint (RFC 8122)"
        elif not attrs(lines, "ice-ufrag") or not attrs(lines, "ice-pwd"):
            problem = "ICE is required: no a=ice-ufrag/a=ice-pwd (RFC 8839)"
        elif "rtcp-mux" not in m.attributes:
            problem = "RTP and RTCP multiplexing is required (a=rtcp-mux, RFC 5761)"
        elif not any(c.name.lower() in ours for c in m.codecs()):
            names = ", ".join(codec_names)
            return RejectWith(
                488, f"Incompatible media format: no common audio codec (we have {names})", WARN_MEDIA_FORMAT
            )
        else:
            return i
    return RejectWith(488, problem, WARN_MISC)


@dataclass(frozen=True)
class PreparedRemote:
    """The far end's SDP made ready for aiortc, and what our answer must put back."""

    sdp: str
    audio_index: int
    rejected: tuple[tuple[int, str], ...]  # (index, m= line with port 0) for our answer
    had_mid: bool
    had_bundle: bool
    setup: str | None  # the audio section's a=setup as sent (actpass, active, passive)
    direction: str  # the audio section's direction, defaults applied
    hold: bool  # the far end holds us (sendonly/inactive, or c= 0.0.0.0 of RFC 2543)


def prepare_remote(
    body: bytes | str, audio_index: int = 0, mid: str = "0", *, offer: bool = True
) -> PreparedRemote:
    """Rewrite the far end's SDP (an offer, or with ``offer=False`` an answer) for aiortc
    (see the module docstring). ``mid`` is used for an audio section that has none."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    sdp = SdpText.parse(text)
    if not 0 <= audio_index < len(sdp.media):
        raise SdpError("no audio section")
    moved: dict[str, list[str]] = {}
    session: list[str] = []
    session_direction: str | None = None
    had_bundle = False
    for line in sdp.session:
        a = attr(line)
        if a is not None and a[0] in _SESSION_TRANSPORT:
            moved.setdefault(a[0], []).append(line)
        elif a is not None and a[0] in DIRECTIONS:
            session_direction = a[0]
        elif a is not None and a[0] == "group" and a[1].startswith("BUNDLE"):
            had_bundle = True
        else:
            session.append(line)
    session_hold = any(line.startswith("c=") and _null_address(line) for line in sdp.session)

    rejected: list[tuple[int, str]] = []
    for i, section in enumerate(sdp.media):
        if i != audio_index:
            media, _, proto, fmts = m_line(section)
            rejected.append((i, f"m={media} 0 {proto} {' '.join(fmts) or '0'}"))
    section = sdp.media[audio_index]
    _, _, _, fmts = m_line(section)
    own = {a[0] for a in map(attr, section) if a is not None}
    mids = attrs(section, "mid")
    had_mid = bool(mids)
    setup_values = attrs(section, "setup") or [line.partition(":")[2] for line in moved.get("setup", [])]
    direction = direction_of(section) or session_direction or "sendrecv"
    hold_by_address = any(line.startswith("c=") and _null_address(line) for line in section) or (
        session_hold and not any(line.startswith("c=") for line in section)
    )
    if hold_by_address:  # RFC 3264 §8.4: the old way to ask "do not send to me"
        direction = {"sendrecv": "sendonly", "recvonly": "inactive"}.get(direction, direction)

    rtpmap = {int(v.split()[0]) for v in attrs(section, "rtpmap") if v.split() and v.split()[0].isdigit()}
    out = [section[0]]
    for line in section[1:]:
        a = attr(line)
        if a is None:
            out.append(line)
            continue
        name, value = a
        if name in DIRECTIONS:
            continue  # written once below
        if name == "extmap":
            # RFC 8285 §8: "a=extmap:<id>[/<dir>] <URI> <extensionattributes>"; aiortc
            # unpacks exactly two fields.
            out.append("a=extmap:" + " ".join(value.split()[:2]))
        elif name == "candidate":
            parts = value.split()
            if len(parts) >= 8 and parts[2].lower() == "udp":
                out.append(line)
        elif name in ("fmtp", "rtcp-fb"):
            pt = value.split(" ", 1)[0]
            if pt == "*" or (pt.isdigit() and (int(pt) in rtpmap or int(pt) in STATIC_RTPMAP)):
                out.append(line)
        elif name == "ssrc":
            if ":" in value.partition(" ")[2]:
                out.append(line)
        else:
            out.append(line)
    for f in fmts:
        if f.isdigit() and int(f) in STATIC_RTPMAP and int(f) not in rtpmap:
            out.append(f"a=rtpmap:{f} {STATIC_RTPMAP[int(f)]}")
    for name, lines in moved.items():
        if name not in own:
            out.extend(lines)
    if not had_mid:
        out.append(f"a=mid:{mid}")
    if not setup_values:
        # RFC 4145 §4: no a=setup means "active" in an offer and "passive" in an answer
        # (aiortc would take the section for one without DTLS).
        out.append("a=setup:active" if offer else "a=setup:passive")
    out.append(f"a={direction}")
    fixed = SdpText(session=session, media=[out])
    if had_bundle:
        fixed.session.append(f"a=group:BUNDLE {mids[0] if mids else mid}")
    return PreparedRemote(
        sdp=fixed.text(),
        audio_index=audio_index,
        rejected=tuple(rejected),
        had_mid=had_mid,
        had_bundle=had_bundle,
        setup=setup_values[0] if setup_values else None,
        direction=direction,
        hold=direction in ("sendonly", "inactive"),
    )


def _null_address(c_line: str) -> bool:
    parts = c_line[2:].split()
    return len(parts) >= 3 and parts[2].split("/")[0] in ("0.0.0.0", "::")


def finish_answer(answer: str, prepared: PreparedRemote) -> str:
    """Our answer (from aiortc) fitted to the offer as it came: the m= sections kept
    from aiortc rejected with port 0 in their places (RFC 3264 §6), and no a=mid or
    BUNDLE group when the offer had none (RFC 5888 §9.1, RFC 8843 §7.3)."""
    sdp = SdpText.parse(answer)
    if not prepared.had_bundle:
        sdp.session = [line for line in sdp.session if not line.startswith("a=group:")]
    if not prepared.had_mid:
        sdp.media = [[line for line in s if not line.startswith("a=mid:")] for s in sdp.media]
    for index, line in prepared.rejected:
        sdp.media.insert(index, [line])
    return sdp.text()


def set_setup(sdp_text: str, setup: str) -> str:
    """Every a=setup line set to ``setup`` (RFC 4145 §4): our DTLS role in an answer."""
    sdp = SdpText.parse(sdp_text)
    sdp.media = [
        [f"a=setup:{setup}" if line.startswith("a=setup:") else line for line in s] for s in sdp.media
    ]
    return sdp.text()


# --------------------------------------------------------------------------- ours

_DROP_MEDIA: Final = ("a=msid:", "a=ssrc:", "a=ssrc-group:")
FOUNDATION_LENGTH: Final = 8
"""Characters of an ICE foundation we keep when over the SDP budget."""


def _short_foundation(line: str) -> str:
    if not line.startswith("a=candidate:"):
        return line
    foundation, sep, rest = line[len("a=candidate:") :].partition(" ")
    return f"a=candidate:{foundation[:FOUNDATION_LENGTH]}{sep}{rest}"


def _candidate_rank(line: str) -> int:
    """How much a candidate is worth keeping: relayed (works through any NAT), then
    server reflexive, then host IPv4, then host IPv6."""
    parts = line.split()
    kind = parts[parts.index("typ") + 1] if "typ" in parts else "host"
    if kind == "relay":
        return 3
    if kind in ("srflx", "prflx"):
        return 2
    return 0 if ":" in parts[4] else 1


def trim_local(sdp_text: str, *, session_id: int, version: int, budget: int) -> str:
    """Our SDP (from aiortc) as we send it (see the module docstring)."""
    sdp = SdpText.parse(sdp_text)
    address = None
    for section in sdp.media:
        address = next((line[2:].split()[2] for line in section if line.startswith("c=")), None)
        if address:
            break
    addr = address or "0.0.0.0"
    sdp.session = [
        (
            f"o=- {session_id} {version} IN {'IP6' if ':' in addr else 'IP4'} {addr}"
            if line.startswith("o=")
            else line
        )
        for line in sdp.session
        if not line.startswith("a=msid-semantic")
    ]
    for n, section in enumerate(sdp.media):
        mux = "a=rtcp-mux" in section
        has_sha256 = any(line.startswith("a=fingerprint:sha-256 ") for line in section)
        sdp.media[n] = [
            line
            for line in section
            if not line.startswith(_DROP_MEDIA)
            and not (mux and line.startswith("a=rtcp:"))
            and not (
                has_sha256
                and line.startswith("a=fingerprint:")
                and not line.startswith("a=fingerprint:sha-256 ")
            )
        ]
    if len(sdp.text()) > budget:
        sdp.media = [[_short_foundation(line) for line in section] for section in sdp.media]
    _drop_candidates(sdp, budget, below=1)  # IPv6 host candidates
    if len(sdp.text()) > budget:
        sdp.media = [[line for line in section if not line.startswith("a=extmap:")] for section in sdp.media]
    _drop_candidates(sdp, budget)
    return sdp.text()


def _drop_candidates(sdp: SdpText, budget: int, below: int | None = None) -> None:
    """Leave out candidates, least useful first (of a rank under ``below`` only, if
    given), until ``sdp`` fits ``budget``; each media section keeps one."""
    while len(sdp.text()) > budget:
        candidates = [
            (_candidate_rank(line), -j, n, j)
            for n, section in enumerate(sdp.media)
            for j, line in enumerate(section)
            if line.startswith("a=candidate:")
        ]
        if len(candidates) <= len(sdp.media):
            return
        rank, _, n, j = min(candidates)
        if below is not None and rank >= below:
            return
        del sdp.media[n][j]
        _default_from_candidates(sdp.media[n])


def _default_from_candidates(section: list[str]) -> None:
    """Keep the default address (c= and the m= port) on a candidate still listed
    (RFC 8839 §4.2.1.1: the default destination is one of the candidates)."""
    cands = [line[len("a=candidate:") :].split() for line in section if line.startswith("a=candidate:")]
    if not cands:
        return
    media, port, proto, fmts = m_line(section)
    c_index = next((i for i, line in enumerate(section) if line.startswith("c=")), None)
    current = section[c_index][2:].split()[2] if c_index is not None else None
    if any(c[4] == current and c[5] == str(port) for c in cands):
        return
    first = cands[0]
    section[0] = f"m={media} {first[5]} {proto} {' '.join(fmts)}"
    c_line = f"c=IN {'IP6' if ':' in first[4] else 'IP4'} {first[4]}"
    if c_index is None:
        section.insert(1, c_line)
    else:
        section[c_index] = c_line


def audio_direction(sdp_text: str) -> str:
    """The direction of the first audio section (sendrecv when none is written)."""
    sdp = SdpText.parse(sdp_text)
    for section in sdp.media:
        if section[0].startswith("m=audio"):
            return direction_of(section) or direction_of(sdp.session) or "sendrecv"
    return "inactive"

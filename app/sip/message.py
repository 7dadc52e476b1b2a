"""SIP messages (RFC 3261 §7, §20, §25): parse, validate, serialize; stream framing.

- :func:`parse_message` takes one datagram-sized message. Header bytes are UTF-8 (§25.1's
  UTF8-NONASCII), lines end in CRLF, a line starting with SP/HTAB continues the previous one
  (§7.3.1, folded into one SP), compact names are understood (§7.3.3). The body is bytes,
  never decoded (a multipart body passes through untouched, §7.4). Unknown methods and
  headers are kept as they are. The only exception it raises is RemoteProtocolError with
  the status to answer (400, or 505 for another SIP version, §21.5.6) and a reason saying
  what is wrong and where (a line number when one applies).
- :func:`error_response_for` builds that 400/505 from the raw bytes when the request's
  Via, From, To, Call-ID and CSeq can be read (§8.2.6), and gives None for a response or an
  ACK (both are dropped, §17.2.1/§18.1.2).
- :class:`StreamFramer` cuts a TCP/TLS byte stream into messages by Content-Length
  (mandatory on streams, §18.3; CRLF keep-alives of RFC 5626 §4.4.1 skipped).
- ``encode()`` writes compact header names by default: an INVITE with SDP must stay under
  1300 bytes to go over UDP (§18.1.1; our AppAttach DTLS path has no TCP to fall back on).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.sip.errors import LocalProtocolError, RemoteProtocolError
from app.sip.headers import (
    COMPACT_OF,
    SINGLE_HEADERS,
    ContentType,
    CSeq,
    Headers,
    NameAddr,
    Via,
    canonical_name,
    header_key,
    parse_call_id,
    parse_content_length,
    parse_expires,
    parse_max_forwards,
    split_list,
)
from app.sip.uri import SipUri, Uri, parse_uri

SIP_VERSION = "SIP/2.0"
#: RFC 3261 §18.1.1: above this size (path MTU unknown) a request must not go over UDP.
MTU_LIMIT = 1300
#: Largest message a StreamFramer accepts (headers and body); more gets 513 (§21.5.13).
MAX_STREAM_MESSAGE = 1 << 20

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",  # RFC 6228
    200: "OK",
    202: "Accepted",  # RFC 3515, RFC 6665
    204: "No Notification",  # RFC 5839
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",  # RFC 3903
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    428: "Use Identity Header",  # RFC 8224
    429: "Provide Referrer Identity",  # RFC 3892
    433: "Anonymity Disallowed",  # RFC 5079
    436: "Bad Identity Info",  # RFC 8224
    437: "Unsupported Credential",
    438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support",  # RFC 5626
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",  # RFC 6665
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",  # RFC 3329
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    580: "Precondition Failure",  # RFC 3312
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",  # RFC 8197
}

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_VERSION_RE = re.compile(r"SIP/([0-9]+)\.([0-9]+)", re.IGNORECASE)
_REQUEST_LINE_RE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+) ([^ ]+) (SIP/[0-9]+\.[0-9]+)", re.IGNORECASE)
_STATUS_LINE_RE = re.compile(r"(SIP/[0-9]+\.[0-9]+) ([0-9]{3})(?: (.*))?", re.IGNORECASE)
#: Control characters other than HTAB, CR, LF: not allowed anywhere in the headers (§25.1).
#: A quoted-pair may hold one (§25.1: "\\" %x00-09 / %x0B-0C / %x0E-7F), as RFC 4475 §3.1.1.2 has.
_CTL_RE = re.compile(r"(?<!\\)[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BARE_CR_LF_RE = re.compile(r"\r(?!\n)|(?<!\r)\n")
_ANY_CTL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Reason-Phrase (§25.1) allows SP and HTAB, no other control character.
_REASON_BAD_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

#: Headers whose values the parser checks on every message (the ones the UA relies on).
_CHECKED = frozenset(
    {"via", "from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type",
     "contact", "route", "record-route", "expires"}
)  # fmt: skip
_NAMES = {key: canonical_name(key) for key in _CHECKED}
_REQUIRED_REQUEST = ("via", "from", "to", "call-id", "cseq", "max-forwards")
_REQUIRED_RESPONSE = ("via", "from", "to", "call-id", "cseq")


def _err(reason: str, status: int = 400) -> RemoteProtocolError:
    return RemoteProtocolError(status, reason)


class _Common:
    """Header accessors shared by requests and responses: parsed on access."""

    headers: Headers
    body: bytes

    def _one(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise _err(f"Missing {canonical_name(name)} header")
        return value

    @property
    def call_id(self) -> str:
        return parse_call_id(self._one("Call-ID"))

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self._one("CSeq"))

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self._one("From"), "From")

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self._one("To"), "To")

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        values = self.headers.get_all("Via")
        if not values:
            raise _err("Missing Via header")
        return Via.parse(values[0])

    @property
    def branch(self) -> str | None:
        return self.top_via.branch

    @property
    def contacts(self) -> list[NameAddr]:
        return [NameAddr.parse(v, "Contact") for v in self.headers.get_all("Contact")]

    @property
    def routes(self) -> list[NameAddr]:
        return [NameAddr.parse(v, "Route") for v in self.headers.get_all("Route")]

    @property
    def record_routes(self) -> list[NameAddr]:
        return [NameAddr.parse(v, "Record-Route") for v in self.headers.get_all("Record-Route")]

    @property
    def content_type_header(self) -> ContentType | None:
        value = self.headers.get("Content-Type")
        return None if value is None else ContentType.parse(value)

    @property
    def content_type(self) -> str | None:
        """``type/subtype`` lower-cased, without parameters; None when there is none."""
        ct = self.content_type_header
        return None if ct is None else ct.mime

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        return None if value is None else parse_max_forwards(value)

    @property
    def expires(self) -> int | None:
        value = self.headers.get("Expires")
        return None if value is None else parse_expires(value)

    def _encode(self, start_line: str, compact: bool) -> bytes:
        lines = [start_line]
        length_done = False
        length_name = "l" if compact else "Content-Length"
        for name, value, key in self.headers._items:
            if key == "content-length":
                if not length_done:  # where the first one was; the others dropped
                    lines.append(f"{length_name}: {len(self.body)}")
                    length_done = True
                continue
            if compact:
                name = COMPACT_OF.get(key, name)
            elif len(name) == 1:
                name = canonical_name(name)
            lines.append(f"{name}: {value}")
        if not length_done:
            lines.append(f"{length_name}: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body


@dataclass(eq=True)
class SipRequest(_Common):
    method: str
    uri: Uri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def encode(self, *, compact: bool = True) -> bytes:
        """Wire form; Content-Length from the body; compact names when ``compact`` (§7.3.3)."""
        if not _TOKEN_RE.fullmatch(self.method):
            raise LocalProtocolError(f"method {self.method!r} is not a token")
        return self._encode(f"{self.method} {self.uri} {self.version}", compact)


@dataclass(eq=True)
class SipResponse(_Common):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def encode(self, *, compact: bool = True) -> bytes:
        """Wire form; Content-Length from the body; compact names when ``compact`` (§7.3.3)."""
        if not 100 <= self.status <= 699:
            raise LocalProtocolError(f"status {self.status} is not 100-699")
        if _REASON_BAD_RE.search(self.reason):
            raise LocalProtocolError("reason phrase contains control characters")
        return self._encode(f"{self.version} {self.status} {self.reason}", compact)


SipMessage = SipRequest | SipResponse


# ------------------------------------------------------------------ parsing


def _split_head(data: bytes) -> tuple[int, int]:
    """(start of the start line, end of the headers) in ``data``; leading CRLFs skipped
    (§7.5)."""
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        if start == len(data):
            raise _err("Empty message")
        raise _err("No empty line after the headers (truncated message?)")
    return start, end


def _header_lines(text: str) -> tuple[str, list[tuple[str, str, str]], list[int]]:
    """The start line, the (name, value, key) triples with folded lines joined, and each
    header's line number (1 = start line)."""
    # Fast checks first (C speed); the regexes with look-behind only to say where.
    if _ANY_CTL_RE.search(text) is not None:
        bad = _CTL_RE.search(text)
        if bad is not None:
            at = text.count("\n", 0, bad.start()) + 1
            raise _err(f"Control character 0x{ord(bad.group(0)):02x} in the headers (line {at})")
    crlf = text.count("\r\n")
    if text.count("\r") != crlf or text.count("\n") != crlf:
        bad = _BARE_CR_LF_RE.search(text)
        at = 1 if bad is None else text.count("\n", 0, bad.start()) + 1
        raise _err(f"Line not ended by CRLF (line {at})")
    lines = text.split("\r\n")
    items: list[tuple[str, str, str]] = []
    numbers: list[int] = []
    for number, line in enumerate(lines[1:], 2):
        if line[:1] in (" ", "\t"):
            # §7.3.1: CRLF followed by whitespace continues the previous header's value.
            if not items:
                raise _err(f"Continuation line before any header (line {number})")
            name, value, key = items[-1]
            more = line.strip(" \t")
            items[-1] = (name, f"{value} {more}" if value and more else value or more, key)
            continue
        colon = line.find(":")
        if colon <= 0:
            raise _err(f"Header line without a name and ':' (line {number})")
        name = line[:colon].rstrip(" \t")
        if not _TOKEN_RE.fullmatch(name):
            raise _err(f"Bad header name (line {number})")
        items.append((name, line[colon + 1 :].strip(" \t"), header_key(name)))
        numbers.append(number)
    return lines[0], items, numbers


def _with_line(exc: RemoteProtocolError, number: int) -> RemoteProtocolError:
    return RemoteProtocolError(exc.status, f"{exc.reason} (line {number})")


def _validate(
    items: list[tuple[str, str, str]], numbers: list[int], method: str | None, body: bytes
) -> bytes:
    """Check the headers the UA relies on (§8.1.1, §8.2); return the body cut to
    Content-Length."""
    seen: dict[str, int] = {}
    length: int | None = None
    cseq: CSeq | None = None
    star_contact = False
    contacts = 0
    for index, (_, value, key) in enumerate(items):
        if key not in _CHECKED:
            continue
        number = numbers[index]
        if key in SINGLE_HEADERS and key in seen:
            raise _err(f"More than one {_NAMES[key]} header (lines {seen[key]} and {number})")
        seen.setdefault(key, number)
        try:
            if key == "via":
                values = split_list(value)
                if not values:
                    raise _err("Empty Via header")
                for v in values:
                    Via.parse(v)
            elif key in ("from", "to"):
                addr = NameAddr.parse(value, _NAMES[key])
                if addr.is_star:
                    raise _err(f"Bad {_NAMES[key]} header: '*'")
            elif key == "call-id":
                parse_call_id(value)
            elif key == "cseq":
                cseq = CSeq.parse(value)
            elif key == "max-forwards":
                parse_max_forwards(value)
            elif key == "content-length":
                length = parse_content_length(value)
            elif key == "content-type":
                ContentType.parse(value)
            elif key == "expires":
                parse_expires(value)
            else:  # contact, route, record-route
                values = split_list(value)
                if not values:
                    raise _err(f"Empty {_NAMES[key]} header")
                for v in values:
                    addr = NameAddr.parse(v, _NAMES[key])
                    if key == "contact":
                        contacts += 1
                        star_contact = star_contact or addr.is_star
                    elif addr.is_star:
                        raise _err(f"Bad {_NAMES[key]} header: '*'")
        except RemoteProtocolError as exc:
            raise _with_line(exc, number) from None
    if star_contact and contacts > 1:
        raise _err("Contact '*' together with other contacts")
    for key in _REQUIRED_REQUEST if method is not None else _REQUIRED_RESPONSE:
        if key not in seen:
            raise _err(f"Missing {_NAMES[key]} header")
    if method is not None and cseq is not None and cseq.method != method:
        raise _err(f"CSeq method {cseq.method} does not match request method {method}")
    if length is not None:
        if length > len(body):
            raise _err(f"Content-Length {length} larger than the body ({len(body)} bytes)")
        body = body[:length]
    return body


def _parse(data: bytes) -> SipMessage:
    start, end = _split_head(data)
    try:
        text = data[start:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _err(f"Header bytes are not UTF-8 (byte {start + exc.start})") from None
    first, items, numbers = _header_lines(text)
    body = data[end + 4 :]
    if first[:4].upper() == "SIP/":
        m = _STATUS_LINE_RE.fullmatch(first)
        if m is None:
            raise _err("Bad status line (line 1)")
        version, code, reason = m.group(1).upper(), int(m.group(2)), m.group(3) or ""
        if version != SIP_VERSION:
            raise _err(f"SIP version {version} not supported (line 1)", 505)
        if not 100 <= code <= 699:
            raise _err("Status code outside 100-699 (line 1)")
        if _REASON_BAD_RE.search(reason):
            raise _err("Control character in the reason phrase (line 1)")
        body = _validate(items, numbers, None, body)
        return SipResponse(code, reason, Headers._trusted(items), body, version)
    m = _REQUEST_LINE_RE.fullmatch(first)
    if m is None:
        raise _err(_request_line_problem(first))
    method, uri_text, version = m.group(1), m.group(2), m.group(3).upper()
    if version != SIP_VERSION:
        raise _err(f"SIP version {version} not supported (line 1)", 505)
    try:
        uri = parse_uri(uri_text)
    except RemoteProtocolError as exc:
        raise _err(f"Bad Request-URI: {exc.reason} (line 1)") from None
    if isinstance(uri, SipUri) and uri.headers:
        raise _err("Bad Request-URI: headers not allowed in a Request-URI (§19.1.1) (line 1)")
    body = _validate(items, numbers, method, body)
    return SipRequest(method, uri, Headers._trusted(items), body, version)


def _request_line_problem(line: str) -> str:
    parts = line.split(" ")
    if len(parts) != 3 or "" in parts or "\t" in line:
        return "Request line is not 'Method SP Request-URI SP SIP-Version' (line 1)"
    if not _TOKEN_RE.fullmatch(parts[0]):
        return "Bad method (line 1)"
    return "Bad SIP version (line 1)"


def parse_message(data: bytes) -> SipMessage:
    """Parse one message (a datagram, or a message a StreamFramer cut out).

    Content-Length, when present, cuts the body; a shorter body is an error. Raises only
    RemoteProtocolError (``status``, ``reason``, ``raw`` = ``data``).
    """
    try:
        return _parse(data)
    except RemoteProtocolError as exc:
        exc.raw = data
        raise


def message_size_ok(data: bytes) -> bool:
    """Whether ``data`` may go over UDP with an unknown path MTU (RFC 3261 §18.1.1)."""
    return len(data) <= MTU_LIMIT


# ------------------------------------------------------------------ responses


def build_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> SipResponse:
    """A response to ``request`` (§8.2.6.2): its Via headers, From, To (with ``to_tag`` added
    if the To has no tag yet), Call-ID and CSeq copied, then ``headers``. A 100 also copies
    Timestamp (§8.2.6.1). The request must be one parse_message accepted."""
    out: list[tuple[str, str, str]] = []
    for name, value, key in request.headers._items:
        if key in ("via", "from", "call-id", "cseq") or (key == "timestamp" and status == 100):
            out.append((name, value, key))
        elif key == "to":
            if to_tag is not None and NameAddr.parse(value, "To").tag is None:
                value = f"{value};tag={to_tag}"
            out.append((name, value, key))
    response = SipResponse(status, reason or REASON_PHRASES.get(status, ""), Headers._trusted(out))
    for name, value in headers:
        response.headers.add(name, value)
    return response


def _sanitize_reason(reason: str) -> str:
    reason = re.sub(r"[\x00-\x1f\x7f]", "?", reason)
    return reason if len(reason) <= 120 else reason[:117] + "..."


def error_response_for(data: bytes, exc: RemoteProtocolError) -> bytes | None:
    """The 400/505/... answering the malformed ``data``, or None to drop it.

    None when ``data`` is a response (never answered, §18.1.2), an ACK (§17.1.1.3: no
    response to an ACK), not recognisable as a request, or when one of Via, From, To,
    Call-ID and CSeq cannot be read, since the response could not be matched (§8.2.6.2).
    The headers are copied byte for byte; a To tag is added (§8.2.6.2).
    """
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    head = data[start:end] if end >= 0 else data[start : max(start, data.rfind(b"\r\n"))]
    lines = head.split(b"\r\n")
    first = lines[0]
    space = first.find(b" ")
    if space <= 0 or first[:4].upper() == b"SIP/":
        return None
    try:
        method = first[:space].decode("ascii")
    except UnicodeDecodeError:
        return None
    if not _TOKEN_RE.fullmatch(method) or method == "ACK":
        return None
    # Unfold and collect the five headers, undecoded bytes kept for the copy.
    found: dict[str, list[tuple[bytes, str]]] = {}
    last: tuple[str, list[bytes]] | None = None
    collected: list[tuple[str, list[bytes]]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            if last is not None:
                last[1].append(line.strip(b" \t"))
            continue
        colon = line.find(b":")
        if colon <= 0:
            last = None
            continue
        try:
            key = header_key(line[:colon].rstrip(b" \t").decode("ascii"))
        except UnicodeDecodeError:
            last = None
            continue
        if key in ("via", "from", "to", "call-id", "cseq"):
            last = (key, [line[colon + 1 :].strip(b" \t")])
            collected.append(last)
        else:
            last = None
    for key, parts in collected:
        raw = b" ".join(p for p in parts if p)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if "\r" in text or "\n" in text or (_ANY_CTL_RE.search(text) and _CTL_RE.search(text)):
            return None
        found.setdefault(key, []).append((raw, text))
    try:
        for key in ("from", "to", "call-id", "cseq"):
            values = found.get(key)
            if values is None or len(values) != 1:
                return None
        if not found.get("via"):
            return None
        for _, text in found["via"]:
            vias = split_list(text)
            if not vias:
                return None
            for via in vias:
                Via.parse(via)
        NameAddr.parse(found["from"][0][1], "From")
        to = NameAddr.parse(found["to"][0][1], "To")
        parse_call_id(found["call-id"][0][1])
        CSeq.parse(found["cseq"][0][1])
    except RemoteProtocolError:
        return None
    reason = _sanitize_reason(exc.reason)
    out = [f"SIP/2.0 {exc.status} {reason}".encode()]
    out += [b"Via: " + raw for raw, _ in found["via"]]
    out.append(b"From: " + found["from"][0][0])
    to_raw = found["to"][0][0]
    if to.tag is None:
        to_raw += b";tag=" + new_tag().encode()
    out.append(b"To: " + to_raw)
    out.append(b"Call-ID: " + found["call-id"][0][0])
    out.append(b"CSeq: " + found["cseq"][0][0])
    out.append(b"Content-Length: 0")
    return b"\r\n".join(out) + b"\r\n\r\n"


# ------------------------------------------------------------------ identifiers

BRANCH_MAGIC = "z9hG4bK"


def new_branch() -> str:
    """A Via branch with the RFC 3261 magic cookie (§8.1.1.7) and 96 random bits."""
    return BRANCH_MAGIC + secrets.token_urlsafe(12)


def new_tag() -> str:
    """A From/To tag: at least 32 random bits (§19.3); we use 64."""
    return secrets.token_urlsafe(8)


def new_call_id(host: str) -> str:
    """A Call-ID (§8.1.1.4): 120 random bits ``@`` our host."""
    return f"{secrets.token_urlsafe(15)}@{host}"


# ------------------------------------------------------------------ streams

_LENGTH_LINE_RE = re.compile(
    rb"\r\n(?:content-length|l)[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", re.IGNORECASE
)


class StreamFramer:
    """Cut a stream (TCP, TLS) into messages by Content-Length (§18.3, §7.5).

    ``feed`` returns messages and RemoteProtocolErrors in order. An error in one message
    whose length could be read leaves the stream usable; a message whose length cannot be
    read (no Content-Length, a bad one, or too big) breaks the framing: the error is
    returned, ``broken`` becomes True, and the connection should be closed after answering.
    """

    def __init__(self, max_message_size: int = MAX_STREAM_MESSAGE) -> None:
        self._buf = bytearray()
        self._scan_from = 0
        self.max_message_size = max_message_size
        self.broken = False

    def feed(self, data: bytes) -> list[SipMessage | RemoteProtocolError]:
        out: list[SipMessage | RemoteProtocolError] = []
        if self.broken:
            return out
        buf = self._buf
        buf += data
        while True:
            skip = 0
            while buf.startswith(b"\r\n", skip):  # keep-alive CRLFs between messages
                skip += 2
            if skip:
                del buf[:skip]
                self._scan_from = 0
            end = buf.find(b"\r\n\r\n", self._scan_from)
            if end < 0:
                self._scan_from = max(0, len(buf) - 3)
                if len(buf) > self.max_message_size:
                    out.append(self._break(_err("Message Too Large: headers too long", 513), bytes(buf)))
                break
            head = bytes(buf[: end + 4])
            try:
                length = self._content_length(head)
            except RemoteProtocolError as exc:
                out.append(self._break(exc, head))
                break
            total = end + 4 + length
            if total > self.max_message_size:
                out.append(self._break(_err("Message Too Large", 513), head))
                break
            if len(buf) < total:
                self._scan_from = end  # the head is found again at once next time
                break
            message = bytes(buf[:total])
            del buf[:total]
            self._scan_from = 0
            try:
                out.append(parse_message(message))
            except RemoteProtocolError as exc:
                out.append(exc)
        return out

    def _break(self, exc: RemoteProtocolError, raw: bytes) -> RemoteProtocolError:
        self.broken = True
        self._buf.clear()
        exc.raw = raw
        return exc

    @staticmethod
    def _content_length(head: bytes) -> int:
        matches = _LENGTH_LINE_RE.findall(head)
        if not matches:
            raise _err("Missing Content-Length header (mandatory on stream transports)")
        if len(matches) > 1:
            raise _err("More than one Content-Length header")
        value = re.sub(rb"\r\n[ \t]+", b" ", matches[0]).strip(b" \t")
        if not value.isdigit() or len(value) > 10:
            raise _err("Bad Content-Length header")
        return int(value)

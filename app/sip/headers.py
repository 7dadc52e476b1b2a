"""SIP header fields: the ordered multi-map of a message's headers, and parsed values.

:class:`Headers` keeps every (name, value) pair as received (RFC 3261 §7.3: order of
different names is not significant, but the order of same-named ones is), with lookup that
is case-insensitive and knows the compact forms (§7.3.3, §20, and later RFCs' letters).

The parsed values (:class:`Via`, :class:`NameAddr`, :class:`CSeq`, ...) are frozen; each has
``parse(text)`` raising RemoteProtocolError(400, "bad <Header>: ...") and ``str()`` giving
the wire form (grammar of §25.1). Generic parameters keep a quoted-string value with its
quotes, so they go back on the wire as they came.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Self

from app.sip.errors import LocalProtocolError, RemoteProtocolError
from app.sip.uri import AbsoluteUri, Params, Uri, is_valid_host, parse_uri

#: Compact form -> lower-case long name (RFC 3261 §7.3.3 and the RFCs that added letters).
COMPACT_FORMS: dict[str, str] = {
    "i": "call-id",
    "m": "contact",
    "f": "from",
    "t": "to",
    "v": "via",
    "l": "content-length",
    "c": "content-type",
    "e": "content-encoding",
    "k": "supported",
    "s": "subject",
    "o": "event",  # RFC 6665
    "r": "refer-to",  # RFC 3515
    "b": "referred-by",  # RFC 3892
    "u": "allow-events",  # RFC 6665
    "x": "session-expires",  # RFC 4028
    "a": "accept-contact",  # RFC 3841
    "j": "reject-contact",  # RFC 3841
    "d": "request-disposition",  # RFC 3841
    "y": "identity",  # RFC 8224
    "n": "identity-info",  # RFC 4474
}
#: Lower-case long name -> compact form.
COMPACT_OF: dict[str, str] = {long: short for short, long in COMPACT_FORMS.items()}

#: Long names whose usual spelling is not plain Title-Case.
_SPELLINGS = {
    n.lower(): n
    for n in (
        "Call-ID", "CSeq", "WWW-Authenticate", "MIME-Version", "RAck", "RSeq", "SIP-ETag",
        "SIP-If-Match", "Identity-Info", "P-Asserted-Identity", "P-Preferred-Identity",
    )
}  # fmt: skip

#: Headers whose grammar is a comma-separated list (§7.3.1: may be split over lines).
LIST_HEADERS = frozenset(
    {
        "via", "contact", "route", "record-route", "allow", "supported", "require",
        "proxy-require", "unsupported", "accept", "accept-encoding", "accept-language",
        "content-encoding", "content-language", "alert-info", "call-info", "error-info",
        "in-reply-to", "warning", "allow-events", "path", "service-route", "accept-contact",
        "reject-contact", "request-disposition", "security-client", "security-server",
        "security-verify", "reply-to-list", "p-asserted-identity", "p-preferred-identity",
    }
)  # fmt: skip

#: Headers a request or response may carry once only (their grammar has no list form).
SINGLE_HEADERS = frozenset(
    {"call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type", "expires"}
)

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_TOKEN_RE = re.compile(_TOKEN)
_QUOTED = r'"(?:[^"\\]|\\.)*"'
# An IPv6 address without brackets is what §25.1 gives via-received (IPv6address), and
# what a UA stamps when the request came over IPv6 (RFC 5118 §4.5: accept both forms).
_GEN_VALUE = rf"(?:{_QUOTED}|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]+|{_TOKEN})"
_PARAM_RE = re.compile(rf"[ \t]*;[ \t]*({_TOKEN})(?:[ \t]*=[ \t]*({_GEN_VALUE}))?[ \t]*")
_WORD_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+")
_CALL_ID_RE = re.compile(rf"{_WORD_RE.pattern}(?:@{_WORD_RE.pattern})?")
_VIA_RE = re.compile(
    rf"[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]+"
    r"(\[[^\]]*\]|[^ \t:;]+)(?:[ \t]*:[ \t]*([0-9]+))?"
)
_CSEQ_RE = re.compile(rf"[ \t]*([0-9]+)[ \t]+({_TOKEN})[ \t]*")
_DIGITS_RE = re.compile(r"[ \t]*([0-9]+)[ \t]*")
_HEADER_NAME_RE = re.compile(_TOKEN)
_QUOTED_PAIR_RE = re.compile(r"\\(.)")
_MEDIA_RE = re.compile(rf"[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})")
_WARNING_RE = re.compile(rf"[ \t]*([0-9]{{3}}) +([^ \t]+) +({_QUOTED})[ \t]*")
_RETRY_RE = re.compile(r"[ \t]*([0-9]+)[ \t]*(\([^)]*\))?")

MAX_DELTA_SECONDS = 2**32 - 1


def canonical_name(name: str) -> str:
    """The long name in its usual spelling: ``i`` -> ``Call-ID``, ``cseq`` -> ``CSeq``."""
    lower = name.lower()
    lower = COMPACT_FORMS.get(lower, lower)
    spelled = _SPELLINGS.get(lower)
    if spelled is not None:
        return spelled
    return "-".join(part.capitalize() for part in lower.split("-"))


def header_key(name: str) -> str:
    """Lower-case long name: the lookup key of a header."""
    lower = name.lower()
    return COMPACT_FORMS.get(lower, lower)


def _shown(text: str) -> str:
    """A value as it may appear inside a reason phrase: short, no control characters."""
    if len(text) > 40:
        text = text[:37] + "..."
    return "".join(c if " " <= c < "\x7f" or c > "\xa0" else "?" for c in text)


def bad_header(name: str, why: str, text: str) -> RemoteProtocolError:
    return RemoteProtocolError(400, f"Bad {name} header: {why} in '{_shown(text)}'")


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, not inside quotes or <...>; empty items dropped."""
    if '"' not in value and "<" not in value:
        return [p for p in (s.strip() for s in value.split(",")) if p]
    out: list[str] = []
    start = 0
    quoted = angle = False
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == "," and not angle:
            out.append(value[start:i])
            start = i + 1
        i += 1
    out.append(value[start:])
    return [p for p in (s.strip() for s in out) if p]


def _check_value(name: str, value: str) -> None:
    if not _HEADER_NAME_RE.fullmatch(name):
        raise LocalProtocolError(f"header name {name!r} is not a token")
    if "\r" in value or "\n" in value:
        raise LocalProtocolError(f"header {name} value contains CR or LF")


class Headers:
    """An ordered multi-map of (name, value) pairs, names kept as given.

    Lookup is case-insensitive and compact-form aware: ``get("Call-ID")`` finds ``i: ...``.
    Two Headers are equal when they hold the same values under the same header keys in the
    same order (so ``i`` equals ``Call-ID``).
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str, str]] = []
        for name, value in items:
            self.add(name, value)

    @classmethod
    def _trusted(cls, items: list[tuple[str, str, str]]) -> Headers:
        """From (name, value, key) triples the parser has already checked."""
        h = cls.__new__(cls)
        h._items = items
        return h

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        _check_value(name, value)
        self._items.append((name, value, header_key(name)))

    def prepend(self, name: str, value: str) -> None:
        """Insert before the first header of the same name (or first of all): a new top Via."""
        _check_value(name, value)
        key = header_key(name)
        index = next((i for i, item in enumerate(self._items) if item[2] == key), 0)
        self._items.insert(index, (name, value, key))

    def set(self, name: str, value: str) -> None:
        """Replace every header of this name by one line, where the first one was."""
        _check_value(name, value)
        key = header_key(name)
        index = next((i for i, item in enumerate(self._items) if item[2] == key), len(self._items))
        self._items = [item for item in self._items if item[2] != key]
        self._items.insert(min(index, len(self._items)), (name, value, key))

    def remove(self, name: str) -> None:
        key = header_key(name)
        self._items = [item for item in self._items if item[2] != key]

    def get(self, name: str) -> str | None:
        """The first line's value, or None."""
        key = header_key(name)
        for _, value, k in self._items:
            if k == key:
                return value
        return None

    def values(self, name: str) -> list[str]:
        """Every line's value, unsplit."""
        key = header_key(name)
        return [value for _, value, k in self._items if k == key]

    def get_all(self, name: str) -> list[str]:
        """Every value: lines in order, each split at commas when the header is a list."""
        key = header_key(name)
        values = [value for _, value, k in self._items if k == key]
        if key not in LIST_HEADERS:
            return values
        out: list[str] = []
        for value in values:
            out += split_list(value)
        return out

    def count(self, name: str) -> int:
        key = header_key(name)
        return sum(1 for item in self._items if item[2] == key)

    def copy(self) -> Headers:
        return Headers._trusted(list(self._items))

    def items(self) -> list[tuple[str, str]]:
        return [(name, value) for name, value, _ in self._items]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for name, value, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(item[2] == key for item in self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for _, v, k in self._items] == [(k, v) for _, v, k in other._items]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


# ------------------------------------------------------------------ parameters


def parse_params(text: str, header: str) -> Params:
    """``*( SEMI generic-param )`` (§25.1); a quoted value keeps its quotes."""
    out: list[tuple[str, str | None]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _PARAM_RE.match(text, pos)
        if m is None:
            raise bad_header(header, "bad parameter", text[pos:])
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(out)


def params_text(params: Params) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def unquote(text: str) -> str:
    """The contents of a quoted-string (quotes removed, quoted-pairs undone)."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return _QUOTED_PAIR_RE.sub(r"\1", text[1:-1])
    return text


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _find(params: Params, name: str) -> tuple[bool, str | None]:
    lname = name.lower()
    for n, v in params:
        if n.lower() == lname:
            return True, v
    return False, None


def _with(params: Params, name: str, value: str | None) -> Params:
    lname = name.lower()
    out = list(params)
    for i, (n, _) in enumerate(out):
        if n.lower() == lname:
            out[i] = (n, value)
            return tuple(out)
    out.append((name, value))
    return tuple(out)


def _without(params: Params, name: str) -> Params:
    lname = name.lower()
    return tuple(p for p in params if p[0].lower() != lname)


class _HasParams:
    params: Params

    def param(self, name: str) -> str | None:
        """Parameter value (quoted values keep their quotes), None if absent or valueless."""
        return _find(self.params, name)[1]

    def has_param(self, name: str) -> bool:
        return _find(self.params, name)[0]


def _check_host(host: str, header: str, text: str) -> None:
    if not is_valid_host(host):
        raise bad_header(header, "bad host", text)


# ------------------------------------------------------------------ Via (§20.42)


@dataclass(frozen=True, slots=True)
class Via(_HasParams):
    protocol: str  # "SIP/2.0"
    transport: str  # "UDP", "TCP", "TLS", "DTLS", ... as received
    host: str
    port: int | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Self:
        m = _VIA_RE.match(text)
        if m is None:
            raise bad_header("Via", "bad sent-protocol or sent-by", text)
        name, version, transport, host, port_text = m.groups()
        _check_host(host, "Via", text)
        port = None
        if port_text is not None:
            if len(port_text) > 5 or int(port_text) > 65535:
                raise bad_header("Via", "bad port", text)
            port = int(port_text)
        params = parse_params(text[m.end() :], "Via")
        for n, v in params:
            if v is None and n.lower() in ("branch", "received", "maddr", "ttl"):
                raise bad_header("Via", f"{n} without a value", text)
        via = cls(f"{name}/{version}", transport, host, port, params)
        rport = via.param("rport")
        if rport is not None and not (rport.isdigit() and len(rport) <= 5 and int(rport) <= 65535):
            raise bad_header("Via", "bad rport", text)
        ttl = via.param("ttl")
        if ttl is not None and not (ttl.isdigit() and len(ttl) <= 3 and int(ttl) <= 255):
            raise bad_header("Via", "bad ttl", text)
        return via

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{params_text(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def rport(self) -> int | None:
        """The rport value filled in by a server (RFC 3581); None if absent or still empty."""
        value = self.param("rport")
        return None if value is None else int(value)

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    def with_param(self, name: str, value: str | None = None) -> Via:
        return dataclasses.replace(self, params=_with(self.params, name, value))

    def without_param(self, name: str) -> Via:
        return dataclasses.replace(self, params=_without(self.params, name))


# ------------------------------------------------------------ name-addr (§20.10, §20.20, ...)


@dataclass(frozen=True, slots=True)
class NameAddr(_HasParams):
    """From/To/Contact/Route/Record-Route/Refer-To/Reply-To: ``"Name" <uri>;params``.

    ``display_name`` is unquoted (None when absent). Contact ``*`` is a NameAddr whose uri
    is ``AbsoluteUri("*")``: see :attr:`is_star`.
    """

    display_name: str | None
    uri: Uri
    params: Params = ()

    @classmethod
    def parse(cls, text: str, header: str = "name-addr") -> Self:
        s = text.strip(" \t")
        if s == "*":
            return cls(None, AbsoluteUri("*"))
        display: str | None = None
        rest: str
        if s.startswith('"'):
            m = re.match(_QUOTED, s)
            if m is None:
                raise bad_header(header, "unterminated quoted display name", text)
            display = unquote(m.group(0))
            rest = s[m.end() :].lstrip(" \t")
            if not rest.startswith("<"):
                raise bad_header(header, "no <URI> after display name", text)
        else:
            lt = s.find("<")
            if lt >= 0:
                words = s[:lt].split()
                for word in words:
                    if not _TOKEN_RE.fullmatch(word) and word.isascii():
                        raise bad_header(header, "bad display name", text)
                display = " ".join(words) if words else None
                rest = s[lt:]
            else:
                rest = s
        if rest.startswith("<"):
            gt = rest.find(">")
            if gt < 0:
                raise bad_header(header, "no closing '>'", text)
            uri_text, tail = rest[1:gt], rest[gt + 1 :]
        else:
            # addr-spec without <>: its URI cannot hold ';' parameters or ',' (§20.10).
            semi = rest.find(";")
            uri_text, tail = (rest, "") if semi < 0 else (rest[:semi].rstrip(" \t"), rest[semi:])
            if any(c in uri_text for c in " \t,?"):
                raise bad_header(header, "URI with spaces, ',' or '?' must be in <>", text)
        try:
            uri = parse_uri(uri_text)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(400, f"Bad {header} header: {exc.reason}") from None
        params = parse_params(tail, header)
        if any(v is None and n.lower() == "tag" for n, v in params):
            raise bad_header(header, "tag without a value", text)
        return cls(display, uri, params)

    def __str__(self) -> str:
        if self.is_star:
            return "*"
        name = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{name}<{self.uri}>{params_text(self.params)}"

    @property
    def is_star(self) -> bool:
        return isinstance(self.uri, AbsoluteUri) and self.uri.text == "*"

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return dataclasses.replace(self, params=_with(self.params, "tag", tag))

    def with_param(self, name: str, value: str | None = None) -> NameAddr:
        return dataclasses.replace(self, params=_with(self.params, name, value))

    def without_param(self, name: str) -> NameAddr:
        return dataclasses.replace(self, params=_without(self.params, name))

    @property
    def expires(self) -> int | None:
        """A Contact's ``expires`` parameter (§20.10), None if absent or not a number."""
        value = self.param("expires")
        if value is None or not value.isdigit():
            return None
        return min(int(value), MAX_DELTA_SECONDS)

    @property
    def q(self) -> float | None:
        value = self.param("q")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            return None


# ------------------------------------------------------------------ CSeq (§20.16)


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> Self:
        m = _CSEQ_RE.fullmatch(text)
        if m is None:
            raise bad_header("CSeq", "not a number and a method", text)
        digits = m.group(1)
        # §8.1.1.5: the sequence number is 32 bits and below 2**31.
        if len(digits) > 10 or int(digits) >= 2**31:
            raise bad_header("CSeq", "sequence number too large", text)
        return cls(int(digits), m.group(2))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


# ------------------------------------------------------------------ small ones


def parse_call_id(text: str) -> str:
    """Call-ID (§20.8): ``word ["@" word]``."""
    s = text.strip(" \t")
    if not _CALL_ID_RE.fullmatch(s):
        raise bad_header("Call-ID", "not word[@word]", text)
    return s


def parse_delta_seconds(text: str, header: str = "Expires") -> int:
    """delta-seconds (§20.19, §25.1); values above 2**32-1 count as 2**32-1."""
    m = _DIGITS_RE.fullmatch(text)
    if m is None:
        raise bad_header(header, "not a number of seconds", text)
    digits = m.group(1)
    return MAX_DELTA_SECONDS if len(digits) > 10 else min(int(digits), MAX_DELTA_SECONDS)


def parse_expires(text: str) -> int:
    return parse_delta_seconds(text, "Expires")


def parse_max_forwards(text: str) -> int:
    """Max-Forwards (§20.22): an integer 0-255."""
    m = _DIGITS_RE.fullmatch(text)
    if m is None or len(m.group(1)) > 10 or int(m.group(1)) > 255:
        raise bad_header("Max-Forwards", "not a number 0-255", text)
    return int(m.group(1))


def parse_content_length(text: str) -> int:
    """Content-Length (§20.14): a number of octets."""
    m = _DIGITS_RE.fullmatch(text)
    if m is None or len(m.group(1)) > 10:
        raise bad_header("Content-Length", "not a number", text)
    return int(m.group(1))


def parse_token_list(values: Iterable[str], header: str = "Allow") -> tuple[str, ...]:
    """Allow/Supported/Require/Unsupported/Allow-Events (§20.5, §20.37, §20.32): tokens."""
    out: list[str] = []
    for value in values:
        for item in split_list(value):
            if not _TOKEN_RE.fullmatch(item):
                raise bad_header(header, "not a token", item)
            out.append(item)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ContentType(_HasParams):
    """Content-Type (§20.15): ``type/subtype;params``."""

    type: str
    subtype: str
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Self:
        m = _MEDIA_RE.match(text)
        if m is None:
            raise bad_header("Content-Type", "not type/subtype", text)
        return cls(m.group(1), m.group(2), parse_params(text[m.end() :], "Content-Type"))

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{params_text(self.params)}"

    @property
    def mime(self) -> str:
        """``type/subtype`` lower-cased (media types compare case-insensitively)."""
        return f"{self.type}/{self.subtype}".lower()

    @property
    def boundary(self) -> str | None:
        """A multipart body's boundary (RFC 2046 §5.1.1), quotes removed."""
        value = self.param("boundary")
        return None if value is None else unquote(value)


@dataclass(frozen=True, slots=True)
class Event(_HasParams):
    """Event (RFC 6665 §8.2.1; compact ``o``): a package name and parameters such as ``id``."""

    package: str
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Self:
        m = _TOKEN_RE.match(text.lstrip(" \t"))
        if m is None:
            raise bad_header("Event", "no event type", text)
        s = text.lstrip(" \t")
        return cls(m.group(0), parse_params(s[m.end() :], "Event"))

    def __str__(self) -> str:
        return f"{self.package}{params_text(self.params)}"

    @property
    def id(self) -> str | None:
        return self.param("id")


@dataclass(frozen=True, slots=True)
class SubscriptionState(_HasParams):
    """Subscription-State (RFC 6665 §8.2.3): active/pending/terminated and parameters."""

    state: str
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Self:
        s = text.lstrip(" \t")
        m = _TOKEN_RE.match(s)
        if m is None:
            raise bad_header("Subscription-State", "no state", text)
        state = cls(m.group(0), parse_params(s[m.end() :], "Subscription-State"))
        for name in ("expires", "retry-after"):
            value = state.param(name)
            if value is not None and not value.isdigit():
                raise bad_header("Subscription-State", f"bad {name}", text)
        return state

    def __str__(self) -> str:
        return f"{self.state}{params_text(self.params)}"

    @property
    def expires(self) -> int | None:
        value = self.param("expires")
        return None if value is None else min(int(value), MAX_DELTA_SECONDS)

    @property
    def reason(self) -> str | None:
        return self.param("reason")

    @property
    def retry_after(self) -> int | None:
        value = self.param("retry-after")
        return None if value is None else min(int(value), MAX_DELTA_SECONDS)


@dataclass(frozen=True, slots=True)
class Warning(_HasParams):
    """One Warning value (§20.43): ``code agent "text"``."""

    code: int
    agent: str
    text: str
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Self:
        m = _WARNING_RE.fullmatch(text)
        if m is None:
            raise bad_header("Warning", 'not code agent "text"', text)
        return cls(int(m.group(1)), m.group(2), unquote(m.group(3)))

    def __str__(self) -> str:
        return f"{self.code} {self.agent} {quote(self.text)}"


@dataclass(frozen=True, slots=True)
class RetryAfter(_HasParams):
    """Retry-After (§20.33): seconds, an optional comment, parameters such as ``duration``."""

    seconds: int
    comment: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Self:
        m = _RETRY_RE.match(text)
        if m is None:
            raise bad_header("Retry-After", "not a number of seconds", text)
        digits = m.group(1)
        seconds = MAX_DELTA_SECONDS if len(digits) > 10 else min(int(digits), MAX_DELTA_SECONDS)
        comment = None if m.group(2) is None else m.group(2)[1:-1]
        return cls(seconds, comment, parse_params(text[m.end() :], "Retry-After"))

    def __str__(self) -> str:
        comment = "" if self.comment is None else f" ({self.comment})"
        return f"{self.seconds}{comment}{params_text(self.params)}"

    @property
    def duration(self) -> int | None:
        value = self.param("duration")
        return None if value is None or not value.isdigit() else int(value)

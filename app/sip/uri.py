"""SIP, SIPS and tel URIs: parse, serialize, compare.

- SIP/SIPS URI (RFC 3261 §19.1, grammar §25.1): ``sip:user:password@host:port;params?headers``.
  User, password, parameters and headers are kept with their %-escapes undone (§19.1.4:
  escaped and unescaped characters are equal); ``str()`` escapes again what the grammar
  does not allow bare, so ``parse_uri(str(u)) == u``.
- tel URI (RFC 3966 §3, §5.1): a global number (``+`` then digits) or a local number with a
  ``phone-context`` parameter.
- Any other ``scheme:rest`` is an :class:`AbsoluteUri` (RFC 3261 §19.1.4's absoluteURI);
  whether to accept it is the UA's business (416, §8.2.2.1).

Comparison: :func:`uri_equal` follows §19.1.4 for SIP/SIPS and RFC 3966 §4 for tel; the
dataclasses' own ``==`` stays structural (field by field).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from typing import Self

from app.sip.errors import RemoteProtocolError

Params = tuple[tuple[str, str | None], ...]

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_UNRESERVED = _ALNUM + "-_.!~*'()"
#: Characters allowed bare in each part (§25.1); everything else is %-escaped on output.
USER_CHARS = frozenset(_UNRESERVED + "&=+$,;?/")
PASSWORD_CHARS = frozenset(_UNRESERVED + "&=+$,")
PARAM_CHARS = frozenset(_UNRESERVED + "[]/:&+$")
HEADER_CHARS = frozenset(_UNRESERVED + "[]/?:+$")

_ESC = r"%[0-9A-Fa-f]{2}"
_USER_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|{_ESC})+")
_PASSWORD_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|{_ESC})*")
_PARAM_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|{_ESC})+")
_HNAME_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|{_ESC})+")
_HVALUE_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|{_ESC})*")
_HOSTNAME_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?"
)
_IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_ABSOLUTE_REST_RE = re.compile(r"[^\x00-\x20\x7f<>\"]+")
# RFC 3966 §3.
_GLOBAL_NUMBER_RE = re.compile(r"\+[0-9\-.()]*[0-9][0-9\-.()]*")
_LOCAL_NUMBER_RE = re.compile(r"[0-9A-Fa-f*#\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*")
_TEL_PNAME_RE = re.compile(r"[A-Za-z0-9\-]+")
_VISUAL_SEPARATORS = str.maketrans("", "", "-.()")


def _bad(what: str, text: str) -> RemoteProtocolError:
    shown = text if len(text) <= 60 else text[:57] + "..."
    shown = "".join(c if " " <= c < "\x7f" or c > "\xa0" else "?" for c in shown)
    return RemoteProtocolError(400, f"{what} in URI '{shown}'")


def unescape(text: str) -> str:
    """Undo %-escapes. Escaped bytes that are not UTF-8 survive as surrogates, so that
    :func:`escape` gives the same bytes back."""
    if "%" not in text:
        return text
    raw = bytearray()
    pos = 0
    for m in _ESCAPE_RE.finditer(text):
        raw += text[pos : m.start()].encode("utf-8", "surrogateescape")
        raw.append(int(m.group(1), 16))
        pos = m.end()
    raw += text[pos:].encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "surrogateescape")


def escape(text: str, allowed: frozenset[str]) -> str:
    """%-escape every character not in ``allowed`` (UTF-8 bytes, upper-case hex)."""
    if all(c in allowed for c in text):
        return text
    out: list[str] = []
    for c in text:
        if c in allowed:
            out.append(c)
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogateescape"))
    return "".join(out)


def _check_host(host: str, uri: str) -> str:
    """Validate a host (hostname, IPv4address or IPv6reference, §25.1)."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise _bad("unterminated IPv6 reference", uri)
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _bad("bad IPv6 address", uri) from None
        return host
    if _IPV4_RE.fullmatch(host):
        if any(int(part) > 255 for part in host.split(".")):
            raise _bad("bad IPv4 address", uri)
        return host
    if not _HOSTNAME_RE.fullmatch(host):
        raise _bad("bad host", uri)
    return host


def is_valid_host(host: str) -> bool:
    """Whether ``host`` is a hostname, IPv4address or IPv6reference (§25.1)."""
    try:
        _check_host(host, host)
    except RemoteProtocolError:
        return False
    return True


def _parse_port(text: str, uri: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise _bad("bad port", uri)
    return int(text)


def _param_text(params: Params, allowed: frozenset[str]) -> str:
    return "".join(
        f";{escape(n, allowed)}" if v is None else f";{escape(n, allowed)}={escape(v, allowed)}"
        for n, v in params
    )


def _find_param(params: Params, name: str) -> tuple[bool, str | None]:
    lname = name.lower()
    for n, v in params:
        if n.lower() == lname:
            return True, v
    return False, None


def _set_param(params: Params, name: str, value: str | None) -> Params:
    lname = name.lower()
    out = [(n, v) for n, v in params if n.lower() != lname]
    for i, (n, _) in enumerate(params):
        if n.lower() == lname:  # keep the parameter where it was
            out.insert(i, (name, value))
            break
    else:
        out.append((name, value))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1.1), escapes undone."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, USER_CHARS))
            if self.password is not None:
                out += [":", escape(self.password, PASSWORD_CHARS)]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(_param_text(self.params, PARAM_CHARS))
        if self.headers:
            out.append("?")
            out.append(
                "&".join(f"{escape(n, HEADER_CHARS)}={escape(v, HEADER_CHARS)}" for n, v in self.headers)
            )
        return "".join(out)

    def param(self, name: str) -> str | None:
        """The value of URI parameter ``name`` (case-insensitive), None if absent or valueless."""
        return _find_param(self.params, name)[1]

    def has_param(self, name: str) -> bool:
        return _find_param(self.params, name)[0]

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        """A copy with parameter ``name`` set (replaced in place if present)."""
        return dataclasses.replace(self, params=_set_param(self.params, name, value))

    def with_params(self, **params: str | None) -> SipUri:
        """A copy with each keyword set as a parameter (``lr=None`` adds a bare ``;lr``)."""
        out = self.params
        for name, value in params.items():
            out = _set_param(out, name, value)
        return dataclasses.replace(self, params=out)

    def without_param(self, name: str) -> SipUri:
        lname = name.lower()
        return dataclasses.replace(self, params=tuple(p for p in self.params if p[0].lower() != lname))

    def replace(self, **changes: object) -> SipUri:
        """``dataclasses.replace`` for this URI."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def aor(self) -> str:
        """The address of record: scheme, user and host only (no port, parameters, headers)."""
        user = "" if self.user is None else escape(self.user, USER_CHARS) + "@"
        return f"{self.scheme}:{user}{self.host.lower()}"

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased (§19.1.1), or None."""
        value = self.param("transport")
        return None if value is None else value.lower()

    @property
    def lr(self) -> bool:
        """Whether the URI has the loose-routing parameter (§19.1.1, §16.12)."""
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        return self.param("maddr")

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def default_port(self) -> int:
        """5061 for sips, 5060 for sip (§19.1.2)."""
        return 5061 if self.scheme == "sips" else 5060

    @property
    def host_address(self) -> str:
        """The host without the brackets of an IPv6 reference (what sockets want)."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @classmethod
    def parse(cls, text: str) -> Self:
        uri = parse_uri(text)
        if not isinstance(uri, cls):
            raise _bad("not a SIP or SIPS URI", text)
        return uri


@dataclass(frozen=True, slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966 §3): ``number`` as written (with any visual separators)."""

    number: str
    params: Params = ()

    def __str__(self) -> str:
        return f"tel:{self.number}{_param_text(self.params, PARAM_CHARS)}"

    def param(self, name: str) -> str | None:
        return _find_param(self.params, name)[1]

    def has_param(self, name: str) -> bool:
        return _find_param(self.params, name)[0]

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    @property
    def digits(self) -> str:
        """The number without visual separators (RFC 3966 §4: they are not significant)."""
        return self.number.translate(_VISUAL_SEPARATORS).lower()


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other URI (RFC 3261 §25.1 absoluteURI), kept as text."""

    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def scheme(self) -> str:
        return self.text.split(":", 1)[0].lower()


Uri = SipUri | TelUri | AbsoluteUri


def _parse_params(text: str, uri: str) -> Params:
    """``;name[=value]`` pairs of a SIP URI (the leading ';' already removed)."""
    out: list[tuple[str, str | None]] = []
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if not _PARAM_RE.fullmatch(name):
            raise _bad("bad parameter", uri)
        if eq:
            if not _PARAM_RE.fullmatch(value):
                raise _bad(f"bad value of parameter '{name}'", uri)
            out.append((unescape(name), unescape(value)))
        else:
            out.append((unescape(name), None))
    return tuple(out)


def _parse_headers(text: str, uri: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not eq or not _HNAME_RE.fullmatch(name) or not _HVALUE_RE.fullmatch(value):
            raise _bad("bad header", uri)
        out.append((unescape(name), unescape(value)))
    return tuple(out)


def _parse_sip(scheme: str, rest: str, text: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        u, colon, p = userinfo.partition(":")
        if not _USER_RE.fullmatch(u):
            raise _bad("bad user", text)
        if colon:
            if not _PASSWORD_RE.fullmatch(p):
                raise _bad("bad password", text)
            password = unescape(p)
        user = unescape(u)
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise _bad("unterminated IPv6 reference", text)
        host, rest = rest[: end + 1], rest[end + 1 :]
    else:
        m = re.match(r"[^:;?]*", rest)
        assert m is not None  # matches the empty string at least
        host, rest = m.group(0), rest[m.end() :]
    if not host:
        raise _bad("no host", text)
    _check_host(host, text)
    port: int | None = None
    if rest.startswith(":"):
        m = re.match(r":([^;?]*)", rest)
        assert m is not None
        port = _parse_port(m.group(1), text)
        rest = rest[m.end() :]
    head, qmark, hdrs = rest.partition("?")
    params: Params = ()
    if head:
        if not head.startswith(";"):
            raise _bad("junk after host", text)
        params = _parse_params(head[1:], text)
    headers = _parse_headers(hdrs, text) if qmark else ()
    return SipUri(scheme, user, password, host, port, params, headers)


def _parse_tel(rest: str, text: str) -> TelUri:
    number, _, ptext = rest.partition(";")
    params: list[tuple[str, str | None]] = []
    if ptext:
        for part in ptext.split(";"):
            name, eq, value = part.partition("=")
            if not _TEL_PNAME_RE.fullmatch(name):
                raise _bad("bad tel parameter", text)
            if eq and not _PARAM_RE.fullmatch(value):
                raise _bad(f"bad value of tel parameter '{name}'", text)
            params.append((name, unescape(value) if eq else None))
    if _GLOBAL_NUMBER_RE.fullmatch(number):
        pass
    elif _LOCAL_NUMBER_RE.fullmatch(number):
        # RFC 3966 §5.1.5: a local number is meaningless without its context.
        if not _find_param(tuple(params), "phone-context")[0]:
            raise _bad("local tel number without phone-context", text)
    else:
        raise _bad("bad telephone number", text)
    return TelUri(number, tuple(params))


def parse_uri(text: str) -> Uri:
    """Parse a URI. Raises RemoteProtocolError(400, ...) saying what is wrong."""
    colon = text.find(":")
    if colon <= 0 or not _SCHEME_RE.fullmatch(text[:colon]):
        raise _bad("no scheme", text)
    scheme = text[:colon].lower()
    rest = text[colon + 1 :]
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, text)
    if scheme == "tel":
        return _parse_tel(rest, text)
    if not _ABSOLUTE_REST_RE.fullmatch(rest):
        raise _bad("bad characters", text)
    return AbsoluteUri(text)


# §19.1.4: these parameters, when present in either URI, must be present in both and match.
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")


def _norm_host(host: str) -> str:
    if host.startswith("["):
        try:
            return "[" + str(ipaddress.IPv6Address(host[1:-1])) + "]"
        except ValueError:
            pass
    return host.lower().rstrip(".")


def _params_map(params: Params) -> dict[str, str | None]:
    return {n.lower(): (None if v is None else v.lower()) for n, v in params}


def uri_equal(a: Uri, b: Uri) -> bool:
    """URI equivalence of RFC 3261 §19.1.4 (SIP/SIPS) and RFC 3966 §4 (tel)."""
    if isinstance(a, SipUri) and isinstance(b, SipUri):
        if a.scheme != b.scheme or a.user != b.user or a.password != b.password:
            return False  # userinfo is case-sensitive; sip and sips never match
        if _norm_host(a.host) != _norm_host(b.host) or a.port != b.port:
            return False  # a default port is not the same as no port (§19.1.4)
        pa, pb = _params_map(a.params), _params_map(b.params)
        for name in _MUST_MATCH:
            if (name in pa or name in pb) and (name not in pa or name not in pb or pa[name] != pb[name]):
                return False
        if any(pa[n] != pb[n] for n in pa.keys() & pb.keys()):
            return False
        # Headers: all must be present in both and match; names case-insensitive.
        ha = sorted((n.lower(), v) for n, v in a.headers)
        hb = sorted((n.lower(), v) for n, v in b.headers)
        return ha == hb
    if isinstance(a, TelUri) and isinstance(b, TelUri):
        return a.digits == b.digits and _params_map(a.params) == _params_map(b.params)
    if isinstance(a, AbsoluteUri) and isinstance(b, AbsoluteUri):
        return a.scheme == b.scheme and a.text.split(":", 1)[1] == b.text.split(":", 1)[1]
    return False

"""RELOAD GRUUs (RFC 7904 §6).

A RELOAD GRUU carries the destination list of a peer in the ``gr`` URI parameter, so a
caller routes to that peer directly, without a Fetch (RFC 7904 §4.1, §6). The value is
base64 (RFC 4648 Table 1, the standard alphabet) of the Destination List with ``~`` in
place of each ``=`` pad, since ``=`` may not appear in a SIP URI parameter value. The
Destination List is encoded as in the reload URI (RFC 6940 §14.15): Destination
structures (RFC 6940 §6.3.2.2) concatenated, with no length prefix for the whole.

RFC 7904 §6's example is ``alice@example.com;gr=MDEyMzQ1Njc4OTAxMjM0NTY3ODk~``; its gr
value is base64 of the ASCII digits "01234567890123456789", a placeholder rather than a
Destination List, so :func:`parse_gruu` rejects it while :func:`decode_gr_bytes` reads it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from reload_core.wire.buffer import DecodeError, EncodeError, Reader, Writer
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.message import Destination, decode_destination

_SCHEME = re.compile(r"^(sips?):", re.IGNORECASE)
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_B64_CHARS = re.compile(r"^[A-Za-z0-9+/]*~{0,2}$")


class GruuError(ValueError):
    """Not a well-formed RELOAD GRUU (or gr value), or one that cannot be built."""


def encode_gr(destination_list: Iterable[Destination]) -> str:
    """The ``gr`` parameter value for a Destination List (RFC 7904 §6)."""
    w = Writer()
    count = 0
    try:
        for d in destination_list:
            d.encode(w)
            count += 1
    except EncodeError as exc:
        raise GruuError(f"cannot encode the destination list: {exc}") from None
    if count == 0:
        raise GruuError("a GRUU needs a non-empty destination list")
    return base64.b64encode(w.data()).decode("ascii").replace("=", "~")


def decode_gr_bytes(value: str) -> bytes:
    """The bytes a ``gr`` value carries: '%' escapes undone (RFC 3261 §19.1.4 makes them
    equivalent), '~' read as '=', strict base64 in canonical form."""
    text = _unescape(value)
    if not text:
        raise GruuError("empty gr value")
    if not _B64_CHARS.match(text):
        raise GruuError(f"gr value {value!r} is not base64 with '~' padding")
    padded = text.replace("~", "=")
    try:
        raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GruuError(f"gr value {value!r} is not valid base64: {exc}") from None
    if base64.b64encode(raw).decode("ascii") != padded:
        raise GruuError(f"gr value {value!r} is not canonical base64")
    return raw


def decode_gr(value: str, ctx: WireContext = DEFAULT_CONTEXT) -> tuple[Destination, ...]:
    """The Destination List in a ``gr`` value (RFC 7904 §6, RFC 6940 §14.15)."""
    raw = decode_gr_bytes(value)
    r = Reader(raw)
    dests: list[Destination] = []
    try:
        while not r.eof():
            dests.append(decode_destination(r, ctx))
    except DecodeError as exc:
        raise GruuError(f"gr value {value!r} is not a Destination List: {exc}") from None
    return tuple(dests)


def _unescape(text: str) -> str:
    if "%" not in text:
        return text
    if text.count("%") != len(_ESCAPE.findall(text)):
        raise GruuError(f"bad '%' escape in {text!r}")
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


@dataclass(frozen=True, slots=True)
class _SplitUri:
    prefix: str  # scheme, userinfo and hostport, e.g. "sip:alice@example.com"
    params: tuple[str, ...]  # each "name" or "name=value", in order


def _split(uri: str) -> _SplitUri:
    """Cut a SIP URI (scheme optional, as in RFC 7904 §6's example) into the part up to
    the host and its ``;``-parameters. The user part may itself hold ';' (RFC 3261
    §25.1 user-unreserved), so parameters are looked for after the last '@'."""
    if not uri or any(c.isspace() for c in uri):
        raise GruuError(f"not a SIP URI: {uri!r}")
    m = _SCHEME.match(uri)
    start = m.end() if m else 0
    at = uri.rfind("@")
    host_from = at + 1 if at >= start else start
    rest = uri[host_from:]
    if "?" in rest:
        raise GruuError(f"{uri!r} has URI headers; a GRUU is an address, not a request template")
    host, *params = rest.split(";")
    if not host or (at >= start and at == start):
        raise GruuError(f"{uri!r} has no host or no user part")
    if any(not p for p in params):
        raise GruuError(f"{uri!r} has an empty URI parameter")
    return _SplitUri(uri[:host_from] + host, tuple(params))


def _param_name(param: str) -> str:
    return param.split("=", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class Gruu:
    """A RELOAD GRUU: ``aor`` is the URI without its gr parameter (any other parameters
    kept, in order) and ``destination_list`` the Destinations its gr value carries."""

    aor: str
    destination_list: tuple[Destination, ...]

    def __str__(self) -> str:
        split = _split(self.aor)
        if any(_param_name(p) == "gr" for p in split.params):
            raise GruuError(f"{self.aor!r} already has a gr parameter")
        return f"{self.aor};gr={encode_gr(self.destination_list)}"


def make_gruu(aor: str, destination_list: Iterable[Destination]) -> str:
    """The GRUU for ``aor`` (e.g. ``sip:alice@example.com``) reaching ``destination_list``."""
    return str(Gruu(aor, tuple(destination_list)))


def gr_parameter(uri: str) -> str | None:
    """The raw value of the URI's ``gr`` parameter, or None if it has none."""
    values = [p.split("=", 1) for p in _split(uri).params if _param_name(p) == "gr"]
    if not values:
        return None
    if len(values) > 1:
        raise GruuError(f"{uri!r} has more than one gr parameter")
    if len(values[0]) != 2:
        raise GruuError(f"{uri!r} has a gr parameter without a value")
    return values[0][1]


def is_gruu(uri: str) -> bool:
    """Whether ``uri`` has a ``gr`` parameter (RFC 7904 §4.1 "AOR is a GRUU?")."""
    try:
        return gr_parameter(uri) is not None
    except GruuError:
        return False


def parse_gruu(uri: str, ctx: WireContext = DEFAULT_CONTEXT) -> Gruu:
    """Read a RELOAD GRUU; :class:`GruuError` if it is not one."""
    split = _split(uri)
    value = gr_parameter(uri)
    if value is None:
        raise GruuError(f"{uri!r} has no gr parameter")
    dests = decode_gr(value, ctx)
    if not dests:
        raise GruuError(f"{uri!r} carries an empty destination list")
    others = [p for p in split.params if _param_name(p) != "gr"]
    return Gruu(";".join([split.prefix, *others]), dests)


__all__ = [
    "Gruu",
    "GruuError",
    "decode_gr",
    "decode_gr_bytes",
    "encode_gr",
    "gr_parameter",
    "is_gruu",
    "make_gruu",
    "parse_gruu",
]

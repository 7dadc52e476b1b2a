"""The reload URI (RFC 6940 §14.15), as carried in certificates' subjectAltName (§11.3).

``reload://<hex Destination list>@<overlay>/[<hex StoredDataSpecifier>]``. A certificate's
Node-ID URI has a Destination List of exactly one ``node`` entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reload_core.wire.buffer import DecodeError, Reader, Writer
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.message import Destination, NodeDestination, decode_destination

_URI = re.compile(r"^reload://([0-9A-Fa-f]+)@([A-Za-z0-9.-]+)/([0-9A-Fa-f]*)$")


class ReloadUriError(ValueError):
    """Not a well-formed reload URI of the kind asked for."""


@dataclass(frozen=True, slots=True)
class ReloadUri:
    destination_list: tuple[Destination, ...]
    overlay: str
    specifier: bytes = b""

    def __str__(self) -> str:
        w = Writer()
        for d in self.destination_list:
            d.encode(w)
        text = f"reload://{w.data().hex()}@{self.overlay}/{self.specifier.hex()}"
        # §14.15: destination is 1*HEXDIG and overlay a reg-name (a DNS name, §6.3.2).
        if not _URI.match(text):
            raise ReloadUriError(f"cannot form a reload URI from {self!r}")
        return text

    @classmethod
    def parse(cls, text: str, ctx: WireContext = DEFAULT_CONTEXT) -> ReloadUri:
        m = _URI.match(text)
        if not m or len(m.group(1)) % 2 or len(m.group(3)) % 2:
            raise ReloadUriError(f"not a reload URI: {text!r}")
        raw = bytes.fromhex(m.group(1))
        r = Reader(raw)
        dests: list[Destination] = []
        try:
            while not r.eof():
                dests.append(decode_destination(r, ctx))
        except DecodeError as exc:
            raise ReloadUriError(f"bad Destination List in {text!r}: {exc}") from None
        return cls(tuple(dests), m.group(2), bytes.fromhex(m.group(3)))


def node_id_uri(node_id: bytes, overlay: str) -> str:
    """The subjectAltName URI for one Node-ID (§11.3)."""
    return str(ReloadUri((NodeDestination(node_id),), overlay))


def node_id_from_uri(text: str, ctx: WireContext = DEFAULT_CONTEXT) -> tuple[bytes, str]:
    """(Node-ID, overlay name) from a certificate's reload URI; anything else is an error."""
    uri = ReloadUri.parse(text, ctx)
    if len(uri.destination_list) != 1 or not isinstance(uri.destination_list[0], NodeDestination):
        raise ReloadUriError(f"{text!r} is not a single node_id Destination")
    if uri.specifier:
        raise ReloadUriError(f"{text!r} names a data value, not a node")
    return uri.destination_list[0].node_id, uri.overlay

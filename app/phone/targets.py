"""What the user typed to call or message someone: a TARGET.

Four spellings are understood:

- a bare user name, ``bob``: completed with the profile's domain to the AoR
  ``sip:bob@<domain>`` (RFC 7904 §2: the AoR is the certificate's user name);
- an AoR, ``bob@example.org``, ``sip:bob@example.org`` or ``sips:bob@example.org``:
  found through the overlay (Fetch of its SIP-REGISTRATION, RFC 7904 §4);
- a RELOAD GRUU (a SIP URI with a ``gr`` parameter, RFC 7904 §6): that very device,
  no Fetch;
- a plain SIP address, ``sip:bob@192.0.2.7``, ``sip:bob@host:5062``,
  ``sip:bob@host;transport=tcp``: called directly over a UDP/TCP/TLS socket
  (RFC 3261 §18), outside the overlay. A URI is taken as a plain address when its host
  is an IP literal or ``localhost``, or it names a port, a ``transport`` or a ``maddr``;
  a host name alone is an AoR (write the port, e.g. ``:5060``, to call a SIP server by
  name).

:func:`parse_target` is pure and raises :class:`TargetError` with a one-line reason.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from app.sip.errors import RemoteProtocolError
from app.sip.uri import SipUri, parse_uri
from reload_core.usages.sip import AorError, is_gruu, parse_aor


class TargetError(ValueError):
    """Not something that can be called; the message says why."""


class TargetKind(StrEnum):
    AOR = "aor"
    GRUU = "gruu"
    DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class DialTarget:
    """A parsed TARGET. ``uri``: what the request goes to (the AoR as ``sip:user@domain``,
    the whole GRUU, or the plain SIP URI as typed, normalised); ``aor``: who it is, as
    ``sip:user@host`` (the key of contacts, history and messages); ``user``: the user
    part, for words ("bob is busy")."""

    kind: TargetKind
    uri: str
    aor: str
    user: str

    @property
    def via_overlay(self) -> bool:
        return self.kind is not TargetKind.DIRECT

    @property
    def name(self) -> str:
        """``user@domain`` (the AoR without scheme, RFC 7904 §2)."""
        return self.aor.split(":", 1)[1]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_direct(uri: SipUri) -> bool:
    return (
        _is_ip(uri.host)
        or uri.host.lower() == "localhost"
        or uri.port is not None
        or uri.transport is not None
        or uri.maddr is not None
    )


def parse_target(text: str, *, domain: str) -> DialTarget:
    """Read a TARGET (see the module docstring); ``domain`` completes a bare user name."""
    raw = text.strip()
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1].strip()
    if not raw:
        raise TargetError("nobody to call: the target is empty")
    if any(c.isspace() for c in raw):
        raise TargetError(f"{text.strip()!r} is not a SIP address (it has spaces)")
    lowered = raw.lower()
    if lowered.startswith("tel:"):
        raise TargetError(f"{raw}: telephone numbers cannot be called here, only SIP addresses")
    has_scheme = lowered.startswith(("sip:", "sips:"))
    if not has_scheme and ":" in raw.split("@", 1)[0]:
        raise TargetError(f"{raw}: only sip: and sips: addresses can be called")
    if not has_scheme and "@" not in raw:
        raw = f"{raw}@{domain}"
    uri_text = raw if has_scheme else f"sip:{raw}"
    try:
        uri = parse_uri(uri_text)
    except RemoteProtocolError as exc:
        raise TargetError(f"{text.strip()} is not a SIP address: {exc.reason}") from None
    if not isinstance(uri, SipUri):
        raise TargetError(f"{text.strip()} is not a SIP address")
    if not uri.user:
        raise TargetError(f"{text.strip()} names no user (user@host)")
    if is_gruu(uri_text):
        aor = f"sip:{uri.user}@{uri.host.lower()}"
        return DialTarget(TargetKind.GRUU, uri_text, aor, uri.user)
    if _is_direct(uri):
        direct = uri.replace(headers=())
        return DialTarget(TargetKind.DIRECT, str(direct), f"sip:{uri.user}@{uri.host.lower()}", uri.user)
    try:
        parsed = parse_aor(uri_text)
    except AorError as exc:
        raise TargetError(str(exc)) from None
    # The domain is case-insensitive (RFC 3261 §19.1.4); the user part is not.
    name = f"{parsed.user}@{parsed.domain.lower()}"
    scheme = "sips" if uri.scheme == "sips" else "sip"
    return DialTarget(TargetKind.AOR, f"{scheme}:{name}", f"sip:{name}", parsed.user)


def normalise_aor(text: str, *, domain: str) -> str:
    """The AoR key (``sip:user@domain``) of a buddy or a message peer; :class:`TargetError`
    if ``text`` is not an AoR (a GRUU or a plain address is not a buddy)."""
    target = parse_target(text, domain=domain)
    if target.kind is not TargetKind.AOR:
        raise TargetError(f"{text.strip()} is not an AoR (user@domain)")
    return target.aor


__all__ = ["DialTarget", "TargetError", "TargetKind", "normalise_aor", "parse_target"]

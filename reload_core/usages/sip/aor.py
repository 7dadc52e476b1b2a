"""Addresses of Record as RELOAD resource names (RFC 7904 §2, §7).

"An AOR is considered not to include the scheme (e.g., sip:), as the AOR needs to match
the rfc822Name in the X.509 v3 certificates" (§2), and "escaped characters ('%' encoding)
in the SIP AOR also need to be decoded prior to matching" (§7). So ``sip:alice@example.org``,
``sips:alice@example.org`` and ``alice@example.org`` name one resource,
``alice@example.org``, whose Resource-ID is its hash (RFC 6940 §10.2), and SIP and SIPS
differ only in the AppAttach's Application-ID (§2, §5.1).

URI parameters (``;transport=...``, a GRUU's ``;gr=``), headers (``?...``) and a port
are not part of the AoR. Nothing is case-folded: the resource name is hashed exactly as
the certificate's rfc822Name was issued.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reload_core.ids import ID_BITS, resource_id

_SCHEME = re.compile(r"^(sips?):", re.IGNORECASE)
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?)$")


class AorError(ValueError):
    """Not something that names a SIP AoR (``user@domain``, scheme optional)."""


@dataclass(frozen=True, slots=True)
class Aor:
    """An AoR: ``user`` (escapes decoded) at ``domain``. ``str(aor)`` is the resource name."""

    user: str
    domain: str

    @property
    def name(self) -> str:
        """``user@domain``: the resource name of its SIP-REGISTRATION (RFC 7904 §7) and the
        certificate's rfc822Name it must match (§3.3)."""
        return f"{self.user}@{self.domain}"

    def uri(self, scheme: str = "sip") -> str:
        """The AoR as a SIP URI, e.g. ``sip:alice@example.org``."""
        return f"{scheme}:{self.name}"

    def resource_id(self, bits: int = ID_BITS) -> bytes:
        """The Resource-ID its registrations are stored at (RFC 6940 §10.2)."""
        return resource_id(self.name, bits)

    def __str__(self) -> str:
        return self.name


def _unescape(text: str, whole: str) -> str:
    if "%" not in text:
        return text
    if text.count("%") != len(_ESCAPE.findall(text)):
        raise AorError(f"bad '%' escape in {whole!r}")
    raw = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    try:
        # %-escapes are octets of UTF-8 (RFC 3986 §2.5).
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def parse_aor(text: str) -> Aor:
    """The AoR a SIP URI or ``user@domain`` names; :class:`AorError` if it names none."""
    if not isinstance(text, str) or not text or any(c.isspace() for c in text):
        raise AorError(f"not a SIP AoR: {text!r}")
    rest = text
    m = _SCHEME.match(rest)
    if m:
        rest = rest[m.end() :]
    rest = rest.split("?", 1)[0]
    at = rest.rfind("@")
    if at <= 0:
        raise AorError(f"{text!r} has no user part: an AoR is user@domain (RFC 7904 §2)")
    user, hostpart = rest[:at], rest[at + 1 :]
    host = hostpart.split(";", 1)[0]
    if host.startswith("["):
        host = host[: host.find("]") + 1] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]  # a port is not part of the AoR
    if not host or not _HOST.match(host):
        raise AorError(f"{text!r} has no valid domain")
    user = _unescape(user, text)
    if not user:
        raise AorError(f"{text!r} has an empty user part")
    return Aor(user, host.rstrip("."))


def resource_name(aor: str | Aor) -> str:
    """``user@domain`` for any spelling of the AoR (RFC 7904 §2, §7)."""
    return aor.name if isinstance(aor, Aor) else parse_aor(aor).name


__all__ = ["Aor", "AorError", "parse_aor", "resource_name"]

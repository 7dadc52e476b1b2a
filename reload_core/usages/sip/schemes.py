"""SIP or SIPS: the AppAttach Application-ID and the callee's contact preferences
(RFC 7904 §2, §3.2, §5.1).

"SIP and SIPS are distinguished in P2PSIP by the Application-ID" (§2): an AppAttach for
SIP carries application 5060, for SIPS 5061 (§5.1). A registration's ``contact_prefs``
is an RFC 3840 contact predicate in RFC 2533 filter syntax; a callee states the scheme it
prefers with ``(sip.schemes=SIP)`` or ``(sip.schemes=SIPS)`` (§3.2), and a caller
"SHOULD follow a preference indicated by the callee" (§5.1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum

SIP_APPLICATION = 5060
SIPS_APPLICATION = 5061


class SipScheme(Enum):
    """A SIP scheme and its Application-ID (RFC 7904 §5.1)."""

    SIP = SIP_APPLICATION
    SIPS = SIPS_APPLICATION

    @property
    def application(self) -> int:
        return int(self.value)

    @classmethod
    def of_application(cls, application: int) -> SipScheme:
        for scheme in cls:
            if scheme.value == int(application):
                return scheme
        raise ValueError(f"Application-ID {application} is neither SIP (5060) nor SIPS (5061)")


# One "sip.schemes=..." term: a token or a quoted list ("SIP,SIPS"), RFC 3840 §9.
_TERM = re.compile(r"sip\.schemes\s*=\s*(\"[^\"]*\"|<[^>]*>|[A-Za-z,]+)", re.IGNORECASE)


def encode_contact_prefs(schemes: Iterable[SipScheme]) -> bytes:
    """The ``contact_prefs`` of a registration for a callee that takes ``schemes``:
    ``(sip.schemes=SIP)``, ``(sip.schemes=SIPS)``, or both as an RFC 2533 disjunction."""
    chosen = sorted(set(schemes), key=lambda s: s.value)
    if not chosen:
        return b""
    terms = [f"(sip.schemes={s.name})" for s in chosen]
    text = terms[0] if len(terms) == 1 else "(|" + "".join(terms) + ")"
    return text.encode("ascii")


def preferred_schemes(contact_prefs: bytes) -> tuple[SipScheme, ...]:
    """The schemes ``contact_prefs`` names, in the order named; empty when it states none
    (then the caller may use either, §5.1). Unknown terms and values are ignored."""
    text = contact_prefs.decode("utf-8", "replace")
    found: list[SipScheme] = []
    for match in _TERM.finditer(text):
        for value in re.split(r"[,\s]+", match.group(1).strip('"<>')):
            scheme = SipScheme.__members__.get(value.upper())
            if scheme is not None and scheme not in found:
                found.append(scheme)
    return tuple(found)


def applications_to_try(contact_prefs: bytes, override: SipScheme | None = None) -> tuple[int, ...]:
    """The Application-IDs to AppAttach with, in order: ``override`` alone; else the
    callee's preferred schemes; else SIP, then SIPS for a callee that listens to SIPS only
    (it answers SIP's AppAttach with Error_Not_Found, RFC 6940 §6.5.2.2)."""
    if override is not None:
        return (override.application,)
    preferred = preferred_schemes(contact_prefs)
    if preferred:
        return tuple(s.application for s in preferred)
    return (SIP_APPLICATION, SIPS_APPLICATION)


__all__ = [
    "SIPS_APPLICATION",
    "SIP_APPLICATION",
    "SipScheme",
    "applications_to_try",
    "encode_contact_prefs",
    "preferred_schemes",
]

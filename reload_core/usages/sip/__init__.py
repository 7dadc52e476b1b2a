"""The SIP Usage for RELOAD (RFC 7904).

- :mod:`.usage`: :class:`SipUsage`, all of it on one node: register, forward, resolve,
  connect, listen, GRUU.
- :mod:`.registration`: :class:`Registration`, one SIP-REGISTRATION entry of ours kept in
  the overlay (§3.1, §3.2).
- :mod:`.resolve`: :class:`Resolver` and :class:`Resolution` (§4, §6, §8.2.1).
- :mod:`.connection`: :class:`SipConnection` and :class:`VerifiedPeer` (§5.1).
- :mod:`.access`: the storing peer's checks (§3.3, §3.4), :func:`sip_access_policy`.
- :mod:`.aor`, :mod:`.schemes`, :mod:`.gruu`: AoRs as resource names (§2, §7), SIP/SIPS
  and contact preferences (§3.2, §5.1), GRUUs (§6).
"""

from reload_core.usages.sip.access import SipRegistrationRule, registration_refusal, sip_access_policy
from reload_core.usages.sip.aor import Aor, AorError, parse_aor, resource_name
from reload_core.usages.sip.connection import SipConnection, VerifiedPeer
from reload_core.usages.sip.errors import (
    RegistrationRefused,
    SipConnectError,
    SipConnectionClosed,
    SipUsageError,
)
from reload_core.usages.sip.gruu import Gruu, GruuError, is_gruu, make_gruu, parse_gruu
from reload_core.usages.sip.registration import (
    DEFAULT_REGISTRATION_LIFETIME,
    Refreshed,
    Registered,
    Registration,
    RegistrationEvent,
    RegistrationFailed,
    RegistrationState,
    Unregistered,
)
from reload_core.usages.sip.resolve import Contact, Outcome, Resolution, Resolver, ResolverLimits
from reload_core.usages.sip.schemes import SIP_APPLICATION, SIPS_APPLICATION, SipScheme
from reload_core.usages.sip.usage import ConnectionHandler, ConnectTarget, SipUsage

__all__ = [
    "DEFAULT_REGISTRATION_LIFETIME",
    "SIPS_APPLICATION",
    "SIP_APPLICATION",
    "Aor",
    "AorError",
    "ConnectTarget",
    "ConnectionHandler",
    "Contact",
    "Gruu",
    "GruuError",
    "Outcome",
    "Refreshed",
    "Registered",
    "Registration",
    "RegistrationEvent",
    "RegistrationFailed",
    "RegistrationRefused",
    "RegistrationState",
    "Resolution",
    "Resolver",
    "ResolverLimits",
    "SipConnectError",
    "SipConnection",
    "SipConnectionClosed",
    "SipRegistrationRule",
    "SipScheme",
    "SipUsage",
    "SipUsageError",
    "Unregistered",
    "VerifiedPeer",
    "is_gruu",
    "make_gruu",
    "parse_aor",
    "parse_gruu",
    "registration_refusal",
    "resource_name",
    "sip_access_policy",
]

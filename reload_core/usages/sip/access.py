"""Who may register which AoR (RFC 7904 §3.3, §3.4, §7).

"Before a Store is permitted, the Storing Peer MUST check that:

- The AOR of the request is a valid Resource Name with respect to the namespaces defined
  in the overlay configuration document.
- The certificate contains a username that is a SIP AOR that hashes to the Resource-ID it
  is being stored at.
- The certificate contains a Node-ID that is the same as the dictionary key it is being
  stored at.

If any of these checks fail, the request MUST be rejected with an Error_Forbidden error."
(§3.3). The namespaces are §3.4's ``<domain-restrictions>``: none means any AoR;
present but not enabled, only the overlay's own domain; enabled, the domains one of its
patterns (POSIX extended regular expressions) matches in full.

:class:`SipRegistrationRule` is those checks as a storage
:data:`~reload_core.storage.access.StoreRule`, each refusal an ``Error_Forbidden`` whose
reason names the rule; it also refuses a value that is not a SipRegistration (§7: "Data
stored under the SIP-REGISTRATION Kind is of type SipRegistration") with
``Error_Invalid_Message``. :func:`sip_access_policy` is a storing peer's access policy
with the rule in place. :func:`registration_refusal` is the same verdict for our own
Store before it is sent ("any Peer SHOULD verify", §3.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from reload_core.config.document import DomainRestriction, OverlayConfiguration
from reload_core.ids import resource_id
from reload_core.storage.access import AccessPolicy, SignedBy
from reload_core.storage.errors import StorageError, forbidden
from reload_core.storage.kinds import Kind
from reload_core.usages.sip.aor import Aor, AorError, parse_aor
from reload_core.wire.buffer import DecodeError
from reload_core.wire.codes import ErrorCode, KindId
from reload_core.wire.context import WireContext
from reload_core.wire.sip_registration import SipRegistration
from reload_core.wire.storage import DictionaryEntry, StoredDataValue


def describe_restriction(configuration: OverlayConfiguration) -> str:
    """In words, which AoR domains ``configuration`` admits (RFC 7904 §3.4)."""
    restriction = configuration.effective_domain_restriction()
    if restriction is None:
        return "any domain (no domain restrictions)"
    if not restriction.enable:
        return f"only the overlay's own domain {configuration.instance_name}"
    if not restriction.patterns:
        return "no domain (domain restrictions enabled without a pattern)"
    return "domains matching " + ", ".join(restriction.patterns)


def domain_refusal(configuration: OverlayConfiguration, domain: str) -> str | None:
    """Why AoRs of ``domain`` are not this overlay's (RFC 7904 §3.4), or None if they are."""
    restriction: DomainRestriction | None = configuration.effective_domain_restriction()
    if restriction is None or restriction.permits(domain, configuration.instance_name):
        return None
    return (
        f"domain {domain!r} is outside this overlay's domain restrictions, which admit "
        f"{describe_restriction(configuration)} (RFC 7904 §3.4)"
    )


def registration_refusal(configuration: OverlayConfiguration, user_name: str, aor: Aor) -> str | None:
    """Why a node whose certificate names ``user_name`` may not register ``aor`` (RFC 7904
    §3.3), or None if it may."""
    refusal = domain_refusal(configuration, aor.domain)
    if refusal is not None:
        return f"AoR {aor.name}: {refusal}"
    if user_name != aor.name:
        return (
            f"AoR {aor.name} is not this node's user: the certificate names {user_name!r} "
            "(USER-NODE-MATCH, RFC 7904 §3.3, §7)"
        )
    return None


@dataclass(frozen=True, slots=True)
class SipRegistrationRule:
    """RFC 7904 §3.3 for Stores of SIP-REGISTRATION (see the module docstring)."""

    configuration: OverlayConfiguration

    @property
    def bits(self) -> int:
        return self.configuration.node_id_length * 8

    def __call__(self, kind: Kind, resource: bytes, value: StoredDataValue, signer: SignedBy) -> None:
        user = signer.user_name
        try:
            aor = parse_aor(user)
        except AorError:
            raise forbidden(
                f"the certificate's user name {user!r} is not a SIP AoR (user@domain, RFC 7904 §2, §3.3)"
            ) from None
        refusal = domain_refusal(self.configuration, aor.domain)
        if refusal is not None:
            raise forbidden(f"AoR {user}: {refusal}; RFC 7904 §3.3")
        if resource_id(user, self.bits) != resource:
            raise forbidden(
                f"the certificate's AoR {user!r} does not hash to Resource-ID {resource.hex()} "
                "(RFC 7904 §3.3: only the AoR's user registers it)"
            )
        if not isinstance(value, DictionaryEntry):
            raise forbidden("a SIP-REGISTRATION is a dictionary entry keyed by a Node-ID (RFC 7904 §7)")
        if value.key not in signer.certificate.node_ids:
            raise forbidden(
                f"dictionary key {value.key.hex()} is not a Node-ID of the storing node's "
                f"certificate (RFC 7904 §3.3)"
            )
        if value.value.exists:
            ctx = WireContext(node_id_length=self.configuration.node_id_length)
            try:
                SipRegistration.from_bytes(value.value.value, ctx)
            except DecodeError as exc:
                raise StorageError(
                    ErrorCode.Error_Invalid_Message,
                    f"the value is not a SipRegistration (RFC 7904 §3.2, §7): {exc}",
                ) from None


def sip_access_policy(configuration: OverlayConfiguration, base: AccessPolicy | None = None) -> AccessPolicy:
    """A storing peer's access policy for ``configuration`` with RFC 7904 §3.3's rule for
    SIP-REGISTRATION (``base``: the policy to add it to, by default the configuration's)."""
    policy = base if base is not None else AccessPolicy.from_configuration(configuration)
    return policy.with_rule(KindId.SIP_REGISTRATION, SipRegistrationRule(configuration))


__all__ = [
    "SipRegistrationRule",
    "describe_restriction",
    "domain_refusal",
    "registration_refusal",
    "sip_access_policy",
]

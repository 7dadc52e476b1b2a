"""Access control policies (RFC 6940 §7.3), pure.

Each policy decides from the signer's certificate (the user name and the Node-ID that the
SignerIdentity designates, §6.3.4) whether a value may be written at a Resource-ID:

- USER-MATCH (§7.3.1): the user name hashes to the Resource-ID;
- NODE-MATCH (§7.3.2): the signing Node-ID hashes to the Resource-ID;
- USER-NODE-MATCH (§7.3.3, dictionaries only): the user name hashes to the Resource-ID
  and the dictionary key is the signing Node-ID;
- NODE-MULTIPLE (§7.3.4): H(Node-ID || i) is the Resource-ID for some i in
  1..max-node-multiple. ``i`` is not on the wire; it is written as one byte, as the TURN
  Server Usage's iteration ``d`` is (§9), so i runs up to 255.

"Hashes" is the overlay's hash (§10.2: SHA-1 truncated to the Resource-ID length,
:func:`reload_core.ids.resource_id`). A violation is ``Error_Forbidden`` (§7.4.1.1).

Resource names also have to be acceptable names: for SIP-REGISTRATION the AOR (the user
name, RFC 7904 §2) must be in a domain the overlay admits (RFC 7904 §3.3, §3.4); see
:meth:`AccessPolicy.from_configuration`.

A usage may add conditions of its own for its Kind (:data:`StoreRule`, installed with
:meth:`AccessPolicy.with_rule`): the SIP Usage's, for one, checks RFC 7904 §3.3 in full
and says which rule a refused Store broke (:mod:`reload_core.usages.sip.access`). The
storage layer knows nothing of what a rule checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from reload_core.config.document import AccessControl, OverlayConfiguration
from reload_core.ids import ID_BITS, resource_id
from reload_core.security.certificates import NodeCertificate
from reload_core.storage.errors import forbidden
from reload_core.storage.kinds import Kind
from reload_core.wire.codes import KindId
from reload_core.wire.storage import DictionaryEntry, StoredDataValue

MAX_NODE_MULTIPLE_ENCODABLE = 0xFF


@dataclass(frozen=True, slots=True)
class SignedBy:
    """Who signed a value or a request: the certificate and the Node-ID in it that the
    SignerIdentity designates (§6.3.4, :func:`reload_core.security.signing.signing_node_id`)."""

    certificate: NodeCertificate
    node_id: bytes

    @property
    def user_name(self) -> str:
        return self.certificate.user_name


def user_match(resource: bytes, user_name: str, bits: int = ID_BITS) -> bool:
    """§7.3.1: the user name hashes to the Resource-ID."""
    return resource_id(user_name, bits) == resource


def node_match(resource: bytes, node_id: bytes, bits: int = ID_BITS) -> bool:
    """§7.3.2: the Node-ID hashes to the Resource-ID."""
    return resource_id(node_id, bits) == resource


def node_multiple_match(resource: bytes, node_id: bytes, max_i: int, bits: int = ID_BITS) -> int | None:
    """§7.3.4: the ``i`` in 1..max_i with H(Node-ID || i) = Resource-ID, or None."""
    for i in range(1, min(max_i, MAX_NODE_MULTIPLE_ENCODABLE) + 1):
        if resource_id(node_id + bytes([i]), bits) == resource:
            return i
    return None


NameCheck = Callable[[int, str], bool]
"""Whether a user name is an acceptable resource name for a Kind (Kind-ID, user name)."""

StoreRule = Callable[[Kind, bytes, StoredDataValue, SignedBy], None]
"""A Kind's own condition on writing ``value`` at a Resource-ID, checked before its access
control policy: raises a :class:`~reload_core.storage.errors.StorageError` (as a rule,
``Error_Forbidden`` with the reason) to refuse. Called with the Kind, the Resource-ID,
the value and who signed it (the value's signer, and for an original Store the
request's signer too, as the policy is)."""


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Applies §7.3 for the Kinds of one overlay; ``bits`` is the Resource-ID length."""

    bits: int = ID_BITS
    name_check: NameCheck | None = None
    rules: tuple[tuple[int, StoreRule], ...] = ()
    """(Kind-ID, rule) pairs: the usages' rules for their Kinds, see :meth:`with_rule`."""

    @classmethod
    def from_configuration(cls, config: OverlayConfiguration) -> AccessPolicy:
        """With RFC 7904 §3.3's rule: a SIP-REGISTRATION's AOR must be in an admitted domain."""

        def name_check(kind_id: int, user_name: str) -> bool:
            if kind_id == KindId.SIP_REGISTRATION:
                return config.aor_permitted(user_name)
            return True

        return cls(config.node_id_length * 8, name_check)

    def with_rule(self, kind_id: int, rule: StoreRule) -> AccessPolicy:
        """This policy with ``rule`` checked for Kind ``kind_id`` too (replacing any rule
        given for that Kind before)."""
        kept = tuple((k, r) for k, r in self.rules if k != int(kind_id))
        return replace(self, rules=(*kept, (int(kind_id), rule)))

    def rule_for(self, kind_id: int) -> StoreRule | None:
        return next((r for k, r in self.rules if k == int(kind_id)), None)

    def check(self, kind: Kind, resource: bytes, value: StoredDataValue, signer: SignedBy) -> None:
        """Raise ``Error_Forbidden`` unless ``signer`` may write ``value`` of ``kind`` at
        ``resource`` (§7.3; both for a value's signer and an original StoreReq's, §7.3).
        The Kind's :data:`StoreRule`, if any, is checked first."""
        rule = self.rule_for(kind.kind_id)
        if rule is not None:
            rule(kind, resource, value, signer)
        policy = kind.access_control
        if signer.node_id not in signer.certificate.node_ids:
            raise forbidden(f"Node-ID {signer.node_id.hex()} is not in the signer's certificate")
        if policy is AccessControl.USER_MATCH:
            self._user(kind, resource, signer)
        elif policy is AccessControl.NODE_MATCH:
            if not node_match(resource, signer.node_id, self.bits):
                raise forbidden(
                    f"Kind {kind.label} is NODE-MATCH: Node-ID {signer.node_id.hex()} does not hash to "
                    f"Resource-ID {resource.hex()}"
                )
        elif policy is AccessControl.USER_NODE_MATCH:
            self._user(kind, resource, signer)
            if not isinstance(value, DictionaryEntry):
                raise forbidden(f"Kind {kind.label} is USER-NODE-MATCH, which is for dictionaries only")
            if value.key != signer.node_id:
                raise forbidden(
                    f"Kind {kind.label} is USER-NODE-MATCH: dictionary key {value.key.hex()} is not the "
                    f"signing Node-ID {signer.node_id.hex()}"
                )
        elif policy is AccessControl.NODE_MULTIPLE:
            max_i = kind.max_node_multiple or 0
            if node_multiple_match(resource, signer.node_id, max_i, self.bits) is None:
                raise forbidden(
                    f"Kind {kind.label} is NODE-MULTIPLE: no i in 1..{max_i} makes "
                    f"H(Node-ID || i) equal Resource-ID {resource.hex()}"
                )
        else:  # pragma: no cover - Kind() only admits the four policies
            raise forbidden(f"Kind {kind.label}: access control {policy} is not supported")

    def _user(self, kind: Kind, resource: bytes, signer: SignedBy) -> None:
        if not user_match(resource, signer.user_name, self.bits):
            raise forbidden(
                f"Kind {kind.label} is {kind.access_control.value}: user name {signer.user_name!r} does not "
                f"hash to Resource-ID {resource.hex()}"
            )
        if self.name_check is not None and not self.name_check(kind.kind_id, signer.user_name):
            raise forbidden(f"Kind {kind.label}: {signer.user_name!r} is not a name this overlay admits")


__all__ = [
    "AccessPolicy",
    "NameCheck",
    "SignedBy",
    "StoreRule",
    "node_match",
    "node_multiple_match",
    "user_match",
]

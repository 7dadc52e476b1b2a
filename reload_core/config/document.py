"""The overlay configuration document as data (RFC 6940 §11.1; RFC 7904 §3.4).

One :class:`ConfigurationDocument` (an ``overlay`` element) carries one or more
:class:`SignedConfiguration` (a ``configuration`` element and the ``signature``
elements after it). Field names are the RFC's element and attribute names with ``_``
for ``-``; repeatable elements take the plural. Elements the document leaves out take
the default §11.1 (or §10.7.4 for Chord) gives. Foreign elements and attributes, which
the grammar admits as extensions (§11.1.1), are kept as XML text so that a document
survives parse → generate.

Signatures cover the exact bytes of the ``configuration`` and ``kind`` elements as they
were received (§11.1); those bytes ride along in ``raw`` fields that take no part in
equality, so a model rebuilt from generated XML still compares equal.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

from reload_core.wire.codes import DEFAULT_INITIAL_TTL, DataModel, KindId
from reload_core.wire.context import WELL_KNOWN_DATA_MODELS, WireContext

CONFIG_BASE_NS = "urn:ietf:params:xml:ns:p2p:config-base"
CONFIG_CHORD_NS = "urn:ietf:params:xml:ns:p2p:config-chord"
CONFIG_SIP_NS = "urn:ietf:params:xml:ns:p2p:config-base:sip"
"""RFC 7904 §3.4's namespace for the AOR domain restriction."""

MEDIA_TYPE = "application/p2p-overlay+xml"
"""The configuration document's content type (§11.1)."""

# §11.1 defaults.
DEFAULT_TOPOLOGY_PLUGIN = "CHORD-RELOAD"
DEFAULT_NODE_ID_LENGTH = 16
DEFAULT_TURN_DENSITY = 1
DEFAULT_MAX_MESSAGE_SIZE = 5000
DEFAULT_OVERLAY_RELIABILITY_TIMER = 3000
MIN_OVERLAY_RELIABILITY_TIMER = 200
DEFAULT_OVERLAY_LINK_PROTOCOLS: tuple[str, ...] = ("TLS",)
DEFAULT_BOOTSTRAP_PORT = 6084
# §10.7.4.1 ("about every ten minutes") and §10.7.4.2 (3600 s); chord-reactive: §11.1.
DEFAULT_CHORD_UPDATE_INTERVAL = 600
DEFAULT_CHORD_PING_INTERVAL = 3600
DEFAULT_CHORD_REACTIVE = True

MAX_SEQUENCE = 65534
"""§11.1: "between 0 and 2^16-2"; 65535 is reserved for ConfigUpdate (§6.3.2.1)."""


class ConfigErrorReason(StrEnum):
    """Why a configuration document was refused."""

    XML = "xml"  # not well-formed, not UTF-8, or carries a DTD
    GRAMMAR = "grammar"  # fails the RELAX NG grammar of §11.1.1
    VALUE = "value"  # valid by the grammar but breaks a rule of §11.1's text
    SIGNATURE = "signature"  # configuration signature missing or not verifying
    KIND_SIGNATURE = "kind-signature"  # a kind-block's signature missing or not verifying
    SEQUENCE = "sequence"  # not newer than the current configuration (§6.3.2.1)
    EXPIRED = "expired"  # past its expiration time
    OVERLAY = "overlay"  # no configuration for the overlay asked for (§11.2)
    FETCH = "fetch"  # the HTTPS GET failed (§11.2)
    MEDIA_TYPE = "media-type"  # the server's answer is not application/p2p-overlay+xml


class ConfigError(Exception):
    """A configuration document is refused; ``reason`` says which check failed and the
    message says where."""

    def __init__(self, reason: ConfigErrorReason, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason.value}: {message}")


class AccessControl(StrEnum):
    """Access control policies of §7.3 by their configuration names (§11.1.1)."""

    USER_MATCH = "USER-MATCH"
    NODE_MATCH = "NODE-MATCH"
    USER_NODE_MATCH = "USER-NODE-MATCH"
    NODE_MULTIPLE = "NODE-MULTIPLE"


KIND_NAMES: Mapping[str, KindId] = {
    "SIP-REGISTRATION": KindId.SIP_REGISTRATION,  # RFC 7904 §7
    "TURN-SERVICE": KindId.TURN_SERVICE,  # §9
    "CERTIFICATE_BY_NODE": KindId.CERTIFICATE_BY_NODE,  # §8
    "CERTIFICATE_BY_USER": KindId.CERTIFICATE_BY_USER,  # §8
}
"""Kind names registered with IANA (§14.6, RFC 7904 §9.1) and their Kind-IDs."""

TURN_SERVICE_MAX_NODE_MULTIPLE = 20
"""§9: "NODE-MULTIPLE, with a maximum iteration of counter 20"."""

REGISTERED_KINDS: Mapping[int, tuple[DataModel, AccessControl]] = {
    KindId.SIP_REGISTRATION: (DataModel.DICTIONARY, AccessControl.USER_NODE_MATCH),  # RFC 7904 §7
    KindId.TURN_SERVICE: (DataModel.SINGLE, AccessControl.NODE_MULTIPLE),  # §9
    KindId.CERTIFICATE_BY_NODE: (DataModel.ARRAY, AccessControl.NODE_MATCH),  # §8
    KindId.CERTIFICATE_BY_USER: (DataModel.ARRAY, AccessControl.USER_MATCH),  # §8
}
"""Data model and access control of the registered Kinds. §11.1: for these, a
document's data-model and access-control "MUST match" and clients "MUST ignore them in
favor of the IANA versions"."""

# POSIX bracket classes (IEEE 1003.1 §9.3.5) in Python's re syntax, for RFC 7904 patterns.
_POSIX_CLASSES = {
    "[:alnum:]": "a-zA-Z0-9",
    "[:alpha:]": "a-zA-Z",
    "[:digit:]": "0-9",
    "[:lower:]": "a-z",
    "[:upper:]": "A-Z",
    "[:xdigit:]": "0-9A-Fa-f",
    "[:space:]": r" \t\n\r\f\v",
    "[:blank:]": r" \t",
    "[:punct:]": r"!-/:-@\[-`{-~",
    "[:cntrl:]": r"\x00-\x1f\x7f",
    "[:print:]": r" -~",
    "[:graph:]": r"!-~",
}


def _value_error(message: str) -> ConfigError:
    return ConfigError(ConfigErrorReason.VALUE, message)


def _check_hex_node_id(value: str, what: str) -> None:
    if not value or len(value) % 2 or re.fullmatch(r"[0-9A-Fa-f]+", value) is None:
        raise _value_error(f"{what} {value!r} is not a Node-ID in hexadecimal (§11.1)")


def compile_domain_pattern(pattern: str) -> re.Pattern[str]:
    """A ``sip:pattern`` (a POSIX extended regular expression, RFC 7904 §3.4) as a Python
    regular expression, case-insensitive as domain names are. Bracket classes such as
    ``[:alpha:]`` are translated; the rest of ERE's syntax means the same in Python."""
    translated = pattern
    for posix, python in _POSIX_CLASSES.items():
        translated = translated.replace(posix, python)
    try:
        return re.compile(translated, re.IGNORECASE)
    except re.error as exc:
        raise _value_error(f"sip:pattern {pattern!r} is not a regular expression: {exc}") from None


@dataclass(frozen=True, slots=True)
class DomainRestriction:
    """``sip:domain-restriction`` (RFC 7904 §3.4): which AOR domains the overlay admits.

    With ``enable`` false only the overlay's own domain is admitted; with it true, the
    domains that one of ``patterns`` matches in full.
    """

    enable: bool = False
    patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for p in self.patterns:
            compile_domain_pattern(p)

    def permits(self, domain: str, overlay_name: str) -> bool:
        domain = domain.lower()
        if not self.enable:
            return domain == overlay_name.lower()
        return any(compile_domain_pattern(p).fullmatch(domain) for p in self.patterns)


def aor_domain(aor: str) -> str:
    """The domain of an AOR (``sip:alice@example.com``, ``alice@example.com``), RFC 7904 §2."""
    for scheme in ("sip:", "sips:"):
        if aor[: len(scheme)].lower() == scheme:
            aor = aor[len(scheme) :]
            break
    return aor.rpartition("@")[2].split(";", 1)[0].split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class KindDescription:
    """A ``kind`` element (§11.1): exactly one of ``name`` (IANA-registered) and ``id``
    (private space) identifies the Kind.

    ``data_model`` and ``access_control`` are kept as written; values the grammar admits
    as extensions stay strings. ``domain_restriction`` is RFC 7904 §3.4's kind parameter.
    ``extensions`` are the foreign elements inside the kind, as XML text.
    """

    data_model: DataModel | str
    access_control: AccessControl | str
    max_count: int
    max_size: int
    name: str | None = None
    id: int | None = None
    max_node_multiple: int | None = None
    domain_restriction: DomainRestriction | None = None
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.name is None) == (self.id is None):
            raise _value_error("a kind has either a name or an id attribute (§11.1)")
        if self.id is not None and not 0 <= self.id <= 0xFFFFFFFF:
            raise _value_error(f"kind id {self.id} is not a uint32 Kind-ID")
        what = self.label
        if self.max_count < 0 or self.max_size < 0:
            raise _value_error(f"kind {what}: max-count and max-size must not be negative")
        if self.access_control == AccessControl.NODE_MULTIPLE and self.max_node_multiple is None:
            raise _value_error(f"kind {what}: NODE-MULTIPLE needs max-node-multiple (§11.1)")
        if self.max_node_multiple is not None and self.max_node_multiple <= 0:
            raise _value_error(f"kind {what}: max-node-multiple must be greater than 0 (§11.1)")

    @property
    def label(self) -> str:
        return self.name if self.name is not None else str(self.id)

    @property
    def kind_id(self) -> int | None:
        """The Kind-ID: ``id``, or the registered id of ``name`` (None for a name we do not know)."""
        if self.id is not None:
            return self.id
        known = KIND_NAMES.get(self.name or "")
        return None if known is None else int(known)

    @property
    def effective_data_model(self) -> DataModel | str:
        """The registered data model for a registered Kind (§11.1), else the document's."""
        registered = REGISTERED_KINDS.get(self.kind_id if self.kind_id is not None else -1)
        return registered[0] if registered else self.data_model

    @property
    def effective_access_control(self) -> AccessControl | str:
        """The registered access control for a registered Kind (§11.1), else the document's."""
        registered = REGISTERED_KINDS.get(self.kind_id if self.kind_id is not None else -1)
        return registered[1] if registered else self.access_control


@dataclass(frozen=True, slots=True)
class KindBlock:
    """A ``kind-block`` (§11.1): the kind and the signature over its exact bytes.

    ``kind_signature`` is the base64-decoded SecurityBlock (§6.3.4). ``raw_kind`` and
    ``raw`` are the received bytes of the ``kind`` and ``kind-block`` elements (empty
    for blocks built in code); ``raw`` is what ConfigUpdate carries (§6.5.4.1).
    """

    kind: KindDescription
    kind_signature: bytes | None = None
    kind_signature_algorithm: str | None = None
    raw_kind: bytes = field(default=b"", compare=False, repr=False)
    raw: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BootstrapNode:
    """``bootstrap-node`` (§11.1): an IPv4 or IPv6 address and a port (default 6084)."""

    address: str
    port: int = DEFAULT_BOOTSTRAP_PORT

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            raise _value_error(f"bootstrap-node address {self.address!r} is not an IP address") from None
        if not 0 < self.port <= 0xFFFF:
            raise _value_error(f"bootstrap-node port {self.port} is not 1..65535")

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.address)


@dataclass(frozen=True, slots=True)
class SelfSignedPermitted:
    """``self-signed-permitted`` (§11.1) and its ``digest`` for self-signed Node-IDs
    (§11.3.1): "sha1" or "sha256"; other strings are extensions."""

    value: bool
    digest: str = "sha256"


@dataclass(frozen=True, slots=True)
class OverlayConfiguration:
    """A ``configuration`` element (§11.1): the parameters of one overlay."""

    instance_name: str
    expiration: datetime | None = None
    sequence: int = 0
    topology_plugin: str = DEFAULT_TOPOLOGY_PLUGIN
    node_id_length: int = DEFAULT_NODE_ID_LENGTH
    root_certs: tuple[bytes, ...] = ()
    """DER X.509 certificates, the overlay's trust anchors."""
    enrollment_servers: tuple[str, ...] = ()
    self_signed_permitted: SelfSignedPermitted | None = None
    bootstrap_nodes: tuple[BootstrapNode, ...] = ()
    turn_density: int = DEFAULT_TURN_DENSITY
    clients_permitted: bool = True
    no_ice: bool = False
    chord_update_interval: int = DEFAULT_CHORD_UPDATE_INTERVAL
    chord_ping_interval: int = DEFAULT_CHORD_PING_INTERVAL
    chord_reactive: bool = DEFAULT_CHORD_REACTIVE
    shared_secret: str | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    initial_ttl: int = DEFAULT_INITIAL_TTL
    overlay_reliability_timer: int = DEFAULT_OVERLAY_RELIABILITY_TIMER
    overlay_link_protocols: tuple[str, ...] = DEFAULT_OVERLAY_LINK_PROTOCOLS
    """Empty means the default, "TLS" (§11.1), and is stored as that."""
    configuration_signers: tuple[str, ...] = ()
    kind_signers: tuple[str, ...] = ()
    bad_nodes: tuple[str, ...] = ()
    """Node-IDs in hexadecimal, as the document writes them."""
    mandatory_extensions: tuple[str, ...] = ()
    required_kinds: tuple[KindBlock, ...] = ()
    domain_restriction: DomainRestriction | None = None
    """A ``sip:domain-restriction`` written directly in the configuration rather than in
    the SIP-REGISTRATION kind where RFC 7904's grammar puts it; see
    :meth:`effective_domain_restriction`."""
    extensions: tuple[str, ...] = ()
    """Foreign elements (§11.1.1), each as exclusive-canonical XML text."""
    extension_attributes: tuple[tuple[str, str], ...] = ()
    """Foreign attributes of ``configuration``: (``{namespace}name``, value)."""

    def __post_init__(self) -> None:
        name = self.instance_name
        if not name:
            raise _value_error("configuration has an empty instance-name")
        if self.expiration is not None and self.expiration.tzinfo is None:
            object.__setattr__(self, "expiration", self.expiration.replace(tzinfo=UTC))
        if not 0 <= self.sequence <= MAX_SEQUENCE:
            raise _value_error(f"{name}: sequence {self.sequence} is not 0..{MAX_SEQUENCE} (§11.1)")
        if not 16 <= self.node_id_length <= 20:
            raise _value_error(f"{name}: node-id-length {self.node_id_length} is not 16..20 (§11.1)")
        if not 0 <= self.turn_density <= 0xFF:
            raise _value_error(f"{name}: turn-density {self.turn_density} is not 0..255")
        if not 0 < self.max_message_size <= 0xFFFFFFFF:
            raise _value_error(f"{name}: max-message-size {self.max_message_size} is not 1..2^32-1")
        # The TTL field is a uint8 (§6.3.2).
        if not 0 < self.initial_ttl <= 0xFF:
            raise _value_error(f"{name}: initial-ttl {self.initial_ttl} is not 1..255")
        if self.overlay_reliability_timer < MIN_OVERLAY_RELIABILITY_TIMER:
            raise _value_error(
                f"{name}: overlay-reliability-timer {self.overlay_reliability_timer} ms is below "
                f"{MIN_OVERLAY_RELIABILITY_TIMER} ms (§11.1)"
            )
        if self.chord_update_interval <= 0 or self.chord_ping_interval <= 0:
            raise _value_error(f"{name}: chord-update-interval and chord-ping-interval must be positive")
        for url in self.enrollment_servers:
            if urlsplit(url).scheme.lower() != "https":
                raise _value_error(f"{name}: enrollment-server {url!r} is not an https: URL (§11.1)")
        for what, values in (
            ("configuration-signer", self.configuration_signers),
            ("kind-signer", self.kind_signers),
            ("bad-node", self.bad_nodes),
        ):
            for v in values:
                _check_hex_node_id(v, f"{name}: {what}")
        if not self.overlay_link_protocols:
            object.__setattr__(self, "overlay_link_protocols", DEFAULT_OVERLAY_LINK_PROTOCOLS)
        seen: set[int] = set()
        for block in self.required_kinds:
            kind_id = block.kind.kind_id
            if kind_id is not None:
                if kind_id in seen:
                    raise _value_error(f"{name}: Kind-ID {kind_id} is described twice")
                seen.add(kind_id)

    # -- derived views

    @property
    def self_signed_allowed(self) -> bool:
        return self.self_signed_permitted is not None and self.self_signed_permitted.value

    def kinds(self) -> dict[int, KindDescription]:
        """The required kinds by Kind-ID (kinds named by a name we do not know are left out;
        see :meth:`unknown_kind_names`)."""
        return {k.kind.kind_id: k.kind for k in self.required_kinds if k.kind.kind_id is not None}

    def unknown_kind_names(self) -> tuple[str, ...]:
        """Names of required kinds this implementation has no Kind-ID for. §11.1: a node
        that cannot support the configuration's requirements must leave the overlay."""
        return tuple(k.kind.name or "" for k in self.required_kinds if k.kind.kind_id is None)

    def data_models(self) -> dict[int, DataModel]:
        """Kind-ID → data model, for :class:`~reload_core.wire.context.WireContext`: the
        well-known Kinds, then the required kinds (registered Kinds keep their registered
        model, §11.1; Kinds with an extension data model are left out)."""
        models: dict[int, DataModel] = {int(k): v for k, v in WELL_KNOWN_DATA_MODELS.items()}
        models.update({int(k): v[0] for k, v in REGISTERED_KINDS.items()})
        for kind_id, kind in self.kinds().items():
            model = kind.effective_data_model
            if isinstance(model, DataModel):
                models[kind_id] = model
        return models

    def wire_context(self) -> WireContext:
        return WireContext(node_id_length=self.node_id_length, data_models=self.data_models())

    def effective_domain_restriction(self) -> DomainRestriction | None:
        """RFC 7904 §3.4's restriction: the SIP-REGISTRATION kind's, else one written at the
        configuration level; None means any AOR is accepted."""
        kind = self.kinds().get(KindId.SIP_REGISTRATION)
        if kind is not None and kind.domain_restriction is not None:
            return kind.domain_restriction
        return self.domain_restriction

    def aor_permitted(self, aor: str) -> bool:
        """Whether this overlay admits registrations for ``aor`` (RFC 7904 §3.3, §3.4)."""
        restriction = self.effective_domain_restriction()
        if restriction is None:
            return True
        return restriction.permits(aor_domain(aor), self.instance_name)

    def is_bad_node(self, node_id: bytes) -> bool:
        """Whether ``node_id`` is revoked by a ``bad-node`` element (§11.1)."""
        return node_id.hex() in {b.lower() for b in self.bad_nodes}

    def is_expired(self, now: datetime) -> bool:
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return self.expiration is not None and now >= self.expiration


@dataclass(frozen=True, slots=True)
class ConfigSignature:
    """A ``signature`` element: the base64-decoded SecurityBlock (§6.3.4) and the
    optional ``algorithm`` attribute of the grammar."""

    value: bytes
    algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class SignedConfiguration:
    """A ``configuration`` element with the ``signature`` elements that follow it (§11.1).
    ``raw`` is the element's bytes as received, from ``<`` to ``>``: what is signed."""

    configuration: OverlayConfiguration
    signatures: tuple[ConfigSignature, ...] = ()
    raw: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ConfigurationDocument:
    """An ``overlay`` element: one or more overlays' configurations (§11.1). ``raw`` is the
    document as received (empty for one built in code)."""

    entries: tuple[SignedConfiguration, ...]
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.entries:
            raise _value_error("a configuration document has at least one configuration (§11.1.1)")

    @classmethod
    def of(cls, *configurations: OverlayConfiguration) -> ConfigurationDocument:
        """An unsigned document of these configurations."""
        return cls(tuple(SignedConfiguration(c) for c in configurations))

    @property
    def overlays(self) -> tuple[OverlayConfiguration, ...]:
        return tuple(e.configuration for e in self.entries)

    def entry(self, instance_name: str) -> SignedConfiguration:
        """The configuration of overlay ``instance_name``; ConfigError (overlay) if absent."""
        for e in self.entries:
            if e.configuration.instance_name == instance_name:
                return e
        names = ", ".join(e.configuration.instance_name for e in self.entries)
        raise ConfigError(
            ConfigErrorReason.OVERLAY,
            f"no configuration for overlay {instance_name!r} (document has {names})",
        )


def default_kinds(*, domain_restriction: DomainRestriction | None = None) -> tuple[KindBlock, ...]:
    """Unsigned kind-blocks for the four registered Kinds.

    Data models and access control are the registered ones (RFC 7904 §7; §8; §9, with
    TURN-SERVICE's counter limit of 20). No RFC sets max-count or max-size; the values
    here are this implementation's: a registration per device of a user (16 of up to
    1 KiB), an old and a new certificate with room for renewals (4 of up to 8 KiB), and
    one TurnServer (§9; 64 bytes holds the largest, an IPv6 IpAddressPort).
    """
    return tuple(
        KindBlock(k)
        for k in (
            KindDescription(
                name="SIP-REGISTRATION",
                data_model=DataModel.DICTIONARY,
                access_control=AccessControl.USER_NODE_MATCH,
                max_count=16,
                max_size=1024,
                domain_restriction=domain_restriction,
            ),
            KindDescription(
                name="TURN-SERVICE",
                data_model=DataModel.SINGLE,
                access_control=AccessControl.NODE_MULTIPLE,
                max_count=1,
                max_size=64,
                max_node_multiple=TURN_SERVICE_MAX_NODE_MULTIPLE,
            ),
            KindDescription(
                name="CERTIFICATE_BY_NODE",
                data_model=DataModel.ARRAY,
                access_control=AccessControl.NODE_MATCH,
                max_count=4,
                max_size=8192,
            ),
            KindDescription(
                name="CERTIFICATE_BY_USER",
                data_model=DataModel.ARRAY,
                access_control=AccessControl.USER_MATCH,
                max_count=4,
                max_size=8192,
            ),
        )
    )


def hex_node_ids(values: Iterable[str]) -> frozenset[bytes]:
    """Node-IDs written in hexadecimal (configuration-signer, kind-signer, bad-node) as bytes."""
    return frozenset(bytes.fromhex(v) for v in values)

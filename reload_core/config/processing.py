"""Accepting a configuration document (RFC 6940 §6.3.2.1, §11.1, §11.2).

A received document is accepted for an overlay only when, in this order: it is
well-formed UTF-8 XML that matches the grammar (§11.1.1) and §11.1's rules; it holds a
configuration for that overlay (§11.2); its signature verifies, by a configuration
signer of the previous extant configuration under that configuration's root
certificates (§11.1), and so do its kind-blocks' signatures; it has not expired
(§11.1); and its sequence number is newer than the current one (§6.3.2.1). Each
refusal is a :class:`ConfigError` whose ``reason`` names the check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from reload_core.config.document import (
    MAX_SEQUENCE,
    ConfigError,
    ConfigErrorReason,
    ConfigurationDocument,
    OverlayConfiguration,
    SignedConfiguration,
)
from reload_core.config.signing import VerifiedSigner, verify_configuration, verify_kind_signatures
from reload_core.config.xml import parse_document

SEQUENCE_MODULUS = 65535
"""§6.3.2.1: "monotonically increasing mod 65535"."""


def is_newer_sequence(new: int, old: int) -> bool:
    """Whether configuration sequence ``new`` comes after ``old`` (§6.3.2.1).

    "greater than or less than are interpreted by modulo arithmetic as in TCP": the
    difference modulo 65535 is newer when it is 1..32767 (less than half the space),
    so 65534 → 0 is a step forward, as §6.3.2.1 requires of a sender at 65534.
    """
    for value in (new, old):
        if not 0 <= value <= MAX_SEQUENCE:
            raise ValueError(f"configuration sequence {value} is not 0..{MAX_SEQUENCE}")
    return 0 < (new - old) % SEQUENCE_MODULUS <= SEQUENCE_MODULUS // 2


def check_expiration(config: OverlayConfiguration, now: datetime) -> None:
    """ConfigError (expired) when ``now`` is at or past the configuration's expiration."""
    if config.is_expired(now):
        assert config.expiration is not None
        raise ConfigError(
            ConfigErrorReason.EXPIRED,
            f"configuration {config.instance_name!r} expired at {config.expiration.isoformat()}",
        )


def check_sequence(config: OverlayConfiguration, previous: OverlayConfiguration) -> None:
    """ConfigError (sequence) unless ``config`` may replace ``previous`` (§6.3.2.1, §11.1).

    The same sequence is accepted only for the same configuration (a document fetched
    again); a changed configuration needs a newer sequence number.
    """
    new, old = config.sequence, previous.sequence
    if new == old:
        if config == previous:
            return
        raise ConfigError(
            ConfigErrorReason.SEQUENCE,
            f"configuration {config.instance_name!r} changed but kept sequence {new}",
        )
    if not is_newer_sequence(new, old):
        raise ConfigError(
            ConfigErrorReason.SEQUENCE,
            f"configuration {config.instance_name!r} has sequence {new}, older than the current {old}",
        )


@dataclass(frozen=True, slots=True)
class AcceptedConfiguration:
    """A configuration that passed every check; ``data`` is the document as received,
    which is what a ConfigUpdate passes on (§6.5.4.1)."""

    configuration: OverlayConfiguration
    entry: SignedConfiguration
    document: ConfigurationDocument
    data: bytes
    signer: VerifiedSigner | None


def _choose(
    document: ConfigurationDocument, overlay_name: str | None, previous: OverlayConfiguration | None
) -> SignedConfiguration:
    name = overlay_name if overlay_name is not None else (previous.instance_name if previous else None)
    if name is not None:
        return document.entry(name)
    if len(document.entries) != 1:
        names = ", ".join(c.instance_name for c in document.overlays)
        raise ConfigError(
            ConfigErrorReason.OVERLAY, f"document configures several overlays ({names}); name one"
        )
    return document.entries[0]


def accept_configuration(
    data: bytes,
    *,
    overlay_name: str | None = None,
    previous: OverlayConfiguration | None = None,
    now: datetime | None = None,
    require_signature: bool = True,
    root_certs: Sequence[bytes] | None = None,
) -> AcceptedConfiguration:
    """Parse ``data`` and accept the configuration of ``overlay_name`` (or of the previous
    configuration's overlay, or the only one in the document).

    Trust comes from ``root_certs`` if given, else from ``previous`` (its root
    certificates and configuration signers), else from the new configuration's own root
    certificates and configuration-signer list (a first configuration, fetched over
    HTTPS from the overlay's own server, §11.2). ``require_signature=False`` skips the
    signature checks, for a configuration the user installed by hand (§11.2's
    "out-of-band approach").
    """
    now = datetime.now(UTC) if now is None else now
    document = parse_document(data)
    entry = _choose(document, overlay_name, previous)
    config = entry.configuration
    if previous is not None and previous.instance_name != config.instance_name:
        raise ConfigError(
            ConfigErrorReason.OVERLAY,
            f"configuration is for {config.instance_name!r}, not {previous.instance_name!r}",
        )
    signer: VerifiedSigner | None = None
    if require_signature:
        roots = root_certs if root_certs is not None else (previous.root_certs if previous else None)
        signers = previous.configuration_signers if previous is not None else None
        signer = verify_configuration(entry, now=now, root_certs=roots, configuration_signers=signers)
        verify_kind_signatures(config, now=now)
    check_expiration(config, now)
    if previous is not None:
        check_sequence(config, previous)
    return AcceptedConfiguration(config, entry, document, bytes(data), signer)

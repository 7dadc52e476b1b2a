"""The built-in local overlay's configuration (RFC 6940 §11.1, §11.3.1; RFC 7904 §3.4).

With nothing configured, the phone joins an overlay that needs no server at all. Every
copy of the app must agree on that overlay's configuration document, so it is shipped as
a resource (``resources/local-overlay.xml``, loaded with :mod:`importlib.resources`) and
copied byte for byte into each local profile; :func:`local_configuration` is the same
configuration as data, and a test holds the two together.

Choices, each against the RFC:

- **Overlay name and AoR domain: ``local.p2psip.invalid``.** The overlay name is a DNS
  name (§11.1 instance-name; the host of every reload URI, §14.15) and, with RFC 7904
  §3.4's restriction, the only domain of the overlay's AoRs (``sip:alice@local.p2psip.invalid``)
  and of its certificates' rfc822Names (§11.3). ``.local`` is multicast DNS's own zone
  (RFC 6762 §3) and must not be borrowed; a made-up top-level name such as ``.p2psip``
  could one day be delegated and then name someone's real overlay, whose configuration
  server §11.2 would find by DNS. ``.invalid`` is reserved by RFC 6761 §6.4 never to
  exist: resolvers answer NXDOMAIN at once, so no copy of the app (and no other SIP or
  RELOAD implementation handed such an AoR) ever goes looking for it on the Internet,
  and no real overlay can ever have this name.
- **Unsigned document, no root-cert, self-signed-permitted (sha256).** There is no
  operator to sign it and no CA: nodes make their own certificates whose Node-IDs are the
  digest of their keys (§11.3.1). The document is not fetched (§11.2) but built in, the
  "out-of-band method" of §4.6.1; the code reads it with
  :func:`~reload_core.config.parse_document` and never asks for a signature. With no
  root-cert and no configuration-signer, no ConfigUpdate can ever be accepted for it
  (§6.5.4: its signature cannot chain to anything), so nobody on the LAN can change
  another node's configuration.
- **No bootstrap-node.** The grammar allows none (``bootstrap-node*``, §11.1.1);
  bootstrap peers are found by DNS-SD instead (:mod:`app.phone.discovery`).
- **TLS/TCP overlay links with No-ICE** (``no-ice`` true, §6.5.1.11, §6.6.5): on one LAN
  every peer reaches every other directly, "particularly those with no NATs or firewalls,
  it will work" (§6.5.1.5). AppAttach connections, which carry SIP, still run ICE
  (§6.5.2; :func:`app.peer.build_node` installs it on TLS-only nodes).
- **clients-permitted** true (§11.1), CHORD-RELOAD with 128-bit Node-IDs (§10), the four
  registered Kinds (:func:`~reload_core.config.default_kinds`), SIP-REGISTRATION limited to
  the overlay's own domain (RFC 7904 §3.4).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from reload_core.config import (
    ConfigError,
    ConfigErrorReason,
    DomainRestriction,
    OverlayConfiguration,
    SelfSignedPermitted,
    default_kinds,
    parse_document,
)
from reload_core.security.certificates import SelfSignedDigest

LOCAL_OVERLAY_NAME = "local.p2psip.invalid"
"""The local overlay's name, also the domain of its AoRs and user names."""

LOCAL_SELF_SIGNED_DIGEST: SelfSignedDigest = "sha256"
"""Node-ID = the first 16 bytes of SHA-256(SubjectPublicKeyInfo) (§11.3.1)."""

RESOURCE = "resources/local-overlay.xml"


def local_configuration() -> OverlayConfiguration:
    """The local overlay's configuration as data (see the module docstring)."""
    return OverlayConfiguration(
        instance_name=LOCAL_OVERLAY_NAME,
        sequence=1,
        self_signed_permitted=SelfSignedPermitted(True, LOCAL_SELF_SIGNED_DIGEST),
        clients_permitted=True,
        no_ice=True,
        overlay_link_protocols=("TLS",),
        required_kinds=default_kinds(domain_restriction=DomainRestriction(enable=False)),
    )


@cache
def local_configuration_document() -> bytes:
    """The built-in configuration document, byte for byte as shipped."""
    return resources.files("app.phone").joinpath(RESOURCE).read_bytes()


def is_local_overlay(overlay: str) -> bool:
    return overlay == LOCAL_OVERLAY_NAME


def check_local_document(data: bytes) -> OverlayConfiguration:
    """The local overlay's configuration in ``data`` (a profile's copy), if it is the
    built-in one; ConfigError otherwise."""
    configuration = parse_document(data).entry(LOCAL_OVERLAY_NAME).configuration
    if configuration != local_configuration():
        raise ConfigError(
            ConfigErrorReason.VALUE,
            f"the configuration of {LOCAL_OVERLAY_NAME} is not the built-in one",
        )
    return configuration


__all__ = [
    "LOCAL_OVERLAY_NAME",
    "LOCAL_SELF_SIGNED_DIGEST",
    "check_local_document",
    "is_local_overlay",
    "local_configuration",
    "local_configuration_document",
]

"""The overlay configuration document (RFC 6940 §11.1, §11.1.1, §11.2; RFC 7904 §3.4).

- :mod:`.document`: the model (frozen dataclasses), defaults, registered Kinds,
  :func:`default_kinds`, :class:`ConfigError`.
- :mod:`.xml`: parse (well-formedness, the RELAX NG grammar in ``schema/``, §11.1's
  rules) and generate.
- :mod:`.signing`: sign (:func:`sign_config`) and verify configuration and kind
  signatures.
- :mod:`.processing`: accept a new document (signature, expiration, sequence).
- :mod:`.fetch`: GET it from the configuration server over HTTPS.
"""

from reload_core.config.document import (
    CONFIG_BASE_NS,
    CONFIG_CHORD_NS,
    CONFIG_SIP_NS,
    KIND_NAMES,
    MEDIA_TYPE,
    REGISTERED_KINDS,
    AccessControl,
    BootstrapNode,
    ConfigError,
    ConfigErrorReason,
    ConfigSignature,
    ConfigurationDocument,
    DomainRestriction,
    KindBlock,
    KindDescription,
    OverlayConfiguration,
    SelfSignedPermitted,
    SignedConfiguration,
    default_kinds,
)
from reload_core.config.fetch import download_configuration, fetch_configuration, well_known_url
from reload_core.config.processing import (
    AcceptedConfiguration,
    accept_configuration,
    check_expiration,
    check_sequence,
    is_newer_sequence,
)
from reload_core.config.signing import (
    VerifiedSigner,
    make_security_block,
    sign_config,
    verify_configuration,
    verify_kind_signatures,
)
from reload_core.config.xml import generate_document, load_schema, parse_document, parse_kind_blocks

__all__ = [
    "CONFIG_BASE_NS",
    "CONFIG_CHORD_NS",
    "CONFIG_SIP_NS",
    "KIND_NAMES",
    "MEDIA_TYPE",
    "REGISTERED_KINDS",
    "AcceptedConfiguration",
    "AccessControl",
    "BootstrapNode",
    "ConfigError",
    "ConfigErrorReason",
    "ConfigSignature",
    "ConfigurationDocument",
    "DomainRestriction",
    "KindBlock",
    "KindDescription",
    "OverlayConfiguration",
    "SelfSignedPermitted",
    "SignedConfiguration",
    "VerifiedSigner",
    "accept_configuration",
    "check_expiration",
    "check_sequence",
    "default_kinds",
    "download_configuration",
    "fetch_configuration",
    "generate_document",
    "is_newer_sequence",
    "load_schema",
    "make_security_block",
    "parse_document",
    "parse_kind_blocks",
    "sign_config",
    "verify_configuration",
    "verify_kind_signatures",
    "well_known_url",
]

"""RELOAD security (RFC 6940 §6.3.4, §7.1, §11.3, §11.3.1, §13.3).

- :mod:`.certificates`: the node certificate profile (reload URIs and one rfc822Name in
  the subjectAltName, empty subject), chain validation against the configuration's root
  certificates, self-signed credentials whose Node-IDs derive from the key, PKCS#10
  requests, key generation and key/certificate files.
- :mod:`.signing`: SignerIdentity, message signatures and stored-data signatures, and the
  resolver that finds and validates a signer's certificate.
"""

from reload_core.security.certificates import (
    CertificateError,
    NodeCertificate,
    PrivateKey,
    PublicKey,
    SecurityError,
    build_csr,
    check_self_signed,
    generate_private_key,
    load_certificate,
    load_certificate_file,
    load_private_key,
    load_private_key_file,
    make_self_signed,
    parse_node_certificate,
    save_certificate,
    save_private_key,
    self_signed_node_ids,
    validate_chain,
)
from reload_core.security.signing import (
    CertificateResolver,
    Resolve,
    SignatureError,
    Signer,
    sign_message,
    sign_stored_data,
    signing_node_id,
    verify_message,
    verify_stored_data,
)

__all__ = [
    "CertificateError",
    "CertificateResolver",
    "NodeCertificate",
    "PrivateKey",
    "PublicKey",
    "Resolve",
    "SecurityError",
    "SignatureError",
    "Signer",
    "build_csr",
    "check_self_signed",
    "generate_private_key",
    "load_certificate",
    "load_certificate_file",
    "load_private_key",
    "load_private_key_file",
    "make_self_signed",
    "parse_node_certificate",
    "save_certificate",
    "save_private_key",
    "self_signed_node_ids",
    "sign_message",
    "sign_stored_data",
    "signing_node_id",
    "validate_chain",
    "verify_message",
    "verify_stored_data",
]

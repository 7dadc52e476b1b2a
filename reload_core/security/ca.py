"""The overlay's certificate authority, run by the enrollment server (RFC 6940 §11.3).

The CA is a key and a self-signed certificate (BasicConstraints CA, keyCertSign and
cRLSign) that the configuration document lists as ``root-cert`` (§11.1). From a
PKCS#10 request it issues a node certificate of the §11.3 profile:

* subject distinguished name empty (so the subjectAltName is critical, RFC 5280 §4.2.1.6);
* subjectAltName holding one ``reload://`` URI per Node-ID, each a Destination List of a
  single ``node_id`` entry (§14.15), plus the single rfc822Name user name, and nothing else;
* digitalSignature key usage, not a CA, the CSR's public key.

It also issues the certificate of the HTTPS configuration and enrollment server, whose
name must match the overlay name (§11.2, §11.3; RFC 2818).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reload_core.security.certificates import (
    CertificateError,
    PrivateKey,
    PublicKey,
    load_certificate_file,
    load_private_key_file,
    node_certificate_builder,
    parse_csr,
    save_certificate,
    save_private_key,
    signing_hash,
)

CA_VALIDITY = dt.timedelta(days=3650)
NODE_VALIDITY = dt.timedelta(days=365)
SERVER_VALIDITY = dt.timedelta(days=825)
CLOCK_SKEW = dt.timedelta(minutes=5)
"""Certificates start this long before ``now`` so that a peer whose clock is a little
behind still accepts them."""

CA_KEY_FILE = "ca-key.pem"
CA_CERT_FILE = "ca-cert.pem"

# RFC 5322 dot-atom local part and LDH domain labels: printable ASCII only, so no NULs,
# control characters, spaces or look-alike Unicode can reach a certificate (§11.3).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_USER_NAME = re.compile(rf"(?:{_ATEXT}(?:\.{_ATEXT})*)@(?:{_LABEL}(?:\.{_LABEL})*)")


class UserNameError(ValueError):
    """Not a legal user name for a certificate's rfc822Name."""


class CsrError(ValueError):
    """The certificate signing request is malformed or unacceptable (§11.3 ``bad_CSR``)."""


class UserNameNotAllowed(ValueError):
    """The CSR asks for a user name the account may not have (§11.3 ``username_not_available``)."""


def check_user_name(name: str) -> None:
    """Raise :class:`UserNameError` unless ``name`` is a plain ``user@domain`` (§11.3)."""
    if len(name) > 254 or not _USER_NAME.fullmatch(name) or len(name.partition("@")[0]) > 64:
        raise UserNameError(
            f"{name!r} is not a user name of the form user@domain (ASCII letters, digits, .-_+)"
        )


def _key_usage(
    *, digital_signature: bool = False, key_encipherment: bool = False, ca: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


class OverlayCA:
    """The overlay's CA: ``private_key`` and its self-signed ``certificate``."""

    def __init__(self, overlay: str, private_key: PrivateKey, certificate: x509.Certificate) -> None:
        if certificate.public_key() != private_key.public_key():
            raise ValueError("the CA certificate does not belong to the CA key")
        self.overlay = overlay
        self.private_key = private_key
        self.certificate = certificate

    @property
    def certificate_der(self) -> bytes:
        """The CA certificate as the configuration's ``root-cert`` carries it (§11.1)."""
        return self.certificate.public_bytes(Encoding.DER)

    @classmethod
    def create(
        cls,
        overlay: str,
        private_key: PrivateKey,
        now: dt.datetime,
        validity: dt.timedelta = CA_VALIDITY,
    ) -> OverlayCA:
        """A new CA for ``overlay`` with a self-signed certificate valid from ``now``."""
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, overlay),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{overlay} RELOAD overlay CA"),
            ]
        )
        public_key = private_key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + validity)
            # path_length 0: the CA signs end-entity certificates only.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(private_key, signing_hash(private_key))
        )
        return cls(overlay, private_key, cert)

    # -- files

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``ca-key.pem`` (0600) and ``ca-cert.pem`` into ``directory``."""
        save_private_key(Path(directory) / CA_KEY_FILE, self.private_key)
        save_certificate(Path(directory) / CA_CERT_FILE, self.certificate_der)
        # The certificate is public: anyone configuring trust (curl --cacert, --cafile) reads it.
        os.chmod(Path(directory) / CA_CERT_FILE, 0o644)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], overlay: str) -> OverlayCA:
        """The CA saved by :meth:`save`; :class:`CertificateError` or OSError if unusable."""
        key_path = Path(directory) / CA_KEY_FILE
        if os.name == "posix" and key_path.stat().st_mode & 0o077:
            raise CertificateError(f"{key_path} is readable by other users; run: chmod 600 {key_path}")
        key = load_private_key_file(key_path)
        cert = x509.load_der_x509_certificate(load_certificate_file(Path(directory) / CA_CERT_FILE))
        try:
            return cls(overlay, key, cert)
        except ValueError as exc:
            raise CertificateError(str(exc)) from None

    # -- issuing

    def _not_after(self, now: dt.datetime, validity: dt.timedelta) -> dt.datetime:
        return min(now + validity, self.certificate.not_valid_after_utc)

    def _authority_key_id(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key())

    def issue_node_certificate(
        self,
        public_key: PublicKey,
        user_name: str,
        node_ids: Sequence[bytes],
        now: dt.datetime,
        validity: dt.timedelta = NODE_VALIDITY,
    ) -> x509.Certificate:
        """A §11.3 node certificate for ``public_key``: empty subject, SAN of exactly the
        Node-ID URIs and the one user name, digitalSignature key usage."""
        check_user_name(user_name)
        builder = node_certificate_builder(
            public_key, user_name, node_ids, self.overlay, now - CLOCK_SKEW, self._not_after(now, validity)
        )
        builder = builder.issuer_name(self.certificate.subject).add_extension(
            self._authority_key_id(), critical=False
        )
        return builder.sign(self.private_key, signing_hash(self.private_key))

    def issue_from_csr(
        self,
        csr_der: bytes,
        allowed_user_name: str,
        node_ids: Sequence[bytes],
        now: dt.datetime,
        validity: dt.timedelta = NODE_VALIDITY,
    ) -> x509.Certificate:
        """Issue for a PKCS#10 request (DER) on behalf of an account whose one permitted
        user name is ``allowed_user_name``. The request's self-signature, key and single
        rfc822Name are checked by :func:`~reload_core.security.certificates.parse_csr`.
        Raises :class:`CsrError` (``bad_CSR``) or :class:`UserNameNotAllowed`
        (``username_not_available``)."""
        try:
            request = parse_csr(csr_der)
        except CertificateError as exc:
            raise CsrError(str(exc)) from None
        try:
            check_user_name(request.user_name)
        except UserNameError as exc:
            raise UserNameNotAllowed(str(exc)) from None
        # Binary comparison, as for the account name and password (§11.3).
        if request.user_name != allowed_user_name:
            raise UserNameNotAllowed(f"this account may not use the user name {request.user_name!r}")
        return self.issue_node_certificate(request.public_key, request.user_name, node_ids, now, validity)

    def issue_server_certificate(
        self,
        public_key: PublicKey,
        hosts: Sequence[str],
        now: dt.datetime,
        validity: dt.timedelta = SERVER_VALIDITY,
    ) -> x509.Certificate:
        """The HTTPS server certificate: DNS name = overlay name (§11.2, §11.3), plus each
        of ``hosts`` (IP addresses as iPAddress, others as dNSName) it is reached at."""
        names: list[x509.GeneralName] = [x509.DNSName(self.overlay)]
        for host in hosts:
            try:
                entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
            except ValueError:
                entry = x509.DNSName(host)
            if entry not in names:
                names.append(entry)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.overlay)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(self._not_after(now, validity))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _key_usage(digital_signature=True, key_encipherment=isinstance(public_key, rsa.RSAPublicKey)),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._authority_key_id(), critical=False)
        )
        return builder.sign(self.private_key, signing_hash(self.private_key))

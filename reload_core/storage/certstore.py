"""The Certificate Store Usage (RFC 6940 §8) and the user-name check of §11.3.1.

A node stores its certificate at two Resource-IDs: the hash of its Node-ID
(CERTIFICATE_BY_NODE, NODE-MATCH) and the hash of its user name (CERTIFICATE_BY_USER,
USER-MATCH), appended at the end of each array (§8) so that an old and a renewed
certificate can sit side by side. :meth:`CertificateStore.publish` does this once: a
certificate already in the array is left where it is.

Certificates fetched from the overlay are kept in a :class:`CertificateCache`, which plugs
into :class:`~reload_core.security.signing.CertificateResolver` as its ``store``: a
message or a stored value signed by a certificate that did not come with it verifies once
the signer's certificate has been fetched (:meth:`CertificateStore.verify_message`). Every
certificate taken from the overlay is checked like any other: the value's signature, the
access policy of its Kind, and the overlay's trust in the certificate itself.

A self-signed node (§11.3.1) "SHOULD look to see if the user name is already taken":
:meth:`CertificateStore.user_name_taken` fetches CERTIFICATE_BY_USER for the name and
reports whether a valid certificate of another key holds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from reload_core.ids import resource_id
from reload_core.node.forwarding import originator
from reload_core.security.certificates import CertificateError, NodeCertificate, parse_node_certificate
from reload_core.security.signing import (
    CertificateResolver,
    Resolve,
    SignatureError,
    signer_identity,
    verify_message,
)
from reload_core.storage.client import FetchedKind, StorageClient
from reload_core.storage.placement import everything
from reload_core.wire.buffer import DecodeError
from reload_core.wire.codes import DataModel, HashAlgorithm, KindId, SignerIdentityType
from reload_core.wire.message import Message, SignerIdentity
from reload_core.wire.storage import ArrayEntry
from reload_core.wire.usage_data import certificate_entry, certificate_of

log = logging.getLogger(__name__)

MIN_CERTIFICATE_LIFETIME = 60
_HASH_NAMES: dict[int, str] = {
    HashAlgorithm.sha256: "sha256",
    HashAlgorithm.sha384: "sha384",
    HashAlgorithm.sha512: "sha512",
}


class CertificateCache:
    """DER certificates learnt from the overlay, most recent last, at most ``size``."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._certs: OrderedDict[bytes, None] = OrderedDict()

    def add(self, der: bytes) -> None:
        self._certs[der] = None
        self._certs.move_to_end(der)
        while len(self._certs) > self.size:
            self._certs.popitem(last=False)

    def __contains__(self, der: object) -> bool:
        return der in self._certs

    def __len__(self) -> int:
        return len(self._certs)

    def lookup(self, identity: SignerIdentity) -> list[bytes]:
        """Candidates for a SignerIdentity (CertificateResolver's ``store``). A ``cert_hash``
        identity is matched here by hash; a ``cert_hash_node_id`` one needs the Node-ID, so
        every certificate is a candidate and the resolver matches them."""
        try:
            name = _HASH_NAMES[int(identity.hash_alg)]
        except KeyError:
            return list(self._certs)
        if identity.identity_type == SignerIdentityType.cert_hash:
            return [d for d in self._certs if hashlib.new(name, d).digest() == identity.certificate_hash]
        return list(self._certs)


class CertificateStore:
    """§8 over a :class:`~reload_core.storage.client.StorageClient`; see the module docstring."""

    def __init__(
        self,
        client: StorageClient,
        cache: CertificateCache | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.cache = cache or CertificateCache()
        self.clock = clock
        self._publishing = asyncio.Lock()

    @property
    def bits(self) -> int:
        return 8 * self.client.node.settings.node_id_length

    def install(self, resolver: CertificateResolver) -> None:
        """Make ``resolver`` look in this cache (after any store it already had)."""
        before = resolver.store
        cache = self.cache

        def store(identity: SignerIdentity) -> Iterable[bytes]:
            earlier = list(before(identity)) if before is not None else []
            return earlier + [d for d in cache.lookup(identity) if d not in earlier]

        resolver.store = store

    def resolving(self, resolve: Resolve) -> Resolve:
        """``resolve`` that also considers the cached certificates."""

        def wrapped(identity: SignerIdentity, certificates: Sequence[bytes]) -> NodeCertificate:
            extra = [d for d in self.cache.lookup(identity) if d not in certificates]
            return resolve(identity, [*certificates, *extra])

        return wrapped

    # ------------------------------------------------------------------ publishing (§8)

    async def publish(self, *, lifetime: int | None = None, check_user_name: bool | None = None) -> bool:
        """Store our certificate under CERTIFICATE_BY_NODE and CERTIFICATE_BY_USER unless it
        is already there; the lifetime defaults to what is left of the certificate's validity.

        §11.3.1: with ``check_user_name`` (by default, for a self-signed certificate) the
        user name is first looked up, and if a certificate of another key holds it ours is
        not stored under it: the name is taken, and the user should choose another. Returns
        whether the certificate is stored under the user name."""
        signer = self.client.signer
        cert = signer.node_certificate
        if lifetime is None:
            left = (cert.not_valid_after - self.clock()).total_seconds()
            lifetime = max(MIN_CERTIFICATE_LIFETIME, min(int(left), 0xFFFFFFFF))
        if check_user_name is None:
            check_user_name = cert.certificate.issuer == cert.certificate.subject
        async with self._publishing:
            by_user = True
            for kind, name in (
                (KindId.CERTIFICATE_BY_NODE, signer.node_id),
                (KindId.CERTIFICATE_BY_USER, cert.user_name),
            ):
                if kind not in self.client.kinds:
                    by_user = by_user and kind != KindId.CERTIFICATE_BY_USER
                    continue
                resource = resource_id(name, self.bits)
                present = await self._certificates_at(resource, kind)
                if cert.der in {c.der for c in present}:
                    continue
                taken = any(c.user_name == cert.user_name and c.spki_der != cert.spki_der for c in present)
                if kind == KindId.CERTIFICATE_BY_USER and check_user_name and taken:
                    log.warning("user name %r is already taken (§11.3.1)", cert.user_name)
                    by_user = False
                    continue
                await self.client.store(resource, kind, [certificate_entry(cert.der)], lifetime=lifetime)
            self.cache.add(cert.der)
            return by_user

    # ------------------------------------------------------------------ fetching

    async def by_node(self, node_id: bytes) -> tuple[NodeCertificate, ...]:
        """The valid certificates stored for ``node_id`` (CERTIFICATE_BY_NODE), cached."""
        certs = await self._certificates_at(resource_id(node_id, self.bits), KindId.CERTIFICATE_BY_NODE)
        return tuple(c for c in certs if node_id in c.node_ids)

    async def by_user(self, user_name: str) -> tuple[NodeCertificate, ...]:
        """The valid certificates stored for ``user_name`` (CERTIFICATE_BY_USER), cached."""
        certs = await self._certificates_at(resource_id(user_name, self.bits), KindId.CERTIFICATE_BY_USER)
        return tuple(c for c in certs if c.user_name == user_name)

    async def _certificates_at(self, resource: bytes, kind: KindId) -> list[NodeCertificate]:
        fetched = await self.client.fetch(resource, everything(kind, DataModel.ARRAY))
        out: list[NodeCertificate] = []
        for f in fetched:
            out += self._trusted(f)
        for c in out:
            self.cache.add(c.der)
        return out

    def _trusted(self, fetched: FetchedKind) -> list[NodeCertificate]:
        """The certificates among verified values that this overlay trusts."""
        out: list[NodeCertificate] = []
        length = self.client.node.settings.node_id_length
        for data in fetched.existing:
            if not isinstance(data.value, ArrayEntry):
                continue
            try:
                der = certificate_of(data.value.value)
                if der is None:
                    continue
                node = parse_node_certificate(der, length)
                # Through the resolver: chain to the roots (or self-signed rules) at this time.
                trusted = self.client.resolve(signer_identity(node, node.node_id), [der])
            except (DecodeError, CertificateError, SignatureError, ValueError):
                continue
            if trusted.der == der:
                out.append(trusted)
        return out

    # ------------------------------------------------------------------ using them

    async def verify_message(
        self, message: Message, resolve: Resolve, origin: bytes | None = None
    ) -> NodeCertificate:
        """Verify ``message`` (§6.3.4); if its signer's certificate is neither in it nor
        cached, fetch the certificates of its originator (``origin``, else the first Via
        List entry) from the overlay and try again. Raises SignatureError."""
        resolving = self.resolving(resolve)
        try:
            return verify_message(message, resolving)
        except SignatureError:
            node_id = origin or originator(message.forwarding_header, None)
            if node_id is None:
                raise
        await self.by_node(node_id)
        return verify_message(message, resolving)

    async def user_name_taken(self, user_name: str | None = None) -> bool:
        """§11.3.1: whether a valid certificate with another public key is stored for
        ``user_name`` (by default our own)."""
        own = self.client.signer.node_certificate
        name = user_name or own.user_name
        return any(c.spki_der != own.spki_der for c in await self.by_user(name))


__all__ = ["CertificateCache", "CertificateStore"]

"""Rings of storage peers over real TLS/TCP on 127.0.0.1 running the SIP Usage (RFC 7904).

Built on the storage tests' :class:`~tests.storage.ring.StorageRing` (TLS links from
``tests.storage.test_tls``): the storing peers apply RFC 7904 §3.3
(:func:`~reload_core.usages.sip.access.sip_access_policy`), and every node can AppAttach:
``install_ice(..., attach=False)`` in the TLS-only (No-ICE) overlay these rings are, or
full ICE Attach too with ``ice=True``. AppAttach's ICE runs over this machine's interface
address (aioice leaves loopback out), so tests that connect take the
``interface_address`` fixture, which skips them where there is none.
"""

from __future__ import annotations

import asyncio
import secrets

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from reload_core.config.document import DomainRestriction, OverlayConfiguration, default_kinds
from reload_core.links.tls import OverlayTrust, TlsCredentials
from reload_core.node import Node
from reload_core.node.attach_ice import IceAttachManager, install_ice
from reload_core.node.requests import IncomingRequest
from reload_core.security.signing import Signer
from reload_core.storage import Storage
from reload_core.usages.sip import ResolverLimits, SipUsage, parse_aor, sip_access_policy
from reload_core.wire.codes import MessageCode
from reload_core.wire.storage import FetchAns, FetchReq
from tests.storage.ring import StorageRing
from tests.storage.support import NOW, OVERLAY, Identity, TestCA
from tests.storage.test_tls import tls

DOMAIN = OVERLAY


class EcdsaCA(TestCA):
    """The storage tests' CA issuing ECDSA P-256 certificates: DTLS 1.2 (AppAttach's
    connections) has no cipher suite for the Ed25519 keys :class:`TestCA` uses (OpenSSL
    answers "no shared cipher"), so nodes that AppAttach need these."""

    __test__ = False

    def identity(self, user_name: str, node_id: bytes | None = None) -> Identity:
        key = ec.generate_private_key(ec.SECP256R1())
        nid = node_id or secrets.token_bytes(16)
        cert = self.ca.issue_node_certificate(key.public_key(), user_name, [nid], NOW)
        return Identity(Signer.create(key, cert.public_bytes(Encoding.DER), nid), user_name)


def aor(name: str, domain: str = DOMAIN) -> str:
    return f"{name}@{domain}"


def configuration(restriction: DomainRestriction | None = None) -> OverlayConfiguration:
    """The overlay's configuration as the SIP Usage reads it (RFC 7904 §3.4)."""
    return OverlayConfiguration(
        instance_name=OVERLAY, required_kinds=default_kinds(domain_restriction=restriction)
    )


class SipRing:
    """Peers with the SIP Usage; everything started here is closed by :meth:`close`."""

    def __init__(
        self,
        ca: TestCA,
        *,
        config: OverlayConfiguration | None = None,
        ice: bool = False,
        limits: ResolverLimits | None = None,
        lifetime: int = 3600,
    ) -> None:
        self.ca = ca
        self.config = config or configuration()
        self.ice = ice
        self.limits = limits
        self.lifetime = lifetime
        self.managers: dict[bytes, IceAttachManager] = {}
        self.usages: list[SipUsage] = []
        self.fetches: dict[bytes, int] = {}
        self.fetched: list[tuple[bytes, bytes]] = []  # (signer, Resource-ID) of every FetchReq answered
        self.ring = StorageRing(
            ca, transport=tls, access=sip_access_policy(self.config), prepare=self._prepare
        )

    def _prepare(self, node: Node, identity: Identity) -> None:
        credentials = TlsCredentials(identity.signer.private_key, identity.signer.certificate)
        trust = OverlayTrust(OVERLAY, root_certs=(self.ca.root,))
        self.managers[node.node_id] = install_ice(node, credentials, trust, attach=self.ice)

    def _count_fetches(self, storage: Storage) -> None:
        """Count the FetchReqs this peer answers (the storage service answers them)."""
        service = storage.service
        assert service is not None
        node_id = storage.node.node_id
        self.fetches[node_id] = 0

        def on_fetch(request: IncomingRequest) -> FetchAns:
            self.fetches[node_id] += 1
            if isinstance(request.body, FetchReq):
                self.fetched.append((request.signer_node_id, request.body.resource))
            return service.on_fetch(request)

        storage.node.register_handler(MessageCode.fetch_req, on_fetch)

    def usage(self, storage: Storage, **options: object) -> SipUsage:
        values: dict[str, object] = {"limits": self.limits, "lifetime": self.lifetime}
        values.update(options)
        usage = SipUsage(storage.node, storage.client, self.config, **values)  # type: ignore[arg-type]
        self.usages.append(usage)
        return usage

    async def peer(self, name: str | None = None, **options: object) -> SipUsage:
        """A new peer of user ``name`` (at the overlay's domain, or a full ``user@domain``)
        with the SIP Usage; the first one starts the ring."""
        user = None if name is None else (name if "@" in name else aor(name))
        if not self.ring.peers:
            storage = await self.ring.new_storage(user)
            storage.node.start_alone()
            self.ring.peers.append(storage)
        else:
            storage = await self.ring.join_as(user)
        self._count_fetches(storage)
        return self.usage(storage, **options)

    async def peers(self, *names: str) -> list[SipUsage]:
        out = [await self.peer(n) for n in names]
        await self.ring.converge(30.0)
        return out

    @property
    def total_fetches(self) -> int:
        return sum(self.fetches.values())

    def fetches_of(self, *users: str, by: bytes | None = None) -> int:
        """FetchReqs answered for these users' AoRs (sent ``by`` that node, if given).
        Replication (§10.4) and the certificate store (§11.3.1) fetch in the background,
        also an AoR's resource now and then: a test about one node's lookups names it."""
        resources = {parse_aor(u if "@" in u else aor(u)).resource_id() for u in users}
        return sum(1 for signer, r in self.fetched if r in resources and by in (None, signer))

    async def close(self) -> None:
        for usage in self.usages:
            await usage.close(remove=False)
        await self.ring.close()
        await asyncio.gather(*(m.wait_closed() for m in self.managers.values()))

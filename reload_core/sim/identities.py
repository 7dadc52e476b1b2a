"""Node credentials for a simulated overlay, reproducible from a seed (RFC 6940 §11.3.1).

A simulated overlay permits self-signed certificates (``self-signed-permitted`` with the
SHA-1 digest, §11.1), as the embedded local overlay does: no CA has to issue thousands
of certificates, and a node's Node-ID is the digest of its public key (§11.3.1), so the
keys, drawn from the simulation's seeded PRNG, fix every Node-ID and with them the ring.
ECDSA P-256 keys are the default: OpenSSL's P-256 code verifies in about 65 µs and signs
in 24 µs on this machine, against 110 µs and 33 µs for Ed25519, and a simulation checks
a signature for every message. Its random signature nonces change the bytes of
signatures but neither their size class nor anything a run measures: a seed still gives
the same figures. Ed25519 (deterministic signatures) remains a choice.
"""

from __future__ import annotations

import random
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from reload_core.security.certificates import PrivateKey, make_self_signed, self_signed_node_ids
from reload_core.security.signing import CertificateResolver, Signer

SimKeyKind = Literal["ed25519", "ecdsa"]

SELF_SIGNED_DIGEST: Literal["sha1"] = "sha1"

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def seeded_private_key(rng: random.Random, kind: SimKeyKind = "ed25519") -> PrivateKey:
    """A private key drawn from ``rng`` (not for real use: the PRNG is not a CSPRNG)."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
    if kind == "ecdsa":
        return ec.derive_private_key(rng.randrange(1, _P256_ORDER), ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r}")


class SimIdentity:
    """A simulated node's key and Node-ID (§11.3.1: the digest of its public key). The
    certificate and the :class:`Signer` are made when first asked for: in a parallel
    simulation only the worker that runs the node needs them, and a certificate costs
    twenty times the Node-ID."""

    def __init__(self, key: PrivateKey, user: str, overlay: str) -> None:
        self.key = key
        self.user = user
        self.overlay = overlay
        self.node_id = self_signed_node_ids(key.public_key(), SELF_SIGNED_DIGEST)[0]
        self._signer: Signer | None = None

    @classmethod
    def draw(cls, rng: random.Random, overlay: str, index: int, kind: SimKeyKind = "ed25519") -> SimIdentity:
        """Node ``index``'s identity: user ``node<index>@<overlay>``, key drawn from ``rng``."""
        return cls(seeded_private_key(rng, kind), f"node{index}@{overlay}", overlay)

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            certificate = make_self_signed(self.key, self.user, self.overlay, SELF_SIGNED_DIGEST)
            self._signer = Signer.create(self.key, certificate)
            assert self._signer.node_id == self.node_id
        return self._signer


def make_signer(rng: random.Random, overlay: str, index: int, kind: SimKeyKind = "ed25519") -> Signer:
    """Credentials of simulated node ``index``: a self-signed certificate for user
    ``node<index>@<overlay>`` whose Node-ID derives from the key (§11.3.1)."""
    return SimIdentity.draw(rng, overlay, index, kind).signer


def shared_resolver(overlay: str, expected_nodes: int) -> CertificateResolver:
    """One resolver for every simulated node: validating a certificate is a pure function
    of it (and the date), so sharing the cache of validated certificates changes nothing
    but the cost. It is sized to hold every node's certificate."""
    return CertificateResolver(
        overlay, self_signed_digest=SELF_SIGNED_DIGEST, cache_size=max(1024, 2 * expected_nodes)
    )


__all__ = [
    "SELF_SIGNED_DIGEST",
    "SimIdentity",
    "SimKeyKind",
    "make_signer",
    "seeded_private_key",
    "shared_resolver",
]

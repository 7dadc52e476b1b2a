"""User names on the local overlay, first come, first served (RFC 7904 §3.3; RFC 6940 §11.3.1).

A name NAME on the local overlay is the user name ``NAME@local.p2psip.invalid`` of a
self-signed certificate (the rfc822Name, §11.3) and the AoR
``sip:NAME@local.p2psip.invalid`` (RFC 7904 §2). NAME must be both a SIP user part
(RFC 3261 §25.1 ``user``) and an e-mail local part (RFC 5322 §3.4.1 ``dot-atom-text``,
at most 64 octets, RFC 5321 §4.5.3.1.1). Of the characters both grammars admit, only
letters, digits, ``.``, ``-``, ``_`` and ``+`` are taken: the rest (``!``, ``*``, ``'``,
``&``, ``=``, ``$``, ``/``, ``?``, ``~``) would need escaping or quoting somewhere between a
SIP URI, a certificate and a command line. Names are case-folded to lower case, so that
``Alice`` and ``alice`` cannot be two people on one LAN.

Nobody issues names here: any device can make a certificate for any name. The overlay's
own rule (USER-NODE-MATCH, RFC 7904 §3.3) only makes a SIP-REGISTRATION entry come from a
certificate of that user stored under that certificate's Node-ID, and two devices naming
themselves alice have two keys, hence two Node-IDs (§11.3.1), and may both store. What
keeps a name to one device is this check, made before registering:

- :func:`name_holders` fetches the AoR's SIP-REGISTRATION entries and keeps the live ones
  (existing, lifetime left, signed by a certificate of that user, under one of its
  Node-IDs);
- :func:`check_name` refuses the name (:class:`NameTaken`) when one of them is held by a
  Node-ID that is not ours and that node answers a Ping (§6.5.3): a registration whose
  device has gone (crashed, switched off before its lifetime ended) does not hold the name;
- :func:`lost_to` settles two devices that registered at the same moment, or that met
  when two overlays merged (:mod:`app.phone.local_overlay`): of two live holders, the
  smaller Node-ID keeps the name and the other withdraws. Both sides compute the same
  answer from the same data.

RFC 6940 §11.3.1 asks a self-signed node to "look to see if the user name is already
taken" and notes that this "provides protection only against accidental name collisions";
the storage layer does so with the Certificate Store (CERTIFICATE_BY_USER, §8,
:meth:`~reload_core.storage.certstore.CertificateStore.publish`) and then leaves our
certificate out of that array. The phone does not decide by that array: a certificate
stays stored as long as it is valid, long after its device has gone, so a name once used
could never be used again while the overlay lives, not even by its owner after a
reinstall (a new key). A registration lives only while its device refreshes it, and the
Ping tells a live device from a registration it left behind.

So the same user on two devices of one person is impossible on the local overlay, unless
the devices share the profile's key (a copied profile folder, hence one Node-ID). A device
whose name was taken while it was away finds it taken when it comes back: buddies who
pinned its key (:mod:`app.phone.pinning`) see the newcomer's key as CHANGED.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass

from app.phone.local_config import LOCAL_OVERLAY_NAME
from reload_core.ids import resource_id
from reload_core.node.errors import NodeError, RequestError
from reload_core.node.node import Node
from reload_core.security.certificates import NodeCertificate, spki_der
from reload_core.storage.client import StorageClient
from reload_core.usages.sip.aor import Aor
from reload_core.wire.codes import KindId, MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination
from reload_core.wire.storage import DictionaryEntry, StoredDataSpecifier

MAX_NAME_LENGTH = 64
"""RFC 5321 §4.5.3.1.1: a local part is at most 64 octets."""

NAME_CHARACTERS = "letters, digits, '.', '-', '_' and '+'"
_ALLOWED = re.compile(r"[A-Za-z0-9._+-]+")

DEFAULT_PROBE_TIMEOUT = 4.0
"""Seconds a holder of a name has to answer our Ping: past the first retransmission
(overlay-reliability-timer, 3 s, §6.2.1) on a LAN."""


class BadName(ValueError):
    """NAME cannot be a user name on the local overlay; the message says why, in one line."""


class NameTaken(Exception):
    """Another device holds the name on this network."""

    def __init__(self, name: str, holder: NameHolder) -> None:
        self.name = name
        self.holder = holder
        super().__init__(f"the name {name} is already taken on this network by another device")


def local_name(text: str) -> str:
    """NAME as the local overlay uses it (lower case), or :class:`BadName`.
    ``NAME@local.p2psip.invalid`` is accepted too."""
    name = text.strip()
    if "@" in name:
        name, _, domain = name.rpartition("@")
        if domain.lower() != LOCAL_OVERLAY_NAME:
            raise BadName(
                f"{text!r}: give the name alone; on the local overlay it is always NAME@{LOCAL_OVERLAY_NAME}"
            )
    if not name:
        raise BadName("the name is empty")
    if len(name.encode()) > MAX_NAME_LENGTH:
        raise BadName(f"{name!r} is longer than {MAX_NAME_LENGTH} characters")
    if not _ALLOWED.fullmatch(name):
        bad = next(ch for ch in name if not _ALLOWED.fullmatch(ch))
        raise BadName(f"{name!r} has the character {bad!r}; a name may have {NAME_CHARACTERS}")
    if name.startswith(".") or name.endswith(".") or ".." in name:
        raise BadName(f"{name!r}: a dot may not begin or end a name, nor follow another (RFC 5322 §3.4.1)")
    return name.lower()


def local_user_name(name: str) -> str:
    """The certificate's rfc822Name and the AoR without scheme: ``NAME@local.p2psip.invalid``."""
    return f"{local_name(name)}@{LOCAL_OVERLAY_NAME}"


def local_aor(name: str) -> Aor:
    return Aor(local_name(name), LOCAL_OVERLAY_NAME)


def key_fingerprint(certificate: NodeCertificate) -> bytes:
    """SHA-256 of the certificate's SubjectPublicKeyInfo: what identifies a device's key
    across renewed certificates (the self-signed Node-ID is a digest of the same, §11.3.1)."""
    return hashlib.sha256(spki_der(certificate.public_key)).digest()


@dataclass(frozen=True, slots=True)
class NameHolder:
    """A live SIP-REGISTRATION entry of an AoR: the device that stored it."""

    node_id: bytes
    user_name: str
    fingerprint: bytes
    expires_in: int


async def name_holders(
    client: StorageClient, aor: Aor, *, node_id_length: int = 16
) -> tuple[NameHolder, ...]:
    """The devices with a live registration of ``aor`` (see the module docstring).
    Raises StorageError or NodeError when the Fetch fails."""
    bits = node_id_length * 8
    resource = aor.resource_id(bits)
    fetched = await client.fetch(resource, StoredDataSpecifier.dictionary(KindId.SIP_REGISTRATION))
    holders: dict[bytes, NameHolder] = {}
    for kind in fetched:
        if int(kind.kind) != KindId.SIP_REGISTRATION:
            continue
        for data, signer in zip(kind.values, kind.signers, strict=True):
            entry = data.value
            if not isinstance(entry, DictionaryEntry) or not entry.value.exists or data.lifetime <= 0:
                continue
            # RFC 7904 §3.3 again: the storing peer is not trusted to have checked it.
            if signer is None or resource_id(signer.user_name, bits) != resource:
                continue
            if entry.key not in signer.node_ids:
                continue
            holders[entry.key] = NameHolder(
                entry.key, signer.user_name, key_fingerprint(signer), data.lifetime
            )
    return tuple(sorted(holders.values(), key=lambda h: h.node_id))


async def is_answering(node: Node, node_id: bytes, timeout: float = DEFAULT_PROBE_TIMEOUT) -> bool:
    """Whether the node ``node_id`` answers a Ping routed to it (§6.5.3). A Node-ID nobody
    holds gets no answer: the peer responsible for it drops the request (§6.1.2)."""
    if node_id == node.node_id:
        return True
    try:
        await asyncio.wait_for(
            node.request(NodeDestination(node_id), MessageCode.ping_req, PingReq()), timeout
        )
    except (TimeoutError, RequestError, NodeError):
        return False
    # The node checked the response's signer against the destination (§6.3.4).
    return True


async def check_name(
    node: Node,
    client: StorageClient,
    aor: Aor,
    own_node_ids: Collection[bytes],
    *,
    node_id_length: int = 16,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
) -> NameHolder | None:
    """The device that holds ``aor`` on this overlay, if it is not us and answers; None
    if the name is free for us. Raises StorageError or NodeError when the lookup fails."""
    for holder in await name_holders(client, aor, node_id_length=node_id_length):
        if holder.node_id in own_node_ids:
            continue
        if await is_answering(node, holder.node_id, probe_timeout):
            return holder
    return None


async def lost_to(
    node: Node,
    client: StorageClient,
    aor: Aor,
    own_node_ids: Collection[bytes],
    *,
    node_id_length: int = 16,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
) -> NameHolder | None:
    """After registering: the live holder of ``aor`` with a smaller Node-ID than ours, to
    whom the name goes (see the module docstring); None if we keep it."""
    ours = min(own_node_ids)
    for holder in await name_holders(client, aor, node_id_length=node_id_length):
        if holder.node_id in own_node_ids or holder.node_id > ours:
            continue
        if await is_answering(node, holder.node_id, probe_timeout):
            return holder
    return None


__all__ = [
    "DEFAULT_PROBE_TIMEOUT",
    "MAX_NAME_LENGTH",
    "BadName",
    "NameHolder",
    "NameTaken",
    "check_name",
    "is_answering",
    "key_fingerprint",
    "local_aor",
    "local_name",
    "local_user_name",
    "lost_to",
    "name_holders",
]

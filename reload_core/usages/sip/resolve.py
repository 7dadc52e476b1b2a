"""Finding where to reach an AoR (RFC 7904 §4.1, §4.2, §6, §8.2.1).

§4.1: a GRUU of this overlay is contacted directly (its ``gr`` parameter carries the
Destination List, §6: no Fetch); an AoR whose domain this overlay does not serve
(§3.4's domain restrictions) is not looked up here; otherwise §4.2:

1. "Perform a Fetch for Kind SIP-REGISTRATION at the Resource-ID corresponding to the
   AOR. This Fetch SHOULD NOT indicate any dictionary keys, so that it will fetch all
   the stored values."
2. "If any of the results of the Fetch are non-GRUU AORs, then repeat step 1 for that
   AOR."
3. "Once only GRUUs and destination lists remain, the Peer removes duplicate destination
   lists and GRUUs from the list" and connects to them (§5).

Forwards are followed depth first, at most :attr:`ResolverLimits.max_depth` AoR→AoR
steps from the target and :attr:`ResolverLimits.max_fetches` Fetches in all; a forward
to an AoR already on the path is a loop and is not followed (a second path to an AoR
already resolved is no loop: it is resolved once). A forward to a URI outside this
overlay ("external AORs", §4.2) is reported, not followed. Entries that are removals
(``exists = false``), that have no lifetime left, whose signer is not the AoR's user or
whose key is not a Node-ID of the signer's certificate (USER-NODE-MATCH, §3.3, checked
again here: the storing peer is not trusted to have done it), or that are not a
SipRegistration are dropped and counted. The caller "can therefore directly measure the
number of forks and throttle at some reasonable number" (§8.2.1): at most
:attr:`ResolverLimits.max_fanout` destinations are returned, the most recently
registered first, and the :class:`Resolution` says when the cap cut some off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from reload_core.config.document import OverlayConfiguration
from reload_core.ids import resource_id
from reload_core.node.errors import NodeError
from reload_core.storage.client import FetchedKind, StorageClient
from reload_core.storage.errors import StorageError
from reload_core.usages.sip.access import describe_restriction, domain_refusal
from reload_core.usages.sip.aor import Aor, AorError, parse_aor
from reload_core.usages.sip.gruu import GruuError, is_gruu, make_gruu, parse_gruu
from reload_core.usages.sip.schemes import SipScheme, applications_to_try, preferred_schemes
from reload_core.wire.buffer import DecodeError
from reload_core.wire.codes import KindId
from reload_core.wire.context import WireContext
from reload_core.wire.message import Destination, NodeDestination
from reload_core.wire.sip_registration import SipRegistration, SipRegistrationRoute, SipRegistrationUri
from reload_core.wire.storage import DictionaryEntry, StoredDataSpecifier


@dataclass(frozen=True, slots=True)
class ResolverLimits:
    """How far a resolution goes (local policy; RFC 7904 §8.2.1 leaves the numbers open)."""

    max_depth: int = 5
    """AoR→AoR forwarding steps followed from the target."""
    max_fanout: int = 8
    """Destinations returned (forks of one call)."""
    max_fetches: int = 32
    """Fetches made for one resolution."""


class Outcome(StrEnum):
    REGISTERED = "registered"
    GRUU = "gruu"
    NOT_REGISTERED = "not registered"
    LOOP = "forwarding loop"
    DEPTH_LIMIT = "forwarding too deep"
    FORWARDED_OUTSIDE = "forwarded outside the overlay"
    DOMAIN_NOT_SERVED = "domain not served"
    LOOKUP_FAILED = "lookup failed"
    INVALID = "not an AoR"


@dataclass(frozen=True, slots=True)
class Contact:
    """One place to connect to (RFC 7904 §5.1): a Destination List whose terminal entry is
    the node to AppAttach to.

    ``aor``: the AoR whose registration gave it (the target, or one it forwards to);
    ``registered_by``: the dictionary key, the Node-ID of the registering device (None
    for a GRUU); ``expires_in``: seconds the entry had left when fetched; ``gruu``: the
    GRUU it came from, if it did.
    """

    destination_list: tuple[Destination, ...]
    aor: str
    registered_by: bytes | None = None
    contact_prefs: bytes = b""
    expires_in: int | None = None
    storage_time: int = 0
    gruu: str | None = None

    @property
    def node_id(self) -> bytes | None:
        """The Node-ID of the terminal entry: who must answer the AppAttach (§5.1)."""
        last = self.destination_list[-1] if self.destination_list else None
        return last.node_id if isinstance(last, NodeDestination) else None

    @property
    def schemes(self) -> tuple[SipScheme, ...]:
        """The schemes the callee prefers, from its contact_prefs (§3.2)."""
        return preferred_schemes(self.contact_prefs)

    def applications(self, override: SipScheme | None = None) -> tuple[int, ...]:
        """The Application-IDs to AppAttach with, in order (§5.1)."""
        return applications_to_try(self.contact_prefs, override)

    def as_gruu(self) -> str:
        """A GRUU that reaches this contact directly (§6)."""
        return self.gruu or make_gruu(f"sip:{self.aor}", self.destination_list)


@dataclass(frozen=True, slots=True)
class Registrations:
    """What one Fetch of an AoR's SIP-REGISTRATION holds, read and checked."""

    routes: tuple[Contact, ...] = ()
    uris: tuple[str, ...] = ()
    removed: int = 0
    expired: int = 0
    discarded: int = 0
    notes: tuple[str, ...] = ()


def read_registrations(aor: Aor, fetched: FetchedKind, *, ctx: WireContext) -> Registrations:
    """Read the values of one Fetch of ``aor`` (see the module docstring for what is
    dropped and why). Pure: no I/O, no clock (lifetimes are the ones the Fetch gave)."""
    bits = ctx.node_id_length * 8
    resource = resource_id(aor.name, bits)
    routes: list[Contact] = []
    uris: list[str] = []
    removed = expired = discarded = 0
    notes: list[str] = []
    for data, signer in zip(fetched.values, fetched.signers, strict=True):
        entry = data.value
        if not isinstance(entry, DictionaryEntry):
            discarded += 1
            notes.append("a value that is not a dictionary entry")
            continue
        if not entry.value.exists:
            removed += 1
            continue
        if data.lifetime <= 0:
            expired += 1
            continue
        if signer is None or resource_id(signer.user_name, bits) != resource:
            discarded += 1
            who = signer.user_name if signer is not None else "nobody"
            notes.append(f"an entry signed by {who!r}, not by {aor.name}'s user (RFC 7904 §3.3)")
            continue
        if entry.key not in signer.node_ids:
            discarded += 1
            notes.append(f"an entry under key {entry.key.hex()}, not a Node-ID of its signer (RFC 7904 §3.3)")
            continue
        try:
            record = SipRegistration.from_bytes(entry.value.value, ctx)
        except DecodeError as exc:
            discarded += 1
            notes.append(f"an entry that is not a SipRegistration: {exc}")
            continue
        if isinstance(record.data, SipRegistrationRoute):
            routes.append(
                Contact(
                    record.data.destination_list,
                    aor.name,
                    entry.key,
                    record.data.contact_prefs,
                    data.lifetime,
                    data.storage_time,
                )
            )
        elif isinstance(record.data, SipRegistrationUri):
            try:
                uris.append(record.data.uri.decode("utf-8"))
            except UnicodeDecodeError:
                discarded += 1
                notes.append("a forward to a URI that is not UTF-8")
        else:
            discarded += 1
            notes.append(f"an entry of SipRegistrationType {int(record.type)}, unknown here")
    return Registrations(tuple(routes), tuple(uris), removed, expired, discarded, tuple(notes))


def dedupe(contacts: Sequence[Contact]) -> tuple[tuple[Contact, ...], int]:
    """One contact per Destination List, the most recently stored kept (§4.2 step 3);
    the rest newest first. Returns them and how many duplicates went."""
    best: dict[tuple[Destination, ...], Contact] = {}
    for c in contacts:
        kept = best.get(c.destination_list)
        if kept is None or c.storage_time > kept.storage_time:
            best[c.destination_list] = c
    unique = sorted(best.values(), key=lambda c: -c.storage_time)
    return tuple(unique), len(contacts) - len(unique)


@dataclass(frozen=True, slots=True)
class Resolution:
    """What resolving ``target`` found (RFC 7904 §4); :meth:`describe` says it in words.

    ``contacts``: where to connect, at most the fan-out cap, newest first; ``found``: how
    many distinct destinations there were before the cap (``capped`` of them left out).
    ``forwarded_to``: the URIs the target's registrations forward to, directly or further
    on, in the order met; ``external``: those outside this overlay (not followed);
    ``loop``: the first forwarding cycle met (``a → b → a``); ``depth_limited``: AoRs not
    looked up because the chain was too long; ``fetch_limited``: AoRs not looked up
    because the resolution had made :attr:`ResolverLimits.max_fetches` Fetches. Counters:
    ``duplicates`` (same Destination List twice), ``removed`` (removal entries),
    ``expired`` (no lifetime left), ``discarded`` (wrong signer or key, not a
    SipRegistration), ``fetches`` made. ``reason``: why, for outcomes that failed.
    """

    target: str
    outcome: Outcome
    contacts: tuple[Contact, ...] = ()
    found: int = 0
    capped: int = 0
    forwarded_to: tuple[str, ...] = ()
    external: tuple[str, ...] = ()
    loop: tuple[str, ...] = ()
    depth_limited: tuple[str, ...] = ()
    fetch_limited: tuple[str, ...] = ()
    duplicates: int = 0
    removed: int = 0
    expired: int = 0
    discarded: int = 0
    fetches: int = 0
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    reason: str = ""
    limits: ResolverLimits = field(default_factory=ResolverLimits)

    @property
    def ok(self) -> bool:
        """Whether there is somewhere to connect to."""
        return bool(self.contacts)

    @property
    def devices(self) -> int:
        return len(self.contacts)

    def describe(self) -> str:
        t, o = self.target, self.outcome
        if o is Outcome.GRUU:
            node = self.contacts[0].node_id
            return f"{t} is a GRUU: directly to node {node.hex() if node else '?'} (RFC 7904 §6)"
        if o is Outcome.REGISTERED:
            text = f"{t} is "
            if self.forwarded_to:
                text += f"forwarded to {', '.join(self.forwarded_to)} and "
            text += f"registered at {self.found} device{'s' if self.found != 1 else ''}"
            extra: list[str] = []
            if self.capped:
                extra.append(
                    f"only the {len(self.contacts)} newest are used (fan-out cap of "
                    f"{self.limits.max_fanout}, RFC 7904 §8.2.1)"
                )
            if self.loop:
                extra.append(f"forwarding loop {' → '.join(self.loop)} not followed")
            if self.depth_limited:
                extra.append(f"forwarding too deep to follow to {', '.join(self.depth_limited)}")
            if self.fetch_limited:
                extra.append(self._fetch_limit_text())
            if self.external:
                extra.append(f"also forwarded outside this overlay to {', '.join(self.external)}")
            return text + "".join(f"; {e}" for e in extra)
        if o is Outcome.NOT_REGISTERED:
            return f"{t} is not registered"
        if o is Outcome.LOOP:
            return f"{t}: forwarding loop {' → '.join(self.loop)}"
        if o is Outcome.DEPTH_LIMIT:
            if not self.depth_limited:
                return f"{t}: {self._fetch_limit_text()}"
            return (
                f"{t}: forwarded more than {self.limits.max_depth} times; not followed to "
                f"{', '.join(self.depth_limited)}"
            )
        if o is Outcome.FORWARDED_OUTSIDE:
            return f"{t} is forwarded to {', '.join(self.external)}, outside this overlay"
        if o is Outcome.DOMAIN_NOT_SERVED:
            return f"{t}: {self.reason}"
        if o is Outcome.LOOKUP_FAILED:
            return f"{t}: lookup failed: {self.reason}"
        return f"{t!r} is not a SIP AoR or GRUU: {self.reason}"

    def _fetch_limit_text(self) -> str:
        return (
            f"{self.limits.max_fetches} Fetches made, not followed further to {', '.join(self.fetch_limited)}"
        )

    def __str__(self) -> str:
        return self.describe()


@dataclass
class _Walk:
    """The state of one resolution."""

    contacts: list[Contact] = field(default_factory=list)
    forwarded_to: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    loop: tuple[str, ...] = ()
    depth_limited: list[str] = field(default_factory=list)
    fetch_limited: list[str] = field(default_factory=list)
    visited: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lookup_failed: str = ""
    fetches: int = 0
    removed: int = 0
    expired: int = 0
    discarded: int = 0


class Resolver:
    """Resolves AoRs and GRUUs over a :class:`StorageClient` (see the module docstring)."""

    def __init__(
        self,
        client: StorageClient,
        configuration: OverlayConfiguration,
        limits: ResolverLimits | None = None,
    ) -> None:
        self.client = client
        self.configuration = configuration
        self.limits = limits or ResolverLimits()
        self.ctx = WireContext(node_id_length=configuration.node_id_length)
        self.fetches = 0
        """Fetches made over this resolver's life."""

    def _not_served(self, aor: Aor) -> str | None:
        if domain_refusal(self.configuration, aor.domain) is None:
            return None
        return (
            f"domain {aor.domain!r} is not served by this overlay, which admits "
            f"{describe_restriction(self.configuration)} (RFC 7904 §3.4, §4.1)"
        )

    def _gruu(self, uri: str) -> Contact | tuple[Outcome, str]:
        """The contact a GRUU of this overlay reaches (§6), or the outcome and reason why
        it reaches none."""
        try:
            gruu = parse_gruu(uri, self.ctx)
            aor = parse_aor(gruu.aor)
        except (GruuError, AorError) as exc:
            return Outcome.INVALID, str(exc)
        refusal = self._not_served(aor)
        if refusal is not None:
            return Outcome.DOMAIN_NOT_SERVED, refusal
        if not isinstance(gruu.destination_list[-1], NodeDestination):
            return Outcome.INVALID, "its destination list does not end in a Node-ID (RFC 7904 §5.1)"
        return Contact(gruu.destination_list, aor.name, gruu=uri)

    async def resolve(self, target: str) -> Resolution:
        """Resolve an AoR (``sip:bob@example.org``, ``bob@example.org``) or a GRUU."""
        limits = self.limits
        if is_gruu(target):
            contact = self._gruu(target)
            if isinstance(contact, tuple):
                return Resolution(target, contact[0], reason=contact[1], limits=limits)
            return Resolution(target, Outcome.GRUU, (contact,), found=1, limits=limits)
        try:
            aor = parse_aor(target)
        except AorError as exc:
            return Resolution(target, Outcome.INVALID, reason=str(exc), limits=limits)
        refusal = self._not_served(aor)
        if refusal is not None:
            return Resolution(target, Outcome.DOMAIN_NOT_SERVED, reason=refusal, limits=limits)
        walk = _Walk()
        await self._follow(aor, (), walk)
        unique, duplicates = dedupe(walk.contacts)
        kept = unique[: max(0, limits.max_fanout)]
        if kept:
            outcome = Outcome.REGISTERED
        elif walk.lookup_failed:
            outcome = Outcome.LOOKUP_FAILED
        elif walk.loop:
            outcome = Outcome.LOOP
        elif walk.depth_limited or walk.fetch_limited:
            outcome = Outcome.DEPTH_LIMIT
        elif walk.external:
            outcome = Outcome.FORWARDED_OUTSIDE
        else:
            outcome = Outcome.NOT_REGISTERED
        return Resolution(
            target,
            outcome,
            kept,
            found=len(unique),
            capped=len(unique) - len(kept),
            forwarded_to=tuple(walk.forwarded_to),
            external=tuple(walk.external),
            loop=walk.loop,
            depth_limited=tuple(walk.depth_limited),
            fetch_limited=tuple(walk.fetch_limited),
            duplicates=duplicates,
            removed=walk.removed,
            expired=walk.expired,
            discarded=walk.discarded,
            fetches=walk.fetches,
            errors=tuple(walk.errors),
            notes=tuple(walk.notes),
            reason=walk.lookup_failed,
            limits=limits,
        )

    async def _follow(self, aor: Aor, path: tuple[str, ...], walk: _Walk) -> None:
        name = aor.name
        if name in path:
            if not walk.loop:
                walk.loop = (*path[path.index(name) :], name)
            return
        if name in walk.visited:
            return  # reached again by another forward: resolved once
        if len(path) > self.limits.max_depth:
            if name not in walk.depth_limited:
                walk.depth_limited.append(name)
            return
        if walk.fetches >= self.limits.max_fetches:
            if name not in walk.fetch_limited:
                walk.fetch_limited.append(name)
            return
        walk.visited.add(name)
        walk.fetches += 1
        self.fetches += 1
        spec = StoredDataSpecifier.dictionary(KindId.SIP_REGISTRATION)
        try:
            fetched = await self.client.fetch(aor.resource_id(self.ctx.node_id_length * 8), spec)
        except (StorageError, NodeError) as exc:
            text = str(exc) or type(exc).__name__
            walk.errors.append(f"{name}: {text}")
            if not path:
                walk.lookup_failed = text
            return
        for kind in fetched:
            if int(kind.kind) != KindId.SIP_REGISTRATION:
                continue
            read = read_registrations(aor, kind, ctx=self.ctx)
            walk.discarded += kind.discarded + read.discarded
            walk.removed += read.removed
            walk.expired += read.expired
            walk.notes.extend(f"{name}: {n}" for n in read.notes)
            walk.contacts.extend(read.routes)
            for uri in read.uris:
                await self._forward(name, uri, path, walk)

    async def _forward(self, name: str, uri: str, path: tuple[str, ...], walk: _Walk) -> None:
        if uri not in walk.forwarded_to:
            walk.forwarded_to.append(uri)
        if is_gruu(uri):
            contact = self._gruu(uri)
            if isinstance(contact, tuple):
                walk.discarded += 1
                walk.notes.append(f"{name}: a forward to GRUU {uri} that reaches nothing: {contact[1]}")
            else:
                walk.contacts.append(contact)
            return
        try:
            target = parse_aor(uri)
        except AorError:
            target = None
        if target is None or self._not_served(target) is not None:
            if uri not in walk.external:
                walk.external.append(uri)
            return
        await self._follow(target, (*path, name), walk)


__all__ = [
    "Contact",
    "Outcome",
    "Registrations",
    "Resolution",
    "Resolver",
    "ResolverLimits",
    "dedupe",
    "read_registrations",
]

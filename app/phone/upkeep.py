"""Keeping the profile current while the phone runs: the overlay's configuration document
(RFC 6940 §11.1, §11.2) and the node certificate (§11.3, §11.3.1).

Configuration. Its ``sequence`` moves when the operator publishes a new one. The phone
learns it two ways: a peer that sees our older sequence pushes the new document in a
ConfigUpdate (§6.3.2.1, §6.5.4), which the node checks and applies (it emits
:class:`~reload_core.node.events.ConfigurationChanged`); and the phone refetches the
document from the profile's ``config_url`` (§11.2) when that happens, at start-up, every
``config_refresh`` seconds, and before the document's ``expiration``. A newer, correctly
signed document (checked against the current one: same overlay, newer sequence, a signer
the current one trusts) is applied to the running node and written into the profile, so
the next start uses it.

Certificate. A certificate of the overlay's CA needs the account's password to renew
(the enrollment server asks for it, §11.3), and the profile keeps no password: from
``warn_before`` ahead of its expiry the phone says so (:class:`CertificateNotice`,
EXPIRING, with how to renew), and :func:`renew_enrolled` (``Phone.renew_certificate``)
renews it when given the password: a new CSR for the same key, the answer checked
against the configuration's root certificates, the profile rewritten, the overlay
rejoined with it. A self-signed certificate (§11.3.1: the local overlay, or an overlay
with self-signed-permitted) is renewed without asking, ``renew_before`` ahead of its
expiry: same key, hence the same Node-ID.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.phone.events import CertificateAction
from app.profile import Profile, ProfileError, replace_configuration, save_profile
from reload_core.config import OverlayConfiguration, fetch_configuration
from reload_core.config.processing import AcceptedConfiguration, is_newer_sequence
from reload_core.enrollment.client import enroll
from reload_core.enrollment.errors import EnrollmentError
from reload_core.security.certificates import (
    CertificateError,
    SelfSignedDigest,
    build_csr,
    make_self_signed,
    parse_node_certificate,
    validate_chain,
)

log = logging.getLogger("p2psip.phone")

WARN_BEFORE = timedelta(days=14)
RENEW_BEFORE = timedelta(days=30)
SELF_SIGNED_DAYS = 3650
CONFIG_REFRESH = 24 * 3600.0


class RenewalError(Exception):
    """The certificate could not be renewed; the message says why."""


def certificate_expiry(profile: Profile) -> datetime:
    """When the profile's node certificate stops being valid."""
    length = len(profile.descriptor.node_ids[0]) if profile.descriptor.node_ids else 16
    return parse_node_certificate(profile.certificate, length).not_valid_after


@dataclass(frozen=True, slots=True)
class CertificatePlan:
    """What to do about the certificate now: nothing (``action`` None), renew it
    ourselves (``renew``), or tell the user (``action`` and ``message``)."""

    action: CertificateAction | None
    renew: bool
    not_after: datetime
    message: str


def plan_certificate(
    profile: Profile,
    now: datetime,
    *,
    warn_before: timedelta = WARN_BEFORE,
    renew_before: timedelta = RENEW_BEFORE,
) -> CertificatePlan:
    """Pure: the :class:`CertificatePlan` for ``profile`` at ``now``."""
    not_after = certificate_expiry(profile)
    left = not_after - now
    days = max(0, left.days)
    if profile.descriptor.self_signed:
        if left <= renew_before:
            return CertificatePlan(None, True, not_after, "self-signed certificate renewed with the same key")
        return CertificatePlan(None, False, not_after, "")
    how = (
        "renew it with your password (Phone.renew_certificate, or p2psip enroll again)"
        if profile.descriptor.enrollment_url
        else "ask the overlay's operator for a new one (p2psip enroll)"
    )
    if left <= timedelta(0):
        return CertificatePlan(
            CertificateAction.EXPIRED,
            False,
            not_after,
            f"your certificate expired on {not_after:%Y-%m-%d}: {how}",
        )
    if left <= warn_before:
        return CertificatePlan(
            CertificateAction.EXPIRING,
            False,
            not_after,
            f"your certificate expires in {days} day{'s' if days != 1 else ''} ({not_after:%Y-%m-%d}): {how}",
        )
    return CertificatePlan(None, False, not_after, "")


def renew_self_signed(profile: Profile, configuration: OverlayConfiguration, now: datetime) -> Profile:
    """A new self-signed certificate (§11.3.1) for the same key (hence the same Node-IDs),
    written into the profile."""
    permitted = configuration.self_signed_permitted
    digest_name = permitted.digest if permitted is not None else "sha256"
    if digest_name not in ("sha1", "sha256"):
        raise RenewalError(f"self-signed digest {digest_name!r} is not supported")
    digest: SelfSignedDigest = "sha1" if digest_name == "sha1" else "sha256"
    d = profile.descriptor
    der = make_self_signed(
        profile.private_key,
        d.user_name,
        d.overlay,
        digest,
        len(d.node_ids),
        SELF_SIGNED_DAYS,
        node_id_length=configuration.node_id_length,
        now=now,
    )
    try:
        return save_profile(
            profile.directory,
            d,
            configuration=profile.configuration,
            private_key=profile.private_key,
            certificate=der,
            root_certs=profile.root_certs,
            https_ca_pem=profile.https_ca_pem,
        )
    except ProfileError as exc:
        raise RenewalError(str(exc)) from None


def https_context(profile: Profile) -> ssl.SSLContext:
    """Trust for the configuration and enrollment servers: the profile's ``https-ca.pem``
    if it has one, else the system's."""
    path = profile.https_ca_path
    return ssl.create_default_context(cafile=str(path) if path is not None else None)


async def renew_enrolled(
    profile: Profile,
    configuration: OverlayConfiguration,
    password: str,
    *,
    account: str | None = None,
    now: datetime | None = None,
) -> Profile:
    """Renew a CA-issued certificate at the profile's enrollment server (§11.3) with the
    same key; the profile is rewritten with it (and the Node-IDs it carries)."""
    d = profile.descriptor
    if d.self_signed:
        raise RenewalError("a self-signed certificate is renewed without a password")
    urls = [d.enrollment_url] if d.enrollment_url else list(configuration.enrollment_servers)
    if not urls:
        raise RenewalError("the profile names no enrollment server")
    when = now or datetime.now(UTC)
    name = account or d.user_name.split("@", 1)[0]
    csr = build_csr(profile.private_key, d.user_name)
    failure = "no enrollment server answered"
    for url in urls:
        try:
            der = await enroll(
                url,
                name,
                password,
                csr,
                len(d.node_ids),
                ssl=https_context(profile),
                server_name=configuration.instance_name,
            )
        except EnrollmentError as exc:
            failure = str(exc)
            if exc.token is not None:
                break  # the server said no: another would too
            continue
        try:
            node = validate_chain(
                der,
                [],
                configuration.root_certs or profile.root_certs,
                when,
                d.overlay,
                node_id_length=configuration.node_id_length,
            )
        except CertificateError as exc:
            raise RenewalError(f"the enrollment server's certificate does not check out: {exc}") from None
        if node.user_name != d.user_name:
            raise RenewalError(
                f"the enrollment server issued a certificate for {node.user_name}, not {d.user_name}"
            )
        descriptor = dataclasses.replace(d, node_ids=node.node_ids, enrollment_url=url)
        try:
            return save_profile(
                profile.directory,
                descriptor,
                configuration=profile.configuration,
                private_key=profile.private_key,
                certificate=der,
                root_certs=profile.root_certs,
                https_ca_pem=profile.https_ca_pem,
            )
        except ProfileError as exc:
            raise RenewalError(str(exc)) from None
    raise RenewalError(f"renewal failed: {failure}")


async def refetch_configuration(
    profile: Profile, current: OverlayConfiguration, *, now: datetime | None = None, timeout: float = 10.0
) -> AcceptedConfiguration | None:
    """The configuration at the profile's ``config_url`` if it is newer than ``current``
    and checks out against it (§11.1, §11.2); None if it is not newer. Raises
    :class:`ConfigError` when the fetch or the checks fail."""
    url = profile.descriptor.config_url
    if url is None:
        return None
    if current.expiration is not None and (now or datetime.now(UTC)) >= current.expiration:
        # An expired configuration cannot vouch for its successor: trust the roots we hold.
        previous = None
    else:
        previous = current
    accepted = await fetch_configuration(
        url,
        overlay_name=current.instance_name,
        ssl=https_context(profile),
        timeout=timeout,
        previous=previous,
        now=now,
    )
    if not is_newer_sequence(accepted.configuration.sequence, current.sequence):
        return None
    return accepted


def save_configuration(profile: Profile, data: bytes) -> Profile:
    """Write ``data`` as the profile's configuration document; the profile as it is now."""
    replace_configuration(profile.directory, data)
    return dataclasses.replace(profile, configuration=data)


def config_refresh_delay(
    configuration: OverlayConfiguration, now: datetime, refresh: float = CONFIG_REFRESH
) -> float:
    """Seconds until the configuration should be fetched again: ``refresh``, or sooner
    when it expires before that (then a little ahead of the expiration)."""
    if configuration.expiration is None:
        return refresh
    left = (configuration.expiration - now).total_seconds()
    return max(60.0, min(refresh, left * 0.9))


__all__ = [
    "CONFIG_REFRESH",
    "RENEW_BEFORE",
    "WARN_BEFORE",
    "CertificatePlan",
    "RenewalError",
    "certificate_expiry",
    "config_refresh_delay",
    "https_context",
    "plan_certificate",
    "refetch_configuration",
    "renew_enrolled",
    "renew_self_signed",
    "save_configuration",
]

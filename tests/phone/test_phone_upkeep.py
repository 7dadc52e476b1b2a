"""The profile kept current by a running phone: the configuration refetched over HTTPS
when its sequence moved, a ConfigUpdate pushed by a peer kept in the profile, the
certificate warned about before it expires, renewed with the password (and the overlay
rejoined with it), a self-signed one renewed without asking."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli.enroll_cmd import enroll_profile
from app.cli.init_cmd import init_profile
from app.cli.overlay_cmd import serving
from app.phone.calls import EndCause
from app.phone.events import CertificateAction, CertificateNotice, ConfigurationUpdated, PhoneState
from app.phone.local_config import local_configuration
from app.phone.service import Phone, PhoneOptions
from app.phone.upkeep import certificate_expiry, plan_certificate, renew_self_signed
from app.profile import load_profile, replace_configuration
from reload_core.config import parse_document
from reload_core.node.errors import RequestError
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination

from .phone_lab import OVERLAY, PRESENCE, TIMERS, WAIT, Events, PhoneLab, connected_call

PASSWORD = "correct horse battery staple"


def _sequence(document: bytes) -> int:
    return parse_document(document).entry(OVERLAY).configuration.sequence


async def test_configuration_refetch_push_and_certificate_renewal(
    tmp_path: Path, interface_address: str
) -> None:
    lab = PhoneLab(tmp_path)
    od = lab.overlay.operator
    od.users().add_user("alice", PASSWORD, f"alice@{OVERLAY}")
    try:
        async with serving(od, "127.0.0.1", 0) as served:
            # Serving re-signed the configuration with its enrollment URL (a new
            # sequence): the bootstrap peer runs that one.
            replace_configuration(lab.overlay.peers[0].directory, od.config_path.read_bytes())
            await lab.start_bootstrap()
            profile = await enroll_profile(
                served.config_url,
                "alice",
                lambda: PASSWORD,
                tmp_path / "alice",
                cafile=str(od.ca_cert_path),
                key_kind="ecdsa",
            )
            alice = await Phone.open(
                profile.directory, options=PhoneOptions(timers=TIMERS, presence=PRESENCE)
            )
            lab.phones.append(alice)
            events = Events(alice)
            assert await alice.start() is PhoneState.REGISTERED
            first = _sequence(profile.configuration)

            # The operator publishes a new configuration: the phone fetches it (§11.2),
            # runs it and keeps it.
            od.publish(dataclasses.replace(od.configuration(), sequence=first + 1))
            assert await alice.refetch_configuration() == first + 1
            assert await alice.refetch_configuration() is None  # nothing newer now
            saved = load_profile(profile.directory)
            assert _sequence(saved.configuration) == first + 1
            session = alice.session
            assert session is not None
            node_settings = session.node.settings
            assert (
                node_settings.configuration is not None and node_settings.configuration.sequence == first + 1
            )
            fetched = await events.wait(ConfigurationUpdated, lambda e: e.sequence == first + 1)
            assert fetched.source == served.config_url

            # The overlay moves on again: a peer answers our requests Error_Config_Too_Old
            # (§6.3.2.1). Its ConfigUpdate cannot carry this document (about 14 KB, over
            # max-message-size), so the phone fetches it from the server.
            newer = od.publish(dataclasses.replace(od.configuration(), sequence=first + 2))
            assert len(newer) > session.node.settings.max_message_size
            bootstrap = lab.bootstrap
            assert bootstrap is not None
            accepted = parse_document(newer).entry(OVERLAY).configuration
            bootstrap.apply_configuration(bootstrap.settings.with_configuration(accepted, newer))
            with pytest.raises(RequestError) as refused:
                await session.node.request(
                    NodeDestination(bootstrap.node_id), MessageCode.ping_req, PingReq()
                )
            assert refused.value.error_code == ErrorCode.Error_Config_Too_Old
            moved = await events.wait(ConfigurationUpdated, lambda e: e.sequence == first + 2)
            assert moved.source == served.config_url
            assert load_profile(profile.directory).configuration == newer
            await session.node.request(NodeDestination(bootstrap.node_id), MessageCode.ping_req, PingReq())

            # Renewal with the password (§11.3): same key, a new certificate (the server
            # keeps the account's Node-ID); the phone signs out and rejoins with it.
            old_node = session.node
            old_expiry = certificate_expiry(alice.profile)
            not_after = await alice.renew_certificate(PASSWORD)
            notice = await events.wait(CertificateNotice)
            assert notice.action is CertificateAction.RENEWED and notice.not_after == not_after.timestamp()
            assert not_after >= old_expiry
            renewed = load_profile(profile.directory)
            assert renewed.certificate != profile.certificate
            assert (
                renewed.private_key.public_key().public_numbers()
                == profile.private_key.public_key().public_numbers()
            )  # type: ignore[union-attr]
            await alice.wait_state(PhoneState.JOINING, timeout=WAIT)
            await alice.wait_state(PhoneState.REGISTERED, timeout=WAIT)
            session = alice.session
            assert session is not None and session.node is not old_node
            assert session.node.node_id == renewed.descriptor.node_ids[0] == alice.node_id
            assert session.node.signer.certificate == renewed.certificate
            bob = await lab.open("bob", configuration=od.config_path.read_bytes())
            call, at_alice = await connected_call(bob, alice)
            await call.hangup()
            assert await at_alice.wait_ended(WAIT) is EndCause.REMOTE_HUNG_UP
    finally:
        await lab.close()


def test_certificate_plans(tmp_path: Path) -> None:
    """Warn from 14 days before a CA certificate's expiry; renew a self-signed one from
    30 days before, with the same key and Node-ID."""
    lab = PhoneLab(tmp_path)
    try:
        profile = load_profile(lab.profile("alice"))
        expiry = certificate_expiry(profile)
        assert plan_certificate(profile, expiry - timedelta(days=30)).action is None
        soon = plan_certificate(profile, expiry - timedelta(days=3, hours=1))
        assert soon.action is CertificateAction.EXPIRING and not soon.renew
        assert soon.message.startswith("your certificate expires in 3 days")
        gone = plan_certificate(profile, expiry + timedelta(seconds=1))
        assert gone.action is CertificateAction.EXPIRED and "expired on" in gone.message
    finally:
        lab.overlay.close()
    local, _ = init_profile("dora", tmp_path / "dora")
    assert local is not None
    expiry = certificate_expiry(local)
    assert not plan_certificate(local, expiry - timedelta(days=31)).renew
    plan = plan_certificate(local, expiry - timedelta(days=29))
    assert plan.renew and plan.action is None
    later = expiry - timedelta(days=29)
    renewed = renew_self_signed(local, local_configuration(), later)
    assert renewed.descriptor.node_ids == local.descriptor.node_ids
    assert certificate_expiry(renewed) > expiry
    assert load_profile(tmp_path / "dora").certificate == renewed.certificate
    assert datetime.now(UTC) < certificate_expiry(renewed)

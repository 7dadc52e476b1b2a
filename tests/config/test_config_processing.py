"""Accepting a new configuration: sequence numbers (§6.3.2.1), expiration and overlay (§11.1, §11.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reload_core.config import (
    ConfigError,
    ConfigErrorReason,
    OverlayConfiguration,
    accept_configuration,
    generate_document,
    is_newer_sequence,
    sign_config,
)

OVERLAY = "overlay.example.org"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("new", "old", "newer"),
    [
        (1, 0, True),
        (0, 1, False),
        (23, 22, True),
        (22, 22, False),
        (0, 65534, True),  # §6.3.2.1: after 65534 comes 0
        (65534, 0, False),
        (5, 65530, True),
        (65530, 5, False),
        (32767, 0, True),  # less than half of the 65535 space ahead
        (32768, 0, False),  # more than half: behind, modulo 65535
        (0, 32768, True),
        (0, 32767, False),
    ],
)
def test_is_newer_sequence_modulo_65535(new: int, old: int, newer: bool) -> None:
    assert is_newer_sequence(new, old) is newer


def test_sequence_out_of_range() -> None:
    with pytest.raises(ValueError, match="65535"):
        is_newer_sequence(65535, 1)


def signed(root_ca, signer, **kw) -> bytes:  # type: ignore[no-untyped-def]
    config = OverlayConfiguration(
        OVERLAY,
        root_certs=(root_ca.certificate,),
        configuration_signers=(signer.node_id_hex,),
        **kw,
    )
    return sign_config(generate_document(config), signer.key, signer.certificate)


def test_sequence_going_backwards_is_refused(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    current = accept_configuration(signed(root_ca, signer, sequence=22), now=NOW).configuration
    older = signed(root_ca, signer, sequence=21)
    with pytest.raises(ConfigError, match="sequence 21, older than the current 22") as info:
        accept_configuration(older, previous=current, now=NOW)
    assert info.value.reason == ConfigErrorReason.SEQUENCE
    newer = accept_configuration(signed(root_ca, signer, sequence=23), previous=current, now=NOW)
    assert newer.configuration.sequence == 23


def test_sequence_wraps_around(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    current = accept_configuration(signed(root_ca, signer, sequence=65534), now=NOW).configuration
    wrapped = accept_configuration(signed(root_ca, signer, sequence=0), previous=current, now=NOW)
    assert wrapped.configuration.sequence == 0
    with pytest.raises(ConfigError) as info:
        accept_configuration(signed(root_ca, signer, sequence=65533), previous=wrapped.configuration, now=NOW)
    assert info.value.reason == ConfigErrorReason.SEQUENCE


def test_same_sequence_only_for_the_same_configuration(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    data = signed(root_ca, signer, sequence=7)
    current = accept_configuration(data, now=NOW).configuration
    assert accept_configuration(data, previous=current, now=NOW).configuration == current  # fetched again
    changed = signed(root_ca, signer, sequence=7, max_message_size=6000)
    with pytest.raises(ConfigError, match="changed but kept sequence 7") as info:
        accept_configuration(changed, previous=current, now=NOW)
    assert info.value.reason == ConfigErrorReason.SEQUENCE


def test_expired_configuration_is_refused(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    expiration = NOW + timedelta(days=1)
    data = signed(root_ca, signer, expiration=expiration)
    assert accept_configuration(data, now=NOW).configuration.expiration == expiration
    with pytest.raises(ConfigError, match="expired at 2030-01-02T00:00:00") as info:
        accept_configuration(data, now=expiration)
    assert info.value.reason == ConfigErrorReason.EXPIRED


def test_rfc_example_has_expired(rfc_example: bytes) -> None:
    with pytest.raises(ConfigError) as info:
        accept_configuration(rfc_example, overlay_name=OVERLAY, now=NOW, require_signature=False)
    assert info.value.reason == ConfigErrorReason.EXPIRED
    before = datetime(2002, 1, 1, tzinfo=UTC)
    accepted = accept_configuration(rfc_example, overlay_name=OVERLAY, now=before, require_signature=False)
    assert accepted.configuration.sequence == 22


def test_overlay_must_match(root_ca, signer) -> None:  # type: ignore[no-untyped-def]
    data = signed(root_ca, signer)
    with pytest.raises(ConfigError, match=r"no configuration for overlay 'other\.example'") as info:
        accept_configuration(data, overlay_name="other.example", now=NOW)
    assert info.value.reason == ConfigErrorReason.OVERLAY
    previous = OverlayConfiguration("other.example")
    with pytest.raises(ConfigError) as info:
        accept_configuration(data, previous=previous, now=NOW)
    assert info.value.reason == ConfigErrorReason.OVERLAY


def test_several_overlays_need_a_name(rfc_example: bytes) -> None:
    with pytest.raises(ConfigError, match="several overlays") as info:
        accept_configuration(rfc_example, require_signature=False, now=datetime(2002, 1, 1, tzinfo=UTC))
    assert info.value.reason == ConfigErrorReason.OVERLAY
    other = accept_configuration(
        rfc_example, overlay_name="other.example.net", require_signature=False, now=NOW
    ).configuration
    assert other.instance_name == "other.example.net"

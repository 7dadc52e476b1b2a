"""The STUN servers a phone's call media gathers server-reflexive candidates from:
those its overlay node uses (RFC 6940 §6.5.1.4: the configuration's bootstrap nodes),
none in a TLS-only overlay (§6.5.1.11). :mod:`tests.phone.test_phone_nat` shows them at
work: two phones behind two NATs talk straight from NAT to NAT."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.bench.overlay_harness import provision_overlay
from app.peer import build_node, peer_setup
from app.phone.service import overlay_stun_servers
from app.profile import load_profile
from reload_core.config import BootstrapNode


@pytest.mark.parametrize(
    ("protocols", "expected"),
    [(("DTLS-UDP-SR",), [("198.51.100.2", 6084), ("203.0.113.5", 5000)]), (("TLS",), [])],
)
async def test_the_overlays_stun_servers(
    tmp_path: Path, protocols: tuple[str, ...], expected: object
) -> None:
    overlay = provision_overlay(
        tmp_path,
        1,
        bootstrap_nodes=(
            BootstrapNode("198.51.100.2", 6084),
            BootstrapNode("2001:db8::2", 6084),  # aioice asks STUN servers over IPv4 only
            BootstrapNode("203.0.113.5", 5000),
        ),
        overlay_link_protocols=protocols,
    )
    overlay.close()
    node = build_node(peer_setup(load_profile(overlay.add_profile("alice").directory)), storage=False)
    try:
        assert overlay_stun_servers(node) == expected
    finally:
        await node.close()

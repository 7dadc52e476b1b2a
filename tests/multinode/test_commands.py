"""``p2psip peer`` and ``p2psip bench overlay`` as a user runs them: user errors are one
line and a non-zero exit, and the benchmark prints every figure it promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import CliError
from app.cli.peer_cmd import claim_bootstrap_address, parse_listen
from app.peer import bind_listening_socket
from reload_core.wire.addresses import IpAddressPort

from .conftest import MakeOverlay, run_cli

pytestmark = pytest.mark.multinode


async def test_peer_without_a_profile_is_a_one_line_error(tmp_path: Path) -> None:
    result = await run_cli("peer", "--profile", str(tmp_path / "nothing-here"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("p2psip: error: no profile in ")
    assert len(result.stderr.splitlines()) == 1


async def test_peer_with_a_bad_listen_address_is_a_one_line_error(make_overlay: MakeOverlay) -> None:
    overlay = make_overlay(1)
    result = await run_cli("peer", "--profile", str(overlay.peers[0].directory), "--listen", "localhost:80")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "p2psip: error: --listen 'localhost:80' must be IP:PORT (an IP address; port 0: any)"
    )


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:0") == IpAddressPort("127.0.0.1", 0)
    assert parse_listen("[::1]:6084") == IpAddressPort("::1", 6084)
    for bad in ("127.0.0.1", "127.0.0.1:65536", "example.org:6084", ":6084"):
        with pytest.raises(CliError):
            parse_listen(bad)


def test_a_bootstrap_address_in_use_or_not_ours_is_not_claimed() -> None:
    taken = bind_listening_socket("127.0.0.1")
    try:
        in_use = IpAddressPort("127.0.0.1", taken.getsockname()[1])
        elsewhere = IpAddressPort("192.0.2.1", 6084)  # TEST-NET-1: never this machine's
        assert claim_bootstrap_address([in_use, elsewhere]) is None
    finally:
        taken.close()
    claimed = claim_bootstrap_address([elsewhere, in_use])  # free again now
    assert claimed is not None
    try:
        assert claimed.getsockname()[:2] == ("127.0.0.1", in_use.port)
    finally:
        claimed.close()


async def test_bench_overlay_prints_every_figure() -> None:
    result = await run_cli("bench", "overlay", "--peers", "4", "--lookups", "50", "--json", "--seed", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    for key in (
        "peers_joined",
        "ring_ok",
        "lookups",
        "failed",
        "hops_mean",
        "hops_p99",
        "latency_ms_p50",
        "latency_ms_p99",
        "join_s",
        "rss_mb_per_peer",
    ):
        assert key in figures, key
    assert figures["peers_joined"] == 4
    assert figures["ring_ok"] is True
    assert figures["lookups"] == 50
    assert figures["failed"] == 0
    assert 0 <= figures["hops_mean"] <= 3  # four peers: at most three links away
    assert figures["latency_ms_p50"] > 0
    assert figures["rss_mb_per_peer"] > 0


def test_a_provisioned_bootstrap_port_cannot_be_claimed(make_overlay: MakeOverlay) -> None:
    overlay = make_overlay(2)
    bootstrap = overlay.bootstrap_nodes[0]
    # Until its peer runs, the port is held (bound, not listening): a peer started
    # meanwhile must not take the bootstrap peer's place.
    assert claim_bootstrap_address([IpAddressPort(bootstrap.address, bootstrap.port)]) is None

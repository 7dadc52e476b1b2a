"""``p2psip bench sip`` as a user runs it, small: 10 peer processes, two phones in
processes of their own, calls over new AppAttaches and over the open connection; the
JSON has every figure it promises, from calls that all went through."""

from __future__ import annotations

import json
import math

import pytest

from app.bench.bench_sip import STEPS, ice_host_addresses

from .conftest import run_cli

pytestmark = pytest.mark.multinode


async def test_bench_sip_small_run_prints_every_figure() -> None:
    if not ice_host_addresses():
        pytest.skip("no non-loopback interface address: AppAttach's ICE has no host candidate")
    result = await run_cli(
        "bench", "sip", "--peers", "10", "--calls", "3", "--fresh", "2", "--json", timeout=240.0
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert figures["peers"] == figures["peers_joined"] == 10
    assert figures["workers"] == 12  # one process per peer, and one per phone
    assert (figures["fresh_calls"], figures["fresh_failed"]) == (2, 0)
    assert (figures["reused_calls"], figures["reused_failed"]) == (3, 0)
    assert (figures["calls_over_new_appattach"], figures["calls_over_open_connection"]) == (2, 3)
    assert figures["caller"] == "sip:alice@harness.p2psip.test"
    assert figures["callee"] == "sip:bob@harness.p2psip.test"
    for prefix in ("fresh", "reused"):
        for step in STEPS:
            for q in ("p50", "p99"):
                value = figures[f"{prefix}_{step}_{q}"]
                assert isinstance(value, float) and math.isfinite(value) and value > 0, (prefix, step, q)
        # Dialling to ringing is the Fetch, the connection and the INVITE's round trip.
        assert figures[f"{prefix}_dial_to_ringing_ms_p50"] >= figures[f"{prefix}_invite_to_180_ms_p50"]
        assert figures[f"{prefix}_dial_to_answer_ms_p99"] >= figures[f"{prefix}_dial_to_ringing_ms_p50"]
    # A new AppAttach (ICE + DTLS) costs more than finding the open connection.
    assert figures["fresh_app_attach_ms_p50"] > figures["reused_app_attach_ms_p99"]
    assert 400 < figures["invite_bytes"] <= 1300
    assert figures["dial_to_ringing_target_ms"] == 300.0
    assert isinstance(figures["dial_to_ringing_target_met"], bool)
    assert math.isfinite(figures["first_call_dial_to_ringing_ms"])


async def test_bench_sip_bad_arguments_are_one_line() -> None:
    result = await run_cli("bench", "sip", "--calls", "0", "--fresh", "0", timeout=240.0)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "p2psip: error: --calls and --fresh cannot be negative, and at least one call is needed"
    )

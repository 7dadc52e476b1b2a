"""ICE + DTLS through real NATs: network namespaces with MASQUERADE routers, peers as
separate processes, coturn as the TURN server (§6.5.1, §6.5.2, §6.6.3, §6.6.4, §9)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .netns import (
    NAT1_WAN,
    NAT2_WAN,
    PUBLIC_PEER,
    TURN_SERVER,
    PeerProcess,
    Topology,
    new_topology,
    python_peer,
    start_turn,
    unavailable_reason,
)
from .pki import NodeCreds, TestPki

PEER = Path(__file__).with_name("ice_peer.py")
STUN = f"{PUBLIC_PEER}:3478"
TURN_USER, TURN_PASS = "alice", "turn-secret"

_reason = unavailable_reason()
pytestmark = [pytest.mark.multinode, pytest.mark.skipif(_reason is not None, reason=_reason or "")]


@pytest.fixture
async def topology() -> AsyncIterator[Topology]:
    topo = new_topology()
    try:
        topo.build()
        yield topo
    finally:
        try:
            await topo.stop_processes()
        finally:
            topo.teardown()


@dataclass
class Files:
    key: Path
    cert: Path
    root: Path
    creds: NodeCreds


@pytest.fixture
def files(pki: TestPki, tmp_path: Path) -> dict[str, Files]:
    root = pki.write_root(tmp_path)
    out: dict[str, Files] = {}
    for name in ("a", "b", "c"):
        creds = pki.node(f"{name}@ice.test.example")
        key, cert = creds.write(tmp_path, name)
        out[name] = Files(key, cert, root, creds)
    return out


async def start_stun(topo: Topology) -> PeerProcess:
    stun = await python_peer(topo, topo.inet, PEER, "--mode", "stun", "--listen", STUN)
    await stun.event("listening")
    return stun


async def start_peer(
    topo: Topology, ns: str, me: Files, peer: Files, *, role: str, mode: str, extra: tuple[str, ...] = ()
) -> PeerProcess:
    return await python_peer(topo,
        ns, PEER, "--mode", mode, "--role", role, "--key", str(me.key), "--cert", str(me.cert),
        "--root", str(me.root), "--expect", peer.creds.node_id.hex(), *extra,
    )  # fmt: skip


async def signal_both(offerer: PeerProcess, answerer: PeerProcess) -> tuple[dict[str, Any], dict[str, Any]]:
    """Carry each side's ICE parameters to the other, as Attach/AppAttach would."""
    offer, answer = await asyncio.gather(offerer.event("params"), answerer.event("params"))
    await answerer.command(cmd="connect", **{k: offer[k] for k in ("ufrag", "password", "candidates")})
    await offerer.command(cmd="connect", **{k: answer[k] for k in ("ufrag", "password", "candidates")})
    return offer, answer


async def exchange(
    a: PeerProcess, b: PeerProcess, count: int, timeout: float = 30
) -> tuple[dict[str, Any], dict[str, Any]]:
    await a.command(cmd="send", count=count, prefix="from-a")
    await b.command(cmd="send", count=count, prefix="from-b")
    await asyncio.gather(a.event("sent"), b.event("sent"))
    await a.command(cmd="wait_received", distinct=count, timeout=timeout)
    await b.command(cmd="wait_received", distinct=count, timeout=timeout)
    return await asyncio.gather(a.event("report", timeout + 10), b.event("report", timeout + 10))


def in_order(received: list[str]) -> list[str]:
    """Received messages without the back-to-back copies simple reliability may deliver
    when an ack is lost (§6.6.3: a retransmission carries a new sequence number)."""
    return [m for i, m in enumerate(received) if i == 0 or received[i - 1] != m]


async def test_two_nats_app_attach_both_ways(topology: Topology, files: dict[str, Files]) -> None:
    await start_stun(topology)
    stun = ("--stun", STUN)
    a = await start_peer(
        topology, topology.lan1, files["a"], files["b"], role="offerer", mode="app", extra=stun
    )
    b = await start_peer(
        topology, topology.lan2, files["b"], files["a"], role="answerer", mode="app", extra=stun
    )
    offer, answer = await signal_both(a, b)
    # Server-reflexive candidates: each NAT's public address (§6.5.1.4, §6.5.1.5).
    assert offer["types"] == ["host", "srflx"] and answer["types"] == ["host", "srflx"]
    assert offer["reflexive"][STUN][0] == NAT1_WAN and answer["reflexive"][STUN][0] == NAT2_WAN
    ice_a, ice_b = await asyncio.gather(a.event("ice"), b.event("ice"))
    assert ice_a["local_type"] == "host" and ice_a["remote_address"][0] == NAT2_WAN
    assert ice_b["remote_address"][0] == NAT1_WAN
    opened = await asyncio.gather(a.event("open"), b.event("open"))
    assert opened[0]["peer"] == files["b"].creds.node_id.hex()
    assert opened[1]["peer"] == files["a"].creds.node_id.hex()
    report_a, report_b = await exchange(a, b, 20)
    assert sorted(report_a["received"]) == [f"from-b {i:04d}" for i in range(20)]
    assert sorted(report_b["received"]) == [f"from-a {i:04d}" for i in range(20)]


async def test_relayed_candidate_when_peers_cannot_reach_each_other(
    topology: Topology, files: dict[str, Files], tmp_path: Path
) -> None:
    await start_stun(topology)
    await start_turn(topology, tmp_path, user=(TURN_USER, TURN_PASS))
    topology.block_peer_to_peer()
    stun = ("--stun", STUN, "--connect-timeout", "3")
    turn = ("--turn", f"{TURN_SERVER}:3478", "--turn-user", TURN_USER, "--turn-pass", TURN_PASS)

    # Without a relay the firewalled NATs cannot be crossed...
    a = await start_peer(
        topology, topology.lan1, files["a"], files["b"], role="offerer", mode="app", extra=stun
    )
    b = await start_peer(
        topology, topology.lan2, files["b"], files["a"], role="answerer", mode="app", extra=stun
    )
    await signal_both(a, b)
    failed = await asyncio.gather(a.event("ice_failed"), b.event("ice_failed"))
    assert all("no candidate pair worked" in f["detail"] for f in failed)

    # ...with a TURN server (coturn, long-term credentials) the relayed candidate does.
    a = await start_peer(
        topology, topology.lan1, files["a"], files["b"], role="offerer", mode="app", extra=(*stun, *turn)
    )
    b = await start_peer(
        topology, topology.lan2, files["b"], files["a"], role="answerer", mode="app", extra=stun
    )
    offer, _ = await signal_both(a, b)
    assert offer["types"] == ["host", "srflx", "relay"]
    ice_a, ice_b = await asyncio.gather(a.event("ice", 30), b.event("ice", 30))
    assert ice_a["local_type"] == "relay" or ice_b["remote_type"] == "relay"
    assert ice_b["remote_address"][0] == TURN_SERVER
    await asyncio.gather(a.event("open"), b.event("open"))
    report_a, report_b = await exchange(a, b, 10)
    assert sorted(report_a["received"]) == [f"from-b {i:04d}" for i in range(10)]
    assert sorted(report_b["received"]) == [f"from-a {i:04d}" for i in range(10)]


async def test_simple_reliability_repairs_packet_loss(topology: Topology, files: dict[str, Files]) -> None:
    # A NATed peer and a public peer with a DTLS/SR overlay link; then nat1 drops 5 % of
    # the UDP packets it forwards, both ways. (At 20 % a message and its ack get through
    # with p = 0.64, and five failed transmissions in a row, which close the link as
    # §6.6.3.1 asks, become likely over a few dozen messages.)
    a = await start_peer(topology, topology.lan1, files["a"], files["b"], role="offerer", mode="link")
    b = await start_peer(topology, topology.inet, files["b"], files["a"], role="answerer", mode="link")
    await signal_both(a, b)
    await asyncio.gather(a.event("ice"), b.event("ice"))
    await asyncio.gather(a.event("open"), b.event("open"))
    topology.lose(topology.nat1, 0.05)
    count = 60
    report_a, report_b = await exchange(a, b, count, timeout=60)
    assert topology.dropped(topology.nat1) > 0
    assert in_order(report_b["received"]) == [f"from-a {i:04d}" for i in range(count)]
    assert in_order(report_a["received"]) == [f"from-b {i:04d}" for i in range(count)]
    retransmitted = report_a["data_frames_sent"] - report_a["messages_sent"]  # keepalives are messages
    assert retransmitted > 0
    assert report_a["open"] and report_b["open"]


async def test_dtls_refuses_a_certificate_without_the_attached_node_id(
    topology: Topology, files: dict[str, Files]
) -> None:
    await start_stun(topology)
    stun = ("--stun", STUN)
    # b expects c's Node-ID, but a answers the handshake with its own certificate.
    a = await start_peer(
        topology, topology.lan1, files["a"], files["b"], role="offerer", mode="link", extra=stun
    )
    b = await start_peer(
        topology, topology.lan2, files["b"], files["c"], role="answerer", mode="link", extra=stun
    )
    await signal_both(a, b)
    await asyncio.gather(a.event("ice"), b.event("ice"))
    closed_a, closed_b = await asyncio.gather(a.event("closed"), b.event("closed"))
    assert closed_b["code"] == "WRONG_NODE_ID" and files["c"].creds.node_id.hex() in closed_b["detail"]
    assert closed_a["code"] in ("AUTHENTICATION_FAILED", "HANDSHAKE_FAILED")

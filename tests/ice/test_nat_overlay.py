"""Peers behind MASQUERADE NATs in an overlay of public peers: joining and staying in the
ring with ICE Attaches (§10.5, §10.6, §6.5.1), and AppAttach between two NATed peers
through the overlay (§6.5.2). Every peer is its own process in a network namespace."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .netns import (
    NAT1_WAN,
    NAT2_WAN,
    PUBLIC_PEER,
    TURN_SERVER,
    Topology,
    new_topology,
    start_turn,
    unavailable_reason,
)
from .pki import TestPki

NODE = Path(__file__).with_name("node_peer.py")

_reason = unavailable_reason()
pytestmark = [pytest.mark.multinode, pytest.mark.skipif(_reason is not None, reason=_reason or "")]


class NodeProc:
    """A node_peer.py process; its events are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, changed: asyncio.Event) -> None:
        self.proc = proc
        self.name = name
        self.changed = changed
        self.node_id = ""
        self.address = ""
        self.state = ""
        self.successors: list[str] = []
        self.predecessors: list[str] = []
        self.down: list[str] = []
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.started = asyncio.Event()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            event = json.loads(line)
            kind = event["event"]
            if kind == "started":
                self.node_id, self.address = event["node_id"], event["address"]
                self.started.set()
            elif kind == "state":
                self.state = event["state"]
            elif kind == "neighbors":
                self.successors, self.predecessors = event["successors"], event["predecessors"]
            elif kind == "connection":
                if not event["up"]:
                    self.down.append(event["peer"])
            else:
                self.replies.put_nowait(event)
            self.changed.set()
        self.changed.set()

    async def command(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def reply(self, timeout: float = 20.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.replies.get(), timeout)


class Overlay:
    def __init__(self, topo: Topology, pki: TestPki, tmp: Path) -> None:
        self.topo = topo
        self.pki = pki
        self.tmp = tmp
        self.root = pki.write_root(tmp)
        self.changed = asyncio.Event()
        self.nodes: list[NodeProc] = []

    async def start(self, namespace: str, listen: str, bootstrap: str | None = None, *extra: str) -> NodeProc:
        name = f"n{len(self.nodes)}"
        key, cert = self.pki.node(f"{name}@ice.test.example").write(self.tmp, name)
        args = ["--key", str(key), "--cert", str(cert), "--root", str(self.root), "--listen", listen]
        if bootstrap is not None:
            args += ["--bootstrap", bootstrap]
        args += extra
        proc = await self.topo.spawn(
            namespace,
            [sys.executable, str(NODE), *args],
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        node = NodeProc(proc, name, self.changed)
        self.nodes.append(node)
        await asyncio.wait_for(node.started.wait(), 20)
        return node

    def ring_errors(self, nodes: list[NodeProc]) -> list[str]:
        ring = sorted(n.node_id for n in nodes)
        errors = []
        for n in nodes:
            i = ring.index(n.node_id)
            count = min(3, len(ring) - 1)
            succ = [ring[(i + j) % len(ring)] for j in range(1, count + 1)]
            pred = [ring[(i - j) % len(ring)] for j in range(1, count + 1)]
            if n.state != "joined" or n.successors != succ or n.predecessors != pred:
                errors.append(f"{n.name} {n.state}")
        return errors

    async def until(self, predicate: Any, timeout: float) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


@pytest.fixture
async def overlay(pki: TestPki, tmp_path: Path) -> AsyncIterator[Overlay]:
    topo = new_topology()
    try:
        topo.build()
        yield Overlay(topo, pki, tmp_path)
    finally:
        try:
            await topo.stop_processes()
        finally:
            topo.teardown()


async def test_nated_peers_join_stay_and_app_attach(overlay: Overlay) -> None:
    topo = overlay.topo
    first = await overlay.start(topo.inet, f"{PUBLIC_PEER}:0")
    public = [first] + [await overlay.start(topo.inet, f"{PUBLIC_PEER}:0", first.address) for _ in range(2)]
    await overlay.until(lambda: not overlay.ring_errors(public), 30)

    # A peer behind nat1 joins through the first peer (TLS to a bootstrap node, §11.4),
    # then Attaches to its neighbours with ICE through the NAT.
    nated = await overlay.start(topo.lan1, "10.1.0.2:0", first.address)
    everyone = [*public, nated]
    await overlay.until(lambda: not overlay.ring_errors(everyone), 30)

    await nated.command(cmd="links")
    links = (await nated.reply())["links"]
    ice_peers = {link["peer"] for link in links}
    assert ice_peers and first.node_id not in ice_peers
    assert ice_peers <= {p.node_id for p in public}
    # (the public namespace's bridge has three addresses, each a host candidate)
    assert all(link["remote"][0].startswith("198.51.100.") for link in links)
    for peer in public[1:]:
        await peer.command(cmd="links")
        seen = {link["peer"]: link for link in (await peer.reply())["links"]}
        if nated.node_id in seen:  # the NATed peer is reached at its NAT's public address
            assert seen[nated.node_id]["remote"][0] == NAT1_WAN

    # Both ways through the NAT, over the ring's links.
    for peer in public:
        await peer.command(cmd="ping", node_id=nated.node_id)
        assert (await peer.reply())["event"] == "pong"
        await nated.command(cmd="ping", node_id=peer.node_id)
        assert (await nated.reply())["event"] == "pong"

    # It stays: several stabilisation rounds (chord-update-interval 1 s) and ICE consent
    # checks later, nobody has lost a link to it and the ring is intact.
    with pytest.raises(TimeoutError):
        await overlay.until(lambda: any(nated.node_id in p.down for p in public) or nated.down, 6.0)
    assert not overlay.ring_errors(everyone)

    # A second NATed peer, behind another NAT, and an AppAttach between the two through
    # the overlay (RFC 7904's call setup): ICE punches through both NATs.
    other = await overlay.start(topo.lan2, "10.2.0.2:0", first.address)
    everyone.append(other)
    await overlay.until(lambda: not overlay.ring_errors(everyone), 30)
    await nated.command(cmd="app_attach", node_id=other.node_id, application=5060, payload="INVITE")
    reply = await nated.reply(30)
    assert reply["event"] == "app_data", reply
    assert reply["data"] == "echo INVITE" and reply["peer"] == other.node_id
    await other.command(cmd="app_attach", node_id=nated.node_id, application=5060, payload="BYE")
    reply = await other.reply(30)
    assert reply["event"] == "app_data", reply
    assert reply["data"] == "echo BYE" and reply["peer"] == nated.node_id


async def test_nated_peer_relays_through_a_turn_server_found_in_the_overlay(
    overlay: Overlay, tmp_path: Path
) -> None:
    """§9: a public peer that runs a TURN server (coturn, shared-secret credentials)
    records it under TURN-SERVICE; a NATed peer finds it with Find on random Resource-IDs.
    A peer that joins behind another NAT, which drops all UDP between the two NATs, can
    then only reach it through its relayed candidate: for the ring's link and for an
    AppAttach."""
    topo = overlay.topo
    secret = "overlay-turn-secret"
    await start_turn(topo, tmp_path, secret=secret)
    first = await overlay.start(topo.inet, f"{PUBLIC_PEER}:0")
    operator = await overlay.start(topo.inet, f"{PUBLIC_PEER}:0", first.address)
    nated = await overlay.start(topo.lan1, "10.1.0.2:0", first.address, "--turn-secret", secret)
    await overlay.until(lambda: not overlay.ring_errors([first, operator, nated]), 30)

    await operator.command(cmd="advertise_turn", address=f"{TURN_SERVER}:3478")
    assert (await operator.reply())["count"] == 3
    await nated.command(cmd="find_turn")
    assert (await nated.reply(30))["servers"] == [f"{TURN_SERVER}:3478"]

    topo.block_peer_to_peer()  # from now on nat1 and nat2 drop UDP between each other
    other = await overlay.start(topo.lan2, "10.2.0.2:0", first.address, "--turn-secret", secret)
    everyone = [first, operator, nated, other]
    await overlay.until(lambda: not overlay.ring_errors(everyone), 40)

    await nated.command(cmd="links")
    links = {link["peer"]: link for link in (await nated.reply())["links"]}
    assert links[other.node_id]["local_type"] == "relay"
    assert links[other.node_id]["remote"][0] == NAT2_WAN

    await nated.command(cmd="app_attach", node_id=other.node_id, application=5060, payload="INVITE")
    reply = await nated.reply(40)
    assert reply["event"] == "app_data", reply
    assert reply["data"] == "echo INVITE" and reply["peer"] == other.node_id
    assert reply["local_type"] == "relay"

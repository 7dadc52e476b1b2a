"""A RELOAD peer that Attaches with ICE, run in a network namespace by the NAT overlay
tests. Events on stdout (JSON lines), commands on stdin.

Events: ``started`` (address, node_id), ``state`` and ``neighbors`` (on every change),
``connection`` (peer, up, link type, remote address), ``pong``/``ping_failed``,
``app_open``/``app_data``/``app_failed``.
Commands: ``ping`` (node_id), ``app_attach`` (node_id, application, payload),
``links`` (-> ``links`` event), ``advertise_turn`` (address), ``find_turn`` (the TURN
Server Usage, §9; a server found is used for relayed candidates), ``leave``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from reload_core.links.dtls import DtlsAppConnection, DtlsLink
from reload_core.links.tls import OverlayTrust, TlsCredentials
from reload_core.node import Node, NodeSettings, tls_transport
from reload_core.node.attach_ice import install_ice
from reload_core.node.events import ConnectionChanged, NeighborsChanged, NodeEvent, StateChanged
from reload_core.security.certificates import load_certificate, load_private_key_file
from reload_core.security.signing import CertificateResolver, Signer
from reload_core.storage import KindRegistry, Storage
from reload_core.topology.config import ChordConfig
from reload_core.usages.turn import TURN_SERVICE_KIND, TurnCredentials, TurnService, use_overlay_turn
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination


def emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def address(text: str) -> IpAddressPort:
    host, _, port = text.rpartition(":")
    return IpAddressPort(host, int(port))


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--overlay", default="ice.test.example")
    p.add_argument("--listen", type=address, required=True)
    p.add_argument("--bootstrap", type=address, help="join through this peer (else: the first peer)")
    p.add_argument("--update-interval", type=float, default=1.0)
    p.add_argument("--turn-secret", help="shared secret of the overlay's TURN servers")
    args = p.parse_args()
    if os.environ.get("ICE_PEER_DEBUG"):
        logging.basicConfig(
            level=logging.DEBUG, filename=f"{os.environ['ICE_PEER_DEBUG']}/node-{os.getpid()}.log"
        )

    key = load_private_key_file(args.key)
    cert = load_certificate(Path(args.cert).read_bytes())
    root = load_certificate(Path(args.root).read_bytes())
    signer = Signer.create(key, cert)
    credentials = TlsCredentials(key, cert)
    trust = OverlayTrust(args.overlay, root_certs=(root,))
    settings = NodeSettings(
        overlay_name=args.overlay,
        overlay_reliability_timer=1.0,
        chord=ChordConfig(update_interval=args.update_interval, ping_interval=3600.0),
        bootstrap_nodes=(args.bootstrap,) if args.bootstrap else (),
    )
    node = Node(
        signer, CertificateResolver(args.overlay, roots=(root,)), settings, tls_transport(credentials, trust)
    )
    ice = install_ice(node, credentials, trust)
    storage = Storage.for_peer(
        node,
        CertificateResolver(args.overlay, roots=(root,)),
        KindRegistry([TURN_SERVICE_KIND]),
        publish_certificate=False,
    )
    turn = TurnService(storage.client, turn_density=3)
    turn_credentials = TurnCredentials(shared_secret=args.turn_secret)

    def on_event(event: NodeEvent) -> None:
        if isinstance(event, StateChanged):
            emit(event="state", state=event.state)
        elif isinstance(event, NeighborsChanged):
            emit(
                event="neighbors",
                successors=[n.hex() for n in event.successors],
                predecessors=[n.hex() for n in event.predecessors],
            )
        elif isinstance(event, ConnectionChanged):
            links = node.connections.links_to(event.node_id)
            emit(
                event="connection",
                peer=event.node_id.hex(),
                up=event.up,
                types=[type(link).__name__ for link in links],
            )

    node.add_listener(on_event)
    bound = await node.start(args.listen)
    emit(event="started", address=f"{bound.addr}:{bound.port}", node_id=node.node_id.hex())
    if args.bootstrap is None:
        node.start_alone()
    else:
        await node.join([args.bootstrap], timeout=30.0)

    def app_opened(conn: DtlsAppConnection) -> None:
        async def echo() -> None:
            while True:
                try:
                    data = await conn.recv()
                except Exception:
                    return
                conn.send(b"echo " + data)

        asyncio.get_running_loop().create_task(echo())

    ice.register_application(5060, app_opened)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        name = cmd["cmd"]
        if name == "ping":
            try:
                await node.request(
                    NodeDestination(bytes.fromhex(cmd["node_id"])), MessageCode.ping_req, PingReq()
                )
                emit(event="pong", node_id=cmd["node_id"])
            except Exception as exc:
                emit(event="ping_failed", node_id=cmd["node_id"], detail=str(exc))
        elif name == "links":
            out = []
            for link in ice.dtls.links:
                if isinstance(link, DtlsLink) and link.is_open and link.remote_node_id is not None:
                    channel = link.channel
                    out.append(
                        {
                            "peer": link.remote_node_id.hex(),
                            "remote": list(link.remote_address or ()),
                            "local_type": getattr(channel, "local_type", None),
                            "remote_type": getattr(channel, "remote_type", None),
                        }
                    )
            emit(event="links", links=out, stun_groups=len(ice.stun_servers.groups()))
        elif name == "app_attach":
            try:
                conn = await ice.app_attach(bytes.fromhex(cmd["node_id"]), cmd.get("application", 5060))
                conn.send(cmd["payload"].encode())
                reply = await asyncio.wait_for(conn.recv(), 10)
                emit(
                    event="app_data",
                    data=reply.decode(),
                    peer=(conn.remote_node_id or b"").hex(),
                    local_type=getattr(conn.channel, "local_type", None),
                    remote_type=getattr(conn.channel, "remote_type", None),
                )
                conn.close()
            except Exception as exc:
                emit(event="app_failed", detail=f"{type(exc).__name__}: {exc}")
        elif name == "advertise_turn":
            stored = await turn.advertise(address(cmd["address"]))
            emit(event="advertised", count=len(stored))
        elif name == "find_turn":
            chosen = await use_overlay_turn(turn, ice, turn_credentials, attempts=30)
            emit(event="turn", servers=[f"{chosen.address[0]}:{chosen.address[1]}"] if chosen else [])
        elif name == "leave":
            await node.leave()
            break
    await node.close()
    await ice.wait_closed()
    emit(event="bye")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

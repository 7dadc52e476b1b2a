"""One end of an ICE + DTLS connection, run in a network namespace by the NAT tests.

It talks JSON lines: events on stdout, commands on stdin. The test process carries the
ICE parameters between the two ends, as the overlay carries them in Attach/AppAttach.

    --mode link   DTLS/UDP with SR (a RELOAD overlay link, §6.6.4)
    --mode app    an application's DTLS connection (AppAttach, §6.5.2)
    --mode stun   only a STUN server (StunResponder) at --listen
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

from reload_core.links.base import CloseReason, Link, LinkNotOpenError
from reload_core.links.dtls import DtlsAppConnection, DtlsEndpoint, DtlsLink
from reload_core.links.ice import IceConfig, IceConnection, IceError, StunResponder, TurnRelay
from reload_core.links.tls import OverlayTrust, TlsCredentials
from reload_core.security.certificates import load_certificate, load_private_key_file
from reload_core.wire.buffer import Reader, Writer
from reload_core.wire.link_methods import IceCandidate
from reload_core.wire.message import ForwardingHeader


def emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def encode_candidates(candidates: tuple[IceCandidate, ...]) -> list[str]:
    out = []
    for c in candidates:
        w = Writer()
        c.encode(w)
        out.append(w.data().hex())
    return out


def decode_candidates(items: list[str]) -> list[IceCandidate]:
    return [IceCandidate.decode(Reader(bytes.fromhex(h))) for h in items]


class Handler:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.suspects: list[bool] = []
        self.changed = asyncio.Event()
        self.closed: CloseReason | None = None

    def link_opened(self, link: Link) -> None:
        self.changed.set()

    def message_received(self, link: Link, message: bytes) -> None:
        self.received.append(message.decode())
        self.changed.set()

    def message_too_large(self, link: Link, header: ForwardingHeader, length: int) -> None:
        pass

    def link_suspect(self, link: Link, suspect: bool) -> None:
        self.suspects.append(suspect)

    def link_closed(self, link: Link, reason: CloseReason) -> None:
        self.closed = reason
        self.changed.set()


async def commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def next_command(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await reader.readline()
    if not line:
        raise SystemExit(0)
    cmd: dict[str, Any] = json.loads(line)
    return cmd


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["link", "app", "stun"], required=True)
    p.add_argument("--listen", type=address)
    p.add_argument("--role", choices=["offerer", "answerer"])
    p.add_argument("--key")
    p.add_argument("--cert")
    p.add_argument("--root")
    p.add_argument("--overlay", default="ice.test.example")
    p.add_argument("--expect", help="Node-ID (hex) the peer's certificate must carry")
    p.add_argument("--stun", type=address, action="append", default=[])
    p.add_argument("--turn", type=address)
    p.add_argument("--turn-user", default="")
    p.add_argument("--turn-pass", default="")
    p.add_argument("--connect-timeout", type=float, default=10.0)
    args = p.parse_args()
    if os.environ.get("ICE_PEER_DEBUG"):  # a directory for per-process debug logs
        logging.basicConfig(
            level=logging.DEBUG, filename=f"{os.environ['ICE_PEER_DEBUG']}/ice-peer-{os.getpid()}.log"
        )

    if args.mode == "stun":
        responder = await StunResponder.start(*args.listen)
        emit(event="listening", address=list(responder.address))
        await asyncio.Event().wait()
        return

    credentials = TlsCredentials(
        load_private_key_file(args.key), load_certificate(Path(args.cert).read_bytes())
    )
    trust = OverlayTrust(args.overlay, root_certs=(load_certificate(Path(args.root).read_bytes()),))
    turn = TurnRelay(args.turn, args.turn_user, args.turn_pass) if args.turn else None
    config = IceConfig(
        stun_servers=tuple(args.stun), turn=turn, connect_timeout=args.connect_timeout, use_ipv6=False
    )
    reader = await commands()
    handler = Handler()
    endpoint = DtlsEndpoint(credentials, trust, handler)
    offerer = args.role == "offerer"
    ice = IceConnection(controlling=offerer, config=config)
    candidates = await ice.gather()
    emit(
        event="params",
        ufrag=ice.ufrag.decode(),
        password=ice.password.decode(),
        candidates=encode_candidates(candidates),
        types=[c.type.name for c in candidates],
        reflexive={f"{k[0]}:{k[1]}": list(v) for k, v in ice.reflexive.items()},
    )
    cmd = await next_command(reader)
    assert cmd["cmd"] == "connect", cmd
    try:
        await ice.connect(
            cmd["ufrag"].encode(), cmd["password"].encode(), decode_candidates(cmd["candidates"])
        )
    except IceError as exc:
        emit(event="ice_failed", detail=str(exc))
        await ice.aclose()
        return
    emit(
        event="ice",
        local_type=ice.local_type,
        remote_type=ice.remote_type,
        remote_address=list(ice.remote_address or ()),
        rtt=ice.rtt,
    )
    expected = bytes.fromhex(args.expect)
    link: DtlsLink | None = None
    app: DtlsAppConnection | None = None
    app_received: list[str] = []
    if args.mode == "link":
        link = endpoint.open_link(ice, server_side=offerer, expected_node_id=expected)
        try:
            await asyncio.wait_for(link.wait_open(), 15)
        except Exception:
            reason = link.close_reason
            emit(
                event="closed",
                code=reason.code.name if reason else "?",
                detail=reason.detail if reason else "",
            )
            await ice.wait_closed()
            return
        emit(event="open", peer=(link.remote_node_id or b"").hex(), rtt=link.rtt, rto=link.rto)
    else:
        app = endpoint.open_app(ice, server_side=offerer, expected_node_id=expected, application=5060)
        try:
            await asyncio.wait_for(app.wait_open(), 15)
        except Exception:
            reason = app.close_reason
            emit(
                event="closed",
                code=reason.code.name if reason else "?",
                detail=reason.detail if reason else "",
            )
            await ice.wait_closed()
            return
        emit(event="open", peer=(app.remote_node_id or b"").hex())

        async def receive() -> None:
            assert app is not None
            while True:
                try:
                    data = await app.recv()
                except Exception:
                    return
                app_received.append(data.decode())
                handler.changed.set()

        asyncio.get_running_loop().create_task(receive())

    while True:
        cmd = await next_command(reader)
        name = cmd["cmd"]
        if name == "send":
            for i in range(cmd["count"]):
                text = f"{cmd['prefix']} {i:04d}".ljust(cmd.get("size", 0), ".")
                if link is not None:
                    link.send(text.encode())
                else:
                    assert app is not None
                    app.send(text.encode())
            emit(event="sent", count=cmd["count"])
        elif name == "wait_received":
            got = handler.received if link is not None else app_received

            async def enough(got: list[str] = got, want: int = cmd["distinct"]) -> None:
                while len(set(got)) < want:
                    handler.changed.clear()
                    await handler.changed.wait()

            try:
                await asyncio.wait_for(enough(), cmd.get("timeout", 30))
                if link is not None:  # and ours all acknowledged, for the counts below
                    await asyncio.wait_for(link.wait_sent(), cmd.get("timeout", 30))
            except (TimeoutError, LinkNotOpenError):
                pass
            report: dict[str, Any] = {"received": got, "suspects": handler.suspects}
            if link is not None:
                report.update(
                    messages_sent=link.messages_sent,
                    data_frames_sent=link.data_frames_sent,
                    open=link.is_open,
                    closed=str(link.close_reason) if link.close_reason else None,
                    rto=link.rto,
                )
            emit(event="report", **report)
        elif name == "close":
            if link is not None:
                link.close()
            if app is not None:
                app.close()
            await ice.wait_closed()
            emit(event="bye")
            return


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

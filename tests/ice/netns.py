"""The NAT lab of :mod:`app.bench.nat_lab` for the tests, and the peer processes they run in it."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from app.bench.nat_lab import (
    LAN1_HOST,
    LAN2_HOST,
    NAT1_WAN,
    NAT2_WAN,
    PUBLIC_PEER,
    TURN_SERVER,
    Topology,
    TurnUnavailable,
    new_topology,
    unavailable_reason,
)


async def start_turn(topo: Topology, directory: Path, **auth: Any) -> None:
    try:
        await topo.start_turn(directory, **auth)
    except TurnUnavailable as exc:
        pytest.skip(str(exc))


async def python_peer(topo: Topology, namespace: str, script: Path, *args: str) -> PeerProcess:
    proc = await topo.spawn(
        namespace,
        [sys.executable, str(script), *args],
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return PeerProcess(proc, namespace)


class PeerProcess:
    """A test program in a namespace that talks JSON lines on stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, namespace: str) -> None:
        self.proc = proc
        self.namespace = namespace
        self.log: list[dict[str, Any]] = []

    async def command(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def event(self, kind: str, timeout: float = 20.0) -> dict[str, Any]:
        """The next event of ``kind`` (earlier events of other kinds are kept in ``log``)."""
        assert self.proc.stdout is not None

        async def read() -> dict[str, Any]:
            assert self.proc.stdout is not None
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(
                        f"peer in {self.namespace} exited; events {self.log}; stderr: {await self.stderr()}"
                    )
                event: dict[str, Any] = json.loads(line)
                self.log.append(event)
                if event.get("event") == "error":
                    raise RuntimeError(f"peer in {self.namespace}: {event.get('detail')}")
                if event.get("event") == kind:
                    return event

        return await asyncio.wait_for(read(), timeout)

    async def stderr(self) -> str:
        if self.proc.stderr is None:
            return ""
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 1)
            except TimeoutError:
                return "(still running)"
        return (await self.proc.stderr.read()).decode(errors="replace")[-3000:]


__all__ = [
    "LAN1_HOST",
    "LAN2_HOST",
    "NAT1_WAN",
    "NAT2_WAN",
    "PUBLIC_PEER",
    "TURN_SERVER",
    "PeerProcess",
    "Topology",
    "new_topology",
    "python_peer",
    "start_turn",
    "unavailable_reason",
]

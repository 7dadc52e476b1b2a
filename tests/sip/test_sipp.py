"""Our UA against sipp, an independent SIP implementation (Debian sip-tester 3.6.1): its
built-in ``uac`` and ``uas`` scenarios both ways over UDP (``-t u1``) and TCP (``-t t1``),
a CANCEL before answer (tests/sip/scenarios/uac_cancel.xml), and 100 calls in a row.
sipp's exit status 0 means every call succeeded; its error log (``-trace_err``) lists any
message it did not expect, and must stay empty."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from app.sip.aio import PlainTransports, UserAgent, open_plain_transports
from app.sip.events import CallEnded, EndReason, IncomingCall, UaEvent
from app.sip.ua import UaConfig
from app.sip.uri import SipUri

from .sipp import SCENARIOS, Sipp, SippResult, free_port, requires_sipp, sipp_runner, wait_bound

pytestmark = [pytest.mark.multinode, requires_sipp]

SIPP_T = {"udp": "u1", "tcp": "t1"}


class Ours:
    def __init__(self, ua: UserAgent, net: PlainTransports) -> None:
        self.ua = ua
        self.net = net
        self.events: list[UaEvent] = []
        ua.add_listener(self.events.append)

    def address(self, kind: str) -> str:
        host, port = (self.net.udp if kind == "udp" else self.net.tcp).local_address
        return f"{host}:{port}"

    def ended(self) -> list[CallEnded]:
        return [e for e in self.events if isinstance(e, CallEnded)]


@pytest_asyncio.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    async with sipp_runner(tmp_path) as runner:
        yield runner


@pytest_asyncio.fixture
async def ours() -> AsyncIterator[Ours]:
    ua = UserAgent(UaConfig(SipUri("sip", "alice", None, "example.org")), auto_answer=True)
    net = await open_plain_transports(ua)
    try:
        yield Ours(ua, net)
    finally:
        await ua.close()
        await net.close()


def assert_clean(result: SippResult, calls: int) -> None:
    detail = (
        f"rc={result.returncode}\n{result.error_log[-2000:]}\n{result.stdout[-1500:]}\n{result.stderr[-500:]}"
    )
    assert result.returncode == 0, detail
    assert result.error_log.strip() == "", detail
    assert result.stat("SuccessfulCall(C)") == calls, detail
    assert result.stat("FailedCall(C)") == 0, detail


@pytest.mark.parametrize("kind", ["udp", "tcp"])
async def test_sipp_uac_calls_us(sipp: Sipp, ours: Ours, kind: str) -> None:
    result = await sipp.run(
        "-sn", "uac", ours.address(kind), "-t", SIPP_T[kind], "-s", "alice",
        "-p", str(free_port(socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)),
        "-m", "3", "-r", "10", "-d", "200",
    )  # fmt: skip
    assert_clean(result, 3)
    await _settle(ours, 3)
    assert [e.reason for e in ours.ended()] == [EndReason.REMOTE_HANGUP] * 3
    incoming = [e for e in ours.events if isinstance(e, IncomingCall)]
    assert len(incoming) == 3 and all(e.identity.user == "sipp@127.0.0.1" for e in incoming)


@pytest.mark.parametrize("kind", ["udp", "tcp"])
async def test_we_call_sipp_uas(sipp: Sipp, ours: Ours, kind: str) -> None:
    port = free_port(socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    proc, run = await sipp.start("-sn", "uas", "-t", SIPP_T[kind], "-p", str(port), "-m", "2")
    target = f"sip:service@127.0.0.1:{port}" + (";transport=tcp" if kind == "tcp" else "")
    await wait_bound(port, kind)
    for _ in range(2):
        call = await ours.ua.call(target)
        answered = await call.wait_answered(10)
        assert answered.sdp is not None and b"m=audio" in answered.sdp
        await asyncio.sleep(0.1)
        call.hangup()
        assert (await call.wait_ended(10)).reason is EndReason.LOCAL_HANGUP
    result = await sipp.finish(proc, run)
    assert_clean(result, 2)


async def test_sipp_cancels_before_answer(sipp: Sipp, ours: Ours) -> None:
    ours.ua.auto_answer = False
    result = await sipp.run(
        "-sf", str(SCENARIOS / "uac_cancel.xml"), ours.address("udp"), "-s", "alice",
        "-p", str(free_port()), "-m", "2", "-r", "5",
    )  # fmt: skip
    assert_clean(result, 2)
    await _settle(ours, 2)
    assert [(e.reason, e.status) for e in ours.ended()] == [(EndReason.REMOTE_CANCEL, 487)] * 2
    # The 487 was ACKed on its transaction: nothing left retransmitting.
    assert all(tx.state.name in ("CONFIRMED", "TERMINATED", "COMPLETED") for tx in ours.ua.core.transactions)


@pytest.mark.parametrize("kind", ["udp", "tcp"])
async def test_sipp_100_calls_in_a_row(sipp: Sipp, ours: Ours, kind: str) -> None:
    result = await sipp.run(
        "-sn", "uac", ours.address(kind), "-t", SIPP_T[kind], "-s", "alice",
        "-p", str(free_port(socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)),
        "-m", "100", "-r", "50", "-l", "20", "-d", "50",
        timeout_s=120,
    )  # fmt: skip
    assert_clean(result, 100)
    await _settle(ours, 100)
    assert len(ours.ended()) == 100
    assert all(e.reason is EndReason.REMOTE_HANGUP for e in ours.ended())
    assert max(ours.ua.core.tu_requests.values()) == 1


async def _settle(ours: Ours, calls: int, timeout: float = 10) -> None:
    """Until our side has seen ``calls`` calls end (sipp may exit before our last event)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(ours.ended()) < calls:
        remaining = end - loop.time()
        if remaining <= 0:
            raise AssertionError(f"{len(ours.ended())} of {calls} calls ended")
        await ours.ua.wait_for(lambda e: isinstance(e, CallEnded), remaining)

"""``p2psip phone --sip-listen udp:127.0.0.1:PORT`` against independent SIP phones:
sipp (Debian sip-tester 3.6.1) and linphonec (Debian linphone-cli 5.1).

sipp does no ICE or DTLS, so with media on no audio flows, but signalling completes: an
INVITE offering DTLS-SRTP (tests/phone/scenarios/uac_dtls_srtp.xml) gets 200 with an
answer in kind, then ACK, BYE, 200; a classic RTP/AVP offer gets 488 (the phone's media
is always ICE + DTLS-SRTP). With ``--no-media`` the phone answers with its static SDP, so
sipp's built-in ``uac`` (RTP/AVP) call completes and a DTLS-SRTP offer gets 488. linphonec calls the phone and is called
by it, both reaching connected and ending cleanly on both sides (the audio itself is the
audio tests' business). The phones' profile is of an operator's overlay whose bootstrap
peer runs too; the plain SIP endpoint listens on 127.0.0.1.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.phone.linphone import Linphone, requires_linphonec
from tests.phone.processes import EnrolledOverlay, PhoneProcess, PhoneProcesses, history
from tests.sip.sipp import Sipp, SippResult, free_port, requires_sipp, sipp_runner

pytestmark = [pytest.mark.multinode]

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest_asyncio.fixture
async def overlay(tmp_path: Path) -> AsyncIterator[EnrolledOverlay]:
    made = EnrolledOverlay(tmp_path)
    try:
        await made.start()
        yield made
    finally:
        await made.close()


@pytest_asyncio.fixture
async def group() -> AsyncIterator[PhoneProcesses]:
    made = PhoneProcesses()
    try:
        yield made
    finally:
        await made.close()


@pytest_asyncio.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    async with sipp_runner(tmp_path) as runner:
        yield runner


async def listening_phone(
    overlay: EnrolledOverlay, group: PhoneProcesses, user: str, *args: str
) -> tuple[PhoneProcess, int]:
    port = free_port(socket.SOCK_DGRAM)
    phone = await group.start(
        overlay.profile(user), "--sip-listen", f"udp:127.0.0.1:{port}", *args, label=user
    )
    ready = await phone.ready()
    assert ready["sip_listen"] == f"udp:127.0.0.1:{port}", ready
    return phone, port


def assert_clean(result: SippResult, calls: int) -> None:
    detail = (
        f"rc={result.returncode}\n{result.error_log[-2000:]}\n{result.stdout[-1500:]}\n{result.stderr[-500:]}"
    )
    assert result.returncode == 0, detail
    assert result.error_log.strip() == "", detail
    assert result.stat("SuccessfulCall(C)") == calls, detail
    assert result.stat("FailedCall(C)") == 0, detail


async def sipp_calls(phone: PhoneProcess, calls: int) -> list[dict[str, object]]:
    """The phone's side of sipp's calls: each ringing, connected, ended by sipp's BYE."""
    ends = []
    for _ in range(calls):
        new = await phone.expect("CallStateChanged", lambda e: e["previous"] is None)
        assert (new["direction"], new["peer"], new["verified"]) == ("incoming", "sip:sipp@127.0.0.1", False)
        await phone.call_state("connected", lambda e, n=new["call"]: e["call"] == n)
        ends.append(await phone.call_state("ended", lambda e, n=new["call"]: e["call"] == n))
    return ends


@requires_sipp
async def test_sipp_calls_with_media_on(overlay: EnrolledOverlay, group: PhoneProcesses, sipp: Sipp) -> None:
    phone, port = await listening_phone(overlay, group, "alice", "--auto-answer")
    # A DTLS-SRTP offer: 200 with a DTLS-SRTP answer (fingerprint, ICE, a DTLS role), ACK, BYE.
    result = await sipp.run(
        "-sf", str(SCENARIOS / "uac_dtls_srtp.xml"), f"127.0.0.1:{port}", "-s", "alice",
        "-p", str(free_port()), "-m", "2", "-r", "2", "-l", "1",  # one at a time: a second would hold the first
    )  # fmt: skip
    assert_clean(result, 2)
    ends = await sipp_calls(phone, 2)
    assert [(e["cause"], e["words"]) for e in ends] == [("remote hung up", "sipp hung up")] * 2

    # A plain RTP/AVP offer: 488, ACKed; the phone tells what it refused.
    result = await sipp.run(
        "-sf", str(SCENARIOS / "uac_plain_rtp_488.xml"), f"127.0.0.1:{port}", "-s", "alice",
        "-p", str(free_port()), "-m", "1",
    )  # fmt: skip
    assert_clean(result, 1)
    refused = await phone.expect(
        "CallStateChanged", lambda e: e["state"] == "ended" and e["sip_status"] == 488
    )
    assert refused["peer"] == "sip:sipp@127.0.0.1"
    entries = await history(phone.profile)
    assert [h["peer_aor"] for h in entries] == ["sip:sipp@127.0.0.1"] * 3
    assert [h["answered"] is not None for h in entries] == [False, True, True]


@requires_sipp
async def test_sipp_calls_without_media(overlay: EnrolledOverlay, group: PhoneProcesses, sipp: Sipp) -> None:
    phone, port = await listening_phone(overlay, group, "bob", "--auto-answer", "--no-media")
    # sipp's built-in uac: a plain RTP/AVP offer, answered by the static SDP session.
    result = await sipp.run(
        "-sn", "uac", f"127.0.0.1:{port}", "-s", "bob", "-p", str(free_port()),
        "-m", "2", "-r", "5", "-l", "1", "-d", "200",
    )  # fmt: skip
    assert_clean(result, 2)
    ends = await sipp_calls(phone, 2)
    assert [e["cause"] for e in ends] == ["remote hung up"] * 2
    # Without media it cannot take a DTLS-SRTP offer: 488, ACKed.
    result = await sipp.run(
        "-sf", str(SCENARIOS / "uac_dtls_srtp_488.xml"), f"127.0.0.1:{port}", "-s", "bob",
        "-p", str(free_port()), "-m", "1",
    )  # fmt: skip
    assert_clean(result, 1)
    refused = await phone.expect(
        "CallStateChanged", lambda e: e["state"] == "ended" and e["sip_status"] == 488
    )
    assert refused["peer"] == "sip:sipp@127.0.0.1"


@requires_linphonec
async def test_linphonec_calls_the_phone_and_is_called(
    overlay: EnrolledOverlay, group: PhoneProcesses, tmp_path: Path
) -> None:
    phone, port = await listening_phone(overlay, group, "carol")
    lin_port = free_port(socket.SOCK_DGRAM)
    linphone = await Linphone.start(tmp_path / "linphone", lin_port, free_port(socket.SOCK_DGRAM, even=True))
    try:
        await linphone.expect(r"Using wav files instead of soundcard")

        # linphonec calls; the phone rings and answers.
        await linphone.send(f"call sip:carol@127.0.0.1:{port}")
        new = await phone.expect("CallStateChanged", lambda e: e["previous"] is None)
        assert new["direction"] == "incoming" and new["state"] == "ringing" and new["verified"] is False
        await linphone.expect(r"Call \d+ to sip:carol@127\.0\.0\.1:\d+ ringing")
        await phone.send(f"answer {new['call']}")
        await phone.call_state("connected", lambda e: e["call"] == new["call"])
        await linphone.expect(r"Call \d+ with sip:carol@127\.0\.0\.1:\d+ connected")
        await linphone.send("terminate")
        ended = await phone.call_state("ended", lambda e: e["call"] == new["call"])
        assert ended["cause"] == "remote hung up"
        await linphone.expect(r"Call \d+ with sip:carol@127\.0\.0\.1:\d+ ended")

        # The phone calls linphonec, which answers by itself; the phone hangs up.
        await linphone.send("autoanswer enable")
        await linphone.expect("Auto answer enabled")
        await phone.send(f"call sip:linphone@127.0.0.1:{lin_port}")
        out = await phone.expect("CallStateChanged", lambda e: e["previous"] is None)
        assert out["direction"] == "outgoing"
        await phone.call_state("connected", lambda e: e["call"] == out["call"], timeout=60)
        await linphone.expect(r"Call \d+ with .* connected")
        await phone.send(f"hangup {out['call']}")
        ended = await phone.call_state("ended", lambda e: e["call"] == out["call"])
        assert (ended["cause"], ended["words"]) == ("hung up", "you hung up")
        await linphone.expect(r"Call \d+ with .* ended")
    finally:
        await linphone.close()
    entries = await history(phone.profile)
    assert [(h["direction"], h["answered"] is not None) for h in entries] == [
        ("outgoing", True),
        ("incoming", True),
    ]

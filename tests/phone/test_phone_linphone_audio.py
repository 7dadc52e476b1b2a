"""Call audio between ``p2psip phone`` and linphonec (Debian's linphone-cli 5.1), an
independent softphone: direct plain-SIP calls, DTLS-SRTP mandatory on linphone's side,
ICE on; placed from either side; each plays a tone file (440 Hz ours, 660 Hz theirs)
and records what it hears; the recordings are checked by FFT after the call.

ICE: aioice leaves loopback addresses out of its candidates, so both phones use this
machine's interface address: linphonec binds its SIP and RTP to it (``bind_address``),
and our phone listens for plain SIP on it (``--sip-listen udp:IFACE:0``).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from app.media.audio import SAMPLE_RATE, load_audio_file
from tests.media.session_support import interface_address_or_skip, tone_file
from tests.phone import linphone as linphone_module
from tests.phone.linphone import Linphone, requires_linphonec
from tests.phone.processes import EnrolledOverlay, PhoneProcess, PhoneProcesses

pytestmark = [pytest.mark.media, pytest.mark.multinode, requires_linphonec]

T = 40.0


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def strongest(path: Path) -> float:
    samples = load_audio_file(path).astype(np.float64)
    loud = np.flatnonzero(np.abs(samples) > 500)
    assert len(loud) > SAMPLE_RATE, f"{path.name}: less than a second of audio"
    x = samples[loud[0] : loud[-1]]
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(x))


@pytest_asyncio.fixture
async def setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, EnrolledOverlay, PhoneProcesses, Linphone]]:
    iface = interface_address_or_skip()
    monkeypatch.setattr(
        linphone_module, "RC", linphone_module.RC.replace("bind_address=127.0.0.1", f"bind_address={iface}")
    )
    overlay = EnrolledOverlay(tmp_path)
    group = PhoneProcesses()
    phone_linphone: Linphone | None = None
    try:
        await overlay.start()
        work = tmp_path / "linphone"
        work.mkdir()
        phone_linphone = await Linphone.start(work, free_udp_port(iface), free_udp_port(iface))
        yield iface, overlay, group, phone_linphone
    finally:
        if phone_linphone is not None and not phone_linphone._reader.done():  # the test may have closed it
            await phone_linphone.close()
        await group.close()
        await overlay.close()


async def ours(
    group: PhoneProcesses, overlay: EnrolledOverlay, iface: str, tmp_path: Path
) -> tuple[PhoneProcess, Path]:
    heard = tmp_path / "ours-heard.wav"
    tone = tone_file(tmp_path / "440.wav", 440.0)
    phone = await group.start(
        overlay.profile("alice"),
        "--sip-listen",
        f"udp:{iface}:0",
        "--auto-answer",
        "--play",
        str(tone),
        "--record",
        str(heard),
    )
    await phone.ready()
    return phone, heard


@pytest.mark.parametrize("caller", ["linphone", "ours"])
async def test_audio_both_ways_with_linphone(
    setup: tuple[str, EnrolledOverlay, PhoneProcesses, Linphone], tmp_path: Path, caller: str
) -> None:
    iface, overlay, group, lp = setup
    phone, heard = await ours(group, overlay, iface, tmp_path)
    listen = phone.info["sip_listen"]
    assert listen and listen.startswith(f"udp:{iface}:"), phone.info
    their_tone = tone_file(tmp_path / "660.wav", 660.0, rate=16000)
    their_heard = tmp_path / "linphone-heard.wav"
    await lp.send(f"play {their_tone}")
    await lp.send(f"record {their_heard}")
    if caller == "linphone":
        await lp.send(f"call sip:alice@{iface}:{listen.rsplit(':', 1)[1]}")
        connected = await phone.call_state("connected", timeout=T)
    else:
        await lp.send("autoanswer enable")
        await phone.send(f"call sip:linphone@{iface}:{lp.port}")
        connected = await phone.call_state("connected", timeout=T)
    await phone.expect("CallMedia", lambda e: e["what"] == "first-audio", timeout=T)
    await phone.expect("CallQuality", timeout=T)
    await phone.expect("CallQuality", timeout=T)  # a few seconds of audio both ways
    await phone.send(f"hangup {connected['call']}")
    await phone.call_state("ended", timeout=T)
    await phone.quit()
    await lp.close()  # its recording is complete once it quit
    found_ours = strongest(heard)
    found_theirs = strongest(their_heard)
    print(f"we heard {found_ours:.1f} Hz, linphone heard {found_theirs:.1f} Hz")
    assert abs(found_ours - 660.0) < 5
    assert abs(found_theirs - 440.0) < 5

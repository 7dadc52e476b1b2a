"""MediaSession against a phone the way linphone and baresip behave (NOTES.md): an
aiortc peer connection standing in for the phone, with what matters of theirs: an RSA
DTLS certificate (and a TLS stack that offers RSA and ECDSA suites), and its SDP
written their way (ICE credentials and fingerprint at session level; linphone: no
direction attribute, ``vad=off`` on an extmap; baresip: no a=mid or BUNDLE, a re-INVITE
after ICE). Audio must flow both ways: the phone's 440 Hz tone is recorded by us, our
660 Hz tone reaches the phone; the phone's hold stops our RTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCCertificate, SRTPProtectionProfile, generate_certificate
from cryptography.hazmat.primitives.asymmetric import rsa
from OpenSSL import SSL

from app.media.audio import SAMPLE_RATE, Samples, ToMono48k
from app.media.capture import FileSource, MicrophoneTrack
from app.media.events import DtlsConnected, FirstAudio
from app.media.sdp import SdpText, attr
from app.media.session import AudioOptions, MediaSession

from .session_support import Recording, interface_address_or_skip, tone_file

pytestmark = pytest.mark.media

T = 10.0


class RsaCertificate(RTCCertificate):
    """A DTLS identity with an RSA key, whose TLS stack offers RSA and ECDSA suites."""

    @classmethod
    def make(cls) -> RsaCertificate:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key=key, cert=generate_certificate(key))  # type: ignore[arg-type]

    def _create_ssl_context(self, srtp_profiles: list[SRTPProtectionProfile]) -> SSL.Context:
        ctx = super()._create_ssl_context(srtp_profiles)
        ctx.set_cipher_list(
            b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
            b"ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA"
        )
        return ctx


def _session_level(sdp: SdpText) -> None:
    """ICE credentials and the (first) fingerprint moved up to session level."""
    moved: list[str] = []
    for n, section in enumerate(sdp.media):
        keep = []
        for line in section:
            a = attr(line)
            if a is not None and a[0] in ("ice-ufrag", "ice-pwd", "fingerprint"):
                if not any(m.startswith(f"a={a[0]}") for m in moved):
                    moved.append(line)
            else:
                keep.append(line)
        sdp.media[n] = keep
    sdp.session.extend(moved)


def linphone_style(text: str) -> str:
    sdp = SdpText.parse(text)
    _session_level(sdp)
    sdp.media = [
        [
            (line + " vad=off" if line.startswith("a=extmap:") and "audio-level" in line else line)
            for line in section
            if line != "a=sendrecv"  # linphone writes no direction for sendrecv
        ]
        for section in sdp.media
    ]
    return sdp.text()


def baresip_style(text: str) -> str:
    sdp = SdpText.parse(text)
    _session_level(sdp)
    sdp.session = [line for line in sdp.session if not line.startswith("a=group:")]
    sdp.media = [[line for line in s if not line.startswith("a=mid:")] for s in sdp.media]
    return sdp.text()


def for_aiortc(answer: bytes) -> str:
    """Our answer as the stand-in phone's aiortc needs it (its offer had a mid)."""
    sdp = SdpText.parse(answer.decode())
    if not any(line.startswith("a=mid:") for line in sdp.media[0]):
        sdp.media[0].insert(1, "a=mid:0")
    if not any(line.startswith("a=group:BUNDLE") for line in sdp.session):
        sdp.session.append("a=group:BUNDLE 0")
    return sdp.text()


class Phone:
    def __init__(self, tone: Path, style: Callable[[str], str]) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc._RTCPeerConnection__certificates = [RsaCertificate.make()]  # type: ignore[attr-defined]
        self.transceiver = self.pc.addTransceiver(MicrophoneTrack(FileSource(tone)), direction="sendrecv")
        self.style = style
        self.heard: list[Samples] = []
        self._task: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        convert = ToMono48k()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for _, samples in convert.convert(frame):  # type: ignore[arg-type]
                self.heard.append(samples)

    async def offer(self, direction: str = "sendrecv") -> bytes:
        self.transceiver.direction = direction
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.style(self.pc.localDescription.sdp).encode()

    async def take_answer(self, answer: bytes) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(for_aiortc(answer), "answer"))

    async def close(self) -> None:
        await self.pc.close()
        if self._task is not None:
            self._task.cancel()


def dominant(samples: Samples) -> float:
    x = samples.astype(np.float64)
    return float(np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x))))) * SAMPLE_RATE / len(x))


@pytest.mark.parametrize("style", [linphone_style, baresip_style], ids=["linphone", "baresip"])
async def test_call_with_a_phone(tmp_path: Path, style: Callable[[str], str]) -> None:
    interface_address_or_skip()
    phone = Phone(tone_file(tmp_path / "phone.wav", 440.0), style)
    record = tmp_path / "heard.wav"
    us = MediaSession(
        audio=AudioOptions(play=tone_file(tmp_path / "us.wav", 660.0), record=record, use_devices=False)
    )
    try:
        offer = await phone.offer()
        if style is linphone_style:
            assert b"a=sendrecv" not in offer and b"vad=off" in offer
        else:
            assert b"a=mid:" not in offer
        answer = await us.answer(offer)
        assert isinstance(answer, bytes), answer
        await phone.take_answer(answer)
        await us.wait_event(DtlsConnected, T)
        # We are the DTLS server (a=setup:passive): with the phone as server, aiortc's
        # ECDSA-only client suites would meet an RSA certificate ("no shared cipher").
        assert us.receiver is not None and us.receiver.transport._role == "server"
        assert phone.transceiver.receiver.transport._role == "client"
        await us.wait_event(FirstAudio, T)
        await asyncio.sleep(0.6)

        # baresip's re-INVITE once ICE is done: the same streams offered again.
        answer = await us.answer(await phone.offer())
        assert isinstance(answer, bytes)
        await phone.take_answer(answer)
        await asyncio.sleep(0.6)
        heard_before_hold = len(phone.heard)
        assert heard_before_hold >= 40  # we send, though linphone's offer had no direction

        # The phone holds us: our RTP stops (aiortc alone would go on sending).
        answer = await us.answer(await phone.offer("sendonly"))
        assert isinstance(answer, bytes) and b"a=recvonly" in answer
        await phone.take_answer(answer)
        assert us.remote_hold
        settled = len(phone.heard)
        await asyncio.sleep(0.5)
        assert len(phone.heard) - settled <= 2
        answer = await us.answer(await phone.offer("sendrecv"))
        assert isinstance(answer, bytes) and b"a=sendrecv" in answer
        await phone.take_answer(answer)
        assert not us.remote_hold
        resumed = len(phone.heard)
        await asyncio.sleep(0.5)
        assert len(phone.heard) - resumed >= 15
    finally:
        await us.close()
        await phone.close()

    assert abs(dominant(np.concatenate(phone.heard[5:heard_before_hold])) - 660.0) <= 5.0
    heard = Recording.read(record)
    first, last = heard.span()
    assert abs(heard.frequency(first, last) - 440.0) <= 5.0

"""Two aiortc peer connections with an audio stream each way, connected over ICE on this
machine's interface address (aioice leaves loopback out), with telephone-event added to
their SDP and an :class:`RtpDtmfChannel` on each transceiver."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aioice.ice import get_host_addresses
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack

from app.media.dtmf_rtp import RtpDtmfChannel
from app.media.dtmf_sdp import add_to_answer, add_to_offer


def interface_address_or_skip() -> str:
    addresses = [a for a in get_host_addresses(use_ipv4=True, use_ipv6=False) if not a.startswith("127.")]
    if not addresses:
        pytest.skip("no non-loopback IPv4 interface address: ICE has no host candidate on this machine")
    return addresses[0]


@dataclass
class Side:
    pc: RTCPeerConnection
    transceiver: RTCRtpTransceiver
    channel: RtpDtmfChannel
    remote_track: asyncio.Future[MediaStreamTrack]


@dataclass
class Pair:
    caller: Side
    callee: Side
    offer: str
    answer: str

    async def close(self) -> None:
        for side in (self.caller, self.callee):
            side.channel.close()
            await side.pc.close()


async def connect_pair(
    *, codec: str | None = None, answer_telephone_event: bool = True, timeout: float = 20.0
) -> Pair:
    """``codec`` ("PCMU", "opus"...): the caller offers only it (then aiortc sends it)."""
    interface_address_or_skip()
    config = RTCConfiguration(iceServers=[])
    caller_pc, callee_pc = RTCPeerConnection(config), RTCPeerConnection(config)
    loop = asyncio.get_running_loop()
    tracks: dict[str, asyncio.Future[MediaStreamTrack]] = {
        "caller": loop.create_future(),
        "callee": loop.create_future(),
    }

    def track_handler(name: str):  # type: ignore[no-untyped-def]
        def on_track(track: MediaStreamTrack) -> None:
            if not tracks[name].done():
                tracks[name].set_result(track)

        return on_track

    caller_pc.on("track", track_handler("caller"))
    callee_pc.on("track", track_handler("callee"))
    try:
        caller_tr = caller_pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        if codec is not None:
            wanted = [
                c for c in RTCRtpSender.getCapabilities("audio").codecs if c.name.lower() == codec.lower()
            ]
            caller_tr.setCodecPreferences(wanted)
        caller_channel = RtpDtmfChannel(caller_tr)
        await caller_pc.setLocalDescription(await caller_pc.createOffer())
        offer = add_to_offer(caller_pc.localDescription.sdp)

        await callee_pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        callee_tr = callee_pc.getTransceivers()[0]
        callee_tr.sender.replaceTrack(AudioStreamTrack())
        callee_tr.direction = "sendrecv"
        callee_channel = RtpDtmfChannel(callee_tr)
        await callee_pc.setLocalDescription(await callee_pc.createAnswer())
        answer = callee_pc.localDescription.sdp
        if answer_telephone_event:
            answer = add_to_answer(offer, answer)
        await caller_pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        caller_channel.negotiate(offer, answer)
        callee_channel.negotiate(answer, offer)
        pair = Pair(
            Side(caller_pc, caller_tr, caller_channel, tracks["caller"]),
            Side(callee_pc, callee_tr, callee_channel, tracks["callee"]),
            offer,
            answer,
        )
    except BaseException:
        await caller_pc.close()
        await callee_pc.close()
        raise
    try:
        # Media flows both ways: each side has decoded a frame of the other's audio.
        for side in (pair.caller, pair.callee):
            track = await asyncio.wait_for(side.remote_track, timeout)
            await asyncio.wait_for(track.recv(), timeout)
    except BaseException:
        await pair.close()
        raise
    return pair

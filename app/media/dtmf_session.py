"""DTMF for one call's :class:`~app.media.session.MediaSession`: telephone-event in its
SDP (an SDP hook), RFC 4733 on its RTP stream, SIP INFO on its call.

::

    session = MediaSession(...)            # before the first offer or answer
    dtmf = SessionDtmf(session)
    ...                                    # once the SIP call exists:
    dtmf.attach_call(call, ua)
    await dtmf.send("123#")                # RFC 4733 if negotiated, else INFO
    dtmf.receiver.add_listener(print)      # DtmfStarted / DtmfReceived from either path
"""

from __future__ import annotations

from collections.abc import Callable

from app.media.dtmf_call import DtmfMethod, DtmfReceiver, DtmfSender
from app.media.dtmf_rtp import RtpDtmfChannel
from app.media.dtmf_sdp import add_to_answer, add_to_offer
from app.media.sdp import trim_local
from app.media.session import MediaSession
from app.sip.aio import Call, UserAgent


class SessionDtmf:
    """RFC 4733 and SIP INFO DTMF on ``session`` (registered as one of its ``sdp_hooks``).

    Our offers carry a telephone-event format per audio clock rate and our answers the
    offer's that go with the answered codecs (:mod:`app.media.dtmf_sdp`); after each
    offer/answer the channel learns the payload types. :attr:`sender` picks RFC 4733 or
    INFO per digit, :attr:`receiver` tells the digits that came either way.
    """

    def __init__(self, session: MediaSession, *, duration: float = 0.1) -> None:
        self.session = session
        self.channel = RtpDtmfChannel(self._send_clock_rate)
        self.receiver = DtmfReceiver()
        self.receiver.attach_rtp(self.channel)
        self.sender = DtmfSender(rtp=self.channel, duration=duration)
        self._local: str | None = None
        self._remote: str | None = None
        self._unlisten: Callable[[], None] | None = None
        session.sdp_hooks.append(self)

    def attach_call(self, call: Call, ua: UserAgent) -> None:
        """The SIP call of this session: INFO goes out on it, and its INFO requests with
        DTMF bodies are taken as digits."""
        self.sender.call = call
        self.receiver.call_ref = call.ref
        if self._unlisten is not None:
            self._unlisten()
        self._unlisten = ua.add_listener(self.receiver.on_sip_event)

    async def send(self, digits: str, *, duration: float | None = None) -> list[DtmfMethod]:
        return await self.sender.send(digits, duration=duration)

    def close(self) -> None:
        self.channel.close()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self in self.session.sdp_hooks:
            self.session.sdp_hooks.remove(self)

    def _send_clock_rate(self) -> int | None:
        codecs = self.session.codecs
        return int(codecs[0].clockRate) if codecs else None

    # --- the SdpHook protocol of MediaSession --------------------------------------------------

    def remote_sdp(self, sdp: str) -> str:
        self._remote = sdp
        self._renegotiate()
        return sdp

    def local_sdp(self, sdp: str) -> str:
        pc = self.session.peer_connection
        if pc is not None and pc.signalingState == "have-local-offer":
            text = add_to_offer(sdp)
        elif self._remote is not None:
            text = add_to_answer(self._remote, sdp)  # our answer to the offer just seen
        else:
            text = sdp
        if text != sdp and len(text.encode()) > self.session.sdp_budget:
            text = _trim(text, self.session.sdp_budget)
        self._local = text
        self._renegotiate()
        return text

    def _renegotiate(self) -> None:
        if self.session.rtp is not None:
            self.channel.bind(self.session.rtp)
        if self._local is not None and self._remote is not None:
            self.channel.negotiate(self._local, self._remote)


def _trim(sdp: str, budget: int) -> str:
    """The session trimmed its SDP to ``budget`` before the hooks ran: trim again (its
    least useful candidates go) now that telephone-event made it longer, keeping the
    o= line as it is."""
    origin = next((line.split() for line in sdp.splitlines() if line.startswith("o=")), [])
    if len(origin) < 3 or not origin[1].isdigit() or not origin[2].isdigit():
        return sdp
    return trim_local(sdp, session_id=int(origin[1]), version=int(origin[2]), budget=budget)

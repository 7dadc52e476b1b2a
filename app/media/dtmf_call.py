"""DTMF on a call: RFC 4733 telephone-events when the far end negotiated them for the
audio we send, SIP INFO (RFC 6086, legacy ``application/dtmf-relay``) when it did not.

:class:`DtmfSender` picks the path for each digit at the time it is sent (a re-INVITE
may have changed the codecs); :class:`DtmfReceiver` takes digits from both paths and tells
its listeners with frozen :class:`DtmfStarted` / :class:`DtmfReceived` events.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from app.media.dtmf import (
    DEFAULT_VOLUME,
    DTMF_EVENTS,
    DTMF_PLAIN,
    DTMF_RELAY,
    DtmfError,
    ToneChange,
    ToneEnded,
    ToneStarted,
    decode_dtmf_relay,
    digit_for_event,
    encode_dtmf_relay,
    event_for_digit,
)
from app.media.dtmf_rtp import RtpDtmfChannel
from app.sip.events import InfoReceived, UaEvent
from app.sip.message import SipResponse

log = logging.getLogger(__name__)


class DtmfMethod(enum.Enum):
    RFC4733 = "rfc4733"  # telephone-event packets in the media stream
    SIP_INFO = "sip-info"  # INFO requests in the call's dialog


@dataclass(frozen=True)
class DtmfStarted:
    """A key went down at the far end (RFC 4733 only: INFO tells a key once, whole)."""

    digit: str


@dataclass(frozen=True)
class DtmfReceived:
    """A whole key press from the far end; ``duration_ms`` None when INFO did not say."""

    digit: str
    duration_ms: int | None
    method: DtmfMethod


DtmfEvent: TypeAlias = DtmfStarted | DtmfReceived
DtmfListener: TypeAlias = Callable[[DtmfEvent], None]


class InfoSender(Protocol):
    """What the sender needs of a SIP call (app.sip.aio.Call has it)."""

    async def send_info(
        self, body: bytes, content_type: str, *, info_package: str | None = None, timeout: float | None = None
    ) -> SipResponse: ...


class DtmfSender:
    """Sends digits on one call, by RFC 4733 when :meth:`method` says so, else by INFO.

    ``duration`` is each tone's length in seconds; INFO requests are sent one after the
    other, each after the answer to the one before, so the far end gets them in order.
    """

    def __init__(
        self,
        *,
        rtp: RtpDtmfChannel | None = None,
        call: InfoSender | None = None,
        duration: float = 0.1,
        volume: int = DEFAULT_VOLUME,
        info_timeout: float = 10.0,
    ) -> None:
        self.rtp = rtp
        self.call = call
        self.duration = duration
        self.volume = volume
        self.info_timeout = info_timeout
        self._lock = asyncio.Lock()

    def method(self, digit: str = "0") -> DtmfMethod | None:
        """The path ``digit`` would take now (None: no media channel nor SIP call)."""
        event = event_for_digit(digit)
        if self.rtp is not None and self.rtp.can_send(event):
            return DtmfMethod.RFC4733
        if self.call is not None:
            return DtmfMethod.SIP_INFO
        return None

    async def send(self, digits: str, *, duration: float | None = None) -> list[DtmfMethod]:
        """Send ``digits`` (0-9 * # A-D, ! for flash) in order; returns the path each took.
        DtmfError for a character that is not a digit (nothing is sent then) or when
        there is no path or the far end refused an INFO."""
        events = [event_for_digit(d) for d in digits]
        seconds = self.duration if duration is None else duration
        used: list[DtmfMethod] = []
        async with self._lock:
            for digit, event in zip(digits, events, strict=True):
                method = self.method(digit)
                if method is DtmfMethod.RFC4733:
                    assert self.rtp is not None
                    self.rtp.send(event, seconds, volume=self.volume)
                elif method is DtmfMethod.SIP_INFO:
                    assert self.call is not None
                    if self.rtp is not None:
                        await self.rtp.drain()  # keep the order across a change of path
                    await self._info(digit, seconds)
                else:
                    raise DtmfError("no way to send DTMF on this call")
                used.append(method)
            if self.rtp is not None:
                await self.rtp.drain()
        return used

    async def _info(self, digit: str, seconds: float) -> None:
        assert self.call is not None
        body = encode_dtmf_relay(digit, round(seconds * 1000))
        response = await self.call.send_info(body, DTMF_RELAY, timeout=self.info_timeout)
        if not 200 <= response.status < 300:
            raise DtmfError(f"INFO for {digit!r} refused: {response.status} {response.reason}")


class DtmfReceiver:
    """Digits from the far end, from an :class:`RtpDtmfChannel` (:meth:`attach_rtp`) and
    from the INFO requests of one call (:meth:`on_sip_event`, a UA listener). Keeps the
    digits received in :attr:`digits` and tells every listener."""

    def __init__(self, call_ref: int | None = None) -> None:
        self.call_ref = call_ref
        self.digits: list[DtmfReceived] = []
        self._listeners: list[DtmfListener] = []
        self._waiters: list[asyncio.Future[DtmfReceived]] = []

    def add_listener(self, listener: DtmfListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def attach_rtp(self, channel: RtpDtmfChannel) -> None:
        channel.on_tone = self.on_tone

    def on_tone(self, change: ToneChange, clock_rate: int) -> None:
        """A change from an :class:`~app.media.dtmf.Rfc4733Receiver` (units at ``clock_rate``)."""
        digit = digit_for_event(change.event)
        if digit is None or change.event not in DTMF_EVENTS:
            return
        if isinstance(change, ToneStarted):
            self._tell(DtmfStarted(digit))
        elif isinstance(change, ToneEnded):
            self._got(DtmfReceived(digit, round(change.duration * 1000 / clock_rate), DtmfMethod.RFC4733))

    def on_sip_event(self, event: UaEvent) -> None:
        """A UA event: INFO requests of our call with a DTMF body become digits."""
        if not isinstance(event, InfoReceived):
            return
        if self.call_ref is not None and event.call != self.call_ref:
            return
        kind = (event.content_type or "").split(";", 1)[0].strip().lower()
        if kind not in (DTMF_RELAY, DTMF_PLAIN):
            return
        try:
            digit, duration = decode_dtmf_relay(event.body, event.content_type)
        except DtmfError as exc:
            log.info("INFO with an unreadable DTMF body dropped: %s", exc)
            return
        self._got(DtmfReceived(digit, duration, DtmfMethod.SIP_INFO))

    async def next_digit(self, timeout: float | None = None) -> DtmfReceived:
        """The next digit received from now on."""
        future: asyncio.Future[DtmfReceived] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            if future in self._waiters:
                self._waiters.remove(future)

    def _got(self, received: DtmfReceived) -> None:
        self.digits.append(received)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(received)
        self._waiters.clear()
        self._tell(received)

    def _tell(self, event: DtmfEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("DTMF listener failed")

"""One call of the phone, as the user and the GUI see it: :class:`PhoneCall`.

It wraps the SIP call (:class:`app.sip.aio.Call`) of whichever user agent carries it
(the overlay's, or the plain SIP endpoint's) with the call's state machine
(:class:`~app.phone.calls.CallMachine`), the history record, and the words that say how
it ended. An outgoing call outlives its SIP calls: a 3xx from the callee (forwarding on
busy or no answer) ends one SIP call and the phone dials the new target under the same
:class:`PhoneCall` (RFC 3261 §8.1.3.4).

Durability: each change is written to the store first and told to the listeners after
(:meth:`PhoneCall._journal`): whatever the user was shown is on disk. The state itself
(:attr:`PhoneCall.state`) changes at once, so that the methods see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, runtime_checkable

from app.phone.calls import (
    ANSWERED_STATES,
    CallDirection,
    CallMachine,
    CallState,
    CallTrigger,
    EndCause,
    InvalidTransition,
)
from app.phone.events import CallRedirected, CallRemoteHold, CallStateChanged, PhoneEvent, TransferUpdate
from app.phone.store import AsyncPhoneStore, StoreError
from app.phone.store import CallDirection as HistoryDirection
from app.phone.targets import DialTarget, TargetError, TargetKind, parse_target
from app.phone.words import call_end_words, short_name, status_words, unreachable_words
from app.sip.aio import Call, CallError, UserAgent
from app.sip.errors import LocalProtocolError, SipError
from app.sip.events import (
    CallAnswered,
    CallEnded,
    CallRinging,
    EndReason,
    ReInviteReceived,
    RemoteIdentity,
    TransferProgress,
    UaEvent,
)
from app.sip.overlay import NotReachable
from app.sip.sdp import SdpError, SessionHandler, parse_sdp
from reload_core.usages.sip import Outcome

log = logging.getLogger("p2psip.phone")

REINVITE_TIMEOUT = 32.0
TRANSFER_TIMEOUT = 64.0
MAX_REDIRECTS = 5
"""3xx answers an outgoing call follows before it gives up (forwarding chains)."""


class CallActionError(Exception):
    """A call operation that cannot be done now (the message says why, for the user)."""


@runtime_checkable
class HoldableSession(Protocol):
    """A session handler that can hold (RFC 3264 §8.4): :class:`app.sip.sdp.StaticSdpSession`
    and the media layer's session both are."""

    def set_hold(self, hold: bool) -> None: ...

    @property
    def remote_hold(self) -> bool: ...


class CallHost(Protocol):
    """What a call needs from the phone (:class:`app.phone.service.Phone`)."""

    @property
    def domain(self) -> str: ...

    @property
    def store(self) -> AsyncPhoneStore: ...

    def emit(self, event: PhoneEvent) -> None: ...

    def spawn(self, coroutine: Coroutine[Any, Any, object]) -> asyncio.Task[object]: ...

    def display_name_of(self, aor: str) -> str: ...

    def bind(self, call: PhoneCall, ua: UserAgent, ref: int) -> None: ...

    def call_ended(self, call: PhoneCall) -> None: ...

    def presence_failed(self, aor: str) -> None: ...

    async def place(
        self, call: PhoneCall, target: DialTarget, session: SessionHandler
    ) -> tuple[UserAgent, Call]: ...

    async def hold_others(self, keep: PhoneCall) -> None: ...

    def new_session(self) -> SessionHandler: ...

    def trust(self, identity: RemoteIdentity) -> bool: ...

    def watch_connection(self, call: PhoneCall, identity: RemoteIdentity) -> None: ...


class PhoneCall:
    """A call (see the module docstring). Made by the phone; use its methods and
    :attr:`state`, and the :class:`~app.phone.events.CallStateChanged` events."""

    def __init__(
        self,
        host: CallHost,
        number: int,
        direction: CallDirection,
        peer: str,
        *,
        verified: bool,
        target: DialTarget | None = None,
        plain: bool = False,
    ) -> None:
        self._host = host
        self.id = number
        """The call's number in this run of the phone (events name calls by it)."""
        self.direction = direction
        self.peer = peer
        """The AoR at the other end: the one dialled, or the caller's identity."""
        self.verified = verified
        self.target = target
        self.dialled = target.uri if target is not None else peer
        self.plain = plain
        """Whether it runs over plain SIP (no overlay, identity unverified)."""
        self.history_id: int | None = None
        self.machine = CallMachine(direction, time.time())
        self.words = ""
        self.sip_status: int | None = None
        self.remote_held = False
        self.redirects: list[str] = []
        self.sip: Call | None = None
        self.ua: UserAgent | None = None
        self._announced = False
        self._tail: asyncio.Task[object] | None = None
        self._changed = asyncio.Event()
        self._pending: tuple[EndCause, str, int | None] | None = None
        self._missed: bool | None = None
        self._dial_task: asyncio.Task[object] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._transfer_target = ""
        self._answering = False

    def __repr__(self) -> str:
        return f"<PhoneCall {self.id} {self.direction.value} {self.peer} {self.state.value}>"

    # ---------------------------------------------------------------- what it is

    @property
    def state(self) -> CallState:
        return self.machine.state

    @property
    def live(self) -> bool:
        return self.machine.live

    @property
    def cause(self) -> EndCause | None:
        return self.machine.cause

    @property
    def name(self) -> str:
        """What to call the other end: the buddy's display name, else the user part of
        the current target (after a forward, the person it went to)."""
        aor = self.target.aor if self.target is not None else self.peer
        return self._host.display_name_of(aor) or short_name(aor)

    @property
    def started(self) -> float:
        return self.machine.started

    @property
    def answered(self) -> float | None:
        return self.machine.answered

    @property
    def ended(self) -> float | None:
        return self.machine.ended

    @property
    def duration(self) -> float:
        return self.machine.duration(time.time())

    async def wait_state(self, *states: CallState, timeout: float | None = None) -> CallState:
        """Until the call is in one of ``states`` (or has ended); returns the state."""
        async with asyncio.timeout(timeout):
            while self.state not in states and self.live:
                self._changed.clear()
                await self._changed.wait()
        return self.state

    async def wait_ended(self, timeout: float | None = None) -> EndCause:
        """Until the call has ended; its cause (:attr:`words` says it in words)."""
        await self.wait_state(CallState.ENDED, timeout=timeout)
        assert self.machine.cause is not None
        await self.settled()
        return self.machine.cause

    async def settled(self) -> None:
        """Until every change so far is stored and its event delivered."""
        while self._tail is not None and not self._tail.done():
            await asyncio.wait({self._tail})

    # ---------------------------------------------------------------- acting on it

    async def answer(self) -> None:
        """Answer an incoming call (other connected calls are put on hold first)."""
        if self.direction is not CallDirection.INCOMING:
            raise CallActionError("only an incoming call can be answered")
        if self.state is not CallState.RINGING or self.sip is None:
            raise CallActionError(f"the call is {self.state.value}, it cannot be answered")
        self._cancel_timers()
        await self._host.hold_others(self)
        if self.state is not CallState.RINGING:
            raise CallActionError(f"the call is {self.state.value}, it cannot be answered")
        self._answering = True
        try:
            await self.sip.answer()
        except (SipError, OSError) as exc:
            raise CallActionError(f"could not answer: {exc}") from None

    async def reject(self, *, busy: bool = False) -> None:
        """Refuse an incoming call that rings: 603 Decline, or 486 Busy Here."""
        if (
            self.direction is not CallDirection.INCOMING
            or self.state is not CallState.RINGING
            or self._answering
        ):
            raise CallActionError(f"the call is {self.state.value}: only a ringing incoming call is rejected")
        cause, words = (EndCause.BUSY, "you were busy") if busy else (EndCause.DECLINED, "you declined")
        self.refuse(486 if busy else 603, cause, words, missed=False)

    async def hangup(self) -> None:
        """End the call whatever its state: CANCEL an unanswered outgoing call, decline an
        incoming one that rings, BYE an answered one (RFC 3261 §9, §15)."""
        if not self.live:
            return
        self._cancel_timers()
        if self.direction is CallDirection.INCOMING and self.state is CallState.RINGING:
            if self._answering and self.sip is not None:
                # Our 2xx is out, its ACK not in yet: the UA sends BYE once it comes (§15).
                self._pending = (EndCause.HUNG_UP, "you hung up", None)
                self._act(self.sip.hangup)
                return
            self.refuse(603, EndCause.DECLINED, "you declined", missed=False)
            return
        if self.sip is None:
            # Still looking the callee up: stop that.
            self._pending = (EndCause.CANCELLED, "cancelled", None)
            if self._dial_task is not None:
                self._dial_task.cancel()
            else:
                self.end(EndCause.CANCELLED, "cancelled")
            return
        if self.state not in ANSWERED_STATES:
            self._pending = self._pending or (EndCause.CANCELLED, "cancelled", None)
        self._act(self.sip.hangup)

    def give_up(self, cause: EndCause, words: str) -> None:
        """End an unanswered outgoing call for our own reason (e.g. nobody answered in
        time): CANCEL it, and end it with ``cause``."""
        if not self.live:
            return
        self._pending = (cause, words, None)
        if self.sip is None:
            if self._dial_task is not None:
                self._dial_task.cancel()
            else:
                self.end(cause, words)
            return
        self._act(self.sip.hangup)

    async def hold(self) -> None:
        """Put a connected call on hold: a re-INVITE offering ``a=sendonly`` (RFC 3264 §8.4)."""
        if self.state is CallState.HELD:
            return
        if self.state is not CallState.CONNECTED:
            raise CallActionError(f"the call is {self.state.value}: only a connected call can be held")
        await self._reinvite(hold=True)
        self.apply(CallTrigger.HOLD)

    async def resume(self) -> None:
        """Take the call off hold (other connected calls are put on hold first)."""
        if self.state is CallState.CONNECTED:
            return
        if self.state is not CallState.HELD:
            raise CallActionError(f"the call is {self.state.value}: only a held call can be resumed")
        await self._host.hold_others(self)
        await self._reinvite(hold=False)
        self.apply(CallTrigger.RESUME)

    @property
    def muted(self) -> bool:
        """Whether we send silence in place of the microphone (calls with media)."""
        session = self.sip.session if self.sip is not None else None
        return bool(getattr(session, "muted", False))

    def set_muted(self, muted: bool) -> None:
        session = self.sip.session if self.sip is not None else None
        if not hasattr(session, "muted"):
            raise CallActionError("this call has no audio to mute")
        session.muted = muted  # type: ignore[union-attr]

    async def send_dtmf(self, digits: str) -> list[str]:
        """Send ``digits`` (0-9, *, #, A-D) on an answered call: RFC 4733 telephone-events
        in the media when the far end took them, else SIP INFO (RFC 6086) in the dialog
        (:class:`app.media.dtmf_session.SessionDtmf`; INFO only for calls without media).
        Returns the methods used, one per digit; :class:`CallActionError` when it cannot."""
        from app.media.dtmf import DtmfError
        from app.media.dtmf_call import DtmfSender

        if self.state not in (CallState.CONNECTED, CallState.HELD) or self.sip is None or self.ua is None:
            raise CallActionError(f"the call is {self.state.value}: digits go on an answered call")
        media = getattr(self._host, "media", None)
        audio = media.audio_of(self) if media is not None else None
        try:
            if audio is not None:
                used = await audio.send_dtmf(self, digits)
            else:
                used = await DtmfSender(call=self.sip).send(digits)
        except DtmfError as exc:
            raise CallActionError(str(exc)) from None
        except (OSError, TimeoutError, RuntimeError) as exc:
            raise CallActionError(f"the digits could not be sent: {exc or 'no answer'}") from None
        return [method.value for method in used]

    async def _reinvite(self, *, hold: bool) -> None:
        sip = self.sip
        assert sip is not None
        session = sip.session
        if not isinstance(session, HoldableSession):
            raise CallActionError("this call's media cannot be put on hold")
        session.set_hold(hold)
        what = "hold" if hold else "resume"
        try:
            result = await sip.reinvite(timeout=REINVITE_TIMEOUT)
        except (CallError, SipError, TimeoutError) as exc:
            session.set_hold(not hold)
            raise CallActionError(f"could not {what} the call: {exc or 'no answer'}") from None
        if result.status >= 300:
            session.set_hold(not hold)
            _, words = status_words(self.name, result.status)
            raise CallActionError(f"could not {what} the call: {words}")

    async def transfer(self, target: str, *, timeout: float = TRANSFER_TIMEOUT) -> TransferUpdate:
        """Blind transfer (RFC 3515): ask the far end to call ``target``; once it reports
        that call answered, our call ends ("transferred"). Raises
        :class:`CallActionError` with the reason when the transfer fails (our call then
        goes on)."""
        if self.state not in ANSWERED_STATES or self.sip is None:
            raise CallActionError(f"the call is {self.state.value}: only an answered call can be transferred")
        try:
            parsed = parse_target(target, domain=self._host.domain)
        except TargetError as exc:
            raise CallActionError(str(exc)) from None
        self._transfer_target = parsed.uri
        try:
            progress = await self.sip.refer(parsed.uri, timeout=timeout)
        except (CallError, SipError, TimeoutError) as exc:
            raise CallActionError(
                f"the transfer to {short_name(parsed.aor)} failed: {exc or 'no answer'}"
            ) from None
        update = TransferUpdate(self.id, parsed.uri, progress.status, progress.reason, True, time.time())
        if 200 <= progress.status < 300:
            who = self._host.display_name_of(parsed.aor) or short_name(parsed.aor)
            self._pending = (EndCause.TRANSFERRED, f"transferred to {who}", None)
            self._act(self.sip.hangup)
            return update
        _, words = status_words(short_name(parsed.aor), progress.status, progress.reason)
        raise CallActionError(f"the transfer failed: {words}")

    # ---------------------------------------------------------------- the phone's side

    def _act(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except LocalProtocolError as exc:  # the SIP call is gone already
            log.debug("call %d: %s", self.id, exc)

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        self._timers.append(asyncio.get_running_loop().call_later(delay, fn))

    def ring(self) -> None:
        """Tell the caller the user is being alerted: 180 Ringing (RFC 3261 §13.3.1.1)."""
        sip = self.sip
        if sip is not None:
            asyncio.get_running_loop().call_soon(self._act, sip.ring)

    def refuse(
        self,
        status: int,
        cause: EndCause,
        words: str,
        *,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        missed: bool | None = None,
    ) -> None:
        """End a ringing incoming call with ``status`` for our reason ``cause``."""
        self._cancel_timers()
        self._missed = missed
        self.end(cause, words, status)
        sip = self.sip
        if sip is not None:
            # Not from inside the UA's event dispatch: on the next turn of the loop.
            asyncio.get_running_loop().call_soon(
                self._act, lambda: sip.reject(status, reason=reason, headers=headers or ())
            )

    def dial(self, target: DialTarget) -> None:
        """Place (or re-place, after a redirect) the outgoing call to ``target``."""
        self.target = target
        self._dial_task = self._host.spawn(self._dial(target))

    async def _dial(self, target: DialTarget) -> None:
        name = self.name
        try:
            ua, sip = await self._host.place(self, target, self._host.new_session())
        except asyncio.CancelledError:
            cause, words, _ = self._pending or (EndCause.CANCELLED, "cancelled", None)
            self.end(cause, words)
            return
        except NotReachable as exc:
            outcome = exc.outcome
            found = outcome in (Outcome.REGISTERED, Outcome.GRUU)
            cause, words = unreachable_words(name, None if found else outcome, detail=exc.reason)
            log.info("call %d to %s: %s", self.id, target.uri, exc.reason)
            self._host.presence_failed(target.aor)
            self.end(cause, words)
            return
        except OfflineError as exc:
            self.end(EndCause.FAILED, str(exc))
            return
        except (CallError, SipError, OSError) as exc:
            log.info("call %d to %s failed: %s", self.id, target.uri, exc)
            self.end(EndCause.FAILED, f"could not call {name}: {exc}")
            return
        finally:
            self._dial_task = None
        self.sip, self.ua = sip, ua
        self._host.bind(self, ua, sip.ref)
        if not self.live or self._pending is not None:
            self._act(sip.hangup)

    def apply(
        self,
        trigger: CallTrigger,
        *,
        cause: EndCause | None = None,
        words: str = "",
        status: int | None = None,
    ) -> bool:
        """Take ``trigger``; journal and announce the change. False if the state does not
        take it (a late event: logged and dropped)."""
        now = time.time()
        try:
            transition = self.machine.apply(trigger, now, cause=cause)
        except InvalidTransition as exc:
            log.debug("call %d: %s", self.id, exc)
            return False
        if transition is None:
            return True
        if trigger is CallTrigger.ENDED:
            self.words = words
            self.sip_status = status
            self._cancel_timers()
            self._host.call_ended(self)
        self._changed.set()
        write: Callable[[], Awaitable[object]] | None = None
        if trigger is CallTrigger.ANSWERED:
            write = self._write_answered
        elif trigger is CallTrigger.ENDED:
            write = self._write_ended
        previous = transition.previous if self._announced else None
        self._journal(write, self._state_event(previous, now))
        return True

    def announce(self) -> None:
        """Tell the listeners about the call (stored first), as a new call."""
        self._journal(self._write_started, self._state_event(None, self.machine.started))

    def end(self, cause: EndCause, words: str, status: int | None = None) -> None:
        """End the call for ``cause``. A call never announced (refused as it came in) is
        stored and announced once, ended."""
        if not self.live:
            return
        if not self._announced:
            self._journal(self._write_started, None)
        self.apply(CallTrigger.ENDED, cause=cause, words=words, status=status)

    def _state_event(self, previous: CallState | None, now: float) -> CallStateChanged:
        self._announced = True
        return CallStateChanged(
            self.id,
            self.state,
            previous,
            self.direction,
            self.peer,
            self.name,
            self.verified,
            now,
            self.machine.cause,
            self.words,
            self.sip_status,
        )

    def _journal(self, write: Callable[[], Awaitable[object]] | None, event: PhoneEvent | None) -> None:
        previous = self._tail

        async def step() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            if write is not None:
                try:
                    await write()
                except (StoreError, ValueError) as exc:
                    log.error("call %d: the history could not be written: %s", self.id, exc)
            if event is not None:
                self._host.emit(event)

        self._tail = self._host.spawn(step())

    async def _write_started(self) -> None:
        direction = (
            HistoryDirection.INCOMING
            if self.direction is CallDirection.INCOMING
            else HistoryDirection.OUTGOING
        )
        record = await self._host.store.start_call(
            direction,
            self.peer,
            self._host.display_name_of(self.peer),
            verified=self.verified,
            now=self.machine.started,
        )
        self.history_id = record.id

    async def _write_answered(self) -> None:
        if self.history_id is not None:
            await self._host.store.answer_call(
                self.history_id, verified=self.verified, now=self.machine.answered
            )

    async def _write_ended(self) -> None:
        if self.history_id is None:
            return
        missed = (
            self._missed
            if self.direction is CallDirection.INCOMING and not self.machine.was_answered
            else None
        )
        outcome = self.words or (self.machine.cause.value if self.machine.cause else "")
        if self.redirects and self.target is not None:
            outcome = f"forwarded to {short_name(self.target.aor)}: {outcome}"
        await self._host.store.end_call(
            self.history_id,
            outcome=outcome,
            sip_status=self.sip_status,
            missed=missed,
            now=self.machine.ended,
        )

    # ---------------------------------------------------------------- SIP events

    def on_sip(self, event: UaEvent) -> None:
        """An event of the SIP call this call runs on."""
        if isinstance(event, CallRinging):
            self.verified = self._host.trust(event.identity)
            if self.direction is CallDirection.OUTGOING:
                self.apply(CallTrigger.RINGING)
        elif isinstance(event, CallAnswered):
            self.verified = self._host.trust(event.identity)
            if not self.plain:
                self._host.watch_connection(self, event.identity)
            if event.early:
                if self.direction is CallDirection.OUTGOING:
                    self.apply(CallTrigger.EARLY_MEDIA)
            else:
                self._cancel_timers()
                self.apply(CallTrigger.ANSWERED)
        elif isinstance(event, CallEnded):
            self._sip_ended(event)
        elif isinstance(event, ReInviteReceived):
            held = _offer_holds(event.offer)
            if held is not None and held != self.remote_held:
                self.remote_held = held
                self._journal(None, CallRemoteHold(self.id, held, time.time()))
        elif isinstance(event, TransferProgress):
            self._journal(
                None,
                TransferUpdate(
                    self.id, self._transfer_target, event.status, event.reason, event.final, time.time()
                ),
            )

    def _sip_ended(self, event: CallEnded) -> None:
        if not self.live:
            return
        if (
            event.reason is EndReason.REDIRECTED
            and self.direction is CallDirection.OUTGOING
            and self._pending is None
            and self.follow_redirect(event.contacts)
        ):
            return
        if self._pending is not None:
            cause, words, status = self._pending
            self.end(cause, words, status if status is not None else event.status)
            return
        cause, words = call_end_words(
            self.name, event.reason, event.status, event.phrase, answered=self.machine.was_answered
        )
        if (
            self.direction is CallDirection.OUTGOING
            and not self.machine.was_answered
            and cause not in (EndCause.CANCELLED, EndCause.BUSY, EndCause.DECLINED)
            and self.target is not None
        ):
            self._host.presence_failed(self.target.aor)
        self.end(cause, words, event.status)

    def follow_redirect(self, contacts: tuple[str, ...]) -> bool:
        """Dial the first new target of a 3xx; False when there is none to follow."""
        seen = {self.dialled, *self.redirects}
        for contact in contacts:
            try:
                target = parse_target(contact, domain=self._host.domain)
            except TargetError:
                continue
            if target.uri in seen or (target.aor == self.peer and target.kind is TargetKind.AOR):
                continue
            if len(self.redirects) >= MAX_REDIRECTS:
                self.end(EndCause.UNREACHABLE, f"{self.name}'s calls are forwarded too many times")
                return True
            self.redirects.append(target.uri)
            self.sip = None
            self.apply(CallTrigger.REDIRECTED)
            self._journal(None, CallRedirected(self.id, target.uri, time.time()))
            self.dial(target)
            return True
        return False


class OfflineError(Exception):
    """The phone is not on the overlay (the message says why)."""


def _offer_holds(offer: bytes | None) -> bool | None:
    """Whether an SDP offer puts us on hold (sendonly or inactive, RFC 3264 §8.4)."""
    if offer is None:
        return None
    try:
        sdp = parse_sdp(offer)
    except SdpError:
        return None
    for m in sdp.media:
        if m.port == 0:
            continue
        direction = m.direction
        if direction == "sendrecv" and sdp.session_direction is not None:
            direction = sdp.session_direction
        return direction in ("sendonly", "inactive")
    return None


__all__ = ["CallActionError", "CallHost", "HoldableSession", "OfflineError", "PhoneCall"]

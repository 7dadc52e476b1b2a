"""A phone call's life as an explicit state machine (pure: no I/O, time passed in).

States (:class:`CallState`) as the user sees them::

    DIALING ──ringing──▶ RINGING ──early media──▶ EARLY_MEDIA
       │  ▲                 │                          │
       │  └──redirected─────┴──────────────────────────┤
       └────────────answered──────┬────────────────────┘
                                  ▼
                              CONNECTED ◀──resume── HELD
                                  └──────hold──────▶
    any state but ENDED ──ended──▶ ENDED (with an :class:`EndCause`)

An outgoing call starts DIALING (the callee is being looked up, connected to and
INVITEd); a 180 makes it RINGING, a 183 with an SDP answer EARLY_MEDIA (RFC 3261
§13.2.2.1; RFC 3264 answer in a provisional response), a 2xx CONNECTED. A 3xx (RFC 3261
§8.1.3.4; the callee forwards on busy or no answer) takes it back to DIALING towards the
new target. An incoming call starts RINGING (the user is alerted) and our 2xx makes it
CONNECTED. HELD is *our* hold (a re-INVITE offering ``a=sendonly``, RFC 3264 §8.4); the
far end holding us is a flag of the call, not a state.

:data:`TRANSITIONS` is the whole table; :meth:`CallMachine.apply` refuses anything not in
it with :class:`InvalidTransition`, so a bug shows as an error instead of a call in a
state nobody designed. Entries that map a state to itself (a second 180 from another
fork) are allowed and report no change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class CallState(StrEnum):
    DIALING = "dialing"
    RINGING = "ringing"
    EARLY_MEDIA = "early media"
    CONNECTED = "connected"
    HELD = "held"
    ENDED = "ended"


class CallDirection(StrEnum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


class CallTrigger(StrEnum):
    """What happened to the call."""

    RINGING = "ringing"  # 180 (outgoing)
    EARLY_MEDIA = "early media"  # 183 with an SDP answer (outgoing)
    ANSWERED = "answered"  # 2xx received (outgoing) or our 2xx ACKed/sent (incoming)
    REDIRECTED = "redirected"  # 3xx followed to a new target (outgoing)
    HOLD = "hold"  # our re-INVITE with a=sendonly/inactive succeeded
    RESUME = "resume"  # our re-INVITE with a=sendrecv succeeded
    ENDED = "ended"


class EndCause(StrEnum):
    """Why a call ended, in categories the words (:mod:`app.phone.words`) and the history
    are made from."""

    HUNG_UP = "hung up"  # we ended an answered call
    REMOTE_HUNG_UP = "remote hung up"  # they ended an answered call
    CANCELLED = "cancelled"  # we gave up an outgoing call before an answer
    MISSED = "missed"  # the caller gave up before we answered
    DECLINED = "declined"  # 603 (they declined, or we did)
    BUSY = "busy"  # 486 / 600
    NO_ANSWER = "no answer"  # nobody answered in time (408, our ring timeout)
    NOT_ONLINE = "not online"  # the AoR has no registration (or its device is gone)
    NOT_ON_OVERLAY = "not on this overlay"  # the name cannot exist here (domain, syntax)
    UNREACHABLE = "unreachable"  # registered, but no connection could be made
    DO_NOT_DISTURB = "do not disturb"  # 480 with a do-not-disturb reason, or ours
    UNAVAILABLE = "unavailable"  # 480 for another reason
    FORWARDED = "forwarded"  # we sent an incoming call elsewhere (302)
    TRANSFERRED = "transferred"  # we handed the call over with REFER
    ANSWERED_ELSEWHERE = "answered elsewhere"  # another device of ours took it
    INCOMPATIBLE = "incompatible"  # 488 / 606: no media in common
    REFUSED = "refused"  # another 4xx-6xx
    CONNECTION_LOST = "connection lost"  # transport failure, no ACK, dialog gone
    FAILED = "failed"  # a local failure (the overlay went away, a bug)
    PHONE_CLOSED = "phone closed"  # sign-out ended the call


class InvalidTransition(Exception):
    """A trigger the call's state does not take (a bug on our side, never the peer's)."""

    def __init__(self, state: CallState, trigger: CallTrigger) -> None:
        super().__init__(f"a call that is {state.value} cannot take {trigger.value!r}")
        self.state = state
        self.trigger = trigger


def _table() -> dict[tuple[CallState, CallTrigger], CallState]:
    s, t = CallState, CallTrigger
    table: dict[tuple[CallState, CallTrigger], CallState] = {
        (s.DIALING, t.RINGING): s.RINGING,
        (s.DIALING, t.EARLY_MEDIA): s.EARLY_MEDIA,
        (s.DIALING, t.ANSWERED): s.CONNECTED,
        (s.DIALING, t.REDIRECTED): s.DIALING,
        (s.RINGING, t.RINGING): s.RINGING,
        (s.RINGING, t.EARLY_MEDIA): s.EARLY_MEDIA,
        (s.RINGING, t.ANSWERED): s.CONNECTED,
        (s.RINGING, t.REDIRECTED): s.DIALING,
        (s.EARLY_MEDIA, t.RINGING): s.EARLY_MEDIA,
        (s.EARLY_MEDIA, t.EARLY_MEDIA): s.EARLY_MEDIA,
        (s.EARLY_MEDIA, t.ANSWERED): s.CONNECTED,
        (s.EARLY_MEDIA, t.REDIRECTED): s.DIALING,
        (s.CONNECTED, t.HOLD): s.HELD,
        (s.CONNECTED, t.RESUME): s.CONNECTED,
        (s.HELD, t.RESUME): s.CONNECTED,
        (s.HELD, t.HOLD): s.HELD,
    }
    for state in CallState:
        if state is not s.ENDED:
            table[(state, t.ENDED)] = s.ENDED
    return table


TRANSITIONS: Final[Mapping[tuple[CallState, CallTrigger], CallState]] = MappingProxyType(_table())
"""(state, trigger) -> next state: every transition a call can make."""

LIVE_STATES: Final = frozenset(s for s in CallState if s is not CallState.ENDED)
ANSWERED_STATES: Final = frozenset({CallState.CONNECTED, CallState.HELD})


def next_state(state: CallState, trigger: CallTrigger) -> CallState:
    """The state ``trigger`` leads to from ``state``; :class:`InvalidTransition` if none."""
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise InvalidTransition(state, trigger) from None


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a call's state (``previous`` None: the call began)."""

    previous: CallState | None
    state: CallState
    trigger: CallTrigger | None
    time: float


@dataclass
class CallMachine:
    """One call's state, its times, and every transition it made."""

    direction: CallDirection
    started: float
    state: CallState = field(init=False)
    answered: float | None = None
    ended: float | None = None
    cause: EndCause | None = None
    transitions: list[Transition] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = CallState.DIALING if self.direction is CallDirection.OUTGOING else CallState.RINGING
        self.transitions.append(Transition(None, self.state, None, self.started))

    @property
    def live(self) -> bool:
        return self.state is not CallState.ENDED

    @property
    def was_answered(self) -> bool:
        return self.answered is not None

    def can(self, trigger: CallTrigger) -> bool:
        return (self.state, trigger) in TRANSITIONS

    def apply(self, trigger: CallTrigger, now: float, *, cause: EndCause | None = None) -> Transition | None:
        """Take ``trigger`` at time ``now``: the :class:`Transition` made, or None when the
        state stays as it was (a self-loop of the table). ENDED needs a ``cause``.
        Raises :class:`InvalidTransition` for a trigger the state does not take."""
        new = next_state(self.state, trigger)
        if trigger is CallTrigger.ENDED:
            if cause is None:
                raise ValueError("a call ends with a cause")
            self.cause = cause
            self.ended = now
        if trigger is CallTrigger.ANSWERED and self.answered is None:
            self.answered = now
        if trigger is CallTrigger.REDIRECTED:
            # A new target: whatever rang before does not ring now.
            transition = Transition(self.state, new, trigger, now)
            self.state = new
            self.transitions.append(transition)
            return transition
        if new is self.state:
            return None
        transition = Transition(self.state, new, trigger, now)
        self.state = new
        self.transitions.append(transition)
        return transition

    def duration(self, now: float | None = None) -> float:
        """Seconds talked: from the answer to the end (or ``now``); 0 if never answered."""
        if self.answered is None:
            return 0.0
        end = self.ended if self.ended is not None else now
        return max(0.0, (end if end is not None else self.answered) - self.answered)


__all__ = [
    "ANSWERED_STATES",
    "LIVE_STATES",
    "TRANSITIONS",
    "CallDirection",
    "CallMachine",
    "CallState",
    "CallTrigger",
    "EndCause",
    "InvalidTransition",
    "Transition",
    "next_state",
]

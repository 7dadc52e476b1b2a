"""The call state machine: the whole transition table, and calls walked through it."""

from __future__ import annotations

import pytest

from app.phone.calls import (
    TRANSITIONS,
    CallDirection,
    CallMachine,
    CallState,
    CallTrigger,
    EndCause,
    InvalidTransition,
    next_state,
)

S, T = CallState, CallTrigger

EXPECTED = {
    (S.DIALING, T.RINGING): S.RINGING,
    (S.DIALING, T.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.DIALING, T.ANSWERED): S.CONNECTED,
    (S.DIALING, T.REDIRECTED): S.DIALING,
    (S.DIALING, T.ENDED): S.ENDED,
    (S.RINGING, T.RINGING): S.RINGING,
    (S.RINGING, T.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.RINGING, T.ANSWERED): S.CONNECTED,
    (S.RINGING, T.REDIRECTED): S.DIALING,
    (S.RINGING, T.ENDED): S.ENDED,
    (S.EARLY_MEDIA, T.RINGING): S.EARLY_MEDIA,
    (S.EARLY_MEDIA, T.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.EARLY_MEDIA, T.ANSWERED): S.CONNECTED,
    (S.EARLY_MEDIA, T.REDIRECTED): S.DIALING,
    (S.EARLY_MEDIA, T.ENDED): S.ENDED,
    (S.CONNECTED, T.HOLD): S.HELD,
    (S.CONNECTED, T.RESUME): S.CONNECTED,
    (S.CONNECTED, T.ENDED): S.ENDED,
    (S.HELD, T.RESUME): S.CONNECTED,
    (S.HELD, T.HOLD): S.HELD,
    (S.HELD, T.ENDED): S.ENDED,
}


def test_the_table_is_exactly_this() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize("state", list(CallState))
@pytest.mark.parametrize("trigger", list(CallTrigger))
def test_every_pair_is_in_the_table_or_refused(state: CallState, trigger: CallTrigger) -> None:
    if (state, trigger) in EXPECTED:
        assert next_state(state, trigger) is EXPECTED[(state, trigger)]
    else:
        with pytest.raises(InvalidTransition) as info:
            next_state(state, trigger)
        assert info.value.state is state and info.value.trigger is trigger


def test_nothing_leaves_ended_and_nothing_holds_before_an_answer() -> None:
    assert not [k for k in TRANSITIONS if k[0] is S.ENDED]
    for state in (S.DIALING, S.RINGING, S.EARLY_MEDIA):
        assert (state, T.HOLD) not in TRANSITIONS


def test_an_outgoing_call_rings_gets_early_media_is_answered_held_and_ends() -> None:
    call = CallMachine(CallDirection.OUTGOING, started=100.0)
    assert call.state is S.DIALING
    t = call.apply(T.RINGING, 101.0)
    assert t is not None and (t.previous, t.state) == (S.DIALING, S.RINGING)
    assert call.apply(T.RINGING, 101.5) is None  # a second 180 (another fork): no change
    assert call.apply(T.EARLY_MEDIA, 102.0) is not None
    assert call.apply(T.ANSWERED, 103.0) is not None
    assert call.answered == 103.0
    assert call.apply(T.HOLD, 110.0) is not None and call.state is S.HELD
    assert call.apply(T.RESUME, 111.0) is not None and call.state is S.CONNECTED
    with pytest.raises(ValueError):
        call.apply(T.ENDED, 120.0)  # an end needs a cause
    assert call.state is S.CONNECTED
    end = call.apply(T.ENDED, 133.0, cause=EndCause.REMOTE_HUNG_UP)
    assert end is not None and end.state is S.ENDED
    assert call.cause is EndCause.REMOTE_HUNG_UP and call.ended == 133.0
    assert call.duration() == 30.0
    assert [x.state for x in call.transitions] == [
        S.DIALING,
        S.RINGING,
        S.EARLY_MEDIA,
        S.CONNECTED,
        S.HELD,
        S.CONNECTED,
        S.ENDED,
    ]
    with pytest.raises(InvalidTransition):
        call.apply(T.ANSWERED, 134.0)


def test_a_redirect_goes_back_to_dialing_and_is_recorded() -> None:
    call = CallMachine(CallDirection.OUTGOING, started=0.0)
    call.apply(T.RINGING, 1.0)
    t = call.apply(T.REDIRECTED, 2.0)
    assert t is not None and (t.previous, t.state) == (S.RINGING, S.DIALING)
    again = call.apply(T.REDIRECTED, 2.5)  # redirected again before ringing: still recorded
    assert again is not None and again.previous is S.DIALING
    call.apply(T.ANSWERED, 3.0)
    assert call.state is S.CONNECTED


def test_an_incoming_call_starts_ringing_and_unanswered_has_no_duration() -> None:
    call = CallMachine(CallDirection.INCOMING, started=50.0)
    assert call.state is S.RINGING and call.live
    with pytest.raises(InvalidTransition):
        call.apply(T.HOLD, 51.0)
    call.apply(T.ENDED, 60.0, cause=EndCause.MISSED)
    assert not call.live and call.duration() == 0.0 and not call.was_answered

"""The first call's media stack loads beside the call, not before it (issue 14:
dial to ringing ≤ 300 ms with a lazily loaded stack; :mod:`app.phone.media_stack`).

- A callee whose stack is still loading has already sent its 180: the caller rings
  while the callee's loader is held, and the call connects with media once it is let go.
- A call's session handler made before the stack is in keeps what was set on it (mute,
  hold) for the media session it builds later, and one closed first builds nothing.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.media.sdp import audio_direction
from app.media.session import MediaSession
from app.phone.calls import CallState
from app.phone.media import MediaKit
from app.phone.media_stack import MODULES, DeferredSession, MediaStack
from app.phone.store import Settings
from app.sip.aio import CallError

from .phone_lab import WAIT, PhoneLab

pytestmark = pytest.mark.media


async def test_callee_rings_before_its_media_stack_is_loaded(lab: PhoneLab) -> None:
    alice = await lab.open("alice", media=True, use_devices=False)
    bob = await lab.open("bob", media=True, use_devices=False)
    assert bob.media is not None
    gate = threading.Event()
    imported = threading.Event()

    def held_import() -> None:  # the real import, in the loader's worker thread, once let go
        gate.wait(WAIT)
        for name in MODULES:
            __import__(name)
        imported.set()

    bob.media.stack = MediaStack(importer=held_import)
    try:
        call = await alice.call("bob")
        assert await call.wait_state(CallState.RINGING, timeout=WAIT) is CallState.RINGING, call.words
        incoming = await bob.next_incoming_call(WAIT)
        assert not imported.is_set() and not bob.media.stack.loaded
        assert bob.media.audio_of(incoming) is None  # no media session yet
        gate.set()
        await incoming.answer()
        assert await call.wait_state(CallState.CONNECTED, timeout=WAIT) is CallState.CONNECTED, call.words
        assert bob.media.stack.loaded
        audio = bob.media.audio_of(incoming)
        assert audio is not None and isinstance(audio.session, MediaSession)
        await call.hangup()
        assert await incoming.wait_state(CallState.ENDED, timeout=WAIT) is CallState.ENDED
    finally:
        gate.set()


async def test_deferred_session_keeps_mute_and_hold() -> None:
    kit = MediaKit(Settings(), use_devices=False)
    handler = kit.session_factory()
    assert isinstance(handler, DeferredSession) and handler.inner is None
    handler.muted = True
    handler.set_hold(True)
    assert handler.muted and not handler.remote_hold
    offer = await handler.make_offer()
    inner = handler.inner
    assert isinstance(inner, MediaSession)
    assert inner.muted and inner.hold_requested
    assert audio_direction(offer.decode()) == "sendonly"
    handler.muted = False
    assert not inner.muted
    await handler.close()
    assert inner.closed


async def test_deferred_session_closed_first_builds_nothing() -> None:
    kit = MediaKit(Settings(), use_devices=False)
    handler = kit.session_factory()
    assert isinstance(handler, DeferredSession)
    await handler.close()
    with pytest.raises(RuntimeError, match="ended before its media started"):
        await handler.make_offer()
    assert handler.inner is None


async def test_a_stack_that_cannot_load_fails_the_call_with_words() -> None:
    def broken() -> None:
        raise ImportError("No module named 'av'")

    handler = DeferredSession(MediaStack(importer=broken), lambda _: pytest.fail("built without a stack"))
    with pytest.raises(CallError, match="the call's audio cannot start: No module named 'av'"):
        await handler.make_offer()
    assert handler.inner is None


async def test_stack_load_runs_once_and_reports_when_loaded() -> None:
    runs: list[str] = []
    stack = MediaStack(importer=lambda: runs.append(threading.current_thread().name))
    told: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    stack.when_loaded(lambda: told.set_result(stack.loaded))
    first, second = stack.load(), stack.load()
    assert first is second
    assert await asyncio.wait_for(told, WAIT) is True
    assert len(runs) == 1 and runs[0] != threading.main_thread().name
    now: list[bool] = []
    stack.when_loaded(lambda: now.append(True))  # loaded: at once
    assert now == [True]

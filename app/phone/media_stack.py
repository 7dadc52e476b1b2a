"""Loading the media stack (aiortc, PyAV, numpy, PortAudio: ~45 MB, ~250 ms) without
holding up a call.

An idle phone has not loaded it (issue 14: idle RSS ≤ 80 MB). The first call loads it,
and that must not sit on the path to "ringing" (≤ 300 ms):

- :class:`MediaStack` imports the modules once, in a worker thread, so that the event
  loop goes on meanwhile: the caller's Fetch and AppAttach (RFC 7904 §4) run while the
  stack loads, and a callee's 180 Ringing goes out before its stack is loaded.
- :class:`DeferredSession` is the SIP session handler (offer/answer, hold, mute) of a
  call made before the stack was loaded: it is made at once, starts the load, and
  builds the real :class:`~app.media.session.MediaSession` when an offer or answer is
  first asked of it. What was set before (mute, hold) carries over.

Anything that expects a call soon (a dial field being typed in) may call
:meth:`MediaStack.load` early; it costs nothing once loaded.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from app.sip.aio import CallError
from app.sip.sdp import RejectWith

if TYPE_CHECKING:
    from app.media.session import MediaSession

log = logging.getLogger("p2psip.media")

MODULES: Final = (
    "app.media.session",
    "app.media.tones",
    "app.media.aec",
    "app.media.dtmf_session",
    "app.media.quality",
)
"""What a call's media and its tones import."""


def _import_all() -> None:
    for name in MODULES:
        importlib.import_module(name)


class MediaStack:
    """The media modules, loaded once in a worker thread (see the module docstring)."""

    def __init__(self, importer: Callable[[], None] = _import_all) -> None:
        self._importer = importer
        self._loading: asyncio.Future[None] | None = None

    @property
    def loaded(self) -> bool:
        loading = self._loading
        return loading is not None and loading.done() and loading.exception() is None

    def load(self) -> asyncio.Future[None]:
        """Start loading (once; needs the running loop); the future is done when the
        modules are imported."""
        if self._loading is None:
            self._loading = asyncio.get_running_loop().run_in_executor(None, self._importer)
            # Read the outcome even when no call waits for it (no "never retrieved" warning).
            self._loading.add_done_callback(_log_failure)
        return self._loading

    def when_loaded(self, action: Callable[[], None]) -> None:
        """Run ``action`` now if the stack is loaded, else once it is (not if it fails).
        Without a running loop (a synchronous caller) it runs now, importing what it needs."""
        if self.loaded:
            action()
            return
        try:
            loading = self.load()
        except RuntimeError:
            action()
            return

        def done(future: asyncio.Future[None]) -> None:
            if not future.cancelled() and future.exception() is None:
                action()

        loading.add_done_callback(done)


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("the media stack could not be loaded: %s", exc)


class DeferredSession:
    """A call's session handler until the media stack is loaded: ``build`` makes the
    real session (the kit's), called once the stack is in."""

    def __init__(self, stack: MediaStack, build: Callable[[DeferredSession], MediaSession]) -> None:
        self._stack = stack
        self._build = build
        self._ready = stack.load()
        self.inner: MediaSession | None = None
        self._muted = False
        self._hold = False
        self.closed = False

    async def session(self) -> MediaSession:
        """The real session, made (after the load) on first use; CallError when the
        media stack cannot be loaded (the call fails or cannot be answered, saying why)."""
        try:
            await asyncio.shield(self._ready)
        except Exception as exc:
            raise CallError(f"the call's audio cannot start: {exc}") from exc
        if self.inner is None:
            if self.closed:
                raise RuntimeError("the call ended before its media started")
            inner = self._build(self)
            inner.muted = self._muted
            inner.set_hold(self._hold)
            self.inner = inner
        return self.inner

    # -- SessionHandler (app.sip.sdp) --------------------------------------------------

    async def make_offer(self) -> bytes:
        return await (await self.session()).make_offer()

    async def answer(self, offer: bytes) -> bytes | RejectWith:
        return await (await self.session()).answer(offer)

    async def accept_answer(self, answer: bytes) -> RejectWith | None:
        return await (await self.session()).accept_answer(answer)

    async def close(self) -> None:
        self.closed = True
        if self.inner is not None:
            await self.inner.close()

    # -- what the phone's calls use (hold, mute) ----------------------------------------

    def set_hold(self, hold: bool) -> None:
        self._hold = hold
        if self.inner is not None:
            self.inner.set_hold(hold)

    @property
    def remote_hold(self) -> bool:
        return self.inner is not None and self.inner.remote_hold

    @property
    def muted(self) -> bool:
        return self.inner.muted if self.inner is not None else self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        self._muted = value
        if self.inner is not None:
            self.inner.muted = value


__all__ = ["MODULES", "DeferredSession", "MediaStack"]

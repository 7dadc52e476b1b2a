"""How the one-shot phone commands (``p2psip call|message|buddies|history|forward``) get
a phone: the one running for the profile, through its control socket
(:mod:`app.phone.control`), or else one of their own for the length of the command
(opened from the profile, started when the overlay is needed, signed out at the end).

Both are a :class:`PhoneDriver`: commands of the phone's command language
(:mod:`app.phone.commands`), the buddy list, the history, and the phone's events as JSON
objects (:func:`app.phone.control.event_json`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from app.cli import CliError
from app.phone.control import ControlClient, ControlError, JSONObject, control_path, event_json, is_running

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 60.0


class PhoneDriver:
    """A phone to drive: remote (control socket) or own (opened here)."""

    def __init__(self, *, client: ControlClient | None = None, phone: Any = None) -> None:
        self.client = client
        self.phone = phone
        self.events: asyncio.Queue[JSONObject] = client.events if client is not None else asyncio.Queue()
        self._commands: Any = None
        if phone is not None:
            from app.phone.commands import PhoneCommands

            self._commands = PhoneCommands(phone)
            phone.add_listener(lambda event: self.events.put_nowait(event_json(event)))

    @property
    def remote(self) -> bool:
        return self.client is not None

    async def command(self, line: str) -> JSONObject:
        """Run one command; CliError with the phone's words when it cannot be done."""
        if self.client is not None:
            try:
                return await self.client.command(line)
            except ControlError as exc:
                raise CliError(str(exc)) from None
        from app.phone.commands import CommandError

        try:
            result: JSONObject = await self._commands.run(line)
        except CommandError as exc:
            raise CliError(str(exc)) from None
        return result

    async def query(self, op: str, **fields: Any) -> JSONObject:
        """``status``, ``buddies`` or ``history`` (with ``limit``)."""
        if self.client is not None:
            try:
                return await self.client.request(op, **fields)
            except ControlError as exc:
                raise CliError(str(exc)) from None
        if op == "buddies":
            result: JSONObject = await self._commands.buddies()
        elif op == "history":
            result = await self._commands.history(int(fields.get("limit", 100)))
        else:
            result = await self._commands.run(op)
        return result

    async def wait_event(self, match: Any, timeout: float | None = None) -> JSONObject:
        """The next event for which ``match(event)`` is true."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if match(event):
                    return event


@contextlib.asynccontextmanager
async def phone_for(
    profile_dir: Path, *, overlay: bool, quiet: bool = False, events: bool = False, options: Any = None
) -> AsyncIterator[PhoneDriver]:
    """The phone of ``profile_dir``: the running one, or one opened for this command
    (joined and registered only when ``overlay``). ``events``: subscribe to the running
    phone's events."""
    path = control_path(profile_dir)
    if await is_running(path):
        try:
            client = await ControlClient.connect(path)
        except ControlError as exc:
            raise CliError(str(exc)) from None
        try:
            if events:
                await client.request("subscribe")
            yield PhoneDriver(client=client)
        finally:
            await client.close()
        return
    from app.phone.events import PhoneState
    from app.phone.service import Phone, PhoneError

    try:
        phone = await Phone.open(profile_dir, options=options)
    except PhoneError as exc:
        raise CliError(str(exc)) from None
    try:
        driver = PhoneDriver(phone=phone)
        if overlay:
            if not quiet:
                log.info("no phone runs for %s: joining the overlay", profile_dir)
            try:
                async with asyncio.timeout(JOIN_TIMEOUT):
                    state = await phone.start()
            except TimeoutError:
                raise CliError(f"could not get onto the overlay in {JOIN_TIMEOUT:.0f} s") from None
            except PhoneError as exc:
                raise CliError(str(exc)) from None
            if state is not PhoneState.REGISTERED:
                raise CliError(f"could not get onto the overlay: {phone.state_reason}")
        yield driver
    finally:
        await phone.close()


__all__ = ["PhoneDriver", "phone_for"]

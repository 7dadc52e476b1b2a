"""A second phone in a process of its own, driven over stdin, for the GUI's tests.

``python -m tests.gui.remote_phone --profile DIR`` opens a :class:`~app.phone.service.Phone`
on the profile (real aiortc audio, no sound device), starts it and prints one line per
event on stdout: ``ready state=registered``, then ``call id=N state=S peer=P
words=...`` and ``message id=N direction=D state=S text=...``. Commands on stdin, one a
line: ``call TARGET``, ``answer``, ``hangup``, ``message TARGET TEXT``, ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.phone.events import (
    CallStateChanged,
    MessageReceived,
    MessageStateChanged,
    PhoneEvent,
    PhoneState,
)
from app.phone.network import NetworkOptions
from app.phone.service import Phone, PhoneError, PhoneOptions
from app.sip.transaction import TimerConfig


def _line(event: str, **fields: object) -> None:
    words = " ".join(f"{k}={str(v).replace(' ', '_')}" for k, v in fields.items())
    print(f"{event} {words}".rstrip(), flush=True)


def _on_event(event: PhoneEvent) -> None:
    if isinstance(event, CallStateChanged):
        _line("call", id=event.call, state=event.state.value, peer=event.peer, words=event.words or "-")
    elif isinstance(event, MessageReceived | MessageStateChanged):
        r = event.record
        _line("message", id=r.id, direction=r.direction.value, state=r.state.value, text=r.text)


async def main(profile: str) -> int:
    options = PhoneOptions(
        timers=TimerConfig(t4=1.0, timer_d=2.0),
        network=NetworkOptions(join_timeout=20.0, retry_first=0.5, retry_max=2.0),
        media=True,
        use_devices=False,
    )
    try:
        phone = await Phone.open(profile, options=options)
    except PhoneError as exc:
        print(f"error {exc}", file=sys.stderr)
        return 1
    phone.add_listener(_on_event)
    state = await phone.start()
    _line("ready", state=state.value)
    if state is not PhoneState.REGISTERED:
        await phone.close()
        return 1
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while raw := await reader.readline():
            words = raw.decode().strip().split(" ", 2)
            command = words[0]
            try:
                if command == "call":
                    await phone.call(words[1])
                elif command == "answer":
                    for call in phone.calls:
                        await call.answer()
                elif command == "hangup":
                    for call in phone.calls:
                        await call.hangup()
                elif command == "message":
                    phone.spawn(phone.send_message(words[1], words[2]))
                elif command == "quit":
                    break
            except Exception as exc:  # say it; the test decides
                _line("failed", command=command, error=exc)
    finally:
        await phone.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", required=True)
    sys.exit(asyncio.run(main(parser.parse_args().profile)))

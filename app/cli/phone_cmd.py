"""``p2psip phone``: the phone, headless, driven by lines on stdin.

``p2psip phone [--profile DIR] [--auto-answer] [--sip-listen udp|tcp|tls:HOST:PORT]
[--json] [--role auto|peer|client]`` opens the profile's phone (:class:`app.phone.service.Phone`), joins the
overlay and registers, and runs until SIGINT, SIGTERM or ``quit`` on stdin, then signs out
(hangs up, removes its registration, leaves the overlay).

Output: one line per phone event on stdout. With ``--json`` a JSON object a line,
``{"event": "<event class name>", "time": <unix time>, ...the event's fields}``; the first
line is ``{"event": "Ready", "aor", "node_id", "gruu", "sip_listen", "control", "state",
...}``. A command's failure is ``{"event": "CommandFailed", "command": ..., "reason": ...}``
and ``status`` answers ``{"event": "Status", ...}``. Without ``--json`` the same in words.

Input: the commands of :mod:`app.phone.commands`, one a line, and ``quit``. The end of
stdin does not stop the phone (it may run with stdin closed, as a service); ``quit`` or a
signal does. While it runs, the control socket ``phone.sock`` in the profile folder lets
``p2psip call|message|buddies|history|forward`` use this phone (:mod:`app.phone.control`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from app.cli import CliError

log = logging.getLogger("p2psip.phone")

LONG_COMMANDS = ("message", "transfer", "dtmf")
"""Commands that wait on the far end: run beside the next ones, not before them."""


def profile_path(text: str | None) -> Path:
    from app.profile import default_profile_dir

    return Path(text).expanduser() if text else default_profile_dir()


def setup_logging(level: str = "warning") -> None:
    # Logs go to stderr: stdout carries only the event lines.
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


class EventPrinter:
    """Prints event lines (JSON or words) on stdout."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json

    def line(self, obj: dict[str, Any]) -> None:
        text = json.dumps(obj) if self.as_json else words(obj)
        try:
            print(text, flush=True)
        except BrokenPipeError:
            pass


def words(obj: dict[str, Any]) -> str:
    """An event line in words (the plain output of ``p2psip phone``)."""
    kind = obj.get("event", "")
    stamp = time.strftime("%H:%M:%S", time.localtime(obj.get("time") or time.time()))
    if kind == "Ready":
        text = (
            f"ready: {obj['aor']} ({obj['state']}), node {obj['node_id'][:16]}..., control {obj['control']}"
        )
        if obj.get("sip_listen"):
            text += f", plain SIP {obj['sip_listen']}"
    elif kind == "CallStateChanged":
        text = f"call {obj['call']} {obj['direction']} {obj['name'] or obj['peer']}: {obj['state']}"
        if obj.get("words"):
            text += f" ({obj['words']})"
    elif kind in ("MessageReceived", "MessageStateChanged"):
        record = obj["record"]
        if kind == "MessageReceived":
            text = f"message from {record['peer_aor']}: {record['text']}"
        else:
            text = f"message {record['id']} to {record['peer_aor']}: {record['state']}"
            if record.get("reason"):
                text += f" ({record['reason']})"
    elif kind == "PhoneStateChanged":
        text = f"phone: {obj['state']}" + (f" ({obj['reason']})" if obj.get("reason") else "")
    elif kind == "PresenceChanged":
        text = f"{obj['aor']} is {'online' if obj['online'] else 'offline'}"
    elif kind == "CommandFailed":
        text = f"{obj['command']}: {obj['reason']}"
    else:
        fields = " ".join(f"{k}={v}" for k, v in obj.items() if k not in ("event", "time"))
        text = f"{kind}: {fields}"
    return f"{stamp} {text}"


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """Read stdin in a daemon thread (it works for pipes, terminals and files alike, and
    never holds up the exit)."""

    def read() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="stdin", daemon=True).start()


def add_media_arguments(parser: argparse.ArgumentParser, *, phone: bool) -> None:
    """The call audio flags (:mod:`app.phone.media`): ``--play``/``--record`` for every
    command that may run a phone, ``--echo``/``--no-media`` and the rest for ``p2psip phone``."""
    parser.add_argument(
        "--play", metavar="FILE.wav", help="send this file (looped) instead of the microphone"
    )
    parser.add_argument(
        "--record", metavar="FILE.wav", help="write what is heard to this file instead of playing it"
    )
    if not phone:
        return
    parser.add_argument(
        "--echo",
        action="store_true",
        help="be the echo test: answer every call, send back what is heard 1 s later",
    )
    parser.add_argument("--no-media", action="store_true", help="calls without audio (a static SDP)")
    parser.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="stun:HOST:PORT|turn:USER:PASS@HOST:PORT",
        help="a STUN/TURN server for call media (besides the overlay's TURN servers)",
    )
    parser.add_argument(
        "--relay-only",
        action="store_true",
        help="call media through the TURN server only (hides our addresses)",
    )
    parser.add_argument("--audio-onsets", action="store_true", help=argparse.SUPPRESS)  # p2psip bench call


def media_options(args: argparse.Namespace) -> Any:
    """PhoneOptions for the media flags of ``args``."""
    from app.phone.service import PhoneOptions

    for name in ("play", "record"):
        value = getattr(args, name, None)
        if name == "play" and value and not Path(value).is_file():
            raise CliError(f"--play {value}: no such file")
    return PhoneOptions(
        media=not getattr(args, "no_media", False),
        play=Path(args.play) if getattr(args, "play", None) else None,
        record=Path(args.record) if getattr(args, "record", None) else None,
        echo=bool(getattr(args, "echo", False)),
        ice_servers=tuple(getattr(args, "ice_server", ()) or ()),
        relay_only=bool(getattr(args, "relay_only", False)),
        audio_onsets=bool(getattr(args, "audio_onsets", False)),
        max_calls=_max_calls(args),
    )


def _max_calls(args: argparse.Namespace) -> int:
    value: int | None = getattr(args, "max_calls", None)
    if value is None:
        from app.phone.service import MAX_CALLS

        return MAX_CALLS
    if value < 1:
        raise CliError(f"--max-calls {value}: at least 1 call")
    return value


async def run_phone(args: argparse.Namespace) -> int:
    from app.phone.commands import CommandError, PhoneCommands, status_json
    from app.phone.control import ControlError, ControlServer, JSONObject, control_path, event_json
    from app.phone.service import Phone, PhoneError

    profile_dir = profile_path(args.profile)
    printer = EventPrinter(as_json=args.json)
    try:
        phone = await Phone.open(
            profile_dir,
            sip_listen=args.sip_listen,
            auto_answer=True if args.auto_answer else None,
            role=args.role,
            options=media_options(args),
        )
    except PhoneError as exc:
        raise CliError(str(exc)) from None
    commands = PhoneCommands(phone)
    server: ControlServer | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(request: JSONObject) -> JSONObject:
        op = request.get("op")
        try:
            if op == "command":
                return await commands.run(str(request.get("line", "")))
            if op == "status":
                return status_json(phone)
            if op == "buddies":
                return await commands.buddies()
            if op == "history":
                limit = request.get("limit", 100)
                return await commands.history(limit if isinstance(limit, int) and limit > 0 else 100)
        except CommandError as exc:
            raise ControlError(str(exc)) from None
        raise ControlError(f"unknown request {op!r}")

    def subscribe(send: Any) -> Any:
        return phone.add_listener(lambda event: send(event_json(event)))

    async def run_line(line: str) -> None:
        try:
            result = await commands.run(line)
        except CommandError as exc:
            printer.line({"event": "CommandFailed", "time": time.time(), "command": line, "reason": str(exc)})
            return
        if line.split()[0].lower() == "status":
            printer.line({"event": "Status", "time": time.time(), **result})

    try:
        try:
            server = await ControlServer.start(control_path(profile_dir), handle, subscribe)
            await phone.start()
        except (ControlError, PhoneError) as exc:
            raise CliError(str(exc)) from None
        if phone.name_taken is not None:
            # Another device has the name on this network: retrying will not change that.
            raise CliError(phone.name_taken)
        phone.add_listener(lambda event: printer.line(event_json(event)))
        ready = {"event": "Ready", "time": time.time(), **status_json(phone), "control": str(server.path)}
        printer.line(ready)
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        _stdin_lines(loop, lines)
        stopping = loop.create_task(stop.wait())
        while not stop.is_set():
            getting = loop.create_task(lines.get())
            await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()
                break
            line = getting.result()
            if line is None:
                continue  # stdin closed: run on until a signal
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.lower() in ("quit", "exit"):
                break
            if line.split()[0].lower() in LONG_COMMANDS:
                task = loop.create_task(run_line(line))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                await run_line(line)
        stopping.cancel()
    finally:
        for task in list(tasks):
            task.cancel()
        if server is not None:
            await server.close()
        await phone.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


def _cmd_phone(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    return asyncio.run(run_phone(args))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "phone", help="run the phone headless, commands on stdin, events on stdout"
    )
    parser.add_argument("--profile", help="profile folder (default: the user's profile)")
    parser.add_argument("--auto-answer", action="store_true", help="answer incoming calls at once")
    parser.add_argument(
        "--sip-listen", metavar="udp|tcp|tls:HOST:PORT", help="also take plain SIP calls here"
    )
    parser.add_argument(
        "--role", choices=("auto", "peer", "client"), help="join as a peer or a client (RFC 6940 §4.2)"
    )
    parser.add_argument(
        "--max-calls",
        type=int,
        metavar="N",
        help="calls at once (default 4); one more is refused busy (SIP 486)",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout")
    add_media_arguments(parser, phone=True)
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(func=_cmd_phone)


__all__ = [
    "EventPrinter",
    "add_media_arguments",
    "media_options",
    "profile_path",
    "register",
    "run_phone",
    "setup_logging",
    "words",
]

"""One-shot phone commands: ``p2psip call``, ``message``, ``buddies``, ``history``,
``forward``.

Each uses the phone running for the profile through its control socket, else opens the
profile's phone for its own run (:mod:`app.cli.phone_driver`): joined and registered for
``call`` and ``message`` and ``buddies list``, not at all for ``history``, ``buddies
add|remove`` and ``forward`` (they change the profile's store; a running phone applies
forwarding at once, one started later at its start).

- ``p2psip call TARGET [--duration S]``: places the call, waits for the answer, stays S
  seconds (default: until the far end hangs up or Ctrl-C), hangs up; prints what happened
  in words; exit 0 when the call was answered, 1 otherwise.
- ``p2psip message TARGET TEXT``: exit 0 when the far end took it.
- ``p2psip buddies [list | add AOR [NAME] | remove AOR] [--json]``: the list shows presence
  and when each was last seen.
- ``p2psip history [--limit N] [--json]``: the calls, newest first.
- ``p2psip forward TARGET | --off [--on busy|no-answer|always]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import Any

from app.cli import CliError
from app.cli.phone_cmd import add_media_arguments, profile_path, setup_logging
from app.cli.phone_driver import PhoneDriver, phone_for

ANSWER_TIMEOUT = 120.0
PRESENCE_WAIT = 10.0


def _out(text: str) -> None:
    print(text, flush=True)


def _ago(when: float | None) -> str:
    if when is None:
        return "never"
    seconds = max(0, int(time.time() - when))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(when))


# ---------------------------------------------------------------- call


async def _call(args: argparse.Namespace) -> int:
    from app.cli.phone_cmd import media_options

    audio_files = bool(args.play or args.record)
    options = media_options(args)
    async with phone_for(profile_path(args.profile), overlay=True, events=True, options=options) as driver:
        if driver.remote and audio_files:
            raise CliError(
                "--play/--record: a phone already runs for this profile; give them to p2psip phone"
            )
        return await _call_with(driver, args.target, args.duration)


async def _call_with(driver: PhoneDriver, target: str, duration: float | None) -> int:
    placed = await driver.command(f"call {json.dumps(target)}")
    number = placed["call"]
    name = placed.get("name") or target
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted.set)
    state = placed.get("state", "dialing")
    words = ""
    answered = False
    try:
        _out(f"calling {name} ...")
        interrupt = loop.create_task(interrupted.wait())

        async def next_state(timeout: float | None) -> dict[str, Any] | None:
            getting = loop.create_task(
                driver.wait_event(lambda e: e.get("event") == "CallStateChanged" and e.get("call") == number)
            )
            done, _ = await asyncio.wait(
                {getting, interrupt}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if getting in done:
                return getting.result()
            getting.cancel()
            return None

        deadline = loop.time() + ANSWER_TIMEOUT
        while state not in ("connected", "ended"):
            event = await next_state(max(0.0, deadline - loop.time()))
            if event is None:
                break
            state = event["state"]
            words = event.get("words") or words
            if state == "ringing":
                _out(f"{name} is ringing")
        if state == "connected":
            answered = True
            _out(f"{name} answered")
            until = None if duration is None else loop.time() + duration
            while state != "ended" and not interrupted.is_set():
                left = None if until is None else until - loop.time()
                if left is not None and left <= 0:
                    break
                event = await next_state(left)
                if event is None:
                    continue
                state = event["state"]
                words = event.get("words") or words
        if state != "ended":
            try:
                await driver.command(f"hangup {number}")
            except CliError:
                pass  # it ended meanwhile
            while state != "ended":
                try:
                    event = await driver.wait_event(
                        lambda e: e.get("event") == "CallStateChanged" and e.get("call") == number, timeout=10
                    )
                except TimeoutError:
                    break
                state = event["state"]
                words = event.get("words") or words
        interrupt.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if answered:
        _out(f"call with {name} ended: {words or 'hung up'}")
        return 0
    _out(f"call to {name} not answered: {words or 'no answer'}")
    return 1


# ---------------------------------------------------------------- message


async def _message(args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    if not text.strip():
        raise CliError("the message is empty")
    async with phone_for(profile_path(args.profile), overlay=True) as driver:
        result = await driver.command(f"message {json.dumps(args.target)} {json.dumps(text)}")
    record = result["message"]
    if record["state"] == "delivered":
        _out(f"delivered to {record['peer_aor']}")
        return 0
    _out(f"not delivered to {record['peer_aor']}: {record.get('reason') or record['state']}")
    return 1


# ---------------------------------------------------------------- buddies


async def _buddies(args: argparse.Namespace) -> int:
    action = args.action or "list"
    rest: list[str] = args.rest
    if action == "add":
        if not 1 <= len(rest) <= 2:
            raise CliError("usage: p2psip buddies add AOR [NAME]")
        async with phone_for(profile_path(args.profile), overlay=False) as driver:
            result = await driver.command("buddy add " + " ".join(json.dumps(r) for r in rest))
        _out(f"added {result['buddy']['aor']}")
        return 0
    if action == "remove":
        if len(rest) != 1:
            raise CliError("usage: p2psip buddies remove AOR")
        async with phone_for(profile_path(args.profile), overlay=False) as driver:
            await driver.command(f"buddy remove {json.dumps(rest[0])}")
        _out(f"removed {rest[0]}")
        return 0
    if action != "list" or rest:
        raise CliError(f"unknown buddies action {action!r}: list, add AOR [NAME] or remove AOR")
    async with phone_for(profile_path(args.profile), overlay=not args.offline) as driver:
        buddies = (await driver.query("buddies"))["buddies"]
        if driver.phone is not None and not args.offline and buddies:
            # A phone of our own has just joined: give presence its first checks.
            for buddy in buddies:
                driver.phone.refresh_presence(buddy["aor"])
            pending = {b["aor"] for b in buddies}
            try:
                async with asyncio.timeout(PRESENCE_WAIT):
                    while pending:
                        event = await driver.wait_event(lambda e: e.get("event") == "PresenceChanged")
                        pending.discard(event["aor"])
            except TimeoutError:
                pass
            buddies = (await driver.query("buddies"))["buddies"]
    if args.json:
        _out(json.dumps(buddies))
        return 0
    if not buddies:
        _out("no buddies")
    for b in buddies:
        presence = {True: "online", False: "offline", None: "unknown"}[b["online"]]
        name = f" ({b['display_name']})" if b["display_name"] else ""
        _out(f"{b['aor']}{name}: {presence}, last seen {_ago(b['last_seen'])}")
    return 0


# ---------------------------------------------------------------- history


async def _history(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    async with phone_for(profile_path(args.profile), overlay=False) as driver:
        calls = (await driver.query("history", limit=args.limit))["calls"]
    if args.json:
        _out(json.dumps(calls))
        return 0
    if not calls:
        _out("no calls")
    for c in calls:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c["started"]))
        arrow = "->" if c["direction"] == "outgoing" else "<-"
        length = "" if c["duration"] is None else f", {c['duration']:.0f} s"
        name = c["display_name"] or c["peer_aor"]
        _out(f"{when} {arrow} {name}: {c['outcome'] or 'in progress'}{length}")
    return 0


# ---------------------------------------------------------------- forward


async def _forward(args: argparse.Namespace) -> int:
    if args.off == (args.target is not None):
        raise CliError("give a TARGET to forward to, or --off")
    if args.after is not None and (args.off or args.on != "no-answer"):
        raise CliError("--after goes with --on no-answer and a TARGET")
    if args.off:
        line = "forward off" + (f" {args.on}" if args.on else "")
    else:
        line = f"forward {args.on or 'always'} {json.dumps(args.target)}"
        if args.after is not None:
            line += f" {args.after}"
    async with phone_for(profile_path(args.profile), overlay=False) as driver:
        result = await driver.command(line)
        running = driver.remote
    when = "" if running else " (a phone started later applies it)"
    shown = False
    for kind, key in (
        ("always", "forward_always"),
        ("busy", "forward_busy"),
        ("no-answer", "forward_no_answer"),
    ):
        if result.get(key):
            after = f" after {result['no_answer_seconds']} s" if kind == "no-answer" else ""
            _out(f"forwarding {kind} to {result[key]}{after}{when}")
            shown = True
    if not shown:
        _out("no forwarding")
    return 0


# ---------------------------------------------------------------- registration


def _runner(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        setup_logging(args.log_level)
        result: int = asyncio.run(fn(args))
        return result

    return run


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="profile folder (default: the user's profile)")
    parser.add_argument("--log-level", default="error", choices=("debug", "info", "warning", "error"))


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < 1e7:
        raise argparse.ArgumentTypeError("the duration is 0 or more seconds")
    return value


def _whole_seconds(text: str) -> int:
    from app.phone.store import parse_no_answer_seconds

    try:
        return parse_no_answer_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is {exc}") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("call", help="call someone; exit 0 when the call was answered")
    p.add_argument("target", metavar="TARGET", help="a user name, AoR, GRUU or sip:user@host[:port]")
    p.add_argument("--duration", type=_duration, help="seconds to stay in the call (default: until hung up)")
    add_media_arguments(p, phone=False)
    _common(p)
    p.set_defaults(func=_runner(_call))

    p = subparsers.add_parser("message", help="send a text message")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("text", metavar="TEXT", nargs="+")
    _common(p)
    p.set_defaults(func=_runner(_message))

    p = subparsers.add_parser("buddies", help="the buddy list with presence; add or remove buddies")
    p.add_argument("action", nargs="?", choices=("list", "add", "remove"))
    p.add_argument("rest", nargs="*", metavar="AOR [NAME]")
    p.add_argument("--json", action="store_true")
    p.add_argument("--offline", action="store_true", help="list from the profile without joining the overlay")
    _common(p)
    p.set_defaults(func=_runner(_buddies))

    p = subparsers.add_parser("history", help="the call history, newest first")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=_runner(_history))

    p = subparsers.add_parser("forward", help="forward calls (always, when busy, when not answered)")
    p.add_argument("target", metavar="TARGET", nargs="?")
    p.add_argument("--off", action="store_true", help="stop forwarding")
    p.add_argument(
        "--on", choices=("always", "busy", "no-answer"), help="when (default: always; with --off: all)"
    )
    p.add_argument(
        "--after", type=_whole_seconds, metavar="S", help="with --on no-answer: ring this long first (default 20)"
    )
    _common(p)
    p.set_defaults(func=_runner(_forward))


__all__ = ["register"]

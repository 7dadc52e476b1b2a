"""The phone's command language: what ``p2psip phone`` reads on stdin, and what its
control socket (:mod:`app.phone.control`) runs for other ``p2psip`` commands.

One command a line::

    call TARGET              answer [N]        reject [N]       hangup [N]
    hold [N]                 resume [N]        transfer N TARGET
    dtmf N DIGITS            message TARGET TEXT...
    buddy add AOR [NAME]     buddy remove AOR
    dnd on|off               auto-answer on|off
    forward always|busy|no-answer TARGET [S]   forward off [always|busy|no-answer]
    status

N is a call's number (the ``call`` of its events). Without N, ``answer``/``reject`` take
the newest ringing incoming call, ``hold``/``hangup`` the connected one (else the only live
call), ``resume`` the newest held one. :meth:`PhoneCommands.run` returns a small JSON
result; the phone's events say the rest (a call's states, a message's delivery). What
cannot be done raises :class:`CommandError` with one line for the user.
"""

from __future__ import annotations

import shlex
from typing import Any

from app.phone.calls import CallDirection, CallState
from app.phone.control import JSONObject, to_json
from app.phone.phone_call import CallActionError, PhoneCall
from app.phone.service import Phone, PhoneError
from app.phone.store import MAX_NO_ANSWER_SECONDS, parse_no_answer_seconds
from app.sip.uri import SipUri, parse_uri

FORWARD_KINDS = {"always": "forward_always", "busy": "forward_busy", "no-answer": "forward_no_answer"}
ON_OFF = {"on": True, "off": False}
USAGE = {
    "call": "call TARGET",
    "answer": "answer [N]",
    "reject": "reject [N]",
    "hangup": "hangup [N]",
    "hold": "hold [N]",
    "resume": "resume [N]",
    "transfer": "transfer N TARGET",
    "dtmf": "dtmf N DIGITS",
    "message": "message TARGET TEXT...",
    "buddy": "buddy add AOR [NAME] | buddy remove AOR",
    "dnd": "dnd on|off",
    "auto-answer": "auto-answer on|off",
    "forward": "forward always|busy|no-answer TARGET | forward no-answer TARGET SECONDS"
    " | forward off [always|busy|no-answer]",
    "status": "status",
}


class CommandError(Exception):
    """A command that cannot be done; the message says why in one line."""


def split_command(line: str) -> tuple[str, list[str]]:
    """The command word and its arguments (shell-like quoting: ``message bob "hi there"``;
    an unbalanced quote is taken literally)."""
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    if not words:
        return "", []
    return words[0].lower(), words[1:]


def sip_listen_text(phone: Phone) -> str | None:
    """Where the plain SIP endpoint listens, as ``udp:127.0.0.1:PORT`` (None without one)."""
    uri = phone.plain_uri
    listen = phone.options.sip_listen
    if uri is None or listen is None:
        return None
    parsed = parse_uri(uri)
    if not isinstance(parsed, SipUri):
        return None
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{listen.kind}:{host}:{parsed.port}"


def call_json(call: PhoneCall) -> JSONObject:
    return {
        "call": call.id,
        "state": call.state.value,
        "direction": call.direction.value,
        "peer": call.peer,
        "name": call.name,
        "verified": call.verified,
    }


def status_json(phone: Phone) -> JSONObject:
    """What ``status`` answers (and the ``Ready`` line carries). ``presence_rate``: overlay
    requests per second that buddy presence costs, estimated for the list and measured over
    the last minute."""
    estimated, measured = phone.presence_rate
    return {
        "aor": phone.aor,
        "node_id": phone.node_id.hex(),
        "gruu": phone.gruu,
        "state": phone.state.value,
        "reason": phone.state_reason,
        "role": phone.role.value if phone.role is not None else None,
        "sip_listen": sip_listen_text(phone),
        "calls": [call_json(c) for c in phone.calls],
        "settings": to_json(phone.settings),
        "presence_rate": {"estimated": estimated, "measured": measured},
    }


class PhoneCommands:
    """Runs commands on one phone (see the module docstring)."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone

    async def run(self, line: str) -> JSONObject:
        word, args = split_command(line)
        if not word:
            raise CommandError("empty command")
        method = getattr(self, "_cmd_" + word.replace("-", "_"), None)
        if method is None or word not in USAGE:
            raise CommandError(f"unknown command {word!r} (commands: {', '.join(USAGE)}, quit)")
        try:
            result: JSONObject = await method(args)
        except (PhoneError, CallActionError) as exc:
            raise CommandError(str(exc)) from None
        return result

    # ---------------------------------------------------------------- helpers

    def _usage(self, word: str) -> CommandError:
        return CommandError(f"usage: {USAGE[word]}")

    def _number(self, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise CommandError(f"{text!r} is not a call number") from None

    def _call(self, args: list[str], word: str, pick: tuple[CallState, ...], what: str) -> PhoneCall:
        """Call N, or the newest live call in one of the states ``pick``."""
        if len(args) > 1:
            raise self._usage(word)
        if args:
            number = self._number(args[0])
            call = self.phone.get_call(number)
            if call is None:
                raise CommandError(f"there is no call {number}")
            return call
        live = [c for c in self.phone.calls if c.live]
        for state in pick:
            chosen = [c for c in live if c.state is state]
            if word in ("answer", "reject"):
                chosen = [c for c in chosen if c.direction is CallDirection.INCOMING]
            if chosen:
                return max(chosen, key=lambda c: c.id)
        if word == "hangup" and len(live) == 1:
            return live[0]
        raise CommandError(f"there is no {what} call (give its number)")

    # ---------------------------------------------------------------- commands

    async def _cmd_call(self, args: list[str]) -> JSONObject:
        if len(args) != 1:
            raise self._usage("call")
        call = await self.phone.call(args[0])
        return call_json(call)

    async def _cmd_answer(self, args: list[str]) -> JSONObject:
        call = self._call(args, "answer", (CallState.RINGING, CallState.EARLY_MEDIA), "ringing incoming")
        await call.answer()
        return call_json(call)

    async def _cmd_reject(self, args: list[str]) -> JSONObject:
        call = self._call(args, "reject", (CallState.RINGING, CallState.EARLY_MEDIA), "ringing incoming")
        await call.reject()
        return call_json(call)

    async def _cmd_hangup(self, args: list[str]) -> JSONObject:
        call = self._call(args, "hangup", (CallState.CONNECTED,), "connected")
        if not call.live:
            raise CommandError(f"call {call.id} has ended already")
        await call.hangup()
        return call_json(call)

    async def _cmd_hold(self, args: list[str]) -> JSONObject:
        call = self._call(args, "hold", (CallState.CONNECTED,), "connected")
        await call.hold()
        return call_json(call)

    async def _cmd_resume(self, args: list[str]) -> JSONObject:
        call = self._call(args, "resume", (CallState.HELD,), "held")
        await call.resume()
        return call_json(call)

    async def _cmd_transfer(self, args: list[str]) -> JSONObject:
        if len(args) != 2:
            raise self._usage("transfer")
        call = self._call(args[:1], "transfer", (), "")
        update = await call.transfer(args[1])
        return {"call": call.id, "target": update.target, "status": update.status, "reason": update.reason}

    async def _cmd_dtmf(self, args: list[str]) -> JSONObject:
        if len(args) != 2:
            raise self._usage("dtmf")
        call = self._call(args[:1], "dtmf", (), "")
        used = await call.send_dtmf(args[1])
        return {"call": call.id, "digits": args[1], "methods": used}

    async def _cmd_message(self, args: list[str]) -> JSONObject:
        if len(args) < 2:
            raise self._usage("message")
        record = await self.phone.send_message(args[0], " ".join(args[1:]))
        return {"message": to_json(record)}

    async def _cmd_buddy(self, args: list[str]) -> JSONObject:
        if len(args) >= 2 and args[0] == "add" and len(args) <= 3:
            buddy = await self.phone.add_buddy(args[1], args[2] if len(args) == 3 else "")
            return {"buddy": to_json(buddy)}
        if len(args) == 2 and args[0] == "remove":
            removed = await self.phone.remove_buddy(args[1])
            if not removed:
                raise CommandError(f"{args[1]} is not a buddy")
            return {"removed": args[1]}
        raise self._usage("buddy")

    async def _on_off(self, args: list[str], word: str, setting: str) -> JSONObject:
        if len(args) != 1 or args[0].lower() not in ON_OFF:
            raise self._usage(word)
        settings = await self.phone.update_settings(**{setting: ON_OFF[args[0].lower()]})
        return {setting: getattr(settings, setting)}

    async def _cmd_dnd(self, args: list[str]) -> JSONObject:
        return await self._on_off(args, "dnd", "do_not_disturb")

    async def _cmd_auto_answer(self, args: list[str]) -> JSONObject:
        return await self._on_off(args, "auto-answer", "auto_answer")

    async def _cmd_forward(self, args: list[str]) -> JSONObject:
        if args and args[0] == "off" and len(args) <= 2:
            kinds = [args[1]] if len(args) == 2 else list(FORWARD_KINDS)
            if any(k not in FORWARD_KINDS for k in kinds):
                raise self._usage("forward")
            changes: dict[str, Any] = {FORWARD_KINDS[k]: None for k in kinds}
        elif len(args) == 2 and args[0] in FORWARD_KINDS:
            changes = {FORWARD_KINDS[args[0]]: args[1]}
        elif len(args) == 3 and args[0] == "no-answer":
            # After how long an unanswered call goes on (the phone's no_answer_seconds).
            try:
                seconds = parse_no_answer_seconds(args[2])
            except ValueError:
                raise CommandError(
                    f"forward no-answer: {args[2]} is not 1 to {MAX_NO_ANSWER_SECONDS} seconds"
                ) from None
            changes = {"forward_no_answer": args[1], "no_answer_seconds": seconds}
        else:
            raise self._usage("forward")
        settings = await self.phone.update_settings(**changes)
        return {
            "forward_always": settings.forward_always,
            "forward_busy": settings.forward_busy,
            "forward_no_answer": settings.forward_no_answer,
            "no_answer_seconds": settings.no_answer_seconds,
        }

    async def _cmd_status(self, args: list[str]) -> JSONObject:
        if args:
            raise self._usage("status")
        return status_json(self.phone)

    # ---------------------------------------------------------------- queries (control socket)

    async def buddies(self) -> JSONObject:
        return {"buddies": [to_json(b) for b in await self.phone.buddies()]}

    async def history(self, limit: int) -> JSONObject:
        return {"calls": [call_record_json(r) for r in await self.phone.history(limit=limit)]}


def call_record_json(record: Any) -> JSONObject:
    obj = to_json(record)
    assert isinstance(obj, dict)
    obj["duration"] = record.duration
    return obj


__all__ = [
    "USAGE",
    "CommandError",
    "PhoneCommands",
    "call_json",
    "call_record_json",
    "sip_listen_text",
    "split_command",
    "status_json",
]

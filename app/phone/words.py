"""SIP and overlay failures in words a user understands.

A caller is told *what happened to the person*, never a status code alone: "bob is not
online", "bob declined", "no answer", "bob is busy", "bob's name is not on this
overlay". Each function returns the :class:`~app.phone.calls.EndCause` (for the history
and the GUI's icons) and the sentence.

Sources of failure and where they are read:

- resolving the AoR (RFC 7904 §4; :class:`~reload_core.usages.sip.Outcome`): no
  registration, a domain this overlay does not serve, forwarding loops...;
- connecting to the devices found (AppAttach, RFC 7904 §5.1);
- the final SIP response (RFC 3261 §21) or how the UA ended the call
  (:class:`~app.sip.events.EndReason`).
"""

from __future__ import annotations

from app.phone.calls import EndCause
from app.sip.events import EndReason
from reload_core.usages.sip import Outcome

DND_PHRASE = "Do Not Disturb"
"""The reason phrase of our 480 when do-not-disturb is on (RFC 3261 §21.4.18 lets the
phrase say why; a caller's phone shows it)."""


def short_name(aor: str, display_name: str | None = None) -> str:
    """What to call someone: their display name, else the user part of the AoR
    (``sip:bob@example.org`` -> ``bob``)."""
    if display_name:
        return display_name
    text = aor.split(":", 1)[1] if aor.lower().startswith(("sip:", "sips:")) else aor
    text = text.split(";", 1)[0]
    user = text.split("@", 1)[0] if "@" in text else text
    return user or aor


def possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def unreachable_words(name: str, outcome: Outcome | None, *, detail: str = "") -> tuple[EndCause, str]:
    """Why ``name`` could not be reached, from what resolving found (None: the
    registration was found but no device could be connected to)."""
    if outcome is None:
        return EndCause.UNREACHABLE, f"{name} is online but could not be reached"
    if outcome is Outcome.NOT_REGISTERED:
        return EndCause.NOT_ONLINE, f"{name} is not online"
    if outcome in (Outcome.DOMAIN_NOT_SERVED, Outcome.INVALID):
        return EndCause.NOT_ON_OVERLAY, f"{possessive(name)} name is not on this overlay"
    if outcome is Outcome.LOOP:
        return EndCause.UNREACHABLE, f"{possessive(name)} call forwarding goes round in a circle"
    if outcome is Outcome.DEPTH_LIMIT:
        return EndCause.UNREACHABLE, f"{possessive(name)} calls are forwarded too many times"
    if outcome is Outcome.FORWARDED_OUTSIDE:
        return EndCause.UNREACHABLE, f"{possessive(name)} calls are forwarded outside this overlay"
    if outcome is Outcome.LOOKUP_FAILED:
        why = f" ({detail})" if detail else ""
        return EndCause.FAILED, f"could not look {name} up: the overlay did not answer{why}"
    return EndCause.UNREACHABLE, f"{name} could not be reached"


def status_words(name: str, status: int, phrase: str | None = None) -> tuple[EndCause, str]:
    """A final failure response (RFC 3261 §21) to a call or a message, in words."""
    if status in (486, 600):
        return EndCause.BUSY, f"{name} is busy"
    if status == 603:
        return EndCause.DECLINED, f"{name} declined"
    if status == 480:
        if phrase and "disturb" in phrase.lower():
            return EndCause.DO_NOT_DISTURB, f"{name} does not want to be disturbed"
        return EndCause.UNAVAILABLE, f"{name} is not available"
    if status in (404, 604):
        return EndCause.NOT_ONLINE, f"{name} is not here"
    if status == 408:
        return EndCause.NO_ANSWER, "no answer"
    if status == 487:
        return EndCause.NO_ANSWER, "no answer"
    if status in (488, 606, 415):
        return (
            EndCause.INCOMPATIBLE,
            f"{possessive(name)} phone cannot take this call (no common audio format)",
        )
    if status == 403:
        return EndCause.REFUSED, f"{possessive(name)} phone refused the call"
    if status == 481:
        return EndCause.CONNECTION_LOST, f"{possessive(name)} phone no longer knows this call"
    if status == 503:
        return EndCause.CONNECTION_LOST, f"{possessive(name)} phone could not be reached"
    if 300 <= status < 400:
        return (
            EndCause.UNREACHABLE,
            f"{possessive(name)} calls are forwarded somewhere that cannot be reached",
        )
    if 500 <= status < 600:
        return EndCause.REFUSED, f"{possessive(name)} phone had a problem ({status} {phrase or ''})".replace(
            " )", ")"
        )
    return EndCause.REFUSED, f"{possessive(name)} phone refused ({status} {phrase or ''})".replace(" )", ")")


def call_end_words(
    name: str,
    reason: EndReason,
    status: int | None,
    phrase: str | None,
    *,
    answered: bool,
) -> tuple[EndCause, str]:
    """How the UA ended a call (``answered``: it was connected), in words."""
    if reason is EndReason.LOCAL_HANGUP:
        return EndCause.HUNG_UP, "you hung up"
    if reason is EndReason.REMOTE_HANGUP:
        return EndCause.REMOTE_HUNG_UP, f"{name} hung up"
    if reason is EndReason.LOCAL_CANCEL:
        return EndCause.CANCELLED, "cancelled"
    if reason is EndReason.REMOTE_CANCEL:
        return EndCause.MISSED, f"{name} hung up before you answered"
    if reason is EndReason.ANSWERED_ELSEWHERE:
        return EndCause.ANSWERED_ELSEWHERE, "answered on another device"
    if reason is EndReason.TIMEOUT:
        return EndCause.NO_ANSWER, "no answer"
    if reason is EndReason.TRANSPORT_ERROR:
        return EndCause.CONNECTION_LOST, f"{possessive(name)} phone could not be reached"
    if reason in (EndReason.NO_ACK, EndReason.DIALOG_GONE):
        return EndCause.CONNECTION_LOST, f"the connection to {name} was lost"
    if status is not None:
        return status_words(name, status, phrase)
    return EndCause.REFUSED, f"{name} could not be called"


def end_words(cause: EndCause, name: str) -> str:
    """A sentence for an end cause known without a status (our own decisions)."""
    return {
        EndCause.HUNG_UP: "you hung up",
        EndCause.REMOTE_HUNG_UP: f"{name} hung up",
        EndCause.CANCELLED: "cancelled",
        EndCause.MISSED: f"missed call from {name}",
        EndCause.DECLINED: "you declined",
        EndCause.BUSY: "you were busy",
        EndCause.NO_ANSWER: "no answer",
        EndCause.DO_NOT_DISTURB: "not put through: do not disturb",
        EndCause.TRANSFERRED: "transferred",
        EndCause.PHONE_CLOSED: "the phone was closed",
        EndCause.CONNECTION_LOST: f"the connection to {name} was lost",
    }.get(cause, cause.value)


__all__ = [
    "DND_PHRASE",
    "call_end_words",
    "end_words",
    "possessive",
    "short_name",
    "status_words",
    "unreachable_words",
]

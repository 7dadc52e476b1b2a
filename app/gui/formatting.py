"""Times, durations and presence in words, for the lists and the call window. Pure
functions: ``now`` is passed in, so the tests fix it."""

from __future__ import annotations

import time
from datetime import datetime
from enum import StrEnum


class Presence(StrEnum):
    """What the buddy list shows (app.phone.presence: online needs a registration and a
    device that answers a Ping)."""

    ONLINE = "online"
    OFFLINE = "offline"
    CHECKING = "checking"


def short_name(aor: str, display_name: str | None = None) -> str:
    """What to call someone: the display name, else the user part of the AoR
    (``sip:bob@example.org`` -> ``bob``); as :func:`app.phone.words.short_name`, without
    importing the SIP stack (the window comes up before it is loaded)."""
    if display_name:
        return display_name
    text = aor.split(":", 1)[1] if aor.lower().startswith(("sip:", "sips:")) else aor
    text = text.split(";", 1)[0]
    user = text.split("@", 1)[0] if "@" in text else text
    return user or aor


def format_duration(seconds: float) -> str:
    """``m:ss`` under an hour, ``h:mm:ss`` from one."""
    seconds = int(max(0.0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_when(when: float, now: float | None = None) -> str:
    """A past moment as a list shows it: ``14:03`` today, ``yesterday 14:03``, ``Mon
    14:03`` this week, else ``2026-11-02``."""
    now = time.time() if now is None else now
    then, today = datetime.fromtimestamp(when), datetime.fromtimestamp(now)
    days = (today.date() - then.date()).days
    clock = then.strftime("%H:%M")
    if days <= 0:
        return clock
    if days == 1:
        return f"yesterday {clock}"
    if days < 7:
        return f"{then.strftime('%a')} {clock}"
    return then.strftime("%Y-%m-%d")


def format_ago(when: float, now: float | None = None) -> str:
    """How long ago, roughly: ``just now``, ``5 min ago``, ``3 h ago``, else a date."""
    now = time.time() if now is None else now
    delta = now - when
    if delta < 60:
        return "just now"
    if delta < 3600:
        return f"{int(delta // 60)} min ago"
    if delta < 12 * 3600:
        return f"{int(delta // 3600)} h ago"
    return format_when(when, now)


def presence_words(presence: Presence, last_seen: float | None, now: float | None = None) -> str:
    if presence is Presence.ONLINE:
        return "online"
    if presence is Presence.CHECKING:
        return "checking…"
    if last_seen is None:
        return "offline"
    return f"offline, last seen {format_ago(last_seen, now)}"


__all__ = ["Presence", "format_ago", "format_duration", "format_when", "presence_words", "short_name"]

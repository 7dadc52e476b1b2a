"""Making a profile from the first-run wizard, without blocking the window.

Both ways go through the code behind the CLI: :func:`app.cli.init_cmd.init_profile`
(``p2psip init``: the local overlay) and :func:`app.cli.enroll_cmd.enroll_profile`
(``p2psip enroll``: configuration over HTTPS, certificate from the enrollment server,
RFC 6940 §11.2, §11.3). Each runs in a worker thread (enrollment on an event loop of its
own there): key generation and file writes would otherwise freeze the window; progress
crosses back to the GUI's loop with ``call_soon_threadsafe``. The key is ECDSA P-256, as
``p2psip init`` makes: cheap signatures, and the DTLS of AppAttach (aiortc's client
offers ECDSA suites only) works with it.

A failure becomes an :class:`EnrollFailure`: a :class:`Problem` the wizard words for the
user (unreachable, wrong password, name not allowed, certificate problems) and the
one-line detail the CLI would print.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from app.cli import CliError
from app.cli.enroll_cmd import enroll_profile
from app.cli.init_cmd import init_profile
from app.profile import Profile, ProfileError, load_profile
from reload_core.enrollment.errors import EnrollmentToken


class Problem(StrEnum):
    UNREACHABLE = "unreachable"
    WRONG_PASSWORD = "wrong password"
    NAME_NOT_ALLOWED = "name not allowed"
    CERTIFICATE = "certificate problem"
    BAD_INPUT = "bad input"
    OTHER = "other"


HEADLINES: dict[Problem, str] = {
    Problem.UNREACHABLE: "The overlay's server could not be reached.",
    Problem.WRONG_PASSWORD: "The user name or password is wrong.",
    Problem.NAME_NOT_ALLOWED: "That name is not allowed on this overlay.",
    Problem.CERTIFICATE: "A certificate did not check out.",
    Problem.BAD_INPUT: "Please check what you typed.",
    Problem.OTHER: "Joining the overlay failed.",
}

STEP_WORDS: dict[str, str] = {
    "configuration": "Fetching the overlay's configuration…",
    "key": "Making your key…",
    "enrollment": "Asking the enrollment server for a certificate…",
    "saving": "Saving your profile…",
}

_CERTIFICATE_SIGNS = (
    "certificate verify failed",
    "is not trusted",
    "issuer certificate",
    "self-signed certificate",
    "does not check out",
    "signature",
    "hostname mismatch",
    "certificate has expired",
    "not valid for",
    "wrong version number",
)
_UNREACHABLE_SIGNS = (
    "cannot connect",
    "connection refused",
    "timed out",
    "name or service not known",
    "temporary failure in name resolution",
    "no route to host",
    "network is unreachable",
    "server disconnected",
    "connection reset",
    "answered 404",
    "answered 5",
)


def classify(message: str) -> Problem:
    """What kind of problem the one-line error ``message`` of init/enroll describes."""
    text = message.lower()
    if EnrollmentToken.failed_authentication.value in message:
        return Problem.WRONG_PASSWORD
    if (
        EnrollmentToken.username_not_available.value in message
        or EnrollmentToken.Node_IDs_not_available.value in message
    ):
        return Problem.NAME_NOT_ALLOWED
    # A TLS failure mentions both the connection and the certificate: the certificate is
    # what the user must fix, so it is looked for first.
    if any(sign in text for sign in _CERTIFICATE_SIGNS):
        return Problem.CERTIFICATE
    if any(sign in text for sign in _UNREACHABLE_SIGNS):
        return Problem.UNREACHABLE
    if "is not an https" in text or "is empty" in text or "has the character" in text or "is longer" in text:
        return Problem.BAD_INPUT
    return Problem.OTHER


class EnrollFailure(Exception):
    """A profile that could not be made: the kind of problem and the detail."""

    def __init__(self, problem: Problem, detail: str) -> None:
        super().__init__(problem, detail)
        self.problem = problem
        self.detail = detail

    @property
    def headline(self) -> str:
        return HEADLINES[self.problem]

    def __str__(self) -> str:
        return f"{self.headline} {self.detail}"


def tidy(detail: str) -> str:
    """The detail without the HTTP client's internals (``ssl:<ssl.SSLContext object at
    0x...>``), which say nothing to a user."""
    return re.sub(r"\s*ssl:<[^>]*>", "", detail)


def _failure(exc: Exception) -> EnrollFailure:
    detail = str(exc)
    return EnrollFailure(classify(detail), tidy(detail))


async def create_local_profile(name: str, profile_dir: Path, *, display_name: str | None = None) -> Profile:
    """``p2psip init --user NAME``: the local-overlay profile (kept if it is already
    there); :class:`EnrollFailure` when it cannot be made."""

    def work() -> Profile:
        made, _descriptor = init_profile(name, profile_dir, display_name=display_name or None)
        return made if made is not None else load_profile(profile_dir)

    try:
        return await asyncio.to_thread(work)
    except (CliError, ProfileError, OSError) as exc:
        raise _failure(exc) from None


async def join_overlay(
    config_url: str,
    user: str,
    password: str,
    profile_dir: Path,
    *,
    cafile: str | None = None,
    progress: Callable[[str], None] = lambda step: None,
) -> Profile:
    """``p2psip enroll``: fetch the configuration at ``config_url``, enroll ``user`` with
    ``password`` and save the profile in ``profile_dir``. ``progress`` hears each step
    (see :data:`STEP_WORDS`) on the calling loop. :class:`EnrollFailure` on failure."""
    loop = asyncio.get_running_loop()
    url = config_url.strip()
    if not url.lower().startswith("https://"):
        raise EnrollFailure(Problem.BAD_INPUT, f"{url!r} is not an https: URL of a configuration document")
    if not user.strip():
        raise EnrollFailure(Problem.BAD_INPUT, "the user name is empty")

    def step(name: str) -> None:
        loop.call_soon_threadsafe(progress, name)

    def work() -> Profile:
        return asyncio.run(
            enroll_profile(
                url,
                user.strip(),
                lambda: password,
                profile_dir,
                cafile=cafile or None,
                key_kind="ecdsa",
                progress=step,
            )
        )

    try:
        return await asyncio.to_thread(work)
    except (CliError, ProfileError, OSError) as exc:
        raise _failure(exc) from None


__all__ = [
    "HEADLINES",
    "STEP_WORDS",
    "EnrollFailure",
    "Problem",
    "classify",
    "create_local_profile",
    "join_overlay",
]

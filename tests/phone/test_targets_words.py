"""TARGET parsing (bare names, AoRs, GRUUs, plain SIP addresses) and failures in words."""

from __future__ import annotations

import pytest

from app.phone.calls import EndCause
from app.phone.targets import TargetError, TargetKind, normalise_aor, parse_target
from app.phone.words import call_end_words, short_name, status_words, unreachable_words
from app.sip.events import EndReason
from reload_core.usages.sip import make_gruu
from reload_core.usages.sip.resolve import Outcome
from reload_core.wire.message import NodeDestination

DOMAIN = "example.org"


@pytest.mark.parametrize(
    ("text", "kind", "uri", "aor", "user"),
    [
        ("bob", TargetKind.AOR, "sip:bob@example.org", "sip:bob@example.org", "bob"),
        ("  bob  ", TargetKind.AOR, "sip:bob@example.org", "sip:bob@example.org", "bob"),
        ("bob@other.net", TargetKind.AOR, "sip:bob@other.net", "sip:bob@other.net", "bob"),
        ("sip:bob@Example.ORG", TargetKind.AOR, "sip:bob@example.org", "sip:bob@example.org", "bob"),
        ("<sip:bob@example.org>", TargetKind.AOR, "sip:bob@example.org", "sip:bob@example.org", "bob"),
        ("sips:bob@example.org", TargetKind.AOR, "sips:bob@example.org", "sip:bob@example.org", "bob"),
        ("sip:Bob@example.org", TargetKind.AOR, "sip:Bob@example.org", "sip:Bob@example.org", "Bob"),
        ("sip:bob@127.0.0.1", TargetKind.DIRECT, "sip:bob@127.0.0.1", "sip:bob@127.0.0.1", "bob"),
        ("sip:bob@127.0.0.1:5070", TargetKind.DIRECT, "sip:bob@127.0.0.1:5070", "sip:bob@127.0.0.1", "bob"),
        ("bob@192.0.2.7:5062", TargetKind.DIRECT, "sip:bob@192.0.2.7:5062", "sip:bob@192.0.2.7", "bob"),
        ("sip:bob@[::1]:5060", TargetKind.DIRECT, "sip:bob@[::1]:5060", "sip:bob@[::1]", "bob"),
        ("sip:bob@localhost", TargetKind.DIRECT, "sip:bob@localhost", "sip:bob@localhost", "bob"),
        (
            "sip:bob@pbx.example.net;transport=tcp",
            TargetKind.DIRECT,
            "sip:bob@pbx.example.net;transport=tcp",
            "sip:bob@pbx.example.net",
            "bob",
        ),
        (
            "sip:bob@sip.example.net:5060",
            TargetKind.DIRECT,
            "sip:bob@sip.example.net:5060",
            "sip:bob@sip.example.net",
            "bob",
        ),
    ],
)
def test_targets(text: str, kind: TargetKind, uri: str, aor: str, user: str) -> None:
    target = parse_target(text, domain=DOMAIN)
    assert (target.kind, target.uri, target.aor, target.user) == (kind, uri, aor, user)
    assert target.via_overlay is (kind is not TargetKind.DIRECT)


def test_a_gruu_is_called_directly_and_names_its_aor() -> None:
    gruu = make_gruu("sip:bob@example.org", (NodeDestination(bytes(range(16))),))
    target = parse_target(gruu, domain=DOMAIN)
    assert target.kind is TargetKind.GRUU
    assert target.uri == gruu
    assert target.aor == "sip:bob@example.org" and target.name == "bob@example.org"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("tel:+15551234", "telephone numbers"),
        ("http://example.org", "only sip: and sips:"),
        ("bob smith", "spaces"),
        ("sip:example.org", "names no user"),
        ("sip:bob@", "not a SIP address"),
        ("sip:bob@exa mple.org", "spaces"),
    ],
)
def test_bad_targets_say_why(text: str, words: str) -> None:
    with pytest.raises(TargetError) as info:
        parse_target(text, domain=DOMAIN)
    assert words in str(info.value)


def test_buddies_are_aors_only() -> None:
    assert normalise_aor("carol", domain=DOMAIN) == "sip:carol@example.org"
    assert normalise_aor("sips:carol@EXAMPLE.org", domain=DOMAIN) == "sip:carol@example.org"
    with pytest.raises(TargetError, match="not an AoR"):
        normalise_aor("sip:carol@127.0.0.1:5060", domain=DOMAIN)


def test_short_names() -> None:
    assert short_name("sip:bob@example.org") == "bob"
    assert short_name("bob@example.org") == "bob"
    assert short_name("sip:bob@example.org", "Bob Smith") == "Bob Smith"
    assert short_name("sip:bob@example.org;gr=xyz") == "bob"


@pytest.mark.parametrize(
    ("outcome", "cause", "words"),
    [
        (Outcome.NOT_REGISTERED, EndCause.NOT_ONLINE, "bob is not online"),
        (Outcome.DOMAIN_NOT_SERVED, EndCause.NOT_ON_OVERLAY, "bob's name is not on this overlay"),
        (Outcome.INVALID, EndCause.NOT_ON_OVERLAY, "bob's name is not on this overlay"),
        (Outcome.LOOP, EndCause.UNREACHABLE, "bob's call forwarding goes round in a circle"),
        (Outcome.DEPTH_LIMIT, EndCause.UNREACHABLE, "bob's calls are forwarded too many times"),
        (Outcome.FORWARDED_OUTSIDE, EndCause.UNREACHABLE, "bob's calls are forwarded outside this overlay"),
        (Outcome.LOOKUP_FAILED, EndCause.FAILED, "could not look bob up: the overlay did not answer"),
        (None, EndCause.UNREACHABLE, "bob is online but could not be reached"),
    ],
)
def test_unreachable_in_words(outcome: Outcome | None, cause: EndCause, words: str) -> None:
    assert unreachable_words("bob", outcome) == (cause, words)


@pytest.mark.parametrize(
    ("status", "phrase", "cause", "words"),
    [
        (486, "Busy Here", EndCause.BUSY, "bob is busy"),
        (600, "Busy Everywhere", EndCause.BUSY, "bob is busy"),
        (603, "Decline", EndCause.DECLINED, "bob declined"),
        (480, "Do Not Disturb", EndCause.DO_NOT_DISTURB, "bob does not want to be disturbed"),
        (480, "Temporarily Unavailable", EndCause.UNAVAILABLE, "bob is not available"),
        (408, "Request Timeout", EndCause.NO_ANSWER, "no answer"),
        (404, "Not Found", EndCause.NOT_ONLINE, "bob is not here"),
        (
            488,
            "Not Acceptable Here",
            EndCause.INCOMPATIBLE,
            "bob's phone cannot take this call (no common audio format)",
        ),
        (503, "Service Unavailable", EndCause.CONNECTION_LOST, "bob's phone could not be reached"),
        (
            500,
            "Server Internal Error",
            EndCause.REFUSED,
            "bob's phone had a problem (500 Server Internal Error)",
        ),
        (499, None, EndCause.REFUSED, "bob's phone refused (499)"),
    ],
)
def test_statuses_in_words(status: int, phrase: str | None, cause: EndCause, words: str) -> None:
    assert status_words("bob", status, phrase) == (cause, words)


def test_call_ends_in_words() -> None:
    assert call_end_words("bob", EndReason.REMOTE_HANGUP, None, None, answered=True) == (
        EndCause.REMOTE_HUNG_UP,
        "bob hung up",
    )
    assert call_end_words("bob", EndReason.LOCAL_HANGUP, None, None, answered=True)[0] is EndCause.HUNG_UP
    assert call_end_words("bob", EndReason.LOCAL_CANCEL, 487, None, answered=False)[0] is EndCause.CANCELLED
    assert call_end_words("bob", EndReason.TIMEOUT, 408, None, answered=False) == (
        EndCause.NO_ANSWER,
        "no answer",
    )
    assert call_end_words("bob", EndReason.REJECTED, 486, "Busy Here", answered=False) == (
        EndCause.BUSY,
        "bob is busy",
    )
    assert call_end_words("bob", EndReason.REJECTED, 603, "Decline", answered=False) == (
        EndCause.DECLINED,
        "bob declined",
    )
    assert call_end_words("bob", EndReason.REMOTE_CANCEL, 487, None, answered=False)[0] is EndCause.MISSED
    assert call_end_words("bob", EndReason.TRANSPORT_ERROR, 503, None, answered=False)[0] is (
        EndCause.CONNECTION_LOST
    )
    assert call_end_words("bobs", EndReason.DIALOG_GONE, 481, None, answered=True) == (
        EndCause.CONNECTION_LOST,
        "the connection to bobs was lost",
    )

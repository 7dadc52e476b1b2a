"""Phones as separate processes (``p2psip phone --json``) on the local overlay: found
through multicast DNS inside a network namespace the test makes (never on the host's
interfaces), each phone a process of its own, driven through stdin and read through its
JSON event lines. One LAN and one set of phones (alice, bob, carol) per module; the tests
run in order and leave the phones as they found them (no call up, settings back).

What the in-process tests (test_phone_*.py) cover on an enrolled overlay is done here
once more across processes and on the local overlay: registration, presence coming and
going, calls (answer, hang up, reject, cancel, an unknown name, busy), do not disturb,
forwarding (always, on busy, on no answer), transfer, two calls with one held, messages
both ways, the history after each (``p2psip history --json`` through the running phone's
control socket), a phone killed with SIGKILL during a call and during a message, a name
taken on the network, and a buddy that comes back with another key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from app.cli.init_cmd import init_profile
from app.phone.local_config import LOCAL_OVERLAY_NAME
from app.phone.store import PhoneStore
from tests.phone.lan import Lan, unavailable_reason
from tests.phone.processes import WAIT, Event, PhoneProcess, PhoneProcesses, history

pytestmark = [pytest.mark.multinode, pytest.mark.asyncio(loop_scope="module")]

TAKEN = "the name alice is already taken on this network by another device"


def aor(user: str) -> str:
    return f"sip:{user}@{LOCAL_OVERLAY_NAME}"


@dataclass
class Lab:
    lan: Lan
    group: PhoneProcesses
    root: Path
    phones: dict[str, PhoneProcess]

    async def start(self, user: str, folder: str | None = None, *args: str) -> PhoneProcess:
        directory = self.root / (folder or user)
        init_profile(user, directory)
        phone = await self.group.start(directory, *args, label=folder or user)
        return phone


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Lab]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    lan = Lan.create()
    group = PhoneProcesses(netns=lan.name)
    made = Lab(lan, group, tmp_path_factory.mktemp("lan-phones"), {})
    try:
        # One after the other: the first starts the overlay alone, the others find it.
        for user in ("alice", "bob", "carol"):
            phone = await made.start(user)
            await phone.registered()
            made.phones[user] = phone
        yield made
    finally:
        await group.close()
        await lan.close()


def calls(phone: PhoneProcess, number: int) -> list[str]:
    return [e["state"] for e in phone.seen("CallStateChanged", lambda e: e["call"] == number)]


async def dial(caller: PhoneProcess, callee: PhoneProcess, target: str) -> tuple[int, int]:
    """``caller`` dials ``target``; the call rings at ``callee``: (caller's id, callee's id)."""
    mark, callee_mark = caller.mark(), callee.mark()
    await caller.send(f"call {target}")
    out = await caller.expect(
        "CallStateChanged", lambda e: e["previous"] is None and e["direction"] == "outgoing", after=mark
    )
    ringing = await callee.expect(
        "CallStateChanged",
        lambda e: e["previous"] is None and e["direction"] == "incoming",
        after=callee_mark,
    )
    assert ringing["state"] == "ringing", ringing
    await caller.call_state("ringing", lambda e: e["call"] == out["call"])
    return out["call"], ringing["call"]


async def connect(caller: PhoneProcess, callee: PhoneProcess, target: str) -> tuple[int, int]:
    mine, theirs = await dial(caller, callee, target)
    await callee.send(f"answer {theirs}")
    await caller.call_state("connected", lambda e: e["call"] == mine)
    await callee.call_state("connected", lambda e: e["call"] == theirs)
    return mine, theirs


async def hang_up(
    phone: PhoneProcess, number: int, other: PhoneProcess, other_number: int
) -> tuple[Event, Event]:
    await phone.send(f"hangup {number}")
    ended = await phone.call_state("ended", lambda e: e["call"] == number)
    remote = await other.call_state("ended", lambda e: e["call"] == other_number)
    return ended, remote


async def test_registered_and_presence(lab: Lab) -> None:
    alice, bob, carol = (lab.phones[u] for u in ("alice", "bob", "carol"))
    for user, phone in lab.phones.items():
        assert phone.info["aor"] == aor(user)
        assert len(phone.info["node_id"]) == 32
        assert phone.info["gruu"] is None or phone.info["gruu"].startswith(f"sip:{user}@")
    await alice.send("buddy add bob Bob")
    added = await alice.expect("BuddiesChanged")
    assert (added["aor"], added["display_name"], added["added"]) == (aor("bob"), "Bob", True)
    await alice.send("buddy add carol")
    online = await alice.expect("PresenceChanged", lambda e: e["aor"] == aor("bob"))
    assert online["online"] is True and online["last_seen"] is not None
    online = await alice.expect("PresenceChanged", lambda e: e["aor"] == aor("carol"))
    assert online["online"] is True
    # A name nobody registered: offline from the first check.
    await alice.send("buddy add dave")
    dave = await alice.expect("PresenceChanged", lambda e: e["aor"] == aor("dave"))
    assert dave["online"] is False and dave["last_seen"] is None
    await alice.send("buddy remove dave")
    removed = await alice.expect("BuddiesChanged", lambda e: e["removed"])
    assert removed["aor"] == aor("dave")
    del bob, carol


async def test_call_answer_hang_up_reject_cancel_and_unknown(lab: Lab) -> None:
    alice, bob = lab.phones["alice"], lab.phones["bob"]

    # Answered, then hung up by the caller.
    mine, theirs = await connect(alice, bob, "bob")
    incoming = bob.seen("CallStateChanged", lambda e: e["call"] == theirs)[0]
    assert incoming["peer"] == aor("alice") and incoming["verified"] is True
    ended, remote = await hang_up(alice, mine, bob, theirs)
    assert (ended["cause"], ended["words"]) == ("hung up", "you hung up")
    assert (remote["cause"], remote["words"]) == ("remote hung up", "alice hung up")
    assert calls(alice, mine) == ["dialing", "ringing", "connected", "ended"]
    assert calls(bob, theirs) == ["ringing", "connected", "ended"]

    # Rejected by the callee.
    mine, theirs = await dial(alice, bob, "bob")
    await bob.send(f"reject {theirs}")
    ended = await alice.call_state("ended", lambda e: e["call"] == mine)
    # Named as alice's buddy list has him.
    assert (ended["cause"], ended["words"], ended["sip_status"]) == ("declined", "Bob declined", 603)
    await bob.call_state("ended", lambda e: e["call"] == theirs)

    # Cancelled by the caller before an answer: a missed call at bob's.
    mine, theirs = await dial(alice, bob, "bob")
    await alice.send(f"hangup {mine}")
    ended = await alice.call_state("ended", lambda e: e["call"] == mine)
    assert ended["cause"] == "cancelled"
    missed = await bob.call_state("ended", lambda e: e["call"] == theirs)
    assert missed["cause"] == "missed"

    # Nobody has the name.
    mark = alice.mark()
    await alice.send("call nobody")
    new = await alice.expect("CallStateChanged", lambda e: e["previous"] is None, after=mark)
    ended = await alice.call_state("ended", lambda e: e["call"] == new["call"])
    assert (ended["cause"], ended["words"]) == ("not online", "nobody is not online")

    # The history, read by another process through the running phone.
    entries = await history(alice.profile)
    latest = [(h["peer_aor"], h["direction"], h["outcome"]) for h in entries[:4]]
    assert latest == [
        (aor("nobody"), "outgoing", "nobody is not online"),
        (aor("bob"), "outgoing", ended_words(alice, mine)),
        (aor("bob"), "outgoing", "Bob declined"),
        (aor("bob"), "outgoing", "you hung up"),
    ]
    at_bob = await history(bob.profile)
    assert [h["direction"] for h in at_bob[:3]] == ["missed", "incoming", "incoming"]
    assert at_bob[2]["answered"] is not None and at_bob[2]["outcome"] == "alice hung up"


def ended_words(phone: PhoneProcess, number: int) -> str:
    (ended,) = phone.seen("CallStateChanged", lambda e: e["call"] == number and e["state"] == "ended")
    words = ended["words"]
    assert isinstance(words, str)
    return words


async def test_do_not_disturb_and_forwarding(lab: Lab) -> None:
    alice, bob, carol = (lab.phones[u] for u in ("alice", "bob", "carol"))

    await bob.send("dnd on")
    assert (await bob.expect("SettingsChanged"))["settings"]["do_not_disturb"] is True
    mark, bob_mark = alice.mark(), bob.mark()
    await alice.send("call bob")
    new = await alice.expect("CallStateChanged", lambda e: e["previous"] is None, after=mark)
    ended = await alice.call_state("ended", lambda e: e["call"] == new["call"])
    assert (ended["cause"], ended["words"], ended["sip_status"]) == (
        "do not disturb",
        "Bob does not want to be disturbed",
        480,
    )
    refused = await bob.expect("CallStateChanged", lambda e: e["previous"] is None, after=bob_mark)
    assert refused["state"] == "ended" and refused["cause"] == "do not disturb"
    await bob.send("dnd off")
    assert (await bob.expect("SettingsChanged"))["settings"]["do_not_disturb"] is False

    # Always: bob's AoR resolves to carol (RFC 7904 §3.1); bob's phone never rings.
    await bob.send("forward always carol")
    assert (await bob.expect("SettingsChanged"))["settings"]["forward_always"] == aor("carol")
    mine, at_carol = await connect(alice, carol, "bob")
    assert carol.seen("CallStateChanged", lambda e: e["call"] == at_carol)[0]["peer"] == aor("alice")
    await hang_up(alice, mine, carol, at_carol)
    assert not bob.seen("CallStateChanged", lambda e: e["previous"] is None and e["time"] > ended["time"])

    # On no answer: bob's phone rings, then sends the call on to carol.
    await bob.send("forward off")
    await bob.expect("SettingsChanged", lambda e: e["settings"]["forward_always"] is None)
    await bob.send("forward no-answer carol 3")  # after 3 s of ringing, not the default 20
    changed = await bob.expect("SettingsChanged", lambda e: e["settings"]["forward_no_answer"] == aor("carol"))
    assert changed["settings"]["no_answer_seconds"] == 3
    carol_mark = carol.mark()
    mine, at_bob = await dial(alice, bob, "bob")
    redirected = await alice.expect("CallRedirected", lambda e: e["call"] == mine, timeout=60)
    assert redirected["target"] == aor("carol")
    forwarded = await bob.call_state("ended", lambda e: e["call"] == at_bob)
    assert (forwarded["cause"], forwarded["words"]) == ("forwarded", "forwarded to carol (no answer)")
    rang = bob.seen("CallStateChanged", lambda e: e["call"] == at_bob and e["state"] == "ringing")[0]
    assert 2.9 <= forwarded["time"] - rang["time"] < 20.0  # the 3 s asked, not the default 20
    at_carol = (await carol.expect("CallStateChanged", lambda e: e["previous"] is None, after=carol_mark))[
        "call"
    ]
    await carol.send(f"answer {at_carol}")
    await alice.call_state("connected", lambda e: e["call"] == mine)
    await hang_up(alice, mine, carol, at_carol)

    # On busy: bob in a call with carol; alice's call goes to carol at once.
    await bob.send("forward off")
    await bob.expect("SettingsChanged", lambda e: e["settings"]["forward_no_answer"] is None)
    await bob.send("forward busy carol")
    await bob.expect("SettingsChanged", lambda e: e["settings"]["forward_busy"] == aor("carol"))
    first, at_bob = await connect(carol, bob, "bob")
    mark, carol_mark = alice.mark(), carol.mark()
    await alice.send("call bob")
    mine = (await alice.expect("CallStateChanged", lambda e: e["previous"] is None, after=mark))["call"]
    await alice.expect("CallRedirected", lambda e: e["call"] == mine)
    busy = await bob.expect("CallStateChanged", lambda e: e["cause"] == "forwarded")
    assert busy["words"] == "forwarded to carol (you were busy)"
    at_carol = (await carol.expect("CallStateChanged", lambda e: e["previous"] is None, after=carol_mark))[
        "call"
    ]
    await carol.send(f"answer {at_carol}")  # carol's call with bob is held first
    await alice.call_state("connected", lambda e: e["call"] == mine)
    await carol.call_state("held", lambda e: e["call"] == first)
    await hang_up(alice, mine, carol, at_carol)
    await hang_up(carol, first, bob, at_bob)
    await bob.send("forward off")
    await bob.expect("SettingsChanged", lambda e: e["settings"]["forward_busy"] is None)

    outcomes = [h["outcome"] for h in (await history(bob.profile))[:3]]
    assert outcomes == [  # newest first, by when each call began
        "forwarded to carol (you were busy)",
        "carol hung up",
        "forwarded to carol (no answer)",
    ]


async def test_transfer_and_two_calls_one_held(lab: Lab) -> None:
    alice, bob, carol = (lab.phones[u] for u in ("alice", "bob", "carol"))

    # Blind transfer (RFC 3515): alice hands bob over to carol.
    mine, at_bob = await connect(alice, bob, "bob")
    carol_mark = carol.mark()
    await alice.send(f"transfer {mine} carol")
    at_carol = await carol.expect("CallStateChanged", lambda e: e["previous"] is None, after=carol_mark)
    assert at_carol["peer"] == aor("bob") and at_carol["verified"] is True
    await carol.send(f"answer {at_carol['call']}")
    final = await alice.expect("TransferUpdate", lambda e: e["final"])
    assert final["status"] == 200
    ended = await alice.call_state("ended", lambda e: e["call"] == mine)
    assert (ended["cause"], ended["words"]) == ("transferred", "transferred to carol")
    await bob.call_state("ended", lambda e: e["call"] == at_bob)
    new = await bob.call_state(
        "connected", lambda e: e["direction"] == "outgoing" and e["peer"] == aor("carol")
    )
    await hang_up(bob, new["call"], carol, at_carol["call"])

    # Two calls, one held: dialling carol holds bob; resuming bob holds carol.
    to_bob, at_bob = await connect(alice, bob, "bob")
    to_carol, at_carol_id = await connect(alice, carol, "carol")
    await alice.call_state("held", lambda e: e["call"] == to_bob)
    held = await bob.expect("CallRemoteHold", lambda e: e["call"] == at_bob)
    assert held["held"] is True
    await alice.send(f"resume {to_bob}")
    await alice.call_state("held", lambda e: e["call"] == to_carol)
    await alice.call_state("connected", lambda e: e["call"] == to_bob)
    await bob.expect("CallRemoteHold", lambda e: e["call"] == at_bob and not e["held"])
    await carol.expect("CallRemoteHold", lambda e: e["call"] == at_carol_id and e["held"])
    await hang_up(alice, to_bob, bob, at_bob)
    await hang_up(alice, to_carol, carol, at_carol_id)

    entries = await history(alice.profile)
    assert [(h["peer_aor"], h["outcome"]) for h in entries[:3]] == [
        (aor("carol"), "you hung up"),
        (aor("bob"), "you hung up"),
        (aor("bob"), "transferred to carol"),
    ]


async def test_busy_when_every_line_is_taken(lab: Lab) -> None:
    """dave's phone takes one call at a time (``--max-calls 1``): while he talks to
    carol, alice's call is refused busy (486) with no ring; both histories say so."""
    alice, carol = lab.phones["alice"], lab.phones["carol"]
    dave = await lab.start("dave", None, "--max-calls", "1")
    try:
        await dave.registered()
        first, at_dave = await connect(carol, dave, "dave")
        mark, dave_mark = alice.mark(), dave.mark()
        await alice.send("call dave")
        mine = (await alice.expect("CallStateChanged", lambda e: e["previous"] is None, after=mark))["call"]
        ended = await alice.call_state("ended", lambda e: e["call"] == mine)
        assert (ended["cause"], ended["words"], ended["sip_status"]) == ("busy", "dave is busy", 486)
        assert "ringing" not in calls(alice, mine)
        refused = await dave.expect("CallStateChanged", lambda e: e["previous"] is None, after=dave_mark)
        assert (refused["state"], refused["cause"], refused["peer"]) == ("ended", "busy", aor("alice"))
        assert calls(dave, at_dave)[-1] == "connected"  # carol's call goes on
        await hang_up(carol, first, dave, at_dave)
        assert [(h["peer_aor"], h["outcome"]) for h in (await history(alice.profile))[:1]] == [
            (aor("dave"), "dave is busy")
        ]
        assert [(h["peer_aor"], h["outcome"]) for h in (await history(dave.profile))[:2]] == [
            (aor("alice"), "you were busy"),
            (aor("carol"), "carol hung up"),
        ]
    finally:
        await dave.quit()


async def test_messages_both_ways(lab: Lab) -> None:
    alice, bob = lab.phones["alice"], lab.phones["bob"]
    await alice.send("message bob hello bob, how are you?")
    states = [
        (await alice.expect("MessageStateChanged", lambda e, s=s: e["record"]["state"] == s))["record"]
        for s in ("sending", "sent", "delivered")
    ]
    assert {r["id"] for r in states} == {states[0]["id"]}
    got = await bob.expect("MessageReceived")
    assert got["record"]["text"] == "hello bob, how are you?" and got["record"]["peer_aor"] == aor("alice")
    assert got["verified"] is True
    await bob.send("message alice fine ☺")
    await bob.expect("MessageStateChanged", lambda e: e["record"]["state"] == "delivered")
    back = await alice.expect("MessageReceived")
    assert back["record"]["text"] == "fine ☺"
    with PhoneStore.in_profile(alice.profile) as store:
        texts = [(m.direction.value, m.text) for m in store.list_messages(aor("bob"))]
    assert texts[-2:] == [("outgoing", "hello bob, how are you?"), ("incoming", "fine ☺")]


async def test_killed_during_a_call_and_a_message(lab: Lab) -> None:
    """SIGKILL of carol's phone during a call: alice sees it go (the call ends, presence
    goes offline); carol's history and buddies survive, the interrupted call is closed
    when her phone starts again. Then SIGKILL right after a message reached her."""
    alice, carol = lab.phones["alice"], lab.phones["carol"]
    await carol.send("buddy add alice Alice")
    await carol.expect("PresenceChanged", lambda e: e["aor"] == aor("alice") and e["online"])
    mine, at_carol = await connect(alice, carol, "carol")
    assert await carol.kill() == -9
    # No BYE comes: alice's phone ends the call when the connection closes (ICE consent
    # expires after about 30 s, RFC 7675).
    ended = await alice.call_state("ended", lambda e: e["call"] == mine, timeout=90)
    assert (ended["cause"], ended["words"]) == ("connection lost", "the connection to carol was lost")
    gone = await alice.expect(
        "PresenceChanged", lambda e: e["aor"] == aor("carol") and not e["online"], timeout=90
    )
    assert gone["last_seen"] is not None

    carol = lab.phones["carol"] = await lab.group.start(carol.profile, label="carol-again")
    await carol.registered()
    # Back: a message from her shows her online at once (no wait for the next check).
    await carol.send("message alice back again")
    assert (await alice.expect("MessageReceived"))["record"]["text"] == "back again"
    back = await alice.expect("PresenceChanged", lambda e: e["aor"] == aor("carol") and e["online"])
    assert back["last_seen"] > gone["last_seen"]
    (interrupted,) = [h for h in await history(carol.profile) if h["id"] == at_carol]
    assert interrupted["peer_aor"] == aor("alice") and interrupted["answered"] is not None
    assert interrupted["ended"] == interrupted["answered"]  # no talk time we cannot vouch for
    assert interrupted["outcome"].startswith("interrupted")
    with PhoneStore.in_profile(carol.profile) as store:
        assert [c.aor for c in store.list_contacts()] == [aor("alice")]

    # A message reaches carol; she is killed the moment it is shown.
    await alice.send("message carol are you still there?")
    shown = await carol.expect("MessageReceived")
    assert await carol.kill() == -9
    await alice.expect("MessageStateChanged", lambda e: e["record"]["state"] == "delivered")
    carol = lab.phones["carol"] = await lab.group.start(carol.profile, label="carol-third")
    await carol.registered()
    with PhoneStore.in_profile(carol.profile) as store:
        texts = [(m.id, m.text) for m in store.list_messages(aor("alice"))]
    assert (shown["record"]["id"], "are you still there?") in texts

    # carol kills her phone while her own message is on its way: it is kept, delivered or
    # failed, never lost or left "sending".
    await carol.send("message alice one more thing")
    sending = await carol.expect("MessageStateChanged", lambda e: e["record"]["state"] == "sending")
    assert await carol.kill() == -9
    carol = lab.phones["carol"] = await lab.group.start(carol.profile, label="carol-fourth")
    await carol.registered()
    with PhoneStore.in_profile(carol.profile) as store:
        record = store.get_message(sending["record"]["id"])
    assert record is not None and record.text == "one more thing"
    assert record.state.value in ("delivered", "failed"), record
    if record.state.value == "failed":
        assert record.reason == "the phone stopped before it was sent"


async def test_a_taken_name_is_refused(lab: Lab) -> None:
    other = await lab.start("alice", "alice-on-another-device")
    assert await other.wait_exit(WAIT * 2) == 1
    assert f"p2psip: error: {TAKEN}" in other.stderr_text().splitlines()
    assert not other.seen("Ready")
    # alice keeps her name: bob still reaches her phone.
    bob, alice = lab.phones["bob"], lab.phones["alice"]
    mine, theirs = await dial(bob, alice, "alice")
    await bob.send(f"hangup {mine}")
    try:
        await alice.call_state("ended", lambda e: e["call"] == theirs)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nbob: {bob.describe()}") from None


async def test_a_buddy_back_with_another_key_is_flagged(lab: Lab) -> None:
    """bob's device goes (signed out); "bob" is made again on another device, with a new
    key; alice, who had bob as a buddy (and his key pinned from their calls), flags him."""
    alice, old_bob = lab.phones["alice"], lab.phones["bob"]
    assert await old_bob.quit() == 0  # signed out: the name is free
    bob = lab.phones["bob"] = await lab.start("bob", "bob-new-device")
    await bob.registered()
    assert bob.info["node_id"] != old_bob.info["node_id"]

    await bob.send("message alice it is me, new phone")
    got = await alice.expect("MessageReceived", lambda e: e["record"]["text"] == "it is me, new phone")
    assert got["verified"] is False
    changed = await alice.expect("KeyChanged")
    assert changed["aor"] == aor("bob")
    assert changed["node_id"] == bob.info["node_id"]
    assert changed["pinned_node_id"] == old_bob.info["node_id"]

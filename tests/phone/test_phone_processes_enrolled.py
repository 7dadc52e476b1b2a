"""Phones as separate processes (``p2psip phone --json``) on an operator's overlay over
real sockets: the bootstrap peer a ``p2psip peer`` process, each phone a process of its
own. Registration, a call and messages across processes, and SIGKILL of a phone during a
call and while its message is on its way: the history and the buddies are intact when it
starts again, the interrupted call closed (``end_interrupted_calls``), the message kept
(delivered, or failed with the reason), never lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from app.phone.store import PhoneStore
from tests.phone.processes import EnrolledOverlay, PhoneProcess, PhoneProcesses, history

pytestmark = [pytest.mark.multinode, pytest.mark.asyncio(loop_scope="module")]


@dataclass
class Lab:
    overlay: EnrolledOverlay
    group: PhoneProcesses
    phones: dict[str, PhoneProcess]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab(tmp_path_factory: pytest.TempPathFactory, interface_address: str) -> AsyncIterator[Lab]:
    overlay = EnrolledOverlay(tmp_path_factory.mktemp("enrolled-phones"))
    group = PhoneProcesses()
    try:
        await overlay.start()
        made = Lab(overlay, group, {})
        for user in ("alice", "bob"):
            made.phones[user] = await group.start(overlay.profile(user), label=user)
        for phone in made.phones.values():
            await phone.registered()
        yield made
    finally:
        await group.close()
        await overlay.close()


async def connect(caller: PhoneProcess, callee: PhoneProcess, target: str) -> tuple[int, int]:
    mark, callee_mark = caller.mark(), callee.mark()
    await caller.send(f"call {target}")
    mine = (await caller.expect("CallStateChanged", lambda e: e["previous"] is None, after=mark))["call"]
    theirs = (await callee.expect("CallStateChanged", lambda e: e["previous"] is None, after=callee_mark))[
        "call"
    ]
    await callee.send(f"answer {theirs}")
    await caller.call_state("connected", lambda e: e["call"] == mine)
    await callee.call_state("connected", lambda e: e["call"] == theirs)
    return mine, theirs


async def test_call_and_messages_across_processes(lab: Lab) -> None:
    alice, bob = lab.phones["alice"], lab.phones["bob"]
    assert alice.info["aor"] == lab.overlay.aor("alice") and alice.info["state"] == "registered"
    mine, theirs = await connect(alice, bob, "bob")
    assert bob.seen("CallStateChanged", lambda e: e["call"] == theirs)[0]["verified"] is True
    await bob.send(f"hangup {theirs}")
    assert (await alice.call_state("ended", lambda e: e["call"] == mine))["words"] == "bob hung up"
    await bob.call_state("ended", lambda e: e["call"] == theirs)

    await alice.send("message bob over the overlay")
    assert (await bob.expect("MessageReceived"))["record"]["text"] == "over the overlay"
    await alice.expect("MessageStateChanged", lambda e: e["record"]["state"] == "delivered")
    await bob.send("message alice and back")
    assert (await alice.expect("MessageReceived"))["record"]["text"] == "and back"

    (entry,) = await history(alice.profile)
    assert (entry["peer_aor"], entry["direction"], entry["outcome"]) == (
        lab.overlay.aor("bob"),
        "outgoing",
        "bob hung up",
    )


async def test_killed_during_a_call_and_a_message(lab: Lab) -> None:
    alice, bob = lab.phones["alice"], lab.phones["bob"]
    await alice.send("buddy add bob Bob")
    await alice.expect("PresenceChanged", lambda e: e["aor"] == lab.overlay.aor("bob") and e["online"])
    mine, theirs = await connect(alice, bob, "bob")
    assert await alice.kill() == -9
    # No BYE comes from a killed phone: bob's phone ends the call when the connection to
    # it closes (ICE consent expires after about 30 s, RFC 7675).
    ended = await bob.call_state("ended", lambda e: e["call"] == theirs, timeout=90)
    assert (ended["cause"], ended["words"]) == ("connection lost", "the connection to alice was lost")
    (at_bob,) = [h for h in await history(bob.profile) if h["id"] == theirs]
    assert at_bob["outcome"] == "the connection to alice was lost" and at_bob["ended"] is not None

    alice = lab.phones["alice"] = await lab.group.start(alice.profile, label="alice-again")
    await alice.registered()
    entries = await history(alice.profile)
    (interrupted,) = [h for h in entries if h["id"] == mine]
    assert interrupted["peer_aor"] == lab.overlay.aor("bob") and interrupted["direction"] == "outgoing"
    assert interrupted["answered"] is not None and interrupted["ended"] == interrupted["answered"]
    assert interrupted["outcome"].startswith("interrupted")
    # The buddy list survived, and presence picks up again.
    await alice.expect("PresenceChanged", lambda e: e["aor"] == lab.overlay.aor("bob") and e["online"])
    with PhoneStore.in_profile(alice.profile) as store:
        assert [(c.aor, c.display_name) for c in store.list_contacts()] == [(lab.overlay.aor("bob"), "Bob")]

    # Killed while its message is on its way: kept, delivered or failed, never "sending".
    await alice.send("message bob did you get this?")
    sending = await alice.expect("MessageStateChanged", lambda e: e["record"]["state"] == "sending")
    assert await alice.kill() == -9
    alice = lab.phones["alice"] = await lab.group.start(alice.profile, label="alice-third")
    await alice.registered()
    with PhoneStore.in_profile(alice.profile) as store:
        record = store.get_message(sending["record"]["id"])
    assert record is not None and record.text == "did you get this?"
    assert record.state.value in ("delivered", "failed"), record
    if record.state.value == "failed":
        assert record.reason == "the phone stopped before it was sent"

    # bob is killed the moment a message is shown to him: it is there when he is back.
    await alice.send("message bob still there?")
    shown = await bob.expect("MessageReceived", lambda e: e["record"]["text"] == "still there?")
    assert await bob.kill() == -9
    bob = lab.phones["bob"] = await lab.group.start(bob.profile, label="bob-again")
    await bob.registered()
    with PhoneStore.in_profile(bob.profile) as store:
        texts = [(m.id, m.text) for m in store.list_messages(lab.overlay.aor("alice"))]
    assert (shown["record"]["id"], "still there?") in texts

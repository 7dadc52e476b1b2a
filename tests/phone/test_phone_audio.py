"""Call audio through the phone (issue 15): ``p2psip phone`` processes on an enrolled
overlay (a bootstrap peer process, phones as processes), media on (the default), a tone
file sent with ``--play`` and what is heard written with ``--record``. The recordings are
read after the calls end: the tone's frequency by FFT, no gap longer than 60 ms after the
first audio (10 ms RMS windows, :mod:`tests.media.session_support`).

- a 440 Hz tone one way and 660 Hz the other, with Opus and with PCMU (each phone's
  codec order in its settings), and again after hold and resume;
- DTMF digits typed on one phone (``dtmf N DIGITS``) arrive at the other as
  ``DtmfReceived``: by RFC 4733 when media carries telephone-events, by SIP INFO with
  ``--no-media`` (no media to carry them);
- ``CallQuality`` events (RTT, jitter, loss, MOS) while a call is up;
- the echo test: ``echo@`` is a phone run with ``--echo``; the caller hears its own tone
  burst back about a second later (measured).

ICE runs on this machine's interface address (aioice leaves loopback out).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from aiortc import RTCIceServer

from app.media.audio import SAMPLE_RATE, write_wav
from app.phone.store import PhoneStore
from tests.media.session_support import WINDOW, Recording, interface_address_or_skip, tone_file
from tests.media.test_session_turn import turn_server  # noqa: F401  (the coturn fixture)
from tests.phone.processes import EnrolledOverlay, Event, PhoneProcess, PhoneProcesses

pytestmark = [pytest.mark.media, pytest.mark.multinode]

MAX_GAP = 0.06
CALL_SECONDS = 40.0  # generous: the machine is shared


@pytest_asyncio.fixture
async def overlay(tmp_path: Path) -> AsyncIterator[EnrolledOverlay]:
    interface_address_or_skip()
    lab = EnrolledOverlay(tmp_path)
    try:
        await lab.start()
        yield lab
    finally:
        await lab.close()


@pytest_asyncio.fixture
async def group() -> AsyncIterator[PhoneProcesses]:
    phones = PhoneProcesses()
    try:
        yield phones
    finally:
        await phones.close()


def set_codecs(profile: Path, *codecs: str) -> None:
    with PhoneStore.in_profile(profile) as store:
        settings = store.settings()
        store.save_settings(type(settings)(**{**_fields(settings), "codec_order": tuple(codecs)}))


def _fields(settings: object) -> dict[str, object]:
    import dataclasses

    assert dataclasses.is_dataclass(settings) and not isinstance(settings, type)
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


async def start(group: PhoneProcesses, profile: Path, *args: str) -> PhoneProcess:
    phone = await group.start(profile, *args)
    await phone.registered()
    return phone


async def connected(caller: PhoneProcess, callee: PhoneProcess, target: str) -> tuple[int, int]:
    await caller.send(f"call {target}")
    ringing = await callee.call_state("ringing", lambda e: e["direction"] == "incoming")
    await callee.send(f"answer {ringing['call']}")
    theirs = await callee.call_state("connected", lambda e: e["call"] == ringing["call"])
    mine = await caller.call_state("connected", lambda e: e["direction"] == "outgoing")
    return mine["call"], theirs["call"]


def check_tone(path: Path, freq: float, *, start: int = 0, end: int | None = None) -> tuple[float, float]:
    """(frequency found, longest gap) of the audible part of a recording."""
    recording = Recording.read(path)
    first, last = recording.span(start, end)
    assert (last - first) * WINDOW / SAMPLE_RATE > 1.0, "less than a second of audio"
    found = recording.frequency(first, last)
    gap = recording.longest_gap(first, last)
    assert abs(found - freq) < 5, f"{path.name}: strongest frequency {found:.1f} Hz, sent {freq} Hz"
    assert gap <= MAX_GAP, f"{path.name}: a gap of {gap * 1000:.0f} ms after the first audio"
    return found, gap


async def hang_up(caller: PhoneProcess, callee: PhoneProcess, call: int) -> None:
    await caller.send(f"hangup {call}")
    await caller.call_state("ended")
    await callee.call_state("ended")


@pytest.mark.parametrize("codec", ["opus", "PCMU"])
async def test_tone_both_ways(
    overlay: EnrolledOverlay, group: PhoneProcesses, tmp_path: Path, codec: str
) -> None:
    alice_dir, bob_dir = overlay.profile("alice"), overlay.profile("bob")
    set_codecs(alice_dir, codec)
    set_codecs(bob_dir, codec)
    a_tone, b_tone = tone_file(tmp_path / "440.wav", 440.0), tone_file(tmp_path / "660.wav", 660.0)
    a_rec, b_rec = tmp_path / "alice-heard.wav", tmp_path / "bob-heard.wav"
    alice = await start(group, alice_dir, "--play", str(a_tone), "--record", str(a_rec))
    bob = await start(group, bob_dir, "--play", str(b_tone), "--record", str(b_rec))
    mine, _ = await connected(alice, bob, "bob")
    await alice.expect("CallMedia", lambda e: e["what"] == "first-audio", timeout=CALL_SECONDS)
    await bob.expect("CallMedia", lambda e: e["what"] == "first-audio", timeout=CALL_SECONDS)
    quality = await alice.expect("CallQuality", lambda e: e["mos"] > 0, timeout=CALL_SECONDS)
    assert quality["codec"] is not None and codec.lower() in quality["codec"].lower()
    assert 1.0 <= quality["mos"] <= 4.5
    # Two seconds of tone in each direction: wait for a second quality sample (2 s apart).
    await alice.expect("CallQuality", timeout=CALL_SECONDS)
    await hang_up(alice, bob, mine)
    await alice.quit()
    await bob.quit()
    check_tone(b_rec, 440.0)  # bob heard alice's tone
    check_tone(a_rec, 660.0)  # alice heard bob's


async def test_tone_after_hold_and_resume(
    overlay: EnrolledOverlay, group: PhoneProcesses, tmp_path: Path
) -> None:
    tone = tone_file(tmp_path / "440.wav", 440.0)
    heard = tmp_path / "bob-heard.wav"
    alice = await start(group, overlay.profile("alice"), "--play", str(tone))
    bob = await start(group, overlay.profile("bob"), "--record", str(heard))
    mine, theirs = await connected(alice, bob, "bob")
    await bob.expect("CallMedia", lambda e: e["what"] == "first-audio", timeout=CALL_SECONDS)
    await bob.expect("CallQuality", timeout=CALL_SECONDS)
    # Bob (who records) holds: his offer says sendonly, alice's answer recvonly: alice
    # stops sending (RFC 3264 §8.4), bob hears nothing until he resumes.
    await bob.send(f"hold {theirs}")
    await bob.call_state("held")
    await alice.expect("CallRemoteHold", lambda e: e["held"], timeout=CALL_SECONDS)
    await bob.expect("CallQuality", timeout=CALL_SECONDS)  # a couple of seconds held
    await bob.send(f"resume {theirs}")
    await bob.call_state("connected", lambda e: e["previous"] == "held")
    await alice.expect("CallRemoteHold", lambda e: not e["held"], timeout=CALL_SECONDS)
    await bob.expect("CallQuality", timeout=CALL_SECONDS)
    await bob.expect("CallQuality", timeout=CALL_SECONDS)  # >= 2 s of tone after resume
    await hang_up(alice, bob, mine)
    await alice.quit()
    await bob.quit()
    recording = Recording.read(heard)
    loud = recording.audible()
    # Audio, then the hold (a long quiet stretch), then audio again.
    quiet_runs = np.flatnonzero(np.diff(loud.astype(np.int8)) != 0)
    assert len(quiet_runs) >= 2, "no hold gap in the recording"
    first, last = recording.span()
    gap_start = next(i for i in range(first, last) if not loud[i] and not loud[i : i + 50].any())
    resumed = gap_start + int(np.flatnonzero(loud[gap_start:])[0])
    assert (resumed - gap_start) * WINDOW / SAMPLE_RATE >= 0.5, "the hold did not silence the call"
    check_tone(heard, 440.0, end=gap_start)
    check_tone(heard, 440.0, start=resumed)


@pytest.mark.parametrize("media", [True, False])
async def test_dtmf(overlay: EnrolledOverlay, group: PhoneProcesses, media: bool) -> None:
    extra = () if media else ("--no-media",)
    alice = await start(group, overlay.profile("alice"), *extra)
    bob = await start(group, overlay.profile("bob"), *extra)
    mine, _ = await connected(alice, bob, "bob")
    if media:
        await bob.expect("CallMedia", lambda e: e["what"] == "first-audio", timeout=CALL_SECONDS)
    await alice.send(f"dtmf {mine} 159#*0")
    digits = [await bob.expect("DtmfReceived", timeout=CALL_SECONDS) for _ in range(6)]
    assert "".join(d["digit"] for d in digits) == "159#*0"
    assert {d["method"] for d in digits} == {"rfc4733" if media else "sip-info"}
    await hang_up(alice, bob, mine)


async def test_echo_service(overlay: EnrolledOverlay, group: PhoneProcesses, tmp_path: Path) -> None:
    """echo@ on an operator's overlay: a phone enrolled as ``echo`` run with ``--echo``.
    Alice sends a 200 ms burst every 2 s and hears each burst back about 1 s later."""
    burst = np.zeros(2 * SAMPLE_RATE, dtype=np.int16)
    n = SAMPLE_RATE // 5
    burst[:n] = (np.sin(2 * np.pi * 440.0 * np.arange(n) / SAMPLE_RATE) * 8000).astype(np.int16)
    source = tmp_path / "bursts.wav"
    write_wav(source, burst)
    heard = tmp_path / "alice-heard.wav"
    await start(group, overlay.profile("echo"), "--echo")
    alice = await start(
        group, overlay.profile("alice"), "--play", str(source), "--record", str(heard), "--audio-onsets"
    )
    await alice.send("call echo")
    connected_event = await alice.call_state("connected", timeout=CALL_SECONDS)
    sent: list[Event] = []
    heard_onsets: list[Event] = []
    for _ in range(3):
        heard_onsets.append(
            await alice.expect("CallMedia", lambda e: e["what"] == "onset-heard", timeout=CALL_SECONDS)
        )
    sent = alice.seen("CallMedia", lambda e: e["what"] == "onset-sent")
    await alice.send(f"hangup {connected_event['call']}")
    await alice.call_state("ended")
    await alice.quit()
    # Each onset heard pairs with the latest onset sent before it: the echo's delay.
    sent_times = sorted(float(e["detail"]) for e in sent)
    delays = []
    for event in heard_onsets:
        at = float(event["detail"])
        before = [t for t in sent_times if t < at]
        assert before, "a burst heard before any was sent"
        delays.append(at - before[-1])
    print(f"echo delays (s): {[round(d, 3) for d in delays]}")
    assert all(1.0 <= d <= 1.5 for d in delays), f"echo delays {delays}"
    found, _ = Recording.read(heard), None
    first, last = found.span()
    assert abs(found.frequency(first, last) - 440.0) < 5


async def test_built_in_echo_test_on_the_local_overlay(tmp_path: Path) -> None:
    """On the local overlay every phone has echo@ built in: a second user agent in the
    phone's process, reached by a real INVITE over a plain SIP flow on 127.0.0.1, whose
    media session (ICE on the LAN address, DTLS-SRTP, Opus) sends back what it hears 1 s
    later. One phone process in a network namespace (multicast DNS stays inside)."""
    from app.cli.init_cmd import init_profile
    from tests.phone.lan import Lan, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    burst = np.zeros(2 * SAMPLE_RATE, dtype=np.int16)
    n = SAMPLE_RATE // 5
    burst[:n] = (np.sin(2 * np.pi * 440.0 * np.arange(n) / SAMPLE_RATE) * 8000).astype(np.int16)
    source = tmp_path / "bursts.wav"
    write_wav(source, burst)
    lan = Lan.create()
    group = PhoneProcesses(netns=lan.name)
    try:
        profile = tmp_path / "alice"
        init_profile("alice", profile)
        alice = await group.start(profile, "--play", str(source), "--audio-onsets")
        await alice.registered()
        await alice.send("call echo")
        call = await alice.call_state("connected", timeout=CALL_SECONDS)
        assert call["peer"].startswith("sip:echo@"), call
        heard = [
            await alice.expect("CallMedia", lambda e: e["what"] == "onset-heard", timeout=CALL_SECONDS)
            for _ in range(2)
        ]
        sent = sorted(
            float(e["detail"]) for e in alice.seen("CallMedia", lambda e: e["what"] == "onset-sent")
        )
        delays = [float(h["detail"]) - max(t for t in sent if t < float(h["detail"])) for h in heard]
        print(f"built-in echo delays (s): {[round(d, 3) for d in delays]}")
        assert all(1.0 <= d <= 1.5 for d in delays), f"echo delays {delays}"
        await alice.send(f"hangup {call['call']}")
        await alice.call_state("ended")
    finally:
        await group.close()
        await lan.close()


async def test_tone_through_five_percent_loss(tmp_path: Path) -> None:
    """Two phone processes on the local overlay in a network namespace; once the call's
    audio flows, the namespace drops 5 % of the UDP packets it receives at random
    (iptables' statistic match: this kernel has no netem). The tone still arrives, its
    losses concealed (Opus PLC and the playout buffer's concealment): the right
    frequency and no gap over 60 ms."""
    import shutil
    import subprocess

    from app.cli.init_cmd import init_profile
    from tests.phone.lan import Lan, unavailable_reason

    reason = unavailable_reason() or (None if shutil.which("iptables") else "iptables is not installed")
    if reason is not None:
        pytest.skip(reason)
    tone = tone_file(tmp_path / "440.wav", 440.0)
    heard = tmp_path / "bob-heard.wav"
    lan = Lan.create()
    group = PhoneProcesses(netns=lan.name)
    try:
        profiles = {}
        for user in ("alice", "bob"):
            profiles[user] = tmp_path / user
            init_profile(user, profiles[user])
        alice = await group.start(profiles["alice"], "--play", str(tone))
        await alice.registered()
        bob = await group.start(profiles["bob"], "--record", str(heard))
        await bob.registered()
        mine, _ = await connected(alice, bob, "bob")
        await bob.expect("CallMedia", lambda e: e["what"] == "first-audio", timeout=CALL_SECONDS)
        rule = ["-p", "udp", "-m", "statistic", "--mode", "random", "--probability", "0.05", "-j", "DROP"]
        subprocess.run(["ip", "netns", "exec", lan.name, "iptables", "-I", "INPUT", *rule], check=True)
        for _ in range(3):  # about six seconds of lossy audio
            await bob.expect("CallQuality", timeout=CALL_SECONDS)
        counters = subprocess.run(
            ["ip", "netns", "exec", lan.name, "iptables", "-L", "INPUT", "-v", "-n", "-x"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        dropped = sum(int(line.split()[0]) for line in counters.splitlines() if " DROP " in f" {line} ")
        lossy = [e for e in bob.seen("CallQuality") if e["loss_percent"] > 0]
        await hang_up(alice, bob, mine)
        await alice.quit()
        await bob.quit()
        assert dropped > 10, f"only {dropped} packets dropped"
        assert lossy, "bob's phone saw no loss"
        _found, gap = check_tone(heard, 440.0)
        print(
            f"5 % loss: {dropped} packets dropped, loss seen {[e['loss_percent'] for e in lossy]}, gap {gap * 1000:.0f} ms"
        )
    finally:
        await group.close()
        await lan.close()


async def test_tone_through_a_turn_relay_only(
    overlay: EnrolledOverlay,
    group: PhoneProcesses,
    tmp_path: Path,
    turn_server: RTCIceServer,  # noqa: F811  (the fixture imported above)
) -> None:
    """Both phones offer relayed candidates only (``--relay-only`` with coturn as their
    ``--ice-server``): all media goes through the TURN server, as for a phone that can
    reach nothing but the relay. The tone still arrives."""
    assert isinstance(turn_server.urls, str)
    url = f"turn:{turn_server.username}:{turn_server.credential}@{turn_server.urls.split(':', 1)[1]}"
    tone = tone_file(tmp_path / "440.wav", 440.0)
    heard = tmp_path / "bob-heard.wav"
    relay = ("--ice-server", url, "--relay-only")
    alice = await start(group, overlay.profile("alice"), "--play", str(tone), *relay)
    bob = await start(group, overlay.profile("bob"), "--record", str(heard), *relay)
    mine, _ = await connected(alice, bob, "bob")
    await bob.expect("CallMedia", lambda e: e["what"] == "first-audio", timeout=CALL_SECONDS)
    await bob.expect("CallQuality", timeout=CALL_SECONDS)
    await bob.expect("CallQuality", timeout=CALL_SECONDS)
    await hang_up(alice, bob, mine)
    await alice.quit()
    await bob.quit()
    check_tone(heard, 440.0)

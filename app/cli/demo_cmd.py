"""``p2psip demo [--json]`` (``make run``): two phones call each other over an overlay the
demo builds itself.

In a temporary folder: an overlay with its own CA and signed configuration document
(:func:`app.bench.overlay_harness.provision_overlay`; the bootstrap peer's address is in
the document, no discovery, no multicast), three ``p2psip peer`` processes on 127.0.0.1
over TLS (the first the bootstrap peer), and the profiles of alice and bob, issued by the
overlay's CA. Then alice's and bob's phones run as ``p2psip phone --json`` processes,
driven through their stdin like any program would:

1. both join the overlay and register their AoRs (RFC 7904 §3);
2. alice calls ``bob`` (Fetch of his SIP-REGISTRATION, AppAttach, ICE on this machine's
   interface address, INVITE over DTLS); bob's phone rings, bob answers;
3. call audio: alice's phone sends a 440 Hz tone file as her microphone, bob's records
   what it hears; ``first_audio`` is when bob's phone first heard it (RMS);
4. alice sends bob a message; it is delivered;
5. alice hangs up; both phones see the call end; both sign out.

Printed: a timeline, each step in ms since the start; with ``--json`` one object with
``registered``, ``call_answered``, ``first_audio``, ``message_delivered``, ``hung_up``
(booleans), ``steps`` (step -> ms) and ``ok``. Every process is stopped at the end, also
on a failure or Ctrl-C. Exit 0 when every step worked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.cli import CliError
from app.cli.processes import PeerProcess, PhoneProcess

CHECKS = ("registered", "call_answered", "first_audio", "message_delivered", "hung_up")


def _call_state(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("event") == "CallStateChanged" and e.get("state") == state


async def run_demo(workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """The demo in ``workdir``; its report (see the module docstring)."""
    import numpy as np

    from app.bench.overlay_harness import provision_overlay
    from app.media.audio import SAMPLE_RATE, write_wav

    report: dict[str, Any] = {name: False for name in CHECKS}
    steps: dict[str, float] = {}
    report["steps"] = steps
    started = time.monotonic()
    wall_start = time.time()

    def step(name: str, at: float | None = None) -> None:
        ms = round(((at - wall_start) if at is not None else (time.monotonic() - started)) * 1000)
        steps[name] = ms
        say(f"{ms:7d} ms  {name}")

    overlay = provision_overlay(workdir / "overlay", 3, name="demo.p2psip.test")
    peer_profiles = [peer.directory for peer in overlay.peers]  # before the users join the list
    alice_profile = overlay.add_profile("alice").directory
    bob_profile = overlay.add_profile("bob").directory
    tone = workdir / "tone-440.wav"
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    write_wav(tone, (np.sin(2 * np.pi * 440.0 * t) * 8000).astype(np.int16))
    heard = workdir / "bob-heard.wav"
    phones: list[PhoneProcess] = []
    peers: list[PeerProcess] = []
    # The bootstrap peer's address, bound while provisioning, is freed for its process:
    # p2psip peer claims a configured bootstrap address of this machine that is free.
    overlay.close()
    try:
        step("overlay provisioned: CA, signed configuration, 3 peer and 2 phone certificates")
        peers.append(await PeerProcess.start(peer_profiles[0]))
        others = await asyncio.gather(
            *(PeerProcess.start(p) for p in peer_profiles[1:]), return_exceptions=True
        )
        peers += [p for p in others if isinstance(p, PeerProcess)]  # stopped below, whatever happens
        for failed in others:
            if isinstance(failed, BaseException):
                raise failed
        step("3 p2psip peer processes joined over TLS on 127.0.0.1")
        alice = await PhoneProcess.start("alice", alice_profile, "--play", str(tone))
        bob = await PhoneProcess.start("bob", bob_profile, "--record", str(heard), "--audio-onsets")
        phones += [alice, bob]
        for phone in phones:
            ready = await phone.expect(lambda e: e.get("event") == "Ready", "Ready line")
            if ready["state"] != "registered":
                raise CliError(f"{phone.name} could not register: {ready.get('reason')}")
            step(f"{phone.name}'s phone registered {ready['aor']}")
        report["registered"] = True
        await alice.send("call bob")
        await alice.expect(_call_state("dialing"), "dialing")
        step("alice calls bob")
        ringing = await bob.expect(_call_state("ringing"), "incoming call")
        step(f"bob's phone rings ({ringing['peer']}, verified {ringing['verified']})")
        await bob.send("answer")
        answered = await alice.expect(_call_state("connected"), "answer")
        step("bob answers: alice's call is connected", answered["time"])
        report["call_answered"] = True
        heard_at = await bob.expect(
            lambda e: e.get("event") == "CallMedia" and e.get("what") == "onset-heard", "audio heard"
        )
        step("bob's phone hears alice's tone (first audio, RMS)", float(heard_at["detail"]))
        report["first_audio"] = True
        await alice.send("message bob 'hello bob, this came over the overlay'")
        await bob.expect(lambda e: e.get("event") == "MessageReceived", "message")
        step("bob's phone receives alice's message")
        await alice.expect(
            lambda e: e.get("event") == "MessageStateChanged" and e["record"]["state"] == "delivered",
            "delivery",
        )
        step("alice's message is delivered")
        report["message_delivered"] = True
        await alice.send("hangup")
        await alice.expect(_call_state("ended"), "end of the call")
        ended = await bob.expect(_call_state("ended"), "end of the call")
        step(f"alice hangs up; bob's phone: {ended['words']}")
        report["hung_up"] = True
        for phone in phones:
            await phone.send("quit")
        for phone in phones:
            await phone.expect(
                lambda e: e.get("event") == "PhoneStateChanged" and e.get("state") == "closed", "sign-out"
            )
        step("both phones signed out")
    except CliError as exc:
        report["error"] = str(exc)
    finally:
        await asyncio.gather(*(p.stop() for p in phones), return_exceptions=True)
        await asyncio.gather(*(p.stop() for p in peers), return_exceptions=True)
    report["ok"] = all(report[name] for name in CHECKS)
    return report


def _cmd_demo(args: argparse.Namespace) -> int:
    say: Callable[[str], None] = (lambda _text: None) if args.json else (lambda text: print(text, flush=True))
    workdir = Path(tempfile.mkdtemp(prefix="p2psip-demo-"))
    try:
        report = asyncio.run(run_demo(workdir, say))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(report), flush=True)
    elif report["ok"]:
        print("demo finished: overlay, registration, call with audio, message and hang-up all work")
    else:
        print(f"demo failed: {report.get('error', 'a step did not happen')}")
    return 0 if report["ok"] else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="end-to-end demo: an overlay, two phones, a call and a message"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object with the outcome and step times")
    parser.set_defaults(func=_cmd_demo)


__all__ = ["register", "run_demo"]

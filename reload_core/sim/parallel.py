"""A simulation spread over several processes, kept in step conservatively.

One Python process runs one core. A simulation of many nodes splits its nodes between
``workers`` forked processes (node i runs in worker i mod workers); each runs the same
script (the same seeded draws, hence the same arrivals, churn and workload) but only its
own nodes. Links between nodes of two workers carry posts (:meth:`TimeSync.post`):
"call this on that link at time t".

Every post takes effect at least one link latency L after it is made: that lookahead is
what lets the workers run side by side (Chandy-Misra-Bryant conservative
synchronisation). A worker tells the others how far it has got (its *progress* P: it
will run nothing before P, so it will post nothing due before P + L) with the posts it
made so far, every quarter of L of its time and whenever it has to wait. Each worker
runs only the events before its *horizon*, the least of the others' P + L, and waits
when its next event lies beyond. A worker busy with a heavy moment thus holds the others
back only once they are L ahead of it, rather than at every L.

Events from other workers are placed before a worker's own events of the same time, in
the order of (sending worker, sending order), never in the order they happened to
arrive in real time; so a seed and a worker count always give the same run.

Notes keep the script's view of the overlay the same in every worker: what only one
worker sees (its node joined, a store it made succeeded, a lookup it sent got its
answer), it notes (:meth:`TimeSync.note`); every worker, the noting one included,
applies the note L later, before anything else due then. The ground truth the script
keeps (the ring of joined peers) thus lags the overlay by L.
"""

from __future__ import annotations

import math
import os
import pickle
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from reload_core.links.base import VirtualClock
from reload_core.sim.loop import SimulationStalled

Note = tuple[Any, ...]
Post = tuple[float, int, int | None, str, tuple[Any, ...]]  # (when, seq, target link, method, args)
TimedNote = tuple[float, int, Note]  # (when, seq, note)
Deliver = Callable[[int | None, str, tuple[Any, ...]], None]

_LENGTH = struct.Struct("!Q")

SPIN_SECONDS = 0.05
"""How long a waiting worker polls before it sleeps in ``select``. Workers wait on each
other many thousand times a run, usually for well under a millisecond: a process that
sleeps each time pays the wake-up, and on a virtual machine a halted vCPU also comes
back with its caches cold (measured: 18 % more CPU for the same work, 3000 nodes)."""

PUBLISH_FRACTION = 0.25
"""A worker tells the others its progress each time its clock has moved this share of L."""

IDLE_ROUNDS = 1000
"""Rounds of waiting in which no worker has anything scheduled before the simulation is
declared stalled (they would otherwise push each other's horizons on for ever)."""

_NOTE_ORDER = -(1 << 126)
_POST_ORDER = -(1 << 125)
_SEQ_BITS = 64


PARALLEL_FROM = 1000
"""Below this many nodes a run is quick, and keeping workers in step costs more than a
second core gives back."""


def default_workers(nodes: int) -> int:
    """One worker a core, at most two (what this machine has, and what was measured), and
    one below :data:`PARALLEL_FROM` nodes."""
    return 1 if nodes < PARALLEL_FROM else max(1, min(2, os.cpu_count() or 1))


class WorkerFailed(RuntimeError):
    """Another worker of the simulation ended or raised."""


class Channel:
    """Pickled objects, length-prefixed, to and from one other worker, over a socket that
    is never left blocking: a worker reads while it waits to write, so two workers
    writing to each other cannot both block."""

    def __init__(self, sock: socket.socket, worker: int) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.worker = worker  # the worker at the other end
        self._rx = bytearray()
        self._inbox: list[Any] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, obj: object) -> None:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(_LENGTH.pack(len(data)) + data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                if not self.pump():
                    select.select([self.sock], [self.sock], [], 0.01)
                continue
            view = view[sent:]

    def pump(self) -> bool:
        """Read what has arrived, without waiting; True if a whole object came in."""
        came = False
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except BlockingIOError:
                break
            except ConnectionError:
                chunk = b""
            if not chunk:
                raise WorkerFailed(f"worker {self.worker} ended")
            self._rx += chunk
        while len(self._rx) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self._rx)
            if len(self._rx) < _LENGTH.size + size:
                break
            obj = pickle.loads(memoryview(self._rx)[_LENGTH.size : _LENGTH.size + size])
            del self._rx[: _LENGTH.size + size]
            if isinstance(obj, tuple) and obj and obj[0] == "failed":
                raise WorkerFailed(f"worker {self.worker} failed:\n{obj[1]}")
            self._inbox.append(obj)
            came = True
        return came

    def take(self, kind: str) -> list[Any]:
        """The objects come in so far that are tuples starting with ``kind``; the others
        stay for :meth:`receive`."""
        taken = [obj for obj in self._inbox if obj[0] == kind]
        self._inbox = [obj for obj in self._inbox if obj[0] != kind]
        return taken

    def receive(self) -> Any:
        """The next object, waiting for it as long as it takes."""
        while not self._inbox:
            if not self.pump():
                select.select([self.sock], [], [])
        return self._inbox.pop(0)


class TimeSync:
    """One worker's side: a :class:`~reload_core.links.memory.RemoteLinks` for its
    network and a :class:`~reload_core.sim.loop.TimeBarrier` for its loop."""

    def __init__(
        self,
        worker: int,
        channels: dict[int, Channel],
        clock: VirtualClock,
        lookahead: float,
        owner: Callable[[str], int],
        apply_note: Callable[[Note], None],
    ) -> None:
        if lookahead <= 0:
            raise ValueError("a parallel simulation needs a positive link latency")
        self._worker = worker
        self._channels = dict(sorted(channels.items()))
        self._clock = clock
        self._lookahead = lookahead
        self._owner = owner
        self._apply_note = apply_note
        self.deliver: Deliver | None = None  # the network's deliver_remote
        self._progress = {w: 0.0 for w in channels}  # what each other worker promised
        self._idle = {w: False for w in channels}  # it had nothing scheduled then
        self._horizon = lookahead
        self._outbox: dict[int, list[Post]] = {w: [] for w in channels}
        self._notes: list[TimedNote] = []
        self._seq = 0
        self._published = -math.inf
        self._publish_every = lookahead * PUBLISH_FRACTION
        self._idle_rounds = 0
        self._failure: BaseException | None = None
        self.detached = False

    # -- RemoteLinks

    @property
    def worker(self) -> int:
        return self._worker

    def owner(self, address: str) -> int | None:
        worker = self._owner(address)
        return None if worker == self._worker else worker

    def post(self, when: float, worker: int, target: int | None, method: str, args: tuple[Any, ...]) -> None:
        if not self.detached:
            self._seq += 1
            self._outbox[worker].append((when, self._seq, target, method, args))

    # -- notes

    def note(self, note: Note) -> None:
        """Have every worker apply ``note`` one lookahead from now."""
        self._seq += 1
        timed = (self._clock.time() + self._lookahead, self._seq, note)
        self._notes.append(timed)
        self._schedule_note(self._worker, timed)

    def _schedule_note(self, worker: int, timed: TimedNote) -> None:
        when, seq, note = timed
        order = _NOTE_ORDER + (worker << _SEQ_BITS) + seq
        self._clock.call_at(when, lambda: self._apply(note), order=order)

    def _apply(self, note: Note) -> None:
        # A note that fails leaves this worker's script apart from the others', which
        # would then wait for each other for ever: fatal (raised from the next passed()).
        try:
            self._apply_note(note)
        except BaseException as exc:
            self._failure = exc
            raise

    # -- TimeBarrier

    @property
    def horizon(self) -> float:
        return math.inf if self.detached else self._horizon

    def passed(self, now: float) -> None:
        if self._failure is not None:
            raise RuntimeError("applying a note failed; the workers' scripts have parted") from self._failure
        if now >= self._published + self._publish_every and not self.detached:
            self._publish(now, idle=False)

    def wait(self, local_next: float) -> None:
        idle = local_next == math.inf
        self._publish(min(local_next, self._horizon), idle=idle)
        spin_until = time.perf_counter() + SPIN_SECONDS
        channels = list(self._channels.values())
        while True:
            came = False
            for channel in channels:
                came = channel.pump() or came
            if came:
                break
            if time.perf_counter() >= spin_until:
                select.select(channels, [], [])
        for channel in channels:
            self._take(channel)
        self._horizon = min(self._progress.values()) + self._lookahead
        if idle and all(self._idle.values()):
            self._idle_rounds += 1
            if self._idle_rounds >= IDLE_ROUNDS:
                raise SimulationStalled(
                    "nothing is scheduled in any worker: the simulation would wait for ever"
                )
        else:
            self._idle_rounds = 0

    def finish(self) -> None:
        """This worker's script is done: let the others run to their end without it."""
        if not self.detached:
            self._publish(math.inf, idle=True)
            self.detached = True

    def _publish(self, progress: float, *, idle: bool) -> None:
        """Tell every other worker: nothing before ``progress`` will run here any more,
        with the posts and notes made so far (all due at or after ``progress`` + L)."""
        self._published = progress
        notes = self._notes
        self._notes = []
        for w, channel in self._channels.items():
            channel.send(("progress", progress, idle, self._outbox[w], notes))
            self._outbox[w] = []

    def _take(self, channel: Channel) -> None:
        w = channel.worker
        deliver = self.deliver
        assert deliver is not None
        clock = self._clock
        base = _POST_ORDER + (w << _SEQ_BITS)
        for message in channel.take("progress"):
            _, progress, idle, posts, notes = message
            for when, seq, target, method, args in posts:
                clock.call_at(when, _Delivery(deliver, target, method, args), order=base + seq)
            for timed in notes:
                self._schedule_note(w, timed)
            self._progress[w] = progress
            self._idle[w] = idle


class _Delivery:
    __slots__ = ("args", "deliver", "method", "target")

    def __init__(self, deliver: Deliver, target: int | None, method: str, args: tuple[Any, ...]) -> None:
        self.deliver = deliver
        self.target = target
        self.method = method
        self.args = args

    def __call__(self) -> None:
        self.deliver(self.target, self.method, self.args)


def fork_workers(workers: int, run: Callable[[int, dict[int, Channel]], object]) -> list[object]:
    """Run ``run(worker, channels)`` in ``workers`` processes: this one is worker 0, the
    others are forked children; ``channels`` connect each worker with every other.
    Returns every worker's result, in worker order (the children send theirs to worker
    0). If a worker fails, the others are stopped and :class:`WorkerFailed` (or worker
    0's own exception) is raised; no child outlives the call."""
    pairs = {(a, b): socket.socketpair() for a in range(workers) for b in range(a + 1, workers)}

    def channels_of(worker: int) -> dict[int, Channel]:
        mine: dict[int, Channel] = {}
        for (a, b), (sa, sb) in pairs.items():
            if a == worker:
                mine[b] = Channel(sa, b)
            elif b == worker:
                mine[a] = Channel(sb, a)
        for pair in pairs.values():  # close the ends this worker does not hold
            for s in pair:
                if all(c.sock is not s for c in mine.values()):
                    s.close()
        return mine

    children: list[int] = []
    for worker in range(1, workers):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            _child(worker, channels_of, run)
        children.append(pid)
    mine = channels_of(0)
    finished = False
    try:
        results = [run(0, mine)]
        for worker in range(1, workers):
            while True:
                message = mine[worker].receive()
                if message[0] == "result":
                    results.append(message[1])
                    break
        finished = True
        return results
    finally:
        for channel in mine.values():
            channel.sock.close()
        for pid in children:
            _reap(pid, kill=not finished)


def _child(
    worker: int,
    channels_of: Callable[[int], dict[int, Channel]],
    run: Callable[[int, dict[int, Channel]], object],
) -> None:
    status = 1
    try:
        channels = channels_of(worker)
        try:
            result = run(worker, channels)
        except WorkerFailed:
            pass  # the failing worker tells worker 0 itself
        except BaseException:
            channels[0].send(("failed", traceback.format_exc()))
        else:
            channels[0].send(("result", result))
            status = 0
            # Leaving with unread data would reset the connection and lose the result:
            # read on until worker 0 has it and hangs up.
            try:
                while True:
                    channels[0].receive()
            except WorkerFailed:
                pass
    finally:
        os._exit(status)


def _reap(pid: int, *, kill: bool) -> None:
    """Wait for child ``pid`` to end (it does once it has sent its result); after a
    failure, kill it first."""
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.waitpid(pid, 0)


__all__ = ["PARALLEL_FROM", "Channel", "Note", "TimeSync", "WorkerFailed", "default_workers", "fork_workers"]

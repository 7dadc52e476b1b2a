"""End-to-end reliability of requests (RFC 6940 §6.2.1), as pure state with time passed in.

:class:`TransactionTable` is the originator's side: every request it sends waits for its
response under a timer of overlay-reliability-timer; when the timer fires before a
response came, the request goes out again with the same transaction ID, up to 5
transmissions in all, and "after the timer for the fifth transmission fires, the message
MUST be considered to have failed". The caller owns the clock: it asks
:meth:`~TransactionTable.next_deadline`, arms one timer, and calls
:meth:`~TransactionTable.expire` when it fires.

:class:`ResponseCache` is the responder's side: "Receiving nodes MUST generate
semantically equivalent responses to retransmissions of the same request ... if the
request is received within the maximum request lifetime (15 seconds)". The answer to
each request is kept for that long, keyed by who sent it and its transaction ID, and
replayed for a retransmission; a retransmission that arrives while the first copy is
still being worked on is dropped, since its answer is on the way.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

TRANSACTION_ID_SPACE = 1 << 64


@dataclass(slots=True)
class PendingRequest(Generic[T]):
    """One request waiting for its response. ``transmissions`` counts the copies sent so
    far; ``deadline`` is when the current copy's timer fires. ``context`` is the caller's
    (what to send again, whom to tell)."""

    transaction_id: int
    context: T
    transmissions: int
    deadline: float


class TransactionTable(Generic[T]):
    """The originator's pending requests (§6.2.1).

    ``timer`` is overlay-reliability-timer in seconds, the same for every transmission;
    ``max_transmissions`` is 5 in RELOAD.
    """

    def __init__(self, timer: float, max_transmissions: int = 5) -> None:
        if timer <= 0:
            raise ValueError("the reliability timer must be positive")
        if max_transmissions < 1:
            raise ValueError("at least one transmission")
        self.timer = timer
        self.max_transmissions = max_transmissions
        self._pending: dict[int, PendingRequest[T]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, transaction_id: object) -> bool:
        return transaction_id in self._pending

    def new_transaction_id(self, rng: random.Random) -> int:
        """A random 64-bit transaction ID (§6.3.2: "they MUST be randomly generated"), not
        one already pending here."""
        while True:
            tid = rng.getrandbits(64)
            if tid not in self._pending:
                return tid

    def open(self, transaction_id: int, context: T, now: float) -> PendingRequest[T]:
        """Record the first transmission, sent at ``now``."""
        if transaction_id in self._pending:
            raise ValueError(f"transaction {transaction_id:#x} is already pending")
        pending = PendingRequest(transaction_id, context, 1, now + self.timer)
        self._pending[transaction_id] = pending
        return pending

    def get(self, transaction_id: int) -> PendingRequest[T] | None:
        return self._pending.get(transaction_id)

    def close(self, transaction_id: int) -> PendingRequest[T] | None:
        """The response came (or the caller gave up): forget the request."""
        return self._pending.pop(transaction_id, None)

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has something to do."""
        if not self._pending:
            return None
        return min(p.deadline for p in self._pending.values())

    def expire(self, now: float) -> tuple[list[PendingRequest[T]], list[PendingRequest[T]]]:
        """Timers due at ``now``: (requests to send again, requests that have failed).

        A request whose timer fires after fewer than ``max_transmissions`` copies gets one
        more copy and a fresh timer; after the last copy's timer it fails and is removed.
        """
        again: list[PendingRequest[T]] = []
        failed: list[PendingRequest[T]] = []
        for tid, pending in list(self._pending.items()):
            if pending.deadline > now:
                continue
            if pending.transmissions < self.max_transmissions:
                pending.transmissions += 1
                pending.deadline = now + self.timer
                again.append(pending)
            else:
                del self._pending[tid]
                failed.append(pending)
        return again, failed

    def pending(self) -> list[PendingRequest[T]]:
        return list(self._pending.values())


# ---------------------------------------------------------------- responder side


@dataclass(frozen=True, slots=True)
class InProgress:
    """The first copy of this request is being worked on; its answer is not ready yet."""

    since: float


@dataclass(frozen=True, slots=True)
class Answered(Generic[R]):
    """The answer given to this request, to give again to its retransmissions."""

    response: R
    at: float


class ResponseCache(Generic[R]):
    """Answers to recent requests, for retransmissions within ``lifetime`` seconds (§6.2.1).

    ``key`` identifies a request: (the originator as the Via List shows it, transaction
    ID). At most ``max_entries`` are held; the oldest go first, so a flood of requests
    cannot make the cache grow without bound.
    """

    def __init__(self, lifetime: float = 15.0, max_entries: int = 4096) -> None:
        self.lifetime = lifetime
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, InProgress | Answered[R]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def expire(self, now: float) -> None:
        while self._entries:
            key, (started, _) = next(iter(self._entries.items()))
            if now - started < self.lifetime:
                break
            del self._entries[key]

    def lookup(self, key: Hashable, now: float) -> InProgress | Answered[R] | None:
        """What became of an earlier copy of this request, if it came within the lifetime."""
        self.expire(now)
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def begin(self, key: Hashable, now: float) -> None:
        """The first copy of this request is being handled from ``now`` on."""
        self._entries[key] = (now, InProgress(now))
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def complete(self, key: Hashable, response: R, now: float) -> None:
        """Keep the answer until the request's lifetime (from its first arrival) is over."""
        entry = self._entries.get(key)
        started = entry[0] if entry is not None else now
        self._entries[key] = (started, Answered(response, now))

    def abandon(self, key: Hashable) -> None:
        """No answer was given (the request was dropped): a retransmission is handled anew."""
        self._entries.pop(key, None)


__all__ = [
    "TRANSACTION_ID_SPACE",
    "Answered",
    "InProgress",
    "PendingRequest",
    "ResponseCache",
    "TransactionTable",
]

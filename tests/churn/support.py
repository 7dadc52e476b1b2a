"""Helpers of the churn tests: peer logs, resident memory, the ring as the peers report
it, and lookups judged against it (RFC 6940 §10.1)."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from app.bench.overlay_harness import LookupResult, OverlayHarness

# The peer log format: "%(asctime)s %(levelname)s %(name)s: %(message)s" (p2psip peer).
_BAD_LINE = re.compile(r" (ERROR|CRITICAL) |Traceback \(most recent call last\)|Exception in callback")


def bad_log_lines(paths: list[Path]) -> list[str]:
    """Lines that show an exception or an error in the peers' logs."""
    found: list[str] = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if _BAD_LINE.search(line):
                found.append(f"{path.name}: {line}")
    return found


def rss_of(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def open_fds(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return 0


def joined_ring(harness: OverlayHarness) -> list[bytes]:
    """Node-IDs of the members that report themselves joined, sorted."""
    return sorted(
        view.node_id
        for index, view in harness.view.peers.items()
        if index in harness.members and view.state == "joined"
    )


def responsible(ring: list[bytes], resource: bytes) -> bytes:
    """The first Node-ID at or after ``resource`` clockwise (§10.1)."""
    i = bisect.bisect_left(ring, resource)
    return ring[i % len(ring)]


@dataclass
class LookupTally:
    """Lookups judged against the ring before and after their batch: under churn the peer
    responsible for a Resource-ID may change while a lookup is under way."""

    sent: int = 0
    ok: int = 0
    failures: list[str] = field(default_factory=list)

    def judge(self, results: list[LookupResult], before: list[bytes], after: list[bytes]) -> None:
        for r in results:
            self.sent += 1
            allowed = {responsible(ring, r.target) for ring in (before, after) if ring}
            if r.ok and r.responder in allowed:
                self.ok += 1
            else:
                who = (r.responder or b"").hex()[:8]
                self.failures.append(f"{r.target.hex()[:8]}: ok={r.ok} by {who} {r.error}")

    @property
    def success(self) -> float:
        return self.ok / self.sent if self.sent else 1.0


__all__ = ["LookupTally", "bad_log_lines", "joined_ring", "open_fds", "responsible", "rss_of"]

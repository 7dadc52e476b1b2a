"""The presence scheduler's cost in virtual time: 200 buddies stay under 5 overlay
requests per second, online buddies are rechecked about every minute, offline ones back
off to five minutes, and an urgent check jumps the queue."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import pytest

from app.phone.presence import PresencePolicy, PresenceScheduler

HOUR = 3600.0


def simulate(
    scheduler: PresenceScheduler,
    online: dict[str, bool],
    duration: float,
    *,
    check_time: float = 0.2,
) -> tuple[list[tuple[float, int]], dict[str, list[float]]]:
    """Run the scheduler for ``duration`` virtual seconds; each check takes ``check_time``
    and costs a Fetch, plus a Ping when the buddy is online. Returns every (time,
    requests) spent and the check times of each buddy."""
    now = 0.0
    in_flight: list[tuple[float, str]] = []
    spent: list[tuple[float, int]] = []
    checked: dict[str, list[float]] = defaultdict(list)
    while now < duration:
        for aor in scheduler.take_due(now):
            in_flight.append((now + check_time, aor))
        wake = scheduler.next_wakeup(now)
        finish = min((t for t, _ in in_flight), default=None)
        candidates = [t for t in (wake, finish) if t is not None]
        assert candidates, "the scheduler stopped"
        now = max(now, min(candidates))
        done = [(t, a) for t, a in in_flight if t <= now]
        in_flight = [(t, a) for t, a in in_flight if t > now]
        for t, aor in done:
            requests = 2 if online[aor] else 1
            scheduler.report(aor, online[aor], t, requests=requests, wall_time=1_700_000_000 + t)
            spent.append((t, requests))
            checked[aor].append(t)
    return spent, checked


def max_window_rate(spent: list[tuple[float, int]], window: float) -> float:
    times = sorted(spent)
    best = 0
    j = 0
    total = 0
    for i, (t, n) in enumerate(times):
        total += n
        while times[j][0] <= t - window:
            total -= times[j][1]
            j += 1
        best = max(best, total)
        del i
    return best / window


def buddies(count: int, online_share: float, seed: int = 7) -> dict[str, bool]:
    rng = random.Random(seed)
    return {f"sip:buddy{i}@example.org": rng.random() < online_share for i in range(count)}


@pytest.mark.parametrize("online_share", [0.0, 0.5, 1.0])
def test_200_buddies_cost_at_most_5_requests_per_second(online_share: float) -> None:
    scheduler = PresenceScheduler(rng=random.Random(1))
    people = buddies(200, online_share)
    for aor in people:
        scheduler.add(aor, 0.0)
    spent, checked = simulate(scheduler, people, HOUR)
    total = sum(n for _, n in spent)
    mean_rate = total / HOUR
    assert mean_rate <= 5.0
    # Not only on average: no 10-second stretch goes over (the bucket allows a burst of 4).
    assert max_window_rate(spent, 10.0) <= 5.0 + scheduler.policy.burst / 10.0
    assert scheduler.estimated_rate() <= 5.0
    assert scheduler.measured_rate(HOUR) <= 5.0
    # Everyone was checked, and nobody starved.
    assert set(checked) == set(people)
    for aor, times in checked.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        limit = 130.0 if people[aor] else 5 * 60 * 1.2 + 5
        assert max(gaps) <= limit, (aor, max(gaps))
    print(f"online share {online_share}: {mean_rate:.2f} requests/s, {len(spent)} checks in an hour")


def test_intervals_follow_the_policy_when_the_budget_is_not_the_limit() -> None:
    """10 online buddies: every 60 s ±20 %; 10 offline: 60, 120, 240, then 300 s."""
    scheduler = PresenceScheduler(rng=random.Random(3))
    people = {f"sip:on{i}@example.org": True for i in range(10)} | {
        f"sip:off{i}@example.org": False for i in range(10)
    }
    for aor in people:
        scheduler.add(aor, 0.0)
    _, checked = simulate(scheduler, people, 1800.0, check_time=0.0)
    for aor, times in checked.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        if people[aor]:
            assert all(48.0 <= g <= 72.0 + 1e-6 for g in gaps), gaps
        else:
            assert 48.0 <= gaps[0] <= 72.0
            assert 96.0 <= gaps[1] <= 144.0
            assert 192.0 <= gaps[2] <= 288.0
            assert all(240.0 <= g <= 360.0 + 1e-6 for g in gaps[3:]), gaps
    # 10 online at 2 requests / 60 s + 10 offline at 1 / 300 s.
    assert scheduler.estimated_rate() == pytest.approx(10 * 2 / 60 + 10 * 1 / 300)


def test_start_up_is_spread_and_metered() -> None:
    """At start-up all 200 are due within 30 s; the bucket keeps every second under 5."""
    scheduler = PresenceScheduler(rng=random.Random(5))
    people = buddies(200, 1.0)
    for aor in people:
        scheduler.add(aor, 0.0)
    spent, checked = simulate(scheduler, people, 200.0)
    per_second: dict[int, int] = defaultdict(int)
    for t, n in spent:
        per_second[int(t)] += n
    assert max(per_second.values()) <= scheduler.policy.max_rate + scheduler.policy.burst
    assert len(checked) == 200  # all checked once within 200 s (400 requests at 4/s = 100 s)
    assert max(times[0] for times in checked.values()) <= 110.0


def test_urgent_check_jumps_the_queue() -> None:
    scheduler = PresenceScheduler(PresencePolicy(initial_spread=0.0), rng=random.Random(9))
    for i in range(50):
        scheduler.add(f"sip:b{i}@example.org", 0.0)
    first = scheduler.take_due(0.0)
    assert len(first) == 2  # burst 4 = two checks of a buddy not yet known offline
    scheduler.urgent("sip:b40@example.org", 0.0)
    wake = scheduler.next_wakeup(0.0)
    assert wake == pytest.approx(0.5)  # two requests of budget at 4/s
    assert scheduler.take_due(0.5)[0] == "sip:b40@example.org"


def test_changes_are_reported_once_and_last_seen_kept() -> None:
    scheduler = PresenceScheduler(rng=random.Random(2))
    aor = "sip:bob@example.org"
    scheduler.add(aor, 0.0)
    now = scheduler.next_wakeup(0.0)
    assert now is not None
    assert scheduler.take_due(now) == [aor]
    assert scheduler.report(aor, True, now, requests=2, wall_time=1000.0) is True
    info = scheduler.info(aor)
    assert info is not None and info.online is True and info.last_seen == 1000.0
    later = info.next_check
    assert scheduler.take_due(later) == [aor]
    assert scheduler.report(aor, True, later, requests=2, wall_time=2000.0) is False
    again = scheduler.info(aor)
    assert again is not None
    assert scheduler.take_due(again.next_check) == [aor]
    assert scheduler.report(aor, False, again.next_check, requests=1) is True
    gone = scheduler.info(aor)
    assert gone is not None and gone.online is False and gone.last_seen == 2000.0
    assert gone.offline_streak == 1
    # Heard from (a call came in): online again at once, without a check.
    assert scheduler.seen(aor, again.next_check + 1, 3000.0) is True
    back = scheduler.info(aor)
    assert back is not None and back.online is True and back.last_seen == 3000.0


def test_removed_while_checking_is_forgotten_but_paid_for() -> None:
    scheduler = PresenceScheduler(PresencePolicy(initial_spread=0.0), rng=random.Random(4))
    scheduler.add("sip:a@example.org", 0.0)
    assert scheduler.take_due(0.0) == ["sip:a@example.org"]
    scheduler.remove("sip:a@example.org")
    assert scheduler.report("sip:a@example.org", True, 0.1, requests=2) is False
    assert scheduler.requests == 2
    assert scheduler.next_wakeup(0.1) is None

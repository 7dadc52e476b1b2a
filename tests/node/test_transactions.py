"""End-to-end retransmission (RFC 6940 §6.2.1) and the response cache, with concrete times."""

from __future__ import annotations

import random

import pytest

from reload_core.node.transactions import Answered, InProgress, ResponseCache, TransactionTable


def test_five_transmissions_then_failure_on_the_fifth_timer() -> None:
    table: TransactionTable[str] = TransactionTable(timer=3.0, max_transmissions=5)
    table.open(0xABC, "ping", now=10.0)
    assert table.next_deadline() == 13.0
    assert table.expire(12.999) == ([], [])
    sent_at = []
    now = 13.0
    for expected in (2, 3, 4, 5):
        again, failed = table.expire(now)
        assert [p.transaction_id for p in again] == [0xABC] and failed == []
        assert again[0].transmissions == expected
        sent_at.append(now)
        assert table.next_deadline() == now + 3.0
        now += 3.0
    assert sent_at == [13.0, 16.0, 19.0, 22.0]
    again, failed = table.expire(25.0)  # the timer of the fifth transmission fires
    assert again == [] and [p.context for p in failed] == ["ping"]
    assert failed[0].transmissions == 5
    assert len(table) == 0 and table.next_deadline() is None


def test_a_response_closes_the_transaction() -> None:
    table: TransactionTable[int] = TransactionTable(timer=0.2)
    table.open(1, 100, now=0.0)
    table.open(2, 200, now=0.1)
    assert table.next_deadline() == pytest.approx(0.2)
    closed = table.close(1)
    assert closed is not None and closed.context == 100
    assert table.close(1) is None
    assert table.next_deadline() == pytest.approx(0.3)
    assert 2 in table and 1 not in table


def test_transaction_ids_are_random_64_bit_and_not_reused_while_pending() -> None:
    rng = random.Random(7)
    table: TransactionTable[None] = TransactionTable(timer=1.0)
    ids = set()
    for _ in range(200):
        tid = table.new_transaction_id(rng)
        assert 0 <= tid < 1 << 64
        table.open(tid, None, now=0.0)
        ids.add(tid)
    assert len(ids) == 200
    with pytest.raises(ValueError):
        table.open(next(iter(ids)), None, now=0.0)


def test_one_transmission_only() -> None:
    table: TransactionTable[str] = TransactionTable(timer=1.0, max_transmissions=1)
    table.open(5, "x", now=0.0)
    again, failed = table.expire(1.0)
    assert again == [] and [p.transaction_id for p in failed] == [5]
    assert len(table) == 0


def test_response_cache_replays_within_the_lifetime() -> None:
    cache: ResponseCache[bytes] = ResponseCache(lifetime=15.0)
    key = (b"\x01" * 16, 42)
    assert cache.lookup(key, 0.0) is None
    cache.begin(key, 1.0)
    assert cache.lookup(key, 2.0) == InProgress(1.0)
    cache.complete(key, b"answer", 3.0)
    assert cache.lookup(key, 15.9) == Answered(b"answer", 3.0)
    # 15 s after the first copy arrived, a retransmission is a new request (§6.2.1).
    assert cache.lookup(key, 16.0) is None
    assert len(cache) == 0


def test_response_cache_keys_by_sender_and_is_bounded() -> None:
    cache: ResponseCache[str] = ResponseCache(lifetime=15.0, max_entries=3)
    for i in range(5):
        cache.begin((b"a", i), float(i))
        cache.complete((b"a", i), f"r{i}", float(i))
    assert len(cache) == 3
    assert cache.lookup((b"a", 0), 5.0) is None
    assert cache.lookup((b"a", 4), 5.0) == Answered("r4", 4.0)
    assert cache.lookup((b"b", 4), 5.0) is None  # same transaction ID from someone else
    cache.abandon((b"a", 4))
    assert cache.lookup((b"a", 4), 5.0) is None

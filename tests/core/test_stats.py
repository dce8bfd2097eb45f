"""Stats: exact counts per event and scope, sums over scopes, resets that keep handed-out
counters counting."""

from __future__ import annotations

import threading

from flask_stash.core.stats import HIT, MISS_EVENT, Stats


def test_counts_per_event_and_scope_and_sums_over_scopes() -> None:
    stats = Stats()
    stats.incr(HIT, "f")
    stats.incr(HIT, "f", amount=2)
    stats.incr(HIT, "g")
    stats.incr(MISS_EVENT)
    assert stats.get(HIT, "f") == 3
    assert stats.get(HIT, "g") == 1
    assert stats.get(HIT, "") == 0
    assert stats.get(HIT) == 4
    assert stats.get(MISS_EVENT) == 1
    assert stats.get(MISS_EVENT, "") == 1
    assert stats.get("never") == 0
    assert stats.snapshot() == {HIT: {"f": 3, "g": 1}, MISS_EVENT: {"": 1}}


def test_a_handed_out_counter_is_the_same_counter() -> None:
    stats = Stats()
    counter = stats.counter(HIT, "f")
    next(counter)
    next(counter)
    assert stats.counter(HIT, "f") is counter
    stats.incr(HIT, "f")
    assert stats.get(HIT, "f") == 3
    assert stats.counter(HIT) is not counter
    next(stats.counter(MISS_EVENT))  # the default scope is the whole cache, ""
    assert stats.get(MISS_EVENT, "") == 1


def test_reset_zeroes_and_handed_out_counters_keep_counting() -> None:
    stats = Stats()
    counter = stats.counter(HIT, "f")
    next(counter)
    stats.incr(MISS_EVENT, amount=5)
    stats.reset()
    assert stats.get(HIT) == 0
    assert stats.snapshot() == {}  # zeroed counters are not listed
    next(counter)
    stats.incr(MISS_EVENT)
    assert stats.snapshot() == {HIT: {"f": 1}, MISS_EVENT: {"": 1}}
    stats.reset()
    stats.reset()
    assert stats.get(MISS_EVENT) == 0


def test_large_counts_read_back_exactly() -> None:
    stats = Stats()
    stats.incr(HIT, amount=12345)
    assert stats.get(HIT) == 12345


def test_concurrent_increments_are_never_lost() -> None:
    stats = Stats()
    barrier = threading.Barrier(4)

    def count() -> None:
        barrier.wait()
        for _ in range(2000):
            stats.incr(HIT, "f")

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stats.get(HIT, "f") == 8000

"""Stats: exact counts per event and scope, sums over scopes, resets that keep handed-out
counters counting."""

from __future__ import annotations

import functools
import threading

from flask_stash.core.stats import HIT, MISS_EVENT, WRITE, Reading, Stats, live, readable_name


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


def test_recorded_amounts_add_up_and_count_as_events() -> None:
    stats = Stats()
    record = stats.recorder(HIT, "f")
    record(0.25)
    record(0.5)
    stats.record(HIT, "f", 1.25)
    stats.incr(HIT, "f")  # an event without an amount
    assert stats.get(HIT, "f") == 4
    assert stats.total(HIT, "f") == 2.0
    assert stats.total(HIT) == 2.0
    assert stats.total(MISS_EVENT, "f") == 0.0
    assert stats.readings() == {(HIT, "f"): Reading(4, 2.0)}


def test_drain_bounds_the_pending_amounts_and_loses_nothing() -> None:
    stats = Stats()
    record = stats.recorder(WRITE, "f")
    for size in range(1000):
        record(size)
    stats.drain()
    assert stats._tallies[(WRITE, "f")].pending == []
    record(1000)
    assert stats.readings()[(WRITE, "f")] == Reading(1001, sum(range(1001)))


def test_concurrent_records_and_drains_lose_nothing() -> None:
    stats = Stats()
    record = stats.recorder(HIT, "f")
    barrier = threading.Barrier(5)
    done = threading.Event()

    def count() -> None:
        barrier.wait()
        for _ in range(5000):
            record(0.5)

    def drain() -> None:
        barrier.wait()
        while not done.is_set():
            stats.drain()

    drainer = threading.Thread(target=drain)
    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in [drainer, *threads]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    drainer.join()
    assert stats.readings()[(HIT, "f")] == Reading(20000, 10000.0)


def test_reset_zeroes_amounts_and_raw_readings_keep_everything() -> None:
    stats = Stats()
    record = stats.recorder(HIT, "f")
    record(2.0)
    stats.reset()
    assert stats.readings() == {}
    record(3.0)
    assert stats.readings() == {(HIT, "f"): Reading(1, 3.0)}
    assert stats.raw_readings() == {(HIT, "f"): Reading(2, 5.0)}


def test_scopes_can_say_what_they_are() -> None:
    stats = Stats()
    stats.describe("index", "view")
    assert stats.kinds == {"index": "view"}


def outer() -> object:
    def inner() -> None:
        pass

    return inner


class Shop:
    def price(self) -> None:
        pass


def test_readable_names_drop_main_and_locals() -> None:
    assert readable_name(outer()) == f"{__name__}.outer.inner"
    assert readable_name(Shop.price) == f"{__name__}.Shop.price"
    outer.__module__ = "__main__"
    try:
        assert readable_name(outer) == "outer"
    finally:
        outer.__module__ = __name__
    assert readable_name(len) == "builtins.len"


def test_a_recorder_counts_for_the_whole_cache_by_default() -> None:
    stats = Stats()
    stats.recorder(HIT)(0.5)
    assert stats.readings() == {(HIT, ""): Reading(1, 0.5)}


def test_live_lists_every_stats_in_use() -> None:
    stats = Stats()
    assert stats in live()


class NoModule:
    """A callable whose ``__module__`` cannot even be read."""

    def __getattribute__(self, name: str) -> object:
        if name == "__module__":
            raise AttributeError(name)
        return object.__getattribute__(self, name)

    def __repr__(self) -> str:
        return "<no module>"


class Named:
    """A callable with a ``__name__`` only (no ``__qualname__``)."""

    def __init__(self, module: str | None) -> None:
        self.__module__ = module  # type: ignore[assignment]
        self.__name__ = "thing"


def test_readable_names_of_unusual_callables() -> None:
    assert readable_name(NoModule()) == "<no module>"
    assert readable_name(Named(None)) == "thing"
    assert readable_name(Named("")) == "thing"
    assert readable_name(Named("shop")) == "shop.thing"
    part = functools.partial(len)
    assert readable_name(part) == f"functools.{part!r}"

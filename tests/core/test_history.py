"""The dashboard's history: per-interval totals of the last minutes."""

from __future__ import annotations

import gc
import weakref

import pytest

from flask_stash.core import statsflush
from flask_stash.core.history import SERIES, History, totals
from flask_stash.core.stats import BACKEND_FAILED, COALESCED, ERROR, HIT, MISS_EVENT, STALE, Stats
from flask_stash.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)  # a multiple of the interval: buckets start on the dot


def test_what_was_counted_before_the_history_began_is_left_out(clock: FakeClock) -> None:
    stats = Stats()
    stats.incr(HIT, "f", 7)
    history = History(stats, interval=5, span=20, clock=clock)
    stats.incr(HIT, "f", 2)
    stats.record(STALE, "g", 0.25)
    stats.incr(MISS_EVENT, "g")
    history.sample()
    *_, last = history.points()
    assert last == {
        "t": 1000.0,
        "hits": 2,
        "misses": 1,
        "stale": 1,
        "coalesced": 0,
        "passes": 0,
        "errors": 0,
        "time_saved": 0.25,
    }
    assert list(last) == ["t", *SERIES]


def test_samples_add_up_per_interval_and_gaps_are_zeros(clock: FakeClock) -> None:
    stats = Stats()
    history = History(stats, interval=5, span=20, clock=clock)
    for _ in range(3):  # three samples in one interval
        stats.incr(HIT, "f")
        history.sample()
        clock.advance(1)
    clock.advance(8)  # 1011: one interval without samples, then 1010
    stats.incr(MISS_EVENT, "f")
    history.sample()
    points = history.points()
    assert [p["t"] for p in points] == [995.0, 1000.0, 1005.0, 1010.0]
    assert [(p["hits"], p["misses"]) for p in points] == [(0, 0), (3, 0), (0, 0), (0, 1)]
    assert history.as_dict() == {"interval": 5, "span": 20, "points": points}


def test_only_the_span_is_kept_and_the_series_end_now(clock: FakeClock) -> None:
    stats = Stats()
    history = History(stats, interval=5, span=10, clock=clock)
    for _ in range(4):
        stats.incr(HIT, "f")
        history.sample()
        clock.advance(5)
    clock.advance(5)  # 1025: nothing sampled in the last two intervals
    assert [(p["t"], p["hits"]) for p in history.points()] == [(1020.0, 0), (1025.0, 0)]


def test_resets_and_other_events_do_not_disturb_it(clock: FakeClock) -> None:
    stats = Stats()
    history = History(stats, interval=5, span=10, clock=clock)
    stats.incr(HIT, "f", 4)
    stats.incr(ERROR, "get")  # a backend call's failure, not an outcome
    stats.reset()
    stats.incr(BACKEND_FAILED, "f")
    stats.record(COALESCED, "f", 1.5)
    history.sample()
    *_, last = history.points()
    assert (last["hits"], last["errors"], last["coalesced"], last["time_saved"]) == (4, 1, 1, 1.5)


def test_a_counter_that_looks_smaller_for_an_instant_is_not_subtracted(clock: FakeClock) -> None:
    stats = Stats()
    history = History(stats, interval=5, span=10, clock=clock)
    stats.incr(HIT, "f", 5)
    history.sample()
    history._seen["hits"] = 9  # as if the previous read had seen more than there is
    stats.incr(HIT, "f", 6)  # 11 in all
    history.sample()
    *_, last = history.points()
    assert last["hits"] == 5 + 2


def test_a_clock_going_back_keeps_adding_to_the_current_bucket(clock: FakeClock) -> None:
    stats = Stats()
    history = History(stats, interval=5, span=10, clock=clock)
    clock.advance(5)
    history.sample()
    clock.advance(-5)
    stats.incr(HIT, "f")
    history.sample()
    clock.advance(5)
    assert [(p["t"], p["hits"]) for p in history.points()] == [(1000.0, 0), (1005.0, 1)]


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        History(Stats(), interval=0)
    with pytest.raises(ValueError, match="interval"):
        History(Stats(), interval=10, span=5)


def test_totals_sum_outcomes_over_scopes() -> None:
    stats = Stats()
    stats.record(HIT, "a", 1.0)
    stats.record(HIT, "b", 2.0)
    stats.incr(MISS_EVENT, "a")
    assert totals(stats.readings()) == {"hits": 2, "time_saved": 3.0, "misses": 1}


def test_the_statistics_round_samples_live_histories(clock: FakeClock) -> None:
    stats = Stats()
    history = History(stats, interval=5, span=10, clock=clock)
    statsflush.sample_every_round(history)
    stats.incr(HIT, "f")
    statsflush.run_once()
    assert history.points()[-1]["hits"] == 1
    gone = weakref.ref(history)
    del history
    gc.collect()
    assert gone() is None  # held weakly: a history that goes, goes


def test_a_failing_sampler_does_not_end_the_round() -> None:
    class Broken:
        def sample(self) -> None:
            raise RuntimeError("boom")

    broken = Broken()
    statsflush.sample_every_round(broken)
    statsflush.run_once()  # no exception
    statsflush._samplers.discard(broken)

"""Stampede protection's options and per-store state, unit by unit: validation messages,
hit-for-pass windows, invalidations that overtake computations, refresh back-off, the
once-per-state-change logs and the bounded tables. A fake clock drives every window; no
store, backend or thread is involved except where the background pool itself is tested.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from flask_stash.core import stampede
from flask_stash.core.flight import AsyncSingleFlight, SingleFlight
from flask_stash.core.stampede import (
    DEFAULT,
    PASS_SECONDS,
    REFRESH_BACKOFF,
    REFRESH_BACKOFF_CAP,
    REFRESH_WORKERS,
    TABLE_SIZE,
    Protection,
    Stampede,
)
from flask_stash.testing import FakeClock

SECONDS = ("lock_lease", "lock_wait", "stale", "early_refresh", "fail_safe")


@pytest.fixture
def state(clock: FakeClock) -> Stampede:
    found = Stampede()
    found.monotonic = clock
    return found


# -- Protection -----------------------------------------------------------------------------


def test_the_defaults() -> None:
    assert (
        Protection(
            single_flight=True,
            lock_lease=30.0,
            lock_wait=10.0,
            stale=0.0,
            early_refresh=0.0,
            fail_safe=0.0,
            jitter=0.0,
        )
        == DEFAULT
    )
    assert (PASS_SECONDS, TABLE_SIZE, REFRESH_WORKERS) == (10.0, 4096, 4)
    assert (REFRESH_BACKOFF, REFRESH_BACKOFF_CAP) == (1.0, 60.0)


@pytest.mark.parametrize("name", SECONDS)
@pytest.mark.parametrize(("bad", "shown"), [(-1, "-1"), (-0.001, "-0.001"), (True, "True"),
                                            ("5", "'5'"), (None, "None")])  # fmt: skip
def test_every_duration_is_checked(name: str, bad: Any, shown: str) -> None:
    with pytest.raises(ValueError) as caught:
        Protection(**{name: bad})
    assert str(caught.value) == f"{name} must be a number of seconds >= 0, got {shown}"


@pytest.mark.parametrize("name", [name for name in SECONDS if name != "lock_lease"])
def test_zero_seconds_is_allowed_except_for_the_lease(name: str) -> None:
    assert getattr(Protection(**{name: 0}), name) == 0
    assert getattr(Protection(**{name: 2.5}), name) == 2.5
    with pytest.raises(ValueError) as caught:
        Protection(lock_lease=0)
    assert str(caught.value) == "lock_lease must be positive"
    assert Protection(lock_lease=0.001).lock_lease == 0.001


@pytest.mark.parametrize("jitter", [0, 0.0, 0.5, 0.999])
def test_jitter_is_a_fraction_below_one(jitter: float) -> None:
    assert Protection(jitter=jitter).jitter == jitter


@pytest.mark.parametrize("jitter", [1, 1.0, 1.5, -0.001])
def test_jitter_out_of_range_is_refused(jitter: float) -> None:
    with pytest.raises(ValueError) as caught:
        Protection(jitter=jitter)
    assert str(caught.value) == f"jitter must be a fraction in [0, 1), got {jitter!r}"


def test_the_edge_is_watched_when_any_edge_option_is_on() -> None:
    assert not Protection().watches_edge
    assert not Protection(jitter=0.5, lock_wait=0, single_flight=False).watches_edge
    assert Protection(stale=0.001).watches_edge
    assert Protection(early_refresh=0.001).watches_edge
    assert Protection(fail_safe=0.001).watches_edge


# -- the state's defaults and its background pool --------------------------------------------


def test_a_new_state() -> None:
    fresh = Stampede()
    assert fresh.locks is False
    assert Stampede(locks=True).locks is True
    assert fresh.sleep is time.sleep
    assert fresh.monotonic is time.monotonic
    assert fresh.executor is None
    assert fresh.epoch == 0
    assert isinstance(fresh.flights, SingleFlight)
    assert isinstance(fresh.async_flights, AsyncSingleFlight)
    assert Stampede().flights is not fresh.flights  # one per store
    assert not fresh.passing("k")
    assert not fresh.overtaken("k", 0)
    assert fresh.refresh_allowed("k")


def test_background_work_runs_on_one_pool_of_named_threads() -> None:
    fresh = Stampede()
    names: list[str] = []
    done = threading.Event()

    def job() -> None:
        names.append(threading.current_thread().name)
        done.set()

    fresh.run_in_background(job)
    pool = fresh.executor
    assert pool is not None
    try:
        assert done.wait(10)
        assert names[0].startswith("flask-stash-refresh")
        assert pool._max_workers == REFRESH_WORKERS  # type: ignore[attr-defined]
        done.clear()
        fresh.run_in_background(job)
        assert fresh.executor is pool  # made once
        assert done.wait(10)
        assert len(names) == 2
    finally:
        pool.shutdown(wait=True)


def test_an_injected_executor_is_used() -> None:
    class Inline:
        def submit(self, fn: Any) -> None:
            fn()

    fresh = Stampede()
    inline = Inline()
    fresh.executor = inline  # type: ignore[assignment]
    ran: list[int] = []
    fresh.run_in_background(lambda: ran.append(1))
    assert ran == [1]
    assert fresh.executor is inline


# -- hit-for-pass ---------------------------------------------------------------------------


def test_a_pass_lasts_ten_seconds_by_default(state: Stampede, clock: FakeClock) -> None:
    state.mark_pass("k")
    assert state.passing("k")
    assert not state.passing("other")
    clock.advance(PASS_SECONDS - 0.001)
    assert state.passing("k")
    clock.advance(0.001)  # exactly at the end: over
    assert not state.passing("k")
    assert "k" not in state._passes  # forgotten once over


def test_a_pass_of_given_seconds(state: Stampede, clock: FakeClock) -> None:
    state.mark_pass("k", 2.0)
    clock.advance(1.999)
    assert state.passing("k")
    clock.advance(0.001)
    assert not state.passing("k")


def test_a_pass_can_be_cleared(state: Stampede) -> None:
    state.mark_pass("k")
    state.mark_pass("j")
    state.clear_pass("k")
    state.clear_pass("never")
    assert not state.passing("k")
    assert state.passing("j")
    assert list(state._passes) == ["j"]


def test_a_deletion_or_clear_ends_passes(state: Stampede) -> None:
    state.mark_pass("k")
    state.mark_pass("j")
    state.deleted("k")
    assert not state.passing("k")
    assert state.passing("j")
    state.cleared()
    assert not state.passing("j")
    assert state._passes == {}


# -- invalidations that overtake computations -----------------------------------------------


def test_a_deletion_overtakes_only_computations_of_its_key_begun_before(state: Stampede) -> None:
    begun = state.epoch
    state.deleted("k")
    assert state.epoch == begun + 1
    assert state.overtaken("k", begun)
    assert not state.overtaken("j", begun)
    assert not state.overtaken("k", state.epoch)  # begun after the deletion
    state.deleted("j")
    assert state.epoch == begun + 2
    assert not state.overtaken("k", begun + 1)  # k's deletion was before that epoch
    assert state.overtaken("j", begun + 1)


def test_a_clear_overtakes_every_computation_begun_before(state: Stampede) -> None:
    state.deleted("k")
    begun = state.epoch
    state.cleared()
    assert state.epoch == begun + 1
    assert state.overtaken("any", begun)
    assert state.overtaken("k", begun)
    assert not state.overtaken("any", state.epoch)
    assert state._deleted == {}
    state.deleted("k")
    assert not state.overtaken("j", begun + 1)  # the clear came at begun + 1: not after
    assert state.overtaken("k", begun + 1)


def test_a_full_deletion_table_is_forgotten_as_a_clear(state: Stampede) -> None:
    for number in range(TABLE_SIZE - 1):
        state.deleted(f"k{number}")
    begun = state.epoch
    state.deleted("last")  # the table holds TABLE_SIZE - 1: still room
    assert len(state._deleted) == TABLE_SIZE
    assert not state.overtaken("other", begun)
    assert state.overtaken("last", begun)
    state.deleted("one more")  # full: forgotten, counted as a clear
    assert state._deleted == {"one more": begun + 2}
    assert state.overtaken("other", begun + 1)  # as if the store had been cleared
    assert not state.overtaken("other", begun + 2)


# -- refresh back-off ----------------------------------------------------------------------


def test_failed_refreshes_back_off_doubling_up_to_the_cap(
    state: Stampede, clock: FakeClock
) -> None:
    delays = []
    for _ in range(9):
        state.refresh_failed("k")
        due, delay = state._refresh_due["k"]
        assert due == clock() + delay
        delays.append(delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_a_refresh_is_allowed_again_when_its_delay_is_over(
    state: Stampede, clock: FakeClock
) -> None:
    state.refresh_failed("k")
    state.refresh_failed("k")  # two seconds
    assert not state.refresh_allowed("k")
    assert state.refresh_allowed("j")
    clock.advance(1.999)
    assert not state.refresh_allowed("k")
    clock.advance(0.001)  # exactly due
    assert state.refresh_allowed("k")


def test_a_refresh_that_works_ends_the_back_off(state: Stampede) -> None:
    state.refresh_failed("k")
    state.refresh_failed("j")
    state.refresh_worked("k")
    state.refresh_worked("never")
    assert state.refresh_allowed("k")
    assert not state.refresh_allowed("j")
    assert list(state._refresh_due) == ["j"]
    state.refresh_failed("k")  # starts again from the first delay
    assert state._refresh_due["k"][1] == REFRESH_BACKOFF


# -- logs: one per state change -------------------------------------------------------------


def test_the_first_failure_is_logged_the_others_counted(
    state: Stampede, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flask_stash")
    state.failing("refresh", "f", OSError("down"))
    state.failing("refresh", "f", OSError("still down"))
    state.failing("refresh", "g", KeyError("x"))
    assert [(r.levelno, r.name, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "flask_stash", "refresh of f failed (OSError: down); serving the "
         "last good value while it keeps failing (logged once, counted in stats)"),
        (logging.WARNING, "flask_stash", "refresh of g failed (KeyError: 'x'); serving the "
         "last good value while it keeps failing (logged once, counted in stats)"),
    ]  # fmt: skip
    assert caplog.records[0].exc_info is None  # the traceback only at DEBUG level
    caplog.clear()
    state.working("refresh", "f")
    state.working("refresh", "f")  # already working: nothing
    state.working("compute", "g")  # another operation: nothing
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "refresh of f works again after 2 failure(s)")
    ]
    caplog.clear()
    state.failing("refresh", "f", OSError("again"))  # a new run of failures: logged again
    assert len(caplog.records) == 1


def test_the_traceback_is_logged_at_debug_level(
    state: Stampede, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flask_stash")
    error = OSError("down")
    state.failing("refresh", "f", error)
    [record] = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[1] is error


def test_working_without_failures_logs_nothing(
    state: Stampede, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flask_stash")
    state.working("refresh", "f")
    assert caplog.records == []


# -- bounded tables -------------------------------------------------------------------------


def test_a_full_table_drops_its_oldest_half() -> None:
    table = {number: number for number in range(TABLE_SIZE - 1)}
    stampede._bound(table)
    assert len(table) == TABLE_SIZE - 1  # room left: untouched
    table[TABLE_SIZE - 1] = TABLE_SIZE - 1
    stampede._bound(table)
    assert list(table) == list(range(TABLE_SIZE // 2, TABLE_SIZE))


def test_every_table_is_bounded(state: Stampede) -> None:
    for number in range(TABLE_SIZE):
        state.mark_pass(f"k{number}")
        state.refresh_failed(f"k{number}")
        state.failing("refresh", f"k{number}", OSError("down"))
    state.mark_pass("new")
    state.refresh_failed("new")
    state.failing("refresh", "new", OSError("down"))
    half = TABLE_SIZE // 2 + 1
    assert (len(state._passes), len(state._refresh_due), len(state._failing)) == (half,) * 3
    assert state.passing("new")
    assert not state.passing("k0")


# -- races: another thread changed a table between the unlocked look and the lock ------------


class Raced:
    """Stands in for the state's lock: runs ``meanwhile`` as the lock is taken, as if
    another thread had got there first."""

    def __init__(self, meanwhile: Any) -> None:
        self.meanwhile = meanwhile

    def __enter__(self) -> None:
        self.meanwhile()

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_pass_ended_meanwhile_by_another_thread(state: Stampede, clock: FakeClock) -> None:
    state.mark_pass("k", 1.0)
    clock.advance(1.0)
    state._lock = Raced(lambda: state._passes.pop("k"))  # type: ignore[assignment]
    assert not state.passing("k")  # over, and already forgotten: no KeyError


def test_a_pass_cleared_meanwhile_by_another_thread(state: Stampede) -> None:
    state.mark_pass("k")
    state._lock = Raced(lambda: state._passes.pop("k"))  # type: ignore[assignment]
    state.clear_pass("k")
    assert not state.passing("k")


def test_a_back_off_ended_meanwhile_by_another_thread(state: Stampede) -> None:
    state.refresh_failed("k")
    state._lock = Raced(lambda: state._refresh_due.pop("k"))  # type: ignore[assignment]
    state.refresh_worked("k")
    assert state.refresh_allowed("k")

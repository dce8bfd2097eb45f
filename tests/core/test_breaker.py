"""The circuit breaker's states, on a fake clock (``core/breaker.py``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flask_stash.core.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, Health, describe
from flask_stash.core.errors import BackendError
from flask_stash.testing import FakeClock


def down() -> BackendError:
    return BackendError("get failed", TimeoutError("timed out"))


def test_opens_after_the_threshold_of_failures_in_a_row(clock: FakeClock) -> None:
    breaker = Breaker(3, 1.0, 8.0, clock=clock)
    assert breaker.failed(down()) is True  # the first failure after a healthy spell
    assert breaker.failed(down()) is False
    assert breaker.state == CLOSED
    assert breaker.admit()
    breaker.failed(down())
    assert breaker.state == OPEN
    assert not breaker.admit()
    assert breaker.health().skipped == 1


def test_a_success_in_between_starts_the_count_again(clock: FakeClock) -> None:
    breaker = Breaker(2, clock=clock)
    breaker.failed(down())
    ended = breaker.succeeded()
    assert ended is not None
    assert ended.failures == 1
    breaker.failed(down())
    assert breaker.state == CLOSED
    assert breaker.succeeded() is not None
    assert breaker.succeeded() is None  # healthy already: nothing ended


def test_one_probe_at_a_time_after_the_backoff(clock: FakeClock) -> None:
    breaker = Breaker(1, 1.0, 8.0, clock=clock)
    breaker.failed(down())
    clock.advance(0.999)
    assert not breaker.admit()
    clock.advance(0.001)
    assert breaker.admit()  # the probe
    assert breaker.state == HALF_OPEN
    assert not breaker.admit()  # no second probe while one is out
    ended = breaker.succeeded()
    assert ended is not None
    assert breaker.state == CLOSED
    assert breaker.health().healthy


def test_each_failed_probe_doubles_the_wait_up_to_the_maximum(clock: FakeClock) -> None:
    breaker = Breaker(1, 1.0, 3.0, clock=clock)
    breaker.failed(down())
    waits = []
    for _ in range(4):
        waited = 0.0
        while not breaker.admit():
            clock.advance(0.5)
            waited += 0.5
        waits.append(waited)
        breaker.failed(down())
    assert waits == [1.0, 2.0, 3.0, 3.0]


def test_a_released_probe_lets_the_next_caller_probe(clock: FakeClock) -> None:
    breaker = Breaker(1, 1.0, 8.0, clock=clock)
    breaker.failed(down())
    clock.advance(1)
    assert breaker.admit()
    breaker.release_probe()
    assert breaker.state == OPEN
    assert breaker.admit()


def test_without_threshold_it_never_opens(clock: FakeClock) -> None:
    breaker = Breaker(None, clock=clock)
    for _ in range(50):
        breaker.failed(down())
    assert breaker.state == CLOSED
    assert breaker.admit()
    assert breaker.health().failures == 50


def test_health_reports_the_outage(clock: FakeClock) -> None:
    breaker = Breaker(2, clock=clock)
    assert breaker.health().healthy
    breaker.failed(down())
    clock.advance(2.5)
    health = breaker.health()
    assert (health.state, health.failures, health.failing_for) == (CLOSED, 1, 2.5)
    assert health.last_error == "TimeoutError: timed out"
    assert not health.healthy


def test_the_driver_error_is_named_not_the_wrapper() -> None:
    assert describe(down()) == "TimeoutError: timed out"
    assert describe(ValueError("x")) == "ValueError: x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0,), "threshold"),
        ((True,), "threshold"),
        ((3, 0.0), "backoff"),
        ((3, 2.0, 1.0), "backoff"),
    ],
)
def test_bad_settings_are_refused(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Breaker(*args)  # type: ignore[arg-type]


def test_a_new_breaker_reports_a_healthy_backend(clock: FakeClock) -> None:
    breaker = Breaker(clock=clock)
    clock.advance(100)
    assert breaker.health() == Health(CLOSED, 0, 0, 0.0, "")
    assert breaker.health().healthy


def test_the_end_of_an_outage_reports_it_and_resets_everything(clock: FakeClock) -> None:
    breaker = Breaker(1, 1.0, 8.0, clock=clock)
    clock.advance(10)
    breaker.failed(down())
    clock.advance(0.5)
    assert not breaker.admit()
    assert not breaker.admit()
    assert breaker.health() == Health(OPEN, 1, 2, 0.5, "TimeoutError: timed out")
    clock.advance(0.5)
    assert breaker.admit()  # the probe
    assert breaker.succeeded() == Health(HALF_OPEN, 1, 2, 1.0, "TimeoutError: timed out")
    clock.advance(3)
    assert breaker.health() == Health(CLOSED, 0, 0, 0.0, "")
    # The next outage starts from the first back-off again, and counts from its own start.
    breaker.failed(down())
    assert breaker.health().failing_for == 0.0
    clock.advance(0.999)
    assert not breaker.admit()
    clock.advance(0.001)
    assert breaker.admit()


def test_an_outage_ends_once_when_two_calls_succeed_together(clock: FakeClock) -> None:
    """Two threads both see the outage and both report a success: one ends it."""
    breaker = Breaker(3, clock=clock)
    breaker.failed(down())
    waiting = threading.Semaphore(0)

    class Watched:
        """The breaker's lock, saying when a thread is about to wait for it."""

        def __init__(self, lock: Any) -> None:
            self.lock = lock

        def __enter__(self) -> None:
            waiting.release()
            self.lock.acquire()

        def __exit__(self, *exc: object) -> None:
            self.lock.release()

    inner = threading.Lock()
    breaker._lock = Watched(inner)  # type: ignore[assignment]
    ended: list[Health | None] = []
    with inner:  # both threads pass the unlocked check, then wait here
        threads = [threading.Thread(target=lambda: ended.append(breaker.succeeded()))]
        threads.append(threading.Thread(target=lambda: ended.append(breaker.succeeded())))
        for thread in threads:
            thread.start()
        waiting.acquire()
        waiting.acquire()
    for thread in threads:
        thread.join()
    assert sorted(ended, key=lambda health: health is None) == [
        Health(CLOSED, 1, 0, 0.0, "TimeoutError: timed out"),
        None,
    ]


def test_backoff_may_equal_its_maximum(clock: FakeClock) -> None:
    breaker = Breaker(1, 2.0, 2.0, clock=clock)
    breaker.failed(down())
    clock.advance(2)
    assert breaker.admit()
    breaker.failed(down())
    clock.advance(1.999)
    assert not breaker.admit()
    clock.advance(0.001)
    assert breaker.admit()

"""The circuit breaker's states, on a fake clock (``core/breaker.py``)."""

from __future__ import annotations

import pytest

from flask_stash.core.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, describe
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

"""The error policy: counted always, logged at most once per interval per operation."""

from __future__ import annotations

import logging

import pytest

from flask_stash.core.errors import BackendError
from flask_stash.core.policy import ErrorPolicy
from flask_stash.core.stats import ERROR, Stats
from flask_stash.testing import FakeClock


def policy(clock: FakeClock, **kwargs: object) -> ErrorPolicy:
    return ErrorPolicy(Stats(), clock=clock, log_interval=30.0, **kwargs)  # type: ignore[arg-type]


def test_fail_open_counts_and_logs_once_per_interval(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    errors = policy(clock)
    with caplog.at_level(logging.WARNING, logger="flask_stash"):
        errors.handle(BackendError("down"), "get")
        clock.advance(29.999)
        errors.handle(BackendError("down"), "get")
        errors.handle(BackendError("down"), "get")
        errors.handle(BackendError("down"), "set")  # another operation: its own line
        clock.advance(0.001)  # exactly the interval later: logged again
        errors.handle(BackendError("down"), "get")
    assert errors.stats.get(ERROR, "get") == 4
    assert errors.stats.get(ERROR, "set") == 1
    assert [r.getMessage() for r in caplog.records] == [
        "cache get failed, serving uncached: BackendError: down",
        "cache set failed, serving uncached: BackendError: down",
        "cache get failed, serving uncached: BackendError: down (2 similar errors suppressed)",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)  # tracebacks at DEBUG only


def test_the_traceback_is_logged_at_debug(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    errors = policy(clock)
    with caplog.at_level(logging.DEBUG, logger="flask_stash"):
        errors.handle(BackendError("down"), "get")
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.DEBUG]
    assert caplog.records[1].getMessage() == "cache get failed"
    assert caplog.records[1].exc_info is not None


def test_fail_closed_says_it_raised(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    errors = policy(clock, fail_open=False)
    with caplog.at_level(logging.WARNING, logger="flask_stash"), pytest.raises(BackendError):
        errors.handle(BackendError("down"), "get")
    assert [r.getMessage() for r in caplog.records] == [
        "cache get failed, raised (CACHE_FAIL_OPEN is False): BackendError: down"
    ]


def test_a_quiet_failure_is_counted_and_logged_at_debug_only(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    errors = policy(clock)
    with caplog.at_level(logging.DEBUG, logger="flask_stash"):
        errors.handle(BackendError("down"), "get", quiet=True)
    assert errors.stats.get(ERROR, "get") == 1
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert caplog.records[0].getMessage() == "cache get failed: down"
    assert caplog.records[0].exc_info is not None


def test_fail_closed_raises_after_counting(clock: FakeClock) -> None:
    errors = policy(clock, fail_open=False)
    error = BackendError("down")
    with pytest.raises(BackendError) as info:
        errors.handle(error, "get")
    assert info.value is error
    assert errors.stats.get(ERROR, "get") == 1


def test_defaults() -> None:
    errors = ErrorPolicy(Stats())
    assert errors.fail_open is True
    assert errors.log_interval == 30.0


def test_every_error_handled_is_kept_for_the_dashboard(clock: FakeClock) -> None:
    errors = policy(clock)
    errors.handle(BackendError("down"), "get", quiet=True)
    with pytest.raises(ValueError):
        policy(clock, fail_open=False).handle(ValueError("x"), "set")
    errors.handle(ValueError("no key"), "memoize key")
    assert [(e.operation, e.message, e.count) for e in errors.recent.entries()] == [
        ("memoize key", "ValueError: no key", 1),
        ("get", "BackendError: down", 1),
    ]

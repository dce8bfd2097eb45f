"""The record of recent errors: bounded, repeats merged, newest first, thread-safe."""

from __future__ import annotations

import threading

from flask_stash.core.errorlog import MAX_MESSAGE, RecentError, RecentErrors
from flask_stash.core.errors import BackendError
from flask_stash.testing import FakeClock


class Driver(Exception):
    """A driver's own error, wrapped by the backend."""


def wrapped(message: str) -> BackendError:
    error = BackendError("backend failed")
    error.original = Driver(message)  # type: ignore[attr-defined]
    return error


def test_entries_are_newest_first_and_name_the_drivers_error(clock: FakeClock) -> None:
    recent, t0 = RecentErrors(clock=clock), clock()
    recent.add(wrapped("refused"), "get")
    clock.advance(2)
    recent.add(BackendError("timed out"), "set")
    assert recent.entries() == [
        RecentError("set", "BackendError: timed out", t0 + 2, t0 + 2),
        RecentError("get", "Driver: refused", t0, t0),
    ]


def test_repeats_merge_into_one_entry_moved_to_the_newest_place(clock: FakeClock) -> None:
    recent, t0 = RecentErrors(clock=clock), clock()
    recent.add(wrapped("refused"), "get")
    clock.advance(1)
    recent.add(wrapped("refused"), "set")  # another operation: its own entry
    clock.advance(1)
    recent.add(wrapped("refused"), "get")
    recent.add(wrapped("reset"), "get")  # another message: its own entry
    newest, merged, other = recent.entries()
    assert (newest.operation, newest.message, newest.count) == ("get", "Driver: reset", 1)
    assert (merged.operation, merged.count) == ("get", 2)
    assert (merged.first, merged.last) == (t0, t0 + 2)
    assert (other.operation, other.count) == ("set", 1)
    assert merged.as_dict() == {
        "operation": "get",
        "message": "Driver: refused",
        "first": round(t0, 3),
        "last": round(t0 + 2, 3),
        "count": 2,
    }


def test_the_record_is_bounded_and_long_messages_are_cut(clock: FakeClock) -> None:
    recent = RecentErrors(size=3, clock=clock)
    for n in range(5):
        recent.add(BackendError(f"error {n}"), "get")
    assert [e.message for e in recent.entries()] == [f"BackendError: error {n}" for n in (4, 3, 2)]
    recent.add(BackendError("x" * 1000), "get")
    message = recent.entries()[0].message
    assert len(message) == MAX_MESSAGE
    assert message.endswith("\u2026")
    recent.clear()
    assert recent.entries() == []


def test_concurrent_errors_are_all_counted(clock: FakeClock) -> None:
    recent = RecentErrors(clock=clock)
    start = threading.Barrier(8)

    def fail() -> None:
        start.wait()
        for _ in range(500):
            recent.add(BackendError("down"), "get")

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [entry] = recent.entries()
    assert entry.count == 8 * 500

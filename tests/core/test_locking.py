"""Taking turns to compute a key across processes (``core/locking.py``), step by step.

A scripted lock backend on a fake clock: which calls are made, what a waiter does while
another process holds the lock, and what happens when the lock commands fail. The same
rules end to end, on real backends, are in ``test_stampede.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.engine import Lookup
from flask_stash.core.errors import BackendError
from flask_stash.core.locking import BackendLock, Turn, atake_turn, take_turn
from flask_stash.core.stampede import Protection
from flask_stash.core.stats import ERROR, LOCK_WAIT
from flask_stash.core.store import Store
from flask_stash.testing import FakeClock

WHERE = Lookup("p:key", (), "report")


class LockingBackend(MemoryBackend):
    """A memory backend with scripted locks: held by name, failing on demand."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.holders: dict[str, str] = {}
        self.calls: list[tuple[str, ...]] = []
        self.failing: set[str] = set()

    def acquire_lock(self, name: str, token: str, lease: float) -> bool:
        self.calls.append(("acquire", name, str(lease)))
        if "acquire" in self.failing:
            raise BackendError("lock failed", TimeoutError("timed out"))
        return self.holders.setdefault(name, token) == token

    def release_lock(self, name: str, token: str) -> bool:
        self.calls.append(("release", name))
        if "release" in self.failing:
            raise BackendError("unlock failed", TimeoutError("timed out"))
        if self.holders.get(name) != token:
            return False
        del self.holders[name]
        return True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(0.0)


@pytest.fixture
def backend(clock: FakeClock) -> LockingBackend:
    return LockingBackend(clock)


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def store(backend: LockingBackend, clock: FakeClock, slept: list[float]) -> Store:
    """Waiting for a lock records the delay and moves the fake clock instead of sleeping."""

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    made = Store(backend, clock=clock)
    made.stampede.monotonic = clock
    made.stampede.sleep = sleep  # type: ignore[method-assign]
    return made


class Finder:
    """``found()``: whether another process stored the result, counting the looks."""

    def __init__(self, *answers: tuple[bool, Any]) -> None:
        self.answers = list(answers)
        self.looks = 0

    def __call__(self) -> tuple[bool, Any]:
        self.looks += 1
        return self.answers.pop(0) if self.answers else (False, None)


# -- without the lock capability ----------------------------------------------------------


def test_without_locks_found_is_checked_once_unless_told_not_to(clock: FakeClock) -> None:
    store = Store(MemoryBackend(clock=clock), clock=clock)
    assert not store.stampede.locks
    found = Finder((True, "theirs"))
    turn = take_turn(store, WHERE, Protection(), found)
    assert (turn.found, turn.value, found.looks) == (True, "theirs", 1)
    found = Finder((True, "theirs"))
    turn = take_turn(store, WHERE, Protection(), found, check_first=False)
    assert (turn.found, turn.value, found.looks) == (False, None, 0)
    turn = take_turn(store, WHERE, Protection(), Finder())
    assert (turn.found, turn.value) == (False, None)


def test_without_locks_async_is_the_same(clock: FakeClock) -> None:
    store = Store(MemoryBackend(clock=clock), clock=clock)

    async def main() -> list[tuple[bool, Any]]:
        first = await atake_turn(store, WHERE, Protection(), Finder((True, 1)))
        second = await atake_turn(store, WHERE, Protection(), Finder((True, 1)), False)
        return [(first.found, first.value), (second.found, second.value)]

    assert asyncio.run(main()) == [(True, 1), (False, None)]


# -- holding the lock ---------------------------------------------------------------------


def test_the_lock_holder_checks_found_first_and_gives_the_lock_back_if_found(
    store: Store, backend: LockingBackend
) -> None:
    found = Finder((True, "stored meanwhile"))
    turn = take_turn(store, WHERE, Protection(lock_lease=7), found)
    assert (turn.found, turn.value, found.looks) == (True, "stored meanwhile", 1)
    assert backend.calls == [("acquire", "p:key:lock", "7"), ("release", "p:key:lock")]
    assert backend.holders == {}


def test_the_lock_holder_computes_and_releases_once(store: Store, backend: LockingBackend) -> None:
    found = Finder((True, "ignored"))
    turn = take_turn(store, WHERE, Protection(), found, check_first=False)
    assert (turn.found, turn.value, found.looks) == (False, None, 0)
    assert list(backend.holders) == ["p:key:lock"]
    turn.release()
    turn.release()  # a second release gives back nothing
    assert backend.calls[1:] == [("release", "p:key:lock")]
    assert backend.holders == {}
    assert store.stats.get(LOCK_WAIT) == 0


def test_a_failing_found_releases_the_lock(store: Store, backend: LockingBackend) -> None:
    def broken() -> tuple[bool, Any]:
        raise KeyError("decoding failed")

    with pytest.raises(KeyError):
        take_turn(store, WHERE, Protection(), broken)
    assert backend.holders == {}


# -- waiting for another process ------------------------------------------------------------


def test_a_waiter_polls_with_doubling_delays_then_computes_without_the_lock(
    store: Store, backend: LockingBackend, slept: list[float]
) -> None:
    backend.holders["p:key:lock"] = "another process"
    found = Finder()
    turn = take_turn(store, WHERE, Protection(lock_wait=0.5), found)
    assert (turn.found, turn.value) == (False, None)
    turn.release()  # holds nothing: no call
    assert slept == [0.005, 0.01, 0.02, 0.04, 0.08, 0.1, 0.1, 0.1, 0.1]
    assert found.looks == len(slept)
    assert backend.holders == {"p:key:lock": "another process"}
    assert ("release", "p:key:lock") not in backend.calls
    assert store.stats.get(LOCK_WAIT, "report") == 1


def test_a_waiter_with_no_time_to_wait_computes_at_once(
    store: Store, backend: LockingBackend, slept: list[float]
) -> None:
    backend.holders["p:key:lock"] = "another process"
    turn = take_turn(store, WHERE, Protection(lock_wait=0), Finder())
    assert turn.found is False
    assert slept == []


def test_a_waiter_takes_the_other_processes_result(
    store: Store, backend: LockingBackend, slept: list[float]
) -> None:
    backend.holders["p:key:lock"] = "another process"
    found = Finder((False, None), (True, "theirs"))
    turn = take_turn(store, WHERE, Protection(), found)
    assert (turn.found, turn.value) == (True, "theirs")
    assert slept == [0.005, 0.01]


def test_a_waiter_takes_the_lock_once_the_holder_lets_go(
    store: Store, backend: LockingBackend
) -> None:
    backend.holders["p:key:lock"] = "another process"

    class Finished(Finder):
        def __call__(self) -> tuple[bool, Any]:
            if self.looks == 1:
                del backend.holders["p:key:lock"]  # done, and stored nothing
            return super().__call__()

    found = Finished()
    turn = take_turn(store, WHERE, Protection(), found)
    assert (turn.found, turn.value) == (False, None)
    assert found.looks == 3  # two polls, then once more while holding the lock
    assert backend.holders["p:key:lock"] != "another process"
    turn.release()
    assert backend.holders == {}


def test_async_waiters_poll_the_same_way(store: Store, backend: LockingBackend) -> None:
    backend.holders["p:key:lock"] = "another process"
    found = Finder((False, None), (True, "theirs"))
    turn = asyncio.run(atake_turn(store, WHERE, Protection(), found))
    assert (turn.found, turn.value, found.looks) == (True, "theirs", 2)


# -- lock commands that fail ----------------------------------------------------------------


def test_a_failed_lock_command_computes_and_releases_when_the_backend_answers(
    store: Store, backend: LockingBackend
) -> None:
    backend.failing.add("acquire")
    lock = BackendLock(store, "p:key:lock", Protection())
    assert lock.acquire() is True  # compute without the lock rather than wait
    assert lock.held is False
    assert store.stats.get(ERROR, "lock") == 1
    # The command may still run on a server that was only slow: released at the replay.
    assert len(store.gate.pending) == 1
    backend.failing.clear()
    store.gate.pending.replay()
    assert backend.calls[-1] == ("release", "p:key:lock")


def test_a_lock_command_never_sent_is_not_released_later(
    store: Store, backend: LockingBackend
) -> None:
    backend.failing.update({"acquire", "release"})
    for _ in range(3):  # the breaker opens: the next calls are not made
        BackendLock(store, "p:key:lock", Protection()).acquire()
    queued = len(store.gate.pending)
    backend.calls.clear()
    lock = BackendLock(store, "p:key:lock", Protection())
    assert lock.acquire() is True
    assert backend.calls == []
    assert len(store.gate.pending) == queued


def test_a_failed_unlock_is_replayed(store: Store, backend: LockingBackend) -> None:
    lock = BackendLock(store, "p:key:lock", Protection())
    lock.release()  # never taken: nothing sent
    assert backend.calls == []
    assert lock.acquire() is True
    assert lock.held is True
    backend.failing.add("release")
    lock.release()
    assert lock.held is False
    assert store.stats.get(ERROR, "unlock") == 1
    assert len(store.gate.pending) == 1
    backend.failing.clear()
    store.gate.pending.replay()
    assert backend.holders == {}


def test_a_successful_unlock_leaves_nothing_to_replay(store: Store) -> None:
    lock = BackendLock(store, "p:key:lock", Protection())
    assert lock.acquire()
    lock.release()
    assert len(store.gate.pending) == 0


def test_a_turn_without_a_lock_releases_nothing() -> None:
    Turn(False).release()

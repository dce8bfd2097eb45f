"""The gate when a backend stops answering: a failure budget per scope, the breaker, one
log line per state change, listeners, and invalidations replayed before anything else."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flask_stash.core.api import MISS
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.breaker import OPEN, Breaker, Health
from flask_stash.core.errors import BackendError, BackendUnavailable
from flask_stash.core.memoize import memo_spec, memoize
from flask_stash.core.pending import PendingInvalidations
from flask_stash.core.stats import BACKEND_SKIP, ERROR
from flask_stash.core.store import Store
from flask_stash.testing import FakeClock


class Switchable(MemoryBackend):
    """A memory backend that can be taken down: then every call raises, as a hung or
    refused server's driver error does once wrapped; ``calls`` counts what reached it."""

    def __init__(self) -> None:
        super().__init__(threshold=0)
        self.down = False
        self.calls: list[str] = []
        self.local_stamps = None  # type: ignore[assignment]  # stamps in the backend, as shared ones

    def _reach(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise BackendError(f"{name} failed", TimeoutError("timed out"))

    def get(self, key: str) -> Any:
        self._reach("get")
        return super().get(key)

    def get_many(self, keys: Any) -> Any:
        self._reach("get_many")
        return super().get_many(keys)

    def set(self, key: str, value: bytes, ttl: Any) -> None:
        self._reach("set")
        super().set(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: Any) -> bool:
        self._reach("add")
        return super().add(key, value, ttl)

    def delete(self, key: str) -> bool:
        self._reach("delete")
        return super().delete(key)


class Scope:
    """Stands for a request: anything weakly referenceable."""


@pytest.fixture
def backend() -> Switchable:
    return Switchable()


@pytest.fixture
def monotonic(clock: FakeClock) -> FakeClock:
    return FakeClock(start=0.0)


def store_on(backend: Switchable, monotonic: FakeClock, threshold: int = 3, **kw: Any) -> Store:
    store = Store(backend, **kw)
    store.gate.breaker = Breaker(threshold, 1.0, 8.0, clock=monotonic)
    return store


@pytest.fixture
def current() -> list[Scope | None]:
    return [None]


def scoped(store: Store, current: list[Scope | None]) -> None:
    store.gate.scope = lambda: current[0]


def test_a_healthy_backend_is_not_troubled(backend: Switchable, monotonic: FakeClock) -> None:
    store = store_on(backend, monotonic)
    store.set("k", 1)
    assert store.get("k") == 1
    assert store.gate.troubled is False


def test_after_one_failure_the_rest_of_the_request_skips_the_backend(
    backend: Switchable, monotonic: FakeClock, current: list[Scope | None]
) -> None:
    store = store_on(backend, monotonic)
    scoped(store, current)
    spec_calls: list[int] = []

    @memoize(store, 60)
    def f(x: int) -> int:
        spec_calls.append(x)
        return x

    @memoize(store, 60)
    def g(x: int) -> int:
        return x + 1

    backend.down = True
    current[0] = request = Scope()
    backend.calls.clear()
    assert (f(1), g(1)) == (1, 2)  # computed, served
    assert backend.calls == ["get_many"]  # one call reached the backend, nothing else
    assert store.stats.get(ERROR) == 1
    assert store.stats.get(BACKEND_SKIP) >= 2
    del request
    current[0] = Scope()  # the next request tries again
    backend.calls.clear()
    f(2)
    assert backend.calls == ["get_many"]


def test_the_breaker_opens_then_a_probe_closes_it(
    backend: Switchable,
    monotonic: FakeClock,
    current: list[Scope | None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = store_on(backend, monotonic, threshold=2)
    scoped(store, current)
    heard: list[tuple[str, Health]] = []
    store.gate.listeners.append(lambda event, name, health: heard.append((event, health)))
    store.set("k", "v")
    backend.down = True
    with caplog.at_level(logging.DEBUG, logger="flask_stash"):
        for _ in range(2):
            current[0] = Scope()
            assert store.get("k") is MISS
        assert store.gate.breaker.state == OPEN
        backend.calls.clear()
        for _ in range(5):
            current[0] = Scope()
            assert store.get("k") is MISS
        assert backend.calls == []  # open: no call at all
        backend.down = False
        monotonic.advance(1.0)
        current[0] = Scope()
        assert store.get("k") == "v"  # the probe
    assert store.gate.troubled is False
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.levelname for r in lines] == ["WARNING", "INFO"]
    assert lines[0].getMessage() == (
        "cache backend Switchable is failing (TimeoutError: timed out); "
        "serving uncached until it recovers"
    )
    assert lines[1].getMessage() == (
        "cache backend Switchable recovered after 1.0 s (2 failed and 5 skipped calls)"
    )
    assert [event for event, _ in heard] == ["unhealthy", "recovered"]
    assert all(r.exc_info is None for r in lines)  # tracebacks at DEBUG only


def test_fail_closed_raises_while_open(backend: Switchable, monotonic: FakeClock) -> None:
    store = store_on(backend, monotonic, threshold=1, fail_open=False)
    backend.down = True
    with pytest.raises(BackendError):
        store.get("k")
    with pytest.raises(BackendUnavailable, match=r"unavailable \(open\): TimeoutError"):
        store.get("k")


def test_invalidations_made_during_an_outage_are_replayed_first(
    backend: Switchable, monotonic: FakeClock
) -> None:
    store = store_on(backend, monotonic, threshold=1)
    runs: list[int] = []

    @memoize(store, 60)
    def price() -> int:
        runs.append(1)
        return 10 * len(runs)

    store.set("balance", 100)
    assert price() == 10
    backend.down = True
    assert store.delete("balance") is False  # fails: queued
    assert memo_spec(price).invalidate_all() is False  # skipped (open): queued
    assert len(store.gate.pending) == 2
    backend.down = False
    monotonic.advance(1.0)
    # The first call after the outage replays both before it reads anything.
    assert store.get("balance") is MISS
    assert price() == 20  # the old value was invalidated, never served again
    assert len(store.gate.pending) == 0


def test_a_replay_that_fails_keeps_the_rest_in_order() -> None:
    done: list[str] = []
    fail = {"b": True}

    def call(name: str) -> None:
        if fail.get(name):
            raise BackendError("down")
        done.append(name)

    pending = PendingInvalidations()
    for name in "abc":
        pending.add(call, (name,))
    with pytest.raises(BackendError):
        pending.replay()
    assert (done, len(pending)) == (["a"], 2)
    fail.clear()
    pending.replay()
    assert (done, len(pending)) == (["a", "b", "c"], 0)


def test_an_overflowing_queue_becomes_one_clear() -> None:
    cleared: list[bool] = []
    done: list[int] = []
    pending = PendingInvalidations(limit=2, clear_all=lambda: cleared.append(True))
    for i in range(3):
        pending.add(done.append, (i,))
    assert len(pending) == 1  # the clear to come
    pending.add(done.append, (9,))  # covered by the clear
    pending.replay()
    assert (cleared, done, len(pending)) == ([True], [], 0)


def test_ping_reports_health_without_changing_it(backend: Switchable, monotonic: FakeClock) -> None:
    store = store_on(backend, monotonic, threshold=1)
    probe = lambda: backend.get("ping")  # noqa: E731
    assert store.gate.ping(probe)["healthy"] is True
    backend.down = True
    store.get("k")
    report = store.gate.ping(probe)
    assert report["breaker"] == "open"
    assert report["reachable"] is False
    assert report["error"] == "TimeoutError: timed out"
    backend.down = False
    report = store.gate.ping(probe)
    assert (report["reachable"], report["healthy"], report["breaker"]) == (True, False, "open")


@pytest.mark.parametrize("vkeys", [(), ("stamp",)], ids=["plain read", "read with stamps"])
def test_a_probe_through_the_hot_read_closes_the_breaker(
    backend: Switchable, monotonic: FakeClock, vkeys: tuple[str, ...]
) -> None:
    store = store_on(backend, monotonic, threshold=1)
    backend.down = True
    assert store.read_stored("k", vkeys) == (MISS, None)
    assert store.gate.breaker.state == OPEN
    backend.down = False
    monotonic.advance(1.0)
    store.read_stored("k", vkeys)  # the probe: a view's read has no stamps
    assert store.gate.breaker.state == "closed"
    assert store.gate.troubled is False


class Locking(Switchable):
    """With locks; a lock command that "times out" still takes the lock, as a paused
    server runs what it had received once resumed."""

    def __init__(self) -> None:
        super().__init__()
        self.locks: dict[str, str] = {}

    def acquire_lock(self, name: str, token: str, lease: float) -> bool:
        self.calls.append("acquire_lock")
        taken = self.locks.setdefault(name, token) == token
        if self.down:
            raise BackendError("lock failed", TimeoutError("timed out"))
        return taken

    def release_lock(self, name: str, token: str) -> bool:
        self._reach("release_lock")
        if self.locks.get(name) == token:
            del self.locks[name]
            return True
        return False


def test_a_lock_whose_command_timed_out_is_released_once_the_backend_answers(
    monotonic: FakeClock,
) -> None:
    from flask_stash.core.locking import BackendLock
    from flask_stash.core.stampede import Protection

    backend = Locking()
    store = store_on(backend, monotonic)  # type: ignore[arg-type]
    lock = BackendLock(store, "k:lock", Protection())
    backend.down = True
    assert lock.acquire() is True  # computes without the lock
    assert backend.locks == {"k:lock": lock.token}  # ...but the server took it meanwhile
    backend.down = False
    store.get("anything")  # the first call after the outage replays the release first
    assert backend.locks == {}
    assert backend.calls[-2:] == ["release_lock", "get"]


def test_too_many_invalidations_in_an_outage_clear_the_store_once_it_answers(
    backend: Switchable, monotonic: FakeClock
) -> None:
    """Past the queue's limit, the invalidations are replaced by a clear of the namespace:
    no entry written before the outage may be served after it."""
    store = store_on(backend, monotonic, threshold=1)
    store.gate.pending.limit = 2
    for key in ("a", "b", "c"):
        store.set(key, key)
    backend.down = True
    for key in ("a", "b", "c"):
        store.delete(key)  # the third overflows the queue
    assert store.gate.pending.overflowed
    backend.down = False
    monotonic.advance(1.0)
    assert store.get_many(["a", "b", "c"]) == [MISS, MISS, MISS]
    assert len(store.gate.pending) == 0

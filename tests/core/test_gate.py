"""The gate every backend call goes through: a failure is handed to the error policy once
and the operation returns its documented failed value (or raises when not failing open)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from flask_stash.core import gate as gate_module
from flask_stash.core.api import MISS, TTL, Miss
from flask_stash.core.breaker import Breaker, Health
from flask_stash.core.errors import BackendError
from flask_stash.core.gate import BackendGate, backend_name
from flask_stash.core.locking import BackendLock
from flask_stash.core.pending import PendingInvalidations
from flask_stash.core.policy import ErrorPolicy
from flask_stash.core.stampede import Protection
from flask_stash.core.stats import BACKEND_SKIP, ERROR, OUTAGE, Stats
from flask_stash.core.store import Store
from flask_stash.testing import FakeClock


class DeadBackend:
    """Every call (basic, counter and lock) raises :class:`BackendError`, like a server
    that refuses connections after the driver's errors were wrapped."""

    def __init__(self) -> None:
        self.raised: list[BackendError] = []

    def _fail(self, *_: object) -> Any:
        error = BackendError("connection refused")
        self.raised.append(error)
        raise error

    def get(self, key: str) -> bytes | Miss:
        return self._fail(key)  # type: ignore[no-any-return]

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        self._fail(key)

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        return self._fail(key)  # type: ignore[no-any-return]

    def delete(self, key: str) -> bool:
        return self._fail(key)  # type: ignore[no-any-return]

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        return self._fail(keys)  # type: ignore[no-any-return]

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        self._fail(items)

    def delete_many(self, keys: Sequence[str]) -> int:
        return self._fail(keys)  # type: ignore[no-any-return]

    def clear(self) -> None:
        self._fail()

    def close(self) -> None:
        pass

    def incr(self, key: str, delta: int, ttl: TTL) -> int:
        return self._fail(key)  # type: ignore[no-any-return]

    def acquire_lock(self, name: str, token: str, lease: float) -> bool:
        return self._fail(name)  # type: ignore[no-any-return]

    def release_lock(self, name: str, token: str) -> bool:
        return self._fail(name)  # type: ignore[no-any-return]


def lock(store: Store) -> BackendLock:
    return BackendLock(store, "k:lock", Protection())


def held(store: Store) -> BackendLock:
    """A lock taken earlier in the request (only a held lock is released)."""
    taken = lock(store)
    taken.held = True
    return taken


#: Every store operation (and the lock's two), the operation name the policy gets, and
#: the value the operation returns when the backend fails.
OPERATIONS: list[tuple[str, Callable[[Store], object], str, object]] = [
    ("read", lambda s: s.read("k"), "get", (MISS, None)),
    ("read in a family", lambda s: s.read("k", ("fn",)), "get", (MISS, None)),
    ("read_stored", lambda s: s.read_stored("k", ("fn", "obj")), "get", (MISS, None)),
    ("write", lambda s: s.write("k", 1), "set", False),
    ("write_entry", lambda s: s.write_entry("k", 1, None), "set", None),
    ("write_pass", lambda s: s.write_pass("k", "pass", 5, None), "set", None),
    ("current_version", lambda s: s.current_version(("fn", "obj"), None), "version", None),
    ("bump_version", lambda s: s.bump_version("fn"), "invalidate", False),
    ("get", lambda s: s.get("k"), "get", MISS),
    ("has", lambda s: s.has("k"), "get", False),
    ("get_many", lambda s: s.get_many(["a", "b"]), "get_many", [MISS, MISS]),
    ("set", lambda s: s.set("k", 1), "set", False),
    ("add", lambda s: s.add("k", 1), "add", False),
    ("set_many", lambda s: s.set_many({"a": 1, "b": 2}), "set_many", []),
    ("delete", lambda s: s.delete("k"), "delete", False),
    ("delete_many", lambda s: s.delete_many(["a", "b"]), "delete_many", 0),
    ("clear", lambda s: s.clear(), "clear", False),
    ("incr", lambda s: s.incr("n"), "incr", None),
    ("lock", lambda s: lock(s).acquire(), "lock", True),  # compute without the lock
    ("unlock", lambda s: held(s).release(), "unlock", None),
]
IDS = [name for name, *_ in OPERATIONS]


def spied_store(fail_open: bool) -> tuple[Store, DeadBackend, list[tuple[Exception, str]]]:
    """A store on a dead backend whose policy records each failure it is handed."""
    backend = DeadBackend()
    store = Store(backend, fail_open=fail_open)  # type: ignore[arg-type]
    handled: list[tuple[Exception, str]] = []
    handle = store.policy.handle

    def spy(error: Exception, operation: str, **options: Any) -> None:
        handled.append((error, operation))
        handle(error, operation, **options)

    store.policy.handle = spy  # type: ignore[method-assign]
    return store, backend, handled


@pytest.mark.parametrize(("name", "operation", "label", "failed"), OPERATIONS, ids=IDS)
def test_a_failed_operation_returns_its_failed_value_once_counted(
    name: str, operation: Callable[[Store], object], label: str, failed: object
) -> None:
    store, backend, handled = spied_store(fail_open=True)
    assert operation(store) == failed
    assert len(backend.raised) == 1  # one backend call failed: the operation stopped there
    assert handled == [(backend.raised[0], label)]
    assert store.stats.get(ERROR, label) == 1
    assert store.stats.get(ERROR) == 1


@pytest.mark.parametrize(("name", "operation", "label", "failed"), OPERATIONS, ids=IDS)
def test_not_failing_open_raises_the_backend_error(
    name: str, operation: Callable[[Store], object], label: str, failed: object
) -> None:
    store, backend, handled = spied_store(fail_open=False)
    with pytest.raises(BackendError) as info:
        operation(store)
    assert info.value is backend.raised[0]
    assert handled == [(backend.raised[0], label)]
    assert store.stats.get(ERROR, label) == 1


def test_the_gate_hands_only_backend_errors_to_the_policy() -> None:
    gate = BackendGate(ErrorPolicy(Stats()))

    def broken(_: int) -> int:
        raise TypeError("a bug, not a backend failure")

    assert gate.call("get", "failed", lambda n: n * 2, 21) == 42
    assert gate.run("set", lambda: None) is True
    with pytest.raises(TypeError):
        gate.call("get", "failed", broken, 1)
    assert gate.policy.stats.get(ERROR) == 0


# -- the gate on its own: scripted calls on a fake clock ------------------------------------


class Request:
    """A request, as the Flask layer's ``scope()`` returns it (weakly referenced)."""


class Rig:
    """A gate over scripted calls: ``call(name)`` fails while ``name`` is in ``down``."""

    def __init__(self, threshold: int | None = 3, fail_open: bool = True) -> None:
        self.clock = FakeClock(0.0)
        self.stats = Stats()
        self.request: Request | None = None
        self.gate = BackendGate(
            ErrorPolicy(self.stats, fail_open=fail_open, clock=self.clock),
            name="rig",
            breaker=Breaker(threshold, 1.0, 8.0, clock=self.clock),
            scope=lambda: self.request,
        )
        self.events: list[tuple[str, str, Health]] = []
        self.gate.listeners.append(lambda *event: self.events.append(event))
        self.down: set[str] = set()
        self.made: list[str] = []

    def method(self, name: str) -> str:
        self.made.append(name)
        if name in self.down:
            raise BackendError(f"{name} failed", TimeoutError("timed out"))
        return f"{name} done"

    def call(self, name: str, operation: str = "get") -> object:
        return self.gate.call(operation, "failed", self.method, name)


def test_gate_defaults() -> None:
    pending = PendingInvalidations()
    gate = BackendGate(ErrorPolicy(Stats()), pending=pending)
    assert gate.name == "backend"
    assert gate.pending is pending
    assert gate.troubled is False
    assert BackendGate(ErrorPolicy(Stats())).pending is not pending


def test_backend_names() -> None:
    class Described:
        def __repr__(self) -> str:
            return "<redis 10.0.0.1:6379>"

    class Plain:
        pass

    assert backend_name(Described()) == "<redis 10.0.0.1:6379>"
    assert backend_name(Plain()) == "Plain"


def test_a_failure_spends_the_request_s_budget_only() -> None:
    rig = Rig()
    rig.request = first = Request()
    rig.down.add("a")
    assert rig.call("a") == "failed"
    rig.down.clear()
    assert rig.call("b") == "failed"  # the rest of this request skips the backend
    assert rig.made == ["a"]
    assert rig.stats.get(BACKEND_SKIP, "get") == 1
    rig.request = Request()
    assert rig.call("c") == "c done"  # another request goes on
    assert rig.gate.troubled  # while the failed request lives
    assert rig.call("d") == "d done"  # nothing left to recover from: no second event
    assert [event for event, *_ in rig.events] == ["unhealthy", "recovered"]
    del first
    rig.request = None
    assert rig.call("e") == "e done"
    assert rig.gate.troubled is False


def test_failed_here_tells_whether_this_request_saw_the_backend_fail() -> None:
    rig = Rig(threshold=2)
    rig.request = first = Request()
    assert rig.gate.failed_here() is False  # healthy
    rig.down.add("a")
    rig.call("a")
    assert rig.gate.failed_here() is True  # this request saw it fail
    rig.request = other = Request()
    assert rig.gate.troubled
    assert rig.gate.failed_here() is False  # another request, breaker still closed
    rig.request = None
    assert rig.gate.failed_here() is False  # outside any request
    rig.call("a")  # the second failure in a row opens the breaker
    assert rig.gate.breaker.state == "open"
    assert rig.gate.failed_here() is True  # no request, but every call is skipped
    rig.request = other
    assert rig.gate.failed_here() is True
    del first, other


def test_failed_here_without_a_scope_function() -> None:
    gate = BackendGate(ErrorPolicy(Stats()), breaker=Breaker(1))
    gate.call("get", None, _raise)
    assert gate.breaker.state == "open"
    assert gate.failed_here() is True


def _raise() -> None:
    raise BackendError("down")


def test_listeners_hear_the_outage_and_the_recovery_with_their_health() -> None:
    rig = Rig()
    rig.down.add("a")
    rig.clock.advance(5)
    rig.call("a")
    rig.clock.advance(2)
    rig.down.clear()
    rig.call("b")
    assert rig.events == [
        ("unhealthy", "rig", Health("closed", 1, 0, 0.0, "TimeoutError: timed out")),
        ("recovered", "rig", Health("closed", 1, 0, 2.0, "TimeoutError: timed out")),
    ]
    assert rig.stats.get(OUTAGE) == 1


def test_failing_closed_says_so_in_the_outage_warning(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(fail_open=False)
    rig.down.add("a")
    with caplog.at_level(logging.WARNING, "flask_stash"), pytest.raises(BackendError):
        rig.call("a")
    assert caplog.records[0].getMessage() == (
        "cache backend rig is failing (TimeoutError: timed out); requests that use the "
        "cache raise errors until it recovers (CACHE_FAIL_OPEN is False)"
    )


def test_a_replay_proves_the_backend_answers() -> None:
    """The queued invalidations replay first; their success ends the outage even when
    the call that follows fails again."""
    rig = Rig()
    rig.down.add("x")
    assert rig.call("x", "delete") == "failed"
    assert len(rig.gate.pending) == 1
    rig.down = {"y"}
    assert rig.call("y") == "failed"
    assert rig.made == ["x", "x", "y"]
    assert [event for event, *_ in rig.events] == ["unhealthy", "recovered", "unhealthy"]


def test_a_failed_replay_stops_the_call_and_counts_as_a_replay_failure() -> None:
    rig = Rig()
    rig.down.add("x")
    rig.call("x", "delete")
    assert rig.call("y") == "failed"
    assert rig.made == ["x", "x"]  # the replay failed: "y" was not made
    assert rig.stats.get(ERROR, "replay") == 1
    assert rig.gate.health().failures == 2
    assert rig.gate.health().last_error == "TimeoutError: timed out"


def test_the_probe_replays_then_goes_on() -> None:
    rig = Rig(threshold=1)
    rig.down.add("x")
    rig.call("x", "delete")
    rig.down.clear()
    assert rig.call("y") == "failed"  # open
    rig.clock.advance(1)
    assert rig.call("y") == "y done"  # the probe: the replay, then the call
    assert rig.made == ["x", "x", "y"]
    assert rig.gate.health().state == "closed"
    assert rig.gate.troubled is False


def test_a_call_made_during_the_replay_does_not_wait_for_it() -> None:
    rig = Rig()
    inner: list[object] = []

    def invalidate(name: str) -> None:
        rig.method(name)
        if len(rig.made) > 1:  # replayed: a backend call from inside the replay
            inner.append(rig.call("inner"))

    rig.down.add("x")
    rig.gate.call("delete", None, invalidate, "x")
    rig.down.clear()
    assert rig.call("y") == "y done"
    assert inner == ["failed"]  # refused, not blocked on the replay in progress
    assert rig.made == ["x", "x", "y"]


def test_a_node_by_node_backend_retries_its_queue_once_per_backoff() -> None:
    rig = Rig(threshold=None)
    rig.down.add("x")
    rig.call("x", "delete")  # at 0: queued, tried at the next call
    assert rig.call("y") == "failed"  # the replay fails: at most one more try per second
    assert rig.made == ["x", "x"]
    rig.clock.advance(0.5)
    assert rig.call("z") == "z done"  # not held up by the failing node meanwhile
    assert rig.made == ["x", "x", "z"]
    rig.clock.advance(0.5)  # exactly one back-off later
    rig.down.clear()
    assert rig.call("w") == "w done"
    assert rig.made == ["x", "x", "z", "x", "w"]
    assert len(rig.gate.pending) == 0


def test_ping_reports_the_probe_and_the_breaker(monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig()
    ticks = iter([10.0, 10.0123456, 20.0, 20.5])
    monkeypatch.setattr(gate_module.time, "perf_counter", lambda: next(ticks))
    assert rig.gate.ping(lambda: None) == {
        "backend": "rig",
        "reachable": True,
        "latency_ms": 12.346,
        "error": "",
        "breaker": "closed",
        "healthy": True,
        "failed_calls": 0,
        "skipped_calls": 0,
        "pending_invalidations": 0,
    }
    rig.down.add("x")
    rig.call("x", "delete")
    report = rig.gate.ping(lambda: None)  # reachable again, but the last error stands
    assert report["latency_ms"] == 500.0
    assert (report["reachable"], report["healthy"], report["error"]) == (
        True,
        False,
        "TimeoutError: timed out",
    )
    assert (report["failed_calls"], report["pending_invalidations"]) == (1, 1)

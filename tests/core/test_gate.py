"""The gate every backend call goes through: a failure is handed to the error policy once
and the operation returns its documented failed value (or raises when not failing open)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from flask_stash.core.api import MISS, TTL, Miss
from flask_stash.core.errors import BackendError
from flask_stash.core.gate import BackendGate
from flask_stash.core.locking import BackendLock
from flask_stash.core.policy import ErrorPolicy
from flask_stash.core.stampede import Protection
from flask_stash.core.stats import ERROR, Stats
from flask_stash.core.store import Store


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

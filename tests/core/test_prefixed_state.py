"""A callable key prefix (one tenant per request): every call is under the prefix current
at that moment, and a tenant never reads, deletes or clears another tenant's keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flask_stash.core.api import MISS, TTL, SupportsAtomicAdd
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.null import NullBackend
from flask_stash.core.backends.prefixed import CallablePrefixBackend
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.store import Store
from flask_stash.testing import FakeClock


class Shared(MemoryBackend):
    """The memory backend plus leased locks: everything a callable prefix needs."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(threshold=0, clock=clock)
        self.locks: dict[str, tuple[str, float]] = {}
        self.closed = False

    def acquire_lock(self, name: str, token: str, lease: float) -> bool:
        held = self.locks.get(name)
        if held is not None and held[1] > self.clock():
            return False
        self.locks[name] = (token, self.clock() + lease)
        return True

    def release_lock(self, name: str, token: str) -> bool:
        held = self.locks.get(name)
        if held is None or held[0] != token:
            return False
        del self.locks[name]
        return True

    def close(self) -> None:
        self.closed = True


class Tenant:
    """The prefix function: whatever tenant the current request serves."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self) -> str:
        return self.name


@pytest.fixture
def inner(clock: FakeClock) -> Shared:
    return Shared(clock)


@pytest.fixture
def tenant() -> Tenant:
    return Tenant("a:")


@pytest.fixture
def backend(inner: Shared, tenant: Tenant) -> CallablePrefixBackend:
    return CallablePrefixBackend(inner, tenant)


def stored(inner: Shared) -> dict[str, bytes]:
    return {key: inner.get(key) for key in sorted(inner.scan(""))}  # type: ignore[misc]


# -- construction ------------------------------------------------------------------------


def scan_only() -> object:
    class ScanOnly(NullBackend):
        def scan(self, prefix: str) -> Iterator[str]:
            return iter(())

    return ScanOnly()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (NullBackend, r"a callable key_prefix needs a backend that can list keys: .*NullBackend"),
        (
            MemoryBackend,
            r"needs a backend with acquire_lock, release_lock: MemoryBackend has not "
            r"\(use a Redis backend\)",
        ),
        (scan_only, r"with incr, acquire_lock, release_lock: ScanOnly has not"),
    ],
)
def test_a_backend_without_the_abilities_is_refused(make: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CallablePrefixBackend(make(), Tenant("a:"))  # type: ignore[operator]


def test_what_the_store_reads_off_the_backend_is_the_inner_ones(
    inner: Shared, clock: FakeClock
) -> None:
    inner.max_key_length = 200
    wrapped = CallablePrefixBackend(inner, Tenant("a:"))
    assert isinstance(wrapped, SupportsAtomicAdd)
    assert wrapped.atomic_add is True  # the protocol's Literal[True]
    assert wrapped.max_key_length == 200
    assert wrapped.clock is clock
    assert Store(wrapped).clock is clock  # entries are timed by the backend's clock


class Bare:
    """A backend with the abilities but none of the optional attributes."""

    def scan(self, prefix: str) -> Iterator[str]:
        return iter(())

    incr = acquire_lock = release_lock = scan


@pytest.mark.parametrize("inner", [Bare(), Shared(FakeClock())], ids=["bare", "not-atomic"])
def test_a_backend_without_atomic_add_is_not_claimed_atomic(inner: Any) -> None:
    if isinstance(inner, Shared):
        inner.atomic_add = False  # type: ignore[assignment,misc]
    wrapped = CallablePrefixBackend(inner, Tenant("a:"))
    assert not isinstance(wrapped, SupportsAtomicAdd)


def test_a_bare_backend_gives_no_key_limit_and_no_clock() -> None:
    wrapped = CallablePrefixBackend(Bare(), Tenant("a:"))  # type: ignore[arg-type]
    assert (wrapped.max_key_length, wrapped.clock) == (None, None)


# -- every call under the current prefix ----------------------------------------------------


def test_single_key_calls_use_the_current_prefix(
    backend: CallablePrefixBackend, inner: Shared, tenant: Tenant
) -> None:
    backend.set("k", b"A", None)
    assert backend.add("new", b"N", None) is True
    assert backend.add("k", b"lost", None) is False
    assert stored(inner) == {"a:k": b"A", "a:new": b"N"}
    tenant.name = "b:"
    assert backend.get("k") is MISS
    assert backend.add("k", b"B", None) is True
    assert backend.delete("new") is False
    assert stored(inner) == {"a:k": b"A", "a:new": b"N", "b:k": b"B"}
    tenant.name = "a:"
    assert backend.get("k") == b"A"
    assert backend.delete("new") is True
    assert stored(inner) == {"a:k": b"A", "b:k": b"B"}


def test_many_key_calls_use_the_current_prefix(
    backend: CallablePrefixBackend, inner: Shared, tenant: Tenant
) -> None:
    backend.set_many({"x": b"1", "y": b"2"}, None)
    tenant.name = "b:"
    backend.set_many({"x": b"3"}, None)
    assert backend.get_many(["x", "y"]) == [b"3", MISS]
    assert backend.delete_many(["x", "y"]) == 1
    tenant.name = "a:"
    assert backend.get_many(["y", "x"]) == [b"2", b"1"]
    assert stored(inner) == {"a:x": b"1", "a:y": b"2"}


@pytest.mark.parametrize("ttl", [5, 0.5])
def test_ttls_reach_the_backend(backend: CallablePrefixBackend, clock: FakeClock, ttl: TTL) -> None:
    backend.set("one", b"1", ttl)
    backend.set_many({"many": b"2"}, ttl)
    backend.add("added", b"3", ttl)
    backend.incr("counter", 1, ttl)
    keys = ["one", "many", "added", "counter"]
    clock.advance(ttl * 0.9)  # type: ignore[operator]
    assert MISS not in backend.get_many(keys)
    clock.advance(ttl * 0.2)  # type: ignore[operator]
    assert backend.get_many(keys) == [MISS] * 4


def test_counters_are_per_prefix(
    backend: CallablePrefixBackend, inner: Shared, tenant: Tenant
) -> None:
    assert backend.incr("n", 2, None) == 2
    assert backend.incr("n", 3, None) == 5
    tenant.name = "b:"
    assert backend.incr("n", -1, None) == -1
    assert stored(inner) == {"a:n": b"5", "b:n": b"-1"}


def test_locks_are_per_prefix(
    backend: CallablePrefixBackend, inner: Shared, tenant: Tenant, clock: FakeClock
) -> None:
    assert backend.acquire_lock("job", "t1", 10) is True
    assert backend.acquire_lock("job", "t2", 10) is False
    assert inner.locks == {"a:job": ("t1", clock() + 10)}  # the lease reaches the backend
    tenant.name = "b:"
    assert backend.acquire_lock("job", "t2", 10) is True
    assert backend.release_lock("job", "t1") is False
    tenant.name = "a:"
    assert backend.release_lock("job", "t1") is True
    assert list(inner.locks) == ["b:job"]


def test_scan_lists_the_current_prefix_without_it(
    backend: CallablePrefixBackend, inner: Shared, tenant: Tenant
) -> None:
    inner.set_many({"a:x1": b"", "a:x2": b"", "a:y": b"", "b:x3": b"", "x4": b""}, None)
    assert sorted(backend.scan("x")) == ["x1", "x2"]
    assert sorted(backend.scan("")) == ["x1", "x2", "y"]
    tenant.name = "b:"
    assert list(backend.scan("")) == ["x3"]


def test_clear_deletes_the_current_prefix_only(
    backend: CallablePrefixBackend, inner: Shared, tenant: Tenant
) -> None:
    inner.set_many({"a:1": b"", "a:2": b"", "b:1": b"", "ab:1": b""}, None)
    backend.clear()
    assert stored(inner) == {"ab:1": b"", "b:1": b""}
    tenant.name = "c:"
    backend.clear()  # nothing under it: nothing else goes
    assert stored(inner) == {"ab:1": b"", "b:1": b""}


def test_clear_under_an_empty_prefix_clears_everything(
    backend: CallablePrefixBackend, inner: Shared, tenant: Tenant
) -> None:
    inner.set_many({"a:1": b"", "b:1": b""}, None)
    tenant.name = ""
    backend.clear()
    assert stored(inner) == {}


def test_close_closes_the_backend(backend: CallablePrefixBackend, inner: Shared) -> None:
    backend.close()
    assert inner.closed


def test_a_store_over_it_keeps_tenants_apart(
    backend: CallablePrefixBackend, tenant: Tenant
) -> None:
    store = Store(backend)
    store.set("page", "for a", 60)
    tenant.name = "b:"
    assert store.get("page") is MISS
    store.set("page", "for b", 60)
    tenant.name = "a:"
    assert store.get("page") == "for a"

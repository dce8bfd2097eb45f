"""The backend contract suite: the definition of "a backend works".

Subclass :class:`BackendContract` and implement :meth:`~BackendContract.make_backend`.
Backends that expire keys on a server (and so cannot follow a fake clock) set
``follows_clock = False``: the expiry tests then wait in real time, with short TTLs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from flask_stash.core.api import (
    MISS,
    TTL,
    Backend,
    Miss,
    SupportsIncrement,
    SupportsLock,
    SupportsScan,
)
from flask_stash.core.memoize import memoize
from flask_stash.core.pipeline import get_or_compute
from flask_stash.core.serializers import JsonSerializer, PickleSerializer
from flask_stash.core.store import Store
from flask_stash.testing.clock import FakeClock


class CountingBackend:
    """Wraps a backend and counts calls per method (to prove a hit costs one read)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.max_key_length = inner.max_key_length
        # Sharing stored bytes is an in-process shortcut; the counter must not hide reads.
        self.shares_stored_bytes = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted

    # The protocol's methods, spelled out so isinstance(..., Backend) holds.
    def get(self, key: str) -> bytes | Miss:
        self.calls.append("get")
        return self.inner.get(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        self.calls.append("get_many")
        return self.inner.get_many(keys)

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        self.calls.append("set")
        self.inner.set(key, value, ttl)

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        self.calls.append("set_many")
        self.inner.set_many(items, ttl)

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        self.calls.append("add")
        return self.inner.add(key, value, ttl)

    def delete(self, key: str) -> bool:
        self.calls.append("delete")
        return self.inner.delete(key)

    def delete_many(self, keys: Sequence[str]) -> int:
        self.calls.append("delete_many")
        return self.inner.delete_many(keys)

    def clear(self) -> None:
        self.calls.append("clear")
        self.inner.clear()

    def close(self) -> None:
        self.inner.close()


class BackendContract:
    """Tests every backend must pass. Subclasses implement :meth:`make_backend`."""

    #: ``False`` for backends whose server expires keys in real time.
    follows_clock = True
    #: ``False`` for backends that store nothing (the null backend).
    stores_data = True

    def make_backend(self, clock: FakeClock) -> Backend:
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def backend(self, clock: FakeClock) -> Iterator[Backend]:
        backend = self.make_backend(clock)
        backend.clear()
        yield backend
        backend.clear()
        backend.close()

    @pytest.fixture
    def key(self) -> str:
        return f"contract:{uuid.uuid4().hex}"

    def wait(self, clock: FakeClock, seconds: float) -> None:
        if self.follows_clock:
            clock.advance(seconds)
        else:
            time.sleep(seconds)

    def ttl(self, seconds: float) -> float:
        """TTLs for expiry tests: long under a fake clock, short in real time."""
        return seconds if self.follows_clock else seconds / 20

    def store_clock(self, clock: FakeClock) -> Any:
        return clock if self.follows_clock else time.time

    def need_storage(self) -> None:
        if not self.stores_data:
            pytest.skip("this backend stores nothing")

    # -- the required surface ------------------------------------------------------------

    def test_is_a_backend(self, backend: Backend) -> None:
        assert isinstance(backend, Backend)

    def test_missing_key_is_miss_not_none(self, backend: Backend, key: str) -> None:
        assert backend.get(key) is MISS
        assert backend.get_many([key, key + "2"]) == [MISS, MISS]

    @pytest.mark.parametrize("value", [b"", b"x", b"\x00\xff" * 100, bytes(range(256)) * 4096])
    def test_set_then_get_returns_same_bytes(
        self, backend: Backend, key: str, value: bytes
    ) -> None:
        self.need_storage()
        backend.set(key, value, None)
        assert backend.get(key) == value

    def test_set_overwrites(self, backend: Backend, key: str) -> None:
        self.need_storage()
        backend.set(key, b"one", None)
        backend.set(key, b"two", None)
        assert backend.get(key) == b"two"

    def test_unicode_and_punctuated_keys(self, backend: Backend, key: str) -> None:
        self.need_storage()
        suffixes = ["clé:été", "a b", "k/with/slashes", "{tag}:x", "x" * 150]
        keys = [f"{key}:{suffix}" for suffix in suffixes]
        for index, key in enumerate(keys):
            backend.set(key, str(index).encode(), None)
        assert backend.get_many(keys) == [str(i).encode() for i in range(len(keys))]

    def test_entry_expires_after_ttl(self, backend: Backend, clock: FakeClock, key: str) -> None:
        self.need_storage()
        backend.set(key, b"v", self.ttl(10))
        self.wait(clock, self.ttl(5))
        assert backend.get(key) == b"v"
        self.wait(clock, self.ttl(6))
        assert backend.get(key) is MISS
        assert backend.get_many([key]) == [MISS]

    def test_no_ttl_never_expires(self, backend: Backend, clock: FakeClock, key: str) -> None:
        self.need_storage()
        backend.set(key, b"v", None)
        if self.follows_clock:
            clock.advance(10 * 365 * 86400)
        assert backend.get(key) == b"v"

    @pytest.mark.parametrize("ttl", [0, -1, float("nan")])
    def test_invalid_ttl_is_rejected(self, backend: Backend, key: str, ttl: float) -> None:
        with pytest.raises(ValueError, match="ttl"):
            backend.set(key, b"v", ttl)
        assert backend.get(key) is MISS

    def test_add_only_when_absent(self, backend: Backend, key: str) -> None:
        self.need_storage()
        assert backend.add(key, b"first", None) is True
        assert backend.add(key, b"second", None) is False
        assert backend.get(key) == b"first"

    def test_add_after_expiry(self, backend: Backend, clock: FakeClock, key: str) -> None:
        self.need_storage()
        assert backend.add(key, b"first", self.ttl(1))
        self.wait(clock, self.ttl(2))
        assert backend.add(key, b"second", None) is True
        assert backend.get(key) == b"second"

    def test_delete(self, backend: Backend, key: str) -> None:
        backend.set(key, b"v", None)
        assert backend.delete(key) is self.stores_data
        assert backend.get(key) is MISS
        assert backend.delete(key) is False

    def test_many_operations(self, backend: Backend, key: str) -> None:
        self.need_storage()
        items = {f"{key}:{i}": f"v{i}".encode() for i in range(5)}
        backend.set_many(items, None)
        keys = [*items, f"{key}:absent"]
        assert backend.get_many(keys) == [*items.values(), MISS]
        assert backend.delete_many([f"{key}:0", f"{key}:1", f"{key}:absent"]) == 2
        assert backend.get_many(keys[:3]) == [MISS, MISS, b"v2"]

    def test_clear_removes_everything(self, backend: Backend, key: str) -> None:
        backend.set_many({f"{key}:{i}": b"v" for i in range(10)}, None)
        backend.clear()
        assert backend.get_many([f"{key}:{i}" for i in range(10)]) == [MISS] * 10

    # -- optional capabilities -------------------------------------------------------------

    def test_increment(self, backend: Backend, key: str) -> None:
        if not isinstance(backend, SupportsIncrement):
            pytest.skip("no increment capability")
        assert backend.incr(key, 1, None) == 1
        assert backend.incr(key, 5, None) == 6
        assert backend.incr(key, -10, None) == -4
        assert backend.get(key) == b"-4"

    def test_lock_has_one_owner(self, backend: Backend, clock: FakeClock, key: str) -> None:
        if not isinstance(backend, SupportsLock):
            pytest.skip("no lock capability")
        assert backend.acquire_lock(key, "owner-a", self.ttl(10))
        assert not backend.acquire_lock(key, "owner-b", self.ttl(10))
        assert not backend.release_lock(key, "owner-b")
        assert backend.release_lock(key, "owner-a")
        assert backend.acquire_lock(key, "owner-b", self.ttl(10))

    def test_lock_lease_expires(self, backend: Backend, clock: FakeClock, key: str) -> None:
        if not isinstance(backend, SupportsLock):
            pytest.skip("no lock capability")
        assert backend.acquire_lock(key, "dead-owner", self.ttl(2))
        self.wait(clock, self.ttl(3))
        assert backend.acquire_lock(key, "new-owner", self.ttl(2))
        assert not backend.release_lock(key, "dead-owner")

    def test_scan_by_prefix(self, backend: Backend, key: str) -> None:
        if not isinstance(backend, SupportsScan):
            pytest.skip("no scan capability")
        backend.set_many({f"{key}:a": b"1", f"{key}:b": b"2", f"other{key}": b"3"}, None)
        assert sorted(backend.scan(f"{key}:")) == [f"{key}:a", f"{key}:b"]

    # -- what the engine needs from it -----------------------------------------------------

    @pytest.mark.parametrize("serializer", [PickleSerializer(), JsonSerializer()])
    def test_store_round_trips_values_and_none(
        self, backend: Backend, clock: FakeClock, key: str, serializer: Any
    ) -> None:
        self.need_storage()
        store = Store(backend, serializer=serializer, clock=self.store_clock(clock))
        store.set(key, None)
        store.set(key + "2", {"a": (1, 2.5, "x"), "b": [None, True]})
        assert store.get(key) is None
        assert store.get(key + "2") == {"a": (1, 2.5, "x"), "b": [None, True]}
        assert store.get(key + "3") is MISS

    def test_memoize_hit_is_one_backend_read(self, backend: Backend, clock: FakeClock) -> None:
        self.need_storage()
        counting = CountingBackend(backend)
        store = Store(
            counting, clock=self.store_clock(clock), key_prefix=f"c{uuid.uuid4().hex[:8]}:"
        )
        calls: list[int] = []

        @memoize(store, 60)
        def double(x: int) -> int:
            calls.append(x)
            return 2 * x

        assert double(21) == 42
        counting.calls.clear()
        assert double(21) == 42
        # Entry and stamp in one call; an in-process backend keeps its stamps beside it.
        local = getattr(backend, "local_stamps", None) is not None
        assert counting.calls == (["get"] if local else ["get_many"])
        assert calls == [21]

    def test_invalidate_all_is_one_write(self, backend: Backend, clock: FakeClock) -> None:
        self.need_storage()
        counting = CountingBackend(backend)
        store = Store(
            counting, clock=self.store_clock(clock), key_prefix=f"c{uuid.uuid4().hex[:8]}:"
        )
        calls: list[int] = []

        @memoize(store, 60)
        def square(x: int) -> int:
            calls.append(x)
            return x * x

        for x in range(5):
            square(x)
        counting.calls.clear()
        square.invalidate_all()  # type: ignore[attr-defined]
        local = getattr(backend, "local_stamps", None) is not None
        assert counting.calls == ([] if local else ["set"])
        assert [square(x) for x in range(5)] == [0, 1, 4, 9, 16]
        assert calls == [0, 1, 2, 3, 4] * 2

    def test_get_or_compute_caches_until_timeout(
        self, backend: Backend, clock: FakeClock, key: str
    ) -> None:
        self.need_storage()
        store = Store(backend, clock=self.store_clock(clock))
        calls: list[int] = []

        def compute() -> int:
            calls.append(1)
            return len(calls)

        timeout = self.ttl(10)
        assert get_or_compute(store, key, compute, timeout) == 1
        assert get_or_compute(store, key, compute, timeout) == 1
        self.wait(clock, self.ttl(11))
        assert get_or_compute(store, key, compute, timeout) == 2

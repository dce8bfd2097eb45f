from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pytest

from flask_stash.core.api import MISS, TTL, Miss
from flask_stash.core.backends.base import BaseBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.breaker import THRESHOLD
from flask_stash.core.errors import BackendError, SerializationError
from flask_stash.core.stats import BACKEND_SKIP, ERROR, UNDECODABLE
from flask_stash.core.store import Store
from flask_stash.testing import FakeClock


@pytest.fixture
def store(clock: FakeClock) -> Store:
    return Store(MemoryBackend(threshold=0, clock=clock), clock=clock, default_timeout=100)


def test_timeouts_follow_flask_caching(store: Store, clock: FakeClock) -> None:
    store.set("default", 1)
    store.set("forever", 2, timeout=0)
    store.set("short", 3, timeout=5)
    clock.advance(6)
    assert store.get("short") is MISS
    clock.advance(100)
    assert store.get("default") is MISS
    assert store.get("forever") == 2


@pytest.mark.parametrize("timeout", [-1, float("nan")])
def test_negative_timeouts_are_errors(store: Store, timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        store.set("k", 1, timeout=timeout)
    assert store.get("k") is MISS


def test_non_numeric_timeout_is_a_type_error(store: Store) -> None:
    with pytest.raises(TypeError, match="timeout"):
        store.set("k", 1, timeout="10")  # type: ignore[arg-type]


def test_cached_none_is_a_hit(store: Store) -> None:
    store.set("k", None)
    assert store.get("k") is None
    assert store.has("k")
    assert not store.has("other")


def test_add_get_many_set_many_delete_many(store: Store) -> None:
    assert store.add("a", 1)
    assert not store.add("a", 2)
    assert store.set_many({"b": 2, "c": 3}) == ["b", "c"]
    assert store.get_many(["a", "b", "c", "d"]) == [1, 2, 3, MISS]
    assert store.delete_many(["a", "b", "zz"]) == 2
    assert store.get_many(["a", "c"]) == [MISS, 3]


def test_incr_counts_and_reads_back(store: Store) -> None:
    assert store.incr("n") == 1
    assert store.incr("n", 5) == 6
    assert store.incr("n", -7) == -1
    assert store.get("n") == -1


def test_long_keys_are_hashed_not_truncated(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.max_key_length = 80
    store = Store(backend, clock=clock, key_prefix="p:")
    long_a, long_b = "x" * 100 + "a", "x" * 100 + "b"
    store.set(long_a, "A")
    store.set(long_b, "B")
    store.set("short", "S")
    assert (store.get(long_a), store.get(long_b), store.get("short")) == ("A", "B", "S")
    assert all(len(k) <= 80 and k.startswith("p:") for k in backend.scan(""))
    assert "p:short" in set(backend.scan(""))


def test_even_a_long_prefix_cannot_push_keys_past_the_limit(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.max_key_length = 70
    store = Store(backend, clock=clock, key_prefix="a-rather-long-prefix:")
    store.set("k" * 100, 1)
    assert store.get("k" * 100) == 1
    assert all(len(k) <= 70 for k in backend.scan(""))


@pytest.mark.parametrize("limit", [250, 80])
def test_a_key_exactly_at_the_backend_limit_is_kept_one_byte_more_is_hashed(
    clock: FakeClock, limit: int
) -> None:
    backend = MemoryBackend(clock=clock)
    backend.max_key_length = limit
    store = Store(backend, clock=clock, key_prefix="p:")
    exact = "é" * ((limit - 2) // 2) + "x" * ((limit - 2) % 2)  # utf-8 bytes, prefix included
    assert store.backend_key(exact) == "p:" + exact
    longer = store.backend_key(exact + "x")
    assert longer.startswith("p:#")
    assert len(longer.encode()) <= limit
    store.set(exact, 1)
    store.set(exact + "x", 2)
    assert (store.get(exact), store.get(exact + "x")) == (1, 2)


def test_keys_must_be_strings(store: Store) -> None:
    with pytest.raises(TypeError, match="str"):
        store.set(b"bytes", 1)  # type: ignore[arg-type]


def test_unserializable_values_fail_open_and_store_nothing(store: Store) -> None:
    assert store.set("k", lambda: None) is False
    assert store.add("k", lambda: None) is False
    assert store.set_many({"k": lambda: None, "ok": 1}) == ["ok"]
    assert store.get("k") is MISS
    assert store.stats.get(ERROR, "set") == 1


def test_unserializable_values_raise_when_not_failing_open() -> None:
    strict = Store(MemoryBackend(), fail_open=False)
    with pytest.raises(SerializationError):
        strict.set("k", lambda: None)
    assert strict.get("k") is MISS


def test_corrupt_entries_are_counted_misses(store: Store) -> None:
    store.backend.set("k", b"fs1p\x80garbage", None)
    assert store.get("k") is MISS
    assert store.stats.get(UNDECODABLE) == 1


class BrokenBackend(BaseBackend):
    native_errors = (ConnectionError,)

    def get(self, key: str) -> bytes | Miss:
        raise ConnectionError("server down")

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        raise ConnectionError("server down")

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        raise ConnectionError("server down")

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        raise ConnectionError("server down")

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        raise ConnectionError("server down")

    def delete(self, key: str) -> bool:
        raise ConnectionError("server down")

    def clear(self) -> None:
        raise ConnectionError("server down")


def test_native_errors_are_wrapped_once_keeping_the_original() -> None:
    with pytest.raises(BackendError) as info:
        BrokenBackend().get("k")
    assert isinstance(info.value.original, ConnectionError)
    assert info.value.__cause__ is info.value.original


def test_fail_open_turns_errors_into_counted_misses(caplog: pytest.LogCaptureFixture) -> None:
    store = Store(BrokenBackend())
    with caplog.at_level(logging.INFO, logger="flask_stash"):
        for _ in range(5):
            assert store.get("k") is MISS
        assert store.set("k", 1) is False
        assert store.add("k", 1) is False
        assert store.delete("k") is False
        assert store.delete_many(["k"]) == 0
        assert store.get_many(["a", "b"]) == [MISS, MISS]
        assert store.set_many({"a": 1}) == []
        assert store.incr("n") is None
        assert store.clear() is False
    # Three failures in a row open the breaker: the other ten calls are not made.
    assert store.stats.get(ERROR) == THRESHOLD
    assert store.stats.get(BACKEND_SKIP) == 13 - THRESHOLD
    # One line for the outage, not one per failure.
    assert [r.getMessage() for r in caplog.records] == [
        "cache backend BrokenBackend is failing (ConnectionError: server down); "
        "serving uncached until it recovers"
    ]


def test_fail_closed_raises() -> None:
    store = Store(BrokenBackend(), fail_open=False)
    with pytest.raises(BackendError, match="server down"):
        store.get("k")

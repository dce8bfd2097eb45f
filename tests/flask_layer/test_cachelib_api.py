"""cachelib's API on ``flask_stash.backends.*``, checked against the real cachelib where
the two must agree (custom subclasses, ``threshold=0``, ``delete`` on the base class)."""

from __future__ import annotations

import datetime as dt
import gc
import json
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import cachelib
import pytest

from flask_stash.backends import (
    BaseCache,
    FileSystemCache,
    MemcachedCache,
    NullCache,
    RedisCache,
    SimpleCache,
)
from flask_stash.testing import FakeClock

from .. import servers
from .conftest import memoized_square

HOST = "127.0.0.1"


# -- a subclass implementing only the four basic methods ----------------------------------


def dict_backed(base: type) -> type:
    """The documented custom-backend pattern: get/set/delete/has over a dict."""

    class DictCache(base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.data: dict[str, Any] = {}
            self.calls: list[str] = []

        def get(self, key: str) -> Any:
            self.calls.append("get")
            return self.data.get(key)

        def set(self, key: str, value: Any, timeout: Any = None) -> bool:
            self.calls.append("set")
            self.data[key] = value
            return True

        def delete(self, key: str) -> bool:
            self.calls.append("delete")
            return self.data.pop(key, None) is not None

        def has(self, key: str) -> bool:
            self.calls.append("has")
            return key in self.data

    return DictCache


def exercise(cache: Any) -> list[Any]:
    """Every derived method, in an order whose results depend on the stored state."""
    return [
        cache.set_many({"a": 1, "b": 2}),
        cache.get_many("a", "b", "c"),
        cache.get_dict("a", "c"),
        cache.add("a", 10),
        cache.add("c", 3),
        cache.inc("a"),
        cache.dec("b", 5),
        cache.inc("fresh"),
        cache.delete_many("a", "zzz"),
        dict(sorted(cache.data.items())),
    ]


def test_derived_methods_call_the_subclass_methods_like_cachelib() -> None:
    ours, theirs = dict_backed(BaseCache)(), dict_backed(cachelib.BaseCache)()
    results = exercise(ours)
    assert ours.data == {"b": -3, "c": 3, "fresh": 1}
    # cachelib's own add() is a stub (returns True, stores nothing); ours is derived from
    # has/set, so the add lines differ: False for an existing key, "c" stored.
    expected = exercise(theirs)
    expected[3], expected[9]["c"] = False, 3
    assert results == expected
    assert {"get", "set", "delete", "has"} <= set(ours.calls)


def test_a_subclass_with_the_four_methods_works_as_a_flask_backend() -> None:
    from flask import Flask

    from flask_stash import Cache

    backend_class = dict_backed(BaseCache)
    made: list[Any] = []

    def factory(app: Any, config: Any, args: Any, kwargs: Any) -> Any:
        made.append(backend_class())
        return made[0]

    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_TYPE": factory})
    square, calls = memoized_square(cache)

    with app.app_context():
        assert square(3) == 9
        assert square(3) == 9
        assert calls == [3]
        cache.set_many({"x": 1, "y": [2]})
        assert cache.get_many("x", "y") == [1, [2]]
        assert cache.add("x", 5) is False
        assert cache.inc("n") == 1
        assert made[0].data  # entries landed in the subclass's dict, nowhere else


# -- base class and null cache --------------------------------------------------------------


def test_base_cache_delete_answers_like_cachelib() -> None:
    assert BaseCache().delete("k") is cachelib.BaseCache().delete("k") is True
    assert NullCache().delete("k") is cachelib.NullCache().delete("k") is True


# -- keys -----------------------------------------------------------------------------------


def test_non_str_keys_are_used_as_their_str() -> None:
    cache = SimpleCache()
    assert cache.set(5, "five") is True  # type: ignore[arg-type]
    assert cache.get(5) == "five"  # type: ignore[arg-type]
    assert cache.has(5)  # type: ignore[arg-type]
    assert cache.get_many(5, "x") == ["five", None]  # type: ignore[arg-type]
    assert cache.set_many({6: "six"}) == [6]  # type: ignore[dict-item]
    assert cache.inc(7) == 1  # type: ignore[arg-type]
    assert cache.delete(5) is True  # type: ignore[arg-type]


# -- timeouts, threshold, eviction -----------------------------------------------------------


@pytest.mark.parametrize("make", [SimpleCache, NullCache])
def test_timedelta_default_timeout_is_whole_seconds(make: type) -> None:
    cache = make(default_timeout=dt.timedelta(minutes=5, milliseconds=1))
    assert cache.default_timeout == 301
    assert (
        cache.default_timeout
        == cachelib.SimpleCache(
            default_timeout=dt.timedelta(minutes=5, milliseconds=1)
        ).default_timeout
    )


def test_filesystem_cache_timedelta_default(tmp_path: Any) -> None:
    cache = FileSystemCache(str(tmp_path), default_timeout=dt.timedelta(seconds=90))
    assert cache.default_timeout == 90
    assert cache.store.default_timeout == 90


def test_threshold_zero_means_the_default_bound_as_in_cachelib() -> None:
    ours, theirs = SimpleCache(threshold=0), cachelib.SimpleCache(threshold=0)
    for i in range(700):
        ours.set(f"k{i}", i)
        theirs.set(f"k{i}", i)
    kept = sum(ours.get(f"k{i}") is not None for i in range(700))
    assert kept == 500
    assert len(theirs._cache) <= 501


def test_eviction_drops_expired_entries_before_live_ones(clock: FakeClock) -> None:
    cache = SimpleCache(threshold=3, clock=clock)
    cache.set("short", 1, timeout=10)
    cache.set("live1", 1, timeout=1000)
    cache.set("live2", 1, timeout=1000)
    clock.advance(11)  # "short" has expired but is still held
    cache.set("live3", 1, timeout=1000)
    assert [cache.get(k) for k in ("live1", "live2", "live3")] == [1, 1, 1]
    cache.set("live4", 1, timeout=1000)  # nothing expired now: the LRU live one goes
    assert cache.get("live1") is None
    assert cache.get("live4") == 1


# -- deprecated and cachelib-only arguments --------------------------------------------------


@pytest.mark.parametrize("make", [SimpleCache, FileSystemCache])
def test_ignore_errors_is_a_deprecated_alias(make: type, tmp_path: Any) -> None:
    args = (str(tmp_path),) if make is FileSystemCache else ()
    with pytest.warns(DeprecationWarning, match="ignore_delete_many_errors"):
        cache = make(*args, ignore_errors=True)
    assert cache.ignore_delete_many_errors is True


def test_check_connection_raises_when_nothing_listens() -> None:
    port = servers.free_port()
    with pytest.raises(RuntimeError, match="could not connect"):
        RedisCache(HOST, port, check_connection=True, socket_connect_timeout=0.5)
    with pytest.raises(RuntimeError, match="could not connect"):
        MemcachedCache([f"{HOST}:{port}"], check_connection=True)


@pytest.mark.server
def test_check_connection_passes_on_a_live_server(redis_single: servers.Server) -> None:
    cache = RedisCache(HOST, redis_single.port, db=2, check_connection=True)
    cache.close()


# -- the serializer attribute ----------------------------------------------------------------


class JsonText:
    """A cachelib-style serializer object."""

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


def test_serializer_class_attribute_is_used() -> None:
    class JsonCache(SimpleCache):
        serializer = JsonText()

    cache = JsonCache()
    cache.set("k", {"a": [1]})
    assert cache.get("k") == {"a": [1]}
    blob = cache.store.backend.get("k")
    assert b'{"a": [1]}' in blob  # type: ignore[operator]


def test_serializer_attribute_can_be_assigned() -> None:
    cache = SimpleCache()
    cache.serializer = JsonText()
    assert isinstance(cache.serializer, JsonText)
    cache.set("k", [1, 2])
    assert b"[1, 2]" in cache.store.backend.get("k")  # type: ignore[operator]
    with pytest.raises(TypeError, match="dumps"):
        cache.serializer = object()


def test_flask_cache_uses_a_backend_subclass_serializer() -> None:
    from flask import Flask

    from flask_stash import Cache

    class JsonCache(SimpleCache):
        serializer = JsonText()

    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_TYPE": JsonCache})
    with app.app_context():
        cache.set("k", {"n": 1})
        assert cache.get("k") == {"n": 1}
        raw = cache.store.backend.get("flask_cache_k")
        assert b'{"n": 1}' in raw  # type: ignore[operator]


# -- Redis: a callable key_prefix -------------------------------------------------------------


@pytest.fixture
def tenant_cache(redis_single: servers.Server) -> Iterator[tuple[RedisCache, list[str]]]:
    tenant = [f"t{uuid.uuid4().hex[:8]}-a:"]
    cache = RedisCache(HOST, redis_single.port, db=3, key_prefix=lambda: tenant[0])
    yield cache, tenant
    cache.close()


@pytest.mark.server
def test_callable_key_prefix_is_read_on_every_call(
    tenant_cache: tuple[RedisCache, list[str]],
) -> None:
    cache, tenant = tenant_cache
    first = tenant[0]
    cache.set("k", "A")
    assert cache._write_client.get(f"{first}k") is not None
    tenant[0] = first.replace("-a:", "-b:")
    assert cache.get("k") is None
    cache.set("k", "B")
    assert cache.inc("n") == 1
    assert cache.clear() is True  # the current tenant's keys only
    assert cache.get("k") is None
    tenant[0] = first
    assert cache.get("k") == "A"
    assert cache.clear() is True


@pytest.mark.server
def test_redis_non_str_and_callable_keys(redis_single: servers.Server) -> None:
    cache = RedisCache(HOST, redis_single.port, db=3, key_prefix=f"nk{uuid.uuid4().hex[:6]}:")
    try:
        assert cache.set(42, "int key") is True  # type: ignore[arg-type]
        assert cache.get(42) == "int key"  # type: ignore[arg-type]
        assert cache.get("42") == "int key"
        assert cache.set(len, "callable key") is True  # type: ignore[arg-type]
        assert cache.get(len) == "callable key"  # type: ignore[arg-type]
    finally:
        cache.clear()
        cache.close()


# -- memcached: sockets ----------------------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize("count", [1, 2])
def test_a_dropped_memcached_cache_closes_its_sockets(
    memcached_pair: list[servers.Server], count: int
) -> None:
    cache = MemcachedCache([f"{HOST}:{node.port}" for node in memcached_pair[:count]])
    cache.set("k", 1)
    assert cache.get("k") == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del cache
        gc.collect()  # an unclosed socket would warn (an error here) while collected

"""What Redis single, Sentinel and Cluster share, each test run on all three flavours.

On real servers: the backend contract, round trips, clear, counters, locks, pub/sub,
fail-open and the Flask-Caching-style classes. What only one flavour has stays in its own
module: ``test_redis.py`` (TLS, passwords, restarts, databases), ``test_redis_sentinel.py``
(failover, replica reads), ``test_redis_cluster.py`` (slots); configuration errors (no
server needed) in ``test_redis_config.py``.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from flask import Flask

import flask_stash.backends
from flask_stash import Cache
from flask_stash.core.api import MISS, SupportsAtomicAdd, SupportsPublish
from flask_stash.core.backends.redis import RedisBackend, RedisCommands
from flask_stash.core.backends.redis_cluster import RedisClusterBackend
from flask_stash.core.backends.redis_sentinel import RedisSentinelBackend
from flask_stash.core.errors import BackendError
from flask_stash.core.memoize import memoize
from flask_stash.core.stats import ERROR
from flask_stash.core.store import Store
from flask_stash.testing import BackendContract, FakeClock

from . import redisfamily
from .redisfamily import Flavour

pytestmark = pytest.mark.server

Backend = RedisCommands[Any]


def test_each_flavour_builds_its_own_backend(
    redis_backend: Backend, redis_flavour: Flavour, request: pytest.FixtureRequest
) -> None:
    # Guards the parametrization itself: three runs of one flavour would pass everything here.
    expected = {
        "single": RedisBackend,
        "sentinel": RedisSentinelBackend,
        "cluster": RedisClusterBackend,
    }
    param = request.node.callspec.params["redis_flavour"]
    assert redis_flavour.name == param
    assert type(redis_backend) is expected[param]


# -- the contract ------------------------------------------------------------------------


class TestRedisFamilyContract(BackendContract):
    follows_clock = False

    @pytest.fixture(autouse=True)
    def _isolate(self, redis_flavour: Flavour) -> None:
        # A namespace per test: the contract's clear() then touches this test's keys only.
        self.flavour = redis_flavour
        self.namespace = redisfamily.unique("contract")

    @pytest.fixture
    def key(self) -> str:
        return f"{self.namespace}{uuid.uuid4().hex}"

    def make_backend(self, clock: FakeClock) -> Backend:
        return self.flavour.make(self.namespace)


# -- round trips ---------------------------------------------------------------------------


def test_memoize_hit_is_one_command(redis_backend: Backend, redis_flavour: Flavour) -> None:
    store = Store(redis_backend, key_prefix=redis_backend.namespace)
    calls: list[int] = []

    @memoize(store, 60)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    assert double(21) == 42
    before = redis_flavour.command_stats()
    assert double(21) == 42
    assert redis_flavour.commands_since(before) == {"mget": 1}  # summed over a cluster's nodes
    assert calls == [21]


# A cluster sends one MGET per slot: test_redis_cluster.py.
@pytest.mark.parametrize("redis_flavour", ["single", "sentinel"], indirect=True)
def test_get_many_is_one_mget_and_set_many_one_pipeline(
    redis_backend: Backend, redis_flavour: Flavour
) -> None:
    keys = [f"{redis_backend.namespace}{i}" for i in range(20)]
    redis_backend.get(keys[0])  # connect first: a new connection sends HELLO, SELECT and a PING
    before = redis_flavour.command_stats()
    redis_backend.set_many(dict.fromkeys(keys, b"v"), 10)
    assert redis_backend.get_many(keys) == [b"v"] * 20
    assert redis_flavour.commands_since(before) == {"set": 20, "mget": 1}


# -- clear, scan, counters, locks, pub/sub ---------------------------------------------------


def test_clear_leaves_keys_outside_the_namespace(
    redis_backend: Backend, redis_flavour: Flavour
) -> None:
    with redis_flavour.make("") as outside:
        namespace = redis_backend.namespace
        ours = [f"{namespace}{i}" for i in range(1200)]  # several SCAN/UNLINK batches
        theirs = [f"other-{namespace}", namespace.rstrip(":")]
        redis_backend.set_many(dict.fromkeys(ours, b"x"), 30)
        outside.set_many(dict.fromkeys(theirs, b"keep"), 30)
        before = redis_flavour.command_stats()
        redis_backend.clear()
        ran = redis_flavour.commands_since(before)
        assert redis_backend.get_many(ours) == [MISS] * len(ours)
        assert outside.get_many(theirs) == [b"keep", b"keep"]
        assert "flushdb" not in ran
        assert "keys" not in ran
        assert "flushall" not in ran
        assert ran["unlink"] >= 3  # batches of SCAN_BATCH keys, not one huge UNLINK
        outside.delete_many(theirs)


def test_scan_escapes_glob_characters(redis_backend: Backend) -> None:
    ns = redis_backend.namespace
    redis_backend.set_many({f"{ns}[1]*?:x": b"1", f"{ns}1a:x": b"2", f"{ns}\\:x": b"3"}, 30)
    assert list(redis_backend.scan(f"{ns}[1]*?")) == [f"{ns}[1]*?:x"]
    assert list(redis_backend.scan(f"{ns}\\")) == [f"{ns}\\:x"]


def test_incr_gives_a_new_counter_its_ttl_and_keeps_an_existing_one(
    redis_backend: Backend,
) -> None:
    key = f"{redis_backend.namespace}counter"
    assert redis_backend.incr(key, 2, 100) == 2
    assert 99_000 < redis_backend.client.pttl(key) <= 100_000
    redis_backend.client.pexpire(key, 50_000)
    assert redis_backend.incr(key, 3, 100) == 5
    assert redis_backend.client.pttl(key) <= 50_000
    redis_backend.set(f"{key}:entry", b"\x80pickled", 10)
    with pytest.raises(TypeError, match="integer"):
        redis_backend.incr(f"{key}:entry", 1, 10)


def test_store_incr_converts_a_set_integer_then_counts_atomically(redis_backend: Backend) -> None:
    store = Store(redis_backend, key_prefix=redis_backend.namespace)
    store.set("hits", 41)
    assert store.incr("hits") == 42
    assert store.incr("hits", 8) == 50
    assert store.get("hits") == 50


def test_add_is_atomic_under_concurrency(redis_backend: Backend) -> None:
    assert isinstance(redis_backend, SupportsAtomicAdd)
    key = f"{redis_backend.namespace}race"
    barrier = threading.Barrier(8)
    results: dict[int, bool] = {}

    def contender(index: int) -> None:
        barrier.wait()
        results[index] = redis_backend.add(key, str(index).encode(), 30)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [index for index, stored in results.items() if stored]
    assert len(results) == 8
    assert len(winners) == 1
    assert redis_backend.get(key) == str(winners[0]).encode()


def test_lock_owner_and_lease(redis_backend: Backend) -> None:
    lock = f"{redis_backend.namespace}lock"
    assert redis_backend.acquire_lock(lock, "a", 0.2)
    assert not redis_backend.acquire_lock(lock, "b", 0.2)
    assert not redis_backend.release_lock(lock, "b")  # not the owner: the lock stays
    assert not redis_backend.acquire_lock(lock, "b", 0.2)
    time.sleep(0.35)  # longer than the lease: the server has expired it
    assert redis_backend.acquire_lock(lock, "b", 5)
    assert not redis_backend.release_lock(lock, "a")  # the dead owner cannot free b's lock
    assert redis_backend.release_lock(lock, "b")
    assert redis_backend.get(lock) is MISS


def test_publish_and_subscribe(redis_backend: Backend) -> None:
    assert isinstance(redis_backend, SupportsPublish)
    channel = f"{redis_backend.namespace}events"
    with redis_backend.subscribe(channel) as messages:
        redis_backend.publish(channel, b"invalidate:a")
        redis_backend.publish(channel, b"\x00binary")
        assert next(messages) == b"invalidate:a"
        assert next(messages) == b"\x00binary"


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", redisfamily.NAMES)
def test_store_fails_open_fast_when_nothing_listens(name: str) -> None:
    # Built fine although nothing listens: nothing is checked before use.
    with redisfamily.unreachable(name) as backend:
        store = Store(backend)
        started = time.monotonic()
        assert store.get("k") is MISS
        assert store.set("k", 1) is False
        assert store.get_many(["a", "b"]) == [MISS, MISS]
        assert time.monotonic() - started < 3
        assert store.stats.get(ERROR) == 3
        with pytest.raises(BackendError) as raised:
            backend.get("k")
        assert raised.value.original is not None


# -- the Flask-Caching-style classes ----------------------------------------------------------


def flask_cache(flavour: Flavour, **config: object) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    app.config["TESTING"] = True
    return app, Cache(app, config={**flavour.cache_config, **config})


def test_flask_cache_through_the_dotted_path(redis_flavour: Flavour) -> None:
    prefix = redisfamily.unique("app")
    app, cache = flask_cache(redis_flavour, CACHE_KEY_PREFIX=prefix)
    calls: list[int] = []

    @cache.memoize(60)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    with app.app_context():
        try:
            assert isinstance(cache.cache, redis_flavour.cache_class)
            assert double(4) == 8
            before = redis_flavour.command_stats()
            assert double(4) == 8
            assert redis_flavour.commands_since(before) == {"mget": 1}
            assert calls == [4]
            cache.set("plain", {"a": 1})
            assert cache.cache._write_client.exists(f"{prefix}plain") == 1
            assert cache.set_many({"a": 1, "b": 2})
            assert cache.get_many("a", "b") == [1, 2]
            assert cache.unlink("plain", "absent") == ["plain", "absent"]
            assert cache.get("plain") is None
            assert cache.inc("n") == 1
            assert cache.clear() is True
            assert double(4) == 8
            assert calls == [4, 4]
        finally:
            cache.cache.close()


def test_cache_url_scheme_once_wired(redis_flavour: Flavour) -> None:
    cache_class = redis_flavour.cache_class
    if getattr(flask_stash.backends, cache_class.__name__) is not cache_class:
        pytest.skip(f"{redis_flavour.url.split(':')[0]}:// is not wired to {cache_class} yet")
    app = Flask(__name__)
    app.config["CACHE_URL"] = redis_flavour.url
    cache = Cache(app)
    with app.app_context():
        try:
            assert isinstance(cache.cache, cache_class)
            assert cache.set("wired", 1)
            assert cache.get("wired") == 1
            cache.delete("wired")
        finally:
            cache.cache.close()

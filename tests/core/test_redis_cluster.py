"""RedisClusterBackend on a real 3-master cluster: the contract, slots, one round trip."""

from __future__ import annotations

import time
import uuid

import pytest
from flask import Flask

from flask_stash import Cache
from flask_stash.backends.redis import RedisClusterCache
from flask_stash.core.api import MISS
from flask_stash.core.backends.redis_cluster import RedisClusterBackend
from flask_stash.core.memoize import memoize
from flask_stash.core.stats import ERROR
from flask_stash.core.store import Store
from flask_stash.testing import BackendContract, FakeClock

from .. import servers
from .test_redis import command_stats, commands_between

pytestmark = pytest.mark.server


def seeds(nodes: list[servers.Server]) -> str:
    return ",".join(node.address for node in nodes)


def ports(nodes: list[servers.Server]) -> list[int]:
    return [node.port for node in nodes]


@pytest.fixture
def backend(redis_cluster: list[servers.Server]) -> RedisClusterBackend:
    namespace = f"cl{uuid.uuid4().hex[:10]}:"
    made = RedisClusterBackend(f"redis+cluster://{seeds(redis_cluster)}", namespace=namespace)
    yield made  # type: ignore[misc]
    made.clear()
    made.close()


class TestRedisClusterBackend(BackendContract):
    follows_clock = False

    @pytest.fixture(autouse=True)
    def _isolate(self, redis_cluster: list[servers.Server]) -> None:
        self.nodes = redis_cluster
        self.namespace = f"contract{uuid.uuid4().hex[:10]}:"

    @pytest.fixture
    def key(self) -> str:
        return f"{self.namespace}{uuid.uuid4().hex}"

    def make_backend(self, clock: FakeClock) -> RedisClusterBackend:
        return RedisClusterBackend(startup_nodes=seeds(self.nodes), namespace=self.namespace)


def test_memoize_hit_is_one_command_on_one_node(
    backend: RedisClusterBackend, redis_cluster: list[servers.Server]
) -> None:
    store = Store(backend, key_prefix=backend.namespace)
    calls: list[int] = []

    @memoize(store, 60)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    assert double(21) == 42
    before = command_stats(*ports(redis_cluster))
    assert double(21) == 42
    after = command_stats(*ports(redis_cluster))
    assert commands_between(before, after) == {"mget": 1}  # summed over the three nodes
    assert calls == [21]


def test_get_many_across_slots_keeps_the_order(
    backend: RedisClusterBackend, redis_cluster: list[servers.Server]
) -> None:
    keys = [f"{backend.namespace}{i}" for i in range(30)]  # no hash tag: many slots
    stored = {key: str(i).encode() for i, key in enumerate(keys) if i % 3}
    backend.set_many(stored, 30)
    expected = [stored.get(key, MISS) for key in keys]
    before = command_stats(*ports(redis_cluster))
    assert backend.get_many(keys) == expected
    ran = commands_between(before, command_stats(*ports(redis_cluster)))
    assert set(ran) == {"mget"}
    assert 1 < ran["mget"] <= 30  # one MGET per slot, not one GET per key


def test_clear_scans_every_primary_and_spares_other_keys(
    backend: RedisClusterBackend, redis_cluster: list[servers.Server]
) -> None:
    ours = [f"{backend.namespace}{i}" for i in range(60)]
    theirs = [f"x{backend.namespace}{i}" for i in range(3)]
    backend.set_many(dict.fromkeys(ours + theirs, b"v"), 30)
    holders = {backend.client.get_node_from_key(key).port for key in ours}
    assert holders == set(ports(redis_cluster))  # the keys really live on every node
    before = command_stats(*ports(redis_cluster))
    backend.clear()
    ran = commands_between(before, command_stats(*ports(redis_cluster)))
    assert backend.get_many(ours) == [MISS] * len(ours)
    assert backend.get_many(theirs) == [b"v"] * 3
    assert ran["scan"] >= 3
    assert "flushdb" not in ran
    assert "keys" not in ran
    backend.delete_many(theirs)


def test_incr_and_locks_route_by_key(backend: RedisClusterBackend) -> None:
    ns = backend.namespace
    assert backend.incr(f"{ns}n", 5, 100) == 5
    assert backend.incr(f"{ns}n", 1, 100) == 6
    assert 0 < backend.client.pttl(f"{ns}n") <= 100_000
    assert backend.acquire_lock(f"{ns}lock", "a", 5)
    assert not backend.release_lock(f"{ns}lock", "b")
    assert backend.release_lock(f"{ns}lock", "a")


def test_a_down_cluster_does_not_block_construction_and_fails_open() -> None:
    backend = RedisClusterBackend(startup_nodes=f"127.0.0.1:{servers.free_port()}")
    try:
        store = Store(backend)
        started = time.monotonic()
        assert store.get("k") is MISS
        assert store.set("k", 1) is False
        assert time.monotonic() - started < 3
        assert store.stats.get(ERROR) == 2
    finally:
        backend.close()


def test_flask_cluster_cache_config_keys(redis_cluster: list[servers.Server]) -> None:
    app = Flask(__name__)
    prefix = f"app{uuid.uuid4().hex[:8]}:"
    cache = Cache(app, config={
        "CACHE_TYPE": "flask_stash.backends.redis.RedisClusterCache",
        "CACHE_REDIS_CLUSTER": seeds(redis_cluster),
        "CACHE_KEY_PREFIX": prefix,
    })  # fmt: skip
    calls: list[int] = []

    @cache.memoize(60)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    with app.app_context():
        try:
            assert isinstance(cache.cache, RedisClusterCache)
            assert square(5) == 25
            before = command_stats(*ports(redis_cluster))
            assert square(5) == 25
            after = command_stats(*ports(redis_cluster))
            assert commands_between(before, after) == {"mget": 1}
            assert calls == [5]
            assert cache.set_many({"a": 1, "b": 2})
            assert cache.get_many("a", "b") == [1, 2]
            assert cache.unlink("a", "b") == ["a", "b"]
            assert cache.clear()
        finally:
            cache.cache.close()


def test_cache_url_scheme_once_wired(redis_cluster: list[servers.Server]) -> None:
    import flask_stash.backends

    if flask_stash.backends.RedisClusterCache is not RedisClusterCache:
        pytest.skip("redis+cluster:// is not wired to RedisClusterCache yet")
    app = Flask(__name__)
    app.config["CACHE_URL"] = f"redis+cluster://{seeds(redis_cluster)}"
    cache = Cache(app)
    with app.app_context():
        try:
            assert isinstance(cache.cache, RedisClusterCache)
            assert cache.set("wired", 1)
            assert cache.get("wired") == 1
            cache.delete("wired")
        finally:
            cache.cache.close()

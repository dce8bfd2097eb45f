"""RedisSentinelBackend on a real master + replica + sentinel: the contract and failover."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from flask import Flask

from flask_stash import Cache
from flask_stash.backends.redis import RedisSentinelCache
from flask_stash.core.api import MISS
from flask_stash.core.backends.redis_sentinel import RedisSentinelBackend
from flask_stash.core.stats import ERROR
from flask_stash.core.store import Store
from flask_stash.testing import BackendContract, FakeClock

from .. import servers
from ..servers import HOST

pytestmark = pytest.mark.server


def wait_until(condition: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def start_sync_now(sentinel_set: servers.SentinelSet) -> None:
    """Redis 7 waits 5 s (``repl-diskless-sync-delay``) before syncing a new replica."""
    port = str(sentinel_set.master.port)
    servers.redis_cli("-p", port, "config", "set", "repl-diskless-sync-delay", "0")


def replica_ready(sentinel_set: servers.SentinelSet) -> bool:
    """The replica is in sync and the sentinel knows it: a failover can promote it."""
    replica = servers.redis_cli("-p", str(sentinel_set.replica.port), "info", "replication")
    known = servers.redis_cli(
        "-p", str(sentinel_set.sentinel.port), "sentinel", "replicas", sentinel_set.service
    )
    return "master_link_status:up" in replica and str(sentinel_set.replica.port) in known


def sentinel_backend(sentinel_set: servers.SentinelSet, **options: object) -> RedisSentinelBackend:
    return RedisSentinelBackend(
        sentinels=[(HOST, sentinel_set.sentinel.port)],
        service=sentinel_set.service,
        **options,  # type: ignore[arg-type]
    )


class TestRedisSentinelBackend(BackendContract):
    follows_clock = False

    @pytest.fixture(autouse=True)
    def _isolate(self, redis_sentinel: servers.SentinelSet) -> None:
        self.sentinel_set = redis_sentinel
        self.namespace = f"sentinel{uuid.uuid4().hex[:10]}:"

    @pytest.fixture
    def key(self) -> str:
        return f"{self.namespace}{uuid.uuid4().hex}"

    def make_backend(self, clock: FakeClock) -> RedisSentinelBackend:
        return sentinel_backend(self.sentinel_set, namespace=self.namespace)


def test_url_form_and_replica_reads(redis_sentinel: servers.SentinelSet) -> None:
    url = (
        f"redis+sentinel://{HOST}:{redis_sentinel.sentinel.port}/{redis_sentinel.service}/0"
        "?read_from_replicas=true&socket_timeout=2"
    )
    start_sync_now(redis_sentinel)
    with RedisSentinelBackend(url, namespace="replica-reads:") as backend:
        master = backend.client.connection_pool.get_master_address()
        assert master == (HOST, redis_sentinel.master.port)
        backend.set("replica-reads:k", b"v", 30)
        # Replication is asynchronous: poll the replica rather than expecting the value now.
        wait_until(lambda: backend.get("replica-reads:k") == b"v", "the replica to catch up")
        replica_kwargs = backend.reader.connection_pool.connection_kwargs
        assert replica_kwargs["socket_timeout"] == 2.0
        assert backend.reader is not backend.client
        backend.clear()


def test_flask_sentinel_cache_config_keys(redis_sentinel: servers.SentinelSet) -> None:
    app = Flask(__name__)
    prefix = f"app{uuid.uuid4().hex[:8]}:"
    cache = Cache(app, config={
        "CACHE_TYPE": "flask_stash.backends.redis.RedisSentinelCache",
        "CACHE_REDIS_SENTINELS": [(HOST, redis_sentinel.sentinel.port)],
        "CACHE_REDIS_SENTINEL_MASTER": redis_sentinel.service,
        "CACHE_KEY_PREFIX": prefix,
    })  # fmt: skip
    calls: list[int] = []

    @cache.memoize(60)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    with app.app_context():
        try:
            assert isinstance(cache.cache, RedisSentinelCache)
            assert square(3) == 9
            assert square(3) == 9
            assert calls == [3]
            assert cache.clear()
        finally:
            cache.cache.close()


def test_failover_fails_open_then_resumes(tmp_path: Path) -> None:
    with servers.redis_sentinel(tmp_path) as sentinel_set:
        start_sync_now(sentinel_set)
        wait_until(lambda: replica_ready(sentinel_set), "the sentinel to see the replica")
        with sentinel_backend(sentinel_set) as backend:
            store = Store(backend)
            assert store.set("k", "before")
            assert store.get("k") == "before"
            sentinel_set.master.stop()
            assert store.get("k") is MISS  # the master is gone: a miss, no exception
            assert store.set("k", "during") is False
            assert store.stats.get(ERROR) >= 2

            def caching_works() -> bool:
                return store.set("k", "after") and store.get("k") == "after"

            # The sentinel marks the master down after 1 s, then promotes the replica.
            wait_until(caching_works, "the sentinel to promote the replica", timeout=20)
            master = backend.client.connection_pool.get_master_address()
            assert master == (HOST, sentinel_set.replica.port)


def test_cache_url_scheme_once_wired(redis_sentinel: servers.SentinelSet) -> None:
    import flask_stash.backends

    if flask_stash.backends.RedisSentinelCache is not RedisSentinelCache:
        pytest.skip("redis+sentinel:// is not wired to RedisSentinelCache yet")
    port, service = redis_sentinel.sentinel.port, redis_sentinel.service
    app = Flask(__name__)
    app.config["CACHE_URL"] = f"redis+sentinel://{HOST}:{port}/{service}"
    cache = Cache(app)
    with app.app_context():
        try:
            assert isinstance(cache.cache, RedisSentinelCache)
            assert cache.set("wired", 1)
            assert cache.get("wired") == 1
            cache.delete("wired")
        finally:
            cache.cache.close()

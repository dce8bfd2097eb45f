"""Redis backends: configuration is checked at construction, without touching the network."""

from __future__ import annotations

from typing import Any

import pytest

from flask_stash.backends.redis import RedisCache, RedisClusterCache, RedisSentinelCache
from flask_stash.config import DEFAULTS
from flask_stash.core.api import (
    Backend,
    SupportsAtomicAdd,
    SupportsIncrement,
    SupportsLock,
    SupportsPublish,
    SupportsScan,
)
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.backends.redis_cluster import RedisClusterBackend
from flask_stash.core.backends.redis_sentinel import RedisSentinelBackend
from flask_stash.core.errors import ConfigurationError


@pytest.mark.parametrize(
    "make",
    [
        lambda: RedisBackend(decode_responses=True),
        lambda: RedisBackend("redis://localhost/0?decode_responses=true"),
        lambda: RedisSentinelBackend(sentinels="h:1", decode_responses=True),
        lambda: RedisClusterBackend(startup_nodes="h:1", decode_responses=True),
    ],
)
def test_decode_responses_is_refused(make: Any) -> None:
    with pytest.raises(ConfigurationError, match="decode_responses"):
        make()


def test_an_existing_decoding_client_is_refused() -> None:
    import redis

    client = redis.Redis(decode_responses=True)
    try:
        with pytest.raises(ConfigurationError, match="decode_responses"):
            RedisBackend(host=client)
    finally:
        client.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:6379",
        "redis://",
        "redis://localhost:notaport",
        "redis://localhost/notadb",
        "redis://localhost/0?socket_timeout=soon",
        "redis+sentinel://",
        "redis+sentinel://h:1/mymaster/0/extra",
        "redis+sentinel://h:notaport/mymaster",
        "redis+cluster://h:1/3",
        "memcached://h:1",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    kinds = {"redis+sentinel": RedisSentinelBackend, "redis+cluster": RedisClusterBackend}
    backend_class = kinds.get(url.partition("://")[0], RedisBackend)
    with pytest.raises(ConfigurationError):
        backend_class(url)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RedisBackend(sockettimeout=1),
        lambda: RedisBackend("redis://localhost/0?sockettimeout=1"),
        lambda: RedisSentinelBackend(sentinels="h:1", bogus=True),
        lambda: RedisSentinelBackend("redis+sentinel://h:1/m?bogus=1"),
        lambda: RedisSentinelBackend(sentinels="h:1", sentinel_options={"bogus": 1}),
        lambda: RedisClusterBackend(startup_nodes="h:1", health_check_interval=5),
        lambda: RedisClusterBackend("redis+cluster://h:1?bogus=1"),
        lambda: RedisCache(bogus=1),
    ],
)
def test_unknown_options_are_refused(make: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"bogus|sockettimeout|health_check"):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: RedisClusterBackend(),
        lambda: RedisClusterBackend(startup_nodes=""),
        lambda: RedisClusterBackend("redis+cluster://"),
        lambda: RedisClusterCache(),
    ],
)
def test_a_cluster_needs_a_seed(make: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"startup node|no Redis host"):
        make()


def test_construction_never_connects() -> None:
    # Port 1 on a reserved address: any connection attempt would fail or hang.
    made = [
        RedisBackend(host="192.0.2.1", port=1),
        RedisSentinelBackend(sentinels=[("192.0.2.1", 1)]),
        RedisClusterBackend(startup_nodes="192.0.2.1:1"),
    ]
    for backend in made:
        assert isinstance(backend, Backend)
        backend.close()


def test_capabilities() -> None:
    with RedisBackend() as backend:
        for capability in (
            SupportsAtomicAdd, SupportsIncrement, SupportsLock, SupportsPublish, SupportsScan
        ):  # fmt: skip
            assert isinstance(backend, capability)
        assert backend.max_key_length is None


def test_bounded_timeouts_and_retry_by_default() -> None:
    with RedisBackend() as backend:
        kwargs = backend.client.get_connection_kwargs()
        assert kwargs["socket_timeout"] == 1.0
        assert kwargs["socket_connect_timeout"] == 1.0
        assert kwargs["health_check_interval"] == 30
        assert kwargs["retry"]._retries == 1  # get_retries() is redis-py 5.1 and later
    with RedisBackend(socket_timeout=0.25, health_check_interval=0) as backend:
        kwargs = backend.client.get_connection_kwargs()
        assert (kwargs["socket_timeout"], kwargs["health_check_interval"]) == (0.25, 0)


def test_url_forms() -> None:
    with RedisBackend("valkey://:pw@cache.example:6380/3?socket_timeout=2") as backend:
        kwargs = backend.client.get_connection_kwargs()
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.example", 6380, 3)
        assert (kwargs["password"], kwargs["socket_timeout"]) == ("pw", 2.0)
    # The URL wins over host/port/db; explicit options win over the URL's query.
    with RedisBackend(
        "rediss://u:p@h/2?socket_timeout=2", host="other", db=7, socket_timeout=3
    ) as backend:
        kwargs = backend.client.get_connection_kwargs()
        assert (kwargs["host"], kwargs["db"], kwargs["socket_timeout"]) == ("h", 2, 3)
        assert kwargs["username"] == "u"
        assert backend.client.connection_pool.connection_class.__name__ == "SSLConnection"
    with RedisBackend("unix:///tmp/redis.sock?db=4") as backend:
        kwargs = backend.client.get_connection_kwargs()
        assert (kwargs["path"], kwargs["db"]) == ("/tmp/redis.sock", 4)


def test_sentinel_url_and_arguments() -> None:
    url = "redis+sentinel://:pw@s1:26380,s2,[::1]:26381/cache/2?sentinel_password=sp"
    backend = RedisSentinelBackend(url)
    try:
        addresses = [s.get_connection_kwargs()["host"] for s in backend.sentinel.sentinels]
        sentinel_ports = [s.get_connection_kwargs()["port"] for s in backend.sentinel.sentinels]
        assert addresses == ["s1", "s2", "::1"]
        assert sentinel_ports == [26380, 26379, 26381]
        assert backend.sentinel.sentinels[0].get_connection_kwargs()["password"] == "sp"
        pool = backend.client.connection_pool
        assert pool.service_name == "cache"
        assert (pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (2, "pw")
        assert backend.reader is backend.client
    finally:
        backend.close()


def test_cluster_url_and_arguments() -> None:
    backend = RedisClusterBackend("redis+cluster://:pw@n1:7000,n2:7001?socket_timeout=2")
    try:
        assert [(n.host, n.port) for n in backend._nodes] == [("n1", 7000), ("n2", 7001)]
        assert backend._kwargs["password"] == "pw"
        assert backend._kwargs["socket_timeout"] == 2.0
    finally:
        backend.close()
    with RedisClusterBackend(startup_nodes=[("n1", 7000), "n2:7001"]) as backend:
        assert [(n.host, n.port) for n in backend._nodes] == [("n1", 7000), ("n2", 7001)]


def test_flask_caching_factories_read_their_config_keys() -> None:
    config = {
        **DEFAULTS,
        "CACHE_REDIS_HOST": "redis.example",
        "CACHE_REDIS_PORT": 6390,
        "CACHE_REDIS_DB": 2,
        "CACHE_REDIS_PASSWORD": "pw",
        "CACHE_KEY_PREFIX": "app:",
        "CACHE_OPTIONS": {"socket_timeout": 4},
    }
    cache = RedisCache.factory(None, config, [], {"default_timeout": 60})
    try:
        assert isinstance(cache, RedisCache)
        kwargs = cache._write_client.get_connection_kwargs()
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("redis.example", 6390, 2)
        assert (kwargs["password"], kwargs["socket_timeout"]) == ("pw", 4)
        assert cache._backend.namespace == "app:"
        assert cache.store.key_prefix == "app:"
        assert cache.default_timeout == 60
    finally:
        cache.close()
    with_url = {**config, "CACHE_REDIS_URL": "redis://url.example:6391/5"}
    cache = RedisCache.factory(None, with_url, [], {})
    try:
        kwargs = cache._write_client.get_connection_kwargs()
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("url.example", 6391, 5)
    finally:
        cache.close()


def test_sentinel_and_cluster_factories() -> None:
    config = {
        **DEFAULTS,
        "CACHE_REDIS_SENTINELS": [("s1", 26379), ("s2", 26380)],
        "CACHE_REDIS_SENTINEL_MASTER": "cache",
        "CACHE_REDIS_SENTINEL_PASSWORD": "sp",
        "CACHE_REDIS_PASSWORD": "pw",
        "CACHE_REDIS_CLUSTER": "n1:7000,n2:7001",
    }
    sentinel = RedisSentinelCache.factory(None, config, [], {})
    try:
        backend = sentinel._backend
        assert isinstance(backend, RedisSentinelBackend)
        assert backend.client.connection_pool.service_name == "cache"
        assert backend.sentinel.sentinels[1].get_connection_kwargs()["password"] == "sp"
        assert backend.namespace == "flask_cache_"
    finally:
        sentinel.close()
    cluster = RedisClusterCache.factory(None, config, [], {"url": None})
    try:
        backend_c = cluster._backend
        assert isinstance(backend_c, RedisClusterBackend)
        assert [(n.host, n.port) for n in backend_c._nodes] == [("n1", 7000), ("n2", 7001)]
        assert backend_c._kwargs["password"] == "pw"
    finally:
        cluster.close()


@pytest.mark.parametrize(
    "write",
    [
        lambda backend: backend.set("k", "text", None),
        lambda backend: backend.add("k", 1, None),
        lambda backend: backend.set_many({"k": None}, None),
    ],
)
def test_values_must_be_bytes(write: Any) -> None:
    # Checked before any I/O, and a TypeError (a bug), not a BackendError that fail-open hides.
    with RedisBackend(host="192.0.2.1") as backend, pytest.raises(TypeError, match="bytes"):
        write(backend)


def test_sentinel_cache_routes_sentinel_keywords_to_the_sentinels() -> None:
    cache = RedisSentinelCache(
        [("s1", 26379)], "cache", sentinel_password="sp", sentinel_socket_timeout=3,
        socket_timeout=2, read_from_replicas=True,
    )  # fmt: skip
    try:
        backend = cache._backend
        watcher = backend.sentinel.sentinels[0].get_connection_kwargs()
        assert (watcher["password"], watcher["socket_timeout"]) == ("sp", 3)
        assert backend.client.connection_pool.connection_kwargs["socket_timeout"] == 2
        assert cache._read_client is not cache._write_client
    finally:
        cache.close()

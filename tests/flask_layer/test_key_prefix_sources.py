"""Which key prefix wins when ``CACHE_KEY_PREFIX``, ``CACHE_OPTIONS`` and ``CACHE_ARGS`` all
name one, and ``clear()`` deleting exactly the entries written under it.

Flask-Caching 2.5's factories overwrite ``CACHE_OPTIONS["key_prefix"]`` with
``CACHE_KEY_PREFIX`` whenever that is non-empty (its default, ``"flask_cache_"``, is): the
option is used only with ``CACHE_KEY_PREFIX = ""``.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pymemcache.client.base import Client

from flask_stash import Cache
from flask_stash.backends import RedisCache
from flask_stash.config import ConfigWarning

from .. import servers
from .conftest import make_app

DB = 11  # a database of its own on the session's Redis server
OTHER_APP_KEY = "other_app:k"


@pytest.fixture
def raw_redis(redis_single: servers.Server) -> Iterator[redis.Redis]:
    client = redis.Redis(servers.HOST, redis_single.port, db=DB)
    client.flushdb()
    client.set(OTHER_APP_KEY, b"kept")
    yield client
    client.flushdb()
    client.close()


def _cache(**config: Any) -> tuple[Any, Cache]:
    app = make_app(**config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)  # tested on its own below
        return app, Cache(app)


def _redis_config(server: servers.Server, **config: Any) -> dict[str, Any]:
    return {
        "CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": servers.HOST,
        "CACHE_REDIS_PORT": server.port, "CACHE_REDIS_DB": DB, **config,
    }  # fmt: skip


def _written(client: redis.Redis) -> set[str]:
    return {key.decode() for key in client.keys("*")} - {OTHER_APP_KEY}


PREFIX_SOURCES = [
    ({"CACHE_OPTIONS": {"key_prefix": "opt_"}}, "flask_cache_"),
    ({"CACHE_KEY_PREFIX": "app_", "CACHE_OPTIONS": {"key_prefix": "opt_"}}, "app_"),
    ({"CACHE_KEY_PREFIX": "", "CACHE_OPTIONS": {"key_prefix": "opt_"}}, "opt_"),
    ({"CACHE_KEY_PREFIX": "app_"}, "app_"),
    ({"CACHE_KEY_PREFIX": "", "CACHE_ARGS": ["localhost", 6379, None, DB, 300, "arg_"]}, "arg_"),
]


class SubclassedRedisCache(RedisCache):
    """A user's subclass: built through the Flask-Caching factory protocol."""


@pytest.mark.parametrize(("config", "prefix"), PREFIX_SOURCES)
@pytest.mark.parametrize("kind", ["RedisCache", "redis", SubclassedRedisCache])
def test_redis_writes_and_clears_under_the_prefix_that_wins(
    redis_single: servers.Server,
    raw_redis: redis.Redis,
    config: dict[str, Any],
    prefix: str,
    kind: Any,
) -> None:
    config = _redis_config(redis_single, CACHE_TYPE=kind, **config)
    if "CACHE_ARGS" in config:
        config["CACHE_ARGS"] = [servers.HOST, redis_single.port, *config["CACHE_ARGS"][2:]]
    app, cache = _cache(**config)
    with app.app_context():
        cache.set("k", 1)
        cache.memoize()(lambda: 1)()
        written = _written(raw_redis)
        assert len(written) >= 2
        assert all(key.startswith(prefix) for key in written), written
        assert cache.clear() is True
        assert _written(raw_redis) == set()
        assert raw_redis.get(OTHER_APP_KEY) == b"kept"


def test_an_overridden_options_prefix_is_reported() -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_OPTIONS={"key_prefix": "opt_"})
    message = r"CACHE_OPTIONS\['key_prefix'\] \('opt_'\) is replaced by CACHE_KEY_PREFIX"
    with pytest.warns(ConfigWarning, match=message):
        Cache(app)


LOCAL_SOURCES = [
    ({}, "flask_cache_"),
    ({"CACHE_KEY_PREFIX": "app_", "CACHE_OPTIONS": {"key_prefix": "opt_"}}, "app_"),
    ({"CACHE_KEY_PREFIX": "", "CACHE_OPTIONS": {"key_prefix": "opt_"}}, "opt_"),
]


@pytest.mark.parametrize(("config", "prefix"), LOCAL_SOURCES)
@pytest.mark.parametrize("kind", ["SimpleCache", "FileSystemCache"])
def test_local_backends_write_and_clear_under_the_prefix_that_wins(
    tmp_path: Path, config: dict[str, Any], prefix: str, kind: str
) -> None:
    app, cache = _cache(CACHE_TYPE=kind, CACHE_DIR=str(tmp_path / "c"), **config)
    with app.app_context():
        cache.set("k", 1)
        cache.memoize()(lambda: 1)()
        scanner = cache.store.backend
        written = list(scanner.scan(""))  # type: ignore[attr-defined]
        assert len(written) >= 2
        assert all(key.startswith(prefix) for key in written), written
        assert cache.clear() is True
        assert list(scanner.scan("")) == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("config", "prefix"), LOCAL_SOURCES)
def test_memcached_writes_under_the_prefix_that_wins_and_clear_flushes(
    memcached_pair: list[servers.Server], config: dict[str, Any], prefix: str
) -> None:
    # memcached has no namespaces: clear() is flush_all, which empties the server.
    node = memcached_pair[0]
    app, cache = _cache(
        CACHE_TYPE="MemcachedCache", CACHE_MEMCACHED_SERVERS=[node.address], **config
    )
    raw = Client((servers.HOST, node.port), default_noreply=False)
    try:
        with app.app_context():
            key = f"k{uuid.uuid4().hex}"
            cache.set(key, 1)
            assert raw.get(prefix + key) is not None
            assert cache.clear() is True
            assert raw.get(prefix + key) is None
            assert cache.get(key) is None
    finally:
        raw.close()
        cache.cache.close()

"""``CACHE_LOCAL_TIER``: validated at ``init_app``, built in front of shared backends only,
and coherent between two apps (two processes) on one Redis."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import request

from flask_stash import Cache
from flask_stash.core import statsflush
from flask_stash.core.backends.prefixed import CallablePrefixBackend
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.tier import TieredBackend

from ..core.tierkit import eventually, synced
from ..servers import Server
from .conftest import make_app


def redis_cache(server: Server, prefix: str, tier: object = True, **config: Any) -> Cache:
    app = make_app(
        CACHE_URL=f"redis://127.0.0.1:{server.port}/5",
        CACHE_KEY_PREFIX=prefix,
        CACHE_LOCAL_TIER=tier,
        SECRET_KEY="tier-tests",
        **config,
    )
    cache = Cache(app)
    cache.app_for_tests = app  # type: ignore[attr-defined]  # keep the app alive
    return cache


@pytest.mark.parametrize(
    "value",
    [0, "yes", 5, {"ttl": 0}, {"ttl": None}, {"max_entries": 0}, {"max_bytes": 1.5}, {"size": 1}],
)
def test_a_bad_setting_fails_at_init_app_naming_it(value: object) -> None:
    with pytest.raises(ConfigurationError, match="CACHE_LOCAL_TIER"):
        Cache().init_app(make_app(CACHE_URL="redis://127.0.0.1:1/0", CACHE_LOCAL_TIER=value))


@pytest.mark.parametrize("backend", ["SimpleCache", "NullCache", "cachelib.SimpleCache"])
def test_an_in_process_backend_is_refused(backend: str) -> None:
    app = make_app(CACHE_TYPE=backend, CACHE_LOCAL_TIER=True, CACHE_NO_NULL_WARNING=True)
    with pytest.raises(ConfigurationError, match="shared backend"):
        Cache().init_app(app)


@pytest.mark.parametrize("value", [None, False])
def test_off_by_default_and_when_false(value: object) -> None:
    cache, app = Cache(), make_app(CACHE_URL="redis://127.0.0.1:1/0", CACHE_LOCAL_TIER=value)
    cache.init_app(app)  # the cache holds its apps weakly: ``app`` keeps this one alive
    assert isinstance(cache.store.backend, RedisBackend)


def test_settings_reach_the_tier(redis_single: Server) -> None:
    cache = redis_cache(
        redis_single, "p:", {"max_entries": 7, "max_bytes": None, "ttl": 2.5, "channel": "c"}
    )
    tier = cache.store.backend
    assert isinstance(tier, TieredBackend)
    assert (tier.max_entries, tier.max_bytes, tier.ttl) == (7, None, 2.5)
    assert tier.channel is not None
    assert tier.channel.name == "c"
    assert cache.cache._write_client is tier.remote.client  # type: ignore[attr-defined]
    cache.store.close()


def test_the_default_channel_is_per_key_prefix(redis_single: Server) -> None:
    cache = redis_cache(redis_single, "app1:")
    tier = cache.store.backend
    assert isinstance(tier, TieredBackend)
    assert (tier.max_entries, tier.max_bytes, tier.ttl) == (10_000, 64 * 2**20, 60.0)
    assert tier.channel is not None
    assert tier.channel.name == "flask_stash:tier:app1:"
    cache.store.close()


def test_memcached_and_file_system_get_a_tier_without_channel(
    memcached_pair: list[Server], tmp_path: Path
) -> None:
    for config in (
        {"CACHE_URL": f"memcached://{memcached_pair[0].address}"},
        {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)},
    ):
        cache, app = Cache(), make_app(CACHE_LOCAL_TIER={"ttl": 5}, **config)
        cache.init_app(app)  # the cache holds its apps weakly: ``app`` keeps this one alive
        tier = cache.store.backend
        assert isinstance(tier, TieredBackend)
        assert tier.channel is None
        cache.set("k", [1])
        assert cache.get("k") == [1]
        cache.store.close()


def test_a_callable_prefix_goes_in_front_of_the_tier(redis_single: Server) -> None:
    cache = redis_cache(redis_single, "", CACHE_OPTIONS={"key_prefix": lambda: "tenant:"})
    backend = cache.store.backend
    assert isinstance(backend, CallablePrefixBackend)
    assert isinstance(backend.inner, TieredBackend)
    cache.set("k", 1)
    assert cache.get("k") == 1
    cache.clear()
    cache.store.close()


@pytest.mark.parametrize("tier", [True, None])
def test_statistics_under_a_per_request_prefix_are_pushed_outside_requests(
    redis_single: Server, tier: object
) -> None:
    # The statistics round runs in a background thread, where a prefix that reads the
    # request cannot answer: the record is the whole cache's, one hash on the server.
    cache = redis_cache(
        redis_single, "", tier, CACHE_OPTIONS={"key_prefix": lambda: f"{request.host}:"}
    )
    app = cache.app_for_tests  # type: ignore[attr-defined]

    @app.route("/")
    @cache.cached(60)
    def index() -> str:
        return "page"

    shared = cache.store.shared_stats
    assert shared is not None
    assert shared.name == "__flask_stash_stats__"
    assert shared.reset() is True  # the session's server may hold another test's figures
    client = app.test_client()
    for _ in range(3):
        assert client.get("/").text == "page"
    assert statsflush.push_now(cache.store) is True
    everyone = shared.read()
    assert everyone is not None
    assert everyone[("hits", "index")].events == 2
    assert shared.reset() is True
    with app.test_request_context():
        cache.clear()
    cache.store.close()


def test_delete_memoized_in_one_app_reaches_the_other(redis_single: Server) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    apps = [redis_cache(redis_single, prefix) for _ in range(2)]
    tiers = [cache.store.backend for cache in apps]
    synced(*tiers)  # type: ignore[arg-type]
    source = {"value": 1}
    functions = []
    for cache in apps:

        @cache.memoize(60)
        def lookup(x: int) -> int:
            return source["value"] * x

        functions.append(lookup)
    one, two = functions
    assert one(3) == 3
    assert two(3) == 3
    source["value"] = 2
    assert two(3) == 3  # served by the second app's tier
    apps[0].delete_memoized(one)
    eventually(lambda: two(3) == 6)
    apps[0].clear()
    for cache in apps:
        cache.store.close()


def test_reads_from_replicas_are_refused() -> None:
    app = make_app(
        CACHE_URL="redis+sentinel://127.0.0.1:1/mymaster/0?read_from_replicas=true",
        CACHE_LOCAL_TIER=True,
    )
    with pytest.raises(ConfigurationError, match="read_from_replicas"):
        Cache().init_app(app)

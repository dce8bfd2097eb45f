"""The backend ``CACHE_*`` keys: read once, typed, validated at ``init_app`` with the key's
name in the error, and turned into one backend and one store."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from flask_stash import Cache
from flask_stash.backends import FileSystemCache, RedisCache, SimpleCache
from flask_stash.backends._settings import BackendKeys
from flask_stash.config import DEFAULTS
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.store import Store

from .conftest import make_app


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CACHE_REDIS_PORT", "sixty"),
        ("CACHE_REDIS_PORT", 70000),
        ("CACHE_REDIS_PORT", True),
        ("CACHE_REDIS_DB", -1),
        ("CACHE_REDIS_HOST", 5),
        ("CACHE_REDIS_PASSWORD", 5),
        ("CACHE_REDIS_URL", b"redis://h"),
        ("CACHE_REDIS_SENTINELS", "h:notaport"),
        ("CACHE_REDIS_SENTINEL_MASTER", ["m"]),
        ("CACHE_REDIS_CLUSTER", [5]),
        ("CACHE_MEMCACHED_SERVERS", "h:notaport"),
        ("CACHE_MEMCACHED_SERVERS", 11211),
        ("CACHE_MEMCACHED_USERNAME", 3),
        ("CACHE_DIR", 5),
        ("CACHE_THRESHOLD", -1),
        ("CACHE_FILE_HASH_METHOD", "no_such_hash"),
    ],
)
def test_a_bad_backend_key_fails_at_init_app_naming_it(key: str, value: object) -> None:
    cache = Cache()
    with pytest.raises(ConfigurationError, match=key):
        cache.init_app(make_app(**{key: value}))


def test_none_and_numeric_strings_read_as_flask_caching_does() -> None:
    keys = BackendKeys.read({
        "CACHE_REDIS_HOST": None, "CACHE_REDIS_PORT": "6390", "CACHE_REDIS_DB": None,
        "CACHE_REDIS_SENTINELS": "s1,s2:2", "CACHE_REDIS_CLUSTER": "",
        "CACHE_FILE_HASH_METHOD": "md5",
    })  # fmt: skip
    assert (keys.redis_host, keys.redis_port, keys.redis_db) == ("localhost", 6390, 0)
    assert keys.redis_sentinels == (("s1", 26379), ("s2", 2))
    assert keys.redis_sentinel_master == "mymaster"
    assert keys.redis_cluster == ()
    assert keys.file_hash_method is hashlib.md5
    assert BackendKeys.read({}) == BackendKeys.read(DEFAULTS)


def test_the_store_is_built_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    built: list[Store] = []
    original = Store.__init__

    def counting(self: Store, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "__init__", counting)
    for kind in ("SimpleCache", "flask_stash.backends.simplecache.SimpleCache", FileSystemCache):
        built.clear()
        app = make_app(CACHE_TYPE=kind, CACHE_DIR=str(tmp_path))
        cache = Cache(app)
        with app.app_context():
            assert built == [cache.store]
            assert cache.cache.store is cache.store


def test_options_default_timeout_is_the_one_default_timeout() -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_OPTIONS={"default_timeout": 42})
    cache = Cache(app)
    with app.app_context():
        assert cache.store.default_timeout == 42
        assert cache.cache.default_timeout == 42
        assert cache.cache.store.backend.default_timeout == 42
    with pytest.raises(ConfigurationError, match=r"CACHE_OPTIONS\['default_timeout'\]"):
        Cache(make_app(CACHE_OPTIONS={"default_timeout": -5}))


def test_precedence_keys_then_url_then_options_then_args() -> None:
    config = {
        "CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": "from-key", "CACHE_REDIS_PORT": 1,
        "CACHE_REDIS_DB": 1, "CACHE_REDIS_PASSWORD": "pw",
        "CACHE_OPTIONS": {"port": 2, "db": 2}, "CACHE_ARGS": ["from-args"],
    }  # fmt: skip
    app = make_app(**config)
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, RedisCache)
        kwargs = cache.cache._write_client.get_connection_kwargs()
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("from-args", 2, 2)
        assert kwargs["password"] == "pw"
        cache.cache.close()


def test_a_dotted_path_to_our_class_is_our_class() -> None:
    app = make_app(CACHE_TYPE="flask_stash.backends.SimpleCache", CACHE_THRESHOLD=9)
    cache = Cache(app)
    with app.app_context():
        assert type(cache.cache) is SimpleCache
        assert cache.store.backend.threshold == 9  # type: ignore[attr-defined]


def test_a_function_prefix_needs_a_backend_that_takes_one() -> None:
    app = make_app(CACHE_KEY_PREFIX="", CACHE_OPTIONS={"key_prefix": lambda: "tenant:"})
    with pytest.raises(ConfigurationError, match="function as key_prefix"):
        Cache(app)

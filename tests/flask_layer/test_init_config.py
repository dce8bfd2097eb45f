"""Setting up ``Cache`` the ways Flask-Caching documents: constructor, ``init_app``,
config merge order, several apps, ``CACHE_TYPE`` forms and configuration errors."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cachelib
import pytest
from flask import Flask

from flask_stash import Cache, ConfigurationError
from flask_stash.backends import FileSystemCache, NullCache, SimpleCache
from flask_stash.config import ConfigWarning
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.testing import FakeClock

from .conftest import make_app

HERE = __name__

# -- custom backends reachable through a dotted CACHE_TYPE ---------------------------------

FACTORY_CALLS: list[Mapping[str, Any]] = []


def simple_factory(
    app: Flask, config: Mapping[str, Any], args: list[Any], kwargs: dict[str, Any]
) -> SimpleCache:
    """A Flask-Caching style factory function: ``(app, config, args, kwargs)``."""
    FACTORY_CALLS.append(config)
    return SimpleCache(*args, **kwargs)


class ThresholdFromAppCache(SimpleCache):
    """A subclass of the compat class whose ``factory`` reads its own app setting."""

    @classmethod
    def factory(
        cls, app: Any, config: Mapping[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> ThresholdFromAppCache:
        kwargs["threshold"] = app.config["MY_THRESHOLD"]
        return cls(*args, **kwargs)


class EngineMemory(MemoryBackend):
    """An engine-level backend class named by a dotted path."""


try:
    from flask_caching.backends.base import BaseCache as FlaskCachingBaseCache
except ImportError:  # pragma: no cover - flask-caching is a dev dependency
    FlaskCachingBaseCache = cachelib.BaseCache
    HAVE_FLASK_CACHING = False
else:
    HAVE_FLASK_CACHING = True


class DictServersCache(FlaskCachingBaseCache):  # type: ignore[misc,valid-type]
    """The custom backend of Flask-Caching's docs: a ``flask_caching`` ``BaseCache``
    subclass with a ``factory`` classmethod that supplies the app's own settings."""

    def __init__(self, servers: list[str], default_timeout: int = 300, **_: Any) -> None:
        super().__init__(default_timeout=default_timeout)
        self.servers = servers
        self.data: dict[str, Any] = {}

    @classmethod
    def factory(
        cls, app: Any, config: Mapping[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> DictServersCache:
        args.append(app.config["DICT_SERVERS"])
        return cls(*args, **kwargs)

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any, timeout: Any = None) -> bool:
        self.data[key] = value
        return True

    def add(self, key: str, value: Any, timeout: Any = None) -> bool:
        if key in self.data:
            return False
        self.data[key] = value
        return True

    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    def has(self, key: str) -> bool:
        return key in self.data

    def clear(self) -> bool:
        self.data.clear()
        return True


# -- construction --------------------------------------------------------------------------


def test_cache_with_app_in_constructor() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    with app.app_context():
        assert cache.set("k", "v") is True
        assert cache.get("k") == "v"


def test_cache_then_init_app() -> None:
    cache = Cache()
    app = make_app(CACHE_TYPE="SimpleCache")
    cache.init_app(app)
    with app.app_context():
        cache.set("k", [1, 2])
        assert cache.get("k") == [1, 2]


def test_config_given_to_constructor_is_used() -> None:
    app = make_app()
    cache = Cache(config={"CACHE_TYPE": "SimpleCache", "CACHE_KEY_PREFIX": "ctor_"})
    cache.init_app(app)
    with app.app_context():
        assert isinstance(cache.cache, SimpleCache)
        assert cache.store.key_prefix == "ctor_"


def test_cache_app_and_config_in_constructor() -> None:
    app = make_app(CACHE_KEY_PREFIX="app_")
    cache = Cache(app, config={"CACHE_TYPE": "SimpleCache", "CACHE_KEY_PREFIX": "ctor_"})
    with app.app_context():
        assert cache.store.key_prefix == "ctor_"


@pytest.mark.parametrize(
    ("ctor", "init", "prefix", "timeout"),
    [
        (None, None, "app_", 100),
        ({"CACHE_KEY_PREFIX": "ctor_"}, None, "ctor_", 100),
        ({"CACHE_KEY_PREFIX": "ctor_", "CACHE_DEFAULT_TIMEOUT": 200}, None, "ctor_", 200),
        ({"CACHE_KEY_PREFIX": "ctor_"}, {"CACHE_KEY_PREFIX": "init_"}, "init_", 100),
        (
            {"CACHE_KEY_PREFIX": "ctor_", "CACHE_DEFAULT_TIMEOUT": 200},
            {"CACHE_DEFAULT_TIMEOUT": 300},
            "ctor_",
            300,
        ),
        (None, {"CACHE_KEY_PREFIX": "init_"}, "init_", 100),
    ],
)
def test_merge_order_app_then_constructor_then_init_app(
    ctor: dict[str, Any] | None, init: dict[str, Any] | None, prefix: str, timeout: int
) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_KEY_PREFIX="app_", CACHE_DEFAULT_TIMEOUT=100)
    cache = Cache(config=ctor)
    cache.init_app(app, config=init)
    with app.app_context():
        assert cache.store.key_prefix == prefix
        assert cache.store.default_timeout == timeout
        assert cache.cache.default_timeout == timeout


def test_merge_does_not_modify_app_config() -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_KEY_PREFIX="app_")
    Cache(app, config={"CACHE_KEY_PREFIX": "ctor_"})
    assert app.config["CACHE_KEY_PREFIX"] == "app_"


def test_key_prefix_is_applied_to_stored_keys(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_KEY_PREFIX="pfx_")
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})
    with app.app_context():
        cache.set("k", 1)
        backend = cache.store.backend
        assert isinstance(backend, MemoryBackend)
        assert list(backend.scan("pfx_")) == ["pfx_k"]


def test_constructor_config_must_be_a_dict() -> None:
    with pytest.raises(ValueError, match="dict"):
        Cache(config=["CACHE_TYPE"])  # type: ignore[arg-type]


def test_init_app_config_must_be_a_dict() -> None:
    cache = Cache()
    with pytest.raises(ValueError, match="dict"):
        cache.init_app(make_app(), config="SimpleCache")  # type: ignore[arg-type]


# -- several apps --------------------------------------------------------------------------


def test_one_cache_serves_two_apps_with_isolated_state(tmp_path: Path) -> None:
    cache = Cache()
    app1 = make_app(CACHE_TYPE="SimpleCache", CACHE_KEY_PREFIX="one_")
    app2 = make_app(CACHE_TYPE="FileSystemCache", CACHE_DIR=str(tmp_path), CACHE_KEY_PREFIX="two_")
    cache.init_app(app1)
    cache.init_app(app2)

    calls: list[int] = []

    @cache.memoize()
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    with app1.app_context():
        assert isinstance(cache.cache, SimpleCache)
        assert cache.store.key_prefix == "one_"
        cache.set("shared", "from app1")
        assert double(4) == 8
        assert double(4) == 8
    with app2.app_context():
        assert isinstance(cache.cache, FileSystemCache)
        assert cache.store.key_prefix == "two_"
        assert cache.get("shared") is None
        assert cache.has("shared") is False
        cache.set("shared", "from app2")
        assert double(4) == 8
        assert double(4) == 8
    with app1.app_context():
        assert cache.get("shared") == "from app1"
        cache.clear()
    with app2.app_context():
        assert cache.get("shared") == "from app2"
    assert calls == [4, 4]  # once per app


def test_each_app_has_its_own_extension_entry() -> None:
    cache = Cache()
    app1, app2 = make_app(CACHE_TYPE="SimpleCache"), make_app(CACHE_TYPE="SimpleCache")
    cache.init_app(app1)
    cache.init_app(app2)
    assert app1.extensions["cache"][cache] is not app2.extensions["cache"][cache]


def test_two_apps_need_an_app_context() -> None:
    cache = Cache()
    apps = [make_app(CACHE_TYPE="SimpleCache"), make_app(CACHE_TYPE="SimpleCache")]
    for app in apps:
        cache.init_app(app)
    with pytest.raises(RuntimeError, match="app_context"):
        cache.get("k")
    with apps[0].app_context():
        assert cache.get("k") is None


def test_single_app_works_outside_an_app_context() -> None:
    cache = Cache(make_app(CACHE_TYPE="SimpleCache"))
    assert cache.set("k", 1) is True
    assert cache.get("k") == 1


def test_uninitialized_app_is_a_clear_error() -> None:
    cache = Cache()
    cache.init_app(make_app(CACHE_TYPE="SimpleCache"))
    other = make_app()
    with other.app_context(), pytest.raises(RuntimeError, match="init_app"):
        cache.get("k")


def test_two_caches_on_one_app_are_independent() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    first = Cache(app)
    second = Cache(app, config={"CACHE_KEY_PREFIX": "second_"})
    with app.app_context():
        first.set("k", 1)
        assert second.get("k") is None
        assert app.extensions["cache"][first] is first.cache
        assert app.extensions["cache"][second] is second.cache


# -- cache.cache and app.extensions --------------------------------------------------------


def test_cache_property_is_the_backend_object() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, SimpleCache)
        assert app.extensions["cache"][cache] is cache.cache
        # Code that talks to the backend object directly keeps working.
        assert cache.cache.set("direct", 5) is True
        assert cache.get("direct") == 5
        assert cache.cache.get("direct") == 5
        assert cache.cache.inc("counter") == 1


def test_no_cache_type_means_in_memory_cache_that_caches() -> None:
    """Deliberate difference: Flask-Caching defaults to NullCache (and warns)."""
    app = make_app()
    cache = Cache(app)
    calls: list[int] = []

    @cache.memoize()
    def f(x: int) -> int:
        calls.append(x)
        return x

    with app.app_context():
        assert isinstance(cache.cache, SimpleCache)
        cache.set("k", "v")
        assert cache.get("k") == "v"
        f(1)
        f(1)
    assert calls == [1]


# -- configuration errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"CACHE_TYPE": "NoSuchCache"}, "unknown CACHE_TYPE"),
        ({"CACHE_TYPE": "no_such_module_xyz.Cache"}, "cannot import"),
        ({"CACHE_DEFAULT_TIMEOUT": "abc"}, "CACHE_DEFAULT_TIMEOUT"),
        ({"CACHE_DEFAULT_TIMEOUT": -1}, "CACHE_DEFAULT_TIMEOUT"),
        ({"CACHE_THRESHOLD": -1}, "CACHE_THRESHOLD"),
        ({"CACHE_THRESHOLD": "x"}, "CACHE_THRESHOLD"),
        ({"CACHE_OPTIONS": ["clock"]}, "CACHE_OPTIONS"),
        ({"CACHE_OPTIONS": "threshold=5"}, "CACHE_OPTIONS"),
        ({"CACHE_KEY_PREFIX": 5}, "CACHE_KEY_PREFIX"),
        ({"CACHE_KEY_PREFIX": None}, "CACHE_KEY_PREFIX"),
        ({"CACHE_URL": "ftp://example.com/cache"}, "scheme"),
        ({"CACHE_TYPE": "gopher://example.com"}, "scheme"),
        ({"CACHE_TYPE": "FileSystemCache"}, "CACHE_DIR"),
        ({"CACHE_SERIALIZER": "yaml"}, "CACHE_SERIALIZER"),
        ({"CACHE_SERIALIZER": 42}, "CACHE_SERIALIZER"),
        ({"CACHE_HASH_METHOD": "no_such_hash"}, "CACHE_HASH_METHOD"),
        ({"CACHE_ENABLE_SIGNALS": "yes"}, "CACHE_ENABLE_SIGNALS"),
        ({"CACHE_OPTIONS": {"no_such_option": 1}}, "cannot build"),
    ],
)
def test_bad_configuration_fails_at_init_app(config: dict[str, Any], message: str) -> None:
    app = make_app(**config)
    cache = Cache()
    with pytest.raises(ConfigurationError, match=message):
        cache.init_app(app)
    assert cache not in app.extensions.get("cache", {})


def test_bad_configuration_in_constructor_with_app_fails_there() -> None:
    with pytest.raises(ConfigurationError):
        Cache(make_app(), config={"CACHE_DEFAULT_TIMEOUT": "soon"})


def test_configuration_error_is_a_value_error() -> None:
    """Flask-Caching raised ``ValueError`` for bad settings; catching it keeps working."""
    with pytest.raises(ValueError):
        Cache(make_app(CACHE_THRESHOLD=-5))


@pytest.mark.parametrize(
    "config",
    [
        {"CACHE_TYPE": "RedisCache"},
        {"CACHE_TYPE": "redis"},
        {"CACHE_TYPE": "flask_caching.backends.RedisCache"},
        {"CACHE_TYPE": "redis://localhost:6379/0"},
        {"CACHE_URL": "redis://localhost:6379/0"},
    ],
)
def test_redis_names_build_without_connecting(config: dict[str, Any]) -> None:
    """The app boots whether or not a Redis server is reachable."""
    from flask_stash.backends import RedisCache

    app = make_app(**config)
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, RedisCache)


def test_remote_backend_class_names_are_importable() -> None:
    from flask_stash.backends import (  # noqa: F401
        MemcachedCache,
        RedisCache,
        RedisClusterCache,
        RedisSentinelCache,
        SASLMemcachedCache,
        SpreadSASLMemcachedCache,
    )


# -- warnings ------------------------------------------------------------------------------


def test_typo_in_setting_name_is_logged_at_debug_with_a_suggestion(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_DEFAULT_TIMEOUTS=10)
    with caplog.at_level(logging.DEBUG, logger="flask_stash"):
        cache = Cache(app)  # no warning: the suite runs with warnings as errors
    (record,) = [r for r in caplog.records if "CACHE_DEFAULT_TIMEOUTS" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert "did you mean CACHE_DEFAULT_TIMEOUT?" in record.getMessage()
    with app.app_context():
        assert cache.store.default_timeout == 300  # the typo'd key is ignored


def test_other_extensions_cache_settings_start_the_app_without_a_warning() -> None:
    # Apps and other extensions define CACHE_* names of their own.
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_USER_PAGES=60, CACHE_ASSETS=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Cache(app, config={"CACHE_THRESHHOLD": 5})


def test_config_warning_is_a_user_warning() -> None:
    assert issubclass(ConfigWarning, UserWarning)


def test_known_settings_do_not_warn() -> None:
    # filterwarnings = error turns any warning into a failure here.
    Cache(
        make_app(
            CACHE_TYPE="SimpleCache",
            CACHE_DEFAULT_TIMEOUT=10,
            CACHE_THRESHOLD=10,
            CACHE_KEY_PREFIX="x",
            CACHE_SOURCE_CHECK=False,
            CACHE_ENABLE_SIGNALS=False,
            CACHE_IGNORE_ERRORS=False,
            CACHE_NO_NULL_WARNING=False,
            CACHE_ARGS=[],
            CACHE_OPTIONS={},
        )
    )


@pytest.mark.parametrize("cache_type", ["NullCache", "null"])
def test_null_cache_warns(cache_type: str) -> None:
    with pytest.warns(ConfigWarning, match="NullCache"):
        Cache(make_app(CACHE_TYPE=cache_type))


def test_null_cache_warning_can_be_silenced() -> None:
    app = make_app(CACHE_TYPE="NullCache", CACHE_NO_NULL_WARNING=True)
    cache = Cache(app)
    calls: list[int] = []

    @cache.memoize()
    def f() -> int:
        calls.append(1)
        return 1

    with app.app_context():
        assert isinstance(cache.cache, NullCache)
        assert cache.set("k", 1) is True
        assert cache.get("k") is None
        f()
        f()
    assert len(calls) == 2  # nothing is ever cached


# -- CACHE_TYPE forms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_type", "expected"),
    [
        ("SimpleCache", SimpleCache),
        ("simple", SimpleCache),
        ("flask_caching.backends.SimpleCache", SimpleCache),
        ("flask_caching.backends.simplecache.SimpleCache", SimpleCache),
        ("flask_stash.backends.SimpleCache", SimpleCache),
        ("memory://", SimpleCache),
        ("FileSystemCache", FileSystemCache),
        ("filesystem", FileSystemCache),
        ("flask_caching.backends.FileSystemCache", FileSystemCache),
        ("cachelib.SimpleCache", cachelib.SimpleCache),
        ("cachelib.simple.SimpleCache", cachelib.SimpleCache),
    ],
)
def test_cache_type_forms_build_a_working_cache(
    cache_type: str, expected: type[Any], tmp_path: Path
) -> None:
    app = make_app(CACHE_TYPE=cache_type, CACHE_DIR=str(tmp_path / "c"))
    cache = Cache(app)
    calls: list[int] = []

    @cache.memoize()
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    with app.app_context():
        # A foreign cache object is wrapped so the direct API goes through the store too.
        assert isinstance(getattr(cache.cache, "wrapped", cache.cache), expected)
        assert cache.set("k", {"a": 1}) is True
        assert cache.get("k") == {"a": 1}
        assert square(3) == 9
        assert square(3) == 9
    assert calls == [3]


def test_filesystem_cache_writes_files_in_cache_dir(tmp_path: Path) -> None:
    app = make_app(CACHE_TYPE="FileSystemCache", CACHE_DIR=str(tmp_path))
    cache = Cache(app)
    with app.app_context():
        cache.set("k", "v")
        assert cache.get("k") == "v"
    assert any(p.is_file() for p in tmp_path.rglob("*"))


def test_filesystem_cache_is_shared_by_two_apps_on_one_dir(tmp_path: Path) -> None:
    config = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)}
    app1, app2 = make_app(**config), make_app(**config)
    cache1, cache2 = Cache(app1), Cache(app2)
    with app1.app_context():
        cache1.set("k", "v")
    with app2.app_context():
        assert cache2.get("k") == "v"


def test_cachelib_cache_object_is_a_real_cachelib_cache() -> None:
    app = make_app(CACHE_TYPE="cachelib.SimpleCache", CACHE_THRESHOLD=7)
    cache = Cache(app, config={"CACHE_OPTIONS": {"threshold": 3}})
    with app.app_context():
        assert isinstance(cache.cache.wrapped, cachelib.SimpleCache)
        assert cache.cache._threshold == 3  # attributes reach the wrapped object
        assert cache.cache.wrapped.default_timeout == 300


def test_null_url_builds_a_null_cache() -> None:
    app = make_app(CACHE_URL="null://")
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, NullCache)
        cache.set("k", 1)
        assert cache.get("k") is None


def test_cache_url_memory() -> None:
    app = make_app(CACHE_URL="memory://")
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, SimpleCache)
        cache.set("k", 1)
        assert cache.get("k") == 1


def test_cache_url_file(tmp_path: Path) -> None:
    folder = tmp_path / "url-cache"
    app = make_app(CACHE_URL=f"file://{folder}")
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, FileSystemCache)
        cache.set("k", 1)
        assert cache.get("k") == 1
    assert folder.is_dir()
    assert any(p.is_file() for p in folder.rglob("*"))


def test_cache_type_as_file_url(tmp_path: Path) -> None:
    folder = tmp_path / "type-url"
    app = make_app(CACHE_TYPE=f"file://{folder}")
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, FileSystemCache)
        cache.set("k", 1)
        assert cache.get("k") == 1
    assert folder.is_dir()


def test_cache_type_wins_over_cache_url(tmp_path: Path) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_URL=f"file://{tmp_path}")
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, SimpleCache)


def test_file_url_without_directory_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="directory"):
        Cache(make_app(CACHE_URL="file://"))


def test_dotted_path_to_factory_function() -> None:
    FACTORY_CALLS.clear()
    app = make_app(CACHE_TYPE=f"{HERE}.simple_factory", CACHE_KEY_PREFIX="fac_")
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, SimpleCache)
        cache.set("k", 1)
        assert cache.get("k") == 1
        assert cache.store.key_prefix == "fac_"
    assert len(FACTORY_CALLS) == 1
    assert FACTORY_CALLS[0]["CACHE_KEY_PREFIX"] == "fac_"


def test_dotted_path_to_subclass_with_own_factory() -> None:
    app = make_app(CACHE_TYPE=f"{HERE}.ThresholdFromAppCache", MY_THRESHOLD=2)
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, ThresholdFromAppCache)
        cache.set("a", 1)
        cache.set("b", 2)
        cache.set("c", 3)  # threshold 2: the least recently used entry goes
        assert cache.get("a") is None
        assert cache.get_many("b", "c") == [2, 3]


def test_dotted_path_to_engine_backend_class() -> None:
    app = make_app(CACHE_TYPE=f"{HERE}.EngineMemory")
    cache = Cache(app)
    calls: list[int] = []

    @cache.memoize()
    def f(x: int) -> int:
        calls.append(x)
        return x

    with app.app_context():
        assert isinstance(cache.store.backend, EngineMemory)
        f(1)
        f(1)
    assert calls == [1]


def test_factory_object_as_cache_type() -> None:
    app = make_app(CACHE_TYPE=simple_factory)
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, SimpleCache)


@pytest.mark.skipif(not HAVE_FLASK_CACHING, reason="needs flask-caching installed")
def test_flask_caching_custom_backend_is_built_by_its_factory() -> None:
    """Flask-Caching's documented custom backend: a ``BaseCache`` subclass whose
    ``factory(app, config, args, kwargs)`` supplies constructor arguments."""
    app = make_app(CACHE_TYPE=f"{HERE}.DictServersCache", DICT_SERVERS=["a:1"])
    cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache.wrapped, DictServersCache)
        assert cache.cache.servers == ["a:1"]
        cache.set("k", 1)
        assert cache.get("k") == 1


# -- options reach the backend -------------------------------------------------------------


def test_cache_options_reach_simple_cache(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock, "threshold": 2}})
    with app.app_context():
        backend = cache.store.backend
        assert isinstance(backend, MemoryBackend)
        assert backend.threshold == 2
        assert backend.clock is clock
        assert cache.store.clock is clock


def test_cache_threshold_reaches_simple_cache() -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_THRESHOLD=3)
    cache = Cache(app)
    with app.app_context():
        for i in range(5):
            cache.set(f"k{i}", i)
        assert [cache.has(f"k{i}") for i in range(5)] == [False, False, True, True, True]


def test_cache_args_are_passed_positionally(tmp_path: Path) -> None:
    app = make_app(CACHE_TYPE="FileSystemCache", CACHE_ARGS=[str(tmp_path / "args")])
    cache = Cache(app)
    with app.app_context():
        cache.set("k", 1)
        assert cache.get("k") == 1
    assert (tmp_path / "args").is_dir()


def test_default_timeout_string_of_digits_is_accepted() -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_DEFAULT_TIMEOUT="60")
    cache = Cache(app)
    with app.app_context():
        assert cache.store.default_timeout == 60


def test_default_timeout_timedelta_is_accepted() -> None:
    import datetime as dt

    app = make_app(CACHE_TYPE="SimpleCache", CACHE_DEFAULT_TIMEOUT=dt.timedelta(minutes=2))
    cache = Cache(app)
    with app.app_context():
        assert cache.store.default_timeout == 120


@pytest.mark.parametrize("serializer", [None, "pickle", "json"])
def test_serializer_choices(serializer: str | None) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_SERIALIZER=serializer)
    cache = Cache(app)
    with app.app_context():
        cache.set("k", {"a": [1, 2]})
        assert cache.get("k") == {"a": [1, 2]}


def test_cachelib_serializer_object_is_accepted() -> None:
    from cachelib.serializers import BaseSerializer

    app = make_app(CACHE_TYPE="SimpleCache", CACHE_SERIALIZER=BaseSerializer)
    cache = Cache(app)
    with app.app_context():
        cache.set("k", {"a": 1})
        assert cache.get("k") == {"a": 1}


def test_with_jinja2_ext_installs_the_tag_by_default() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    Cache(app)
    assert "flask_stash.jinja.CacheExtension" in app.jinja_env.extensions


def test_engine_backend_class_supports_the_direct_api() -> None:
    app = make_app(CACHE_TYPE=f"{HERE}.EngineMemory")
    cache = Cache(app)
    with app.app_context():
        assert cache.set("k", {"a": 1}) is True
        assert cache.get("k") == {"a": 1}


@pytest.mark.parametrize(
    "cache_type",
    [
        "SimpleCache",
        "cachelib.SimpleCache",
    ],
)
def test_direct_api_sees_what_decorators_stored(cache_type: str) -> None:
    app = make_app(CACHE_TYPE=cache_type)
    cache = Cache(app)
    calls: list[int] = []

    @cache.cached(key_prefix="all_items")
    def get_items() -> list[int]:
        calls.append(1)
        return [1, 2, 3]

    with app.test_request_context("/"):
        assert get_items() == [1, 2, 3]
        assert cache.get("all_items") == [1, 2, 3]
        assert cache.delete("all_items") is True
        assert get_items() == [1, 2, 3]
    assert len(calls) == 2


def test_init_app_again_replaces_the_configuration() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    cache.init_app(app, config={"CACHE_KEY_PREFIX": "again_"})
    with app.app_context():
        assert cache.store.key_prefix == "again_"
        cache.set("k", 1)
        assert cache.get("k") == 1


def test_null_cache_views_and_fragments_always_run() -> None:
    from flask import render_template_string

    app = make_app(CACHE_TYPE="NullCache", CACHE_NO_NULL_WARNING=True)
    cache = Cache(app)
    calls: list[int] = []

    @app.route("/n")
    @cache.cached()
    def n() -> str:
        calls.append(1)
        return str(len(calls))

    client = app.test_client()
    assert client.get("/n").text == "1"
    assert client.get("/n").text == "2"
    with app.test_request_context("/"):
        source = "{% cache 60, 'f' %}{{ v }}{% endcache %}"
        assert render_template_string(source, v=1) == "1"
        assert render_template_string(source, v=2) == "2"

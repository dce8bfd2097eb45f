"""Flask-Caching 2.5's names, module paths and ``delete_memoized`` on ``@cached``
functions, compared with the real Flask-Caching package where it matters."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterator
from typing import Any

import flask_caching
import flask_caching.utils
import pytest

import flask_stash
from flask_stash import Cache

from .conftest import make_app

BACKEND_MODULES = {
    "base": ["BaseCache"],
    "simplecache": ["SimpleCache"],
    "filesystemcache": ["FileSystemCache"],
    "nullcache": ["NullCache"],
    "rediscache": ["RedisCache", "RedisSentinelCache", "RedisClusterCache"],
    "memcache": ["MemcachedCache", "SASLMemcachedCache", "SpreadSASLMemcachedCache"],
}


@pytest.mark.parametrize(("module", "names"), BACKEND_MODULES.items())
def test_backend_module_paths_match_flask_caching(module: str, names: list[str]) -> None:
    ours = importlib.import_module(f"flask_stash.backends.{module}")
    theirs = importlib.import_module(f"flask_caching.backends.{module}")
    for name in names:
        assert hasattr(theirs, name)
        assert getattr(ours, name) is getattr(flask_stash.backends, name)


def test_cache_type_accepts_the_module_paths(tmp_path: object) -> None:
    app = make_app(CACHE_TYPE="flask_stash.backends.simplecache.SimpleCache")
    cache = Cache(app)
    with app.app_context():
        cache.set("k", 1)
        assert cache.get("k") == 1
        assert type(cache.cache).__name__ == "SimpleCache"


def test_supported_hash_functions_are_flask_cachings() -> None:
    assert flask_stash.SUPPORTED_HASH_FUNCTIONS == flask_caching.SUPPORTED_HASH_FUNCTIONS
    assert hashlib.sha256 in flask_stash.SUPPORTED_HASH_FUNCTIONS


class Widget:
    def render(self, size: int) -> str:
        return str(size)

    @classmethod
    def build(cls, size: int) -> Widget:
        return cls()


def plain(a: int, b: int = 2) -> int:
    return a + b


@pytest.mark.parametrize(
    ("f", "args"),
    [(plain, None), (Widget.build, (Widget,)), (Widget.render, None), (Widget().render, None)],
)
def test_function_namespace_matches_flask_caching_for_functions_and_classes(
    f: object, args: object
) -> None:
    ours = flask_stash.function_namespace(f, args)  # type: ignore[arg-type]
    theirs = flask_caching.function_namespace(f, args)  # type: ignore[attr-defined]
    assert ours[0] == theirs[0]
    assert (ours[1] is None) == (theirs[1] is None)


def test_function_namespace_identifies_instances_without_their_address() -> None:
    first, second = Widget(), Widget()
    ns_first = flask_stash.function_namespace(first.render)[1]
    assert ns_first is not None
    assert "0x" not in ns_first
    assert ns_first.startswith(f"{__name__}.Widget.render.")

    class Identified:
        def __init__(self, ident: int) -> None:
            self.ident = ident

        def __caching_id__(self) -> str:
            return f"id-{self.ident}"

        def show(self) -> None: ...

    namespace, instance = flask_stash.function_namespace(Identified(7).show)
    assert instance == f"{namespace}.id-7"
    # An object with no identity hook gets a token of its own while it lives.
    assert flask_stash.function_namespace(first.render)[1] == ns_first
    assert flask_stash.function_namespace(second.render)[1] != ns_first


def test_function_namespace_refuses_a_classmethod_without_its_class() -> None:
    with pytest.raises(ValueError, match="classmethod"):
        flask_stash.function_namespace(Widget.build.__func__)


# -- delete_memoized on @cached functions --------------------------------------------------


@pytest.fixture
def settings_app() -> Iterator[tuple[Cache, Any]]:
    app = make_app()
    cache = Cache(app)
    calls: list[int] = []

    class Setting:
        @classmethod
        @cache.cached(key_prefix="settings")
        def as_dict(cls) -> dict[str, int]:
            calls.append(1)
            return {"n": len(calls)}

    with app.app_context():
        yield cache, Setting


def test_delete_memoized_on_a_cached_classmethod_deletes_its_entry(
    settings_app: tuple[Cache, Any],
) -> None:
    cache, setting = settings_app
    assert setting.as_dict() == {"n": 1}
    assert setting.as_dict() == {"n": 1}
    assert cache.get("settings") == {"n": 1}
    cache.delete_memoized(setting.as_dict, setting)  # the forum app's call
    assert cache.get("settings") is None
    assert setting.as_dict() == {"n": 2}
    cache.delete_memoized(setting.as_dict)  # without arguments: the same entry
    assert setting.as_dict() == {"n": 3}


def test_delete_memoized_on_a_cached_function_uses_its_key_maker() -> None:
    app = make_app()
    cache = Cache(app)

    @cache.cached(key_prefix="greeting")
    def greet() -> str:
        return "hello"

    with app.app_context():
        greet()
        assert cache.has("greeting")
        cache.delete_memoized(greet)
        assert not cache.has("greeting")


def test_delete_memoized_on_a_plain_function_still_refuses() -> None:
    app = make_app()
    cache = Cache(app)
    with app.app_context(), pytest.raises(ValueError, match="not memoized"):
        cache.delete_memoized(plain)

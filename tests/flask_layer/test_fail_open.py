"""A broken backend never breaks the app: results are computed, errors are counted and
logged, in debug mode too. ``CACHE_FAIL_OPEN=False`` makes failures raise instead."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from flask import Flask, render_template_string

from flask_stash import BackendError, Cache
from flask_stash.backends.base import BaseCache
from flask_stash.core.api import TTL, Miss
from flask_stash.core.backends.base import BaseBackend

from .conftest import make_app

HERE = __name__


class BrokenBackend(BaseBackend):
    """Every storage call fails the way a dead server would."""

    native_errors = (ConnectionError,)

    def __init__(self, **_: Any) -> None:
        self.attempts = 0

    def _fail(self) -> Any:
        self.attempts += 1
        raise ConnectionError("connection refused")

    def get(self, key: str) -> bytes | Miss:
        return self._fail()  # type: ignore[no-any-return]

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        return self._fail()  # type: ignore[no-any-return]

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        self._fail()

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        self._fail()

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        return self._fail()  # type: ignore[no-any-return]

    def delete(self, key: str) -> bool:
        return self._fail()  # type: ignore[no-any-return]

    def delete_many(self, keys: Sequence[str]) -> int:
        return self._fail()  # type: ignore[no-any-return]

    def clear(self) -> None:
        self._fail()


def broken_factory(
    app: Any, config: Mapping[str, Any], args: list[Any], kwargs: dict[str, Any]
) -> BrokenBackend:
    """A Flask-Caching style factory returning the broken engine backend."""
    return BrokenBackend()


class BrokenCache(BaseCache):
    """A Flask-Caching style backend class (cachelib method names) on a dead server."""

    def _make_backend(self) -> BrokenBackend:
        return BrokenBackend()


CACHE_TYPES = [f"{HERE}.BrokenBackend", f"{HERE}.broken_factory", f"{HERE}.BrokenCache"]


def build(cache_type: str, *, debug: bool = False, **config: Any) -> tuple[Flask, Cache]:
    app = make_app(CACHE_TYPE=cache_type, **config)
    app.debug = debug
    return app, Cache(app)


def error_count(app: Flask, cache: Cache) -> int:
    with app.app_context():
        return sum(cache.stats().get("errors", {}).values())


def unreached_count(app: Flask, cache: Cache) -> int:
    """Backend calls that failed, plus those not made because the request had already
    seen a failure or the breaker was open: every call the cache could not make."""
    with app.app_context():
        stats = cache.stats()
    return sum(stats.get("errors", {}).values()) + sum(stats.get("backend_skips", {}).values())


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_memoized_function_still_returns_results(
    cache_type: str, debug: bool, caplog: pytest.LogCaptureFixture
) -> None:
    app, cache = build(cache_type, debug=debug)
    calls: list[int] = []

    @cache.memoize()
    def add(a: int, b: int) -> int:
        calls.append(a)
        return a + b

    with app.app_context(), caplog.at_level(logging.WARNING, logger="flask_stash"):
        assert add(2, 3) == 5
        assert add(2, 3) == 5
        assert add(10, 1) == 11
    assert calls == [2, 2, 10]  # nothing could be cached
    assert error_count(app, cache) == 1  # then the app context's budget was spent
    assert unreached_count(app, cache) >= 3
    assert caplog.records
    assert all(r.name == "flask_stash" for r in caplog.records)
    assert "connection refused" in caplog.text


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_cached_view_still_serves(
    cache_type: str, debug: bool, caplog: pytest.LogCaptureFixture
) -> None:
    app, cache = build(cache_type, debug=debug)
    calls: list[int] = []

    @app.route("/v/<int:n>")
    @cache.cached(timeout=60)
    def v(n: int) -> str:
        calls.append(n)
        return f"value {n}"

    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_stash"):
        for _ in range(3):
            response = client.get("/v/4")
            assert (response.status_code, response.text) == (200, "value 4")
    assert calls == [4, 4, 4]
    assert error_count(app, cache) >= 3
    assert "connection refused" in caplog.text


@pytest.mark.parametrize("debug", [False, True])
def test_cached_helper_and_template_fragment_still_work(debug: bool) -> None:
    app, cache = build(f"{HERE}.BrokenCache", debug=debug)

    @cache.cached(key_prefix="items")
    def items() -> list[int]:
        return [1, 2]

    with app.test_request_context("/"):
        assert items() == [1, 2]
        assert render_template_string("{% cache 60, 'f' %}frag{% endcache %}") == "frag"
    assert unreached_count(app, cache) >= 2


def test_errors_are_counted_per_operation() -> None:
    app, cache = build(f"{HERE}.BrokenCache")

    @cache.memoize()
    def f(x: int) -> int:
        return x

    with app.app_context():
        f(1)
        errors = cache.stats()["errors"]
    assert errors
    assert all(isinstance(op, str) and count >= 1 for op, count in errors.items())


def test_an_outage_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    app, cache = build(f"{HERE}.BrokenCache")

    @cache.memoize()
    def f(x: int) -> int:
        return x

    with caplog.at_level(logging.INFO, logger="flask_stash"):
        for i in range(20):
            with app.app_context():  # twenty separate budgets
                f(i)
    assert unreached_count(app, cache) >= 20
    assert [r.getMessage() for r in caplog.records if "backend" in r.getMessage()] == [
        "cache backend BrokenBackend is failing (ConnectionError: connection refused); "
        "serving uncached until it recovers"
    ]


def test_direct_api_fails_open() -> None:
    app, cache = build(f"{HERE}.BrokenCache")
    with app.app_context():
        assert cache.get("k") is None
        assert cache.set("k", 1) is False
        assert cache.add("k", 1) is False
        assert cache.delete("k") is False
        assert cache.has("k") is False
        assert cache.get_many("a", "b") == [None, None]
        assert cache.get_dict("a") == {"a": None}
        assert cache.set_many({"a": 1}) == []
        assert cache.inc("n") is None
        assert cache.dec("n") is None
        assert cache.clear() is False
    assert unreached_count(app, cache) >= 11


def test_signals_still_fire_with_a_broken_backend() -> None:
    from flask_stash.signals import cache_memoize_miss

    app, cache = build(f"{HERE}.BrokenCache", CACHE_ENABLE_SIGNALS=True)
    seen: list[dict[str, Any]] = []

    def receive(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    @cache.memoize()
    def f(x: int) -> int:
        return x

    cache_memoize_miss.connect(receive)
    try:
        with app.app_context():
            f(1)
    finally:
        cache_memoize_miss.disconnect(receive)
    assert len(seen) == 1


# -- CACHE_FAIL_OPEN = False ---------------------------------------------------------------


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_memoize_raises_backend_error_when_not_failing_open(cache_type: str) -> None:
    app, cache = build(cache_type, CACHE_FAIL_OPEN=False)

    @cache.memoize()
    def f(x: int) -> int:
        return x

    with app.app_context(), pytest.raises(BackendError) as info:
        f(1)
    assert isinstance(info.value.original, ConnectionError)
    assert isinstance(info.value.__cause__, ConnectionError)


@pytest.mark.parametrize("cache_type", CACHE_TYPES)
def test_cached_view_raises_backend_error_when_not_failing_open(cache_type: str) -> None:
    app, cache = build(cache_type, CACHE_FAIL_OPEN=False)

    @app.route("/v")
    @cache.cached()
    def v() -> str:
        return "v"

    with pytest.raises(BackendError):
        app.test_client().get("/v")


def test_cached_view_is_a_500_in_production_when_not_failing_open() -> None:
    app, cache = build(f"{HERE}.BrokenCache", CACHE_FAIL_OPEN=False)
    app.testing = False

    @app.route("/v")
    @cache.cached()
    def v() -> str:
        return "v"

    assert app.test_client().get("/v").status_code == 500


def test_direct_api_raises_when_not_failing_open() -> None:
    app, cache = build(f"{HERE}.BrokenCache", CACHE_FAIL_OPEN=False)
    with app.app_context():
        with pytest.raises(BackendError):
            cache.get("k")
        with pytest.raises(BackendError):
            cache.set("k", 1)


def test_template_fragment_raises_when_not_failing_open() -> None:
    app, _ = build(f"{HERE}.BrokenCache", CACHE_FAIL_OPEN=False)
    with app.test_request_context("/"), pytest.raises(BackendError):
        render_template_string("{% cache 60, 'f' %}frag{% endcache %}")


class RoutedCache(Cache):
    """A subclass redefining ``get``: memoize and views read and write through it."""

    def get(self, key: str) -> Any:
        return super().get(key)


@pytest.mark.parametrize("fail_open", [True, False])
def test_the_routed_path_follows_the_policy(fail_open: bool) -> None:
    """The stamps a routed key needs are read through the store's gate: counted and the
    call served uncached, or raised when not failing open (a view's too)."""
    app = make_app(CACHE_TYPE=f"{HERE}.BrokenBackend", CACHE_FAIL_OPEN=fail_open)
    app.secret_key = "dev"
    cache = RoutedCache(app)

    @cache.memoize()
    def f(x: int) -> int:
        return x

    @app.route("/me")
    @cache.cached(private=True)
    def me() -> str:
        return "mine"

    client = app.test_client()
    if fail_open:
        with app.app_context():
            assert f(1) == 1
        assert client.get("/me", headers={"Authorization": "ann"}).text == "mine"
        assert unreached_count(app, cache) >= 2
        return
    with app.app_context(), pytest.raises(BackendError):
        f(1)
    with pytest.raises(BackendError):
        client.get("/me", headers={"Authorization": "ann"})


# -- keys that cannot be built -------------------------------------------------------------


class Unidentifiable:
    """No ``__caching_id__``, an address in its repr and no weak references."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value


def test_memoize_with_an_unkeyable_argument_still_runs() -> None:
    app, cache = build("SimpleCache")
    calls: list[int] = []

    @cache.memoize()
    def f(obj: Unidentifiable) -> int:
        calls.append(obj.value)
        return obj.value

    with app.app_context():
        assert f(Unidentifiable(1)) == 1
        assert f(Unidentifiable(1)) == 1
    assert calls == [1, 1]
    assert error_count(app, cache) == 2


def test_memoize_with_an_unkeyable_argument_raises_when_not_failing_open() -> None:
    app, cache = build("SimpleCache", CACHE_FAIL_OPEN=False)

    @cache.memoize()
    def f(obj: Unidentifiable) -> int:
        return obj.value

    with app.app_context(), pytest.raises(TypeError, match="__caching_id__"):
        f(Unidentifiable(1))

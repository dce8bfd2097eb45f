"""A ``Cache`` subclass redefining ``get``/``set``/``delete``...: memoize and the delete
helpers go through its methods, as Flask-Caching's decorators do."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from flask import Flask, request

from flask_stash import Cache, cache_memoize_hit, cache_memoize_miss

from .conftest import make_app, memoized_square


class AuditedCache(Cache):
    """Counts reads, tags writes, records deletes (what such subclasses do)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple[str, str]] = []

    def get(self, key: str) -> Any:
        self.log.append(("get", key))
        value = super().get(key)
        return None if value is None else value["value"]

    def set(self, key: str, value: Any, timeout: Any = None) -> bool:
        self.log.append(("set", key))
        return super().set(key, {"value": value}, timeout)

    def delete(self, key: str) -> bool:
        self.log.append(("delete", key))
        return super().delete(key)

    def delete_many(self, *keys: str) -> list[str]:
        self.log.append(("delete_many", ",".join(keys)))
        return super().delete_many(*keys)


def test_redefined_methods_are_detected() -> None:
    assert AuditedCache.redefined == {"get", "set", "delete", "delete_many"}
    assert Cache.redefined == frozenset()

    class Plain(Cache):
        def stats(self) -> dict[str, dict[str, int]]:
            return {}

    assert Plain.redefined == frozenset()


@pytest.fixture
def audited() -> tuple[Flask, AuditedCache]:
    app = make_app(CACHE_TYPE="SimpleCache")
    return app, AuditedCache(app)


def test_memoize_reads_and_writes_through_the_subclass(
    audited: tuple[Flask, AuditedCache],
) -> None:
    app, cache = audited
    square, calls = memoized_square(cache, timeout=60)

    with app.app_context():
        assert square(3) == 9
        assert square(3) == 9
        assert calls == [3]
        key = square.make_cache_key(square.uncached, 3)
        assert cache.log == [("get", key), ("set", key), ("get", key)]
        assert cache.cache.get(key) == {"value": 9}  # stored in the subclass's format

        cache.delete_memoized(square, 3)  # Flask-Caching: self.delete(make_cache_key(...))
        assert cache.log[-1] == ("delete", key)
        assert square(3) == 9
        assert calls == [3, 3]

        cache.delete_memoized(square)  # every entry: the version stamp changes
        assert square.make_cache_key(square.uncached, 3) != key
        assert square(3) == 9
        assert calls == [3, 3, 3]

        assert cache.unlink("a", "b") == ["a", "b"]
        assert cache.log[-1] == ("delete_many", "a,b")


def test_methods_and_instances_through_the_subclass(audited: tuple[Flask, AuditedCache]) -> None:
    app, cache = audited
    calls: list[str] = []

    class Repo:
        def __init__(self, name: str) -> None:
            self.name = name

        def __caching_id__(self) -> str:
            return self.name

        @cache.memoize()
        def title(self, n: int) -> str:
            calls.append(self.name)
            return f"{self.name}{n}"

    first, second = Repo("a"), Repo("b")
    with app.app_context():
        assert [first.title(1), second.title(1), first.title(1)] == ["a1", "b1", "a1"]
        cache.delete_memoized(first.title)  # that instance only
        assert [first.title(1), second.title(1)] == ["a1", "b1"]
        assert calls == ["a", "b", "a"]
        cache.delete_memoized(second.title, 1)
        assert second.title(1) == "b1"
        assert calls == ["a", "b", "a", "b"]


def test_options_keep_flask_caching_meaning_on_the_routed_path(
    audited: tuple[Flask, AuditedCache],
) -> None:
    app, cache = audited
    calls: list[int] = []

    @cache.memoize(unless=lambda: False, cache_none=True, forced_update=lambda: len(calls) == 2)
    def maybe(x: int) -> int | None:
        calls.append(x)
        return None

    with app.app_context():
        assert maybe(1) is None
        assert maybe(1) is None  # a cached None is a hit with cache_none
        assert calls == [1]
        calls.append(0)
        assert maybe(1) is None  # forced_update
        assert calls == [1, 0, 1]


def test_signals_carry_the_routed_key() -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_ENABLE_SIGNALS=True)
    cache = AuditedCache(app)
    seen: list[tuple[str, str]] = []

    @cache.memoize()
    def one() -> int:
        return 1

    def on_hit(sender: Any, **extra: Any) -> None:
        seen.append(("hit", extra["cache_key"]))

    def on_miss(sender: Any, **extra: Any) -> None:
        seen.append(("miss", extra["cache_key"]))

    with (
        app.app_context(),
        cache_memoize_hit.connected_to(on_hit),
        cache_memoize_miss.connected_to(on_miss),
    ):
        one()
        one()
        key = one.make_cache_key(one.uncached)
    assert seen == [("miss", key), ("hit", key)]


def test_async_functions_through_the_subclass(audited: tuple[Flask, AuditedCache]) -> None:
    app, cache = audited
    calls: list[int] = []

    @cache.memoize()
    async def fetch(x: int) -> int:
        calls.append(x)
        return x + 1

    async def twice() -> list[int]:
        return [await fetch(1), await fetch(1)]

    with app.app_context():
        assert asyncio.run(twice()) == [2, 2]
    assert calls == [1]
    assert [op for op, _ in cache.log] == ["get", "set", "get"]


def test_a_plain_cache_does_not_take_the_routed_path(monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)

    @cache.memoize()
    def one() -> int:
        return 1

    with app.app_context():
        assert one() == 1
        monkeypatch.setattr(cache, "get", lambda key: pytest.fail("hit went through get"))
        assert one() == 1  # the hit reads the store directly: one round trip
        assert cache.store.get(one.make_cache_key(one.uncached)) == 1  # no stamp suffix


def test_cached_views_read_and_write_through_the_subclass(
    audited: tuple[Flask, AuditedCache],
) -> None:
    app, cache = audited
    runs: list[str] = []

    @app.get("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        runs.append("run")
        return "page"

    client = app.test_client()
    first = client.get("/page")
    second = client.get("/page")
    assert first.text == second.text == "page"
    assert "Age" in second.headers
    assert runs == ["run"]
    assert ("get", "view//page") in cache.log
    assert ("set", "view//page") in cache.log
    with app.test_request_context():
        assert cache.delete_cached(page)
    assert ("delete", "view//page") in cache.log
    client.get("/page")
    assert runs == ["run", "run"]


def test_private_views_through_the_subclass_keep_per_user_deletes(
    audited: tuple[Flask, AuditedCache],
) -> None:
    app, cache = audited
    app.secret_key = "dev"
    runs: list[str] = []

    @app.get("/me")
    @cache.cached(timeout=60, private=True, private_key=lambda: request.headers["X-User"])
    def me() -> str:
        runs.append(request.headers["X-User"])
        return f"page of {request.headers['X-User']}"

    client = app.test_client()
    for _ in range(2):
        for user in ("ann", "bob"):
            response = client.get("/me", headers={"X-User": user, "Authorization": user})
            assert response.text == f"page of {user}"
    assert runs == ["ann", "bob"]
    with app.test_request_context():
        assert cache.delete_cached(me, user="ann")
    for user in ("ann", "bob"):
        client.get("/me", headers={"X-User": user, "Authorization": user})
    assert runs == ["ann", "bob", "ann"]


def test_the_jinja_tag_reads_and_writes_through_the_subclass(
    audited: tuple[Flask, AuditedCache],
) -> None:
    app, cache = audited
    renders: list[int] = []
    template = "{% cache 60, 'box' %}{{ render() }}{% endcache %}"

    def render() -> str:
        renders.append(1)
        return "box"

    with app.test_request_context():
        env = app.jinja_env
        assert env.from_string(template).render(render=render) == "box"
        assert env.from_string(template).render(render=render) == "box"
    assert renders == [1]
    assert any(op == "set" and "box" in key for op, key in cache.log)
    assert any(op == "get" and "box" in key for op, key in cache.log)

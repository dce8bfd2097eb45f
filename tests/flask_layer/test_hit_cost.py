"""A cache hit costs exactly one backend call, whatever decorator served it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string

from flask_stash import Cache
from flask_stash.testing import CountingBackend, FakeClock

from .conftest import make_app


@pytest.fixture(params=["SimpleCache", "FileSystemCache"])
def counted(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> tuple[Flask, Cache, CountingBackend]:
    app = make_app(CACHE_TYPE=request.param, CACHE_DIR=str(tmp_path))
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})
    with app.app_context():
        backend = CountingBackend(cache.store.backend)
        cache.store.backend = backend
    return app, cache, backend


def memo_read(backend: CountingBackend) -> str:
    """The one read of a memoize hit: entry and version stamp together, or the entry
    alone where the backend keeps its stamps in the process (the memory backend)."""
    return "get" if getattr(backend.inner, "local_stamps", None) is not None else "get_many"


def test_memoize_hit_is_one_backend_call(counted: tuple[Flask, Cache, CountingBackend]) -> None:
    app, cache, backend = counted

    @cache.memoize()
    def add(a: int, b: int) -> int:
        return a + b

    with app.app_context():
        assert add(2, 3) == 5
        assert backend.calls  # the miss read and wrote
        backend.calls.clear()
        assert add(2, 3) == 5
    assert backend.calls == [memo_read(backend)]


def test_memoized_method_hit_is_one_backend_call(
    counted: tuple[Flask, Cache, CountingBackend],
) -> None:
    app, cache, backend = counted

    class Repo:
        def __repr__(self) -> str:
            return "Repo()"

        @cache.memoize()
        def find(self, item_id: int) -> dict[str, Any]:
            return {"id": item_id}

    repo = Repo()
    with app.app_context():
        repo.find(1)
        backend.calls.clear()
        assert repo.find(1) == {"id": 1}
    assert backend.calls == [memo_read(backend)]


def test_memoize_hit_with_keywords_and_defaults_is_one_call(
    counted: tuple[Flask, Cache, CountingBackend],
) -> None:
    app, cache, backend = counted

    @cache.memoize(timeout=60)
    def f(a: int, b: int = 2, *, c: str = "x") -> str:
        return f"{a}{b}{c}"

    with app.app_context():
        f(1, c="y")
        backend.calls.clear()
        assert f(a=1, b=2, c="y") == "12y"
    assert backend.calls == [memo_read(backend)]


def test_cached_view_hit_is_one_backend_call(
    counted: tuple[Flask, Cache, CountingBackend],
) -> None:
    app, cache, backend = counted

    @app.route("/v/<int:n>")
    @cache.cached(timeout=60)
    def v(n: int) -> str:
        return str(n)

    client = app.test_client()
    assert client.get("/v/1").text == "1"
    backend.calls.clear()
    assert client.get("/v/1").text == "1"
    assert backend.calls == ["get"]


def test_query_string_view_hit_is_one_backend_call(
    counted: tuple[Flask, Cache, CountingBackend],
) -> None:
    app, cache, backend = counted

    @app.route("/q")
    @cache.cached(query_string=True)
    def q() -> str:
        return "q"

    client = app.test_client()
    client.get("/q?a=1&b=2")
    backend.calls.clear()
    client.get("/q?b=2&a=1")
    assert backend.calls == ["get"]


def test_cached_function_hit_is_one_backend_call(
    counted: tuple[Flask, Cache, CountingBackend],
) -> None:
    app, cache, backend = counted

    @cache.cached(key_prefix="list")
    def get_list() -> list[int]:
        return [1, 2]

    with app.test_request_context("/"):
        get_list()
        backend.calls.clear()
        assert get_list() == [1, 2]
    assert backend.calls == ["get"]


def test_template_fragment_hit_is_one_backend_call(
    counted: tuple[Flask, Cache, CountingBackend],
) -> None:
    app, _, backend = counted
    source = "{% cache 60, 'frag', 1 %}x{% endcache %}"
    with app.test_request_context("/"):
        render_template_string(source)
        backend.calls.clear()
        assert render_template_string(source) == "x"
    assert backend.calls == ["get"]


def test_direct_get_is_one_backend_call(counted: tuple[Flask, Cache, CountingBackend]) -> None:
    app, cache, backend = counted
    with app.app_context():
        cache.set("k", "v")
        backend.calls.clear()
        assert cache.get("k") == "v"
        assert backend.calls == ["get"]
        backend.calls.clear()
        assert cache.get_many("k", "j") == ["v", None]
        assert backend.calls == ["get_many"]


def test_memoize_miss_cost_is_bounded(counted: tuple[Flask, Cache, CountingBackend]) -> None:
    """A miss reads once, then writes the entry (and creates the version stamp once).

    On a backend that can lock, stampede protection adds the lock, and a second read
    under it (another process may have filled the entry meanwhile).
    """
    app, cache, backend = counted

    @cache.memoize()
    def f(x: int) -> int:
        return x

    with app.app_context():
        f(1)
        backend.calls.clear()
        f(2)  # the function's version stamp already exists
    if hasattr(backend.inner, "acquire_lock"):
        read = memo_read(backend)
        assert backend.calls == [read, "acquire_lock", read, "set", "release_lock"]
    else:  # single-flight re-reads once: a caller may have stored it meanwhile
        assert backend.calls == [memo_read(backend), memo_read(backend), "set"]

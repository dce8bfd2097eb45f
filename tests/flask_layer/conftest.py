"""Fixtures for the Flask-Caching compatibility suite: apps, caches and a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_stash import Cache
from flask_stash.protocols import MemoizedFunction
from flask_stash.testing import FakeClock


def make_app(**config: Any) -> Flask:
    """A fresh Flask app in testing mode with ``config`` applied."""
    app = Flask(__name__)
    app.config["TESTING"] = True
    app.config.update(config)
    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def make_cache(clock: FakeClock) -> Callable[..., tuple[Flask, Cache]]:
    """``make_cache(**config)`` -> ``(app, cache)``: a SimpleCache on the fake clock."""

    def build(**config: Any) -> tuple[Flask, Cache]:
        app = make_app()
        options = {"clock": clock, **config.pop("CACHE_OPTIONS", {})}
        settings = {"CACHE_TYPE": "SimpleCache", "CACHE_OPTIONS": options, **config}
        return app, Cache(app, config=settings)

    return build


@pytest.fixture
def cache_app(make_cache: Callable[..., tuple[Flask, Cache]]) -> tuple[Flask, Cache]:
    return make_cache()


@pytest.fixture
def ctx(cache_app: tuple[Flask, Cache]) -> Iterator[Cache]:
    """The default cache, used inside its app's context."""
    app, cache = cache_app
    with app.app_context():
        yield cache


def memoized_square(cache: Cache, **options: Any) -> tuple[MemoizedFunction[[int], int], list[int]]:
    """``square`` memoized by ``cache``, and the list of arguments it actually ran with."""
    calls: list[int] = []

    @cache.memoize(**options)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    return square, calls

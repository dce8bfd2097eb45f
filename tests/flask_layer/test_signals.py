"""Flask-Caching's signals: sent with its payloads when ``CACHE_ENABLE_SIGNALS`` is on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from blinker import Signal
from flask import Flask

import flask_stash
from flask_stash import Cache
from flask_stash.signals import (
    cache_memoize_hit,
    cache_memoize_miss,
    cache_view_hit,
    cache_view_miss,
)

from .conftest import make_app

Events = list[tuple[str, Any, dict[str, Any]]]
SIGNALS = {
    "view_hit": cache_view_hit,
    "view_miss": cache_view_miss,
    "memoize_hit": cache_memoize_hit,
    "memoize_miss": cache_memoize_miss,
}


@pytest.fixture
def events() -> Iterator[Events]:
    """Every signal sent while the test runs, as ``(name, sender, kwargs)``."""
    seen: Events = []
    receivers = {}
    for name, signal in SIGNALS.items():

        def receive(sender: Any, _name: str = name, **kwargs: Any) -> None:
            seen.append((_name, sender, kwargs))

        receivers[name] = receive
        signal.connect(receive)
    yield seen
    for name, signal in SIGNALS.items():
        signal.disconnect(receivers[name])


def build(enabled: bool) -> tuple[Flask, Cache]:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_ENABLE_SIGNALS=enabled)
    return app, Cache(app)


def test_signals_are_blinker_signals() -> None:
    for signal in SIGNALS.values():
        assert isinstance(signal, Signal)


def test_view_miss_then_hit(events: Events) -> None:
    app, cache = build(True)

    @app.route("/item/<int:item_id>")
    @cache.cached()
    def item(item_id: int) -> str:
        return str(item_id)

    client = app.test_client()
    client.get("/item/7")
    client.get("/item/7")
    assert [name for name, _, _ in events] == ["view_miss", "view_hit"]
    for _, sender, payload in events:
        assert sender is None
        assert set(payload) == {"cache", "cache_key", "args", "kwargs"}
        assert payload["cache"] is cache
        assert payload["cache_key"] == "view//item/7"
        assert payload["args"] == ()
        assert payload["kwargs"] == {"item_id": 7}


def test_cached_function_sends_view_signals(events: Events) -> None:
    app, cache = build(True)

    @cache.cached(key_prefix="helper")
    def helper() -> list[int]:
        return [1]

    with app.test_request_context("/"):
        helper()
        helper()
    assert [(name, payload["cache_key"]) for name, _, payload in events] == [
        ("view_miss", "helper"),
        ("view_hit", "helper"),
    ]


def test_memoize_miss_then_hit(events: Events) -> None:
    app, cache = build(True)

    @cache.memoize()
    def add(a: int, b: int = 0) -> int:
        return a + b

    with app.app_context():
        add(1, b=2)
        add(1, b=2)
        key = add.make_cache_key(add.uncached, 1, b=2)  # type: ignore[attr-defined]
    assert [name for name, _, _ in events] == ["memoize_miss", "memoize_hit"]
    for _, sender, payload in events:
        assert sender is None
        assert set(payload) == {"cache", "cache_key", "f", "args", "kwargs"}
        assert payload["cache"] is cache
        assert payload["f"] is add.uncached  # type: ignore[attr-defined]
        assert payload["args"] == (1,)
        assert payload["kwargs"] == {"b": 2}
        assert isinstance(payload["cache_key"], str)
        assert payload["cache_key"]
    assert events[0][2]["cache_key"] == events[1][2]["cache_key"]
    assert events[0][2]["cache_key"].endswith(key.rsplit(":", 1)[-1])


def test_memoize_signal_key_is_readable_with_cache_get(events: Events) -> None:
    app, cache = build(True)

    @cache.memoize()
    def add(a: int, b: int) -> int:
        return a + b

    with app.app_context():
        add(1, 2)
        add(1, 2)
        hit_key = events[-1][2]["cache_key"]
        assert hit_key == add.make_cache_key(add.uncached, 1, 2)  # type: ignore[attr-defined]
        assert cache.get(hit_key) == 3


def test_view_signal_key_is_readable_with_cache_get(events: Events) -> None:
    app, cache = build(True)

    @app.route("/r")
    @cache.cached()
    def r() -> str:
        return "r"

    client = app.test_client()
    client.get("/r")
    with app.app_context():
        assert cache.has(events[0][2]["cache_key"])


def test_nothing_is_sent_when_signals_are_off(events: Events) -> None:
    app, cache = build(False)

    @app.route("/v")
    @cache.cached()
    def v() -> str:
        return "v"

    @cache.memoize()
    def f(x: int) -> int:
        return x

    client = app.test_client()
    client.get("/v")
    client.get("/v")
    with app.app_context():
        f(1)
        f(1)
    assert events == []


def test_signals_are_off_by_default(events: Events) -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)

    @cache.memoize()
    def f(x: int) -> int:
        return x

    with app.app_context():
        f(1)
        f(1)
    assert events == []


def test_unless_bypass_sends_nothing(events: Events) -> None:
    app, cache = build(True)

    @cache.memoize(unless=lambda: True)
    def f(x: int) -> int:
        return x

    with app.app_context():
        f(1)
    assert events == []


def test_signals_per_app(events: Events) -> None:
    cache = Cache()
    on = make_app(CACHE_TYPE="SimpleCache", CACHE_ENABLE_SIGNALS=True)
    off = make_app(CACHE_TYPE="SimpleCache")
    cache.init_app(on)
    cache.init_app(off)

    @cache.memoize()
    def f(x: int) -> int:
        return x

    with off.app_context():
        f(1)
    assert events == []
    with on.app_context():
        f(1)
    assert [name for name, _, _ in events] == ["memoize_miss"]


def test_signals_are_importable_from_the_package() -> None:
    assert flask_stash.cache_view_hit is cache_view_hit  # type: ignore[attr-defined]
    assert flask_stash.cache_view_miss is cache_view_miss  # type: ignore[attr-defined]
    assert flask_stash.cache_memoize_hit is cache_memoize_hit  # type: ignore[attr-defined]
    assert flask_stash.cache_memoize_miss is cache_memoize_miss  # type: ignore[attr-defined]

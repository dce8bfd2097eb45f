"""A failing backend seen from a Flask app: one budget per request, the breaker's
settings, health signals, ``cache.ping()`` and log lines formatted like Flask's."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask

from flask_stash import Cache
from flask_stash.config import ConfigurationError
from flask_stash.core.breaker import OPEN
from flask_stash.signals import cache_backend_recovered, cache_backend_unhealthy

from .conftest import make_app
from .test_fail_open import HERE as BROKEN_MODULE


def broken(**config: Any) -> tuple[Flask, Cache]:
    app = make_app(CACHE_TYPE=f"{BROKEN_MODULE}.BrokenBackend", **config)
    return app, Cache(app)


def counts(app: Flask, cache: Cache) -> tuple[int, int]:
    with app.app_context():
        stats = cache.stats()
    return sum(stats.get("errors", {}).values()), sum(stats.get("backend_skips", {}).values())


def test_a_view_calling_two_memoized_functions_fails_once_per_request() -> None:
    app, cache = broken(CACHE_BREAKER_THRESHOLD=100)

    @cache.memoize()
    def first() -> str:
        return "a"

    @cache.memoize()
    def second() -> str:
        return "b"

    @app.route("/page")
    @cache.cached()
    def page() -> str:
        return first() + second()

    client = app.test_client()
    for requests in (1, 2, 3):
        assert client.get("/page").text == "ab"
        errors, skipped = counts(app, cache)
        assert errors == requests  # the first call of each request, nothing after it
        assert skipped >= 3 * requests  # the memoized reads, the stores


def test_the_breaker_follows_the_settings() -> None:
    app, cache = broken(CACHE_BREAKER_THRESHOLD=2, CACHE_BREAKER_BACKOFF=5)

    @app.route("/v")
    @cache.cached()
    def v() -> str:
        return "v"

    client = app.test_client()
    for _ in range(2):
        client.get("/v")
    with app.app_context():
        breaker = cache.store.gate.breaker
    assert (breaker.state, breaker.threshold, breaker.backoff) == (OPEN, 2, 5.0)
    client.get("/v")
    assert counts(app, cache)[0] == 2  # open: the third request made no call


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CACHE_BREAKER_THRESHOLD", 0),
        ("CACHE_BREAKER_THRESHOLD", "3"),
        ("CACHE_BREAKER_BACKOFF", -1),
        ("CACHE_BREAKER_MAX_BACKOFF", 0.5),
    ],
)
def test_bad_breaker_settings_are_refused_at_init(key: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match="CACHE_BREAKER"):
        broken(**{key: value})


def test_health_signals_are_sent_with_the_cache_as_sender() -> None:
    app, cache = broken(CACHE_ENABLE_SIGNALS=True)
    heard: list[tuple[object, str]] = []

    def unhealthy(sender: object, **kwargs: Any) -> None:
        heard.append((sender, kwargs["backend"]))

    cache_backend_unhealthy.connect(unhealthy)
    try:
        with app.app_context():
            cache.get("k")
            cache.get("k")
    finally:
        cache_backend_unhealthy.disconnect(unhealthy)
    assert heard == [(cache, "BrokenBackend")]


def test_recovery_is_signalled_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_ENABLE_SIGNALS=True)
    cache = Cache(app)
    recovered: list[dict[str, Any]] = []

    def receive(sender: object, **kwargs: Any) -> None:
        recovered.append(kwargs)

    with app.app_context():
        backend = cache.store.backend
        real_get = backend.get
        backend.get = _raising  # type: ignore[method-assign]
        cache_backend_recovered.connect(receive)
        try:
            with caplog.at_level(logging.INFO, logger="flask_stash"):
                assert cache.get("k") is None
                backend.get = real_get  # type: ignore[method-assign]
                with app.test_request_context("/"):  # a new request: a new budget
                    assert cache.get("k") is None
        finally:
            cache_backend_recovered.disconnect(receive)
    assert len(recovered) == 1
    assert recovered[0]["health"].failures == 1
    messages = [r.getMessage() for r in caplog.records if "MemoryBackend" in r.getMessage()]
    assert len(messages) == 2
    assert messages[1].startswith("cache backend MemoryBackend recovered after")


def _raising(key: str) -> Any:
    from flask_stash.core.errors import BackendError

    raise BackendError("get failed", ConnectionRefusedError("refused"))


def test_ping_reports_the_backend() -> None:
    app, cache = broken()
    with app.app_context():
        report = cache.ping()
    assert report["backend"] == "BrokenBackend"
    assert report["reachable"] is False
    assert report["error"] == "ConnectionError: connection refused"
    good = make_app(CACHE_TYPE="SimpleCache")
    with good.app_context():
        report = Cache(good).ping()
    assert (report["reachable"], report["healthy"], report["breaker"]) == (True, True, "closed")

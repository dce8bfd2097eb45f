"""Signing keys as Flask apps configure them: any SECRET_KEY starts, rotation, the init_app
warnings, CACHE_REQUIRE_SIGNING, and workers that do not share a key (memory and Redis)."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_stash import Cache
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.stats import KEY_MISMATCH
from flask_stash.testing import FakeClock

from .. import servers

LOGGER = "flask_stash"


def make_app(debug: bool = False, **config: Any) -> Flask:
    app = Flask(f"app-{uuid.uuid4().hex[:6]}")
    app.debug = debug
    app.config.update(config)
    return app


def key_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
    ]


@pytest.fixture
def redis_url(redis_single: servers.Server) -> str:
    return f"redis://{servers.HOST}:{redis_single.port}/3"


# -- any SECRET_KEY starts ---------------------------------------------------------------


@pytest.mark.parametrize("secret", ["dev", "secret key", b"x", os.urandom(24)])
def test_apps_with_any_secret_key_start_and_sign(secret: str | bytes) -> None:
    app = make_app(SECRET_KEY=secret)
    cache = Cache(app)
    with app.app_context():
        assert cache.store.serializer.name == "pickle-signed"
        cache.set("k", {"a": 1})
        assert cache.get("k") == {"a": 1}


def test_short_key_warns_once_in_debug_mode(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, LOGGER):
        Cache(make_app(debug=True, SECRET_KEY="dev"))
    [message] = key_warnings(caplog)
    assert "SECRET_KEY is only 3 bytes" in message
    assert "token_hex" in message


def test_short_signing_key_is_named_in_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, LOGGER):
        Cache(make_app(debug=True, SECRET_KEY="k" * 40, CACHE_SIGNING_KEY="short"))
    [message] = key_warnings(caplog)
    assert message.startswith("CACHE_SIGNING_KEY is only 5 bytes")


@pytest.mark.parametrize(("debug", "secret"), [(False, "dev"), (True, "a long enough secret key")])
def test_no_warning_for_short_keys_outside_debug_or_long_keys(
    caplog: pytest.LogCaptureFixture, debug: bool, secret: str
) -> None:
    with caplog.at_level(logging.WARNING, LOGGER):
        Cache(make_app(debug=debug, SECRET_KEY=secret))
    assert key_warnings(caplog) == []


# -- rotation ----------------------------------------------------------------------------


ROTATIONS = {
    "SECRET_KEY_FALLBACKS": (
        {"SECRET_KEY": "old secret"},
        {"SECRET_KEY": "new secret", "SECRET_KEY_FALLBACKS": ["old secret"]},
    ),
    "CACHE_SIGNING_KEY_FALLBACKS": (
        {"CACHE_SIGNING_KEY": "old"},
        {"CACHE_SIGNING_KEY": "new", "CACHE_SIGNING_KEY_FALLBACKS": ["old"]},
    ),
}


@pytest.mark.parametrize("setting", ROTATIONS)
def test_fallback_keys_keep_entries_and_counters_readable(setting: str) -> None:
    backend = MemoryBackend()
    shared = {"CACHE_TYPE": lambda app, config, args, kwargs: backend}
    before, after = ROTATIONS[setting]
    old_app = make_app(**before, **shared)
    old = Cache(old_app)
    with old_app.app_context():
        old.set("k", "kept")
        old.inc("n", 3)
    new_app = make_app(**after, **shared)
    new = Cache(new_app)
    with new_app.app_context():
        assert new.get("k") == "kept"
        assert new.inc("n") == 4
        new.set("k2", "written with the new key")
    with old_app.app_context():
        assert old.get("k2") is None


@pytest.mark.parametrize("fallbacks", ["old", [""], [1], 5])
def test_bad_signing_key_fallbacks_fail_at_init(fallbacks: object) -> None:
    app = make_app(CACHE_SIGNING_KEY="new", CACHE_SIGNING_KEY_FALLBACKS=fallbacks)
    with pytest.raises(ConfigurationError, match="CACHE_SIGNING_KEY_FALLBACKS"):
        Cache(app)


# -- no key at all -----------------------------------------------------------------------


@pytest.fixture
def shared_configs(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return {
        "filesystem": {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)},
        "cachelib filesystem": {
            "CACHE_TYPE": "cachelib.FileSystemCache",
            "CACHE_ARGS": [str(tmp_path / "cachelib")],
        },
    }


@pytest.mark.parametrize("kind", ["filesystem", "cachelib filesystem"])
@pytest.mark.parametrize(("serializer", "risk"), [(None, "run any code"), ("json", "values")])
def test_no_key_on_a_shared_backend_warns_once_at_init(
    caplog: pytest.LogCaptureFixture,
    shared_configs: dict[str, dict[str, Any]],
    kind: str,
    serializer: str | None,
    risk: str,
) -> None:
    app = make_app(CACHE_SERIALIZER=serializer, **shared_configs[kind])
    with caplog.at_level(logging.WARNING, LOGGER):
        cache = Cache(app)
        with app.app_context():
            for _ in range(3):
                cache.set("k", 1)
                cache.get("k")
    [message] = key_warnings(caplog)
    assert "unsigned entries" in message
    assert risk in message
    assert "CACHE_SIGNING_KEY" in message
    assert "CACHE_REQUIRE_SIGNING" in message


@pytest.mark.server
def test_no_key_on_redis_warns_once_at_init(
    caplog: pytest.LogCaptureFixture, redis_url: str
) -> None:
    app = make_app(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=redis_url)
    with caplog.at_level(logging.WARNING, LOGGER):
        Cache(app).state(app).store.close()
    [message] = key_warnings(caplog)
    assert "RedisBackend" in message
    assert "pickle executes" in message


@pytest.mark.parametrize("kind", ["SimpleCache", "NullCache", "cachelib.SimpleCache"])
def test_no_key_in_process_is_silent(caplog: pytest.LogCaptureFixture, kind: str) -> None:
    with caplog.at_level(logging.WARNING, LOGGER):
        Cache(make_app(CACHE_TYPE=kind, CACHE_NO_NULL_WARNING=True))
    assert key_warnings(caplog) == []


@pytest.mark.parametrize("kind", ["SimpleCache", "FileSystemCache"])
def test_require_signing_refuses_to_start_without_a_key(tmp_path: Path, kind: str) -> None:
    app = make_app(CACHE_TYPE=kind, CACHE_DIR=str(tmp_path), CACHE_REQUIRE_SIGNING=True)
    with pytest.raises(ConfigurationError, match=r"CACHE_REQUIRE_SIGNING.*SECRET_KEY"):
        Cache(app)
    app.config["SECRET_KEY"] = "dev"
    Cache(app)  # with a key it starts


# -- workers that do not share a key -----------------------------------------------------


def two_workers(config: dict[str, Any], clock: FakeClock) -> list[tuple[Flask, Cache]]:
    """Two "workers" of one app, each with its own os.urandom SECRET_KEY."""
    workers = []
    for _ in range(2):
        app = make_app(SECRET_KEY=os.urandom(24), **config)
        cache = Cache(app)
        with app.app_context():
            cache.store.clock = clock
        workers.append((app, cache))
    return workers


def run_requests(workers: list[tuple[Flask, Cache]], count: int, clock: FakeClock) -> None:
    """Alternate requests between the workers on one view, as a load balancer would."""
    for i in range(count):
        app, _ = workers[i % 2]
        assert app.test_client().get("/page").status_code == 200
        clock.advance(0.5)


def add_view(workers: list[tuple[Flask, Cache]]) -> None:
    for app, cache in workers:

        @app.get("/page")
        @cache.cached(timeout=3600)
        def page() -> str:
            return "page"


def check_alarm(
    workers: list[tuple[Flask, Cache]], caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    add_view(workers)
    with caplog.at_level(logging.WARNING, LOGGER):
        run_requests(workers, 80, clock)
    for app, cache in workers:
        with app.app_context():
            # Every request after the first finds the other worker's entry.
            assert cache.statistics.get(KEY_MISMATCH) >= 39
            assert cache.store.key_alarm.fired
    # One line per worker (each is a process of its own in production), not per request.
    messages = [m for m in key_warnings(caplog) if "signing key" in m]
    assert len(messages) == 2
    assert "do not share a signing key" in messages[0]
    assert "CACHE_SIGNING_KEY" in messages[0]
    assert "SECRET_KEY" in messages[0]


def test_workers_without_a_shared_key_warn_once_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    shared = MemoryBackend(clock=clock)
    config = {"CACHE_TYPE": lambda app, config, args, kwargs: shared}
    check_alarm(two_workers(config, clock), caplog, clock)


@pytest.mark.server
def test_workers_without_a_shared_key_warn_once_redis(
    caplog: pytest.LogCaptureFixture, redis_url: str
) -> None:
    clock = FakeClock()
    config = {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": f"workers-{uuid.uuid4().hex[:8]}:",
    }
    workers = two_workers(config, clock)
    try:
        check_alarm(workers, caplog, clock)
    finally:
        for app, cache in workers:
            with app.app_context():
                cache.clear()
                cache.store.close()


def test_workers_sharing_a_key_share_entries(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    shared = MemoryBackend(clock=clock)
    workers = []
    for _ in range(2):
        app = make_app(SECRET_KEY="one key for all", CACHE_TYPE=lambda *a: shared)
        workers.append((app, Cache(app)))
    add_view(workers)
    with caplog.at_level(logging.WARNING, LOGGER):
        run_requests(workers, 2, clock)
    app, cache = workers[1]
    with app.app_context():
        assert cache.statistics.get("hits") == 1  # the second worker read the first's entry
        assert KEY_MISMATCH not in cache.stats()
    assert key_warnings(caplog) == []

"""Apps on one of three backends (memory, filesystem, Redis), built only through the public API.

The local backends run on a :class:`FakeClock` given through ``CACHE_OPTIONS``; Redis has
no clock option, so time passes for real there (timeouts in these tests are a second or
two). ``Env.pass_time`` hides the difference. ``Env.app()`` called twice gives two
"processes": two apps with their own cache state on one shared backend (filesystem
directory or Redis prefix; the memory backend is not shared).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_stash import Cache
from flask_stash.testing import FakeClock

from .. import servers

ALL = ["memory", "filesystem", pytest.param("redis", marks=pytest.mark.server)]
SHARED = ["filesystem", pytest.param("redis", marks=pytest.mark.server)]


@dataclass
class Env:
    """How to build apps on one backend kind, and how to let time pass on it."""

    kind: str
    clock: FakeClock
    directory: Path
    redis_url: str = ""
    prefix: str = field(default_factory=lambda: f"pb{time.monotonic_ns()}:")

    @property
    def shared(self) -> bool:
        return self.kind != "memory"

    def config(self, **extra: Any) -> dict[str, Any]:
        config: dict[str, Any]
        if self.kind == "memory":
            config = {"CACHE_TYPE": "SimpleCache", "CACHE_OPTIONS": {"clock": self.clock}}
        elif self.kind == "filesystem":
            config = {
                "CACHE_TYPE": "FileSystemCache",
                "CACHE_DIR": str(self.directory),
                "CACHE_OPTIONS": {"clock": self.clock},
            }
        else:
            config = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": self.redis_url}
        return {**config, "CACHE_KEY_PREFIX": self.prefix, **extra}

    def app(
        self, name: str = "app", secret: str | None = None, **extra: Any
    ) -> tuple[Flask, Cache]:
        """A new app (a "process") with a new ``Cache`` on this backend."""
        app = Flask(name)
        app.config["TESTING"] = True
        if secret is not None:
            app.secret_key = secret
        return app, Cache(app, config=self.config(**extra))

    def pass_time(self, seconds: float) -> None:
        """Move the fake clock, or really wait on Redis (its entries expire in real time)."""
        if self.kind == "redis":
            time.sleep(seconds)
        else:
            self.clock.advance(seconds)


@pytest.fixture(name="env", params=ALL)
def env_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    return make_env(request, tmp_path)


@pytest.fixture(name="shared_env", params=SHARED)
def shared_env_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    return make_env(request, tmp_path)


def make_env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    url = ""
    if request.param == "redis":
        server: servers.Server = request.getfixturevalue("redis_single")
        url = f"redis://{server.address}/0"
    return Env(request.param, FakeClock(), tmp_path / "shared-cache", url)


def wait_until(condition: Callable[[], bool], limit: float = 5.0) -> bool:
    """Poll ``condition`` (work done by a background thread) for at most ``limit`` seconds.

    A bounded wait for an effect that happens elsewhere, not a retry: the caller asserts
    the result, so a condition never reached fails the test.
    """
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def stash_lines(records: list[logging.LogRecord]) -> list[str]:
    """The INFO-or-louder lines Flask-Stash's loggers wrote."""
    return [
        record.getMessage()
        for record in records
        if record.name.startswith("flask_stash") and record.levelno >= logging.INFO
    ]

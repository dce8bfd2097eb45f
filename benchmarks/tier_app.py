"""The app ``bench_tier.py`` serves with gunicorn: ``tier_app:create_app()``.

``/tier`` is a view cached by Flask-Stash on the Redis at ``BENCH_REDIS_URL`` with the
in-process tier on (``CACHE_LOCAL_TIER = True``); ``/redis`` the same view cached on Redis
alone; ``/memory`` on the in-memory backend (each worker its own: the floor of any cached
view); ``/bare`` returns the same body uncached.
"""

from __future__ import annotations

import os

from flask import Flask

from flask_stash import Cache

BODY = "hello, cached world " * 20
TIER_ROUTE = "/tier"
REDIS_ROUTE = "/redis"
BARE_ROUTE = "/bare"
MEMORY_ROUTE = "/memory"


def create_app() -> Flask:
    url = os.environ["BENCH_REDIS_URL"]
    app = Flask(__name__)
    app.secret_key = "benchmark-secret-key-of-some-length"  # signed entries, as advised
    tiered = Cache(
        app,
        with_jinja2_ext=False,
        config={"CACHE_URL": url, "CACHE_KEY_PREFIX": "tier:", "CACHE_LOCAL_TIER": True},
    )
    plain = Cache(
        app, with_jinja2_ext=False, config={"CACHE_URL": url, "CACHE_KEY_PREFIX": "redis:"}
    )
    memory = Cache(app, with_jinja2_ext=False, config={"CACHE_TYPE": "SimpleCache"})

    @app.get(MEMORY_ROUTE)
    @memory.cached(timeout=3600)
    def memory_view() -> str:
        return BODY

    @app.get(TIER_ROUTE)
    @tiered.cached(timeout=3600)
    def tier_view() -> str:
        return BODY

    @app.get(REDIS_ROUTE)
    @plain.cached(timeout=3600)
    def redis_view() -> str:
        return BODY

    @app.get(BARE_ROUTE)
    def bare_view() -> str:
        return BODY

    return app

"""The app ``bench_servers.py`` serves with gunicorn: ``server_app:create_app()``.

Four routes return the same body: ``/stash`` cached by Flask-Stash, ``/fc`` cached by
Flask-Caching (both on the Redis at ``BENCH_REDIS_URL``, under different key prefixes),
``/bare``, not cached, and ``/redis-get``, which reads the body with one plain redis-py
``GET``: what any Redis-backed cached view costs at least. Neither extension installs
request hooks, so ``/bare`` costs the same whichever of them is loaded.
"""

from __future__ import annotations

import os

import redis
from flask import Flask
from flask_caching import Cache as FlaskCachingCache

from flask_stash import Cache as StashCache

BODY = "hello, cached world " * 20
STASH_ROUTE = "/stash"
FC_ROUTE = "/fc"
BARE_ROUTE = "/bare"
RAW_ROUTE = "/redis-get"
RAW_KEY = "raw:body"


def create_app() -> Flask:
    url = os.environ["BENCH_REDIS_URL"]
    app = Flask(__name__)
    stash = StashCache(
        app,
        with_jinja2_ext=False,
        config={
            "CACHE_TYPE": "flask_stash.backends.redis.RedisCache",
            "CACHE_REDIS_URL": url,
            "CACHE_KEY_PREFIX": "stash:",
        },
    )
    fc = FlaskCachingCache(
        app,
        with_jinja2_ext=False,
        config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url, "CACHE_KEY_PREFIX": "fc:"},
    )

    @app.get(STASH_ROUTE)
    @stash.cached(timeout=3600)
    def stash_view() -> str:
        return BODY

    @app.get(FC_ROUTE)
    @fc.cached(timeout=3600)
    def fc_view() -> str:
        return BODY

    @app.get(BARE_ROUTE)
    def bare_view() -> str:
        return BODY

    raw = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)

    @app.get(RAW_ROUTE)
    def raw_get_view() -> bytes:
        value = raw.get(RAW_KEY)
        if value is None:
            value = BODY.encode()
            raw.set(RAW_KEY, value)
        return value  # type: ignore[no-any-return]

    return app

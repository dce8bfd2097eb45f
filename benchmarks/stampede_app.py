"""The app ``bench_stampede.py`` serves under gunicorn: one cached view over a slow function.

Configured by environment: ``STAMPEDE_LIB`` (``stash`` or ``flask-caching``),
``STAMPEDE_REDIS`` (a redis:// URL, or empty for the in-memory backend) and
``STAMPEDE_LOG`` (a file that gets one line per execution of the slow function).
"""

from __future__ import annotations

import os
import time

from flask import Flask

SLOW_SECONDS = 0.2
app = Flask(__name__)
redis_url = os.environ.get("STAMPEDE_REDIS", "")
if os.environ.get("STAMPEDE_LIB") == "flask-caching":
    from flask_caching import Cache as FlaskCachingCache

    config = (
        {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": redis_url}
        if redis_url
        else {"CACHE_TYPE": "SimpleCache"}
    )
    cache = FlaskCachingCache(app, config=config)
else:
    from flask_stash import Cache

    cache = Cache(app, config={"CACHE_URL": redis_url} if redis_url else {})


def slow_report() -> str:
    with open(os.environ["STAMPEDE_LOG"], "a") as log:  # one line per execution
        log.write(f"{os.getpid()}\n")
    time.sleep(SLOW_SECONDS)
    return "report"


@app.get("/report")
@cache.cached(timeout=300)
def report() -> str:
    return slow_report()

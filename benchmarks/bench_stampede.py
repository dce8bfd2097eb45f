"""Stampede benchmark: 32 concurrent cold callers of a 200 ms function, counted.

Run: ``.venv/bin/python benchmarks/bench_stampede.py [--quick]``

(a) threads in one process calling a memoized function; (b) HTTP requests to a cached
view served by gunicorn with 2 ``gthread`` workers; each on the in-memory backend and on
Redis, Flask-Stash next to Flask-Caching in the same run. (c) the TTL edge with a stale
window: the latency of 32 callers right after the timeout, next to the hit latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from flask_caching import Cache as FlaskCachingCache  # noqa: E402
from tests import servers  # noqa: E402

from flask_stash import Cache  # noqa: E402

CALLERS = 32
SLOW = 0.2


def concurrently(fn: Callable[[], Any], count: int = CALLERS) -> list[float]:
    """Run ``fn`` in ``count`` threads released together; each call's latency (s)."""
    barrier = threading.Barrier(count)
    latencies: list[float] = []

    def worker() -> None:
        barrier.wait()
        start = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return latencies


def threaded_case(label: str, cache_class: type[Any], config: dict[str, Any]) -> tuple[str, int]:
    app = Flask(label)
    cache = cache_class(app, config=config)
    runs: list[int] = []

    @cache.memoize(timeout=300)
    def report(n: int) -> str:
        runs.append(n)
        time.sleep(SLOW)
        return "report"

    with app.app_context():
        cache.clear()

    def call() -> None:
        with app.app_context():
            report(1)

    concurrently(call)
    return label, len(runs)


def http_case(label: str, lib: str, redis_url: str, workdir: Path) -> tuple[str, int]:
    log = workdir / f"{lib}-{bool(redis_url)}.log"
    log.write_text("")
    port = servers.free_port()
    env = {**os.environ, "STAMPEDE_LIB": lib, "STAMPEDE_REDIS": redis_url,
           "STAMPEDE_LOG": str(log), "PYTHONPATH": str(ROOT / "benchmarks")}  # fmt: skip
    args = [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "16",
            "--bind", f"{servers.HOST}:{port}", "stampede_app:app"]  # fmt: skip
    os.environ.update(env)
    with servers.running(args, port, workdir):
        url = f"http://{servers.HOST}:{port}/report"
        if redis_url:  # start cold
            import redis

            with redis.Redis.from_url(redis_url) as client:
                client.flushdb()
        concurrently(lambda: urllib.request.urlopen(url, timeout=30).read())
    return label, len(log.read_text().split())


def edge_case(redis_url: str) -> dict[str, float]:
    """Latencies of 32 callers at the TTL edge with a stale window, and of plain hits."""
    app = Flask("edge")
    cache = Cache(app, config={"CACHE_URL": redis_url, "CACHE_DEFAULT_STALE": 60})

    @cache.memoize(timeout=1)
    def report(n: int) -> str:
        time.sleep(SLOW)
        return "report"

    with app.app_context():
        cache.clear()
        report(1)

    def call() -> None:
        with app.app_context():
            report(1)

    hits = concurrently(call)
    time.sleep(1.2)  # past the timeout, inside the stale window
    edge = concurrently(call)
    with app.app_context():  # let the background refresh finish before Redis stops
        flights = cache.store.stampede.flights
    deadline = time.monotonic() + 10
    while len(flights) and time.monotonic() < deadline:
        time.sleep(0.01)
    return {
        "hit median ms": statistics.median(hits) * 1e3,
        "hit max ms": max(hits) * 1e3,
        "edge median ms": statistics.median(edge) * 1e3,
        "edge max ms": max(edge) * 1e3,
    }


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with servers.redis_server(workdir) as redis_server:
            url = f"redis://{redis_server.address}/0"
            rows = [
                threaded_case("threads, Flask-Stash, memory", Cache, {}),
                threaded_case(
                    "threads, Flask-Caching, SimpleCache",
                    FlaskCachingCache,
                    {"CACHE_TYPE": "SimpleCache"},
                ),
                threaded_case("threads, Flask-Stash, Redis", Cache, {"CACHE_URL": url}),
                threaded_case(
                    "threads, Flask-Caching, Redis",
                    FlaskCachingCache,
                    {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url},
                ),
                http_case("gunicorn 2 workers, Flask-Stash, memory", "stash", "", workdir),
                http_case(
                    "gunicorn 2 workers, Flask-Caching, memory", "flask-caching", "", workdir
                ),
                http_case("gunicorn 2 workers, Flask-Stash, Redis", "stash", url, workdir),
                http_case(
                    "gunicorn 2 workers, Flask-Caching, Redis", "flask-caching", url, workdir
                ),
            ]
            edge = edge_case(url)
    print(f"Executions of a {SLOW * 1000:.0f} ms function for {CALLERS} concurrent cold callers")
    for label, runs in rows:
        print(f"  {label:<48} {runs:>3}")
    print("\nTTL edge with stale=60 on Redis (32 callers right after the timeout)")
    for name, value in edge.items():
        print(f"  {name:<20} {value:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

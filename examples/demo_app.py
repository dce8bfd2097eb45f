"""Flask-Stash demo: why caching helps, and how to keep a cache honest.

Run it with ``make demo`` (or ``python examples/demo_app.py``; ``PORT=8000`` for another
port than 5000), then open the URLs it prints. Everything runs on the in-memory backend,
the default.

1. ``/ttl``          a hand-made time-to-live dictionary, next to ...
2. ``/report``       ... the same idea with ``@cache.cached(timeout=5)``
3. ``/add/2/3``      ``@cache.memoize``: one computation per argument set
4. ``/users/1``      a cached read; ``POST /users/1/rename?name=...`` invalidates it
5. ``/fib/30``       a memoized Fibonacci, with the cache's hits, misses and hit ratio
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, request

from flask_stash import Cache
from flask_stash.core.stats import readable_name

SLOW_SECONDS = 0.5


class TTLCache:
    """The whole idea of a cache in a dozen lines: values that expire after ``ttl`` seconds."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.clock = clock
        self._items: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> tuple[bool, Any]:
        found = self._items.get(key)
        if found is None or found[0] <= self.clock():
            self._items.pop(key, None)
            return False, None
        return True, found[1]

    def set(self, key: str, value: Any) -> None:
        self._items[key] = (self.clock() + self.ttl, value)


def create_app(slow_seconds: float = SLOW_SECONDS, clock: Callable[[], float] = time.time) -> Flask:
    """The demo app; tests pass ``slow_seconds=0`` and a fake ``clock``."""
    app = Flask(__name__)
    app.config.update(CACHE_DEFAULT_TIMEOUT=60, CACHE_OPTIONS={"clock": clock})
    cache = Cache(app)
    counters = {"report": 0, "add": 0, "db_reads": 0, "fib": 0}
    users = {1: "Ada", 2: "Grace"}
    manual = TTLCache(ttl=5, clock=clock)

    def slow_square(n: int) -> int:
        time.sleep(slow_seconds)  # stands for a heavy query or a remote call
        return n * n

    @app.get("/")
    def index() -> Any:
        return jsonify(pages=["/ttl", "/report", "/add/2/3", "/users/1", "/fib/30", "/stats"])

    @app.get("/ttl")
    def ttl() -> Any:
        found, value = manual.get("square")
        if not found:
            value = slow_square(9)
            manual.set("square", value)
        return jsonify(value=value, source="cached" if found else "computed")

    @app.get("/report")
    @cache.cached(timeout=5)
    def report() -> Any:
        counters["report"] += 1
        return jsonify(
            value=slow_square(9),
            computed_at=time.strftime("%H:%M:%S"),
            computations=counters["report"],
            note="fresh when computations grows; cached for 5 seconds otherwise",
        )

    @cache.memoize()
    def add(a: int, b: int) -> int:
        counters["add"] += 1
        return a + b

    @app.get("/add/<int:a>/<int:b>")
    def add_view(a: int, b: int) -> Any:
        return jsonify(result=add(a, b), computations_so_far=counters["add"])

    @cache.memoize()
    def user_name(user_id: int) -> str | None:
        counters["db_reads"] += 1  # the "database" read the cache saves
        return users.get(user_id)

    @app.get("/users/<int:user_id>")
    def show_user(user_id: int) -> Any:
        before = counters["db_reads"]
        name = user_name(user_id)
        if name is None:
            return jsonify(error="no such user"), 404
        source = "db" if counters["db_reads"] > before else "cache"
        return jsonify(id=user_id, name=name, source=source)

    @app.post("/users/<int:user_id>/rename")
    def rename_user(user_id: int) -> Any:
        new_name = (request.args.get("name") or request.form.get("name") or "").strip()
        if user_id not in users:
            return jsonify(error="no such user"), 404
        if not new_name:
            return jsonify(error="give the new name as ?name=..."), 400
        users[user_id] = new_name
        cache.delete_memoized(user_name, user_id)  # the write invalidates the cached read
        return jsonify(id=user_id, name=new_name, invalidated=True)

    @cache.memoize()
    def fib(n: int) -> int:
        counters["fib"] += 1
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    @app.get("/fib/<int:n>")
    def fib_view(n: int) -> Any:
        if not 0 <= n <= 500:
            return jsonify(error="n must be between 0 and 500"), 400
        value = fib(n)
        figures = cache.stats(everyone=False).process.scopes[readable_name(fib)]
        return jsonify(
            n=n, value=value, computations=counters["fib"], hits=figures.hits,
            misses=figures.misses, hit_ratio=round(figures.hit_ratio or 0.0, 3),
            time_saved=round(figures.time_saved, 6),
        )  # fmt: skip

    @app.get("/stats")
    def stats() -> Any:
        return jsonify(cache.stats().as_dict())

    app.extensions["demo_counters"] = counters
    return app


def main() -> None:
    app = create_app()
    port = int(os.environ.get("PORT") or 5000)
    base = f"http://127.0.0.1:{port}"
    print("Flask-Stash demo on the in-memory backend. Try:")
    for path in ("/ttl", "/report", "/add/2/3", "/add/10/1", "/users/1", "/fib/30", "/stats"):
        print(f"  curl {base}{path}")
    print(f"  curl -X POST '{base}/users/1/rename?name=Lovelace'   then  curl {base}/users/1")
    app.run(host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()

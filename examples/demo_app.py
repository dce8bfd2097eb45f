"""Flask-Stash demo: why caching helps, and how to keep a cache honest.

Run it with ``make demo`` (or ``python examples/demo_app.py``; ``PORT=8000`` for another
port than 5000), then open http://127.0.0.1:5000/ in a browser. Everything runs on the
in-memory backend, the default.

1. ``/ttl``          a hand-made time-to-live dictionary, next to ...
2. ``/report``       ... the same idea with ``@cache.cached(timeout=5)``
3. ``/add/2/3``      ``@cache.memoize``: one computation per argument set
4. ``/users/1``      a cached read; ``POST /users/1/rename?name=...`` invalidates it
5. ``/fib/30``       a memoized Fibonacci, with how often the cache helped
6. ``/_stash/``      the cache dashboard (from this machine only); ``/stats``: its JSON

Browsers get HTML pages with a badge saying whether the answer was computed now or came
from the cache; ``curl`` (or ``?format=json``) gets JSON.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from flask_stash import Cache
from flask_stash.core.stats import readable_name

SLOW_SECONDS = 0.5

#: The examples the index lists: (endpoint, its arguments, title, what it shows).
LESSONS = (
    ("ttl", {}, "A hand-made TTL cache",
     "A dictionary of values and expiry times: the whole idea of a cache in a dozen lines."),
    ("report", {}, "@cache.cached: a whole page",
     "The page is stored for 5 seconds; reload it and the slow work does not run again."),
    ("add_view", {"a": 2, "b": 3}, "@cache.memoize: add(2, 3)",
     "One computation per argument set: add(2, 3) twice computes once ..."),
    ("add_view", {"a": 10, "b": 1}, "@cache.memoize: add(10, 1)",
     "... and new arguments compute again."),
    ("show_user", {"user_id": 1}, "Invalidation: a user's name",
     "A cached read; a rename deletes the cached entry so the next read sees the new name."),
    ("fib_view", {"n": 30}, "A memoized Fibonacci",
     "fib(30) computes each fib(n) once, and the cache answers the other calls."),
)  # fmt: skip


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


def wants_html() -> bool:
    """Whether to answer with a page: ``?format=html|json`` decides, else the ``Accept``
    header (browsers prefer HTML; curl's ``*/*`` and no header at all get JSON)."""
    chosen = request.args.get("format")
    if chosen in ("html", "json"):
        return chosen == "html"
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def answer(data: dict[str, Any], *, cached: bool, seconds: float, **page: Any) -> Any:
    """``data`` as JSON, or as a lesson page with a fresh/cached badge for browsers."""
    if not wants_html():
        return jsonify(data)
    return render_template(
        "demo/lesson.html", facts=data, cached=cached, seconds=seconds,
        links=page.pop("links", ()), rename_url=page.pop("rename_url", None), **page,
    )  # fmt: skip


def mark_cache_hits(response: Any) -> Any:
    """A page served by ``@cache.cached`` is the one stored on the miss, badge included:
    on a hit (``X-Cache: HIT`` or ``STALE``, ``CACHE_VIEW_X_CACHE``) say so instead."""
    if response.headers.get("X-Cache") not in ("HIT", "STALE") or response.mimetype != "text/html":
        return response
    body = response.get_data(as_text=True)
    start, end = body.find("<!--badge-->"), body.find("<!--/badge-->")
    if 0 <= start < end:
        age = response.headers.get("Age", "0")
        badge = f'<span class="badge cached" id="badge">from the cache, computed {age} s ago</span>'
        response.set_data(body[: start + len("<!--badge-->")] + badge + body[end:])
        del response.headers["ETag"]  # the body changed
    return response


def create_app(slow_seconds: float = SLOW_SECONDS, clock: Callable[[], float] = time.time) -> Flask:
    """The demo app; tests pass ``slow_seconds=0`` and a fake ``clock``."""
    app = Flask(__name__)
    app.config.update(
        CACHE_DEFAULT_TIMEOUT=60, CACHE_OPTIONS={"clock": clock}, CACHE_VIEW_X_CACHE=True
    )
    cache = Cache(app)
    # The dashboard, for visitors on this machine only: never without a check in production.
    cache.dashboard(app, access=lambda: request.remote_addr in ("127.0.0.1", "::1"))
    app.after_request(mark_cache_hits)
    counters = {"report": 0, "add": 0, "db_reads": 0, "fib": 0}
    users = {1: "Ada", 2: "Grace"}
    manual = TTLCache(ttl=5, clock=clock)

    def slow_square(n: int) -> int:
        time.sleep(slow_seconds)  # stands for a heavy query or a remote call
        return n * n

    @app.get("/")
    def index() -> Any:
        lessons = [
            {"url": url_for(endpoint, **args), "title": title, "summary": summary}
            for endpoint, args, title, summary in LESSONS
        ]
        fib_figures = fib_ratio()
        if not wants_html():
            pages = [lesson["url"] for lesson in lessons] + ["/stats"]
            return jsonify(pages=pages, lessons=lessons, fib=fib_figures, dashboard="/_stash/")
        return render_template(
            "demo/index.html", title="Why caching helps", lessons=lessons, fib=fib_figures,
            dashboard_url=url_for("flask_stash_dashboard.page"),
        )  # fmt: skip

    @app.get("/ttl")
    def ttl() -> Any:
        started = time.perf_counter()
        found, value = manual.get("square")
        if not found:
            value = slow_square(9)
            manual.set("square", value)
        return answer(
            {"value": value, "source": "cached" if found else "computed"},
            cached=found, seconds=time.perf_counter() - started,
            title="A hand-made TTL cache", summary=LESSONS[0][3],
            note="The dictionary keeps 9 \u00d7 9 for 5 seconds, then computes it again.",
        )  # fmt: skip

    # The page varies with ?format= and Accept (HTML or JSON): both are part of its key.
    @app.get("/report")
    @cache.cached(timeout=5, query_string=True)
    def report() -> Any:
        started = time.perf_counter()
        counters["report"] += 1
        data = {
            "value": slow_square(9),
            "computed_at": time.strftime("%H:%M:%S"),
            "computations": counters["report"],
            "note": "fresh when computations grows; cached for 5 seconds otherwise",
        }
        response = app.make_response(answer(
            data, cached=False, seconds=time.perf_counter() - started,
            title="@cache.cached: a whole page", summary=LESSONS[1][3],
            note="The badge comes from the X-Cache header Flask-Stash adds (CACHE_VIEW_X_CACHE).",
        ))  # fmt: skip
        response.vary.add("Accept")
        return response

    @cache.memoize()
    def add(a: int, b: int) -> int:
        counters["add"] += 1
        return a + b

    @app.get("/add/<int:a>/<int:b>")
    def add_view(a: int, b: int) -> Any:
        started, before = time.perf_counter(), counters["add"]
        result = add(a, b)
        return answer(
            {"result": result, "computations_so_far": counters["add"]},
            cached=counters["add"] == before, seconds=time.perf_counter() - started,
            title=f"@cache.memoize: add({a}, {b})", summary=LESSONS[2][3],
            links=[("add(2, 3)", url_for("add_view", a=2, b=3)),
                   ("add(10, 1)", url_for("add_view", a=10, b=1))],
            note="Each argument set is its own cache entry.",
        )  # fmt: skip

    @cache.memoize()
    def user_name(user_id: int) -> str | None:
        counters["db_reads"] += 1  # the "database" read the cache saves
        return users.get(user_id)

    @app.get("/users/<int:user_id>")
    def show_user(user_id: int) -> Any:
        started, before = time.perf_counter(), counters["db_reads"]
        name = user_name(user_id)
        if name is None:
            return jsonify(error="no such user"), 404
        source = "db" if counters["db_reads"] > before else "cache"
        return answer(
            {"id": user_id, "name": name, "source": source},
            cached=source == "cache", seconds=time.perf_counter() - started,
            title=f"Invalidation: user {user_id}", summary=LESSONS[4][3],
            rename_url=url_for("rename_user", user_id=user_id),
            note="The rename calls cache.delete_memoized(user_name, user_id).",
        )  # fmt: skip

    @app.post("/users/<int:user_id>/rename")
    def rename_user(user_id: int) -> ResponseReturnValue:
        new_name = (request.args.get("name") or request.form.get("name") or "").strip()
        if user_id not in users:
            return jsonify(error="no such user"), 404
        if not new_name:
            return jsonify(error="give the new name as ?name=..."), 400
        users[user_id] = new_name
        cache.delete_memoized(user_name, user_id)  # the write invalidates the cached read
        if wants_html():  # the page's form: back to the user, read afresh
            return redirect(url_for("show_user", user_id=user_id), 303)
        return jsonify(id=user_id, name=new_name, invalidated=True)

    @cache.memoize()
    def fib(n: int) -> int:
        counters["fib"] += 1
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    def fib_ratio() -> dict[str, Any]:
        """How often the cache answered ``fib``: from ``cache.stats()``, by its name."""
        figures = cache.stats(everyone=False).process.scopes.get(readable_name(fib))
        if figures is None:
            return {"calls": 0, "hits": 0, "misses": 0, "ratio": 0.0}
        ratio = figures.hit_ratio or 0.0
        return {"calls": figures.calls, "hits": figures.hits, "misses": figures.misses,
                "ratio": round(ratio, 3)}  # fmt: skip

    @app.get("/fib/<int:n>")
    def fib_view(n: int) -> Any:
        if not 0 <= n <= 500:
            return jsonify(error="n must be between 0 and 500"), 400
        started, before = time.perf_counter(), counters["fib"]
        value = fib(n)
        helped = fib_ratio()
        return answer(
            {"n": n, "value": value, "computations": counters["fib"], "hits": helped["hits"],
             "misses": helped["misses"], "hit_ratio": helped["ratio"]},
            cached=counters["fib"] == before, seconds=time.perf_counter() - started,
            title=f"A memoized Fibonacci: fib({n})", summary=LESSONS[5][3],
            links=[(f"fib({m})", url_for("fib_view", n=m)) for m in (10, 60, 200) if m != n],
            note="hit_ratio is the share of fib's calls the cache answered, from cache.stats().",
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
    print(f"Flask-Stash demo on the in-memory backend. Open {base}/ in a browser, or try:")
    for path in ("/ttl", "/report", "/add/2/3", "/add/10/1", "/users/1", "/fib/30", "/stats"):
        print(f"  curl {base}{path}")
    print(f"  curl -X POST '{base}/users/1/rename?name=Lovelace'   then  curl {base}/users/1")
    print(f"The cache dashboard: {base}/_stash/")
    app.run(host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()

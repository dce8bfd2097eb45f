"""A Flask-Caching user's app, built with ``flask_stash.Cache`` or ``flask_caching.Cache``,
and the wall time of one request through it: what the outage tests
(``tests/flask_layer/test_outage.py``) and ``benchmarks/bench_outage.py`` measure.

The app is written the way Flask-Caching's documentation writes one: ``Cache(app)`` with
``CACHE_TYPE`` and ``CACHE_*`` settings, a view under ``@cache.cached(timeout=60)`` calling
two ``@cache.memoize()`` functions, and an uncached view calling one memoized function
(``/miss/<n>``: a memoize miss for every new ``n``). Function bodies count their runs, so a
test tells a hit from a miss, and return the app's current ``generation``, so a test tells
a value stored before an invalidation from one computed after it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask

from . import servers
from .servers import HOST

R = TypeVar("R")

#: The two ``Cache`` classes the app can be built with.
IMPLEMENTATIONS = ("flask_stash", "flask_caching")


def cache_class(implementation: str) -> Any:
    if implementation == "flask_stash":
        from flask_stash import Cache
    elif implementation == "flask_caching":
        from flask_caching import Cache
    else:
        raise ValueError(f"unknown implementation {implementation!r}")
    return Cache


# -- settings, as a user writes them ---------------------------------------------------------
# ``timeout``: the socket (and connect) timeout in seconds; ``None`` keeps each library's own
# default. Flask-Caching passes ``CACHE_OPTIONS`` to redis-py; its ``MemcachedCache`` takes no
# options, so there the timeouts are pylibmc behaviours of a client given as the server list
# (cachelib accepts a ready client there).


def redis_config(server: servers.Server, timeout: float | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": f"redis://{HOST}:{server.port}/0",
    }
    if timeout is not None:
        config["CACHE_OPTIONS"] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    return config


def cluster_config(nodes: Sequence[servers.Server], timeout: float | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "CACHE_TYPE": "RedisClusterCache",
        "CACHE_REDIS_CLUSTER": ",".join(node.address for node in nodes),
    }
    if timeout is not None:
        config["CACHE_OPTIONS"] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    return config


def memcached_config(
    implementation: str, nodes: Sequence[servers.Server], timeout: float | None = None
) -> dict[str, Any]:
    addresses = [node.address for node in nodes]
    config: dict[str, Any] = {"CACHE_TYPE": "MemcachedCache"}
    if implementation == "flask_caching" and timeout is not None:
        import pylibmc

        milliseconds = int(timeout * 1000)
        behaviors = {
            "connect_timeout": milliseconds,
            "_poll_timeout": milliseconds,
            "send_timeout": milliseconds * 1000,  # microseconds
            "receive_timeout": milliseconds * 1000,
        }
        config["CACHE_MEMCACHED_SERVERS"] = pylibmc.Client(addresses, behaviors=behaviors)
        return config
    config["CACHE_MEMCACHED_SERVERS"] = addresses
    if timeout is not None:
        config["CACHE_OPTIONS"] = {"connect_timeout": timeout, "timeout": timeout}
    return config


# -- the app ---------------------------------------------------------------------------------


@dataclass
class Timed:
    seconds: float
    status: int
    body: str


@dataclass
class OutageApp:
    app: Flask
    cache: Any
    #: Function bodies run so far: ``view``, ``price``, ``stock``, ``lookup``.
    runs: Counter[str] = field(default_factory=Counter)
    #: Returned by every function body; bump it to tell old values from new ones.
    generation: int = 0
    #: The memoized functions, for ``cache.delete_memoized``.
    functions: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Close the cache's connections (an unclosed socket is an error under pytest)."""
        backend = self.cache.cache
        with self.app.app_context():
            if hasattr(backend, "store"):  # Flask-Stash
                backend.close()
                return
            client = getattr(backend, "_write_client", None) or getattr(backend, "_client", None)
            if hasattr(client, "close"):  # redis-py
                client.close()
            elif hasattr(client, "disconnect_all"):  # pylibmc
                client.disconnect_all()

    def call(self, function: Callable[..., R], *args: Any) -> R:
        """``function(*args)`` inside the app's context (``cache.delete(...)`` and the like)."""
        with self.app.app_context():
            return function(*args)

    def request(self, path: str = "/view/0") -> Timed:
        """GET ``path`` through the test client: its wall time, status and body."""
        client = self.app.test_client()
        started = time.perf_counter()
        response = client.get(path)
        seconds = time.perf_counter() - started
        return Timed(seconds, response.status_code, response.get_data(as_text=True))


def build(implementation: str, config: dict[str, Any], prefix: str | None = None) -> OutageApp:
    """The app on ``implementation``'s ``Cache`` with ``config`` (``CACHE_*`` settings).

    Keys live under ``prefix`` (a fresh one by default) so apps share servers safely.
    """
    app = Flask(f"outage_{implementation}")
    app.config.update(config)
    app.config.setdefault("CACHE_KEY_PREFIX", prefix or f"out{uuid.uuid4().hex[:8]}:")
    cache = cache_class(implementation)(app)
    state = OutageApp(app, cache)

    @cache.memoize()
    def price(item: int) -> str:
        state.runs["price"] += 1
        return f"price{item}@{state.generation}"

    @cache.memoize()
    def stock(item: int) -> str:
        state.runs["stock"] += 1
        return f"stock{item}@{state.generation}"

    @cache.memoize()
    def lookup(n: int) -> str:
        state.runs["lookup"] += 1
        return f"lookup{n}@{state.generation}"

    @app.route("/view/<int:item>")
    @cache.cached(timeout=60)
    def view(item: int) -> str:
        state.runs["view"] += 1
        return f"{price(item)} {stock(item)} view@{state.generation}"

    @app.route("/miss/<int:n>")
    def miss(n: int) -> str:
        return lookup(n)

    state.functions.update(price=price, stock=stock, lookup=lookup)
    return state


def uncached(implementation: str) -> OutageApp:
    """The same app with no cache at all (``NullCache``): the baseline of "added" time."""
    return build(implementation, {"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": True})


class Background:
    """Requests run in threads, so a test waits for one only as long as its requirement
    allows, then resumes the server and lets the request finish (:meth:`join`).

    Use it outside the outage's ``with`` block, so the server is back before the join::

        with Background() as background, servers.paused(server):
            timed = background.request(app, "/view/0", limit=1.5)  # None: still running
    """

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()

    def call(self, function: Callable[[], R], limit: float) -> tuple[R | None, float]:
        """``function()``'s result and wall time, or ``(None, limit)`` if still running."""
        done: list[R] = []
        started = time.perf_counter()
        thread = threading.Thread(target=lambda: done.append(function()), daemon=True)
        self.threads.append(thread)
        thread.start()
        thread.join(limit)
        if not done:
            return None, limit
        return done[0], time.perf_counter() - started

    def request(self, state: OutageApp, path: str, limit: float) -> Timed | None:
        """:meth:`OutageApp.request`, or ``None`` if it takes longer than ``limit``."""
        return self.call(lambda: state.request(path), limit)[0]

    def join(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [thread for thread in self.threads if thread.is_alive()]
        self.threads.clear()
        if stuck:
            raise RuntimeError(f"{len(stuck)} request(s) still running after {timeout}s")

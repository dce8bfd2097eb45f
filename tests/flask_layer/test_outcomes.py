"""Every call counted exactly once, on every front end: one test per (front end, scenario).

A call to a cached function or view ends in one outcome (hit, miss, stale, coalesced,
pass, backend failure); ``cache.stats()`` must show exactly the calls made, each under
the outcome it had, whatever path the call took through the pipeline (fast hit path,
single-flight wait, fail-safe, "pass" marker, failing backend). The front ends are those
of the option matrix (``test_option_matrix.py``) plus async ``memoize``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_stash import Cache
from flask_stash.core import MemoryBackend
from flask_stash.core.flight import AsyncSingleFlight, SingleFlight
from flask_stash.core.report import ScopeFigures
from flask_stash.testing import FakeClock

from .envs import wait_until
from .test_fail_open import BrokenBackend
from .test_option_matrix import ACTIVE, BUILDERS, CONFIG_KEYS, Source, compute

Call = Callable[..., Any]


def _amemoize(app: Flask, cache: Cache, options: dict[str, Any], fn: Call) -> Call:
    async def acompute(variant: int) -> Any:
        return fn(variant)

    memoized = cache.memoize(**options)(acompute)

    def call(variant: int = 0, query: str = "") -> Any:
        with app.app_context():
            return asyncio.run(memoized(variant))

    return call


FRONTS = {**BUILDERS, "amemoize": _amemoize}


class Deployment:
    """One app with one cached front end over ``backend``; ``figures()`` is its total."""

    def __init__(self, front: str, backend: Any, **options: Any) -> None:
        self.app = Flask(f"outcomes_{front}")
        self.app.config["TESTING"] = True
        config: dict[str, Any] = {"CACHE_TYPE": lambda *_: backend}
        if front == "jinja":  # the tag takes these from the configuration only
            for option in [name for name in options if name in CONFIG_KEYS]:
                config[CONFIG_KEYS[option]] = options.pop(option)
        self.cache = Cache(self.app, config=config)
        self.call = FRONTS[front](self.app, self.cache, options, compute)

    def figures(self) -> ScopeFigures:
        with self.app.app_context():
            report = self.cache.stats()
        scopes = list(report.process.scopes.values())
        assert len(scopes) <= 1, scopes  # one cached function or view per deployment
        return report.process.total


def outcomes(figures: ScopeFigures) -> dict[str, int]:
    names = ("hits", "misses", "stale", "coalesced", "passes", "errors")
    return {name: getattr(figures, name) for name in names if getattr(figures, name)}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def source() -> Iterator[Source]:
    ACTIVE["source"] = Source()
    yield ACTIVE["source"]
    ACTIVE.pop("source", None)


# -- scenarios -------------------------------------------------------------------------------


def hit_and_miss(front: str, clock: FakeClock, source: Source) -> None:
    deployment = Deployment(front, MemoryBackend(clock=clock), timeout=10)
    for _ in range(3):
        assert deployment.call() == "v1"
    clock.advance(11)
    deployment.call()
    assert outcomes(deployment.figures()) == {"misses": 2, "hits": 2}
    assert deployment.figures().calls == 4


def stale(front: str, clock: FakeClock, source: Source) -> None:
    deployment = Deployment(front, MemoryBackend(clock=clock), timeout=10, stale=30)
    deployment.call()
    source.value = "v2"
    clock.advance(11)
    assert deployment.call() == "v1"  # stale, refreshed in the background (not a call)
    assert outcomes(deployment.figures()) == {"misses": 1, "stale": 1}
    assert wait_until(lambda: source.runs == 2), "the background refresh never ran"
    assert wait_until(lambda: deployment.call() == "v2")  # each poll a stale serve or a hit
    figures = deployment.figures()
    assert figures.misses == 1
    assert figures.stale >= 1
    assert figures.hits == 1
    assert outcomes(figures).keys() == {"misses", "stale", "hits"}


def fail_safe(front: str, clock: FakeClock, source: Source) -> None:
    deployment = Deployment(front, MemoryBackend(clock=clock), timeout=10, fail_safe=60)
    deployment.call()
    source.error = RuntimeError("upstream down")
    clock.advance(11)
    assert deployment.call() == "v1"  # the recomputation failed: the last good value
    assert outcomes(deployment.figures()) == {"misses": 1, "stale": 1}


def coalesced(front: str, clock: FakeClock, source: Source, waiters: int = 3) -> None:
    if front == "amemoize":
        return coalesced_tasks(clock, waiters)
    deployment = Deployment(front, MemoryBackend(clock=clock), timeout=60)
    source.gate = threading.Event()
    waiting = _count_waiters()
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(deployment.call()))]
    threads[0].start()
    assert source.entered.wait(5), "the first call never started computing"
    threads += [threading.Thread(target=lambda: results.append(deployment.call()))
                for _ in range(waiters)]  # fmt: skip
    for thread in threads[1:]:
        thread.start()
    try:
        assert wait_until(lambda: waiting[0] == waiters), "the callers never waited"
    finally:
        source.gate.set()
        for thread in threads:
            thread.join(10)
    assert results == ["v1"] * (waiters + 1)
    assert source.runs == 1
    assert outcomes(deployment.figures()) == {"misses": 1, "coalesced": waiters}


def coalesced_tasks(clock: FakeClock, waiters: int) -> None:
    """Async callers coalesce within their event loop: tasks wait for the first one."""
    app = Flask("outcomes_tasks")
    cache = Cache(app, config={"CACHE_TYPE": lambda *_: MemoryBackend(clock=clock)})
    runs = [0]
    waiting = _count_waiters(AsyncSingleFlight)

    async def main() -> list[str]:
        gate = asyncio.Event()

        @cache.memoize(60)
        async def slow() -> str:
            runs[0] += 1
            await gate.wait()
            return "v1"

        tasks = [asyncio.create_task(slow()) for _ in range(waiters + 1)]
        while waiting[0] < waiters:
            await asyncio.sleep(0)  # each task runs to its wait; the loop is ours
        gate.set()
        return await asyncio.gather(*tasks)

    with app.app_context():
        assert asyncio.run(asyncio.wait_for(main(), 10)) == ["v1"] * (waiters + 1)
        figures = cache.stats().process.total
    assert runs == [1]
    assert outcomes(figures) == {"misses": 1, "coalesced": waiters}


def refused(front: str, clock: FakeClock, source: Source) -> None:
    deployment = Deployment(front, MemoryBackend(clock=clock), timeout=60,
                            response_filter=lambda value: False)  # fmt: skip
    for _ in range(3):
        assert deployment.call() == "v1"
    assert source.runs == 3
    assert outcomes(deployment.figures()) == {"passes": 3}


def backend_failed(front: str, clock: FakeClock, source: Source) -> None:
    deployment = Deployment(front, BrokenBackend(), timeout=60)
    for _ in range(2):
        assert deployment.call() == "v1"
    assert outcomes(deployment.figures()) == {"errors": 2}


SCENARIOS = {
    "hit_and_miss": hit_and_miss,
    "stale": stale,
    "fail_safe": fail_safe,
    "coalesced": coalesced,
    "refused": refused,
    "backend_failed": backend_failed,
}
#: Cells that do not exist: the tag has no response_filter.
ABSENT = {("jinja", "refused")}


CELLS = [(front, scenario) for front in FRONTS for scenario in SCENARIOS
         if (front, scenario) not in ABSENT]  # fmt: skip


@pytest.mark.parametrize(("front", "scenario"), CELLS)
def test_each_call_is_one_outcome(
    front: str, scenario: str, clock: FakeClock, source: Source
) -> None:
    SCENARIOS[scenario](front, clock, source)


def _count_waiters(flights: type[Any] = SingleFlight) -> list[int]:
    """Counts callers that found another's computation in flight (they wait for it)."""
    waiting = [0]
    begin = flights.begin

    def counting(self: Any, key: str) -> Any:
        flight, leads = begin(self, key)
        if not leads:
            waiting[0] += 1
        return flight, leads

    flights.begin = counting
    _restore.append(lambda: setattr(flights, "begin", begin))
    return waiting


_restore: list[Callable[[], None]] = []


@pytest.fixture(autouse=True)
def _restore_patches() -> Iterator[None]:
    yield
    while _restore:
        _restore.pop()()


# -- views: what the HTTP layer adds ----------------------------------------------------------


def _view_app() -> tuple[Flask, Cache]:
    app = Flask("outcomes_views")
    return app, Cache(app, config={"CACHE_TYPE": "SimpleCache"})


def _view_figures(app: Flask, cache: Cache, scope: str) -> dict[str, int]:
    with app.app_context():
        return outcomes(cache.stats().process.scopes[scope])


def test_a_view_with_vary_counts_each_request_once() -> None:
    app, cache = _view_app()

    @app.get("/hello")
    @cache.cached(60)
    def hello() -> Any:
        return "hello", {"Vary": "Accept-Language"}

    client = app.test_client()
    for language in ("en", "fr", "en"):  # two variants computed, one served from the cache
        client.get("/hello", headers={"Accept-Language": language})
    assert _view_figures(app, cache, "hello") == {"misses": 2, "hits": 1}


def test_a_view_response_that_sets_a_cookie_is_a_pass() -> None:
    app, cache = _view_app()

    @app.get("/login")
    @cache.cached(60)
    def login() -> Any:
        return "welcome", {"Set-Cookie": "session=1"}

    client = app.test_client()
    for _ in range(2):
        client.get("/login")
    assert _view_figures(app, cache, "login") == {"passes": 2}


def test_head_and_conditional_requests_count_as_the_call_they_are() -> None:
    app, cache = _view_app()

    @app.get("/page")
    @cache.cached(60)
    def page() -> Any:
        return "page"

    client = app.test_client()
    assert client.head("/page").status_code == 200  # computed, not stored (HEAD)
    etag = client.get("/page").headers["ETag"]  # computed and stored
    assert client.get("/page", headers={"If-None-Match": etag}).status_code == 304  # a hit
    assert _view_figures(app, cache, "page") == {"misses": 2, "hits": 1}


def test_scopes_are_named_after_endpoints_and_functions() -> None:
    app, cache = _view_app()

    def build() -> Callable[[int], int]:
        @cache.memoize(60)
        def square(n: int) -> int:
            return n * n

        return square

    square = build()

    @app.get("/report", endpoint="report_page")
    @cache.cached(60)
    def report() -> str:
        with app.app_context():
            return str(square(3))

    app.test_client().get("/report")
    with app.app_context():
        scopes = cache.stats().process.scopes
    name = f"{__name__}.test_scopes_are_named_after_endpoints_and_functions.build.square"
    assert {scope: figures.kind for scope, figures in scopes.items()} == {
        "report_page": "view",
        name: "memoize",
    }

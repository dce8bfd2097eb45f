"""Issue 10's bullets about depth, invalidation, cancellation, per-name state and entry kinds
(the Flask layer; see ``test_pipeline_bugs.py`` for the others, ``tests/core/`` for the
engine alone). Public API only."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, Response

from flask_stash import Cache

from ..core.depth import stack_depth, without_overflow
from .envs import Env, env_fixture  # noqa: F401

FRAMES_PER_LEVEL = 4
DEEP = 300


# -- "a recursive memoized function overflows the stack early" -----------------------------


def _memoized_fib(cache: Cache, depths: dict[int, int]) -> Callable[[int], int]:
    @cache.memoize(timeout=600)
    def fib(n: int) -> int:
        if n in (10, 9):
            depths[n] = stack_depth()
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    return fib


def test_memoized_recursion_costs_few_frames_per_level(env: Env) -> None:
    app, cache = env.app()
    depths: dict[int, int] = {}
    fib = _memoized_fib(cache, depths)
    with app.app_context():
        assert fib(12) == 144  # cold: fib(10) calls fib(9) through a miss
    assert depths[9] - depths[10] <= FRAMES_PER_LEVEL, f"{depths[9] - depths[10]} frames a level"


# The overflow of the old code can leave a Redis connection to be collected later: its
# ResourceWarning would be reported against whichever test runs next, not this one.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_cold_memoized_fib_300_at_the_default_recursion_limit(env: Env) -> None:
    """A plain ``fib(300)`` needs 300 frames; memoized, it must still fit in the default
    limit of 1000 (pytest's own stack takes some 50 of them)."""
    assert sys.getrecursionlimit() == 1000
    app, cache = env.app()
    fib = _memoized_fib(cache, {})

    def cold_fib() -> int:
        with app.app_context():
            return fib(DEEP)

    assert (
        without_overflow(cold_fib)
        == 222232244629420445529739893461909967206666939096499764990979600
    )


# -- "delete_memoized(f) while the very first computation of f is running" -----------------

INVALIDATIONS: dict[str, Callable[[Cache, Any], None]] = {
    "delete_memoized(f)": lambda cache, f: cache.delete_memoized(f),
    "delete_memoized(f, 1)": lambda cache, f: cache.delete_memoized(f, 1),
    "delete(key)": lambda cache, f: cache.delete(f.make_cache_key(f.uncached, 1)),
    "clear()": lambda cache, f: cache.clear(),
}


@pytest.mark.parametrize("invalidate", INVALIDATIONS)
def test_invalidation_during_the_first_computation_wins(env: Env, invalidate: str) -> None:
    app, cache = env.app()
    entered, release = threading.Event(), threading.Event()
    runs: list[int] = []

    @cache.memoize(timeout=600)
    def report(x: int) -> str:
        runs.append(x)
        entered.set()
        release.wait(10)
        return f"report #{len(runs)}"

    def first_call() -> None:
        with app.app_context():
            report(1)

    computing = threading.Thread(target=first_call)
    computing.start()
    assert entered.wait(10)
    with app.app_context():
        INVALIDATIONS[invalidate](cache, report)
    release.set()
    computing.join(10)
    with app.app_context():
        assert report(1) == "report #2", "a value computed before the invalidation was served"


# -- "async: cancelling the task that leads a shared computation cancels its waiters" -------


def test_cancelling_the_leader_does_not_cancel_its_waiters() -> None:
    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    entered, release = asyncio.Event(), asyncio.Event()
    runs: list[int] = []

    @cache.memoize(timeout=60)
    async def quote() -> str:
        runs.append(1)
        entered.set()
        await release.wait()
        return f"quote #{len(runs)}"

    async def scenario() -> str:
        with app.app_context():
            leader = asyncio.create_task(quote())
            await entered.wait()
            waiter = asyncio.create_task(quote())
            for _ in range(5):  # let the waiter reach its wait on the leader
                await asyncio.sleep(0)
            assert runs == [1], "the second caller must wait for the first"
            leader.cancel()
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await leader
            return await asyncio.wait_for(waiter, 5)

    assert asyncio.run(scenario()).startswith("quote #")


# -- "make_name over many names keeps one helper object per name" --------------------------

NAMES = 20_000
# Bound: 5 MB over 20,000 names is 250 bytes a name, far less than one helper object per
# name (the issue measured about 2.4 KB each: 118 MB for 50,000), far more than a bounded
# design needs (the memory backend keeps at most CACHE_THRESHOLD=500 entries, and a
# bounded map of helpers is a fixed size whatever the number of names).
GROWTH_BOUND = 5 * 1024 * 1024


def test_make_name_over_many_names_keeps_memory_bounded() -> None:
    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    user = [0]

    @cache.memoize(timeout=600, make_name=lambda name: f"{name}:{user[0]}")
    def greeting() -> str:
        return f"hello {user[0]}"

    def calls(first: int, count: int) -> None:
        for number in range(first, first + count):
            user[0] = number
            assert greeting() == f"hello {number}"

    with app.app_context():
        calls(0, 2_000)  # warm up: the backend full at its threshold, every path taken
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            calls(2_000, NAMES)
            gc.collect()
            growth = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert growth < GROWTH_BOUND, f"{growth / 2**20:.1f} MB for {NAMES} names"


# -- "an entry of the wrong kind is a miss, never a 500" -----------------------------------


def _page_app(env: Env, signed: bool) -> tuple[Flask, Cache]:
    app, cache = env.app(secret="test-secret-key-of-some-length" if signed else None)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        return "the page"

    return app, cache


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_a_plain_value_under_a_views_key_is_a_miss(env: Env, signed: bool) -> None:
    app, cache = _page_app(env, signed)
    with app.app_context():
        cache.set("view//page", "a plain value")  # the view's default key
    answer = app.test_client().get("/page")
    assert (answer.status_code, answer.text) == (200, "the page")


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_a_stored_response_under_a_functions_key_is_a_miss(env: Env, signed: bool) -> None:
    app, cache = _page_app(env, signed)
    assert app.test_client().get("/page").text == "the page"  # stores a response

    @cache.cached(timeout=60, key_prefix="view//page")
    def menu() -> str:
        return "the menu"

    with app.test_request_context("/elsewhere"):
        value = menu()
    assert not isinstance(value, Response)
    assert value == "the menu"

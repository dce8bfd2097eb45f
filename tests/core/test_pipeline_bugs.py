"""Issue 10's bullets that need no Flask: the engine's ``memoize`` and ``get_or_compute``
over memory, filesystem and Redis stores, built from ``flask_stash.core``'s public names."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flask_stash.core import Store, aget_or_compute, create_backend, get_or_compute, memoize

from .. import servers
from .depth import stack_depth, without_overflow

FRAMES_PER_LEVEL = 4
FIB_300 = 222232244629420445529739893461909967206666939096499764990979600


@pytest.fixture(params=["memory", "filesystem", pytest.param("redis", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        backend = create_backend("memory")
    elif request.param == "filesystem":
        backend = create_backend(f"file://{tmp_path / 'cache'}")
    else:
        server: servers.Server = request.getfixturevalue("redis_single")
        backend = create_backend(f"redis://{server.address}/0")
    made = Store(backend, key_prefix=f"core{time.monotonic_ns()}:")
    yield made
    made.close()


# -- "two concurrent callers sharing one computation get the same mutable object" ------------


@pytest.mark.parametrize("front", ["memoize", "get_or_compute"])
def test_concurrent_callers_each_get_their_own_object(store: Store, front: str) -> None:
    entered, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def numbers() -> list[int]:
        runs.append(1)
        entered.set()
        release.wait(10)
        return [1, 2]

    call = (
        memoize(store, 60)(numbers)
        if front == "memoize"
        else lambda: get_or_compute(store, "numbers", numbers, 60)
    )
    results: dict[str, list[int]] = {}
    threads = {
        name: threading.Thread(target=lambda name=name: results.update({name: call()}))
        for name in ("leader", "waiter")
    }
    threads["leader"].start()
    assert entered.wait(10)
    threads["waiter"].start()
    time.sleep(0.2)  # time for the waiter to reach its wait on the leader's computation
    assert runs == [1], "the second caller must wait for the first, not compute"
    assert threads["waiter"].is_alive(), "the second caller must wait for the first"
    release.set()
    for thread in threads.values():
        thread.join(10)
    results["leader"].append(99)
    assert results["waiter"] == [1, 2]


# -- "a recursive memoized function overflows the stack early" -----------------------------


def _fib(store: Store, depths: dict[int, int]) -> Callable[[int], int]:
    @memoize(store, 600)
    def fib(n: int) -> int:
        if n in (10, 9):
            depths[n] = stack_depth()
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    return fib


def test_memoized_recursion_costs_few_frames_per_level(store: Store) -> None:
    depths: dict[int, int] = {}
    assert _fib(store, depths)(12) == 144
    assert depths[9] - depths[10] <= FRAMES_PER_LEVEL, f"{depths[9] - depths[10]} frames a level"


# The overflow of the old code can leave a Redis connection to be collected later: its
# ResourceWarning would be reported against whichever test runs next, not this one.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_cold_memoized_fib_300_at_the_default_recursion_limit(store: Store) -> None:
    assert sys.getrecursionlimit() == 1000
    assert without_overflow(lambda: _fib(store, {})(300)) == FIB_300


# -- "invalidation issued while the very first computation runs" -------------------------


def test_invalidate_all_during_the_first_computation_wins(store: Store) -> None:
    entered, release = threading.Event(), threading.Event()
    runs: list[int] = []

    @memoize(store, 600)
    def report(x: int) -> str:
        runs.append(x)
        entered.set()
        release.wait(10)
        return f"report #{len(runs)}"

    computing = threading.Thread(target=report, args=(1,))
    computing.start()
    assert entered.wait(10)
    report.invalidate_all()  # type: ignore[attr-defined]
    release.set()
    computing.join(10)
    assert report(1) == "report #2", "a value computed before the invalidation was served"


# -- "async: cancelling the task that leads a shared computation cancels its waiters" -------


@pytest.mark.parametrize("front", ["memoize", "aget_or_compute"])
def test_cancelling_the_leader_does_not_cancel_its_waiters(store: Store, front: str) -> None:
    runs: list[int] = []

    async def scenario() -> str:
        entered, release = asyncio.Event(), asyncio.Event()

        async def quote() -> str:
            runs.append(1)
            entered.set()
            await release.wait()
            return f"quote #{len(runs)}"

        memoized = memoize(store, 60)(quote)

        async def call() -> str:
            if front == "memoize":
                return await memoized()
            return await aget_or_compute(store, "quote", quote, 60)

        leader = asyncio.create_task(call())
        await entered.wait()
        waiter = asyncio.create_task(call())
        for _ in range(5):  # let the waiter reach its wait on the leader
            await asyncio.sleep(0)
        assert runs == [1], "the second caller must wait for the first"
        leader.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await leader
        return await asyncio.wait_for(waiter, 5)

    assert asyncio.run(scenario()).startswith("quote #")

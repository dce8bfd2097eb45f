"""Stampede protection, stale-while-revalidate, early refresh, fail-safe and jitter.

Deterministic: barriers and counters instead of sleeps, a fake clock for time, and the
store's ``sleep``/``monotonic`` replaced so that waiting for a lock moves the fake clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from flask_stash.core.api import MISS, Backend
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.memoize import memoize
from flask_stash.core.pipeline import get_or_compute
from flask_stash.core.stampede import Protection
from flask_stash.core.store import Store
from flask_stash.testing import CountingBackend, FakeClock

from .. import servers

CALLERS = 32


class ManualExecutor:
    """Collects background refreshes; the test runs them when it wants."""

    def __init__(self) -> None:
        self.jobs: list[Callable[[], None]] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[None]:
        self.jobs.append(lambda: fn(*args))
        return Future()

    def run_all(self) -> int:
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            job()
        return len(jobs)


def fake_time(store: Store, clock: FakeClock) -> None:
    """Waiting for a lock advances the fake clock instead of sleeping."""
    store.stampede.monotonic = clock
    store.stampede.sleep = clock.advance  # type: ignore[assignment]


def wait_until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.001)


@pytest.fixture
def entered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Keys of the calls that reached single-flight, so a leader can wait for all callers."""
    from flask_stash.core.flight import SingleFlight

    calls: list[str] = []
    original = SingleFlight.begin

    def counted(self: SingleFlight, key: str) -> Any:
        calls.append(key)
        return original(self, key)

    monkeypatch.setattr(SingleFlight, "begin", counted)
    return calls


def run_concurrently(count: int, fn: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = fn()
        except Exception as exc:  # collected: the test inspects it
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


# -- single-flight in one process ---------------------------------------------------------


@pytest.mark.parametrize("protected", [True, False])
def test_concurrent_misses_compute_once(protected: bool, entered: list[str]) -> None:
    counting = CountingBackend(MemoryBackend())
    store = Store(counting)
    executions: list[int] = []

    @memoize(store, 60, protect=Protection(single_flight=protected))
    def slow(x: int) -> int:
        executions.append(x)
        # Every caller has missed (and, when protected, joined the flight) before the
        # first computation ends.
        if protected:
            wait_until(lambda: len(entered) >= CALLERS)
        else:
            wait_until(lambda: counting.calls.count("get") >= CALLERS)
        return x * 2

    results = run_concurrently(CALLERS, lambda: slow(21))
    assert results == [42] * CALLERS
    assert len(executions) == (1 if protected else CALLERS)
    assert len(store.stampede.flights) == 0  # no per-key state left behind


def test_waiters_share_the_exception_and_nothing_is_cached(entered: list[str]) -> None:
    counting = CountingBackend(MemoryBackend())
    store = Store(counting)
    executions: list[int] = []

    def failing() -> int:
        executions.append(1)
        wait_until(lambda: len(entered) >= CALLERS)  # every caller waits on this flight
        raise RuntimeError("database down")

    def call() -> int:
        return get_or_compute(store, "report", failing, 60)

    results = run_concurrently(CALLERS, call)
    assert len(executions) == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "database down" for r in results)
    assert store.get("report") is MISS
    assert get_or_compute(store, "report", lambda: 7, 60) == 7


def test_views_run_once_for_concurrent_misses() -> None:
    from flask import Flask

    from flask_stash import Cache

    app = Flask(__name__)
    cache = Cache(app)
    runs: list[int] = []
    started = threading.Event()
    release = threading.Event()

    @app.get("/slow")
    @cache.cached(timeout=60)
    def slow() -> str:
        runs.append(1)
        started.set()
        release.wait(10)
        return "done"

    results: list[str] = []

    def request() -> None:
        results.append(app.test_client().get("/slow").text)

    first = threading.Thread(target=request)
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=request) for _ in range(7)]
    for thread in others:
        thread.start()
    wait_until(lambda: all(t.is_alive() for t in others))
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert results == ["done"] * 8
    assert len(runs) == 1


# -- across processes: the backend lock ---------------------------------------------------


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    return tmp_path / "shared"


def fs_store(path: Path, clock: FakeClock) -> Store:
    """One "process": its own store (and single-flight) over the shared directory."""
    store = Store(FileSystemBackend(str(path), threshold=0, clock=clock), clock=clock)
    fake_time(store, clock)
    return store


def test_waiter_uses_the_holders_entry(shared_dir: Path, clock: FakeClock) -> None:
    holder, waiter = fs_store(shared_dir, clock), fs_store(shared_dir, clock)
    protect = Protection(lock_lease=30, lock_wait=10)
    lock = holder.backend_key("report") + ":lock"
    assert holder.backend.acquire_lock(lock, "holder", 30)  # type: ignore[attr-defined]
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # the holder finishes while the waiter polls
        polls.append(seconds)
        clock.advance(seconds)
        if len(polls) == 3:
            holder.set("report", "from the holder", 60)

    waiter.stampede.sleep = sleep  # type: ignore[assignment]
    value = get_or_compute(waiter, "report", lambda: "computed twice!", 60, protect=protect)
    assert value == "from the holder"
    assert waiter.stats.get("lock_waits") == 1


def test_dead_holder_is_taken_over_after_its_lease(shared_dir: Path, clock: FakeClock) -> None:
    waiter = fs_store(shared_dir, clock)
    protect = Protection(lock_lease=5, lock_wait=60)
    lock = waiter.backend_key("report") + ":lock"
    assert waiter.backend.acquire_lock(lock, "dead process", 5)  # type: ignore[attr-defined]
    start = clock()
    assert get_or_compute(waiter, "report", lambda: "fresh", 60, protect=protect) == "fresh"
    assert 5 <= clock() - start < 6  # took over once the lease ran out, not before
    assert waiter.get("report") == "fresh"


def test_waiting_is_bounded_then_the_caller_computes(shared_dir: Path, clock: FakeClock) -> None:
    waiter = fs_store(shared_dir, clock)
    protect = Protection(lock_lease=3600, lock_wait=2)
    lock = waiter.backend_key("report") + ":lock"
    assert waiter.backend.acquire_lock(lock, "slow process", 3600)  # type: ignore[attr-defined]
    start = clock()
    assert get_or_compute(waiter, "report", lambda: "own", 60, protect=protect) == "own"
    assert clock() - start < 2.2  # never a hang: at most lock_wait (plus one poll)


# -- the TTL edge --------------------------------------------------------------------------


@pytest.fixture(params=["memory", "filesystem", "redis", "memcached"])
def edge_store(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> Iterator[Store]:
    backend: Backend
    if request.param == "memory":
        backend = MemoryBackend(clock=clock)
    elif request.param == "filesystem":
        backend = FileSystemBackend(str(tmp_path / "c"), clock=clock)
    elif request.param == "redis":
        from flask_stash.core.backends.redis import RedisBackend

        server = request.getfixturevalue("redis_single")
        backend = RedisBackend(f"redis://{server.address}/0", namespace="edge:")
    else:
        from flask_stash.core.backends.memcached import MemcachedBackend

        nodes = request.getfixturevalue("memcached_pair")
        backend = MemcachedBackend([nodes[0].address])
    store = Store(backend, clock=clock, key_prefix=f"edge{time.monotonic_ns()}:")
    store.stampede.executor = ManualExecutor()  # type: ignore[assignment]
    fake_time(store, clock)
    yield store
    store.close()


def test_stale_window_serves_at_once_and_refreshes_once(
    edge_store: Store, clock: FakeClock
) -> None:
    executor: ManualExecutor = edge_store.stampede.executor  # type: ignore[assignment]
    versions = iter(["v1", "v2", "v3"])
    protect = Protection(stale=30)

    def read() -> str:
        return get_or_compute(edge_store, "page", lambda: next(versions), 10, protect=protect)

    assert read() == "v1"
    clock.advance(11)  # past the timeout, inside the stale window
    assert [read() for _ in range(CALLERS)] == ["v1"] * CALLERS  # nobody waits
    assert len(executor.jobs) == 1  # exactly one refresh for 32 stale reads
    assert edge_store.stats.get("stale_serves") == CALLERS
    assert executor.run_all() == 1
    assert read() == "v2"
    clock.advance(41)  # past the stale window too: a plain miss
    assert read() == "v3"


def test_fail_safe_keeps_the_last_good_value(edge_store: Store, clock: FakeClock) -> None:
    executor: ManualExecutor = edge_store.stampede.executor  # type: ignore[assignment]
    protect = Protection(stale=5, fail_safe=60)
    state = {"fail": False}

    def compute() -> str:
        if state["fail"]:
            raise RuntimeError("upstream down")
        return "good"

    def read() -> str:
        return get_or_compute(edge_store, "k", compute, 10, protect=protect)

    assert read() == "good"
    state["fail"] = True
    clock.advance(11)
    assert read() == "good"  # stale, refresh scheduled
    executor.run_all()  # the refresh fails: logged and counted, the old value stays
    clock.advance(10)  # past the stale window, inside the fail-safe
    assert read() == "good"
    assert edge_store.stats.get("fail_safe_serves") >= 1
    clock.advance(60)
    with pytest.raises(RuntimeError, match="upstream down"):
        read()


def test_early_refresh_refreshes_hot_keys_before_expiry(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(MemoryBackend(clock=clock), clock=clock)
    executor = ManualExecutor()
    store.stampede.executor = executor  # type: ignore[assignment]
    protect = Protection(early_refresh=1.0)
    cost = {"seconds": 0.0}

    def compute() -> str:
        cost["seconds"] += 1
        clock_before = time.perf_counter()
        while time.perf_counter() - clock_before < 0.002:  # a measurable compute time
            pass
        return f"v{int(cost['seconds'])}"

    assert get_or_compute(store, "hot", compute, 10, protect=protect) == "v1"
    monkeypatch.setattr("flask_stash.core.decisions.random.random", lambda: 0.5)
    clock.advance(5)  # far from expiry: -cost*ln(0.5) is milliseconds
    assert get_or_compute(store, "hot", compute, 10, protect=protect) == "v1"
    assert executor.jobs == []
    clock.advance(4.9999)  # within the last fraction of a millisecond-scale cost
    monkeypatch.setattr("flask_stash.core.decisions.random.random", lambda: 1e-200)
    assert get_or_compute(store, "hot", compute, 10, protect=protect) == "v1"
    assert executor.run_all() == 1
    assert store.stats.get("early_refreshes") == 1
    assert get_or_compute(store, "hot", compute, 10, protect=protect) == "v2"


def test_jitter_spreads_expiries(clock: FakeClock) -> None:
    store = Store(MemoryBackend(threshold=0, clock=clock), clock=clock)
    protect = Protection(jitter=0.5)
    for i in range(200):
        get_or_compute(store, f"k{i}", lambda: 1, 100, protect=protect)
    clock.advance(75)
    alive = sum(store.get(f"k{i}") is not MISS for i in range(200))
    assert 0 < alive < 200  # some expired early, none outlived the timeout
    clock.advance(26)
    assert all(store.get(f"k{i}") is MISS for i in range(200))


def test_bad_protection_values_are_rejected() -> None:
    for bad in ({"stale": -1}, {"jitter": 1.5}, {"lock_lease": 0}, {"fail_safe": "x"}):
        with pytest.raises(ValueError):
            Protection(**bad)  # type: ignore[arg-type]


def test_flask_settings_configure_protection(clock: FakeClock) -> None:
    from flask import Flask

    from flask_stash import Cache
    from flask_stash.core.errors import ConfigurationError

    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_DEFAULT_STALE": 30, "CACHE_OPTIONS": {"clock": clock}})
    executor = ManualExecutor()
    with app.app_context():
        cache.store.stampede.executor = executor  # type: ignore[assignment]
    values = iter(["old", "new"])

    @cache.memoize(timeout=10)
    def page() -> str:
        return next(values)

    with app.app_context():
        assert page() == "old"
        clock.advance(11)
        assert page() == "old"
        assert len(executor.jobs) == 1
    with pytest.raises(ConfigurationError, match="stampede"):
        Cache(Flask(__name__), config={"CACHE_TTL_JITTER": 3})
    with pytest.raises(ValueError, match="stale"):
        cache.memoize(stale=-1)


def test_redis_lock_runs_the_function_once_across_stores(
    redis_single: servers.Server, clock: FakeClock
) -> None:
    """Two stores (two "processes") on one Redis: one computation for both."""
    from flask_stash.core.backends.redis import RedisBackend

    url = f"redis://{redis_single.address}/0"
    stores = [Store(RedisBackend(url), key_prefix="cross:") for _ in range(2)]
    stores[0].delete("report")
    executions: list[int] = []
    holder_started, release = threading.Event(), threading.Event()

    def slow() -> str:
        executions.append(1)
        holder_started.set()
        release.wait(10)
        return "once"

    first = threading.Thread(target=lambda: get_or_compute(stores[0], "report", slow, 60))
    first.start()
    assert holder_started.wait(10)
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # the holder finishes while the other waits
        polls.append(seconds)
        if len(polls) == 2:
            release.set()
            first.join(10)

    stores[1].stampede.sleep = sleep  # type: ignore[assignment]
    assert get_or_compute(stores[1], "report", slow, 60) == "once"
    assert executions == [1]
    for store in stores:
        store.close()


def test_views_serve_stale_and_refresh_in_the_background(clock: FakeClock) -> None:
    from flask import Flask

    from flask_stash import Cache

    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}, "CACHE_VIEW_X_CACHE": True})
    executor = ManualExecutor()
    with app.app_context():
        cache.store.stampede.executor = executor  # type: ignore[assignment]
    versions = iter(["v1", "v2"])

    @app.get("/news")
    @cache.cached(timeout=10, stale=30)
    def news() -> str:
        return next(versions)

    client = app.test_client()
    assert client.get("/news").text == "v1"
    clock.advance(11)
    stale = [client.get("/news") for _ in range(5)]
    assert [r.text for r in stale] == ["v1"] * 5
    assert {r.headers["X-Cache"] for r in stale} == {"STALE"}
    assert len(executor.jobs) == 1  # one background re-run of the view for five requests
    executor.run_all()
    fresh = client.get("/news")
    assert (fresh.text, fresh.headers["X-Cache"]) == ("v2", "HIT")
    with pytest.raises(ValueError, match="stale"):
        cache.cached(stale=-1)


# -- coroutines -------------------------------------------------------------------------


def test_async_misses_compute_once_per_loop() -> None:
    import asyncio

    store = Store(MemoryBackend())
    executions: list[int] = []

    @memoize(store, 60)
    async def slow(x: int) -> int:
        executions.append(x)
        await asyncio.sleep(0.01)  # yields: the other 31 callers arrive meanwhile
        return x * 2

    async def main() -> list[int]:
        return await asyncio.gather(*(slow(21) for _ in range(CALLERS)))

    assert asyncio.run(main()) == [42] * CALLERS
    assert executions == [21]


def test_async_waits_for_another_process_holding_the_lock(
    shared_dir: Path, clock: FakeClock
) -> None:
    import asyncio

    from flask_stash.core.pipeline import aget_or_compute

    holder, waiter = fs_store(shared_dir, clock), fs_store(shared_dir, clock)
    lock = holder.backend_key("report") + ":lock"
    assert holder.backend.acquire_lock(lock, "holder", 30)  # type: ignore[attr-defined]
    polls: list[float] = []
    original_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        polls.append(seconds)
        clock.advance(seconds)
        if len(polls) == 2:
            holder.set("report", "from the holder", 60)
        await original_sleep(0)

    async def compute() -> str:
        return "computed twice!"

    async def main() -> str:
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            return await aget_or_compute(waiter, "report", compute, 60)
        finally:
            asyncio.sleep = original_sleep

    assert asyncio.run(main()) == "from the holder"


def test_async_stale_window_refreshes_in_a_task(clock: FakeClock) -> None:
    import asyncio

    store = Store(MemoryBackend(clock=clock), clock=clock)
    versions = iter(["v1", "v2"])

    @memoize(store, 10, protect=Protection(stale=30))
    async def page() -> str:
        return next(versions)

    async def main() -> list[str]:
        first = await page()
        clock.advance(11)
        stale = await page()  # served at once; the refresh runs as a task
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return [first, stale, await page()]

    assert asyncio.run(main()) == ["v1", "v1", "v2"]
    assert store.stats.get("stale_serves") == 1


def test_async_forced_update_recomputes_even_when_fresh() -> None:
    import asyncio

    from flask import Flask

    from flask_stash import Cache

    app = Flask(__name__)
    cache = Cache(app)
    force = {"on": False}
    runs: list[int] = []

    @cache.memoize(timeout=60, forced_update=lambda: force["on"])
    async def value() -> int:
        runs.append(1)
        return len(runs)

    async def main() -> list[int]:
        with app.app_context():
            first, again = await value(), await value()
            force["on"] = True
            return [first, again, await value()]

    assert asyncio.run(main()) == [1, 1, 2]


def test_refreshes_stuck_on_one_store_do_not_hold_up_another() -> None:
    stuck, other = Store(MemoryBackend()), Store(MemoryBackend())
    release = threading.Event()
    try:
        for _ in range(8):  # more than a pool's workers, all blocked
            stuck.stampede.run_in_background(lambda: release.wait(10))
        ran = threading.Event()
        other.stampede.run_in_background(ran.set)
        assert ran.wait(5), "the other store's background work waited for the stuck one's"
    finally:
        release.set()

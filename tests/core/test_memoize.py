from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flask_stash.core.api import MISS
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.memoize import memo_spec, memoize
from flask_stash.core.pipeline import get_or_compute
from flask_stash.core.stamps import LocalStamps
from flask_stash.core.stats import HIT, MISS_EVENT
from flask_stash.core.store import Store
from flask_stash.testing import FakeClock

from .test_store import BrokenBackend


@pytest.fixture
def store(clock: FakeClock) -> Store:
    return Store(MemoryBackend(threshold=0, clock=clock), clock=clock)


def test_one_computation_per_argument_set(store: Store) -> None:
    runs: list[tuple[int, int]] = []

    @memoize(store, 60)
    def add(a: int, b: int = 0) -> int:
        runs.append((a, b))
        return a + b

    assert add(2, 3) == add(2, 3) == add(a=2, b=3) == 5
    assert add(10, 1) == 11
    assert add(4) == add(4, 0) == 4
    assert runs == [(2, 3), (10, 1), (4, 0)]
    assert store.stats.get(HIT, memo_spec(add).name) == 3
    assert store.stats.get(MISS_EVENT) == 3


def test_timeout_expires_entries(store: Store, clock: FakeClock) -> None:
    runs: list[int] = []

    @memoize(store, 10)
    def value() -> int:
        runs.append(1)
        return len(runs)

    assert value() == 1
    clock.advance(9)
    assert value() == 1
    clock.advance(2)
    assert value() == 2


def test_signature_and_metadata_are_preserved(store: Store) -> None:
    def original(a: int, *, b: str = "x") -> str:
        """Docs."""
        return f"{a}{b}"

    wrapped = memoize(store)(original)
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert wrapped.__doc__ == "Docs."
    assert wrapped.__name__ == "original"
    assert wrapped.uncached is original  # type: ignore[attr-defined]


def test_cached_none_and_falsy_results_are_hits(store: Store) -> None:
    runs: list[object] = []

    @memoize(store)
    def echo(value: object) -> object:
        runs.append(value)
        return value

    for value in [None, 0, "", False]:
        echo(value)
        echo(value)
    assert runs == [None, 0, "", False]


def test_exceptions_propagate_and_nothing_is_cached(store: Store) -> None:
    runs: list[int] = []

    @memoize(store)
    def flaky(x: int) -> int:
        runs.append(x)
        if len(runs) == 1:
            raise RuntimeError("boom")
        return x

    with pytest.raises(RuntimeError, match="boom"):
        flaky(1)
    assert flaky(1) == 1
    assert flaky(1) == 1
    assert runs == [1, 1]


def test_cache_if_decides_what_is_stored(store: Store) -> None:
    runs: list[int] = []

    @memoize(store, cache_if=lambda result: result is not None)
    def find(x: int) -> int | None:
        runs.append(x)
        return None if x < 0 else x

    find(-1)
    find(-1)
    find(1)
    find(1)
    assert runs == [-1, -1, 1]


def test_invalidate_one_call_and_all_calls(store: Store) -> None:
    runs: list[int] = []

    @memoize(store)
    def square(x: int) -> int:
        runs.append(x)
        return x * x

    square(1)
    square(2)
    assert square.invalidate(1)  # type: ignore[attr-defined]
    square(1)
    square(2)
    assert runs == [1, 2, 1]
    square.invalidate_all()  # type: ignore[attr-defined]
    square(1)
    square(2)
    assert runs == [1, 2, 1, 1, 2]


def test_evicted_version_stamp_never_resurrects_old_entries(
    clock: FakeClock, tmp_path: Path
) -> None:
    backend = FileSystemBackend(str(tmp_path), clock=clock)  # stamps live in the backend
    store = Store(backend, clock=clock)
    runs: list[int] = []

    @memoize(store)
    def value() -> int:
        runs.append(1)
        return len(runs)

    assert value() == 1
    backend.delete(memo_spec(value).version_key)  # as an LRU eviction would
    assert value() == 2


def test_a_stamp_dropped_from_a_full_local_table_invalidates_its_family(
    clock: FakeClock,
) -> None:
    backend = MemoryBackend(clock=clock)
    backend.local_stamps = LocalStamps(limit=2)
    store = Store(backend, clock=clock)
    runs: list[str] = []

    def counted(name: str) -> Callable[[], str]:
        def compute() -> str:
            runs.append(name)
            return name

        compute.__qualname__ = name
        return memoize(store)(compute)

    first, second, third = counted("first"), counted("second"), counted("third")
    assert [first(), second(), first()] == ["first", "second", "first"]
    assert runs == ["first", "second"]
    third()  # a third stamp: the oldest (first's) goes
    assert len(backend.local_stamps) == 2
    assert first() == "first"
    assert runs == ["first", "second", "third", "first"]  # recomputed, never resurrected
    assert third() == "third"
    assert runs[-1] == "first"  # third's stamp is still there


class Repo:
    calls = 0

    def __init__(self, ident: int) -> None:
        self.ident = ident

    def __caching_id__(self) -> int:
        return self.ident

    @memoize(Store(MemoryBackend()))
    def name(self, suffix: str = "") -> str:
        Repo.calls += 1
        return f"repo{self.ident}{suffix}"

    @classmethod
    @memoize(Store(MemoryBackend()))
    def build(cls, ident: int) -> str:
        Repo.calls += 1
        return f"{cls.__name__}{ident}"

    @memoize(Store(MemoryBackend()))
    @classmethod
    def build_other_order(cls, ident: int) -> str:
        Repo.calls += 1
        return f"{cls.__name__}:{ident}"

    @memoize(Store(MemoryBackend()))
    @staticmethod
    def static(x: int) -> int:
        Repo.calls += 1
        return x


def test_methods_classmethods_and_staticmethods() -> None:
    # Repo's stores live as long as the class: start empty however often the tests run in
    # one process (mutmut runs them more than once).
    for method in (Repo.name, Repo.build, Repo.build_other_order, Repo.static):
        memo_spec(method).store.clear()
    Repo.calls = 0
    assert Repo(1).name() == Repo(1).name() == "repo1"  # same __caching_id__: one entry
    assert Repo(2).name("!") == "repo2!"
    assert Repo.build(3) == Repo(9).build(3) == "Repo3"
    assert Repo.build_other_order(4) == Repo.build_other_order(4) == "Repo:4"
    assert Repo.static(5) == Repo.static(5) == 5
    assert Repo.calls == 5
    assert memo_spec(Repo(1).name).invalidate(Repo(1))
    assert Repo(1).name() == "repo1"
    assert Repo.calls == 6


def test_async_functions_stay_awaitable(store: Store) -> None:
    runs: list[int] = []

    @memoize(store)
    async def fetch(x: int) -> int:
        runs.append(x)
        await asyncio.sleep(0)
        return x * 10

    assert inspect.iscoroutinefunction(fetch)

    async def main() -> list[int]:
        return [await fetch(1), await fetch(1), await fetch(2)]

    assert asyncio.run(main()) == [10, 10, 20]
    assert runs == [1, 2]


def test_fail_open_runs_the_function_when_the_backend_is_down() -> None:
    store = Store(BrokenBackend())

    @memoize(store)
    def double(x: int) -> int:
        return 2 * x

    assert double(4) == 8
    assert get_or_compute(store, "k", lambda: "fresh") == "fresh"


def test_bad_uses_fail_at_decoration(store: Store) -> None:
    with pytest.raises(TypeError, match="functions"):
        memoize(store)(42)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="timeout"):
        memoize(store, -5)
    with pytest.raises(ValueError, match="not memoized"):
        memo_spec(lambda: None)


def test_get_or_compute_with_plain_keys(store: Store, clock: FakeClock) -> None:
    results = iter(range(100))

    def compute() -> Any:
        return next(results)

    assert get_or_compute(store, "k", compute, 5) == 0
    assert get_or_compute(store, "k", compute, 5) == 0
    assert store.get("k") == 0
    clock.advance(6)
    assert store.get("k") is MISS
    assert get_or_compute(store, "k", compute, 5) == 1


class Counter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.runs = 0

    def __caching_id__(self) -> str:
        return self.name

    @memoize(Store(MemoryBackend()))
    def total(self, step: int) -> str:
        self.runs += 1
        return f"{self.name}:{step}"


def test_invalidate_one_instance_keeps_the_others() -> None:
    memo_spec(Counter.total).store.clear()  # the class's store outlives one test run
    a, b = Counter("a"), Counter("b")
    for obj in (a, b, a, b):
        obj.total(1)
        obj.total(2)
    assert (a.runs, b.runs) == (2, 2)
    spec = memo_spec(Counter.total)
    assert spec.invalidate_instance(a)
    a.total(1)
    b.total(1)
    assert (a.runs, b.runs) == (3, 2)
    spec.invalidate_all()
    a.total(1)
    b.total(1)
    assert (a.runs, b.runs) == (4, 3)
    with pytest.raises(TypeError, match="not a method"):
        memo_spec(Repo.static).invalidate_instance(a)


def test_same_named_functions_of_two_modules_never_share_results(store: Store) -> None:
    import types

    functions = []
    for module_name, result in (("shop.prices", "price"), ("shop.stock", "stock")):
        module = types.ModuleType(module_name)
        exec("def lookup(item):\n    return (RESULT, item)", module.__dict__)
        module.RESULT = result  # type: ignore[attr-defined]
        functions.append(memoize(store, 60)(module.lookup))
    prices, stock = functions
    assert prices(1) == ("price", 1)
    assert stock(1) == ("stock", 1)
    assert prices(1) == ("price", 1)

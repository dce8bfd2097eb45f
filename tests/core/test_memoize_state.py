"""memoize beyond the plain hit: stale windows (sync and async), keys of calls with
keyword arguments, tags and instances, keys the backend hashes, and what the decorated
function offers its callers."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.engine import Lookup
from flask_stash.core.memoize import MemoizedFunction, memo_spec, memoize
from flask_stash.core.pipeline import fetch
from flask_stash.core.stampede import Protection
from flask_stash.core.stats import ERROR, HIT, LOCK_WAIT, MISS_EVENT, PASS_EVENT, STALE
from flask_stash.core.store import Store
from flask_stash.testing import CountingBackend, FakeClock

from .test_stampede import ManualExecutor

STALE_WINDOW = Protection(stale=30)


@pytest.fixture
def store(clock: FakeClock) -> Store:
    store = Store(MemoryBackend(threshold=0, clock=clock), clock=clock)
    store.stampede.executor = ManualExecutor()  # type: ignore[assignment]
    return store


def jobs(store: Store) -> ManualExecutor:
    return store.stampede.executor  # type: ignore[return-value]


def counter() -> Callable[[], int]:
    runs = iter(range(1, 1000))
    return lambda: next(runs)


# -- a stale window on a sync function -------------------------------------------------------


def test_a_stale_entry_is_served_then_refreshed_with_the_same_call(
    store: Store, clock: FakeClock
) -> None:
    run = counter()

    @memoize(store, 10, protect=STALE_WINDOW, tags=lambda item, currency: f"cur:{currency}")
    def price(item: str, *, currency: str) -> str:
        return f"{item}/{currency}/v{run()}"

    scope = memo_spec(price).plan.scope
    assert price("tea", currency="eur") == "tea/eur/v1"
    assert price("tea", currency="eur") == "tea/eur/v1"
    clock.advance(11)  # expired, inside the stale window: served at once
    assert price("tea", currency="eur") == "tea/eur/v1"
    assert jobs(store).run_all() == 1
    assert price("tea", currency="eur") == "tea/eur/v2"  # the refresh ran the same call
    clock.advance(9)  # the refreshed entry lives the function's timeout
    assert price("tea", currency="eur") == "tea/eur/v2"
    assert jobs(store).jobs == []
    clock.advance(2)
    assert price("tea", currency="eur") == "tea/eur/v2"
    assert len(jobs(store).jobs) == 1
    assert store.stats.get(HIT, scope) == 3
    assert store.stats.get(STALE, scope) == 2
    assert store.stats.get(MISS_EVENT, scope) == 1


def test_invalidations_are_not_served_stale(store: Store) -> None:
    run = counter()

    @memoize(store, 10, protect=STALE_WINDOW, tags=lambda item, currency: f"cur:{currency}")
    def price(item: str, *, currency: str) -> str:
        return f"{item}/{currency}/v{run()}"

    assert price("tea", currency="eur") == "tea/eur/v1"
    price.invalidate_all()  # type: ignore[attr-defined]
    assert price("tea", currency="eur") == "tea/eur/v2"
    assert store.invalidate_tags(["cur:eur"])
    assert price("tea", currency="eur") == "tea/eur/v3"
    assert price.invalidate("tea", currency="eur")  # type: ignore[attr-defined]
    assert price("tea", currency="eur") == "tea/eur/v4"
    assert jobs(store).jobs == []


def test_a_spawn_given_to_the_function_runs_its_refreshes(store: Store, clock: FakeClock) -> None:
    spawned: list[Callable[[], None]] = []
    spec = MemoizedFunction(
        store, lambda: "v", 10, "report", protect=STALE_WINDOW, spawn=spawned.append
    )
    where = Lookup(spec.key((), {}), spec.function_stamp, spec.plan.scope)
    fetch(spec.plan, where).keep("v1", 10)
    clock.advance(11)
    ticket = fetch(spec.plan, where, lambda t: t.keep("v2", 10))
    assert ticket.value == "v1"
    assert len(spawned) == 1
    assert jobs(store).jobs == []


# -- the same on async functions -------------------------------------------------------------


def test_async_stale_entries_refresh_with_the_same_call(store: Store, clock: FakeClock) -> None:
    run = counter()

    @memoize(store, 10, protect=STALE_WINDOW)
    async def price(item: str, *, currency: str) -> str:
        return f"{item}/{currency}/v{run()}"

    async def main() -> list[str]:
        seen = [await price("tea", currency="eur")]
        clock.advance(11)
        seen.append(await price("tea", currency="eur"))  # stale: the refresh is a task
        for _ in range(3):
            await asyncio.sleep(0)
        seen.append(await price("tea", currency="eur"))
        clock.advance(9)  # the refreshed entry lives the function's timeout
        seen.append(await price("tea", currency="eur"))
        clock.advance(2)  # and no longer: stale again, refreshed again
        seen.append(await price("tea", currency="eur"))
        for _ in range(3):
            await asyncio.sleep(0)
        seen.append(await price("tea", currency="eur"))
        return seen

    assert asyncio.run(main()) == [
        "tea/eur/v1",
        "tea/eur/v1",
        "tea/eur/v2",
        "tea/eur/v2",
        "tea/eur/v2",
        "tea/eur/v3",
    ]
    scope = memo_spec(price).plan.scope
    assert store.stats.get(STALE, scope) == 2
    assert store.stats.get(HIT, scope) == 3


def test_async_entries_keep_the_timeout_keys_and_stamps_of_the_call(
    store: Store, clock: FakeClock
) -> None:
    run = counter()

    @memoize(store, 10, tags=lambda item, currency: f"cur:{currency}")
    async def price(item: str, *, currency: str) -> str:
        return f"{item}/{currency}/v{run()}"

    async def main() -> list[str]:
        seen = [await price("tea", currency="eur"), await price("tea", currency="usd")]
        seen.append(await price("tea", currency="eur"))
        clock.advance(9)
        seen.append(await price("tea", currency="eur"))
        clock.advance(2)
        seen.append(await price("tea", currency="eur"))  # expired after the timeout
        seen.append(await price("tea", currency="usd"))
        store.invalidate_tags(["cur:eur"])
        seen += [await price("tea", currency="eur"), await price("tea", currency="usd")]
        price.invalidate_all()  # type: ignore[attr-defined]
        seen.append(await price("tea", currency="usd"))
        return seen

    assert asyncio.run(main()) == [
        "tea/eur/v1",
        "tea/usd/v2",
        "tea/eur/v1",
        "tea/eur/v1",
        "tea/eur/v3",
        "tea/usd/v4",
        "tea/eur/v5",
        "tea/usd/v4",
        "tea/usd/v6",
    ]
    scope = memo_spec(price).plan.scope
    assert store.stats.get(HIT, scope) == 3
    assert store.stats.get(MISS_EVENT, scope) == 6


def test_async_errors_reach_the_caller_and_are_not_kept(store: Store) -> None:
    calls: list[int] = []

    @memoize(store, 10)
    async def lookup(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            raise LookupError("upstream")
        return n

    with pytest.raises(LookupError, match="upstream"):
        asyncio.run(lookup(1))
    assert asyncio.run(lookup(1)) == asyncio.run(lookup(1)) == 1
    assert calls == [1, 1]


# -- keys --------------------------------------------------------------------------------------


def test_keyword_arguments_are_part_of_the_key(store: Store) -> None:
    seen: list[tuple[int, bool]] = []

    @memoize(store)
    def load(n: int, *, fresh: bool = False) -> str:
        seen.append((n, fresh))
        return f"{n}:{fresh}"

    assert load(1) == "1:False"
    assert load(1, fresh=True) == "1:True"
    assert load(1, fresh=True) == "1:True"
    assert load(1) == "1:False"
    assert load.invalidate(1, fresh=True)  # type: ignore[attr-defined]
    assert load(1) == "1:False"
    assert load(1, fresh=True) == "1:True"
    assert seen == [(1, False), (1, True), (1, True)]


def test_equal_arguments_of_other_types_are_other_calls(store: Store) -> None:
    seen: list[object] = []

    @memoize(store, tags=lambda x: f"kind:{type(x).__name__}")
    def kind(x: object) -> str:
        seen.append(x)
        return type(x).__name__

    assert [kind(1), kind(1.0), kind(True), kind(1)] == ["int", "float", "bool", "int"]
    assert [kind([1]), kind([1])] == ["list", "list"]  # unhashable arguments too
    assert store.invalidate_tags(["kind:float"])
    assert [kind(1.0), kind(1)] == ["float", "int"]
    assert len(seen) == 5


def test_tags_of_keyword_arguments_follow_those_arguments(store: Store) -> None:
    run = counter()

    @memoize(store, tags=lambda n, region: f"region:{region}")
    def report(n: int, *, region: str) -> str:
        return f"{n}/{region}/v{run()}"

    assert report(1, region="eu") == "1/eu/v1"
    assert report(1, region="us") == "1/us/v2"
    assert store.invalidate_tags(["region:us"])
    assert report(1, region="eu") == "1/eu/v1"
    assert report(1, region="us") == "1/us/v3"


def test_the_stamps_of_a_call_are_its_functions_and_its_tags(store: Store) -> None:
    @memoize(store, tags=lambda n: f"n:{n}")
    def square(n: int) -> int:
        return n * n

    spec = memo_spec(square)
    assert spec.version_keys((3,), {}) == (spec.version_key, store.tag_key("n:3"))
    assert spec.version_keys((3,)) == (spec.version_key, store.tag_key("n:3"))


class FileName(str):
    """A name as ``os.fsdecode`` gives it, shown as is (lone surrogates included)."""

    def __repr__(self) -> str:
        return f"<{str.__str__(self)}>"


def test_lone_surrogates_in_arguments_are_keys_like_any_other(store: Store) -> None:
    seen: list[str] = []

    @memoize(store)
    def echo(text: str) -> str:
        seen.append(text)
        return text

    assert echo("\ud800") == echo("\ud800") == "\ud800"
    assert echo("\udfff") == "\udfff"
    undecodable = FileName(os.fsdecode(b"caf\xe9.txt"))  # "caf\udce9.txt"
    assert echo(undecodable) == echo(undecodable) == undecodable
    assert echo(FileName("cafe.txt")) == "cafe.txt"
    assert seen == ["\ud800", "\udfff", undecodable, "cafe.txt"]


class ShortKeys(MemoryBackend):
    """A backend that takes short keys only: the store hashes longer ones."""

    max_key_length = 80


def test_keys_the_backend_hashes_are_the_keys_of_the_store(clock: FakeClock) -> None:
    store = Store(ShortKeys(clock=clock), clock=clock, key_prefix="app:")
    seen: list[int] = []

    @memoize(store)
    def square(n: int) -> int:
        seen.append(n)
        return n * n

    spec = memo_spec(square)
    key = spec.key((2,), {})
    assert key.startswith("app:#")
    assert key == store.backend_key(spec.user_key((2,), {}))
    assert square(2) == square(2) == 4
    assert store.delete(spec.user_key((2,), {}))  # the call's entry, as the store names it
    assert square(2) == 4
    assert seen == [2, 2]


def test_a_user_key_names_one_call_of_one_function(store: Store) -> None:
    @memoize(store)
    def add(a: int, b: int = 0) -> int:
        return a + b

    spec = memo_spec(add)
    assert add(1, b=2) == 3
    assert spec.user_key((1,), {"b": 2}) == spec.user_key((1, 2), {})
    assert spec.user_key((1,), {"b": 2}) != spec.user_key((1,), {})
    assert spec.user_key((1,), {}) != spec.user_key((2,), {})
    assert spec.user_key((1,), {}).startswith("memo:{")
    assert store.delete(spec.user_key((1, 2), {}))
    assert not store.delete(spec.user_key((1, 2), {}))


def test_braces_in_a_name_cannot_split_its_hash_tag(store: Store) -> None:
    @memoize(store, name="report{2024}")
    def report() -> str:
        return "r"

    spec = memo_spec(report)
    assert spec.name == "report(2024)"
    assert spec.user_key((), {}).startswith("memo:{report(2024)}:")


def test_the_key_memos_stay_bounded(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.import_module("flask_stash.core.memoize"), "RECENT_KEYS", 4)

    @memoize(store, tags=lambda n, **_: f"n:{n}")
    def square(n: int, **options: Any) -> int:
        return n * n

    spec = memo_spec(square)
    for n in range(9):
        assert square(n) == square(n, unit="m") == n * n
        assert len(spec._keys_by_args) <= 4
        assert len(spec._recent_keys) <= 4
        assert len(spec._stamps_by_args) <= 4
    assert [square(n) for n in range(9)] == [n * n for n in range(9)]


# -- methods, classmethods, staticmethods ------------------------------------------------------


def test_methods_get_a_stamp_per_instance(store: Store) -> None:
    class Account:
        def __init__(self, name: str) -> None:
            self.name = name
            self.runs = 0

        def __caching_id__(self) -> str:
            return self.name

        @memoize(store)
        def balance(self, day: int) -> str:
            self.runs += 1
            return f"{self.name}:{day}"

    a, b = Account("a"), Account("b")
    for account in (a, b, a, b):
        account.balance(1)
    assert (a.runs, b.runs) == (1, 1)
    assert Account.balance.invalidate_instance(a)  # type: ignore[attr-defined]
    assert [a.balance(1), b.balance(1)] == ["a:1", "b:1"]
    assert (a.runs, b.runs) == (2, 1)
    spec = memo_spec(Account.balance)
    assert spec.version_keys((a, 1)) == (spec.version_key, spec.instance_version_key(a))


def test_a_self_left_out_of_the_key_is_no_method(store: Store) -> None:
    @memoize(store, ignore=("self",))
    def total(self: object, n: int) -> int:
        return n

    assert total(object(), 1) == total(object(), 1) == 1
    with pytest.raises(TypeError, match="total is not a method"):
        total.invalidate_instance(object())  # type: ignore[attr-defined]
    assert memo_spec(total).version_keys((object(), 1)) == memo_spec(total).function_stamp


def test_ignored_parameters_are_left_out_of_the_key(store: Store) -> None:
    seen: list[int] = []

    @memoize(store, ignore=("trace",))
    def square(n: int, trace: object = None) -> int:
        seen.append(n)
        return n * n

    assert square(3, trace="a") == square(3, trace="b") == 9
    assert seen == [3]


def test_classmethods_and_staticmethods_in_either_order(store: Store) -> None:
    runs: list[str] = []

    class Repo:
        @classmethod
        @memoize(store)
        def build(cls, n: int) -> str:
            runs.append("build")
            return f"{cls.__name__}{n}"

        @memoize(store)
        @classmethod
        def make(cls, n: int) -> str:
            runs.append("make")
            return f"{cls.__name__}:{n}"

        @memoize(store)
        @staticmethod
        def static(n: int) -> int:
            runs.append("static")
            return n

    assert Repo.build(1) == Repo().build(1) == "Repo1"
    assert Repo.make(2) == Repo().make(2) == "Repo:2"
    assert Repo.static(3) == Repo().static(3) == 3
    assert runs == ["build", "make", "static"]
    for name in ("build", "make", "static"):
        assert memo_spec(vars(Repo)[name]) is memo_spec(getattr(Repo, name))


# -- what the decorator gives its callers ------------------------------------------------------


def test_the_wrapper_says_its_timeout_and_offers_its_invalidations(store: Store) -> None:
    @memoize(store, 42)
    def square(n: int) -> int:
        return n * n

    spec = memo_spec(square)
    assert square.cache_timeout == 42  # type: ignore[attr-defined]
    assert square.invalidate == spec.invalidate  # type: ignore[attr-defined]
    assert square.invalidate_all == spec.invalidate_all  # type: ignore[attr-defined]
    assert square.invalidate_instance == spec.invalidate_instance  # type: ignore[attr-defined]


def test_a_bad_timeout_fails_when_the_function_is_described(store: Store) -> None:
    with pytest.raises(ValueError, match="timeout"):
        MemoizedFunction(store, lambda: 1, -5, "f")


def test_protection_decides_whether_hits_are_plain_reads(store: Store) -> None:
    assert MemoizedFunction(store, lambda: 1, 10, "plain").lean
    for edge in (Protection(stale=1), Protection(early_refresh=1), Protection(fail_safe=1)):
        assert not MemoizedFunction(store, lambda: 1, 10, "edge", protect=edge).lean


def test_the_function_is_reported_as_memoized(store: Store) -> None:
    @memoize(store)
    def square(n: int) -> int:
        return n * n

    assert store.stats.kinds[memo_spec(square).plan.scope] == "memoize"
    spec = MemoizedFunction(store, lambda: 1, 10, "named", scope="by-scope")
    assert spec.plan.scope == "by-scope"
    assert store.stats.kinds["by-scope"] == "memoize"


# -- what a miss costs -------------------------------------------------------------------------


def test_a_miss_reads_the_entry_and_its_stamp_once_before_the_lock(tmp_path: Path) -> None:
    backend = CountingBackend(FileSystemBackend(str(tmp_path)))  # stamps in the backend
    store = Store(backend)
    before: list[list[str]] = []

    @memoize(store, 10)
    def square(n: int) -> int:
        before.append(list(backend.calls))
        return n * n

    assert square(1) == 1  # creates the function's stamp
    backend.calls.clear()
    assert square(2) == 4
    # One read (entry and stamp), the lock, the read again under it: then the computation.
    assert before[-1] == ["get_many", "acquire_lock", "get_many"]


def test_a_pass_left_by_another_process_spares_the_lock(tmp_path: Path) -> None:
    backend = CountingBackend(FileSystemBackend(str(tmp_path)))
    runs: list[int] = []

    def find(n: int) -> int | None:
        runs.append(n)
        return None

    here, there = Store(backend), Store(backend)  # two processes, one backend
    refusing = {"name": "find", "cache_if": lambda result: result is not None}
    memoize(there, 10, **refusing)(find)(1)  # type: ignore[arg-type]
    backend.calls.clear()
    assert memoize(here, 10, **refusing)(find)(1) is None  # type: ignore[arg-type]
    assert "acquire_lock" not in backend.calls  # its result will not be stored anyway
    assert here.stats.get(PASS_EVENT, "find") == 1
    assert runs == [1, 1]


def test_a_result_that_cannot_be_stored_is_logged_under_its_function(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    @memoize(store, 10)
    def plain() -> object:
        return threading.Lock()  # cannot be pickled

    @memoize(store, 10, protect=STALE_WINDOW)
    def edged() -> object:
        return threading.Lock()

    @memoize(store, 10)
    async def awaited() -> object:
        return threading.Lock()

    caplog.set_level(logging.WARNING, logger="flask_stash")
    assert plain() is not plain()  # served, never stored
    edged()
    asyncio.run(awaited())
    scopes = [memo_spec(fn).plan.scope for fn in (plain, edged, awaited)]
    logged = [r.getMessage().split(" failed")[0] for r in caplog.records]
    assert logged == [f"cache store {scope}" for scope in scopes]  # repeats: counted only
    errors = [store.stats.get(ERROR, f"store {scope}") for scope in scopes]
    assert errors == [2, 1, 1]


def test_waits_for_another_process_lock_are_counted_under_the_function(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = Store(FileSystemBackend(str(tmp_path), clock=clock), clock=clock)
    store.stampede.monotonic = clock
    store.stampede.sleep = clock.advance  # type: ignore[assignment]
    impatient = Protection(lock_wait=0)

    @memoize(store, 10, protect=impatient)
    def plain(n: int) -> int:
        return n

    @memoize(store, 10, protect=Protection(lock_wait=0, stale=5))
    def edged(n: int) -> int:
        return n

    @memoize(store, 10, protect=impatient)
    async def awaited(n: int) -> int:
        return n

    for fn in (plain, edged, awaited):
        lock = memo_spec(fn).key((1,), {}) + ":lock"
        assert store.backend.acquire_lock(lock, "another process", 60)  # type: ignore[attr-defined]
    assert plain(1) == edged(1) == asyncio.run(awaited(1)) == 1  # waited, then computed
    for fn in (plain, edged, awaited):
        assert store.stats.get(LOCK_WAIT, memo_spec(fn).plan.scope) == 1

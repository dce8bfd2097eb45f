"""The get-or-compute pipeline's sync and async drivers, step by step, on a scripted backend
and a fake clock: what a read decides, how a miss leads, waits for, follows or gives up on
another caller's flight (played by the test), the background refresh of a stale entry (run
when the test says), and ``get_or_compute``/``aget_or_compute`` end to end. Each caller's
one outcome is checked with the value it got."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

import pytest

from flask_stash.core import apipeline
from flask_stash.core.api import MISS
from flask_stash.core.apipeline import afetch, aget_or_compute, amiss
from flask_stash.core.engine import Lookup
from flask_stash.core.entry import Entry
from flask_stash.core.flight import GAVE_UP, PASSED, Outcome
from flask_stash.core.pipeline import decide, fetch, get_or_compute, miss
from flask_stash.core.stampede import Protection
from flask_stash.core.stats import (
    COALESCED,
    HIT,
    LOCK_WAIT,
    MISS_EVENT,
    PASS_EVENT,
    REFRESH_ERROR,
    SKIPPED,
    STALE,
    WRITE,
)
from flask_stash.core.store import Store
from flask_stash.core.ticket import PASS_VALUE, Plan, Ticket, holds
from flask_stash.testing import FakeClock

from .pipelinekit import (
    KEY,
    SCOPE,
    Locking,
    Scripted,
    blob_of,
    in_flight,
    lookup,
    make_store,
    nothing_left_held,  # noqa: F401 (an autouse fixture)
    outcomes,
    plant,
    stored,
)

CLAIM = KEY + ":refresh"
VKEY = "p:family"


class Jobs:
    """Background work, run when the test says (a plan's ``spawn``, a store's executor)."""

    def __init__(self) -> None:
        self.queued: list[Callable[[], None]] = []

    def __call__(self, job: Callable[[], None]) -> None:
        self.queued.append(job)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[None]:
        self.queued.append(lambda: fn(*args))
        return Future()

    def run(self) -> int:
        jobs, self.queued = self.queued, []
        for job in jobs:
            job()
        return len(jobs)


@pytest.fixture
def backend() -> Scripted:
    return Scripted()


@pytest.fixture
def store(backend: Scripted, clock: FakeClock) -> Store:
    return make_store(backend, clock)


@pytest.fixture
def jobs() -> Jobs:
    return Jobs()


def plan_of(store: Store, spawn: Jobs | None = None, **options: Any) -> Plan:
    return Plan(store, Protection(**options), SCOPE, spawn=spawn)


def keeping(value: object, timeout: float = 60) -> Callable[[Ticket], object]:
    """A refresh that stores ``value``."""
    return lambda ticket: ticket.keep(value, timeout)


def raising(error: BaseException) -> Callable[[Ticket], object]:
    def refresh(ticket: Ticket) -> object:
        raise error

    return refresh


def flight_count(store: Store) -> int:
    return len(store.stampede.flights)


# -- fetch and decide -------------------------------------------------------------------------


def test_a_fresh_entry_is_served_without_computing(store: Store, backend: Scripted) -> None:
    plant(store, "cached", fresh_for=10, cost=2.0)
    ticket = fetch(plan_of(store), lookup(), keeping("unused"))
    assert ticket.ready
    assert ticket.value == "cached"
    assert not ticket.stale
    assert outcomes(store) == {HIT: (1, 2.0)}
    assert backend.calls == [("get", KEY)]


def test_a_miss_leads_a_flight_and_stores_for_its_waiters(store: Store) -> None:
    ticket = fetch(plan_of(store), lookup(), None)
    assert not ticket.ready
    assert ticket.stores
    assert holds(KEY)
    assert flight_count(store) == 1
    ticket.keep("new", 60)
    assert flight_count(store) == 0
    assert stored(store).value == "new"  # type: ignore[union-attr]
    assert outcomes(store)[MISS_EVENT] == (1, 0.0)


def test_a_miss_that_may_not_store_computes_outside_any_flight(
    store: Store, backend: Scripted
) -> None:
    ticket = fetch(plan_of(store), lookup(), None, store_ok=False)
    assert not ticket.stores
    assert flight_count(store) == 0
    ticket.keep("v", 60)
    assert backend.named("set") == []


def test_an_expired_entry_is_the_last_good_value_of_the_miss(store: Store) -> None:
    last = plant(store, "old", fresh_for=1, age=2)
    ticket = fetch(plan_of(store, fail_safe=60), lookup(), None)
    assert ticket.last == last
    assert ticket.fail(RuntimeError("down")) == "old"


def test_decide_starts_a_refresh_only_when_given_one(store: Store, jobs: Jobs) -> None:
    entry = plant(store, "old", fresh_for=1, stale_for=10, age=2)
    plan = plan_of(store, jobs, stale=10)
    ticket = decide(plan, lookup(), entry, None)
    assert ticket.ready
    assert ticket.stale
    assert ticket.where == lookup()
    assert jobs.queued == []
    ticket = decide(plan, lookup(), entry, None, keeping("new"))
    assert ticket.ready
    assert ticket.value == "old"
    assert jobs.run() == 1
    assert stored(store).value == "new"  # type: ignore[union-attr]


def test_decide_passes_the_version_and_store_ok_to_the_miss(store: Store) -> None:
    ticket = decide(plan_of(store), lookup(), MISS, b"s1", store_ok=False)
    assert not ticket.stores
    assert ticket.version == b"s1"
    ticket = decide(plan_of(store), lookup(), MISS, None)
    assert ticket.stores
    ticket.abandon()


def test_a_miss_writes_under_the_stamp_its_read_fetched(store: Store, backend: Scripted) -> None:
    backend.data[VKEY] = b"s1"
    ticket = fetch(plan_of(store), lookup(KEY, VKEY), None)
    assert ticket.version == b"s1"
    ticket.keep("v", 60)
    assert stored(store).version == b"s1"  # type: ignore[union-attr]
    assert backend.named("add") == []  # the stamp read with the entry: none fetched again
    ticket = miss(plan_of(store), lookup("p:other", VKEY), b"s1")
    assert ticket.version == b"s1"
    ticket.abandon()
    assert backend.named("add") == []


# -- the leader's turn ---------------------------------------------------------------------


def test_a_leader_serves_what_another_caller_stored_since_its_read(store: Store) -> None:
    plant(store, "theirs", fresh_for=10, cost=3.0)
    ticket = miss(plan_of(store), lookup(), None)
    assert ticket.ready
    assert ticket.value == "theirs"
    assert flight_count(store) == 0
    assert not holds(KEY)
    assert outcomes(store) == {COALESCED: (1, 3.0)}


def test_a_forced_recomputation_ignores_what_was_stored_meanwhile(store: Store) -> None:
    plant(store, "theirs", fresh_for=10)
    ticket = miss(plan_of(store), lookup(), None, recheck=False)
    assert not ticket.ready
    assert holds(KEY)
    ticket.keep("forced", 60)
    assert stored(store).value == "forced"  # type: ignore[union-attr]


def test_a_leader_whose_turn_fails_gives_the_key_up(store: Store) -> None:
    def reader(where: Lookup) -> Any:
        raise LookupError("the re-read failed")

    plan = Plan(store, Protection(), SCOPE, read=reader)
    with pytest.raises(LookupError):
        miss(plan, lookup(), None)
    assert flight_count(store) == 0
    assert not holds(KEY)
    assert outcomes(store) == {MISS_EVENT: (1, 0.0)}


def test_a_leader_takes_the_backend_lock_and_releases_it_when_done(clock: FakeClock) -> None:
    backend = Locking()
    store = make_store(backend, clock)
    ticket = miss(plan_of(store, lock_lease=7), lookup(), None)
    assert backend.held
    assert not ticket.ready
    ticket.keep("v", 60)
    assert backend.held == {}
    assert backend.named("acquire_lock") == [("acquire_lock", KEY + ":lock", 7)]


def test_a_leader_polls_while_another_process_holds_the_lock(clock: FakeClock) -> None:
    backend = Locking(False, False)
    store = make_store(backend, clock)
    plan = Plan(store, Protection(lock_wait=1), SCOPE)
    ticket = miss(plan, lookup(), None)
    assert not ticket.ready
    assert backend.held
    assert outcomes(store) == {LOCK_WAIT: (1, 0.0)}
    ticket.abandon()


# -- waiting for another caller's flight --------------------------------------------------


def test_a_waiter_gets_its_own_copy_of_the_leaders_value(store: Store, clock: FakeClock) -> None:
    entry = Entry(["v"], clock(), clock() + 10, None, None, (), 2.0)
    in_flight(store, outcome=Outcome("stored", blob_of(store, entry)))
    ticket = miss(plan_of(store), lookup(), None)
    assert ticket.ready
    assert ticket.value == ["v"]
    assert outcomes(store) == {COALESCED: (1, 2.0)}


def test_a_waiter_computes_as_a_pass_when_the_leader_passed(store: Store) -> None:
    in_flight(store, outcome=PASSED)
    ticket = miss(plan_of(store), lookup(), None)
    assert not ticket.ready
    assert not holds(KEY)
    ticket.keep("mine", 60)
    assert outcomes(store)[PASS_EVENT] == (1, 0.0)


def test_a_waiter_starts_over_a_bounded_number_of_times(store: Store) -> None:
    flight = in_flight(store, outcome=GAVE_UP)
    last = plant(store, "old", fresh_for=1, age=2)
    begun: list[str] = []
    begin = store.stampede.flights.begin

    def counted(key: str) -> Any:
        begun.append(key)
        return begin(key)

    store.stampede.flights.begin = counted  # type: ignore[method-assign]
    ticket = miss(plan_of(store), lookup(), None, last=last)
    assert begun == [KEY] * 3
    assert not ticket.ready
    assert ticket.last == last
    assert flight.outcome == GAVE_UP
    ticket.abandon()
    assert outcomes(store) == {MISS_EVENT: (1, 0.0)}


def test_a_waiter_that_waited_too_long_computes_itself(store: Store) -> None:
    in_flight(store)  # never ends
    ticket = miss(plan_of(store, lock_wait=0), lookup(), b"s1")
    assert not ticket.ready
    assert ticket.version is None
    assert not holds(KEY)
    ticket.keep("mine", 60)
    assert stored(store).value == "mine"  # type: ignore[union-attr]
    assert outcomes(store)[MISS_EVENT] == (1, 0.0)


def test_a_waiter_raises_its_leaders_error(store: Store) -> None:
    error = RuntimeError("down")
    in_flight(store, outcome=Outcome("error", error=error))
    with pytest.raises(RuntimeError) as raised:
        miss(plan_of(store), lookup(), None)
    assert raised.value is error


def test_a_waiter_serves_the_last_value_when_its_leader_fails(store: Store) -> None:
    last = plant(store, "old", fresh_for=1, age=2)
    in_flight(store, outcome=Outcome("error", error=RuntimeError("down")))
    ticket = miss(plan_of(store, fail_safe=60), lookup(), None, last=last)
    assert ticket.ready
    assert ticket.stale
    assert ticket.value == "old"


def test_misses_that_need_no_flight_skip_it(store: Store) -> None:
    in_flight(store)  # would be waited for
    store.stampede.mark_pass(KEY)
    ticket = miss(plan_of(store), lookup(), None)
    assert not ticket.ready
    ticket.abandon()
    assert outcomes(store) == {PASS_EVENT: (1, 0.0)}


def test_a_pass_marker_read_skips_the_flight(store: Store, clock: FakeClock) -> None:
    in_flight(store)  # would be waited for
    marker = Entry(PASS_VALUE, clock(), clock())
    ticket = miss(plan_of(store), lookup(), None, last=marker)
    assert not ticket.ready
    assert ticket.last is marker
    ticket.abandon()
    assert outcomes(store) == {PASS_EVENT: (1, 0.0)}


# -- background refresh --------------------------------------------------------------------


def stale_read(store: Store, jobs: Jobs, refresh: Callable[[Ticket], object]) -> Ticket:
    plant(store, "old", fresh_for=1, stale_for=10, age=2)
    return fetch(plan_of(store, jobs, stale=10), lookup(), refresh)


def test_a_stale_read_refreshes_once_in_the_background(store: Store, jobs: Jobs) -> None:
    ticket = stale_read(store, jobs, keeping("new"))
    assert ticket.ready
    assert ticket.stale
    assert ticket.value == "old"
    stale_read(store, jobs, keeping("newer"))  # the refresh is already claimed
    assert len(jobs.queued) == 1
    assert not store.stampede.flights.try_lead(CLAIM)
    jobs.run()
    assert stored(store).value == "new"  # type: ignore[union-attr]
    assert store.stampede.flights.try_lead(CLAIM)  # released
    assert outcomes(store)[STALE] == (2, 0.0)
    assert MISS_EVENT not in outcomes(store)  # a refresh is no caller's outcome


def test_a_refresh_runs_in_the_stores_pool_without_a_spawn(store: Store, jobs: Jobs) -> None:
    store.stampede.executor = jobs  # type: ignore[assignment]
    plant(store, "old", fresh_for=1, stale_for=10, age=2)
    fetch(plan_of(store, None, stale=10), lookup(), keeping("new"))
    assert jobs.run() == 1
    assert stored(store).value == "new"  # type: ignore[union-attr]


def test_a_refresh_that_cannot_start_gives_its_claim_back(store: Store) -> None:
    def shutting_down(job: Callable[[], None]) -> None:
        raise RuntimeError("cannot schedule new futures after shutdown")

    plant(store, "old", fresh_for=1, stale_for=10, age=2)
    plan = Plan(store, Protection(stale=10), SCOPE, spawn=shutting_down)
    assert fetch(plan, lookup(), keeping("new")).value == "old"
    assert store.stampede.flights.try_lead(CLAIM)


def test_a_failed_refresh_backs_off_and_is_logged(
    store: Store, jobs: Jobs, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    stale_read(store, jobs, raising(RuntimeError("db down")))
    with caplog.at_level(logging.WARNING, "flask_stash"):
        jobs.run()
    assert outcomes(store)[REFRESH_ERROR] == (1, 0.0)
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(f"background refresh of {SCOPE} failed (RuntimeError: db down); ")
    )
    assert store.stampede.flights.try_lead(CLAIM)
    store.stampede.flights.release(CLAIM)
    stale_read(store, jobs, keeping("new"))  # backing off: no refresh for a second
    assert jobs.queued == []
    clock.advance(1)
    stale_read(store, jobs, keeping("new"))
    jobs.run()
    assert stored(store).value == "new"  # type: ignore[union-attr]
    assert store.stampede.refresh_allowed(KEY)


def test_an_interrupted_refresh_still_gives_everything_back(clock: FakeClock, jobs: Jobs) -> None:
    backend = Locking()
    store = make_store(backend, clock)
    stale_read(store, jobs, raising(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        jobs.run()
    assert backend.held == {}
    assert store.stampede.flights.try_lead(CLAIM)
    assert outcomes(store).get(REFRESH_ERROR) is None


def test_a_refresh_another_process_runs_is_skipped(clock: FakeClock, jobs: Jobs) -> None:
    backend = Locking(False)
    store = make_store(backend, clock)
    refreshed: list[Ticket] = []
    stale_read(store, jobs, refreshed.append)
    jobs.run()
    assert refreshed == []
    assert store.stampede.flights.try_lead(CLAIM)


def test_a_refresh_that_stores_nothing_releases_its_lock(clock: FakeClock, jobs: Jobs) -> None:
    backend = Locking()
    store = make_store(backend, clock)
    stale_read(store, jobs, lambda ticket: None)
    jobs.run()
    assert backend.held == {}
    assert stored(store).value == "old"  # type: ignore[union-attr]


# -- get_or_compute ------------------------------------------------------------------------


def test_get_or_compute_computes_once_then_serves(store: Store, backend: Scripted) -> None:
    calls: list[int] = []

    def compute() -> list[int]:
        calls.append(1)
        return [len(calls)]

    assert get_or_compute(store, "k", compute, 30) == [1]
    assert backend.ttls[KEY] == 30
    assert get_or_compute(store, "k", compute, 30) == [1]
    assert calls == [1]
    assert {e: n for e, (n, _) in outcomes(store, "").items() if e != WRITE} == {
        MISS_EVENT: 1,
        HIT: 1,
    }


def test_get_or_compute_takes_a_lookup_as_is(store: Store, backend: Scripted) -> None:
    where = Lookup("raw", (), SCOPE)
    assert get_or_compute(store, where, lambda: 1) == 1
    assert "raw" in backend.data
    assert outcomes(store)[MISS_EVENT] == (1, 0.0)


def test_get_or_compute_stores_only_what_cache_if_accepts(store: Store) -> None:
    assert get_or_compute(store, "k", lambda: None, cache_if=lambda v: v is not None) is None
    assert outcomes(store, "")[SKIPPED] == (1, 0.0)
    assert is_marker(stored(store))


class PlainJson:
    """A user's serializer without tuples: every tuple comes back as a list."""

    def dumps(self, obj: object) -> bytes:
        return json.dumps(obj).encode()

    def loads(self, data: bytes) -> object:
        return json.loads(data)


def refused_under_plain_json(clock: FakeClock) -> Store:
    """A store whose key "k" holds a pass marker read back as a list, inside its window."""
    store = Store(Scripted(), serializer=PlainJson(), clock=clock)
    assert get_or_compute(store, "k", lambda: None, 60, cache_if=lambda v: v is not None) is None
    clock.advance(1)  # past the marker's (zero) freshness, inside its 10 s window
    return store


def test_a_marker_read_back_as_a_list_is_not_served_stale(clock: FakeClock) -> None:
    store = refused_under_plain_json(clock)
    assert get_or_compute(store, "k", lambda: "computed", protect=Protection(stale=30)) == (
        "computed"
    )
    assert store.stats.get(PASS_EVENT, "") == 2  # the marker was seen: computed at once


def test_a_marker_read_back_as_a_list_is_no_fail_safe_value(clock: FakeClock) -> None:
    store = refused_under_plain_json(clock)

    def failing() -> str:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        get_or_compute(store, "k", failing, protect=Protection(fail_safe=30))


def is_marker(entry: Entry | Any) -> bool:
    return entry is not MISS and entry.value == PASS_VALUE


def test_get_or_compute_raises_or_serves_the_fail_safe(store: Store) -> None:
    def failing() -> str:
        raise RuntimeError("down")

    plant(store, "old", fresh_for=1, age=2)
    with pytest.raises(RuntimeError):
        get_or_compute(store, "k", failing)
    assert get_or_compute(store, "k", failing, protect=Protection(fail_safe=60)) == "old"


def test_get_or_compute_refreshes_a_stale_entry_in_the_background(
    store: Store, backend: Scripted, jobs: Jobs
) -> None:
    store.stampede.executor = jobs  # type: ignore[assignment]
    plant(store, "old", fresh_for=1, stale_for=10, age=2)
    assert get_or_compute(store, "k", lambda: "new", 40, protect=Protection(stale=10)) == "old"
    jobs.run()
    assert stored(store).value == "new"  # type: ignore[union-attr]
    assert backend.ttls[KEY] == 50


# -- the async mirror ------------------------------------------------------------------------


def run(coroutine: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coroutine

    return asyncio.run(main())


def async_flight(store: Store, outcome: Outcome | None) -> asyncio.Future[Outcome]:
    """Another task's flight on ``KEY``, begun on the running loop (ended if ``outcome``)."""
    future, leads = store.stampede.async_flights.begin(KEY)
    assert leads
    if outcome is not None:
        future.set_result(outcome)
    return future


def test_afetch_serves_a_fresh_entry(store: Store) -> None:
    plant(store, "cached", fresh_for=10, cost=1.0)
    ticket = run(afetch(plan_of(store), lookup()))
    assert ticket.ready
    assert ticket.value == "cached"
    assert outcomes(store) == {HIT: (1, 1.0)}


def test_afetch_leads_at_a_miss_and_passes_store_ok(store: Store) -> None:
    async def scenario() -> tuple[Ticket, Ticket]:
        led = await afetch(plan_of(store), lookup())
        assert len(store.stampede.async_flights) == 1
        assert holds(KEY)
        led.keep("v", 60)
        head = await afetch(plan_of(store), lookup("p:other"), store_ok=False)
        return led, head

    led, head = run(scenario())
    assert led.stores
    assert not head.stores
    assert len(store.stampede.async_flights) == 0


def test_amiss_serves_what_was_stored_meanwhile_unless_forced(store: Store) -> None:
    plant(store, "theirs", fresh_for=10)
    assert run(amiss(plan_of(store), lookup(), None)).value == "theirs"

    async def forced() -> Ticket:
        ticket = await amiss(plan_of(store), lookup(), b"s1", recheck=False)
        assert holds(KEY)
        ticket.keep("forced", 60)
        return ticket

    assert not run(forced()).ready
    assert stored(store).value == "forced"  # type: ignore[union-attr]


def test_amiss_shortcuts_a_key_marked_pass(store: Store) -> None:
    store.stampede.mark_pass(KEY)
    ticket = run(amiss(plan_of(store), lookup(), None))
    assert not ticket.ready
    assert len(store.stampede.async_flights) == 0


def test_an_async_leader_whose_turn_fails_gives_the_key_up(store: Store) -> None:
    def reader(where: Lookup) -> Any:
        raise LookupError("the re-read failed")

    with pytest.raises(LookupError):
        run(amiss(Plan(store, Protection(), SCOPE, read=reader), lookup(), None))
    assert len(store.stampede.async_flights) == 0


def test_an_async_waiter_follows_its_leader(store: Store, clock: FakeClock) -> None:
    entry = Entry("v", clock(), clock() + 10, None, None, (), 2.0)

    async def scenario() -> Ticket:
        async_flight(store, Outcome("stored", blob_of(store, entry)))
        return await amiss(plan_of(store), lookup(), None)

    assert run(scenario()).value == "v"
    assert outcomes(store) == {COALESCED: (1, 2.0)}


def test_an_async_waiter_starts_over_then_computes(store: Store) -> None:
    async def scenario() -> Ticket:
        async_flight(store, GAVE_UP)
        return await amiss(plan_of(store), lookup(), None)

    ticket = run(scenario())
    assert not ticket.ready
    assert ticket.stores
    ticket.abandon()
    assert outcomes(store) == {MISS_EVENT: (1, 0.0)}


def test_an_async_waiter_that_waited_too_long_computes_itself(store: Store) -> None:
    last = plant(store, "old", fresh_for=1, age=2)

    async def scenario() -> Ticket:
        async_flight(store, None)
        return await amiss(plan_of(store, lock_wait=0), lookup(), b"s1", last=last)

    ticket = run(scenario())
    assert not ticket.ready
    assert ticket.version is None
    assert ticket.last == last


def test_an_async_waiter_serves_the_last_value_when_its_leader_fails(store: Store) -> None:
    last = plant(store, "old", fresh_for=1, age=2)

    async def scenario() -> Ticket:
        async_flight(store, Outcome("error", error=RuntimeError("down")))
        return await amiss(plan_of(store, fail_safe=60), lookup(), None, last=last)

    ticket = run(scenario())
    assert ticket.ready
    assert ticket.stale
    assert ticket.value == "old"


def test_an_async_pass_marker_read_skips_the_flight(store: Store, clock: FakeClock) -> None:
    marker = Entry(PASS_VALUE, clock(), clock())

    async def scenario() -> Ticket:
        async_flight(store, None)  # would be waited for
        return await amiss(plan_of(store), lookup(), None, last=marker)

    ticket = run(scenario())
    assert not ticket.ready
    assert ticket.last is marker
    ticket.abandon()
    assert outcomes(store) == {PASS_EVENT: (1, 0.0)}


def test_an_async_miss_writes_under_the_stamp_its_read_fetched(
    store: Store, backend: Scripted
) -> None:
    backend.data[VKEY] = b"s1"

    async def scenario() -> tuple[Ticket, Ticket, Ticket]:
        fetched = await afetch(plan_of(store), lookup(KEY, VKEY))
        fetched.keep("v", 60)
        led = await amiss(plan_of(store), lookup("p:other", VKEY), b"s1")
        led.abandon()
        head = await afetch(plan_of(store), lookup("p:head", VKEY), store_ok=False)
        return fetched, led, head

    tickets = run(scenario())
    assert [ticket.version for ticket in tickets] == [b"s1"] * 3
    assert stored(store).version == b"s1"  # type: ignore[union-attr]
    assert backend.named("add") == []  # the stamp read with the entry: none fetched again


def test_an_async_waiter_computes_as_a_pass(store: Store) -> None:
    async def scenario() -> Ticket:
        async_flight(store, PASSED)
        return await amiss(plan_of(store), lookup(), None)

    run(scenario()).abandon()
    assert outcomes(store) == {PASS_EVENT: (1, 0.0)}


def test_an_async_leader_takes_the_lock(clock: FakeClock) -> None:
    backend = Locking(False)
    store = make_store(backend, clock)

    async def scenario() -> Ticket:
        ticket = await amiss(plan_of(store, lock_wait=1), lookup(), None)
        assert backend.held
        ticket.keep("v", 60)
        return ticket

    run(scenario())
    assert backend.held == {}
    assert outcomes(store)[LOCK_WAIT] == (1, 0.0)


def test_an_async_stale_read_refreshes_once_as_a_task(store: Store) -> None:
    refreshes: list[str] = []

    async def scenario() -> str:
        async def refresh(ticket: Ticket) -> None:
            refreshes.append("ran")
            ticket.keep("new", 60)

        plant(store, "old", fresh_for=1, stale_for=10, age=2)
        plan = plan_of(store, stale=10)
        first = await afetch(plan, lookup(), refresh)
        await afetch(plan, lookup(), refresh)  # claimed: no second task
        assert len(apipeline._tasks) == 1
        await asyncio.gather(*apipeline._tasks)
        return first.value  # type: ignore[no-any-return]

    assert run(scenario()) == "old"
    assert refreshes == ["ran"]
    assert apipeline._tasks == set()
    assert stored(store).value == "new"  # type: ignore[union-attr]
    assert store.stampede.flights.try_lead(CLAIM)


def test_a_failed_async_refresh_is_counted_and_backs_off(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async def refresh(ticket: Ticket) -> None:
        raise RuntimeError("db down")

    async def scenario() -> None:
        plant(store, "old", fresh_for=1, stale_for=10, age=2)
        await afetch(plan_of(store, stale=10), lookup(), refresh)
        await asyncio.gather(*apipeline._tasks)

    with caplog.at_level(logging.WARNING, "flask_stash"):
        run(scenario())
    assert outcomes(store)[REFRESH_ERROR] == (1, 0.0)
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(f"background refresh of {SCOPE} failed (RuntimeError: db down); ")
    )
    assert not store.stampede.refresh_allowed(KEY)
    assert store.stampede.flights.try_lead(CLAIM)


def test_an_async_stale_read_without_a_refresher_starts_none(store: Store) -> None:
    async def scenario() -> Ticket:
        plant(store, "old", fresh_for=1, stale_for=10, age=2)
        ticket = await afetch(plan_of(store, stale=10), lookup())
        assert apipeline._tasks == set()
        return ticket

    ticket = run(scenario())
    assert ticket.stale
    assert ticket.where == lookup()
    assert REFRESH_ERROR not in outcomes(store)


def test_sync_and_async_refreshes_of_a_key_share_one_claim(store: Store) -> None:
    assert store.stampede.flights.try_lead(CLAIM)  # a thread's refresh runs

    async def refresh(ticket: Ticket) -> None:
        raise AssertionError("a second refresh of the key")

    async def scenario() -> int:
        plant(store, "old", fresh_for=1, stale_for=10, age=2)
        await afetch(plan_of(store, stale=10), lookup(), refresh)
        return len(apipeline._tasks)

    assert run(scenario()) == 0


def test_an_async_refresh_that_stores_nothing_releases_its_lock(clock: FakeClock) -> None:
    backend = Locking()
    store = make_store(backend, clock)

    async def refresh(ticket: Ticket) -> None:
        pass

    async def scenario() -> None:
        plant(store, "old", fresh_for=1, stale_for=10, age=2)
        await afetch(plan_of(store, stale=10), lookup(), refresh)
        await asyncio.gather(*apipeline._tasks)

    run(scenario())
    assert backend.held == {}
    assert store.stampede.refresh_allowed(KEY)
    assert store.stampede.flights.try_lead(CLAIM)


def test_an_async_refresh_another_process_runs_is_skipped(clock: FakeClock) -> None:
    store = make_store(Locking(False), clock)
    refreshed: list[Ticket] = []

    async def refresh(ticket: Ticket) -> None:
        refreshed.append(ticket)

    async def scenario() -> None:
        plant(store, "old", fresh_for=1, stale_for=10, age=2)
        await afetch(plan_of(store, stale=10), lookup(), refresh)
        await asyncio.gather(*apipeline._tasks)

    run(scenario())
    assert refreshed == []
    assert store.stampede.flights.try_lead(CLAIM)


def test_an_async_refresh_backing_off_is_not_started(store: Store) -> None:
    store.stampede.refresh_failed(KEY)

    async def refresh(ticket: Ticket) -> None:
        raise AssertionError("not while backing off")

    async def scenario() -> int:
        plant(store, "old", fresh_for=1, stale_for=10, age=2)
        await afetch(plan_of(store, stale=10), lookup(), refresh)
        return len(apipeline._tasks)

    assert run(scenario()) == 0
    assert store.stampede.flights.try_lead(CLAIM)


def test_an_async_refresh_without_a_loop_gives_its_claim_back(store: Store) -> None:
    entry = plant(store, "old", fresh_for=1, stale_for=10, age=2)

    async def refresh(ticket: Ticket) -> None:
        raise AssertionError("never started")

    apipeline._arefresh_later(plan_of(store, stale=10), lookup(), entry, refresh)
    assert store.stampede.flights.try_lead(CLAIM)


def test_aget_or_compute_computes_once_then_serves(store: Store, backend: Scripted) -> None:
    calls: list[int] = []

    async def compute() -> list[int]:
        calls.append(1)
        return [len(calls)]

    async def scenario() -> tuple[Any, Any]:
        first = await aget_or_compute(store, "k", compute, 30)
        return first, await aget_or_compute(store, Lookup(KEY), compute, 30)

    assert run(scenario()) == ([1], [1])
    assert backend.ttls[KEY] == 30
    assert calls == [1]
    assert outcomes(store, "")[MISS_EVENT][0] == 1
    assert outcomes(store, "")[HIT][0] == 1


def test_aget_or_compute_counts_under_the_lookups_scope(store: Store) -> None:
    async def compute() -> int:
        return 1

    assert run(aget_or_compute(store, Lookup(KEY, (), SCOPE), compute)) == 1
    assert outcomes(store)[MISS_EVENT] == (1, 0.0)


def test_aget_or_compute_stores_only_what_cache_if_accepts(store: Store) -> None:
    async def compute() -> None:
        return None

    assert run(aget_or_compute(store, "k", compute, cache_if=lambda v: v is not None)) is None
    assert is_marker(stored(store))


def test_aget_or_compute_raises_or_serves_the_fail_safe(store: Store) -> None:
    async def failing() -> str:
        raise RuntimeError("down")

    plant(store, "old", fresh_for=1, age=2)
    with pytest.raises(RuntimeError):
        run(aget_or_compute(store, "k", failing))
    assert run(aget_or_compute(store, "k", failing, protect=Protection(fail_safe=60))) == "old"


def test_aget_or_compute_refreshes_a_stale_entry_as_a_task(store: Store, backend: Scripted) -> None:
    async def compute() -> str:
        return "new"

    async def scenario() -> str:
        plant(store, "old", fresh_for=1, stale_for=10, age=2)
        value = await aget_or_compute(store, "k", compute, 40, protect=Protection(stale=10))
        await asyncio.gather(*apipeline._tasks)
        return value  # type: ignore[no-any-return]

    assert run(scenario()) == "old"
    assert stored(store).value == "new"  # type: ignore[union-attr]
    assert backend.ttls[KEY] == 50

"""One caller's ticket through a miss, unit by unit, on a scripted backend and a fake clock:
what a front end's plan reads and counts, the keys a thread or task is computing, what a
ticket writes (exact entry, TTL, stamps, jitter, cost), what its waiters are told, how its
caller's one outcome is counted, the fail-safe window and a leader's turn."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref
from collections import namedtuple
from typing import Any

import pytest

from flask_stash.core import ticket as ticket_module
from flask_stash.core.api import MISS
from flask_stash.core.entry import Entry
from flask_stash.core.errors import SerializationError
from flask_stash.core.flight import ERROR, GAVE_UP, PASSED, STORED, Outcome
from flask_stash.core.locking import Turn
from flask_stash.core.stampede import DEFAULT, PASS_SECONDS, Protection
from flask_stash.core.stats import (
    BACKEND_FAILED,
    COALESCED,
    FAIL_SAFE,
    HIT,
    MISS_EVENT,
    PASS_EVENT,
    SKIPPED,
    STALE,
    WRITE,
)
from flask_stash.core.store import Store
from flask_stash.core.ticket import (
    PASS_VALUE,
    Plan,
    Ticket,
    after_turn,
    computing,
    fail_safe_allows,
    holds,
    is_pass,
    leader,
    passing,
    prepare,
    ready,
    refresh_ticket,
    uncounted,
)
from flask_stash.testing import FakeClock

from .pipelinekit import (
    KEY,
    SCOPE,
    Locking,
    Scripted,
    blob_of,
    lookup,
    make_store,
    nothing_left_held,  # noqa: F401 (an autouse fixture)
    outcomes,
    plant,
    stored,
)

VKEY = "p:family"


@pytest.fixture
def backend() -> Scripted:
    return Scripted()


@pytest.fixture
def store(backend: Scripted, clock: FakeClock) -> Store:
    return make_store(backend, clock)


def plan_of(store: Store, **options: Any) -> Plan:
    return Plan(store, Protection(**options), SCOPE)


def led(plan: Plan, key: str = KEY, last: Entry | None = None, version: bytes | None = None,
        *vkeys: str) -> Ticket:  # fmt: skip
    """A leader's prepared ticket on ``key`` (its flight begun, no backend lock)."""
    flight, leads = plan.store.stampede.flights.begin(key)
    assert leads
    return prepare(leader(plan, lookup(key, *vkeys), version, last, flight, False))


def waiters_see(ticket: Ticket) -> Outcome:
    """What the waiters on ``ticket``'s flight were told when it ended."""
    flight = ticket._flight
    assert flight is not None
    assert flight.done.is_set()
    return flight.outcome  # type: ignore[union-attr]


@pytest.fixture(autouse=True)
def still_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Computations take no time (a test that measures one sets its own timer)."""

    class Timer:
        @staticmethod
        def perf_counter() -> float:
            return 50.0

    monkeypatch.setattr(ticket_module, "time", Timer)


# -- pass markers ------------------------------------------------------------------------


def test_only_a_three_item_marker_is_a_pass() -> None:
    assert PASS_VALUE == ("flask-stash/pass", None, None)
    assert is_pass(PASS_VALUE)
    assert is_pass(("flask-stash/pass", 1, 2))
    assert is_pass(list(PASS_VALUE))  # read back by a serializer without tuples
    assert not is_pass(["flask-stash/pass", None])
    assert not is_pass(["other", None, None])
    assert not is_pass(("flask-stash/pass", None))
    assert not is_pass(("flask-stash/pass", None, None, None))
    assert not is_pass(("other", None, None))
    assert not is_pass(namedtuple("Three", "a b c")(*PASS_VALUE))
    assert not is_pass("flask-stash/pass")


# -- the plan ---------------------------------------------------------------------------


def test_a_plans_defaults(store: Store) -> None:
    plan = Plan(store)
    assert (plan.store, plan.protect, plan.scope) == (store, DEFAULT, "")
    assert (plan.storable, plan.read, plan.spawn, plan.shares_values) == (None, None, None, True)
    plan.hit(2.5)
    assert store.stats.total(HIT, "") == 2.5


def test_a_plan_counts_outcomes_and_hits_under_its_scope(store: Store) -> None:
    plan = plan_of(store)
    plan.outcome(COALESCED, 1.5)
    plan.outcome(MISS_EVENT)
    plan.hit(0.5)
    assert outcomes(store) == {COALESCED: (1, 1.5), MISS_EVENT: (1, 0.0), HIT: (1, 0.5)}


def test_a_plan_reads_the_entry_with_its_stamps_in_one_call(
    store: Store, backend: Scripted
) -> None:
    entry = plant(store, "v", fresh_for=10, version=b"s1")
    backend.data[VKEY] = b"s1"
    assert plan_of(store).read_entry(lookup(KEY, VKEY)) == (entry, b"s1")
    assert backend.calls == [("get_many", (KEY, VKEY))]


def test_a_plan_reads_with_its_reader_and_derives_another(store: Store) -> None:
    read_by: list[str] = []

    def reader(tag: str) -> Any:
        return lambda where: read_by.append(f"{tag} {where.key}") or (MISS, b"x")

    def storable(value: object) -> bool:
        return True

    def spawn(job: Any) -> None:
        pass

    protect = Protection(stale=3)
    plan = Plan(store, protect, SCOPE, storable=storable, read=reader("first"), spawn=spawn,
                shares_values=False)  # fmt: skip
    assert plan.read_entry(lookup()) == (MISS, b"x")
    derived = plan.derive(read=reader("second"))
    assert derived.read_entry(lookup()) == (MISS, b"x")
    assert read_by == [f"first {KEY}", f"second {KEY}"]
    assert (derived.store, derived.protect, derived.scope) == (store, protect, SCOPE)
    assert (derived.storable, derived.spawn, derived.shares_values) == (storable, spawn, False)
    assert derived.hit is plan.hit


# -- re-entrancy ---------------------------------------------------------------------------


def test_a_leader_holds_its_key_until_it_ends(store: Store) -> None:
    plan = plan_of(store)
    assert not holds(KEY)
    first = led(plan)
    second = led(plan, "p:other")
    assert holds(KEY)
    assert holds("p:other")
    first.abandon()
    assert not holds(KEY)
    assert holds("p:other")
    second.abandon()
    assert not holds("p:other")


def test_a_task_holds_its_parents_keys_not_its_siblings(store: Store) -> None:
    """A computation that spawns tasks: each may re-enter the parent's key without waiting
    for itself, but must wait for a key a sibling computes (it is not its own)."""
    plan = plan_of(store)
    seen: dict[str, tuple[bool, bool, bool]] = {}

    def lead(key: str) -> Ticket:
        future, _ = store.stampede.async_flights.begin(key)
        return leader(plan, lookup(key), None, None, future, True)

    async def sibling(own: str, other: str, ready: asyncio.Event, go: asyncio.Event) -> None:
        ticket = lead(own)
        ready.set()
        await go.wait()  # the other sibling leads its key meanwhile
        seen[own] = (holds("p:parent"), holds(own), holds(other))
        ticket.abandon()

    async def scenario() -> None:
        parent = lead("p:parent")
        ready_a, ready_b, go = asyncio.Event(), asyncio.Event(), asyncio.Event()
        a = asyncio.create_task(sibling("p:a", "p:b", ready_a, go))
        b = asyncio.create_task(sibling("p:b", "p:a", ready_b, go))
        await ready_a.wait()
        await ready_b.wait()
        go.set()
        await asyncio.gather(a, b)
        assert (holds("p:parent"), holds("p:a"), holds("p:b")) == (True, False, False)
        parent.abandon()

    asyncio.run(scenario())
    assert seen == {"p:a": (True, True, False), "p:b": (True, True, False)}
    assert len(store.stampede.async_flights) == 0


def test_a_ticket_never_prepared_stores_nothing_over_any_invalidation(
    store: Store, backend: Scripted
) -> None:
    store.stampede.deleted(KEY)  # when, relative to its computation, it cannot tell
    Ticket(plan_of(store), lookup()).keep("v", 60)
    assert backend.calls == []


def test_a_finished_computation_is_not_kept_alive_by_its_hold(store: Store) -> None:
    class Value:
        pass

    value = Value()
    alive = weakref.ref(value)
    last = Entry(value, 0.0, 1.0)
    ticket = led(plan_of(store), KEY, last)
    ticket.keep("new", 60)
    del value, last, ticket
    gc.collect()
    assert alive() is None


def test_a_ticket_may_end_in_another_thread(store: Store) -> None:
    ticket = led(plan_of(store))
    seen: list[bool] = []

    def elsewhere() -> None:  # a fresh context: it holds nothing
        seen.append(holds(KEY))
        ticket.keep("v", 60)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join(10)
    assert seen == [False]
    assert waiters_see(ticket).kind == STORED
    assert not holds(KEY)  # ended: its hold here no longer counts


def test_a_ticket_that_ends_lets_go_only_of_its_own_hold(store: Store) -> None:
    plan = plan_of(store)
    first = led(plan)
    first.abandon()
    second = led(plan)  # the next leader of the same key
    first.abandon()  # ended already: no effect
    ticket_module._unhold(KEY, first)  # a stale release must not drop the new holder
    assert holds(KEY)
    second.abandon()


# -- keep: storing a computed value ----------------------------------------------------------


def test_keep_writes_the_entry_and_tells_the_waiters_its_bytes(
    store: Store, backend: Scripted, clock: FakeClock
) -> None:
    ticket = led(plan_of(store, stale=5))
    assert ticket.keep(["v"], 60) == ["v"]
    now = clock()
    assert stored(store) == Entry(["v"], now, now + 60, now + 65, None, (), 0.0)
    assert backend.ttls[KEY] == 65
    assert waiters_see(ticket) == Outcome(STORED, backend.data[KEY])
    assert outcomes(store) == {MISS_EVENT: (1, 0.0), WRITE: (1, len(backend.data[KEY]))}
    assert ticket.open is False
    assert not holds(KEY)


def test_keep_writes_under_the_tickets_version_and_keeps_it_for_the_fail_safe(
    store: Store, backend: Scripted, clock: FakeClock
) -> None:
    ticket = led(plan_of(store, fail_safe=30), KEY, None, b"s1", VKEY)
    ticket.keep("v", 60)
    assert stored(store) == Entry("v", clock(), clock() + 60, clock() + 60, b"s1", (), 0.0)
    assert backend.ttls[KEY] == 90


def test_keep_records_how_long_the_computation_took(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter([100.0, 102.5])  # started, then written

    class Timer:
        @staticmethod
        def perf_counter() -> float:
            return next(ticks)

    monkeypatch.setattr(ticket_module, "time", Timer)
    led(plan_of(store)).keep("v", 60)
    assert stored(store).cost == 2.5  # type: ignore[union-attr]


def test_a_ticket_never_prepared_records_no_cost(store: Store) -> None:
    Ticket(plan_of(store), lookup()).keep("v", 60)
    assert stored(store).cost == 0.0  # type: ignore[union-attr]


def test_keep_clears_the_keys_pass_mark(store: Store) -> None:
    store.stampede.mark_pass(KEY)
    led(plan_of(store)).keep("v", 60)
    assert not store.stampede.passing(KEY)


def test_keep_without_storing_tells_waiters_to_compute(store: Store, backend: Scripted) -> None:
    flight, _ = store.stampede.flights.begin(KEY)
    ticket = leader(plan_of(store), lookup(), None, None, flight, False)
    ticket._stores = False
    assert not ticket.stores
    assert ticket.keep("v") == "v"
    assert backend.calls == []
    assert flight.outcome == PASSED
    assert outcomes(store) == {MISS_EVENT: (1, 0.0)}


def test_keep_refuses_a_value_the_plan_will_not_store(store: Store, backend: Scripted) -> None:
    plan = Plan(store, Protection(), SCOPE, storable=lambda value: value != "bad")
    ticket = led(plan, KEY, None, b"s1")
    assert ticket.keep("bad", 60) == "bad"
    assert outcomes(store) == {SKIPPED: (1, 0.0), PASS_EVENT: (1, 0.0)}
    assert store.stampede.passing(KEY)
    marker = stored(store)
    assert marker != MISS
    assert is_pass(marker.value)
    assert waiters_see(ticket) == PASSED
    led(plan).keep("good", 60)
    assert stored(store).value == "good"  # type: ignore[union-attr]


def test_keep_when_the_backend_fails_tells_waiters_to_compute(
    store: Store, backend: Scripted
) -> None:
    backend.failing.add("set")
    ticket = led(plan_of(store))
    store.stampede.mark_pass(KEY)
    assert ticket.keep("v", 60) == "v"
    assert waiters_see(ticket) == PASSED
    assert store.stampede.passing(KEY)  # nothing written: the mark stays


def test_keep_after_an_invalidation_stores_nothing_and_waiters_retry(
    store: Store, backend: Scripted
) -> None:
    ticket = led(plan_of(store))
    store.stampede.deleted(KEY)
    ticket.keep("v", 60)
    assert backend.calls == []
    assert waiters_see(ticket) == GAVE_UP
    led(plan_of(store)).keep("after", 60)  # a computation started after it stores
    assert stored(store).value == "after"  # type: ignore[union-attr]


def test_an_invalidation_of_another_key_does_not_stop_the_write(store: Store) -> None:
    ticket = led(plan_of(store))
    store.stampede.deleted("p:other")
    ticket.keep("v", 60)
    assert stored(store).value == "v"  # type: ignore[union-attr]


def test_keep_without_a_stamp_for_its_family_stores_nothing(
    store: Store, backend: Scripted
) -> None:
    backend.failing.add("add")  # the stamp cannot be created
    ticket = led(plan_of(store), KEY, None, None, VKEY)
    assert ticket.version is None
    ticket.keep("v", 60)
    assert backend.named("set") == []
    assert waiters_see(ticket) == PASSED


def test_keep_logs_the_recovery_of_a_failing_recomputation(
    store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    last = plant(store, "old", fresh_for=1, age=2)
    store.stampede.failing("recomputing", SCOPE, RuntimeError("x"))
    caplog.clear()
    with caplog.at_level(logging.INFO, "flask_stash"):
        led(plan_of(store, fail_safe=30), "p:b", None).keep("new", 60)  # nothing replaced
        assert caplog.records == []
        led(plan_of(store, fail_safe=30), KEY, last).keep("new", 60)
    assert [r.getMessage() for r in caplog.records] == [
        f"recomputing of {SCOPE} works again after 1 failure(s)"
    ]


def test_keep_without_a_fail_safe_logs_no_recovery(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    last = plant(store, "old", fresh_for=1, age=2)
    store.stampede.failing("recomputing", KEY, RuntimeError("x"))
    caplog.clear()
    with caplog.at_level(logging.INFO, "flask_stash"):
        led(Plan(store), KEY, last).keep("new", 60)
        assert caplog.records == []
        led(Plan(store, Protection(fail_safe=30)), KEY, last).keep("new", 60)
    assert [r.getMessage() for r in caplog.records] == [
        f"recomputing of {KEY} works again after 1 failure(s)"
    ]


# -- write: what a front end writes itself ----------------------------------------------------


def test_write_returns_the_bytes_written_at_the_given_key(
    store: Store, backend: Scripted, clock: FakeClock
) -> None:
    ticket = led(plan_of(store), KEY, None, b"s1")
    blob = ticket.write("p:variant", "v", 0)
    assert blob == backend.data["p:variant"]
    assert backend.ttls["p:variant"] is None
    assert stored(store, "p:variant") == Entry("v", clock(), None, None, b"s1", (), 0.0)
    ticket.stored()
    assert waiters_see(ticket) == Outcome(STORED)
    assert outcomes(store) == {MISS_EVENT: (1, 0.0), WRITE: (1, len(blob))}


def test_write_clears_the_tickets_pass_mark_not_the_variants(store: Store) -> None:
    store.stampede.mark_pass(KEY)
    store.stampede.mark_pass("p:variant")
    ticket = led(plan_of(store))
    ticket.write("p:variant", "v", 60)
    ticket.stored()
    assert not store.stampede.passing(KEY)
    assert store.stampede.passing("p:variant")


def test_an_unstorable_value_is_counted_and_logged_not_raised(
    store: Store, backend: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(data: object) -> bytes:
        raise SerializationError("cannot pickle a socket")

    store.serializer.dumps = refuse  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, "flask_stash"):
        ticket = led(plan_of(store))
        assert ticket.write(KEY, "v", 60) is None
        ticket.abandon()
        assert Ticket(Plan(store), lookup()).write(KEY, "v", 60) is None
    assert store.stats.get("errors", f"store {SCOPE}") == 1
    assert store.stats.get("errors", f"store {KEY}") == 1
    assert caplog.records[0].getMessage() == (
        f"cache store {SCOPE} failed, serving uncached: SerializationError: cannot pickle a socket"
    )


def test_an_unstorable_value_raises_when_not_failing_open(backend: Scripted) -> None:
    store = Store(backend, fail_open=False)
    store.serializer.dumps = lambda data: (_ for _ in ()).throw(  # type: ignore[method-assign]
        SerializationError("no")
    )
    with pytest.raises(SerializationError):
        Ticket(Plan(store), lookup()).write(KEY, "v", 60)


def test_jitter_takes_a_random_fraction_off_the_ttl(
    store: Store, backend: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ticket_module.random, "random", lambda: 0.5)
    led(plan_of(store, jitter=0.2, stale=5)).keep("v", 100)
    assert backend.ttls[KEY] == 95  # 100 * (1 - 0.2 * 0.5), then the stale window
    led(plan_of(store, jitter=0.2), "p:default").keep("v")  # the store's default of 100
    assert backend.ttls["p:default"] == 90


def test_jitter_never_makes_a_ttl_vanish(
    store: Store, backend: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ticket_module.random, "random", lambda: 1.0)
    led(plan_of(store, jitter=0.999)).keep("v", 0.5)
    assert backend.ttls[KEY] == 0.001


def test_without_jitter_the_ttl_is_the_timeout_exactly(store: Store, backend: Scripted) -> None:
    led(plan_of(store)).keep("v", 0.0001)
    assert backend.ttls[KEY] == 0.0001


def test_jitter_leaves_entries_that_never_expire_alone(
    store: Store, backend: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ticket_module.random, "random", lambda: 0.5)
    led(plan_of(store, jitter=0.5)).keep("v", 0)
    assert backend.ttls[KEY] is None
    assert stored(store).fresh_until is None  # type: ignore[union-attr]


# -- refuse -------------------------------------------------------------------------------


def test_a_leader_refusing_marks_the_key_pass_here_and_in_the_backend(
    store: Store, backend: Scripted, clock: FakeClock
) -> None:
    ticket = led(plan_of(store), KEY, None, b"s1")
    ticket.refuse()
    now = clock()
    assert stored(store) == Entry(PASS_VALUE, now, now, now + PASS_SECONDS, b"s1", (), 0.0)
    assert backend.ttls[KEY] == PASS_SECONDS
    assert store.stampede.passing(KEY)
    assert waiters_see(ticket) == PASSED
    assert outcomes(store) == {PASS_EVENT: (1, 0.0)}


def test_a_leader_refusing_without_a_marker_writes_nothing(store: Store, backend: Scripted) -> None:
    led(plan_of(store)).refuse(marker=False)
    assert backend.calls == []
    assert store.stampede.passing(KEY)
    assert outcomes(store) == {PASS_EVENT: (1, 0.0)}


def test_a_ticket_outside_a_flight_refuses_without_marking(store: Store, backend: Scripted) -> None:
    computing(plan_of(store), lookup(), None, None).refuse()
    assert backend.calls == []
    assert not store.stampede.passing(KEY)
    assert outcomes(store) == {PASS_EVENT: (1, 0.0)}


def test_a_head_request_refusing_is_a_plain_miss(store: Store) -> None:
    Ticket(plan_of(store), lookup(), stores=False).refuse()
    assert outcomes(store) == {MISS_EVENT: (1, 0.0)}


def test_an_uncounted_ticket_refusing_counts_nothing(store: Store) -> None:
    uncounted(computing(plan_of(store), lookup(), None, None)).refuse()
    assert outcomes(store) == {}


# -- fail, abandon --------------------------------------------------------------------------


def test_a_failure_without_a_fail_safe_raises_to_the_caller_and_waiters(store: Store) -> None:
    error = RuntimeError("down")
    last = plant(store, "old", fresh_for=1, age=2)
    ticket = led(plan_of(store), KEY, last)
    with pytest.raises(RuntimeError) as raised:
        ticket.fail(error)
    assert raised.value is error
    assert waiters_see(ticket) == Outcome(ERROR, error=error)
    assert outcomes(store) == {MISS_EVENT: (1, 0.0)}


def test_an_interruption_makes_the_waiters_start_over(store: Store) -> None:
    last = plant(store, "old", fresh_for=1, age=2)
    ticket = led(plan_of(store, fail_safe=60), KEY, last)
    with pytest.raises(KeyboardInterrupt):
        ticket.fail(KeyboardInterrupt())
    assert waiters_see(ticket) == GAVE_UP


def test_the_fail_safe_serves_the_last_value_and_logs_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    error = RuntimeError("down")
    last = plant(store, "old", fresh_for=1, age=2, cost=4.0)
    with caplog.at_level(logging.INFO, "flask_stash"):
        assert led(plan_of(store, fail_safe=60), KEY, last).fail(error) == "old"
        ticket = led(plan_of(store, fail_safe=60), KEY, last)
        assert ticket.fail(error) == "old"
    assert waiters_see(ticket) == Outcome(ERROR, error=error)
    assert outcomes(store) == {FAIL_SAFE: (2, 0.0), STALE: (2, 8.0)}
    assert [r.getMessage() for r in caplog.records] == [
        f"recomputing of {SCOPE} failed (RuntimeError: down); serving the last good value "
        "while it keeps failing (logged once, counted in stats)"
    ]


def test_the_fail_safe_logs_by_key_without_a_scope(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    last = plant(store, "old", fresh_for=1, age=2)
    with caplog.at_level(logging.INFO, "flask_stash"):
        computing(Plan(store, Protection(fail_safe=60)), lookup(), None, last).fail(
            RuntimeError("x")
        )
    assert caplog.records[0].getMessage().startswith(f"recomputing of {KEY} failed")


def test_an_uncounted_fail_safe_serve_counts_only_the_fail_safe(store: Store) -> None:
    last = plant(store, "old", fresh_for=1, age=2, cost=4.0)
    ticket = uncounted(computing(plan_of(store, fail_safe=60), lookup(), None, last))
    assert ticket.fail(RuntimeError("x")) == "old"
    assert outcomes(store) == {FAIL_SAFE: (1, 0.0)}


def test_abandoning_counts_the_miss_and_makes_waiters_start_over(store: Store) -> None:
    ticket = led(plan_of(store))
    ticket.abandon()
    assert waiters_see(ticket) == GAVE_UP
    with pytest.raises(RuntimeError):
        ticket.fail(RuntimeError("late"))  # ended already: counted once, waiters told once
    assert waiters_see(ticket) == GAVE_UP
    assert outcomes(store) == {MISS_EVENT: (1, 0.0)}


def test_a_failing_release_still_ends_the_flight(store: Store) -> None:
    ticket = led(plan_of(store))

    def release() -> None:
        raise OSError("lock server gone")

    ticket._release = release
    with pytest.raises(OSError):
        ticket.abandon()
    assert waiters_see(ticket) == GAVE_UP
    assert not holds(KEY)


def test_an_async_leader_ends_its_future(store: Store) -> None:
    async def scenario() -> Outcome:
        future, _ = store.stampede.async_flights.begin(KEY)
        ticket = prepare(leader(plan_of(store), lookup(), None, None, future, True))
        assert holds(KEY)
        ticket.keep("v", 60)
        assert not holds(KEY)
        assert len(store.stampede.async_flights) == 0
        return await future

    assert asyncio.run(scenario()).kind == STORED
    assert len(store.stampede.flights) == 0


def test_a_miss_while_the_backend_fails_counts_as_a_backend_failure(
    store: Store, backend: Scripted
) -> None:
    backend.failing.add("get_many")
    store.read_stored(KEY, (VKEY,))  # the backend fails: its breaker counts
    for _ in range(5):
        store.read_stored(KEY, (VKEY,))
    assert store.gate.failed_here()
    computing(plan_of(store), lookup(), None, None).abandon()
    passing(computing(plan_of(store), lookup(), None, None)).abandon()
    assert outcomes(store) == {BACKEND_FAILED: (1, 0.0), PASS_EVENT: (1, 0.0)}


# -- the ways a ticket is made ------------------------------------------------------------


def test_a_ready_ticket_serves_the_entry(store: Store, clock: FakeClock) -> None:
    entry = Entry("v", clock(), None, None, b"s1")
    ticket = ready(plan_of(store), lookup(), entry)
    assert (ticket.ready, ticket.open, ticket.stale) == (True, False, False)
    assert (ticket.entry, ticket.value, ticket.version, ticket.last) == (entry, "v", b"s1", None)
    assert ready(plan_of(store), lookup(), entry, stale=True).stale


def test_a_fresh_ticket_computes_and_stores(store: Store) -> None:
    ticket = Ticket(plan_of(store), lookup())
    assert (ticket.ready, ticket.stale, ticket.open, ticket.stores) == (False, False, True, True)
    assert (ticket.value, ticket.entry, ticket.version, ticket.last) == (None, None, None, None)


def test_prepare_creates_the_family_stamp_before_computing(store: Store, backend: Scripted) -> None:
    ticket = computing(plan_of(store), lookup(KEY, VKEY), None, None)
    assert ticket.version == backend.data[VKEY]
    assert ticket.version
    same = computing(plan_of(store), lookup(KEY, VKEY), None, None)
    assert same.version == ticket.version
    known = computing(plan_of(store), lookup(KEY, VKEY), b"known", None)
    assert known.version == b"known"
    plain = computing(plan_of(store), lookup(), None, None)
    assert plain.version is None


def test_a_computation_overtaken_before_it_started_still_stores(store: Store) -> None:
    store.stampede.deleted(KEY)
    computing(plan_of(store), lookup(), None, None).keep("v", 60)
    assert stored(store).value == "v"  # type: ignore[union-attr]


def test_a_turn_without_a_result_leaves_the_leader_to_compute(store: Store) -> None:
    released: list[bool] = []
    flight, _ = store.stampede.flights.begin(KEY)
    ticket = leader(plan_of(store), lookup(KEY, VKEY), None, None, flight, False)
    turned = after_turn(ticket, Turn(False, None, lambda: released.append(True)))
    assert turned is ticket
    assert ticket.open
    assert not ticket.ready
    assert ticket.version  # prepared: its family's stamp exists
    ticket.keep("v", 60)
    assert released == [True]


def test_a_turn_that_found_the_result_serves_it_to_everyone(store: Store, clock: FakeClock) -> None:
    entry = Entry("theirs", clock(), clock() + 10, None, None, (), 2.0)
    flight, _ = store.stampede.flights.begin(KEY)
    ticket = leader(plan_of(store), lookup(), None, None, flight, False)
    plan = ticket.plan
    turned = after_turn(ticket, Turn(True, entry))
    assert (turned.plan, turned.where) == (plan, lookup())
    assert turned.ready
    assert turned.value == "theirs"
    assert not turned.stale
    assert flight.outcome == Outcome(STORED)
    assert not holds(KEY)
    assert outcomes(store) == {COALESCED: (1, 2.0)}


def test_a_turn_that_found_a_marker_computes_as_a_pass(store: Store, clock: FakeClock) -> None:
    marker = Entry(PASS_VALUE, clock(), clock())
    last = Entry("old", clock() - 5, clock() - 1)
    flight, _ = store.stampede.flights.begin(KEY)
    ticket = leader(plan_of(store), lookup(), None, last, flight, False)
    turned = after_turn(ticket, Turn(True, marker))
    assert not turned.ready
    assert turned.open
    assert turned.last is last
    assert flight.outcome == PASSED
    turned.abandon()
    assert outcomes(store) == {PASS_EVENT: (1, 0.0)}


def test_a_refresh_ticket_computes_uncounted_from_the_current_entry(
    store: Store, backend: Scripted
) -> None:
    current = plant(store, "old", fresh_for=1, age=2, version=b"s1")
    ticket = refresh_ticket(plan_of(store), lookup(), current)
    assert ticket is not None
    assert ticket.open
    assert not ticket.ready
    assert (ticket.version, ticket.last) == (b"s1", current)
    ticket.keep("new", 60)
    assert outcomes(store) == {WRITE: (1, len(backend.data[KEY]))}


def test_a_refresh_ticket_holds_the_backend_lock(clock: FakeClock) -> None:
    backend = Locking()
    store = make_store(backend, clock)
    current = plant(store, "old", fresh_for=1, age=2)
    ticket = refresh_ticket(plan_of(store, lock_lease=7), lookup(), current)
    assert ticket is not None
    assert backend.named("acquire_lock") == [("acquire_lock", KEY + ":lock", 7)]
    ticket.keep("new", 60)
    assert backend.named("release_lock") == [("release_lock", KEY + ":lock")]
    assert backend.held == {}


def test_no_refresh_ticket_while_another_process_holds_the_lock(clock: FakeClock) -> None:
    backend = Locking(False)
    store = make_store(backend, clock)
    current = plant(store, "old", fresh_for=1, age=2)
    assert refresh_ticket(plan_of(store), lookup(), current) is None


# -- the fail-safe window --------------------------------------------------------------------


def test_the_fail_safe_window_runs_from_the_end_of_the_servable_time(
    store: Store, clock: FakeClock
) -> None:
    now = clock()
    plan = plan_of(store, fail_safe=10)
    assert fail_safe_allows(plan, Entry("v", 0, now - 9.999))
    assert not fail_safe_allows(plan, Entry("v", 0, now - 10))
    assert fail_safe_allows(plan, Entry("v", 0, now - 20, now - 9.999))  # after its stale time
    assert not fail_safe_allows(plan, Entry("v", 0, now - 5, now - 10))
    assert fail_safe_allows(plan, Entry("v", 0, None))
    assert fail_safe_allows(plan_of(store, fail_safe=0.5), Entry("v", 0, now - 0.2))


def test_the_fail_safe_needs_a_last_good_value_and_the_option(
    store: Store, clock: FakeClock
) -> None:
    now = clock()
    assert not fail_safe_allows(plan_of(store, fail_safe=10), None)
    assert not fail_safe_allows(plan_of(store), Entry("v", 0, now))
    stale_but_off = Entry("v", 0, now - 1, now + 5)  # written with a stale window, now off
    assert not fail_safe_allows(plan_of(store), stale_but_off)
    assert not fail_safe_allows(plan_of(store, fail_safe=10), Entry(PASS_VALUE, 0, now))


def test_the_pass_marker_expires_with_blob_of_its_own(store: Store, clock: FakeClock) -> None:
    marker = Entry(PASS_VALUE, clock(), clock())
    assert is_pass(store.decode(blob_of(store, marker)).value)  # type: ignore[union-attr]

"""The pipeline's shared decisions, one by one, on a scripted backend and a fake clock:
where an entry stands (fresh, early refresh, stale, expired), what a read hands the caller
and how it is counted, which misses need no flight, what a waiter does with its leader's
outcome, and how a background refresh's end is remembered and logged."""

from __future__ import annotations

import logging
import math

import pytest

from flask_stash.core import decisions
from flask_stash.core.api import MISS
from flask_stash.core.decisions import (
    EARLY_REFRESH,
    EXPIRED,
    FRESH,
    RETRIES,
    STALE_SERVE,
    classify,
    follow,
    found_meanwhile,
    fresh,
    judge,
    refresh_failed,
    refresh_worked,
    shortcut,
)
from flask_stash.core.entry import Entry
from flask_stash.core.flight import GAVE_UP, PASSED, Outcome
from flask_stash.core.stampede import Protection
from flask_stash.core.stats import (
    COALESCED,
    EARLY,
    FAIL_SAFE,
    HIT,
    MISS_EVENT,
    PASS_EVENT,
    REFRESH_ERROR,
    STALE,
)
from flask_stash.core.store import Store
from flask_stash.core.ticket import PASS_VALUE, Plan, Ticket, leader
from flask_stash.testing import FakeClock

from .pipelinekit import (
    KEY,
    SCOPE,
    Scripted,
    blob_of,
    lookup,
    make_store,
    nothing_left_held,  # noqa: F401 (an autouse fixture)
    outcomes,
    plant,
)

NOW = 1000.0


@pytest.fixture
def store(clock: FakeClock) -> Store:
    return make_store(Scripted(), clock)


def plan_of(store: Store, **options: object) -> Plan:
    return Plan(store, Protection(**options), SCOPE)  # type: ignore[arg-type]


def at(now: float, fresh_until: float | None, stale_until: float | None = None,
       cost: float = 0.0) -> Entry:  # fmt: skip
    return Entry("v", now - 10, fresh_until, stale_until, None, (), cost)


def ended(ticket: Ticket) -> dict[str, tuple[int, float]]:
    """The counters once ``ticket`` ends without a result."""
    ticket.abandon()
    return outcomes(ticket.plan.store)


def test_the_retry_bound() -> None:
    assert RETRIES == 3


# -- classify: where an entry stands ----------------------------------------------------------


def test_an_entry_is_fresh_until_its_fresh_until() -> None:
    protect = Protection(stale=5)
    assert classify(at(NOW, None), NOW, protect) == FRESH
    assert classify(at(NOW, NOW + 0.001), NOW, protect) == FRESH
    assert classify(at(NOW, NOW, NOW + 5), NOW, protect) == STALE_SERVE


def test_a_stale_entry_is_served_only_inside_its_window_and_with_stale_on() -> None:
    entry = at(NOW, NOW - 1, NOW + 1)
    assert classify(entry, NOW, Protection(stale=5)) == STALE_SERVE
    assert classify(entry, NOW, Protection(stale=0.5)) == STALE_SERVE  # any window at all
    assert classify(entry, NOW, Protection(stale=0)) == EXPIRED  # written with a window, now off
    assert classify(at(NOW, NOW - 1, NOW), NOW, Protection(stale=5)) == EXPIRED
    assert classify(at(NOW, NOW - 1), NOW, Protection(stale=5)) == EXPIRED


def test_the_verdicts_are_distinct_names() -> None:
    assert (FRESH, EARLY_REFRESH, STALE_SERVE, EXPIRED) == ("fresh", "early", "stale", "expired")


def fixed_random(monkeypatch: pytest.MonkeyPatch, draw: float) -> None:
    monkeypatch.setattr(decisions.random, "random", lambda: draw)


@pytest.mark.parametrize(
    ("fresh_until", "verdict"),
    [(NOW + 6, EARLY_REFRESH), (NOW + 6.001, FRESH), (NOW + 5.999, EARLY_REFRESH)],
)
def test_xfetch_refreshes_early_once_cost_times_beta_reaches_the_expiry(
    monkeypatch: pytest.MonkeyPatch, fresh_until: float, verdict: str
) -> None:
    fixed_random(monkeypatch, math.exp(-1))  # -log(draw) == 1: the gap is cost * beta
    entry = at(NOW, fresh_until, cost=2.0)
    assert classify(entry, NOW, Protection(early_refresh=3)) == verdict


def test_xfetch_needs_a_cost_an_expiry_and_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_random(monkeypatch, 1e-9)  # -log(draw) ~ 20.7: refreshes 10 s before the expiry
    assert classify(at(NOW, NOW + 10, cost=1.0), NOW, Protection(early_refresh=1)) == EARLY_REFRESH
    assert classify(at(NOW, NOW + 10, cost=1.0), NOW, Protection(early_refresh=0)) == FRESH
    assert classify(at(NOW, NOW + 10, cost=0.0), NOW, Protection(early_refresh=1)) == FRESH
    assert classify(at(NOW, NOW + 10, cost=-1.0), NOW, Protection(early_refresh=1)) == FRESH
    assert classify(at(NOW, None, cost=1.0), NOW, Protection(early_refresh=1)) == FRESH


def test_a_zero_draw_counts_as_the_smallest_positive_one(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_random(monkeypatch, 0.0)  # log(0) would raise: 1e-300 makes the gap ~690 * cost
    protect = Protection(early_refresh=1)
    assert classify(at(NOW, NOW + 600, cost=1.0), NOW, protect) == EARLY_REFRESH
    assert classify(at(NOW, NOW + 700, cost=1.0), NOW, protect) == FRESH


# -- judge: what a read hands the caller ---------------------------------------------------


def test_a_miss_is_nothing_to_serve_and_counts_nothing_yet(store: Store) -> None:
    assert judge(plan_of(store), lookup(), MISS, None) == (None, None)
    assert outcomes(store) == {}


def test_a_pass_marker_is_handed_back_as_the_last_entry(store: Store, clock: FakeClock) -> None:
    marker = Entry(PASS_VALUE, clock(), None)  # even one that never expires
    assert judge(plan_of(store), lookup(), marker, None) == (None, marker)
    assert outcomes(store) == {}


def test_an_expired_entry_is_handed_back_as_the_last_entry(store: Store, clock: FakeClock) -> None:
    old = at(clock(), clock() - 1, clock() + 5, cost=2.0)
    refreshed: list[Entry] = []
    assert judge(plan_of(store), lookup(), old, refreshed.append) == (None, old)
    assert refreshed == []
    assert outcomes(store) == {}


def test_a_fresh_entry_is_a_hit_saving_its_cost(store: Store, clock: FakeClock) -> None:
    entry = Entry(["v"], clock(), clock() + 1, None, b"s1", (), 2.5)
    refreshed: list[Entry] = []
    plan = plan_of(store, stale=9)
    ticket, last = judge(plan, lookup(), entry, refreshed.append)
    assert last is None
    assert ticket is not None
    assert (ticket.ready, ticket.open, ticket.stale) == (True, False, False)
    assert ticket.value is entry.value
    assert ticket.entry is entry
    assert ticket.version == b"s1"
    assert (ticket.plan, ticket.where) == (plan, lookup())  # a ticket says what it is about
    assert refreshed == []
    assert outcomes(store) == {HIT: (1, 2.5)}


def test_a_stale_entry_is_served_stale_and_refreshed(store: Store, clock: FakeClock) -> None:
    entry = at(clock(), clock(), clock() + 5, cost=1.5)
    refreshed: list[Entry] = []
    ticket, last = judge(plan_of(store, stale=5), lookup(), entry, refreshed.append)
    assert last is None
    assert ticket is not None
    assert (ticket.ready, ticket.stale, ticket.value) == (True, True, "v")
    assert refreshed == [entry]
    assert outcomes(store) == {STALE: (1, 1.5)}


def test_a_stale_entry_without_a_refresher_is_still_served(store: Store, clock: FakeClock) -> None:
    entry = at(clock(), clock(), clock() + 5)
    ticket, _ = judge(plan_of(store, stale=5), lookup(), entry, None)
    assert ticket is not None
    assert ticket.stale


def test_an_entry_due_early_is_a_hit_that_starts_a_refresh(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed_random(monkeypatch, 0.0)
    entry = at(clock(), clock() + 1, cost=1.0)
    refreshed: list[Entry] = []
    ticket, _ = judge(plan_of(store, early_refresh=1), lookup(), entry, refreshed.append)
    assert ticket is not None
    assert (ticket.ready, ticket.stale) == (True, False)
    assert refreshed == [entry]
    assert outcomes(store) == {HIT: (1, 1.0), EARLY: (1, 0.0)}
    judge(plan_of(store, early_refresh=1), lookup(), entry, None)  # nobody to refresh
    assert outcomes(store)[EARLY] == (2, 0.0)


def test_judging_uses_the_stores_clock(store: Store, clock: FakeClock) -> None:
    entry = at(clock(), clock() + 10)
    clock.advance(10)
    assert judge(plan_of(store), lookup(), entry, None) == (None, entry)


# -- shortcut: misses that need no flight -------------------------------------------------


def test_a_miss_that_may_not_store_computes_without_storing(store: Store) -> None:
    last = at(0, 0)
    ticket = shortcut(plan_of(store), lookup(), b"s1", last, False)
    assert ticket is not None
    assert ticket.stores is False
    assert ticket.where == lookup()
    assert not ticket.ready
    assert (ticket.version, ticket.last) == (b"s1", last)
    assert len(store.stampede.flights) == 0
    assert ended(ticket) == {MISS_EVENT: (1, 0.0)}


def test_a_re_entered_key_computes_without_storing_or_waiting(store: Store) -> None:
    plan = plan_of(store)
    flight, _ = store.stampede.flights.begin(KEY)
    outer = leader(plan, lookup(), None, None, flight, False)
    inner = shortcut(plan, lookup(), None, None, True)
    assert inner is not None
    assert not inner.stores
    assert shortcut(plan, lookup("p:other"), None, None, True) is None
    outer._end(PASSED)


def test_a_key_marked_pass_computes_at_once_counted_as_a_pass(store: Store) -> None:
    store.stampede.mark_pass(KEY)
    ticket = shortcut(plan_of(store), lookup(), b"s1", None, True)
    assert ticket is not None
    assert ticket.stores
    assert not ticket.ready
    assert ticket.version == b"s1"
    assert len(store.stampede.flights) == 0
    assert ended(ticket) == {PASS_EVENT: (1, 0.0)}


def test_a_pass_marker_read_computes_at_once_counted_as_a_pass(
    store: Store, clock: FakeClock
) -> None:
    marker = Entry(PASS_VALUE, clock(), clock())
    ticket = shortcut(plan_of(store), lookup(), None, marker, True)
    assert ticket is not None
    assert ticket.stores
    assert ticket.last is marker
    assert ended(ticket) == {PASS_EVENT: (1, 0.0)}


def test_without_single_flight_a_miss_computes_at_once(store: Store, clock: FakeClock) -> None:
    last = at(clock(), clock() - 1)
    ticket = shortcut(plan_of(store, single_flight=False), lookup(), b"s1", last, True)
    assert ticket is not None
    assert ticket.stores
    assert (ticket.version, ticket.last) == (b"s1", last)
    assert ended(ticket) == {MISS_EVENT: (1, 0.0)}


def test_a_protected_miss_needs_a_flight(store: Store, clock: FakeClock) -> None:
    assert shortcut(plan_of(store), lookup(), None, None, True) is None
    assert shortcut(plan_of(store), lookup(), None, at(clock(), clock() - 1), True) is None


# -- follow: a waiter's next step ----------------------------------------------------------


def test_a_waiter_decodes_its_own_copy_of_what_the_leader_stored(
    store: Store, clock: FakeClock
) -> None:
    entry = Entry(["v"], clock(), clock() + 10, None, None, (), 4.0)
    plan = plan_of(store)
    ticket = follow(plan, lookup(), Outcome("stored", blob_of(store, entry)), None)
    assert ticket is not None
    assert (ticket.plan, ticket.where) == (plan, lookup())
    assert ticket.ready
    assert not ticket.stale
    assert ticket.value == ["v"]
    assert store.backend.calls == []  # type: ignore[attr-defined]
    assert outcomes(store) == {COALESCED: (1, 4.0)}


def test_a_waiter_reads_the_store_when_values_are_not_shared(
    store: Store, clock: FakeClock
) -> None:
    plant(store, "from the store", fresh_for=10, cost=3.0)
    other = Entry("leader's", clock(), clock() + 10)
    plan = Plan(store, Protection(), SCOPE, shares_values=False)
    ticket = follow(plan, lookup(), Outcome("stored", blob_of(store, other)), None)
    assert ticket is not None
    assert ticket.value == "from the store"
    assert outcomes(store) == {COALESCED: (1, 3.0)}


def test_a_waiter_reads_the_store_when_the_leader_sent_no_bytes(store: Store) -> None:
    plant(store, "from the store", fresh_for=10)
    ticket = follow(plan_of(store), lookup(), Outcome("stored"), None)
    assert ticket is not None
    assert ticket.ready
    assert ticket.value == "from the store"


def test_a_waiter_reads_the_store_when_the_bytes_are_undecodable(store: Store) -> None:
    plant(store, "from the store", fresh_for=10)
    ticket = follow(plan_of(store), lookup(), Outcome("stored", b"garbage"), None)
    assert ticket is not None
    assert ticket.value == "from the store"


def test_a_waiter_computes_when_the_stored_entry_is_gone(store: Store, clock: FakeClock) -> None:
    last = at(clock(), clock() - 1)
    plant(store, "expired", fresh_for=5, age=5)
    ticket = follow(plan_of(store), lookup(), Outcome("stored"), last)
    assert ticket is not None
    assert not ticket.ready
    assert ticket.stores
    assert (ticket.version, ticket.last) == (None, last)
    assert ended(ticket) == {MISS_EVENT: (1, 0.0)}


def test_a_waiter_computes_when_the_leader_stored_a_pass_marker(
    store: Store, clock: FakeClock
) -> None:
    marker = Entry(PASS_VALUE, clock(), clock())
    last = at(clock(), clock() - 1)
    ticket = follow(plan_of(store), lookup(), Outcome("stored", blob_of(store, marker)), last)
    assert ticket is not None
    assert not ticket.ready
    assert ticket.last is last  # still served by a fail-safe if this computation fails
    assert ended(ticket) == {PASS_EVENT: (1, 0.0)}


def test_a_waiter_computes_when_the_leader_passed(store: Store, clock: FakeClock) -> None:
    last = at(clock(), clock() - 1)
    ticket = follow(plan_of(store), lookup(), PASSED, last)
    assert ticket is not None
    assert not ticket.ready
    assert ticket.last is last
    assert ended(ticket) == {PASS_EVENT: (1, 0.0)}


def test_a_waiter_starts_over_when_the_leader_gave_up(store: Store) -> None:
    assert follow(plan_of(store), lookup(), GAVE_UP, None) is None
    assert outcomes(store) == {}


def test_a_waiter_raises_its_leaders_error(store: Store, clock: FakeClock) -> None:
    error = RuntimeError("down")
    last = at(clock(), clock() - 1, cost=3.0)  # a fail-safe would serve it: none is set
    with pytest.raises(RuntimeError) as raised:
        follow(plan_of(store), lookup(), Outcome("error", error=error), last)
    assert raised.value is error
    assert outcomes(store) == {COALESCED: (1, 0.0)}


def test_a_waiter_serves_the_last_value_when_the_fail_safe_allows(
    store: Store, clock: FakeClock
) -> None:
    last = at(clock(), clock() - 1, cost=3.0)
    plan = plan_of(store, fail_safe=5)
    ticket = follow(plan, lookup(), Outcome("error", error=RuntimeError("down")), last)
    assert ticket is not None
    assert (ticket.plan, ticket.where) == (plan, lookup())
    assert ticket.ready
    assert ticket.stale
    assert ticket.value == "v"
    assert ticket.entry is last
    assert outcomes(store) == {FAIL_SAFE: (1, 0.0), STALE: (1, 3.0)}


# -- fresh, found_meanwhile: did another process produce it? ----------------------------------


def test_fresh_finds_only_a_fresh_entry_or_a_marker(store: Store) -> None:
    plan = plan_of(store)
    assert fresh(plan, lookup()) is None
    assert found_meanwhile(plan, lookup()) == (False, None)
    plant(store, "old", fresh_for=5, stale_for=10, age=5)
    assert fresh(plan, lookup()) is None
    assert found_meanwhile(plan, lookup()) == (False, None)
    marker = plant(store, PASS_VALUE, fresh_for=0)
    assert fresh(plan, lookup()) == marker
    new = plant(store, "new", fresh_for=5)
    assert fresh(plan, lookup()) == new
    assert found_meanwhile(plan, lookup()) == (True, new)


# -- the end of a background refresh -------------------------------------------------------


def test_a_failed_refresh_is_counted_backs_off_and_is_logged_once(
    store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    plan = plan_of(store)
    ticket = Ticket(plan, lookup())
    with caplog.at_level(logging.INFO, "flask_stash"):
        refresh_failed(ticket, RuntimeError("db down"))
        refresh_failed(ticket, RuntimeError("db down"))
    assert outcomes(store) == {REFRESH_ERROR: (2, 0.0)}
    assert not store.stampede.refresh_allowed(KEY)
    clock.advance(1.5)  # backed off 1 s, then 2 s
    assert not store.stampede.refresh_allowed(KEY)
    assert [r.getMessage() for r in caplog.records] == [
        f"background refresh of {SCOPE} failed (RuntimeError: db down); serving the last "
        "good value while it keeps failing (logged once, counted in stats)"
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, "flask_stash"):
        refresh_worked(ticket)
    assert store.stampede.refresh_allowed(KEY)  # at once: the back-off is over
    assert [r.getMessage() for r in caplog.records] == [
        f"background refresh of {SCOPE} works again after 2 failure(s)"
    ]
    refresh_failed(ticket, RuntimeError("db down"))
    clock.advance(1)  # backing off from 1 s again
    assert store.stampede.refresh_allowed(KEY)


def test_a_refresh_without_a_scope_is_logged_by_its_key(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = Ticket(Plan(store), lookup())
    with caplog.at_level(logging.INFO, "flask_stash"):
        refresh_failed(ticket, RuntimeError("x"))
        refresh_worked(ticket)
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"background refresh of {KEY} failed",
        f"background refresh of {KEY} works again after 1 failure(s)",
    ]
    assert store.stats.get(REFRESH_ERROR, "") == 1

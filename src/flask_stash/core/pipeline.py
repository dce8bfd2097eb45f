"""The get-or-compute pipeline: the one routine under every front end.

``memoize``, ``@cached`` (routed views and plain functions) and the Jinja tag build keys
and describe themselves in a :class:`Plan` (how to read, what may be stored, how to run
background work); this module decides everything else: fresh, stale or expired, early
refresh, fail-safe, jitter, single-flight in the process, the backend lock across
processes, storing, and hit-for-pass.

A miss is driven in explicit steps, not around a callback::

    ticket = fetch(plan, where, refresh)      # read; at a miss, maybe wait for a leader
    if ticket.ready:
        return ticket.value                   # a hit, or another caller's result
    try:
        value = fn(*args, **kwargs)
    except BaseException as error:
        return ticket.fail(error)             # the fail-safe value, or raises
    return ticket.keep(value, timeout)        # stored (or marked "pass"); waiters released

Why steps: the computation runs in the front end's own frame, so a memoized recursive
function costs two frames per level (its wrapper and itself) instead of a tower of
closures, and a view can end its ticket later, when its final response is known.

Guarantees:
- Each caller gets its own value: waiters decode the bytes the leader stored (or read the
  store), never the leader's object. Only deeply immutable values are shared.
- A value refused for storage marks the key "pass" (in the process and in the backend,
  for :data:`~flask_stash.core.stampede.PASS_SECONDS`): callers then compute at once, and
  the waiters of that first computation compute in parallel.
- A computation that re-enters its own key (same thread or task) never waits for itself.
- An invalidation that returned wins: a computation that started before it stores nothing
  (version stamps across processes, :class:`~flask_stash.core.stampede.Stampede` epochs
  for plain keys in the process).

Layout: this module holds the sync entry points and is the one to import from; the async
mirror is :mod:`~flask_stash.core.apipeline`, :class:`Plan`, :class:`Ticket` and the
re-entrancy bookkeeping are :mod:`~flask_stash.core.ticket`, and the decisions both paths
share are :mod:`~flask_stash.core.decisions`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask_stash.core.api import Miss
from flask_stash.core.apipeline import ARefresh, afetch, aget_or_compute, amiss
from flask_stash.core.decisions import (
    EARLY_REFRESH,
    EXPIRED,
    FRESH,
    RETRIES,
    STALE_SERVE,
    classify,
    follow,
    found_meanwhile,
    judge,
    refresh_failed,
    refresh_worked,
    shortcut,
)
from flask_stash.core.engine import Lookup
from flask_stash.core.entry import Entry
from flask_stash.core.locking import take_turn
from flask_stash.core.stampede import DEFAULT, Protection
from flask_stash.core.store import Store, Timeout
from flask_stash.core.ticket import (
    PASS_VALUE,
    Plan,
    Reader,
    Spawn,
    Ticket,
    after_turn,
    computing,
    holds,
    is_pass,
    leader,
    refresh_ticket,
)

__all__ = [
    "EARLY_REFRESH",
    "EXPIRED",
    "FRESH",
    "PASS_VALUE",
    "STALE_SERVE",
    "ARefresh",
    "Plan",
    "Reader",
    "Refresh",
    "Spawn",
    "Ticket",
    "afetch",
    "aget_or_compute",
    "amiss",
    "classify",
    "decide",
    "fetch",
    "get_or_compute",
    "holds",
    "is_pass",
    "miss",
]

R = TypeVar("R")
#: A background refresh: compute, then ``ticket.keep(value, timeout)`` (or raise).
Refresh = Callable[[Ticket], object]


# -- sync --------------------------------------------------------------------------------------


def fetch(
    plan: Plan,
    where: Lookup,
    refresh: Refresh | None = None,
    *,
    store_ok: bool = True,
) -> Ticket:
    """Read ``where`` and decide: a ready ticket (fresh, or stale with a refresh started),
    or a ticket to compute (see :func:`miss`). ``refresh`` recomputes in the background."""
    entry, version = plan.read_entry(where)
    return decide(plan, where, entry, version, refresh, store_ok=store_ok)


def decide(
    plan: Plan,
    where: Lookup,
    entry: Entry | Miss,
    version: bytes | None,
    refresh: Refresh | None = None,
    *,
    store_ok: bool = True,
) -> Ticket:
    """:func:`fetch` for an entry the front end has already read (with ``plan``'s reader):
    a front end may serve a fresh entry itself and call this for everything else."""
    starter = (
        None if refresh is None else (lambda entry: _refresh_later(plan, where, entry, refresh))
    )
    ticket, last = judge(plan, where, entry, starter)
    if ticket is not None:
        return ticket
    return miss(plan, where, version, last=last, store_ok=store_ok)


def miss(
    plan: Plan,
    where: Lookup,
    version: bytes | None,
    *,
    last: Entry | None = None,
    recheck: bool = True,
    store_ok: bool = True,
) -> Ticket:
    """A caller's ticket at a miss: computed once for all concurrent callers.

    ``version`` is the stamp the miss's read returned; ``last`` the expired entry it
    found (served by a fail-safe, or a "pass" marker). ``recheck=False`` computes even if
    a fresh entry appeared meanwhile (``forced_update``); ``store_ok=False`` computes
    without storing (``HEAD``, ``Range``).
    """
    ticket = shortcut(plan, where, version, last, store_ok)
    if ticket is not None:
        return ticket
    flights = plan.store.stampede.flights
    for _ in range(RETRIES):
        flight, leads = flights.begin(where.key)
        if leads:
            ticket = leader(plan, where, version, last, flight, False)
            try:
                turn = take_turn(
                    plan.store, where, plan.protect, lambda: found_meanwhile(plan, where), recheck
                )
            except BaseException:
                ticket.abandon()
                raise
            return after_turn(ticket, turn)
        if not flight.done.wait(plan.protect.lock_wait):
            break
        ticket = follow(plan, where, flight.outcome, last)
        if ticket is not None:
            return ticket
    return computing(plan, where, None, last)


def _refresh_later(plan: Plan, where: Lookup, current: Entry, refresh: Refresh) -> None:
    """Recompute ``where`` in the background, once per key at a time, backing off after
    failures; the old entry is served meanwhile."""
    stampede = plan.store.stampede
    claim = where.key + ":refresh"
    if not stampede.refresh_allowed(where.key) or not stampede.flights.try_lead(claim):
        return

    def job() -> None:
        try:
            ticket = refresh_ticket(plan, where, current)
            if ticket is not None:
                _run_refresh(ticket, refresh)
        finally:
            stampede.flights.release(claim)

    try:
        (plan.spawn or stampede.run_in_background)(job)
    except RuntimeError:  # shutting down
        stampede.flights.release(claim)


def _run_refresh(ticket: Ticket, refresh: Refresh) -> None:
    try:
        refresh(ticket)
    except Exception as error:
        refresh_failed(ticket, error)
    else:
        refresh_worked(ticket)
    finally:
        ticket.abandon()


# -- get-or-compute for any callable -----------------------------------------------------------


def get_or_compute(
    store: Store,
    key: str | Lookup,
    compute: Callable[[], R],
    timeout: Timeout = None,
    *,
    cache_if: Callable[[R], bool] | None = None,
    protect: Protection = DEFAULT,
) -> R:
    """The cached value of ``key``, or ``compute()``'s result, stored for ``timeout``.

    ``key`` is a user-level key or a :class:`Lookup`. ``cache_if`` decides whether a
    computed value is worth storing. Concurrent misses compute once (see
    :class:`~flask_stash.core.stampede.Protection`). If ``compute`` raises, the exception
    propagates to every caller waiting for it and nothing is stored.
    """
    where = key if isinstance(key, Lookup) else Lookup.of(store, key)
    plan = Plan(store, protect, where.scope, storable=cache_if)
    ticket = fetch(plan, where, lambda t: _keep_computed(t, compute, timeout))
    if ticket.ready:
        return ticket.value  # type: ignore[no-any-return]
    try:
        value = compute()
    except BaseException as error:
        return ticket.fail(error)  # type: ignore[no-any-return]
    return ticket.keep(value, timeout)


def _keep_computed(ticket: Ticket, compute: Callable[[], Any], timeout: Timeout) -> None:
    ticket.keep(compute(), timeout)

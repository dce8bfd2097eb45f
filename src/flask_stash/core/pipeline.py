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
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

from flask_stash.core.api import MISS, Miss
from flask_stash.core.engine import Lookup
from flask_stash.core.entry import Entry
from flask_stash.core.errors import SerializationError
from flask_stash.core.flight import ERROR, GAVE_UP, PASS, PASSED, STORED, Flight, Outcome
from flask_stash.core.locking import BackendLock, Turn, atake_turn, take_turn
from flask_stash.core.stampede import DEFAULT, PASS_SECONDS, Protection
from flask_stash.core.stats import (
    COALESCED,
    EARLY,
    FAIL_SAFE,
    HIT,
    MISS_EVENT,
    PASS_EVENT,
    REFRESH_ERROR,
    SKIPPED,
    STALE,
)
from flask_stash.core.store import Store, Timeout

R = TypeVar("R")
Reader = Callable[[Lookup], "tuple[Entry | Miss, bytes | None]"]
Spawn = Callable[[Callable[[], None]], None]
#: A background refresh: compute, then ``ticket.keep(value, timeout)`` (or raise).
Refresh = Callable[["Ticket"], object]
ARefresh = Callable[["Ticket"], Awaitable[None]]

#: The value of a "pass" entry: the key's last computed value could not be stored.
PASS_VALUE = ("flask-stash/pass", None, None)
#: How often a waiter starts over when the flight it waited for was given up.
_RETRIES = 3


def is_pass(value: object) -> bool:
    return type(value) is tuple and len(value) == 3 and value[0] == PASS_VALUE[0]


class Plan:
    """What a front end tells the pipeline, resolved once per decorated function and app.

    ``storable(value)``: whether a computed value may be stored (``None``: always).
    ``read(where)``: how to read an entry (default: the entry plus its version stamps in
    one round trip); it returns :data:`MISS` for an entry of another kind. ``spawn(job)``:
    how to run background work (default: a thread pool, without any context).
    ``shares_values``: whether waiters may decode the bytes their leader stored, rather
    than read the store again (``False`` when the read depends on the caller, as a view's
    ``Vary`` does).
    """

    __slots__ = ("hits", "misses", "protect", "read", "scope", "shares_values", "spawn",
                 "storable", "store")  # fmt: skip

    def __init__(
        self,
        store: Store,
        protect: Protection = DEFAULT,
        scope: str = "",
        *,
        storable: Callable[[Any], bool] | None = None,
        read: Reader | None = None,
        spawn: Spawn | None = None,
        shares_values: bool = True,
    ) -> None:
        self.store, self.protect, self.scope = store, protect, scope
        self.storable, self.read, self.spawn = storable, read, spawn
        self.shares_values = shares_values
        self.hits = store.stats.counter(HIT, scope)
        self.misses = store.stats.counter(MISS_EVENT, scope)

    def derive(self, *, read: Reader) -> Plan:
        """This plan with another reader (a view's reader depends on the request)."""
        plan = object.__new__(Plan)  # per request: no __init__, no counters to look up
        plan.store, plan.protect, plan.scope = self.store, self.protect, self.scope
        plan.storable, plan.read, plan.spawn = self.storable, read, self.spawn
        plan.shares_values, plan.hits, plan.misses = self.shares_values, self.hits, self.misses
        return plan

    def read_entry(self, where: Lookup) -> tuple[Entry | Miss, bytes | None]:
        if self.read is not None:
            return self.read(where)
        return self.store.read_stored(where.key, where.version_keys)


# -- the keys this thread or task is computing (re-entrancy) --------------------------------

_held: ContextVar[Mapping[str, Ticket] | None] = ContextVar("flask_stash_held", default=None)


def holds(key: str) -> bool:
    """Whether the current thread or task is computing ``key`` (it must not wait for it)."""
    held = _held.get()
    ticket = None if held is None else held.get(key)
    return ticket is not None and ticket.open


def _hold(key: str, ticket: Ticket) -> None:
    # A new mapping each time: tasks copy their parent's context, and must not see the
    # keys their siblings compute later.
    held = {k: t for k, t in (_held.get() or {}).items() if t.open}
    held[key] = ticket
    _held.set(held)


def _unhold(key: str, ticket: Ticket) -> None:
    held = _held.get()
    if held is not None and held.get(key) is ticket:
        _held.set({k: t for k, t in held.items() if t is not ticket})


# -- a caller's way through a miss ------------------------------------------------------------


class Ticket:
    """One caller's part in getting ``where``: a value to return now (:attr:`ready`), or
    the duty to compute it and then :meth:`keep` it (or :meth:`fail`)."""

    __slots__ = ("_async", "_epoch", "_flight", "_release", "_started", "_stores", "entry",
                 "last", "open", "plan", "ready", "stale", "value", "version", "where")  # fmt: skip

    def __init__(
        self,
        plan: Plan,
        where: Lookup,
        version: bytes | None = None,
        last: Entry | None = None,
        *,
        stores: bool = True,
    ) -> None:
        self.plan, self.where, self.version, self.last = plan, where, version, last
        self.ready, self.stale, self.open = False, False, True
        self.value: Any = None
        self.entry: Entry | None = None
        self._stores = stores
        self._flight: Flight | asyncio.Future[Outcome] | None = None
        self._async = False
        self._release: Callable[[], None] | None = None
        self._epoch = 0
        self._started = 0.0

    @property
    def stores(self) -> bool:
        """Whether this ticket's value may be stored (not for ``HEAD`` or a re-entry)."""
        return self._stores

    def keep(self, value: R, timeout: Timeout = None) -> R:
        """Store the computed ``value`` if allowed, release the waiters, return ``value``."""
        plan = self.plan
        if not self._stores:
            self._end(PASSED)
        elif plan.storable is not None and not plan.storable(value):
            plan.store.stats.incr(SKIPPED, plan.scope)
            self.refuse()
        else:
            blob = self.write(self.where.key, value, timeout)
            self._end(GAVE_UP if blob is _OVERTAKEN else Outcome(STORED, blob)
                      if blob is not None else PASSED)  # fmt: skip
        if plan.protect.fail_safe and self.last is not None:
            plan.store.stampede.working("recomputing", plan.scope or self.where.key)
        return value

    def write(self, bkey: str, value: object, timeout: Timeout) -> Any:
        """Write ``value`` at ``bkey`` under this ticket's version stamps, jitter and stale
        window: the bytes written, ``None`` when nothing could be, or :data:`_OVERTAKEN`
        when an invalidation came after this computation started (front ends that write
        their own entries, such as a view's variants, call this)."""
        plan = self.plan
        store, protect = plan.store, plan.protect
        if self.where.version_keys and self.version is None:
            return None  # a stamp could not be read or created: never guess one
        if store.stampede.overtaken(bkey, self._epoch):
            return _OVERTAKEN
        ttl_timeout = _jittered(store, timeout, protect)
        cost = time.perf_counter() - self._started if self._started else 0.0
        try:
            blob = store.write_entry(bkey, value, ttl_timeout, protect.stale, self.version,
                                     cost=cost, keep=protect.fail_safe)  # fmt: skip
        except SerializationError as exc:
            # The caller has its value; failing now would lose it. Counted and logged (or
            # raised when not failing open) so an unstorable return type gets noticed.
            store.policy.handle(exc, f"store {plan.scope or self.where.key}")
            return None
        if blob is not None:
            store.stampede.clear_pass(self.where.key)
        return blob

    def stored(self) -> None:
        """End the ticket after the front end wrote the entries itself (with :meth:`write`)."""
        self._end(Outcome(STORED))

    def refuse(self, *, marker: bool = True) -> None:
        """End the ticket without storing: the key becomes "pass" for a while, so callers
        compute at once instead of waiting. A leader writes the shared marker too (unless
        ``marker=False``: the front end wrote its own)."""
        store = self.plan.store
        if self._flight is not None:
            store.stampede.mark_pass(self.where.key)
            if marker:
                store.write_pass(self.where.key, PASS_VALUE, PASS_SECONDS, self.version)
        self._end(PASSED)

    def fail(self, error: BaseException) -> Any:
        """The computation raised ``error``: return the last good value if the fail-safe
        allows, else raise ``error`` (waiters raise it too)."""
        plan = self.plan
        if isinstance(error, Exception) and _fail_safe_allows(plan, self.last):
            plan.store.stats.incr(FAIL_SAFE, plan.scope)
            plan.store.stampede.failing("recomputing", plan.scope or self.where.key, error)
            self._end(Outcome(ERROR, error=error))
            return self.last.value  # type: ignore[union-attr]
        self._end(Outcome(ERROR, error=error) if isinstance(error, Exception) else GAVE_UP)
        raise error

    def abandon(self) -> None:
        """Give the key up without a result (a view's response that was never sent)."""
        self._end(GAVE_UP)

    def _end(self, outcome: Outcome) -> None:
        if not self.open:
            return
        self.open = False
        try:
            if self._release is not None:
                self._release()
        finally:
            flight = self._flight
            if flight is not None:
                stampede = self.plan.store.stampede
                if self._async:
                    stampede.async_flights.end(self.where.key, flight, outcome)  # type: ignore[arg-type]
                else:
                    stampede.flights.end(self.where.key, flight, outcome)  # type: ignore[arg-type]
                _unhold(self.where.key, self)

    def _found(self) -> tuple[bool, Any]:
        """For the backend lock: did another process store (or pass) the key meanwhile?"""
        entry = _fresh(self.plan, self.where)
        return (False, None) if entry is None else (True, entry)


_OVERTAKEN: Any = object()


def _ready(plan: Plan, where: Lookup, entry: Entry, *, stale: bool = False) -> Ticket:
    ticket = Ticket(plan, where, entry.version)
    ticket.ready, ticket.open, ticket.stale = True, False, stale
    ticket.entry, ticket.value = entry, entry.value
    return ticket


def _computing(plan: Plan, where: Lookup, version: bytes | None, last: Entry | None) -> Ticket:
    """A ticket to compute, outside any flight (see :func:`_prepare`)."""
    return _prepare(Ticket(plan, where, version, last))


def _prepare(ticket: Ticket) -> Ticket:
    """Make ``ticket`` ready to compute: its version stamps exist and its start is noted,
    so an invalidation during the computation is seen when storing (see ``write``)."""
    store, where = ticket.plan.store, ticket.where
    if where.version_keys and ticket.version is None:
        # Created before computing, so an invalidation during the computation changes them.
        ticket.version = store.current_version(where.version_keys, None)
    ticket._epoch = store.stampede.epoch
    ticket._started = time.perf_counter()
    return ticket


def _fresh(plan: Plan, where: Lookup) -> Entry | None:
    """A fresh entry at ``where`` or a pass marker (another caller's outcome), else ``None``."""
    entry, _ = plan.read_entry(where)
    if entry is MISS:
        return None
    if is_pass(entry.value) or entry.is_fresh(plan.store.clock()):
        return entry
    return None


def _fail_safe_allows(plan: Plan, last: Entry | None) -> bool:
    if last is None or plan.protect.fail_safe <= 0 or is_pass(last.value):
        return False
    limit = last.servable_until()
    return limit is None or plan.store.clock() < limit + plan.protect.fail_safe


def _jittered(store: Store, timeout: Timeout, protect: Protection) -> Timeout:
    if protect.jitter <= 0:
        return timeout
    ttl = store.ttl_for(timeout)
    if ttl is None:
        return timeout
    return max(ttl * (1 - protect.jitter * random.random()), 0.001)


# -- decisions shared by the sync and async paths ----------------------------------------------

FRESH, EARLY_REFRESH, STALE_SERVE, EXPIRED = "fresh", "early", "stale", "expired"


def classify(entry: Entry, now: float, protect: Protection) -> str:
    """Where ``entry`` stands: fresh, fresh but due for an early refresh (XFetch), stale
    inside its window (served while refreshed), or expired."""
    if entry.is_fresh(now):
        if protect.early_refresh and _xfetch(entry, now, protect.early_refresh):
            return EARLY_REFRESH
        return FRESH
    if protect.stale > 0 and entry.is_servable(now):
        return STALE_SERVE
    return EXPIRED


def _xfetch(entry: Entry, now: float, beta: float) -> bool:
    """XFetch (Vattani et al., VLDB 2015): refresh with a probability rising towards
    expiry, scaled by the entry's compute cost."""
    if entry.fresh_until is None or entry.cost <= 0:
        return False
    return now - entry.cost * beta * math.log(random.random() or 1e-300) >= entry.fresh_until


def _judge(
    plan: Plan, where: Lookup, entry: Entry | Miss, start_refresh: Callable[[Entry], None] | None
) -> tuple[Ticket | None, Entry | None]:
    """What a read of ``where`` found: ``(ticket, last)`` with a ready ticket for a
    servable entry (refresh started when due), or ``None`` and the expired entry."""
    if entry is MISS:
        next(plan.misses)
        return None, None
    if is_pass(entry.value):
        plan.store.stats.incr(PASS_EVENT, plan.scope)
        return None, entry
    verdict = classify(entry, plan.store.clock(), plan.protect)
    if verdict is EXPIRED:
        next(plan.misses)
        return None, entry
    if verdict is STALE_SERVE:
        plan.store.stats.incr(STALE, plan.scope)
    else:
        next(plan.hits)
    if verdict is not FRESH:
        if verdict is EARLY_REFRESH:
            plan.store.stats.incr(EARLY, plan.scope)
        if start_refresh is not None:
            start_refresh(entry)
    return _ready(plan, where, entry, stale=verdict is STALE_SERVE), None


def _shortcut(
    plan: Plan, where: Lookup, version: bytes | None, last: Entry | None, store_ok: bool
) -> Ticket | None:
    """A miss that needs no flight: not storing, re-entrant, unprotected or "pass"."""
    if not store_ok or holds(where.key):
        return Ticket(plan, where, version, last, stores=False)
    if (
        not plan.protect.single_flight
        or (last is not None and is_pass(last.value))
        or plan.store.stampede.passing(where.key)
    ):
        return _computing(plan, where, version, last)
    return None


def _follow(plan: Plan, where: Lookup, outcome: Outcome, last: Entry | None) -> Ticket | None:
    """A waiter's next step once its leader is done (``None``: start over)."""
    kind = outcome.kind
    if kind == STORED:
        decoded: Entry | Miss = MISS
        if outcome.blob is not None and plan.shares_values:
            decoded = plan.store.decode(outcome.blob)  # this caller's own copy
        entry = _fresh(plan, where) if decoded is MISS else decoded
        if entry is None or is_pass(entry.value):
            return _computing(plan, where, None, last)
        plan.store.stats.incr(COALESCED, plan.scope)
        return _ready(plan, where, entry)
    if kind == PASS:
        return _computing(plan, where, None, last)
    if kind == ERROR:
        if _fail_safe_allows(plan, last):
            plan.store.stats.incr(FAIL_SAFE, plan.scope)
            return _ready(plan, where, last, stale=True)  # type: ignore[arg-type]
        raise outcome.error  # type: ignore[misc]
    return None


def _after_turn(ticket: Ticket, turn: Turn) -> Ticket:
    """The leader's ticket once it has the turn (or learnt another process's result)."""
    plan, where = ticket.plan, ticket.where
    if not turn.found:
        ticket._release = turn.release
        return _prepare(ticket)
    entry: Entry = turn.value
    if is_pass(entry.value):
        ticket._end(PASSED)
        return _computing(plan, where, None, ticket.last)
    ticket._end(Outcome(STORED))
    return _ready(plan, where, entry)


def _leader(
    plan: Plan,
    where: Lookup,
    version: bytes | None,
    last: Entry | None,
    flight: Any,
    is_async: bool,
) -> Ticket:
    ticket = Ticket(plan, where, version, last)
    ticket._flight, ticket._async = flight, is_async
    _hold(where.key, ticket)
    return ticket


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
    ticket, last = _judge(plan, where, entry, starter)
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
    ticket = _shortcut(plan, where, version, last, store_ok)
    if ticket is not None:
        return ticket
    flights = plan.store.stampede.flights
    for _ in range(_RETRIES):
        flight, leads = flights.begin(where.key)
        if leads:
            ticket = _leader(plan, where, version, last, flight, False)
            try:
                turn = take_turn(plan.store, where, plan.protect, ticket._found, recheck)
            except BaseException:
                ticket.abandon()
                raise
            return _after_turn(ticket, turn)
        if not flight.done.wait(plan.protect.lock_wait):
            break
        ticket = _follow(plan, where, flight.outcome, last)
        if ticket is not None:
            return ticket
    return _computing(plan, where, None, last)


def _refresh_later(plan: Plan, where: Lookup, current: Entry, refresh: Refresh) -> None:
    """Recompute ``where`` in the background, once per key at a time, backing off after
    failures; the old entry is served meanwhile."""
    stampede = plan.store.stampede
    claim = where.key + ":refresh"
    if not stampede.refresh_allowed(where.key) or not stampede.flights.try_lead(claim):
        return

    def job() -> None:
        try:
            ticket = _refresh_ticket(plan, where, current)
            if ticket is not None:
                _run_refresh(ticket, refresh)
        finally:
            stampede.flights.release(claim)

    try:
        (plan.spawn or stampede.run_in_background)(job)
    except RuntimeError:  # shutting down
        stampede.flights.release(claim)


def _refresh_ticket(plan: Plan, where: Lookup, current: Entry) -> Ticket | None:
    """A ticket for a background refresh, holding the backend lock (``None``: another
    process refreshes it)."""
    ticket = _computing(plan, where, current.version, current)
    if plan.store.stampede.locks:
        lock = BackendLock(plan.store, where.key + ":lock", plan.protect)
        if not lock.acquire():
            return None
        ticket._release = lock.release
    return ticket


def _run_refresh(ticket: Ticket, refresh: Refresh) -> None:
    try:
        refresh(ticket)
    except Exception as error:
        _refresh_failed(ticket, error)
    else:
        _refresh_worked(ticket)
    finally:
        ticket._end(GAVE_UP)


def _refresh_failed(ticket: Ticket, error: Exception) -> None:
    plan, key = ticket.plan, ticket.where.key
    plan.store.stats.incr(REFRESH_ERROR, plan.scope)
    plan.store.stampede.refresh_failed(key)
    plan.store.stampede.failing("background refresh", plan.scope or key, error)


def _refresh_worked(ticket: Ticket) -> None:
    plan, key = ticket.plan, ticket.where.key
    plan.store.stampede.refresh_worked(key)
    plan.store.stampede.working("background refresh", plan.scope or key)


# -- async -------------------------------------------------------------------------------------


async def afetch(
    plan: Plan,
    where: Lookup,
    refresh: ARefresh | None = None,
    *,
    store_ok: bool = True,
) -> Ticket:
    """:func:`fetch` for coroutines: waits yield to the loop; refreshes run as tasks."""
    starter = None if refresh is None else (lambda e: _arefresh_later(plan, where, e, refresh))
    entry, version = plan.read_entry(where)
    ticket, last = _judge(plan, where, entry, starter)
    if ticket is not None:
        return ticket
    return await amiss(plan, where, version, last=last, store_ok=store_ok)


async def amiss(
    plan: Plan,
    where: Lookup,
    version: bytes | None,
    *,
    last: Entry | None = None,
    recheck: bool = True,
    store_ok: bool = True,
) -> Ticket:
    """:func:`miss` for coroutines. A leader that is cancelled gives the key up: its
    waiters start over (one of them leads), they are never cancelled with it."""
    ticket = _shortcut(plan, where, version, last, store_ok)
    if ticket is not None:
        return ticket
    flights = plan.store.stampede.async_flights
    for _ in range(_RETRIES):
        future, leads = flights.begin(where.key)
        if leads:
            ticket = _leader(plan, where, version, last, future, True)
            try:
                turn = await atake_turn(plan.store, where, plan.protect, ticket._found, recheck)
            except BaseException:
                ticket.abandon()
                raise
            return _after_turn(ticket, turn)
        outcome = await flights.wait(future, plan.protect.lock_wait)
        if outcome is None:
            break
        ticket = _follow(plan, where, outcome, last)
        if ticket is not None:
            return ticket
    return _computing(plan, where, None, last)


_tasks: set[asyncio.Task[None]] = set()


def _arefresh_later(plan: Plan, where: Lookup, current: Entry, refresh: ARefresh) -> None:
    stampede = plan.store.stampede
    claim = where.key + ":refresh"
    if not stampede.refresh_allowed(where.key) or not stampede.flights.try_lead(claim):
        return

    async def job() -> None:
        try:
            ticket = _refresh_ticket(plan, where, current)
            if ticket is None:
                return
            try:
                await refresh(ticket)
            except Exception as error:
                _refresh_failed(ticket, error)
            else:
                _refresh_worked(ticket)
            finally:
                ticket._end(GAVE_UP)
        finally:
            stampede.flights.release(claim)

    try:
        task = asyncio.get_running_loop().create_task(job())
    except RuntimeError:
        stampede.flights.release(claim)
        return
    _tasks.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(_tasks.discard)


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


async def aget_or_compute(
    store: Store,
    key: str | Lookup,
    compute: Callable[[], Awaitable[R]],
    timeout: Timeout = None,
    *,
    cache_if: Callable[[R], bool] | None = None,
    protect: Protection = DEFAULT,
) -> R:
    """:func:`get_or_compute` for a coroutine function: ``compute()`` is awaited."""
    where = key if isinstance(key, Lookup) else Lookup.of(store, key)
    plan = Plan(store, protect, where.scope, storable=cache_if)

    async def refresh(ticket: Ticket) -> None:
        ticket.keep(await compute(), timeout)

    ticket = await afetch(plan, where, refresh)
    if ticket.ready:
        return ticket.value  # type: ignore[no-any-return]
    try:
        value = await compute()
    except BaseException as error:
        return ticket.fail(error)  # type: ignore[no-any-return]
    return ticket.keep(value, timeout)

"""One caller's part in the get-or-compute pipeline (:mod:`flask_stash.core.pipeline`).

:class:`Plan` is what a front end supplies; :class:`Ticket` is one caller's way through a
miss (keep, write, stored, refuse, fail, abandon); the keys this thread or task is
computing are tracked here, so that a computation re-entering its own key never waits for
itself.

Internal: front ends import ``Plan``, ``Ticket``, ``PASS_VALUE`` and ``is_pass`` from
:mod:`flask_stash.core.pipeline`. The functions that create and advance tickets
(``ready``, ``computing``, ``prepare``, ``leader``, ``after_turn``, ``refresh_ticket``)
are public for the pipeline's modules only: they are the one place outside
:class:`Ticket` that touches its private state. So is ``fail_safe_allows``, which a
waiter asks too (:mod:`flask_stash.core.decisions`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

from flask_stash.core.api import Miss
from flask_stash.core.engine import Lookup
from flask_stash.core.entry import Entry
from flask_stash.core.errors import SerializationError
from flask_stash.core.flight import ERROR, GAVE_UP, PASSED, STORED, Flight, Outcome
from flask_stash.core.locking import BackendLock, Turn
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
)
from flask_stash.core.store import Store, Timeout

R = TypeVar("R")
Reader = Callable[[Lookup], "tuple[Entry | Miss, bytes | None]"]
Spawn = Callable[[Callable[[], None]], None]

#: The value of a "pass" entry: the key's last computed value could not be stored.
PASS_VALUE = ("flask-stash/pass", None, None)


def is_pass(value: object) -> bool:
    # A list too: a serializer without tuples (plain JSON) reads the marker back as one,
    # and a marker taken for a value would be served (it is written with a stale window).
    if type(value) is tuple or type(value) is list:
        return len(value) == 3 and value[0] == PASS_VALUE[0]
    return False


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

    __slots__ = ("hit", "protect", "read", "scope", "shares_values", "spawn", "storable",
                 "store")  # fmt: skip

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
        #: ``hit(entry.cost)`` counts a hit and the compute time it saved (hot paths).
        self.hit = store.stats.recorder(HIT, scope)

    def derive(self, *, read: Reader) -> Plan:
        """This plan with another reader (a view's reader depends on the request)."""
        plan = object.__new__(Plan)  # per request: no __init__, no counters to look up
        plan.store, plan.protect, plan.scope = self.store, self.protect, self.scope
        plan.storable, plan.read, plan.spawn = self.storable, read, self.spawn
        plan.shares_values, plan.hit = self.shares_values, self.hit
        return plan

    def outcome(self, event: str, saved: float = 0.0) -> None:
        """Count a caller's one outcome (``stats.OUTCOMES``) and the compute time it saved."""
        self.store.stats.record(event, self.scope, saved)

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

    __slots__ = ("_async", "_epoch", "_flight", "_outcome", "_release", "_started", "_stores",
                 "entry", "last", "open", "plan", "ready", "stale", "value", "version",
                 "where")  # fmt: skip

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
        #: The outcome this caller's call is counted as when the ticket ends (``None``:
        #: not a caller's, or counted already).
        self._outcome: str | None = MISS_EVENT

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
                                     cost=cost, keep=protect.fail_safe,
                                     scope=plan.scope)  # fmt: skip
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
        if self._outcome is not None and self._stores:  # not a HEAD: the value was refused
            self._outcome = PASS_EVENT
        if self._flight is not None:
            store.stampede.mark_pass(self.where.key)
            if marker:
                store.write_pass(self.where.key, PASS_VALUE, PASS_SECONDS, self.version)
        self._end(PASSED)

    def fail(self, error: BaseException) -> Any:
        """The computation raised ``error``: return the last good value if the fail-safe
        allows, else raise ``error`` (waiters raise it too)."""
        plan = self.plan
        if isinstance(error, Exception) and fail_safe_allows(plan, self.last):
            plan.store.stats.incr(FAIL_SAFE, plan.scope)
            plan.store.stampede.failing("recomputing", plan.scope or self.where.key, error)
            if self._outcome is not None:
                self._outcome = STALE
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
        if self._outcome is not None:
            self._count()
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

    def _count(self) -> None:
        event, plan = self._outcome, self.plan
        self._outcome = None
        if event is STALE:  # set by fail() only when a last good value was served
            plan.outcome(STALE, self.last.cost)  # type: ignore[union-attr]
        elif event is MISS_EVENT and plan.store.gate.failed_here():
            plan.outcome(BACKEND_FAILED)
        else:
            plan.outcome(event)  # type: ignore[arg-type]


_OVERTAKEN: Any = object()


def uncounted(ticket: Ticket) -> Ticket:
    """``ticket``, not counted as a caller's outcome (a background refresh, or a ticket
    whose caller's outcome is counted elsewhere)."""
    ticket._outcome = None
    return ticket


def passing(ticket: Ticket) -> Ticket:
    """``ticket``, counted as a pass: its key is marked "pass" (not storable)."""
    ticket._outcome = PASS_EVENT
    return ticket


def ready(plan: Plan, where: Lookup, entry: Entry, *, stale: bool = False) -> Ticket:
    ticket = Ticket(plan, where, entry.version)
    ticket.ready, ticket.open, ticket.stale = True, False, stale
    ticket.entry, ticket.value = entry, entry.value
    return ticket


def computing(plan: Plan, where: Lookup, version: bytes | None, last: Entry | None) -> Ticket:
    """A ticket to compute, outside any flight (see :func:`prepare`)."""
    return prepare(Ticket(plan, where, version, last))


def prepare(ticket: Ticket) -> Ticket:
    """Make ``ticket`` ready to compute: its version stamps exist and its start is noted,
    so an invalidation during the computation is seen when storing (see ``write``)."""
    store, where = ticket.plan.store, ticket.where
    if where.version_keys and ticket.version is None:
        # Created before computing, so an invalidation during the computation changes them.
        ticket.version = store.current_version(where.version_keys, None)
    ticket._epoch = store.stampede.epoch
    ticket._started = time.perf_counter()
    return ticket


def after_turn(ticket: Ticket, turn: Turn) -> Ticket:
    """The leader's ticket once it has the turn (or learnt another process's result)."""
    plan, where = ticket.plan, ticket.where
    if not turn.found:
        ticket._release = turn.release
        return prepare(ticket)
    entry: Entry = turn.value
    uncounted(ticket)._end(PASSED if is_pass(entry.value) else Outcome(STORED))
    if is_pass(entry.value):
        return passing(computing(plan, where, None, ticket.last))
    plan.outcome(COALESCED, entry.cost)  # another process computed it meanwhile
    return ready(plan, where, entry)


def leader(
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


def refresh_ticket(plan: Plan, where: Lookup, current: Entry) -> Ticket | None:
    """A ticket for a background refresh, holding the backend lock (``None``: another
    process refreshes it)."""
    ticket = uncounted(computing(plan, where, current.version, current))
    if plan.store.stampede.locks:
        lock = BackendLock(plan.store, where.key + ":lock", plan.protect)
        if not lock.acquire():
            return None
        ticket._release = lock.release
    return ticket


def fail_safe_allows(plan: Plan, last: Entry | None) -> bool:
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

"""The decisions of the get-or-compute pipeline that its sync and async paths share.

What a read found (:func:`classify`, :func:`judge`: fresh, due for an early refresh, stale,
expired, "pass"), a miss that needs no flight (:func:`shortcut`), a waiter's next step once
its leader is done (:func:`follow`), whether another process produced the entry meanwhile
(:func:`found_meanwhile`, for the backend lock), and how a background refresh ended. None
of them waits: :mod:`flask_stash.core.pipeline` and :mod:`flask_stash.core.apipeline` do,
each in its own way.

Internal: ``classify`` and its verdicts are re-exported by :mod:`flask_stash.core.pipeline`;
the other names are public for the pipeline's modules only.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from flask_stash.core.api import MISS, Miss
from flask_stash.core.engine import Lookup
from flask_stash.core.entry import Entry
from flask_stash.core.flight import ERROR, PASS, STORED, Outcome
from flask_stash.core.stampede import Protection
from flask_stash.core.stats import COALESCED, EARLY, FAIL_SAFE, REFRESH_ERROR, STALE
from flask_stash.core.ticket import (
    Plan,
    Ticket,
    computing,
    fail_safe_allows,
    holds,
    is_pass,
    passing,
    ready,
)

#: How often a waiter starts over when the flight it waited for was given up.
RETRIES = 3

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


def judge(
    plan: Plan, where: Lookup, entry: Entry | Miss, start_refresh: Callable[[Entry], None] | None
) -> tuple[Ticket | None, Entry | None]:
    """What a read of ``where`` found: ``(ticket, last)`` with a ready ticket for a
    servable entry (refresh started when due), or ``None`` and the expired entry."""
    if entry is MISS:
        return None, None  # the caller's outcome is counted when its ticket ends
    if is_pass(entry.value):
        return None, entry
    verdict = classify(entry, plan.store.clock(), plan.protect)
    if verdict is EXPIRED:
        return None, entry
    if verdict is STALE_SERVE:
        plan.outcome(STALE, entry.cost)
    else:
        plan.hit(entry.cost)
    if verdict is not FRESH:
        if verdict is EARLY_REFRESH:
            plan.store.stats.incr(EARLY, plan.scope)
        if start_refresh is not None:
            start_refresh(entry)
    return ready(plan, where, entry, stale=verdict is STALE_SERVE), None


def shortcut(
    plan: Plan, where: Lookup, version: bytes | None, last: Entry | None, store_ok: bool
) -> Ticket | None:
    """A miss that needs no flight: not storing, re-entrant, unprotected or "pass"."""
    if not store_ok or holds(where.key):
        return Ticket(plan, where, version, last, stores=False)
    if (last is not None and is_pass(last.value)) or plan.store.stampede.passing(where.key):
        return passing(computing(plan, where, version, last))
    if not plan.protect.single_flight:
        return computing(plan, where, version, last)
    return None


def follow(plan: Plan, where: Lookup, outcome: Outcome, last: Entry | None) -> Ticket | None:
    """A waiter's next step once its leader is done (``None``: start over)."""
    kind = outcome.kind
    if kind == STORED:
        decoded: Entry | Miss = MISS
        if outcome.blob is not None and plan.shares_values:
            decoded = plan.store.decode(outcome.blob)  # this caller's own copy
        entry = fresh(plan, where) if decoded is MISS else decoded
        if entry is None:
            return computing(plan, where, None, last)
        if is_pass(entry.value):
            return passing(computing(plan, where, None, last))
        plan.outcome(COALESCED, entry.cost)
        return ready(plan, where, entry)
    if kind == PASS:
        return passing(computing(plan, where, None, last))
    if kind == ERROR:
        if fail_safe_allows(plan, last):
            plan.store.stats.incr(FAIL_SAFE, plan.scope)
            plan.outcome(STALE, last.cost)  # type: ignore[union-attr]
            return ready(plan, where, last, stale=True)  # type: ignore[arg-type]
        plan.outcome(COALESCED)  # it waited for the computation that raised
        raise outcome.error  # type: ignore[misc]
    return None


def fresh(plan: Plan, where: Lookup) -> Entry | None:
    """A fresh entry at ``where`` or a pass marker (another caller's outcome), else ``None``."""
    entry, _ = plan.read_entry(where)
    if entry is MISS:
        return None
    if is_pass(entry.value) or entry.is_fresh(plan.store.clock()):
        return entry
    return None


def found_meanwhile(plan: Plan, where: Lookup) -> tuple[bool, Any]:
    """For the backend lock: did another process store (or pass) the key meanwhile?"""
    entry = fresh(plan, where)
    return (False, None) if entry is None else (True, entry)


def refresh_failed(ticket: Ticket, error: Exception) -> None:
    plan, key = ticket.plan, ticket.where.key
    plan.store.stats.incr(REFRESH_ERROR, plan.scope)
    plan.store.stampede.refresh_failed(key)
    plan.store.stampede.failing("background refresh", plan.scope or key, error)


def refresh_worked(ticket: Ticket) -> None:
    plan, key = ticket.plan, ticket.where.key
    plan.store.stampede.refresh_worked(key)
    plan.store.stampede.working("background refresh", plan.scope or key)

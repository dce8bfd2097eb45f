"""The async mirror of :mod:`flask_stash.core.pipeline`: :func:`afetch`, :func:`amiss` and
:func:`aget_or_compute` make the same decisions (:mod:`flask_stash.core.decisions`) as
their sync counterparts; only waiting differs (a waiter yields to the event loop, a
background refresh runs as a task on the running loop).

Internal: front ends import these names from :mod:`flask_stash.core.pipeline`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from flask_stash.core.decisions import (
    RETRIES,
    follow,
    found_meanwhile,
    judge,
    refresh_failed,
    refresh_worked,
    shortcut,
)
from flask_stash.core.engine import Lookup
from flask_stash.core.entry import Entry
from flask_stash.core.locking import atake_turn
from flask_stash.core.stampede import DEFAULT, Protection
from flask_stash.core.store import Store, Timeout
from flask_stash.core.ticket import Plan, Ticket, after_turn, computing, leader, refresh_ticket

R = TypeVar("R")
#: :data:`~flask_stash.core.pipeline.Refresh` for coroutines.
ARefresh = Callable[[Ticket], Awaitable[None]]


async def afetch(
    plan: Plan,
    where: Lookup,
    refresh: ARefresh | None = None,
    *,
    store_ok: bool = True,
) -> Ticket:
    """:func:`~flask_stash.core.pipeline.fetch` for coroutines: waits yield to the loop;
    refreshes run as tasks."""
    starter = None if refresh is None else (lambda e: _arefresh_later(plan, where, e, refresh))
    entry, version = plan.read_entry(where)
    ticket, last = judge(plan, where, entry, starter)
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
    """:func:`~flask_stash.core.pipeline.miss` for coroutines. A leader that is cancelled
    gives the key up: its waiters start over (one of them leads), they are never cancelled
    with it."""
    ticket = shortcut(plan, where, version, last, store_ok)
    if ticket is not None:
        return ticket
    flights = plan.store.stampede.async_flights
    for _ in range(RETRIES):
        future, leads = flights.begin(where.key)
        if leads:
            ticket = leader(plan, where, version, last, future, True)
            try:
                turn = await atake_turn(
                    plan.store, where, plan.protect, lambda: found_meanwhile(plan, where), recheck
                )
            except BaseException:
                ticket.abandon()
                raise
            return after_turn(ticket, turn)
        outcome = await flights.wait(future, plan.protect.lock_wait)
        if outcome is None:
            break
        ticket = follow(plan, where, outcome, last)
        if ticket is not None:
            return ticket
    return computing(plan, where, None, last)


_tasks: set[asyncio.Task[None]] = set()


def _arefresh_later(plan: Plan, where: Lookup, current: Entry, refresh: ARefresh) -> None:
    stampede = plan.store.stampede
    claim = where.key + ":refresh"
    if not stampede.refresh_allowed(where.key) or not stampede.flights.try_lead(claim):
        return

    async def job() -> None:
        try:
            ticket = refresh_ticket(plan, where, current)
            if ticket is None:
                return
            try:
                await refresh(ticket)
            except Exception as error:
                refresh_failed(ticket, error)
            else:
                refresh_worked(ticket)
            finally:
                ticket.abandon()
        finally:
            stampede.flights.release(claim)

    try:
        task = asyncio.get_running_loop().create_task(job())
    except RuntimeError:
        stampede.flights.release(claim)
        return
    _tasks.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(_tasks.discard)


async def aget_or_compute(
    store: Store,
    key: str | Lookup,
    compute: Callable[[], Awaitable[R]],
    timeout: Timeout = None,
    *,
    cache_if: Callable[[R], bool] | None = None,
    protect: Protection = DEFAULT,
) -> R:
    """:func:`~flask_stash.core.pipeline.get_or_compute` for a coroutine function:
    ``compute()`` is awaited."""
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

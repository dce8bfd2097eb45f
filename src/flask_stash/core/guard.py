"""Stampede protection: one computation per miss, stale-while-revalidate, early refresh,
fail-safe and TTL jitter, for every backend.

At a miss, callers of one key in one process share one computation (single-flight), and
on backends with the lock capability one process computes while the others wait for its
entry, a bounded time, after which they compute themselves rather than hang. A lock's
lease expires if its holder dies.

Around the TTL edge, an entry inside its ``stale`` window is served at once while one
background refresh recomputes it, so no caller waits. With ``early_refresh`` (the XFetch
rule of Vattani et al., VLDB 2015) hot entries are refreshed, in the background too,
shortly before they expire, with a probability that grows as expiry nears and with the
entry's compute time. With ``fail_safe``, a failed recomputation serves the last good
value for that many more seconds. ``jitter`` spreads the expiries of entries written
together.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask_stash.core.api import MISS, SupportsLock
from flask_stash.core.engine import Lookup, find, save
from flask_stash.core.entry import Entry
from flask_stash.core.locking import (
    BackendLock,
    aonce_across_processes,
    nothing_found,
    once_across_processes,
)
from flask_stash.core.store import Store, Timeout

R = TypeVar("R")
logger = logging.getLogger("flask_stash")

STALE = "stale_serves"
EARLY = "early_refreshes"
FAIL_SAFE = "fail_safe_serves"
REFRESH_ERROR = "refresh_errors"
MISS_COUNT = "misses"
HIT_COUNT = "hits"


@dataclass(frozen=True)
class Protection:
    """How a cached call behaves at a miss and around its expiry.

    ``single_flight``: one computation per key at a time (in the process, and across
    processes on backends that can lock). ``lock_lease``: seconds a lock holder may take
    before others may take over. ``lock_wait``: the longest a caller waits for another's
    computation before computing itself. ``stale``: seconds past the timeout an entry is
    still served while one background refresh runs. ``early_refresh``: XFetch's beta
    (``0`` off, ``1`` the paper's default). ``fail_safe``: seconds a last good value is
    served when its recomputation raises. ``jitter``: fraction of the timeout randomly
    taken off each write (``0.1``: up to 10% shorter).
    """

    single_flight: bool = True
    lock_lease: float = 30.0
    lock_wait: float = 10.0
    stale: float = 0.0
    early_refresh: float = 0.0
    fail_safe: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("lock_lease", "lock_wait", "stale", "early_refresh", "fail_safe"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be a fraction in [0, 1), got {self.jitter!r}")
        if self.lock_lease == 0:
            raise ValueError("lock_lease must be positive")

    @property
    def watches_edge(self) -> bool:
        """Whether hits must look at stale or soon-expiring entries (else a plain read)."""
        return self.stale > 0 or self.early_refresh > 0 or self.fail_safe > 0


DEFAULT = Protection()

_shared_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def executor_for(store: Store) -> Executor:
    """Where background refreshes run: the store's executor, or a small shared pool."""
    if store.executor is not None:
        return store.executor
    global _shared_executor
    with _executor_lock:
        if _shared_executor is None:
            _shared_executor = ThreadPoolExecutor(4, thread_name_prefix="flask-stash-refresh")
        return _shared_executor


# -- a miss: compute once ------------------------------------------------------------------


def fill(
    store: Store,
    where: Lookup,
    compute: Callable[[], R],
    timeout: Timeout,
    version: bytes | None,
    protect: Protection = DEFAULT,
    cache_if: Callable[[R], bool] | None = None,
    last: Entry | None = None,
    *,
    recheck: bool = True,
) -> R:
    """Compute ``where``'s value once for all concurrent callers, store it, return it.

    ``last`` is the expired entry read at the miss, served by a fail-safe if computing
    raises. ``recheck=False`` when the caller wants a recomputation even if a fresh entry
    exists (Flask-Caching's ``forced_update`` and ``is_stale``).
    """
    job = _Job(store, where, compute, timeout, version, protect, cache_if, last, recheck)
    if not protect.single_flight:
        return cast(R, job.compute_and_save())
    value, _ = store.flights.run(where.key, job.fill_across_processes, protect.lock_wait)
    return cast(R, value)


@dataclass
class _Job:
    store: Store
    where: Lookup
    compute: Callable[[], Any]
    timeout: Timeout
    version: bytes | None
    protect: Protection
    cache_if: Callable[[Any], bool] | None
    last: Entry | None = None
    recheck: bool = True
    is_async: bool = False

    def compute_and_save(self) -> Any:
        started = time.perf_counter()
        try:
            value = self.compute()
        except Exception:
            return self._last_good()
        self.save(value, time.perf_counter() - started)
        return value

    async def acompute_and_save(self) -> Any:
        started = time.perf_counter()
        try:
            value = await self.compute()
        except Exception:
            return self._last_good()
        self.save(value, time.perf_counter() - started)
        return value

    def _last_good(self) -> Any:
        """In an ``except`` block: the fail-safe value, or re-raise the computation's error."""
        if not self._fail_safe_allows():
            raise  # the exception the caller is handling
        self.store.stats.incr(FAIL_SAFE, self.where.scope)
        logger.warning("serving the last good value of %s: recomputing it failed",
                       self.where.scope or self.where.key, exc_info=True)  # fmt: skip
        return self.last.value  # type: ignore[union-attr]

    def save(self, value: Any, cost: float) -> None:
        save(self.store, self.where, value, _jittered(self.store, self.timeout, self.protect),
             self.version, self.cache_if, stale=self.protect.stale,
             keep=self.protect.fail_safe, cost=cost)  # fmt: skip

    def _fail_safe_allows(self) -> bool:
        if self.last is None or self.protect.fail_safe <= 0:
            return False
        limit = self.last.servable_until()
        return limit is None or self.store.clock() < limit + self.protect.fail_safe

    def fill_across_processes(self) -> Any:
        found = self._found if self.recheck else nothing_found
        return once_across_processes(
            self.store, self.where, self.protect, found, self.compute_and_save, self.recheck
        )

    def _found(self) -> tuple[bool, Any]:
        entry = fresh_entry(self.store, self.where)
        return (False, None) if entry is None else (True, entry.value)


def fresh_entry(store: Store, where: Lookup) -> Entry | None:
    entry, _ = store.read_stored(where.key, where.version_keys)
    if entry is not MISS and entry.is_fresh(store.clock()):
        return entry
    return None


def _jittered(store: Store, timeout: Timeout, protect: Protection) -> Timeout:
    if protect.jitter <= 0:
        return timeout
    ttl = store.ttl_for(timeout)
    if ttl is None:
        return timeout
    return max(ttl * (1 - protect.jitter * random.random()), 0.001)


# -- a read that watches the TTL edge ------------------------------------------------------


def serve(
    store: Store,
    where: Lookup,
    compute: Callable[[], R],
    timeout: Timeout,
    protect: Protection,
    cache_if: Callable[[R], bool] | None = None,
) -> R:
    """A cached value with stale-while-revalidate, early refresh and fail-safe applied."""
    entry, version = store.read_stored(where.key, where.version_keys)
    job = _Job(store, where, compute, timeout, version, protect, cache_if)
    if entry is not MISS:
        if _edge(store, job, entry, store.clock()):
            return cast(R, entry.value)
        job.last = entry
    store.stats.incr(MISS_COUNT, where.scope)
    return fill(store, where, compute, timeout, version, protect, cache_if, job.last)


def _edge(store: Store, job: _Job, entry: Entry, now: float) -> bool:
    """Whether ``entry`` is served (fresh, or stale in its window); schedules refreshes."""
    where, protect = job.where, job.protect
    if entry.is_fresh(now):
        store.stats.incr(HIT_COUNT, where.scope)
        if protect.early_refresh and _xfetch(entry, now, protect.early_refresh):
            store.stats.incr(EARLY, where.scope)
            refresh_later(job, entry)
        return True
    if entry.is_servable(now):
        store.stats.incr(STALE, where.scope)
        refresh_later(job, entry)
        return True
    return False


def _xfetch(entry: Entry, now: float, beta: float) -> bool:
    """XFetch: refresh now with a probability rising towards expiry, scaled by cost."""
    if entry.fresh_until is None or entry.cost <= 0:
        return False
    return now - entry.cost * beta * math.log(random.random() or 1e-300) >= entry.fresh_until


def refresh_later(job: _Job, current: Entry) -> bool:
    """Recompute ``job`` in the background unless a refresh of it already runs somewhere.

    ``True`` if this call started the refresh.
    """
    store, claim = job.store, job.where.key + ":refresh"
    if not store.flights.try_lead(claim):
        return False
    job.last = current
    try:
        if job.is_async:
            task = asyncio.get_running_loop().create_task(_arefresh(job, claim))
            _tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(_tasks.discard)
        else:
            executor_for(store).submit(_refresh, job, claim)
    except RuntimeError:  # shutting down, or no running loop
        store.flights.release(claim)
        return False
    return True


_tasks: set[asyncio.Task[None]] = set()


def _refresh(job: _Job, claim: str) -> None:
    lock = _refresh_lock(job)
    try:
        if lock is not None and not lock.acquire():
            return  # another process refreshes it
        try:
            job.version = job.store.read_stored(job.where.key, job.where.version_keys)[1]
            job.compute_and_save()
        finally:
            if lock is not None:
                lock.release()
    except Exception:
        _refresh_failed(job)
    finally:
        job.store.flights.release(claim)


async def _arefresh(job: _Job, claim: str) -> None:
    lock = _refresh_lock(job)
    try:
        if lock is not None and not lock.acquire():
            return
        try:
            job.version = job.store.read_stored(job.where.key, job.where.version_keys)[1]
            await job.acompute_and_save()
        finally:
            if lock is not None:
                lock.release()
    except Exception:
        _refresh_failed(job)
    finally:
        job.store.flights.release(claim)


def _refresh_lock(job: _Job) -> BackendLock | None:
    if not isinstance(job.store.backend, SupportsLock):
        return None
    return BackendLock(job.store, job.where.key + ":lock", job.protect)


def _refresh_failed(job: _Job) -> None:
    job.store.stats.incr(REFRESH_ERROR, job.where.scope)
    logger.warning("background refresh of %s failed; the old value is served until it "
                   "expires", job.where.scope or job.where.key, exc_info=True)  # fmt: skip


# -- get-or-compute --------------------------------------------------------------------------


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
    :class:`Protection`). If ``compute`` raises, the exception propagates to every caller
    waiting for it and nothing is stored.
    """
    where = key if isinstance(key, Lookup) else Lookup.of(store, key)
    if protect.watches_edge:
        return serve(store, where, compute, timeout, protect, cache_if)
    entry, version = find(store, *where)
    if entry is not None:
        return cast(R, entry.value)
    return fill(store, where, compute, timeout, version, protect, cache_if)


async def aget_or_compute(
    store: Store,
    key: str | Lookup,
    compute: Callable[[], Awaitable[R]],
    timeout: Timeout = None,
    *,
    cache_if: Callable[[R], bool] | None = None,
    protect: Protection = DEFAULT,
) -> R:
    """:func:`get_or_compute` for a coroutine function: ``compute()`` is awaited.

    The same protection applies: one computation per key (per event loop, and across
    processes where the backend can lock), the stale window and early refresh (the
    refresh runs as a task on the running loop), fail-safe and jitter.
    """
    where = key if isinstance(key, Lookup) else Lookup.of(store, key)
    if protect.watches_edge:
        return await aserve(store, where, compute, timeout, protect, cache_if)
    entry, version = find(store, *where)
    if entry is not None:
        return cast(R, entry.value)
    return await afill(store, where, compute, timeout, version, protect, cache_if)


async def afill(
    store: Store,
    where: Lookup,
    compute: Callable[[], Awaitable[R]],
    timeout: Timeout,
    version: bytes | None,
    protect: Protection = DEFAULT,
    cache_if: Callable[[R], bool] | None = None,
    last: Entry | None = None,
    *,
    recheck: bool = True,
) -> R:
    """:func:`fill` for coroutines."""
    job = _Job(store, where, compute, timeout, version, protect, cache_if, last, recheck, True)
    if not protect.single_flight:
        return cast(R, await job.acompute_and_save())
    found = job._found if recheck else nothing_found

    async def lead() -> R:
        return await aonce_across_processes(store, where, protect, found, job.acompute_and_save)

    value, _ = await store.async_flights.run(where.key, lead, protect.lock_wait)
    return value


async def aserve(
    store: Store,
    where: Lookup,
    compute: Callable[[], Awaitable[R]],
    timeout: Timeout,
    protect: Protection,
    cache_if: Callable[[R], bool] | None = None,
) -> R:
    """:func:`serve` for coroutines."""
    entry, version = store.read_stored(where.key, where.version_keys)
    job = _Job(store, where, compute, timeout, version, protect, cache_if, is_async=True)
    if entry is not MISS:
        served = _edge(store, job, entry, store.clock())
        if served:
            return cast(R, entry.value)
        job.last = entry
    store.stats.incr(MISS_COUNT, where.scope)
    return await afill(store, where, compute, timeout, version, protect, cache_if, job.last)

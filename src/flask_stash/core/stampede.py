"""Stampede protection's options (:class:`Protection`) and its per-store state
(:class:`Stampede`): flights in progress, keys marked "pass", invalidations seen while
computations ran, background work, and which failures were already logged.

The state lives in its own object, not in :class:`~flask_stash.core.store.Store`, which
only reads and writes entries; a store owns one (``store.stampede``) so that every front
end on that store coordinates with the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flask_stash.core.flight import AsyncSingleFlight, SingleFlight

logger = logging.getLogger("flask_stash")
Clock = Callable[[], float]

#: Seconds a key whose computed value was refused for storage stays "pass": callers then
#: compute at once, without waiting for another's computation (Varnish's hit-for-pass).
PASS_SECONDS = 10.0
#: Keys remembered per table below; past it the oldest half is dropped (bounded memory).
TABLE_SIZE = 4096
#: Back-off after a failed background refresh: doubling from this, up to the cap.
REFRESH_BACKOFF = 1.0
REFRESH_BACKOFF_CAP = 60.0


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

#: Background refreshes running at once per store.
REFRESH_WORKERS = 4


class Stampede:
    """The coordination state of one store's callers.

    The waiting functions (``sleep``, ``monotonic``) and ``executor`` are attributes so
    tests can drive time by hand and run background work inline.
    """

    def __init__(self, locks: bool = False) -> None:
        #: Whether the backend can lock (resolved once, at construction).
        self.locks = locks
        self.flights = SingleFlight()
        self.async_flights = AsyncSingleFlight()
        self.sleep: Callable[[float], None] = time.sleep
        self.monotonic: Clock = time.monotonic
        self.executor: Executor | None = None
        self._lock = threading.Lock()
        self._passes: dict[str, float] = {}
        # Invalidations, as a counter: a computation notes it when it starts and stores
        # only if no invalidation of its key (or clear) came since.
        self._epoch = 0
        self._cleared = 0
        self._deleted: dict[str, int] = {}
        self._refresh_due: dict[str, tuple[float, float]] = {}
        self._failing: dict[tuple[str, str], int] = {}

    def run_in_background(self, job: Callable[[], None]) -> None:
        # A pool per store, made on first use: refreshes stuck on one backend (a hung
        # server, a lock held elsewhere) must not hold up those of another cache.
        if self.executor is None:
            with self._lock:
                if self.executor is None:
                    self.executor = ThreadPoolExecutor(
                        REFRESH_WORKERS, thread_name_prefix="flask-stash-refresh"
                    )
        self.executor.submit(job)

    # -- hit-for-pass --------------------------------------------------------------------

    def mark_pass(self, key: str, seconds: float = PASS_SECONDS) -> None:
        with self._lock:
            _bound(self._passes)
            self._passes[key] = self.monotonic() + seconds

    def passing(self, key: str) -> bool:
        until = self._passes.get(key)
        if until is None:
            return False
        if self.monotonic() < until:
            return True
        with self._lock:
            self._passes.pop(key, None)
        return False

    def clear_pass(self, key: str) -> None:
        if key in self._passes:
            with self._lock:
                self._passes.pop(key, None)

    # -- invalidations that overtake computations ------------------------------------------

    @property
    def epoch(self) -> int:
        return self._epoch

    def deleted(self, key: str) -> None:
        with self._lock:
            self._epoch += 1
            if len(self._deleted) >= TABLE_SIZE:  # forget details: count it as a clear
                self._deleted.clear()
                self._cleared = self._epoch
            self._deleted[key] = self._epoch
            self._passes.pop(key, None)

    def cleared(self) -> None:
        with self._lock:
            self._epoch += 1
            self._cleared = self._epoch
            self._deleted.clear()
            self._passes.clear()

    def overtaken(self, key: str, since: int) -> bool:
        """Whether ``key`` was deleted (or the store cleared) after epoch ``since``."""
        if self._epoch == since:
            return False
        return self._cleared > since or self._deleted.get(key, 0) > since

    # -- background refreshes: back off after failures -------------------------------------

    def refresh_allowed(self, key: str) -> bool:
        due = self._refresh_due.get(key)
        return due is None or self.monotonic() >= due[0]

    def refresh_failed(self, key: str) -> None:
        with self._lock:
            _bound(self._refresh_due)
            delay = min(self._refresh_due.get(key, (0.0, REFRESH_BACKOFF / 2))[1] * 2,
                        REFRESH_BACKOFF_CAP)  # fmt: skip
            self._refresh_due[key] = (self.monotonic() + delay, delay)

    def refresh_worked(self, key: str) -> None:
        if key in self._refresh_due:
            with self._lock:
                self._refresh_due.pop(key, None)

    # -- logs: one line per state change, never one per call --------------------------------

    def failing(self, what: str, scope: str, error: BaseException) -> None:
        """Log the first failure of ``what`` for ``scope``; count the ones that follow."""
        with self._lock:
            _bound(self._failing)
            count = self._failing.get((what, scope), 0)
            self._failing[(what, scope)] = count + 1
        if count == 0:
            logger.warning(
                "%s of %s failed (%s: %s); serving the last good value while it keeps "
                "failing (logged once, counted in stats)",
                what, scope, type(error).__name__, error,
                exc_info=error if logger.isEnabledFor(logging.DEBUG) else None,
            )  # fmt: skip

    def working(self, what: str, scope: str) -> None:
        """Log the recovery of ``what`` for ``scope`` if it was failing."""
        if not self._failing:
            return
        with self._lock:
            count = self._failing.pop((what, scope), 0)
        if count:
            logger.info("%s of %s works again after %d failure(s)", what, scope, count)


def _bound(table: dict[Any, Any]) -> None:
    """Keep a per-key table bounded: past :data:`TABLE_SIZE`, drop the oldest half."""
    if len(table) >= TABLE_SIZE:
        for key in list(table)[: TABLE_SIZE // 2]:
            del table[key]

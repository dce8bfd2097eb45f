"""What a backend failure does: fail open (count, log rate-limited, carry on) or raise."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask_stash.core.errorlog import RecentErrors
from flask_stash.core.stats import ERROR, Stats

logger = logging.getLogger("flask_stash")


class ErrorPolicy:
    """Decides the fate of a :class:`BackendError`.

    Failing open (the default) turns the failure into a miss or a skipped write, so slow
    work still runs and the request still succeeds; the error is counted in ``stats`` and
    logged at most once per ``log_interval`` seconds per operation, so a dead server does
    not flood the logs. With ``fail_open=False`` the error is raised. The behaviour never
    depends on debug mode. The last errors are kept in :attr:`recent` (for the dashboard).
    """

    def __init__(
        self,
        stats: Stats,
        *,
        fail_open: bool = True,
        log_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger = logger,
    ) -> None:
        self.stats = stats
        self.fail_open = fail_open
        self.log_interval = log_interval
        self._clock = clock
        self._log = log
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()
        #: The last errors, repeats merged (:mod:`flask_stash.core.errorlog`).
        self.recent = RecentErrors()

    def handle(self, error: Exception, operation: str, *, quiet: bool = False) -> None:
        """Count and log ``error`` (a :class:`BackendError`, or a failure to build a key);
        re-raise it unless failing open.

        ``quiet``: a backend call's failure, which :class:`~flask_stash.core.gate.BackendGate`
        reports once per outage; each one is logged at DEBUG only.
        """
        self.stats.incr(ERROR, operation)
        self.recent.add(error, operation)
        if quiet:
            self._log.debug("cache %s failed: %s", operation, error, exc_info=error)
        else:
            self._maybe_log(error, operation)
        if not self.fail_open:
            raise error

    def _maybe_log(self, error: Exception, operation: str) -> None:
        now = self._clock()
        with self._lock:
            last = self._last_logged.get(operation)
            if last is not None and now - last < self.log_interval:
                self._suppressed[operation] = self._suppressed.get(operation, 0) + 1
                return
            self._last_logged[operation] = now
            suppressed = self._suppressed.pop(operation, 0)
        more = f" ({suppressed} similar errors suppressed)" if suppressed else ""
        outcome = "serving uncached" if self.fail_open else "raised (CACHE_FAIL_OPEN is False)"
        self._log.warning(
            "cache %s failed, %s: %s: %s%s", operation, outcome, type(error).__name__, error, more
        )
        self._log.debug("cache %s failed", operation, exc_info=error)  # the traceback

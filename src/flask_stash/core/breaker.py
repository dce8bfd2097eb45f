"""A circuit breaker per backend: stop calling a server that does not answer.

A paused or overloaded server costs every call its full timeout; without memory of that,
every request pays again. The breaker counts consecutive failures:

- **closed** (healthy): calls go through. ``threshold`` failures in a row open it
  (``None``: never; for clients that leave a failing node out by themselves);
- **open**: no call goes through (the cache is bypassed: callers compute and serve
  uncached) until ``backoff`` seconds have passed;
- **half-open**: one call at a time goes through as a probe. Its success closes the
  breaker; its failure opens it again for twice as long (at most ``max_backoff``).

Pure state, no I/O: :class:`~flask_stash.core.gate.BackendGate` asks :meth:`admit` before a
call and reports :meth:`failed` / :meth:`succeeded` after it. Time comes from ``clock``
(monotonic seconds) so tests can move it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

#: Consecutive failed calls that open the breaker.
THRESHOLD = 3
#: Seconds the breaker stays open before its first probe, doubled after each failed probe.
BACKOFF = 1.0
#: The longest wait between two probes.
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class Health:
    """A backend's state as :meth:`Breaker.health` reports it (for readiness probes)."""

    state: str
    #: Calls that failed since the backend was last healthy.
    failures: int
    #: Calls not made since then, because the breaker was open or the request had
    #: already seen a failure.
    skipped: int
    #: Seconds since the first failure of this outage (``0.0`` when healthy).
    failing_for: float
    #: The last error, as ``"ErrorClass: message"`` (``""`` when healthy).
    last_error: str

    @property
    def healthy(self) -> bool:
        return self.state == CLOSED and self.failures == 0


class Breaker:
    """Closed / open / half-open, with one probe at a time and exponential back-off."""

    def __init__(
        self,
        threshold: int | None = THRESHOLD,
        backoff: float = BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1
        ):
            raise ValueError(f"threshold must be a positive integer or None, got {threshold!r}")
        if not backoff > 0 or not max_backoff >= backoff:
            raise ValueError(
                f"need 0 < backoff <= max_backoff, got backoff={backoff!r}, "
                f"max_backoff={max_backoff!r}"
            )
        self.threshold, self.backoff, self.max_backoff = threshold, backoff, max_backoff
        self.clock = clock
        self.state = CLOSED
        self.failures = 0
        self.skipped = 0
        self.last_error = ""
        self._since = 0.0
        self._wait = backoff
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def admit(self) -> bool:
        """Whether a call may go through now (``False``: skip the backend)."""
        if self.state == CLOSED:
            return True
        with self._lock:
            # Half-open lets nothing through: the probe already out is the only call.
            if self.state == OPEN and self.clock() >= self._retry_at:
                self.state = HALF_OPEN
                return True  # this call is the probe
            self.skipped += 1
            return False

    def failed(self, error: BaseException) -> bool:
        """Count a failed call; ``True`` if the backend just turned unhealthy (the first
        failure after a healthy spell)."""
        with self._lock:
            first = self.failures == 0 and self.state == CLOSED
            if first:
                self._since = self.clock()
            self.failures += 1
            self.last_error = describe(error)
            if self.state == HALF_OPEN:  # the probe failed: wait longer before the next
                self._wait = min(self._wait * 2, self.max_backoff)
                self._open()
            elif (
                self.state == CLOSED
                and self.threshold is not None
                and self.failures >= self.threshold
            ):
                self._open()
            return first

    def succeeded(self) -> Health | None:
        """Count a call that worked; the health of the outage that just ended (``None``
        if the backend was healthy already)."""
        if self.failures == 0 and self.state == CLOSED:
            return None
        with self._lock:
            if self.failures == 0 and self.state == CLOSED:
                return None
            ended = self._snapshot()
            self.state, self.failures, self.skipped, self.last_error = CLOSED, 0, 0, ""
            self._wait = self.backoff
            return ended

    def release_probe(self) -> None:
        """The probe call ended without telling (it was skipped or cancelled): let the
        next caller probe."""
        with self._lock:
            if self.state == HALF_OPEN:
                self.state = OPEN

    def health(self) -> Health:
        with self._lock:
            return self._snapshot()

    def _open(self) -> None:
        self.state = OPEN
        self._retry_at = self.clock() + self._wait

    def _snapshot(self) -> Health:
        failing_for = self.clock() - self._since if self.failures else 0.0
        return Health(self.state, self.failures, self.skipped, failing_for, self.last_error)


def describe(error: BaseException) -> str:
    """``"ErrorClass: message"`` of the driver's own error when it is known (a
    ``TimeoutError`` says more than the ``BackendError`` wrapping it)."""
    cause = getattr(error, "original", None) or error
    return f"{type(cause).__name__}: {cause}"

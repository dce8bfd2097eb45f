"""Counters of what the cache did: hits, misses, errors, refused entries...

Counters are keyed by event and by scope (a function, a view, a backend; ``""`` for the
cache as a whole), so per-function figures come for free.
"""

from __future__ import annotations

import itertools
import threading

HIT = "hits"
MISS_EVENT = "misses"
WRITE = "writes"
ERROR = "errors"
UNDECODABLE = "undecodable"
SKIPPED = "skipped"
KEY_MISMATCH = "key_mismatch"
# Stampede protection and the get-or-compute pipeline.
STALE = "stale_serves"
EARLY = "early_refreshes"
FAIL_SAFE = "fail_safe_serves"
REFRESH_ERROR = "refresh_errors"
LOCK_WAIT = "lock_waits"
#: A caller that waited for another's computation and got its result.
COALESCED = "coalesced"
#: A read that found the key marked "pass" (its last value could not be stored).
PASS_EVENT = "passes"
#: A backend call not made: the backend's breaker was open, or the request had already
#: seen it fail (scope: the operation).
BACKEND_SKIP = "backend_skips"
#: A backend turning unhealthy (its first failure after a healthy spell).
OUTAGE = "outages"


class Stats:
    """Exact, thread-safe event counters, cheap enough for the hit path.

    Each counter is an ``itertools.count``: ``next()`` on it is a single C call, atomic
    under the GIL, so concurrent increments are never lost and need no lock (a lock would
    double the cost of counting a hit). Its value is read back from its ``repr``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], itertools.count[int]] = {}
        self._baseline: dict[tuple[str, str], int] = {}

    def incr(self, event: str, scope: str = "", amount: int = 1) -> None:
        counter = self._counters.get((event, scope)) or self._create(event, scope)
        for _ in range(amount):
            next(counter)

    def counter(self, event: str, scope: str = "") -> itertools.count[int]:
        """The counter itself, for hot paths: ``next(counter)`` counts one event."""
        return self._counters.get((event, scope)) or self._create(event, scope)

    def _create(self, event: str, scope: str) -> itertools.count[int]:
        with self._lock:
            return self._counters.setdefault((event, scope), itertools.count(1))

    def get(self, event: str, scope: str | None = None) -> int:
        """One counter; ``scope=None`` sums the event over every scope."""
        counts = self._items()
        if scope is not None:
            return counts.get((event, scope), 0)
        return sum(n for (name, _), n in counts.items() if name == event)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{event: {scope: count}}`` at this instant."""
        out: dict[str, dict[str, int]] = {}
        for (event, scope), count in self._items().items():
            out.setdefault(event, {})[scope] = count
        return out

    def reset(self) -> None:
        """Zero every counter. Counters handed out by :meth:`counter` keep counting, so a
        reset records a baseline instead of replacing them."""
        current = self._raw()
        with self._lock:
            self._baseline = current

    def _items(self) -> dict[tuple[str, str], int]:
        base = self._baseline
        counts = {key: value - base.get(key, 0) for key, value in self._raw().items()}
        return {key: value for key, value in counts.items() if value}

    def _raw(self) -> dict[tuple[str, str], int]:
        with self._lock:
            counters = list(self._counters.items())
        return {key: _value(counter) for key, counter in counters}


def _value(counter: itertools.count[int]) -> int:
    # repr is "count(N)" where N is the next value; counters start at 1, so N - 1 were taken.
    return int(repr(counter)[6:-1]) - 1

"""Counters of what the cache did: hits, misses, errors, refused entries...

Counters are keyed by event and by scope (a cached function or view, a backend
operation; ``""`` for the cache as a whole), so per-function figures come for free.

Every call of a cached function or view ends in exactly one **outcome** (:data:`OUTCOMES`):
a hit, a miss (it computed), a stale value served, a wait for another caller's
computation (coalesced), a pass (computed, not storable) or a backend failure (computed
because the backend failed). The other events (lock waits, early refreshes, backend
calls skipped...) describe how an outcome came about and may occur several times per call.

Events that carry a quantity record it too: the compute time an answer saved (hits, stale
serves, coalesced waits: the ``cost`` its entry recorded) and the bytes written.
"""

from __future__ import annotations

import itertools
import math
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import NamedTuple

HIT = "hits"
MISS_EVENT = "misses"
WRITE = "writes"
#: A backend call that failed (scope: the operation).
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
#: A caller that computed a value that could not be stored (or a key marked "pass").
PASS_EVENT = "passes"
#: A caller that computed because the backend failed (or its breaker was open).
BACKEND_FAILED = "backend_failed"
#: A backend call not made: the backend's breaker was open, or the request had already
#: seen it fail (scope: the operation).
BACKEND_SKIP = "backend_skips"
#: A tag invalidated (``invalidate_tags``), one per tag.
TAG_INVALIDATION = "tag_invalidations"
#: A backend turning unhealthy (its first failure after a healthy spell).
OUTAGE = "outages"

#: The outcomes of a call, each counted exactly once per call (see the module docstring).
OUTCOMES = (HIT, MISS_EVENT, STALE, COALESCED, PASS_EVENT, BACKEND_FAILED)

#: ``record(amount)``: counts one event carrying ``amount`` (seconds saved, bytes).
Recorder = Callable[[float], None]


class Reading(NamedTuple):
    """One counter at an instant: how many events, and the sum of what they carried."""

    events: int
    total: float


class _Tally:
    """One counter. Hot paths count with a single C call that is atomic under the GIL, so
    concurrent events are never lost and need no lock: ``tick()`` (an ``itertools.count``)
    for plain events, ``record(amount)`` (``list.append``) for events that carry a
    quantity. Recorded amounts wait in ``pending`` until :meth:`Stats.drain` adds them up
    (at most a second later: :mod:`flask_stash.core.statsflush`)."""

    __slots__ = ("base", "count", "pending", "record", "tick", "ticks", "total")

    def __init__(self) -> None:
        self.ticks = itertools.count(1)
        self.tick = self.ticks.__next__
        self.pending: list[float] = []
        self.record: Recorder = self.pending.append
        self.count, self.total = 0, 0.0
        self.base = Reading(0, 0.0)

    def drain(self) -> None:
        # Only appends run concurrently (drains hold the Stats lock): the first n items
        # are the ones read, whatever is appended meanwhile.
        pending = self.pending
        n = len(pending)
        if n:
            chunk = pending[:n]
            del pending[:n]
            self.count += n
            self.total += math.fsum(chunk)

    def raw(self) -> Reading:
        """Everything counted since the process started and drained (resets not applied;
        amounts recorded since the last drain wait for the next)."""
        # repr is "count(N)" where N is the next value; counters start at 1.
        ticked = int(repr(self.ticks)[6:-1]) - 1
        return Reading(self.count + ticked, self.total)


class Stats:
    """Exact, thread-safe event counters, cheap enough for the hit path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[tuple[str, str], _Tally] = {}
        #: What each scope is (``"view"``, ``"memoize"``, ``"cached"``, ``"template"``).
        self.kinds: dict[str, str] = {}
        _ALL.add(self)

    # -- counting ------------------------------------------------------------------------

    def incr(self, event: str, scope: str = "", amount: int = 1) -> None:
        tick = self._tally(event, scope).tick
        for _ in range(amount):
            tick()

    def record(self, event: str, scope: str, amount: float) -> None:
        """Count one ``event`` carrying ``amount`` (seconds saved, bytes written)."""
        self._tally(event, scope).record(amount)

    def counter(self, event: str, scope: str = "") -> Iterator[int]:
        """The counter itself, for hot paths: ``next(counter)`` counts one event."""
        return self._tally(event, scope).ticks

    def recorder(self, event: str, scope: str = "") -> Recorder:
        """The counter's ``record``, for hot paths: ``record(amount)`` counts one event."""
        return self._tally(event, scope).record

    def describe(self, scope: str, kind: str) -> None:
        """Say what ``scope`` is (a view, a memoized function...), for reports."""
        self.kinds[scope] = kind

    def _tally(self, event: str, scope: str) -> _Tally:
        tally = self._tallies.get((event, scope))
        if tally is None:
            with self._lock:
                tally = self._tallies.setdefault((event, scope), _Tally())
        return tally

    # -- reading -------------------------------------------------------------------------

    def get(self, event: str, scope: str | None = None) -> int:
        """One counter; ``scope=None`` sums the event over every scope."""
        counts = self.readings()
        if scope is not None:
            return counts.get((event, scope), _ZERO).events
        return sum(r.events for (name, _), r in counts.items() if name == event)

    def total(self, event: str, scope: str | None = None) -> float:
        """The sum of what ``event`` carried (``scope=None``: over every scope)."""
        counts = self.readings()
        if scope is not None:
            return counts.get((event, scope), _ZERO).total
        return math.fsum(r.total for (name, _), r in counts.items() if name == event)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{event: {scope: count}}`` at this instant (counters at zero left out)."""
        out: dict[str, dict[str, int]] = {}
        for (event, scope), reading in self.readings().items():
            out.setdefault(event, {})[scope] = reading.events
        return out

    def readings(self) -> dict[tuple[str, str], Reading]:
        """Every non-zero counter since the last :meth:`reset`."""
        out = {}
        for key, raw, base in self._drained():
            reading = Reading(raw.events - base.events, raw.total - base.total)
            if reading.events:
                out[key] = reading
        return out

    def raw_readings(self) -> dict[tuple[str, str], Reading]:
        """Every counter since the process started, resets ignored (for sharing deltas)."""
        return {key: raw for key, raw, _ in self._drained()}

    def reset(self) -> None:
        """Zero every counter of this process (handed-out counters keep counting)."""
        with self._lock:
            for tally in self._tallies.values():
                tally.drain()
                tally.base = tally.raw()

    def drain(self) -> None:
        """Add up the amounts recorded since the last drain (bounds their memory)."""
        self._drained()

    def _drained(self) -> list[tuple[tuple[str, str], Reading, Reading]]:
        # Read under the lock that drains hold: a drain moves amounts from ``pending`` to
        # ``count`` in two steps, which a reading must not fall between.
        with self._lock:
            out = []
            for key, tally in list(self._tallies.items()):
                tally.drain()
                out.append((key, tally.raw(), tally.base))
        return out


_ZERO = Reading(0, 0.0)
#: Every live Stats, drained once a second by :mod:`flask_stash.core.statsflush`.
_ALL: weakref.WeakSet[Stats] = weakref.WeakSet()


def live() -> list[Stats]:
    return list(_ALL)


def readable_name(fn: object) -> str:
    """A function's name for statistics: ``module.qualname`` without what only adds noise
    (``__main__.``, ``<locals>.``): ``create_app.fib``, ``shop.models.Product.price``."""
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    name = name.replace("<locals>.", "")
    return name if module in ("", "__main__") else f"{module}.{name}"

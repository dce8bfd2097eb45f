"""Statistics as people read them: per cached function or view, and in total.

:func:`figures` turns counter readings (:meth:`Stats.readings
<flask_stash.core.stats.Stats.readings>`, or the sums of every process from
:class:`~flask_stash.core.statshare.SharedStats`) into :class:`Figures`; :class:`Report` is
what ``cache.stats()`` returns: this process's figures and, on a shared backend, every
process's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_stash.core import statsflush
from flask_stash.core.stats import (
    BACKEND_FAILED,
    COALESCED,
    HIT,
    MISS_EVENT,
    OUTCOMES,
    PASS_EVENT,
    STALE,
    WRITE,
    Reading,
)

Key = tuple[str, str]
logger = logging.getLogger("flask_stash")

#: The outcome events, by the names figures use.
OUTCOME_NAMES = {
    HIT: "hits",
    MISS_EVENT: "misses",
    STALE: "stale",
    COALESCED: "coalesced",
    PASS_EVENT: "passes",
    BACKEND_FAILED: "errors",
}
#: Outcomes answered without running the function in the caller.
SERVED = (HIT, STALE, COALESCED)


@dataclass(frozen=True)
class ScopeFigures:
    """What one cached function or view (or the whole cache) did."""

    scope: str
    kind: str
    hits: int = 0
    misses: int = 0
    stale: int = 0
    coalesced: int = 0
    passes: int = 0
    errors: int = 0
    #: Seconds of computation the answers served from the cache saved.
    time_saved: float = 0.0
    writes: int = 0
    bytes_stored: int = 0

    @property
    def calls(self) -> int:
        """Calls (requests) that ended in an outcome: one each."""
        return self.hits + self.misses + self.stale + self.coalesced + self.passes + self.errors

    @property
    def hit_ratio(self) -> float | None:
        """The share of calls answered without computing (hits, stale, coalesced)."""
        calls = self.calls
        return None if not calls else (self.hits + self.stale + self.coalesced) / calls

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "kind": self.kind,
            "calls": self.calls,
            "hits": self.hits,
            "misses": self.misses,
            "stale": self.stale,
            "coalesced": self.coalesced,
            "passes": self.passes,
            "errors": self.errors,
            "hit_ratio": self.hit_ratio,
            "time_saved": round(self.time_saved, 6),
            "writes": self.writes,
            "bytes_stored": self.bytes_stored,
        }


@dataclass(frozen=True)
class Figures:
    """Per-scope figures, their total, and every raw counter (``events``)."""

    scopes: dict[str, ScopeFigures]
    total: ScopeFigures
    events: dict[str, dict[str, int]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total.as_dict(),
            "scopes": [figures.as_dict() for figures in self.by_calls()],
            "events": self.events,
        }

    def by_calls(self) -> list[ScopeFigures]:
        """The scopes, busiest first."""
        return sorted(self.scopes.values(), key=lambda f: (-f.calls, f.scope))


def figures(readings: Mapping[Key, Reading], kinds: Mapping[str, str]) -> Figures:
    events: dict[str, dict[str, int]] = {}
    per_scope: dict[str, dict[str, Any]] = {}
    for (event, scope), reading in readings.items():
        events.setdefault(event, {})[scope] = reading.events
        if event in OUTCOME_NAMES or event == WRITE:
            _add(per_scope.setdefault(scope, {}), event, reading)
    scopes = {
        scope: ScopeFigures(scope, kinds.get(scope, ""), **fields)
        for scope, fields in per_scope.items()
        if any(fields.get(OUTCOME_NAMES[e], 0) for e in OUTCOMES)
    }
    total: dict[str, Any] = {}
    for (event, _), reading in readings.items():
        if event in OUTCOME_NAMES or event == WRITE:
            _add(total, event, reading)
    return Figures(scopes, ScopeFigures("", "total", **total), events)


def _add(fields: dict[str, Any], event: str, reading: Reading) -> None:
    if event == WRITE:
        fields["writes"] = fields.get("writes", 0) + reading.events
        fields["bytes_stored"] = fields.get("bytes_stored", 0) + round(reading.total)
        return
    name = OUTCOME_NAMES[event]
    fields[name] = fields.get(name, 0) + reading.events
    if event in SERVED:
        fields["time_saved"] = fields.get("time_saved", 0.0) + reading.total


class Report(dict[str, dict[str, int]]):
    """``cache.stats()``: this process's figures (:attr:`process`) and, when the backend is
    shared by several processes, everyone's (:attr:`everyone`, ``None`` otherwise, or when
    the backend could not be read).

    As a dict it is this process's raw counters, ``{event: {scope: count}}``: what
    ``cache.stats()`` returned before figures existed, so ``stats["errors"]`` and
    ``jsonify(cache.stats())`` keep working. :meth:`as_dict` is the whole report.
    """

    def __init__(
        self,
        process: Figures,
        everyone: Figures | None,
        shared: bool,
        backend: str,
        pid: int,
        evictions: int | None = None,
        health: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(process.events)
        self.process, self.everyone, self.shared = process, everyone, shared
        self.backend, self.pid, self.evictions = backend, pid, evictions
        self.health: dict[str, Any] = health or {}

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``flask stash stats --json``, the dashboard)."""
        return {
            "backend": self.backend,
            "shared": self.shared,
            "pid": self.pid,
            "evictions": self.evictions,
            "health": self.health,
            "process": self.process.as_dict(),
            "everyone": None if self.everyone is None else self.everyone.as_dict(),
        }


def report(store: Any, *, everyone: bool = True) -> Report:
    """``store``'s :class:`Report`; ``everyone=False`` skips reading the shared record."""
    stats = store.stats
    process = figures(stats.readings(), stats.kinds)
    shared, everyone_figures = store.shared_stats, None
    if shared is not None and everyone:
        statsflush.push_now(store)  # this process's latest counts, in the sums too
        found = shared.read()
        if found is not None:
            everyone_figures = figures(found, stats.kinds)
    health = store.gate.breaker.health()
    return Report(
        process,
        everyone_figures,
        shared is not None,
        store.gate.name,
        os.getpid(),
        evictions_of(store.shared_backend),
        {
            "state": health.state,
            "healthy": health.healthy,
            "failed_calls": health.failures,
            "skipped_calls": health.skipped,
            "failing_for": round(health.failing_for, 3),
            "last_error": health.last_error,
        },
    )


def evictions_of(backend: object) -> int | None:
    """Entries the backend evicted to make room, when it can tell (``None``: unknown)."""
    method = getattr(backend, "evictions", None)
    if method is None:
        return None
    try:
        found = method()
    except Exception:  # a figure for a report: never worth failing it
        logger.debug("reading the backend's evictions failed", exc_info=True)
        return None
    return found if isinstance(found, int) else None

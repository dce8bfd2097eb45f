"""What the cache did over the last minutes: a ring of per-interval totals.

:class:`History` samples a :class:`~flask_stash.core.stats.Stats` (the statistics'
background round calls :meth:`History.sample` once a second, see
:mod:`flask_stash.core.statsflush`) and adds what changed since the previous sample to
the current interval's bucket: the outcomes (hits, misses, stale, coalesced, passes,
errors) and the compute time the answers served from the cache saved. Only the last
``span`` seconds are kept (:data:`SPAN`: fifteen minutes of :data:`INTERVAL` buckets,
a few kilobytes). It reads the counters since the process started, so
:meth:`Stats.reset <flask_stash.core.stats.Stats.reset>` does not disturb it.

Figures are this process's: other workers keep histories of their own. Nothing samples
unless a history exists (the dashboard creates one): the hot paths never see it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_stash.core.report import OUTCOME_NAMES, SERVED
from flask_stash.core.stats import Reading, Stats

#: Seconds per bucket.
INTERVAL = 5.0
#: Seconds kept.
SPAN = 900.0
#: The series of a point, in the order charts stack them.
SERIES = (*OUTCOME_NAMES.values(), "time_saved")


@dataclass
class Bucket:
    """What happened from ``start`` to ``start + interval``."""

    start: float
    values: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.start}
        for name in SERIES:
            value = self.values.get(name, 0)
            out[name] = round(value, 6) if name == "time_saved" else int(value)
        return out


class History:
    """Per-interval totals of ``stats`` over the last ``span`` seconds (thread-safe)."""

    def __init__(
        self,
        stats: Stats,
        *,
        interval: float = INTERVAL,
        span: float = SPAN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < interval <= span:
            raise ValueError(f"need 0 < interval <= span, got {interval!r} and {span!r}")
        self.stats = stats
        self.interval = interval
        self.span = span
        self._clock = clock
        self._buckets: deque[Bucket] = deque(maxlen=math.ceil(span / interval))
        self._lock = threading.Lock()
        # What was counted before the history began is not part of it.
        self._seen = totals(stats.raw_readings())

    def sample(self) -> None:
        """Add what was counted since the previous sample to the current bucket."""
        with self._lock:
            now = totals(self.stats.raw_readings())
            bucket = self._bucket(self._start(self._clock()))
            for name, value in now.items():
                delta = value - self._seen.get(name, 0)
                # A counter read while it was being drained can look smaller for an
                # instant: keep the old baseline, the difference arrives next time.
                if delta > 0:
                    bucket.values[name] = bucket.values.get(name, 0) + delta
                    self._seen[name] = value

    def points(self) -> list[dict[str, Any]]:
        """One point per interval of the last ``span`` seconds, oldest first; intervals
        with no sample are zeros, so the series are evenly spaced."""
        with self._lock:
            found = {bucket.start: bucket for bucket in self._buckets}
            end = self._start(self._clock())
        count = self._buckets.maxlen or 1
        starts = (end - (count - 1 - i) * self.interval for i in range(count))
        return [(found.get(start) or Bucket(start)).as_dict() for start in starts]

    def as_dict(self) -> dict[str, Any]:
        return {"interval": self.interval, "span": self.span, "points": self.points()}

    def _start(self, now: float) -> float:
        return math.floor(now / self.interval) * self.interval

    def _bucket(self, start: float) -> Bucket:
        buckets = self._buckets
        if buckets and buckets[-1].start >= start:
            return buckets[-1]  # the current one (or the clock went back: keep adding)
        buckets.append(Bucket(start))
        return buckets[-1]


def totals(readings: Mapping[tuple[str, str], Reading]) -> dict[str, float]:
    """The outcomes over every scope, by the names figures use, and the time saved."""
    out: dict[str, float] = {}
    for (event, _), reading in readings.items():
        name = OUTCOME_NAMES.get(event)
        if name is None:
            continue
        out[name] = out.get(name, 0) + reading.events
        if event in SERVED:
            out["time_saved"] = out.get("time_saved", 0.0) + reading.total
    return out

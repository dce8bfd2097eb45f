"""A hand-moved clock for deterministic tests."""

from __future__ import annotations

import threading


class FakeClock:
    """Callable returning the current fake time in seconds; move it with :meth:`advance`."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

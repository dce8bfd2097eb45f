"""A short memory of the cache's recent errors, for people to read (the dashboard).

The error policy hands every error it sees here (backend calls that failed, keys that
could not be built). The record is bounded (the last :data:`SIZE` distinct errors) and
merges repeats: the same failure (same operation, same error text) is one entry with a
count and the times of its first and latest occurrence, moved to the newest place, so a
server down for an hour shows as a line or two, not as the last twenty requests.
Recording takes a lock, on the error path only; nothing is logged here (the policy and
the gate do that, rate-limited).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from flask_stash.core.breaker import describe

#: Entries kept.
SIZE = 20
#: Longest message kept, in characters (a driver may put a whole reply in its error).
MAX_MESSAGE = 300


@dataclass(frozen=True)
class RecentError:
    """One error, or a run of the same error."""

    operation: str
    message: str
    first: float
    last: float
    count: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "message": self.message,
            "first": round(self.first, 3),
            "last": round(self.last, 3),
            "count": self.count,
        }


class RecentErrors:
    """The last ``size`` errors, newest last, repeats merged (thread-safe)."""

    def __init__(self, size: int = SIZE, clock: Callable[[], float] = time.time) -> None:
        self._entries: deque[RecentError] = deque(maxlen=size)
        self._clock = clock
        self._lock = threading.Lock()

    def add(self, error: BaseException, operation: str) -> None:
        """Remember that ``operation`` failed with ``error`` now."""
        message = describe(error)
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "\u2026"
        now = self._clock()
        with self._lock:
            entries = self._entries
            for index, seen in enumerate(entries):
                if seen.operation == operation and seen.message == message:
                    del entries[index]
                    entries.append(replace(seen, last=now, count=seen.count + 1))
                    return
            entries.append(RecentError(operation, message, now, now))

    def entries(self) -> list[RecentError]:
        """The entries, newest first."""
        with self._lock:
            return list(reversed(self._entries))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

"""Invalidations a failing backend could not take, kept to be replayed when it answers.

Without them, an entry deleted (or a family invalidated) during an outage would be served
again after it. Each is the backend call itself (a bound method and its arguments), kept
in order. The queue is bounded: past ``limit`` it is dropped as a whole and replaced by
one clear of the whole namespace (``clear_all``), which invalidates everything that might
have been concerned.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

#: The operations (as the store names them) that invalidate entries.
INVALIDATIONS = frozenset({"delete", "delete_many", "clear", "invalidate", "unlink"})
#: Invalidations kept per backend before falling back to clearing the namespace.
PENDING_LIMIT = 1000


class PendingInvalidations:
    """A bounded, ordered queue of backend calls to replay."""

    def __init__(
        self, limit: int = PENDING_LIMIT, clear_all: Callable[[], object] | None = None
    ) -> None:
        self.limit = limit
        #: How to invalidate everything at once (the namespace's ``clear``) on overflow.
        self.clear_all = clear_all
        self.overflowed = False
        self._calls: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._calls) + self.overflowed

    def add(self, method: Callable[..., object], args: tuple[Any, ...]) -> None:
        with self._lock:
            if self.overflowed:
                return  # the clear to come covers it
            if len(self._calls) >= self.limit:
                self._calls.clear()
                self.overflowed = True
                return
            self._calls.append((method, args))

    def replay(self) -> None:
        """Make the queued calls, oldest first. A call that fails raises ``BackendError``
        and stays first in the queue, with everything after it."""
        if self.overflowed:
            if self.clear_all is not None:
                self.clear_all()
            with self._lock:
                self._calls.clear()
                self.overflowed = False
        while True:
            with self._lock:
                if not self._calls:
                    return
                method, args = self._calls[0]
            method(*args)
            with self._lock:
                if self._calls and self._calls[0] == (method, args):
                    self._calls.popleft()

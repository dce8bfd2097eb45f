"""Single-flight: concurrent callers of one key in one process share one computation.

The first caller (the leader) computes; the others wait for the flight to end and then
act on its :class:`Outcome`: read what the leader stored, compute themselves when it
stored nothing (hit-for-pass), re-raise its error, or start over when the leader gave up
(cancelled, interrupted). A waiter that waits longer than its bound computes on its own
rather than hang. Per-key state is removed as soon as the leader ends, so nothing
accumulates.

Flights are begun and ended in explicit steps (:meth:`SingleFlight.begin`,
:meth:`SingleFlight.end`) rather than around a callback, so the computation runs in the
caller's own frame (see :mod:`flask_stash.core.pipeline`).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a flight ended, as its waiters see it.

    ``kind`` is one of :data:`STORED` (``blob``: the bytes written, when the leader's
    value may be decoded by each waiter; else the waiters read the store), :data:`PASS`
    (nothing stored: compute yourself), :data:`ERROR` (``error``: the computation
    raised) or :data:`RETRY` (the leader gave up, or an invalidation overtook it).
    """

    kind: str
    blob: bytes | None = None
    error: BaseException | None = None


STORED = "stored"
PASS = "pass"
ERROR = "error"
RETRY = "retry"
GAVE_UP = Outcome(RETRY)
PASSED = Outcome(PASS)


class Flight:
    """One key's computation in progress; waiters block on :attr:`done`."""

    __slots__ = ("done", "outcome")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcome: Outcome = GAVE_UP


class SingleFlight:
    """Thread-level single-flight, keyed by string."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def begin(self, key: str) -> tuple[Flight, bool]:
        """``(flight, True)`` when the caller now leads ``key``; ``(flight, False)``: wait
        on ``flight.done`` then read ``flight.outcome``."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def end(self, key: str, flight: Flight, outcome: Outcome) -> None:
        """The leader is done: tell the waiters ``outcome`` and forget the flight."""
        flight.outcome = outcome
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.done.set()

    def try_lead(self, key: str) -> bool:
        """Claim ``key`` without waiting (for background refreshes); ``False`` if taken."""
        return self.begin(key)[1]

    def release(self, key: str) -> None:
        """End a claim taken with :meth:`try_lead`."""
        with self._lock:
            flight = self._flights.pop(key, None)
        if flight is not None:
            flight.done.set()


class AsyncSingleFlight:
    """Single-flight for coroutines, per event loop: waiting yields to the loop."""

    def __init__(self) -> None:
        self._flights: dict[tuple[int, str], asyncio.Future[Outcome]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def begin(self, key: str) -> tuple[asyncio.Future[Outcome], bool]:
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        pending = self._flights.get(slot)
        if pending is not None:
            return pending, False
        future: asyncio.Future[Outcome] = loop.create_future()
        self._flights[slot] = future
        return future, True

    def end(self, key: str, future: asyncio.Future[Outcome], outcome: Outcome) -> None:
        slot = (id(future.get_loop()), key)
        if self._flights.get(slot) is future:
            del self._flights[slot]
        if not future.done():
            future.set_result(outcome)

    @staticmethod
    async def wait(future: asyncio.Future[Outcome], timeout: float | None) -> Outcome | None:
        """The flight's outcome, or ``None`` after ``timeout`` seconds.

        Shielded: cancelling a waiter never cancels the flight it waits for.
        """
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            return None

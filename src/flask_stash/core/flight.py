"""Single-flight: concurrent callers of one key in one process share one computation.

The first caller (the leader) runs the function; the others wait for its result, or its
exception, which they re-raise. A waiter that waits longer than its bound computes on its
own rather than hang. Per-key state is removed as soon as the leader finishes, so nothing
accumulates.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class SingleFlight:
    """Thread-level single-flight, keyed by string."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[Any]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def run(self, key: str, fn: Callable[[], T], wait: float | None = None) -> tuple[T, bool]:
        """``(fn()'s result, whether this caller ran it)``; waiters share the leader's.

        ``wait`` bounds how long a waiter waits (``None``: as long as the leader runs);
        past it, the waiter runs ``fn`` itself.
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if leader:
            return self._lead(key, flight, fn), True
        if not flight.done.wait(wait):
            return fn(), True
        if flight.error is not None:
            raise flight.error
        return flight.value, False

    def _lead(self, key: str, flight: _Flight[T], fn: Callable[[], T]) -> T:
        try:
            flight.value = fn()
            return flight.value  # type: ignore[no-any-return]
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def try_lead(self, key: str) -> bool:
        """Claim ``key`` without waiting (for background refreshes); ``False`` if taken."""
        with self._lock:
            if key in self._flights:
                return False
            self._flights[key] = _Flight()
            return True

    def wait(self, key: str, timeout: float | None) -> bool:
        """Wait until ``key``'s current flight ends (``False`` if ``timeout`` passed first)."""
        with self._lock:
            flight = self._flights.get(key)
        return flight is None or flight.done.wait(timeout)

    def release(self, key: str) -> None:
        with self._lock:
            flight = self._flights.pop(key, None)
        if flight is not None:
            flight.done.set()


class AsyncSingleFlight:
    """Single-flight for coroutines, per event loop."""

    def __init__(self) -> None:
        self._flights: dict[tuple[int, str], asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(
        self, key: str, fn: Callable[[], Awaitable[T]], wait: float | None = None
    ) -> tuple[T, bool]:
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        pending = self._flights.get(slot)
        if pending is None:
            return await self._lead(slot, loop, fn), True
        try:
            value: T = await asyncio.wait_for(asyncio.shield(pending), wait)
        except asyncio.TimeoutError:
            return await fn(), True
        return value, False

    async def _lead(
        self, slot: tuple[int, str], loop: asyncio.AbstractEventLoop, fn: Callable[[], Awaitable[T]]
    ) -> T:
        future: asyncio.Future[T] = loop.create_future()
        self._flights[slot] = future
        try:
            value = await fn()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # marks it retrieved: no "never retrieved" warning if unwaited
            raise
        else:
            future.set_result(value)
            return value
        finally:
            self._flights.pop(slot, None)

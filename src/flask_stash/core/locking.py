"""Computing a key in one process at a time: the backend lock behind stampede protection.

On backends with the lock capability, one process computes a missing entry while the
others poll for it, a bounded time, then compute themselves rather than hang; a lock's
lease expires if its holder dies. Without the capability, single-flight in each process
is all there is. Lock failures fail open: computing without the lock beats waiting for
nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_stash.core.engine import Lookup
from flask_stash.core.stats import LOCK_WAIT
from flask_stash.core.store import Store

if TYPE_CHECKING:
    from flask_stash.core.stampede import Protection


def nothing_found() -> tuple[bool, Any]:
    return False, None


@dataclass(frozen=True)
class Turn:
    """The outcome of :func:`take_turn`: another process's result (``found``), or the
    turn to compute, to be ended with ``release`` (a no-op when no lock is held)."""

    found: bool
    value: Any = None
    release: Callable[[], None] = lambda: None


def take_turn(
    store: Store,
    where: Lookup,
    protect: Protection,
    found: Callable[[], tuple[bool, Any]],
    check_first: bool = True,
) -> Turn:
    """Wait for the turn to compute ``where`` across processes, where the backend can lock.

    ``found()`` says whether another process already produced the result (and returns
    what to give the caller then). Without the lock capability, single-flight already
    made this the only caller in the process: ``found`` is checked once, since a caller
    may have read its miss just before the previous leader stored. With it: take the
    lock (checking ``found`` first: it may have been stored meanwhile), or poll ``found``
    while another process holds it, a bounded time, then compute rather than hang; a
    lease that expires (a dead holder) is taken over. The caller may hold the turn past
    its own return (a view's response is stored when the request ends) and release later.
    """
    steps = _turn(store, where, protect, found, check_first)
    try:
        while True:
            store.stampede.sleep(next(steps))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def atake_turn(
    store: Store,
    where: Lookup,
    protect: Protection,
    found: Callable[[], tuple[bool, Any]],
    check_first: bool = True,
) -> Turn:
    """:func:`take_turn` for coroutines: waiting yields to the event loop."""
    steps = _turn(store, where, protect, found, check_first)
    try:
        while True:
            await asyncio.sleep(next(steps))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _turn(
    store: Store,
    where: Lookup,
    protect: Protection,
    found: Callable[[], tuple[bool, Any]],
    check_first: bool,
) -> Generator[float, None, Turn]:
    """The decisions of :func:`take_turn`, shared by its sync and async drivers: yields
    the delays to wait between polls, returns the turn."""
    if not store.stampede.locks:
        ok, value = found() if check_first else (False, None)
        return Turn(ok, value)
    lock = BackendLock(store, where.key + ":lock", protect)  # same hash tag: same cluster slot
    if lock.acquire():
        return lock.turn(found if check_first else nothing_found)
    store.stats.incr(LOCK_WAIT, where.scope)
    for delay in _polls(store, protect):
        yield delay
        ok, value = found()
        if ok:
            return Turn(True, value)
        if lock.acquire():  # the holder finished without storing, or died
            return lock.turn(found)
    return Turn(False)


def _polls(store: Store, protect: Protection) -> Iterator[float]:
    """Delays between looks at another process's work: doubling, bounded in total."""
    deadline = store.stampede.monotonic() + protect.lock_wait
    delay = 0.005
    while store.stampede.monotonic() < deadline:
        yield delay
        delay = min(delay * 2, 0.1)


class BackendLock:
    """A backend lock with an owner token; backend failures fail open."""

    def __init__(self, store: Store, name: str, protect: Protection) -> None:
        self.store, self.name, self.lease = store, name, protect.lock_lease
        self.token = uuid.uuid4().hex
        #: Whether the lock may be held: taken, or its command sent and not answered.
        self.held = False

    def acquire(self) -> bool:
        acquire = self.store.backend.acquire_lock  # type: ignore[attr-defined]
        sent: list[bool] = []

        def attempt(*args: Any) -> bool:
            sent.append(True)
            return bool(acquire(*args))

        got = self.store.gate.call("lock", None, attempt, self.name, self.token, self.lease)
        if got is None:
            if sent:
                # A command that timed out may still run once the server answers (a paused
                # server executes what it had received): release it then, rather than let
                # it block other processes for its whole lease.
                self._release_later()
            return True  # a failure computes without the lock rather than wait for nothing
        self.held = got
        return got

    def release(self) -> None:
        if not self.held:
            return  # never taken (or already queued for release): nothing to give back
        self.held = False
        release = self.store.backend.release_lock  # type: ignore[attr-defined]
        if not self.store.gate.run("unlock", release, self.name, self.token):
            self._release_later()

    def _release_later(self) -> None:
        # Replayed with the invalidations, before any other call once the backend answers;
        # the owner token makes it harmless if the lock was never taken or has expired.
        release = self.store.backend.release_lock  # type: ignore[attr-defined]
        self.store.gate.pending.add(release, (self.name, self.token))

    def turn(self, found: Callable[[], tuple[bool, Any]]) -> Turn:
        """While holding the lock: another's result if ``found``, else the turn to compute."""
        try:
            ok, value = found()
        except BaseException:
            self.release()
            raise
        if ok:
            self.release()
            return Turn(True, value)
        return Turn(False, None, self.release)

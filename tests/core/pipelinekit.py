"""Helpers for the get-or-compute pipeline's unit tests: a scripted shared backend (with or
without the lock capability), a store on a fake clock, entries planted at chosen times,
flights played by the test, and the counters a caller's outcome ends in."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from flask_stash.core import ticket as ticket_module
from flask_stash.core.api import MISS, TTL, Miss
from flask_stash.core.engine import Lookup
from flask_stash.core.entry import Entry
from flask_stash.core.errors import BackendError
from flask_stash.core.flight import Flight, Outcome
from flask_stash.core.stampede import Protection
from flask_stash.core.store import Store
from flask_stash.testing import FakeClock

KEY = "p:k"
SCOPE = "fn"


class Scripted:
    """A shared backend of plain dicts (no local stamps) that records every call; the
    operations named in ``failing`` raise :class:`BackendError`."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.ttls: dict[str, TTL] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.failing: set[str] = set()

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.failing:
            raise BackendError(f"{name} failed")

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]

    def get(self, key: str) -> bytes | Miss:
        self._call("get", key)
        return self.data.get(key, MISS)

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        self._call("get_many", tuple(keys))
        return [self.data.get(key, MISS) for key in keys]

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        self._call("set", key, ttl)
        self.data[key], self.ttls[key] = value, ttl

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        for key, value in items.items():
            self.set(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        self._call("add", key, ttl)
        if key in self.data:
            return False
        self.data[key], self.ttls[key] = value, ttl
        return True

    def delete(self, key: str) -> bool:
        self._call("delete", key)
        return self.data.pop(key, None) is not None

    def delete_many(self, keys: Sequence[str]) -> int:
        return sum(self.delete(key) for key in keys)

    def clear(self) -> None:
        self._call("clear")
        self.data.clear()

    def close(self) -> None:
        self._call("close")


class Locking(Scripted):
    """With the lock capability: ``answers`` scripts what each acquisition returns (then
    ``True``); the locks held are in ``held``."""

    def __init__(self, *answers: bool) -> None:
        super().__init__()
        self.answers = list(answers)
        self.held: dict[str, str] = {}

    def acquire_lock(self, name: str, token: str, lease: float) -> bool:
        self._call("acquire_lock", name, lease)
        got = self.answers.pop(0) if self.answers else True
        if got:
            self.held[name] = token
        return got

    def release_lock(self, name: str, token: str) -> bool:
        self._call("release_lock", name)
        return self.held.pop(name, None) == token


def make_store(backend: Scripted, clock: FakeClock) -> Store:
    """A store on ``clock``; waiting for a lock moves the clock instead of sleeping."""
    store = Store(backend, clock=clock, default_timeout=100, key_prefix="p:")
    store.stampede.monotonic = clock
    store.stampede.sleep = clock.advance  # type: ignore[assignment]
    return store


def plant(
    store: Store,
    value: object,
    *,
    fresh_for: float | None,
    stale_for: float = 0.0,
    key: str = KEY,
    version: bytes | None = None,
    cost: float = 0.0,
    age: float = 0.0,
) -> Entry:
    """Write an entry at ``key`` as written ``age`` seconds ago, fresh for ``fresh_for``
    seconds from then (``None``: forever), servable ``stale_for`` more."""
    created = store.clock() - age
    fresh_until = None if fresh_for is None else created + fresh_for
    stale_until = None if fresh_until is None else fresh_until + stale_for
    entry = Entry(value, created, fresh_until, stale_until, version, (), cost)
    store.backend.data[key] = store.serializer.dumps(tuple(entry))  # type: ignore[attr-defined]
    return entry


def stored(store: Store, key: str = KEY) -> Entry | Miss:
    """The entry at ``key`` as the backend holds it (``MISS``: none)."""
    blob = store.backend.data.get(key, MISS)  # type: ignore[attr-defined]
    return MISS if blob is MISS else Entry.load(store.serializer.loads(blob))


def blob_of(store: Store, entry: Entry) -> bytes:
    return store.serializer.dumps(tuple(entry))


def outcomes(store: Store, scope: str = SCOPE) -> dict[str, tuple[int, float]]:
    """``{event: (count, total carried)}`` of every non-zero counter of ``scope``."""
    return {
        event: (reading.events, reading.total)
        for (event, of), reading in store.stats.readings().items()
        if of == scope
    }


def in_flight(store: Store, key: str = KEY, outcome: Outcome | None = None) -> Flight:
    """Another caller's flight on ``key``, begun by the test; ended (without leaving the
    table, so every retry finds it) when ``outcome`` is given."""
    flight, leads = store.stampede.flights.begin(key)
    assert leads
    if outcome is not None:
        flight.outcome = outcome
        flight.done.set()
    return flight


def lookup(key: str = KEY, *vkeys: str) -> Lookup:
    return Lookup(key, tuple(vkeys), SCOPE)


NO_WAIT = Protection(lock_wait=0)
Refresh = Callable[[Any], object]


@pytest.fixture(autouse=True)
def nothing_left_held() -> Iterator[None]:
    """Each test ends the tickets it leads: one left open would make a later test's miss
    on the same key look re-entrant. The keys held are forgotten between tests."""
    yield
    held = ticket_module._held.get() or {}
    still_open = sorted(key for key, ticket in held.items() if ticket.open)
    ticket_module._held.set(None)
    assert still_open == [], f"tickets left open on {still_open}"

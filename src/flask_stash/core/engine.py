"""Reading and writing cached results: the steps shared by ``memoize``, view caching and
the Jinja tag (``pipeline.py`` decides hits, misses and refreshes on top).

A hit costs one backend read: the entry and, when the key belongs to a family that can be
invalidated as a whole, the family's version stamp, fetched together in one ``get_many``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, TypeVar

from flask_stash.core.api import MISS
from flask_stash.core.entry import Entry
from flask_stash.core.errors import SerializationError
from flask_stash.core.stats import HIT, MISS_EVENT, SKIPPED
from flask_stash.core.store import Store, Timeout

R = TypeVar("R")
Counter = Iterator[int]  # an itertools.count: next() counts one event


class Lookup(NamedTuple):
    """Where a cached result lives, as backend keys (see :meth:`Store.backend_key`).

    ``version_keys`` name the stamps of the families the entry belongs to (all calls of one
    function, all calls on one instance); changing a stamp invalidates its family in O(1).
    ``scope`` labels the statistics.
    """

    key: str
    version_keys: tuple[str, ...] = ()
    scope: str = ""

    @classmethod
    def of(
        cls, store: Store, key: str, version_keys: tuple[str, ...] = (), scope: str = ""
    ) -> Lookup:
        """A lookup for user-level keys (prefixed and length-checked here)."""
        vkeys = tuple(store.backend_key(k) for k in version_keys)
        return cls(store.backend_key(key), vkeys, scope)


def find(
    store: Store, key: str, vkeys: tuple[str, ...], scope: str
) -> tuple[Entry | None, bytes | None]:
    """The fresh entry at ``key`` (or ``None``) and its families' current version stamp."""
    stats = store.stats
    return find_counted(
        store, key, vkeys, stats.counter(HIT, scope), stats.counter(MISS_EVENT, scope)
    )


def find_counted(
    store: Store, key: str, vkeys: tuple[str, ...], hits: Counter, misses: Counter
) -> tuple[Entry | None, bytes | None]:
    """:func:`find` with the hit and miss counters already looked up (the memoize hot path)."""
    entry, version = store.read_stored(key, vkeys)
    if entry is not MISS and (entry.fresh_until is None or store.clock() < entry.fresh_until):
        next(hits)
        return entry, version
    next(misses)
    return None, version


def save(
    store: Store,
    where: Lookup,
    value: object,
    timeout: Timeout,
    version: bytes | None,
    cache_if: Callable[[Any], bool] | None = None,
    *,
    stale: float = 0,
    keep: float = 0,
    cost: float = 0.0,
) -> bool:
    """Store a computed ``value`` unless ``cache_if`` refuses it; ``True`` if stored."""
    if cache_if is not None and not cache_if(value):
        store.stats.incr(SKIPPED, where.scope)
        return False
    if where.version_keys:
        version = store.current_version(where.version_keys, version)
        if version is None:  # a stamp could not be read or created: do not guess one
            return False
    try:
        return store.write_stored(
            where.key, value, timeout, stale=stale, version=version, cost=cost, keep=keep
        )
    except SerializationError as exc:
        # The caller has its result; failing now would lose it. Count, log (or raise when
        # not failing open) so the unstorable return type gets noticed.
        store.policy.handle(exc, f"store {where.scope or where.key}")
        return False

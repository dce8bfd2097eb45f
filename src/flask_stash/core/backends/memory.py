"""The in-process backend: an LRU dictionary bounded by entry count and by bytes."""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal

from flask_stash.core.api import MISS, TTL, Miss, check_ttl
from flask_stash.core.backends.base import BaseBackend
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.stamps import LocalStamps

Clock = Callable[[], float]

# Whether the GIL makes single OrderedDict operations atomic (free-threaded builds: no).
_GIL: bool = getattr(sys, "_is_gil_enabled", lambda: True)()

# Rough per-entry bookkeeping cost (dict slot, tuple, float), counted against ``max_bytes``
# so that many tiny entries cannot exceed the budget unnoticed.
ENTRY_OVERHEAD = 120


class MemoryBackend(BaseBackend):
    """Thread-safe LRU store for one process (the embedded default).

    Bounded by ``threshold`` entries (Flask-Caching's ``SimpleCache`` argument; ``0`` means
    no count limit) and by ``max_bytes`` (keys + values + a fixed overhead per entry).
    When a write would exceed a bound, expired entries are dropped first, then the least
    recently used live ones.
    Expired entries are never served. ``get`` and ``set`` are O(1): an expired entry is
    dropped when read, or by the sweep of a write that crosses a bound (run only once
    something has expired); until then it still counts in ``len()`` and ``size_in_bytes``.
    Time comes from ``clock`` (seconds, ``time.time`` by default) so tests can move it.

    Each process has its own memory backend: under several workers, an invalidation in one
    does not reach the others. Use a shared backend (Redis, memcached) there.
    """

    atomic_add: Literal[True] = True
    #: ``get`` returns the very ``bytes`` object that was stored (lets the engine reuse the
    #: entry it decoded from it).
    shares_stored_bytes = True
    #: Version stamps are kept beside the entries, outside their LRU (see ``core/stamps.py``).
    local_stamps: LocalStamps

    def __init__(
        self,
        threshold: int = 500,
        default_timeout: float | None = 300,
        *,
        max_bytes: int | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.threshold = _non_negative_int("threshold", threshold)
        if max_bytes is not None and _non_negative_int("max_bytes", max_bytes) == 0:
            raise ConfigurationError("max_bytes must be positive (or None for no limit)")
        self.max_bytes = max_bytes
        self.default_timeout = default_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self.local_stamps = LocalStamps()
        # key -> (value, expires_at or None, accounted size); order = recency of use.
        self._data: OrderedDict[str, tuple[bytes, float | None, int]] = OrderedDict()
        self._bytes = 0
        #: No entry expires before this time (a lower bound; see ``_purge_expired``).
        self._next_expiry = math.inf
        self._evicted = 0

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size_in_bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> bytes | Miss:
        # The read of every memoize hit. Under the GIL, ``get`` and ``move_to_end`` are
        # each atomic and writers never leave a key absent while replacing it, so a live
        # entry is read without the lock (about a sixth of a hit). Anything else (an
        # expired entry to drop, a free-threaded build) takes the locked path.
        if _GIL:
            item = self._data.get(key)
            if item is None:
                return MISS
            if item[1] is None or item[1] > self.clock():
                try:  # noqa: SIM105 (contextlib.suppress costs more on this path)
                    self._data.move_to_end(key)
                except KeyError:  # deleted meanwhile: this read came first
                    pass
                return item[0]
        with self._lock:
            return self._lookup(key, self.clock())

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        # Inlined lookup: this is the read of every memoize hit (entry + version stamp).
        out: list[bytes | Miss] = []
        data = self._data
        with self._lock:
            now = self.clock()
            for key in keys:
                item = data.get(key)
                if item is None:
                    out.append(MISS)
                elif item[1] is not None and item[1] <= now:
                    self._discard(key)
                    out.append(MISS)
                else:
                    data.move_to_end(key)
                    out.append(item[0])
        return out

    def get_all(self, keys: Sequence[str]) -> list[bytes] | None:
        """Every key's value if all are present and live, else ``None`` (nothing dropped).

        The hit path of the in-process tier (an entry and its version stamps): lock-free
        under the GIL, as :meth:`get` is.
        """
        if not _GIL:  # a free-threaded build: the same read, under the lock
            with self._lock:
                return self._live_values(keys)
        return self._live_values(keys)

    def _live_values(self, keys: Sequence[str]) -> list[bytes] | None:
        data = self._data
        now = self.clock()
        out = []
        for key in keys:
            item = data.get(key)
            if item is None:
                return None
            expires = item[1]
            if expires is not None and expires <= now:
                return None
            try:  # noqa: SIM105 (contextlib.suppress costs more on this path)
                data.move_to_end(key)
            except KeyError:  # deleted meanwhile: this read came first
                pass
            out.append(item[0])
        return out

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        expires = self._expiry(ttl)
        with self._lock:
            self._store(key, value, expires)

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        expires = self._expiry(ttl)
        with self._lock:
            for key, value in items.items():
                self._store(key, value, expires)

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        expires = self._expiry(ttl)
        with self._lock:
            if self._lookup(key, self.clock()) is not MISS:
                return False
            self._store(key, value, expires)
            return True

    def delete(self, key: str) -> bool:
        with self._lock:
            item = self._data.pop(key, None)
            if item is None:
                return False
            self._bytes -= item[2]
            return True

    def delete_many(self, keys: Sequence[str]) -> int:
        with self._lock:
            return sum(self._discard(key) for key in keys)

    def evictions(self) -> int:
        """Live entries dropped to stay within ``threshold``/``max_bytes`` (expired ones
        are not counted), since this backend was created."""
        return self._evicted

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def incr(self, key: str, delta: int, ttl: TTL) -> int:
        """Add ``delta`` to the ASCII integer at ``key`` (absent counts as 0).

        An existing counter keeps its expiry; a new one gets ``ttl``.
        """
        with self._lock:
            now = self.clock()
            current = self._lookup(key, now)
            if current is MISS:
                result, expires = delta, self._expiry(ttl)
            else:
                result, expires = _as_int(key, current) + delta, self._data[key][1]
            self._store(key, str(result).encode(), expires)
            return result

    def scan(self, prefix: str) -> Iterator[str]:
        with self._lock:
            now = self.clock()
            live = [k for k, (_, exp, _) in self._data.items() if exp is None or exp > now]
        return (k for k in live if k.startswith(prefix))

    # -- internals; callers hold the lock ---------------------------------------------

    def _lookup(self, key: str, now: float) -> bytes | Miss:
        item = self._data.get(key)
        if item is None:
            return MISS
        if item[1] is not None and item[1] <= now:
            self._discard(key)
            return MISS
        self._data.move_to_end(key)
        return item[0]

    def _store(self, key: str, value: bytes, expires: float | None) -> None:
        if type(value) is not bytes:
            raise TypeError(f"backend values are bytes, not {type(value).__name__}")
        size = len(key) + len(value) + ENTRY_OVERHEAD
        if self.max_bytes is not None and size > self.max_bytes:
            # Larger than the whole budget: refuse rather than flush everything else.
            self._discard(key)
            return
        # Replaced in place (never absent meanwhile: readers do not take the lock).
        old = self._data.get(key)
        if old is not None:
            self._bytes -= old[2]
        self._data[key] = (value, expires, size)
        self._data.move_to_end(key)
        self._bytes += size
        if expires is not None and expires < self._next_expiry:
            self._next_expiry = expires
        self._evict()

    def _evict(self) -> None:
        data = self._data
        if self._over_bound() and self._next_expiry <= self.clock():
            self._purge_expired()
        while (self.threshold and len(data) > self.threshold) or (
            self.max_bytes is not None and self._bytes > self.max_bytes
        ):
            _, (_, _, size) = data.popitem(last=False)
            self._bytes -= size
            self._evicted += 1

    def _over_bound(self) -> bool:
        return bool(self.threshold and len(self._data) > self.threshold) or (
            self.max_bytes is not None and self._bytes > self.max_bytes
        )

    def _purge_expired(self) -> None:
        # Expired entries go before live ones are evicted (as cachelib does). The scan is
        # O(n), so it runs only once something is known to have expired: ``_next_expiry``
        # is a lower bound of every expiry held.
        now = self.clock()
        expired = [k for k, (_, exp, _) in self._data.items() if exp is not None and exp <= now]
        for key in expired:
            self._discard(key)
        expiries = [exp for _, exp, _ in self._data.values() if exp is not None]
        self._next_expiry = min(expiries, default=math.inf)

    def _discard(self, key: str) -> bool:
        item = self._data.pop(key, None)
        if item is None:
            return False
        self._bytes -= item[2]
        return True

    def _expiry(self, ttl: TTL) -> float | None:
        return None if check_ttl(ttl) is None else self.clock() + ttl  # type: ignore[operator]


def _non_negative_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _as_int(key: str, raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise TypeError(f"cannot increment {key!r}: it does not hold an integer") from None

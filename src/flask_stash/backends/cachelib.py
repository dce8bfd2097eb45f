"""Using a cachelib-style cache object (``get``/``set`` with ``None`` misses) as a backend.

This lets ``CACHE_TYPE = "cachelib.SimpleCache"`` and custom Flask-Caching backends work:
the engine stores its (already serialized) entries in them as ``bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from flask_stash.core.api import MISS, TTL, Miss, check_ttl
from flask_stash.core.backends.base import BaseBackend
from flask_stash.core.errors import BackendError


class CachelibBackend(BaseBackend):
    """Adapts an object with cachelib's ``BaseCache`` methods to the backend contract.

    cachelib timeouts are whole seconds, so TTLs are rounded up; the engine's own
    freshness check keeps expiry exact. A failure of the wrapped object (an exception, or a
    ``False`` from ``set``) becomes :class:`BackendError`.
    """

    native_errors = (Exception,)

    def __init__(self, cache: Any) -> None:
        missing = [m for m in ("get", "set", "add", "delete", "clear") if not hasattr(cache, m)]
        if missing:
            raise TypeError(f"{cache!r} is not a cachelib-style cache: no {', '.join(missing)}")
        self.cache = cache
        self.max_key_length = getattr(cache, "max_key_length", None)

    def get(self, key: str) -> bytes | Miss:
        return _blob(self.cache.get(key))

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        return [_blob(value) for value in self.cache.get_many(*keys)]

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        if self.cache.set(key, value, timeout=_seconds(ttl)) is False:
            raise BackendError(f"{type(self.cache).__name__}.set refused {key!r}")

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        stored = self.cache.set_many(dict(items), timeout=_seconds(ttl))
        if stored is not None and len(stored) != len(items):
            raise BackendError(f"{type(self.cache).__name__}.set_many stored {len(stored)} keys")

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        return bool(self.cache.add(key, value, timeout=_seconds(ttl)))

    def delete(self, key: str) -> bool:
        return bool(self.cache.delete(key))

    def clear(self) -> None:
        if self.cache.clear() is False:
            raise BackendError(f"{type(self.cache).__name__}.clear failed")

    def close(self) -> None:
        close = getattr(self.cache, "close", None)
        if callable(close):
            close()


def _seconds(ttl: TTL) -> int:
    check_ttl(ttl)
    return 0 if ttl is None else math.ceil(ttl)


def _blob(value: object) -> bytes | Miss:
    return value if isinstance(value, bytes) else MISS

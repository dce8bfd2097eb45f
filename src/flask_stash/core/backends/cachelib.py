"""Using a cachelib-style cache object (``get``/``set`` with ``None`` misses) as a backend.

This lets ``CACHE_TYPE = "cachelib.SimpleCache"`` and custom Flask-Caching backends work:
the engine stores its (already serialized) entries in them as ``bytes``. Nothing here
imports cachelib or Flask: any object with cachelib's method names will do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from flask_stash.core.api import MISS, TTL, Miss, check_ttl
from flask_stash.core.backends.base import BaseBackend
from flask_stash.core.errors import BackendError

T = TypeVar("T")


class CachelibBackend(BaseBackend):
    """Adapts an object with cachelib's ``BaseCache`` methods to the backend contract.

    cachelib timeouts are whole seconds, so TTLs are rounded up; the engine's own
    freshness check keeps expiry exact. Any exception of the wrapped object (or a
    ``False`` from ``set``/``clear``) becomes :class:`BackendError`; a bad TTL is the
    caller's error and raised as such. ``add`` is not atomic (cachelib's is not across
    processes) and ``delete`` reads before deleting, because cachelib's ``delete`` and
    ``add`` report absent and expired keys differently from one class to the next.
    """

    def __init__(self, cache: Any) -> None:
        missing = [m for m in ("get", "set", "add", "delete", "clear") if not hasattr(cache, m)]
        if missing:
            raise TypeError(f"{cache!r} is not a cachelib-style cache: no {', '.join(missing)}")
        self.cache = cache
        self.max_key_length = getattr(cache, "max_key_length", None)

    def get(self, key: str) -> bytes | Miss:
        return _blob(self._call("get", self.cache.get, key))

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        return [_blob(value) for value in self._call("get_many", self.cache.get_many, *keys)]

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        if self._call("set", self.cache.set, key, value, timeout=_seconds(ttl)) is False:
            raise BackendError(f"{type(self.cache).__name__}.set refused {key!r}")

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        timeout = _seconds(ttl)
        stored = self._call("set_many", self.cache.set_many, dict(items), timeout=timeout)
        if stored is not None and len(stored) != len(items):
            raise BackendError(f"{type(self.cache).__name__}.set_many stored {len(stored)} keys")

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        timeout = _seconds(ttl)
        if self._call("add", self.cache.add, key, value, timeout=timeout):
            return True
        # cachelib's FileSystemCache refuses to add over an expired file: absent is absent.
        if self.get(key) is not MISS:
            return False
        return self._call("add", self.cache.set, key, value, timeout=timeout) is not False

    def delete(self, key: str) -> bool:
        existed = self.get(key) is not MISS  # cachelib's delete says True for absent keys
        self._call("delete", self.cache.delete, key)
        return existed

    def clear(self) -> None:
        if self._call("clear", self.cache.clear) is False:
            raise BackendError(f"{type(self.cache).__name__}.clear failed")

    def close(self) -> None:
        close = getattr(self.cache, "close", None)
        if callable(close):
            self._call("close", close)

    def _call(self, operation: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # The wrapped object may raise anything: every exception is the backend's failure.
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            name = type(self.cache).__name__
            raise BackendError(f"{name}.{operation} failed: {exc}", exc) from exc


def _seconds(ttl: TTL) -> int:
    check_ttl(ttl)
    return 0 if ttl is None else math.ceil(ttl)


def _blob(value: object) -> bytes | Miss:
    return value if isinstance(value, bytes) else MISS


__all__ = ["CachelibBackend"]

"""A key prefix computed on every call (cachelib's callable ``key_prefix``), as a wrapper.

A tenant-per-request app passes ``key_prefix=lambda: f"{g.tenant}:"``: every key, version
stamp and lock is then read and written under the prefix current at that moment, and
``clear()`` deletes the current prefix's keys only. The store above keeps its keys
prefix-free, so its key memos stay valid whatever the prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from flask_stash.core.api import TTL, Backend, Miss, SupportsScan
from flask_stash.core.errors import ConfigurationError

_ABILITIES = ("incr", "acquire_lock", "release_lock")


class CallablePrefixBackend:
    """``inner`` with ``prefix()`` prepended to every key at call time."""

    def __init__(self, inner: Backend, prefix: Callable[[], str]) -> None:
        if not isinstance(inner, SupportsScan):
            raise ConfigurationError(
                f"a callable key_prefix needs a backend that can list keys: {inner!r} cannot"
            )
        missing = [m for m in _ABILITIES if not hasattr(inner, m)]
        if missing:
            raise ConfigurationError(
                f"a callable key_prefix needs a backend with {', '.join(missing)}: "
                f"{type(inner).__name__} has not (use a Redis backend)"
            )
        if getattr(inner, "atomic_add", False):
            self.atomic_add = True
        self.inner = inner
        self.prefix = prefix
        self.max_key_length = getattr(inner, "max_key_length", None)
        self.clock = getattr(inner, "clock", None)

    def _key(self, key: str) -> str:
        return f"{self.prefix()}{key}"

    def get(self, key: str) -> bytes | Miss:
        return self.inner.get(self._key(key))

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        prefix = self.prefix()
        return self.inner.get_many([prefix + key for key in keys])

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        self.inner.set(self._key(key), value, ttl)

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        prefix = self.prefix()
        self.inner.set_many({prefix + key: value for key, value in items.items()}, ttl)

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        return self.inner.add(self._key(key), value, ttl)

    def delete(self, key: str) -> bool:
        return self.inner.delete(self._key(key))

    def delete_many(self, keys: Sequence[str]) -> int:
        prefix = self.prefix()
        return self.inner.delete_many([prefix + key for key in keys])

    def clear(self) -> None:
        """Delete the keys under the current prefix (all keys if it is empty)."""
        prefix = self.prefix()
        if not prefix:
            self.inner.clear()
            return
        keys = list(self.scan(""))
        if keys:
            self.inner.delete_many([prefix + key for key in keys])

    def scan(self, prefix: str) -> Iterator[str]:
        current = self.prefix()
        scanner: SupportsScan = self.inner
        return (key[len(current) :] for key in scanner.scan(current + prefix))

    def close(self) -> None:
        self.inner.close()

    # Optional abilities the Redis backends have, under the current prefix.
    def incr(self, key: str, delta: int, ttl: TTL) -> int:
        result: int = self._inner_method("incr")(self._key(key), delta, ttl)
        return result

    def acquire_lock(self, name: str, token: str, lease: float) -> bool:
        return bool(self._inner_method("acquire_lock")(self._key(name), token, lease))

    def release_lock(self, name: str, token: str) -> bool:
        return bool(self._inner_method("release_lock")(self._key(name), token))

    def _inner_method(self, name: str) -> Callable[..., Any]:
        method: Callable[..., Any] = getattr(self.inner, name)
        return method

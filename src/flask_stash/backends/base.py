"""Flask-Caching's (cachelib's) backend API on top of a :class:`~flask_stash.core.Store`.

``cache.cache`` and ``app.extensions["cache"][cache]`` are instances of these classes, so
code written against Flask-Caching's backend objects (``cache.cache.inc(...)``, custom
subclasses with a ``factory`` classmethod) keeps working. Values go through the store, so
they get the store's serializer, key prefix, statistics and fail-open policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from flask_stash.core.api import MISS, Backend
from flask_stash.core.store import Store


class BaseCache:
    """cachelib's ``BaseCache`` methods, names, arguments and return values.

    ``get`` returns ``None`` for a miss, as cachelib does; use :meth:`has` or the store
    (``self.store``, where a miss is ``MISS``) to tell a cached ``None`` apart.
    """

    #: Arguments Flask-Caching passes through ``CACHE_OPTIONS``/``CACHE_ARGS``.
    default_timeout: float
    store: Store
    _value_api: ClassVar[tuple[str, ...]] = (
        "get", "set", "add", "delete", "get_many", "set_many", "delete_many", "has",
        "clear", "inc", "dec", "get_dict",
    )  # fmt: skip

    def __init__(
        self,
        default_timeout: float = 300,
        ignore_delete_many_errors: bool = False,
        *,
        store: Store | None = None,
    ) -> None:
        self.default_timeout = default_timeout
        self.ignore_delete_many_errors = ignore_delete_many_errors
        if store is not None:
            self.store = store
        elif not hasattr(self, "store"):
            self.store = Store(self._make_backend(), default_timeout=default_timeout)

    def _make_backend(self) -> Backend:
        from flask_stash.core.backends.null import NullBackend

        return NullBackend()

    @classmethod
    def factory(
        cls, app: Any, config: Mapping[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> BaseCache:
        """Flask-Caching's construction hook: build from the app's merged config."""
        return cls(*args, **kwargs)

    @classmethod
    def overrides_value_api(cls) -> bool:
        """Whether a subclass redefined ``get``/``set``/...: then calls must go through them."""
        return any(
            getattr(cls, name) is not getattr(BaseCache, name)
            for name in cls._value_api
            if not cls.__module__.startswith("flask_stash.")
        )

    # -- cachelib's API ---------------------------------------------------------------

    def get(self, key: str) -> Any:
        value = self.store.get(key)
        return None if value is MISS else value

    def has(self, key: str) -> bool:
        return self.store.has(key)

    def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        return self.store.set(key, value, timeout)

    def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        return self.store.add(key, value, timeout)

    def delete(self, key: str) -> bool:
        return self.store.delete(key)

    def get_many(self, *keys: str) -> list[Any]:
        return [None if v is MISS else v for v in self.store.get_many(keys)]

    def get_dict(self, *keys: str) -> dict[str, Any]:
        return dict(zip(keys, self.get_many(*keys), strict=True))

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None = None) -> list[Any]:
        return self.store.set_many(mapping, timeout)

    def delete_many(self, *keys: str) -> list[Any]:
        """Delete ``keys`` (two round trips whatever their number); returns those now gone.

        Like cachelib, raises ``RuntimeError`` for keys still present afterwards unless
        ``ignore_delete_many_errors`` is set.
        """
        self.store.delete_many(keys)
        remaining = self.store.get_many(keys)
        failed = [key for key, value in zip(keys, remaining, strict=True) if value is not MISS]
        if failed and not self.ignore_delete_many_errors:
            raise RuntimeError(f"Failed to delete keys: {failed}")
        return [key for key in keys if key not in failed]

    def clear(self) -> bool:
        return self.store.clear()

    def inc(self, key: str, delta: int = 1) -> int | None:
        return self.store.incr(key, delta)

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self.store.incr(key, -delta)

    def close(self) -> None:
        self.store.close()

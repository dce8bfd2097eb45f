"""Flask-Caching's local backend classes: ``SimpleCache``, ``FileSystemCache``, ``NullCache``."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import warnings
from collections.abc import Callable
from typing import Any

from flask_stash.backends.base import BaseCache, to_seconds
from flask_stash.core.api import Backend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.null import NullBackend
from flask_stash.core.errors import ConfigurationError


class SimpleCache(BaseCache):
    """In-process LRU cache (our memory backend), bounded by ``threshold`` entries.

    When full, expired entries go first, then (unlike cachelib, which drops the entries
    closest to expiry) the least recently used ones. It can also be bounded by
    ``max_bytes``, and never serves an expired entry. ``threshold=0`` means 500, as in
    cachelib; ``ignore_errors`` is Flask-Caching's deprecated alias of
    ``ignore_delete_many_errors``.
    """

    def __init__(
        self,
        threshold: int = 500,
        default_timeout: float | dt.timedelta = 300,
        ignore_delete_many_errors: bool = False,
        ignore_errors: bool | None = None,
        *,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        ignore_delete_many_errors = _deprecated_alias(ignore_errors, ignore_delete_many_errors)
        default_timeout = to_seconds(default_timeout)
        # As cachelib: a threshold of 0 means the default bound, not none (use max_bytes).
        self._backend = MemoryBackend(
            threshold or 500, default_timeout, max_bytes=max_bytes, clock=clock
        )
        super().__init__(default_timeout, ignore_delete_many_errors)

    def _make_backend(self) -> Backend:
        return self._backend

    @classmethod
    def factory(
        cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> BaseCache:
        kwargs = {"threshold": config["CACHE_THRESHOLD"], **kwargs}
        return cls(*args, **kwargs)


class FileSystemCache(BaseCache):
    """One file per key under ``cache_dir``: shared by the processes of one machine."""

    def __init__(
        self,
        cache_dir: str,
        threshold: int = 500,
        default_timeout: float | dt.timedelta = 300,
        mode: int | None = None,
        hash_method: Callable[..., Any] = hashlib.sha256,
        ignore_delete_many_errors: bool = False,
        ignore_errors: bool | None = None,
        **options: Any,
    ) -> None:
        from flask_stash.core.backends.filesystem import FileSystemBackend

        ignore_delete_many_errors = _deprecated_alias(ignore_errors, ignore_delete_many_errors)
        default_timeout = to_seconds(default_timeout)
        if not cache_dir:
            raise ConfigurationError("FileSystemCache needs a cache_dir (CACHE_DIR)")
        self._backend = FileSystemBackend(
            cache_dir,
            threshold,
            default_timeout,
            0o600 if mode is None else mode,
            hash_method,
            **options,
        )
        super().__init__(default_timeout, ignore_delete_many_errors)

    def _make_backend(self) -> Backend:
        return self._backend

    @classmethod
    def factory(
        cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> BaseCache:
        if not args and "cache_dir" not in kwargs:
            args = [config["CACHE_DIR"]]
        kwargs = {
            "threshold": config["CACHE_THRESHOLD"],
            "hash_method": config["CACHE_FILE_HASH_METHOD"],
            **kwargs,
        }
        return cls(*args, **kwargs)


class NullCache(BaseCache):
    """Stores nothing: every read is a miss (caching switched off)."""

    def __init__(
        self, default_timeout: float | dt.timedelta = 300, ignore_delete_many_errors: bool = False
    ) -> None:
        default_timeout = to_seconds(default_timeout)
        self._backend = NullBackend(default_timeout)
        super().__init__(default_timeout, ignore_delete_many_errors)

    def _make_backend(self) -> Backend:
        return self._backend


def _deprecated_alias(ignore_errors: bool | None, ignore_delete_many_errors: bool) -> bool:
    if ignore_errors is None:
        return ignore_delete_many_errors
    warnings.warn(
        "'ignore_errors' is deprecated and will be removed in the next version. "
        "Use 'ignore_delete_many_errors' instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    return ignore_errors

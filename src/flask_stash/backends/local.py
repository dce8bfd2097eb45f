"""Flask-Caching's local backend classes: ``SimpleCache``, ``FileSystemCache``, ``NullCache``."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import warnings
from collections.abc import Callable
from typing import Any

from flask_stash.backends._settings import BackendKeys
from flask_stash.backends.base import BackendPlan, BaseCache, to_seconds
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
        timeout = to_seconds(default_timeout)
        # As cachelib: a threshold of 0 means the default bound, not none (use max_bytes).
        options: dict[str, Any] = {"threshold": threshold or 500, "default_timeout": timeout}
        options.update(max_bytes=max_bytes, clock=clock)
        ignore = _deprecated_alias(ignore_errors, ignore_delete_many_errors)
        self._open(BackendPlan("memory", options, timeout, ignore))

    @classmethod
    def config_kwargs(cls, keys: BackendKeys) -> dict[str, Any]:
        """Constructor arguments from the ``CACHE_*`` keys: ``CACHE_THRESHOLD``."""
        return {"threshold": keys.threshold}


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
        if not cache_dir:
            raise ConfigurationError("FileSystemCache needs a cache_dir (CACHE_DIR)")
        timeout = to_seconds(default_timeout)
        options.update(
            cache_dir=cache_dir, threshold=threshold, default_timeout=timeout,
            mode=0o600 if mode is None else mode, hash_method=hash_method,
        )  # fmt: skip
        ignore = _deprecated_alias(ignore_errors, ignore_delete_many_errors)
        self._open(BackendPlan("filesystem", options, timeout, ignore))

    @classmethod
    def config_kwargs(cls, keys: BackendKeys) -> dict[str, Any]:
        """``CACHE_DIR``, ``CACHE_THRESHOLD`` and ``CACHE_FILE_HASH_METHOD``."""
        return {
            "cache_dir": keys.cache_dir,
            "threshold": keys.threshold,
            "hash_method": keys.file_hash_method,
        }


class NullCache(BaseCache):
    """Stores nothing: every read is a miss (caching switched off)."""

    def __init__(
        self, default_timeout: float | dt.timedelta = 300, ignore_delete_many_errors: bool = False
    ) -> None:
        timeout = to_seconds(default_timeout)
        options = {"default_timeout": timeout}
        self._open(BackendPlan("null", options, timeout, ignore_delete_many_errors))


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

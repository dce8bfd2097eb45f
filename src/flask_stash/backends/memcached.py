"""Flask-Caching's memcached classes: ``MemcachedCache``, ``SASLMemcachedCache``,
``SpreadSASLMemcachedCache``, on :mod:`flask_stash.core.backends.memcached`.

The engine's backend module (and its driver) is imported only when one of these classes
is built, so importing :mod:`flask_stash` does not import pymemcache.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from flask_stash.backends.base import BaseCache, to_seconds
from flask_stash.core.store import Store

if TYPE_CHECKING:
    from flask_stash.core.backends.memcached import MemcachedBackend

__all__ = ["MemcachedCache", "SASLMemcachedCache", "SpreadSASLMemcachedCache"]


class MemcachedCache(BaseCache):
    """memcached through pymemcache: Flask-Caching's ``MemcachedCache``.

    ``servers`` is a list of ``"host:port"`` strings or ``(host, port)`` pairs
    (``CACHE_MEMCACHED_SERVERS``; ``None`` is ``127.0.0.1:11211``), or a
    ``memcached://h1:p1,h2:p2`` URL (``CACHE_URL``). Extra keyword arguments
    (``CACHE_OPTIONS``) go to :class:`~flask_stash.core.backends.memcached.MemcachedBackend`:
    ``connect_timeout``, ``timeout``, ``retry_attempts``, ``retry_timeout``,
    ``dead_timeout``, ``max_value_size``. ``pool_size`` and ``pool_blocking`` are accepted
    for compatibility and ignored: pymemcache's pool opens one connection per thread
    that needs one. ``check_connection=True`` reaches the servers now and raises
    ``RuntimeError`` if none answers (cachelib's argument).
    """

    def __init__(
        self,
        servers: Any = None,
        default_timeout: float | dt.timedelta = 300,
        key_prefix: str | None = None,
        pool_size: int = 1,
        pool_blocking: bool = True,
        ignore_delete_many_errors: bool = False,
        check_connection: bool = False,
        **options: Any,
    ) -> None:
        default_timeout = to_seconds(default_timeout)
        self._backend = self._connect(servers, pool_size, pool_blocking, options)
        store = Store(self._backend, key_prefix=key_prefix or "", default_timeout=default_timeout)
        super().__init__(default_timeout, ignore_delete_many_errors, store=store)
        if check_connection:
            self._verify_connection()

    def _connect(
        self, servers: Any, pool_size: int, pool_blocking: bool, options: dict[str, Any]
    ) -> MemcachedBackend:
        from flask_stash.core.backends.memcached import MemcachedBackend

        return MemcachedBackend(servers, **options)

    def _make_backend(self) -> MemcachedBackend:
        return self._backend

    @classmethod
    def factory(
        cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> BaseCache:
        """Build from ``CACHE_MEMCACHED_SERVERS`` (or the ``CACHE_URL`` the app factory
        passes as ``url``), ``CACHE_KEY_PREFIX`` and ``CACHE_OPTIONS``."""
        kwargs = dict(kwargs)
        url = kwargs.pop("url", None)
        if not args and "servers" not in kwargs:
            kwargs["servers"] = url if url is not None else config.get("CACHE_MEMCACHED_SERVERS")
        kwargs.setdefault("key_prefix", config.get("CACHE_KEY_PREFIX"))
        target = cls
        if cls is MemcachedCache and _has_credentials(kwargs["servers"] if not args else None):
            target = SASLMemcachedCache  # memcached://user:password@host needs SASL
        return target(*args, **kwargs)


class SASLMemcachedCache(MemcachedCache):
    """memcached with SASL authentication, through pylibmc (``pip install pylibmc``).

    ``username``/``password`` come from ``CACHE_MEMCACHED_USERNAME`` and
    ``CACHE_MEMCACHED_PASSWORD`` (or the URL); ``pool_size`` pylibmc connections are
    shared, and ``pool_blocking`` makes threads wait for one. Other keyword arguments go
    to ``pylibmc.Client``. Without pylibmc, building it raises ``ConfigurationError``.
    """

    def __init__(
        self,
        servers: Any = None,
        default_timeout: float | dt.timedelta = 300,
        key_prefix: str | None = None,
        username: str | None = None,
        password: str | None = None,
        pool_size: int = 1,
        pool_blocking: bool = True,
        ignore_delete_many_errors: bool = False,
        **options: Any,
    ) -> None:
        self._credentials = (username, password)
        super().__init__(
            servers,
            default_timeout,
            key_prefix,
            pool_size,
            pool_blocking,
            ignore_delete_many_errors,
            **options,
        )

    def _connect(
        self, servers: Any, pool_size: int, pool_blocking: bool, options: dict[str, Any]
    ) -> MemcachedBackend:
        from flask_stash.core.backends.memcached import SASLMemcachedBackend

        username, password = self._credentials
        return SASLMemcachedBackend(
            servers,
            username=username,
            password=password,
            pool_size=pool_size,
            pool_blocking=pool_blocking,
            **options,
        )

    @classmethod
    def factory(
        cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> BaseCache:
        kwargs = {
            "username": config.get("CACHE_MEMCACHED_USERNAME"),
            "password": config.get("CACHE_MEMCACHED_PASSWORD"),
            **kwargs,
        }
        return super().factory(app, config, args, kwargs)


class SpreadSASLMemcachedCache(SASLMemcachedCache):
    """Flask-Caching's ``SpreadSASLMemcachedCache``, accepted by name.

    Values are not spread over several keys: one larger than ``max_value_size`` is not
    cached (counted as an error, the request goes on), so a memoize hit stays a single
    read. ``chunksize`` and ``maxchunk`` are accepted and ignored.
    """

    def __init__(
        self, *args: Any, chunksize: int = 1048448, maxchunk: int = 32, **kwargs: Any
    ) -> None:
        self.chunksize, self.maxchunk = chunksize, maxchunk
        super().__init__(*args, **kwargs)


def _has_credentials(servers: object) -> bool:
    if not isinstance(servers, str) or "://" not in servers:
        return False
    from flask_stash.core.backends._urls import memcached_url

    return memcached_url(servers)[1] is not None

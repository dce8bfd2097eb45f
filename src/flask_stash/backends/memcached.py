"""Flask-Caching's memcached classes: ``MemcachedCache``, ``SASLMemcachedCache``,
``SpreadSASLMemcachedCache``, on :mod:`flask_stash.core.backends.memcached`.

The engine's backend module (and its driver) is imported only when one of these classes
is built, so importing :mod:`flask_stash` does not import pymemcache.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_stash.backends._settings import BackendKeys
from flask_stash.backends.base import BackendPlan, BaseCache, to_seconds
from flask_stash.core.backends._urls import memcached_url

__all__ = ["MemcachedCache", "SASLMemcachedCache", "SpreadSASLMemcachedCache"]


class MemcachedCache(BaseCache):
    """memcached through pymemcache: Flask-Caching's ``MemcachedCache``.

    ``servers`` is a list of ``"host:port"`` strings or ``(host, port)`` pairs
    (``CACHE_MEMCACHED_SERVERS``; ``None`` is ``127.0.0.1:11211``), or a
    ``memcached://h1:p1,h2:p2`` URL (``CACHE_URL``, or ``url=``, which wins). Extra
    keyword arguments (``CACHE_OPTIONS``) go to
    :class:`~flask_stash.core.backends.memcached.MemcachedBackend`: ``connect_timeout``,
    ``timeout``, ``retry_attempts``, ``retry_timeout``, ``dead_timeout``,
    ``max_value_size``. ``pool_size`` and ``pool_blocking`` are accepted for compatibility
    and ignored: pymemcache's pool opens one connection per thread that needs one.
    ``check_connection=True`` reaches the servers now and raises ``RuntimeError`` if none
    answers (cachelib's argument). ``clear()`` is ``flush_all``: it empties the servers,
    other applications' keys included (memcached has no namespaces).
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
        plan = _plan(
            "memcached", servers, default_timeout, key_prefix, ignore_delete_many_errors,
            check_connection, options,
        )  # fmt: skip
        self._open(plan)

    @classmethod
    def config_kwargs(cls, keys: BackendKeys) -> dict[str, Any]:
        """``CACHE_MEMCACHED_SERVERS``."""
        return {"servers": keys.memcached_servers}


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
        check_connection = options.pop("check_connection", False)
        sasl = {"username": username, "password": password, "pool_size": pool_size}
        sasl["pool_blocking"] = pool_blocking
        plan = _plan(
            "memcached-sasl", servers, default_timeout, key_prefix, ignore_delete_many_errors,
            check_connection, {**options, **sasl},
        )  # fmt: skip
        self._open(plan)

    @classmethod
    def config_kwargs(cls, keys: BackendKeys) -> dict[str, Any]:
        """``CACHE_MEMCACHED_SERVERS``, ``..._USERNAME`` and ``..._PASSWORD``."""
        return {
            "servers": keys.memcached_servers,
            "username": keys.memcached_username,
            "password": keys.memcached_password,
        }


class SpreadSASLMemcachedCache(SASLMemcachedCache):
    """Flask-Caching's ``SpreadSASLMemcachedCache``, accepted by name.

    Values are not spread over several keys: one larger than ``max_value_size`` is not
    cached (counted as an error, the request goes on), so a memoize hit stays a single
    read. ``chunksize`` and ``maxchunk`` are accepted and ignored.
    """

    def __init__(
        self, *args: Any, chunksize: int = 1048448, maxchunk: int = 32, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.chunksize, self.maxchunk = chunksize, maxchunk


def _plan(
    name: str,
    servers: Any,
    default_timeout: float | dt.timedelta,
    key_prefix: str | None,
    ignore_delete_many_errors: bool,
    check_connection: bool,
    options: dict[str, Any],
) -> BackendPlan:
    url = options.pop("url", None)
    if isinstance(servers, str) and "://" in servers and url is None:
        servers, url = None, servers  # CACHE_MEMCACHED_SERVERS given as a URL
    if url is not None:  # a URL (CACHE_URL) replaces the servers, as for RedisCache
        servers, options["url"] = None, url
        if name == "memcached" and memcached_url(url)[1] is not None:
            name = "memcached-sasl"  # memcached://user:password@host needs SASL
    return BackendPlan(
        name,
        {"servers": servers, **options},
        to_seconds(default_timeout),
        ignore_delete_many_errors,
        key_prefix=key_prefix or "",
        check_connection=check_connection,
        attributes={"key_prefix": key_prefix or ""},
    )

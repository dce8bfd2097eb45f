"""Flask-Caching's ``RedisCache``, ``RedisSentinelCache`` and ``RedisClusterCache``.

Same constructor arguments and ``CACHE_REDIS_*`` settings as Flask-Caching 2.5, on the
engine's Redis backends: bytes in and out, one round trip per memoize hit, short timeouts,
fail-open. redis-py is imported when one of these classes is built, not before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask_stash.backends._settings import BackendKeys
from flask_stash.backends.base import BackendPlan, BaseCache, to_seconds

if TYPE_CHECKING:
    from flask_stash.core.backends.redis import RedisCommands

#: cachelib's ``key_prefix``: a string, or a function called for every operation.
KeyPrefix = str | Callable[[], str] | None


class _RedisFamily(BaseCache):
    """What the three classes share: the plan's common part, ``unlink`` and cachelib's
    client attribute names."""

    _backend: RedisCommands[Any]

    def _open_redis(
        self,
        name: str,
        options: dict[str, Any],
        key_prefix: KeyPrefix,
        default_timeout: float | dt.timedelta,
        ignore_errors: bool,
        check_connection: bool,
    ) -> None:
        # The store prefixes keys; the backend's namespace (the same prefix) bounds clear().
        # A function prefix is applied per call by a wrapper, which bounds clear() itself.
        options["namespace"] = key_prefix if isinstance(key_prefix, str) else ""
        plan = BackendPlan(
            name,
            options,
            to_seconds(default_timeout),
            ignore_errors,
            key_prefix=key_prefix or "",
            check_connection=check_connection,
            attributes={"key_prefix": key_prefix or ""},
        )
        self._open(plan)

    @property
    def _write_client(self) -> Any:
        """The redis-py client taking writes (cachelib's attribute name)."""
        return self._backend.client

    @property
    def _read_client(self) -> Any:
        """The redis-py client serving reads (replicas with ``read_from_replicas``)."""
        return self._backend.reader

    def unlink(self, *keys: str) -> list[str]:
        """Delete ``keys`` with ``UNLINK`` (memory freed off the server's main thread).

        Returns the keys now gone: all of them, or none if Redis could not be reached
        (the error is counted and logged like any other; see ``CACHE_FAIL_OPEN``).
        """
        if not keys:
            return []
        store = self.store
        bkeys = [store.backend_key(key) for key in keys]
        return list(keys) if store.gate.run("unlink", store.backend.delete_many, bkeys) else []


class RedisCache(_RedisFamily):
    """One Redis server (Flask-Caching's ``RedisCache``).

    ``host`` is a host name or an existing ``redis.Redis`` client; ``url`` (from
    ``CACHE_URL``/``CACHE_REDIS_URL``: ``redis://``, ``rediss://``, ``valkey://``,
    ``unix://``) takes precedence over ``host``/``port``. Other keyword arguments go to
    ``redis.Redis`` (``socket_timeout``, ``ssl_ca_certs``, ``max_connections``...).
    ``clear()`` deletes the keys under ``key_prefix`` only (everything in the database
    if the prefix is empty), never with ``FLUSHDB``.
    """

    def __init__(
        self,
        host: Any = "localhost",
        port: int = 6379,
        password: str | None = None,
        db: int = 0,
        default_timeout: float | dt.timedelta = 300,
        key_prefix: KeyPrefix = None,
        ignore_delete_many_errors: bool = False,
        check_connection: bool = False,
        **kwargs: Any,
    ) -> None:
        options = {"host": host, "port": port, "password": password, "db": db, **kwargs}
        self._open_redis(
            "redis", options, key_prefix, default_timeout, ignore_delete_many_errors,
            check_connection,
        )  # fmt: skip

    @classmethod
    def config_kwargs(cls, keys: BackendKeys) -> dict[str, Any]:
        """``CACHE_REDIS_HOST``, ``..._PORT``, ``..._PASSWORD``, ``..._DB``, ``..._URL``."""
        return _without_none(
            host=keys.redis_host, port=keys.redis_port, password=keys.redis_password,
            db=keys.redis_db, url=keys.redis_url,
        )  # fmt: skip


class RedisSentinelCache(_RedisFamily):
    """A Sentinel-managed master (Flask-Caching's ``RedisSentinelCache``).

    ``sentinels`` is ``[(host, port), ...]`` (or ``"h1:p1,h2:p2"``), ``master`` the service
    name; ``sentinel_*`` keyword arguments configure the connections to the sentinels
    (``sentinel_password``...), the others go to the master's ``redis.Redis`` connections.
    ``url`` (``redis+sentinel://h1:p1,h2:p2/service``) replaces ``sentinels``/``master``.
    Unlike Flask-Caching, reads go to the master unless ``read_from_replicas=True``
    (replicas lag, so a value just written could be missed).
    """

    def __init__(
        self,
        sentinels: Any = None,
        master: str = "mymaster",
        password: str | None = None,
        db: int = 0,
        default_timeout: float | dt.timedelta = 300,
        key_prefix: KeyPrefix = "",
        ignore_delete_many_errors: bool = False,
        check_connection: bool = False,
        **kwargs: Any,
    ) -> None:
        watchers = {k[9:]: kwargs.pop(k) for k in list(kwargs) if k.startswith("sentinel_")}
        options = {
            "sentinels": sentinels, "service": master, "password": password,
            "sentinel_password": watchers.pop("password", None), "db": db,
            "sentinel_options": watchers, **kwargs,
        }  # fmt: skip
        self._open_redis(
            "redis-sentinel", options, key_prefix, default_timeout, ignore_delete_many_errors,
            check_connection,
        )  # fmt: skip

    @classmethod
    def config_kwargs(cls, keys: BackendKeys) -> dict[str, Any]:
        """``CACHE_REDIS_SENTINELS``, ``..._SENTINEL_MASTER``, ``..._SENTINEL_PASSWORD``,
        ``CACHE_REDIS_PASSWORD``, ``..._DB``, and ``..._URL`` if it is a Sentinel URL."""
        url = keys.redis_url
        return _without_none(
            sentinels=list(keys.redis_sentinels) or None, master=keys.redis_sentinel_master,
            password=keys.redis_password, sentinel_password=keys.redis_sentinel_password,
            db=keys.redis_db, url=url if url and "+sentinel://" in url else None,
        )  # fmt: skip


class RedisClusterCache(_RedisFamily):
    """A Redis Cluster (Flask-Caching's ``RedisClusterCache``).

    ``cluster`` is ``"host1:port1,host2:port2"``; ``url`` (``redis+cluster://h1:p1,h2:p2``)
    or Flask-Caching's ``redis_url`` (``redis://seed:port``) may replace it. Other keyword
    arguments go to ``redis.cluster.RedisCluster``. The cluster is contacted on first use.
    """

    def __init__(
        self,
        cluster: Any = "",
        password: str = "",
        default_timeout: float | dt.timedelta = 300,
        key_prefix: KeyPrefix = "",
        ignore_delete_many_errors: bool = False,
        check_connection: bool = False,
        **kwargs: Any,
    ) -> None:
        url = kwargs.pop("url", None) or kwargs.pop("redis_url", None) or None
        kwargs.pop("redis_url", None)  # when both were given, ``url`` (CACHE_URL) wins
        kwargs.pop("skip_full_coverage_check", None)  # gone from redis-py; Flask-Caching passes it
        options = {"url": url, "startup_nodes": cluster or None, "password": password or None}
        self._open_redis(
            "redis-cluster", {**options, **kwargs}, key_prefix, default_timeout,
            ignore_delete_many_errors, check_connection,
        )  # fmt: skip

    @classmethod
    def config_kwargs(cls, keys: BackendKeys) -> dict[str, Any]:
        """``CACHE_REDIS_CLUSTER``, ``CACHE_REDIS_PASSWORD``, ``CACHE_REDIS_URL``."""
        return _without_none(
            cluster=list(keys.redis_cluster) or None, password=keys.redis_password,
            url=keys.redis_url,
        )  # fmt: skip


def _without_none(**settings: Any) -> dict[str, Any]:
    """Settings left unset (``None``) keep the constructor's defaults."""
    return {name: value for name, value in settings.items() if value is not None}


__all__ = ["RedisCache", "RedisClusterCache", "RedisSentinelCache"]

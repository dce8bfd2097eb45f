"""Flask-Caching's ``RedisCache``, ``RedisSentinelCache`` and ``RedisClusterCache``.

Same constructor arguments and ``CACHE_REDIS_*`` settings as Flask-Caching 2.5, on the
engine's Redis backends: bytes in and out, one round trip per memoize hit, short timeouts,
fail-open. redis-py is imported when one of these classes is built, not before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from flask_stash.backends.base import BaseCache, to_seconds
from flask_stash.core.api import Backend
from flask_stash.core.backends.prefixed import CallablePrefixBackend
from flask_stash.core.errors import BackendError
from flask_stash.core.store import Store

if TYPE_CHECKING:
    from flask_stash.core.backends.redis import RedisCommands

#: cachelib's ``key_prefix``: a string, or a function called for every operation.
KeyPrefix = str | Callable[[], str] | None


class _RedisFamily(BaseCache):
    """What the three classes share: the store, ``unlink`` and cachelib's client names."""

    #: The constructor's leading positional parameters, as ``CACHE_ARGS`` may give them.
    _positional: ClassVar[tuple[str, ...]] = ()
    _backend: RedisCommands[Any]

    def _setup(
        self,
        backend: RedisCommands[Any],
        key_prefix: KeyPrefix,
        default_timeout: float | dt.timedelta,
        ignore_errors: bool,
        check_connection: bool = False,
    ) -> None:
        default_timeout = to_seconds(default_timeout)
        self._backend = backend
        self.key_prefix = key_prefix or ""
        if callable(key_prefix):  # cachelib's per-call prefix (a tenant, say)
            prefixed = CallablePrefixBackend(backend, key_prefix)
            self.store = Store(prefixed, default_timeout=default_timeout)
        else:
            # The store prefixes keys; the backend's namespace (the same prefix) bounds clear().
            prefix = key_prefix or ""
            self.store = Store(backend, key_prefix=prefix, default_timeout=default_timeout)
        BaseCache.__init__(self, default_timeout, ignore_errors)
        if check_connection:  # cachelib's argument: fail now if the server cannot be reached
            self._verify_connection()

    def _make_backend(self) -> Backend:
        return self.store.backend

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
        try:
            store.backend.delete_many([store.backend_key(key) for key in keys])
        except BackendError as exc:
            store.policy.handle(exc, "unlink")
            return []
        return list(keys)


class RedisCache(_RedisFamily):
    """One Redis server (Flask-Caching's ``RedisCache``).

    ``host`` is a host name or an existing ``redis.Redis`` client; ``url`` (from
    ``CACHE_URL``/``CACHE_REDIS_URL``: ``redis://``, ``rediss://``, ``valkey://``,
    ``unix://``) takes precedence over ``host``/``port``. Other keyword arguments go to
    ``redis.Redis`` (``socket_timeout``, ``ssl_ca_certs``, ``max_connections``...).
    ``clear()`` deletes the keys under ``key_prefix`` only (everything in the database
    if the prefix is empty), never with ``FLUSHDB``.
    """

    _positional = ("host", "port", "password", "db")

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
        from flask_stash.core.backends.redis import RedisBackend

        url = kwargs.pop("url", None)
        namespace = _namespace(key_prefix)
        backend = RedisBackend(
            url, host=host, port=port, db=db, password=password, namespace=namespace, **kwargs
        )
        self._setup(
            backend, key_prefix, default_timeout, ignore_delete_many_errors, check_connection
        )

    @classmethod
    def factory(
        cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> BaseCache:
        """Flask-Caching's keys: ``CACHE_REDIS_HOST``/``PORT``/``PASSWORD``/``DB``/``URL``."""
        settings = {
            "host": config.get("CACHE_REDIS_HOST") or "localhost",
            "port": config.get("CACHE_REDIS_PORT") or 6379,
            "password": config.get("CACHE_REDIS_PASSWORD") or None,
            "db": config.get("CACHE_REDIS_DB") or 0,
            "url": config.get("CACHE_REDIS_URL") or None,
        }
        return cls(*args, **_merged(cls, config, args, settings, kwargs))


class RedisSentinelCache(_RedisFamily):
    """A Sentinel-managed master (Flask-Caching's ``RedisSentinelCache``).

    ``sentinels`` is ``[(host, port), ...]`` (or ``"h1:p1,h2:p2"``), ``master`` the service
    name; ``sentinel_*`` keyword arguments configure the connections to the sentinels
    (``sentinel_password``...), the others go to the master's ``redis.Redis`` connections.
    ``url`` (``redis+sentinel://h1:p1,h2:p2/service``) replaces ``sentinels``/``master``.
    Unlike Flask-Caching, reads go to the master unless ``read_from_replicas=True``
    (replicas lag, so a value just written could be missed).
    """

    _positional = ("sentinels", "master", "password", "db")

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
        from flask_stash.core.backends.redis_sentinel import RedisSentinelBackend

        url = kwargs.pop("url", None)
        watchers = {k[9:]: kwargs.pop(k) for k in list(kwargs) if k.startswith("sentinel_")}
        backend = RedisSentinelBackend(
            url,
            sentinels=sentinels,
            service=master,
            password=password,
            sentinel_password=watchers.pop("password", None),
            db=db,
            namespace=_namespace(key_prefix),
            sentinel_options=watchers,
            **kwargs,
        )
        self._setup(
            backend, key_prefix, default_timeout, ignore_delete_many_errors, check_connection
        )

    @classmethod
    def factory(
        cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> BaseCache:
        """``CACHE_REDIS_SENTINELS``, ``..._SENTINEL_MASTER``, ``..._SENTINEL_PASSWORD``..."""
        settings = {
            "sentinels": config.get("CACHE_REDIS_SENTINELS") or [("127.0.0.1", 26379)],
            "master": config.get("CACHE_REDIS_SENTINEL_MASTER") or "mymaster",
            "password": config.get("CACHE_REDIS_PASSWORD") or None,
            "sentinel_password": config.get("CACHE_REDIS_SENTINEL_PASSWORD") or None,
            "db": config.get("CACHE_REDIS_DB") or 0,
            "url": _url_with_scheme(config.get("CACHE_REDIS_URL"), "sentinel"),
        }
        return cls(*args, **_merged(cls, config, args, settings, kwargs))


class RedisClusterCache(_RedisFamily):
    """A Redis Cluster (Flask-Caching's ``RedisClusterCache``).

    ``cluster`` is ``"host1:port1,host2:port2"``; ``url`` (``redis+cluster://h1:p1,h2:p2``)
    or Flask-Caching's ``redis_url`` (``redis://seed:port``) may replace it. Other keyword
    arguments go to ``redis.cluster.RedisCluster``. The cluster is contacted on first use.
    """

    _positional = ("cluster", "password")

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
        from flask_stash.core.backends.redis_cluster import RedisClusterBackend

        url = kwargs.pop("url", None) or kwargs.pop("redis_url", None) or None
        kwargs.pop("redis_url", None)  # when both were given, ``url`` (CACHE_URL) wins
        kwargs.pop("skip_full_coverage_check", None)  # gone from redis-py; Flask-Caching passes it
        backend = RedisClusterBackend(
            url,
            startup_nodes=cluster or None,
            password=password or None,
            namespace=_namespace(key_prefix),
            **kwargs,
        )
        self._setup(
            backend, key_prefix, default_timeout, ignore_delete_many_errors, check_connection
        )

    @classmethod
    def factory(
        cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> BaseCache:
        """``CACHE_REDIS_CLUSTER`` (``"h1:p1,h2:p2"``), ``CACHE_REDIS_PASSWORD``, ``..._URL``."""
        settings = {
            "cluster": config.get("CACHE_REDIS_CLUSTER") or "",
            "password": config.get("CACHE_REDIS_PASSWORD") or "",
            "url": config.get("CACHE_REDIS_URL") or None,
        }
        return cls(*args, **_merged(cls, config, args, settings, kwargs))


def _merged(
    cls: type[_RedisFamily],
    config: Mapping[str, Any],
    args: Sequence[Any],
    settings: dict[str, Any],
    kwargs: Mapping[str, Any],
) -> dict[str, Any]:
    """Constructor keywords: ``CACHE_REDIS_*`` settings < ``CACHE_OPTIONS`` < ``kwargs``.

    ``kwargs`` holds ``default_timeout``, ``ignore_delete_many_errors``, a ``url`` from
    ``CACHE_URL`` and the options; a setting already given positionally (``CACHE_ARGS``)
    is left out so it is not passed twice.
    """
    for name in cls._positional[: len(args)]:
        settings.pop(name, None)
    merged = {**settings, **(config.get("CACHE_OPTIONS") or {}), **kwargs}
    merged.setdefault("key_prefix", config.get("CACHE_KEY_PREFIX") or "")
    if merged.get("url") is None:
        merged.pop("url", None)
    return merged


def _namespace(key_prefix: KeyPrefix) -> str:
    """The backend's namespace: the prefix, or none when a function computes it per call
    (the prefixing wrapper then bounds ``clear()`` to the current prefix)."""
    return key_prefix if isinstance(key_prefix, str) else ""


def _url_with_scheme(url: object, kind: str) -> str | None:
    """``CACHE_REDIS_URL`` if it names a ``kind`` deployment (``redis+sentinel://``...)."""
    if isinstance(url, str) and url.split("://", 1)[0].endswith(f"+{kind}"):
        return url
    return None


__all__ = ["RedisCache", "RedisClusterCache", "RedisSentinelCache"]

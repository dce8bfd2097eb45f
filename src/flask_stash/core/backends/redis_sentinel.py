"""The Redis backend for a Sentinel-managed master (and, optionally, its replicas).

Construction never touches the network; a down sentinel or master surfaces at use time
as ``BackendError``, like for the single-server backend it extends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask_stash.core.backends._redis_options import (
    DEFAULT_TIMEOUTS,
    REDIS_PARAMS,
    checked,
    connection_retry,
    valid_namespace,
    with_defaults,
)
from flask_stash.core.backends._urls import SENTINEL_PORT, parse_hosts, sentinel_url_options
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.lazy import require

try:
    from redis.sentinel import Sentinel
except ImportError:  # pragma: no cover - depends on what is installed
    require("redis", extra="redis")  # raises MissingDependencyError naming the extra
    raise

_SENTINEL_PARAMS = REDIS_PARAMS - {"host", "port", "connection_pool", "unix_socket_path"}


class RedisSentinelBackend(RedisBackend):
    """A Redis master found through Sentinel; follows failovers by itself.

    ``url``: ``redis+sentinel://[[user]:password@]h1:p1,h2:p2/service[/db][?option=value]``
    (``rediss+sentinel://`` for TLS to the data nodes; ``sentinel_password``, ``db`` and
    ``read_from_replicas`` may be query options). Otherwise ``sentinels`` (``[(host, port)]``
    or ``"h1:p1,h2:p2"``) and ``service`` (the master's name). ``password`` is the data
    nodes', ``sentinel_password`` the sentinels'; ``sentinel_options`` go to the sentinel
    clients only. Writes go to the master. ``read_from_replicas=True`` sends ``get`` and
    ``get_many`` to replicas: it offloads the master, but a read right after a write may
    miss it (replication is asynchronous), so it is off by default.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        sentinels: str | Sequence[Any] | None = None,
        service: str = "mymaster",
        password: str | None = None,
        sentinel_password: str | None = None,
        db: int = 0,
        read_from_replicas: bool = False,
        namespace: str = "",
        sentinel_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.namespace = valid_namespace(namespace)
        hosts = parse_hosts(sentinels or "127.0.0.1", SENTINEL_PORT)  # Flask-Caching's default
        settings = {
            "service": service,
            "db": db,
            "password": password,
            "sentinel_password": sentinel_password,
            "read_from_replicas": read_from_replicas,
        }
        if url is not None:
            hosts, url_settings, url_options = sentinel_url_options(url)
            settings.update(url_settings)
            options = {**url_options, **options}
        self.sentinel = _sentinel(hosts, settings, options, sentinel_options or {})
        service = str(settings["service"])
        self._client = self.sentinel.master_for(service)  # type: ignore[no-untyped-call]
        if settings["read_from_replicas"]:
            self._reader = self.sentinel.slave_for(service)  # type: ignore[no-untyped-call]
            self.reads_from_replicas = True

    def close(self) -> None:
        """Disconnect from the master, the replicas and the sentinels."""
        for client in (self._client, self._reader, *self.sentinel.sentinels):
            if client is not None:
                client.close()


def _sentinel(
    hosts: list[tuple[str, int]],
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
    sentinel_options: Mapping[str, Any],
) -> Sentinel:
    kwargs = checked(_SENTINEL_PARAMS, with_defaults(options), "RedisSentinelBackend")
    kwargs.update(db=settings["db"], password=settings["password"])
    # The sentinels get the same short timeouts and single retry, and their own password.
    watchers = {
        **DEFAULT_TIMEOUTS,
        "retry": connection_retry(),
        "password": settings["sentinel_password"],
    }
    watchers = checked(REDIS_PARAMS, {**watchers, **sentinel_options}, "sentinel_options")
    return Sentinel(hosts, sentinel_kwargs=watchers, **kwargs)  # type: ignore[no-untyped-call]


__all__ = ["RedisSentinelBackend"]

"""The Redis backend for a Redis Cluster, through redis-py's ``RedisCluster``.

Construction never touches the network: the cluster's topology is fetched on first use.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from typing import Any

from flask_stash.core.backends._redis_options import (
    DEFAULT_TIMEOUTS,
    checked,
    connection_retry,
    valid_namespace,
)
from flask_stash.core.backends._urls import (
    CLUSTER_SCHEMES,
    REDIS_PORT,
    parse_hosts,
    redis_hosts_url,
)
from flask_stash.core.backends.redis import RedisCommands
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.lazy import require

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.cluster import REDIS_ALLOWED_KEYS, ClusterNode, RedisCluster
    from redis.crc import key_slot
    from redis.retry import Retry
except ImportError:  # pragma: no cover - depends on what is installed
    require("redis", extra="redis")  # raises MissingDependencyError naming the extra
    raise


def _no_cluster_retries() -> dict[str, Any]:
    """No cluster-level retry by default: redis-py retries a timed-out node after fetching
    the topology again, each attempt costing a full timeout (a paused master cost a
    request about 10 s). The gate's budget and breaker deal with a failing node instead.
    redis-py 6 took the count from the ``retry`` object, 5 from its own argument."""
    if int(redis.__version__.split(".")[0]) >= 6:
        return {"retry": Retry(NoBackoff(), 0)}
    return {"retry": connection_retry(), "cluster_error_retry_attempts": 0}


_CLUSTER_PARAMS = (
    frozenset(inspect.signature(RedisCluster.__init__).parameters) | frozenset(REDIS_ALLOWED_KEYS)
) - {"self", "kwargs", "host", "port", "url", "startup_nodes"}


class RedisClusterBackend(RedisCommands[RedisCluster]):
    """A Redis Cluster through redis-py's ``RedisCluster``.

    ``url``: ``redis+cluster://[[user]:password@]h1:p1,h2:p2[?option=value]``
    (``rediss+cluster://`` for TLS; a plain ``redis://host:port`` names one seed), or
    ``startup_nodes`` (``["h1:p1", ("h2", p2)]`` or ``"h1:p1,h2:p2"``). No seed is a
    :class:`ConfigurationError`. The cluster's topology is fetched on first use, not here.

    ``get_many`` on keys of one slot is one ``MGET``; the engine's memoize keys share a
    ``{...}`` hash tag, so a memoize hit is one round trip. Keys spanning slots are fetched
    per slot in a pipeline, in order. ``clear()`` scans every primary.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        startup_nodes: str | Sequence[Any] | None = None,
        password: str | None = None,
        namespace: str = "",
        **options: Any,
    ) -> None:
        self.namespace = valid_namespace(namespace)
        nodes = parse_hosts(startup_nodes, REDIS_PORT) if startup_nodes else []
        if url is not None:
            nodes, path, url_options = redis_hosts_url(url, CLUSTER_SCHEMES, REDIS_PORT)
            if path and path != ["0"]:
                raise ConfigurationError(f"Redis Cluster has database 0 only: {url!r}")
            password = url_options.pop("password", password)
            options = {**url_options, **options}
        if not nodes:
            raise ConfigurationError("RedisClusterBackend needs at least one startup node")
        kwargs = checked(_CLUSTER_PARAMS, {**DEFAULT_TIMEOUTS, **options}, type(self).__name__)
        kwargs.update({k: v for k, v in _no_cluster_retries().items() if k not in kwargs})
        kwargs["password"] = password
        self._nodes = [ClusterNode(host, port) for host, port in nodes]  # type: ignore[no-untyped-call]
        self._kwargs = kwargs
        self._connect_lock = threading.Lock()

    def _connect(self) -> RedisCluster:
        # Built on first use: RedisCluster() fetches the topology, which must not block
        # (or fail) app start-up while the cluster is down. A failure is retried next time.
        with self._connect_lock:
            if self._client is None:
                self._client = RedisCluster(startup_nodes=self._nodes, **self._kwargs)
            return self._client

    def _mget(self, keys: list[str]) -> list[Any]:
        cluster = self.client
        slot = key_slot(keys[0].encode())
        if all(key_slot(key.encode()) == slot for key in keys[1:]):
            return cluster.mget(keys)  # one slot: one MGET on one node
        return cluster.mget_nonatomic(keys)  # per-slot MGETs, results in input order

    def close(self) -> None:
        with self._connect_lock:
            cluster, self._client = self._client, None
        if cluster is not None:
            cluster.close()


__all__ = ["RedisClusterBackend"]

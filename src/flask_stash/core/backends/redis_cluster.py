"""The Redis backend for a Redis Cluster, through redis-py's ``RedisCluster``.

Construction never touches the network: the cluster's topology is fetched on first use.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Sequence
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
    shown,
)
from flask_stash.core.backends.redis import RedisCommands
from flask_stash.core.breaker import BACKOFF, MAX_BACKOFF, describe
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.lazy import require

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.cluster import REDIS_ALLOWED_KEYS, ClusterNode, RedisCluster
    from redis.crc import key_slot
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
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


logger = logging.getLogger("flask_stash")

_CLUSTER_PARAMS = (
    frozenset(inspect.signature(RedisCluster.__init__).parameters) | frozenset(REDIS_ALLOWED_KEYS)
) - {"self", "kwargs", "host", "port", "url", "startup_nodes"}


class NodeEjection:
    """A breaker per cluster node: a node whose call failed (timed out, refused) is left
    out for ``backoff`` seconds, twice as long after each failure in a row (at most
    ``max_backoff``), while the other nodes keep serving their keys. A call to a node left
    out fails at once instead of waiting for its timeout."""

    def __init__(
        self,
        backoff: float = BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff, self.max_backoff, self.clock = backoff, max_backoff, clock
        #: node name -> (back in at, current wait)
        self.out: dict[str, tuple[float, float]] = {}
        self._since: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, name: str) -> None:
        left = self.out.get(name)
        if left is not None and self.clock() < left[0]:
            raise RedisConnectionError(f"cluster node {name} is left out after failing")

    def failed(self, name: str, error: BaseException) -> None:
        with self._lock:
            left = self.out.get(name)
            wait = self.backoff if left is None else min(left[1] * 2, self.max_backoff)
            self.out[name] = (self.clock() + wait, wait)
            if left is None:
                self._since[name] = self.clock()
        if left is None:
            logger.warning(
                "Redis Cluster node %s is failing (%s); its keys are served uncached "
                "until it answers again",
                name,
                describe(error),
            )

    def worked(self, name: str) -> None:
        if name in self.out:
            with self._lock:
                left = self.out.pop(name, None)
                since = self._since.pop(name, None)
            if left is not None and since is not None:
                logger.info(
                    "Redis Cluster node %s answers again after %.1f s", name, self.clock() - since
                )


class _EjectingCluster(RedisCluster):
    """``RedisCluster`` that leaves failing nodes out (see :class:`NodeEjection`)."""

    def __init__(self, *args: Any, ejection: NodeEjection, **kwargs: Any) -> None:
        self.ejection = ejection  # before the topology is fetched, which runs commands
        super().__init__(*args, **kwargs)

    def _execute_command(self, target_node: Any, *args: Any, **kwargs: Any) -> Any:
        name = target_node.name
        self.ejection.check(name)
        try:
            result = super()._execute_command(target_node, *args, **kwargs)  # type: ignore[no-untyped-call]
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self.ejection.failed(name, exc)
            raise
        self.ejection.worked(name)
        return result


class RedisClusterBackend(RedisCommands[RedisCluster]):
    """A Redis Cluster through redis-py's ``RedisCluster``.

    ``url``: ``redis+cluster://[[user]:password@]h1:p1,h2:p2[?option=value]``
    (``rediss+cluster://`` for TLS; a plain ``redis://host:port`` names one seed), or
    ``startup_nodes`` (``["h1:p1", ("h2", p2)]`` or ``"h1:p1,h2:p2"``). No seed is a
    :class:`ConfigurationError`. The cluster's topology is fetched on first use, not here.

    A node that fails is left out for a while (:class:`NodeEjection`): its keys are
    misses, answered at once, while the other nodes keep serving theirs.

    ``get_many`` on keys of one slot is one ``MGET``; the engine's memoize keys share a
    ``{...}`` hash tag, so a memoize hit is one round trip. Keys spanning slots are fetched
    per slot in a pipeline, in order. ``clear()`` scans every primary.
    """

    #: Nodes are left out one by one (:class:`NodeEjection`), so the gate's breaker,
    #: which would bypass the whole cluster, never opens.
    ejects_failed_nodes = True

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
                raise ConfigurationError(f"Redis Cluster has database 0 only: {shown(url)}")
            password = url_options.pop("password", password)
            options = {**url_options, **options}
        if not nodes:
            raise ConfigurationError("RedisClusterBackend needs at least one startup node")
        kwargs = checked(_CLUSTER_PARAMS, {**DEFAULT_TIMEOUTS, **options}, type(self).__name__)
        kwargs.update({k: v for k, v in _no_cluster_retries().items() if k not in kwargs})
        kwargs["password"] = password
        self._nodes = [ClusterNode(host, port) for host, port in nodes]  # type: ignore[no-untyped-call]
        #: Failing nodes are left out here, one by one (not the whole cluster: the gate's
        #: breaker stays closed, see ``ejects_failed_nodes``).
        self.ejection = NodeEjection()
        self._kwargs = kwargs
        self._connect_lock = threading.Lock()

    def _connect(self) -> RedisCluster:
        # Built on first use: RedisCluster() fetches the topology, which must not block
        # (or fail) app start-up while the cluster is down. A failure is retried next time.
        with self._connect_lock:
            if self._client is None:
                self._client = _EjectingCluster(
                    startup_nodes=self._nodes, ejection=self.ejection, **self._kwargs
                )
            return self._client

    def _mget(self, keys: list[str]) -> list[Any]:
        cluster = self.client
        slot = key_slot(keys[0].encode())
        if all(key_slot(key.encode()) == slot for key in keys[1:]):
            return cluster.mget(keys)  # one slot: one MGET on one node
        return cluster.mget_nonatomic(keys)  # per-slot MGETs, results in input order

    def _stats(self) -> dict[str, Any]:
        # RedisCluster sends INFO to its default node alone unless told otherwise.
        return self.client.info("stats", target_nodes=RedisCluster.ALL_NODES)

    def close(self) -> None:
        with self._connect_lock:
            cluster, self._client = self._client, None
        if cluster is not None:
            cluster.close()


__all__ = ["RedisClusterBackend"]

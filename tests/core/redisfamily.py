"""Redis single, Sentinel and Cluster as interchangeable test subjects ("flavours").

A :class:`Flavour` says how to build each flavour's core backend and Flask-Caching-style
class on the session's servers, and where its commands land, so one test can run over all
three (``redis_flavour`` and ``redis_backend`` in ``conftest.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_stash.backends.redis import RedisCache, RedisClusterCache, RedisSentinelCache
from flask_stash.core.backends.redis import RedisBackend, RedisCommands
from flask_stash.core.backends.redis_cluster import RedisClusterBackend
from flask_stash.core.backends.redis_sentinel import RedisSentinelBackend

from .. import servers
from ..servers import HOST

NAMES = ("single", "sentinel", "cluster")


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}:"


def command_stats(*ports: int) -> dict[str, int]:
    """Commands each server ran so far (``INFO commandstats``), summed over ``ports``.

    ``INFO`` itself is left out: it is how we look, not what the code under test did.
    So is the traffic servers send each other on their own schedule (a replica's
    ``REPLCONF ACK`` every second, sentinels' ``PING``/``PUBLISH``/``INFO``... arrive on
    the master whenever they please).
    """
    totals: dict[str, int] = {}
    for port in ports:
        for line in servers.redis_cli("-p", str(port), "info", "commandstats").splitlines():
            if line.startswith("cmdstat_"):
                name, _, fields = line[len("cmdstat_") :].partition(":")
                if name in _SERVER_TRAFFIC:
                    continue
                calls = int(fields.split(",")[0].removeprefix("calls="))
                totals[name] = totals.get(name, 0) + calls
    return totals


# Sentinels announce themselves with a PUBLISH on the master every 2 seconds: tests of the
# backend's own publishing must look at the messages, not at these counts.
_SERVER_TRAFFIC = frozenset({"info", "replconf", "ping", "psync", "sync", "publish"})


def commands_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    diff = {name: after[name] - before.get(name, 0) for name in after}
    return {name: count for name, count in diff.items() if count}


@dataclass(frozen=True)
class Flavour:
    name: str
    #: The data nodes whose ``INFO commandstats`` see what the backend sends (not replicas).
    ports: tuple[int, ...]
    #: ``make(namespace)``: the core backend on the session's servers.
    make: Callable[[str], RedisCommands[Any]]
    #: The Flask-Caching-style class, and the ``CACHE_*`` settings that reach these servers.
    cache_class: type
    cache_config: dict[str, object]
    #: The ``CACHE_URL`` naming these servers.
    url: str

    def commands_since(self, before: dict[str, int]) -> dict[str, int]:
        return commands_between(before, command_stats(*self.ports))

    def command_stats(self) -> dict[str, int]:
        return command_stats(*self.ports)


def single(server: servers.Server) -> Flavour:
    def make(namespace: str) -> RedisCommands[Any]:
        return RedisBackend(host=HOST, port=server.port, db=1, namespace=namespace)

    url = f"redis://{HOST}:{server.port}/4"
    config = {"CACHE_TYPE": "flask_stash.backends.redis.RedisCache", "CACHE_REDIS_URL": url}
    return Flavour("single", (server.port,), make, RedisCache, config, url)


def sentinel(sentinel_set: servers.SentinelSet) -> Flavour:
    sentinels = [(HOST, sentinel_set.sentinel.port)]

    def make(namespace: str) -> RedisCommands[Any]:
        return RedisSentinelBackend(
            sentinels=sentinels, service=sentinel_set.service, namespace=namespace
        )

    config = {
        "CACHE_TYPE": "flask_stash.backends.redis.RedisSentinelCache",
        "CACHE_REDIS_SENTINELS": sentinels,
        "CACHE_REDIS_SENTINEL_MASTER": sentinel_set.service,
    }
    url = f"redis+sentinel://{HOST}:{sentinel_set.sentinel.port}/{sentinel_set.service}"
    return Flavour("sentinel", (sentinel_set.master.port,), make, RedisSentinelCache, config, url)


def cluster(nodes: list[servers.Server]) -> Flavour:
    seeds = ",".join(node.address for node in nodes)

    def make(namespace: str) -> RedisCommands[Any]:
        return RedisClusterBackend(startup_nodes=seeds, namespace=namespace)

    config = {
        "CACHE_TYPE": "flask_stash.backends.redis.RedisClusterCache",
        "CACHE_REDIS_CLUSTER": seeds,
    }
    ports = tuple(node.port for node in nodes)
    return Flavour("cluster", ports, make, RedisClusterCache, config, f"redis+cluster://{seeds}")


def unreachable(name: str) -> RedisCommands[Any]:
    """A backend of flavour ``name`` pointed at a loopback port where nothing listens."""
    port = servers.free_port()
    if name == "single":
        return RedisBackend(host=HOST, port=port)
    if name == "sentinel":
        return RedisSentinelBackend(sentinels=[(HOST, port)], service="mymaster")
    return RedisClusterBackend(startup_nodes=f"{HOST}:{port}")

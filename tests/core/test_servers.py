"""The test servers themselves start, answer and are reachable by the real clients."""

from __future__ import annotations

import pytest

from .. import servers

pytestmark = pytest.mark.server


def test_redis_single_answers(redis_single: servers.Server) -> None:
    import redis

    with redis.Redis(port=redis_single.port) as client:
        assert client.ping()


def test_redis_cluster_is_ok(redis_cluster: list[servers.Server]) -> None:
    from redis.cluster import RedisCluster

    with RedisCluster(host=servers.HOST, port=redis_cluster[0].port) as client:
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert len(client.get_primaries()) == 3


def test_sentinel_knows_the_master(redis_sentinel: servers.SentinelSet) -> None:
    from redis.sentinel import Sentinel

    sentinel = Sentinel([(servers.HOST, redis_sentinel.sentinel.port)])
    try:
        master = sentinel.discover_master(redis_sentinel.service)
    finally:
        for client in sentinel.sentinels:
            client.close()
    assert master == (servers.HOST, redis_sentinel.master.port)


def test_memcached_nodes_answer(memcached_pair: list[servers.Server]) -> None:
    from pymemcache.client.base import Client

    for node in memcached_pair:
        client = Client((servers.HOST, node.port))
        try:
            client.set("k", b"v")
            assert client.get("k") == b"v"
        finally:
            client.close()

"""RedisClusterBackend on a real 3-master cluster: what only a cluster has (slots, nodes).

The contract and what the three flavours share run in ``test_redis_family.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from flask_stash.core.api import MISS
from flask_stash.core.backends.redis_cluster import RedisClusterBackend

from .. import servers
from .redisfamily import command_stats, commands_between

pytestmark = pytest.mark.server


def seeds(nodes: list[servers.Server]) -> str:
    return ",".join(node.address for node in nodes)


def ports(nodes: list[servers.Server]) -> list[int]:
    return [node.port for node in nodes]


@pytest.fixture
def backend(redis_cluster: list[servers.Server]) -> Iterator[RedisClusterBackend]:
    namespace = f"cl{uuid.uuid4().hex[:10]}:"
    made = RedisClusterBackend(f"redis+cluster://{seeds(redis_cluster)}", namespace=namespace)
    yield made
    made.clear()
    made.close()


def test_get_many_across_slots_keeps_the_order(
    backend: RedisClusterBackend, redis_cluster: list[servers.Server]
) -> None:
    keys = [f"{backend.namespace}{i}" for i in range(30)]  # no hash tag: many slots
    stored = {key: str(i).encode() for i, key in enumerate(keys) if i % 3}
    backend.set_many(stored, 30)
    expected = [stored.get(key, MISS) for key in keys]
    before = command_stats(*ports(redis_cluster))
    assert backend.get_many(keys) == expected
    ran = commands_between(before, command_stats(*ports(redis_cluster)))
    assert set(ran) == {"mget"}
    assert 1 < ran["mget"] <= 30  # one MGET per slot, not one GET per key


def test_clear_scans_every_primary_and_spares_other_keys(
    backend: RedisClusterBackend, redis_cluster: list[servers.Server]
) -> None:
    ours = [f"{backend.namespace}{i}" for i in range(60)]
    theirs = [f"x{backend.namespace}{i}" for i in range(3)]
    backend.set_many(dict.fromkeys(ours + theirs, b"v"), 30)
    holders = {backend.client.get_node_from_key(key).port for key in ours}
    assert holders == set(ports(redis_cluster))  # the keys really live on every node
    before = command_stats(*ports(redis_cluster))
    backend.clear()
    ran = commands_between(before, command_stats(*ports(redis_cluster)))
    assert backend.get_many(ours) == [MISS] * len(ours)
    assert backend.get_many(theirs) == [b"v"] * 3
    assert ran["scan"] >= 3
    assert "flushdb" not in ran
    assert "keys" not in ran
    backend.delete_many(theirs)

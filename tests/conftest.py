from __future__ import annotations

from collections.abc import Iterator

import pytest

from flask_stash.testing import FakeClock

from . import servers


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# Real servers: started once per test session, on free loopback ports, stopped by PID.


@pytest.fixture(scope="session")
def redis_single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    with servers.redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[servers.Server]]:
    with servers.redis_cluster(tmp_path_factory.mktemp("cluster")) as nodes:
        yield nodes


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.SentinelSet]:
    with servers.redis_sentinel(tmp_path_factory.mktemp("sentinel")) as sentinel_set:
        yield sentinel_set


@pytest.fixture(scope="session")
def memcached_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[servers.Server]]:
    with servers.memcached_nodes(tmp_path_factory.mktemp("memcached"), 2) as nodes:
        yield nodes

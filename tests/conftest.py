from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from flask_stash.core import statsflush
from flask_stash.testing import FakeClock

from . import servers

# Hypothesis profiles (docs/testing.md). "ci": derandomized (a fixed seed per test), no example
# database, so a CI run is reproducible. "dev", the local default: random and remembering
# failing examples in .hypothesis/. "thorough": ten times longer, for a deliberate local hunt.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=200, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# Shared statistics are pushed by a background thread once a second; in this process that
# traffic would land in the middle of tests that count backend commands. Tests push with
# statsflush.push_now (or cache.stats()); gunicorn workers push as in production.
statsflush.AUTO_PUSH = False


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


# A server of one test alone, for tests that kill and restart it (tests/servers.py: ``paused``,
# ``killed``). The session's servers may be paused too: ``paused``/``killed`` always bring
# them back (given a cluster's nodes, until it is ok again) before the next test.


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[servers.Server]:
    with servers.redis_server(tmp_path) as server:
        yield server

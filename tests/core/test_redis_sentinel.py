"""RedisSentinelBackend on a real master + replica + sentinel: failover and replica reads.

The contract and what the three flavours share run in ``test_redis_family.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flask_stash.core.api import MISS
from flask_stash.core.backends.redis_sentinel import RedisSentinelBackend
from flask_stash.core.stats import ERROR
from flask_stash.core.store import Store

from .. import servers
from ..servers import HOST

pytestmark = pytest.mark.server


def wait_until(condition: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def start_sync_now(sentinel_set: servers.SentinelSet) -> None:
    """Redis 7 waits 5 s (``repl-diskless-sync-delay``) before syncing a new replica."""
    port = str(sentinel_set.master.port)
    servers.redis_cli("-p", port, "config", "set", "repl-diskless-sync-delay", "0")


def replica_ready(sentinel_set: servers.SentinelSet) -> bool:
    """The replica is in sync and the sentinel knows it: a failover can promote it."""
    replica = servers.redis_cli("-p", str(sentinel_set.replica.port), "info", "replication")
    known = servers.redis_cli(
        "-p", str(sentinel_set.sentinel.port), "sentinel", "replicas", sentinel_set.service
    )
    return "master_link_status:up" in replica and str(sentinel_set.replica.port) in known


def sentinel_backend(sentinel_set: servers.SentinelSet, **options: object) -> RedisSentinelBackend:
    return RedisSentinelBackend(
        sentinels=[(HOST, sentinel_set.sentinel.port)],
        service=sentinel_set.service,
        **options,  # type: ignore[arg-type]
    )


def test_url_form_and_replica_reads(redis_sentinel: servers.SentinelSet) -> None:
    url = (
        f"redis+sentinel://{HOST}:{redis_sentinel.sentinel.port}/{redis_sentinel.service}/0"
        "?read_from_replicas=true&socket_timeout=2"
    )
    start_sync_now(redis_sentinel)
    with RedisSentinelBackend(url, namespace="replica-reads:") as backend:
        master = backend.client.connection_pool.get_master_address()
        assert master == (HOST, redis_sentinel.master.port)
        backend.set("replica-reads:k", b"v", 30)
        # Replication is asynchronous: poll the replica rather than expecting the value now.
        wait_until(lambda: backend.get("replica-reads:k") == b"v", "the replica to catch up")
        replica_kwargs = backend.reader.connection_pool.connection_kwargs
        assert replica_kwargs["socket_timeout"] == 2.0
        assert backend.reader is not backend.client
        backend.clear()


def test_failover_fails_open_then_resumes(tmp_path: Path) -> None:
    with servers.redis_sentinel(tmp_path) as sentinel_set:
        start_sync_now(sentinel_set)
        wait_until(lambda: replica_ready(sentinel_set), "the sentinel to see the replica")
        with sentinel_backend(sentinel_set) as backend:
            store = Store(backend)
            assert store.set("k", "before")
            assert store.get("k") == "before"
            sentinel_set.master.stop()
            assert store.get("k") is MISS  # the master is gone: a miss, no exception
            assert store.set("k", "during") is False
            assert store.stats.get(ERROR) >= 2

            def caching_works() -> bool:
                return store.set("k", "after") and store.get("k") == "after"

            # The sentinel marks the master down after 1 s, then promotes the replica.
            wait_until(caching_works, "the sentinel to promote the replica", timeout=20)
            master = backend.client.connection_pool.get_master_address()
            assert master == (HOST, sentinel_set.replica.port)

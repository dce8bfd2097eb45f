"""Reports: figures per scope from counter readings, the ``cache.stats()`` mapping that
older code reads, JSON output, evictions where the backend knows them."""

from __future__ import annotations

import contextlib
import json

import pytest

from flask_stash.core import MemoryBackend, Store
from flask_stash.core.backends.memcached import MemcachedBackend
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.report import ScopeFigures, figures, report
from flask_stash.core.stats import (
    BACKEND_FAILED,
    COALESCED,
    ERROR,
    HIT,
    LOCK_WAIT,
    MISS_EVENT,
    PASS_EVENT,
    STALE,
    WRITE,
    Reading,
)

from .. import servers


def test_figures_per_scope_and_in_total() -> None:
    readings = {
        (HIT, "f"): Reading(6, 3.0),
        (STALE, "f"): Reading(1, 0.5),
        (COALESCED, "f"): Reading(1, 0.5),
        (MISS_EVENT, "f"): Reading(2, 0.0),
        (WRITE, "f"): Reading(2, 512.0),
        (PASS_EVENT, "g"): Reading(3, 0.0),
        (BACKEND_FAILED, "g"): Reading(1, 0.0),
        (ERROR, "get"): Reading(1, 0.0),  # a backend call: not a scope's outcome
        (LOCK_WAIT, "f"): Reading(4, 0.0),
    }
    result = figures(readings, {"f": "memoize"})
    assert result.scopes["f"] == ScopeFigures("f", "memoize", hits=6, misses=2, stale=1,
                                              coalesced=1, time_saved=4.0, writes=2,
                                              bytes_stored=512)  # fmt: skip
    assert result.scopes["f"].calls == 10
    assert result.scopes["f"].hit_ratio == 0.8
    assert result.scopes["g"].kind == ""
    assert (result.scopes["g"].passes, result.scopes["g"].errors) == (3, 1)
    assert result.scopes["g"].hit_ratio == 0.0
    assert set(result.scopes) == {"f", "g"}  # "get" has no outcome: not a scope
    assert result.total.calls == 14
    assert result.total.time_saved == 4.0
    assert result.events[LOCK_WAIT] == {"f": 4}
    assert [scope.scope for scope in result.by_calls()] == ["f", "g"]


def test_a_scope_without_calls_has_no_ratio() -> None:
    assert ScopeFigures("f", "view").hit_ratio is None


def test_the_report_reads_as_the_old_counter_mapping_and_as_json() -> None:
    store = Store(MemoryBackend(threshold=2))
    store.stats.record(HIT, "f", 0.1)
    store.stats.incr(ERROR, "set")
    for key in "abc":
        store.set(key, 1)
    result = report(store)
    assert result[HIT] == {"f": 1}
    assert result.get(ERROR) == {"set": 1}
    assert "key_mismatch" not in result
    assert set(result) == {HIT, ERROR, WRITE}
    assert len(result) == 3
    data = json.loads(json.dumps(result.as_dict()))
    assert data["process"]["total"]["hits"] == 1
    assert data["everyone"] is None
    assert data["shared"] is False
    assert data["health"]["state"] == "closed"
    assert data["evictions"] == 1  # three keys in a backend that holds two


class Broken:
    def evictions(self) -> int:
        raise OSError("gone")


def test_evictions_unknown_are_none() -> None:
    store = Store(MemoryBackend())
    store.backend = Broken()  # type: ignore[assignment]
    assert report(store, everyone=False).evictions is None


@pytest.mark.server
def test_redis_reports_the_keys_its_server_evicted(own_redis: servers.Server) -> None:
    servers.redis_cli("-p", str(own_redis.port), "config", "set", "maxmemory", "2mb")
    servers.redis_cli("-p", str(own_redis.port), "config", "set", "maxmemory-policy",
                      "allkeys-lru")  # fmt: skip
    with contextlib.closing(RedisBackend(host=servers.HOST, port=own_redis.port)) as redis:
        store = Store(redis)
        assert report(store, everyone=False).evictions == 0
        for number in range(100):
            store.set(f"big{number}", b"x" * 100_000)
        assert report(store, everyone=False).evictions > 0  # type: ignore[operator]


@pytest.mark.server
def test_memcached_reports_its_servers_evictions(memcached_pair: list[servers.Server]) -> None:
    addresses = [node.address for node in memcached_pair]
    with contextlib.closing(MemcachedBackend(addresses)) as memcached:
        assert report(Store(memcached), everyone=False).evictions == 0


def test_a_report_is_still_the_plain_counter_dict() -> None:
    store = Store(MemoryBackend())
    store.stats.record(HIT, "f", 0.1)
    result = report(store)
    assert isinstance(result, dict)
    assert json.loads(json.dumps(result)) == {HIT: {"f": 1}}  # jsonify(cache.stats()) as before

"""Reports: figures per scope from counter readings, the ``cache.stats()`` mapping that
older code reads, JSON output, evictions where the backend knows them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from flask_stash.core import MemoryBackend, Store
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memcached import MemcachedBackend
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.breaker import Health
from flask_stash.core.report import Report, ScopeFigures, evictions_of, figures, report
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


def test_totals_add_up_every_scope() -> None:
    readings = {
        (HIT, "f"): Reading(2, 1.0),
        (HIT, "g"): Reading(3, 0.5),
        (MISS_EVENT, "f"): Reading(1, 0.0),
        (MISS_EVENT, "g"): Reading(4, 0.0),
        (WRITE, "f"): Reading(1, 100.4),
        (WRITE, "g"): Reading(2, 200.4),
        (WRITE, "h"): Reading(5, 10.0),  # written without an outcome (cache.set): no scope
    }
    result = figures(readings, {"g": "view"})
    assert result.total == ScopeFigures("", "total", hits=5, misses=5, time_saved=1.5,
                                        writes=8, bytes_stored=310)  # fmt: skip
    assert set(result.scopes) == {"f", "g"}
    assert result.scopes["g"] == ScopeFigures("g", "view", hits=3, misses=4, time_saved=0.5,
                                              writes=2, bytes_stored=200)  # fmt: skip


def test_busiest_scopes_first_then_by_name() -> None:
    readings = {
        (HIT, "b"): Reading(2, 0.0),
        (HIT, "a"): Reading(2, 0.0),
        (MISS_EVENT, "c"): Reading(5, 0.0),
    }
    assert [f.scope for f in figures(readings, {}).by_calls()] == ["c", "a", "b"]


def test_figures_as_plain_data() -> None:
    readings = {
        (HIT, "f"): Reading(3, 1.23456789),
        (MISS_EVENT, "f"): Reading(1, 0.0),
        (WRITE, "f"): Reading(1, 64.0),
        (HIT, "g"): Reading(1, 0.0),
    }
    result = figures(readings, {"f": "memoize"})
    f = {
        "scope": "f",
        "kind": "memoize",
        "calls": 4,
        "hits": 3,
        "misses": 1,
        "stale": 0,
        "coalesced": 0,
        "passes": 0,
        "errors": 0,
        "hit_ratio": 0.75,
        "time_saved": 1.234568,
        "writes": 1,
        "bytes_stored": 64,
    }
    g = dict(f, scope="g", kind="", calls=1, hits=1, misses=0, hit_ratio=1.0, time_saved=0.0,
             writes=0, bytes_stored=0)  # fmt: skip
    total = dict(f, scope="", kind="total", calls=5, hits=4, hit_ratio=0.8)
    assert result.as_dict() == {
        "total": total,
        "scopes": [f, g],
        "events": {HIT: {"f": 3, "g": 1}, MISS_EVENT: {"f": 1}, WRITE: {"f": 1}},
    }
    stale = ScopeFigures("s", "view", stale=1, coalesced=1, passes=1, errors=1).as_dict()
    assert (stale["stale"], stale["coalesced"], stale["passes"], stale["errors"]) == (1, 1, 1, 1)
    assert stale["hit_ratio"] == 0.5


def test_a_report_as_plain_data() -> None:
    process = figures({(HIT, "f"): Reading(1, 0.0)}, {})
    everyone = figures({(HIT, "f"): Reading(5, 0.0)}, {})
    health = {"state": "closed"}
    result = Report(process, everyone, True, "FileSystemBackend", 42, 7, health)
    assert result.as_dict() == {
        "backend": "FileSystemBackend",
        "shared": True,
        "pid": 42,
        "evictions": 7,
        "health": health,
        "process": process.as_dict(),
        "everyone": everyone.as_dict(),
    }
    alone = Report(process, None, False, "MemoryBackend", 1)
    assert (alone.everyone, alone.evictions, alone.health) == (None, None, {})
    assert alone.as_dict()["everyone"] is None


@pytest.fixture
def shared_store(tmp_path: Path) -> Store:
    store = Store(FileSystemBackend(str(tmp_path)))
    assert store.shared_stats is not None
    return store


def test_a_shared_report_sums_every_process_with_this_ones_latest_counts(
    shared_store: Store, tmp_path: Path
) -> None:
    other = Store(FileSystemBackend(str(tmp_path)))
    other.stats.record(HIT, "f", 1.0)
    assert other.shared_stats is not None
    assert other.shared_stats.push(other.stats)
    shared_store.stats.describe("f", "memoize")
    shared_store.stats.record(HIT, "f", 0.5)  # not pushed yet: the report pushes it
    result = report(shared_store)
    assert result.shared is True
    assert result.process.total.hits == 1
    assert result.everyone is not None
    assert result.everyone.scopes["f"] == ScopeFigures("f", "memoize", hits=2, time_saved=1.5)
    assert report(shared_store, everyone=False).everyone is None
    assert report(shared_store).everyone.total.hits == 2  # type: ignore[union-attr]


def test_an_unreadable_shared_record_leaves_everyone_unknown(
    shared_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shared_store.shared_stats is not None
    monkeypatch.setattr(shared_store.shared_stats, "read", lambda: None)
    result = report(shared_store)
    assert result.shared is True
    assert result.everyone is None


def test_the_report_names_the_backend_process_and_health(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Store(MemoryBackend())
    outage = Health("open", failures=3, skipped=2, failing_for=12.34567, last_error="E: x")
    monkeypatch.setattr(store.gate.breaker, "health", lambda: outage)
    result = report(store)
    assert (result.backend, result.pid, result.shared) == (store.gate.name, os.getpid(), False)
    assert result.backend == "MemoryBackend"
    assert result.health == {
        "state": "open",
        "healthy": False,
        "failed_calls": 3,
        "skipped_calls": 2,
        "failing_for": 12.346,
        "last_error": "E: x",
    }


class Answers:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def evictions(self) -> Any:
        return self.answer


def test_evictions_only_when_the_backend_counts_them_as_an_int(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="flask_stash")
    assert evictions_of(object()) is None
    assert evictions_of(Answers(0)) == 0
    assert evictions_of(Answers(12)) == 12
    assert evictions_of(Answers("12")) is None
    assert evictions_of(Answers(None)) is None
    assert caplog.records == []
    assert evictions_of(Broken()) is None
    [record] = caplog.records
    assert (record.levelno, record.name) == (logging.DEBUG, "flask_stash")
    assert record.getMessage() == "reading the backend's evictions failed"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "gone"


class Remote:
    def evictions(self) -> int:
        return 7


class Front:
    """An in-process tier: its own LRU's evictions are not the backend's."""

    remote = Remote()

    def evictions(self) -> int:
        return 99


def test_evictions_behind_a_tier_are_the_remote_backends() -> None:
    store = Store(MemoryBackend())
    store.backend = Front()  # type: ignore[assignment]
    assert report(store, everyone=False).evictions == 7

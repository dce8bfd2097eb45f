"""Shared statistics: every process's counts summed in the backend, exactly, on every
shared backend (Redis single/Sentinel/Cluster, memcached one and two nodes, the file
system). Two stores on one backend play two processes."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flask_stash.core import MemoryBackend, Store, statsflush
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memcached import MemcachedBackend
from flask_stash.core.errors import BackendError
from flask_stash.core.report import report
from flask_stash.core.stats import HIT, MISS_EVENT, WRITE, Reading
from flask_stash.core.statshare import RECORD_KEY

from .. import servers
from .redisfamily import Flavour

Maker = Callable[[], Any]  # a new client of the one shared backend


@pytest.fixture
def filesystem(tmp_path: Path) -> Maker:
    return lambda: FileSystemBackend(str(tmp_path / "cache"))


@pytest.fixture
def redis_maker(redis_flavour: Flavour) -> Iterator[Maker]:
    namespace = f"share{uuid.uuid4().hex[:8]}:"
    made: list[Any] = []

    def make() -> Any:
        made.append(redis_flavour.make(namespace))
        return made[-1]

    yield make
    made[0].clear()
    for backend in made:
        backend.close()


@pytest.fixture(params=[1, 2], ids=["one node", "two nodes"])
def memcached_maker(request: pytest.FixtureRequest) -> Iterator[Maker]:
    nodes: list[servers.Server] = request.getfixturevalue("memcached_pair")
    addresses = [node.address for node in nodes[: request.param]]
    made: list[MemcachedBackend] = []

    def make() -> MemcachedBackend:
        made.append(MemcachedBackend(addresses))
        return made[-1]

    yield make
    for backend in made:
        backend.close()


def two_processes(make: Maker) -> tuple[Store, Store]:
    prefix = f"app{uuid.uuid4().hex[:8]}:"
    return Store(make(), key_prefix=prefix), Store(make(), key_prefix=prefix)


def count(store: Store, hits: int, misses: int, saved: float = 0.5) -> None:
    for _ in range(hits):
        store.stats.record(HIT, "fn", saved)
    for _ in range(misses):
        store.stats.record(MISS_EVENT, "fn", 0.0)
    store.stats.record(WRITE, "fn", 100)


def sums_are_exact(make: Maker) -> None:
    first, second = two_processes(make)
    count(first, hits=3, misses=1)
    count(second, hits=5, misses=2, saved=0.25)
    assert statsflush.push_now(first)
    assert statsflush.push_now(second)
    count(first, hits=1, misses=0)  # pushed later: arrives once, not twice
    assert statsflush.push_now(first)
    assert statsflush.push_now(first)  # nothing new: nothing added
    everyone = second.shared_stats.read()  # type: ignore[union-attr]
    assert everyone == {
        (HIT, "fn"): Reading(9, 3.25),
        (MISS_EVENT, "fn"): Reading(3, 0.0),
        (WRITE, "fn"): Reading(3, 300.0),
    }
    figures = report(first).everyone
    assert figures is not None
    assert (figures.total.hits, figures.total.misses, figures.total.bytes_stored) == (9, 3, 300)
    assert report(first).process.total.hits == 4  # this process's own figures


def test_sums_are_exact_on_the_file_system(filesystem: Maker) -> None:
    sums_are_exact(filesystem)


@pytest.mark.server
def test_sums_are_exact_on_redis(redis_maker: Maker) -> None:
    sums_are_exact(redis_maker)


@pytest.mark.server
def test_sums_are_exact_on_memcached(memcached_maker: Maker) -> None:
    sums_are_exact(memcached_maker)


def test_an_in_process_backend_keeps_per_process_figures() -> None:
    store = Store(MemoryBackend())
    count(store, hits=2, misses=1)
    assert store.shared_stats is None
    result = report(store)
    assert result.everyone is None
    assert result.shared is False
    assert result.process.total.hits == 2


class Flaky(FileSystemBackend):
    """The file system, failing while ``down``."""

    down = False

    def get(self, key: str) -> Any:
        if self.down:
            raise BackendError("down")
        return super().get(key)


def test_a_failed_push_keeps_its_deltas_for_the_next(tmp_path: Path) -> None:
    backend = Flaky(str(tmp_path))
    store = Store(backend)
    count(store, hits=2, misses=1)
    backend.down = True
    assert not statsflush.push_now(store)
    assert store.shared_stats.read() is None  # type: ignore[union-attr]
    assert report(store).everyone is None
    count(store, hits=1, misses=0)
    backend.down = False
    assert statsflush.push_now(store)
    found = store.shared_stats.read()  # type: ignore[union-attr]
    assert found is not None
    assert found[(HIT, "fn")] == Reading(3, 1.5)
    assert store.gate.breaker.state == "closed"  # statistics never trip the breaker


def test_a_forged_record_is_ignored_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(FileSystemBackend(str(tmp_path)))
    name = store.backend_key(RECORD_KEY)
    forged = {"hits\x1ffn\x1fn": "many", "no separators": 5, "hits\x1fok\x1fn": 2}
    store.backend.set(name, json.dumps(forged).encode(), None)
    with caplog.at_level(logging.WARNING, "flask_stash"):
        assert store.shared_stats.read() == {(HIT, "ok"): Reading(2, 0.0)}  # type: ignore[union-attr]
        store.backend.set(name, b"\x80garbage", None)
        assert store.shared_stats.read() == {}  # type: ignore[union-attr]
        count(store, hits=1, misses=0)
        assert statsflush.push_now(store)  # replaces what cannot be read
    assert len(caplog.records) == 1
    assert "malformed" in caplog.records[0].getMessage()
    assert store.shared_stats.read()[(HIT, "fn")] == Reading(1, 0.5)  # type: ignore[index,union-attr]


def test_reset_forgets_every_process(filesystem: Maker) -> None:
    first, second = two_processes(filesystem)
    count(first, hits=1, misses=1)
    assert statsflush.push_now(first)
    assert second.shared_stats.reset()  # type: ignore[union-attr]
    assert second.shared_stats.read() == {}  # type: ignore[union-attr]
    count(first, hits=2, misses=0)
    assert statsflush.push_now(first)
    assert second.shared_stats.read() == {  # type: ignore[union-attr]
        (HIT, "fn"): Reading(2, 1.0),
        (WRITE, "fn"): Reading(1, 100.0),
    }


def test_a_round_drains_every_stats_and_pushes_when_allowed(
    filesystem: Maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_processes(filesystem)
    count(first, hits=1, misses=0)
    statsflush.run_once()  # the suite turns automatic pushes off (tests/conftest.py)
    assert first.stats._tallies[(HIT, "fn")].pending == []
    assert second.shared_stats.read() == {}  # type: ignore[union-attr]
    monkeypatch.setattr(statsflush, "AUTO_PUSH", True)
    statsflush.run_once()
    assert second.shared_stats.read()[(HIT, "fn")] == Reading(1, 0.5)  # type: ignore[index,union-attr]


def test_concurrent_pushes_add_each_count_once(filesystem: Maker) -> None:
    first, second = two_processes(filesystem)
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        for _ in range(25):
            first.stats.record(HIT, "fn", 0.5)
            statsflush.push_now(first)  # the background round and cache.stats() both push

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statsflush.push_now(first)
    assert second.shared_stats.read() == {(HIT, "fn"): Reading(100, 50.0)}  # type: ignore[union-attr]

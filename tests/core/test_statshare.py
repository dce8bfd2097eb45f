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
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.errors import BackendError
from flask_stash.core.report import report
from flask_stash.core.stats import HIT, MISS_EVENT, WRITE, Reading
from flask_stash.core.statshare import RECORD_KEY, _integer, _readings, _text

from .. import servers
from . import redisfamily, tierkit
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


# -- the record's format and the Redis commands, without a server ----------------------------

SEP = "\x1f"


def fs_store(tmp_path: Path) -> Store:
    return Store(FileSystemBackend(str(tmp_path)), key_prefix="app:")


def test_the_file_system_record_is_compact_json_of_counts_and_millionths(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = fs_store(tmp_path)
    shared = store.shared_stats
    assert shared is not None
    assert shared.name == "app:" + RECORD_KEY
    with caplog.at_level(logging.DEBUG, "flask_stash"):
        assert shared.read() == {}  # no record yet: nothing, and nothing to warn about
    assert caplog.records == []
    store.stats.record(HIT, "fn", 1.5)
    store.stats.record(HIT, "fn", 0.25)
    store.stats.incr(MISS_EVENT, "fn")
    assert shared.push(store.stats)
    blob = store.backend.get(shared.name)
    expected = {f"hits{SEP}fn{SEP}n": 2, f"hits{SEP}fn{SEP}t": 1_750_000,
                f"misses{SEP}fn{SEP}n": 1}  # fmt: skip
    assert json.loads(blob) == expected
    assert blob == json.dumps(expected, separators=(",", ":")).encode()


def test_a_push_waits_while_another_process_holds_the_record(tmp_path: Path) -> None:
    store = fs_store(tmp_path)
    shared = store.shared_stats
    assert shared is not None
    store.stats.incr(HIT, "fn")
    lock = "app:" + RECORD_KEY + ":lock"
    assert store.backend.acquire_lock(lock, "other", 5.0)
    assert shared.push(store.stats) is False  # another process pushes: next time
    assert shared.read() == {}
    store.backend.release_lock(lock, "other")
    assert shared.push(store.stats) is True  # the deltas waited
    assert shared.read() == {(HIT, "fn"): Reading(1, 0.0)}
    assert store.backend.acquire_lock(lock, "mine", 5.0)  # released after the push


def test_a_malformed_record_is_named_in_the_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = fs_store(tmp_path)
    shared = store.shared_stats
    assert shared is not None
    store.backend.set(shared.name, b"[1, 2]", None)
    with caplog.at_level(logging.WARNING, "flask_stash"):
        assert shared.read() == {}
        assert shared.read() == {}
    [record] = caplog.records
    assert record.getMessage() == (
        "the shared statistics record 'app:__flask_stash_stats__' was malformed: ignored"
    )


def test_a_backend_without_native_errors_fails_reads_too(tmp_path: Path) -> None:
    class Plain:
        """A backend of the user's own, not derived from the base class."""

        def get(self, key: str) -> Any:
            raise BackendError("down")

    store = fs_store(tmp_path)
    assert store.shared_stats is not None
    store.backend = Plain()  # type: ignore[assignment]
    assert store.shared_stats.read() is None


def test_the_record_fields() -> None:
    record = {
        f"hits{SEP}GET /a b{SEP}n": 3,  # a scope may hold spaces
        f"hits{SEP}GET /a b{SEP}t": 1_500_000,
        f"misses{SEP}f{SEP}t": 5,  # a total without a count: not a reading
        f"writes{SEP}f{SEP}n": 0,
    }
    assert _readings(record) == {(HIT, "GET /a b"): Reading(3, 1.5)}


@pytest.mark.parametrize(
    ("value", "number"),
    [(5, 5), (-5, -5), ("5", 5), ("-12", -12), ("0", 0), (True, None), (5.0, None),
     ("5.0", None), ("", None), ("-", None), ("x", None), ("X5", None), (None, None)],
)  # fmt: skip
def test_record_values_are_integers(value: object, number: int | None) -> None:
    assert _integer(value) == number


def test_text_of_redis_replies() -> None:
    assert _text(b"hits") == "hits"
    assert _text(b"caf\xc3\xa9") == "caf\u00e9"
    assert _text(b"bad \x80") == "bad \ufffd"
    assert _text("already") == "already"
    assert _text(12) == "12"


class FakeRedis:
    """The two commands shared statistics send to Redis: pipelined HINCRBYs and HGETALL."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[bytes, bytes]] = {}
        self.pipelines: list[dict[str, Any]] = []
        self.error: Exception | None = None

    def pipeline(self, transaction: bool = True) -> Any:
        fake = self

        class Pipeline:
            def __init__(self) -> None:
                self.queued: list[tuple[str, str, int]] = []
                fake.pipelines.append({"transaction": transaction, "queued": self.queued,
                                       "executed": False})  # fmt: skip

            def __enter__(self) -> Pipeline:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def hincrby(self, name: str, field: str, amount: int) -> None:
                self.queued.append((name, field, amount))

            def execute(self) -> None:
                if fake.error is not None:
                    raise fake.error
                for name, field, amount in self.queued:
                    fields = fake.hashes.setdefault(name, {})
                    key = field.encode()
                    fields[key] = str(int(fields.get(key, b"0")) + amount).encode()
                fake.pipelines[-1]["executed"] = True

        return Pipeline()

    def hgetall(self, name: str) -> dict[bytes, bytes]:
        if self.error is not None:
            raise self.error
        return dict(self.hashes.get(name, {}))


@pytest.fixture
def redis_store() -> tuple[Store, FakeRedis]:
    backend = RedisBackend(host="127.0.0.1", port=1)  # never connected: the fake answers
    fake = FakeRedis()
    backend._client = fake  # type: ignore[assignment]
    return Store(backend, key_prefix="app:"), fake


def test_redis_pushes_are_hincrbys_in_one_pipeline_without_transaction(
    redis_store: tuple[Store, FakeRedis],
) -> None:
    store, fake = redis_store
    shared = store.shared_stats
    assert shared is not None
    store.stats.record(HIT, "fn", 0.5)
    store.stats.incr(MISS_EVENT, "fn")
    assert shared.push(store.stats) is True
    name = "app:" + RECORD_KEY
    assert fake.pipelines == [{
        "transaction": False,
        "queued": [(name, f"hits{SEP}fn{SEP}n", 1), (name, f"hits{SEP}fn{SEP}t", 500_000),
                   (name, f"misses{SEP}fn{SEP}n", 1)],
        "executed": True,
    }]  # fmt: skip
    store.stats.record(HIT, "fn", 0.25)
    assert shared.push(store.stats) is True
    assert fake.pipelines[-1]["queued"] == [
        (name, f"hits{SEP}fn{SEP}n", 1),
        (name, f"hits{SEP}fn{SEP}t", 250_000),
    ]
    assert shared.read() == {(HIT, "fn"): Reading(2, 0.75), (MISS_EVENT, "fn"): Reading(1, 0.0)}


def test_redis_replies_are_decoded_and_checked(
    redis_store: tuple[Store, FakeRedis], caplog: pytest.LogCaptureFixture
) -> None:
    store, fake = redis_store
    assert store.shared_stats is not None
    fake.hashes["app:" + RECORD_KEY] = {
        f"hits{SEP}fn{SEP}n".encode(): b"-3",
        f"hits{SEP}f\u00e9{SEP}n".encode(): b"4",
        b"junk": b"1",
    }
    with caplog.at_level(logging.WARNING, "flask_stash"):
        assert store.shared_stats.read() == {(HIT, "f\u00e9"): Reading(4, 0.0),
                                             (HIT, "fn"): Reading(-3, 0.0)}  # fmt: skip
    assert len(caplog.records) == 1


def test_redis_errors_are_failed_pushes_and_reads(
    redis_store: tuple[Store, FakeRedis], caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    store, fake = redis_store
    shared = store.shared_stats
    assert shared is not None
    store.stats.incr(HIT, "fn")
    fake.error = redis.ConnectionError("down")  # raw client calls: the driver's own error
    with caplog.at_level(logging.DEBUG, "flask_stash"):
        assert shared.push(store.stats) is False
        assert shared.read() is None
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "shared statistics: the backend failed")
    ] * 2
    assert caplog.records[0].exc_info is not None
    assert caplog.records[0].exc_info[1] is fake.error
    fake.error = None
    assert shared.push(store.stats) is True  # the deltas waited
    assert shared.read() == {(HIT, "fn"): Reading(1, 0.0)}
    assert store.gate.breaker.state == "closed"


@pytest.mark.server
def test_a_tiered_store_shares_its_figures_through_the_remote(
    redis_single: servers.Server,
) -> None:
    namespace = f"tiered{uuid.uuid4().hex[:8]}:"
    tier = tierkit.redis_tier(redis_single, namespace)
    first, second = Store(tier), Store(tierkit.redis_tier(redis_single, namespace))
    try:
        count(first, hits=2, misses=1)
        before = redisfamily.command_stats(redis_single.port)
        assert statsflush.push_now(first)
        pushed = redisfamily.commands_between(before, redisfamily.command_stats(redis_single.port))
        pushed.pop("hello", None), pushed.pop("select", None)  # the client's first connection
        assert pushed == {"hincrby": 5}  # one pipeline: no lock, no read of a local copy
        assert second.shared_stats.read()[(HIT, "fn")] == Reading(2, 1.0)  # type: ignore[index,union-attr]
    finally:
        first.close()
        second.close()

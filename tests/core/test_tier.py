"""The in-process tier on a real Redis: local hits, copies, bounds, coherence, races."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

from flask_stash.core import coherence
from flask_stash.core.api import MISS, SupportsIncrement, SupportsLock, SupportsScan
from flask_stash.core.backends.memcached import MemcachedBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.errors import BackendError, ConfigurationError
from flask_stash.core.memoize import memoize
from flask_stash.core.store import Store
from flask_stash.core.tier import TieredBackend
from flask_stash.testing import FakeClock

from .. import servers
from ..servers import HOST, Server
from . import redisfamily
from .redisfamily import command_stats, unique
from .tierkit import GatedRemote, eventually, redis_tier, synced


@pytest.fixture
def pair(redis_single: Server) -> Iterator[tuple[TieredBackend, TieredBackend]]:
    """Two tiers on one Redis, each with its own client: two processes."""
    namespace = unique()
    a, b = redis_tier(redis_single, namespace), redis_tier(redis_single, namespace)
    synced(a, b)
    yield a, b
    a.clear()
    a.close()
    b.close()


def reads(port: int) -> int:
    stats = command_stats(port)
    return stats.get("get", 0) + stats.get("mget", 0)


def test_memoize_hits_are_served_locally(
    redis_single: Server, pair: tuple[TieredBackend, TieredBackend]
) -> None:
    store = Store(pair[0], key_prefix=pair[0].namespace)  # type: ignore[attr-defined]
    calls: list[int] = []

    @memoize(store, 60)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    assert double(21) == 42
    before = reads(redis_single.port)
    assert [double(21) for _ in range(50)] == [42] * 50
    assert reads(redis_single.port) == before
    assert calls == [21]


def test_a_value_read_by_another_process_is_kept_after_one_read(
    redis_single: Server, pair: tuple[TieredBackend, TieredBackend]
) -> None:
    a, b = pair
    key = a.namespace + "k"  # type: ignore[attr-defined]
    epoch = b.epoch
    a.set(key, b"v", None)
    eventually(lambda: b.epoch != epoch)  # b heard of the write (a later read is kept)
    assert b.get(key) == b"v"
    before = reads(redis_single.port)
    assert [b.get(key) for _ in range(20)] == [b"v"] * 20
    assert b.get_many([key, key]) == [b"v", b"v"]
    assert reads(redis_single.port) == before


def test_each_caller_gets_its_own_copy(pair: tuple[TieredBackend, TieredBackend]) -> None:
    store = Store(pair[0], key_prefix=pair[0].namespace)  # type: ignore[attr-defined]
    store.set("config", {"items": [1, 2]})
    first = store.get("config")
    first["items"].append(3)  # type: ignore[index]
    assert store.get("config") == {"items": [1, 2]}
    assert store.get("config") is not store.get("config")


def test_the_tier_is_bounded_by_entries_and_bytes(redis_single: Server) -> None:
    namespace = unique()
    with contextlib.closing(redis_tier(redis_single, namespace, max_entries=3)) as tier:
        synced(tier)
        for i in range(5):
            tier.set(f"{namespace}{i}", b"x", None)
        assert len(tier.local) == 3
        assert tier.local.get(f"{namespace}0") is MISS
        assert tier.get(f"{namespace}0") == b"x"  # from Redis, kept again
        tier.clear()
    with contextlib.closing(redis_tier(redis_single, namespace, max_bytes=4096)) as tier:
        synced(tier)
        for i in range(10):
            tier.set(f"{namespace}{i}", b"y" * 1000, None)
        assert tier.local.size_in_bytes <= 4096
        assert len(tier.local) == 3
        tier.clear()


def test_a_copy_is_kept_at_most_the_ttl_cap(redis_single: Server) -> None:
    namespace, clock = unique(), FakeClock()
    writer = RedisBackend(host=HOST, port=redis_single.port, db=3)
    with contextlib.closing(redis_tier(redis_single, namespace, ttl=10, clock=clock)) as tier:
        synced(tier)
        key = namespace + "k"
        tier.set(key, b"old", None)
        writer.set(key, b"new", None)  # behind the tier's back: no invalidation
        clock.advance(9.9)
        assert tier.get(key) == b"old"
        clock.advance(0.2)
        assert tier.get(key) == b"new"
        # A shorter TTL of the entry itself wins over the cap.
        tier.set(key, b"short", 2)
        writer.set(key, b"newer", None)
        clock.advance(2.1)
        assert tier.get(key) == b"newer"
        tier.clear()
    writer.close()


@pytest.mark.parametrize("write", ["set", "set_many", "delete", "delete_many", "clear", "incr"])
def test_a_write_in_one_process_reaches_the_other(
    pair: tuple[TieredBackend, TieredBackend], write: str
) -> None:
    a, b = pair
    key = a.namespace + "k"  # type: ignore[attr-defined]
    heard(b, lambda: a.set(key, b"1", None))
    assert b.get(key) == b"1"
    assert b.local.get(key) == b"1"
    expected: bytes | object = MISS
    if write == "set":
        a.set(key, b"2", None)
        expected = b"2"
    elif write == "set_many":
        a.set_many({key: b"2"}, None)
        expected = b"2"
    elif write == "delete":
        a.delete(key)
    elif write == "delete_many":
        a.delete_many([key])
    elif write == "clear":
        a.clear()
    else:
        assert a.incr(key, 1, None) == 2
        expected = b"2"
    eventually(lambda: b.local.get(key) is MISS)
    assert b.get(key) == expected


def test_a_read_that_fetched_the_old_value_does_not_keep_it(redis_single: Server) -> None:
    namespace = unique()
    inner = RedisBackend(host=HOST, port=redis_single.port, db=3, namespace=namespace)
    gated = GatedRemote(inner)
    reader = TieredBackend(gated)  # type: ignore[arg-type]
    writer = redis_tier(redis_single, namespace)
    synced(reader, writer)
    key = namespace + "k"
    writer.set(key, b"old", None)
    gated.hold = True
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(reader.get(key)))
    thread.start()
    assert gated.fetched.wait(5)  # the reader holds b"old" and has not kept it yet
    epoch = reader.epoch
    writer.set(key, b"new", None)
    eventually(lambda: reader.epoch != epoch)  # the invalidation has arrived
    gated.hold = False
    gated.release.set()
    thread.join(5)
    assert seen == [b"old"]  # it read before the write: fine to return
    assert reader.local.get(key) is MISS  # but not kept
    assert reader.get(key) == b"new"
    writer.clear()
    reader.close()
    writer.close()


def test_of_two_writers_in_one_process_the_first_to_write_is_not_kept(
    redis_single: Server,
) -> None:
    namespace = unique()
    inner = RedisBackend(host=HOST, port=redis_single.port, db=3, namespace=namespace)
    gated = GatedRemote(inner)
    tier = TieredBackend(gated)  # type: ignore[arg-type]
    synced(tier)
    key = namespace + "k"
    gated.hold = True
    first = threading.Thread(target=lambda: tier.set(key, b"first", None))
    first.start()
    assert gated.fetched.wait(5)  # "first" is in Redis, not yet in the tier
    tier.set(key, b"second", None)  # overwrites it in Redis, kept in the tier
    gated.release.set()
    first.join(5)
    assert tier.local.get(key) in (MISS, b"second")  # never the overwritten "first"
    assert tier.get(key) == b"second"
    tier.clear()
    tier.close()


def test_losing_the_channel_bypasses_the_tier_until_resynced(
    redis_single: Server, caplog: pytest.LogCaptureFixture
) -> None:
    namespace = unique()
    inner = RedisBackend(host=HOST, port=redis_single.port, db=3, namespace=namespace)
    gated = GatedRemote(inner)
    a = TieredBackend(gated, channel=f"tier-test:{namespace}")  # type: ignore[arg-type]
    b = redis_tier(redis_single, namespace, channel=f"tier-test:{namespace}")
    synced(a, b)
    key = namespace + "k"
    heard(a, lambda: b.set(key, b"old", None))
    assert a.get(key) == b"old"
    assert a.local.get(key) == b"old"
    gated.allow_subscribe.clear()  # a cannot subscribe again until allowed
    caplog.set_level(logging.INFO, logger="flask_stash")
    kill_pubsub_clients(redis_single)
    eventually(lambda: not a.synced)
    b.set(key, b"new", None)  # a cannot hear about it
    assert a.get(key) == b"new"  # bypassed: from Redis
    assert len(a.local) == 0  # and nothing kept meanwhile
    gated.allow_subscribe.set()
    eventually(lambda: a.synced)
    assert a.get(key) == b"new"
    assert a.local.get(key) == b"new"
    synced(b)  # b lost its subscription too

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "tier" in r.getMessage()]

    # One line per change of state and per tier ("is back" follows the resync).
    eventually(lambda: sum("is back" in m for m in lines()) == 2)
    messages = lines()
    assert sum("bypassed" in m for m in messages) == 2, messages
    assert sum("is back" in m for m in messages) == 2, messages
    assert len(messages) == 4, messages
    b.clear()
    a.close()
    b.close()


def test_a_killed_subscription_reconnects_by_itself(
    redis_single: Server, pair: tuple[TieredBackend, TieredBackend]
) -> None:
    a, b = pair
    key = a.namespace + "k"  # type: ignore[attr-defined]
    heard(a, lambda: b.set(key, b"old", None))
    assert a.get(key) == b"old"
    assert a.local.get(key) == b"old"
    kill_pubsub_clients(redis_single)
    eventually(lambda: a.local.get(key) is MISS)  # lost (and maybe back): emptied
    synced(a, b)
    assert a.get(key) == b"old"
    b.set(key, b"new", None)
    eventually(lambda: a.get(key) == b"new")


def test_a_server_down_at_start_bypasses_then_uses_the_tier(own_redis: Server) -> None:
    namespace = unique()
    with servers.killed(own_redis):
        tier = redis_tier(own_redis, namespace)
        with pytest.raises(BackendError):
            tier.get(namespace + "k")
        assert not tier.synced
        servers.restart(own_redis)
    synced(tier)
    tier.set(namespace + "k", b"v", None)
    assert tier.get(namespace + "k") == b"v"
    tier.close()


def test_capabilities_are_exactly_the_remote_ones(
    pair: tuple[TieredBackend, TieredBackend],
) -> None:
    a, _ = pair
    assert isinstance(a, SupportsLock)
    assert isinstance(a, SupportsIncrement)
    assert isinstance(a, SupportsScan)
    assert not hasattr(a, "local_stamps")
    assert getattr(a, "atomic_add", False) is True
    store = Store(a)
    assert store.stampede.locks
    assert store.local_stamps is None


def test_settings_are_checked() -> None:
    remote = RedisBackend(host=HOST, port=1)
    for bad in ({"ttl": 0}, {"ttl": None}, {"max_entries": 0}, {"max_bytes": -1}):
        with pytest.raises(ConfigurationError):
            TieredBackend(remote, **bad)  # type: ignore[arg-type]


def heard(listener: TieredBackend, write: Callable[[], object]) -> None:
    """Run ``write`` (in another tier) and wait until ``listener`` heard of it."""
    epoch = listener.epoch
    write()
    eventually(lambda: listener.epoch != epoch)


def kill_pubsub_clients(server: Server) -> None:
    servers.redis_cli("-p", str(server.port), "client", "kill", "type", "pubsub")


def test_invalidation_reaches_the_other_process_on_every_flavour(
    redis_flavour: redisfamily.Flavour,
) -> None:
    namespace = unique()
    a = TieredBackend(redis_flavour.make(namespace))
    b = TieredBackend(redis_flavour.make(namespace))
    synced(a, b)
    key = namespace + "k"
    heard(b, lambda: a.set(key, b"1", None))
    assert b.get(key) == b"1"
    assert b.local.get(key) == b"1"
    heard(b, lambda: a.delete(key))
    assert b.local.get(key) is MISS
    assert b.get(key) is MISS
    a.close()
    b.close()


def test_on_memcached_a_copy_lives_at_most_the_ttl_cap(memcached_pair: list[Server]) -> None:
    addresses = [node.address for node in memcached_pair]
    clock, key = FakeClock(), unique() + "k"
    other = MemcachedBackend(addresses)  # another process: no channel to tell us
    tier = TieredBackend(MemcachedBackend(addresses), ttl=5, clock=clock)
    assert tier.synced
    assert tier.channel is None
    tier.set(key, b"old", None)
    other.set(key, b"new", None)
    clock.advance(4.9)
    assert tier.get(key) == b"old"  # the documented bound: up to the cap
    clock.advance(0.2)
    assert tier.get(key) == b"new"
    tier.delete(key)  # this process's own writes are seen at once
    assert tier.get(key) is MISS
    other.close()
    tier.close()


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coherence, "HEARTBEAT", 0.05)
    monkeypatch.setattr(coherence, "DEAD_AFTER", 0.3)


@pytest.mark.usefixtures("fast_heartbeat")
def test_a_quiet_channel_is_kept_alive_by_pings(redis_flavour: redisfamily.Flavour) -> None:
    tier = TieredBackend(redis_flavour.make(unique()))
    synced(tier)
    epoch = tier.epoch
    time.sleep(1.0)  # several heartbeats, no message: the pongs keep it alive
    assert tier.synced
    assert tier.epoch == epoch
    tier.close()


@pytest.mark.usefixtures("fast_heartbeat")
def test_a_server_that_stops_answering_counts_as_lost(own_redis: Server) -> None:
    namespace = unique()
    tier = redis_tier(own_redis, namespace)
    synced(tier)
    tier.set(namespace + "k", b"v", None)
    with servers.paused(own_redis):  # the socket stays open, nothing answers
        waited = eventually(lambda: not tier.synced)
        assert len(tier.local) == 0
    assert waited < 2.0
    assert tier.wait_synced(15)  # back by itself once the server answers
    tier.close()


def test_a_listener_that_breaks_leaves_the_tier_bypassed(redis_single: Server) -> None:
    class Broken(GatedRemote):
        def subscribe(self, channel: str) -> Iterator[bytes]:
            raise RuntimeError("a bug, not a backend error")

    namespace = unique()
    inner = RedisBackend(host=HOST, port=redis_single.port, db=3, namespace=namespace)
    tier = TieredBackend(Broken(inner))  # type: ignore[arg-type]
    inner.set(namespace + "k", b"v", None)
    assert tier.get(namespace + "k") == b"v"
    assert not tier.wait_synced(0.3)
    assert len(tier.local) == 0
    tier.close()


def test_a_forked_child_gets_its_own_listener_and_identity(
    pair: tuple[TieredBackend, TieredBackend],
) -> None:
    parent, _ = pair
    key = parent.namespace + "k"  # type: ignore[attr-defined]
    parent.set(key, b"old", None)
    assert parent.local.get(key) == b"old"

    def child() -> None:
        # Starts bypassed and empty, subscribes on its own, publishes as someone else.
        ok = not parent.synced and len(parent.local) == 0 and parent.wait_synced(5)
        parent.set(key, b"from-child", None)
        os._exit(0 if ok else 1)

    with warnings.catch_warnings():  # Python 3.12+: fork() of a multi-threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        child()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    eventually(lambda: parent.local.get(key) is MISS)  # the child's message was not "ours"
    assert parent.get(key) == b"from-child"
    assert parent.synced


class FlakyRemote(MemoryBackend):
    """An in-process remote whose writes fail on demand (as a timed-out server's may)."""

    failing = False

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        super().set(key, value, ttl)  # made, then reported failed: the worst case
        if self.failing:
            raise BackendError("timed out")

    def delete(self, key: str) -> bool:
        if self.failing:
            raise BackendError("timed out")
        return super().delete(key)


@pytest.mark.parametrize("write", ["set", "delete"])
def test_a_failed_write_drops_the_local_copy(write: str) -> None:
    remote = FlakyRemote(threshold=0)
    tier = TieredBackend(remote)
    tier.set("k", b"1", None)
    assert tier.local.get("k") == b"1"
    remote.failing = True
    attempt = (lambda: tier.set("k", b"2", None)) if write == "set" else (lambda: tier.delete("k"))
    with pytest.raises(BackendError):
        attempt()
    assert tier.local.get("k") is MISS
    remote.failing = False
    assert tier.get("k") == (b"2" if write == "set" else b"1")

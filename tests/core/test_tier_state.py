"""The in-process tier's own rules, with the channel replaced by a recorder: what is kept,
for how long, what is dropped and published, when reads bypass the tier. The channel's
real behaviour on Redis is in ``test_tier.py``."""

from __future__ import annotations

import gc
import re
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from flask_stash.core import tier as tier_module
from flask_stash.core.api import MISS, TTL, Miss, SupportsIncrement, SupportsLock
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.null import NullBackend
from flask_stash.core.errors import BackendError, ConfigurationError
from flask_stash.core.tier import TieredBackend, TierSettings, tiered
from flask_stash.testing import CountingBackend, FakeClock


class RecordingChannel:
    """Stands in for :class:`~flask_stash.core.coherence.Channel`: records what the tier
    asks of it; the test plays the channel's part by calling the tier's sink methods."""

    def __init__(self, remote: object, name: str, sink: TieredBackend) -> None:
        self.name = name
        self.sink = sink
        self.published: list[list[str] | None] = []
        self.starts = 0
        self.closed = False
        self.forks = 0

    def publish(self, keys: Sequence[str] | None) -> None:
        self.published.append(None if keys is None else list(keys))

    def start(self) -> None:
        self.starts += 1

    def close(self) -> None:
        self.closed = True

    def after_fork(self) -> None:
        self.forks += 1


class Shared(MemoryBackend):
    """A shared backend stand-in: it can publish (so the tier gets a channel), records the
    calls that reach it, and runs ``during`` inside the next read or write (a message
    arriving while the call is in flight)."""

    def __init__(self, clock: FakeClock, namespace: str | None = "app:") -> None:
        super().__init__(threshold=0, clock=clock)
        if namespace is not None:
            self.namespace = namespace
        self.calls: list[str] = []
        self.during: Callable[[], None] | None = None
        self.failing = False
        self.closed = False

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.failing:
            raise BackendError("timed out")
        during, self.during = self.during, None
        if during is not None:
            during()

    def get(self, key: str) -> bytes | Miss:
        value = super().get(key)
        self._call("get")
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        values = super().get_many(keys)
        self._call("get_many")
        return values

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        super().set(key, value, ttl)
        self._call("set")

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        super().set_many(items, ttl)
        self._call("set_many")

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        added = super().add(key, value, ttl)
        self._call("add")
        return added

    def delete(self, key: str) -> bool:
        self._call("delete")
        return super().delete(key)

    def delete_many(self, keys: Sequence[str]) -> int:
        self._call("delete_many")
        return super().delete_many(keys)

    def clear(self) -> None:
        self._call("clear")
        super().clear()

    def incr(self, key: str, delta: int, ttl: TTL) -> int:
        self._call("incr")
        current = super().get(key)
        value = (0 if current is MISS else int(current)) + delta
        super().set(key, str(value).encode(), ttl)
        return value

    def close(self) -> None:
        self.closed = True

    def publish(self, channel: str, message: bytes) -> None:
        raise AssertionError("the recording channel publishes")

    def subscribe(self, channel: str) -> Iterator[bytes]:
        raise AssertionError("the recording channel subscribes")


@pytest.fixture(autouse=True)
def recording_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tier_module, "Channel", RecordingChannel)


@pytest.fixture
def remote(clock: FakeClock) -> Shared:
    return Shared(clock)


@pytest.fixture
def tier(remote: Shared, clock: FakeClock) -> TieredBackend:
    tier = TieredBackend(remote, clock=clock)  # type: ignore[arg-type]
    tier.resync()  # the channel is subscribed
    remote.calls.clear()
    return tier


def channel(tier: TieredBackend) -> RecordingChannel:
    assert isinstance(tier.channel, RecordingChannel)
    return tier.channel


# -- reads -----------------------------------------------------------------------------------


def test_a_read_value_is_kept_and_served_locally(tier: TieredBackend, remote: Shared) -> None:
    remote.set("k", b"v", None)
    remote.calls.clear()
    assert tier.get("k") == b"v"
    assert [tier.get("k") for _ in range(3)] == [b"v"] * 3
    assert remote.calls == ["get"]
    assert tier.get("absent") is MISS
    assert tier.get("absent") is MISS  # a miss is not kept
    assert remote.calls == ["get", "get", "get"]


def test_a_read_that_an_invalidation_overtook_is_not_kept(
    tier: TieredBackend, remote: Shared
) -> None:
    remote.set("k", b"old", None)
    remote.during = lambda: tier.invalidate(["k"])  # the message comes mid-read
    assert tier.get("k") == b"old"
    assert tier.local.get("k") is MISS
    remote.during = lambda: tier.invalidate(["other"])  # any invalidation: coarse, safe
    assert tier.get_many(["k"]) == [b"old"]
    assert tier.local.get("k") is MISS
    assert tier.get("k") == b"old"
    assert tier.local.get("k") == b"old"


def test_get_many_fetches_only_what_the_tier_lacks_in_order(
    tier: TieredBackend, remote: Shared
) -> None:
    remote.set_many({"a": b"1", "b": b"2", "c": b"3"}, None)
    assert tier.get("b") == b"2"
    remote.calls.clear()
    assert tier.get_many(["a", "b", "x", "c"]) == [b"1", b"2", MISS, b"3"]
    assert remote.calls == ["get_many"]
    assert [tier.local.get(k) for k in "abcx"] == [b"1", b"2", b"3", MISS]
    assert tier.get_many(["c", "a", "b"]) == [b"3", b"1", b"2"]
    assert remote.calls == ["get_many"]  # all local: no round trip
    assert tier.get_many(["x"]) == [MISS]


def test_a_copy_lives_at_most_the_cap_or_its_own_ttl(remote: Shared, clock: FakeClock) -> None:
    tier = TieredBackend(remote, ttl=10, clock=clock)  # type: ignore[arg-type]
    tier.resync()
    tier.set("capped", b"1", None)
    tier.set("short", b"2", 4)
    tier.set_many({"many": b"3"}, 30)
    assert tier.add("added", b"4", 5)
    remote.set_many({"read": b"5"}, None)
    assert tier.get("read") == b"5"
    clock.advance(4.5)
    assert tier.local.get("short") is MISS
    assert tier.local.get("added") == b"4"
    clock.advance(1)
    assert tier.local.get("added") is MISS
    assert [tier.local.get(k) for k in ("capped", "many", "read")] == [b"1", b"3", b"5"]
    clock.advance(5)  # 10.5 s: past the cap
    assert [tier.local.get(k) for k in ("capped", "many", "read")] == [MISS] * 3


def test_the_default_bounds(remote: Shared, clock: FakeClock) -> None:
    tier = TieredBackend(remote, clock=clock)  # type: ignore[arg-type]
    assert (tier.max_entries, tier.max_bytes, tier.ttl) == (10_000, 64 * 2**20, 60.0)
    tier.resync()
    tier.set("k", b"v", None)
    clock.advance(59)
    assert tier.local.get("k") == b"v"
    clock.advance(2)
    assert tier.local.get("k") is MISS


def test_the_tier_holds_at_most_its_entries_and_bytes(remote: Shared, clock: FakeClock) -> None:
    by_count = TieredBackend(remote, max_entries=2, clock=clock)  # type: ignore[arg-type]
    by_count.resync()
    for key in "abc":
        by_count.set(key, b"x", None)
    assert len(by_count.local) == 2
    assert by_count.local.get("a") is MISS
    by_size = TieredBackend(remote, max_bytes=2500, clock=clock)  # type: ignore[arg-type]
    by_size.resync()
    for key in "abc":
        by_size.set(key, b"y" * 1000, None)
    assert by_size.local.size_in_bytes <= 2500
    assert by_size.local.get("a") is MISS
    unbounded = TieredBackend(remote, max_bytes=None, clock=clock)  # type: ignore[arg-type]
    assert unbounded.max_bytes is None
    unbounded.resync()
    unbounded.set("big", b"z" * 2**20, None)
    assert unbounded.local.get("big") == b"z" * 2**20


# -- writes ----------------------------------------------------------------------------------


def test_writes_go_to_the_remote_are_kept_and_published(
    tier: TieredBackend, remote: Shared
) -> None:
    tier.set("a", b"1", None)
    tier.set_many({"b": b"2", "c": b"3"}, None)
    assert tier.add("d", b"4", None)
    assert [remote.get(k) for k in "abcd"] == [b"1", b"2", b"3", b"4"]
    assert [tier.local.get(k) for k in "abcd"] == [b"1", b"2", b"3", b"4"]
    assert channel(tier).published == [["a"], ["b", "c"], ["d"]]


def test_an_add_that_finds_the_key_keeps_and_publishes_nothing(
    tier: TieredBackend, remote: Shared
) -> None:
    remote.set("k", b"theirs", None)
    assert not tier.add("k", b"mine", None)
    assert tier.local.get("k") is MISS
    assert channel(tier).published == []
    assert tier.get("k") == b"theirs"


def test_removals_drop_the_copies_and_are_published(tier: TieredBackend, remote: Shared) -> None:
    tier.set_many({"a": b"1", "b": b"2", "c": b"3", "d": b"4"}, None)
    channel(tier).published.clear()
    assert tier.delete("a")
    assert not tier.delete("a")
    assert tier.delete_many(["b", "c", "zz"]) == 2
    assert [tier.local.get(k) for k in "abc"] == [MISS] * 3
    assert tier.local.get("d") == b"4"
    tier.clear()
    assert len(tier.local) == 0
    assert remote.get("d") is MISS
    assert channel(tier).published == [["a"], ["a"], ["b", "c", "zz"], None]


def test_a_write_overtaken_by_another_is_dropped(tier: TieredBackend, remote: Shared) -> None:
    for write in (
        lambda: tier.set("k", b"first", None),
        lambda: tier.set_many({"k": b"first"}, None),
        lambda: tier.add("k", b"first", None),
    ):
        tier.set("k", b"old", None)
        remote.delete("k")
        remote.during = lambda: tier.invalidate(["k"])  # someone wrote k meanwhile
        write()
        assert tier.local.get("k") is MISS
        assert channel(tier).published[-1] == ["k"]  # the others still hear of it


def test_a_failed_write_publishes_nothing_and_a_failed_clear_empties_the_tier(
    tier: TieredBackend, remote: Shared
) -> None:
    tier.set_many({"a": b"1", "b": b"2"}, None)
    published = list(channel(tier).published)
    remote.failing = True
    for write in (
        lambda: tier.set("a", b"x", None),
        lambda: tier.set_many({"a": b"x"}, None),
        lambda: tier.add("a", b"x", None),
        lambda: tier.delete("a"),
        lambda: tier.delete_many(["a"]),
        lambda: tier.incr("a", 1, None),
    ):
        with pytest.raises(BackendError):
            write()
    assert tier.local.get("b") == b"2"
    with pytest.raises(BackendError):
        tier.clear()  # it may have been made: nothing is kept
    assert len(tier.local) == 0
    assert channel(tier).published == published  # the store replays, and publishes then


def test_a_counter_goes_to_the_remote_and_its_copies_are_dropped(
    tier: TieredBackend, remote: Shared
) -> None:
    assert isinstance(tier, SupportsIncrement)
    tier.set("n", b"1", None)
    assert tier.incr("n", 2, None) == 3
    assert tier.local.get("n") is MISS
    assert tier.get("n") == b"3"
    assert channel(tier).published[-1] == ["n"]
    remote.failing = True
    tier.local.set("n", b"3", None)
    with pytest.raises(BackendError):
        tier.incr("n", 1, None)
    assert tier.local.get("n") is MISS


# -- the channel's part ----------------------------------------------------------------------


def test_reads_bypass_the_tier_until_subscribed(remote: Shared, clock: FakeClock) -> None:
    tier = TieredBackend(remote, clock=clock)  # type: ignore[arg-type]
    assert not tier.synced
    remote.set_many({"a": b"1", "b": b"2"}, None)
    assert tier.get("a") == b"1"
    assert tier.get_many(["a", "b"]) == [b"1", b"2"]
    assert len(tier.local) == 0
    assert channel(tier).starts == 2  # each bypassed read makes sure the listener runs
    tier.set("c", b"3", None)
    assert len(tier.local) == 0  # nothing kept while unwatched
    assert channel(tier).published == [["c"]]
    assert not tier.wait_synced(0)
    assert channel(tier).starts == 3
    tier.resync()
    assert tier.synced
    assert tier.wait_synced(0)
    assert tier.get("a") == b"1"
    assert tier.local.get("a") == b"1"


def test_losing_the_channel_empties_and_bypasses_the_tier(
    tier: TieredBackend, remote: Shared
) -> None:
    tier.set("k", b"1", None)
    remote.during = tier.lost  # lost while a read is in flight
    assert tier.get("other") is MISS
    assert not tier.synced
    assert not tier.wait_synced(0)
    assert len(tier.local) == 0
    remote.set("other", b"2", None)
    assert tier.get("other") == b"2"
    assert len(tier.local) == 0
    tier.resync()
    assert tier.get("other") == b"2"
    assert tier.local.get("other") == b"2"


def test_a_resync_empties_the_tier(tier: TieredBackend) -> None:
    tier.set("k", b"1", None)
    epoch = tier.epoch
    tier.resync()
    assert tier.synced
    assert len(tier.local) == 0
    assert tier.epoch != epoch


def test_invalidations_drop_keys_or_everything(tier: TieredBackend) -> None:
    tier.set_many({"a": b"1", "b": b"2", "c": b"3"}, None)
    published = list(channel(tier).published)
    tier.invalidate(["a", "b"])
    assert [tier.local.get(k) for k in "abc"] == [MISS, MISS, b"3"]
    tier.invalidate(None)
    assert len(tier.local) == 0
    assert channel(tier).published == published  # heard, not repeated


def test_without_a_channel_the_tier_is_used_at_once(clock: FakeClock) -> None:
    remote = MemoryBackend(threshold=0, clock=clock)
    tier = TieredBackend(remote, clock=clock)
    assert tier.channel is None
    assert tier.synced
    assert tier.wait_synced(0)
    remote.set("k", b"v", None)
    assert tier.get("k") == b"v"
    assert tier.local.get("k") == b"v"
    tier.set("w", b"x", None)
    tier.delete("k")
    assert tier.local.get("w") == b"x"
    tier.close()
    assert len(tier.local) == 0


def test_the_channel_is_named_after_the_namespace_or_as_told(remote: Shared) -> None:
    assert channel(TieredBackend(remote)).name == "flask_stash:tier:app:"  # type: ignore[arg-type]
    named = TieredBackend(remote, channel="mine")  # type: ignore[arg-type]
    assert channel(named).name == "mine"
    assert channel(named).sink is named
    anonymous = TieredBackend(Shared(FakeClock(), namespace=None))  # type: ignore[arg-type]
    assert channel(anonymous).name == "flask_stash:tier:"
    assert not hasattr(anonymous, "namespace")


def test_a_channel_name_needs_a_backend_that_publishes() -> None:
    message = (
        "an invalidation channel needs a backend with publish/subscribe; MemoryBackend has none"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        TieredBackend(MemoryBackend(), channel="mine")


def test_close_stops_the_channel_empties_the_tier_and_closes_the_remote(
    tier: TieredBackend, remote: Shared
) -> None:
    tier.set("k", b"1", None)
    epoch = tier.epoch
    tier.close()
    assert channel(tier).closed
    assert remote.closed
    assert len(tier.local) == 0
    assert tier.epoch != epoch


def test_a_forked_child_starts_empty_and_bypassed(tier: TieredBackend, remote: Shared) -> None:
    tier.set("k", b"1", None)
    epoch = tier.epoch
    tier.after_fork()
    assert len(tier.local) == 0
    assert tier.epoch != epoch
    assert not tier.synced
    assert not tier.wait_synced(0)
    assert channel(tier).forks == 1
    assert tier.get("k") == b"1"  # from the remote
    assert len(tier.local) == 0
    tier.resync()
    assert tier.get("k") == b"1"
    assert tier.local.get("k") == b"1"


def test_a_forked_child_without_a_channel_uses_its_tier_at_once(clock: FakeClock) -> None:
    tier = TieredBackend(MemoryBackend(threshold=0, clock=clock), max_entries=2, clock=clock)
    tier.set("k", b"1", None)
    tier.after_fork()
    assert tier.synced
    assert tier.wait_synced(0)
    assert len(tier.local) == 0
    for key in "abc":
        tier.set(key, b"x", None)
    assert len(tier.local) == 2


# -- what the store sees ---------------------------------------------------------------------


def test_the_remote_abilities_and_attributes_show_through(remote: Shared) -> None:
    remote.atomic_add = True  # type: ignore[attr-defined]
    remote.max_key_length = 250  # type: ignore[misc]
    tier = TieredBackend(remote)  # type: ignore[arg-type]
    assert tier.namespace == "app:"  # type: ignore[attr-defined]
    assert tier.atomic_add is True  # type: ignore[attr-defined]
    assert tier.max_key_length == 250
    assert tier.shares_stored_bytes is True
    assert not isinstance(tier, SupportsLock)  # exactly the remote's abilities
    remote.set_many({"app:a": b"1", "app:b": b"2", "x": b"3"}, None)
    assert sorted(tier.scan("app:")) == ["app:a", "app:b"]  # type: ignore[attr-defined]
    assert tier.evictions == remote.evictions  # type: ignore[attr-defined]


def test_locks_are_the_remotes(tmp_path: Path) -> None:
    remote = FileSystemBackend(str(tmp_path))
    tier = TieredBackend(remote)
    assert isinstance(tier, SupportsLock)
    assert tier.acquire_lock("lock", "me", 5)
    assert not remote.acquire_lock("lock", "other", 5)
    assert tier.release_lock("lock", "me")
    assert remote.acquire_lock("lock", "other", 5)


class Named(NullBackend):
    def __repr__(self) -> str:
        return "Named('shelf')"


def test_a_remote_without_abilities_lends_none() -> None:
    plain = TieredBackend(Named())
    assert not isinstance(plain, SupportsIncrement)
    assert not hasattr(plain, "namespace")
    assert repr(plain) == "TieredBackend(Named('shelf'))"


# -- tiered(): CACHE_LOCAL_TIER ----------------------------------------------------------------


def test_no_settings_no_tier(remote: Shared) -> None:
    assert tiered(remote, None) is remote  # type: ignore[arg-type]


def test_settings_shape_the_tier(remote: Shared) -> None:
    settings = TierSettings(max_entries=5, max_bytes=1234, ttl=7, channel="c")
    shared = CountingBackend(remote)  # not a MemoryBackend: shared as far as tiered() sees
    tier = tiered(shared, settings)
    assert isinstance(tier, TieredBackend)
    assert tier.remote is shared
    assert (tier.max_entries, tier.max_bytes, tier.ttl) == (5, 1234, 7.0)
    assert channel(tier).name == "c"


@pytest.mark.parametrize("make", [MemoryBackend, NullBackend])
def test_a_backend_of_this_process_gets_no_tier(make: Callable[[], object]) -> None:
    backend = make()
    message = (
        f"CACHE_LOCAL_TIER needs a shared backend (Redis, memcached, file system); "
        f"{type(backend).__name__} keeps its entries in this process already"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        tiered(backend, TierSettings())  # type: ignore[arg-type]


def test_a_tier_gets_no_second_tier(remote: Shared) -> None:
    with pytest.raises(ConfigurationError, match="TieredBackend keeps its entries"):
        tiered(TieredBackend(remote), TierSettings())  # type: ignore[arg-type]


def test_cachelib_simple_cache_gets_no_tier_its_file_cache_does(tmp_path: object) -> None:
    cachelib = pytest.importorskip("cachelib")
    from flask_stash.core.backends.cachelib import CachelibBackend

    with pytest.raises(ConfigurationError, match="CachelibBackend keeps its entries"):
        tiered(CachelibBackend(cachelib.SimpleCache()), TierSettings())
    files = CachelibBackend(cachelib.FileSystemCache(str(tmp_path)))
    assert isinstance(tiered(files, TierSettings()), TieredBackend)


def test_replica_reads_get_no_tier(remote: Shared) -> None:
    remote.reads_from_replicas = True  # type: ignore[attr-defined]
    assert isinstance(tiered(CountingBackend(Shared(FakeClock())), TierSettings()), TieredBackend)
    message = (
        "CACHE_LOCAL_TIER cannot be combined with read_from_replicas: a replica can "
        "answer with the value an invalidation just replaced, and the tier would keep it"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        tiered(CountingBackend(remote), TierSettings())


# -- races a read can lose (the epoch) --------------------------------------------------------


def moves(tier: TieredBackend) -> dict[str, Callable[[], None]]:
    """What can happen while a read is in flight, each moving the epoch."""
    return {
        "invalidation": lambda: tier.invalidate(["elsewhere"]),
        "write": lambda: tier.set("written", b"w", None),
        "lost": tier.lost,
        "back": tier.resync,
        "close": tier.close,
    }


@pytest.mark.parametrize(
    "events",
    [
        ("invalidation", "write"),
        ("write", "invalidation"),
        ("lost", "back"),
        ("close", "invalidation"),
        ("close", "write"),
    ],
)
def test_a_read_overtaken_by_any_two_events_is_not_kept(
    remote: Shared, clock: FakeClock, events: tuple[str, ...]
) -> None:
    remote.set("k", b"old", None)
    for earlier in range(4):  # whatever the epoch the read starts at
        tier = TieredBackend(remote, clock=clock)  # type: ignore[arg-type]
        tier.resync()
        for _ in range(earlier):
            tier.invalidate(["unrelated"])
        remote.during = lambda: [moves(tier)[event]() for event in events]  # noqa: B023
        assert tier.get("k") == b"old"
        assert tier.local.get("k") is MISS, (events, earlier)


def test_the_fork_hook_holds_the_tier_weakly(remote: Shared) -> None:
    tier = TieredBackend(remote)  # type: ignore[arg-type]
    tier.resync()
    tier.set("k", b"1", None)
    ref = weakref.ref(tier)
    tier_module._after_fork(ref)  # what os.register_at_fork runs in a child
    assert not tier.synced
    assert len(tier.local) == 0
    del tier
    gc.collect()
    assert ref() is None
    tier_module._after_fork(ref)  # a tier gone meanwhile: nothing to do


# -- a failed write drops its own keys only ----------------------------------------------------


@pytest.mark.parametrize("write", ["set", "set_many", "add", "delete", "delete_many", "incr"])
def test_a_failed_write_drops_only_its_keys(
    tier: TieredBackend, remote: Shared, write: str
) -> None:
    tier.set_many({"mine": b"1", "other": b"2"}, None)
    remote.failing = True
    attempts: dict[str, Callable[[], object]] = {
        "set": lambda: tier.set("mine", b"x", None),
        "set_many": lambda: tier.set_many({"mine": b"x"}, None),
        "add": lambda: tier.add("mine", b"x", None),
        "delete": lambda: tier.delete("mine"),
        "delete_many": lambda: tier.delete_many(["mine"]),
        "incr": lambda: tier.incr("mine", 1, None),
    }
    with pytest.raises(BackendError):
        attempts[write]()
    assert tier.local.get("mine") is MISS
    assert tier.local.get("other") == b"2"


def test_writes_keep_their_ttl_in_the_remote_and_the_tier(
    tier: TieredBackend, remote: Shared, clock: FakeClock
) -> None:
    tier.set("one", b"1", 4)
    tier.set_many({"many": b"2"}, 4)
    assert tier.add("added", b"3", 4)
    assert tier.incr("counter", 5, 4) == 5
    clock.advance(4.5)
    for key in ("one", "many", "added"):
        assert tier.local.get(key) is MISS  # the entry's own TTL, under the cap
    for key in ("one", "many", "added", "counter"):
        assert remote.get(key) is MISS


@pytest.mark.parametrize("bound", ["max_entries", "max_bytes"])
def test_a_bad_bound_is_named(remote: Shared, bound: str) -> None:
    message = f"in-process tier {bound} must be a positive integer: 0"
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        TieredBackend(remote, **{bound: 0})  # type: ignore[arg-type]

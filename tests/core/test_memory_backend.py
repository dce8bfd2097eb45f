from __future__ import annotations

import random
import sys
import threading
from collections import OrderedDict

import pytest

from flask_stash.core.api import MISS
from flask_stash.core.backends import memory
from flask_stash.core.backends.memory import ENTRY_OVERHEAD, MemoryBackend
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.stamps import LocalStamps
from flask_stash.testing import FakeClock


def test_evicts_least_recently_used_beyond_threshold(clock: FakeClock) -> None:
    backend = MemoryBackend(threshold=3, clock=clock)
    for key in "abc":
        backend.set(key, key.encode(), None)
    assert backend.get("a") == b"a"  # "b" is now the least recently used
    backend.set("d", b"d", None)
    assert len(backend) == 3
    assert backend.get("b") is MISS
    assert backend.get_many(["a", "c", "d"]) == [b"a", b"c", b"d"]


def test_evictions_count_live_entries_dropped_for_room(clock: FakeClock) -> None:
    backend = MemoryBackend(threshold=2, clock=clock)
    assert backend.evictions() == 0
    backend.set("gone", b"x", 1)
    clock.advance(2)
    for key in "abc":
        backend.set(key, key.encode(), None)
    assert backend.evictions() == 1  # "a" went for room; the expired entry is not counted
    backend.set("d", b"d", None)
    backend.set("e", b"e", None)
    assert backend.evictions() == 3


def test_bounded_by_bytes(clock: FakeClock) -> None:
    per_entry = 1 + 100 + ENTRY_OVERHEAD
    backend = MemoryBackend(threshold=0, max_bytes=per_entry * 4, clock=clock)
    for key in "abcdef":
        backend.set(key, b"x" * 100, None)
    assert len(backend) == 4
    assert backend.size_in_bytes <= backend.max_bytes  # type: ignore[operator]
    assert backend.get_many(list("ab")) == [MISS, MISS]


def test_value_larger_than_budget_is_refused_without_flushing(clock: FakeClock) -> None:
    backend = MemoryBackend(threshold=0, max_bytes=1000, clock=clock)
    backend.set("small", b"s", None)
    backend.set("huge", b"x" * 5000, None)
    assert backend.get("huge") is MISS
    assert backend.get("small") == b"s"


def test_expired_entries_are_never_served_and_free_space(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set("k", b"v", 10)
    clock.advance(10)
    assert backend.get("k") is MISS
    assert len(backend) == 0
    assert backend.size_in_bytes == 0


def test_overwrite_keeps_byte_accounting_exact(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set("k", b"x" * 10, None)
    backend.set("k", b"x" * 20, None)
    assert backend.size_in_bytes == 1 + 20 + ENTRY_OVERHEAD
    backend.delete("k")
    assert backend.size_in_bytes == 0


def test_increment_keeps_existing_expiry(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    assert backend.incr("n", 2, 10) == 2
    clock.advance(5)
    assert backend.incr("n", 1, 100) == 3
    clock.advance(6)
    assert backend.get("n") is MISS


def test_increment_refuses_non_integers(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set("k", b"text", None)
    with pytest.raises(TypeError, match="does not hold an integer"):
        backend.incr("k", 1, None)
    assert backend.get("k") == b"text"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": -1}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": -5}, "max_bytes"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MemoryBackend(**kwargs)  # type: ignore[arg-type]


def test_values_must_be_bytes() -> None:
    with pytest.raises(TypeError, match="bytes"):
        MemoryBackend().set("k", "text", None)  # type: ignore[arg-type]


def test_eight_threads_hammering_see_only_valid_values() -> None:
    backend = MemoryBackend(threshold=50)
    keys = [f"key{i}" for i in range(100)]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []
    wrong: list[tuple[str, bytes]] = []

    def value_for(key: str, n: int) -> bytes:
        return f"{key}|{n}".encode()

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        try:
            for n in range(5000):
                key = rng.choice(keys)
                op = rng.random()
                if op < 0.4:
                    backend.set(key, value_for(key, n), rng.choice([None, 5.0]))
                elif op < 0.5:
                    backend.add(key, value_for(key, n), None)
                elif op < 0.6:
                    backend.delete(key)
                elif op < 0.7:
                    backend.incr(f"counter{seed}", 1, None)
                else:
                    for k, got in zip(
                        [key, keys[0]], backend.get_many([key, keys[0]]), strict=True
                    ):
                        if got is not MISS and not got.startswith(f"{k}|".encode()):
                            wrong.append((k, got))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert wrong == []
    assert len(backend) <= 50


# -- boundaries: every time comparison and size limit, exactly at the limit ----------------


def test_defaults_match_simplecache() -> None:
    backend = MemoryBackend()
    assert backend.threshold == 500
    assert backend.default_timeout == 300
    assert backend.max_bytes is None
    assert MemoryBackend(default_timeout=None).default_timeout is None


def test_an_entry_expires_exactly_at_its_ttl_on_every_read(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set("a", b"1", 10)
    backend.set_many({"b": b"2", "c": b"3"}, 10)
    clock.advance(9.999)
    assert backend.get_many(["a", "b", "c"]) == [b"1", b"2", b"3"]
    assert sorted(backend.scan("")) == ["a", "b", "c"]
    assert not backend.add("a", b"new", None)
    clock.advance(0.001)  # now == expiry: gone
    assert sorted(backend.scan("")) == []
    assert backend.get_many(["b", "c"]) == [MISS, MISS]
    assert backend.get("a") is MISS
    assert len(backend) == 0  # expired entries read by get_many are dropped, not kept
    assert backend.size_in_bytes == 0


def test_set_many_applies_its_ttl(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set_many({"a": b"1", "b": b"2"}, 5)
    backend.set_many({"c": b"3"}, None)
    clock.advance(5)
    assert backend.get_many(["a", "b", "c"]) == [MISS, MISS, b"3"]


def test_get_many_drops_expired_entries_from_memory(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set("old", b"x" * 50, 1)
    backend.set("live", b"y", None)
    clock.advance(1)
    assert backend.get_many(["old", "live"]) == [MISS, b"y"]
    assert len(backend) == 1
    assert backend.size_in_bytes == len("live") + 1 + ENTRY_OVERHEAD


def test_an_expired_counter_starts_again_with_the_new_ttl(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.incr("n", 5, 10)
    clock.advance(10)
    assert backend.incr("n", 1, 3) == 1
    clock.advance(2.999)
    assert backend.get("n") == b"1"
    clock.advance(0.001)
    assert backend.get("n") is MISS


def test_scan_lists_live_keys_with_the_prefix(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set("p:a", b"1", 5)
    backend.set("p:b", b"1", None)
    backend.set("q:c", b"1", 5)
    assert sorted(backend.scan("p:")) == ["p:a", "p:b"]
    clock.advance(5)
    assert sorted(backend.scan("p:")) == ["p:b"]


def test_an_entry_of_exactly_max_bytes_is_kept_one_byte_more_is_refused(
    clock: FakeClock,
) -> None:
    budget = 1 + 100 + ENTRY_OVERHEAD
    backend = MemoryBackend(threshold=0, max_bytes=budget, clock=clock)
    backend.set("k", b"x" * 100, None)
    assert backend.get("k") == b"x" * 100
    assert backend.size_in_bytes == budget
    backend.set("k", b"x" * 101, None)
    assert backend.get("k") is MISS
    assert backend.size_in_bytes == 0


def test_entries_filling_max_bytes_exactly_all_stay(clock: FakeClock) -> None:
    per_entry = 1 + 10 + ENTRY_OVERHEAD
    backend = MemoryBackend(threshold=0, max_bytes=per_entry * 3, clock=clock)
    for key in "abc":
        backend.set(key, b"x" * 10, None)
    assert backend.get_many(list("abc")) == [b"x" * 10] * 3
    backend.set("d", b"x", None)  # one byte more than the budget left: evicts "a" only
    assert backend.get_many(list("abcd")) == [MISS, b"x" * 10, b"x" * 10, b"x"]
    assert backend.size_in_bytes <= per_entry * 3


def test_exactly_threshold_entries_stay(clock: FakeClock) -> None:
    backend = MemoryBackend(threshold=2, clock=clock)
    backend.set("a", b"1", None)
    backend.set("b", b"2", None)
    assert len(backend) == 2
    backend.set("c", b"3", None)
    assert backend.get_many(["a", "b", "c"]) == [MISS, b"2", b"3"]


def test_an_oversized_write_leaves_no_old_value_readable(clock: FakeClock) -> None:
    """The caller meant to replace the value: serving the previous one would be stale."""
    backend = MemoryBackend(threshold=0, max_bytes=1000, clock=clock)
    backend.set("k", b"old", None)
    backend.set_many({"k": b"x" * 5000}, None)
    assert backend.get("k") is MISS
    assert backend.size_in_bytes == 0
    backend.set("k", b"old", None)
    backend.set("k", b"x" * 5000, None)
    assert backend.get("k") is MISS
    assert len(backend) == 0


def test_clear_resets_the_byte_count(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set("k", b"v", None)
    backend.clear()
    assert backend.size_in_bytes == 0
    backend.set("k", b"v", None)
    assert backend.size_in_bytes == 1 + 1 + ENTRY_OVERHEAD


def test_error_messages_name_the_problem() -> None:
    with pytest.raises(ConfigurationError, match=r"^max_bytes must be positive \(or None"):
        MemoryBackend(max_bytes=0)
    with pytest.raises(ConfigurationError, match=r"^threshold must be a non-negative integer"):
        MemoryBackend(threshold=-1)
    with pytest.raises(ConfigurationError, match=r"^max_bytes must be a non-negative integer"):
        MemoryBackend(max_bytes=-1)
    with pytest.raises(TypeError, match=r"^backend values are bytes, not str$"):
        MemoryBackend().set("k", "text", None)  # type: ignore[arg-type]
    backend = MemoryBackend()
    backend.set("k", b"text", None)
    with pytest.raises(TypeError, match=r"^cannot increment 'k': it does not hold an integer$"):
        backend.incr("k", 1, None)


# -- eviction order: expired entries go before any live one (as cachelib) -------------------


def test_crossing_the_entry_bound_drops_expired_entries_before_live_ones(
    clock: FakeClock,
) -> None:
    backend = MemoryBackend(threshold=3, clock=clock)
    backend.set("live", b"1", None)  # the least recently used, but it never expires
    backend.set("short", b"2", 10)
    backend.set("long", b"3", 20)
    clock.advance(10)  # "short" expires exactly now
    backend.set("new", b"4", None)  # 4 > 3 entries
    assert len(backend) == 3
    assert backend.get_many(["live", "long", "new"]) == [b"1", b"3", b"4"]

    clock.advance(10)  # "long", the last entry with an expiry, expires exactly now
    backend.set("newer", b"5", None)
    assert len(backend) == 3
    assert backend.get_many(["live", "new", "newer"]) == [b"1", b"4", b"5"]

    # Nothing left can expire: crossing the bound again evicts the least recently used.
    backend.set("newest", b"6", None)
    assert backend.get_many(["live", "new", "newer", "newest"]) == [MISS, b"4", b"5", b"6"]


def test_crossing_the_byte_bound_drops_expired_entries_before_live_ones(
    clock: FakeClock,
) -> None:
    per_entry = 1 + 10 + ENTRY_OVERHEAD
    backend = MemoryBackend(threshold=0, max_bytes=per_entry * 3, clock=clock)
    backend.set("a", b"x" * 10, None)  # the least recently used, but it never expires
    backend.set("b", b"x" * 10, 10)
    backend.set("c", b"x" * 10, 20)
    clock.advance(10)  # "b" expires exactly now
    backend.set("d", b"x" * 10, None)  # one entry over the byte budget
    assert backend.size_in_bytes == per_entry * 3
    assert backend.get_many(list("acd")) == [b"x" * 10] * 3


# -- the expiry sweep is O(n): only when a write crosses a bound and something has expired --
# An expired entry nobody reads still counts in len() and size_in_bytes until a sweep.


def test_no_expiry_sweep_below_or_exactly_at_the_entry_bound(clock: FakeClock) -> None:
    backend = MemoryBackend(threshold=4, clock=clock)
    backend.set("live", b"1", None)  # the least recently used, but it never expires
    backend.set("expired", b"2", 10)
    clock.advance(10)
    backend.set("b", b"3", None)  # 3 entries: below the bound
    assert len(backend) == 3
    backend.set("c", b"4", None)  # 4 entries: exactly at the bound
    assert len(backend) == 4
    backend.set("d", b"5", None)  # one over: the sweep drops "expired", no live entry goes
    assert len(backend) == 4
    assert backend.get_many(["live", "b", "c", "d"]) == [b"1", b"3", b"4", b"5"]


def test_no_expiry_sweep_below_or_exactly_at_the_byte_bound(clock: FakeClock) -> None:
    per_entry = 1 + 10 + ENTRY_OVERHEAD
    backend = MemoryBackend(threshold=0, max_bytes=per_entry * 4, clock=clock)
    backend.set("a", b"x" * 10, None)  # the least recently used, but it never expires
    backend.set("e", b"x" * 10, 10)
    clock.advance(10)
    backend.set("b", b"x" * 10, None)  # 3 entries' worth: below the budget
    assert backend.size_in_bytes == per_entry * 3
    backend.set("c", b"x" * 10, None)  # exactly the budget
    assert backend.size_in_bytes == per_entry * 4
    backend.set("d", b"x" * 10, None)  # one entry over: the sweep drops "e", no live entry goes
    assert backend.size_in_bytes == per_entry * 4
    assert backend.get_many(list("abcd")) == [b"x" * 10] * 4


# -- the lock-free read of a live entry ------------------------------------------------------


@pytest.fixture(params=[True, False], ids=["gil", "free-threaded"])
def read_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both read paths of ``get``: without the lock (GIL builds), and locked throughout."""
    monkeypatch.setattr(memory, "_GIL", request.param)
    return bool(request.param)


def test_get_serves_live_entries_and_drops_expired_ones(read_mode: bool, clock: FakeClock) -> None:
    backend = MemoryBackend(threshold=0, clock=clock)
    backend.set("live", b"1", None)
    backend.set("short", b"22", 10)
    assert backend.get("live") == b"1"
    assert backend.get("short") == b"22"
    assert backend.get("absent") is MISS
    clock.advance(10)
    assert backend.get("short") is MISS
    assert len(backend) == 1
    assert backend.size_in_bytes == len("live") + 1 + ENTRY_OVERHEAD


def test_get_marks_an_entry_recently_used(read_mode: bool, clock: FakeClock) -> None:
    backend = MemoryBackend(threshold=2, clock=clock)
    backend.set("a", b"1", None)
    backend.set("b", b"2", None)
    assert backend.get("a") == b"1"  # now "b" is the least recently used
    backend.set("c", b"3", None)
    assert backend.get("b") is MISS
    assert backend.get("a") == b"1"


def test_a_read_racing_a_delete_still_returns_what_it_read(
    read_mode: bool, clock: FakeClock
) -> None:
    class DeletedMeanwhile(OrderedDict[str, tuple[bytes, float | None, int]]):
        def move_to_end(self, key: str, last: bool = True) -> None:
            raise KeyError(key)  # as if a delete ran between the read and the touch

    backend = MemoryBackend(clock=clock)
    backend.set("k", b"v", None)
    backend._data = DeletedMeanwhile(backend._data)
    if read_mode:
        assert backend.get("k") == b"v"
    else:  # the locked path cannot race: the dictionary itself fails
        with pytest.raises(KeyError):
            backend.get("k")


def test_an_overwritten_key_is_never_missing_for_a_concurrent_reader() -> None:
    backend = MemoryBackend(threshold=0)
    backend.set("k", b"0", None)
    missing: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            if backend.get("k") is MISS:
                missing.append(1)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    readers = [threading.Thread(target=read) for _ in range(2)]
    try:
        for thread in readers:
            thread.start()
        for i in range(20_000):
            backend.set("k", str(i).encode(), None)
    finally:
        done.set()
        for thread in readers:
            thread.join()
        sys.setswitchinterval(interval)
    assert missing == []


def test_with_the_gil_a_live_entry_is_read_without_the_lock(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    class NoLock:
        def __enter__(self) -> None:
            raise AssertionError("the lock was taken")

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(memory, "_GIL", True)
    backend = MemoryBackend(clock=clock)
    backend.set("forever", b"1", None)
    backend.set("expiring", b"2", 60)
    backend._lock = NoLock()  # type: ignore[assignment]
    assert backend.get("forever") == b"1"
    assert backend.get("expiring") == b"2"


def test_each_memory_backend_keeps_its_own_version_stamps() -> None:
    first, second = MemoryBackend(), MemoryBackend()
    assert isinstance(first.local_stamps, LocalStamps)
    first.local_stamps.create(["f"])
    assert second.local_stamps.version(["f"]) is None


def test_get_all_answers_only_when_every_key_is_live(read_mode: bool, clock: FakeClock) -> None:
    backend = MemoryBackend(threshold=3, clock=clock)
    backend.set("a", b"1", None)
    backend.set("b", b"2", 10)
    backend.set("c", b"3", None)
    assert backend.get_all(["a", "b"]) == [b"1", b"2"]
    assert backend.get_all(["a", "absent"]) is None
    backend.set("d", b"4", None)  # evicts the least recently used: "c", not "a" or "b"
    assert backend.get("c") is MISS
    clock.advance(10)
    assert backend.get_all(["a", "b"]) is None  # "b" expired
    assert backend.get_all([]) == []

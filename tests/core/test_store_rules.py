"""The store's rules unit by unit, on a plain dict backend that records every call: what a
read fetches (entry and stamps in one round trip), version stamps and tags, the entries it
writes (exact fields and TTLs), pass markers, counters, and what a failing backend turns
into. A fake clock drives time."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from flask_stash.core import statsflush
from flask_stash.core.api import MISS, TTL, Miss
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.prefixed import CallablePrefixBackend
from flask_stash.core.entry import Entry
from flask_stash.core.errors import BackendError, SerializationError
from flask_stash.core.keys import hash_text
from flask_stash.core.serializers import JsonSerializer, PickleSerializer
from flask_stash.core.signing import CounterSeal
from flask_stash.core.stats import (
    BACKEND_SKIP,
    ERROR,
    KEY_MISMATCH,
    TAG_INVALIDATION,
    UNDECODABLE,
    WRITE,
)
from flask_stash.core.store import DECODED_MEMO_SIZE, TAG_KEY_MEMO, Store
from flask_stash.testing import FakeClock


class Plain:
    """A shared backend (no local stamps) of plain dicts, recording calls and TTLs."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.ttls: dict[str, TTL] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.failing: set[str] = set()

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.failing:
            raise BackendError(f"{name} failed")

    def get(self, key: str) -> bytes | Miss:
        self._call("get", key)
        return self.data.get(key, MISS)

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        self._call("get_many", tuple(keys))
        return [self.data.get(key, MISS) for key in keys]

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        self._call("set", key)
        self.data[key], self.ttls[key] = value, ttl

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        self._call("set_many", tuple(items))
        for key, value in items.items():
            self.data[key], self.ttls[key] = value, ttl

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        self._call("add", key)
        if key in self.data:
            return False
        self.data[key], self.ttls[key] = value, ttl
        return True

    def delete(self, key: str) -> bool:
        self._call("delete", key)
        return self.data.pop(key, None) is not None

    def delete_many(self, keys: Sequence[str]) -> int:
        self._call("delete_many", tuple(keys))
        return sum(self.data.pop(key, None) is not None for key in keys)

    def clear(self) -> None:
        self._call("clear")
        self.data.clear()

    def close(self) -> None:
        self._call("close")


class Counting(Plain):
    """With atomic counters (``SupportsIncrement``)."""

    def incr(self, key: str, delta: int, ttl: TTL) -> int:
        self._call("incr", key, delta, ttl)
        current = self.data.get(key, b"0")
        if not current.lstrip(b"-").isdigit():  # an entry: refused, as the backends do
            raise TypeError(f"cannot increment {key!r}: it does not hold an integer")
        value = int(current) + delta
        self.data[key], self.ttls[key] = str(value).encode(), ttl
        return value


@pytest.fixture
def plain() -> Plain:
    return Plain()


@pytest.fixture
def store(plain: Plain, clock: FakeClock) -> Store:
    return Store(plain, clock=clock, default_timeout=100, key_prefix="p:")


def entry_of(store: Store, bkey: str) -> Entry:
    return Entry.load(store.serializer.loads(store.backend.data[bkey]))  # type: ignore[attr-defined]


# -- construction -----------------------------------------------------------------------------


class Fronted(Plain):
    """A backend with another behind it, as an in-process tier has."""

    def __init__(self, remote: Plain) -> None:
        super().__init__()
        self.remote = remote


def test_the_shared_backend_is_the_one_behind_a_tier(plain: Plain) -> None:
    assert Store(plain).shared_backend is plain
    fronted = Fronted(plain)
    assert Store(fronted).shared_backend is plain


class Tenanted(Plain):
    """What a callable key prefix needs besides get/set: keys to list, counters, locks."""

    def scan(self, prefix: str) -> Iterator[str]:
        return iter([key for key in self.data if key.startswith(prefix)])

    def incr(self, key: str, delta: int, ttl: TTL) -> int:
        raise NotImplementedError

    def acquire_lock(self, name: str, token: str, lease: float) -> bool:
        raise NotImplementedError

    def release_lock(self, name: str, token: str) -> bool:
        raise NotImplementedError


def outside_a_request() -> str:
    raise RuntimeError("the tenant is known inside a request only")


def test_the_shared_backend_is_below_a_callable_key_prefix() -> None:
    # The statistics round runs outside requests: it must not call the prefix function.
    shared = Tenanted()
    assert Store(CallablePrefixBackend(shared, outside_a_request)).shared_backend is shared
    tier = Tenanted()
    tier.remote = shared  # type: ignore[attr-defined]  # as an in-process tier has
    # The prefix wrapper is built over the tier (flask_stash.backends.base).
    assert Store(CallablePrefixBackend(tier, outside_a_request)).shared_backend is shared


def test_a_store_defaults(plain: Plain) -> None:
    store = Store(plain)
    assert isinstance(store.serializer, PickleSerializer)
    assert store.serializer.signer is None
    assert store.entries_signed is False
    assert store.counters.scale == 1
    assert store.key_prefix == ""
    assert store.default_timeout == 300
    assert store.clock is time.time  # the backend has no clock of its own
    assert store.hash_method is hashlib.sha256
    assert store.policy.fail_open is True
    assert store.gate.name == "Plain"
    assert store.stampede.locks is False
    assert store.local_stamps is None
    assert store.shared_stats is None
    assert store._max_key is None
    assert store._decoded_limit == 0
    assert store.stats.readings() == {}


def test_a_store_takes_the_backends_clock_stamps_and_limits(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    store = Store(backend)
    assert store.clock is clock
    assert store.local_stamps is backend.local_stamps
    assert store._decoded_limit == DECODED_MEMO_SIZE
    assert store.key_alarm.clock() == clock()
    own = FakeClock(5.0)
    assert Store(backend, clock=own).clock is own


def test_a_signing_serializer_seals_counters_and_entries(plain: Plain) -> None:
    store = Store(plain, serializer=PickleSerializer(signing_key="s" * 32))
    assert store.entries_signed is True
    assert store.counters.scale > 1


def test_a_backend_that_ejects_failed_nodes_has_no_breaker_of_its_own(plain: Plain) -> None:
    plain.ejects_failed_nodes = True  # type: ignore[attr-defined]
    assert Store(plain).gate.breaker.threshold is None
    assert Store(Plain()).gate.breaker.threshold is not None


def test_an_overflowing_replay_queue_clears_the_backend(store: Store, plain: Plain) -> None:
    assert store.gate.pending.clear_all is not None
    store.gate.pending.clear_all()
    assert plain.calls == [("clear",)]


def test_a_locking_backend_shares_its_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    watched: list[Store] = []
    monkeypatch.setattr(statsflush, "watch", watched.append)

    class Locking(Plain):
        def acquire_lock(self, name: str, token: str, lease: float) -> bool:
            return True

        def release_lock(self, name: str, token: str) -> bool:
            return True

    store = Store(Locking())
    assert store.stampede.locks is True
    assert store.shared_stats is not None
    assert store.shared_stats.store is store
    assert watched == [store]
    plain_store = Store(Plain())
    assert watched == [store, plain_store]


def test_fail_open_false_is_passed_to_the_policy(plain: Plain) -> None:
    assert Store(plain, fail_open=False).policy.fail_open is False


@pytest.mark.parametrize(
    ("timeout", "seconds"), [(dt.timedelta(seconds=1.2), 2), (dt.timedelta(0), 0), (7, 7)]
)
def test_timedelta_timeouts_round_up_to_whole_seconds(
    plain: Plain, timeout: Any, seconds: int
) -> None:
    assert Store(plain, default_timeout=timeout).default_timeout == seconds


@pytest.mark.parametrize(("timeout", "kind"), [(True, "bool"), ("10", "str"), (None, "NoneType")])
def test_timeout_type_errors_name_the_type(plain: Plain, timeout: Any, kind: str) -> None:
    with pytest.raises(TypeError) as caught:
        Store(plain, default_timeout=timeout)
    assert str(caught.value) == f"timeout must be a number of seconds, not {kind}"


@pytest.mark.parametrize(("timeout", "shown"), [(-1, "-1"), (-0.5, "-0.5"), (float("nan"), "nan")])
def test_timeout_value_errors_show_the_value(plain: Plain, timeout: float, shown: str) -> None:
    with pytest.raises(ValueError) as caught:
        Store(plain, default_timeout=timeout)
    assert str(caught.value) == f"timeout must be >= 0 seconds (0 = never expire), got {shown}"


# -- keys -------------------------------------------------------------------------------------


def test_a_key_that_cannot_be_utf8_is_hashed(store: Store) -> None:
    bkey = store.backend_key("a\udcffb")
    assert bkey.startswith("p:#")
    assert bkey != store.backend_key("a\udcfeb")
    assert store.backend_key("é") == "p:é"  # not ASCII, but encodable: kept


def test_key_type_error_names_the_type(store: Store) -> None:
    with pytest.raises(TypeError) as caught:
        store.backend_key(b"k")  # type: ignore[arg-type]
    assert str(caught.value) == "cache keys are str, not bytes"


# -- entries written ------------------------------------------------------------------------


def test_an_entry_records_its_times_version_tags_and_cost(
    store: Store, plain: Plain, clock: FakeClock
) -> None:
    now = clock()
    blob = store.write_entry("p:k", "v", 10, 5, b"v1", (("t", "s"),), 0.25, scope="f")
    assert blob == plain.data["p:k"]
    assert entry_of(store, "p:k") == Entry("v", now, now + 10, now + 15, b"v1", (("t", "s"),), 0.25)
    assert plain.ttls["p:k"] == 15  # fresh, then stale
    assert store.stats.readings()[(WRITE, "f")] == (1, len(blob))


def test_keep_holds_an_entry_longer_than_it_is_servable(store: Store, plain: Plain) -> None:
    assert store.write_stored("p:k", "v", 10, stale=5, keep=20)
    assert plain.ttls["p:k"] == 35
    assert store.write_stored("p:f", "v", 0, stale=5, keep=20)  # forever stays forever
    assert plain.ttls["p:f"] is None
    assert store.write_stored("p:n", "v", 10, keep=0)
    assert plain.ttls["p:n"] == 10


def test_an_entry_without_expiry(store: Store, plain: Plain, clock: FakeClock) -> None:
    assert store.write("k", "v", 0, stale=5)
    assert entry_of(store, "p:k") == Entry("v", clock(), None, None)
    assert plain.ttls["p:k"] is None


def test_a_negative_stale_window_is_refused(store: Store) -> None:
    with pytest.raises(ValueError) as caught:
        store.write("k", "v", 10, stale=-1)
    assert str(caught.value) == "stale must be >= 0 seconds, got -1"
    assert store.write("k", "v", 10, stale=0)


def test_a_failed_write_counts_nothing(store: Store, plain: Plain) -> None:
    plain.failing.add("set")
    assert store.write_entry("p:k", "v", 10, scope="f") is None
    assert store.write_stored("p:k", "v", 10) is False
    assert (WRITE, "f") not in store.stats.readings()


def test_a_pass_marker_is_never_fresh(store: Store, plain: Plain, clock: FakeClock) -> None:
    now = clock()
    store.write_pass("p:k", "PASS", 10.0, b"v1")
    assert entry_of(store, "p:k") == Entry("PASS", now, now, now + 10.0, b"v1")
    assert plain.ttls["p:k"] == 10.0
    assert not entry_of(store, "p:k").is_fresh(now)
    plain.failing.add("set")
    store.write_pass("p:j", "PASS", 10.0, None)  # a failure is the gate's: no exception
    assert "p:j" not in plain.data


# -- reads: one round trip for the entry and its stamps ----------------------------------------


def test_a_read_without_families_is_one_get(store: Store, plain: Plain) -> None:
    store.write("k", "v")
    plain.calls.clear()
    entry, version = store.read("k")
    assert (entry.value, version) == ("v", None)  # type: ignore[union-attr]
    assert plain.calls == [("get", "p:k")]
    assert store.read("absent") == (MISS, None)


def test_a_read_with_one_family_fetches_its_stamp_in_the_same_get_many(
    store: Store, plain: Plain
) -> None:
    version = store.current_version(("p:fam",), None)
    assert version is not None
    assert plain.data["p:fam"] == version
    store.write("k", "v", version=version)
    plain.calls.clear()
    entry, found = store.read("k", ["fam"])
    assert plain.calls == [("get_many", ("p:k", "p:fam"))]
    assert (entry.value, found) == ("v", version)  # type: ignore[union-attr]
    assert store.bump_version("p:fam")
    entry, found = store.read("k", ["fam"])
    assert entry is MISS
    assert found == plain.data["p:fam"] != version
    plain.data["p:fam"] = b""
    assert store.read("k", ["fam"]) == (MISS, None)  # an empty stamp is no stamp


def test_a_read_with_two_families_needs_both_stamps(store: Store, plain: Plain) -> None:
    version = store.current_version(("p:a", "p:b"), None)
    assert version == plain.data["p:a"] + b"|" + plain.data["p:b"]
    store.write("k", "v", version=version)
    plain.calls.clear()
    entry, found = store.read("k", ["a", "b"])
    assert plain.calls == [("get_many", ("p:k", "p:a", "p:b"))]
    assert (entry.value, found) == ("v", version)  # type: ignore[union-attr]
    del plain.data["p:b"]  # an evicted stamp: the family is invalid, never resurrected
    assert store.read("k", ["a", "b"]) == (MISS, None)


def test_a_read_with_local_stamps(clock: FakeClock) -> None:
    store = Store(MemoryBackend(clock=clock), clock=clock)
    one = store.current_version(("f",), None)
    two = store.current_version(("f", "g"), None)
    assert one is not None
    assert two is not None
    store.write_stored("k1", 1, 10, version=one)
    store.write_stored("k2", 2, 10, version=two)
    assert store.read_stored("k1", ("f",))[1] == one
    assert store.read_stored("k2", ("f", "g"))[1] == two
    assert store.read_stored("k2", ("f", "g"))[0].value == 2  # type: ignore[union-attr]
    assert store.bump_version("g")
    assert store.read_stored("k2", ("f", "g"))[0] is MISS
    assert store.read_stored("k1", ("f",))[0].value == 1  # type: ignore[union-attr]


def test_a_failed_read_is_a_miss_reported_to_the_gate(store: Store, plain: Plain) -> None:
    store.write("k", "v")
    plain.failing.update({"get", "get_many"})
    assert store.read("k") == (MISS, None)
    assert store.read("k", ["fam"]) == (MISS, None)
    assert store.gate.breaker.health().failures == 2
    assert store.gate.troubled


def test_a_troubled_gate_recovers_on_the_next_good_read(store: Store, plain: Plain) -> None:
    store.write("k", "v")
    plain.failing.add("get")
    assert store.read("k") == (MISS, None)
    plain.failing.clear()
    assert store.read("k")[0].value == "v"  # type: ignore[union-attr]
    assert not store.gate.troubled
    assert store.gate.breaker.health().healthy


def test_an_open_breaker_skips_reads(store: Store, plain: Plain) -> None:
    store.write("k", "v")
    plain.failing.add("get")
    for _ in range(3):
        store.read("k")
    plain.failing.clear()
    plain.calls.clear()
    assert store.read("k") == (MISS, None)  # the breaker is open: not even tried
    assert plain.calls == []


# -- version stamps ---------------------------------------------------------------------------


def test_a_known_stamp_is_kept_and_missing_ones_are_created_once(
    store: Store, plain: Plain
) -> None:
    assert store.current_version((), None) is None
    assert store.current_version(("p:a",), b"known") == b"known"
    plain.calls.clear()
    first = store.current_version(("p:a",), None)
    assert first is not None
    assert len(first) == 32
    assert plain.calls == [("add", "p:a")]
    plain.calls.clear()
    assert store.current_version(("p:a",), None) == first  # another created it: read it
    assert plain.calls == [("add", "p:a"), ("get", "p:a")]


def test_stamps_that_fail_are_none(store: Store, plain: Plain) -> None:
    plain.failing.add("add")
    assert store.current_version(("p:a",), None) is None


def test_bumping_a_stamp_writes_a_new_one_forever(store: Store, plain: Plain) -> None:
    assert store.bump_version("p:a")
    first = plain.data["p:a"]
    assert len(first) == 32
    assert plain.ttls["p:a"] is None
    assert store.bump_version("p:a")
    assert plain.data["p:a"] != first
    plain.failing.add("set")
    assert store.bump_version("p:a") is False


# -- tags -------------------------------------------------------------------------------------


def test_tag_keys_are_prefixed_and_remembered(store: Store) -> None:
    assert store.tag_key("users") == "p:stash-tag:users"
    assert store._tag_keys == {"users": "p:stash-tag:users"}
    with pytest.raises(ValueError, match="empty"):
        store.tag_key("")
    for number in range(TAG_KEY_MEMO - 1):
        store.tag_key(f"t{number}")
    assert len(store._tag_keys) == TAG_KEY_MEMO
    store.tag_key("users")  # remembered: no growth
    assert len(store._tag_keys) == TAG_KEY_MEMO
    assert store.tag_key("one more") == "p:stash-tag:one more"
    assert store._tag_keys == {"one more": "p:stash-tag:one more"}  # full: started over


def test_invalidating_tags_bumps_each_and_counts_each(store: Store, plain: Plain) -> None:
    assert store.invalidate_tags(["a", "b"])
    assert set(plain.data) == {"p:stash-tag:a", "p:stash-tag:b"}
    assert store.stats.get(TAG_INVALIDATION) == 2
    plain.failing.add("set")
    assert store.invalidate_tags(["a", "b"]) is False
    assert store.stats.get(TAG_INVALIDATION) == 4
    assert store.invalidate_tags([]) is True


def test_one_failed_tag_fails_the_whole_invalidation(store: Store, plain: Plain) -> None:
    real_set = plain.set

    def set_(key: str, value: bytes, ttl: TTL) -> None:
        if key == "p:stash-tag:a":
            raise BackendError("down")
        real_set(key, value, ttl)

    plain.set = set_  # type: ignore[method-assign]
    assert store.invalidate_tags(["b", "a"]) is False  # the failing one last
    assert "p:stash-tag:b" in plain.data
    assert store.stats.get(TAG_INVALIDATION) == 2


def test_a_tagged_entry_records_its_stamps(store: Store, plain: Plain) -> None:
    assert store.set("k", "v", tags=["a", "b", "a"])
    entry = entry_of(store, "p:k")
    assert entry.tags == (
        ("p:stash-tag:a", plain.data["p:stash-tag:a"].decode()),
        ("p:stash-tag:b", plain.data["p:stash-tag:b"].decode()),
    )
    plain.calls.clear()
    assert store.get("k") == "v"
    assert plain.calls == [("get", "p:k"), ("get_many", ("p:stash-tag:a", "p:stash-tag:b"))]
    assert store.get_many(["k"]) == ["v"]
    del plain.data["p:stash-tag:b"]
    assert store.get("k") is MISS
    assert store.get_many(["k"]) == [MISS]


@pytest.mark.parametrize("forged", [b"a|b", b"\xff\xfe", b"", b"has space"])
def test_a_forged_tag_stamp_is_replaced_not_raised(
    store: Store, plain: Plain, forged: bytes
) -> None:
    plain.data["p:stash-tag:a"] = forged  # hostile bytes where a stamp should be
    assert store.set("k", "v", tags=["a", "b"])
    stamp = plain.data["p:stash-tag:a"]
    assert stamp != forged
    assert stamp.isalnum()
    assert store.get("k") == "v"


def test_a_stamp_forged_again_and_again_fails_the_write(store: Store, plain: Plain) -> None:
    plain.data["p:stash-tag:a"] = b"x|y"
    real_get_many = plain.get_many

    def forging(keys: Any) -> Any:
        return [b"x|y" if key == "p:stash-tag:a" else found
                for key, found in zip(keys, real_get_many(keys), strict=True)]  # fmt: skip

    plain.get = lambda key: b"x|y" if key == "p:stash-tag:a" else Plain.get(plain, key)  # type: ignore[method-assign]
    plain.get_many = forging  # type: ignore[method-assign]
    assert store.set("k", "v", tags=["a"]) is False
    assert plain.calls.count(("set", "p:stash-tag:a")) == 2  # replaced twice, then given up


def test_a_tagged_read_whose_stamps_fail_is_a_miss(store: Store, plain: Plain) -> None:
    assert store.set("k", "v", tags=["a"])
    plain.failing.add("get_many")
    assert store.get("k") is MISS


def test_a_tagged_set_whose_stamps_fail_stores_nothing(store: Store, plain: Plain) -> None:
    plain.failing.add("add")
    assert store.set("k", "v", tags=["a"]) is False
    assert "p:k" not in plain.data
    assert store.set("k", "v") is True  # untagged: no stamps needed


def test_tags_with_local_stamps(clock: FakeClock) -> None:
    store = Store(MemoryBackend(clock=clock), clock=clock)
    assert store.set("k", "v", tags=["a"])
    assert store.get("k") == "v"
    assert store.invalidate_tags(["a"])
    assert store.get("k") is MISS


# -- decoding ---------------------------------------------------------------------------------


def test_a_mismatched_signature_is_counted_and_raises_the_alarm(plain: Plain) -> None:
    writer = Store(plain, serializer=PickleSerializer(signing_key="a" * 32))
    reader = Store(plain, serializer=PickleSerializer(signing_key="b" * 32))
    writer.set("k", "v")
    assert reader.get("k") is MISS
    assert reader.stats.get(KEY_MISMATCH) == 1
    assert reader.stats.get(UNDECODABLE) == 1
    assert len(reader.key_alarm._times) == 1  # type: ignore[attr-defined]


def test_unsigned_entries_with_wrong_fields_are_misses(store: Store, plain: Plain) -> None:
    plain.data["p:k"] = store.serializer.dumps(("v", "not a time", None, None, None, (), 0.0))
    assert store.get("k") is MISS
    assert store.stats.get(UNDECODABLE) == 1


def test_immutable_values_of_an_in_process_backend_are_decoded_once(clock: FakeClock) -> None:
    store = Store(MemoryBackend(clock=clock), clock=clock)
    store.set("t", (1, "a"))
    store.set("l", [1])
    blob_t, blob_l = store.backend.get("t"), store.backend.get("l")
    first = store.decode(blob_t)
    assert store.decode(blob_t) is first
    assert store.read("t")[0] is first
    assert store.decode(blob_l) is not store.decode(blob_l)  # mutable: a copy per reader
    assert store.decode(MISS) is MISS


def test_the_decoded_memo_is_bounded(clock: FakeClock) -> None:
    store = Store(MemoryBackend(clock=clock), clock=clock)
    store._decoded_limit = 2
    blobs = [store.serializer.dumps(tuple(Entry(n, 0.0))) for n in range(3)]
    for blob in blobs[:2]:
        store.decode(blob)
    assert len(store._decoded) == 2
    store.decode(blobs[2])
    assert list(store._decoded) == [id(blobs[2])]


def test_a_json_store_reads_its_own_entries(plain: Plain) -> None:
    store = Store(plain, serializer=JsonSerializer())
    assert store.set("k", {"a": [1, 2]}, tags=["t"])
    assert store.get("k") == {"a": [1, 2]}


# -- the direct API ---------------------------------------------------------------------------


def test_get_many_is_one_call_and_drops_stale_entries(
    store: Store, plain: Plain, clock: FakeClock
) -> None:
    store.set("a", 1, timeout=5)
    store.set("b", 2, timeout=50)
    plain.calls.clear()
    assert store.get_many(["a", "b", "c"]) == [1, 2, MISS]
    assert plain.calls == [("get_many", ("p:a", "p:b", "p:c"))]
    clock.advance(5)
    assert store.get_many(["a", "b"]) == [MISS, 2]
    assert store.get("a") is MISS
    plain.failing.add("get_many")
    assert store.get_many(["a", "b"]) == [MISS, MISS]


def test_add_and_set_many_write_entries_with_the_ttl(
    store: Store, plain: Plain, clock: FakeClock
) -> None:
    assert store.add("a", 1, timeout=7)
    assert plain.ttls["p:a"] == 7
    assert entry_of(store, "p:a") == Entry(1, clock(), clock() + 7, clock() + 7)
    assert not store.add("a", 2)
    assert store.set_many({"b": 2, "c": 3}, timeout=9) == ["b", "c"]
    assert plain.calls[-1] == ("set_many", ("p:b", "p:c"))
    assert (plain.ttls["p:b"], plain.ttls["p:c"]) == (9, 9)
    assert entry_of(store, "p:c") == Entry(3, clock(), clock() + 9, clock() + 9)
    assert store.set_many({"d": 4}) == ["d"]
    assert plain.ttls["p:d"] == 100  # the default timeout
    assert store.set_many({"e": 5}, timeout=0) == ["e"]
    assert plain.ttls["p:e"] is None


def test_deletes_overtake_computations(store: Store, plain: Plain) -> None:
    store.set("a", 1)
    store.set("b", 2)
    begun = store.stampede.epoch
    assert store.delete("a") is True
    assert store.stampede.overtaken("p:a", begun)
    assert store.delete("a") is False
    assert store.delete_many(["b", "c"]) == 1
    assert store.stampede.overtaken("p:b", begun)
    assert store.stampede.overtaken("p:c", begun)
    assert plain.calls[-1] == ("delete_many", ("p:b", "p:c"))
    plain.failing.add("delete_many")
    assert store.delete_many(["b"]) == 0


def test_clear_clears_and_overtakes_everything(store: Store, plain: Plain) -> None:
    store.set("a", 1)
    begun = store.stampede.epoch
    assert store.clear() is True
    assert plain.data == {}
    assert store.stampede.overtaken("anything", begun)
    plain.failing.add("clear")
    assert store.clear() is False


def test_close_closes_the_backend(store: Store, plain: Plain) -> None:
    store.close()
    assert plain.calls == [("close",)]


# -- counters ---------------------------------------------------------------------------------


def test_counters_without_an_increment_command(store: Store, plain: Plain) -> None:
    assert store.incr("n") == 1
    assert plain.data["p:n"] == b"1"
    assert plain.ttls["p:n"] == 100
    assert store.incr("n", 4) == 5
    assert store.get("n") == 5
    assert store.set("v", 10)
    assert store.incr("v", 2) == 12  # an integer entry becomes a counter
    assert plain.data["p:v"] == b"12"


def test_incrementing_what_is_not_an_integer_is_a_clear_error(
    store: Store, clock: FakeClock
) -> None:
    store.policy.fail_open = False
    store.set("s", "text")
    with pytest.raises(TypeError) as caught:
        store.incr("s")
    assert str(caught.value) == "cannot increment 's': it does not hold an integer"
    store.set("old", 5, timeout=1)
    clock.advance(1)
    assert store.incr("old") == 1  # expired: counts from 0


def test_a_failed_counter_read_is_not_a_reset(store: Store, plain: Plain) -> None:
    assert store.incr("n", 5) == 5
    plain.failing.add("get")
    assert store.incr("n") is None
    plain.failing.clear()
    assert store.get("n") == 5


def test_counters_with_an_increment_command(clock: FakeClock) -> None:
    backend = Counting()
    store = Store(backend, clock=clock, default_timeout=100)
    assert store.incr("n", 3) == 3
    assert backend.calls == [("incr", "n", 3, 100)]
    assert store.incr("n") == 4
    assert store.set("e", 7)
    backend.calls.clear()
    assert store.incr("e", 2) == 9  # an entry: the server refuses, converted once
    assert backend.calls == [("incr", "e", 2, 100), ("get", "e"), ("set", "e")]
    assert backend.data["e"] == b"9"
    assert store.incr("e") == 10


def test_sealed_counters_are_created_with_add_then_incremented(clock: FakeClock) -> None:
    backend = Counting()
    store = Store(backend, clock=clock, serializer=PickleSerializer(signing_key="s" * 32))
    scale = store.counters.scale
    assert store.incr("n", 3) == 3
    assert backend.calls == [("add", "n")]
    assert backend.data["n"] == store.counters.encode("n", 3)
    backend.calls.clear()
    assert store.incr("n", 2) == 5
    assert backend.calls == [("add", "n"), ("incr", "n", 2 * scale, 300)]
    assert store.get("n") == 5
    backend.data["n"] = b"12345"  # a forged integer: not a counter of ours
    assert store.get("n") is MISS
    assert store.stats.get(UNDECODABLE) == 1


# -- each failure is counted under its operation's name ---------------------------------------


def _tagged_get(store: Store, plain: Plain) -> None:
    store.set("k", "v", tags=["t"])
    plain.failing.add("get_many")
    store.get("k")


@pytest.mark.parametrize(
    ("operation", "failing", "action"),
    [
        ("get", "get", lambda s: s.get("k")),
        ("get", "get", lambda s: s.read("k")),
        ("get", "get_many", lambda s: s.read("k", ["f"])),
        ("get_many", "get_many", lambda s: s.get_many(["k"])),
        ("set", "set", lambda s: s.set("k", 1)),
        ("set", "set", lambda s: s.write_pass("p:k", "PASS", 5.0, None)),
        ("set_many", "set_many", lambda s: s.set_many({"k": 1})),
        ("add", "add", lambda s: s.add("k", 1)),
        ("delete", "delete", lambda s: s.delete("k")),
        ("delete_many", "delete_many", lambda s: s.delete_many(["k"])),
        ("clear", "clear", lambda s: s.clear()),
        ("invalidate", "set", lambda s: s.bump_version("p:f")),
        ("invalidate", "set", lambda s: s.invalidate_tags(["t"])),
        ("version", "add", lambda s: s.current_version(("p:f",), None)),
        ("incr", "get", lambda s: s.incr("n")),
    ],
)
def test_a_failure_is_counted_under_its_operation(
    store: Store, plain: Plain, operation: str, failing: str, action: Any
) -> None:
    plain.failing.add(failing)
    action(store)
    assert store.stats.get(ERROR, operation) == 1
    assert store.stats.get(ERROR) == 1
    assert store.gate.breaker.health().last_error == f"BackendError: {failing} failed"


def test_a_tags_stamps_failing_on_read_count_as_a_get(store: Store, plain: Plain) -> None:
    _tagged_get(store, plain)
    assert store.stats.get(ERROR, "get") == 1
    assert store.stats.get(ERROR) == 1


def test_a_read_skipped_by_an_open_breaker_is_counted_as_a_get(store: Store, plain: Plain) -> None:
    plain.failing.add("get")
    for _ in range(3):
        store.read("k")
    assert store.read("k") == (MISS, None)
    assert store.stats.get(BACKEND_SKIP, "get") == 1


@pytest.mark.parametrize(
    ("operation", "action"),
    [
        ("add", lambda s: s.add("k", lambda: 1)),
        ("set_many", lambda s: s.set_many({"k": lambda: 1})),
    ],
)
def test_unserializable_values_are_counted_under_their_operation(
    store: Store, operation: str, action: Any
) -> None:
    action(store)
    assert store.stats.get(ERROR, operation) == 1
    store.policy.fail_open = False
    with pytest.raises(SerializationError):
        action(store)


# -- details that other processes and versions rely on -----------------------------------------


def test_sealed_counters_use_the_counter_key_of_the_signing_key(plain: Plain) -> None:
    serializer = PickleSerializer(signing_key="s" * 32)
    store = Store(plain, serializer=serializer)
    assert serializer.signer is not None
    seal = CounterSeal(serializer.signer.derive(b"counter"))  # what every process derives
    assert store.incr("n", 3) == 3
    assert plain.data["n"] == seal.encode("n", 3)
    assert store.incr("n", 2) == 5  # read back under its own key, without incr support
    assert plain.data["n"] == seal.encode("n", 5)


def test_a_sealed_counter_is_created_with_the_default_timeout(clock: FakeClock) -> None:
    backend = Counting()
    store = Store(backend, clock=clock, default_timeout=42,
                  serializer=PickleSerializer(signing_key="s" * 32))  # fmt: skip
    assert store.incr("n") == 1
    assert backend.ttls["n"] == 42


def test_a_serializer_without_a_signer_attribute(plain: Plain) -> None:
    class Bare:
        name = "bare"

        def dumps(self, value: object) -> bytes:
            return PickleSerializer().dumps(value)

        def loads(self, blob: bytes) -> object:
            return PickleSerializer().loads(blob)

    store = Store(plain, serializer=Bare())  # type: ignore[arg-type]
    assert store.entries_signed is False
    assert store.set("k", 1)
    assert store.get("k") == 1


def test_long_keys_are_hashed_with_the_stores_hash_method(plain: Plain) -> None:
    plain.max_key_length = 40  # type: ignore[attr-defined]
    store = Store(plain, key_prefix="p:", hash_method=hashlib.md5)
    assert store.backend_key("k" * 50) == "p:#" + hash_text("k" * 50, hashlib.md5)
    assert store.backend_key("a\udcff") == "p:#" + hash_text("a\udcff", hashlib.md5)


def test_a_hashed_key_keeps_its_prefix_while_it_fits(plain: Plain) -> None:
    prefix = "x" * 10
    digest = hash_text("k" * 100)
    plain.max_key_length = len(prefix) + 1 + len(digest)  # type: ignore[attr-defined]
    store = Store(plain, key_prefix=prefix)
    assert store.backend_key("k" * 100) == f"{prefix}#{digest}"  # exactly at the limit
    plain.max_key_length -= 1  # type: ignore[attr-defined]
    store = Store(plain, key_prefix=prefix)
    assert store.backend_key("k" * 100) == "#" + hash_text(prefix + "k" * 100)


def test_a_counter_read_directly_has_no_creation_time(store: Store) -> None:
    assert store.decode_value("p:n", b"5") == Entry(5, 0.0)


def test_a_backend_answering_fewer_values_than_keys_is_not_hidden(
    store: Store, plain: Plain
) -> None:
    plain.get_many = lambda keys: [MISS]  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="zip"):
        store.get_many(["a", "b"])


def test_write_defaults(store: Store, plain: Plain, clock: FakeClock) -> None:
    now = clock()
    store.write("k", "v", 10)
    assert entry_of(store, "p:k") == Entry("v", now, now + 10, now + 10)
    assert plain.ttls["p:k"] == 10
    store.write_entry("p:e", "v", 10)
    assert entry_of(store, "p:e") == Entry("v", now, now + 10, now + 10, None, (), 0.0)
    assert plain.ttls["p:e"] == 10
    assert store.stats.readings()[(WRITE, "")].events == 2
    store.write_stored("p:s", "v", 10)
    assert plain.ttls["p:s"] == 10
    store.write_stored("p:h", "v", 10, keep=0.5)
    assert plain.ttls["p:h"] == 10.5

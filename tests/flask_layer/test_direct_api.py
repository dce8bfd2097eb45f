"""The direct API (``cache.get``/``set``/``add``/...): Flask-Caching's names and return
values, and expiry driven by a fake clock passed through ``CACHE_OPTIONS``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_stash import Cache
from flask_stash.testing import FakeClock

from .conftest import make_app


@pytest.fixture(params=["SimpleCache", "FileSystemCache"])
def cache(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> Iterator[Cache]:
    """A cache on the fake clock, for each local backend, inside an app context."""
    app = make_app(CACHE_TYPE=request.param, CACHE_DIR=str(tmp_path / "cache"))
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}, "CACHE_DEFAULT_TIMEOUT": 50})
    with app.app_context():
        yield cache


# -- return values -------------------------------------------------------------------------


def test_get_returns_none_on_miss(cache: Cache) -> None:
    assert cache.get("missing") is None


def test_set_returns_true_and_get_returns_the_value(cache: Cache) -> None:
    assert cache.set("k", {"a": [1, 2]}) is True
    assert cache.get("k") == {"a": [1, 2]}


def test_set_overwrites(cache: Cache) -> None:
    cache.set("k", 1)
    assert cache.set("k", 2) is True
    assert cache.get("k") == 2


def test_add_on_absent_key_returns_true(cache: Cache) -> None:
    assert cache.add("k", "first") is True
    assert cache.get("k") == "first"


def test_add_on_existing_key_returns_false_and_keeps_value(cache: Cache) -> None:
    cache.set("k", "first")
    assert cache.add("k", "second") is False
    assert cache.get("k") == "first"


def test_delete_returns_whether_key_existed(cache: Cache) -> None:
    cache.set("k", 1)
    assert cache.delete("k") is True
    assert cache.get("k") is None
    assert cache.delete("k") is False


def test_delete_many_returns_list_of_deleted_keys(cache: Cache) -> None:
    cache.set_many({"a": 1, "b": 2, "c": 3})
    deleted = cache.delete_many("a", "b")
    assert isinstance(deleted, list)
    assert sorted(deleted) == ["a", "b"]
    assert cache.get_many("a", "b", "c") == [None, None, 3]


def test_delete_many_counts_absent_keys_as_deleted_like_cachelib(cache: Cache) -> None:
    cache.set("a", 1)
    assert sorted(cache.delete_many("a", "never-set")) == ["a", "never-set"]


def test_get_many_returns_list_in_order_with_none_for_misses(cache: Cache) -> None:
    cache.set("a", 1)
    cache.set("c", 3)
    assert cache.get_many("a", "b", "c") == [1, None, 3]


def test_set_many_returns_stored_keys(cache: Cache) -> None:
    result = cache.set_many({"a": 1, "b": [2]})
    assert isinstance(result, list)
    assert sorted(result) == ["a", "b"]
    assert cache.get("b") == [2]


def test_get_dict_maps_keys_to_values(cache: Cache) -> None:
    cache.set_many({"a": 1, "b": 2})
    assert cache.get_dict("a", "b", "z") == {"a": 1, "b": 2, "z": None}


def test_has(cache: Cache) -> None:
    assert cache.has("k") is False
    cache.set("k", 0)
    assert cache.has("k") is True


def test_a_stored_none_is_present(cache: Cache) -> None:
    cache.set("k", None)
    assert cache.get("k") is None
    assert cache.has("k") is True


def test_falsy_values_round_trip(cache: Cache) -> None:
    cache.set_many({"zero": 0, "empty": "", "false": False, "list": []})
    assert cache.get_many("zero", "empty", "false", "list") == [0, "", False, []]
    assert cache.get("false") is False


def test_clear_returns_true_and_empties(cache: Cache) -> None:
    cache.set_many({"a": 1, "b": 2})
    assert cache.clear() is True
    assert cache.get_many("a", "b") == [None, None]


def test_unlink_falls_back_to_delete_many(cache: Cache) -> None:
    cache.set_many({"a": 1, "b": 2, "c": 3})
    assert sorted(cache.unlink("a", "b")) == ["a", "b"]
    assert cache.get_many("a", "b", "c") == [None, None, 3]


def test_inc_dec_start_from_absent(cache: Cache) -> None:
    assert cache.inc("n") == 1
    assert cache.inc("n", delta=5) == 6
    assert cache.dec("n") == 5
    assert cache.dec("n", 10) == -5
    assert cache.get("n") == -5


def test_dec_from_absent(cache: Cache) -> None:
    assert cache.dec("m") == -1
    assert cache.get("m") == -1


@pytest.mark.parametrize(
    "cache_type",
    [
        "SimpleCache",
        "FileSystemCache",
    ],
)
def test_inc_dec_after_set_of_an_int(cache_type: str, clock: FakeClock, tmp_path: Path) -> None:
    app = make_app(CACHE_TYPE=cache_type, CACHE_DIR=str(tmp_path))
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})
    with app.app_context():
        cache.set("n", 10)
        assert cache.inc("n") == 11
        assert cache.dec("n", 3) == 8
        assert cache.get("n") == 8


def test_cache_cache_inc_after_set(cache: Cache) -> None:
    cache.cache.inc("counter")
    cache.cache.inc("counter")
    assert cache.get("counter") == 2


def test_returned_values_are_copies(cache: Cache) -> None:
    cache.set("k", [1, 2])
    first = cache.get("k")
    first.append(3)
    assert cache.get("k") == [1, 2]


def test_direct_api_on_backend_object_uses_same_entries(cache: Cache) -> None:
    cache.set("k", "v")
    assert cache.cache.get("k") == "v"
    assert cache.cache.has("k") is True
    cache.cache.set("j", "w")
    assert cache.get("j") == "w"


# -- timeouts, on the fake clock -----------------------------------------------------------


def test_default_timeout_expires(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", 1)
    clock.advance(49.9)
    assert cache.get("k") == 1
    clock.advance(0.2)
    assert cache.get("k") is None
    assert cache.has("k") is False


def test_explicit_timeout_expires(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", 1, timeout=10)
    clock.advance(9.5)
    assert cache.get("k") == 1
    clock.advance(1)
    assert cache.get("k") is None


def test_timeout_as_timedelta(cache: Cache, clock: FakeClock) -> None:
    assert cache.set("k", 1, timeout=dt.timedelta(seconds=5)) is True
    clock.advance(4.5)
    assert cache.get("k") == 1
    clock.advance(1)
    assert cache.get("k") is None


def test_timedelta_is_rounded_up_to_whole_seconds(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", 1, timeout=dt.timedelta(seconds=1.2))
    clock.advance(1.5)
    assert cache.get("k") == 1
    clock.advance(1)
    assert cache.get("k") is None


def test_timeout_zero_never_expires(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", 1, timeout=0)
    clock.advance(10 * 365 * 24 * 3600)
    assert cache.get("k") == 1


def test_add_after_expiry_succeeds(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", "old", timeout=5)
    clock.advance(6)
    assert cache.add("k", "new") is True
    assert cache.get("k") == "new"


def test_add_with_timeout_expires(cache: Cache, clock: FakeClock) -> None:
    cache.add("k", 1, timeout=5)
    clock.advance(6)
    assert cache.get("k") is None


def test_set_many_with_timeout_expires(cache: Cache, clock: FakeClock) -> None:
    cache.set_many({"a": 1, "b": 2}, timeout=5)
    clock.advance(4)
    assert cache.get_many("a", "b") == [1, 2]
    clock.advance(2)
    assert cache.get_many("a", "b") == [None, None]
    assert cache.get_dict("a") == {"a": None}


def test_negative_timeout_is_rejected(cache: Cache) -> None:
    with pytest.raises(ValueError):
        cache.set("k", 1, timeout=-1)


def test_default_timeout_zero_means_forever(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_DEFAULT_TIMEOUT=0)
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})
    with app.app_context():
        cache.set("k", 1)
        clock.advance(10**8)
        assert cache.get("k") == 1


def test_clock_through_cache_options_also_drives_the_store(clock: FakeClock) -> None:
    """The fake clock given to SimpleCache reaches the store's freshness check too."""
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})
    with app.app_context():
        assert cache.store.clock is clock


def test_clock_through_cache_options_drives_the_filesystem_store(
    clock: FakeClock, tmp_path: Path
) -> None:
    app = make_app(CACHE_TYPE="FileSystemCache", CACHE_DIR=str(tmp_path))
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})
    with app.app_context():
        assert cache.store.clock is clock

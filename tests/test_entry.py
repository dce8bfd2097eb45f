"""``Entry``: freshness at its exact boundaries, layout checks, and which values may be shared."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.entry import Entry, is_immutable
from flask_stash.core.errors import UndecodableEntry
from flask_stash.core.store import Store
from flask_stash.testing import FakeClock

T0 = 1_000.0
FRESH, STALE = T0 + 10, T0 + 30
entry = Entry("v", created=T0, fresh_until=FRESH, stale_until=STALE)
fresh_only = Entry("v", created=T0, fresh_until=FRESH)
forever = Entry("v", created=T0)
stale_forever = Entry("v", created=T0, fresh_until=FRESH, stale_until=None)


@pytest.mark.parametrize(
    ("now", "fresh", "servable"),
    [
        (T0, True, True),
        (FRESH - 0.001, True, True),
        (FRESH, False, True),  # fresh_until itself is no longer fresh
        (STALE - 0.001, False, True),
        (STALE, False, False),  # stale_until itself is no longer servable
        (STALE + 1, False, False),
    ],
)
def test_freshness_and_servability_at_the_boundaries(
    now: float, fresh: bool, servable: bool
) -> None:
    assert entry.is_fresh(now) is fresh
    assert entry.is_servable(now) is servable


def test_without_a_stale_window_the_entry_stops_being_servable_when_it_stops_being_fresh() -> None:
    assert fresh_only.servable_until() == FRESH
    assert fresh_only.is_servable(FRESH - 0.001)
    assert not fresh_only.is_servable(FRESH)
    assert stale_forever.servable_until() == FRESH  # None as stale_until: no stale window


def test_an_entry_without_limits_is_fresh_and_servable_forever() -> None:
    assert forever.is_fresh(1e18)
    assert forever.is_servable(1e18)
    assert forever.servable_until() is None
    assert forever.remaining(1e18) is None


@pytest.mark.parametrize(
    ("now", "remaining"),
    [(T0, 10.0), (FRESH - 2.5, 2.5), (FRESH, 0.0), (FRESH + 7, 0.0)],
)
def test_remaining_freshness_never_negative(now: float, remaining: float) -> None:
    assert entry.remaining(now) == remaining


@pytest.mark.parametrize(
    ("now", "age"), [(T0 - 5, 0.0), (T0, 0.0), (T0 + 0.25, 0.25), (STALE + 1, 31.0)]
)
def test_age_never_negative(now: float, age: float) -> None:
    """A clock that stepped back (another host's write) gives age 0, not a negative Age."""
    assert entry.age(now) == age


@given(
    created=st.floats(0, 1e9),
    fresh_for=st.floats(0, 1e6),
    stale_for=st.floats(0, 1e6),
    offset=st.floats(-1e6, 3e6),
)
def test_boundaries_hold_for_any_times(
    created: float, fresh_for: float, stale_for: float, offset: float
) -> None:
    fresh_until, stale_until = created + fresh_for, created + fresh_for + stale_for
    item = Entry(None, created, fresh_until, stale_until)
    now = created + offset
    assert item.is_fresh(now) == (now < fresh_until)
    assert item.is_servable(now) == (now < stale_until)
    assert item.remaining(now) == max(0.0, fresh_until - now)
    assert item.age(now) == max(0.0, now - created)


def test_load_accepts_exactly_its_own_layout() -> None:
    fields = tuple(entry)
    assert Entry.load(fields) == entry
    assert type(Entry.load(fields)) is Entry
    assert Entry.load(list(fields)) == entry  # formats without tuples
    assert Entry.load(fields).value == "v"


@pytest.mark.parametrize(
    "data",
    [
        tuple(entry)[:-1],
        (*tuple(entry), 0.0),
        (),
        None,
        "a string of seven",
        {"value": 1},
        b"1234567",
    ],
)
def test_load_refuses_anything_else(data: object) -> None:
    with pytest.raises(UndecodableEntry, match=r"^not an entry of this layout$"):
        Entry.load(data)


@dataclasses.dataclass(frozen=True)
class Frozen:
    x: int


@pytest.mark.parametrize(
    "value",
    [None, 1, 1.5, 1j, "s", b"b", True, range(3), (), (1, ("a", b"b")), frozenset({1, "a"})],
)
def test_deeply_immutable_values(value: object) -> None:
    assert is_immutable(value)


@pytest.mark.parametrize(
    "value",
    [
        [],
        {},
        set(),
        bytearray(b"x"),
        (1, []),
        ((1, {}),),
        frozenset({Frozen(1)}),  # not a known immutable type: copied, not shared
        Frozen(1),
        object(),
    ],
)
def test_values_with_anything_mutable_inside_are_not(value: object) -> None:
    assert not is_immutable(value)


@pytest.mark.parametrize("value", [[1, 2], {"a": [1]}, (1, [2]), {3}, bytearray(b"xy")])
def test_two_reads_never_share_a_mutable_value(value: Any) -> None:
    clock = FakeClock()
    store = Store(MemoryBackend(clock=clock), clock=clock)
    store.set("k", value)
    first = store.get("k")
    second = store.get("k")
    assert first == value
    assert first is not second
    if isinstance(first, tuple):
        first[1].append(99)
    elif isinstance(first, dict):
        first["a"].append(99)
    elif isinstance(first, set):
        first.add(99)
    else:
        first.append(99)
    assert store.get("k") == value  # a caller's mutation never reaches the next reader


def test_immutable_values_are_decoded_once_and_shared() -> None:
    clock = FakeClock()
    store = Store(MemoryBackend(clock=clock), clock=clock)
    store.set("k", (1, "a"))
    assert store.get("k") is store.get("k")

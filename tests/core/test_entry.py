"""``Entry``: freshness at its exact boundaries, layout checks, and which values may be shared."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_stash.core.api import MISS
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.entry import Entry, is_immutable, is_well_formed
from flask_stash.core.errors import UndecodableEntry
from flask_stash.core.serializers import CustomSerializer
from flask_stash.core.stats import UNDECODABLE
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


@pytest.mark.parametrize("data", [[], [1, 2, 3], ["v", T0, None, None, None]])
def test_load_refuses_a_short_list_with_its_own_error(data: object) -> None:
    """A list too short to hold tags is refused as a layout, not an ``IndexError``."""
    with pytest.raises(UndecodableEntry, match=r"^not an entry of this layout$"):
        Entry.load(data)


@pytest.mark.parametrize(
    "data",
    [
        ["v", T0, None, None, None, [["t", "1"]]],  # six fields, tags where they belong
        ["v", T0, None, None, None, [["t", "1"]], 0.0, 0.0],  # eight fields
    ],
)
def test_load_refuses_a_list_of_another_length_even_with_list_tags(data: object) -> None:
    with pytest.raises(UndecodableEntry, match=r"^not an entry of this layout$"):
        Entry.load(data)


TAGGED = Entry(["a", "list"], T0, FRESH, STALE, b"v1", (("user", "3"), ("post", "9")), 0.5)


def test_load_turns_json_style_tag_lists_back_into_tuples() -> None:
    """A serializer without tuples hands back lists: the tags come back as the engine wrote them."""
    as_json = [["a", "list"], T0, FRESH, STALE, b"v1", [["user", "3"], ["post", "9"]], 0.5]
    loaded = Entry.load(as_json)
    assert loaded == TAGGED
    assert type(loaded.tags) is tuple
    assert all(type(tag) is tuple for tag in loaded.tags)
    assert loaded.value == ["a", "list"]  # the user's value is the user's: left a list
    assert type(loaded.value) is list
    assert loaded.cost == 0.5
    assert is_well_formed(loaded) is True


def test_load_keeps_tags_that_are_already_tuples() -> None:
    mixed = ["v", T0, None, None, None, [("user", "3"), ["post", "9"]], 0.0]
    assert Entry.load(mixed).tags == (("user", "3"), ("post", "9"))
    assert Entry.load([*tuple(TAGGED)]) == TAGGED  # a list whose tags are already a tuple
    assert Entry.load(tuple(TAGGED)) == TAGGED


def test_load_leaves_list_tags_inside_a_tuple_for_the_type_check() -> None:
    """Only a tuple-less format gets its lists converted; a tuple with list tags is foreign."""
    foreign = ("v", T0, None, None, None, [["user", "3"]], 0.0)
    assert is_well_formed(Entry.load(foreign)) is False


def load_is_accepted(data: object) -> bool:
    """What the store does with unsigned decoded data: layout check, then type check."""
    try:
        loaded = Entry.load(data)
    except UndecodableEntry:
        return False
    return is_well_formed(loaded)


@pytest.mark.parametrize(
    "tags",
    [
        ["ab"],  # a two-character string is not a (tag, stamp) pair
        [b"ab"],
        [5],
        [None],
        [["a"]],
        [["a", "b", "c"]],
        [["a", 1]],
        [[1, "a"]],
        [["a", ["b"]]],  # only one level of lists is a tag pair
        [[["a", "b"]]],
        [["a", "b"], "cd"],  # one bad tag spoils the entry
        "ab",
        {"a": "b"},
        None,
    ],
)
def test_malformed_json_style_tags_never_pass(tags: object) -> None:
    assert load_is_accepted(["v", T0, None, None, None, tags, 0.0]) is False


# One sample of every type the engine accepts per metadata field.
CREATED = [T0, 1000]
LIMITS = [None, FRESH, 1010]
VERSIONS = [None, b"v1", b""]
COSTS = [0.0, 0, 2.5, 3]


@pytest.mark.parametrize("created", CREATED)
@pytest.mark.parametrize("fresh_until", LIMITS)
@pytest.mark.parametrize("stale_until", LIMITS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("cost", COSTS)
def test_every_accepted_combination_of_field_types_is_well_formed(
    created: float, fresh_until: float | None, stale_until: float | None, version: Any, cost: float
) -> None:
    fields = ("v", created, fresh_until, stale_until, version)
    assert is_well_formed(Entry(*fields, (), cost)) is True
    assert is_well_formed(Entry(*fields, (("t", "1"),), cost)) is True


class Text(str):
    """A ``str`` subclass: it could redefine equality and hashing, so it is not a tag."""


# A value of a wrong type per field; bool is refused although it is an int subclass, because
# the engine never writes one and only exact types are trusted from an unsigned entry.
WRONG = {
    "created": [None, True, "1000", b"1000", [T0], 1j],
    "fresh_until": [False, "1010", b"1010", [FRESH], (FRESH,)],
    "stale_until": [True, "1030", b"1030", [STALE], {}],
    "version": [1, 1.0, True, "v1", bytearray(b"v1"), [118, 49], memoryview(b"v1")],
    "cost": [None, False, "0.5", b"0", [0.5]],
}


@pytest.mark.parametrize(
    ("field", "value"), [(field, value) for field, values in WRONG.items() for value in values]
)
def test_a_wrong_type_in_any_metadata_field_is_malformed(field: str, value: object) -> None:
    for tags in ((), (("t", "1"),)):
        good = Entry("v", T0, FRESH, STALE, b"v1", tags, 0.5)
        assert is_well_formed(good) is True
        assert is_well_formed(good._replace(**{field: value})) is False


BIGGEST = sys.float_info.max
UNUSABLE = [10**400, -(10**400), int(BIGGEST) + 1, float("inf"), float("-inf"), float("nan")]


@pytest.mark.parametrize("field", ["created", "fresh_until", "stale_until", "cost"])
@pytest.mark.parametrize("number", UNUSABLE)
def test_a_number_the_engine_cannot_compute_with_is_malformed(field: str, number: float) -> None:
    """``now - created`` overflows on an integer beyond the float range and ``int(age)`` on an
    infinity: a forged unsigned entry with one must be a miss, not an error in a request."""
    good = Entry("v", T0, FRESH, STALE, b"v1", (("t", "1"),), 0.5)
    assert is_well_formed(good._replace(**{field: number})) is False


@pytest.mark.parametrize("field", ["created", "fresh_until", "stale_until", "cost"])
@pytest.mark.parametrize("number", [BIGGEST, -BIGGEST, int(BIGGEST), -int(BIGGEST), 0, -0.0])
def test_every_finite_number_is_usable(field: str, number: float) -> None:
    item = Entry("v", T0, FRESH, STALE, b"v1", (("t", "1"),), 0.5)._replace(**{field: number})
    assert is_well_formed(item) is True
    assert item.age(T0) >= 0  # the arithmetic of a hit does not raise
    assert int(item.remaining(T0) or 0) >= 0


@pytest.mark.parametrize(
    "tags",
    [
        [],  # a list, even empty
        [("t", "1")],
        "ab",
        None,
        frozenset({("t", "1")}),
        (["t", "1"],),
        ("t1",),
        (("t",),),
        (("t", "1", "x"),),
        (("t", 1),),
        ((1, "t"),),
        ((b"t", "1"),),
        (("t", b"1"),),
        ((None, None),),
        ((Text("t"), "1"),),
        (("t", Text("1")),),
        (("t", "1"), ("u", 2)),  # one bad tag among good ones
        (("u", 2), ("t", "1")),
    ],
)
def test_tags_other_than_a_tuple_of_string_pairs_are_malformed(tags: object) -> None:
    assert is_well_formed(Entry("v", T0, FRESH, STALE, b"v1", tags, 0.5)) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "hit"),
    [
        (["v", T0, None, None, None, [["user", "3"]], 0.0], True),
        (["v", T0, None, None, None, [], 0], True),
        (["v", "yesterday", None, None, None, [], 0.0], False),
        (["v", T0, None, None, None, [["user", 3]], 0.0], False),
        (["v", T0, None, None, None, ["u3"], 0.0], False),
        (["v", T0, None, None, None, [["user", "3"]], None], False),
        (["v", T0, True, None, None, [], 0.0], False),
        (["v", T0, None, None, "v1", [], 0.0], False),  # plain JSON has no bytes
        (["v", T0, None, None, None, [["user", "3"]]], False),
        (["v", 10**400, None, None, None, [], 0.0], False),
        (["v", float("-inf"), None, None, None, [], 0.0], False),
        (["v", T0, float("inf"), None, None, [], 0.0], False),
        (["v", T0, None, None, None, [], float("nan")], False),
    ],
)
def test_an_unsigned_json_entry_is_a_hit_only_when_well_formed(
    fields: list[object], hit: bool
) -> None:
    """Through a user's plain ``json`` serializer: a forged entry is a counted miss, never an
    error, and a well-formed one comes back with tuple tags."""
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    store = Store(backend, clock=clock, serializer=CustomSerializer(json))
    blob = store.serializer.dumps(fields)
    decoded = store.decode(blob)
    assert (decoded is not MISS) is hit
    assert store.stats.get(UNDECODABLE) == (0 if hit else 1)
    if isinstance(decoded, Entry):
        assert decoded.tags == tuple(tuple(tag) for tag in fields[5])  # type: ignore[attr-defined]


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

"""Serializers, property-based: every supported value survives a round trip, type for type.

Checked for each serializer with and without a signing key, on bare values and on whole
entries (the tuples the engine stores). Malformed and forged blobs are covered by
``test_serializers.py``.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_stash.core import jsontags
from flask_stash.core.entry import Entry
from flask_stash.core.serializers import JsonSerializer, PickleSerializer, Serializer

KEY = "a-signing-key-of-enough-bytes"


def _serializers() -> dict[str, Callable[[], Serializer]]:
    made: dict[str, Callable[[], Serializer]] = {
        "pickle": PickleSerializer,
        "pickle-signed": lambda: PickleSerializer(signing_key=KEY),
        "json": JsonSerializer,
    }
    if "signing_key" in inspect.signature(JsonSerializer).parameters:
        made["json-signed"] = lambda: JsonSerializer(signing_key=KEY)  # type: ignore[call-arg]
    return made


SERIALIZERS = _serializers()

# Fixed UTC offsets: tagged JSON stores a datetime's offset, not its zone name, so a
# ``ZoneInfo`` comes back as a fixed offset (a time with a DST zone, as a naive time).
offsets = st.timedeltas(dt.timedelta(hours=-23), dt.timedelta(hours=23)).map(
    lambda delta: dt.timezone(dt.timedelta(minutes=delta // dt.timedelta(minutes=1)))
)
hashable_atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(max_size=8),
    st.decimals(allow_nan=False),
    st.uuids(),
    st.dates(),
    st.times(timezones=st.none() | offsets),
    st.datetimes(timezones=st.none() | offsets),
    st.timedeltas(),
)
atoms = st.one_of(hashable_atoms, st.floats(), st.decimals())  # NaNs too


# Keys that spell a tag ("\x00t" is the tuple tag): a user dict must never decode as one.
TAG_LIKE_KEYS = st.sampled_from(["\x00t", "\x00s", "\x00b", "\x00m", "\x00f", "\x00", "x\x00"])


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.text(max_size=4), TAG_LIKE_KEYS, hashable_atoms)
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
        st.dictionaries(st.text(max_size=4) | TAG_LIKE_KEYS, children, max_size=4),
        st.sets(hashable_atoms, max_size=4),
        st.frozensets(hashable_atoms, max_size=4),
    )


values = st.recursive(atoms, _containers, max_leaves=8)


def typed(value: object) -> object:
    """A comparable description: equal only for equal values of identical types."""
    kind = type(value)
    if kind is float:
        return ("float", "nan" if math.isnan(value) else value.hex())  # type: ignore[arg-type]
    if kind is Decimal:
        return ("Decimal", str(value))
    if kind in (dt.datetime, dt.time):
        return (kind.__name__, value.isoformat(), repr(value.tzinfo))  # type: ignore[attr-defined]
    if kind in (list, tuple):
        return (kind.__name__, [typed(v) for v in value])  # type: ignore[attr-defined]
    if kind is dict:
        items = sorted(repr((typed(k), typed(v))) for k, v in value.items())  # type: ignore[attr-defined]
        return ("dict", items)
    if kind in (set, frozenset):
        return (kind.__name__, sorted(repr(typed(v)) for v in value))  # type: ignore[attr-defined]
    return (kind.__name__, value)


@pytest.mark.parametrize("name", sorted(SERIALIZERS))
@given(value=values)
def test_every_supported_value_round_trips(name: str, value: object) -> None:
    serializer = SERIALIZERS[name]()
    blob = serializer.dumps(value)
    assert type(blob) is bytes
    assert typed(serializer.loads(blob)) == typed(value)


@pytest.mark.parametrize("name", sorted(SERIALIZERS))
@given(
    value=values,
    created=st.floats(0, 2e9),
    fresh_for=st.none() | st.floats(0, 1e6),
    version=st.none() | st.binary(min_size=1, max_size=16),
    tags=st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)), max_size=3).map(tuple),
)
def test_entries_round_trip(
    name: str,
    value: object,
    created: float,
    fresh_for: float | None,
    version: bytes | None,
    tags: tuple[tuple[str, str], ...],
) -> None:
    serializer = SERIALIZERS[name]()
    fresh_until = None if fresh_for is None else created + fresh_for
    entry = Entry(value, created, fresh_until, None, version, tags, 0.5)
    loaded = Entry.load(serializer.loads(serializer.dumps(tuple(entry))))
    assert typed(tuple(loaded)) == typed(tuple(entry))


@given(value=atoms, other=st.binary(min_size=16, max_size=32))
def test_a_blob_signed_with_another_key_never_loads(value: object, other: bytes) -> None:
    signed = PickleSerializer(signing_key=KEY).dumps(value)
    with pytest.raises(Exception, match="signature"):
        PickleSerializer(signing_key=other if other != KEY.encode() else other + b"!").loads(signed)


@given(st.lists(st.integers(0, 64) | st.text(max_size=3), max_size=8))
def test_equal_sets_encode_to_equal_bytes(items: list[Any]) -> None:
    """Set members are written in a canonical order, whatever order the set iterates in."""
    backwards = items[::-1]  # equal sets, built in another order: another iteration order
    assert jsontags.dumps(set(items)) == jsontags.dumps(set(backwards))
    assert jsontags.dumps(frozenset(items)) == jsontags.dumps(frozenset(backwards))


def test_the_tagged_json_format_is_pinned() -> None:
    """Entries written by one release are read by the next: the format changes only on purpose."""
    value = {
        "a": (1, b"x"),
        2: {3},
        "\x00t": [1.5, float("inf")],
        "d": dt.date(2024, 1, 2),
        "u": uuid.UUID(int=1),
        "D": Decimal("1.10"),
        "td": dt.timedelta(1, 2, 3),
        "f": frozenset(["b", "a"]),
    }
    assert jsontags.dumps(value) == (
        b'{"\\u0000m":[["a",{"\\u0000t":[1,{"\\u0000b":"eA=="}]}],[2,{"\\u0000s":[3]}],'
        b'["\\u0000t",[1.5,{"\\u0000f":"inf"}]],["d",{"\\u0000d":"2024-01-02"}],'
        b'["u",{"\\u0000u":"00000000-0000-0000-0000-000000000001"}],["D",{"\\u0000D":"1.10"}],'
        b'["td",{"\\u0000td":[1,2,3]}],["f",{"\\u0000fs":["a","b"]}]]}'
    )
    assert jsontags.dumps({"k": [1, None, True, "\u00e9"]}) == b'{"k":[1,null,true,"\\u00e9"]}'


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_writes_the_protocol_it_was_given(protocol: int) -> None:
    blob = PickleSerializer(protocol=protocol).dumps([1])
    assert blob[4:6] == bytes([0x80, protocol])  # after the format marker: PROTO n
    assert PickleSerializer(protocol=protocol).loads(blob) == [1]


def test_serializer_names() -> None:
    assert PickleSerializer().name == "pickle"
    assert PickleSerializer(signing_key=KEY).name == "pickle-signed"

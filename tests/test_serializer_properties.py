"""Serializers, property-based: every supported value survives a round trip, type for type.

Checked for each serializer with and without a signing key, on bare values and on whole
entries (the tuples the engine stores). Malformed and forged blobs are covered by
``test_serializers.py``.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.text(max_size=4), hashable_atoms)
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
        st.dictionaries(st.text(max_size=4), children, max_size=4),
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

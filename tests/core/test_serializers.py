from __future__ import annotations

import datetime as dt
import pickle
import uuid
from decimal import Decimal

import pytest

from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.errors import ConfigurationError, SerializationError, UndecodableEntry
from flask_stash.core.serializers import JsonSerializer, PickleSerializer
from flask_stash.core.stats import UNDECODABLE
from flask_stash.core.store import Store

KEY = "k" * 32
RICH = {
    "tuple": (1, "two", (3.0, None)),
    "bytes": b"\x00\xffraw",
    "when": dt.datetime(2026, 11, 27, 6, 30, 1, 5, tzinfo=dt.timezone.utc),
    "day": dt.date(2026, 1, 2),
    "time": dt.time(23, 59, 1),
    "delta": dt.timedelta(days=2, seconds=5, microseconds=7),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "money": Decimal("10.005"),
    "set": {3, 1, 2},
    "frozen": frozenset({"a"}),
    "nested": [{"x": [1, {2, 3}]}, ()],
    7: "int key",
    ("t", 1): "tuple key",
    "\x00sneaky": "a key that looks like a tag",
    "floats": [float("inf"), -0.0, 1e308],
    "flags": [True, False, None, 0, 1],
}


def test_json_round_trip_is_lossless() -> None:
    serializer = JsonSerializer()
    out = serializer.loads(serializer.dumps(RICH))
    assert out == RICH
    assert type(out["tuple"]) is tuple  # type: ignore[index]
    assert type(out["flags"][0]) is bool  # type: ignore[index]
    assert type(out["set"]) is set  # type: ignore[index]


def test_json_nan_survives() -> None:
    serializer = JsonSerializer()
    out = serializer.loads(serializer.dumps([float("nan")]))
    assert out[0] != out[0]  # type: ignore[index]


def test_json_refuses_arbitrary_objects_with_a_path() -> None:
    class Thing:
        pass

    with pytest.raises(SerializationError, match=r"value\['a'\]\[1\].*Thing"):
        JsonSerializer().dumps({"a": [1, Thing()]})


def test_json_never_executes_code() -> None:
    # A pickle payload under the JSON marker is just undecodable text.
    payload = b"fs1j" + pickle.dumps(object())
    with pytest.raises(UndecodableEntry):
        JsonSerializer().loads(payload)


def test_pickle_round_trip() -> None:
    serializer = PickleSerializer()
    assert serializer.loads(serializer.dumps(RICH)) == RICH


def test_unpicklable_value_is_a_clear_error() -> None:
    with pytest.raises(SerializationError, match="cannot pickle"):
        PickleSerializer().dumps(lambda: None)


def test_signed_pickle_refuses_tampered_entries() -> None:
    serializer = PickleSerializer(signing_key="k" * 32)
    blob = bytearray(serializer.dumps({"user": 1}))
    blob[-3] ^= 0xFF
    with pytest.raises(UndecodableEntry, match="signature"):
        serializer.loads(bytes(blob))


def test_signed_pickle_never_unpickles_unsigned_or_foreign_entries() -> None:
    serializer = PickleSerializer(signing_key="k" * 32)
    with pytest.raises(UndecodableEntry, match="unsigned"):
        serializer.loads(PickleSerializer().dumps("plain"))
    with pytest.raises(UndecodableEntry):
        serializer.loads(b"fs2s" + b"\x00" * 32 + b"cos\nsystem\n(S'echo pwned'\ntR.")


def test_signature_from_another_key_is_refused_but_rotation_works() -> None:
    old = PickleSerializer(signing_key="old-key-" * 4)
    new = PickleSerializer(signing_key="new-key-" * 4)
    blob = old.dumps("value")
    with pytest.raises(UndecodableEntry):
        new.loads(blob)
    rotated = PickleSerializer(signing_key="new-key-" * 4, fallback_keys=["old-key-" * 4])
    assert rotated.loads(blob) == "value"


@pytest.mark.parametrize("key", ["dev", "secret key", b"\x00", "k" * 500])
def test_signing_keys_of_any_length_work(key: str | bytes) -> None:
    serializer = PickleSerializer(signing_key=key)
    assert serializer.loads(serializer.dumps({"a": 1})) == {"a": 1}
    with pytest.raises(UndecodableEntry, match="signature"):
        PickleSerializer(signing_key=key + key[:1]).loads(serializer.dumps({"a": 1}))


@pytest.mark.parametrize("key", ["", b"", 1234])
def test_empty_or_non_text_signing_keys_are_rejected(key: object) -> None:
    with pytest.raises(ConfigurationError, match="non-empty str or bytes"):
        PickleSerializer(signing_key=key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "blob",
    [b"", b"fs", b"fs1p", b"fs1p\x80\x05garbage", b"fs1x" + b"{}", b"fs0p" + pickle.dumps(1)],
)
def test_garbage_and_other_formats_are_undecodable(blob: bytes) -> None:
    with pytest.raises(UndecodableEntry):
        PickleSerializer().loads(blob)


def test_store_counts_foreign_entries_as_misses() -> None:
    backend = MemoryBackend()
    pickled = Store(backend, serializer=PickleSerializer())
    pickled.set("a", [1, 2])
    as_json = Store(backend, serializer=JsonSerializer())
    signed = Store(backend, serializer=PickleSerializer(signing_key="s" * 16))
    assert as_json.get("a") is pickled.get("missing")  # MISS
    assert signed.get("a") is pickled.get("missing")
    assert as_json.stats.get(UNDECODABLE) == 1
    assert signed.stats.get(UNDECODABLE) == 1
    assert pickled.get("a") == [1, 2]

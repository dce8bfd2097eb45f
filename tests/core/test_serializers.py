from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import pickle
import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest

from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.errors import (
    ConfigurationError,
    SerializationError,
    SignatureMismatch,
    UndecodableEntry,
)
from flask_stash.core.serializers import (
    CustomSerializer,
    JsonSerializer,
    PickleSerializer,
    Serializer,
)
from flask_stash.core.signing import derive_key
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


# -- the blob format, pinned ---------------------------------------------------------------


def _mac(secret: str, label: bytes, payload: bytes) -> bytes:
    return hmac.new(derive_key(secret, label), payload, hashlib.sha256).digest()


def test_plain_blobs_are_a_marker_then_the_payload() -> None:
    assert PickleSerializer().dumps([1]) == b"fs1p" + pickle.dumps([1], pickle.HIGHEST_PROTOCOL)
    assert JsonSerializer().dumps([1, "a"]) == b'fs1j[1,"a"]'
    assert CustomSerializer(_Upper()).dumps("ab") == b"fs1uAB"


@pytest.mark.parametrize(
    ("make", "mark", "label", "payload"),
    [
        (PickleSerializer, b"fs2s", b"entry:pickle", pickle.dumps([1], pickle.HIGHEST_PROTOCOL)),
        (JsonSerializer, b"fs2j", b"entry:json", b"[1]"),
        (lambda **keys: CustomSerializer(_Upper(), **keys), b"fs2u", b"entry:custom", b"[1]"),
    ],
)
def test_signed_blobs_are_marker_mac_payload_with_a_key_per_format(
    make: Callable[..., Serializer], mark: bytes, label: bytes, payload: bytes
) -> None:
    serializer = make(signing_key="secret")
    blob = serializer.dumps([1])
    assert blob == mark + _mac("secret", label, payload) + payload
    assert serializer.loads(blob) == [1]
    # Signed with a fallback key: accepted, and new blobs use the current key.
    rotated = make(signing_key="new", fallback_keys=["older", "secret"])
    assert rotated.loads(blob) == [1]
    assert rotated.dumps([1]) == mark + _mac("new", label, payload) + payload
    with pytest.raises(SignatureMismatch, match=r"^signature mismatch: tampered, or signed"):
        make(signing_key="new", fallback_keys=["older"]).loads(blob)


def test_names_and_secrets() -> None:
    assert JsonSerializer().name == "json"
    assert JsonSerializer(signing_key="k").name == "json-signed"
    assert CustomSerializer(_Upper()).name == "_Upper"
    assert CustomSerializer(_Upper(), signing_key="k").name == "_Upper"
    for make in (PickleSerializer, JsonSerializer, lambda **k: CustomSerializer(_Upper(), **k)):
        assert make().secrets == (None, ())
        assert not make().signed
        assert make().signer is None
        signed = make(signing_key="k", fallback_keys=iter(["old"]))
        assert signed.secrets == ("k", ("old",))
        assert signed.signed


@pytest.mark.parametrize("make", [PickleSerializer, JsonSerializer])
def test_fallback_keys_without_a_signing_key_are_refused(make: Callable[..., Serializer]) -> None:
    with pytest.raises(ConfigurationError, match=r"^fallback_keys need a signing_key$"):
        make(fallback_keys=["old"])


# -- what a refused blob says ------------------------------------------------------------


@pytest.mark.parametrize(
    ("serializer", "blob", "message"),
    [
        (PickleSerializer(), b"fs1jab", "format marker b'fs1j' is not b'fs1p'"),
        (PickleSerializer(), b"fs", "format marker b'fs' is not b'fs1p'"),
        (JsonSerializer(), b"fs1p[1]", "format marker b'fs1p' is not b'fs1j'"),
        (JsonSerializer(), b"fs1jX", "corrupt tagged JSON: JSONDecodeError: "),
        (
            PickleSerializer(signing_key="k"),
            b"fs1p" + pickle.dumps(1),
            "unsigned or foreign entry refused: format marker b'fs1p' is not b'fs2s'",
        ),
        (
            JsonSerializer(signing_key="k"),
            b"fs2s" + bytes(40),
            "unsigned or foreign entry refused: format marker b'fs2s' is not b'fs2j'",
        ),
    ],
)
def test_refusals_name_the_marker_found_and_expected(
    serializer: Serializer, blob: bytes, message: str
) -> None:
    with pytest.raises(UndecodableEntry) as info:
        serializer.loads(blob)
    assert str(info.value).startswith(message)
    assert type(info.value) is UndecodableEntry


def test_corrupt_pickles_are_undecodable_signed_or_not() -> None:
    with pytest.raises(UndecodableEntry, match=r"^corrupt pickle: UnpicklingError\("):
        PickleSerializer().loads(b"fs1p\x80\x05garbage")
    # A valid MAC over a payload that is not a pickle: checked, then refused.
    payload = b"\x80\x05garbage"
    blob = b"fs2s" + _mac("k", b"entry:pickle", payload) + payload
    with pytest.raises(UndecodableEntry, match=r"^corrupt pickle: UnpicklingError\("):
        PickleSerializer(signing_key="k").loads(blob)


def test_unpicklable_values_name_their_type() -> None:
    with pytest.raises(SerializationError, match=r"^cannot pickle function: "):
        PickleSerializer().dumps(lambda: None)


# -- an application's serializer -----------------------------------------------------------


class _Upper:
    """A cachelib-style serializer: ``str`` out, ``bytes`` in, refusing what it cannot do."""

    def __init__(self, returns: object = "") -> None:
        self.returns = returns
        self.loaded: list[object] = []

    def dumps(self, obj: object) -> object:
        if isinstance(obj, list):
            return json.dumps(obj, separators=(",", ":"))
        if not isinstance(obj, str):
            raise TypeError("strings only")
        return obj.upper() if self.returns == "" else self.returns

    def loads(self, data: bytes) -> object:
        self.loaded.append(data)
        if data.startswith(b"["):
            return json.loads(data)
        if not data.isupper():
            raise ValueError("not upper case")
        return data.decode().lower()


def test_custom_serializer_round_trip_passes_bytes_to_the_inner_loads() -> None:
    inner = _Upper()
    serializer = CustomSerializer(inner)
    assert serializer.loads(serializer.dumps("ab")) == "ab"
    assert inner.loaded == [b"AB"]
    assert type(inner.loaded[0]) is bytes


def test_custom_serializer_accepts_bytes_like_results() -> None:
    assert CustomSerializer(_Upper(returns=bytearray(b"XY"))).dumps("ab") == b"fs1uXY"
    assert CustomSerializer(_Upper(returns=b"XY")).dumps("ab") == b"fs1uXY"


def test_custom_serializer_refusals_are_serialization_errors() -> None:
    with pytest.raises(SerializationError, match=r"^_Upper cannot serialize int$") as info:
        CustomSerializer(_Upper()).dumps(1)
    assert isinstance(info.value.__cause__, TypeError)
    # cachelib's serializers answer None when they cannot pickle.
    with pytest.raises(SerializationError, match=r"^_Upper cannot serialize str$"):
        CustomSerializer(_Upper(returns=None)).dumps("ab")


def test_custom_serializer_garbage_is_undecodable() -> None:
    with pytest.raises(
        UndecodableEntry, match=r"^_Upper could not load the entry: ValueError\('not upper case'\)$"
    ):
        CustomSerializer(_Upper()).loads(b"fs1uab")
    with pytest.raises(UndecodableEntry, match="format marker b'fs1p' is not b'fs1u'"):
        CustomSerializer(_Upper()).loads(b"fs1pAB")


class _Thing:
    pass


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (_Thing(), "value"),
        ([0, _Thing()], "value[1]"),
        ((0, 1, _Thing()), "value[2]"),
        ({"a": (0, [_Thing()])}, "value['a'][1][0]"),
        ({_Thing()}, "value[0]"),
        (frozenset([_Thing()]), "value[0]"),
        ({1: _Thing()}, "value[1]"),  # a non-string key: stored as pairs
        ({(1, "x"): [_Thing()]}, "value[(1, 'x')][0]"),
        ({_Thing(): 1}, "value"),  # the key itself
        ({"k": {7: {_Thing(): 1}}}, "value['k'][7]"),
    ],
)
def test_values_json_cannot_hold_are_refused_with_their_path(value: object, path: str) -> None:
    with pytest.raises(SerializationError) as info:
        JsonSerializer().dumps(value)
    assert str(info.value) == (
        f"{path}: {__name__}._Thing is not JSON-serializable; "
        "use the pickle serializer or convert it to a supported type"
    )

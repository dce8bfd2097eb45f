"""Tagged JSON: a lossless encoding of common Python types into plain JSON.

A non-JSON type becomes a one-key object whose key starts with ``"\\x00"`` (a character no
sane dictionary key starts with); a user dict that does start a key that way is encoded as
a list of pairs, so decoding is never ambiguous. Decoding only builds data: no code runs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask_stash.core.errors import SerializationError, UndecodableEntry

_PLAIN = (str, int, bool, type(None))


def dumps(obj: object) -> bytes:
    """Encode ``obj`` as tagged JSON bytes; raise :class:`SerializationError` if impossible."""
    return json.dumps(_encode(obj, "value"), separators=(",", ":"), allow_nan=True).encode()


def loads(data: bytes) -> object:
    """Decode tagged JSON bytes; raise :class:`UndecodableEntry` if they are not ours.

    Malformed input fails in many ways (``RecursionError`` for deep nesting, decimal's
    ``InvalidOperation``, ``OverflowError`` from a huge ``timedelta``, ``TypeError`` for a
    tag with a payload of the wrong type...): every one of them is an undecodable entry.
    """
    try:
        return _decode(json.loads(data))
    except Exception as exc:  # any of the above, and whatever a decoder raises on garbage
        raise UndecodableEntry(f"corrupt tagged JSON: {type(exc).__name__}: {exc}") from exc


def _encode(obj: Any, path: str) -> Any:
    kind = type(obj)
    if kind in _PLAIN:
        return obj
    if kind is float:
        return obj if math.isfinite(obj) else {"\x00f": repr(obj)}
    if kind is list:
        return [_encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if kind is dict:
        return _encode_dict(obj, path)
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise SerializationError(
            f"{path}: {kind.__module__}.{kind.__qualname__} is not JSON-serializable; "
            "use the pickle serializer or convert it to a supported type"
        )
    tag, payload = encoder(obj, path)
    return {tag: payload}


def _encode_dict(obj: dict[object, object], path: str) -> Any:
    if all(type(k) is str and not k.startswith("\x00") for k in obj):
        return {k: _encode(v, f"{path}[{k!r}]") for k, v in obj.items()}
    pairs = [[_encode(k, path), _encode(v, f"{path}[{k!r}]")] for k, v in obj.items()]
    return {"\x00m": pairs}


def _items(obj: Any, path: str) -> list[Any]:
    return [_encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]


def _sorted_items(obj: Any, path: str) -> list[Any]:
    items = _items(obj, path)
    # Sets are unordered; a canonical order makes equal sets encode to equal bytes.
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


_ENCODERS: dict[type, Callable[[Any, str], tuple[str, Any]]] = {
    tuple: lambda o, p: ("\x00t", _items(o, p)),
    set: lambda o, p: ("\x00s", _sorted_items(o, p)),
    frozenset: lambda o, p: ("\x00fs", _sorted_items(o, p)),
    bytes: lambda o, p: ("\x00b", base64.b64encode(o).decode()),
    dt.datetime: lambda o, p: ("\x00dt", o.isoformat()),
    dt.date: lambda o, p: ("\x00d", o.isoformat()),
    dt.time: lambda o, p: ("\x00tm", o.isoformat()),
    dt.timedelta: lambda o, p: ("\x00td", [o.days, o.seconds, o.microseconds]),
    uuid.UUID: lambda o, p: ("\x00u", str(o)),
    Decimal: lambda o, p: ("\x00D", str(o)),
}

_DECODERS: dict[str, Callable[[Any], object]] = {
    "\x00f": float,
    "\x00m": lambda pairs: {_decode(k): _decode(v) for k, v in pairs},
    "\x00t": lambda items: tuple(_decode(v) for v in items),
    "\x00s": lambda items: {_decode(v) for v in items},
    "\x00fs": lambda items: frozenset(_decode(v) for v in items),
    "\x00b": lambda text: base64.b64decode(text, validate=True),
    "\x00dt": dt.datetime.fromisoformat,
    "\x00d": dt.date.fromisoformat,
    "\x00tm": dt.time.fromisoformat,
    "\x00td": lambda parts: dt.timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2]),
    "\x00u": uuid.UUID,
    "\x00D": Decimal,
}


def _decode(obj: Any) -> object:
    if type(obj) is list:
        return [_decode(v) for v in obj]
    if type(obj) is not dict:
        return obj
    if len(obj) == 1:
        ((key, payload),) = obj.items()
        if key.startswith("\x00"):
            return _DECODERS[key](payload)
    return {k: _decode(v) for k, v in obj.items()}

"""Bytes that someone with write access to a cache backend could put under our keys.

Each is written straight into a backend (bypassing the store) by the tests that use it;
every one must read back as a counted miss, never an exception.
"""

from __future__ import annotations

import json
import os
import pickle

from flask_stash.core.serializers import JsonSerializer, PickleSerializer


def _json_entry(value: object, *fields: object) -> bytes:
    """An unsigned JSON entry whose value (or metadata) is raw tagged JSON."""
    meta = list(fields) or [1.0, None, None, None, {"\x00t": []}, 0.0]
    return b"fs1j" + json.dumps({"\x00t": [value, *meta]}).encode()


def _deep(depth: int) -> bytes:
    return b"fs1j" + b"[" * depth + b"]" * depth


def _deep_tags(depth: int) -> bytes:
    return b"fs1j" + b'{"\\u0000t":[' * depth + b"1" + b"]}" * depth


_REAL_JSON = JsonSerializer().dumps(("value", 1.0, None, None, None, (), 0.0))
_REAL_PICKLE = PickleSerializer().dumps(("value", 1.0, None, None, None, (), 0.0))
_SIGNED = PickleSerializer(signing_key="someone else").dumps(
    ("value", 1.0, None, None, None, (), 0.0)
)

#: name -> bytes; names are the pytest ids.
BLOBS: dict[str, bytes] = {
    "empty": b"",
    "marker only": b"fs1j",
    "foreign bytes": os.urandom(64),
    "other library's pickle": pickle.dumps({"a": 1}),
    "bare integer": b"7",
    "forged balance": b"999999",
    "negative integer": b"-42",
    "text": b"hello world",
    "truncated json entry": _REAL_JSON[: len(_REAL_JSON) // 2],
    "truncated pickle entry": _REAL_PICKLE[: len(_REAL_PICKLE) // 2],
    "truncated signed entry": _SIGNED[:20],
    "signed with another key": _SIGNED,
    "json deep nesting": _deep(200_000),
    "json deep tag nesting": _deep_tags(50_000),
    "json bad decimal": _json_entry({"\x00D": "not a number"}),
    "json huge timedelta": _json_entry({"\x00td": [10**12, 0, 0]}),
    "json bad datetime": _json_entry({"\x00dt": "yesterday"}),
    "json datetime of wrong type": _json_entry({"\x00dt": 5}),
    "json bad base64": _json_entry({"\x00b": "!!!"}),
    "json uuid of wrong type": _json_entry({"\x00u": [1]}),
    "json unhashable set item": _json_entry({"\x00s": [[1]]}),
    "json bad mapping pairs": _json_entry({"\x00m": [[1]]}),
    "json mapping of wrong type": _json_entry({"\x00m": 5}),
    "json unknown tag": _json_entry({"\x00zz": 1}),
    "json bad float": _json_entry({"\x00f": "abc"}),
    "json huge integer": b"fs1j" + b"9" * 10_000,
    "json invalid utf-8": b"fs1j\xff\xfe[1]",
    "json wrong arity": b"fs1j" + json.dumps({"\x00t": [1, 2]}).encode(),
    "json not an entry": b"fs1j" + json.dumps({"a": 1}).encode(),
    "json created of wrong type": _json_entry(1, "x", None, None, None, {"\x00t": []}, 0.0),
    "json expiry of wrong type": _json_entry(1, 1.0, "soon", None, None, {"\x00t": []}, 0.0),
    "json version of wrong type": _json_entry(1, 1.0, None, None, 5, {"\x00t": []}, 0.0),
    "json tags of wrong type": _json_entry(1, 1.0, None, None, None, [[1, 2]], 0.0),
    "json cost of wrong type": _json_entry(1, 1.0, None, None, None, {"\x00t": []}, "x"),
    "pickle garbage": b"fs1p\x80\x05garbage",
    "pickle wrong arity": b"fs1p" + pickle.dumps((1, 2)),
    "pickle created of wrong type": b"fs1p" + pickle.dumps((1, "x", None, None, None, (), 0.0)),
    "pickle tags of wrong type": b"fs1p" + pickle.dumps((1, 1.0, None, None, None, [5], 0.0)),
}

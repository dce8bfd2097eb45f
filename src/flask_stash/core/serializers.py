"""Turning entries into bytes and back, with a format marker on every blob.

Every blob starts with a four-byte marker naming its format. A blob written by another
serializer, an older version, or anything else (a foreign value under our prefix) is
rejected with :class:`UndecodableEntry`, which the engine counts and treats as a miss.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections.abc import Iterable
from typing import Protocol

from flask_stash.core import jsontags
from flask_stash.core.errors import ConfigurationError, SerializationError, UndecodableEntry

PICKLE_MARK = b"fs1p"
SIGNED_PICKLE_MARK = b"fs1s"
JSON_MARK = b"fs1j"
_MAC_SIZE = hashlib.sha256().digest_size


class Serializer(Protocol):
    """Converts a Python object to bytes carrying a format marker, and back."""

    name: str

    def dumps(self, obj: object) -> bytes:
        """Raise :class:`SerializationError` if ``obj`` cannot be represented."""
        ...

    def loads(self, data: bytes) -> object:
        """Raise :class:`UndecodableEntry` for anything this serializer did not write."""
        ...


class PickleSerializer:
    """Pickle, signed with HMAC-SHA256 when a ``signing_key`` is given.

    With a key, a blob whose signature does not verify (tampered, written with another key,
    or unsigned) is never unpickled. ``fallback_keys`` are accepted for reading so keys can
    be rotated without dropping the whole cache.
    """

    def __init__(
        self,
        signing_key: str | bytes | None = None,
        fallback_keys: Iterable[str | bytes] = (),
        protocol: int = pickle.HIGHEST_PROTOCOL,
    ) -> None:
        self._key = _as_key(signing_key) if signing_key is not None else None
        self._fallbacks = tuple(_as_key(k) for k in fallback_keys)
        if self._fallbacks and self._key is None:
            raise ConfigurationError("fallback_keys need a signing_key")
        self._protocol = protocol
        self.name = "pickle-signed" if self._key else "pickle"
        if self._key is None:
            self.loads = self._loads_unsigned  # type: ignore[method-assign]

    def dumps(self, obj: object) -> bytes:
        try:
            payload = pickle.dumps(obj, self._protocol)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            raise SerializationError(f"cannot pickle {type(obj).__name__}: {exc}") from exc
        if self._key is None:
            return PICKLE_MARK + payload
        return SIGNED_PICKLE_MARK + _mac(self._key, payload) + payload

    def _loads_unsigned(self, data: bytes) -> object:
        # Kept flat: this runs on every hit of an unsigned cache.
        if data[:4] != PICKLE_MARK:
            raise UndecodableEntry(_foreign(data[:4], PICKLE_MARK))
        try:
            return pickle.loads(data[4:])
        except Exception as exc:  # any garbage can make unpickling fail in any way
            raise UndecodableEntry(f"corrupt pickle: {exc!r}") from exc

    def loads(self, data: bytes) -> object:
        mark = data[:4]
        if mark != SIGNED_PICKLE_MARK:
            raise UndecodableEntry("unsigned or foreign entry refused: " + _foreign(mark, mark))
        mac, payload = data[4 : 4 + _MAC_SIZE], memoryview(data)[4 + _MAC_SIZE :]
        if not any(hmac.compare_digest(mac, _mac(k, payload)) for k in self._keys()):
            raise UndecodableEntry("signature mismatch: entry tampered or signed with another key")
        return _unpickle(payload)

    def _keys(self) -> tuple[bytes, ...]:
        return (self._key, *self._fallbacks) if self._key else ()


class JsonSerializer:
    """Lossless tagged JSON that never executes code on load.

    Round-trips ``tuple``, ``bytes``, ``datetime``, ``date``, ``time``, ``timedelta``,
    ``UUID``, ``Decimal``, ``set``, ``frozenset`` and dicts with non-string keys, nested
    freely. Anything else raises :class:`SerializationError` at write time.
    """

    name = "json"

    def dumps(self, obj: object) -> bytes:
        return JSON_MARK + jsontags.dumps(obj)

    def loads(self, data: bytes) -> object:
        if data[:4] != JSON_MARK:
            raise UndecodableEntry(_foreign(data[:4], JSON_MARK))
        return jsontags.loads(data[4:])


def _as_key(key: str | bytes) -> bytes:
    raw = key.encode() if isinstance(key, str) else key
    if not isinstance(raw, bytes) or len(raw) < 16:
        raise ConfigurationError("a signing key must be str or bytes of at least 16 bytes")
    return raw


def _mac(key: bytes, payload: bytes | memoryview) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def _unpickle(payload: bytes | memoryview) -> object:
    try:
        return pickle.loads(payload)
    except Exception as exc:  # any garbage can make unpickling fail in any way
        raise UndecodableEntry(f"corrupt pickle: {exc!r}") from exc


def _foreign(mark: bytes, expected: bytes) -> str:
    return f"format marker {mark!r} is not {expected!r}"

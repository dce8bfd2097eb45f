"""Turning entries into bytes and back, with a format marker on every blob.

Every blob starts with a four-byte marker naming its format. A blob written by another
serializer, an older version, or anything else (a foreign value under our prefix) is
rejected with :class:`UndecodableEntry`, which the engine counts and treats as a miss.

With a signing key every format is authenticated the same way: marker, HMAC-SHA256 of
the payload (with a key derived for that format, see :mod:`flask_stash.core.signing`),
payload. A blob whose MAC does not verify is never parsed: a forged pickle never runs
and a forged JSON document is never built.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from flask_stash.core import jsontags
from flask_stash.core.errors import (
    ConfigurationError,
    SerializationError,
    SignatureMismatch,
    UndecodableEntry,
)
from flask_stash.core.signing import MAC_SIZE, Secret, Signer

PICKLE_MARK = b"fs1p"
# "2": keys are derived (HKDF) since this version; entries signed before are foreign.
SIGNED_PICKLE_MARK = b"fs2s"
JSON_MARK = b"fs1j"
SIGNED_JSON_MARK = b"fs2j"
CUSTOM_MARK = b"fs1u"
SIGNED_CUSTOM_MARK = b"fs2u"


class Serializer(Protocol):
    """Converts a Python object to bytes carrying a format marker, and back.

    A serializer that authenticates its blobs also has a ``signer`` attribute (a
    :class:`~flask_stash.core.signing.Signer`): the store then seals counters with a key
    derived from it and skips re-checking the entries it reads.
    """

    name: str

    def dumps(self, obj: object) -> bytes:
        """Raise :class:`SerializationError` if ``obj`` cannot be represented."""
        ...

    def loads(self, data: bytes) -> object:
        """Raise :class:`UndecodableEntry` for anything this serializer did not write."""
        ...


class _Format:
    """Marker, optional MAC and payload around one encoding (``encode``/``decode``).

    Subclasses give the two markers and a label that selects the derived key; ``signer``
    is ``None`` without a key. ``loads`` is bound once to the signed or unsigned path so
    the hit path tests nothing it already knows.
    """

    plain_mark: bytes
    signed_mark: bytes
    label: bytes
    name: str

    def __init__(self, signing_key: Secret | None, fallback_keys: Iterable[Secret]) -> None:
        fallbacks = tuple(fallback_keys)
        if fallbacks and signing_key is None:
            raise ConfigurationError("fallback_keys need a signing_key")
        #: The secrets this format signs with, to build another format on the same keys.
        self.secrets: tuple[Secret | None, tuple[Secret, ...]] = (signing_key, fallbacks)
        self.signer = (
            None if signing_key is None else Signer.from_secrets(signing_key, fallbacks, self.label)
        )
        self.signed = self.signer is not None
        self.loads: Callable[[bytes], object] = (
            self._loads_signed if self.signed else self._loads_plain
        )

    def encode(self, obj: object) -> bytes:
        raise NotImplementedError

    def decode(self, payload: bytes | memoryview) -> object:
        """Parse a payload; raise :class:`UndecodableEntry` for any malformed one."""
        raise NotImplementedError

    def dumps(self, obj: object) -> bytes:
        payload = self.encode(obj)
        if self.signer is None:
            return self.plain_mark + payload
        return self.signed_mark + self.signer.sign(payload) + payload

    def _loads_plain(self, data: bytes) -> object:
        if data[:4] != self.plain_mark:
            raise UndecodableEntry(_foreign(data[:4], self.plain_mark))
        return self.decode(memoryview(data)[4:])

    def _loads_signed(self, data: bytes) -> object:
        mark = data[:4]
        if mark != self.signed_mark:
            raise UndecodableEntry(
                "unsigned or foreign entry refused: " + _foreign(mark, self.signed_mark)
            )
        mac, payload = data[4 : 4 + MAC_SIZE], memoryview(data)[4 + MAC_SIZE :]
        if not self.signer.verify(mac, payload):  # type: ignore[union-attr]
            raise SignatureMismatch("signature mismatch: tampered, or signed with another key")
        return self.decode(payload)


class PickleSerializer(_Format):
    """Pickle, signed with HMAC-SHA256 when a ``signing_key`` is given.

    With a key, a blob whose signature does not verify (tampered, written with another key,
    or unsigned) is never unpickled. ``fallback_keys`` are accepted for reading so keys can
    be rotated without dropping the whole cache. Keys of any length work (they are derived,
    see :func:`flask_stash.core.signing.derive_key`); a short one is merely guessable.
    """

    plain_mark = PICKLE_MARK
    signed_mark = SIGNED_PICKLE_MARK
    label = b"entry:pickle"

    def __init__(
        self,
        signing_key: Secret | None = None,
        fallback_keys: Iterable[Secret] = (),
        protocol: int = pickle.HIGHEST_PROTOCOL,
    ) -> None:
        super().__init__(signing_key, fallback_keys)
        self._protocol = protocol
        self.name = "pickle-signed" if self.signed else "pickle"

    def encode(self, obj: object) -> bytes:
        try:
            return pickle.dumps(obj, self._protocol)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            raise SerializationError(f"cannot pickle {type(obj).__name__}: {exc}") from exc

    def decode(self, payload: bytes | memoryview) -> object:
        try:
            return pickle.loads(payload)
        except Exception as exc:  # any garbage can make unpickling fail in any way
            raise UndecodableEntry(f"corrupt pickle: {exc!r}") from exc

    def _loads_plain(self, data: bytes) -> object:
        # Kept flat: this runs on every hit of an unsigned cache.
        if data[:4] != PICKLE_MARK:
            raise UndecodableEntry(_foreign(data[:4], PICKLE_MARK))
        try:
            return pickle.loads(data[4:])  # a copy, but faster than a view when small
        except Exception as exc:  # any garbage can make unpickling fail in any way
            raise UndecodableEntry(f"corrupt pickle: {exc!r}") from exc


class JsonSerializer(_Format):
    """Lossless tagged JSON that never executes code on load.

    Round-trips ``tuple``, ``bytes``, ``datetime``, ``date``, ``time``, ``timedelta``,
    ``UUID``, ``Decimal``, ``set``, ``frozenset`` and dicts with non-string keys, nested
    freely. Anything else raises :class:`SerializationError` at write time. With a
    ``signing_key`` entries are authenticated exactly like signed pickle.
    """

    plain_mark = JSON_MARK
    signed_mark = SIGNED_JSON_MARK
    label = b"entry:json"

    def __init__(
        self, signing_key: Secret | None = None, fallback_keys: Iterable[Secret] = ()
    ) -> None:
        super().__init__(signing_key, fallback_keys)
        self.name = "json-signed" if self.signed else "json"

    def encode(self, obj: object) -> bytes:
        return jsontags.dumps(obj)

    def decode(self, payload: bytes | memoryview) -> object:
        return jsontags.loads(bytes(payload))


class CustomSerializer(_Format):
    """An application's serializer (any object with ``dumps``/``loads``) behind our
    marker, and signed like the built-in formats when a key exists."""

    plain_mark = CUSTOM_MARK
    signed_mark = SIGNED_CUSTOM_MARK
    label = b"entry:custom"

    def __init__(
        self, inner: Any, signing_key: Secret | None = None, fallback_keys: Iterable[Secret] = ()
    ) -> None:
        super().__init__(signing_key, fallback_keys)
        self.inner = inner
        self.name = type(inner).__name__

    def encode(self, obj: object) -> bytes:
        try:
            data = self.inner.dumps(obj)
        except Exception as exc:  # a user serializer refuses values in its own way
            raise SerializationError(f"{self.name} cannot serialize {type(obj).__name__}") from exc
        if data is None:  # cachelib's serializers return None when pickling fails
            raise SerializationError(f"{self.name} cannot serialize {type(obj).__name__}")
        return data.encode() if isinstance(data, str) else bytes(data)

    def decode(self, payload: bytes | memoryview) -> object:
        try:
            return self.inner.loads(bytes(payload))
        except Exception as exc:  # a user serializer may fail in any way on garbage
            raise UndecodableEntry(f"{self.name} could not load the entry: {exc!r}") from exc


def _foreign(mark: bytes, expected: bytes) -> str:
    return f"format marker {mark!r} is not {expected!r}"

"""A user's serializer (cachelib's ``dumps``/``loads`` objects) behind our format marker."""

from __future__ import annotations

from typing import Any

from flask_stash.core.errors import SerializationError, UndecodableEntry


def is_serializer(candidate: object) -> bool:
    """Whether ``candidate`` has callable ``dumps`` and ``loads`` (cachelib's protocol)."""
    return callable(getattr(candidate, "dumps", None)) and callable(
        getattr(candidate, "loads", None)
    )


class UserSerializer:
    """Entries written with ``inner`` carry a marker, so blobs written otherwise (by
    another serializer, or forged) are misses, and ``inner`` may fail in any way on them."""

    mark = b"fs1u"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = type(inner).__name__

    def dumps(self, obj: object) -> bytes:
        try:
            data = self.inner.dumps(obj)
        except Exception as exc:  # a user serializer refuses values in its own way
            raise SerializationError(f"{self.name} cannot serialize {type(obj).__name__}") from exc
        if data is None:  # cachelib's serializers return None when pickling fails
            raise SerializationError(f"{self.name} cannot serialize {type(obj).__name__}")
        return self.mark + (data.encode() if isinstance(data, str) else bytes(data))

    def loads(self, data: bytes) -> object:
        if data[:4] != self.mark:
            raise UndecodableEntry("written by another serializer")
        try:
            return self.inner.loads(data[4:])
        except Exception as exc:  # a user serializer may fail in any way on garbage
            raise UndecodableEntry(f"{self.name} could not load the entry: {exc!r}") from exc

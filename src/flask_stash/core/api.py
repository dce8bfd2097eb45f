"""The backend contract: a small storage protocol plus optional capabilities.

Backends are dumb byte stores with a time to live. Freshness, staleness, versions and tags
live in the :class:`~flask_stash.core.entry.Entry` the engine stores *inside* the bytes, so
every backend gets those features for free.

Keys are ``str``, values are ``bytes``. A miss is :data:`MISS`, never ``None``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import Final, Literal, Protocol, runtime_checkable


class _Miss(enum.Enum):
    MISS = "MISS"

    def __repr__(self) -> str:
        return "MISS"

    def __bool__(self) -> bool:
        return False


#: Returned by a backend (and by :meth:`Store.get_entry`) for an absent key.
#: A stored ``None`` is a hit; only ``MISS`` means "not there".
MISS: Final = _Miss.MISS
Miss = Literal[_Miss.MISS]

#: Time to live in seconds; ``None`` means "never expires".
TTL = float | None


@runtime_checkable
class Backend(Protocol):
    """What every storage backend implements.

    ``ttl`` is ``None`` (never expires) or a positive number of seconds. Implementations
    raise :class:`~flask_stash.core.errors.BackendError` for storage failures and nothing
    else; :class:`~flask_stash.core.backends.base.BaseBackend` does that wrapping once.
    """

    #: Longest key the store accepts, or ``None`` when unlimited. Longer keys are hashed
    #: by the engine, never truncated.
    max_key_length: int | None

    def get(self, key: str) -> bytes | Miss: ...

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]: ...

    def set(self, key: str, value: bytes, ttl: TTL) -> None: ...

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None: ...

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        """Store only if ``key`` is absent; return whether it was stored."""
        ...

    def delete(self, key: str) -> bool: ...

    def delete_many(self, keys: Sequence[str]) -> int: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class SupportsAtomicAdd(Protocol):
    """``add`` is atomic across every process sharing the store (not just this one)."""

    atomic_add: Literal[True]


@runtime_checkable
class SupportsIncrement(Protocol):
    """Atomic integer counters stored as ASCII decimal bytes (``b"42"``)."""

    def incr(self, key: str, delta: int, ttl: TTL) -> int: ...


@runtime_checkable
class SupportsLock(Protocol):
    """Mutual exclusion across processes: owner token plus a lease that expires."""

    def acquire_lock(self, name: str, token: str, lease: float) -> bool: ...

    def release_lock(self, name: str, token: str) -> bool: ...


@runtime_checkable
class SupportsPublish(Protocol):
    """Fire-and-forget messages to every process sharing the store."""

    def publish(self, channel: str, message: bytes) -> None: ...

    def subscribe(self, channel: str) -> Iterator[bytes]: ...


@runtime_checkable
class SupportsScan(Protocol):
    """Iterate over stored keys starting with a prefix, without blocking the store."""

    def scan(self, prefix: str) -> Iterator[str]: ...


def check_ttl(ttl: TTL) -> TTL:
    """Validate a backend TTL: ``None`` or a positive finite number of seconds."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be a number of seconds or None, not {type(ttl).__name__}")
    if not ttl > 0 or ttl == float("inf"):
        raise ValueError(f"ttl must be a positive, finite number of seconds, got {ttl!r}")
    return ttl

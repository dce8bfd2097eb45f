"""A backend that stores nothing: every read is a miss. Useful to switch caching off."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flask_stash.core.api import MISS, TTL, Miss, check_ttl
from flask_stash.core.backends.base import BaseBackend


class NullBackend(BaseBackend):
    """Accepts every write and forgets it (Flask-Caching's ``NullCache``)."""

    def __init__(self, default_timeout: float | None = 300) -> None:
        self.default_timeout = default_timeout

    def get(self, key: str) -> bytes | Miss:
        return MISS

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        return [MISS] * len(keys)

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        check_ttl(ttl)

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        check_ttl(ttl)

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        check_ttl(ttl)
        return True

    def delete(self, key: str) -> bool:
        return False

    def delete_many(self, keys: Sequence[str]) -> int:
        return 0

    def clear(self) -> None:
        return None

"""Helpers for the in-process tier tests: tiers on a test server, waits, a gated remote."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from flask_stash.core.api import TTL, Miss
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.tier import TieredBackend

from ..servers import HOST, Server

#: Bound for effects in another thread or process (a message's delivery): generous, since
#: the machine is shared; the gunicorn test measures the real figure against 50 ms.
SETTLE = 5.0


def redis_tier(server: Server, namespace: str, **options: Any) -> TieredBackend:
    """A tier over its own client of ``server`` (two of them: two processes)."""
    remote = RedisBackend(host=HOST, port=server.port, db=3, namespace=namespace)
    return TieredBackend(remote, **options)


def synced(*tiers: TieredBackend) -> None:
    for tier in tiers:
        assert tier.wait_synced(SETTLE), f"{tier!r} never subscribed"


def eventually(check: Callable[[], bool], timeout: float = SETTLE) -> float:
    """Poll ``check`` (an effect of another thread or process) until it holds; the wait."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.001)
    return time.monotonic() - start


class GatedRemote:
    """A remote whose next read or write, once :attr:`hold` is set, stops after reaching
    Redis and waits for :attr:`release`: the window where a read has the old value (or a
    write has been made) and the tier has not kept it yet. ``subscribe`` waits for
    :attr:`allow_subscribe` (set by default)."""

    def __init__(self, inner: RedisBackend) -> None:
        self.inner = inner
        self.max_key_length = inner.max_key_length
        self.namespace = inner.namespace
        self.hold = False
        self.fetched = threading.Event()
        self.release = threading.Event()
        self.allow_subscribe = threading.Event()
        self.allow_subscribe.set()

    def _gate(self) -> None:
        if self.hold:
            self.hold = False  # one call only
            self.fetched.set()
            assert self.release.wait(SETTLE)

    def get(self, key: str) -> bytes | Miss:
        value = self.inner.get(key)
        self._gate()
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        values = self.inner.get_many(keys)
        self._gate()
        return values

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        self.inner.set(key, value, ttl)
        self._gate()

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        self.inner.set_many(items, ttl)

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        return self.inner.add(key, value, ttl)

    def delete(self, key: str) -> bool:
        return self.inner.delete(key)

    def delete_many(self, keys: Sequence[str]) -> int:
        return self.inner.delete_many(keys)

    def clear(self) -> None:
        self.inner.clear()

    def close(self) -> None:
        self.inner.close()

    def publish(self, channel: str, message: bytes) -> None:
        self.inner.publish(channel, message)

    def subscribe(self, channel: str) -> Iterator[bytes]:
        self.allow_subscribe.wait()
        return self.inner.subscribe(channel)

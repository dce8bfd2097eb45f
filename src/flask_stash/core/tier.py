"""An in-process tier in front of a shared backend: memory-speed hits, coherent writes.

:class:`TieredBackend` is a :class:`~flask_stash.core.api.Backend` that keeps recently
read and written values in a bounded LRU of this process (a
:class:`~flask_stash.core.backends.memory.MemoryBackend` holding bytes, so every caller
decodes its own copy) and everything else in the shared ``remote`` backend.

Consistency, the trade-offs made here:

- Writes go to ``remote`` first, then to the tier, then to the other processes as an
  invalidation message (:mod:`flask_stash.core.coherence`): when a write returns, every
  other process drops its copy within the message latency.
- While the channel is down the tier is bypassed (reads go to ``remote``, nothing is
  kept); when it is back the tier is emptied first. Without a channel (memcached) the
  tier relies on its ``ttl`` cap alone: a copy is never older than ``ttl`` seconds.
- The race a read can lose (it fetched the old value, the invalidation arrived, then it
  stores the old value) is closed by an *epoch*: a counter moved by every invalidation,
  received or local. A value fetched (or written) is kept only if the epoch did not move
  since the fetch (or write) began. Coarse (any invalidation refuses every fetch in
  flight) and safe.
- Locks, counters, scans: straight to ``remote``, never kept (a counter increment drops
  the counter's copy everywhere).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence

from flask_stash.core.api import MISS, TTL, Backend, Miss, SupportsPublish
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.coherence import Channel
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.tiersettings import (
    MAX_BYTES,
    MAX_ENTRIES,
    TTL_CAP,
    TierSettings,
    checked_cap,
    positive_int,
)

#: The channel's name is this plus the remote's namespace (the cache's key prefix).
CHANNEL_PREFIX = "flask_stash:tier:"

# Attributes the store and the front ends look at, copied from ``remote`` when it has them.
_MIRRORED = ("atomic_add", "ejects_failed_nodes", "clock", "native_errors", "namespace")
# Abilities passed straight to ``remote`` (isinstance checks see exactly its capabilities).
_FORWARDED = ("acquire_lock", "release_lock", "publish", "subscribe", "scan", "evictions")


class TieredBackend:
    """``remote`` with a bounded in-process LRU in front (see the module docstring).

    ``max_entries`` and ``max_bytes`` bound the tier; ``ttl`` caps how long a copy is kept
    (and so how stale it can be without an invalidation channel). ``channel`` names the
    pub/sub channel; by default ``flask_stash:tier:<namespace>`` when ``remote`` can
    publish, none otherwise. ``clock`` times the tier's copies (tests move it).
    """

    #: The tier hands out the very bytes object it holds, so the store may reuse the entry
    #: it decoded from it, for immutable values only: mutable values are still decoded
    #: per caller.
    shares_stored_bytes = True
    acquire_lock: Callable[[str, str, float], bool]
    release_lock: Callable[[str, str], bool]
    publish: Callable[[str, bytes], None]
    subscribe: Callable[[str], Iterator[bytes]]
    scan: Callable[[str], Iterator[str]]
    incr: Callable[[str, int, TTL], int]

    def __init__(
        self,
        remote: Backend,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int | None = MAX_BYTES,
        ttl: float = TTL_CAP,
        channel: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.remote = remote
        self.ttl = checked_cap(ttl)
        self.max_entries = positive_int("max_entries", max_entries)
        self.max_bytes = None if max_bytes is None else positive_int("max_bytes", max_bytes)
        self._clock = clock
        self.local = self._new_local()
        self.max_key_length = remote.max_key_length
        self._mirror(remote)
        #: Moved by every invalidation (see the module docstring); read without the lock.
        self.epoch = 0
        self._lock = threading.Lock()
        self.channel = self._channel(remote, channel)
        #: Whether reads may use the tier: always without a channel, else only while
        #: subscribed. Set only under ``_lock``.
        self.synced = self.channel is None
        self._synced_event = threading.Event()
        if self.synced:
            self._synced_event.set()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def __repr__(self) -> str:
        return f"TieredBackend({self.remote!r})"

    # -- reads -------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | Miss:
        if not self.synced:
            return self._bypass().get(key)
        value = self.local.get(key)
        if value is not MISS:
            return value
        epoch = self.epoch
        value = self.remote.get(key)
        if value is not MISS:
            self._keep(epoch, {key: value})
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        if not self.synced:
            return self._bypass().get_many(keys)
        hit = self.local.get_all(keys)
        if hit is not None:
            return hit  # type: ignore[return-value]
        found = self.local.get_many(keys)
        missing = [key for key, value in zip(keys, found, strict=True) if value is MISS]
        epoch = self.epoch
        fetched = self.remote.get_many(missing)
        got = {k: v for k, v in zip(missing, fetched, strict=True) if v is not MISS}
        if got:
            self._keep(epoch, got)
        remaining = iter(fetched)
        return [next(remaining) if value is MISS else value for value in found]

    # -- writes: remote first, then this tier, then the others --------------------------------

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        epoch = self.epoch
        with self._on_failure([key]):
            self.remote.set(key, value, ttl)
        self._written(epoch, {key: value}, ttl)

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        epoch = self.epoch
        with self._on_failure(list(items)):
            self.remote.set_many(items, ttl)
        self._written(epoch, dict(items), ttl)

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        epoch = self.epoch
        with self._on_failure([key]):
            if not self.remote.add(key, value, ttl):
                return False
        self._written(epoch, {key: value}, ttl)
        return True

    def delete(self, key: str) -> bool:
        with self._on_failure([key]):
            found = self.remote.delete(key)
        self._changed([key])
        return found

    def delete_many(self, keys: Sequence[str]) -> int:
        with self._on_failure(list(keys)):
            count = self.remote.delete_many(keys)
        self._changed(list(keys))
        return count

    def clear(self) -> None:
        with self._on_failure(None):
            self.remote.clear()
        self._changed(None)

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        with self._lock:
            self.epoch += 1
            self.local.clear()
        self.remote.close()

    def wait_synced(self, timeout: float) -> bool:
        """Wait until reads use the tier (the channel is subscribed); ``False`` on timeout."""
        if self.channel is not None:
            self.channel.start()
        return self._synced_event.wait(timeout)

    # -- what the channel tells us (see coherence.Sink) ---------------------------------------

    def resync(self) -> None:
        with self._lock:
            self.epoch += 1
            self.local.clear()
            self.synced = True
            self._synced_event.set()

    def lost(self) -> None:
        with self._lock:
            self.epoch += 1
            self.synced = False
            self._synced_event.clear()
            self.local.clear()

    def invalidate(self, keys: Sequence[str] | None) -> None:
        self._drop(keys)

    # -- internals ---------------------------------------------------------------------------

    def _bypass(self) -> Backend:
        if self.channel is not None:
            self.channel.start()
        return self.remote

    def _keep(self, epoch: int, items: Mapping[str, bytes]) -> None:
        """Hold values read from ``remote`` (for the cap: their TTL there is unknown)
        unless an invalidation came since ``epoch`` was read."""
        with self._lock:
            if self.synced and self.epoch == epoch:
                self.local.set_many(items, self.ttl)

    def _written(self, epoch: int, items: dict[str, bytes], ttl: TTL) -> None:
        """After a write to ``remote``: keep what was written if nothing else changed
        meanwhile (a concurrent writer in this process, a message), else drop it."""
        cap = self.ttl if ttl is None else min(ttl, self.ttl)
        with self._lock:
            keep = self.synced and self.epoch == epoch
            self.epoch += 1
            if keep:
                self.local.set_many(items, cap)
            else:
                self.local.delete_many(list(items))
        self._publish(list(items))

    def _changed(self, keys: list[str] | None) -> None:
        """After a change in ``remote``: drop ``keys`` here, then in the other processes."""
        self._drop(keys)
        self._publish(keys)

    def _drop(self, keys: Sequence[str] | None) -> None:
        with self._lock:
            self.epoch += 1
            if keys is None:
                self.local.clear()
            else:
                self.local.delete_many(keys)

    @contextlib.contextmanager
    def _on_failure(self, keys: list[str] | None) -> Iterator[None]:
        """A write that failed may still have been made (a timeout): drop ``keys`` here.
        Nothing is published: the backend is failing; a failed delete, clear or stamp bump
        is replayed by the store once it answers, and publishes then."""
        try:
            yield
        except BaseException:
            self._drop(keys)
            raise

    def _publish(self, keys: list[str] | None) -> None:
        if self.channel is not None:
            self.channel.publish(keys)

    def _incr(self, key: str, delta: int, ttl: TTL) -> int:
        with self._on_failure([key]):
            result: int = self.remote.incr(key, delta, ttl)  # type: ignore[attr-defined]
        self._changed([key])
        return result

    def _new_local(self) -> MemoryBackend:
        return MemoryBackend(self.max_entries, None, max_bytes=self.max_bytes, clock=self._clock)

    def _mirror(self, remote: Backend) -> None:
        """Copy ``remote``'s attributes and abilities, so the store sees what it would see
        on ``remote`` itself (never ``local_stamps``: stamps live in ``remote``)."""
        for name in _MIRRORED:
            if hasattr(remote, name):
                setattr(self, name, getattr(remote, name))
        for name in _FORWARDED:
            method = getattr(remote, name, None)
            if callable(method):
                setattr(self, name, method)
        if callable(getattr(remote, "incr", None)):
            self.incr = self._incr

    def _channel(self, remote: Backend, name: str | None) -> Channel | None:
        if not isinstance(remote, SupportsPublish):
            if name is not None:
                raise ConfigurationError(
                    f"an invalidation channel needs a backend with publish/subscribe; "
                    f"{type(remote).__name__} has none"
                )
            return None
        if name is None:
            name = CHANNEL_PREFIX + str(getattr(remote, "namespace", ""))
        return Channel(remote, name, self)

    def after_fork(self) -> None:
        """In a forked child: fresh locks and tier (another thread may have held them at
        the fork), a listener of its own, bypassed until it is subscribed."""
        self._lock = threading.Lock()
        self.local = self._new_local()
        self.epoch += 1
        self._synced_event = threading.Event()
        if self.channel is None:
            self._synced_event.set()
            return
        self.synced = False
        self.channel.after_fork()


def tiered(remote: Backend, settings: TierSettings | None) -> Backend:
    """``remote`` behind an in-process tier as ``settings`` say (``None``: as is).

    Refused for a backend that keeps its entries in this process already (memory, null,
    cachelib's ``SimpleCache``): a tier there would only copy them.
    """
    if settings is None:
        return remote
    if _in_process(remote):
        raise ConfigurationError(
            f"CACHE_LOCAL_TIER needs a shared backend (Redis, memcached, file system); "
            f"{type(remote).__name__} keeps its entries in this process already"
        )
    if getattr(remote, "reads_from_replicas", False):
        raise ConfigurationError(
            "CACHE_LOCAL_TIER cannot be combined with read_from_replicas: a replica can "
            "answer with the value an invalidation just replaced, and the tier would keep it"
        )
    return TieredBackend(
        remote,
        max_entries=settings.max_entries,
        max_bytes=settings.max_bytes,
        ttl=settings.ttl,
        channel=settings.channel,
    )


def _in_process(backend: Backend) -> bool:
    from flask_stash.core.backends.cachelib import CachelibBackend
    from flask_stash.core.backends.null import NullBackend

    if isinstance(backend, (MemoryBackend, NullBackend, TieredBackend)):
        return True
    return isinstance(backend, CachelibBackend) and (
        type(backend.cache).__module__ == "cachelib.simple"
    )


def _after_fork(ref: weakref.ref[TieredBackend]) -> None:
    tier = ref()
    if tier is not None:
        tier.after_fork()


__all__ = ["TierSettings", "TieredBackend", "tiered"]

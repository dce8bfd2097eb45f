"""The file-system backend: one file per key, shared by every process on the host.

Layout: ``cache_dir/ab/abcd…`` where ``abcd…`` is ``hash_method(key).hexdigest()``.
Each file is a fixed header, the key, then the value (see :mod:`.fsformat`). Writes go to a temp
file in the same folder, then are renamed over the old one, so no reader ever sees half a
value; ``add`` and locks use ``os.link``, which refuses an existing name, so they are
atomic across processes too.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import ClassVar, Literal, Protocol

from flask_stash.core.api import MISS, TTL, Miss, check_ttl
from flask_stash.core.backends.base import BaseBackend
from flask_stash.core.backends.fsargs import check_args, digest_length, make_dir
from flask_stash.core.backends.fsformat import (
    CREATE_FLAGS,
    HEX_DIGITS,
    LOCK_SUFFIX,
    TEMP_PREFIX,
    decode_record,
    discard,
    encode_record,
    is_live,
    key_bytes,
    link_file,
    list_dir,
    peek,
    shard_dirs,
    size_of,
    slurp,
    temp_name,
    unlink_file,
    write_all,
)
from flask_stash.core.errors import BackendError, ConfigurationError

Clock = Callable[[], float]


class _Digest(Protocol):
    def hexdigest(self) -> str: ...


HashMethod = Callable[[bytes], _Digest]

# A temp file this old belongs to a writer that died; live writers need microseconds.
_STALE_TEMP_NS = 3600 * 10**9
# Other processes' writes are invisible to our estimate: recount at least this often.
_SYNC_INTERVAL = 60.0
# Evict down to this share of a bound, so that the next prune is not one write away.
_KEEP = 0.9


class FileSystemBackend(BaseBackend):
    """A cache in a folder, shared by every process (and thread) on one machine.

    Takes the arguments of Flask-Caching's ``FileSystemCache``: ``threshold`` bounds the
    number of entries (``0`` = no limit), ``mode`` is the permission of the files and
    ``hash_method`` names them (SHA-256 here, MD5 in cachelib). ``max_bytes`` bounds the
    sum of file sizes. Beyond a bound, expired entries go first, then the least recently
    used (reads refresh a file's mtime). Writes update an in-process estimate instead of
    listing the folder; a real scan confirms a bound is exceeded before anything live is
    evicted. Time for TTLs comes from ``clock`` so that tests can move it.

    :meth:`clear` removes entries only: never lock files, nor files it did not create.
    """

    native_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError,)
    atomic_add: Literal[True] = True

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        threshold: int = 500,
        default_timeout: float | None = 300,
        mode: int | None = 0o600,
        hash_method: HashMethod = hashlib.sha256,
        *,
        max_bytes: int | None = None,
        clock: Clock = time.time,
    ) -> None:
        mode = check_args(threshold, default_timeout, mode, max_bytes, clock)
        self.threshold, self.max_bytes, self.mode = threshold, max_bytes, mode
        self.default_timeout = default_timeout
        self._hash, self._hex_length = hash_method, digest_length(hash_method)
        self.clock = clock
        # Folders need x wherever files have r, or other users could not reach the files.
        self._dir_mode = 0o700 | (mode & 0o066) | ((mode & 0o044) >> 2)
        self.cache_dir = make_dir(cache_dir)
        self._chmod = self._probe()
        self._bounded = bool(threshold) or max_bytes is not None
        self._stats_lock, self._sync_lock = threading.Lock(), threading.Lock()
        # An existence check and the rename or unlink that follows it must not interleave
        # with another thread's on the same file, or the estimate would drift.
        self._stripes = [threading.Lock() for _ in range(64)]
        self._count = self._bytes = self._last_stamp = self._epoch = 0
        self._evicted = 0
        self._next_sync = -math.inf

    # -- the Backend protocol -------------------------------------------------------------

    def get(self, key: str) -> bytes | Miss:
        """Return the value at ``key`` and mark it recently used, or ``MISS``."""
        return self._load(key, self.clock(), touch=True)

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        """Return the values at ``keys``, in order, ``MISS`` for the absent ones."""
        now = self.clock()
        return [self._load(key, now, touch=True) for key in keys]

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        """Store ``value`` at ``key``; readers see the old value or the new, never a mix."""
        self._store(key, value, self._expiry(ttl))

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        """Store every item with the same ``ttl``."""
        expires = self._expiry(ttl)
        for key, value in items.items():
            self._store(key, value, expires)

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        """Store only if ``key`` is absent (atomic across processes); True if stored."""
        data, path = encode_record(key, value, self._expiry(ttl)), self._path(key)
        if not self._fits(len(data)):
            return False
        tmp = self._write_temp(path, data)
        try:
            # The name may be held by an expired or damaged file, which _load removes.
            stored = link_file(tmp, path) or (
                self._load(key, self.clock(), touch=False) is MISS and link_file(tmp, path)
            )
        finally:
            discard(tmp)
        if stored:
            self._account(1, len(data), self._epoch)
        return stored

    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was there."""
        return self._drop(self._path(key))

    def delete_many(self, keys: Sequence[str]) -> int:
        """Remove ``keys``; return how many were there."""
        return sum(self._drop(self._path(key)) for key in keys)

    def clear(self) -> None:
        """Remove every entry and temp file; lock files and foreign files stay."""
        with self._sync_lock:  # like a prune, so that racing removals are not subtracted
            with self._stats_lock:
                self._count = self._bytes = 0
                self._epoch += 1
            for item, shard in self._files():
                if self._kind(item.name, shard) not in (None, "lock"):
                    unlink_file(item.path)
            with self._stats_lock:
                self._epoch += 1

    def scan(self, prefix: str) -> Iterator[str]:
        """Yield the live keys starting with ``prefix``, reading the files lazily."""
        return self._scan(key_bytes(prefix), self.clock())

    # -- the lock capability --------------------------------------------------------------

    def acquire_lock(self, name: str, token: str, lease: float) -> bool:
        """Take lock ``name`` for ``lease`` seconds, unless a live lease holds it."""
        if check_ttl(lease) is None:
            raise TypeError("lease must be a positive number of seconds, not None")
        now, path = self.clock(), self._path(name) + LOCK_SUFFIX
        tmp = self._write_temp(path, encode_record(name, token.encode(), now + lease))
        try:
            return link_file(tmp, path) or (self._break_expired(path, now) and link_file(tmp, path))
        finally:
            discard(tmp)

    def release_lock(self, name: str, token: str) -> bool:
        """Release lock ``name`` if held under ``token``; False if not (or lease over)."""
        path = self._path(name) + LOCK_SUFFIX
        found = slurp(path)
        lock = decode_record(found[0]) if found else None
        if not found or not lock or lock.value != token.encode():
            return False
        # An expired lease is cleaned up, but it was no longer ours to release.
        return self._take(path, found[0]) and is_live(lock.expires, self.clock())

    def _break_expired(self, path: str, now: float) -> bool:
        """Remove the lock at ``path`` if its lease is over; True if it is gone."""
        found = slurp(path)
        lock = decode_record(found[0]) if found else None
        if found and lock and is_live(lock.expires, now):
            return False
        return not found or self._take(path, found[0])

    def _take(self, path: str, expected: bytes) -> bool:
        """Remove ``path`` only if it still holds ``expected``; True if it is gone."""
        # Renaming is the only atomic grab: a plain unlink could delete a lock that a new
        # owner created between our read and our unlink.
        grab = os.path.join(os.path.dirname(path), temp_name())
        try:
            os.rename(path, grab)
        except FileNotFoundError:
            return True
        try:
            found = slurp(grab)
            if found and found[0] != expected:
                link_file(grab, path)  # we grabbed a new owner's lock: give it back
                return False
            return True
        finally:
            discard(grab)

    # -- reading and writing --------------------------------------------------------------

    def _load(self, key: str, now: float, *, touch: bool) -> bytes | Miss:
        path = self._path(key)
        found = slurp(path)
        if found is None:
            return MISS
        entry = decode_record(found[0])
        if entry is None or not is_live(entry.expires, now):
            self._drop(path, found[1])
            return MISS
        if entry.key != key_bytes(key):  # another key with the same hash: not ours
            return MISS
        if touch and self._bounded:
            stamp = self._stamp()
            with contextlib.suppress(FileNotFoundError):
                os.utime(path, ns=(stamp, stamp))
        return entry.value

    def _scan(self, prefix: bytes, now: float) -> Iterator[str]:
        # Wrapped here: BaseBackend's wrapper would only cover building the generator.
        try:
            for item, shard in self._files():
                found = peek(item.path) if self._kind(item.name, shard) == "entry" else None
                if found and is_live(found[0], now) and found[1].startswith(prefix):
                    yield found[1].decode("utf-8", "surrogatepass")
        except OSError as exc:
            raise BackendError(f"FileSystemBackend.scan failed: {exc}", exc) from exc

    def _store(self, key: str, value: bytes, expires: float) -> None:
        data, path = encode_record(key, value, expires), self._path(key)
        if not self._fits(len(data)):
            # Larger than the whole budget: refuse it rather than flush everything else,
            # and drop the old value, which the caller meant to replace.
            self._drop(path)
            return
        tmp, epoch = self._write_temp(path, data), self._epoch
        try:
            with self._stripe(path):
                old = size_of(path) if self._bounded else None
                os.replace(tmp, path)
        except FileNotFoundError:
            return  # a concurrent clear() took our temp file: as if it ran just after
        except BaseException:
            discard(tmp)
            raise
        if self._raced(epoch):
            old = None  # a prune may have evicted the file we saw: count ours as new
        self._account(int(old is None), len(data) - (old or 0), epoch)

    def _write_temp(self, path: str, data: bytes) -> str:
        folder = os.path.dirname(path)
        tmp = os.path.join(folder, temp_name())
        try:
            fd = os.open(tmp, CREATE_FLAGS, self.mode)
        except FileNotFoundError:  # shard folders are made on first use, not checked
            os.makedirs(folder, self._dir_mode, exist_ok=True)
            fd = os.open(tmp, CREATE_FLAGS, self.mode)
        try:
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            if self._chmod:
                os.chmod(tmp, self.mode)
            if self._bounded and self.clock is not time.time:
                # A strictly increasing stamp keeps LRU order exact within one tick of the
                # kernel's coarse file clock; on the real clock that tie-break is not worth
                # a syscall per write (the kernel's own mtime orders them well enough).
                stamp = self._stamp()
                os.utime(tmp, ns=(stamp, stamp))
        except BaseException:
            discard(tmp)
            raise
        return tmp

    def _drop(self, path: str, seen: os.stat_result | None = None, *, count: bool = True) -> bool:
        """Unlink an entry, if it is still the file ``seen`` when one is given."""
        epoch = self._epoch
        try:
            with self._stripe(path):
                current = os.stat(path)
                if seen is not None and not os.path.samestat(current, seen):
                    return False  # replaced by a writer since we judged it
                os.unlink(path)
        except FileNotFoundError:
            return False
        if count:
            self._account(-1, -current.st_size, epoch)
        return True

    # -- bounds ---------------------------------------------------------------------------

    def _account(self, added: int, delta: int, epoch: int) -> None:
        """Apply a change made after reading ``epoch`` to the estimate; prune if due."""
        if not self._bounded:
            return
        with self._stats_lock:
            if self._raced(epoch):
                # A prune's scan may already reflect this removal: subtracting it again
                # would under-count, so only growth is counted.
                added, delta = max(0, added), max(0, delta)
            self._count += added
            self._bytes += delta
            due = self._due()
        if due:
            self._sync()

    def _raced(self, epoch: int) -> bool:
        """Whether a prune or clear ran (or runs) since ``epoch`` was read."""
        return epoch != self._epoch or self._sync_lock.locked()

    def _due(self) -> bool:
        return self._over(self._count, self._bytes) or time.monotonic() >= self._next_sync

    def _over(self, count: int, size: int) -> bool:
        return bool(self.threshold and count > self.threshold) or not self._fits(size)

    def _fits(self, size: int) -> bool:
        return self.max_bytes is None or size <= self.max_bytes

    def _sync(self) -> None:
        """Recount from disk, drop garbage, and evict LRU entries if really over a bound."""
        with self._sync_lock:
            with self._stats_lock:
                if not self._due():  # another thread synced while we waited
                    return
                self._next_sync = time.monotonic() + _SYNC_INTERVAL
                self._epoch += 1  # evictions follow: see _store
                count_before, bytes_before = self._count, self._bytes
            count, size = self._evict(self._survey())
            with self._stats_lock:
                self._epoch += 1
                # Writes during the scan may or may not have been seen: count them again
                # (removals were not subtracted, see _account). Over-estimating only brings
                # the next sync forward; under-estimating would let the cache overflow.
                self._count = count + self._count - count_before
                self._bytes = size + self._bytes - bytes_before

    def _survey(self) -> list[tuple[int, int, str]]:
        """Live entries as (mtime, size, path), after removing dead entries and locks."""
        now, stale = self.clock(), time.time_ns() - _STALE_TEMP_NS
        live = []
        for item, shard in self._files():
            kind = self._kind(item.name, shard)
            found = peek(item.path) if kind == "entry" else None
            if found and is_live(found[0], now):
                live.append((found[2].st_mtime_ns, found[2].st_size, item.path))
            elif found:
                self._drop(item.path, found[2], count=False)  # _account would re-enter
            elif kind == "temp":
                with contextlib.suppress(FileNotFoundError):
                    if item.stat(follow_symlinks=False).st_mtime_ns < stale:
                        os.unlink(item.path)
            elif kind == "lock":
                self._break_expired(item.path, now)
        return live

    def _evict(self, live: list[tuple[int, int, str]]) -> tuple[int, int]:
        count, size = len(live), sum(entry[1] for entry in live)
        if not self._over(count, size):
            return count, size
        max_count = max(1, int(self.threshold * _KEEP)) if self.threshold else sys.maxsize
        max_size = int(self.max_bytes * _KEEP) if self.max_bytes else sys.maxsize
        live.sort()
        for _, file_size, path in live[:-1]:  # the newest entry always stays
            if count <= max_count and size <= max_size:
                break
            unlink_file(path)
            count, size = count - 1, size - file_size
            self._evicted += 1
        return count, size

    def evictions(self) -> int:
        """Live entries this process removed to stay within ``threshold``/``max_bytes``
        (other processes sharing the folder count their own)."""
        return self._evicted

    # -- names ----------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        # One level of 256 folders: few enough that a burst of new keys does not pay a
        # mkdir each (two levels made 10,000 keys create ~9,500 folders), many enough
        # that a folder stays small for caches of a few hundred thousand entries.
        digest = self._hash(key_bytes(key)).hexdigest()
        return os.path.join(self.cache_dir, digest[:2], digest)

    def _kind(self, name: str, shard: str) -> Literal["entry", "lock", "temp"] | None:
        if name.startswith(TEMP_PREFIX):
            return "temp"
        is_lock = name.endswith(LOCK_SUFFIX)
        stem = name[: -len(LOCK_SUFFIX)] if is_lock else name
        if len(stem) != self._hex_length or not stem.startswith(shard) or set(stem) - HEX_DIGITS:
            return None
        return "lock" if is_lock else "entry"

    def _files(self) -> Iterator[tuple[os.DirEntry[str], str]]:
        for shard in shard_dirs(self.cache_dir):
            for item in list_dir(shard.path):
                yield item, shard.name

    def _stripe(self, path: str) -> threading.Lock:
        return self._stripes[hash(path) % len(self._stripes)]

    def _expiry(self, ttl: TTL) -> float:
        checked = check_ttl(ttl)
        return 0.0 if checked is None else self.clock() + checked

    def _stamp(self) -> int:
        # Strictly increasing within the process, so that LRU order stays exact even when
        # several writes fall in one tick of the kernel's coarse file clock.
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        return self._last_stamp

    def _probe(self) -> bool:
        """Write a file for real (``os.access`` says yes to root); True if umask bites."""
        tmp = os.path.join(self.cache_dir, temp_name())
        try:
            fd = os.open(tmp, CREATE_FLAGS, self.mode)
            try:
                write_all(fd, b"probe")
                return stat.S_IMODE(os.fstat(fd).st_mode) != self.mode
            finally:
                os.close(fd)
                discard(tmp)
        except OSError as exc:
            msg = f"cache_dir {self.cache_dir!r} is not writable: {exc}"
            raise ConfigurationError(msg) from exc

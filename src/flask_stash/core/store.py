"""The engine's view of a backend: entries in, entries out, errors handled by policy.

A :class:`Store` adds what every backend needs and none should implement: the key prefix,
hashing of over-long keys, (de)serialization of :class:`Entry` objects, TTL rules, version
stamps for O(1) invalidation, statistics and the fail-open error policy. Every backend call
goes through the store's :class:`~flask_stash.core.gate.BackendGate`, which applies the
policy and returns each operation's failed value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from flask_stash.core import statsflush
from flask_stash.core.api import MISS, TTL, Backend, Miss, SupportsIncrement, SupportsLock
from flask_stash.core.backends.prefixed import CallablePrefixBackend
from flask_stash.core.breaker import Breaker
from flask_stash.core.entry import Entry, is_immutable, is_well_formed
from flask_stash.core.errors import (
    BackendError,
    SerializationError,
    SignatureMismatch,
    UndecodableEntry,
)
from flask_stash.core.gate import BackendGate, backend_name
from flask_stash.core.keys import HashMethod, hash_text
from flask_stash.core.pending import PendingInvalidations
from flask_stash.core.policy import ErrorPolicy
from flask_stash.core.serializers import PickleSerializer, Serializer
from flask_stash.core.signing import CounterSeal, MismatchAlarm, parse_integer
from flask_stash.core.stampede import Stampede
from flask_stash.core.stamps import LocalStamps
from flask_stash.core.stats import KEY_MISMATCH, TAG_INVALIDATION, UNDECODABLE, WRITE, Stats
from flask_stash.core.statshare import SharedStats
from flask_stash.core.tags import STAMP_PREFIX
from flask_stash.core.tags import checked as checked_tag

Clock = Callable[[], float]
#: Decoded entries remembered for in-process backends (see ``Store._remember``).
DECODED_MEMO_SIZE = 1024
#: Tags whose stamp keys a store remembers (a tag's key is built once, not per call).
TAG_KEY_MEMO = 4096
#: Timeout as users give it: ``None`` means the default, ``0`` means never expire.
Timeout = float | dt.timedelta | None


class Store:
    """A backend plus the rules that make it a cache.

    Timeouts follow Flask-Caching: ``None`` uses ``default_timeout``, ``0`` never expires,
    a negative number is an error. Reads never raise for a corrupt, foreign or tampered
    entry: it is a miss, counted as ``undecodable`` (and as ``key_mismatch`` when it was
    signed with another key; :attr:`key_alarm` warns when those keep coming).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        serializer: Serializer | None = None,
        key_prefix: str = "",
        default_timeout: float = 300,
        clock: Clock | None = None,
        stats: Stats | None = None,
        fail_open: bool = True,
        hash_method: HashMethod = hashlib.sha256,
    ) -> None:
        self.backend = backend
        self.serializer = serializer or PickleSerializer()
        self.key_prefix = key_prefix
        self.default_timeout = _checked_timeout(default_timeout)
        # Entries and the backend must agree on the time: default to the backend's clock.
        self.clock: Clock = clock or getattr(backend, "clock", None) or time.time
        self.stats = stats or Stats()
        self.policy = ErrorPolicy(self.stats, fail_open=fail_open)
        #: The door every backend call of this store (and of its locks) goes through.
        self.gate = BackendGate(
            self.policy,
            name=backend_name(backend),
            # A client that leaves a failing node out (memcached's HashClient) is its own
            # breaker per node: one node's failures must not bypass the others.
            breaker=Breaker(None) if getattr(backend, "ejects_failed_nodes", False) else None,
            # On overflow of the replay queue: everything this store wrote goes.
            pending=PendingInvalidations(clear_all=lambda: self.backend.clear()),
        )
        self.hash_method = hash_method
        #: Coordination of the callers computing entries of this store (see pipeline.py).
        self.stampede = Stampede(locks=isinstance(backend, SupportsLock))
        #: The stamps of an in-process backend, kept beside it (see :mod:`.stamps`);
        #: ``None``: stamps live in the backend with the entries.
        self.local_stamps: LocalStamps | None = getattr(backend, "local_stamps", None)
        self._max_key = getattr(backend, "max_key_length", None)
        shares = getattr(backend, "shares_stored_bytes", False)
        self._decoded_limit = DECODED_MEMO_SIZE if shares else 0
        self._decoded: dict[int, tuple[bytes, Entry]] = {}
        signer = getattr(self.serializer, "signer", None)
        #: Whether entries are signed, hence written by us: only unsigned entries need
        #: their fields (and front ends their values' shapes) checked on every read.
        self.entries_signed = signer is not None
        self.counters = CounterSeal(None if signer is None else signer.derive(b"counter"))
        self.key_alarm = MismatchAlarm(lambda: self.clock())
        self._tag_keys: dict[str, str] = {}
        #: The figures of every process sharing the backend, pushed once a second
        #: (:mod:`.statshare`); ``None`` for an in-process backend.
        self.shared_stats = SharedStats(self) if self.stampede.locks else None
        statsflush.watch(self)

    @property
    def shared_backend(self) -> Backend:
        """The backend every process sees: ``backend`` itself, or the remote behind an
        in-process tier (:mod:`flask_stash.core.tier`). Statistics, evictions and traces
        are about it, never about a local copy. A callable key prefix's wrapper is looked
        through too: the statistics round runs outside any request, where a per-tenant
        prefix function cannot answer, and the figures are the whole cache's."""
        backend = self.backend
        if isinstance(backend, CallablePrefixBackend):
            backend = backend.inner
        remote: Backend | None = getattr(backend, "remote", None)
        return backend if remote is None else remote

    # -- keys ---------------------------------------------------------------------------

    def backend_key(self, key: str) -> str:
        """The key as stored: prefixed, and hashed if the backend cannot take its length."""
        if type(key) is not str:
            raise TypeError(f"cache keys are str, not {type(key).__name__}")
        full = self.key_prefix + key
        if not full.isascii() and not _encodable(full):
            # A lone surrogate (from a decoded path, say) cannot go over a UTF-8 protocol:
            # its digest can, and stays distinct from every other key's.
            return f"{self.key_prefix}#{hash_text(key, self.hash_method)}"
        if self._max_key is None or _length(full) <= self._max_key:
            return full
        hashed = f"{self.key_prefix}#{hash_text(key, self.hash_method)}"
        return hashed if _length(hashed) <= self._max_key else "#" + hash_text(full)

    # -- entries ------------------------------------------------------------------------

    def read(self, key: str, version_keys: Sequence[str] = ()) -> tuple[Entry | Miss, bytes | None]:
        """The entry under ``key`` (servable or not) and the current version stamp.

        ``version_keys`` name the stamps of the families the entry belongs to (a function,
        an instance). The entry and the stamps are fetched in one ``get_many`` (one round
        trip); an entry written under other stamps is a miss.
        """
        vkeys = tuple(self.backend_key(k) for k in version_keys)
        return self.read_stored(self.backend_key(key), vkeys)

    def read_stored(
        self, bkey: str, vkeys: tuple[str, ...] = ()
    ) -> tuple[Entry | Miss, bytes | None]:
        """:meth:`read` for keys already passed through :meth:`backend_key` (the hot path)."""
        version: bytes | None
        gate = self.gate
        if gate.troubled and not gate.admit("get", self.backend.get, (bkey,)):
            return MISS, None
        try:  # the gate's call, inlined: one frame less on every hit
            if not vkeys:
                blob, version = self.backend.get(bkey), None
            elif (stamps := self.local_stamps) is not None:
                blob = self.backend.get(bkey)
                version = stamps.tokens.get(vkeys[0]) if len(vkeys) == 1 else stamps.version(vkeys)
            else:
                blobs = self.backend.get_many((bkey, *vkeys))
                blob = blobs[0]
                # One family (the common case): its stamp; MISS and b"" are both falsy.
                version = (blobs[1] or None) if len(blobs) == 2 else _joined_stamps(blobs)  # type: ignore[assignment]
        except BackendError as exc:
            gate.failed(exc, "get")
            return MISS, None
        if gate.troubled:
            gate.succeeded()
        known = self._decoded.get(id(blob))  # decode()'s memo, inlined: the hot path
        entry = known[1] if known is not None and known[0] is blob else self.decode(blob)
        if entry is not MISS and vkeys and entry.version != version:
            return MISS, version
        return entry, version

    def write(
        self,
        key: str,
        value: object,
        timeout: Timeout = None,
        *,
        stale: float = 0,
        version: bytes | None = None,
        tags: tuple[tuple[str, str], ...] = (),
    ) -> bool:
        """Store ``value`` fresh for ``timeout`` then servable-if-stale for ``stale`` more."""
        return self.write_stored(
            self.backend_key(key), value, timeout, stale=stale, version=version, tags=tags
        )

    def write_stored(
        self,
        bkey: str,
        value: object,
        timeout: Timeout = None,
        *,
        stale: float = 0,
        version: bytes | None = None,
        tags: tuple[tuple[str, str], ...] = (),
        cost: float = 0.0,
        keep: float = 0.0,
    ) -> bool:
        """:meth:`write` for a key already passed through :meth:`backend_key`.

        ``keep`` holds the entry in the backend that much longer than it is servable, so
        a fail-safe can still serve it when a recomputation fails.
        """
        return self.write_entry(bkey, value, timeout, stale, version, tags, cost, keep) is not None

    def write_entry(
        self,
        bkey: str,
        value: object,
        timeout: Timeout,
        stale: float = 0,
        version: bytes | None = None,
        tags: tuple[tuple[str, str], ...] = (),
        cost: float = 0.0,
        keep: float = 0.0,
        *,
        scope: str = "",
    ) -> bytes | None:
        """:meth:`write_stored`, returning the bytes written (``None``: the backend failed);
        counted as a write of that many bytes for ``scope``."""
        blob, ttl = self._encode(value, timeout, stale, version, tags, cost)
        if ttl is not None and keep > 0:
            ttl += keep
        if not self.gate.run("set", self.backend.set, bkey, blob, ttl):
            return None
        self.stats.record(WRITE, scope, len(blob))
        return blob

    def write_pass(self, bkey: str, marker: object, seconds: float, version: bytes | None) -> None:
        """Store ``marker`` at ``bkey`` for ``seconds`` as an entry that is never fresh, so
        no reader serves it as a value: it tells them the key's last value was refused."""
        now = self.clock()
        blob = self.serializer.dumps(tuple(Entry(marker, now, now, now + seconds, version)))
        self.gate.run("set", self.backend.set, bkey, blob, seconds)

    def decode(self, blob: bytes | Miss) -> Entry | Miss:
        """The entry in ``blob``; anything else (corrupt, forged, foreign, signed with another
        key, a bare integer) is a counted miss, never an exception."""
        if blob is MISS:
            return MISS
        known = self._decoded.get(id(blob))
        if known is not None and known[0] is blob:
            return known[1]
        try:
            entry = Entry.load(self.serializer.loads(blob))
            if not self.entries_signed and not is_well_formed(entry):
                raise UndecodableEntry("entry fields of the wrong types")
        except SignatureMismatch:
            self.stats.incr(KEY_MISMATCH)
            self.stats.incr(UNDECODABLE)
            self.key_alarm.record()
            return MISS
        except Exception:  # UndecodableEntry, or whatever a third-party serializer raises
            self.stats.incr(UNDECODABLE)
            return MISS
        if self._decoded_limit and is_immutable(entry.value):
            self._remember(blob, entry)
        return entry

    def decode_value(self, bkey: str, blob: bytes | Miss) -> Entry | Miss:
        """:meth:`decode` for the direct API, which also reads the counters of :meth:`incr`.

        Only a counter sealed for ``bkey`` (see :class:`~flask_stash.core.signing.CounterSeal`)
        is one: a forged integer is a counted miss. Decorators read with :meth:`decode`,
        which takes no integer at all, so none can replace a cached view or result.
        """
        raw = None if blob is MISS else parse_integer(blob)
        if raw is None:
            return self.decode(blob)
        value = self.counters.decode(bkey, raw)
        if value is None:
            self.stats.incr(UNDECODABLE)
            return MISS
        return Entry(value, created=0.0)

    def _remember(self, blob: bytes, entry: Entry) -> None:
        # An in-process backend hands out the very bytes object it stored, so an entry
        # decoded once can be reused while that object lives: immutable values only, since
        # every reader gets the same object. Holding ``blob`` keeps its id from being reused.
        if len(self._decoded) >= self._decoded_limit:
            self._decoded.clear()
        self._decoded[id(blob)] = (blob, entry)

    def _encode(
        self,
        value: object,
        timeout: Timeout,
        stale: float,
        version: bytes | None,
        tags: tuple[tuple[str, str], ...],
        cost: float = 0.0,
    ) -> tuple[bytes, TTL]:
        ttl = self.ttl_for(timeout)
        if stale < 0:
            raise ValueError(f"stale must be >= 0 seconds, got {stale!r}")
        now = self.clock()
        fresh_until = None if ttl is None else now + ttl
        stale_until = None if fresh_until is None else fresh_until + stale
        entry = Entry(value, now, fresh_until, stale_until, version, tags, cost)
        blob = self.serializer.dumps(tuple(entry))
        return blob, None if ttl is None else ttl + stale

    def ttl_for(self, timeout: Timeout) -> TTL:
        """Seconds to keep a value (``None``: forever) from a user-facing timeout."""
        timeout = self.default_timeout if timeout is None else _checked_timeout(timeout)
        return None if timeout == 0 else timeout

    # -- version stamps (O(1) invalidation of a whole family of keys) ----------------------

    def current_version(self, vkeys: tuple[str, ...], known: bytes | None) -> bytes | None:
        """The stamp to write entries under, creating missing stamps.

        ``vkeys`` are backend keys (see :meth:`backend_key`); ``known`` is the stamp a read
        just returned. A missing stamp never matches an entry, so an evicted stamp
        invalidates its family instead of resurrecting entries written before an
        invalidation. ``None`` if the backend failed.
        """
        if known is not None or not vkeys:
            return known
        if self.local_stamps is not None:
            return self.local_stamps.create(vkeys)
        return self.gate.call("version", None, self._stamps, vkeys)

    def _stamps(self, vkeys: tuple[str, ...]) -> bytes | None:
        return _joined_stamps([b"", *(self._stamp(vkey) for vkey in vkeys)])

    def _stamp(self, vkey: str) -> bytes | Miss:
        token = uuid.uuid4().hex.encode()
        if self.backend.add(vkey, token, None):
            return token
        return self.backend.get(vkey)

    def tag_key(self, tag: str) -> str:
        """The backend key of ``tag``'s version stamp (:mod:`flask_stash.core.tags`)."""
        bkey = self._tag_keys.get(tag)
        if bkey is None:
            if len(self._tag_keys) >= TAG_KEY_MEMO:
                self._tag_keys.clear()
            bkey = self._tag_keys[tag] = self.backend_key(STAMP_PREFIX + checked_tag(tag))
        return bkey

    def invalidate_tags(self, tags: Iterable[str]) -> bool:
        """Invalidate every entry carrying one of ``tags``, in O(1) per tag; ``False`` if
        the backend failed for one of them (queued and replayed once it answers)."""
        keys = [self.tag_key(tag) for tag in tags]
        done = True
        for bkey in keys:
            done = self.bump_version(bkey) and done
            self.stats.incr(TAG_INVALIDATION)
        return done

    def bump_version(self, vkey: str) -> bool:
        """Invalidate every entry written under the stamp at backend key ``vkey``."""
        if self.local_stamps is not None:
            self.local_stamps.bump(vkey)
            return True
        return self.gate.run("invalidate", self.backend.set, vkey, uuid.uuid4().hex.encode(), None)

    # -- plain values (the direct API) ---------------------------------------------------

    def get(self, key: str) -> object:
        """The fresh value (or counter) under ``key``, or :data:`MISS`."""
        bkey = self.backend_key(key)
        entry = self.decode_value(bkey, self.gate.call("get", MISS, self.backend.get, bkey))
        if entry is MISS or not entry.is_fresh(self.clock()) or not self._tags_hold(entry):
            return MISS
        return entry.value

    def get_many(self, keys: Sequence[str]) -> list[object]:
        bkeys = [self.backend_key(k) for k in keys]
        blobs = self.gate.call("get_many", None, self.backend.get_many, bkeys)
        if blobs is None:
            return [MISS] * len(keys)
        now = self.clock()
        entries = [self.decode_value(*pair) for pair in zip(bkeys, blobs, strict=True)]
        return [
            e.value if e is not MISS and e.is_fresh(now) and self._tags_hold(e) else MISS
            for e in entries
        ]

    def _tags_hold(self, entry: Entry) -> bool:
        """Whether ``entry``'s tags still have the stamps it was written under (a tagged
        entry of the direct API: one more read, for its stamps)."""
        if not entry.tags:
            return True
        vkeys = tuple(vkey for vkey, _ in entry.tags)
        if self.local_stamps is not None:
            current = self.local_stamps.version(vkeys)
        else:
            blobs = self.gate.call("get", None, self.backend.get_many, vkeys)
            current = None if blobs is None else _joined_stamps([b"", *blobs])
        written = "|".join(stamp for _, stamp in entry.tags).encode()
        return current == written

    def set(
        self, key: str, value: object, timeout: Timeout = None, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store ``value``; ``False`` if the backend failed or the value cannot be
        serialized (counted and logged; raised when not failing open). ``tags``: see
        :meth:`invalidate_tags` (a tagged entry costs :meth:`get` one more read)."""
        stamped = self._stamped(tags)
        if stamped is None:
            return False
        try:
            return self.write(key, value, timeout, tags=stamped)
        except SerializationError as exc:
            self.policy.handle(exc, "set")
            return False

    def _stamped(self, tags: Iterable[str]) -> tuple[tuple[str, str], ...] | None:
        """``(stamp key, stamp)`` of each tag, stamps created where missing (``None``: the
        backend failed). A stamp this store could not have written (forged bytes) is
        replaced, which invalidates what was written under it."""
        vkeys = tuple(dict.fromkeys(self.tag_key(tag) for tag in tags))
        if not vkeys:
            return ()
        for _ in range(2):
            version = self.current_version(vkeys, None)
            if version is None:
                return None
            stamps = version.split(b"|")
            if len(stamps) == len(vkeys) and all(stamp.isalnum() for stamp in stamps):
                pairs = zip(vkeys, stamps, strict=True)  # lengths checked above
                return tuple((vkey, stamp.decode()) for vkey, stamp in pairs)
            for vkey in vkeys:
                self.bump_version(vkey)
        return None

    def add(self, key: str, value: object, timeout: Timeout = None) -> bool:
        """Store only if absent (atomically where the backend can); ``True`` if stored."""
        try:
            blob, ttl = self._encode(value, timeout, 0, None, ())
        except SerializationError as exc:
            self.policy.handle(exc, "add")
            return False
        return self.gate.call("add", False, self.backend.add, self.backend_key(key), blob, ttl)

    def set_many(self, mapping: Mapping[str, object], timeout: Timeout = None) -> list[str]:
        """Store every item; returns the keys that were stored (all, or none on error)."""
        ttl = self.ttl_for(timeout)
        blobs: dict[str, bytes] = {}
        stored: list[str] = []
        for key, value in mapping.items():
            try:  # an unstorable value is skipped; the others are still stored
                blobs[self.backend_key(key)] = self._encode(value, timeout, 0, None, ())[0]
            except SerializationError as exc:
                self.policy.handle(exc, "set_many")
                continue
            stored.append(key)
        return stored if self.gate.run("set_many", self.backend.set_many, blobs, ttl) else []

    def delete(self, key: str) -> bool:
        return self.backend_delete(self.backend_key(key))

    def backend_delete(self, bkey: str) -> bool:
        """:meth:`delete` for a key already passed through :meth:`backend_key`."""
        self.stampede.deleted(bkey)
        return self.gate.call("delete", False, self.backend.delete, bkey)

    def delete_many(self, keys: Iterable[str]) -> int:
        bkeys = [self.backend_key(k) for k in keys]
        for bkey in bkeys:
            self.stampede.deleted(bkey)
        return self.gate.call("delete_many", 0, self.backend.delete_many, bkeys)

    def has(self, key: str) -> bool:
        return self.get(key) is not MISS

    def clear(self) -> bool:
        self.stampede.cleared()
        return self.gate.run("clear", self.backend.clear)

    def incr(self, key: str, delta: int = 1) -> int | None:
        """Add ``delta`` to an integer counter (absent: 0). ``None`` if the backend failed.

        Atomic on backends with the increment capability, once the value is a counter;
        an integer stored with :meth:`set` is converted on its first increment. With a
        signing key counters are sealed (see :class:`~flask_stash.core.signing.CounterSeal`)
        and created with an atomic ``add`` first, so an increment costs two round trips.
        """
        return self.gate.call("incr", None, self._incr, key, self.backend_key(key), delta)

    def _incr(self, key: str, bkey: str, delta: int) -> int:
        counters, ttl = self.counters, self.ttl_for(None)
        if isinstance(self.backend, SupportsIncrement):
            # A backend creates a missing counter at 0, unsealed: create it sealed first.
            if counters.scale > 1 and self.backend.add(bkey, counters.encode(bkey, delta), ttl):
                return delta
            try:
                result = counters.decode(bkey, self.backend.incr(bkey, delta * counters.scale, ttl))
            except TypeError:  # an entry, not a bare counter: convert it below
                result = None
            if result is not None:
                return result
            # Not a counter of ours (an entry, a forged integer, a retired key's seal).
        # Read the backend directly: a failed read must not turn into a reset to delta.
        entry = self.decode_value(bkey, self.backend.get(bkey))
        current = 0 if entry is MISS or not entry.is_fresh(self.clock()) else entry.value
        if type(current) is not int:
            raise TypeError(f"cannot increment {key!r}: it does not hold an integer")
        result = current + delta
        self.backend.set(bkey, counters.encode(bkey, result), ttl)
        return result

    def close(self) -> None:
        self.backend.close()


def _joined_stamps(blobs: Sequence[bytes | Miss]) -> bytes | None:
    """The version of an entry read with ``blobs[0]``: its family stamps, all required."""
    stamps = blobs[1:]
    if MISS in stamps:  # MISS equals nothing but itself
        return None
    return b"|".join(stamps)  # type: ignore[arg-type]


def _encodable(key: str) -> bool:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _length(key: str) -> int:
    return len(key.encode("utf-8", "surrogatepass"))


def _checked_timeout(timeout: object) -> float:
    if isinstance(timeout, dt.timedelta):  # accepted by Flask-Caching: whole seconds, rounded up
        timeout = math.ceil(timeout.total_seconds())
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if timeout < 0 or timeout != timeout:
        raise ValueError(f"timeout must be >= 0 seconds (0 = never expire), got {timeout!r}")
    return timeout

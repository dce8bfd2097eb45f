"""Statistics summed over every process that shares a backend.

Each process adds what it counted since its last push to one record in the backend, off
the hot path (:mod:`flask_stash.core.statsflush` pushes at most once a second), and
:meth:`SharedStats.read` returns the sums. A push that fails keeps its deltas for the next
one: figures arrive late, never twice, never lost while the process lives.

- Redis (single, Sentinel, Cluster): one hash, ``HINCRBY`` per counter in one pipelined
  round trip; atomic, so concurrent pushes never lose an increment.
- Other shared backends (memcached, file system): one JSON record, read, added to and
  written back under the backend's lock (one lock, read and write per push).

Amounts (seconds saved, bytes) are kept as integers in millionths. The record is not
signed: a process able to write the backend can forge figures (never values). A record
that does not parse is replaced, and said once in the log.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask_stash.core.api import MISS
from flask_stash.core.breaker import CLOSED
from flask_stash.core.errors import BackendError
from flask_stash.core.stats import Reading, Stats

logger = logging.getLogger("flask_stash")

#: The backend key (under the cache's prefix) of the shared record.
RECORD_KEY = "__flask_stash_stats__"
SCALE = 1_000_000
LOCK_LEASE = 5.0
_SEP = "\x1f"

Key = tuple[str, str]
R = TypeVar("R")


class SharedStats:
    """The figures of every process using ``store``'s backend (see the module docstring)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.name = store.backend_key(RECORD_KEY)
        self._sent: dict[Key, Reading] = {}
        # One push at a time: two computing deltas from the same ``_sent`` would both
        # add them (the background round and a ``cache.stats()`` in a request).
        self._pushing = threading.Lock()
        self._warned = False

    @property
    def backend(self) -> Any:
        """The shared backend itself, behind an in-process tier if there is one: the record
        is read and added to where every process sees it, never from a local copy."""
        return self.store.shared_backend

    def push(self, stats: Stats) -> bool:
        """Add what ``stats`` counted since the last successful push; ``False`` if the
        backend refused (the deltas wait for the next push)."""
        with self._pushing:
            current = stats.raw_readings()
            fields = _fields(current, self._sent)
            if not fields:
                return True
            done = bool(self._call(self._add, fields))
            if done:
                self._sent = current
            return done

    def read(self) -> dict[Key, Reading] | None:
        """The sums of every process (``None``: the backend could not be read)."""
        found = self._call(self._read)
        return None if found is None else _readings(found)

    def reset(self) -> bool:
        """Forget every process's figures (``False``: the backend failed)."""
        return self._call(self.backend.delete, self.name) is not None

    def _call(self, method: Callable[..., R], *args: Any) -> R | None:
        # Statistics are the cache's own business: a failure is not a request's, so it
        # neither feeds the breaker nor logs an outage; an open breaker is respected.
        if self.store.gate.breaker.state != CLOSED:
            return None
        try:
            return method(*args)
        except (BackendError, *getattr(self.backend, "native_errors", ())):
            logger.debug("shared statistics: the backend failed", exc_info=True)
            return None

    # -- storage ---------------------------------------------------------------------------

    def _add(self, fields: Mapping[str, int]) -> bool:
        client = _redis_client(self.backend)
        if client is not None:
            with client.pipeline(transaction=False) as pipe:
                for field, delta in fields.items():
                    pipe.hincrby(self.name, field, delta)
                pipe.execute()
            return True
        return self._add_locked(fields)

    def _add_locked(self, fields: Mapping[str, int]) -> bool:
        backend, token = self.backend, uuid.uuid4().hex
        lock = self.name + ":lock"
        if not backend.acquire_lock(lock, token, LOCK_LEASE):
            return False  # another process is pushing: next time
        try:
            record = self._parse(backend.get(self.name))
            for field, delta in fields.items():
                record[field] = record.get(field, 0) + delta
            backend.set(self.name, json.dumps(record, separators=(",", ":")).encode(), None)
        finally:
            backend.release_lock(lock, token)
        return True

    def _read(self) -> dict[str, int]:
        client = _redis_client(self.backend)
        if client is not None:
            raw = client.hgetall(self.name)
            return self._checked({_text(k): _text(v) for k, v in raw.items()})
        return self._parse(self.backend.get(self.name))

    def _parse(self, blob: object) -> dict[str, int]:
        if blob is MISS or blob is None:
            return {}
        try:
            data = json.loads(blob)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            data = None
        if not isinstance(data, dict):
            self._warn_once()
            return {}
        return self._checked(data)

    def _checked(self, data: Mapping[str, object]) -> dict[str, int]:
        record: dict[str, int] = {}
        for field, value in data.items():
            number = _integer(value)
            if number is None or field.count(_SEP) != 2:
                self._warn_once()
                continue
            record[field] = number
        return record

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("the shared statistics record %r was malformed: ignored", self.name)


def _fields(current: Mapping[Key, Reading], sent: Mapping[Key, Reading]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (event, scope), reading in current.items():
        before = sent.get((event, scope), _NONE)
        count = reading.events - before.events
        amount = round(reading.total * SCALE) - round(before.total * SCALE)
        if count:
            out[_SEP.join((event, scope, "n"))] = count
        if amount:
            out[_SEP.join((event, scope, "t"))] = amount
    return out


def _readings(record: Mapping[str, int]) -> dict[Key, Reading]:
    counts: dict[Key, int] = {}
    totals: dict[Key, int] = {}
    for field, value in record.items():
        event, scope, part = field.split(_SEP)
        (counts if part == "n" else totals)[(event, scope)] = value
    return {
        key: Reading(counts.get(key, 0), totals.get(key, 0) / SCALE)
        for key in counts.keys() | totals.keys()
        if counts.get(key, 0)
    }


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _redis_client(backend: object) -> Any:
    """The redis-py client of a Redis backend (``None`` for any other backend)."""
    try:
        from flask_stash.core.backends.redis import RedisCommands
    except ImportError:  # redis-py is optional
        return None
    return backend.client if isinstance(backend, RedisCommands) else None


_NONE = Reading(0, 0.0)

"""The memcached backend: pymemcache's pooled clients, pylibmc for SASL authentication.

memcached's rules are adapted to the backend contract here, not leaked to callers: keys
it cannot take are hashed (never truncated), TTLs are whole seconds and absolute beyond
30 days, values above the item size limit raise ``EntryTooLarge`` before anything is
sent, ``clear()`` is ``flush_all`` (memcached has no namespaces), and several servers are
sharded by pymemcache's ``HashClient``. ``docs/backends-memcached.md`` has the details.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

from flask_stash.core.api import MISS, TTL, Miss, check_ttl
from flask_stash.core.backends._urls import Location, location_label, memcached_location
from flask_stash.core.backends.base import BaseBackend
from flask_stash.core.errors import (
    BackendError,
    ConfigurationError,
    EntryTooLarge,
)
from flask_stash.core.lazy import require

logger = logging.getLogger("flask_stash")

# This module is imported only when a memcached backend is configured. The exception
# classes are needed when the class is defined (BaseBackend wraps them into BackendError
# then); without pymemcache, building a backend fails with MissingDependencyError.
try:
    from pymemcache.client.base import PooledClient
    from pymemcache.client.hash import HashClient
    from pymemcache.exceptions import MemcacheClientError, MemcacheError, MemcacheServerError
except ImportError:  # pragma: no cover - exercised only where pymemcache is missing
    PooledClient = HashClient = object
    MemcacheError = MemcacheClientError = MemcacheServerError = OSError

#: memcached's longest key, in bytes.
MAX_KEY_BYTES = 250
#: memcached's default item size limit (``-I 1m``).
DEFAULT_MAX_VALUE_SIZE = 1024 * 1024
#: memcached reads an expiration time above this many seconds as a Unix timestamp.
RELATIVE_TTL_LIMIT = 30 * 24 * 3600
#: memcached parses expiration times as signed 32-bit integers (the year 2038).
LAST_TIMESTAMP = 2**31 - 1
#: An absolute time in January 1970: the item expires at once. A negative exptime does
#: too, but only in the text protocol: the binary one (pylibmc, SASL) reads -1 as 2106.
EXPIRED_ON_ARRIVAL = RELATIVE_TTL_LIMIT + 1

# Space and control characters end a key in the text protocol; DEL is refused too.
_UNSAFE_BYTE = re.compile(rb"[\x00-\x20\x7f]").search
# Keys the backend derives start with "~"; callers' keys starting with "~" are hashed
# too, so a caller's key can never equal a derived one.
_RESERVED = b"~"
_HASHED = b"~h:"
_LOCK = b"~l:"
# Compare-and-set rounds before an increment gives up: only reached under heavy
# contention on one counter, where failing (counted, fail-open) beats spinning.
_CAS_ATTEMPTS = 32


def wire_key(key: str) -> bytes:
    """The key memcached stores for ``key``: its UTF-8 bytes if memcached takes them,
    else ``~h:`` + the SHA-256 of those bytes (deterministic, never truncated)."""
    raw = key.encode("utf-8", "surrogatepass")
    if len(raw) <= MAX_KEY_BYTES and raw[:1] != _RESERVED and _UNSAFE_BYTE(raw) is None:
        return raw
    return _HASHED + hashlib.sha256(raw).hexdigest().encode()


def lock_key(name: str) -> bytes:
    """The key of lock ``name``: apart from every data key, whatever ``name`` is."""
    return _LOCK + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest().encode()


def expire_for(ttl: TTL, now: Callable[[], float] = time.time) -> int:
    """memcached's ``exptime`` for a TTL in seconds (``None``: never expire, sent as 0)."""
    ttl = check_ttl(ttl)
    if ttl is None:
        return 0
    seconds = math.ceil(ttl)  # rounded up: 0 would mean "never expire"
    if seconds <= RELATIVE_TTL_LIMIT:
        return seconds
    # Beyond 30 days memcached expects an absolute time (so client and server clocks
    # must agree, as NTP makes them).
    return min(int(now()) + seconds, LAST_TIMESTAMP)


class MemcachedBackend(BaseBackend):
    """A cache shared by every process that reaches the same memcached servers.

    ``servers`` as :func:`~flask_stash.core.backends._urls.memcached_servers` takes them, or ``url="memcached://h1:p1,h2:p2"``.
    One server gets a thread-safe connection pool; several are sharded by pymemcache's
    ``HashClient``, which leaves a failing server out (``retry_attempts``,
    ``retry_timeout``) and tries it again after ``dead_timeout`` seconds. Every network
    wait is bounded by ``connect_timeout`` and ``timeout``.
    """

    native_errors: ClassVar[tuple[type[BaseException], ...]] = (MemcacheError, OSError)
    max_key_length: int | None = MAX_KEY_BYTES
    atomic_add: Literal[True] = True
    ejects_failed_nodes = False

    def __init__(
        self,
        servers: str | Sequence[str | tuple[str, int]] | None = None,
        *,
        url: str | None = None,
        connect_timeout: float = 1.0,
        timeout: float = 1.0,
        retry_attempts: int = 2,
        retry_timeout: float = 1.0,
        dead_timeout: float = 30.0,
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        client: Any = None,
    ) -> None:
        self.max_value_size = checked_count("max_value_size", max_value_size, minimum=1)
        if client is not None:  # a ready client (pylibmc for SASL, or a custom one)
            self.servers, self._client = list(getattr(client, "servers", [])), client
            return
        nodes, user, _ = memcached_location(servers, url)
        if user is not None:
            raise ConfigurationError("credentials need SASL: use SASLMemcachedCache (pylibmc)")
        self.servers = [location_label(node) for node in nodes]
        options: dict[str, Any] = {"no_delay": True}  # small messages: send them at once
        options["connect_timeout"] = _seconds("connect_timeout", connect_timeout)
        options["timeout"] = _seconds("timeout", timeout)
        require("pymemcache", extra="memcached")
        # A cache dropped without close() must not leave its sockets open until exit.
        if len(nodes) == 1:
            self._client = PooledClient(nodes[0], **options)
        else:
            retries = (retry_attempts, retry_timeout, dead_timeout)
            self._client = self._hash_client(nodes, options, *retries)
            #: ``HashClient`` leaves a failing node out by itself (see the gate's breaker).
            self.ejects_failed_nodes = True
        weakref.finalize(self, _close_client, self._client)

    @staticmethod
    def _hash_client(
        nodes: list[Any],
        options: dict[str, Any],
        retry_attempts: int,
        retry_timeout: float,
        dead_timeout: float,
    ) -> Any:
        return _HashClient(
            nodes,
            use_pooling=True,
            ignore_exc=False,  # errors must surface, to be counted and logged
            retry_attempts=checked_count("retry_attempts", retry_attempts, minimum=0),
            retry_timeout=_seconds("retry_timeout", retry_timeout, zero=True),
            dead_timeout=_seconds("dead_timeout", dead_timeout, zero=True),
            **options,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.servers!r})"

    # -- the Backend protocol -------------------------------------------------------------

    def get(self, key: str) -> bytes | Miss:
        value: bytes | None = self._client.get(wire_key(key))
        return MISS if value is None else value

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        """One ``get`` command per server holding some of ``keys`` (one round trip on
        a single server), results in the order of ``keys``."""
        wire = [wire_key(key) for key in keys]
        found = self._client.get_many(wire) if wire else {}
        return [found.get(w, MISS) for w in wire]

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        wire, expire = wire_key(key), expire_for(ttl)
        self._check_size(key, value)
        with _size_refusal(repr(key)):
            stored = self._client.set(wire, value, expire=expire, noreply=False)
        if not stored:  # HashClient answers False while it skips a failing server
            raise BackendError(f"memcached did not store {key!r} (server unavailable)")

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        """Store every item (one round trip per server); raises, naming the keys, if
        some were not stored."""
        expire = expire_for(ttl)
        for key, value in items.items():
            self._check_size(key, value)
        callers = {wire_key(key): key for key in items}
        wire = {w: items[key] for w, key in callers.items()}
        if not wire:
            return
        with _size_refusal(f"one of {len(wire)} values"):
            failed = self._client.set_many(wire, expire=expire, noreply=False)
        if failed:
            names = sorted(callers[w] for w in failed)
            raise BackendError(f"memcached did not store {len(names)} keys: {names!r}")

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        """Store only if absent; memcached's ``add`` is atomic across all clients."""
        wire, expire = wire_key(key), expire_for(ttl)
        self._check_size(key, value)
        with _size_refusal(repr(key)):
            return bool(self._client.add(wire, value, expire=expire, noreply=False))

    def delete(self, key: str) -> bool:
        return bool(self._client.delete(wire_key(key), noreply=False))

    def delete_many(self, keys: Sequence[str]) -> int:
        """One ``delete`` per key: memcached has no multi-key delete that reports which
        keys existed."""
        return sum(self.delete(key) for key in keys)

    def clear(self) -> None:
        """``flush_all`` on every server: empties them entirely (memcached has no
        namespaces), other applications' keys included. Every server is tried, then the
        failures are reported together."""
        failures = [failure for node in self._nodes() if (failure := self._flush(node))]
        if failures:
            raise BackendError(f"flush_all failed on {'; '.join(failures)}")

    def close(self) -> None:
        """Close every pooled connection; the next call reconnects."""
        _close_client(self._client)

    # -- the increment and lock capabilities -----------------------------------------------

    def incr(self, key: str, delta: int, ttl: TTL) -> int:
        """Add ``delta`` to the integer at ``key`` (absent: 0, then ``ttl``); atomic, exact.

        memcached's ``incr`` serves non-negative counters and deltas (the expiry stays;
        it wraps at 2**64). Its ``decr`` stops at 0 and it cannot hold negative numbers,
        so those go through a gets/cas loop, which sets the expiry to ``ttl`` again.
        """
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise TypeError(f"delta must be an int, not {type(delta).__name__}")
        wire, expire = wire_key(key), expire_for(ttl)
        if delta >= 0:
            try:
                result = self._client.incr(wire, delta, noreply=False)
            except MemcacheClientError:  # not a non-negative counter (or delta >= 2**64)
                result = None
            if isinstance(result, int) and not isinstance(result, bool):
                return result
            if result is not None:
                raise BackendError(f"memcached did not increment {key!r} (server unavailable)")
        return self._incr_cas(key, wire, delta, expire)

    def _incr_cas(self, key: str, wire: bytes, delta: int, expire: int) -> int:
        for _ in range(_CAS_ATTEMPTS):
            value, token = self._gets(key, wire)
            if value is None:
                if self._client.add(wire, str(delta).encode(), expire=expire, noreply=False):
                    return delta
                continue  # created meanwhile by someone else: read it again
            result = _as_int(key, value) + delta
            if self._client.cas(wire, str(result).encode(), token, expire=expire, noreply=False):
                return result
        raise BackendError(f"incr({key!r}) lost {_CAS_ATTEMPTS} compare-and-set races in a row")

    def evictions(self) -> int:
        """Items the servers evicted to make room (``evictions`` of ``stats``), summed."""
        return sum(int(node.stats().get(b"evictions", 0)) for node in self._nodes())

    def acquire_lock(self, name: str, token: str, lease: float) -> bool:
        """Take lock ``name`` for ``lease`` seconds (rounded up to whole seconds; the
        server's clock may end it up to 1 s early), unless it is held."""
        if check_ttl(lease) is None:
            raise TypeError("lease must be a positive number of seconds, not None")
        expire = expire_for(lease)
        return bool(self._client.add(lock_key(name), token.encode(), expire=expire, noreply=False))

    def release_lock(self, name: str, token: str) -> bool:
        """Release lock ``name`` if ``token`` still holds it; ``False`` otherwise."""
        wire = lock_key(name)
        value, cas = self._gets(name, wire)
        if value != token.encode():
            return False
        # Compare-and-set to an item that is already expired: the lock goes away only if
        # nobody took it over since we read it, where a plain delete could remove the lock
        # of a new owner whose lease began after ours ended.
        return bool(self._client.cas(wire, b"", cas, expire=EXPIRED_ON_ARRIVAL, noreply=False))

    # -- internals --------------------------------------------------------------------

    def _gets(self, key: str, wire: bytes) -> tuple[bytes | None, Any]:
        found: tuple[bytes | None, Any] | None = self._client.gets(wire)
        if found is None:  # HashClient's answer while it skips a failing server
            raise BackendError(f"memcached could not read {key!r} (server unavailable)")
        return found

    def _check_size(self, key: str, value: bytes) -> None:
        if type(value) is not bytes:
            raise TypeError(f"backend values are bytes, not {type(value).__name__}")
        if len(value) > self.max_value_size:
            raise EntryTooLarge(
                f"not caching {key!r}: {len(value)} bytes exceed memcached's item size "
                f"limit of {self.max_value_size} (max_value_size, memcached -I)"
            )

    def _flush(self, node: Any) -> str | None:
        """Empty one server; the failure, if any, described for clear()."""
        # The SASL backend's client reports pylibmc's errors as BackendError already.
        failures: tuple[type[BaseException], ...] = (*self.native_errors, BackendError)
        try:
            node.flush_all(noreply=False)
        except failures as exc:
            return f"{location_label(node.server)}: {exc}"
        return None

    def _nodes(self) -> list[Any]:
        return _nodes_of(self._client)


def _nodes_of(client: Any) -> list[Any]:
    clients = getattr(client, "clients", None)  # HashClient: one per server
    return list(clients.values()) if isinstance(clients, dict) else [client]


def _close_client(client: Any) -> None:  # pragma: no mutate block
    # Also a finalizer, which the garbage collector may run in the middle of any code,
    # mutmut's call tracing included: re-entering that tracing crashes the interpreter
    # (`make mutation`), so this stays untraced and calls no other function of this module.
    clients = getattr(client, "clients", None)
    for node in clients.values() if isinstance(clients, dict) else [client]:
        node.close()


@contextmanager
def _size_refusal(what: str) -> Iterator[None]:
    """Report the server's "object too large" as EntryTooLarge, like our own check."""
    try:
        yield
    except MemcacheServerError as exc:
        reason = exc.args[0] if exc.args else b""
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        if "too large" not in reason:
            raise
        raise EntryTooLarge(f"memcached refused {what}: {reason}", exc) from exc


def _as_int(key: str, raw: bytes) -> int:
    if not (raw.isdigit() or (raw[:1] == b"-" and raw[1:].isdigit())):
        raise TypeError(f"cannot increment {key!r}: it does not hold an integer")
    return int(raw)


def checked_count(name: str, value: object, *, minimum: int) -> int:
    """``value`` as an int option of at least ``minimum`` (the SASL backend's too)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _seconds(name: str, value: object, *, zero: bool = False) -> float:
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else -1
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        raise ConfigurationError(f"{name} must be a finite number of seconds, got {value!r}")
    return float(number)


class _FailedNodes(dict[Any, Any]):
    """HashClient's record of failing servers, tolerant of its thread races (it reads
    and pops entries another thread may have just removed: KeyError)."""

    def __getitem__(self, server: Any) -> Any:
        try:
            return super().__getitem__(server)
        except KeyError:  # removed by another thread meanwhile: a fresh failure
            return {"failed_time": time.time(), "attempts": 0}

    def pop(self, server: Any, default: Any = None) -> Any:
        return super().pop(server, default)


def routing_key(key: Any) -> Any:
    """The part of ``key`` that picks its node: the first non-empty ``{...}``, else all."""
    opening, closing = (b"{", b"}") if isinstance(key, bytes) else ("{", "}")
    start = key.find(opening)
    if start >= 0:
        end = key.find(closing, start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


class _HashClient(HashClient):  # type: ignore[misc]
    """pymemcache's ``HashClient``, safe to share between threads: a lock serializes its
    bookkeeping of failing and dead servers (never the network calls), and the old pool
    of a server brought back is closed, not left to the garbage collector."""

    def __init__(self, servers: list[Location], **options: Any) -> None:
        self._state_lock = threading.RLock()
        self._left_out: dict[str, float] = {}  # server -> since when (monotonic)
        super().__init__(servers, **options)
        self._failed_clients = _FailedNodes()

    def _get_client(self, key: Any) -> Any:
        # Route by the key's ``{hash tag}`` when it has one, as Redis Cluster does: an
        # entry and its version stamp share a tag, so one node answers a memoize hit in
        # one round trip.
        return super()._get_client(routing_key(key))

    def add_server(self, server: Any, port: Any = None) -> None:
        with self._state_lock:
            key = self._make_client_key(server)
            old = self.clients.get(key)
            super().add_server(server, port)
            back = self._left_out.pop(key, None)
        if old is not None:
            old.close()
        if back is not None:
            logger.info("memcached server %s is back after %.1f s", key, time.monotonic() - back)

    def remove_server(self, server: Any, port: Any = None) -> None:
        with self._state_lock:
            key = self._make_client_key(server)
            if key not in self.hasher.nodes:  # already removed
                return
            super().remove_server(server, port)
            self._left_out[key] = time.monotonic()
        logger.warning(
            "memcached server %s is failing; its keys go to the other servers until it "
            "answers again",
            key,
        )

    def _safely_run_func(
        self, client: Any, func: Callable[..., Any], default_val: Any, *args: Any, **kwargs: Any
    ) -> Any:
        # A failing server's calls fail at once, as errors: pymemcache would answer them
        # with ``default_val`` between retries (an ``add`` returning False reads as a lock
        # held elsewhere, and the caller waits), and once it marks the server dead it still
        # sends it the call at hand (one more full timeout).
        failed = dict.get(self._failed_clients, client.server)
        if failed is not None:
            name = location_label(client.server)
            if failed["attempts"] >= self.retry_attempts:
                self.remove_server(client.server)  # its keys go to the other servers
                raise OSError(f"memcached server {name} left out after failing")
            if time.time() - failed["failed_time"] <= self.retry_timeout:
                raise OSError(f"memcached server {name} is failing")
        return super()._safely_run_func(client, func, default_val, *args, **kwargs)

    def _mark_failed_server(self, server: Any) -> None:
        with self._state_lock:
            super()._mark_failed_server(server)

    def _retry_dead(self) -> None:
        with self._state_lock:
            super()._retry_dead()


# The SASL backend lives in its own module; this name stays importable from here.


# The SASL backend lives in its own module; this name stays importable from here (last:
# that module builds on the classes above).
from flask_stash.core.backends.memcached_sasl import (  # noqa: E402
    SASLMemcachedBackend as SASLMemcachedBackend,
)

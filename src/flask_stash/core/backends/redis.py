"""The Redis backend for one server, and the command base all Redis backends share.

The Sentinel and Cluster variants live in ``redis_sentinel`` and ``redis_cluster``, URL
parsing in ``_urls``. Valkey speaks the same protocol: ``valkey://`` URLs are
accepted as ``redis://``.
Construction never touches the network (an app must boot while Redis is down); a wrong
password, a refused connection or a timeout surfaces at use time as ``BackendError``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, NoReturn, TypeVar, cast

from flask_stash.core.api import MISS, TTL, Miss, check_ttl
from flask_stash.core.backends._redis_options import (
    reject_decoding,
    valid_namespace,
    with_defaults,
)
from flask_stash.core.backends._urls import redis_url_options
from flask_stash.core.backends.base import BaseBackend
from flask_stash.core.errors import BackendError, ConfigurationError
from flask_stash.core.lazy import require

try:
    import redis
    from redis.client import PubSub
    from redis.cluster import RedisCluster
    from redis.exceptions import RedisClusterException, RedisError, ResponseError
except ImportError:  # pragma: no cover - depends on what is installed
    require("redis", extra="redis")  # raises MissingDependencyError naming the extra
    raise

#: Keys per SCAN page and per UNLINK in ``clear()``: small enough not to block the server.
SCAN_BATCH = 500
#: Seconds a subscription waits per poll (it keeps waiting; this only bounds each read).
SUBSCRIBE_POLL = 1.0
#: Seconds ``subscribe()`` waits for the server to confirm the subscription.
SUBSCRIBE_CONFIRM = 5.0

# Delete the lock only if it still holds our token (GET + DEL would race with a new owner).
_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# A new counter gets its TTL in the same atomic step as the increment, so no caller ever
# sees a counter without expiry. A script, not MULTI: Redis Cluster runs it on every
# redis-py version (cluster transactions came late and warn on some).
_INCR_WITH_TTL = """
redis.call('set', KEYS[1], '0', 'nx', 'px', ARGV[2])
return redis.call('incrby', KEYS[1], ARGV[1])
"""
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_NATIVE_ERRORS = (RedisError, RedisClusterException, OSError)


C = TypeVar("C", redis.Redis, RedisCluster)


class RedisCommands(BaseBackend, Generic[C]):
    """The storage commands the Redis variants share; subclasses supply the client.

    ``client`` takes writes; ``reader`` serves ``get``/``get_many`` (the client itself,
    or replicas when a Sentinel backend reads from them). Every redis-py error (and
    ``OSError``) leaves as :class:`BackendError`.
    """

    native_errors = _NATIVE_ERRORS
    atomic_add: Literal[True] = True
    max_key_length: int | None = None  # Redis keys may be up to 512 MB

    namespace: str
    _client: C | None = None
    _reader: C | None = None
    _owns_client = True
    _use_unlink = True
    #: Whether reads may be answered by replicas, which lag behind the master.
    reads_from_replicas = False

    @property
    def client(self) -> C:
        client = self._client
        return client if client is not None else self._connect()

    @property
    def reader(self) -> C:
        reader = self._reader
        return reader if reader is not None else self.client

    def _connect(self) -> C:
        raise NotImplementedError

    # -- the Backend protocol ------------------------------------------------------------

    def get(self, key: str) -> bytes | Miss:
        value = self.reader.get(key)
        return MISS if value is None else cast(bytes, value)  # decode_responses is refused

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        if not keys:
            return []
        return [MISS if value is None else value for value in self._mget(list(keys))]

    def _mget(self, keys: list[str]) -> list[Any]:
        return self.reader.mget(keys)  # one MGET: one round trip

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        self.client.set(key, _bytes(value), px=_ms(ttl))

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        px = _ms(ttl)
        if not items:
            return
        with self.client.pipeline(transaction=False) as pipe:  # type: ignore[no-untyped-call]
            for key, value in items.items():
                pipe.set(key, _bytes(value), px=px)
            pipe.execute()

    def add(self, key: str, value: bytes, ttl: TTL) -> bool:
        # SET NX is one atomic command: exactly one of concurrent adders wins.
        return bool(self.client.set(key, _bytes(value), px=_ms(ttl), nx=True))

    def delete(self, key: str) -> bool:
        return self._unlink([key]) > 0

    def delete_many(self, keys: Sequence[str]) -> int:
        return self._unlink(list(keys)) if keys else 0

    def clear(self) -> None:
        """Delete the namespace's keys (the whole database's if the namespace is empty)."""
        for batch in _batches(self._scan_keys(self.namespace), SCAN_BATCH):
            self._unlink(batch)

    def close(self) -> None:
        """Disconnect the connection pool (not that of a client passed in as ``host``)."""
        if self._owns_client:
            self.client.close()

    # -- capabilities ----------------------------------------------------------------------

    def incr(self, key: str, delta: int, ttl: TTL) -> int:
        """Atomic ``INCRBY``; a new counter gets ``ttl``, an existing one keeps its expiry."""
        px = _ms(ttl)
        try:
            if px is None:
                return int(self.client.incrby(key, delta))
            return int(self.client.eval(_INCR_WITH_TTL, 1, key, delta, px))
        except ResponseError as exc:
            if "not an integer" not in str(exc):
                raise
            raise TypeError(f"cannot increment {key!r}: it does not hold an integer") from None

    def evictions(self) -> int:
        """Keys the server (every node of a cluster) evicted under ``maxmemory``, since it
        started: ``evicted_keys`` of ``INFO stats``."""
        return _sum_field(self._stats(), "evicted_keys")

    def _stats(self) -> Mapping[str, Any]:
        return self.client.info("stats")

    def acquire_lock(self, name: str, token: str, lease: float) -> bool:
        return bool(self.client.set(name, token, nx=True, px=_ms(lease)))

    def release_lock(self, name: str, token: str) -> bool:
        # EVAL (not EVALSHA): the script is tiny and survives failovers and SCRIPT FLUSH.
        return bool(self.client.eval(_RELEASE_LOCK, 1, name, token))

    def publish(self, channel: str, message: bytes) -> None:
        self.client.publish(channel, message)

    def subscribe(self, channel: str) -> Subscription:
        """Subscribe now; iterate the result for messages, ``close()`` it when done."""
        return Subscription(
            self.client.pubsub(),  # type: ignore[no-untyped-call]
            channel,
        )

    def scan(self, prefix: str) -> Iterator[str]:
        keys = self._scan_keys(prefix)
        return _wrap_iteration(key.decode("utf-8", "replace") for key in keys)

    # -- internals -------------------------------------------------------------------------

    def _scan_keys(self, prefix: str) -> Iterator[bytes]:
        match = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"
        return self.client.scan_iter(match=match, count=SCAN_BATCH)

    def _unlink(self, keys: list[Any]) -> int:
        # UNLINK frees memory in a background thread; DEL on servers older than 4.0.
        if self._use_unlink:
            try:
                return int(self.client.unlink(*keys))
            except ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise
                self._use_unlink = False
        return int(self.client.delete(*keys))


class RedisBackend(RedisCommands[redis.Redis]):
    """One Redis (or Valkey) server through a redis-py connection pool.

    Built from ``url`` (``redis://[[user]:password@]host[:port][/db][?option=value]``,
    ``rediss://`` for TLS, ``unix:///path.sock``, ``valkey://``) or from ``host``, ``port``,
    ``db`` and ``password``; the URL wins for what it states. ``host`` may also be an
    existing ``redis.Redis`` client (Flask-Caching allows it); it is then used as is and
    not closed by :meth:`close`. Other keyword options go to ``redis.Redis`` and override
    URL query options; unknown ones fail here with :class:`ConfigurationError`.

    ``namespace`` (the Flask layer passes ``CACHE_KEY_PREFIX``) bounds :meth:`clear`: it
    deletes the keys starting with it, by incremental ``SCAN`` + ``UNLINK``, never ``KEYS``
    or ``FLUSHDB``. An empty namespace makes ``clear()`` delete every key of the database.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str | redis.Redis = "localhost",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        namespace: str = "",
        **options: Any,
    ) -> None:
        self.namespace = valid_namespace(namespace)
        if isinstance(host, redis.Redis):
            if url is not None or options:
                raise ConfigurationError("options cannot be applied to an existing Redis client")
            reject_decoding(host.get_connection_kwargs())
            self._client, self._owns_client = host, False
        else:
            address = {"host": host, "port": port, "db": db, "password": password}
            self._client = _new_client({**address, **redis_url_options(url)}, options)


class Subscription:
    """Messages published on one channel; iterating blocks until the next one.

    Built only once the server confirmed the subscription: a message published after the
    constructor returns is delivered. A lost connection raises :class:`BackendError`, and
    so does a connection redis-py re-established and subscribed again by itself (the
    messages published meanwhile are lost): close it and subscribe again.
    """

    #: ``time.monotonic()`` of the last reply from the server (message, confirmation,
    #: pong): how a listener tells a silent channel from a dead one.
    heard_at: float

    def __init__(
        self, pubsub: PubSub, channel: str, confirm_timeout: float = SUBSCRIBE_CONFIRM
    ) -> None:
        self._pubsub = pubsub
        try:
            pubsub.subscribe(channel)
            self._confirm(confirm_timeout)
        except _NATIVE_ERRORS as exc:
            pubsub.close()
            _raise_backend_error("subscribe", exc)

    def _confirm(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self._pubsub.get_message(timeout=left)
            if message is not None and message["type"] == "subscribe":
                self.heard_at = time.monotonic()
                return
        raise RedisError("the server did not confirm the subscription")

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> bytes:
        while True:
            data = self.poll(SUBSCRIBE_POLL)
            if data is not None:
                return data

    def poll(self, timeout: float) -> bytes | None:
        """The next message within ``timeout`` seconds, else ``None``."""
        try:
            message = self._pubsub.get_message(timeout=timeout)
        except _NATIVE_ERRORS as exc:
            _raise_backend_error("subscribe", exc)
        if message is None:
            return None
        self.heard_at = time.monotonic()
        if message["type"] == "subscribe":
            # redis-py reconnected and subscribed again by itself: whatever was published
            # in between is lost, so this subscription is no longer a complete record.
            _raise_backend_error("subscribe", RedisError("the connection was re-established"))
        return message["data"] if message["type"] == "message" else None

    def ping(self) -> None:
        """Ask the server for a reply on this connection (it moves :attr:`heard_at`)."""
        try:
            self._pubsub.ping()
        except _NATIVE_ERRORS as exc:
            _raise_backend_error("subscribe", exc)

    def close(self) -> None:
        self._pubsub.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- construction helpers ------------------------------------------------------------------


def _new_client(address: dict[str, Any], options: Mapping[str, Any]) -> redis.Redis:
    kwargs = with_defaults({**address, **options})
    reject_decoding(kwargs)
    try:
        return redis.Redis(**kwargs)
    except TypeError as exc:  # an unknown keyword: redis.Redis names it
        raise ConfigurationError(f"invalid Redis option: {exc}") from None


# -- small runtime helpers -----------------------------------------------------------------


def _sum_field(info: Mapping[str, Any], name: str) -> int:
    # A cluster client answers ``INFO`` with one mapping per node.
    if name in info:
        return int(info[name])
    return sum(int(node.get(name, 0)) for node in info.values() if isinstance(node, Mapping))


def _ms(ttl: TTL) -> int | None:
    """A TTL in whole milliseconds (at least 1), ``None`` for no expiry."""
    seconds = check_ttl(ttl)
    return None if seconds is None else max(1, math.ceil(seconds * 1000 - 1e-6))


def _bytes(value: bytes) -> bytes:
    # redis-py would also store str and numbers (and wrap other types in a DataError that
    # fail-open would swallow): a non-bytes value is the caller's bug, so say so.
    if type(value) is not bytes:
        raise TypeError(f"backend values are bytes, not {type(value).__name__}")
    return value


T = TypeVar("T")


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _wrap_iteration(items: Iterator[T]) -> Iterator[T]:
    # BaseBackend wraps methods; errors raised while a caller iterates are wrapped here.
    try:
        yield from items
    except _NATIVE_ERRORS as exc:
        _raise_backend_error("scan", exc)


def _raise_backend_error(operation: str, exc: BaseException) -> NoReturn:
    raise BackendError(f"Redis {operation} failed: {exc}", exc) from exc


__all__ = [
    "RedisBackend",
    "RedisCommands",
    "Subscription",
]

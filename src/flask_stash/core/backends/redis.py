"""Redis backends on redis-py: one server, a Sentinel-managed master, or a Redis Cluster.

Valkey speaks the same protocol: ``valkey://`` URLs are accepted as ``redis://``.
Construction never touches the network (an app must boot while Redis is down); a wrong
password, a refused connection or a timeout surfaces at use time as ``BackendError``.
"""

from __future__ import annotations

import inspect
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, NoReturn, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

from flask_stash.core.api import MISS, TTL, Miss, check_ttl
from flask_stash.core.backends.base import BaseBackend
from flask_stash.core.errors import BackendError, ConfigurationError
from flask_stash.core.lazy import require

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.client import PubSub
    from redis.cluster import REDIS_ALLOWED_KEYS, ClusterNode, RedisCluster
    from redis.connection import URL_QUERY_ARGUMENT_PARSERS, parse_url
    from redis.crc import key_slot
    from redis.exceptions import RedisClusterException, RedisError, ResponseError
    from redis.retry import Retry
    from redis.sentinel import Sentinel
except ImportError:  # pragma: no cover - depends on what is installed
    require("redis", extra="redis")  # raises MissingDependencyError naming the extra
    raise

#: Short timeouts: a dead or overloaded server costs a request about a second, not minutes
#: (redis-py waits 5 s by default, then retries with backoff). Every option is overridable.
DEFAULT_TIMEOUTS: Mapping[str, float] = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
#: Seconds a pooled connection may idle before it is PINGed prior to reuse; catches
#: connections a NAT or load balancer dropped silently (at most one PING per idle period).
HEALTH_CHECK_INTERVAL = 30
#: Keys per SCAN page and per UNLINK in ``clear()``: small enough not to block the server.
SCAN_BATCH = 500
#: Seconds a subscription waits per poll (it keeps waiting; this only bounds each read).
SUBSCRIBE_POLL = 1.0

# Delete the lock only if it still holds our token (GET + DEL would race with a new owner).
_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_REDIS_PARAMS = frozenset(inspect.signature(redis.Redis.__init__).parameters) - {"self"}
_SENTINEL_PARAMS = _REDIS_PARAMS - {"host", "port", "connection_pool", "unix_socket_path"}
_CLUSTER_PARAMS = (
    frozenset(inspect.signature(RedisCluster.__init__).parameters) | frozenset(REDIS_ALLOWED_KEYS)
) - {"self", "kwargs", "host", "port", "url", "startup_nodes"}
_NATIVE_ERRORS = (RedisError, RedisClusterException, OSError)


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


# Query values redis-py does not parse itself; other unknown names are rejected later.
_EXTRA_QUERY_PARSERS = {"ssl": _truthy, "read_from_replicas": _truthy}


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
            # SET NX creates the counter with its TTL in the same transaction as INCRBY,
            # so a concurrent caller can never see a counter without expiry.
            with self.client.pipeline(transaction=True) as pipe:  # type: ignore[no-untyped-call]
                pipe.set(key, b"0", nx=True, px=px)
                pipe.incrby(key, delta)
                return int(pipe.execute()[1])
        except ResponseError as exc:
            if "not an integer" not in str(exc):
                raise
            raise TypeError(f"cannot increment {key!r}: it does not hold an integer") from None

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
            self.client.pubsub(ignore_subscribe_messages=True),  # type: ignore[no-untyped-call]
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
        self.namespace = _namespace(namespace)
        if isinstance(host, redis.Redis):
            if url is not None or options:
                raise ConfigurationError("options cannot be applied to an existing Redis client")
            _reject_decoding(host.get_connection_kwargs())
            self._client, self._owns_client = host, False
        else:
            address = {"host": host, "port": port, "db": db, "password": password}
            self._client = _new_client({**address, **_single_url(url)}, options)


class RedisSentinelBackend(RedisBackend):
    """A Redis master found through Sentinel; follows failovers by itself.

    ``url``: ``redis+sentinel://[[user]:password@]h1:p1,h2:p2/service[/db][?option=value]``
    (``rediss+sentinel://`` for TLS to the data nodes; ``sentinel_password``, ``db`` and
    ``read_from_replicas`` may be query options). Otherwise ``sentinels`` (``[(host, port)]``
    or ``"h1:p1,h2:p2"``) and ``service`` (the master's name). ``password`` is the data
    nodes', ``sentinel_password`` the sentinels'; ``sentinel_options`` go to the sentinel
    clients only. Writes go to the master. ``read_from_replicas=True`` sends ``get`` and
    ``get_many`` to replicas: it offloads the master, but a read right after a write may
    miss it (replication is asynchronous), so it is off by default.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        sentinels: str | Sequence[Any] | None = None,
        service: str = "mymaster",
        password: str | None = None,
        sentinel_password: str | None = None,
        db: int = 0,
        read_from_replicas: bool = False,
        namespace: str = "",
        sentinel_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.namespace = _namespace(namespace)
        hosts = _hosts(sentinels or "127.0.0.1:26379", 26379)  # Flask-Caching's default
        settings = {
            "service": service,
            "db": db,
            "password": password,
            "sentinel_password": sentinel_password,
            "read_from_replicas": read_from_replicas,
        }
        if url is not None:
            hosts, url_settings, url_options = _sentinel_url(url)
            settings.update(url_settings)
            options = {**url_options, **options}
        self.sentinel = _sentinel(hosts, settings, options, sentinel_options or {})
        service = str(settings["service"])
        self._client = self.sentinel.master_for(service)  # type: ignore[no-untyped-call]
        if settings["read_from_replicas"]:
            self._reader = self.sentinel.slave_for(service)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Disconnect from the master, the replicas and the sentinels."""
        for client in (self._client, self._reader, *self.sentinel.sentinels):
            if client is not None:
                client.close()


class RedisClusterBackend(RedisCommands[RedisCluster]):
    """A Redis Cluster through redis-py's ``RedisCluster``.

    ``url``: ``redis+cluster://[[user]:password@]h1:p1,h2:p2[?option=value]``
    (``rediss+cluster://`` for TLS; a plain ``redis://host:port`` names one seed), or
    ``startup_nodes`` (``["h1:p1", ("h2", p2)]`` or ``"h1:p1,h2:p2"``). No seed is a
    :class:`ConfigurationError`. The cluster's topology is fetched on first use, not here.

    ``get_many`` on keys of one slot is one ``MGET``; the engine's memoize keys share a
    ``{...}`` hash tag, so a memoize hit is one round trip. Keys spanning slots are fetched
    per slot in a pipeline, in order. ``clear()`` scans every primary.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        startup_nodes: str | Sequence[Any] | None = None,
        password: str | None = None,
        namespace: str = "",
        **options: Any,
    ) -> None:
        self.namespace = _namespace(namespace)
        nodes = _hosts(startup_nodes, 6379) if startup_nodes else []
        if url is not None:
            nodes, path, url_options = _hosts_url(url, _CLUSTER_SCHEMES, 6379)
            if path and path != ["0"]:
                raise ConfigurationError(f"Redis Cluster has database 0 only: {url!r}")
            password = url_options.pop("password", password)
            options = {**url_options, **options}
        if not nodes:
            raise ConfigurationError("RedisClusterBackend needs at least one startup node")
        kwargs = _checked(_CLUSTER_PARAMS, {**DEFAULT_TIMEOUTS, **options}, type(self).__name__)
        kwargs.setdefault("retry", _retry())
        kwargs["password"] = password
        self._nodes = [ClusterNode(host, port) for host, port in nodes]  # type: ignore[no-untyped-call]
        self._kwargs = kwargs
        self._connect_lock = threading.Lock()

    def _connect(self) -> RedisCluster:
        # Built on first use: RedisCluster() fetches the topology, which must not block
        # (or fail) app start-up while the cluster is down. A failure is retried next time.
        with self._connect_lock:
            if self._client is None:
                self._client = RedisCluster(startup_nodes=self._nodes, **self._kwargs)
            return self._client

    def _mget(self, keys: list[str]) -> list[Any]:
        cluster = self.client
        slot = key_slot(keys[0].encode())
        if all(key_slot(key.encode()) == slot for key in keys[1:]):
            return cluster.mget(keys)  # one slot: one MGET on one node
        return cluster.mget_nonatomic(keys)  # per-slot MGETs, results in input order

    def close(self) -> None:
        with self._connect_lock:
            cluster, self._client = self._client, None
        if cluster is not None:
            cluster.close()


class Subscription:
    """Messages published on one channel; iterating blocks until the next one."""

    def __init__(self, pubsub: PubSub, channel: str) -> None:
        self._pubsub = pubsub
        try:
            pubsub.subscribe(channel)
        except _NATIVE_ERRORS as exc:
            pubsub.close()
            _raise_backend_error("subscribe", exc)

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> bytes:
        try:
            while True:
                message = self._pubsub.get_message(timeout=SUBSCRIBE_POLL)
                if message is not None and message["type"] == "message":
                    return message["data"]  # type: ignore[no-any-return]
        except _NATIVE_ERRORS as exc:
            _raise_backend_error("subscribe", exc)

    def close(self) -> None:
        self._pubsub.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- construction helpers ------------------------------------------------------------------

_SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True, "valkey+sentinel": False}
_CLUSTER_SCHEMES = {
    "redis+cluster": False,
    "rediss+cluster": True,
    "valkey+cluster": False,
    "redis": False,
    "rediss": True,
    "valkey": False,
}


def _sentinel(
    hosts: list[tuple[str, int]],
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
    sentinel_options: Mapping[str, Any],
) -> Sentinel:
    kwargs = _checked(_SENTINEL_PARAMS, _defaults(options), "RedisSentinelBackend")
    kwargs.update(db=settings["db"], password=settings["password"])
    # The sentinels get the same short timeouts and single retry, and their own password.
    watchers = {**DEFAULT_TIMEOUTS, "retry": _retry(), "password": settings["sentinel_password"]}
    watchers = _checked(_REDIS_PARAMS, {**watchers, **sentinel_options}, "sentinel_options")
    return Sentinel(hosts, sentinel_kwargs=watchers, **kwargs)  # type: ignore[no-untyped-call]


def _single_url(url: str | None) -> dict[str, Any]:
    """Options from a single-server URL (``redis://``, ``rediss://``, ``unix://``...)."""
    if url is None:
        return {}
    scheme, _, rest = url.partition("://")
    scheme = {"valkey": "redis", "valkeys": "rediss"}.get(scheme, scheme)
    if not rest or scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(f"not a Redis URL (redis://, rediss://, unix://): {url!r}")
    try:
        path = urlsplit(url).path.strip("/")
        options: dict[str, Any] = parse_url(f"{scheme}://{rest}")  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ConfigurationError(f"malformed Redis URL {url!r}: {exc}") from None
    if scheme != "unix" and path and not path.isdigit():
        raise ConfigurationError(f"the path of a Redis URL is a database number: {url!r}")
    options.pop("connection_class", None)  # redis.Redis takes ssl= / unix_socket_path=
    if scheme == "rediss":
        options["ssl"] = True
    if scheme == "unix":
        options["unix_socket_path"] = options.pop("path", None)
    return options


def _sentinel_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any], dict[str, Any]]:
    """``(sentinels, settings, client options)`` from a ``redis+sentinel://`` URL."""
    hosts, path, options = _hosts_url(url, _SENTINEL_SCHEMES, 26379)
    names = ("service", "db", "password", "sentinel_password", "read_from_replicas")
    settings = {name: options.pop(name) for name in names if name in options}
    if path:
        settings["service"] = path[0]
    if len(path) > 1:
        settings["db"] = _int(path[1], "the database number")
    if len(path) > 2:
        raise ConfigurationError(f"a Sentinel URL's path is /service[/db]: {url!r}")
    return hosts, settings, options


def _hosts_url(
    url: str, schemes: Mapping[str, bool], default_port: int
) -> tuple[list[tuple[str, int]], list[str], dict[str, Any]]:
    """``scheme://[[user]:password@]h1:p1,h2:p2[/path][?query]`` as hosts, path, options."""
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ConfigurationError(f"malformed Redis URL {url!r}: {exc}") from None
    if parts.scheme not in schemes or not url.startswith(f"{parts.scheme}://"):
        known = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigurationError(f"unsupported Redis URL {url!r}; expected {known}")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = (unquote(part) for part in userinfo.partition(":"))
    options = {name: _query_value(name, values[-1]) for name, values in query.items()}
    options.update({k: v for k, v in (("username", username), ("password", password)) if v})
    if schemes[parts.scheme]:
        options["ssl"] = True
    path = [unquote(segment) for segment in parts.path.split("/") if segment]
    return _hosts(hostlist, default_port), path, options


def _query_value(name: str, value: str) -> Any:
    known = cast("Callable[[str], Any] | None", URL_QUERY_ARGUMENT_PARSERS.get(name))
    parser = known or _EXTRA_QUERY_PARSERS.get(name)
    if parser is None:
        return value  # an unknown name is rejected with the other options
    try:
        return parser(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"invalid value for {name!r} in a Redis URL: {value!r}") from None


def _hosts(spec: str | Sequence[Any], default_port: int) -> list[tuple[str, int]]:
    """``"h1:p1,h2"``, ``["h1:p1"]`` or ``[("h1", p1)]`` as ``[(host, port)]``."""
    items: Iterable[Any] = spec.split(",") if isinstance(spec, str) else spec
    hosts = []
    for item in items:
        if isinstance(item, str):
            if item.strip():
                hosts.append(_host_port(item.strip(), default_port))
        else:
            host, port = item
            hosts.append((str(host), _int(port, "a port")))
    if not hosts:
        raise ConfigurationError(f"no Redis host given in {spec!r}")
    return hosts


def _host_port(item: str, default_port: int) -> tuple[str, int]:
    if item.startswith("["):  # IPv6: [::1]:6379
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    elif item.count(":") == 1:
        host, _, port = item.partition(":")
    else:
        host, port = item, ""
    return host, _int(port, "a port") if port else default_port


def _new_client(address: dict[str, Any], options: Mapping[str, Any]) -> redis.Redis:
    kwargs = _defaults({**address, **options})
    _reject_decoding(kwargs)
    try:
        return redis.Redis(**kwargs)
    except TypeError as exc:  # an unknown keyword: redis.Redis names it
        raise ConfigurationError(f"invalid Redis option: {exc}") from None


def _defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **DEFAULT_TIMEOUTS,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "retry": _retry(),
        **options,
    }


def _retry() -> Retry:
    # One immediate retry, on connection errors only: it replaces a pooled connection the
    # server dropped (restart, idle timeout). A timed-out command is not re-sent, since it
    # may have run (SET NX or INCRBY must not run twice).
    return Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))


def _checked(allowed: frozenset[str], options: dict[str, Any], owner: str) -> dict[str, Any]:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigurationError(f"{owner}: unknown Redis option(s) {', '.join(unknown)}")
    _reject_decoding(options)
    return options


def _reject_decoding(options: Mapping[str, Any]) -> None:
    if options.get("decode_responses"):
        raise ConfigurationError("decode_responses=True is not supported: cache values are bytes")


def _namespace(namespace: object) -> str:
    if not isinstance(namespace, str):
        raise ConfigurationError(f"namespace must be a str, not {type(namespace).__name__}")
    return namespace


def _int(value: str | int, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} must be an integer, not {value!r}") from None


# -- small runtime helpers -----------------------------------------------------------------


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
    "RedisClusterBackend",
    "RedisCommands",
    "RedisSentinelBackend",
    "Subscription",
]

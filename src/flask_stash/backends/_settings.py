"""The backend ``CACHE_*`` keys (``CACHE_REDIS_*``, ``CACHE_MEMCACHED_*``, ``CACHE_DIR``...),
read once into a typed record and validated: a bad value names its key.

``None`` stands for the default wherever Flask-Caching's factories accept it (they read
these keys with ``config.get(key) or default``).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from flask_stash.core.backends._urls import (
    REDIS_PORT,
    SENTINEL_PORT,
    memcached_location,
    parse_hosts,
)
from flask_stash.core.errors import ConfigurationError

T = TypeVar("T")

#: The backend keys and Flask-Caching's defaults (ours where we add keys).
DEFAULTS: dict[str, Any] = {
    "CACHE_THRESHOLD": 500,
    "CACHE_DIR": None,
    "CACHE_FILE_HASH_METHOD": hashlib.sha256,
    "CACHE_REDIS_HOST": "localhost",
    "CACHE_REDIS_PORT": REDIS_PORT,
    "CACHE_REDIS_PASSWORD": None,
    "CACHE_REDIS_DB": 0,
    "CACHE_REDIS_URL": None,
    "CACHE_REDIS_SENTINELS": None,
    "CACHE_REDIS_SENTINEL_MASTER": None,
    "CACHE_REDIS_SENTINEL_PASSWORD": None,
    "CACHE_REDIS_CLUSTER": None,
    "CACHE_MEMCACHED_SERVERS": None,
    "CACHE_MEMCACHED_USERNAME": None,
    "CACHE_MEMCACHED_PASSWORD": None,
}


@dataclass(frozen=True)
class BackendKeys:
    """Every backend key of one configuration, typed; see ``docs/configuration.md``."""

    threshold: int
    cache_dir: str | None
    file_hash_method: Callable[..., Any]
    redis_host: Any  # a host name, or an existing redis.Redis client
    redis_port: int
    redis_password: str | None
    redis_db: int
    redis_url: str | None
    redis_sentinels: tuple[tuple[str, int], ...]
    redis_sentinel_master: str
    redis_sentinel_password: str | None
    redis_cluster: tuple[tuple[str, int], ...]
    memcached_servers: Any  # as given: a list, a "h1:p1,h2" string or a memcached:// URL
    memcached_username: str | None
    memcached_password: str | None

    @classmethod
    def read(cls, config: Mapping[str, Any]) -> BackendKeys:
        """The keys of ``config`` (missing ones take their defaults), validated."""
        values = {**DEFAULTS, **{k: v for k, v in config.items() if k in DEFAULTS}}
        servers = values["CACHE_MEMCACHED_SERVERS"]
        if servers is not None:
            _checked("CACHE_MEMCACHED_SERVERS", memcached_location, servers, None)
        return cls(
            threshold=_count(values, "CACHE_THRESHOLD"),
            cache_dir=_text(values, "CACHE_DIR"),
            file_hash_method=_hash_method(values, "CACHE_FILE_HASH_METHOD"),
            redis_host=_redis_host(values["CACHE_REDIS_HOST"]),
            redis_port=_port(values, "CACHE_REDIS_PORT"),
            redis_password=_text(values, "CACHE_REDIS_PASSWORD"),
            redis_db=_count(values, "CACHE_REDIS_DB", default=0),
            redis_url=_text(values, "CACHE_REDIS_URL"),
            redis_sentinels=_hosts(values, "CACHE_REDIS_SENTINELS", SENTINEL_PORT),
            redis_sentinel_master=_text(values, "CACHE_REDIS_SENTINEL_MASTER") or "mymaster",
            redis_sentinel_password=_text(values, "CACHE_REDIS_SENTINEL_PASSWORD"),
            redis_cluster=_hosts(values, "CACHE_REDIS_CLUSTER", REDIS_PORT),
            memcached_servers=servers,
            memcached_username=_text(values, "CACHE_MEMCACHED_USERNAME"),
            memcached_password=_text(values, "CACHE_MEMCACHED_PASSWORD"),
        )


def _text(values: Mapping[str, Any], key: str) -> str | None:
    value = values[key]
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"{key} must be a string or None, not {value!r}")
    return value or None


def _count(values: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = values[key]
    if value is None and default is not None:
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{key} must be a non-negative integer, not {value!r}")
    return value


def _port(values: Mapping[str, Any], key: str) -> int:
    port = _count(values, key, default=DEFAULTS[key])
    if not 0 < port < 65536:
        raise ConfigurationError(f"{key} must be a port number (1-65535), not {port!r}")
    return port


def _redis_host(value: object) -> Any:
    if value is None or value == "":
        return DEFAULTS["CACHE_REDIS_HOST"]
    if isinstance(value, str) or callable(getattr(value, "get_connection_kwargs", None)):
        return value
    raise ConfigurationError(f"CACHE_REDIS_HOST must be a host name or a Redis client: {value!r}")


def _hosts(values: Mapping[str, Any], key: str, default_port: int) -> tuple[tuple[str, int], ...]:
    value = values[key]
    if value is None or value == "":
        return ()
    return tuple(_checked(key, parse_hosts, value, default_port))


def _checked(key: str, parse: Callable[..., T], *args: Any) -> T:
    """``parse(*args)``, its ConfigurationError prefixed with the key it is about."""
    try:
        return parse(*args)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{key}: {exc}") from None


def _hash_method(values: Mapping[str, Any], key: str) -> Callable[..., Any]:
    value = values[key]
    if isinstance(value, str):
        value = getattr(hashlib, value, None)
    if not callable(value):
        raise ConfigurationError(f"{key} must be a hash constructor such as hashlib.sha256")
    return value  # type: ignore[no-any-return]


def constructor_kwargs(
    cls: Any, keys: BackendKeys, args: Sequence[Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Keyword arguments for ``cls(*args, **result)``: the class's ``CACHE_*`` keys
    (``cls.config_kwargs``), overridden by ``given`` (a URL, ``CACHE_OPTIONS``); a
    parameter ``args`` already fill is left out, so it is not passed twice."""
    kwargs = {**cls.config_kwargs(keys), **given}
    for name in named_arguments(cls, args):
        kwargs.pop(name, None)
    return kwargs


def named_arguments(function: Callable[..., Any], args: Sequence[Any]) -> dict[str, Any]:
    """``args`` (``CACHE_ARGS``) by the names of the parameters they fill."""
    try:
        return dict(inspect.signature(function).bind_partial(*args).arguments)
    except TypeError as exc:
        raise ConfigurationError(f"CACHE_ARGS do not fit {function.__qualname__}: {exc}") from None


def effective_prefix(configured: str, given: object) -> str | Any:
    """The key prefix that wins, as in Flask-Caching 2.5: ``CACHE_KEY_PREFIX`` unless it is
    empty, then a ``key_prefix`` given otherwise (``CACHE_OPTIONS``, ``CACHE_ARGS``)."""
    if configured or given is None:
        return configured
    return given

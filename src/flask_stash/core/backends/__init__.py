"""Backend registry: names and URL schemes resolved to classes, imported lazily.

Drivers of optional backends are imported only when such a backend is built, so
``import flask_stash`` stays cheap and works without redis-py or pymemcache.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import unquote, urlsplit

from flask_stash.core.api import Backend
from flask_stash.core.backends._urls import memcached_url, shown
from flask_stash.core.errors import ConfigurationError

#: Backend name -> "module:Class". Later backends register here too.
REGISTRY: dict[str, str] = {
    "memory": "flask_stash.core.backends.memory:MemoryBackend",
    "filesystem": "flask_stash.core.backends.filesystem:FileSystemBackend",
    "null": "flask_stash.core.backends.null:NullBackend",
    "redis": "flask_stash.core.backends.redis:RedisBackend",
    "redis-sentinel": "flask_stash.core.backends.redis_sentinel:RedisSentinelBackend",
    "redis-cluster": "flask_stash.core.backends.redis_cluster:RedisClusterBackend",
    "memcached": "flask_stash.core.backends.memcached:MemcachedBackend",
    "memcached-sasl": "flask_stash.core.backends.memcached_sasl:SASLMemcachedBackend",
}

#: URL scheme -> backend name.
SCHEMES: dict[str, str] = {
    "memory": "memory",
    "simple": "memory",
    "file": "filesystem",
    "null": "null",
    "redis": "redis",
    "rediss": "redis",
    "valkey": "redis",
    "valkeys": "redis",
    "unix": "redis",
    "redis+sentinel": "redis-sentinel",
    "rediss+sentinel": "redis-sentinel",
    "valkey+sentinel": "redis-sentinel",
    "redis+cluster": "redis-cluster",
    "rediss+cluster": "redis-cluster",
    "valkey+cluster": "redis-cluster",
    "memcached": "memcached",
}
_LOCAL = ("memory", "filesystem", "null")


def backend_class(name: str) -> type[Any]:
    """The class registered under ``name``; a clear error for unknown names."""
    try:
        target = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigurationError(f"unknown backend {name!r}; known backends: {known}") from None
    module, _, attr = target.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module), attr)
    return cls


def create_backend(name_or_url: str, **options: Any) -> Backend:
    """Build a backend from a registered name (``"memory"``) or a URL (``"file:///tmp/c"``).

    ``options`` go to the backend's class (see :data:`REGISTRY`) and win over what the URL
    says. Unknown options fail here with :class:`ConfigurationError`, not at the first
    request; nothing here touches the network.
    """
    if "://" in name_or_url:
        name, url_options = parse_url(name_or_url)
        options = {**url_options, **options}
    else:
        name = name_or_url
    cls = backend_class(name)
    try:
        backend: Backend = cls(**options)
    except TypeError as exc:
        raise ConfigurationError(f"bad options for the {name} backend: {exc}") from exc
    return backend


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """The backend name a cache URL selects, and the options it carries.

    ``file:///path`` gives ``cache_dir``; network backends get the whole ``url`` (they
    parse hosts, database, TLS and options themselves, with
    :mod:`flask_stash.core.backends._urls`). A ``memcached://user:password@host`` URL
    selects the SASL backend.
    """
    parts = urlsplit(url)
    name = SCHEMES.get(parts.scheme)
    if name is None:
        known = ", ".join(f"{s}://" for s in sorted(SCHEMES))
        raise ConfigurationError(f"unknown cache URL scheme in {shown(url)}; known: {known}")
    if name == "filesystem":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ConfigurationError(f"a file:// cache URL needs a directory: {url!r}")
        return name, {"cache_dir": path}
    if name == "memcached" and memcached_url(url)[1] is not None:
        name = "memcached-sasl"
    return name, ({} if name in _LOCAL else {"url": url})

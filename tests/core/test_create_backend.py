"""``create_backend(url_or_name, **options)``: the one factory of the core, for every scheme
and name. Construction never touches the network, so no server is needed here; the
contract suites run the built backends against real servers."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import pytest

from flask_stash.core.api import Backend
from flask_stash.core.backends import REGISTRY, SCHEMES, create_backend, parse_url
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memcached import MemcachedBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.null import NullBackend
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.backends.redis_cluster import RedisClusterBackend
from flask_stash.core.backends.redis_sentinel import RedisSentinelBackend
from flask_stash.core.errors import ConfigurationError


def built(url_or_name: str, **options: Any) -> Any:
    backend = create_backend(url_or_name, **options)
    assert isinstance(backend, Backend)
    return backend


def test_local_backends_by_name_and_url(tmp_path: Path) -> None:
    assert isinstance(built("memory", threshold=3), MemoryBackend)
    memory = built("memory://")
    assert isinstance(memory, MemoryBackend)
    assert memory.threshold == 500
    assert isinstance(built("simple://"), MemoryBackend)
    assert isinstance(built("null://"), NullBackend)
    assert isinstance(built("null"), NullBackend)
    files = built(f"file://{tmp_path}/c", threshold=7)
    assert isinstance(files, FileSystemBackend)
    assert (Path(files.cache_dir), files.threshold) == (tmp_path / "c", 7)
    assert isinstance(built("filesystem", cache_dir=str(tmp_path / "d")), FileSystemBackend)


@pytest.mark.parametrize(
    ("url", "address", "tls"),
    [
        ("redis://:pw@h:7/2", ("h", 7, 2, "pw"), False),
        ("rediss://h", ("h", 6379, 0, None), True),
        ("valkey://[::1]:8/3", ("::1", 8, 3, None), False),
    ],
)
def test_redis_single_server_urls(url: str, address: tuple[Any, ...], tls: bool) -> None:
    with built(url, socket_timeout=0.5) as backend:
        assert isinstance(backend, RedisBackend)
        kwargs = backend.client.get_connection_kwargs()
        assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == address
        assert kwargs["socket_timeout"] == 0.5  # options win over the URL's defaults
        is_tls = backend.client.connection_pool.connection_class.__name__ == "SSLConnection"
        assert is_tls is tls


def test_redis_by_name_with_a_unix_socket() -> None:
    with built("redis", host="h", port=9, namespace="app:") as backend:
        assert backend.client.get_connection_kwargs()["port"] == 9
        assert backend.namespace == "app:"
    with built("unix:///run/redis.sock?db=4") as backend:
        kwargs = backend.client.get_connection_kwargs()
        assert (kwargs["path"], kwargs["db"]) == ("/run/redis.sock", 4)


def test_redis_sentinel_url() -> None:
    url = "redis+sentinel://:pw@s1:1,[::1]/svc/2?sentinel_password=sp"
    with built(url) as backend:
        assert isinstance(backend, RedisSentinelBackend)
        sentinels = [s.get_connection_kwargs() for s in backend.sentinel.sentinels]
        assert [(s["host"], s["port"]) for s in sentinels] == [("s1", 1), ("::1", 26379)]
        assert sentinels[0]["password"] == "sp"
        pool = backend.client.connection_pool
        assert (pool.service_name, pool.connection_kwargs["db"]) == ("svc", 2)


@pytest.mark.parametrize("scheme", ["redis+cluster", "rediss+cluster", "valkey+cluster"])
def test_redis_cluster_url(scheme: str) -> None:
    with built(f"{scheme}://u:p@n1:7000,n2") as backend:
        assert isinstance(backend, RedisClusterBackend)
        assert [(n.host, n.port) for n in backend._nodes] == [("n1", 7000), ("n2", 6379)]
        assert backend._kwargs["password"] == "p"
        assert backend._kwargs.get("ssl", False) is scheme.startswith("rediss")


def test_memcached_with_several_hosts() -> None:
    with contextlib.closing(built("memcached://h1:1,[::1]:2,h3")) as backend:
        assert isinstance(backend, MemcachedBackend)
        assert backend.servers == ["h1:1", "[::1]:2", "h3:11211"]
    with contextlib.closing(built("memcached", servers=["a:1", ("b", 2)])) as backend:
        assert backend.servers == ["a:1", "b:2"]


def test_memcached_credentials_select_the_sasl_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_url("memcached://u:p@h1,h2") == (
        "memcached-sasl",
        {"url": "memcached://u:p@h1,h2"},
    )
    assert parse_url("memcached://h1,h2")[0] == "memcached"
    monkeypatch.setitem(sys.modules, "pylibmc", None)  # as if not installed
    with pytest.raises(ConfigurationError, match="needs pylibmc"):
        create_backend("memcached://u:p@h1")


def test_every_scheme_names_a_registered_backend() -> None:
    assert set(SCHEMES.values()) <= set(REGISTRY)


@pytest.mark.parametrize(
    ("target", "options", "message"),
    [
        ("no-such-backend", {}, "unknown backend"),
        ("gopher://h", {}, "unknown cache URL scheme"),
        ("file://", {}, "needs a directory"),
        ("memory", {"no_such_option": 1}, "bad options for the memory backend"),
        ("redis://h", {"no_such_option": 1}, "no_such_option"),
        ("redis+cluster://", {}, "host"),
        ("memcached://h:notaport", {}, "bad server"),
    ],
)
def test_bad_targets_and_options(target: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_backend(target, **options)


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as raised:
        create_backend("Redis")  # names are exact
    assert str(raised.value) == (
        "unknown backend 'Redis'; known backends: filesystem, memcached, memcached-sasl, "
        "memory, null, redis, redis-cluster, redis-sentinel"
    )
    with pytest.raises(ConfigurationError) as raised:
        create_backend("redis+sentinal://:secret@h")
    message = str(raised.value)
    assert message.startswith("unknown cache URL scheme in 'redis+sentinal://:***@h'; known: ")
    assert "secret" not in message
    known = [scheme.removesuffix("://") for scheme in message.partition("; known: ")[2].split(", ")]
    assert known == sorted(SCHEMES)  # every scheme, in alphabetical order
    assert {"redis", "redis+sentinel", "memcached", "file"} <= set(known)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("memcached://u@h", "memcached-sasl"),  # a user alone asks for SASL
        ("memcached://u:p@h", "memcached-sasl"),
        ("memcached://h", "memcached"),
    ],
)
def test_memcached_credentials_choose_the_backend(url: str, name: str) -> None:
    assert parse_url(url) == (name, {"url": url})


def test_a_memcached_password_without_a_user_is_refused() -> None:
    # It used to select the plain backend, which connected without the password.
    with pytest.raises(
        ConfigurationError, match=r"password needs a user \(SASL\): 'memcached://:\*\*\*@h'$"
    ):
        create_backend("memcached://:secret@h")

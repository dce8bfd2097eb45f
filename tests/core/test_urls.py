"""The one URL and host-list parser behind the Redis and memcached backends."""

from __future__ import annotations

from typing import Any

import pytest

from flask_stash.core.backends._urls import (
    CLUSTER_SCHEMES,
    StorageURIOptions,
    location_label,
    memcached_location,
    memcached_servers,
    parse_hosts,
    parse_storage_uri,
    redis_hosts_url,
    redis_url_options,
    sentinel_url_options,
)
from flask_stash.core.errors import ConfigurationError


def test_a_url_taken_apart() -> None:
    parsed = parse_storage_uri("redis+sentinel://us%40r:p%3Ass@[::1]:1,h2/mymaster/3?x=1&x=2", 9)
    assert parsed == StorageURIOptions(
        scheme="redis+sentinel",
        locations=(("::1", 1), ("h2", 9)),
        path=("mymaster", "3"),
        username="us@r",
        password="p:ss",
        query={"x": "2"},
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("h1:1,h2", [("h1", 1), ("h2", 7)]),
        (" h1:1 , ", [("h1", 1)]),
        (["h1:1", ("h2", 2), ["h3", "3"]], [("h1", 1), ("h2", 2), ("h3", 3)]),
        (("h", 3), [("h", 3)]),
        ("[::1]:4,[fe80::2],::1", [("::1", 4), ("fe80::2", 7), ("::1", 7)]),
    ],
)
def test_host_lists(spec: Any, expected: list[tuple[str, int]]) -> None:
    assert parse_hosts(spec, 7) == expected


@pytest.mark.parametrize(
    "spec", ["", ",", [], "h:notaport", "h:0", "h:65536", [("h", True)], 5, [None], ":1"]
)
def test_bad_host_lists(spec: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"host|server"):
        parse_hosts(spec, 7)


def test_labels_bracket_ipv6_once() -> None:
    assert [location_label(loc) for loc in parse_hosts("[::1]:4,h:5", 7)] == ["[::1]:4", "h:5"]
    assert location_label("/run/mc.sock") == "/run/mc.sock"


def test_memcached_servers_and_sockets() -> None:
    assert memcached_servers(None) == [("127.0.0.1", 11211)]
    assert memcached_servers("unix:/a.sock,/b.sock,[::1]") == ["/a.sock", "/b.sock", ("::1", 11211)]
    with pytest.raises(ConfigurationError):
        parse_hosts("/not/for/redis.sock", 6379)


@pytest.mark.parametrize(
    ("servers", "url", "expected"),
    [
        (None, "memcached://u:p%40ss@h1:5,[::1]:6", ([("h1", 5), ("::1", 6)], "u", "p@ss")),
        ("memcached://h1", None, ([("h1", 11211)], None, None)),
        (None, "memcached:///run/mc.sock", (["/run/mc.sock"], None, None)),
        (None, "memcached://", ([("127.0.0.1", 11211)], None, None)),
        (["h:1"], None, ([("h", 1)], None, None)),
    ],
)
def test_memcached_locations(servers: Any, url: str | None, expected: Any) -> None:
    assert memcached_location(servers, url) == expected


@pytest.mark.parametrize(
    ("servers", "url"),
    [
        (None, "memcached://h/path"),
        (None, "memcached://h?timeout=1"),
        (None, "redis://h"),
        (["h:1"], "memcached://h"),
    ],
)
def test_bad_memcached_locations(servers: Any, url: str) -> None:
    with pytest.raises(ConfigurationError):
        memcached_location(servers, url)


def test_redis_single_server_urls() -> None:
    assert redis_url_options(None) == {}
    options = redis_url_options("rediss://:pw@[::1]:7/2?socket_timeout=0.5")
    assert (options["host"], options["port"], options["db"]) == ("::1", 7, 2)
    assert (options["password"], options["ssl"], options["socket_timeout"]) == ("pw", True, 0.5)
    assert redis_url_options("valkey://h")["host"] == "h"
    assert redis_url_options("unix:///run/r.sock?db=3")["unix_socket_path"] == "/run/r.sock"


def test_redis_multi_host_urls() -> None:
    hosts, path, options = redis_hosts_url("rediss+cluster://u:p@[::1]:1,h", CLUSTER_SCHEMES, 9)
    assert hosts == [("::1", 1), ("h", 9)]
    assert (path, options) == ([], {"username": "u", "password": "p", "ssl": True})
    sentinels, settings, rest = sentinel_url_options(
        "redis+sentinel://:pw@s1,s2:2/svc/4?sentinel_password=sp&read_from_replicas=yes"
    )
    assert sentinels == [("s1", 26379), ("s2", 2)]
    assert settings == {
        "service": "svc", "db": 4, "password": "pw", "sentinel_password": "sp",
        "read_from_replicas": True,
    }  # fmt: skip
    assert rest == {}


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "memcached+cluster://h",
        "redis+sentinel://h/svc/0/extra",
        "redis+sentinel://h/svc/notadb",
        "redis+cluster://h?socket_timeout=soon",
        "redis+cluster://h?a",
    ],
)
def test_bad_redis_multi_host_urls(url: str) -> None:
    parse = sentinel_url_options if "sentinel" in url else cluster_url
    with pytest.raises(ConfigurationError):
        parse(url)


def cluster_url(url: str) -> object:
    return redis_hosts_url(url, CLUSTER_SCHEMES, 6379)

"""Every bad cache URL or host list gives an error that says what is wrong, without the
password; every good one means exactly what it says (round trips, explicit forms)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from flask_stash.core.backends._urls import (
    CLUSTER_SCHEMES,
    Location,
    StorageURIOptions,
    location_label,
    memcached_location,
    memcached_servers,
    memcached_url,
    parse_hosts,
    parse_storage_uri,
    redis_hosts_url,
    redis_url_options,
    sentinel_url_options,
    shown,
)
from flask_stash.core.errors import ConfigurationError

BAD_PORT = "use 'host:port' (port 1-65535)"
NOT_A_HOST = "a Unix socket is not a host here"


def cluster(url: str) -> object:
    return redis_hosts_url(url, CLUSTER_SCHEMES, 6379)


# -- what a bad input says -------------------------------------------------------------------

BAD_INPUTS: list[tuple[Any, str]] = [
    # Host lists (CACHE_REDIS_SENTINELS, CACHE_REDIS_CLUSTER, CACHE_MEMCACHED_SERVERS).
    (lambda: parse_hosts([("h", 0)], 7), f"bad server ('h', 0): {BAD_PORT}"),
    (lambda: parse_hosts([("h", "x")], 7), f"bad server ('h', 'x'): {BAD_PORT}"),
    (lambda: parse_hosts([5], 7), f"bad server 5: {BAD_PORT}"),
    (lambda: parse_hosts([None], 7), f"bad server None: {BAD_PORT}"),
    (lambda: parse_hosts(5, 7), "servers must be 'host:port' items, not 5"),
    (lambda: parse_hosts(["[::1]:x"], 7), f"bad server '[::1]:x': {BAD_PORT}"),
    (lambda: parse_hosts("[::1]]:4", 7), f"bad server '[::1]]:4': {BAD_PORT}"),
    (lambda: parse_hosts("h:x", 7), f"bad server 'h:x': {BAD_PORT}"),
    (lambda: parse_hosts([""], 7), f"bad server '': {BAD_PORT}"),
    (lambda: parse_hosts(" , ", 7), "no host given in ' , '"),
    (lambda: parse_hosts("unix:/s", 7), f"bad server 'unix:/s': {NOT_A_HOST}"),
    (lambda: parse_hosts("h,/s", 7), f"bad server '/s': {NOT_A_HOST}"),
    (lambda: memcached_servers(["/s", ("h", 99999)]), f"bad server ('h', 99999): {BAD_PORT}"),
    # Any cache URL.
    (
        lambda: parse_storage_uri("redis+cluster://[::1", 7),
        "malformed cache URL 'redis+cluster://[::1': Invalid IPv6 URL",
    ),
    (
        lambda: parse_storage_uri("redis+cluster://:pw@h?a", 7),
        "malformed cache URL 'redis+cluster://:***@h?a': bad query field: 'a'",
    ),
    (lambda: parse_storage_uri("redis:h", 7), "not a cache URL (scheme://...): 'redis:h'"),
    (lambda: parse_storage_uri("h:1", 7), "not a cache URL (scheme://...): 'h:1'"),
    # Single-server Redis.
    (
        lambda: redis_url_options("http://:pw@h"),
        "not a Redis URL (redis://, rediss://, unix://): 'http://:***@h'",
    ),
    (
        lambda: redis_url_options("redis://"),
        "not a Redis URL (redis://, rediss://, unix://): 'redis://'",
    ),
    (
        lambda: redis_url_options("redis://:pw@h:x"),
        "malformed Redis URL 'redis://:***@h:x': Port could not be cast to integer value as 'x'",
    ),
    (
        lambda: redis_url_options("redis://h/1/2"),
        "the path of a Redis URL is a database number: 'redis://h/1/2'",
    ),
    (
        lambda: redis_url_options("redis://h/X"),
        "the path of a Redis URL is a database number: 'redis://h/X'",
    ),
    (
        lambda: redis_url_options("unix://:pw@?db=1"),
        "a unix:// Redis URL needs the socket's path: 'unix://:***@?db=1'",
    ),
    # Sentinel and Cluster.
    (
        lambda: cluster("memcached+cluster://:pw@h"),
        "unsupported Redis URL 'memcached+cluster://:***@h'; expected redis+cluster://, "
        "rediss+cluster://, valkey+cluster://, redis://, rediss://, valkey://",
    ),
    (lambda: cluster("redis+cluster://,"), "no Redis host given in 'redis+cluster://,'"),
    (
        lambda: cluster("redis+cluster://h?socket_timeout=soon"),
        "invalid value for 'socket_timeout' in a Redis URL: 'soon'",
    ),
    (lambda: cluster("redis+cluster://unix:1"), f"bad server 'unix:1': {NOT_A_HOST}"),
    (
        lambda: sentinel_url_options("redis+sentinel://h/svc/notadb"),
        "the database number must be an integer, not 'notadb'",
    ),
    (
        lambda: sentinel_url_options("redis+sentinel://u:pw@h/svc/0/x"),
        "a Sentinel URL's path is /service[/db]: 'redis+sentinel://u:***@h/svc/0/x'",
    ),
    # memcached.
    (lambda: memcached_url("redis://h"), "not a memcached:// URL: 'redis://h'"),
    (
        lambda: memcached_url("memcached://u:pw@h/p"),
        "memcached URLs name servers only (use options): 'memcached://u:***@h/p'",
    ),
    (
        lambda: memcached_url("memcached://h?timeout=1"),
        "memcached URLs name servers only (use options): 'memcached://h?timeout=1'",
    ),
    (
        lambda: memcached_url("memcached://:pw@h"),
        "a memcached password needs a user (SASL): 'memcached://:***@h'",
    ),
    (
        lambda: memcached_location(["h"], "memcached://h"),
        "give memcached servers or a URL, not both",
    ),
]


@pytest.mark.parametrize(("parse", "message"), BAD_INPUTS)
def test_a_bad_input_says_what_is_wrong(parse: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse()
    assert str(raised.value) == message


# -- what a good input means -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ([("h", None)], [("h", 7)]),  # no port: the default one
        ("h:", [("h", 7)]),
        ("[::1]", [("::1", 7)]),
        ("[::1]:", [("::1", 7)]),
        ([" h:2 "], [("h", 2)]),
    ],
)
def test_a_missing_port_is_the_default_one(spec: Any, expected: list[tuple[str, int]]) -> None:
    assert parse_hosts(spec, 7) == expected


def test_credentials_split_at_the_first_colon() -> None:
    parsed = parse_storage_uri("redis+cluster://u:p:ss@h", 1)
    assert (parsed.username, parsed.password) == ("u", "p:ss")
    parsed = parse_storage_uri("memcached://u@h", 1)
    assert (parsed.username, parsed.password) == ("u", None)
    assert memcached_url("memcached://u@h") == ([("h", 11211)], "u", None)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("valkeys://h", {"host": "h", "ssl": True}),
        ("rediss://h", {"host": "h", "ssl": True}),
        ("valkey://h/2", {"host": "h", "db": 2}),
        ("redis://h/0?client_name=a://b", {"host": "h", "db": 0, "client_name": "a://b"}),
        ("unix:///run/r.sock", {"unix_socket_path": "/run/r.sock"}),
    ],
)
def test_single_server_redis_urls(url: str, expected: dict[str, Any]) -> None:
    assert redis_url_options(url) == expected


@pytest.mark.parametrize(
    ("url", "settings"),
    [
        ("redis+sentinel://h/svc", {"service": "svc"}),
        ("redis+sentinel://h?service=svc&db=3", {"service": "svc", "db": 3}),
        ("redis+sentinel://h/svc?db=3", {"service": "svc", "db": 3}),
        ("redis+sentinel://h/svc/4?db=3", {"service": "svc", "db": 4}),  # the path wins
    ],
)
def test_sentinel_service_and_database(url: str, settings: dict[str, Any]) -> None:
    assert sentinel_url_options(url) == ([("h", 26379)], settings, {})


@pytest.mark.parametrize(
    ("text", "on"),
    [
        *[("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True), ("ON", True)],
        *[("0", False), ("false", False), ("no", False), ("off", False), ("", False)],
    ],
)
def test_yes_no_query_values(text: str, on: bool) -> None:
    _, settings, _ = sentinel_url_options(f"redis+sentinel://h?read_from_replicas={text}")
    assert settings.get("read_from_replicas", False) is on
    _, _, options = cluster(f"redis+cluster://h?ssl={text}")
    assert options.get("ssl", False) is on


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:pw@h/0", "'redis://:***@h/0'"),
        ("redis://u:p:w@h", "'redis://u:***@h'"),
        ("redis://u:p@w@h:1/0?x=1", "'redis://u:***@h:1/0?x=1'"),  # a raw @ in the password
        ("memcached://u@h1,h2", "'memcached://u@h1,h2'"),  # a user alone is no secret
        ("redis://u:@h", "'redis://u:@h'"),
        ("redis://h:6379/0", "'redis://h:6379/0'"),
        ("redis://h/0?x=a@b:c", "'redis://h/0?x=a@b:c'"),
        ("redis://h:1/0?client_name=a@b", "'redis://h:1/0?client_name=a@b'"),
        ("redis://:pw@h/0?client_name=a://b", "'redis://:***@h/0?client_name=a://b'"),
    ],
)
def test_a_shown_url_hides_its_password(url: str, expected: str) -> None:
    assert shown(url) == expected


# -- round trips -----------------------------------------------------------------------------

# Host names that cannot be mistaken for something else: "unix" would read as a socket.
host_names = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9.-]{0,20}[A-Za-z0-9])?\Z").filter(
    lambda name: name.lower() != "unix"
)
ipv6 = st.ip_addresses(v=6).map(lambda address: str(ipaddress.IPv6Address(address)))
ports = st.integers(1, 65535)
locations = st.lists(st.tuples(host_names | ipv6, ports), min_size=1, max_size=4)


@given(locations)
@example([("X", 1)])
@example([("::", 65535), ("h", 1)])
def test_labels_parse_back_to_their_locations(locs: list[tuple[str, int]]) -> None:
    labels = [location_label(loc) for loc in locs]
    assert parse_hosts(",".join(labels), 7) == locs
    assert parse_hosts(labels, 7) == locs
    assert memcached_servers(labels) == locs


@st.composite
def storage_urls(draw: st.DrawFn) -> tuple[str, str, StorageURIOptions]:
    """A URL, as :func:`shown` prints it, and its parts."""
    locs: list[Location] = list(draw(locations))
    user = draw(st.text(max_size=8))
    password = draw(st.text(max_size=8))
    path = draw(st.lists(st.text(min_size=1, max_size=8), max_size=3))
    query = draw(st.dictionaries(host_names, host_names, max_size=3))
    hosts = ",".join(location_label(loc) for loc in locs)
    rest = hosts + "".join("/" + quote(segment, safe="") for segment in path)
    if query:
        rest += "?" + "&".join(f"{name}={value}" for name, value in query.items())
    login = quote(user, safe="")
    url = f"redis+cluster://{login}:{quote(password, safe='')}@{rest}"
    masked = f"redis+cluster://{login}:***@{rest}" if password else url
    parts = StorageURIOptions(
        "redis+cluster", tuple(locs), tuple(path), user or None, password or None, query
    )
    return url, repr(masked), parts


@given(storage_urls())
@example(
    (
        "redis+cluster://X",
        "'redis+cluster://X'",
        StorageURIOptions("redis+cluster", (("X", 6379),), (), None, None, {}),
    )
)
def test_a_url_parses_back_to_its_parts(case: tuple[str, str, StorageURIOptions]) -> None:
    url, masked, parts = case
    assert parse_storage_uri(url, 6379) == parts
    assert shown(url) == masked

"""Where a network backend's servers are: cache URLs and host lists, parsed once.

One parser serves Redis (single server, Sentinel, Cluster) and memcached, so host lists,
IPv6 literals (``[::1]:6379``), credentials and Unix socket paths follow one set of rules.
:func:`parse_storage_uri` turns ``scheme://[[user]:password@]h1:p1,h2:p2[/path][?query]``
into a :class:`StorageURIOptions` record; the functions below it map that record onto what
each backend's driver takes. Malformed input is a :class:`ConfigurationError`; its message
shows the URL without its password (:func:`shown`), since configuration errors end up in logs.

redis-py is imported by the Redis functions only, so memcached URLs parse without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from flask_stash.core.errors import ConfigurationError

REDIS_PORT = 6379
SENTINEL_PORT = 26379
MEMCACHED_PORT = 11211
DEFAULT_MEMCACHED = ("127.0.0.1", MEMCACHED_PORT)

#: A server: ``(host, port)``, or the path of a Unix socket (memcached only).
Location = tuple[str, int] | str

#: Multi-host Redis schemes -> whether they use TLS.
SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True, "valkey+sentinel": False}
CLUSTER_SCHEMES = {
    "redis+cluster": False,
    "rediss+cluster": True,
    "valkey+cluster": False,
    "redis": False,
    "rediss": True,
    "valkey": False,
}


@dataclass(frozen=True)
class StorageURIOptions:
    """A cache URL, taken apart: what every backend's own options are derived from."""

    scheme: str
    locations: tuple[Location, ...]
    path: tuple[str, ...]
    username: str | None
    password: str | None
    query: Mapping[str, str]


def parse_storage_uri(url: str, default_port: int) -> StorageURIOptions:
    """``scheme://[[user]:password@]h1:p1,h2:p2[/path][?query]`` as a record.

    No host gives no location; percent-escapes in credentials and path are decoded. For a
    query name given twice, the last value counts.
    """
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ConfigurationError(f"malformed cache URL {shown(url)}: {exc}") from None
    if not parts.scheme or not url.startswith(f"{parts.scheme}://"):
        raise ConfigurationError(f"not a cache URL (scheme://...): {shown(url)}")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = (unquote(part) for part in userinfo.partition(":"))
    hosts = unquote(hostlist)
    return StorageURIOptions(
        scheme=parts.scheme,
        locations=tuple(_locations(hosts, default_port, sockets=False)) if hosts.strip(",") else (),
        path=tuple(unquote(segment) for segment in parts.path.split("/") if segment),
        username=username or None,
        password=password or None,
        query={name: values[-1] for name, values in query.items()},
    )


def shown(url: str) -> str:
    """``url`` quoted for a message, its password (if any) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return repr(f"{scheme}{sep}{user}:***@{hosts}{slash}{tail}" if password else url)


def parse_hosts(spec: object, default_port: int) -> list[tuple[str, int]]:
    """``"h1:p1,h2"``, ``["h1:p1", ("h2", p2)]`` or one ``(host, port)`` as a list of
    ``(host, port)``."""
    return [loc for loc in _locations(spec, default_port, sockets=False) if isinstance(loc, tuple)]


def _locations(spec: object, default_port: int, *, sockets: bool) -> list[Location]:
    # With ``sockets``, "unix:/path" and "/path" items stay socket paths.
    if isinstance(spec, str):
        items: Iterable[Any] = [part for part in spec.split(",") if part.strip()]
    elif isinstance(spec, tuple) and len(spec) == 2 and not isinstance(spec[1], (str, tuple)):
        items = [spec]  # one (host, port) pair
    elif isinstance(spec, (list, tuple)):
        items = spec
    else:
        raise ConfigurationError(f"servers must be 'host:port' items, not {spec!r}")
    hosts = [_location(item, default_port, sockets) for item in items]
    if not hosts:
        raise ConfigurationError(f"no host given in {spec!r}")
    return hosts


def location_label(location: Location) -> str:
    """``host:port`` (``[v6]:port``), or the socket path."""
    if isinstance(location, str):
        return location
    host, port = location
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _location(item: object, default_port: int, sockets: bool) -> Location:
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return _checked(item, item[0], item[1], default_port)
    if not isinstance(item, str):
        return _checked(item, None, None, default_port)
    text = item.strip()
    if text.startswith(("unix:", "/")):
        if not sockets:
            raise ConfigurationError(f"bad server {item!r}: a Unix socket is not a host here")
        return text.removeprefix("unix:")
    if text.startswith("["):  # "[IPv6]" or "[IPv6]:port"
        host, _, port = text[1:].partition("]")
        return _checked(item, host, port.removeprefix(":"), default_port)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return _checked(item, host, port, default_port)
    return _checked(item, text, "", default_port)  # a bare host name or IPv6 address


def _checked(item: object, host: object, port: object, default_port: int) -> tuple[str, int]:
    number = default_port if port in ("", None) else port
    if isinstance(number, str) and number.isdigit():
        number = int(number)
    valid = isinstance(number, int) and not isinstance(number, bool) and 0 < number < 65536
    if not isinstance(host, str) or not host or not valid:
        raise ConfigurationError(f"bad server {item!r}: use 'host:port' (port 1-65535)")
    return (host, cast(int, number))


# -- Redis ----------------------------------------------------------------------------------


def redis_url_options(url: str | None) -> dict[str, Any]:
    """``redis.Redis`` options from a single-server URL (``redis://``, ``rediss://``,
    ``unix://``, ``valkey://``), parsed by redis-py itself."""
    if url is None:
        return {}
    from redis.connection import parse_url

    scheme, _, rest = url.partition("://")
    scheme = {"valkey": "redis", "valkeys": "rediss"}.get(scheme, scheme)
    if not rest or scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(f"not a Redis URL (redis://, rediss://, unix://): {shown(url)}")
    try:
        path = urlsplit(url).path.strip("/")
        options: dict[str, Any] = parse_url(f"{scheme}://{rest}")  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ConfigurationError(f"malformed Redis URL {shown(url)}: {exc}") from None
    if scheme != "unix" and path and not path.isdigit():
        raise ConfigurationError(f"the path of a Redis URL is a database number: {shown(url)}")
    options.pop("connection_class", None)  # redis.Redis takes ssl= / unix_socket_path=
    if scheme == "rediss":
        options["ssl"] = True
    if scheme == "unix":
        if "path" not in options:  # redis.Redis would silently use TCP to localhost
            raise ConfigurationError(f"a unix:// Redis URL needs the socket's path: {shown(url)}")
        options["unix_socket_path"] = options.pop("path")
    return options


def redis_hosts_url(
    url: str, schemes: Mapping[str, bool], default_port: int
) -> tuple[list[tuple[str, int]], list[str], dict[str, Any]]:
    """A multi-host Redis URL (Sentinel, Cluster) as hosts, path segments and options."""
    parsed = parse_storage_uri(url, default_port)
    if parsed.scheme not in schemes:
        known = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigurationError(f"unsupported Redis URL {shown(url)}; expected {known}")
    if not parsed.locations:
        raise ConfigurationError(f"no Redis host given in {shown(url)}")
    options = {name: _redis_query_value(name, value) for name, value in parsed.query.items()}
    credentials = (("username", parsed.username), ("password", parsed.password))
    options.update({name: value for name, value in credentials if value})
    if schemes[parsed.scheme]:
        options["ssl"] = True
    hosts = [loc for loc in parsed.locations if isinstance(loc, tuple)]
    return hosts, list(parsed.path), options


def sentinel_url_options(url: str) -> tuple[list[tuple[str, int]], dict[str, Any], dict[str, Any]]:
    """``(sentinels, settings, client options)`` from a ``redis+sentinel://`` URL."""
    hosts, path, options = redis_hosts_url(url, SENTINEL_SCHEMES, SENTINEL_PORT)
    names = ("service", "db", "password", "sentinel_password", "read_from_replicas")
    settings = {name: options.pop(name) for name in names if name in options}
    if path:
        settings["service"] = path[0]
    if len(path) > 1:
        settings["db"] = _int(path[1], "the database number")
    if len(path) > 2:
        raise ConfigurationError(f"a Sentinel URL's path is /service[/db]: {shown(url)}")
    return hosts, settings, options


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


# Query values redis-py does not parse itself; other unknown names are rejected later.
_EXTRA_QUERY_PARSERS = {"ssl": _truthy, "read_from_replicas": _truthy}


def _redis_query_value(name: str, value: str) -> Any:
    from redis.connection import URL_QUERY_ARGUMENT_PARSERS

    known = cast("Callable[[str], Any] | None", URL_QUERY_ARGUMENT_PARSERS.get(name))
    parser = known or _EXTRA_QUERY_PARSERS.get(name)
    if parser is None:
        return value  # an unknown name is rejected with the other options
    try:
        return parser(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"invalid value for {name!r} in a Redis URL: {value!r}") from None


def _int(value: str | int, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} must be an integer, not {value!r}") from None


# -- memcached ------------------------------------------------------------------------------


def memcached_servers(servers: object) -> list[Location]:
    """Servers from ``None`` (localhost), ``"h1:p1,h2"``, or a list of ``"host:port"``
    strings, ``(host, port)`` pairs and Unix socket paths."""
    if servers is None:
        return [DEFAULT_MEMCACHED]
    return _locations(servers, MEMCACHED_PORT, sockets=True)


def memcached_url(url: str) -> tuple[list[Location], str | None, str | None]:
    """``memcached://h1:p1,h2:p2`` (or ``memcached:///path/to.sock``) -> servers, plus
    the user and password of ``memcached://user:password@host`` (SASL)."""
    parsed = parse_storage_uri(url, MEMCACHED_PORT)
    if parsed.scheme != "memcached":
        raise ConfigurationError(f"not a memcached:// URL: {shown(url)}")
    servers: list[Location] = list(parsed.locations)
    if not servers:
        servers = ["/" + "/".join(parsed.path)] if parsed.path else [DEFAULT_MEMCACHED]
    elif parsed.path:
        raise ConfigurationError(f"memcached URLs name servers only (use options): {shown(url)}")
    if parsed.query:
        raise ConfigurationError(f"memcached URLs name servers only (use options): {shown(url)}")
    if parsed.password and not parsed.username:
        # SASL needs both; without the user it would silently connect unauthenticated.
        raise ConfigurationError(f"a memcached password needs a user (SASL): {shown(url)}")
    return servers, parsed.username, parsed.password


def memcached_location(
    servers: object, url: str | None
) -> tuple[list[Location], str | None, str | None]:
    """Servers and SASL credentials from ``servers`` or ``url`` (either may be a URL)."""
    if isinstance(servers, str) and "://" in servers and url is None:
        servers, url = None, servers  # CACHE_MEMCACHED_SERVERS given as a URL
    if url is None:
        return memcached_servers(servers), None, None
    if servers is not None:
        raise ConfigurationError("give memcached servers or a URL, not both")
    return memcached_url(url)

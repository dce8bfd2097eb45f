"""Redis URL and host-list parsing for the Redis backends.

Single-server URLs (``redis://``, ``rediss://``, ``unix://``, ``valkey://``) become
``redis.Redis`` options; multi-host URLs (``redis+sentinel://``, ``redis+cluster://``...)
become ``[(host, port)]``, path segments and options. Malformed input is a
:class:`ConfigurationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from flask_stash.core.errors import ConfigurationError
from flask_stash.core.lazy import require

try:
    from redis.connection import URL_QUERY_ARGUMENT_PARSERS, parse_url
except ImportError:  # pragma: no cover - depends on what is installed
    require("redis", extra="redis")  # raises MissingDependencyError naming the extra
    raise


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


# Query values redis-py does not parse itself; other unknown names are rejected later.
_EXTRA_QUERY_PARSERS = {"ssl": _truthy, "read_from_replicas": _truthy}

_SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True, "valkey+sentinel": False}
_CLUSTER_SCHEMES = {
    "redis+cluster": False,
    "rediss+cluster": True,
    "valkey+cluster": False,
    "redis": False,
    "rediss": True,
    "valkey": False,
}


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


def _int(value: str | int, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} must be an integer, not {value!r}") from None

"""Where memcached servers are: server lists, ``memcached://`` URLs, SASL credentials."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask_stash.core.errors import ConfigurationError

DEFAULT_PORT = 11211
DEFAULT_SERVER = ("127.0.0.1", DEFAULT_PORT)

Server = tuple[str, int] | str  # (host, port), or the path of a Unix socket


def parse_servers(servers: object) -> list[Server]:
    """Servers from ``None`` (localhost), ``"h1:p1,h2"``, or a list of ``"host:port"``
    strings, ``(host, port)`` tuples and Unix socket paths."""
    if servers is None:
        return [DEFAULT_SERVER]
    if isinstance(servers, str):
        servers = [part for part in servers.split(",") if part.strip()]
    elif isinstance(servers, tuple) and len(servers) == 2 and isinstance(servers[1], int):
        servers = [servers]  # one (host, port) pair
    if not isinstance(servers, (list, tuple)) or not servers:
        raise ConfigurationError(f"memcached servers must be a non-empty list, not {servers!r}")
    return [_server(spec) for spec in servers]


def parse_url(url: str) -> tuple[list[Server], str | None, str | None]:
    """``memcached://h1:p1,h2:p2`` (or ``memcached:///path/to.sock``) -> servers, plus
    the user and password of ``memcached://user:password@host`` (SASL)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(f"malformed memcached URL {url!r}: {exc}") from None
    if parts.scheme != "memcached":
        raise ConfigurationError(f"not a memcached:// URL: {url!r}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    if hosts:
        servers = parse_servers(unquote(hosts))
    else:
        servers = [unquote(parts.path)] if parts.path else [DEFAULT_SERVER]
    if parts.query or (hosts and parts.path not in ("", "/")):
        raise ConfigurationError(f"memcached URLs name servers only (use options): {url!r}")
    return servers, unquote(user) or None, unquote(password) or None


def _server(spec: object) -> Server:
    if isinstance(spec, tuple) and len(spec) == 2:
        return _host_port(spec, *spec)
    if not isinstance(spec, str):
        return _host_port(spec, None, None)
    text = spec.strip()
    if text.startswith(("unix:", "/")):
        return text.removeprefix("unix:")
    if text.startswith("["):  # "[IPv6]" or "[IPv6]:port"
        host, _, port = text[1:].partition("]")
        return _host_port(spec, host, port.removeprefix(":"))
    if text.count(":") == 1:
        return _host_port(spec, *text.split(":"))
    return _host_port(spec, text, "")  # a bare host name, or a bare IPv6 address


def _host_port(spec: object, host: object, port: object) -> tuple[str, int]:
    number = DEFAULT_PORT if port == "" else port
    if isinstance(number, str) and number.isdigit():
        number = int(number)
    if not isinstance(host, str) or not host or not isinstance(number, int):
        raise ConfigurationError(f"bad memcached server {spec!r}: use 'host:port'")
    if isinstance(number, bool) or not 0 < number < 65536:
        raise ConfigurationError(f"bad memcached server {spec!r}: use 'host:port'")
    return (host, number)


def _resolve(servers: object, url: str | None) -> tuple[list[Server], str | None, str | None]:
    """Servers and SASL credentials from ``servers`` or ``url`` (either may be a URL)."""
    if isinstance(servers, str) and "://" in servers and url is None:
        servers, url = None, servers  # CACHE_MEMCACHED_SERVERS given as a URL
    if url is None:
        return parse_servers(servers), None, None
    if servers is not None:
        raise ConfigurationError("give memcached servers or a URL, not both")
    return parse_url(url)


def _label(server: Server) -> str:
    if isinstance(server, str):
        return server
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

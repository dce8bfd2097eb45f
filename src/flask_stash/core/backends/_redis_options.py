"""Client options the Redis backends (single server, Sentinel, Cluster) share: short
timeouts, one retry on a dropped connection, and the checks every option set goes through."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from flask_stash.core.errors import ConfigurationError
from flask_stash.core.lazy import require

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - depends on what is installed
    require("redis", extra="redis")  # raises MissingDependencyError naming the extra
    raise

#: Short timeouts: a dead or overloaded server costs a request about a second, not minutes
#: (redis-py waits 5 s by default, then retries with backoff). Every option is overridable.
DEFAULT_TIMEOUTS: Mapping[str, float] = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
#: Seconds a pooled connection may idle before it is PINGed prior to reuse; catches
#: connections a NAT or load balancer dropped silently (at most one PING per idle period).
HEALTH_CHECK_INTERVAL = 30
#: The keyword arguments ``redis.Redis`` takes.
REDIS_PARAMS = frozenset(inspect.signature(redis.Redis.__init__).parameters) - {"self"}


def with_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` over our timeouts, health check and retry policy."""
    return {
        **DEFAULT_TIMEOUTS,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "retry": connection_retry(),
        **options,
    }


def connection_retry() -> Retry:
    """One immediate retry, on connection errors only."""
    # It replaces a pooled connection the server dropped (restart, idle timeout). A
    # timed-out command is not re-sent, since it may have run (SET NX or INCRBY must not
    # run twice).
    return Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))


def checked(allowed: frozenset[str], options: dict[str, Any], owner: str) -> dict[str, Any]:
    """``options``, once every name is known to the client and decoding is off."""
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigurationError(f"{owner}: unknown Redis option(s) {', '.join(unknown)}")
    reject_decoding(options)
    return options


def reject_decoding(options: Mapping[str, Any]) -> None:
    """Cache values are bytes: a client decoding replies to ``str`` would corrupt them."""
    if options.get("decode_responses"):
        raise ConfigurationError("decode_responses=True is not supported: cache values are bytes")


def valid_namespace(namespace: object) -> str:
    """The key prefix ``clear()`` is bounded to."""
    if not isinstance(namespace, str):
        raise ConfigurationError(f"namespace must be a str, not {type(namespace).__name__}")
    return namespace

"""Reading ``CACHE_*`` configuration once per app into a frozen, validated object."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_stash.backends._settings import DEFAULTS as BACKEND_DEFAULTS
from flask_stash.backends._settings import BackendKeys
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.stampede import Protection
from flask_stash.core.tiersettings import TierSettings

#: Every key we read, with Flask-Caching's default (ours where we add keys).
DEFAULTS: dict[str, Any] = {
    "CACHE_TYPE": None,  # Flask-Caching: "NullCache"; we default to the in-memory backend
    "CACHE_URL": None,
    "CACHE_DEFAULT_TIMEOUT": 300,
    "CACHE_KEY_PREFIX": "flask_cache_",
    "CACHE_OPTIONS": None,
    "CACHE_ARGS": [],
    "CACHE_HASH_METHOD": hashlib.sha256,
    "CACHE_SOURCE_CHECK": False,
    "CACHE_ENABLE_SIGNALS": False,
    "CACHE_SERIALIZER": None,
    "CACHE_IGNORE_ERRORS": False,
    "CACHE_NO_NULL_WARNING": False,
    "CACHE_FAIL_OPEN": True,
    "CACHE_SIGNING_KEY": None,  # default: the app's SECRET_KEY
    "CACHE_SIGNING_KEY_FALLBACKS": None,  # default: SECRET_KEY_FALLBACKS with SECRET_KEY
    "CACHE_REQUIRE_SIGNING": False,
    "CACHE_VIEW_STATUSES": None,
    "CACHE_VIEW_HONOR_NO_CACHE": False,
    "CACHE_VIEW_CACHE_CONTROL": False,
    "CACHE_VIEW_X_CACHE": False,
    "CACHE_VIEW_MAX_BUFFER": 0,
    "CACHE_VIEW_PRIVATE_IGNORE_COOKIES": (),
    "CACHE_VIEW_PRIVATE_HEADERS": ("Authorization",),
    "CACHE_KEY_AUDIT": False,
    "CACHE_STAMPEDE_PROTECTION": True,
    "CACHE_LOCK_LEASE": 30,
    "CACHE_LOCK_WAIT": 10,
    "CACHE_DEFAULT_STALE": 0,
    "CACHE_EARLY_REFRESH": 0,
    "CACHE_FAIL_SAFE": 0,
    "CACHE_TTL_JITTER": 0,
    "CACHE_BREAKER_THRESHOLD": 3,
    "CACHE_BREAKER_BACKOFF": 1.0,
    "CACHE_BREAKER_MAX_BACKOFF": 30.0,
    "CACHE_NAME": None,  # default: "default" for an app's first cache, "cache2"...
    "CACHE_METRICS_URL": None,
    "CACHE_TRACING": None,  # default: on for shared backends when opentelemetry-api is there
    "CACHE_DASHBOARD": False,
    "CACHE_DASHBOARD_URL": "/_stash",
    "CACHE_DASHBOARD_ACCESS": None,
    "CACHE_LOCAL_TIER": None,
    # CACHE_THRESHOLD, CACHE_DIR, CACHE_FILE_HASH_METHOD, CACHE_REDIS_*, CACHE_MEMCACHED_*
    **BACKEND_DEFAULTS,
}

SUCCESS_STATUSES = frozenset(range(200, 300))
logger = logging.getLogger("flask_stash")


class ConfigWarning(UserWarning):
    """A configuration that works but is probably not what was meant."""


@dataclass(frozen=True)
class CacheConfig:
    """The ``CACHE_*`` settings of one app, merged, defaulted and validated.

    ``raw`` keeps every merged ``CACHE_*`` value for third-party backend factories only
    (Flask-Caching's ``factory(app, config, args, kwargs)`` protocol); the built-in
    backends are built from the typed ``backend_keys``, ``options`` and ``args``.
    """

    type: Any
    url: str | None
    #: ``CACHE_DEFAULT_TIMEOUT``, or ``CACHE_OPTIONS["default_timeout"]`` (which wins, as in
    #: Flask-Caching): one timeout for the backend object, the store and the decorators.
    default_timeout: float
    key_prefix: str
    options: Mapping[str, Any]
    args: tuple[Any, ...]
    backend_keys: BackendKeys
    hash_method: Callable[..., Any]
    source_check: bool
    enable_signals: bool
    serializer: Any
    ignore_errors: bool
    no_null_warning: bool
    fail_open: bool
    signing_key: str | bytes | None
    signing_key_fallbacks: tuple[str | bytes, ...] | None
    require_signing: bool
    view_statuses: frozenset[int]
    view_honor_no_cache: bool
    view_cache_control: bool
    view_x_cache: bool
    view_max_buffer: int
    view_private_ignore_cookies: tuple[str, ...]
    view_private_headers: tuple[str, ...]
    key_audit: bool
    protection: Protection
    #: ``(threshold, backoff, max_backoff)`` of each backend's circuit breaker.
    breaker: tuple[int, float, float]
    #: ``CACHE_NAME``: how ``flask stash --cache`` and the metrics' ``cache`` label name it.
    name: str | None
    metrics_url: str | None
    #: ``CACHE_TRACING``: ``None`` (automatic), ``True`` or ``False``.
    tracing: bool | None
    #: ``(enabled, url, access)`` of the dashboard (``CACHE_DASHBOARD*``).
    dashboard: tuple[bool, str, Callable[[], bool] | None]
    #: ``CACHE_LOCAL_TIER``: the in-process tier in front of a shared backend, or ``None``.
    local_tier: TierSettings | None
    raw: Mapping[str, Any] = field(repr=False)


def merge(
    app_config: Mapping[str, Any],
    ctor_config: Mapping[str, Any] | None,
    init_config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Flask-Caching's order: app config, then ``Cache(config=)``, then ``init_app(config=)``."""
    for name, given in (("Cache(config=...)", ctor_config), ("init_app(config=...)", init_config)):
        if given is not None and not isinstance(given, Mapping):
            raise ConfigurationError(f"{name} must be a dict or None, not {type(given).__name__}")
    merged = {k: v for k, v in app_config.items() if k.startswith("CACHE_")}
    merged.update(ctor_config or {})
    merged.update(init_config or {})
    _log_unknown(merged)
    return {**DEFAULTS, **merged}


def read(merged: Mapping[str, Any]) -> CacheConfig:
    """Validate merged settings; every problem is a :class:`ConfigurationError` now."""
    options = _mapping(merged, "CACHE_OPTIONS")
    timeout_key = "CACHE_OPTIONS['default_timeout']"
    if "default_timeout" not in options:
        timeout_key = "CACHE_DEFAULT_TIMEOUT"
    timeout = options.get("default_timeout", merged["CACHE_DEFAULT_TIMEOUT"])
    return CacheConfig(
        type=merged["CACHE_TYPE"],
        url=_optional_str(merged, "CACHE_URL"),
        default_timeout=normalize_timeout(timeout, timeout_key),
        key_prefix=_str(merged, "CACHE_KEY_PREFIX"),
        options=options,
        args=_sequence(merged, "CACHE_ARGS"),
        backend_keys=BackendKeys.read(merged),
        hash_method=_hash(merged, "CACHE_HASH_METHOD"),
        source_check=_bool(merged, "CACHE_SOURCE_CHECK"),
        enable_signals=_bool(merged, "CACHE_ENABLE_SIGNALS"),
        serializer=merged["CACHE_SERIALIZER"],
        ignore_errors=_bool(merged, "CACHE_IGNORE_ERRORS"),
        no_null_warning=_bool(merged, "CACHE_NO_NULL_WARNING"),
        fail_open=_bool(merged, "CACHE_FAIL_OPEN"),
        signing_key=_signing_key(merged),
        signing_key_fallbacks=_signing_key_fallbacks(merged),
        require_signing=_bool(merged, "CACHE_REQUIRE_SIGNING"),
        view_statuses=_statuses(merged.get("CACHE_VIEW_STATUSES")),
        view_honor_no_cache=_bool(merged, "CACHE_VIEW_HONOR_NO_CACHE"),
        view_cache_control=_bool(merged, "CACHE_VIEW_CACHE_CONTROL"),
        view_x_cache=_bool(merged, "CACHE_VIEW_X_CACHE"),
        view_max_buffer=_non_negative_int(merged, "CACHE_VIEW_MAX_BUFFER"),
        view_private_ignore_cookies=_names(merged, "CACHE_VIEW_PRIVATE_IGNORE_COOKIES"),
        view_private_headers=_names(merged, "CACHE_VIEW_PRIVATE_HEADERS"),
        key_audit=_bool(merged, "CACHE_KEY_AUDIT"),
        protection=_protection(merged),
        breaker=_breaker(merged),
        name=_optional_str(merged, "CACHE_NAME"),
        metrics_url=_url_path(merged, "CACHE_METRICS_URL"),
        tracing=_optional_bool(merged, "CACHE_TRACING"),
        dashboard=_dashboard(merged),
        local_tier=_local_tier(merged),
        raw=dict(merged),
    )


def normalize_timeout(timeout: object, name: str = "timeout") -> float:
    """Seconds from a number, a numeric string or a ``timedelta`` (rounded up, like
    Flask-Caching); ``0`` means never expire."""
    if isinstance(timeout, str):
        try:
            timeout = float(timeout)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number of seconds: {timeout!r}") from None
    if isinstance(timeout, dt.timedelta):
        timeout = math.ceil(timeout.total_seconds())
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ConfigurationError(f"{name} must be a number of seconds, not {timeout!r}")
    if not timeout >= 0 or math.isinf(timeout):
        raise ConfigurationError(f"{name} must be >= 0 seconds (0 = never expire): {timeout!r}")
    return timeout


def _protection(merged: Mapping[str, Any]) -> Protection:
    try:
        return Protection(
            single_flight=_bool(merged, "CACHE_STAMPEDE_PROTECTION"),
            lock_lease=normalize_timeout(merged["CACHE_LOCK_LEASE"], "CACHE_LOCK_LEASE"),
            lock_wait=normalize_timeout(merged["CACHE_LOCK_WAIT"], "CACHE_LOCK_WAIT"),
            stale=normalize_timeout(merged["CACHE_DEFAULT_STALE"], "CACHE_DEFAULT_STALE"),
            early_refresh=normalize_timeout(merged["CACHE_EARLY_REFRESH"], "CACHE_EARLY_REFRESH"),
            fail_safe=normalize_timeout(merged["CACHE_FAIL_SAFE"], "CACHE_FAIL_SAFE"),
            jitter=merged["CACHE_TTL_JITTER"],
        )
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"stampede protection settings: {exc}") from exc


def _breaker(merged: Mapping[str, Any]) -> tuple[int, float, float]:
    threshold = merged["CACHE_BREAKER_THRESHOLD"]
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ConfigurationError(
            f"CACHE_BREAKER_THRESHOLD must be a positive integer, not {threshold!r}"
        )
    backoff = normalize_timeout(merged["CACHE_BREAKER_BACKOFF"], "CACHE_BREAKER_BACKOFF")
    most = normalize_timeout(merged["CACHE_BREAKER_MAX_BACKOFF"], "CACHE_BREAKER_MAX_BACKOFF")
    if not 0 < backoff <= most:
        raise ConfigurationError(
            "need 0 < CACHE_BREAKER_BACKOFF <= CACHE_BREAKER_MAX_BACKOFF, "
            f"got {backoff!r} and {most!r}"
        )
    return threshold, backoff, most


def _dashboard(merged: Mapping[str, Any]) -> tuple[bool, str, Callable[[], bool] | None]:
    access = merged["CACHE_DASHBOARD_ACCESS"]
    if access is not None and not callable(access):
        raise ConfigurationError(
            f"CACHE_DASHBOARD_ACCESS must be a function returning True or False, not {access!r}"
        )
    return _bool(merged, "CACHE_DASHBOARD"), dashboard_url(merged["CACHE_DASHBOARD_URL"]), access


def dashboard_url(url: object, name: str = "CACHE_DASHBOARD_URL") -> str:
    """The dashboard's path, without its trailing slash: ``"/_stash"``."""
    if not isinstance(url, str) or not url.startswith("/") or url.rstrip("/") == "":
        raise ConfigurationError(f"{name} must be a path such as '/_stash', not {url!r}")
    return url.rstrip("/")


def _local_tier(merged: Mapping[str, Any]) -> TierSettings | None:
    try:
        return TierSettings.parse(merged["CACHE_LOCAL_TIER"])
    except (ConfigurationError, TypeError) as exc:
        raise ConfigurationError(f"CACHE_LOCAL_TIER: {exc}") from None


def _statuses(value: object) -> frozenset[int]:
    if value is None:
        return SUCCESS_STATUSES
    if not isinstance(value, Iterable) or isinstance(value, (str, bytes)):
        raise ConfigurationError(f"CACHE_VIEW_STATUSES must be a list of ints, not {value!r}")
    statuses = frozenset(value)
    if not all(isinstance(s, int) and 100 <= s <= 599 for s in statuses):
        raise ConfigurationError(f"CACHE_VIEW_STATUSES holds non-HTTP statuses: {value!r}")
    return statuses


def _log_unknown(merged: Mapping[str, Any]) -> None:
    # Other extensions and apps use CACHE_* names of their own: a warning would fail apps
    # that run with warnings as errors, so unknown names are logged at debug level only.
    for key in merged:
        if key.startswith("CACHE_") and key not in DEFAULTS:
            close = difflib.get_close_matches(key, DEFAULTS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            logger.debug("setting %s is not a Flask-Stash setting, ignored%s", key, hint)


def _str(merged: Mapping[str, Any], key: str) -> str:
    value = merged[key]
    if not isinstance(value, str):
        raise ConfigurationError(f"{key} must be a string, not {value!r}")
    return value


def _optional_str(merged: Mapping[str, Any], key: str) -> str | None:
    return None if merged[key] is None else _str(merged, key)


def _bool(merged: Mapping[str, Any], key: str) -> bool:
    value = merged[key]
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key} must be True or False, not {value!r}")
    return value


def _optional_bool(merged: Mapping[str, Any], key: str) -> bool | None:
    return None if merged[key] is None else _bool(merged, key)


def _url_path(merged: Mapping[str, Any], key: str) -> str | None:
    value = _optional_str(merged, key)
    if value is not None and not value.startswith("/"):
        raise ConfigurationError(f"{key} must be a URL path starting with '/', not {value!r}")
    return value


def _non_negative_int(merged: Mapping[str, Any], key: str) -> int:
    value = merged[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{key} must be a non-negative integer, not {value!r}")
    return value


def _names(merged: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = merged[key]
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{key} must be a list of names, not {value!r}")
    names = tuple(value)
    if not all(isinstance(name, str) and name for name in names):
        raise ConfigurationError(f"{key} must hold non-empty strings, not {value!r}")
    return names


def _mapping(merged: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = merged[key]
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{key} must be a dict, not {type(value).__name__}")
    return dict(value)


def _sequence(merged: Mapping[str, Any], key: str) -> tuple[Any, ...]:
    value = merged[key]
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise ConfigurationError(f"{key} must be a list, not {type(value).__name__}")
    return tuple(value)


def _hash(merged: Mapping[str, Any], key: str) -> Callable[..., Any]:
    value = merged[key]
    if isinstance(value, str):
        try:
            value = getattr(hashlib, value)
        except AttributeError:
            raise ConfigurationError(f"{key}: hashlib has no {value!r}") from None
    if not callable(value):
        raise ConfigurationError(f"{key} must be a hash constructor such as hashlib.sha256")
    return value  # type: ignore[no-any-return]


def _signing_key(merged: Mapping[str, Any]) -> str | bytes | None:
    value = merged["CACHE_SIGNING_KEY"]
    if value is not None and not isinstance(value, (str, bytes)):
        raise ConfigurationError("CACHE_SIGNING_KEY must be str or bytes")
    return value


def _signing_key_fallbacks(merged: Mapping[str, Any]) -> tuple[str | bytes, ...] | None:
    value = merged["CACHE_SIGNING_KEY_FALLBACKS"]
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError("CACHE_SIGNING_KEY_FALLBACKS must be a list of str or bytes")
    keys = tuple(value)
    if not all(isinstance(k, (str, bytes)) and k for k in keys):
        raise ConfigurationError(
            f"CACHE_SIGNING_KEY_FALLBACKS holds empty or non-text keys: {value!r}"
        )
    return keys

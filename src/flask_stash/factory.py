"""Turning ``CACHE_TYPE`` / ``CACHE_URL`` into a configured backend for one app.

Accepted: Flask-Caching's class names (``"SimpleCache"``) and old aliases (``"simple"``),
``flask_caching.backends.*`` paths, ``cachelib.*`` classes, a dotted path to a backend
class or a Flask-Caching style factory, a class or factory object, and URLs
(``memory://``, ``file:///path``, ``null://``, ``redis://``...).
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_stash import backends as compat
from flask_stash.backends._settings import constructor_kwargs, effective_prefix, named_arguments
from flask_stash.backends.base import BaseCache, store_options
from flask_stash.backends.serializer import is_serializer, user_serializer
from flask_stash.config import CacheConfig, ConfigWarning
from flask_stash.core.api import Backend
from flask_stash.core.backends import parse_url
from flask_stash.core.backends.cachelib import CachelibBackend
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.serializers import (
    CustomSerializer,
    JsonSerializer,
    PickleSerializer,
    Serializer,
)
from flask_stash.core.store import Store
from flask_stash.core.tier import tiered
from flask_stash.signing import app_secrets

Factory = Callable[[Any, dict[str, Any], list[Any], dict[str, Any]], Any]

_CLASS_NAMES = {
    name: getattr(compat, name)
    for name in compat.__all__
    if name not in ("BaseCache", "CachelibBackend")
}
_ALIASES = {
    "simple": "SimpleCache",
    "filesystem": "FileSystemCache",
    "null": "NullCache",
    "redis": "RedisCache",
    "redissentinel": "RedisSentinelCache",
    "rediscluster": "RedisClusterCache",
    "memcached": "MemcachedCache",
    "gaememcached": "MemcachedCache",
    "saslmemcached": "SASLMemcachedCache",
    "spreadsaslmemcached": "SpreadSASLMemcachedCache",
}
#: Engine backend name (see ``flask_stash.core.backends.SCHEMES``) -> class name here.
_BY_ENGINE_NAME = {
    "memory": "SimpleCache",
    "filesystem": "FileSystemCache",
    "null": "NullCache",
    "redis": "RedisCache",
    "redis-sentinel": "RedisSentinelCache",
    "redis-cluster": "RedisClusterCache",
    "memcached": "MemcachedCache",
    "memcached-sasl": "SASLMemcachedCache",
}


@dataclass(frozen=True)
class BuiltCache:
    """What ``init_app`` keeps: the engine's store and the object ``cache.cache`` returns."""

    store: Store
    backend_object: Any


@dataclass(frozen=True)
class Choice:
    """What ``CACHE_TYPE`` / ``CACHE_URL`` name: one of our classes (with the options a URL
    states), or a third party's Flask-Caching style factory."""

    builtin: type[BaseCache] | None = None
    url_options: Mapping[str, Any] = field(default_factory=dict)
    factory: Factory | None = None


def build(app: Any, config: CacheConfig) -> BuiltCache:
    """Create the configured backend; every configuration problem raises here."""
    choice = resolve(config)
    if choice.builtin is None:
        assert choice.factory is not None
        return _build_foreign(app, config, choice.factory, choice.url_options)
    cls = choice.builtin
    kwargs, store_prefix = builtin_arguments(cls, choice.url_options, config)
    options = {"key_prefix": store_prefix} if store_prefix is not None else {}
    serializer = serializer_for(config, app)
    with store_options(
        tier=config.local_tier,
        serializer=serializer,
        fail_open=config.fail_open,
        hash_method=config.hash_method,
        **options,
    ):
        try:
            made = cls(**kwargs)
        except TypeError as exc:
            message = f"cannot build the cache backend {config.type!r}: {exc}"
            raise ConfigurationError(message) from exc
    return BuiltCache(made.store, made)


def builtin_arguments(
    cls: type[BaseCache], url_options: Mapping[str, Any], config: CacheConfig
) -> tuple[dict[str, Any], str | None]:
    """Keyword arguments for one of our classes: its ``CACHE_*`` keys < a URL <
    ``CACHE_OPTIONS`` < ``CACHE_ARGS``; and the store's key prefix when the class takes
    none. One prefix, as :func:`effective_prefix` decides, serves the store, the backend's
    namespace and ``clear()``."""
    given = {
        "default_timeout": config.default_timeout,
        "ignore_delete_many_errors": config.ignore_errors,
        **url_options,
        **config.options,
    }
    kwargs = constructor_kwargs(cls, config.backend_keys, (), given)
    kwargs.update(named_arguments(cls, config.args))
    given_prefix = kwargs.pop("key_prefix", None)
    prefix = effective_prefix(config.key_prefix, given_prefix)
    if given_prefix is not None and given_prefix != prefix:
        warnings.warn(
            f"CACHE_OPTIONS['key_prefix'] ({given_prefix!r}) is replaced by CACHE_KEY_PREFIX "
            f"({prefix!r}), as in Flask-Caching; set CACHE_KEY_PREFIX instead",
            ConfigWarning,
            stacklevel=5,
        )
    if "key_prefix" in inspect.signature(cls).parameters:
        kwargs["key_prefix"] = prefix
        return kwargs, None
    if not isinstance(prefix, str):
        raise ConfigurationError(
            f"a function as key_prefix needs a Redis backend, not {cls.__name__}"
        )
    return kwargs, prefix


def _build_foreign(
    app: Any, config: CacheConfig, factory: Factory, url_options: Mapping[str, Any]
) -> BuiltCache:
    """A third party's backend, through Flask-Caching's ``factory(app, config, args,
    kwargs)`` protocol; the store is built over what it returns."""
    kwargs: dict[str, Any] = {
        "default_timeout": config.default_timeout,
        "ignore_delete_many_errors": config.ignore_errors,
        **url_options,
        **config.options,
    }
    try:
        made = factory(app, dict(config.raw), list(config.args), kwargs)  # factories mutate
    except TypeError as exc:
        raise ConfigurationError(f"cannot build the cache backend {config.type!r}: {exc}") from exc
    store = Store(
        tiered(_engine_backend(made), config.local_tier),
        serializer=_declared_serializer(made, config, app) or serializer_for(config, app),
        key_prefix=_foreign_prefix(made, config),
        default_timeout=config.default_timeout,
        fail_open=config.fail_open,
        hash_method=config.hash_method,
    )
    if isinstance(made, BaseCache) and not type(made).overrides_value_api():
        made.store = store
        return BuiltCache(store, made)
    # Anything else (a cachelib cache, a custom Flask-Caching backend, an engine backend)
    # is reached through the store too, so the direct API, the decorators and the Jinja
    # tag agree on keys and formats.
    return BuiltCache(store, ForeignCache(made, store, config))


def _foreign_prefix(made: Any, config: CacheConfig) -> str:
    """A subclass of our Redis or memcached classes keeps its own prefix: its backend's
    namespace (what ``clear()`` deletes) is that prefix. A function prefix is applied by
    a wrapper below the store."""
    prefix = getattr(made, "key_prefix", None) if isinstance(made, BaseCache) else None
    if prefix is None:
        return config.key_prefix
    return prefix if isinstance(prefix, str) else ""


def _declared_serializer(made: Any, config: CacheConfig, app: Any) -> Serializer | None:
    """A ``serializer`` a backend subclass declares (cachelib's attribute), unless
    ``CACHE_SERIALIZER`` chooses one (which wins, as in Flask-Caching)."""
    if config.serializer is not None or not isinstance(made, BaseCache):
        return None
    declared = made.custom_serializer()
    return None if declared is None else user_serializer(declared, serializer_for(config, app))


class ForeignCache(BaseCache):
    """Flask-Caching's backend API over a store whose backend is a foreign object.

    Attributes this class does not define are looked up on the wrapped object, so
    backend-specific methods (``cache.cache.some_method()``) keep working.
    """

    def __init__(self, wrapped: Any, store: Store, config: CacheConfig) -> None:
        super().__init__(config.default_timeout, config.ignore_errors, store=store)
        self.wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        if name == "wrapped":  # not set yet: avoid recursing during construction
            raise AttributeError(name)
        return getattr(self.wrapped, name)


def serializer_for(config: CacheConfig, app: Any) -> Serializer:
    """``CACHE_SERIALIZER``: ``None``/``"pickle"``, ``"json"``, or an object with
    ``dumps``/``loads``; each signed when a key is known (see :mod:`flask_stash.signing`)."""
    choice = config.serializer
    secrets = app_secrets(config, app)
    keys: dict[str, Any] = {"signing_key": secrets.key, "fallback_keys": secrets.fallbacks}
    if choice is None or choice == "pickle":
        return PickleSerializer(**keys)
    if choice == "json":
        return JsonSerializer(**keys)
    if isinstance(choice, type):
        choice = choice()
    if is_serializer(choice):
        return CustomSerializer(choice, **keys)
    raise ConfigurationError(
        f"CACHE_SERIALIZER must be 'pickle', 'json' or a serializer object, not {choice!r}"
    )


def _engine_backend(made: Any) -> Backend:
    if isinstance(made, BaseCache) and not type(made).overrides_value_api():
        return made.store.backend
    if isinstance(made, Backend) and not isinstance(made, BaseCache):
        return made
    return CachelibBackend(made)  # a cachelib cache, or a subclass with its own get/set


def resolve(config: CacheConfig) -> Choice:
    """Which backend ``CACHE_TYPE`` (or, without it, ``CACHE_URL``) names."""
    kind = config.type
    if kind is None or kind == "":
        return _from_url(config.url) if config.url else Choice(compat.SimpleCache)
    if isinstance(kind, str):
        if "://" in kind:
            return _from_url(kind)
        return _from_name(kind)
    return _from_object(kind, repr(kind))


def _from_name(name: str) -> Choice:
    name = _ALIASES.get(name, name)
    if name in _CLASS_NAMES:
        return Choice(_CLASS_NAMES[name])
    if name == "uwsgi" or name.endswith("UWSGICache"):
        raise ConfigurationError("the uWSGI cache backend is not supported; use SimpleCache")
    if "." not in name:
        raise ConfigurationError(_unknown_type_message(name))
    if name.startswith("flask_caching.") and name.rsplit(".", 1)[1] in _CLASS_NAMES:
        return Choice(_CLASS_NAMES[name.rsplit(".", 1)[1]])
    return _from_object(_import(name), name)


def _unknown_type_message(name: str) -> str:
    """The error for an unknown ``CACHE_TYPE``, with the closest known name if any."""
    known = sorted(_CLASS_NAMES) + sorted(_ALIASES)
    by_lower = {candidate.lower(): candidate for candidate in known}
    close = difflib.get_close_matches(name.lower(), by_lower, n=1, cutoff=0.6)
    hint = f"did you mean {by_lower[close[0]]!r}? " if close else ""
    return f"unknown CACHE_TYPE {name!r}; {hint}known names: {', '.join(known)}"


def _from_object(target: Any, label: str) -> Choice:
    if target in _CLASS_NAMES.values():  # one of ours, by a dotted path or as an object
        return Choice(target)
    if isinstance(target, type) and target.__module__.split(".")[0] == "cachelib":
        return Choice(factory=lambda app, config, args, kwargs: target(*args, **kwargs))
    if callable(getattr(target, "factory", None)):  # ours, or Flask-Caching's BaseCache
        return Choice(factory=target.factory)
    if isinstance(target, type):
        return Choice(factory=_backend_class_factory(target))
    if callable(target):
        return Choice(factory=target)
    raise ConfigurationError(f"CACHE_TYPE {label} is neither a backend class nor a factory")


def _backend_class_factory(cls: type[Any]) -> Factory:
    def factory(app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        kwargs = dict(kwargs)
        kwargs.pop("ignore_delete_many_errors", None)
        try:
            return cls(*args, **kwargs)
        except TypeError:
            kwargs.pop("default_timeout", None)  # engine backends need not take it
            return cls(*args, **kwargs)

    return factory


def _from_url(url: str) -> Choice:
    name, options = parse_url(url)
    return Choice(_CLASS_NAMES[_BY_ENGINE_NAME[name]], options)


def _import(path: str) -> Any:
    from werkzeug.utils import ImportStringError, import_string

    try:
        return import_string(path)
    except ImportStringError as exc:
        raise ConfigurationError(f"cannot import CACHE_TYPE {path!r}: {exc.exception}") from exc

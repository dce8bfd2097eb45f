"""Flask-Caching's (cachelib's) backend API on top of a :class:`~flask_stash.core.Store`.

``cache.cache`` and ``app.extensions["cache"][cache]`` are instances of these classes, so
code written against Flask-Caching's backend objects (``cache.cache.inc(...)``, custom
subclasses with a ``factory`` classmethod) keeps working. Values go through the store, so
they get the store's serializer, key prefix, statistics and fail-open policy.

A subclass that implements cachelib's basic methods itself (``get``, ``set``, ``delete``,
``has``: the documented pattern for a custom backend) gets the other methods derived from
them, as cachelib's ``BaseCache`` does, instead of the store's.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from flask_stash.backends._settings import BackendKeys, constructor_kwargs, effective_prefix
from flask_stash.backends.serializer import is_serializer, user_serializer
from flask_stash.core.api import MISS, Backend
from flask_stash.core.backends import create_backend
from flask_stash.core.backends.null import NullBackend
from flask_stash.core.backends.prefixed import CallablePrefixBackend
from flask_stash.core.errors import BackendError
from flask_stash.core.serializers import CustomSerializer
from flask_stash.core.store import Store
from flask_stash.core.tier import tiered
from flask_stash.core.tiersettings import TierSettings

#: What ``init_app`` adds to the store of the object it builds (serializer, error policy,
#: key hashing...): set around the constructor call by :func:`store_options`, so the
#: constructor's signature stays cachelib's and the store is still built once.
_STORE_OPTIONS: ContextVar[Mapping[str, Any]] = ContextVar(
    "store_options", default=MappingProxyType({})
)


#: ``CACHE_LOCAL_TIER`` of the app being configured: the backend built inside
#: :func:`store_options` goes behind that in-process tier.
_TIER: ContextVar[TierSettings | None] = ContextVar("local_tier", default=None)


@contextmanager
def store_options(*, tier: TierSettings | None = None, **options: Any) -> Iterator[None]:
    """Give the stores built inside the block these :class:`Store` options too, and their
    backends the in-process ``tier``."""
    token = _STORE_OPTIONS.set(options)
    tier_token = _TIER.set(tier)
    try:
        yield
    finally:
        _TIER.reset(tier_token)
        _STORE_OPTIONS.reset(token)


#: cachelib's basic methods, from which the others can be derived.
BASIC_METHODS = ("get", "set", "add", "delete", "has")


def to_seconds(timeout: float | dt.timedelta) -> float:
    """A ``timedelta`` as whole seconds, rounded up (cachelib 0.17); a number as is."""
    return math.ceil(timeout.total_seconds()) if isinstance(timeout, dt.timedelta) else timeout


@dataclass(frozen=True)
class BackendPlan:
    """What one of the Flask-Caching-named classes builds, decided from its arguments.

    Each class's constructor turns cachelib's arguments into one: the core backend comes
    from :func:`flask_stash.core.backends.create_backend`, the store is built once on it.
    """

    #: ``create_backend``'s name for the core backend, and its options.
    name: str
    options: Mapping[str, Any]
    default_timeout: float
    ignore_delete_many_errors: bool = False
    #: Every key is stored under it; a function is called per operation (cachelib's
    #: callable ``key_prefix``: a tenant, say).
    key_prefix: str | Callable[[], str] = ""
    #: Reach the server now and raise ``RuntimeError`` if it does not answer.
    check_connection: bool = False
    #: Attributes the object exposes as cachelib's does (``key_prefix``, ``chunksize``...).
    attributes: Mapping[str, Any] = field(default_factory=dict)


class BaseCache:
    """cachelib's ``BaseCache`` methods, names, arguments and return values.

    ``get`` returns ``None`` for a miss, as cachelib does; use :meth:`has` or the store
    (``self.store``, where a miss is ``MISS``) to tell a cached ``None`` apart. Keys that
    are not strings (an ``int``) are used as ``str(key)``, as cachelib's backends do.
    Setting ``serializer`` (an object with ``dumps``/``loads``, on the instance or as a
    class attribute) makes the store use it.
    """

    default_timeout: float
    store: Store
    _value_api: ClassVar[tuple[str, ...]] = (
        "get", "set", "add", "delete", "get_many", "set_many", "delete_many", "has",
        "clear", "inc", "dec", "get_dict",
    )  # fmt: skip
    #: The basic methods this class's user-written code redefines (see the module doc).
    _own_basics: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._own_basics = frozenset(
            name
            for name in BASIC_METHODS
            for klass in cls.__mro__
            if name in klass.__dict__
            and klass is not BaseCache
            and not klass.__module__.startswith("flask_stash.")
        )

    def __init__(
        self,
        default_timeout: float | dt.timedelta = 300,
        ignore_delete_many_errors: bool = False,
        *,
        store: Store | None = None,
    ) -> None:
        self.default_timeout = to_seconds(default_timeout)
        self.ignore_delete_many_errors = ignore_delete_many_errors
        if store is not None:
            self.store = store
        elif not hasattr(self, "store"):
            self.store = Store(self._make_backend(), default_timeout=self.default_timeout)
        custom = self.custom_serializer()
        if custom is not None:
            self.store.serializer = user_serializer(custom, self.store.serializer)

    def _make_backend(self) -> Backend:
        return NullBackend()

    def _open(self, plan: BackendPlan) -> None:
        """Build the backend and the store ``plan`` describes, and become their front."""
        backend = create_backend(plan.name, **plan.options)
        prefix = plan.key_prefix
        self._backend = backend  # the driver's own backend (``_write_client``...), untiered
        store_options = {
            "key_prefix": "" if callable(prefix) else prefix,
            "default_timeout": plan.default_timeout,
            **_STORE_OPTIONS.get(),
        }
        wrapped = tiered(backend, _TIER.get())
        if callable(prefix):
            wrapped = CallablePrefixBackend(wrapped, prefix)
        self.store = Store(wrapped, **store_options)
        self.default_timeout = plan.default_timeout
        self.ignore_delete_many_errors = plan.ignore_delete_many_errors
        for name, value in plan.attributes.items():
            setattr(self, name, value)
        custom = self.custom_serializer()
        if custom is not None:
            self.store.serializer = user_serializer(custom, self.store.serializer)
        if plan.check_connection:  # cachelib's argument: fail now if the server is unreachable
            self._verify_connection()

    @classmethod
    def factory(
        cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> BaseCache:
        """Flask-Caching's construction hook (``CACHE_TYPE`` naming a subclass by a dotted
        path): the class's ``CACHE_*`` keys, read as :class:`BackendKeys`, then
        ``CACHE_OPTIONS``, ``kwargs`` and ``args``; the key prefix as
        :func:`effective_prefix` decides."""
        keys = BackendKeys.read(config)
        options = config.get("CACHE_OPTIONS") or {}
        kwargs = constructor_kwargs(cls, keys, args, {**options, **kwargs})
        signature = inspect.signature(cls)
        if "key_prefix" in signature.parameters:
            bound = signature.bind_partial(*args)  # CACHE_ARGS may hold the prefix
            given = bound.arguments.get("key_prefix", kwargs.get("key_prefix"))
            prefix = effective_prefix(config.get("CACHE_KEY_PREFIX") or "", given)
            if "key_prefix" in bound.arguments:
                bound.arguments["key_prefix"] = prefix
                args = list(bound.args)
            else:
                kwargs["key_prefix"] = prefix
        return cls(*args, **kwargs)

    @classmethod
    def config_kwargs(cls, keys: BackendKeys) -> dict[str, Any]:
        """Constructor arguments the class takes from the ``CACHE_*`` keys (none here)."""
        return {}

    @classmethod
    def overrides_value_api(cls) -> bool:
        """Whether a subclass redefined ``get``/``set``/...: then calls must go through them."""
        return any(
            getattr(cls, name) is not getattr(BaseCache, name)
            for name in cls._value_api
            if not cls.__module__.startswith("flask_stash.")
        )

    # -- the serializer attribute ---------------------------------------------------------

    def custom_serializer(self) -> Any:
        """The ``serializer`` a subclass declares as a class attribute, if any."""
        declared = getattr(type(self), "serializer", None)
        return declared if is_serializer(declared) else None

    @property
    def serializer(self) -> Any:
        """The serializer values are stored with (assigning one makes the store use it)."""
        current = self.store.serializer
        return current.inner if isinstance(current, CustomSerializer) else current

    @serializer.setter
    def serializer(self, value: Any) -> None:
        if not is_serializer(value):
            raise TypeError(f"a serializer has dumps() and loads(), {value!r} has not")
        self.store.serializer = user_serializer(value, self.store.serializer)

    # -- cachelib's API ---------------------------------------------------------------

    def get(self, key: str) -> Any:
        try:  # the hot path of cache.get: no key check unless the store refuses the key
            value = self.store.get(key)
        except TypeError:
            if type(key) is str:
                raise
            value = self.store.get(str(key))
        return None if value is MISS else value

    def has(self, key: str) -> bool:
        if "get" in self._own_basics:
            return self.get(key) is not None
        return self.store.has(str(key))

    def set(
        self,
        key: str,
        value: Any,
        timeout: float | dt.timedelta | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> bool:
        if type(key) is not str:
            key = str(key)
        return self.store.set(key, value, timeout, tags=tags)

    def add(self, key: str, value: Any, timeout: float | dt.timedelta | None = None) -> bool:
        if "set" in self._own_basics:  # not atomic, as cachelib's derived add
            return False if self.has(key) else bool(self.set(key, value, timeout))
        return self.store.add(str(key), value, timeout)

    def delete(self, key: str) -> bool:
        if isinstance(self.store.backend, NullBackend):
            return True  # cachelib's BaseCache and NullCache: "deleted"
        return self.store.delete(str(key))

    def get_many(self, *keys: str) -> list[Any]:
        if "get" in self._own_basics:
            return [self.get(key) for key in keys]
        values = self.store.get_many([str(key) for key in keys])
        return [None if value is MISS else value for value in values]

    def get_dict(self, *keys: str) -> dict[str, Any]:
        return dict(zip(keys, self.get_many(*keys), strict=True))

    def set_many(
        self, mapping: Mapping[str, Any], timeout: float | dt.timedelta | None = None
    ) -> list[Any]:
        if "set" in self._own_basics:
            return [key for key, value in mapping.items() if self.set(key, value, timeout)]
        stored = self.store.set_many({str(k): v for k, v in mapping.items()}, timeout)
        return [key for key in mapping if str(key) in stored]

    def delete_many(self, *keys: str) -> list[Any]:
        """Delete ``keys``; returns those now gone.

        Like cachelib, raises ``RuntimeError`` for keys still present afterwards unless
        ``ignore_delete_many_errors`` is set.
        """
        if "delete" in self._own_basics:
            gone = [key for key in keys if self.delete(key) or not self.has(key)]
        else:  # two round trips whatever the number of keys
            names = [str(key) for key in keys]
            self.store.delete_many(names)
            remaining = self.store.get_many(names)
            gone = [k for k, left in zip(keys, remaining, strict=True) if left is MISS]
        failed = [key for key in keys if key not in gone]
        if failed and not self.ignore_delete_many_errors:
            raise RuntimeError(f"Failed to delete keys: {failed}")
        return gone

    def clear(self) -> bool:
        return self.store.clear()

    def inc(self, key: str, delta: int = 1) -> int | None:
        if "get" in self._own_basics or "set" in self._own_basics:
            value = (self.get(key) or 0) + delta
            return value if self.set(key, value) else None
        return self.store.incr(str(key), delta)

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self.inc(key, -delta)

    def close(self) -> None:
        self.store.close()

    # -- construction helpers -------------------------------------------------------------

    def _verify_connection(self) -> None:
        """cachelib's ``check_connection=True``: reach the server now, or raise."""
        try:
            self.store.backend.get("flask-stash:connection-check")
        except BackendError as exc:
            raise RuntimeError(
                f"could not connect to the {type(self).__name__} server: {exc}"
            ) from exc

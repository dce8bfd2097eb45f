"""The types of what ``@cache.memoize`` and ``@cache.cached`` return, as in Flask-Caching 2.5.

A decorated function keeps its signature and gains ``uncached``, ``cache_timeout``,
``make_cache_key`` (and ``delete_memoized`` for memoized functions), so code using them
type-checks under ``mypy --strict``. The ``__get__`` overloads make a decorated method bind
``self`` as a function does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

from flask_stash.core.store import Timeout

P = ParamSpec("P")
P2 = ParamSpec("P2")  # the parameters left once ``__get__`` has bound the instance
R = TypeVar("R")
T = TypeVar("T")
# ``uncached`` is read-only on the bound protocols: instance contravariant, result covariant.
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)


class BoundCachedFunction(Protocol[T_contra, P, T_co]):
    """A ``@cache.cached`` method reached through an instance."""

    cache_timeout: Timeout
    make_cache_key: Callable[..., str]

    @property
    def uncached(self) -> Callable[Concatenate[T_contra, P], T_co]: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T_co: ...


class CachedFunction(Protocol[P, R]):
    """What ``@cache.cached(...)`` returns."""

    uncached: Callable[P, R]
    cache_timeout: Timeout
    make_cache_key: Callable[..., str]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __get__(self, instance: None, owner: type | None = None, /) -> CachedFunction[P, R]: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[T, P2], R], instance: T, owner: type | None = None, /
    ) -> BoundCachedFunction[T, P2, R]: ...
    def __get__(self, instance: Any, owner: type | None = None, /) -> Any: ...


class BoundMemoizedFunction(Protocol[T_contra, P, T_co]):
    """A ``@cache.memoize`` method reached through an instance."""

    cache_timeout: Timeout
    make_cache_key: Callable[..., str]
    delete_memoized: Callable[[], None]

    @property
    def uncached(self) -> Callable[Concatenate[T_contra, P], T_co]: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T_co: ...


class MemoizedFunction(Protocol[P, R]):
    """What ``@cache.memoize(...)`` returns."""

    uncached: Callable[P, R]
    cache_timeout: Timeout
    make_cache_key: Callable[..., str]
    delete_memoized: Callable[[], None]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __get__(self, instance: None, owner: type | None = None, /) -> MemoizedFunction[P, R]: ...
    @overload
    def __get__(
        self: MemoizedFunction[Concatenate[T, P2], R], instance: T, owner: type | None = None, /
    ) -> BoundMemoizedFunction[T, P2, R]: ...
    def __get__(self, instance: Any, owner: type | None = None, /) -> Any: ...

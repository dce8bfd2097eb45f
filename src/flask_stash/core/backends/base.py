"""Shared plumbing for backends: driver errors wrapped once, key and TTL checks."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:  # typing.Self needs Python 3.11
    from typing_extensions import Self

from flask_stash.core.api import MISS, TTL, Miss
from flask_stash.core.errors import BackendError

#: The backend methods that talk to the server (wrapped here, traced by ``core/tracing``).
BACKEND_CALLS = (
    "get",
    "get_many",
    "set",
    "set_many",
    "add",
    "delete",
    "delete_many",
    "clear",
    "close",
    "incr",
    "acquire_lock",
    "release_lock",
    "publish",
)

F = TypeVar("F", bound=Callable[..., Any])


class BaseBackend:
    """Optional base class: generic ``*_many`` loops and one place for error wrapping.

    A subclass lists its driver's exception classes in ``native_errors``; every public
    storage method then re-raises them as :class:`BackendError` (keeping the original), so
    no backend needs a ``try``/``except`` per method. Backends with nothing to wrap (the
    memory backend) pay no wrapping cost.
    """

    native_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    max_key_length: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.native_errors:
            return
        for name in BACKEND_CALLS:
            method = cls.__dict__.get(name)
            if method is not None:
                # An alias of a wrapped method (``get = Parent.get``) is wrapped again from
                # its original: one layer, catching this class's errors, under its name.
                original = getattr(method, "_stash_original", method)
                setattr(cls, name, _wrap_errors(original, cls.native_errors, cls.__name__))

    # Generic fallbacks; backends with a native multi-key operation override them.
    def get(self, key: str) -> bytes | Miss:
        raise NotImplementedError

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> bool:
        raise NotImplementedError

    def get_many(self, keys: Sequence[str]) -> list[bytes | Miss]:
        return [self.get(key) for key in keys]

    def set_many(self, items: Mapping[str, bytes], ttl: TTL) -> None:
        for key, value in items.items():
            self.set(key, value, ttl)

    def delete_many(self, keys: Sequence[str]) -> int:
        return sum(self.delete(key) for key in keys)

    def close(self) -> None:
        """Release connections or file handles; the default has none."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _wrap_errors(method: F, errors: tuple[type[BaseException], ...], owner: str) -> F:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except BackendError:
            raise
        except errors as exc:
            raise BackendError(f"{owner}.{method.__name__} failed: {exc}", exc) from exc

    wrapper._stash_original = method  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


__all__ = ["MISS", "BaseBackend"]

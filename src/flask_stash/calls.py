"""Flask-Caching's conventions for user callbacks (``unless``, ``forced_update``, ``is_stale``).

A callback may take the decorated call's arguments or none; Flask-Caching inspects its
signature to decide, and so do we (once, at decoration time, not on every call).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

Callback = Callable[..., Any]


def _positional_count(fn: Callback) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume no arguments
        return 0
    return sum(p.kind is not inspect.Parameter.KEYWORD_ONLY for p in params)


def condition(fn: Callback | None, *, with_function: bool = False) -> Callable[..., bool] | None:
    """``unless``/``forced_update`` as a predicate of ``(f, *args, **kwargs)``; ``None`` if unset.

    Flask-Caching passes ``unless`` the function first when it takes arguments;
    ``forced_update`` gets the call's arguments only. Only ``True`` counts as yes.
    """
    if fn is None or not callable(fn):
        return None
    if _positional_count(fn) == 0:
        return lambda f, *args, **kwargs: fn() is True
    if with_function:
        return lambda f, *args, **kwargs: fn(f, *args, **kwargs) is True
    return lambda f, *args, **kwargs: fn(*args, **kwargs) is True


def staleness(fn: Callback | None) -> Callable[..., bool] | None:
    """``is_stale(value)`` or ``is_stale(value, *args, **kwargs)`` when it takes more."""
    if fn is None or not callable(fn):
        return None
    if _positional_count(fn) > 1:
        return lambda value, *args, **kwargs: fn(value, *args, **kwargs) is True
    return lambda value, *args, **kwargs: fn(value) is True


def join_generator(value: Any) -> Any:
    """A generator's output, joined the way Flask-Caching joins it (str, bytes or list)."""
    if not inspect.isgenerator(value):
        return value
    chunks: list[Any] = list(value)
    if all(isinstance(chunk, str) for chunk in chunks):
        return "".join(chunks)
    if all(isinstance(chunk, bytes) for chunk in chunks):
        return b"".join(chunks)
    return chunks


def source_hash(fn: Callback, hash_method: Callable[..., Any]) -> str:
    """Digest of ``fn``'s source, so changed code never reads results of the old code."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = getattr(getattr(fn, "__code__", None), "co_code", b"").hex()
    return str(hash_method(source.encode("utf-8")).hexdigest())

"""The decorators through a ``Cache`` subclass's own ``get``/``has``/``set``/``delete``.

Flask-Caching's decorators call the extension's public methods, so a subclass that
redefines ``get`` or ``set`` (to count, to log, to transform values) sees every memoized
call. Flask-Stash's decorators normally read the store directly (one round trip per hit);
when a subclass redefines one of those methods, its memoized functions take this path
instead: Flask-Caching's flow, with the key extended by the function's version stamps so
``delete_memoized(f)`` still invalidates in O(1). The check is made once, at decoration,
so the default hot path pays nothing for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from flask_stash.calls import join_generator
from flask_stash.core.api import MISS
from flask_stash.core.errors import BackendError
from flask_stash.core.keys import hash_text
from flask_stash.core.store import Store

if TYPE_CHECKING:
    from flask_stash.memoize import Memo

#: The public methods whose redefinition in a subclass reroutes memoize through them.
ROUTABLE = ("get", "set", "add", "delete", "has", "get_many", "set_many", "delete_many")


def redefined_methods(cls: type, base: type) -> frozenset[str]:
    """The names in :data:`ROUTABLE` that ``cls`` defines differently from ``base``."""
    return frozenset(name for name in ROUTABLE if getattr(cls, name) is not getattr(base, name))


def routed_key(memo: Memo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The key ``cache.get``/``cache.set`` take for one call: the call's key plus a digest
    of the function's (and instance's) current version stamps."""
    state = memo.cache.state()
    spec = memo.helper(state)
    vkeys = spec.version_keys(args, kwargs) if spec.dynamic_stamps else spec.function_stamp
    stamps = _stamps(state.store, vkeys)
    if stamps is None:  # already counted and logged: the caller runs the function uncached
        raise BackendError("the version stamps could not be read or created")
    return f"{spec.user_key(args, kwargs)}:{hash_text(stamps.decode('ascii'))[:16]}"


def view_key(store: Store, key: str, stamps: tuple[str, ...]) -> str | None:
    """The key a cached view's page takes through ``cache.get``/``cache.set``: with the
    digest of its per-user stamps (``private=True``), so ``delete_cached`` still works.
    ``None`` if the stamps could not be read (counted and logged, or raised when not
    failing open, by the store's gate)."""
    if not stamps:
        return key
    joined = _stamps(store, stamps)
    return None if joined is None else f"{key}:{hash_text(joined.decode('ascii'))[:16]}"


def _stamps(store: Store, vkeys: tuple[str, ...]) -> bytes | None:
    """The current stamps at ``vkeys``, created on the first call; ``None`` if the backend
    failed (the store's gate handled the failure)."""
    blobs = store.gate.call("version", None, store.backend.get_many, vkeys)
    if blobs is None:
        return None
    if all(blob is not MISS for blob in blobs):
        return b"|".join(blobs)  # type: ignore[arg-type]
    return store.current_version(vkeys, None)  # the first call: create the stamps


def routed_wrapper(memo: Memo) -> Callable[..., Any]:
    """The memoized function, reading and writing through the ``Cache`` methods."""
    if inspect.iscoroutinefunction(memo.fn):
        return _async_routed(memo)

    def memoized(*args: Any, **kwargs: Any) -> Any:
        key = _key_or_none(memo, args, kwargs)
        if key is not None:
            found, value = _lookup(memo, key, args, kwargs)
            if found:
                return value
        value = join_generator(memo.fn(*args, **kwargs))
        if key is not None:
            _store(memo, key, value)
        return value

    return memoized


def _async_routed(memo: Memo) -> Callable[..., Awaitable[Any]]:
    async def memoized(*args: Any, **kwargs: Any) -> Any:
        key = _key_or_none(memo, args, kwargs)
        if key is not None:
            found, value = _lookup(memo, key, args, kwargs)
            if found:
                return value
        value = await memo.fn(*args, **kwargs)
        if key is not None:
            _store(memo, key, value)
        return value

    return memoized


def _key_or_none(memo: Memo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The call's key, or ``None`` when this call is not cached (``unless``, or a key that
    cannot be built: counted and logged, the call still runs)."""
    if memo.unless is not None and memo.unless(memo.fn, *args, **kwargs):
        return None
    try:
        return routed_key(memo, args, kwargs)
    except Exception as exc:
        if not isinstance(exc, BackendError):  # a backend failure is already counted
            memo.cache.state().store.policy.handle(exc, "memoize key")
        elif not memo.cache.state().store.policy.fail_open:
            raise
        return None


def _lookup(
    memo: Memo, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any]:
    cache, fn = memo.cache, memo.fn
    found, value = False, None
    if memo.forced_update is None or not memo.forced_update(fn, *args, **kwargs):
        value = cache.get(key)
        # As Flask-Caching: a None is a hit only with cache_none (then has() decides).
        found = value is not None or (memo.cache_none and cache.has(key))
        if found and memo.is_stale is not None and memo.is_stale(value, *args, **kwargs):
            found = False
    if cache.state().config.enable_signals:
        memo.signal(memo.helper(cache.state()), found, args, kwargs, key)
    return found, value


def _store(memo: Memo, key: str, value: Any) -> None:
    if memo.storable(value):
        memo.cache.set(key, value, timeout=memo.wrapper.cache_timeout)

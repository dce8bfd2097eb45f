"""``@cache.memoize`` and ``delete_memoized``: Flask-Caching's semantics on the engine.

Differences from Flask-Caching, on purpose: a hit costs one backend read (entry and
version stamps fetched together), ``None`` results are not stored unless
``cache_none=True`` (Flask-Caching stores them and then treats them as misses), a backend
failure runs the function instead of failing the call, and ``async def`` functions stay
awaitable.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from flask_stash import protocols
from flask_stash.calls import condition, join_generator, source_hash, staleness
from flask_stash.config import normalize_timeout
from flask_stash.core.engine import Lookup, find_counted
from flask_stash.core.guard import afill, aserve, fill, serve
from flask_stash.core.keys import qualified_name
from flask_stash.core.memoize import MemoizedFunction
from flask_stash.protection import protection_for, protection_overrides
from flask_stash.routed import routed_key, routed_wrapper
from flask_stash.signals import cache_memoize_hit, cache_memoize_miss
from flask_stash.state import AppState

if TYPE_CHECKING:
    from flask_stash.extension import Cache

P = ParamSpec("P")
R = TypeVar("R")
_EDGE = object()  # "read through guard.serve": the stale window or early refresh is on
_FORCED = object()  # the caller asked for a recomputation (forced_update, is_stale)


class Memo:
    """One ``@cache.memoize(...)`` application: options plus a helper per app."""

    def __init__(self, cache: Cache, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.cache = cache
        self.fn = fn
        self.timeout = options["timeout"]
        self.make_name = options["make_name"]
        self.unless = condition(options["unless"], with_function=True)
        self.forced_update = condition(options["forced_update"])
        self.is_stale = staleness(options["is_stale"])
        self.response_filter = options["response_filter"]
        self.hash_method = options["hash_method"]
        self.cache_none = options["cache_none"]
        self.source_check = options["source_check"]
        self.args_to_ignore: Sequence[str] = options["args_to_ignore"] or ()
        self.overrides = protection_overrides(options)
        self.wrapper: Any = None

    def helper(self, state: AppState) -> MemoizedFunction:
        """This function's engine helper for ``state``'s store.

        With ``make_name``, the name is computed on every call, as Flask-Caching does (it
        may depend on the request, a tenant...), and each name gets its own helper.
        """
        if self.make_name is None:
            spec: MemoizedFunction | None = state.helpers.get(self)
            if spec is None:
                spec = state.helpers.setdefault(self, self._build(state, self._base_name(state)))
            return spec
        name = str(self.make_name(self._base_name(state)))
        spec = state.helpers.get((self, name))
        if spec is None:
            spec = state.helpers.setdefault((self, name), self._build(state, name))
        return spec

    def _base_name(self, state: AppState) -> str:
        base: str | None = state.helpers.get((self, "base name"))
        if base is None:
            base = qualified_name(self.fn)
            check = state.config.source_check if self.source_check is None else self.source_check
            if check:
                base += ":" + source_hash(self.fn, self._hash_method(state))[:16]
            state.helpers[(self, "base name")] = base
        return base

    def _hash_method(self, state: AppState) -> Callable[..., Any]:
        return self.hash_method or state.config.hash_method

    def _build(self, state: AppState, name: str) -> MemoizedFunction:
        ignore = [a for a in self.args_to_ignore if a in inspect.signature(self.fn).parameters]
        return MemoizedFunction(
            state.store,
            self.fn,
            self.timeout,
            name,
            ignore,
            hash_method=self._hash_method(state),
            protect=protection_for(self.overrides, state),
        )

    def lookup(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
        """``(entry or None, where, version)``; ``where`` is ``None`` when not caching."""
        state = self.cache.only_state or self.cache.state()
        if self.unless is not None and self.unless(self.fn, *args, **kwargs):
            return None, None, None
        spec = (self.make_name is None and state.helpers.get(self)) or self.helper(state)
        try:
            key = spec.key(args, kwargs)
            vkeys = spec.version_keys(args) if spec.per_instance else spec.function_stamp
        except Exception as exc:  # a key that cannot be built must not lose the call
            state.store.policy.handle(exc, "memoize key")
            return None, None, None
        if spec.protect.watches_edge:
            return None, (key, vkeys, spec.name, spec), _EDGE
        entry, version = None, _FORCED
        if self.forced_update is None or not self.forced_update(self.fn, *args, **kwargs):
            entry, version = find_counted(state.store, key, vkeys, spec.hits, spec.misses)
            if entry is not None and self.is_stale and self.is_stale(entry.value, *args, **kwargs):
                entry, version = None, _FORCED
        if state.config.enable_signals:
            self.signal(spec, entry is not None, args, kwargs)
        if entry is not None:
            return entry, None, None
        return None, (key, vkeys, spec.name, spec), version

    def signal(
        self,
        spec: MemoizedFunction,
        hit: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        user_key: str | None = None,
    ) -> None:
        """Send ``cache_memoize_hit``/``_miss`` with the key ``cache.get()`` takes."""
        signal = cache_memoize_hit if hit else cache_memoize_miss
        user_key = user_key or spec.user_key(args, kwargs)
        signal.send(cache=self.cache, cache_key=user_key, f=self.fn, args=args, kwargs=kwargs)

    def compute(self, where: tuple[Any, ...] | None, run: Callable[[], Any], version: Any) -> Any:
        """A miss: run the function once for all concurrent callers and store the result."""
        if where is None:  # not caching this call (unless, or no key could be built)
            return join_generator(run())
        state = self.cache.only_state or self.cache.state()
        spec: MemoizedFunction = where[3]
        lookup = Lookup(*where[:3])
        timeout = self.wrapper.cache_timeout
        produce = lambda: join_generator(run())  # noqa: E731
        if version is _EDGE:
            return serve(state.store, lookup, produce, timeout, spec.protect, self.storable)
        if version is _FORCED:  # forced_update / is_stale: recompute even if fresh
            return fill(state.store, lookup, produce, timeout, None, spec.protect, self.storable,
                        recheck=False)  # fmt: skip
        return fill(state.store, lookup, produce, timeout, version, spec.protect, self.storable)

    async def acompute(
        self, where: tuple[Any, ...] | None, run: Callable[[], Awaitable[Any]], version: Any
    ) -> Any:
        if where is None:
            return await run()
        state = self.cache.only_state or self.cache.state()
        spec: MemoizedFunction = where[3]
        timeout, lookup = self.wrapper.cache_timeout, Lookup(*where[:3])
        if version is _EDGE:
            return await aserve(state.store, lookup, run, timeout, spec.protect, self.storable)
        if version is _FORCED:  # forced_update / is_stale: recompute even if fresh
            return await afill(state.store, lookup, run, timeout, None, spec.protect,
                               self.storable, recheck=False)  # fmt: skip
        return await afill(state.store, lookup, run, timeout, version, spec.protect, self.storable)

    def storable(self, value: Any) -> bool:
        if value is None and not self.cache_none:
            return False
        return self.response_filter is None or bool(self.response_filter(value))


def memoize(
    cache: Cache,
    timeout: Any = None,
    make_name: Callable[[str], str] | None = None,
    unless: Callable[..., Any] | None = None,
    forced_update: Callable[..., Any] | None = None,
    is_stale: Callable[..., Any] | None = None,
    response_filter: Callable[[Any], Any] | None = None,
    hash_method: Callable[..., Any] | None = None,
    cache_none: bool = False,
    source_check: bool | None = None,
    args_to_ignore: Sequence[str] | None = None,
    *,
    stale: float | None = None,
    early_refresh: float | None = None,
    fail_safe: float | None = None,
    jitter: float | None = None,
    stampede: bool | None = None,
) -> Callable[[Callable[P, R]], protocols.MemoizedFunction[P, R]]:
    """Cache a function's result per argument set (Flask-Caching's ``memoize``).

    Ours, keyword-only (``None``: the app's setting): ``stale`` seconds of
    stale-while-revalidate, ``early_refresh`` (XFetch beta), ``fail_safe`` seconds,
    ``jitter`` fraction, ``stampede=False`` to switch stampede protection off.

    The wrapper keeps the signature and has ``uncached``, ``cache_timeout`` (read at each
    store, so it can be changed), ``make_cache_key(f, *args, **kwargs)`` and
    ``delete_memoized()``.
    """
    options = dict(locals())
    del options["cache"]
    if timeout is not None:
        options["timeout"] = normalize_timeout(timeout)
    protection_overrides(options)  # bad values fail here, not at decoration or first call

    def decorate(fn: Callable[P, R]) -> protocols.MemoizedFunction[P, R]:
        if isinstance(fn, (classmethod, staticmethod)):
            return type(fn)(decorate(fn.__func__))  # type: ignore[return-value]
        if not callable(fn) or isinstance(fn, type):
            raise TypeError(f"memoize decorates functions and methods, not {fn!r}")
        memo = Memo(cache, fn, options)
        if cache.redefined:  # a Cache subclass's get/set/...: go through them
            wrapper = routed_wrapper(memo)
        elif inspect.iscoroutinefunction(fn):
            wrapper = _async_wrapper(memo)
        else:
            wrapper = _wrapper(memo)
        functools.update_wrapper(wrapper, fn)
        memo.wrapper = wrapper
        wrapper.__stash_memo__ = memo  # type: ignore[attr-defined]
        wrapper.uncached = fn  # type: ignore[attr-defined]
        wrapper.cache_timeout = options["timeout"]  # type: ignore[attr-defined]
        wrapper.make_cache_key = _key_maker(memo)  # type: ignore[attr-defined]
        wrapper.delete_memoized = lambda: delete_memoized(cache, wrapper)  # type: ignore[attr-defined]
        return cast(protocols.MemoizedFunction[P, R], wrapper)

    return decorate


def _wrapper(memo: Memo) -> Callable[..., Any]:
    fn, lookup, compute, cache = memo.fn, memo.lookup, memo.compute, memo.cache
    # Without per-call options, a hit in the one-app case is a key, one read and a
    # counter: the options are not re-tested on every call (this is the hot path).
    plain = memo.unless is None and memo.forced_update is None and memo.is_stale is None
    plain = plain and memo.make_name is None

    # (state, helper, its key function, store, hit and miss counters, function stamp or
    # None for methods), bound once the fast path applies to the app.
    bound: list[Any] = [None]

    def rebind() -> tuple[Any, ...] | None:
        state = cache.only_state
        if not plain or state is None or state.config.enable_signals:
            return None
        spec: MemoizedFunction | None = state.helpers.get(memo)
        if spec is None or not spec.lean:
            return None
        stamp = None if spec.per_instance else spec.function_stamp
        bound[0] = (state, spec, spec.key, spec.store, spec.hits, spec.misses, stamp)
        return bound[0]  # type: ignore[no-any-return]

    def memoized(*args: Any, **kwargs: Any) -> Any:
        fast = bound[0]
        if fast is None or fast[0] is not cache.only_state:
            fast = rebind()
        if fast is not None:
            _, spec, key_of, store, hits, misses, stamp = fast
            try:
                key = key_of(args, kwargs)
            except Exception:  # the full path reports it
                key = None
            if key is not None:
                vkeys = stamp if stamp is not None else spec.version_keys(args)
                entry, version = find_counted(store, key, vkeys, hits, misses)
                if entry is not None:
                    return entry.value
                where = (key, vkeys, spec.name, spec)
                return compute(where, lambda: fn(*args, **kwargs), version)
        entry, where, version = lookup(args, kwargs)
        if entry is not None:
            return entry.value
        return compute(where, lambda: fn(*args, **kwargs), version)

    return memoized


def _async_wrapper(memo: Memo) -> Callable[..., Any]:
    fn, lookup, acompute = memo.fn, memo.lookup, memo.acompute

    async def memoized(*args: Any, **kwargs: Any) -> Any:
        entry, where, version = lookup(args, kwargs)
        if entry is not None:
            return entry.value
        return await acompute(where, lambda: fn(*args, **kwargs), version)

    return memoized


def _key_maker(memo: Memo) -> Callable[..., str]:
    def make_cache_key(f: Any, *args: Any, **kwargs: Any) -> str:
        """The key of one call, as ``cache.get``/``cache.delete`` take it."""
        if memo.cache.redefined:
            return routed_key(memo, args, kwargs)
        return memo.helper(memo.cache.state()).user_key(args, kwargs)

    return make_cache_key


def _memo_of(cache: Cache, f: Any) -> Memo:
    if not callable(f):
        raise TypeError(
            "Deleting messages by relative name is not supported, please use a function reference."
        )
    memo = getattr(getattr(f, "__func__", f), "__stash_memo__", None)
    if not isinstance(memo, Memo):
        raise ValueError(f"{f!r} is not memoized: decorate it with @cache.memoize() first")
    if memo.cache is not cache:
        raise ValueError(f"{f!r} is memoized by another Cache object")
    return memo


def delete_memoized(cache: Cache, f: Any, *args: Any, **kwargs: Any) -> None:
    """Forget entries of memoized ``f``.

    No arguments: every entry (through a bound method: every entry of that instance).
    With arguments: the entry of that one call; a bound method supplies its instance.
    """
    if _is_cached_function(f):
        _delete_cached_result(cache, f, args, kwargs)
        return
    memo = _memo_of(cache, f)
    spec = memo.helper(cache.state())
    bound = getattr(f, "__self__", None)
    if cache.redefined and (args or kwargs):  # through the subclass's delete()
        if bound is not None and (not args or args[0] is not bound):
            args = (bound, *args)
        cache.delete(routed_key(memo, args, kwargs))
        return
    if not (args or kwargs):
        if bound is not None and not isinstance(bound, type) and spec.per_instance:
            spec.invalidate_instance(bound)
        else:
            spec.invalidate_all()
        return
    if bound is not None and (not args or args[0] is not bound):
        args = (bound, *args)
    spec.invalidate(*args, **kwargs)


def _is_cached_function(f: Any) -> bool:
    return callable(f) and hasattr(getattr(f, "__func__", f), "__stash_cached__")


def _delete_cached_result(
    cache: Cache, f: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """``delete_memoized`` on a ``@cached`` function, as Flask-Caching does it: delete the
    key ``f.make_cache_key(f.uncached, *args, **kwargs)`` (``Setting.as_dict``, a cached
    class method with ``key_prefix="settings"``, deletes ``"settings"``).

    A bound method supplies its instance when the function takes ``self``. Without
    arguments Flask-Caching renews a version stamp its ``@cached`` entries never read, so
    nothing is deleted; here the entry of the call without arguments is deleted.
    """
    bound = getattr(f, "__self__", None)
    if bound is not None and not isinstance(bound, type) and (not args or args[0] is not bound):
        names = list(inspect.signature(f.uncached).parameters)
        if names[:1] == ["self"]:
            args = (bound, *args)
    cache.delete(f.make_cache_key(f.uncached, *args, **kwargs))


def delete_memoized_verhash(cache: Cache, f: Any, *args: Any) -> None:
    """Replace the version stamp of memoized ``f``: every entry becomes unreachable."""
    _memo_of(cache, f).helper(cache.state()).invalidate_all()

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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from flask_stash import protocols
from flask_stash.calls import condition, join_generator, source_hash, staleness
from flask_stash.config import normalize_timeout
from flask_stash.core.api import MISS
from flask_stash.core.engine import Lookup
from flask_stash.core.keys import qualified_name
from flask_stash.core.memoize import MemoizedFunction
from flask_stash.core.pipeline import ARefresh, Refresh, Ticket, afetch, amiss, fetch, miss
from flask_stash.core.stats import readable_name
from flask_stash.core.tags import TagsOption, tags_of
from flask_stash.protection import protection_for, protection_overrides
from flask_stash.routed import routed_key, routed_wrapper
from flask_stash.signals import cache_memoize_hit, cache_memoize_miss
from flask_stash.state import AppState, NamedHelpers

if TYPE_CHECKING:
    from flask_stash.extension import Cache

P = ParamSpec("P")
R = TypeVar("R")


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
        self.tags = tags_of(options["tags"])
        self.wrapper: Any = None
        #: Whether a call needs more than a key and a read (per-call options to test).
        self.plain = not (self.unless or self.forced_update or self.is_stale or self.make_name)

    def helper(self, state: AppState) -> MemoizedFunction:
        """This function's engine helper for ``state``'s store.

        With ``make_name``, the name is computed on every call, as Flask-Caching does (it
        may depend on the request, a tenant...); each name gets its own helper, the most
        recently used of them kept (a bounded table), all counted under one scope.
        """
        base: MemoizedFunction | None = state.helpers.get(self)
        if base is None:
            base = state.helpers.setdefault(self, self._build(state, self._base_name(state)))
        if self.make_name is None:
            return base
        named: NamedHelpers | None = state.helpers.get((self, "named"))
        if named is None:
            named = state.helpers.setdefault((self, "named"), NamedHelpers())
        name = str(self.make_name(self._base_name(state)))
        return named.get(name, lambda n: self._build(state, n, base))  # type: ignore[no-any-return]

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

    def _build(
        self, state: AppState, name: str, base: MemoizedFunction | None = None
    ) -> MemoizedFunction:
        params = inspect.signature(self.fn).parameters
        ignore = [a for a in self.args_to_ignore if a in params]
        call_key = None if base is None else base.call_key
        return MemoizedFunction(
            state.store,
            self.fn,
            self.timeout,
            name,
            ignore,
            self.storable,
            hash_method=self._hash_method(state),
            protect=protection_for(self.overrides, state),
            scope=readable_name(self.fn),
            call_key=call_key,
            spawn=state.spawn,
            tags=self.tags,
        )

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

    def _lookup(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[AppState, MemoizedFunction, Lookup] | None:
        """Where this call's entry lives; ``None``: not cached (``unless``, or no key)."""
        state = self.cache.only_state or self.cache.state()
        if self.unless is not None and self.unless(self.fn, *args, **kwargs):
            return None
        spec = self.helper(state)
        try:
            vkeys = spec.version_keys(args, kwargs)
            where = Lookup(spec.key(args, kwargs), vkeys, spec.plan.scope)
        except Exception as exc:  # a key that cannot be built must not lose the call
            state.store.policy.handle(exc, "memoize key")
            return None
        return state, spec, where

    def ticket(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Ticket | None:
        """The call's ticket (a hit, or the duty to compute); ``None``: not cached."""
        found = self._lookup(args, kwargs)
        if found is None:
            return None
        state, spec, where = found
        fn = self.fn
        if self.forced_update is not None and self.forced_update(fn, *args, **kwargs):
            ticket = miss(spec.plan, where, None, recheck=False)
        else:
            ticket = fetch(spec.plan, where, self._refresher(args, kwargs))
            if ticket.ready and self.is_stale and self.is_stale(ticket.value, *args, **kwargs):
                ticket = miss(spec.plan, where, ticket.version, recheck=False)
        if state.config.enable_signals:
            self.signal(spec, ticket.ready, args, kwargs)
        return ticket

    async def aticket(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Ticket | None:
        """:meth:`ticket` for coroutine functions."""
        found = self._lookup(args, kwargs)
        if found is None:
            return None
        state, spec, where = found
        fn = self.fn
        if self.forced_update is not None and self.forced_update(fn, *args, **kwargs):
            ticket = await amiss(spec.plan, where, None, recheck=False)
        else:
            ticket = await afetch(spec.plan, where, self._arefresher(args, kwargs))
            if ticket.ready and self.is_stale and self.is_stale(ticket.value, *args, **kwargs):
                ticket = await amiss(spec.plan, where, ticket.version, recheck=False)
        if state.config.enable_signals:
            self.signal(spec, ticket.ready, args, kwargs)
        return ticket

    def _refresher(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Refresh:
        def refresh(ticket: Ticket) -> None:
            ticket.keep(join_generator(self.fn(*args, **kwargs)), self.wrapper.cache_timeout)

        return refresh

    def _arefresher(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ARefresh:
        async def refresh(ticket: Ticket) -> None:
            ticket.keep(await self.fn(*args, **kwargs), self.wrapper.cache_timeout)

        return refresh

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
    tags: TagsOption = None,
) -> Callable[[Callable[P, R]], protocols.MemoizedFunction[P, R]]:
    """Cache a function's result per argument set (Flask-Caching's ``memoize``).

    Ours, keyword-only (``None``: the app's setting): ``stale`` seconds of
    stale-while-revalidate, ``early_refresh`` (XFetch beta), ``fail_safe`` seconds,
    ``jitter`` fraction, ``stampede=False`` to switch stampede protection off, ``tags``
    (strings and callables of the call's arguments; ``cache.invalidate_tags`` drops every
    entry carrying one, see ``docs/tags-and-tiers.md``).

    The wrapper keeps the signature and has ``uncached``, ``cache_timeout`` (read at each
    store, so it can be changed), ``make_cache_key(f, *args, **kwargs)`` and
    ``delete_memoized()``.
    """
    options = dict(locals())
    del options["cache"]
    if timeout is not None:
        options["timeout"] = normalize_timeout(timeout)
    protection_overrides(options)  # bad values fail here, not at decoration or first call
    tags_of(tags)

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
    fn, cache = memo.fn, memo.cache
    # (state, helper, its key function, store, clock, plan, function stamp or None for
    # methods), bound once the fast path applies: without per-call options, a hit in the
    # one-app case is a key, one read and a counter (this is the hot path).
    bound: list[Any] = [None]

    def rebind() -> tuple[Any, ...] | None:
        state = cache.only_state
        if not memo.plain or state is None or state.config.enable_signals:
            return None
        spec = memo.helper(state)
        if not spec.lean:
            return None
        stamp = None if spec.dynamic_stamps else spec.function_stamp
        fast = (state, spec, spec.key, spec.store, spec.store.clock, spec.plan, stamp)
        bound[0] = fast
        return fast

    def memoized(*args: Any, **kwargs: Any) -> Any:
        fast = bound[0]
        if fast is None or fast[0] is not cache.only_state:
            fast = rebind()
        ticket: Ticket | None
        if fast is not None:
            _, spec, key_of, store, clock, plan, stamp = fast
            try:
                key = key_of(args, kwargs)
                vkeys = stamp if stamp is not None else spec.version_keys(args, kwargs)
            except Exception:  # the full path reports it
                key = None
        if fast is not None and key is not None:
            entry, version = store.read_stored(key, vkeys)
            if entry is not MISS and (entry.fresh_until is None or clock() < entry.fresh_until):
                plan.hit(entry.cost)
                return entry.value
            last = None if entry is MISS else entry
            ticket = miss(plan, Lookup(key, vkeys, plan.scope), version, last=last)
        else:
            ticket = memo.ticket(args, kwargs)
            if ticket is None:  # not cached: unless, or no key could be built
                return join_generator(fn(*args, **kwargs))
        if ticket.ready:
            return ticket.value
        try:  # computed in this frame: two frames per recursion level
            value = join_generator(fn(*args, **kwargs))
        except BaseException as error:
            return ticket.fail(error)
        return ticket.keep(value, memoized.cache_timeout)  # type: ignore[attr-defined]

    return memoized


def _async_wrapper(memo: Memo) -> Callable[..., Any]:
    fn = memo.fn

    async def memoized(*args: Any, **kwargs: Any) -> Any:
        ticket = await memo.aticket(args, kwargs)
        if ticket is None:
            return await fn(*args, **kwargs)
        if ticket.ready:
            return ticket.value
        try:
            value = await fn(*args, **kwargs)
        except BaseException as error:
            return ticket.fail(error)
        return ticket.keep(value, memoized.cache_timeout)  # type: ignore[attr-defined]

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

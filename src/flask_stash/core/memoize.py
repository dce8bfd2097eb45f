"""The framework-neutral ``memoize`` decorator: one cache entry per canonical argument set."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection
from typing import Any, ParamSpec, TypeVar, cast

from flask_stash.core.api import MISS
from flask_stash.core.engine import Lookup
from flask_stash.core.keys import CallKey, HashMethod, encode, qualified_name
from flask_stash.core.pipeline import Plan, Spawn, Ticket, afetch, fetch, miss
from flask_stash.core.stampede import DEFAULT, Protection
from flask_stash.core.store import Store, Timeout
from flask_stash.core.tags import Tags, TagsOption, tags_of

#: Call texts whose keys each memoized function remembers (see ``MemoizedFunction.key``).
RECENT_KEYS = 1024
#: Argument types whose equality is identity of the call: no two of them compare equal.
_EQUAL_MEANS_SAME = frozenset({int, str, type(None)})

P = ParamSpec("P")
R = TypeVar("R")


class MemoizedFunction:
    """What :func:`memoize` knows about one decorated function (``fn.__stash_memo__``)."""

    def __init__(
        self,
        store: Store,
        fn: Callable[..., Any],
        timeout: Timeout,
        name: str,
        ignore: Collection[str] = (),
        cache_if: Callable[[Any], bool] | None = None,
        hash_method: HashMethod | None = None,
        protect: Protection = DEFAULT,
        *,
        scope: str | None = None,
        call_key: CallKey | None = None,
        spawn: Spawn | None = None,
        tags: Tags | None = None,
    ) -> None:
        """``scope`` labels statistics (default: ``name``; a function whose name changes per
        call keeps one scope); ``call_key`` reuses another helper's argument model;
        ``spawn`` runs background refreshes (see :class:`~flask_stash.core.pipeline.Plan`);
        ``tags`` the tags of each call (:mod:`flask_stash.core.tags`)."""
        self.store = store
        self.protect = protect
        #: No stale window, early refresh or fail-safe: a hit is a plain read (the fast path).
        self.lean = not protect.watches_edge
        self.fn = fn
        store.ttl_for(timeout)  # a bad timeout fails at decoration, not at the first call
        self.timeout = timeout
        self.name = name.replace("{", "(").replace("}", ")")
        self.call_key = call_key or CallKey(fn, ignore)
        self.cache_if = cache_if
        # The braces keep a function's entries and version stamp in one Redis Cluster slot.
        self._prefix = f"memo:{{{self.name}}}:"
        self.version_key = store.backend_key(self._prefix + "version")
        fixed_tags = () if tags is None else tuple(map(store.tag_key, tags.fixed))
        #: The stamps of every call's entry: the function's and its fixed tags'.
        self.function_stamp = (self.version_key, *fixed_tags)
        # Methods also get a stamp per instance, so one object's entries can be dropped.
        params = list(self.call_key.signature.parameters)
        self.per_instance = bool(params) and params[0] == "self" and "self" not in ignore
        self.tags = tags
        #: Whether a call's stamps depend on its arguments (else: ``function_stamp``).
        self.dynamic_stamps = self.per_instance or bool(tags and tags.dynamic)
        self._hash = hash_method or store.hash_method
        # Digests have a fixed length, so whether keys need rehashing is known up front.
        probe = self._prefix + self._digest("")
        self._stored_prefix = store.key_prefix + self._prefix
        self._direct = store.backend_key(probe) == store.key_prefix + probe
        self._recent_keys: dict[str, str] = {}
        self._keys_by_args: dict[tuple[Any, ...], str] = {}
        self._stamps_by_args: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self.plan = Plan(store, protect, scope or self.name, storable=cache_if, spawn=spawn)
        store.stats.describe(self.plan.scope, "memoize")
        self.hit = self.plan.hit

    def _digest(self, text: str) -> str:
        digest: str = self._hash(text.encode("utf-8", "surrogatepass")).hexdigest()
        return digest

    def user_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The key of one call as the store's ``get``/``set``/``delete`` take it."""
        return self._prefix + self._digest(self.call_key.text(args, kwargs))

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The backend key of one call."""
        if not kwargs:
            for arg in args:
                if type(arg) not in _EQUAL_MEANS_SAME:
                    break
            else:
                # Positional ints, strs and Nones: equal tuples are the same call (no
                # 1 == 1.0 == True across these types), so the tuple itself finds the key
                # without building the canonical text (about a third of a hit).
                found = self._keys_by_args.get(args)
                if found is None:
                    found = self._key_of(self.call_key.text(args, kwargs))
                    if len(self._keys_by_args) >= RECENT_KEYS:
                        self._keys_by_args.clear()
                    self._keys_by_args[args] = found
                return found
        text = self.call_key.text(args, kwargs)
        return self._recent_keys.get(text) or self._key_of(text)

    def _key_of(self, text: str) -> str:
        digest = self._digest(text)
        key = (
            self._stored_prefix + digest
            if self._direct
            else self.store.backend_key(self._prefix + digest)
        )
        # Hits repeat the same calls: remembering text -> key skips the hash (about a
        # sixth of a hit). The canonical text is exact, so the memo can never conflate
        # two calls; it is bounded by starting over when full.
        if len(self._recent_keys) >= RECENT_KEYS:
            self._recent_keys.clear()
        self._recent_keys[text] = key
        return key

    def version_keys(
        self, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None
    ) -> tuple[str, ...]:
        """The stamps a call's entry depends on: the function's, its instance's, its tags'."""
        # A method's first argument is never a simple value: its hits skip the lookup.
        simple = (
            not self.per_instance
            and not kwargs
            and all(type(arg) in _EQUAL_MEANS_SAME for arg in args)
        )
        if simple:
            # Tags are functions of the arguments: equal simple arguments, equal stamps
            # (remembered as the keys are, so a tagged hit skips the tags callables).
            found = self._stamps_by_args.get(args)
            if found is not None:
                return found
        stamps: tuple[str, ...] = self.function_stamp
        if self.per_instance and args:
            stamps = (*stamps, self.instance_version_key(args[0]))
        if self.tags is not None and self.tags.dynamic:
            tag_key = self.store.tag_key
            stamps += tuple(tag_key(tag) for tag in self.tags.of_call(args, kwargs or {}))
        if simple:
            if len(self._stamps_by_args) >= RECENT_KEYS:
                self._stamps_by_args.clear()
            self._stamps_by_args[args] = stamps
        return stamps

    def instance_version_key(self, instance: object) -> str:
        digest = self._digest(encode(instance))
        return self.store.backend_key(f"{self._prefix}instance:{digest}")

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Forget the entry of one call (arguments as the function would receive them)."""
        return self.store.backend_delete(self.key(args, kwargs))

    def invalidate_all(self) -> bool:
        """Forget every entry of the function in O(1), by changing its version stamp."""
        return self.store.bump_version(self.version_key)

    def invalidate_instance(self, instance: object) -> bool:
        """Forget every entry of a method for one instance, in O(1)."""
        if not self.per_instance:
            raise TypeError(f"{self.name} is not a method: it has no per-instance entries")
        return self.store.bump_version(self.instance_version_key(instance))


def memoize(
    store: Store,
    timeout: Timeout = None,
    *,
    name: str | None = None,
    ignore: Collection[str] = (),
    cache_if: Callable[[Any], bool] | None = None,
    protect: Protection = DEFAULT,
    tags: TagsOption = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Cache a function's results per canonical argument set.

    Works on functions, methods, ``classmethod``/``staticmethod`` objects and ``async def``
    functions (the wrapper stays a coroutine function). The wrapper keeps the signature
    and gains ``uncached``, ``cache_timeout``, ``invalidate(*args, **kwargs)``,
    ``invalidate_all()`` and, for methods, ``invalidate_instance(obj)``. ``ignore`` names
    parameters left out of the key; ``name`` replaces the function's qualified name in keys.
    ``protect`` sets stampede protection, stale-while-revalidate and the rest
    (:class:`~flask_stash.core.stampede.Protection`; on by default). ``tags``: strings and
    callables of the call's arguments (:mod:`flask_stash.core.tags`);
    ``store.invalidate_tags`` drops every entry carrying one.
    """
    store.ttl_for(timeout)  # a bad timeout fails here, not at the first call
    tag_spec = tags_of(tags)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if isinstance(fn, (classmethod, staticmethod)):
            return type(fn)(decorate(fn.__func__))
        if not callable(fn) or isinstance(fn, type):
            raise TypeError(f"memoize decorates functions and methods, not {fn!r}")
        qualname = name or qualified_name(fn)
        spec = MemoizedFunction(
            store, fn, timeout, qualname, ignore, cache_if, protect=protect, tags=tag_spec
        )
        wrapper = _async_wrapper(spec) if inspect.iscoroutinefunction(fn) else _wrapper(spec)
        functools.update_wrapper(wrapper, fn)
        wrapper.__stash_memo__ = spec  # type: ignore[attr-defined]
        wrapper.uncached = fn  # type: ignore[attr-defined]
        wrapper.cache_timeout = timeout  # type: ignore[attr-defined]
        wrapper.invalidate = spec.invalidate  # type: ignore[attr-defined]
        wrapper.invalidate_all = spec.invalidate_all  # type: ignore[attr-defined]
        wrapper.invalidate_instance = spec.invalidate_instance  # type: ignore[attr-defined]
        return cast(Callable[P, R], wrapper)

    return decorate


def _wrapper(spec: MemoizedFunction) -> Callable[..., Any]:
    store, fn, key, stamps, scope = (
        spec.store,
        spec.fn,
        spec.key,
        spec.version_keys,
        spec.plan.scope,
    )
    dynamic, function_stamp, plan = spec.dynamic_stamps, spec.function_stamp, spec.plan
    hit, edge, clock = spec.hit, spec.protect.watches_edge, store.clock

    def memoized(*args: Any, **kwargs: Any) -> Any:
        bkey = key(args, kwargs)
        vkeys = stamps(args, kwargs) if dynamic else function_stamp
        if edge:
            refresh = lambda t: t.keep(fn(*args, **kwargs), spec.timeout)  # noqa: E731
            ticket = fetch(plan, Lookup(bkey, vkeys, scope), refresh)
        else:
            entry, version = store.read_stored(bkey, vkeys)
            if entry is not MISS and (entry.fresh_until is None or clock() < entry.fresh_until):
                hit(entry.cost)
                return entry.value
            last = None if entry is MISS else entry
            ticket = miss(plan, Lookup(bkey, vkeys, scope), version, last=last)
        if ticket.ready:
            return ticket.value
        try:  # the computation runs here, in this frame: two frames per recursion level
            value = fn(*args, **kwargs)
        except BaseException as error:
            return ticket.fail(error)
        return ticket.keep(value, spec.timeout)

    return memoized


def _async_wrapper(spec: MemoizedFunction) -> Callable[..., Any]:
    fn, key, stamps, plan = spec.fn, spec.key, spec.version_keys, spec.plan
    scope = plan.scope
    dynamic, function_stamp = spec.dynamic_stamps, spec.function_stamp

    async def memoized(*args: Any, **kwargs: Any) -> Any:
        vkeys = stamps(args, kwargs) if dynamic else function_stamp

        async def refresh(ticket: Ticket) -> None:
            ticket.keep(await fn(*args, **kwargs), spec.timeout)

        ticket = await afetch(plan, Lookup(key(args, kwargs), vkeys, scope), refresh)
        if ticket.ready:
            return ticket.value
        try:
            value = await fn(*args, **kwargs)
        except BaseException as error:
            return ticket.fail(error)
        return ticket.keep(value, spec.timeout)

    return memoized


def memo_spec(fn: Callable[..., Any]) -> MemoizedFunction:
    """The :class:`MemoizedFunction` behind a memoized function or bound method."""
    target = getattr(fn, "__func__", fn)
    spec = getattr(target, "__stash_memo__", None)
    if not isinstance(spec, MemoizedFunction):
        raise ValueError(f"{fn!r} is not memoized (no @memoize on it)")
    return spec

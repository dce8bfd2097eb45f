"""``@cache.cached``: whole views keyed on the request path, or any function on a key.

For the view a request was routed to, the HTTP-aware path of :mod:`flask_stash.views.serving`
applies: the finished response is stored (status, headers, body), only for ``GET``/``HEAD``
and cacheable responses, with ``ETag``/``304``, ``Age`` and ``Vary`` support. Only statuses
in ``CACHE_VIEW_STATUSES`` (default: 2xx) are stored; an ``abort()`` is served, and stored
only when its status is listed (negative caching), then raised again on each hit so error
handlers still run. Other functions store their return value, as Flask-Caching does.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from flask import Request, Response, after_this_request, current_app, request
from flask.globals import _cv_request
from werkzeug.exceptions import HTTPException

from flask_stash.calls import condition, join_generator, source_hash, staleness
from flask_stash.config import normalize_timeout
from flask_stash.core.api import MISS
from flask_stash.core.engine import Lookup
from flask_stash.core.pipeline import Plan, Ticket, fetch, miss
from flask_stash.core.stats import readable_name
from flask_stash.core.tags import TagsOption, tags_of
from flask_stash.protection import protection_for, protection_overrides
from flask_stash.protocols import CachedFunction
from flask_stash.signals import cache_view_hit, cache_view_miss
from flask_stash.state import AppState
from flask_stash.views import http, privacy, responses, serving
from flask_stash.views.audit import Auditor

if TYPE_CHECKING:
    from flask_stash.extension import Cache

P = ParamSpec("P")
R = TypeVar("R")
HIT_HEADER = "hit_cache"
#: ``delete_cached``'s default ``user``: the page is dropped for every user.
EVERYONE: Any = object()


class CachedView:
    """One ``@cache.cached(...)`` application: its options, keys and shared steps."""

    def __init__(self, cache: Cache, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.cache = cache
        self.fn = fn
        self.key_prefix = options["key_prefix"]
        self.unless = condition(options["unless"], with_function=True)
        self.forced_update = condition(options["forced_update"])
        self.is_stale = staleness(options["is_stale"])
        self.response_filter = options["response_filter"]
        self.query_string = options["query_string"]
        self.query_allow = options["query_allow"]
        self.query_deny = tuple(options["query_deny"] or ())
        self.hash_method = options["hash_method"]
        self.cache_none = options["cache_none"]
        self.custom_key = options["make_cache_key"]
        self.source_check = options["source_check"]
        self.hit_indication = options["response_hit_indication"]
        self.statuses: Collection[int] | None = options["statuses"]
        self.tags = tags_of(options["tags"])
        self.http = serving.HttpOptions(
            private=options["private"],
            private_key=options["private_key"],
            honor_no_cache=options["honor_no_cache"],
            cache_control=options["cache_control"],
            x_cache=options["x_cache"],
            max_buffer=options["max_buffer"],
        )
        self.overrides = protection_overrides(options)
        self.auditor = Auditor()
        #: Statistics label: the function, not the key (keys can be unbounded in number).
        self.scope = readable_name(fn)
        self.wrapper: Any = None
        self._is_view_of: dict[tuple[int, str], bool] = {}

    # -- keys ---------------------------------------------------------------------------

    def make_key(
        self,
        *args: Any,
        path: str | None = None,
        query_args: Any = None,
        use_request: bool = False,
        **kwargs: Any,
    ) -> str:
        """The cache key, from the current request or from ``path``/``query_args``/view args.

        As in Flask-Caching 2.5: positional arguments name the view's parameters (for
        ``url_for``), and the path is built with ``url_for(..., _external=False)``, so a key
        made outside a request matches the one a request stored.
        """
        if self.custom_key is not None and not use_request:
            return str(self.custom_key(*args, **kwargs))
        kwargs.update(zip(_parameter_names(self.fn), args, strict=False))
        return self._key(self.cache.state(), path, query_args, use_request, kwargs)

    def _key(
        self,
        state: AppState,
        path: str | None,
        query_args: Any,
        use_request: bool,
        kwargs: dict[str, Any],
    ) -> str:
        base = self._prefix(path, use_request, kwargs)
        if self.query_string:
            pairs = request.args.items(multi=True) if query_args is None else _pairs(query_args)
            kept = http.query_pairs(pairs, self.query_allow, self.query_deny)
            base += self._hash(state, str(tuple(kept)))
        if self._source_check(state):
            base += source_hash(self.fn, self.hash_method or state.config.hash_method)
        return base

    def _prefix(self, path: str | None, use_request: bool, view_args: dict[str, Any]) -> str:
        prefix = self.key_prefix
        if callable(prefix):
            return str(prefix())
        if "%s" not in prefix:
            return str(prefix)
        if path is None:
            path = request.path if use_request else self._url(view_args)
        return str(prefix % path)

    def _url(self, view_args: dict[str, Any]) -> str:
        """The view's path for ``view_args``, as ``request.path`` would be for it.

        Its endpoint is found in the app's routes (a blueprint's ``bp.name`` too), else its
        function name, as in Flask-Caching. The path is built on the URL map itself, so it
        works outside a request without ``SERVER_NAME`` and leaves out the script root,
        exactly like ``request.path``.
        """
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        endpoint = next(
            (name for name in app.view_functions if self._routes_here(app, name)),
            self.fn.__name__,
        )
        adapter = app.url_map.bind(app.config.get("SERVER_NAME") or "localhost")
        return str(adapter.build(endpoint, view_args))

    def _hash(self, state: AppState, text: str) -> str:
        method = self.hash_method or state.config.hash_method
        return str(method(text.encode()).hexdigest())

    def _source_check(self, state: AppState) -> bool:
        return bool(state.config.source_check if self.source_check is None else self.source_check)

    def _key_for_call(
        self,
        state: AppState,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        current: Request | None,
    ) -> str:
        if self.custom_key is not None:
            return str(self.custom_key(*args, **kwargs))
        maker = self.wrapper.make_cache_key
        if maker != self.make_key:  # reassigned by the user, as Flask-Caching allows
            return str(maker(*args, use_request=True, **kwargs))
        path = None if current is None else current.path
        return self._key(state, path, None, True, {})

    # -- the call -----------------------------------------------------------------------

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        state = self.cache.only_state or self.cache.state()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if self.unless is not None and self.unless(self.fn, *args, **kwargs):
            return app.ensure_sync(self.fn)(*args, **kwargs)
        current = self._view_request(app)
        try:
            key = self._key_for_call(state, args, kwargs, current)
            if current is not None:
                call = serving.make_call(self, app, state, key, args, kwargs, current)
        except HTTPException:  # abort() or a redirect from a key function is the answer
            raise
        except Exception as exc:  # a broken key function must not lose the request
            return self._uncached(app, state, exc, args, kwargs, routed=current is not None)
        if current is not None:
            return serving.serve(call)
        return self._function_call(app, state, key, args, kwargs)

    def tag_keys(
        self, state: AppState, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[str, ...]:
        """The stamp keys of this call's tags (``tags=``, given the view's arguments)."""
        if self.tags is None:
            return ()
        return tuple(state.store.tag_key(tag) for tag in self.tags.of(args, kwargs))

    def _uncached(
        self,
        app: Any,
        state: AppState,
        error: Exception,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        routed: bool,
    ) -> Any:
        """Run the function uncached when its key cannot be built: logged rate-limited,
        or raised with ``CACHE_FAIL_OPEN = False``."""
        state.store.policy.handle(error, f"key of {self.scope}")
        result = app.ensure_sync(self.fn)(*args, **kwargs)
        if routed and self.http.private:
            headers = serving.settings_for(self, state).identity_headers
            return serving.mark_private(app, result, headers)
        return result

    def _function_call(
        self, app: Any, state: AppState, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Flask-Caching's semantics for a function that is not the request's view."""
        plan = self._function_plan(state)
        where = Lookup(state.store.backend_key(key), self.tag_keys(state, args, kwargs), self.scope)
        run = app.ensure_sync(self.fn)
        if self.forced(args, kwargs):
            ticket = miss(plan, where, None, recheck=False)
        else:
            ticket = fetch(plan, where, lambda t: self._recompute(t, run, args, kwargs))
            if ticket.ready and self.stale_for(app, ticket.value, args, kwargs):
                ticket = miss(plan, where, ticket.version, recheck=False)
        if state.config.enable_signals:
            signal = cache_view_hit if ticket.ready else cache_view_miss
            signal.send(cache=self.cache, cache_key=key, args=args, kwargs=kwargs)
        if ticket.ready:
            if responses.is_frozen(ticket.value):
                return responses.thaw(app, ticket.value)  # a stored abort() is raised again
            self.indicate_hit(None)
            return ticket.value
        try:
            value = join_generator(run(*args, **kwargs))
        except HTTPException as error:
            self.keep_abort(state, ticket, error)
            raise
        except BaseException as error:
            return ticket.fail(error)
        return ticket.keep(value, self.wrapper.cache_timeout)

    def _recompute(
        self, ticket: Ticket, run: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """A background refresh of a plain function's value (in the app's context)."""
        ticket.keep(join_generator(run(*args, **kwargs)), self.wrapper.cache_timeout)

    def _function_plan(self, state: AppState) -> Plan:
        plan: Plan | None = state.helpers.get((self, "function plan"))
        if plan is None:
            store = state.store

            def read(where: Lookup) -> tuple[Any, bytes | None]:
                entry, version = store.read_stored(where.key, where.version_keys)
                if entry is not MISS and not _plain_value(state, entry.value):
                    return MISS, version  # a page a routed view stored under this key
                return entry, version

            plan = Plan(store, protection_for(self.overrides, state), self.scope,
                        storable=self.storable, read=read, spawn=state.spawn)  # fmt: skip
            store.stats.describe(self.scope, "cached")
            state.helpers[(self, "function plan")] = plan
        return plan

    def storable(self, value: Any) -> bool:
        return (value is not None or self.cache_none) and self.accepts(value)

    # -- invalidation ---------------------------------------------------------------------

    def delete(self, path: str | None, query_args: Any, user: Any, kwargs: dict[str, Any]) -> bool:
        """Drop the page at ``path``: for everyone, or for ``user`` (a ``private_key()``
        value) only. Per-user pages are dropped in O(1) by renewing their version stamp."""
        key = str(self.wrapper.make_cache_key(path=path, query_args=query_args, **kwargs))
        store = self.cache.state().store
        if user is not EVERYONE:
            if not self.http.private or self.http.private_key is None:
                raise ValueError(
                    f"delete_cached(..., user=...) needs a view cached with private=True and "
                    f"a private_key; {self.scope} has none"
                )
            return store.bump_version(store.backend_key(privacy.user_stamp_key(key, user)))
        deleted = self.cache.delete(key) if self.cache.redefined else store.delete(key)
        if self.http.private:
            stamp = store.backend_key(privacy.all_users_stamp_key(key))
            return store.bump_version(stamp) or deleted
        return deleted

    # -- steps shared with serving.py ---------------------------------------------------

    def forced(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        return self.forced_update is not None and self.forced_update(self.fn, *args, **kwargs)

    def stale_for(
        self, app: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> bool:
        if self.is_stale is None or responses.vary_of(value) is not None:
            return False
        shown = responses.thaw(app, value) if responses.is_frozen(value) else value
        return bool(self.is_stale(shown, *args, **kwargs))

    def indicate_hit(self, response: Response | None) -> None:
        if not self.hit_indication:
            return
        if response is not None:
            response.headers[HIT_HEADER] = "True"
            return

        @after_this_request
        def mark(response: Response) -> Response:
            response.headers[HIT_HEADER] = "True"
            return response

    def keep_abort(self, state: AppState, ticket: Ticket, error: HTTPException) -> None:
        """End ``ticket`` for an ``abort()``: stored when its status is listed (negative
        caching, raised again on each hit), else refused."""
        if not ticket.stores:
            ticket.refuse(marker=False)
        elif error.code in self.statuses_for(state) and self.accepts(error.get_response()):
            ticket.write(
                ticket.where.key, responses.freeze_abort(error), self.wrapper.cache_timeout
            )
            ticket.stored()
        else:
            ticket.refuse()

    def accepts(self, value: Any) -> bool:
        return self.response_filter is None or bool(self.response_filter(value))

    def statuses_for(self, state: AppState) -> Collection[int]:
        return self.statuses if self.statuses is not None else state.config.view_statuses

    def timeout_for(self, value: Any) -> Any:
        if isinstance(value, responses.CachedResponse) and value.timeout is not None:
            return value.timeout
        return self.wrapper.cache_timeout

    def _view_request(self, app: Any) -> Request | None:
        """The request, if this function is the view it was routed to (else ``None``).

        The request object itself, not the ``request`` proxy: the view path reads it
        several times per hit.
        """
        context = _cv_request.get(None)
        current: Request | None = None if context is None else context.request
        rule = None if current is None else current.url_rule
        if rule is None:
            return None
        endpoint = rule.endpoint
        known = self._is_view_of.get((id(app), endpoint))
        if known is None:
            known = self._is_view_of[(id(app), endpoint)] = self._routes_here(app, endpoint)
        return current if known else None

    def _routes_here(self, app: Any, endpoint: str) -> bool:
        view = app.view_functions.get(endpoint)
        for _ in range(32):  # follow decorators that kept __wrapped__
            if view is None or view is self.wrapper:
                return view is self.wrapper
            view = getattr(view, "__wrapped__", None)
        return False


def cached(
    cache: Cache,
    timeout: Any = None,
    key_prefix: str | Callable[[], str] = "view/%s",
    unless: Callable[..., Any] | None = None,
    forced_update: Callable[..., Any] | None = None,
    is_stale: Callable[..., Any] | None = None,
    response_filter: Callable[[Any], Any] | None = None,
    query_string: bool = False,
    hash_method: Callable[..., Any] | None = None,
    cache_none: bool = False,
    make_cache_key: Callable[..., str] | None = None,
    source_check: bool | None = None,
    response_hit_indication: bool | None = False,
    *,
    statuses: Iterable[int] | None = None,
    private: bool = False,
    private_key: Callable[[], object] | None = None,
    query_allow: Iterable[str] | None = None,
    query_deny: Iterable[str] | None = None,
    honor_no_cache: bool | None = None,
    cache_control: bool | None = None,
    x_cache: bool | None = None,
    max_buffer: int | None = None,
    stampede: bool | None = None,
    stale: float | None = None,
    fail_safe: float | None = None,
    jitter: float | None = None,
    tags: TagsOption = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Cache a view's response (or a function's result) under a request-path key.

    Flask-Caching's parameters keep their meaning. Ours (keyword-only; ``None`` means the
    app's ``CACHE_VIEW_*`` setting): ``statuses`` to store (default 2xx; add 404 for
    negative caching); ``private=True`` for per-user pages: keyed by every credential the
    request carries (all cookies, ``Authorization``) plus ``private_key()`` if given, sent
    with ``Cache-Control: private`` and ``Vary: Cookie``; ``max_buffer`` bytes of a streamed
    response to buffer and store (default ``CACHE_VIEW_MAX_BUFFER``, ``0``: streams pass
    through uncached); ``query_allow``/``query_deny`` shell patterns for ``query_string`` keys
    (``query_deny=["utm_*"]``); ``honor_no_cache`` to let ``Cache-Control: no-cache``
    requests skip the cache; ``cache_control`` to add ``Cache-Control: public, max-age``;
    ``x_cache`` to add ``X-Cache: HIT|MISS|STALE``; ``stampede=False`` to let concurrent
    misses each run the view; ``stale`` seconds of stale-while-revalidate (the view re-runs
    in the background), ``fail_safe`` and ``jitter`` (see ``docs/stampede.md``); ``tags``,
    strings and callables of the view's arguments (``cache.invalidate_tags`` drops every
    page carrying one, ``docs/tags-and-tiers.md``). See ``docs/views.md``.
    """
    options = dict(locals())
    del options["cache"]
    if timeout is not None:
        options["timeout"] = normalize_timeout(timeout)
    if statuses is not None:
        options["statuses"] = frozenset(statuses)
    if max_buffer is not None and (
        isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 0
    ):
        raise TypeError(f"max_buffer must be a number of bytes >= 0, not {max_buffer!r}")
    if private_key is not None and not callable(private_key):
        raise TypeError(f"private_key must be a callable returning the user, not {private_key!r}")
    if query_allow is not None:
        options["query_allow"] = tuple(query_allow)
    if not (isinstance(key_prefix, str) or callable(key_prefix)):
        raise TypeError(f"key_prefix must be a string or a callable, not {key_prefix!r}")
    protection_overrides(options)  # bad values fail here
    tags_of(tags)

    def decorate(fn: Callable[P, R]) -> CachedFunction[P, R]:
        if not callable(fn) or isinstance(fn, type):
            raise TypeError(f"cached decorates view functions and functions, not {fn!r}")
        view = CachedView(cache, fn, options)

        @functools.wraps(fn)
        def decorated(*args: Any, **kwargs: Any) -> Any:
            return view(args, kwargs)

        view.wrapper = decorated
        decorated.__stash_cached__ = view  # type: ignore[attr-defined]
        decorated.uncached = fn  # type: ignore[attr-defined]
        decorated.cache_timeout = options["timeout"]  # type: ignore[attr-defined]
        decorated.make_cache_key = view.make_key  # type: ignore[attr-defined]
        return cast(CachedFunction[P, R], decorated)

    return decorate


def _plain_value(state: AppState, value: Any) -> bool:
    """Whether a stored value may be returned by a plain function: anything but a routed
    view's page, or a malformed frozen ``abort()`` in an unsigned store (signed entries
    were written by this library)."""
    if responses.is_view_only(value):
        return False
    if state.store.entries_signed or not responses.is_frozen(value):
        return True
    return responses.is_replayable(value)


def _parameter_names(fn: Callable[..., Any]) -> list[str]:
    """The names positional arguments bind to (Flask-Caching's ``get_arg_names``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: no names to bind
        return []
    return [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]


def _pairs(query_args: Any) -> Iterable[tuple[str, str]]:
    """Query arguments given as a query string, a mapping or ``(key, value)`` pairs."""
    if isinstance(query_args, (str, bytes)):
        from urllib.parse import parse_qsl

        text = query_args.decode() if isinstance(query_args, bytes) else query_args
        return parse_qsl(text.lstrip("?"), keep_blank_values=True)
    if isinstance(query_args, Mapping):
        if hasattr(query_args, "getlist"):  # a MultiDict keeps repeated arguments
            return [(k, str(v)) for k, v in query_args.items(multi=True)]  # type: ignore[call-arg]
        items = query_args.items()
        return [(k, str(v)) for k, val in items for v in (val if isinstance(val, list) else [val])]
    return [(str(k), str(v)) for k, v in query_args]  # as the request's strings

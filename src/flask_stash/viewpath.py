"""The HTTP-aware path of ``@cache.cached`` for the view a request was routed to.

Lookup: one read of the view's key; if the stored value says the view varies on request
headers, a second read of the variant for this request's header values (views without
``Vary`` stay at one read). Store: the finished response with validators added, only if
the HTTP rules in :mod:`flask_stash.http` allow it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response, copy_current_request_context, request
from werkzeug.exceptions import HTTPException

from flask_stash import audit, http, responses
from flask_stash.core.api import MISS, SupportsLock
from flask_stash.core.engine import Lookup, find, save
from flask_stash.core.entry import Entry
from flask_stash.core.guard import (
    REFRESH_ERROR,
    STALE,
    BackendLock,
    Protection,
    executor_for,
    once_across_processes,
)
from flask_stash.core.stats import HIT, MISS_EVENT, UNDECODABLE
from flask_stash.protection import protection_for
from flask_stash.signals import cache_view_hit, cache_view_miss
from flask_stash.state import AppState

logger = logging.getLogger("flask_stash")

if TYPE_CHECKING:
    from flask_stash.views import CachedView


@dataclass(frozen=True)
class HttpOptions:
    """Per-view HTTP options; ``None`` means "use the app's ``CACHE_VIEW_*`` setting"."""

    private: bool = False
    private_key: Any = None
    honor_no_cache: bool | None = None
    cache_control: bool | None = None
    x_cache: bool | None = None
    max_buffer: int | None = None


@dataclass(frozen=True)
class Settings:
    """A view's HTTP options resolved against its app's configuration (once per app)."""

    honor_no_cache: bool
    cache_control: bool
    x_cache: bool
    max_buffer: int
    protect: Protection

    @classmethod
    def of(cls, view: CachedView, state: AppState) -> Settings:
        options = view.http

        def pick(name: str) -> Any:
            value = getattr(options, name)
            return getattr(state.config, f"view_{name}") if value is None else value

        return cls(
            honor_no_cache=pick("honor_no_cache"),
            cache_control=pick("cache_control"),
            x_cache=pick("x_cache"),
            max_buffer=pick("max_buffer"),
            protect=protection_for(view.overrides, state),
        )


@dataclass(slots=True)
class Call:
    """One request to a cached view (built on every request: kept to a plain slotted class)."""

    view: CachedView
    app: Flask
    state: AppState
    key: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    settings: Settings
    request: Request

    def run(self) -> Any:
        return self.app.ensure_sync(self.view.fn)(*self.args, **self.kwargs)

    def label(self, text: str) -> str | None:
        return text if self.settings.x_cache else None


def settings_for(view: CachedView, state: AppState) -> Settings:
    found: Settings | None = state.helpers.get((view, "http"))
    if found is None:
        found = state.helpers[(view, "http")] = Settings.of(view, state)
    return found


def serve(call: Call) -> Any:
    """Answer the request from the cache, or run the view and maybe store its response."""
    if not http.request_is_cacheable(call.request, call.settings.honor_no_cache):
        return call.run()
    key = call.key + (_user_suffix(call) if call.view.http.private else "")
    forced = call.view.forced(call.args, call.kwargs)
    entry = None if forced else _lookup(call, key, stale_ok=call.settings.protect.stale > 0)
    if call.state.config.enable_signals:
        signal = cache_view_miss if entry is None else cache_view_hit
        signal.send(cache=call.view.cache, cache_key=call.key, args=call.args, kwargs=call.kwargs)
    if entry is None:
        return _miss_once(call, key, recheck=not forced)
    if entry.is_fresh(call.state.store.clock()):
        return _hit(call, entry)
    call.state.store.stats.incr(STALE, call.view.scope)
    _refresh_later(call, key)
    return _hit(call, entry, "STALE")


def _refresh_later(call: Call, key: str) -> None:
    """Re-run the view in the background (one refresh per key) and store its response."""
    store, claim = call.state.store, key + ":refresh"
    if not store.flights.try_lead(claim):
        return
    lock = BackendLock(store, store.backend_key(key) + ":lock", call.settings.protect)

    @copy_current_request_context
    def refresh() -> None:
        locking = isinstance(store.backend, SupportsLock)
        try:
            if locking and not lock.acquire():
                return  # another process refreshes it
            try:
                _miss(call, key)
            finally:
                if locking:
                    lock.release()
        except Exception:
            store.stats.incr(REFRESH_ERROR, call.view.scope)
            logger.warning("background refresh of %s failed", call.view.scope, exc_info=True)
        finally:
            store.flights.release(claim)

    try:
        executor_for(store).submit(refresh)
    except RuntimeError:  # shutting down
        store.flights.release(claim)


def _miss_once(call: Call, key: str, recheck: bool) -> Any:
    """Concurrent misses of one key run the view once: in this process, and across
    processes on backends that can lock.

    The others wait for it (a bounded time), then read the entry it stored; when it stored
    nothing (an uncacheable response), each runs the view itself. Responses are never
    shared between requests, only the stored copy is.
    """
    protect = protection_for(call.view.overrides, call.state)
    if not protect.single_flight:
        return _miss(call, key)
    store = call.state.store
    where = Lookup(store.backend_key(key), (), call.view.scope)

    def found() -> tuple[bool, Any]:  # stored by another process meanwhile?
        entry = _lookup(call, key)
        return (False, None) if entry is None else (True, _hit(call, entry))

    def lead() -> None:
        compute = lambda: _miss(call, key)  # noqa: E731
        mine.append(once_across_processes(store, where, protect, found, compute, recheck))

    mine: list[Any] = []
    store.flights.run(key, lead, protect.lock_wait)
    if mine:
        return mine[0]
    entry = _lookup(call, key)
    return _hit(call, entry) if entry is not None else _miss(call, key)


def _lookup(call: Call, key: str, stale_ok: bool = False) -> Entry | None:
    read = _servable if stale_ok else _fresh
    entry = read(call, key)
    names = None if entry is None else responses.vary_of(entry.value)
    if names is not None:
        entry = read(call, _variant_key(key, names))
    store = call.state.store
    if entry is not None and not store.entries_signed and not responses.is_replayable(entry.value):
        store.stats.incr(UNDECODABLE)  # an unsigned entry someone else wrote
        return None
    if entry is not None and call.view.stale_for(call.app, entry.value, call.args, call.kwargs):
        return None
    return entry


def _fresh(call: Call, key: str) -> Entry | None:
    store = call.state.store
    return find(store, store.backend_key(key), (), call.view.scope)[0]


def _servable(call: Call, key: str) -> Entry | None:
    """The entry if fresh, or stale but inside its stale window (a hit either way)."""
    store = call.state.store
    entry, _ = store.read_stored(store.backend_key(key))
    if entry is MISS or not entry.is_servable(store.clock()):
        store.stats.incr(MISS_EVENT, call.view.scope)
        return None
    store.stats.incr(HIT, call.view.scope)
    return entry


def _variant_key(key: str, names: tuple[str, ...]) -> str:
    return f"{key}:vary:{http.variant(request, names)}"  # a proxy: also used from refreshes


def _user_suffix(call: Call) -> str:
    """Who the response is for, when a view opts in to per-user caching."""
    identify = call.view.http.private_key
    if callable(identify):
        who = str(identify())
    else:
        cookie = request.cookies.get(call.app.config.get("SESSION_COOKIE_NAME", "session"), "")
        who = hashlib.sha256(cookie.encode()).hexdigest()[:32] if cookie else "anonymous"
    return f":user:{who}"


def _hit(call: Call, entry: Entry, label: str = "HIT") -> Response:
    response = responses.thaw(call.app, entry.value)  # raises a stored abort() again
    now = call.state.store.clock()
    if call.settings.cache_control:
        http.add_freshness(response, entry.remaining(now), call.settings.protect.stale)
    call.view.indicate_hit(response)
    return http.finish_hit(response, call.request, entry.age(now), call.label(label))


def _miss(call: Call, key: str) -> Any:
    auditing = call.state.config.key_audit and call.app.debug
    try:
        if auditing:
            with audit.recording(request) as reads:
                value = call.run()
        else:
            value = call.run()
    except HTTPException as error:
        where = Lookup(call.state.store.backend_key(key), (), call.view.scope)
        call.view.keep_abort(call.state, where, error)
        raise
    response: Response = call.app.make_response(value)
    touched = http.session_touched()
    stored_names = _store(call, key, value, response, touched)
    if auditing:
        keyed = audit.Keyed(call.view.query_string, stored_names or (), call.view.http.private)
        call.view.auditor.report(call.view.fn.__name__, audit.unkeyed(reads, keyed, touched))
    http.mark(response, call.label("MISS"))
    return http.conditional(response, request)


def _store(
    call: Call, key: str, value: Any, response: Response, touched: bool
) -> tuple[str, ...] | None:
    """Store ``response`` if allowed; returns the Vary names it was stored under."""
    if not call.view.accepts(value) or response.status_code not in call.view.statuses_for(
        call.state
    ):
        return None
    if http.refusal(response, private=call.view.http.private, touched_session=touched):
        return None
    body = responses.buffered_body(response, call.settings.max_buffer)
    if body is None:
        return None
    store = call.state.store
    http.add_validators(response, body, store.clock())
    timeout = call.view.timeout_for(value)
    protect = call.settings.protect
    if call.settings.cache_control:
        http.add_freshness(response, store.ttl_for(timeout), protect.stale)
    names = http.vary_names(response)
    frozen = responses.freeze(response, body)
    scope = call.view.scope

    def keep(store_key: str, value: Any) -> None:
        where = Lookup(store.backend_key(store_key), (), scope)
        save(store, where, value, timeout, None, stale=protect.stale, keep=protect.fail_safe)

    if names:
        keep(key, responses.freeze_vary(names))
        key = _variant_key(key, names)
    keep(key, frozen)
    return names

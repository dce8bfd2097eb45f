"""The HTTP-aware path of ``@cache.cached`` for the view a request was routed to.

Lookup: one read of the view's key (with the page's per-user stamps for ``private=True``
views, in the same multi-get); if the stored value says the view varies on request
headers, a second read of the variant for this request's header values (views without
``Vary`` stay at one read).

Store: a miss runs the view and hands its response to Flask; the copy to store is taken
then, but written only when the request ends (:mod:`flask_stash.requestend`), once the
``after_request`` handlers ran and the session was saved, and only if the *final* response
passes the HTTP rules of :mod:`flask_stash.http` (no ``Set-Cookie``, no ``no-store``...;
its ``Vary`` chooses the variant). The request that computes a key holds its single-flight
claim and backend lock until then, so concurrent misses still run the view once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response, copy_current_request_context, request
from werkzeug.exceptions import HTTPException

from flask_stash import audit, http, privacy, requestend, responses, viewstore
from flask_stash.calls import join_generator
from flask_stash.core.api import MISS, SupportsLock
from flask_stash.core.engine import Counter, Lookup, find_counted
from flask_stash.core.entry import Entry
from flask_stash.core.guard import REFRESH_ERROR, STALE, Protection, executor_for
from flask_stash.core.locking import BackendLock, take_turn
from flask_stash.core.stats import HIT, MISS_EVENT, UNDECODABLE
from flask_stash.protection import protection_for
from flask_stash.signals import cache_view_hit, cache_view_miss
from flask_stash.state import AppState

logger = logging.getLogger("flask_stash")

if TYPE_CHECKING:
    from flask_stash.views import CachedView

Release = Callable[[], None]
_PASSED = object()  # found() saw a pass marker


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
    ignored_cookies: tuple[str, ...]
    identity_headers: tuple[str, ...]
    protect: Protection
    #: The view's hit and miss counters, looked up once (``next()`` counts one).
    hits: Counter
    misses: Counter

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
            ignored_cookies=state.config.view_private_ignore_cookies,
            identity_headers=state.config.view_private_headers,
            protect=protection_for(view.overrides, state),
            hits=state.store.stats.counter(HIT, view.scope),
            misses=state.store.stats.counter(MISS_EVENT, view.scope),
        )


@dataclass(slots=True)
class Call:
    """One request to a cached view (built on every request: kept to a plain slotted class).

    ``key`` is the entry's key: the view's key plus, for ``private=True`` views, the
    identity suffix; ``stamps`` are the backend keys of its per-user version stamps.
    """

    view: CachedView
    app: Flask
    state: AppState
    key: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    settings: Settings
    request: Request
    stamps: tuple[str, ...] = ()

    def run(self) -> Any:
        return self.app.ensure_sync(self.view.fn)(*self.args, **self.kwargs)

    def label(self, text: str) -> str | None:
        return text if self.settings.x_cache else None

    @property
    def private(self) -> bool:
        return bool(self.view.http.private)

    def lookup(self, key: str) -> Lookup:
        store = self.state.store
        return Lookup(store.backend_key(key), self.stamps, self.view.scope)


def settings_for(view: CachedView, state: AppState) -> Settings:
    found: Settings | None = state.helpers.get((view, "http"))
    if found is None:
        found = state.helpers[(view, "http")] = Settings.of(view, state)
    return found


def make_call(
    view: CachedView,
    app: Flask,
    state: AppState,
    key: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    current: Request,
) -> Call:
    """The call for this request; a ``private_key`` that raises propagates."""
    settings = settings_for(view, state)
    if not view.http.private:
        return Call(view, app, state, key, args, kwargs, settings, current)
    who = privacy.identify(
        current,
        key,
        view.http.private_key,
        settings.ignored_cookies,
        settings.identity_headers,
    )
    stamps = [privacy.all_users_stamp_key(key)]
    if who.user_stamp is not None:
        stamps.append(who.user_stamp)
    backend_stamps = tuple(state.store.backend_key(stamp) for stamp in stamps)
    return Call(view, app, state, key + who.suffix, args, kwargs, settings, current, backend_stamps)


def mark_private(app: Flask, result: Any, identity_headers: tuple[str, ...]) -> Response:
    """``result`` as a response that will be marked as one user's when it is sent (after
    every ``after_request`` handler), on misses and hits alike."""
    response: Response = app.make_response(result)
    requestend.defer(response, _PrivateMark(identity_headers))
    return response


@dataclass
class _PrivateMark:
    identity_headers: tuple[str, ...]

    def finish(self, response: Response) -> None:
        http.mark_private(response, request, self.identity_headers)

    def abandon(self) -> None:
        pass


def serve(call: Call) -> Any:
    """Answer the request from the cache, or run the view and maybe store its response."""
    if call.stamps:  # only private calls have per-user stamps
        return mark_private(call.app, _serve(call), call.settings.identity_headers)
    return _serve(call)


def _serve(call: Call) -> Any:
    if not http.request_is_cacheable(call.request, call.settings.honor_no_cache):
        return call.run()
    key = call.key
    forced = call.view.forced(call.args, call.kwargs)
    entry = None if forced else _lookup(call, key, stale_ok=call.settings.protect.stale > 0)
    passing = entry is not None and responses.is_pass(entry.value)
    if call.state.config.enable_signals:
        signal = cache_view_miss if entry is None or passing else cache_view_hit
        signal.send(cache=call.view.cache, cache_key=call.key, args=call.args, kwargs=call.kwargs)
    if entry is None:
        return _miss_once(call, recheck=not forced)
    if passing:  # its last response was refused: run it now, nobody to wait for
        return _respond(call, _nothing)
    if entry.is_fresh(call.state.store.clock()):
        return _hit(call, entry)
    call.state.store.stats.incr(STALE, call.view.scope)
    _refresh_later(call)
    return _hit(call, entry, "STALE")


def _refresh_later(call: Call) -> None:
    """Re-run the view in the background (one refresh per key) and store its response.

    No ``after_request`` handler runs in a background refresh: the response is judged by
    what the view itself returned.
    """
    store, claim = call.state.store, call.key + ":refresh"
    if not store.flights.try_lead(claim):
        return
    lock = BackendLock(store, call.lookup(call.key).key + ":lock", call.settings.protect)

    @copy_current_request_context
    def refresh() -> None:
        locking = isinstance(store.backend, SupportsLock)
        try:
            if locking and not lock.acquire():
                return  # another process refreshes it
            _respond(call, lock.release if locking else _nothing, at_request_end=False)
        except Exception:
            store.stats.incr(REFRESH_ERROR, call.view.scope)
            logger.warning("background refresh of %s failed", call.view.scope, exc_info=True)
        finally:
            store.flights.release(claim)

    try:
        executor_for(store).submit(refresh)
    except RuntimeError:  # shutting down
        store.flights.release(claim)


def _nothing() -> None:
    pass


def _miss_once(call: Call, recheck: bool) -> Any:
    """Concurrent misses of one key run the view once: in this process, and across
    processes on backends that can lock.

    The request that runs the view keeps its claim until its response is stored (or
    refused) at the end of the request. The others wait for it (a bounded time), then read
    the entry it stored; when it stored nothing (an uncacheable response), each runs the
    view itself. Responses are never shared between requests, only the stored copy is.
    """
    if not http.request_may_store(call.request):
        return _respond(call, None)  # HEAD, Range: served, never stored
    protect = call.settings.protect
    if not protect.single_flight:
        return _respond(call, _nothing)
    if requestend.holds(call.key):  # the view re-entered itself: never wait on our own claim
        return _respond(call, None)
    store = call.state.store
    if not store.flights.try_lead(call.key):
        store.flights.wait(call.key, protect.lock_wait)
        entry = _lookup(call, call.key)
        if entry is None or responses.is_pass(entry.value):
            return _respond(call, _nothing)
        return _hit(call, entry)
    requestend.claim(call.key)

    def release_flight() -> None:
        requestend.unclaim(call.key)
        store.flights.release(call.key)

    def found() -> tuple[bool, Any]:  # stored (or refused) by another process meanwhile?
        entry = _lookup(call, call.key)
        if entry is None:
            return False, None
        return True, _PASSED if responses.is_pass(entry.value) else _hit(call, entry)

    try:
        turn = take_turn(store, call.lookup(call.key), protect, found, recheck)
    except BaseException:
        release_flight()
        raise
    if turn.found:
        release_flight()
        return _respond(call, _nothing) if turn.value is _PASSED else turn.value
    return _respond(call, _both(turn.release, release_flight))


def _both(first: Release, second: Release) -> Release:
    def release() -> None:
        try:
            first()
        finally:
            second()

    return release


def _lookup(call: Call, key: str, stale_ok: bool = False) -> Entry | None:
    read = _servable if stale_ok else _fresh
    entry = read(call, key)
    names = None if entry is None else responses.vary_of(entry.value)
    if names is not None:
        entry = read(call, viewstore.variant_key(key, names))
    if entry is None or responses.is_pass(entry.value):
        return entry
    store = call.state.store
    if not store.entries_signed and not responses.is_replayable(entry.value):
        store.stats.incr(UNDECODABLE)  # an unsigned entry someone else wrote
        return None
    if call.view.is_stale is not None and call.view.stale_for(
        call.app, entry.value, call.args, call.kwargs
    ):
        return None
    return entry


def _fresh(call: Call, key: str) -> Entry | None:
    if call.view.cache.redefined:
        return viewstore.read_through_methods(call, key)
    store, settings = call.state.store, call.settings
    bkey = store.backend_key(key)
    return find_counted(store, bkey, call.stamps, settings.hits, settings.misses)[0]


def _servable(call: Call, key: str) -> Entry | None:
    """The entry if fresh, or stale but inside its stale window (a hit either way)."""
    if call.view.cache.redefined:
        return viewstore.read_through_methods(call, key)
    store = call.state.store
    where = call.lookup(key)
    entry, _ = store.read_stored(where.key, where.version_keys)
    if entry is MISS or not entry.is_servable(store.clock()):
        store.stats.incr(MISS_EVENT, call.view.scope)
        return None
    store.stats.incr(HIT, call.view.scope)
    return entry


def _hit(call: Call, entry: Entry, label: str = "HIT") -> Response:
    response = responses.thaw(call.app, entry.value)  # raises a stored abort() again
    now = call.state.store.clock()
    if call.settings.cache_control:
        http.add_freshness(
            response, entry.remaining(now), call.settings.protect.stale, call.private
        )
    call.view.indicate_hit(response)
    return http.finish_hit(response, call.request, entry.age(now), call.label(label))


def _respond(call: Call, release: Release | None, at_request_end: bool = True) -> Any:
    """Run the view; unless ``release`` is ``None``, prepare its response for storing.

    ``release`` ends this caller's claim on the key: called once the response is stored
    or refused, at the end of the request (``at_request_end``) or at once, and whenever
    anything here raises (releasing twice is harmless).
    """
    auditing = at_request_end and call.state.config.key_audit and call.app.debug
    try:
        value, reads = _run(call, auditing, joining=release is not None)
        response: Response = call.app.make_response(value)
        touched = http.session_touched()
        if reads is not None:
            requestend.defer(response, _AuditReport(call, reads, touched))
        if release is not None:
            pending = viewstore.prepare(call, value, response, touched, release)
            if pending is not None and at_request_end:
                requestend.defer(response, pending, holds_claim=True)
            elif pending is not None:  # a background refresh: no after_request handler runs
                pending.store(pending.vary)
    except HTTPException as error:
        if release is not None:
            call.view.keep_abort(call.state, call.lookup(call.key), error)
            release()
        raise
    except BaseException:
        if release is not None:
            release()
        raise
    http.mark(response, call.label("MISS"))
    return http.conditional(response, request)


def _run(call: Call, auditing: bool, joining: bool) -> tuple[Any, audit.Reads | None]:
    """The view's value (a generator view's output joined, as Flask-Caching stores it) and,
    when auditing, what it read from the request while running."""
    if not auditing:
        value = call.run()
        return (join_generator(value) if joining else value), None
    with audit.recording(request) as reads:
        value = call.run()
        return (join_generator(value) if joining else value), reads


@dataclass
class _AuditReport:
    """The key audit of one miss, reported against the final response's ``Vary``."""

    call: Call
    reads: audit.Reads
    touched: bool

    def abandon(self) -> None:
        pass

    def finish(self, response: Response) -> None:
        view = self.call.view
        vary = http.vary_names(response)
        if view.http.private:
            vary += tuple(name.lower() for name in self.call.settings.identity_headers)
        keyed = audit.Keyed(view.query_string, vary, view.http.private)
        view.auditor.report(view.fn.__name__, audit.unkeyed(self.reads, keyed, self.touched))

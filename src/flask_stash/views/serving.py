"""The HTTP-aware path of ``@cache.cached`` for the view a request was routed to.

Lookup: one read of the view's key (with the page's per-user stamps for ``private=True``
views, in the same multi-get); if the stored value says the view varies on request
headers, a second read of the variant for this request's header values (views without
``Vary`` stay at one read).

Store: a miss runs the view and hands its response to Flask; the copy to store is taken
then, but written only when the request ends (:mod:`flask_stash.views.requestend`), once the
``after_request`` handlers ran and the session was saved, and only if the *final* response
passes the HTTP rules of :mod:`flask_stash.views.http` (no ``Set-Cookie``, no ``no-store``...;
its ``Vary`` chooses the variant). The request that computes a key holds its pipeline
ticket (single-flight claim and backend lock) until then, so concurrent misses still run
the view once. Hits, stale serves, refreshes, fail-safe and hit-for-pass are the
pipeline's (:mod:`flask_stash.core.pipeline`); this module supplies the view's hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import (
    Flask,
    Request,
    Response,
    copy_current_request_context,
    has_request_context,
    request,
)
from werkzeug.exceptions import HTTPException

from flask_stash.calls import join_generator
from flask_stash.core.api import MISS, Miss
from flask_stash.core.engine import Lookup
from flask_stash.core.entry import Entry
from flask_stash.core.pipeline import FRESH, Plan, Ticket, classify, decide, is_pass, miss
from flask_stash.core.stampede import Protection
from flask_stash.core.stats import UNDECODABLE
from flask_stash.protection import protection_for
from flask_stash.signals import cache_view_hit, cache_view_miss
from flask_stash.state import AppState
from flask_stash.views import audit, http, privacy, requestend, responses, storing

if TYPE_CHECKING:
    from flask_stash.views.decorator import CachedView


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
    #: The view's pipeline plan; each call derives its own reader from it.
    plan: Plan

    @classmethod
    def of(cls, view: CachedView, state: AppState) -> Settings:
        options = view.http

        def pick(name: str) -> Any:
            value = getattr(options, name)
            return getattr(state.config, f"view_{name}") if value is None else value

        scope = request.endpoint if has_request_context() and request.endpoint else view.scope
        state.store.stats.describe(scope, "view")
        return cls(
            honor_no_cache=pick("honor_no_cache"),
            cache_control=pick("cache_control"),
            x_cache=pick("x_cache"),
            max_buffer=pick("max_buffer"),
            ignored_cookies=state.config.view_private_ignore_cookies,
            identity_headers=state.config.view_private_headers,
            protect=protection_for(view.overrides, state),
            plan=Plan(
                state.store,
                protection_for(view.overrides, state),
                scope,
                spawn=_in_request_context(state),
                shares_values=False,
            ),
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
        return Lookup(store.backend_key(key), self.stamps, self.settings.plan.scope)

    def plan(self) -> Plan:
        """The view's plan, reading as this request must (its ``Vary`` variant)."""
        return self.settings.plan.derive(read=self.read)

    def read(self, where: Lookup) -> tuple[Entry | Miss, bytes | None]:
        """The pipeline's reader: the page for this request, or a miss for anything that
        cannot be replayed as one (a plain value stored under the view's key, an unsigned
        look-alike, a page the view's ``is_stale`` rejects)."""
        entry, version = _read_page(self, self.key, where)
        if entry is MISS or is_pass(entry.value):
            return entry, version
        names = responses.vary_of(entry.value)
        if names is not None:
            variant = storing.variant_key(self.key, names)
            entry, version = _read_page(self, variant, self.lookup(variant))
            if entry is MISS or is_pass(entry.value):
                return entry, version
        store = self.state.store
        if not responses.is_frozen(entry.value) or (
            not store.entries_signed and not responses.is_replayable(entry.value)
        ):
            store.stats.incr(UNDECODABLE)  # not a page (a plain value, or a look-alike)
            return MISS, version
        view = self.view
        if view.is_stale is not None and view.stale_for(self.app, entry.value, self.args,
                                                         self.kwargs):  # fmt: skip
            return MISS, version
        return entry, version


def _read_page(call: Call, key: str, where: Lookup) -> tuple[Entry | Miss, bytes | None]:
    if call.view.cache.redefined:
        return storing.read_through_methods(call, key), None
    return call.state.store.read_stored(where.key, where.version_keys)


def _in_request_context(state: AppState) -> Callable[[Callable[[], None]], None]:
    """Background work of a view (a stale page's re-run): in a copy of the request's
    context, taken now, in the request."""

    def spawn(job: Callable[[], None]) -> None:
        state.store.stampede.run_in_background(copy_current_request_context(job))

    return spawn


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
    tag_stamps = view.tag_keys(state, args, kwargs)
    if not view.http.private:
        return Call(view, app, state, key, args, kwargs, settings, current, tag_stamps)
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
    backend_stamps = tuple(state.store.backend_key(stamp) for stamp in stamps) + tag_stamps
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
    if call.private:
        return mark_private(call.app, _serve(call), call.settings.identity_headers)
    return _serve(call)


def _serve(call: Call) -> Any:
    if not http.request_is_cacheable(call.request, call.settings.honor_no_cache):
        return call.run()
    where = call.lookup(call.key)
    store_ok = http.request_may_store(call.request)  # HEAD, Range: served, never stored
    if call.view.forced(call.args, call.kwargs):
        ticket = miss(call.plan(), where, None, recheck=False, store_ok=store_ok)
    else:
        entry, version = call.read(where)
        shared = call.settings.plan
        if entry is not MISS and classify(entry, shared.store.clock(), shared.protect) is FRESH:
            # The common hit, served here: no ticket, no refresh hook to build.
            shared.hit(entry.cost)
            _signal(call, hit=True)
            return _hit(call, entry)
        ticket = decide(call.plan(), where, entry, version,
                        lambda t: _respond(call, t, at_request_end=False),
                        store_ok=store_ok)  # fmt: skip
    _signal(call, hit=ticket.ready)
    if ticket.ready:
        return _hit(call, ticket.entry, "STALE" if ticket.stale else "HIT")  # type: ignore[arg-type]
    return _respond(call, ticket)


def _signal(call: Call, *, hit: bool) -> None:
    if call.state.config.enable_signals:
        signal = cache_view_hit if hit else cache_view_miss
        signal.send(cache=call.view.cache, cache_key=call.key, args=call.args, kwargs=call.kwargs)


def _hit(call: Call, entry: Entry, label: str = "HIT") -> Response:
    response = responses.thaw(call.app, entry.value)  # raises a stored abort() again
    now = call.state.store.clock()
    if call.settings.cache_control:
        http.add_freshness(
            response, entry.remaining(now), call.settings.protect.stale, call.private
        )
    call.view.indicate_hit(response)
    return http.finish_hit(response, call.request, entry.age(now), call.label(label))


def _respond(call: Call, ticket: Ticket, at_request_end: bool = True) -> Any:
    """Run the view and hand its response to ``ticket``: stored when the request ends
    (``at_request_end``) or at once (a background refresh), or refused."""
    auditing = at_request_end and call.state.config.key_audit and call.app.debug
    try:
        value, reads = _run(call, auditing, joining=ticket.stores)
        response: Response = call.app.make_response(value)
        touched = http.session_touched()
        if reads is not None:
            requestend.defer(response, _AuditReport(call, reads, touched))
        if ticket.stores:
            pending = storing.prepare(call, value, response, touched, ticket)
            if pending is not None and at_request_end:
                requestend.defer(response, pending, holds_claim=True)
            elif pending is not None:  # a background refresh: no after_request handler runs
                pending.store(pending.vary)
        else:
            ticket.refuse(marker=False)
    except HTTPException as error:
        call.view.keep_abort(call.state, ticket, error)
        raise
    except BaseException as error:
        last = ticket.last
        ticket.fail(error)  # raises unless the fail-safe serves the last good page
        return _hit(call, last, "STALE")  # type: ignore[arg-type]
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

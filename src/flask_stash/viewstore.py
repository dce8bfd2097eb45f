"""Storing a cached view's response: judged on the final response when it is sent.

The copy is taken when the view returns (:func:`prepare`) and written when the response
leaves (:class:`PendingStore`, a :mod:`flask_stash.requestend` task): only if the final
response, after every ``after_request`` handler and the session save, passes the HTTP
rules, under the variant its final ``Vary`` names. A refused response marks the key "pass"
for a while (hit-for-miss). With a ``Cache`` subclass that redefines ``get``/``set``, pages
are read and written through those methods, as Flask-Caching's decorators do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Response, request

from flask_stash import http, responses, routed
from flask_stash.core.engine import save
from flask_stash.core.entry import Entry
from flask_stash.core.errors import BackendError

if TYPE_CHECKING:
    from flask_stash.viewpath import Call

Release = Callable[[], None]
#: Seconds a key whose response was refused for storing is marked "pass": requests then run
#: the view at once, without waiting for another's computation, and still store a response
#: that may be stored (Varnish's hit-for-miss).
PASS_SECONDS = 10.0


def prepare(
    call: Call, value: Any, response: Response, touched: bool, release: Release
) -> PendingStore | None:
    """The copy of ``response`` to store when the request ends, or ``None`` (released)."""
    view = call.view
    refused = (
        not view.accepts(value)
        or response.status_code not in view.statuses_for(call.state)
        or http.refusal(response, private=call.private, touched_session=touched) is not None
    )
    body = None if refused else responses.buffered_body(response, call.settings.max_buffer)
    if body is None:
        refuse(call, release)
        return None
    store = call.state.store
    http.add_validators(response, body, store.clock())
    timeout = view.timeout_for(value)
    if call.settings.cache_control:
        ttl = store.ttl_for(timeout)
        http.add_freshness(response, ttl, call.settings.protect.stale, call.private)
    if call.private:  # stored marked: hits then find nothing to add
        http.mark_private(response, call.request, call.settings.identity_headers)
    frozen = responses.freeze(response, body)
    return PendingStore(call, frozen, response.status_code, http.vary_names(response), timeout,
                        release)  # fmt: skip


@dataclass
class PendingStore:
    """A view's response waiting for the end of its request to be judged and stored."""

    call: Call
    frozen: tuple[Any, ...]
    status: int
    #: The ``Vary`` names of the view's own response (a background refresh stores by them).
    vary: tuple[str, ...]
    timeout: Any
    release: Release

    def finish(self, response: Response) -> None:
        names = self._final_vary(response)
        if names is None:
            refuse(self.call, self.release)
        else:
            self.store(names)

    def abandon(self) -> None:
        self.release()

    def store(self, names: tuple[str, ...]) -> None:
        try:
            _store(self.call, self.frozen, names, self.timeout)
        finally:
            self.release()

    def _final_vary(self, response: Response) -> tuple[str, ...] | None:
        """The final response's ``Vary`` names, or ``None`` if it must not be stored."""
        call = self.call
        # A 304 was made from the stored copy's own validators: the copy is the 200.
        status = self.status if response.status_code == 304 else response.status_code
        if status not in call.view.statuses_for(call.state):
            return None
        if http.refusal(response, private=call.private, touched_session=False) is not None:
            return None
        return http.vary_names(response)


def refuse(call: Call, release: Release) -> None:
    """Mark the key "pass" (the view's responses cannot be stored), then end the claim."""
    try:
        if call.view.cache.redefined:
            _write_through_methods(call, call.key, responses.freeze_pass(), PASS_SECONDS)
        else:
            save(call.state.store, call.lookup(call.key), responses.freeze_pass(), PASS_SECONDS,
                 None)  # fmt: skip
    finally:
        release()


def _store(call: Call, frozen: tuple[Any, ...], names: tuple[str, ...], timeout: Any) -> None:
    if call.private:  # the key already holds every credential: no variant per cookie
        covered = {"cookie", *(name.lower() for name in call.settings.identity_headers)}
        names = tuple(name for name in names if name not in covered)
    protect = call.settings.protect
    store = call.state.store

    def keep(store_key: str, value: Any) -> None:
        if call.view.cache.redefined:
            _write_through_methods(call, store_key, value, timeout)
            return
        save(store, call.lookup(store_key), value, timeout, None, stale=protect.stale,
             keep=protect.fail_safe)  # fmt: skip

    key = call.key
    if names:
        keep(key, responses.freeze_vary(names))
        key = variant_key(key, names)
    keep(key, frozen)


# -- through a Cache subclass's own get/set (Flask-Caching's flow, see routed.py) ---------


def read_through_methods(call: Call, key: str) -> Entry | None:
    """The stored ``(value, created)`` read with the subclass's ``get`` (fresh or nothing:
    no stale window on this path)."""
    try:
        found = call.view.cache.get(routed.view_key(call.state.store, key, call.stamps))
    except BackendError:  # the stamps could not be read (already counted and logged)
        found = None
    if type(found) is tuple and len(found) == 2 and type(found[1]) is float:
        next(call.settings.hits)
        return Entry(found[0], found[1])
    next(call.settings.misses)
    return None


def _write_through_methods(call: Call, key: str, value: Any, timeout: Any) -> None:
    store = call.state.store
    try:
        stamped = routed.view_key(store, key, call.stamps)
    except BackendError:
        return
    call.view.cache.set(stamped, (value, float(store.clock())), timeout)


def variant_key(key: str, names: tuple[str, ...]) -> str:
    return f"{key}:vary:{http.variant(request, names)}"  # a proxy: also used from refreshes

"""Storing a cached view's response: judged on the final response when it is sent.

The copy is taken when the view returns (:func:`prepare`) and written when the response
leaves (:class:`PendingStore`, a :mod:`flask_stash.views.requestend` task): only if the final
response, after every ``after_request`` handler and the session save, passes the HTTP
rules, under the variant its final ``Vary`` names, through the call's pipeline ticket
(version stamps, jitter, stale window). A refused response ends the ticket as "pass"
(hit-for-pass). With a ``Cache`` subclass that redefines ``get``/``set``, pages are read
and written through those methods, as Flask-Caching's decorators do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Response, request

from flask_stash import routed
from flask_stash.core.api import MISS, Miss
from flask_stash.core.entry import Entry
from flask_stash.core.pipeline import PASS_VALUE, Ticket
from flask_stash.core.stampede import PASS_SECONDS
from flask_stash.views import http, responses

if TYPE_CHECKING:
    from flask_stash.views.serving import Call


def prepare(
    call: Call, value: Any, response: Response, touched: bool, ticket: Ticket
) -> PendingStore | None:
    """The copy of ``response`` to store when the request ends, or ``None`` (refused)."""
    view = call.view
    refused = (
        not view.accepts(value)
        or response.status_code not in view.statuses_for(call.state)
        or http.refusal(response, private=call.private, touched_session=touched) is not None
    )
    body = None if refused else responses.buffered_body(response, call.settings.max_buffer)
    if body is None:
        refuse(call, ticket)
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
                        ticket)  # fmt: skip


@dataclass
class PendingStore:
    """A view's response waiting for the end of its request to be judged and stored."""

    call: Call
    frozen: tuple[Any, ...]
    status: int
    #: The ``Vary`` names of the view's own response (a background refresh stores by them).
    vary: tuple[str, ...]
    timeout: Any
    ticket: Ticket

    def finish(self, response: Response) -> None:
        names = self._final_vary(response)
        if names is None:
            refuse(self.call, self.ticket)
        else:
            self.store(names)

    def abandon(self) -> None:
        self.ticket.abandon()

    def store(self, names: tuple[str, ...]) -> None:
        try:
            _store(self.call, self.frozen, names, self.timeout, self.ticket)
        finally:
            self.ticket.stored()  # no-op if already ended

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


def refuse(call: Call, ticket: Ticket) -> None:
    """End the ticket as "pass" (the view's response cannot be stored)."""
    if not call.view.cache.redefined:
        ticket.refuse()
        return
    try:
        if ticket.stores:
            _write_through_methods(call, call.key, PASS_VALUE, PASS_SECONDS)
    finally:
        ticket.refuse(marker=False)


def _store(
    call: Call, frozen: tuple[Any, ...], names: tuple[str, ...], timeout: Any, ticket: Ticket
) -> None:
    if call.private:  # the key already holds every credential: no variant per cookie
        covered = {"cookie", *(name.lower() for name in call.settings.identity_headers)}
        names = tuple(name for name in names if name not in covered)

    def keep(store_key: str, value: Any) -> bool:
        if call.view.cache.redefined:
            _write_through_methods(call, store_key, value, timeout)
            return True
        return isinstance(ticket.write(call.lookup(store_key).key, value, timeout), bytes)

    key = call.key
    if names:
        if not keep(key, responses.freeze_vary(names)):
            return  # invalidated meanwhile, or the backend failed: no orphan variant
        key = variant_key(key, names)
    keep(key, frozen)


# -- through a Cache subclass's own get/set (Flask-Caching's flow, see routed.py) ---------


def read_through_methods(call: Call, key: str) -> Entry | Miss:
    """The stored ``(value, created)`` read with the subclass's ``get`` (fresh or nothing:
    no stale window on this path)."""
    stamped = routed.view_key(call.state.store, key, call.stamps)
    found = None if stamped is None else call.view.cache.get(stamped)
    if type(found) is tuple and len(found) == 2 and type(found[1]) is float:
        return Entry(found[0], found[1])
    return MISS


def _write_through_methods(call: Call, key: str, value: Any, timeout: Any) -> None:
    store = call.state.store
    stamped = routed.view_key(store, key, call.stamps)
    if stamped is None:  # the stamps could not be read: store nothing rather than guess
        return
    call.view.cache.set(stamped, (value, float(store.clock())), timeout)


def variant_key(key: str, names: tuple[str, ...]) -> str:
    return f"{key}:vary:{http.variant(request, names)}"  # a proxy: also used from refreshes

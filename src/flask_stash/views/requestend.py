"""Work that waits for a request's final response: after ``after_request`` handlers ran
and the session was saved, when ``Set-Cookie`` and ``Vary`` are finally known.

A cached view's miss returns its response to Flask with tasks attached (:func:`defer`):
the response's class is swapped for a subclass whose WSGI call first gives every task the
response as the client receives it, headers final, then sends it as usual. Requests
without tasks (every hit of a shared page, every other route) pay nothing: no signal
receiver, no teardown function.

If that call never happens, the tasks are abandoned (nothing is stored, as nothing is
known to be storable, and claims on keys are released): at once when the request fails
(Flask's ``got_request_exception``, sent only then: an ``after_request`` handler raised),
otherwise when the request context is garbage (an ``after_request`` handler replaced the
response object, or the view was called directly inside a request context).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from flask import Flask, Response, got_request_exception
from flask.globals import _cv_request

logger = logging.getLogger("flask_stash")
_TASKS = "_flask_stash_tasks"
_CLAIMS = "_flask_stash_claims"
_PENDING = "_flask_stash_pending"  # on the request context: the task lists of its responses
_INSTALLED = "flask-stash-request-end"
_sending_classes: dict[type[Response], type[Response]] = {}


class Task(Protocol):
    def finish(self, response: Response) -> None:
        """Called once, with the final response, just before it is sent."""

    def abandon(self) -> None:
        """Called instead of :meth:`finish` when the response is never sent."""


def install(app: Flask) -> None:
    """Abandon a failed request's tasks at once (connected once per app, at ``init_app``)."""
    if not app.extensions.get(_INSTALLED):
        app.extensions[_INSTALLED] = True
        got_request_exception.connect(_failed, app, weak=False)


def defer(response: Response, task: Task, *, holds_claim: bool = False) -> None:
    """Run ``task.finish(final response)`` when ``response`` is sent.

    ``holds_claim``: the task must be abandoned if the response is never sent (it
    releases a claim on a key); other tasks (marking a hit as private) are simply dropped.
    """
    tasks: list[Task] | None = response.__dict__.get(_TASKS)
    if tasks is None:
        tasks = response.__dict__[_TASKS] = []
        response.__class__ = _sending_class(type(response))
    tasks.append(task)
    context = _cv_request.get(None)
    if holds_claim and context is not None:
        pending: list[list[Task]] = context.__dict__.setdefault(_PENDING, [])
        if not any(listed is tasks for listed in pending):
            pending.append(tasks)
            weakref.finalize(context, _abandon, tasks)  # the last resort


def _failed(sender: Flask, **_: Any) -> None:
    context = _cv_request.get(None)
    for tasks in context.__dict__.pop(_PENDING, ()) if context is not None else ():
        _abandon(tasks)


def claim(key: str) -> None:
    """Note that the current request computes ``key`` (until :func:`unclaim`)."""
    context = _cv_request.get()
    claims: set[str] | None = getattr(context, _CLAIMS, None)
    if claims is None:
        claims = set()
        setattr(context, _CLAIMS, claims)
    claims.add(key)


def unclaim(key: str) -> None:
    claims: set[str] = getattr(_cv_request.get(None), _CLAIMS, None) or set()
    claims.discard(key)


def holds(key: str) -> bool:
    """Whether the current request already computes ``key`` (a view re-entering itself)."""
    return key in (getattr(_cv_request.get(None), _CLAIMS, None) or ())


def _sending_class(base: type[Response]) -> type[Response]:
    """``base`` with a WSGI call that finishes the response's tasks first (one per class)."""
    found = _sending_classes.get(base)
    if found is not None:
        return found

    def __call__(self: Response, environ: Any, start_response: Any) -> Iterable[bytes]:
        tasks: list[Task] = self.__dict__.get(_TASKS) or []
        steps = [_bind(task.finish, self) for task in tasks]
        tasks.clear()  # finished: the safety net finds nothing left
        _run_all(steps)
        return base.__call__(self, environ, start_response)

    sending = type(base.__name__, (base,), {"__call__": __call__, "__module__": base.__module__})
    _sending_classes[base] = sending
    return sending


def _bind(step: Callable[[Response], None], response: Response) -> Callable[[], None]:
    return lambda: step(response)


def _abandon(tasks: list[Task]) -> None:
    steps = [task.abandon for task in tasks]
    tasks.clear()
    _run_all(steps)


def _run_all(steps: list[Callable[[], None]]) -> None:
    """Run every step, whatever the others do (they release locks); a warning raised as
    an error (the key audit under ``-W error``) is raised once all have run."""
    escalated = [warning for step in steps if (warning := _step(step)) is not None]
    if escalated:
        raise escalated[0]


def _step(step: Callable[[], None]) -> Warning | None:
    try:
        step()
    except Warning as warning:
        return warning
    except Exception:
        logger.exception("finishing a cached view's work at the end of the request failed")
    return None

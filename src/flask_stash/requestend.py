"""Work that waits for a request's final response: after ``after_request`` handlers ran
and the session was saved, when ``Set-Cookie`` and ``Vary`` are finally known.

A cached view's miss hands its response to Flask and registers a task here; Flask's
``request_finished`` signal then gives every task the response the client receives. The
teardown that follows every request (and every pushed test request context) abandons
whatever is left: no final response was seen (an ``after_request`` handler failed, or the
view was called directly inside a request context), so nothing is known to be storable.

Tasks live on the request context, not on the request object: a copied context (a
background refresh) shares the request but must not finish the original's tasks.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from flask import Flask, Response, request_finished
from flask.globals import _cv_request

logger = logging.getLogger("flask_stash")
_TASKS = "_flask_stash_tasks"
_CLAIMS = "_flask_stash_claims"
_INSTALLED = "flask-stash-request-end"


class Task(Protocol):
    def finish(self, response: Response) -> None:
        """Called once, with the final response."""

    def abandon(self) -> None:
        """Called instead of :meth:`finish` when the request ended without one."""


def install(app: Flask) -> None:
    """Connect the request-end hooks to ``app`` (once per app, at ``init_app``)."""
    if app.extensions.get(_INSTALLED):
        return
    app.extensions[_INSTALLED] = True
    request_finished.connect(_finished, app, weak=False)
    app.teardown_request(_teardown)


def defer(task: Task) -> None:
    """Run ``task.finish`` when the current request ends."""
    context = _cv_request.get()
    tasks: list[Task] | None = getattr(context, _TASKS, None)
    if tasks is None:
        tasks = []
        setattr(context, _TASKS, tasks)
    tasks.append(task)


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


def _finished(sender: Flask, response: Response, **_: Any) -> None:
    _run_all([functools.partial(task.finish, response) for task in _take()])


def _teardown(error: BaseException | None) -> None:
    _run_all([task.abandon for task in _take()])


def _take() -> list[Task]:
    context = _cv_request.get(None)
    tasks: list[Task] = getattr(context, _TASKS, None) or []
    if tasks:
        setattr(context, _TASKS, None)
    return tasks


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

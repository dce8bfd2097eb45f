"""Work that waits for a request's final response: after ``after_request`` handlers ran
and the session was saved, when ``Set-Cookie`` and ``Vary`` are finally known.

A cached view's miss hands its response to Flask and registers a task here; Flask's
``request_finished`` signal then gives every task the response the client receives. The
teardown that follows every request (and every pushed test request context) finishes
whatever is left with ``None``: no final response was seen (a view called directly in a
request context), or an error ended the request.

Tasks live on the request context, not on the request object: a copied context (a
background refresh) shares the request but must not finish the original's tasks.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from flask import Flask, Response, request_finished
from flask.globals import _cv_request

logger = logging.getLogger("flask_stash")
_TASKS = "_flask_stash_tasks"
_INSTALLED = "flask-stash-request-end"


class Task(Protocol):
    @property
    def key(self) -> str | None:
        """The cache key the task will write, if any (see :func:`holds`)."""

    def finish(self, response: Response | None) -> None:
        """Called once: with the final response, or ``None`` when none was seen."""


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


def holds(key: str) -> bool:
    """Whether the current request already computes ``key`` (a view re-entering itself)."""
    context = _cv_request.get(None)
    tasks: list[Task] = getattr(context, _TASKS, None) or []
    return any(task.key == key for task in tasks)


def _finished(sender: Flask, response: Response, **_: Any) -> None:
    _run(response)


def _teardown(error: BaseException | None) -> None:
    _run(None)


def _run(response: Response | None) -> None:
    context = _cv_request.get(None)
    tasks: list[Task] | None = getattr(context, _TASKS, None)
    if not tasks:
        return
    setattr(context, _TASKS, None)
    for task in tasks:
        _finish(task, response)


def _finish(task: Task, response: Response | None) -> None:
    try:
        task.finish(response)
    except Exception:  # one task's failure must not keep the others (their locks) held
        logger.exception("finishing a cached view's work at the end of the request failed")

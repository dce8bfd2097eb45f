"""Storing finished view responses (status, headers, body) and replaying them."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, abort

_RESPONSE = "flask-stash/response"
_ABORT = "flask-stash/abort"


class CachedResponse(Response):
    """A response that sets its own cache timeout (Flask-Caching's ``CachedResponse``).

    Return ``CachedResponse(response, timeout)`` from a ``@cache.cached`` view to store it
    for ``timeout`` seconds instead of the decorator's timeout.
    """

    timeout: float | None = None

    def __init__(self, response: Response, timeout: Any) -> None:
        from flask_stash.config import normalize_timeout

        # Adopt the existing response's state rather than rebuilding it.
        self.__dict__ = response.__dict__
        self.timeout = None if timeout is None else normalize_timeout(timeout)


def freeze(response: Response) -> tuple[Any, ...]:
    """A storable copy of a finished response: status, headers and the whole body."""
    body = response.get_data()
    if response.is_streamed:
        response.set_data(body)  # the stream is consumed: serve the buffered copy
    # Tuples all the way down: an immutable entry is decoded once, then shared (see Store).
    headers = tuple(response.headers.items())
    return (_RESPONSE, response.status_code, headers, body)


def freeze_abort(error: HTTPException) -> tuple[Any, ...]:
    return (_ABORT, error.code, error.description)


def is_frozen(value: Any) -> bool:
    return type(value) is tuple and len(value) >= 3 and value[0] in (_RESPONSE, _ABORT)


def thaw(app: Flask, value: tuple[Any, ...]) -> Response:
    """The response (or raised HTTP error) a frozen value stands for."""
    if value[0] == _ABORT:
        abort(value[1], value[2])
    _, status, headers, body = value
    return app.response_class(body, status=status, headers=list(headers))

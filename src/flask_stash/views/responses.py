"""Storing finished view responses (status, headers, body) and replaying them."""

from __future__ import annotations

import itertools
from typing import Any

from flask import Flask, Response
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, abort, default_exceptions

_RESPONSE = "flask-stash/response"
_ABORT = "flask-stash/abort"
_VARY = "flask-stash/vary"
_PER_HIT = frozenset({"age", "x-cache"})


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


def buffered_body(response: Response, limit: int) -> bytes | None:
    """The whole body, or ``None`` if the response streams and may not be buffered.

    A streamed body is passed through untouched (its first byte goes out as soon as the
    view yields it) unless the view opted in to buffering with ``limit`` > 0; an event
    stream (``text/event-stream``) never is, as it may never end. Below the limit, the
    response is switched to the buffered copy; above it, the chunks read so far are put
    back in front of the rest of the stream, so the client still gets everything, uncached.
    """
    if not response.is_streamed:
        return response.get_data()
    if limit <= 0 or response.mimetype == "text/event-stream":
        return None
    chunks: list[bytes] = []
    size = 0
    stream = iter(response.iter_encoded())
    for chunk in stream:
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            response.response = itertools.chain(chunks, stream)
            return None
    body = b"".join(chunks)
    response.set_data(body)
    return body


def freeze(response: Response, body: bytes | None = None) -> tuple[Any, ...]:
    """A storable copy of a finished response: status, headers and the whole body."""
    if body is None:
        body = response.get_data()
    # Tuples all the way down: an immutable entry is decoded once, then shared (see Store).
    # Hit-time headers are left out: each hit adds its own (see ``append_headers``).
    headers = tuple(
        (name, value) for name, value in response.headers.items() if name.lower() not in _PER_HIT
    )
    return (_RESPONSE, response.status_code, headers, body)


def freeze_vary(names: tuple[str, ...]) -> tuple[Any, ...]:
    """The marker stored under a view's base key when its responses vary on headers."""
    return (_VARY, names, None)


def vary_of(value: Any) -> tuple[str, ...] | None:
    if type(value) is not tuple or value[:1] != (_VARY,) or len(value) != 3:
        return None
    names = value[1]
    return names if type(names) is tuple and all(type(n) is str for n in names) else None


def is_replayable(value: Any) -> bool:
    """Whether ``value`` is a frozen response or ``abort()`` that :func:`thaw` can replay.

    An unsigned cache entry may have been written by anyone who can reach the backend;
    a hit on one of the wrong shape must be a miss, not a 500.
    """
    if type(value) is not tuple or not value:
        return False
    if value[0] == _RESPONSE:
        return (
            len(value) == 4
            and type(value[1]) is int
            and type(value[2]) is tuple
            and type(value[3]) is bytes
            and all(
                type(h) is tuple and len(h) == 2 and type(h[0]) is type(h[1]) is str
                for h in value[2]
            )
        )
    return (
        value[0] == _ABORT
        and len(value) == 3
        and value[1] in default_exceptions
        and (value[2] is None or type(value[2]) is str)
    )


def freeze_abort(error: HTTPException) -> tuple[Any, ...]:
    return (_ABORT, error.code, error.description)


def is_frozen(value: Any) -> bool:
    return type(value) is tuple and len(value) >= 3 and value[0] in (_RESPONSE, _ABORT)


def is_view_only(value: Any) -> bool:
    """Whether ``value`` belongs to a routed view only (a frozen response or a ``Vary``
    marker): a plain function cached under the same key must not return it."""
    return (is_frozen(value) and value[0] == _RESPONSE) or vary_of(value) is not None


def thaw(app: Flask, value: Any) -> Response:
    """The response (or raised HTTP error) a frozen value stands for."""
    if value[0] == _ABORT:
        abort(value[1], value[2])
    _, status, headers, body = value
    restored = Headers()
    if type(getattr(restored, "_list", None)) is list:
        # The headers were validated when this response was first built: restoring the
        # list directly skips re-validating each one, the largest cost of a hit.
        restored._list = list(headers)
    else:  # pragma: no cover - a Headers implementation without its usual list
        restored.extend(headers)
    # Given a Headers object that has a Content-Type, the constructor adds nothing.
    response: Response = app.response_class([body], status=status, headers=restored)
    return response


def append_headers(response: Response, pairs: list[tuple[str, str]]) -> None:
    """Add headers a thawed response cannot already have (``Age``, ``X-Cache``).

    They were stripped when the response was frozen, so appending is correct, and it skips
    the search-and-replace of ``Headers.__setitem__`` on every hit.
    """
    stored = response.headers
    raw = getattr(stored, "_list", None)
    if type(raw) is list:
        raw.extend(pairs)
    else:  # pragma: no cover - a Headers implementation without its usual list
        for name, value in pairs:
            stored[name] = value

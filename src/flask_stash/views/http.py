"""HTTP rules for cached views: what may be stored, how variants are keyed, and the
caching headers of hits (``ETag``/``304``, ``Last-Modified``, ``Age``, ``X-Cache``).

The rules follow Django's cache middleware and RFC 9111: only ``GET``/``HEAD`` are served
from the cache, only ``GET`` without ``Range`` stores (a ``HEAD`` reads the ``GET`` entry and
never stores its empty body), and a response that sets a cookie, says ``no-store``,
``no-cache``, ``max-age=0`` or ``Pragma: no-cache``, answers a range (206), or was built
while the session was read is never stored; ``Cache-Control: private`` and session reads
are allowed only for ``private=True`` views, which are keyed per user.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from flask import Request, Response
from flask.globals import request_ctx
from flask.sessions import NullSession
from werkzeug.datastructures import Headers
from werkzeug.http import http_date, parse_set_header

from flask_stash.views import privacy
from flask_stash.views.responses import append_headers

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
X_CACHE = "X-Cache"


def request_is_cacheable(request: Request, honor_no_cache: bool) -> bool:
    """Whether this request may be answered from (and stored in) the cache."""
    if request.method not in CACHEABLE_METHODS:
        return False
    return not (honor_no_cache and request.cache_control.no_cache)


def request_may_store(request: Request) -> bool:
    """Whether a miss of this request may store its response.

    ``HEAD`` answers have no body and ``Range`` answers hold part of one: either would be
    replayed to a later plain ``GET``.
    """
    return request.method == "GET" and "HTTP_RANGE" not in request.environ


def session_touched() -> bool:
    """Whether the view (or anything before it) read or wrote the Flask session.

    Session implementations that cannot tell report ``accessed = True`` (Flask's
    ``SessionMixin`` default), which is the safe answer.
    """
    # Read the session off the request context without going through ``session``: since
    # Flask 3.1.3 that very access marks the session as accessed.
    context = vars(request_ctx._get_current_object())  # type: ignore[attr-defined]
    current = context.get("_session", context.get("session"))
    if current is None or isinstance(current, NullSession):  # no secret key: no session
        return False
    return bool(getattr(current, "accessed", True) or getattr(current, "modified", False))


def refusal(response: Response, *, private: bool, touched_session: bool) -> str | None:
    """Why ``response`` must not be stored, or ``None`` if it may be."""
    headers = response.headers
    if "Set-Cookie" in headers:
        return "it sets a cookie"
    if response.status_code == 206 or "Content-Range" in headers:
        return "it answers a range request"
    if "Cache-Control" in headers or "Pragma" in headers:
        reason = _control_refusal(response, private)
        if reason is not None:
            return reason
    if touched_session and not private:
        return "it was built while the session was read (use private=True to cache per user)"
    if "*" in vary_names(response):
        return "Vary: *"
    if response.direct_passthrough:
        return "it streams a file"
    return None


def _control_refusal(response: Response, private: bool) -> str | None:
    control = response.cache_control
    if control.no_store:
        return "Cache-Control: no-store"
    if control.no_cache:
        return "Cache-Control: no-cache"
    if control.max_age == 0 or control.s_maxage == 0:
        return "Cache-Control: max-age=0"
    if control.private and not private:
        return "Cache-Control: private"
    if "no-cache" in response.headers.get("Pragma", "").lower():
        return "Pragma: no-cache"
    return None


def vary_names(response: Response) -> tuple[str, ...]:
    """The request headers the response varies on, lower-cased and sorted."""
    names = parse_set_header(response.headers.get("Vary", ""))
    return tuple(sorted({name.strip().lower() for name in names if name.strip()}))


def variant(request: Request, names: Iterable[str]) -> str:
    """A digest of the request's values for ``names`` (the response's ``Vary`` headers)."""
    values = "\n".join(f"{name}:{request.headers.get(name, '')}" for name in names)
    return hashlib.sha256(values.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def query_pairs(
    pairs: Iterable[tuple[str, str]], allow: Iterable[str] | None, deny: Iterable[str]
) -> list[tuple[str, str]]:
    """Query arguments kept in the key: allowed (if a list is given) and not denied.

    Patterns are shell-style (``utm_*``), so tracking parameters cannot fragment the cache.
    """
    allow = list(allow) if allow is not None else None
    deny = list(deny)
    kept = [
        (k, v)
        for k, v in pairs
        if (allow is None or any(fnmatchcase(k, p) for p in allow))
        and not any(fnmatchcase(k, p) for p in deny)
    ]
    # Sorted by name only (a stable sort): ``?a=1&b=2`` and ``?b=2&a=1`` share a key, but
    # the order of a repeated argument is meaningful (``getlist`` returns it) and is kept.
    return sorted(kept, key=lambda pair: pair[0])


def add_validators(response: Response, body: bytes, now: float) -> None:
    """A strong ``ETag`` (from the body) and ``Last-Modified``, unless the view set them."""
    if "ETag" not in response.headers:
        response.set_etag(hashlib.sha256(body).hexdigest()[:40])
    if "Last-Modified" not in response.headers:
        response.headers["Last-Modified"] = http_date(now)


def add_freshness(
    response: Response, remaining: float | None, stale: float, private: bool = False
) -> None:
    """``Cache-Control: public, max-age=N`` from the entry's remaining time, if unset.

    Per-user pages say ``private`` instead: a browser may keep them, a proxy must not.
    """
    if "Cache-Control" in response.headers or remaining is None:
        return
    value = f"{'private' if private else 'public'}, max-age={int(remaining)}"
    if stale > 0:
        value += f", stale-while-revalidate={int(stale)}"
    response.headers["Cache-Control"] = value


def finish_hit(response: Response, request: Request, age: float, label: str | None) -> Response:
    """``Age`` and ``X-Cache`` on a hit, then ``304 Not Modified`` if the client has it."""
    pairs = [("Age", str(int(age)))]
    if label:
        pairs.append((X_CACHE, label))
    append_headers(response, pairs)
    return conditional(response, request)


def conditional(response: Response, request: Request) -> Response:
    """``304 Not Modified`` (no body) when the client's validators match.

    Werkzeug's ``make_conditional`` parses dates and ranges on every call; most requests
    carry no validator, so it only runs when one is there.
    """
    environ = request.environ
    if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ:
        response.make_conditional(request)
    return response


def mark_private(response: Response, request: Request, identity_headers: Iterable[str]) -> None:
    """Say that ``response`` is one user's: ``Cache-Control: private`` (never ``public``)
    and ``Vary`` on the credentials the request carried, so no shared cache keeps it.

    Runs on every response of a private view, hits included, so it reads the header
    strings in one pass and writes only what is missing (a stored page already has both).
    """
    headers = response.headers
    control, vary = _control_and_vary(headers)
    directives = [d.strip() for d in control.split(",") if d.strip()]
    names = {d.split("=", 1)[0].strip().lower() for d in directives}
    if "private" not in names or "public" in names:
        kept = [d for d in directives if d.split("=", 1)[0].strip().lower() != "public"]
        headers["Cache-Control"] = ", ".join(kept if "private" in names else ["private", *kept])
    environ = request.environ
    wanted = ["Cookie"]
    wanted += [name for name in identity_headers if privacy.environ_key(name) in environ]
    present = {name.strip().lower() for name in vary.split(",")}
    missing = [name for name in wanted if name.lower() not in present]
    if missing:
        headers["Vary"] = ", ".join([vary, *missing] if vary else missing)


def _control_and_vary(headers: Headers) -> tuple[str, str]:
    """The ``Cache-Control`` and ``Vary`` values (joined if repeated), in one pass."""
    control, vary = [], []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "cache-control":
            control.append(value)
        elif lowered == "vary":
            vary.append(value)
    return ", ".join(control), ", ".join(vary)


def mark(response: Any, label: str | None) -> None:
    if label and isinstance(response, Response):
        response.headers[X_CACHE] = label

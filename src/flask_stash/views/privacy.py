"""Who a per-user (``private=True``) page is for.

A private entry's key covers every credential the request carries: all its cookies (a
session cookie, Flask-Login's ``remember_token``, any other login cookie), the
identity headers (``Authorization`` by default, where Flask-Login's ``request_loader``
and token schemes read), and the view's ``private_key()`` when it has one. Two requests
share a private entry only if they carry the same credentials, so a visitor with none can
never receive a page built for someone who had one. Cookies that identify nobody (analytics)
can be left out with ``CACHE_VIEW_PRIVATE_IGNORE_COOKIES``, so they do not fragment the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from flask import Request

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Identity:
    """One request's identity: the key suffix, and the stamp key of ``private_key``'s user."""

    suffix: str
    #: The version stamp of this user's pages (``None`` without ``private_key``).
    user_stamp: str | None


def identify(
    request: Request,
    base_key: str,
    private_key: Callable[[], object] | None,
    ignored_cookies: tuple[str, ...],
    identity_headers: tuple[str, ...],
) -> Identity:
    """The identity of ``request`` (``private_key`` errors propagate to the caller)."""
    user = None if private_key is None else str(private_key())
    credentials = _credentials(request, ignored_cookies, identity_headers)
    if user is None and not credentials:
        return Identity(f":user:{ANONYMOUS}", None)
    digest = hashlib.sha256()
    if user is not None:
        digest.update(b"user\0" + user.encode("utf-8", "surrogatepass") + b"\0")
    for part in credentials:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    stamp = None if user is None else user_stamp_key(base_key, user)
    return Identity(f":user:{digest.hexdigest()[:40]}", stamp)


def all_users_stamp_key(base_key: str) -> str:
    """The version stamp shared by every user's entry of one page."""
    return f"{base_key}:users"


def user_stamp_key(base_key: str, user: object) -> str:
    """The version stamp of one user's entries of one page (``user``: a ``private_key()``)."""
    digest = hashlib.sha256(str(user).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{base_key}:users:{digest}"


def _credentials(
    request: Request, ignored_cookies: tuple[str, ...], identity_headers: Iterable[str]
) -> list[str]:
    """The request's credentials, read from the WSGI environ (the hot path of every
    private hit: no header or cookie objects are built)."""
    environ = request.environ
    parts = []
    if ignored_cookies:
        parts = [
            f"cookie:{name}={value}"
            for name, value in sorted(request.cookies.items(multi=True))
            if not any(fnmatchcase(name, pattern) for pattern in ignored_cookies)
        ]
    elif environ.get("HTTP_COOKIE"):
        parts = [f"cookies:{environ['HTTP_COOKIE']}"]
    for name in identity_headers:
        value = environ.get(environ_key(name))
        if value is not None:
            parts.append(f"header:{name.lower()}={value}")
    return parts


def environ_key(header: str) -> str:
    """The WSGI environ key of a request header (``Authorization`` -> ``HTTP_AUTHORIZATION``)."""
    return "HTTP_" + header.upper().replace("-", "_")

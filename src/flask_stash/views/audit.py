"""The key audit: which request inputs did a cached view read that its key ignores?

A view cached on its path that reads ``request.args['page']``, an ``Accept-Language``
header, a cookie, the session, ``request.host`` or ``g.user``, without those being part of
the key (``query_string``, ``Vary``, ``private=True``), serves one visitor's page to the
next. With ``CACHE_KEY_AUDIT = True`` in debug mode, every miss of a cached view runs it
while recording what it reads, and warns once per view and input (``KeyAuditWarning``, and
the ``flask_stash`` logger).

The recording itself is :mod:`flask_stash.views.auditrecord`; this module judges what was
read against what the key covers, and reports.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

from flask_stash.views.auditrecord import (
    CLIENT,
    EXTERNAL_URL,
    HOST,
    QUERY,
    SCHEME,
    Reads,
    recording,
)

__all__ = ["Auditor", "KeyAuditWarning", "Keyed", "Reads", "recording", "unkeyed"]

logger = logging.getLogger("flask_stash")


class KeyAuditWarning(UserWarning):
    """A cached view read a request input that its cache key does not include."""


@dataclass
class Keyed:
    """What a view's cache key covers."""

    query: bool
    vary: tuple[str, ...]
    private: bool


def unkeyed(reads: Reads, keyed: Keyed, session_read: bool) -> list[str]:
    """Human-readable inputs the view read that its key does not include."""
    found = []
    if reads.args and not keyed.query:
        found.append(f"query arguments {sorted(reads.args)} (use query_string=True)")
    headers = _unkeyed_headers(reads.headers, keyed)
    if headers:
        found.append(f"headers {headers} (add them to the response's Vary header)")
    if reads.cookies and not keyed.private:
        found.append(f"cookies {sorted(reads.cookies)} (use private=True)")
    if session_read and not keyed.private:
        found.append("the session (responses are not stored; private=True caches per user)")
    found.extend(_unkeyed_inputs(reads, keyed))
    if reads.environ:
        found.append(
            f"WSGI environ keys {sorted(reads.environ)} (the key has none of them: include "
            "what the page depends on in a key_prefix callable or make_cache_key)"
        )
    if reads.g and not keyed.private:
        found.append(
            f"attributes of flask.g set before the view {sorted(reads.g)} (before_request "
            "hooks usually set them from the session or a token: use private=True)"
        )
    return found


def _unkeyed_headers(headers: set[str], keyed: Keyed) -> list[str]:
    names = headers - set(keyed.vary) - {"host"}  # the Host header is judged as the host
    if keyed.private:  # the per-user key holds every cookie
        names.discard("cookie")
    return sorted(names)


def _unkeyed_inputs(reads: Reads, keyed: Keyed) -> list[str]:
    how = {kind: set(ways) for kind, ways in reads.inputs.items()}
    if "host" in reads.headers:
        how.setdefault(HOST, set()).add("request.headers['Host']")
    covered = {QUERY: keyed.query, HOST: "host" in keyed.vary, SCHEME: False, CLIENT: False}
    return [
        f"{_INPUT_NAMES[kind]} ({_listed(how[kind])}){_advice(kind, how[kind])}"
        for kind in (QUERY, HOST, SCHEME, CLIENT)
        if how.get(kind) and not covered[kind]
    ]


_INPUT_NAMES = {
    QUERY: "the query string",
    HOST: "the host",
    SCHEME: "the URL scheme",
    CLIENT: "the client address",
}


def _advice(kind: str, how: set[str]) -> str:
    if kind == QUERY:
        return " (use query_string=True)"
    if kind == SCHEME:
        return (
            ": http and https requests share one entry (serve one scheme only, pass "
            "_scheme= to url_for, or include request.scheme in a key_prefix callable)"
        )
    if kind == CLIENT:
        return (
            ": every visitor would get the first visitor's value (read it outside the "
            "cached view, or include it in a key_prefix callable)"
        )
    advice = ": a request with a forged Host header would be stored and served to everyone ("
    if EXTERNAL_URL in how:
        advice += "set SERVER_NAME so that external URLs never come from the request, "
    return advice + (
        "send Vary: Host, or include request.host in a key_prefix callable; TRUSTED_HOSTS "
        "limits the host names accepted, not their port)"
    )


def _listed(how: set[str]) -> str:
    return ", ".join(sorted(how))


class Auditor:
    """Warns once per view and finding."""

    def __init__(self) -> None:
        self._said: set[tuple[str, str]] = set()

    def report(self, view: str, findings: list[str]) -> None:
        for finding in findings:
            if (view, finding) in self._said:
                continue
            self._said.add((view, finding))
            message = f"cached view {view} read {finding}; its cache key ignores them"
            logger.warning("%s", message)
            warnings.warn(message, KeyAuditWarning, stacklevel=2)

"""The key audit: which request inputs did a cached view read that its key ignores?

A view cached on its path that reads ``request.args['page']``, an ``Accept-Language``
header, a cookie or the session, without those being part of the key (``query_string``,
``Vary``, ``private=True``), serves one visitor's page to the next. With
``CACHE_KEY_AUDIT = True`` in debug mode, every miss of a cached view runs it with
recording wrappers around ``request.args``, ``request.headers`` and ``request.cookies``
and warns once per view and input (``KeyAuditWarning``, and the ``flask_stash`` logger).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Request
from werkzeug.datastructures import EnvironHeaders, ImmutableMultiDict

logger = logging.getLogger("flask_stash")
ALL = "*"  # the view iterated over the whole collection


class KeyAuditWarning(UserWarning):
    """A cached view read a request input that its cache key does not include."""


@dataclass
class Reads:
    """Names read from each request input during one view call."""

    args: set[str] = field(default_factory=set)
    headers: set[str] = field(default_factory=set)
    cookies: set[str] = field(default_factory=set)


class _RecordingMultiDict(ImmutableMultiDict[str, str]):
    seen: set[str]

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:  # type: ignore[override]
        self.seen.add(key)
        return super().get(key, default, type)

    def getlist(self, key: str, type: Any = None) -> Any:
        self.seen.add(key)
        return super().getlist(key, type)

    def __contains__(self, key: object) -> bool:
        self.seen.add(str(key))
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self.seen.add(ALL)
        return super().__iter__()

    def items(self, multi: bool = False) -> Any:
        self.seen.add(ALL)
        return super().items(multi)

    def to_dict(self, flat: bool = True) -> Any:
        self.seen.add(ALL)
        return super().to_dict(flat)  # type: ignore[call-overload]


class _RecordingHeaders(EnvironHeaders):
    seen: set[str]

    def _get_key(self, key: str) -> str:  # every lookup by name goes through here
        self.seen.add(key.lower())
        return super()._get_key(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        self.seen.add(ALL)
        return super().__iter__()


def _recorder(kind: type[_RecordingMultiDict], data: Any, seen: set[str]) -> Any:
    copy = kind(data.items(multi=True))
    copy.seen = seen
    return copy


@contextmanager
def recording(request: Request) -> Iterator[Reads]:
    """Record what the code inside reads from the request's args, headers and cookies."""
    reads = Reads()
    saved = {name: request.__dict__.get(name) for name in ("args", "cookies", "headers")}
    args = _recorder(_RecordingMultiDict, request.args, reads.args)
    cookies = _recorder(_RecordingMultiDict, request.cookies, reads.cookies)
    headers = _RecordingHeaders(request.environ)
    headers.seen = reads.headers
    request.__dict__.update(args=args, cookies=cookies, headers=headers)
    try:
        yield reads
    finally:
        for name, value in saved.items():
            if value is None:
                request.__dict__.pop(name, None)
            else:
                request.__dict__[name] = value


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
    headers = sorted(reads.headers - set(keyed.vary))
    if headers:
        found.append(f"headers {headers} (add them to the response's Vary header)")
    if reads.cookies and not keyed.private:
        found.append(f"cookies {sorted(reads.cookies)} (use private=True)")
    if session_read and not keyed.private:
        found.append("the session (responses are not stored; private=True caches per user)")
    return found


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

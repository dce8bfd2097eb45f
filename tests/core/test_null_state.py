"""The null backend: every write is accepted and forgotten, but a bad TTL is still a bug."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flask_stash.core.api import MISS
from flask_stash.core.backends.null import NullBackend

WRITES: dict[str, Callable[[NullBackend, Any], object]] = {
    "set": lambda backend, ttl: backend.set("k", b"v", ttl),
    "set_many": lambda backend, ttl: backend.set_many({"k": b"v"}, ttl),
    "add": lambda backend, ttl: backend.add("k", b"v", ttl),
}


def test_defaults_match_nullcache() -> None:
    # Flask-Caching callers read ``cache.cache.default_timeout`` off the backend.
    assert NullBackend().default_timeout == 300
    assert NullBackend(default_timeout=7).default_timeout == 7
    assert NullBackend(default_timeout=None).default_timeout is None


@pytest.mark.parametrize("write", WRITES.values(), ids=list(WRITES))
@pytest.mark.parametrize(
    ("ttl", "error"),
    [(0, ValueError), (-1, ValueError), (float("inf"), ValueError), ("5", TypeError)],
)
def test_every_write_rejects_a_bad_ttl(write: Any, ttl: Any, error: type[Exception]) -> None:
    # The same caller bug must fail under CACHE_TYPE="null" as under a real backend.
    with pytest.raises(error, match="ttl"):
        write(NullBackend(), ttl)


@pytest.mark.parametrize("write", WRITES.values(), ids=list(WRITES))
@pytest.mark.parametrize("ttl", [None, 1, 0.5])
def test_every_write_is_accepted_and_forgotten(write: Any, ttl: Any) -> None:
    backend = NullBackend()
    write(backend, ttl)
    assert backend.get("k") is MISS
    assert backend.get_many(["k", "k"]) == [MISS, MISS]


def test_add_always_wins_and_nothing_is_ever_deleted() -> None:
    backend = NullBackend()
    # add reports success every time: no other writer can hold the key.
    assert backend.add("k", b"v", None) is True
    assert backend.add("k", b"v", None) is True
    assert backend.delete("k") is False
    assert backend.delete_many(["k", "j"]) == 0
    assert backend.delete_many([]) == 0
    backend.clear()

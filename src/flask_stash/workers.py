"""One warning when an in-process cache ends up in several worker processes.

Each process has its own in-memory backend: under a pre-fork server with several workers,
nothing is shared and an invalidation in one worker never reaches the others (the
"multi-worker trap"). Flask-Caching's default caches nothing, so it never meets it; our
default is in-memory, so we say so, once, through ``logging.getLogger("flask_stash")``:

- at ``init_app``, when the app is loaded inside gunicorn (a worker, or the arbiter with
  ``--preload``) or uWSGI with more than one worker; only the first worker (gunicorn's
  ``age`` 1, uWSGI's worker 1) or the master speaks, so the warning appears once;
- at a fork after ``init_app`` (other pre-fork servers preloading the app), in the parent,
  when it has forked a second child.

A single process (the development server, one worker) stays silent.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("flask_stash")

DOCS = "https://github.com/flask-stash/flask-stash/blob/main/docs/backends.md#shared-backends"


@dataclass(frozen=True)
class PreFork:
    """What was learnt about the server: its name, its worker count, and whether this
    process is the one that should speak."""

    server: str
    workers: int
    speaks: bool


class _State:
    """Per-process: warned yet? how many children forked since an in-process cache?"""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.warned = False
        #: The in-process backend whose forks are counted (None: no fork counting).
        self.watching: str | None = None
        self.forks = 0
        self.precise = False  # the server was identified: fork counting is not needed


_state = _State()
_hooked = False


def in_process_name(backend: object) -> str | None:
    """The name of ``backend`` if it keeps entries in this process's memory, else ``None``."""
    from flask_stash.core.backends.cachelib import CachelibBackend
    from flask_stash.core.backends.memory import MemoryBackend

    if isinstance(backend, MemoryBackend):
        return "in-memory (SimpleCache)"
    if isinstance(backend, CachelibBackend) and type(backend.cache).__module__ == "cachelib.simple":
        return "cachelib SimpleCache"
    return None


def check_in_process_cache(backend_name: str) -> None:
    """Called by ``init_app`` for an in-process backend: warn now if the app runs under a
    known pre-fork server with several workers, and watch later forks otherwise."""
    found = detect_prefork()
    if found is not None:
        _state.precise = True
        if found.workers > 1 and found.speaks:
            _warn(f"{found.server} runs {found.workers} workers", backend_name)
        return
    _watch_forks(backend_name)


def detect_prefork() -> PreFork | None:
    """gunicorn or uWSGI, if this process belongs to one of them."""
    return _gunicorn() or _uwsgi()


def _gunicorn() -> PreFork | None:
    if "gunicorn.arbiter" not in sys.modules and "gunicorn.workers.base" not in sys.modules:
        return None
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

    # The app is built from the worker's init_process (or, with --preload, the arbiter's
    # setup): the object is on the call stack.
    frame = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, Worker):
            return PreFork("gunicorn", int(owner.cfg.workers), speaks=owner.age == 1)
        if isinstance(owner, Arbiter):
            return PreFork("gunicorn", int(owner.cfg.workers), speaks=True)
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _uwsgi() -> PreFork | None:
    uwsgi: Any = sys.modules.get("uwsgi")  # importable only inside a uWSGI process
    if uwsgi is None or not hasattr(uwsgi, "numproc"):
        return None
    worker = int(uwsgi.worker_id())  # 0 in the master (apps loaded before forking)
    return PreFork("uWSGI", int(uwsgi.numproc), speaks=worker in (0, 1))


def _watch_forks(backend_name: str) -> None:
    global _hooked
    with _state.lock:
        _state.watching = backend_name
        if _hooked:
            return
        _hooked = True
    os.register_at_fork(after_in_parent=_forked)  # once per process: hooks cannot be removed


def _forked() -> None:
    with _state.lock:
        if _state.watching is None:
            return
        _state.forks += 1
        forks, name = _state.forks, _state.watching
    if forks == 2 and not _state.precise:
        _warn("this process forked several children after the cache was set up", name)


def _warn(reason: str, backend_name: str) -> None:
    with _state.lock:
        if _state.warned:
            return
        _state.warned = True
    logger.warning(
        "the %s backend keeps its entries inside each process, and %s: every worker "
        "has its own cache, nothing is shared and an invalidation in one worker does not "
        "reach the others; use a shared backend (Redis, memcached, or the filesystem on "
        "one machine), see %s",
        backend_name,
        reason,
        DOCS,
    )

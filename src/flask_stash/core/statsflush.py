"""The statistics' background work: one daemon thread per process, once a second.

It drains the amounts the hot paths recorded (:class:`~flask_stash.core.stats.Stats`
appends them to a list: its memory is bounded by one second of traffic) and pushes each
shared store's deltas to its backend (:class:`~flask_stash.core.statshare.SharedStats`).
Requests never wait for it. After a fork (a pre-fork server's workers) the child starts
its own thread. Samplers (the dashboard's :class:`~flask_stash.core.history.History`)
registered with :func:`sample_every_round` run at the end of each round.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

from flask_stash.core import stats as stats_module

logger = logging.getLogger("flask_stash")

#: Seconds between two rounds (drain and push).
INTERVAL = 1.0
#: Whether rounds push shared figures (a test suite that counts backend commands turns it
#: off, and pushes with :func:`push_now` where it means to).
AUTO_PUSH = True

#: Stores with a shared backend, pushed every round (weakly: an app that goes, goes).
_stores: weakref.WeakSet[Any] = weakref.WeakSet()
#: Objects whose ``sample()`` runs after each round (weakly held too).
_samplers: weakref.WeakSet[Any] = weakref.WeakSet()
_state: dict[str, Any] = {"thread": None, "pid": None}
_start_lock = threading.Lock()


def watch(store: Any) -> None:
    """Drain ``store``'s statistics every round, and push them when it shares them."""
    if store.shared_stats is not None:
        _stores.add(store)
    ensure_running()


def sample_every_round(sampler: Any) -> None:
    """Call ``sampler.sample()`` after every round, while ``sampler`` lives."""
    _samplers.add(sampler)
    ensure_running()


def ensure_running() -> None:
    """Start this process's thread unless it runs."""
    if _state["thread"] is not None and _state["pid"] == os.getpid():
        return
    with _start_lock:
        if _state["thread"] is not None and _state["pid"] == os.getpid():
            return
        thread = threading.Thread(target=_loop, name="flask-stash-stats", daemon=True)
        _state["thread"], _state["pid"] = thread, os.getpid()
        thread.start()


def run_once() -> None:
    """One round now: drain every live ``Stats``, push the shared ones."""
    for stats in stats_module.live():
        stats.drain()
    if AUTO_PUSH:
        for store in list(_stores):
            push_now(store)
    for sampler in list(_samplers):
        _sample(sampler)


def push_now(store: Any) -> bool:
    """Push ``store``'s deltas now (``False``: not shared, or the backend refused)."""
    shared = store.shared_stats
    if shared is None:
        return False
    try:
        return bool(shared.push(store.stats))
    except Exception:  # a round must never end the thread, nor a close fail
        logger.debug("pushing shared statistics failed", exc_info=True)
        return False


def _sample(sampler: Any) -> None:
    try:
        sampler.sample()
    except Exception:  # a round must never end the thread
        logger.debug("sampling statistics failed", exc_info=True)


def _loop() -> None:
    me = threading.current_thread()
    while _state["thread"] is me:
        time.sleep(INTERVAL)
        run_once()


def _after_fork() -> None:
    _state["thread"], _state["pid"] = None, None
    if stats_module.live():
        ensure_running()


os.register_at_fork(after_in_child=_after_fork)

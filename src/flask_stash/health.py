"""A failing backend, as a Flask app sees it: the request as the failure budget's scope,
the breaker's settings, health signals, log lines formatted like Flask's own.

The engine's :class:`~flask_stash.core.gate.BackendGate` does the work (see
``docs/outages.md``); this module only connects it to the app.
"""

from __future__ import annotations

import logging

from flask.globals import _cv_app, _cv_request
from flask.logging import default_handler, has_level_handler

from flask_stash.config import CacheConfig
from flask_stash.core.breaker import Breaker, Health
from flask_stash.core.gate import Listener
from flask_stash.core.store import Store
from flask_stash.signals import cache_backend_recovered, cache_backend_unhealthy

logger = logging.getLogger("flask_stash")


def connect(store: Store, settings: CacheConfig, owner: object) -> None:
    """Give ``store``'s gate the request scope, the configured breaker and the signals."""
    gate = store.gate
    gate.scope = current_scope
    threshold, backoff, most = settings.breaker
    # A backend failing node by node (``gate.whole`` false) keeps a breaker that never opens.
    gate.breaker = Breaker(threshold if gate.whole else None, backoff, most)
    if settings.enable_signals:
        gate.listeners.append(_signal_sender(owner))
    _format_like_flask()


def current_scope() -> object:
    """The failure budget's scope: the request (or, outside one, the app context)."""
    return _cv_request.get(None) or _cv_app.get(None)


def _signal_sender(owner: object) -> Listener:
    def send(event: str, name: str, health: Health) -> None:
        signal = cache_backend_unhealthy if event == "unhealthy" else cache_backend_recovered
        signal.send(owner, backend=name, health=health)

    return send


def _format_like_flask() -> None:
    # Flask gives its app logger a handler when nothing would print its records; the same
    # for ours, so an outage's lines carry a time and a level instead of going through
    # Python's bare fallback handler.
    if not has_level_handler(logger):
        logger.addHandler(default_handler)

"""Flask-Caching's signals, sent only when ``CACHE_ENABLE_SIGNALS`` is on.

Payloads match Flask-Caching: views send ``cache``, ``cache_key``, ``args``, ``kwargs``;
memoized functions also send ``f``. The two backend health signals are Flask-Stash's own
(their sender is the :class:`~flask_stash.Cache`).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent when a ``@cached`` view (or function) is answered from the cache.
cache_view_hit = _signals.signal("flask-stash.view-hit")
#: Sent when a ``@cached`` view (or function) had to run.
cache_view_miss = _signals.signal("flask-stash.view-miss")
#: Sent when a ``@memoize``'d function is answered from the cache.
cache_memoize_hit = _signals.signal("flask-stash.memoize-hit")
#: Sent when a ``@memoize``'d function had to run.
cache_memoize_miss = _signals.signal("flask-stash.memoize-miss")

#: Sent when a backend starts failing (its first failure after a healthy spell), with
#: ``backend`` (its name) and ``health`` (:class:`~flask_stash.core.breaker.Health`).
cache_backend_unhealthy = _signals.signal("flask-stash.backend-unhealthy")
#: Sent when a failing backend answers again, with ``backend`` and ``health`` (the
#: outage's failed and skipped calls and its duration).
cache_backend_recovered = _signals.signal("flask-stash.backend-recovered")

__all__ = [
    "cache_backend_recovered",
    "cache_backend_unhealthy",
    "cache_memoize_hit",
    "cache_memoize_miss",
    "cache_view_hit",
    "cache_view_miss",
]

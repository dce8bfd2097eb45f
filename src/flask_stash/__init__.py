"""Flask-Stash: caching for Flask, a drop-in replacement for Flask-Caching.

``from flask_stash import Cache`` is all a Flask-Caching user changes. The Flask layer is
imported lazily (PEP 562 ``__getattr__``), so ``flask_stash.core`` can be used, and is
tested, without Flask installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

_LAZY = {
    "Cache": "flask_stash.extension",
    "CachedResponse": "flask_stash.views.responses",
    "KeyAuditWarning": "flask_stash.views.audit",
    "make_template_fragment_key": "flask_stash.jinja",
    "ConfigurationError": "flask_stash.core.errors",
    "BackendError": "flask_stash.core.errors",
    "BackendUnavailable": "flask_stash.core.errors",
    "MISS": "flask_stash.core.api",
    "SUPPORTED_HASH_FUNCTIONS": "flask_stash.names",
    "function_namespace": "flask_stash.names",
    "cache_view_hit": "flask_stash.signals",
    "cache_view_miss": "flask_stash.signals",
    "cache_memoize_hit": "flask_stash.signals",
    "cache_memoize_miss": "flask_stash.signals",
    "cache_backend_unhealthy": "flask_stash.signals",
    "cache_backend_recovered": "flask_stash.signals",
}

if TYPE_CHECKING:
    from flask_stash.core.api import MISS
    from flask_stash.core.errors import BackendError, BackendUnavailable, ConfigurationError
    from flask_stash.extension import Cache
    from flask_stash.jinja import make_template_fragment_key
    from flask_stash.names import SUPPORTED_HASH_FUNCTIONS, function_namespace
    from flask_stash.signals import (
        cache_backend_recovered,
        cache_backend_unhealthy,
        cache_memoize_hit,
        cache_memoize_miss,
        cache_view_hit,
        cache_view_miss,
    )
    from flask_stash.views.audit import KeyAuditWarning
    from flask_stash.views.responses import CachedResponse

__all__ = [
    "MISS",
    "SUPPORTED_HASH_FUNCTIONS",
    "BackendError",
    "BackendUnavailable",
    "Cache",
    "CachedResponse",
    "ConfigurationError",
    "KeyAuditWarning",
    "cache_backend_recovered",
    "cache_backend_unhealthy",
    "cache_memoize_hit",
    "cache_memoize_miss",
    "cache_view_hit",
    "cache_view_miss",
    "function_namespace",
    "make_template_fragment_key",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flask_stash' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

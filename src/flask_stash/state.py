"""What a :class:`~flask_stash.Cache` keeps per app, in ``app.extensions["flask-stash"]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_stash.config import CacheConfig
from flask_stash.core.store import Store


@dataclass
class AppState:
    """One app's configuration, store and per-decorator caches of derived objects."""

    config: CacheConfig
    store: Store
    #: What ``cache.cache`` returns: a Flask-Caching style backend object.
    backend_object: Any
    #: Decorator -> its engine-level helper for this app's store (built on first use).
    helpers: dict[object, Any] = field(default_factory=dict)

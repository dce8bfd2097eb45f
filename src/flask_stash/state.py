"""What a :class:`~flask_stash.Cache` keeps per app, in ``app.extensions["flask-stash"]``."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from flask_stash.config import CacheConfig
from flask_stash.core.store import Store

#: Helpers kept per decorator for names computed on each call (``make_name``): the most
#: recently used ones; an unbounded number of names must not grow memory.
NAMED_HELPERS = 256


@dataclass
class AppState:
    """One app's configuration, store and per-decorator caches of derived objects."""

    config: CacheConfig
    store: Store
    #: What ``cache.cache`` returns: a Flask-Caching style backend object.
    backend_object: Any
    #: The app, weakly: background work runs inside its app context.
    app_ref: Callable[[], Flask | None] = lambda: None
    #: Decorator -> its engine-level helper for this app's store (built on first use).
    #: Bounded by the code: one entry per decorated function (per-name helpers live in
    #: :class:`NamedHelpers`).
    helpers: dict[object, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, app: Flask, config: CacheConfig, store: Store, backend_object: Any) -> AppState:
        return cls(config, store, backend_object, weakref.ref(app))

    def spawn(self, job: Callable[[], None]) -> None:
        """Run ``job`` in the background inside this app's context (``current_app``,
        ``url_for`` and the app's config work there, as in the request that started it)."""
        app = self.app_ref()

        def in_app_context() -> None:
            if app is None:
                job()
                return
            with app.app_context():
                job()

        self.store.stampede.run_in_background(in_app_context)


class NamedHelpers:
    """A bounded, least-recently-used table of per-name helpers."""

    def __init__(self, size: int = NAMED_HELPERS) -> None:
        self._size = size
        self._table: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, build: Callable[[str], Any]) -> Any:
        with self._lock:
            found = self._table.get(name)
            if found is not None:
                self._table.move_to_end(name)
                return found
        built = build(name)  # outside the lock: building may be slow
        with self._lock:
            found = self._table.setdefault(name, built)
            while len(self._table) > self._size:
                self._table.popitem(last=False)
        return found

    def __len__(self) -> int:
        return len(self._table)

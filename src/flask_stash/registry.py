"""The caches of one app, by name: for ``flask stash --cache NAME`` and the metrics.

An app may have several :class:`~flask_stash.Cache` objects (``init_app`` order is kept in
``app.extensions["flask-stash"]``). Each has a name: its ``CACHE_NAME``, else ``default``
for the first and ``cache2``, ``cache3``... for the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask

from flask_stash.core.errors import ConfigurationError
from flask_stash.state import AppState

if TYPE_CHECKING:
    from flask_stash.extension import Cache

EXTENSION_KEY = "flask-stash"
DEFAULT = "default"


def caches(app: Flask) -> dict[str, tuple[Cache, AppState]]:
    """``{name: (cache, its state)}`` for every cache of ``app``, in ``init_app`` order."""
    found: dict[Any, AppState] = app.extensions.get(EXTENSION_KEY, {})
    named: dict[str, tuple[Cache, AppState]] = {}
    for position, (cache, state) in enumerate(found.items(), 1):
        named.setdefault(_name(state, position), (cache, state))
    return named


def name_of(app: Flask, cache: Cache) -> str:
    """The name of ``cache`` in ``app``."""
    for name, (candidate, _) in caches(app).items():
        if candidate is cache:
            return name
    raise LookupError(f"this Cache was not initialized for app {app.name!r}")


def check_names(app: Flask) -> None:
    """Two caches of one app with the same name are a configuration error."""
    found: dict[Any, AppState] = app.extensions.get(EXTENSION_KEY, {})
    names = [_name(state, position) for position, state in enumerate(found.values(), 1)]
    doubles = sorted({name for name in names if names.count(name) > 1})
    if doubles:
        raise ConfigurationError(
            f"app {app.name!r} has several caches named {doubles[0]!r}: give each a "
            "different CACHE_NAME"
        )


def _name(state: AppState, position: int) -> str:
    if state.config.name:
        return state.config.name
    return DEFAULT if position == 1 else f"cache{position}"

"""``flask_stash.backends.cachelib``'s path, kept: the adapter lives in the core now
(:mod:`flask_stash.core.backends.cachelib`)."""

from flask_stash.core.backends.cachelib import CachelibBackend

__all__ = ["CachelibBackend"]

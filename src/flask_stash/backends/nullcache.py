"""``flask_caching.backends.nullcache``'s path: the same classes, for code that imports them
from there (``from flask_stash.backends.nullcache import NullCache``)."""

from flask_stash.backends.local import NullCache

__all__ = ["NullCache"]

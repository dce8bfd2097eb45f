"""``flask_caching.backends.simplecache``'s path: the same classes, for code that imports them
from there (``from flask_stash.backends.simplecache import SimpleCache``)."""

from flask_stash.backends.local import SimpleCache

__all__ = ["SimpleCache"]

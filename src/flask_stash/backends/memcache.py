"""``flask_caching.backends.memcache``'s path: the same classes, for code that imports them
from there (``from flask_stash.backends.memcache import MemcachedCache``)."""

from flask_stash.backends.memcached import (
    MemcachedCache,
    SASLMemcachedCache,
    SpreadSASLMemcachedCache,
)

__all__ = ["MemcachedCache", "SASLMemcachedCache", "SpreadSASLMemcachedCache"]

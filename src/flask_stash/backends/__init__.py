"""Flask-Caching's backend classes, by the same names (``flask_stash.backends.SimpleCache``).

Each wraps one of the engine's backends in cachelib's method names and return values.
"""

from flask_stash.backends.base import BaseCache
from flask_stash.backends.cachelib import CachelibBackend
from flask_stash.backends.local import FileSystemCache, NullCache, SimpleCache
from flask_stash.backends.memcached import (
    MemcachedCache,
    SASLMemcachedCache,
    SpreadSASLMemcachedCache,
)
from flask_stash.backends.redis import RedisCache, RedisClusterCache, RedisSentinelCache

__all__ = [
    "BaseCache",
    "CachelibBackend",
    "FileSystemCache",
    "MemcachedCache",
    "NullCache",
    "RedisCache",
    "RedisClusterCache",
    "RedisSentinelCache",
    "SASLMemcachedCache",
    "SimpleCache",
    "SpreadSASLMemcachedCache",
]
